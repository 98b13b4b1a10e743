//! Scratch files for the unit tests: a workflow and its test file in a temporary directory.

use std::path::PathBuf;

/// A scratch directory with a workflow and its test file, removed on drop.
pub struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `workflow` as `w.yaml` and `test` as `w.test.yaml` in a new scratch directory; returns it and the test file.
pub fn files(workflow: &str, test: &str) -> (Dir, PathBuf) {
    let dir = std::env::temp_dir().join(format!("pratica-scenario-unit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("w.yaml"), workflow).unwrap();
    std::fs::write(dir.join("w.test.yaml"), test).unwrap();
    let test = dir.join("w.test.yaml");
    (Dir(dir), test)
}

/// A workflow with a foreach of external tasks and calls, a `receive` with a timeout and a
/// `human` step.
pub const ROUTING: &str = r#"workflow: pec-routing
version: 1
title: Route certified mail
steps:
  - id: each
    foreach:
      over: ${ .input.messages }
      concurrency: 3
      steps:
        - id: classify
          call: external
          topic: pec.classify
          with: { id: "${ .item }" }
          retry: { attempts: 3, delay: 1s }
        - id: file
          call: archive.file
          with: { id: "${ .item }", office: "${ .steps.classify.output.office }" }
  - id: confirm
    receive:
      message: routing-confirmed
      correlate: ${ .input.batch }
      timeout: { after: 2d, goto: unconfirmed }
  - id: check
    human:
      title: "Check batch {{ input.batch }}"
      assign: { role: pec-clerk }
      outcomes: [ok, redo]
  - id: done
    end:
      output: { filed: "${ [.steps.each.output[].filed] }", checked: "${ .steps.check.output.outcome }" }
  - id: unconfirmed
    fail: { error: pec.unconfirmed, message: "Batch {{ input.batch }} was not confirmed" }
"#;
