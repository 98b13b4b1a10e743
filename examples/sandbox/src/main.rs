//! `pratica-sandbox [--listen 127.0.0.1:8089] [--smtp 127.0.0.1:2525]`: runs the SANDBOX of
//! the external systems (fictitious data, in memory) until Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut args = std::env::args().skip(1);
    let (mut http, mut smtp): (SocketAddr, SocketAddr) = (([127, 0, 0, 1], 8089).into(), ([127, 0, 0, 1], 2525).into());
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<SocketAddr> {
            args.next().with_context(|| format!("{arg} needs an address"))?.parse().with_context(|| format!("{arg}: not an address"))
        };
        match arg.as_str() {
            "--listen" => http = value()?,
            "--smtp" => smtp = value()?,
            "-h" | "--help" => {
                println!(
                    "pratica-sandbox [--listen 127.0.0.1:8089] [--smtp 127.0.0.1:2525]\nA SANDBOX of INPS archives, payments, App IO, PEC and SMTP with fictitious citizens."
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument `{other}` (try --help)"),
        }
    }
    let sandbox = pratica_sandbox::start_with(pratica_sandbox::Options { smtp, ..pratica_sandbox::Options::seeded(http) })
        .await
        .context("cannot start the sandbox")?;
    println!("SANDBOX (fictitious systems) on {} — SMTP on {} — open {}/sandbox", sandbox.addr, sandbox.smtp_addr, sandbox.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
