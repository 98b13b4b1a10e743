//! `pratica run`, `history` and `audit verify` as a user runs them.

use assert_cmd::Command;
use pratica_engine::store::Store;
use pratica_tests::backend::ScratchDir;
use pratica_tests::{pratica_bin, repo_root};

fn pratica(db: &str) -> Command {
    let mut cmd = Command::new(pratica_bin());
    cmd.current_dir(repo_root()).env("PRATICA_DB", db);
    cmd
}

#[tokio::test]
async fn run_resumes_history_shows_and_audit_detects_tampering() {
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("run.db").display());
    let args = ["run", "examples/workflows/naspi-quick-check.yaml", "--input", "examples/inputs/naspi-quick-check.json"];
    let out = pratica(&db).args(args).assert().success();
    let first = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(first.starts_with("started naspi-quick-check v1: instance "), "{first}");
    assert!(first.contains("\"monthly_amount\": 1259.56") && first.contains("\"start_date\": \"2025-04-08\""), "{first}");
    let id = first.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    // The same command again continues the same case instead of opening a second one.
    let out = pratica(&db).args(args).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).starts_with(&format!("resuming naspi-quick-check v1: instance {id}")));
    let out = pratica(&db).args(["history", &id]).assert().success();
    let timeline = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(timeline.contains("business key RSSMRA87C12H501Z") && timeline.contains("instance.completed"), "{timeline}");
    pratica(&db).args(["audit", "verify", &id]).assert().success();
    let store = Store::connect(&db).await.unwrap();
    store.execute_raw(&format!("UPDATE history SET data = REPLACE(data, '1259.56', '2259.56') WHERE instance_id = '{id}'")).await.unwrap();
    store.close().await;
    let out = pratica(&db).args(["audit", "verify"]).assert().code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains(&format!("TAMPERED  {id}")));
}

#[test]
fn run_waits_for_a_human_task_and_says_so() {
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("wait.db").display());
    let input = scratch.0.join("input.json");
    std::fs::write(
        &input,
        r#"{"fiscal_code":"VRDLGU70B02F205X","office":"MI-1","termination_date":"2025-03-31","application_date":"2025-04-05","involuntary":false,"contribution_weeks_4y":100,"taxable_pay_4y":40000}"#,
    )
    .unwrap();
    let out = pratica(&db).args(["run", "examples/workflows/naspi-quick-check.yaml", "--input"]).arg(&input).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("waiting") && stdout.contains("human task") && stdout.contains("MI-1"), "{stdout}");
}

/// `history` and `audit verify` read the database only: they work on a machine (or in a
/// shell) where the connectors' secrets named by pratica.toml are not set.
#[test]
fn history_and_audit_verify_need_no_connector_secrets() {
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("secrets.db").display());
    let config = scratch.0.join("pratica.toml");
    std::fs::write(
        &config,
        "[secrets]\ninps-token = { env = \"PRATICA_TEST_CLI_INPS_TOKEN\" }\n\n\
         [connectors.inps]\nkind = \"http\"\nbase_url = \"https://inps.example.it/api\"\n\
         auth = { type = \"bearer\", token = \"secret:inps-token\" }\n",
    )
    .unwrap();
    let workflow = repo_root().join("examples/workflows/naspi-quick-check.yaml");
    let input = repo_root().join("examples/inputs/naspi-quick-check.json");
    // The run builds the connectors, so it needs the secret.
    let mut run = Command::new(pratica_bin());
    run.current_dir(&scratch.0).env("PRATICA_DB", &db).env("PRATICA_TEST_CLI_INPS_TOKEN", "tok-cli-1234");
    let out = run.arg("run").arg(&workflow).arg("--input").arg(&input).assert().success();
    let id = String::from_utf8_lossy(&out.get_output().stdout).lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    // Without it, a command that needs connectors says which secret is missing...
    let mut without = Command::new(pratica_bin());
    without.current_dir(&scratch.0).env("PRATICA_DB", &db).env_remove("PRATICA_TEST_CLI_INPS_TOKEN");
    let out = without.arg("run").arg(&workflow).arg("--input").arg(&input).assert().failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("PRATICA_TEST_CLI_INPS_TOKEN"));
    // ...and the read-only ones work, with ./pratica.toml found or named with --config.
    for args in [vec!["history", id.as_str()], vec!["history", id.as_str(), "--config", "pratica.toml"]] {
        let mut history = Command::new(pratica_bin());
        history.current_dir(&scratch.0).env("PRATICA_DB", &db).env_remove("PRATICA_TEST_CLI_INPS_TOKEN");
        let out = history.args(&args).assert().success();
        let timeline = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(timeline.contains("instance.completed"), "{timeline}");
    }
    for args in [vec!["audit", "verify"], vec!["audit", "verify", id.as_str(), "--config", "pratica.toml"]] {
        let mut verify = Command::new(pratica_bin());
        verify.current_dir(&scratch.0).env("PRATICA_DB", &db).env_remove("PRATICA_TEST_CLI_INPS_TOKEN");
        let out = verify.args(&args).assert().success();
        assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("1 intact, 0 tampered"), "{args:?}");
    }
}

/// `pratica token create --role worker --topic ...` limits a token to those topics; `token
/// list` shows them; topics are for worker tokens only.
#[test]
fn worker_tokens_can_be_limited_to_topics() {
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("tokens.db").display());
    let create = ["token", "create", "--name", "scorer", "--role", "worker", "--topic", "naspi.scoring", "--topic", "naspi.ranking"];
    let out = pratica(&db).args(create).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).starts_with("prt_"));
    let out = pratica(&db).args(["token", "list"]).assert().success();
    let listing = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let line = listing.lines().find(|l| l.starts_with("scorer")).unwrap_or_default();
    assert!(listing.lines().next().unwrap().contains("topics") && line.contains("naspi.scoring,naspi.ranking"), "{listing}");
    let out = pratica(&db).args(["token", "create", "--name", "boss", "--role", "admin", "--topic", "x"]).assert().failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--topic limits worker tokens"));
    let out = pratica(&db).args(["token", "create", "--name", "w2", "--role", "worker", "--topic", "has space"]).assert().failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("topic `has space`"));
}
