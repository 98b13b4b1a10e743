//! `switch`: the first case whose condition holds chooses the next step; else the
//! default, else the step after the switch.

use serde_json::{Value, json};

use super::Machine;
use super::flow::eval_error;
use crate::plan::{Step, Switch};
use crate::runtime::history_kind::HistoryKind;

impl Machine<'_> {
    pub(super) fn run_switch(&mut self, token: u32, step: &Step, switch: &Switch, data: &Value) {
        let mut target = None;
        for (cond, goto) in &switch.cases {
            match cond.test(data) {
                Ok(true) => {
                    target = Some(*goto);
                    break;
                }
                Ok(false) => {}
                Err(e) => return self.fail(token, eval_error(step, &e)),
            }
        }
        let chosen = target.or(switch.default).or(step.next);
        self.record(HistoryKind::SwitchChose, Some(&step.id), json!({"next": chosen.map(|s| self.plan.step(s).id.clone())}));
        self.move_to(token, chosen);
    }
}
