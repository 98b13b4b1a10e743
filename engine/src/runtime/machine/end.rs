//! `end`, and the end of the top-level flow: the instance completes with the workflow's
//! `output` (or the last step's). Inside a branch or an iteration, `end` ends only that
//! unit of work (see [`super::flow`]).

use serde_json::{Value, json};

use super::Machine;
use super::effects::Effect;
use super::flow::eval_error;
use crate::plan::{Step, ValueTemplate};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{Phase, StepError, Token};

impl Machine<'_> {
    pub(super) fn run_end(&mut self, token: u32, step: &Step, output: Option<&ValueTemplate>, data: &Value) {
        let output = match output.map(|o| o.evaluate(data)) {
            None => self.state.tokens[&token].last.clone(),
            Some(Ok(v)) => v,
            Some(Err(e)) => return self.fail(token, eval_error(step, &e)),
        };
        self.token_mut(token).last = output;
        self.end_unit(token);
    }

    /// The main token (already removed from the state) ended: the instance completes,
    /// unless the workflow's `output` expression fails.
    pub(super) fn instance_completed(&mut self, main: Token) {
        let token = main.id;
        self.out.effects.push(Effect::Discard { tokens: self.state.tokens.keys().copied().collect() });
        self.state.tokens.clear();
        let output = match &self.plan.output {
            None => main.last.clone(),
            Some(o) => {
                self.state.tokens.insert(token, main);
                let data = self.data(token);
                self.state.tokens.remove(&token);
                match o.evaluate(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        let error = StepError::new("expression", format!("workflow output: {e}"));
                        return self.instance_failed(error, None);
                    }
                }
            }
        };
        self.record(HistoryKind::InstanceCompleted, None, json!({"output": output}));
        self.state.phase = Phase::Completed { output };
    }
}
