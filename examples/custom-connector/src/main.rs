//! Runs `workflows/payout-account.yaml` on an embedded engine with the `iban` connector
//! registered, for a valid and an invalid IBAN, and prints each instance's output.
//!
//! ```text
//! cargo run -p pratica-example-connector
//! cargo run -p pratica-example-connector -- IT60X0542811101000000123456 IT40S0542811101000000123456
//! ```
//!
//! The database is a fresh SQLite file in the temporary directory, removed at the end.

use std::sync::Arc;

use anyhow::Context;
use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, StartRequest, output_of};
use pratica_engine::store::Store;
use pratica_example_connector::IbanConnector;
use serde_json::json;

/// The workflow that calls the connector (`call: iban.check`).
const WORKFLOW: &str = include_str!("../workflows/payout-account.yaml");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut ibans: Vec<String> = std::env::args().skip(1).collect();
    if ibans.is_empty() {
        ibans = vec!["IT60 X054 2811 1010 0000 0123 456".into(), "IT40S0542811101000000123456".into()];
    }

    // 1. The registry: the built-ins (noop, log) plus our connector under the name used in
    //    `call:`. `iban.check` calls the connector `iban` with the operation `check`.
    let registry = Registry::builtin().with("iban", IbanConnector);

    // 2. An engine on an embedded database.
    let dir = std::env::temp_dir().join(format!("pratica-example-connector-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("pratica.db").display());
    let store = Store::connect(&url).await.context("cannot open the example database")?;
    let engine = Engine::new(store, registry, Arc::new(SystemClock), EngineConfig::default());

    let result = run(&engine, &ibans).await;
    engine.store().close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(engine: &Engine, ibans: &[String]) -> anyhow::Result<()> {
    // 3. Deploy: the workflow is checked against the registry, so a `call:` of a connector
    //    that is not registered is refused here, with its line and column.
    let deployment = engine.deploy(WORKFLOW).await.map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
    println!("deployed {} version {}", deployment.workflow, deployment.version);
    for (n, iban) in ibans.iter().enumerate() {
        // 4. Start an instance and run the worker until nothing is left to do.
        let input = json!({"fiscal_code": format!("EXAMPLE{n:02}"), "iban": iban});
        let started = engine.start(StartRequest { workflow: "payout-account".into(), input, ..Default::default() }).await?;
        engine.run_until_idle().await?;
        let row = engine.store().instance(&started.id).await?;
        println!("{iban}: {} {}", row.status, output_of(&row));
    }
    Ok(())
}
