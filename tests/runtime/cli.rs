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
