//! The text of labels: what a step does in a few words, cut to a readable length.

use std::time::Duration;

use crate::plan::{Action, Step, Wait};

/// The longest edge label or step tag, in characters, before it is cut with `…`.
pub(super) const MAX_LABEL: usize = 30;

/// The short description under a step's id.
pub(super) fn tag(step: &Step) -> String {
    match &step.action {
        Action::Call(call) => match &call.operation {
            Some(op) => format!("call {}.{op}", call.connector),
            None => format!("call {}", call.connector),
        },
        Action::Switch(_) => "switch".into(),
        Action::Parallel { branches } => format!("parallel ({} branches)", branches.len()),
        Action::Foreach(foreach) => format!("foreach {}", foreach.item),
        Action::Wait(Wait::For(duration)) => format!("wait {}", format_duration(*duration)),
        Action::Wait(Wait::Until(expr)) => format!("wait until {}", expr.source()),
        Action::Receive(receive) => format!("receive {}", receive.message),
        Action::Human(_) => "human task".into(),
        Action::Subworkflow(sub) => match sub.version {
            Some(v) => format!("workflow {} v{v}", sub.workflow),
            None => format!("workflow {}", sub.workflow),
        },
        Action::Set { vars } => {
            format!("set {}", vars.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", "))
        }
        Action::Fail { error, .. } => format!("fail {error}"),
        Action::End { .. } => "end".into(),
    }
}

/// Collapses whitespace and cuts `text` to [`MAX_LABEL`] characters, ending with `…`.
pub(super) fn shorten(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MAX_LABEL {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_LABEL - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// `5d`, `1h30m`, `500ms`: days, hours, minutes, seconds and milliseconds, largest first.
pub(super) fn format_duration(duration: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut rest = duration.as_millis();
    let mut out = String::new();
    for (unit, millis) in UNITS {
        if rest >= millis {
            out.push_str(&format!("{}{unit}", rest / millis));
            rest %= millis;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}
