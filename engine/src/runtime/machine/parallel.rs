//! `parallel`: fork one token per branch (each sees the forking token's locals) and join
//! when all have ended; the step's output is `{branch name: branch result}`. A failing
//! branch stops its siblings (see [`super::fail`]).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Machine;
use crate::plan::{Branch, Step};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{TokenRole, Waiting};

impl Machine<'_> {
    pub(super) fn run_parallel(&mut self, token: u32, step: &Step, branches: &[Branch]) {
        let locals = self.state.tokens[&token].locals.clone();
        let mut pending = BTreeSet::new();
        for b in branches {
            let first = self.plan.block(b.block).steps[0];
            pending.insert(self.spawn(first, Some(token), TokenRole::Branch { name: b.name.clone() }, locals.clone()));
        }
        let names: Vec<&String> = branches.iter().map(|b| &b.name).collect();
        self.record(HistoryKind::ParallelStarted, Some(&step.id), json!({"branches": names}));
        self.wait_for(token, Waiting::Branches { pending, outputs: Map::new() });
    }

    /// The branch `name` (token `branch`) of `parent` ended with `result`; the last one to
    /// end completes the parallel step.
    pub(super) fn branch_ended(&mut self, parent: u32, branch: u32, name: &str, result: Value) {
        if let Some(Waiting::Branches { pending, outputs }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
            pending.remove(&branch);
            outputs.insert(name.to_string(), result);
            if pending.is_empty() {
                let outputs = std::mem::take(outputs);
                self.complete(parent, Value::Object(outputs));
            }
        }
    }
}
