//! `foreach`: one token per item, at most `concurrency` running at once; each iteration
//! sees the item, `index` and its own `.steps`; the step's output is the iterations'
//! results in item order, whatever order they finished in.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Machine;
use super::flow::eval_error;
use crate::plan::{Action, Foreach, Step};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, TokenRole, Waiting};

impl Machine<'_> {
    pub(super) fn run_foreach(&mut self, token: u32, step: &Step, foreach: &Foreach, data: &Value) {
        let items = match foreach.over.eval(data) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return self.fail(token, StepError::new("expression", format!("foreach `over` must be a list, got {other}")));
            }
            Err(e) => return self.fail(token, eval_error(step, &e)),
        };
        self.record(HistoryKind::ForeachStarted, Some(&step.id), json!({"items": items.len(), "concurrency": foreach.concurrency}));
        let results = vec![Value::Null; items.len()];
        let concurrency = foreach.concurrency.max(1) as usize;
        self.wait_for(token, Waiting::Iterations { items, next: 0, running: BTreeSet::new(), results, concurrency });
        self.start_iterations(token);
    }

    /// The iteration `index` (token `iteration`) of `parent` ended with `result`: it takes
    /// its slot, and the next items start.
    pub(super) fn iteration_ended(&mut self, parent: u32, iteration: u32, index: usize, result: Value) {
        if let Some(Waiting::Iterations { running, results, .. }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
            running.remove(&iteration);
            if let Some(slot) = results.get_mut(index) {
                *slot = result;
            }
            self.start_iterations(parent);
        }
    }

    /// Starts iterations until `concurrency` run or no item is left; completes the step
    /// when every iteration has ended.
    fn start_iterations(&mut self, parent: u32) {
        let foreach = match &self.plan.step(self.state.tokens[&parent].at).action {
            Action::Foreach(f) => f.clone(),
            _ => return,
        };
        loop {
            let Some(Waiting::Iterations { items, next, running, results, concurrency }) =
                self.state.tokens.get_mut(&parent).map(|p| &mut p.wait)
            else {
                return;
            };
            if *next >= items.len() {
                if running.is_empty() {
                    let results = std::mem::take(results);
                    self.complete(parent, Value::Array(results));
                }
                return;
            }
            if running.len() >= *concurrency {
                return;
            }
            let index = *next;
            *next += 1;
            let item = items[index].clone();
            let mut locals = self.state.tokens[&parent].locals.clone();
            locals.insert(foreach.item.clone(), item);
            locals.insert("index".into(), json!(index));
            locals.insert("steps".into(), Value::Object(Map::new()));
            let first = self.plan.block(foreach.body).steps[0];
            let child = self.spawn(first, Some(parent), TokenRole::Iteration { index }, locals);
            if let Some(Waiting::Iterations { running, .. }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
                running.insert(child);
            }
        }
    }
}
