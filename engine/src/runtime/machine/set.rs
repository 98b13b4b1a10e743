//! `set`: evaluate variables into `.vars`; the step's output is what it set.

use serde_json::{Map, Value};

use super::Machine;
use super::flow::{eval_error, too_large};
use crate::plan::{Step, ValueTemplate};

impl Machine<'_> {
    pub(super) fn run_set(&mut self, token: u32, step: &Step, vars: &[(String, ValueTemplate)], data: &Value) {
        let mut set = Map::new();
        for (name, value) in vars {
            match value.evaluate(data) {
                Ok(v) => {
                    set.insert(name.clone(), v);
                }
                Err(e) => return self.fail(token, eval_error(step, &e)),
            }
        }
        let set = Value::Object(set);
        if let Some(error) = too_large(&set, &step.id) {
            return self.fail(token, error);
        }
        if let Value::Object(vars) = &set {
            self.state.vars.extend(vars.clone());
        }
        self.complete(token, set);
    }
}
