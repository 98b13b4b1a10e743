//! `pratica test`: the analysts' scenario files (`*.test.yaml`) beside the shipped workflows
//! pass, a wrong expectation fails with exit code 1 and a readable diff, and a malformed
//! test file is reported with file:line:column.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use pratica_tests::{pratica_bin, repo_path, repo_root};

fn pratica() -> Command {
    let mut cmd = Command::new(pratica_bin());
    cmd.current_dir(repo_root());
    cmd
}

fn stdout_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).to_string()
}

/// A scratch copy of a workflow (and the schemas) in a temporary `workflows/` directory,
/// removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn with_workflows(names: &[&str]) -> Self {
        let root = std::env::temp_dir().join(format!("pratica-scenarios-{}", uuid::Uuid::now_v7()));
        let workflows = root.join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::create_dir_all(root.join("schemas")).unwrap();
        for entry in std::fs::read_dir(repo_path("schemas")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, root.join("schemas").join(path.file_name().unwrap())).unwrap();
        }
        for name in names {
            std::fs::copy(repo_path(&format!("workflows/{name}.yaml")), workflows.join(format!("{name}.yaml"))).unwrap();
        }
        Self(root)
    }

    fn write_test(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join("workflows").join(format!("{name}.test.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workflow_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_shipped_workflow_has_scenarios() {
    for dir in ["workflows", "examples/workflows"] {
        for wf in workflow_files(&repo_path(dir)) {
            let test = wf.with_extension("test.yaml");
            assert!(test.is_file(), "{} has no scenarios: expected {}", wf.display(), test.display());
        }
    }
}

#[test]
fn the_shipped_scenarios_pass() {
    let out = pratica().args(["test", "workflows/", "examples/workflows/"]).assert().success();
    let stdout = stdout_of(&out);
    assert!(stdout.contains("test result: ok."), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // One line per scenario, with its timing and the simulated time.
    assert!(stdout.contains("  ok    a clean application is paid from the decorrenza  ("), "{stdout}");
    // Work abroad: 30 days of receive timeout, then 5 days until the review task escalates.
    assert!(stdout.contains("simulated 35d 0h"), "the receive timeout is simulated: {stdout}");
    for file in ["naspi-preprocessing", "automated-payout", "proactive-notification"] {
        assert!(stdout.contains(&format!("test workflows/{file}.test.yaml")), "{file}: {stdout}");
    }
    assert!(stdout.contains("test examples/workflows/naspi-quick-check.test.yaml"), "{stdout}");
}

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff_and_the_timeline() {
    let scratch = Scratch::with_workflows(&["automated-payout"]);
    let test = scratch.write_test(
        "automated-payout",
        r#"start_at: 2025-04-08T00:00:00+02:00
input:
  case_id: NASPI-2025-000123456
  benefit: naspi
  office: "7000"
  beneficiary: { fiscal_code: RSSMRA87C12H501L, first_name: Mario, last_name: Rossi, email: mario.rossi@example.it }
  payment: { method: bank_account, iban: IT60X0542811101000000123456 }
  monthly_amount: 1259.56
  months: 1
  start_date: "2025-04-08"
mocks:
  limits: { output: { name: payout_four_eyes_threshold_eur, value: 5000, source: default } }
  pay: { output: { payment_id: PAY-1, status: executed } }
  register: { output: { entry_id: LED-1 } }
  notify_app_io: { output: { id: MSG-1 } }
scenarios:
  - name: right
    expect:
      status: completed
      output_includes: { amount: 1259.56, notified_by: app_io }
  - name: wrong amount and path
    expect:
      status: completed
      path: [compute, limits, threshold, needs_approval, pay, register, notify_email, done]
      output:
        status: paid
        case_id: NASPI-2025-000123456
        amount: 1259.65
        payment_id: PAY-1
        receipt: { entry_id: LED-1 }
        four_eyes_threshold: 5000
        approved_by: []
        notified_by: app_io
"#,
    );
    let out = pratica().arg("test").arg(&test).assert().code(1);
    let stdout = stdout_of(&out);
    assert!(stdout.contains("  ok    right  ("), "{stdout}");
    assert!(stdout.contains("  FAIL  wrong amount and path  ("), "{stdout}");
    assert!(stdout.contains("test result: FAILED. 1 passed, 1 failed"), "{stdout}");
    // The output, pretty-printed, line by line: `-` expected, `+` actual.
    assert!(stdout.contains("output differs (- expected, + actual)"), "{stdout}");
    assert!(stdout.contains("\n-   \"amount\": 1259.65,\n+   \"amount\": 1259.56,\n"), "{stdout}");
    assert!(stdout.contains("\n    \"status\": \"paid\",\n"), "unchanged lines are shown as context: {stdout}");
    // The path, one step per line.
    assert!(stdout.contains("path differs (- expected, + actual)"), "{stdout}");
    assert!(stdout.contains("\n- notify_email\n"), "{stdout}");
    assert!(stdout.contains("\n+ notify_app_io\n"), "{stdout}");
    // The instance's history, to see why.
    assert!(stdout.contains("timeline:\n  automated-payout (instance "), "{stdout}");
    assert!(stdout.contains("call.scheduled         pay"), "{stdout}");
    assert!(stdout.contains(&format!("---- {}:21 wrong amount and path ----", test.display())), "{stdout}");
}

#[test]
fn unmocked_calls_and_unused_entries_fail_the_scenario_by_name() {
    let scratch = Scratch::with_workflows(&["automated-payout"]);
    let test = scratch.write_test(
        "automated-payout",
        r#"input:
  case_id: C-1
  benefit: naspi
  office: "7000"
  beneficiary: { fiscal_code: RSSMRA87C12H501L, first_name: Mario, last_name: Rossi, email: mario.rossi@example.it }
  payment: { method: bank_account, iban: IT60X0542811101000000123456 }
  monthly_amount: 100
  months: 1
  start_date: "2025-04-08"
scenarios:
  - name: nothing mocked
    tasks:
      - { step: first_approval, outcome: approve, by: anna }
    expect:
      status: completed
"#,
    );
    let out = pratica().arg("test").arg(&test).assert().code(1);
    let stdout = stdout_of(&out);
    // `settings.get` (the four-eyes threshold) runs for real and answers its default; the payment
    // service is not built in, so its unmocked call fails the scenario by name.
    assert!(stdout.contains("step `pay` called `payments.pay`, but the scenario has no mock for `pay`"), "{stdout}");
    assert!(
        stdout.contains("the task entry for `first_approval` (line 13) was not used: no task of `first_approval` was created"),
        "{stdout}"
    );
}

#[test]
fn a_bad_input_is_checked_against_the_workflow_input_schema() {
    let scratch = Scratch::with_workflows(&["automated-payout"]);
    let test = scratch.write_test(
        "automated-payout",
        "input: { case_id: C-1, benefit: naspi, office: 7000 }\nscenarios:\n  - name: office as a number\n    expect: { status: completed }\n",
    );
    let out = pratica().arg("test").arg(&test).assert().code(1);
    let stdout = stdout_of(&out);
    assert!(stdout.contains("the scenario's input does not satisfy the schema `payout-request`"), "{stdout}");
    assert!(stdout.contains("/office: 7000 is not of type \"string\""), "{stdout}");
}

#[test]
fn a_malformed_test_file_is_reported_with_file_line_and_column() {
    let scratch = Scratch::with_workflows(&["automated-payout"]);
    let test = scratch.write_test(
        "automated-payout",
        "scenarios:\n  - name: typos\n    mocks:\n      pai: { output: 1 }\n    expect:\n      status: paid\n      outptu: {}\n",
    );
    let out = pratica().arg("test").arg(&test).assert().code(1);
    let stdout = stdout_of(&out);
    let file = test.display().to_string();
    assert!(stdout.contains("  FAIL  the test file has 2 problem(s)"), "{stdout}");
    assert!(
        stdout.contains(&format!("error[WT0104]: `status`: `paid` is not one of completed, failed, waiting, cancelled\n  --> {file}:6:15")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("error[WT0102]: unknown field `outptu` in `expect`\n  --> {file}:7:7")), "{stdout}");
    assert!(stdout.contains("did you mean `output`?"), "{stdout}");
    // Once the shape is right, the step ids are checked against the workflow.
    std::fs::write(&test, "scenarios:\n  - name: typos\n    mocks:\n      pai: { output: 1 }\n    expect:\n      status: completed\n")
        .unwrap();
    let out = pratica().arg("test").arg(&test).assert().code(1);
    let stdout = stdout_of(&out);
    assert!(stdout.contains(&format!("error[WT0201]: there is no step `pai` in automated-payout\n  --> {file}:4:7")), "{stdout}");
    assert!(stdout.contains("did you mean `pay`?"), "{stdout}");
}

#[test]
fn a_directory_without_test_files_fails() {
    let scratch = Scratch::with_workflows(&["automated-payout"]);
    let out = pratica().arg("test").arg(scratch.0.join("workflows")).assert().code(1);
    assert!(stdout_of(&out).contains("no test files (*.test.yaml) found"));
}

/// The complete example of docs/TESTING.md (the blocks that start with `# file: NAME`) is a
/// working workflow with passing scenarios.
#[test]
fn the_complete_example_in_the_testing_guide_passes() {
    let doc = std::fs::read_to_string(repo_path("docs/TESTING.md")).unwrap();
    let scratch = Scratch::with_workflows(&[]);
    let mut written = Vec::new();
    for block in doc.split("```yaml\n").skip(1).filter_map(|b| b.split("```").next()) {
        if let Some(name) = block.lines().next().and_then(|l| l.strip_prefix("# file: ")) {
            std::fs::write(scratch.0.join("workflows").join(name), block).unwrap();
            written.push(name.to_string());
        }
    }
    assert_eq!(written, ["benefit-check.yaml", "benefit-check.test.yaml"]);
    let out = pratica().arg("test").arg(scratch.0.join("workflows/benefit-check.yaml")).assert().success();
    let stdout = stdout_of(&out);
    assert!(stdout.contains("test result: ok. 4 passed, 0 failed"), "{stdout}");
    assert!(stdout.contains("simulated 30d 0h"), "{stdout}");
}
