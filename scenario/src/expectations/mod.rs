//! Comparing what happened in a scenario with its `expect`: the status, the path, the
//! output, the error, the tasks created and the calls made; and the entries of `tasks` and
//! `messages` that were never used. Differences are shown line by line ([`diff`]).

pub mod diff;

mod calls;
mod path;

use pratica_engine::store::TaskRow;

use crate::loading::Suite;
use crate::loading::model::*;
use crate::report::{Failure, format_elapsed};
use crate::simulation::facts::Facts;
use diff::DiffLine;

use calls::check_calls;
use path::is_subsequence;
pub use path::path_of;

/// Entries of `tasks` and `messages` that were never used.
pub(crate) fn unused(suite: &Suite, scenario: &Scenario, used_tasks: &[bool], used_messages: &[bool], facts: &Facts) -> Vec<Failure> {
    let mut out = Vec::new();
    for (entry, used) in scenario.tasks.iter().zip(used_tasks) {
        if !used {
            let step = &entry.value.step;
            let created = facts.tasks.iter().filter(|t| &t.step_id == step).count();
            let why = match created {
                0 => format!("no task of `{step}` was created"),
                n => format!("the {n} task(s) of `{step}` created were handled by earlier entries"),
            };
            out.push(Failure::new(format!("the task entry for `{step}` (line {}) was not used: {why}", suite.line_of(&entry.pointer))));
        }
    }
    for (entry, used) in scenario.messages.iter().zip(used_messages) {
        if !used {
            let m = &entry.value;
            out.push(Failure::new(format!(
                "the message `{}`{} (line {}) was not delivered: no instance waited for it{}",
                m.name,
                m.key.as_deref().map(|k| format!(" with key `{k}`")).unwrap_or_default(),
                suite.line_of(&entry.pointer),
                if m.after.is_zero() { String::new() } else { format!(" {} after it started waiting", format_elapsed(m.after)) }
            )));
        }
    }
    out
}

fn task_line(t: &TaskRow, fields: &TaskExpect) -> String {
    let mut parts = vec![format!("step: {}", t.step_id)];
    let show = |o: &Option<String>| o.as_deref().unwrap_or("-").to_string();
    if fields.title.is_some() {
        parts.push(format!("title: {:?}", t.title));
    }
    if fields.role.is_some() {
        parts.push(format!("role: {}", show(&t.role)));
    }
    if fields.office.is_some() {
        parts.push(format!("office: {}", show(&t.office)));
    }
    if fields.user.is_some() {
        parts.push(format!("user: {}", show(&t.assignee)));
    }
    parts.join(", ")
}

fn expected_task_line(e: &TaskExpect) -> String {
    let mut parts = vec![format!("step: {}", e.step)];
    if let Some(t) = &e.title {
        parts.push(format!("title: {t:?}"));
    }
    if let Some(r) = &e.role {
        parts.push(format!("role: {r}"));
    }
    if let Some(o) = &e.office {
        parts.push(format!("office: {o}"));
    }
    if let Some(u) = &e.user {
        parts.push(format!("user: {u}"));
    }
    parts.join(", ")
}

/// Compares what happened with `expect`.
pub(crate) fn check(suite: &Suite, scenario: &Scenario, facts: &Facts) -> Vec<Failure> {
    let e = &scenario.expect;
    let mut out = Vec::new();
    check_status(e, facts, &mut out);
    check_path(suite, e, facts, &mut out);
    check_output(e, facts, &mut out);
    check_error(e, facts, &mut out);
    check_tasks(e, facts, &mut out);
    check_calls(e, facts, &mut out);
    out
}

/// The final status.
fn check_status(e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    if let Some(status) = e.status
        && status.as_str() != facts.status
    {
        out.push(Failure::diff(
            format!("status differs: the instance is {}", facts.describe_status()),
            vec![DiffLine::Expected(status.as_str().into()), DiffLine::Actual(facts.status.clone())],
        ));
    }
}

/// The path of steps, exact (`path`) or in order (`path_includes`).
fn check_path(suite: &Suite, e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    let path = path_of(&suite.main().plan, &facts.history);
    if let Some(expected) = &e.path
        && expected.value != path
    {
        let ex: Vec<&str> = expected.value.iter().map(String::as_str).collect();
        let ac: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(Failure::diff("path differs (- expected, + actual)", diff::trim_context(diff::diff_lines(&ex, &ac), 10)));
    }
    if let Some(expected) = &e.path_includes
        && !is_subsequence(&expected.value, &path)
    {
        let ex: Vec<&str> = expected.value.iter().map(String::as_str).collect();
        let ac: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(Failure::diff(
            "path does not include the expected steps in this order (- missing, + other steps passed)",
            diff::diff_lines(&ex, &ac),
        ));
    }
}

/// The output, exact (`output`) or a subset (`output_includes`).
fn check_output(e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    let output = facts.output();
    let note = if facts.status == "completed" { String::new() } else { format!(" (the instance is {})", facts.describe_status()) };
    if let Some(expected) = &e.output
        && !diff::json_equal(expected, &output)
    {
        out.push(Failure::diff(format!("output differs{note} (- expected, + actual)"), diff::diff_json(expected, &output)));
    }
    if let Some(expected) = &e.output_includes
        && !diff::json_includes(expected, &output)
    {
        out.push(Failure::diff(
            format!("output does not include what was expected{note} (- expected, + actual)"),
            diff::diff_json(expected, &diff::project(expected, &output)),
        ));
    }
}

/// The error: its code, step and a text its message contains.
fn check_error(e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    if let Some(expected) = &e.error {
        match facts.error() {
            None => out.push(Failure::new(format!("an error was expected, but the instance is {}", facts.describe_status()))),
            Some(actual) => {
                let mut lines = Vec::new();
                let mut bad = false;
                let mut field = |name: &str, exp: &Option<String>, act: &str, contains: bool| {
                    if let Some(x) = exp {
                        let ok = if contains { act.contains(x.as_str()) } else { x == act };
                        if ok {
                            lines.push(DiffLine::Same(format!("{name}: {act}")));
                        } else {
                            bad = true;
                            let label = if contains { format!("{name} containing") } else { name.to_string() };
                            lines.push(DiffLine::Expected(format!("{label}: {x}")));
                            lines.push(DiffLine::Actual(format!("{name}: {act}")));
                        }
                    }
                };
                field("code", &expected.code, &actual.code, false);
                field("step", &expected.step, actual.step.as_deref().unwrap_or("-"), false);
                field("message", &expected.message, &actual.message, true);
                if bad {
                    out.push(Failure::diff("error differs (- expected, + actual)", lines));
                }
            }
        }
    }
}

/// Every task created, in order, with the fields the expectation names.
fn check_tasks(e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    if let Some(expected) = &e.tasks {
        let default_fields = TaskExpect {
            step: String::new(),
            title: Some(String::new()),
            role: Some(String::new()),
            office: Some(String::new()),
            user: None,
        };
        let ex: Vec<String> = expected.iter().map(|t| expected_task_line(&t.value)).collect();
        let ac: Vec<String> = (0..facts.tasks.len())
            .map(|i| task_line(&facts.tasks[i], expected.get(i).map(|t| &t.value).unwrap_or(&default_fields)))
            .collect();
        if ex != ac {
            let exr: Vec<&str> = ex.iter().map(String::as_str).collect();
            let acr: Vec<&str> = ac.iter().map(String::as_str).collect();
            out.push(Failure::diff(
                format!("tasks created differ: {} expected, {} created (- expected, + actual)", expected.len(), facts.tasks.len()),
                diff::diff_lines(&exr, &acr),
            ));
        }
    }
}
