//! Pass 3: semantic checks while building the [`Plan`].
//!
//! Steps are first allocated (ids, blocks, positions) so that `goto` targets and
//! `.steps.<id>` references can be checked against the whole workflow; then each step's
//! action is compiled; then each block is checked for unreachable steps.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::diagnostic::{Diagnostic, Location, code, did_you_mean};
use super::source::{SourceMap, escape};
use super::{AssignDef, Catalog, EndDef, ErrorPatterns, HookDef, HumanDef, Jitter, RetryDef, StepDef, TriggerDef, WorkflowDef};
use crate::duration::parse_duration;
use crate::expr::{Expr, ExprError};
use crate::plan::*;
use crate::template::{Template, TemplateError};

/// Names the runtime puts at the top of the step data; a foreach variable may not shadow them.
const RESERVED: &[&str] = &["input", "steps", "vars", "business_key", "instance", "index", "error"];

struct Slot<'a> {
    def: &'a StepDef,
    pointer: String,
    block: BlockIx,
    branches: Vec<BlockIx>,
    body: Option<BlockIx>,
    handlers: Vec<Option<BlockIx>>,
    compensation: Option<BlockIx>,
}

struct Compiler<'a> {
    source: &'a str,
    map: &'a SourceMap,
    catalog: &'a Catalog,
    diagnostics: Vec<Diagnostic>,
    slots: Vec<Slot<'a>>,
    blocks: Vec<Block>,
    ids: HashMap<&'a str, StepIx>,
}

pub(super) fn compile(def: &WorkflowDef, source: &str, map: &SourceMap, catalog: &Catalog) -> Result<Plan, Vec<Diagnostic>> {
    let mut c = Compiler { source, map, catalog, diagnostics: Vec::new(), slots: Vec::new(), blocks: Vec::new(), ids: HashMap::new() };
    c.allocate(&def.steps, "/steps".into(), BlockRole::Root);
    let steps: Vec<Step> = (0..c.slots.len()).map(|i| c.step(i)).collect();
    c.check_reachability(&steps);

    if let (Some(name), Some(known)) = (&def.input, &catalog.schemas)
        && !known.contains(name)
    {
        c.unknown_schema(code::UNKNOWN_INPUT_SCHEMA, "input", name, "/input", known);
    }
    let business_key = def.business_key.as_deref().and_then(|k| c.expr(k, "/business_key"));
    let output = def.output.as_ref().map(|o| c.value(o, "/output"));
    let triggers = def.triggers.iter().enumerate().filter_map(|(i, t)| c.trigger(t, &format!("/triggers/{i}"))).collect();

    if !c.diagnostics.is_empty() {
        let mut diagnostics = c.diagnostics;
        diagnostics.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
        diagnostics.dedup();
        return Err(diagnostics);
    }
    let mut plan = Plan {
        workflow: def.workflow.clone(),
        version: def.version,
        title: def.title.clone(),
        description: def.description.clone(),
        input_schema: def.input.clone(),
        business_key,
        output,
        triggers,
        blocks: c.blocks,
        steps,
        hash: String::new(),
    };
    plan.hash = plan.compute_hash();
    Ok(plan)
}

impl<'a> Compiler<'a> {
    // ---- positions and diagnostics ----

    fn at(&self, pointer: &str) -> Option<Location> {
        self.map.value(pointer)
    }

    fn report(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// The position of `needle` inside the scalar at `pointer`, `offset` characters in.
    fn inside(&self, pointer: &str, needle: &str, offset: usize) -> Option<Location> {
        let loc = self.at(pointer)?;
        let line = self.source.lines().nth(loc.line - 1)?;
        let start_byte = line.char_indices().nth(loc.column - 1).map_or(line.len(), |(b, _)| b);
        let found = line[start_byte..].find(needle)?;
        let col = line[..start_byte + found].chars().count() + 1 + needle[..offset.min(needle.len())].chars().count();
        Some(Location { line: loc.line, column: col, width: 1 })
    }

    // ---- pass A: allocation ----

    fn allocate(&mut self, defs: &'a [StepDef], pointer: String, role: BlockRole) -> BlockIx {
        let block = BlockIx(self.blocks.len() as u32);
        self.blocks.push(Block { role, steps: Vec::new() });
        let first = self.slots.len();
        for (i, def) in defs.iter().enumerate() {
            let ix = StepIx(self.slots.len() as u32);
            let step_pointer = format!("{pointer}/{i}");
            if self.ids.contains_key(def.id.as_str()) {
                let first_at = self.ids[def.id.as_str()];
                let line = self.at(&format!("{}/id", self.slots[first_at.0 as usize].pointer)).map_or(0, |l| l.line);
                self.report(
                    Diagnostic::new(code::DUPLICATE_STEP_ID, format!("step id `{}` is used twice", def.id))
                        .at(self.at(&format!("{step_pointer}/id")))
                        .pointer(format!("{step_pointer}/id"))
                        .hint(format!("the first step with this id is on line {line}; step ids are unique in the whole workflow")),
                );
            } else {
                self.ids.insert(&def.id, ix);
            }
            self.blocks[block.0 as usize].steps.push(ix);
            self.slots.push(Slot {
                def,
                pointer: step_pointer,
                block,
                branches: Vec::new(),
                body: None,
                handlers: Vec::new(),
                compensation: None,
            });
        }
        for i in first..first + defs.len() {
            let ix = StepIx(i as u32);
            let (def, p) = (self.slots[i].def, self.slots[i].pointer.clone());
            if let Some(parallel) = &def.parallel {
                for (j, b) in parallel.branches.iter().enumerate() {
                    let child = self.allocate(
                        &b.steps,
                        format!("{p}/parallel/branches/{j}/steps"),
                        BlockRole::Branch { step: ix, name: b.name.clone() },
                    );
                    self.slots[i].branches.push(child);
                }
            }
            if let Some(foreach) = &def.foreach {
                self.slots[i].body = Some(self.allocate(&foreach.steps, format!("{p}/foreach/steps"), BlockRole::ForeachBody { step: ix }));
            }
            for (k, clause) in def.catch.iter().enumerate() {
                let handler = clause
                    .steps
                    .as_ref()
                    .map(|steps| self.allocate(steps, format!("{p}/catch/{k}/steps"), BlockRole::Catch { step: ix, clause: k }));
                self.slots[i].handlers.push(handler);
            }
            if let Some(steps) = &def.compensate {
                self.slots[i].compensation = Some(self.allocate(steps, format!("{p}/compensate"), BlockRole::Compensation { step: ix }));
            }
        }
        block
    }

    // ---- pass B: steps ----

    fn step(&mut self, i: usize) -> Step {
        let def = self.slots[i].def;
        let p = self.slots[i].pointer.clone();
        let block = self.slots[i].block;
        let action = self.action(i, def, &p);
        let terminal = matches!(action, Action::End { .. } | Action::Fail { .. });
        let next = match &def.goto {
            Some(target) => {
                if terminal || matches!(action, Action::Switch(_)) {
                    let what = action.keyword();
                    self.report(
                        Diagnostic::new(code::GOTO_AFTER_END, format!("`goto` cannot follow a `{what}` step"))
                            .at(self.map.key(&format!("{p}/goto")))
                            .pointer(format!("{p}/goto"))
                            .hint(if what == "switch" {
                                "use the switch's cases and `default` to choose the next step"
                            } else {
                                "this step ends the flow; remove `goto`"
                            }),
                    );
                }
                self.goto(target, block, &format!("{p}/goto"))
            }
            None if terminal => None,
            None => self.fall_through(i),
        };
        let retry = def.retry.as_ref().map(|r| self.retry(r, &format!("{p}/retry")));
        let timeout = def.timeout.as_deref().and_then(|t| self.duration(t, &format!("{p}/timeout")));
        let catch = def
            .catch
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let errors = match &c.error {
                    ErrorPatterns::One(e) => vec![e.clone()],
                    ErrorPatterns::Many(es) => es.clone(),
                };
                let goto = c.goto.as_deref().and_then(|g| self.goto(g, block, &format!("{p}/catch/{k}/goto")));
                Catch { errors, handler: self.slots[i].handlers[k], goto }
            })
            .collect();
        Step {
            id: def.id.clone(),
            title: def.title.clone(),
            block,
            action,
            next,
            retry,
            timeout,
            catch,
            compensate: self.slots[i].compensation,
        }
    }

    fn fall_through(&self, i: usize) -> Option<StepIx> {
        let block = &self.blocks[self.slots[i].block.0 as usize];
        let pos = block.steps.iter().position(|s| s.0 as usize == i)?;
        block.steps.get(pos + 1).copied()
    }

    fn action(&mut self, i: usize, def: &'a StepDef, p: &str) -> Action {
        let block = self.slots[i].block;
        let ix = StepIx(i as u32);
        if let Some(call) = &def.call {
            let (connector, operation) = match call.split_once('.') {
                Some((c, o)) => (c.to_string(), Some(o.to_string())),
                None => (call.clone(), None),
            };
            self.check_connector(&connector, &format!("{p}/call"));
            match (connector == "external", &def.topic) {
                (true, None) => self.report(
                    Diagnostic::new(code::EXTERNAL_TOPIC, "`call: external` needs a `topic` for external workers to fetch from")
                        .at(self.at(&format!("{p}/call")))
                        .pointer(format!("{p}/call"))
                        .hint("add e.g. `topic: naspi.documents`"),
                ),
                (false, Some(_)) => self.report(
                    Diagnostic::new(code::EXTERNAL_TOPIC, "`topic` is only for `call: external`")
                        .at(self.map.key(&format!("{p}/topic")))
                        .pointer(format!("{p}/topic")),
                ),
                _ => {}
            }
            let input = def.with.as_ref().map(|w| self.value(w, &format!("{p}/with")));
            return Action::Call(Call { connector, operation, input, topic: def.topic.clone() });
        }
        if def.with.is_some() {
            self.report(
                Diagnostic::new(code::UNKNOWN_PROPERTY, "`with` is only for `call` steps")
                    .at(self.map.key(&format!("{p}/with")))
                    .pointer(format!("{p}/with"))
                    .hint("sub-workflows take `input:` inside `workflow:`; variables are set with `set:`"),
            );
        }
        if let Some(cases) = &def.switch {
            let mut switch = Switch { cases: Vec::new(), default: None };
            for (k, case) in cases.iter().enumerate() {
                let cp = format!("{p}/switch/{k}");
                if let Some(target) = &case.default {
                    switch.default = self.goto(target, block, &format!("{cp}/default"));
                } else if let (Some(when), Some(target)) = (&case.when, &case.goto) {
                    let cond = self.expr(when, &format!("{cp}/when"));
                    let target = self.goto(target, block, &format!("{cp}/goto"));
                    if let (Some(cond), Some(target)) = (cond, target) {
                        switch.cases.push((cond, target));
                    }
                }
            }
            return Action::Switch(switch);
        }
        if let Some(parallel) = &def.parallel {
            let mut seen = BTreeSet::new();
            let mut branches = Vec::new();
            for (j, b) in parallel.branches.iter().enumerate() {
                if !seen.insert(b.name.as_str()) {
                    self.report(
                        Diagnostic::new(code::INVALID_VALUE, format!("branch name `{}` is used twice in this parallel step", b.name))
                            .at(self.at(&format!("{p}/parallel/branches/{j}/name")))
                            .pointer(format!("{p}/parallel/branches/{j}/name")),
                    );
                }
                branches.push(Branch { name: b.name.clone(), block: self.slots[i].branches[j] });
            }
            return Action::Parallel { branches };
        }
        if let Some(foreach) = &def.foreach {
            let over = self.expr(&foreach.over, &format!("{p}/foreach/over"));
            let item = foreach.item.clone().unwrap_or_else(|| "item".into());
            if RESERVED.contains(&item.as_str()) {
                self.report(
                    Diagnostic::new(code::RESERVED_NAME, format!("`as: {item}` would hide `.{item}` from the nested steps"))
                        .at(self.at(&format!("{p}/foreach/as")))
                        .pointer(format!("{p}/foreach/as"))
                        .hint(format!("choose another name; reserved: {}", RESERVED.join(", "))),
                );
            }
            let body = self.slots[i].body.expect("foreach bodies are allocated in pass A");
            return match over {
                Some(over) => Action::Foreach(Foreach { over, item, concurrency: foreach.concurrency.unwrap_or(1), body }),
                None => Action::End { output: None },
            };
        }
        if let Some(wait) = &def.wait {
            let wait = match (&wait.duration, &wait.until) {
                (Some(d), _) => self.duration(d, &format!("{p}/wait/for")).map(Wait::For),
                (_, Some(u)) => self.expr(u, &format!("{p}/wait/until")).map(Wait::Until),
                _ => None,
            };
            return Action::Wait(wait.unwrap_or(Wait::For(Duration::ZERO)));
        }
        if let Some(receive) = &def.receive {
            let correlate = self.expr(&receive.correlate, &format!("{p}/receive/correlate"));
            let timeout = receive.timeout.as_ref().and_then(|t| {
                let after = self.duration(&t.after, &format!("{p}/receive/timeout/after"));
                let target = self.goto(&t.goto, block, &format!("{p}/receive/timeout/goto"));
                after.zip(target)
            });
            return Action::Receive(Receive {
                message: receive.message.clone(),
                correlate: correlate.unwrap_or_else(|| Expr::compile(".business_key").expect("a constant expression compiles")),
                timeout,
            });
        }
        if let Some(human) = &def.human {
            return Action::Human(Box::new(self.human(human, &format!("{p}/human"))));
        }
        if let Some(sub) = &def.workflow {
            if let Some(known) = &self.catalog.workflows
                && !known.contains(&sub.name)
            {
                let mut d = Diagnostic::new(code::UNKNOWN_WORKFLOW, format!("unknown workflow `{}`", sub.name))
                    .at(self.at(&format!("{p}/workflow/name")))
                    .pointer(format!("{p}/workflow/name"));
                if let Some(best) = did_you_mean(&sub.name, known.iter().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{best}`?"));
                }
                self.report(d);
            }
            let input = sub.input.as_ref().map(|v| self.value(v, &format!("{p}/workflow/input")));
            return Action::Subworkflow(Subworkflow { workflow: sub.name.clone(), version: sub.version, input });
        }
        if let Some(set) = &def.set {
            let vars = set.iter().map(|(k, v)| (k.clone(), self.value(v, &format!("{p}/set/{}", escape(k))))).collect();
            return Action::Set { vars };
        }
        if let Some(fail) = &def.fail {
            let message = fail.message.as_deref().and_then(|m| self.text(m, &format!("{p}/fail/message")));
            return Action::Fail { error: fail.error.clone(), message };
        }
        let _ = ix;
        match &def.end {
            Some(EndDef::Output { output: Some(o) }) => Action::End { output: Some(self.value(o, &format!("{p}/end/output"))) },
            _ => Action::End { output: None },
        }
    }

    fn human(&mut self, h: &HumanDef, p: &str) -> HumanTask {
        let title = self.text(&h.title, &format!("{p}/title")).unwrap_or_else(|| Template::compile("task").expect("constant template"));
        let description = h.description.as_deref().and_then(|d| self.text(d, &format!("{p}/description")));
        let assign = self.assignment(&h.assign, &format!("{p}/assign"));
        if let (Some(form), Some(known)) = (&h.form, &self.catalog.schemas)
            && !known.contains(form)
        {
            let known = known.clone();
            self.unknown_schema(code::UNKNOWN_FORM_SCHEMA, "form", form, &format!("{p}/form"), &known);
        }
        for (k, outcome) in h.reason_required.iter().enumerate() {
            if !h.outcomes.contains(outcome) {
                let pointer = format!("{p}/reason_required/{k}");
                self.report(
                    Diagnostic::new(code::BAD_OUTCOME, format!("`{outcome}` is not one of this task's outcomes"))
                        .at(self.at(&pointer))
                        .pointer(pointer)
                        .hint(if h.outcomes.is_empty() {
                            "declare `outcomes:` first".to_string()
                        } else {
                            format!("outcomes: {}", h.outcomes.join(", "))
                        }),
                );
            }
        }
        let due = h.due.as_deref().and_then(|d| self.duration(d, &format!("{p}/due")));
        let escalate = h.escalate.as_ref().and_then(|e| {
            let after = self.duration(&e.after, &format!("{p}/escalate/after"))?;
            let office = e.to.office.as_deref().map(|o| self.value(&Value::String(o.into()), &format!("{p}/escalate/to/office")));
            Some(Escalation { after, role: e.to.role.clone().unwrap_or_default(), office })
        });
        let mut separate_from = Vec::new();
        for (k, id) in h.separate_from.iter().enumerate() {
            let pointer = format!("{p}/separate_from/{k}");
            match self.ids.get(id.as_str()).copied() {
                Some(ix) if self.slots[ix.0 as usize].def.human.is_some() => separate_from.push(ix),
                Some(_) => self.report(
                    Diagnostic::new(
                        code::SEPARATE_FROM,
                        format!("`{id}` is not a human step; separation of duties compares the operators of human steps"),
                    )
                    .at(self.at(&pointer))
                    .pointer(pointer),
                ),
                None => self.unknown_step(id, &pointer),
            }
        }
        let notify = h.notify.as_ref();
        let notify_assigned = notify.and_then(|n| n.assigned.as_ref()).and_then(|hook| self.hook(hook, &format!("{p}/notify/assigned")));
        let notify_escalated = notify.and_then(|n| n.escalated.as_ref()).and_then(|hook| self.hook(hook, &format!("{p}/notify/escalated")));
        if notify.is_some_and(|n| n.escalated.is_some()) && h.escalate.is_none() {
            let pointer = format!("{p}/notify/escalated");
            self.report(
                Diagnostic::new(code::NOTIFY_HOOK, "`notify: escalated` needs an `escalate:` on this task")
                    .at(self.map.key(&pointer))
                    .pointer(pointer)
                    .hint("add e.g. `escalate: { after: 2d, to: { role: naspi-supervisor } }`, or remove the hook"),
            );
        }
        HumanTask {
            title,
            description,
            assign,
            form: h.form.clone(),
            outcomes: h.outcomes.clone(),
            reason_required: h.reason_required.clone(),
            due,
            escalate,
            separate_from,
            notify_assigned,
            notify_escalated,
        }
    }

    /// Reports a connector that is neither built in nor configured.
    fn check_connector(&mut self, connector: &str, pointer: &str) {
        if !self.catalog.any_connector && !self.catalog.connectors.iter().any(|c| c.as_str() == connector) {
            let mut d = Diagnostic::new(code::UNKNOWN_CONNECTOR, format!("unknown connector `{connector}`"))
                .at(self.at(pointer))
                .pointer(pointer.to_string());
            d = match did_you_mean(connector, self.catalog.connectors.iter().map(String::as_str)) {
                Some(best) => d.hint(format!("did you mean `{best}`?")),
                None => d.hint(format!(
                    "known connectors: {}; others are configured in pratica.toml",
                    self.catalog.connectors.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
            };
            self.report(d);
        }
    }

    /// A notification hook: a connector call (not `external`) with a `with` input whose
    /// templates also see `task`.
    fn hook(&mut self, hook: &HookDef, p: &str) -> Option<Call> {
        let (connector, operation) = match hook.call.split_once('.') {
            Some((c, o)) => (c.to_string(), Some(o.to_string())),
            None => (hook.call.clone(), None),
        };
        if connector == "external" {
            let pointer = format!("{p}/call");
            self.report(
                Diagnostic::new(code::NOTIFY_HOOK, "a notification hook cannot be `call: external`")
                    .at(self.at(&pointer))
                    .pointer(pointer)
                    .hint("notify with a connector that sends, e.g. `call: email.send`"),
            );
            return None;
        }
        self.check_connector(&connector, &format!("{p}/call"));
        let input = hook.with.as_ref().map(|w| self.value(w, &format!("{p}/with")));
        Some(Call { connector, operation, input, topic: None })
    }

    fn assignment(&mut self, a: &AssignDef, p: &str) -> Assignment {
        Assignment {
            user: a.user.as_deref().map(|u| self.value(&Value::String(u.into()), &format!("{p}/user"))),
            role: a.role.clone(),
            office: a.office.as_deref().map(|o| self.value(&Value::String(o.into()), &format!("{p}/office"))),
        }
    }

    fn retry(&mut self, r: &RetryDef, p: &str) -> RetryPolicy {
        RetryPolicy {
            attempts: r.attempts,
            backoff: if r.backoff.as_deref() == Some("constant") { Backoff::Constant } else { Backoff::Exponential },
            delay: r.delay.as_deref().and_then(|d| self.duration(d, &format!("{p}/delay"))).unwrap_or(Duration::from_secs(1)),
            max_delay: r.max_delay.as_deref().and_then(|d| self.duration(d, &format!("{p}/max_delay"))).unwrap_or(Duration::from_secs(300)),
            jitter: match r.jitter {
                None | Some(Jitter::Enabled(true)) => 0.2,
                Some(Jitter::Enabled(false)) => 0.0,
                Some(Jitter::Fraction(f)) => f,
            },
            on: r.on.clone(),
        }
    }

    fn trigger(&mut self, t: &TriggerDef, p: &str) -> Option<Trigger> {
        let input = t.input.as_ref().map(|v| self.value(v, &format!("{p}/input")));
        if let Some(schedule) = &t.cron {
            let timezone = t.timezone.clone().unwrap_or_else(|| "Europe/Rome".into());
            let fields = schedule.split_whitespace().count();
            let parsed = if fields == 5 || schedule.trim_start().starts_with('@') {
                croner::Cron::from_str(schedule).map(|_| ()).map_err(|e| e.to_string())
            } else {
                Err(format!("expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"))
            };
            if let Err(why) = parsed {
                self.report(
                    Diagnostic::new(code::BAD_CRON, format!("invalid cron schedule `{schedule}`: {why}"))
                        .at(self.at(&format!("{p}/cron")))
                        .pointer(format!("{p}/cron"))
                        .hint("e.g. \"0 7 * * *\" (every day at 07:00) or \"30 8 * * MON-FRI\""),
                );
            }
            if chrono_tz::Tz::from_str(&timezone).is_err() {
                self.report(
                    Diagnostic::new(code::UNKNOWN_TIMEZONE, format!("unknown time zone `{timezone}`"))
                        .at(self.at(&format!("{p}/timezone")))
                        .pointer(format!("{p}/timezone"))
                        .hint("use an IANA name such as Europe/Rome or UTC"),
                );
            }
            return Some(Trigger::Cron { schedule: schedule.clone(), timezone, input });
        }
        if t.timezone.is_some() {
            self.report(
                Diagnostic::new(code::UNKNOWN_PROPERTY, "`timezone` is only for cron triggers")
                    .at(self.map.key(&format!("{p}/timezone")))
                    .pointer(format!("{p}/timezone")),
            );
        }
        if let Some(name) = &t.webhook {
            if let Some(secret) = &t.secret
                && !self.catalog.any_webhook_secret
                && !crate::trigger::webhook::is_webhook_secret(secret)
            {
                let prefix = crate::trigger::webhook::SECRET_PREFIX;
                self.report(
                    Diagnostic::new(
                        code::WEBHOOK_SECRET,
                        format!("secret `{secret}` is not declared for webhooks: a webhook may only use a secret whose name starts with `{prefix}`"),
                    )
                    .at(self.at(&format!("{p}/secret")))
                    .pointer(format!("{p}/secret"))
                    .hint(format!(
                        "ask the administrator for a webhook secret in pratica.toml, e.g. `{prefix}{name} = {{ env = \"...\" }}` under [secrets]; connector credentials cannot sign webhooks"
                    )),
                );
            }
            return Some(Trigger::Webhook { name: name.clone(), secret: t.secret.clone(), input });
        }
        if t.secret.is_some() {
            self.report(
                Diagnostic::new(code::UNKNOWN_PROPERTY, "`secret` is only for webhook triggers")
                    .at(self.map.key(&format!("{p}/secret")))
                    .pointer(format!("{p}/secret")),
            );
        }
        t.message.as_ref().map(|name| Trigger::Message { name: name.clone(), input })
    }

    // ---- references ----

    fn goto(&mut self, target: &str, from: BlockIx, pointer: &str) -> Option<StepIx> {
        match self.ids.get(target).copied() {
            None => {
                self.unknown_step(target, pointer);
                None
            }
            Some(ix) if self.slots[ix.0 as usize].block != from => {
                self.report(
                    Diagnostic::new(
                        code::GOTO_OTHER_BLOCK,
                        format!("`{target}` is in another step list; `goto` stays within its own list"),
                    )
                    .at(self.at(pointer))
                    .pointer(pointer.to_string())
                    .hint("a goto cannot jump into or out of parallel branches, foreach bodies, catch handlers or compensations"),
                );
                None
            }
            Some(ix) => Some(ix),
        }
    }

    fn unknown_step(&mut self, target: &str, pointer: &str) {
        let mut d =
            Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{target}`")).at(self.at(pointer)).pointer(pointer.to_string());
        if let Some(best) = did_you_mean(target, self.ids.keys().copied()) {
            d = d.hint(format!("did you mean `{best}`?"));
        }
        self.report(d);
    }

    fn check_references(&mut self, refs: Vec<String>, pointer: &str, needle_prefix: &str) {
        for r in refs {
            if !self.ids.contains_key(r.as_str()) {
                let needle = format!("{needle_prefix}{r}");
                let mut d = Diagnostic::new(code::UNKNOWN_STEP_REFERENCE, format!("`{needle}` refers to a step that does not exist"))
                    .at(self.inside(pointer, &needle, needle_prefix.len()).or_else(|| self.at(pointer)))
                    .pointer(pointer.to_string());
                if let Some(best) = did_you_mean(&r, self.ids.keys().copied()) {
                    d = d.hint(format!("did you mean `{best}`?"));
                } else {
                    d = d.hint("a missing step's output reads as null, which makes conditions silently false");
                }
                self.report(d);
            }
        }
    }

    fn unknown_schema(&mut self, code: &'static str, what: &str, name: &str, pointer: &str, known: &BTreeSet<String>) {
        let mut d = Diagnostic::new(code, format!("unknown {what} schema `{name}`: there is no schemas/{name}.schema.json"))
            .at(self.at(pointer))
            .pointer(pointer.to_string());
        d = match did_you_mean(name, known.iter().map(String::as_str)) {
            Some(best) => d.hint(format!("did you mean `{best}`?")),
            None => {
                d.hint(format!("add schemas/{name}.schema.json or use one of: {}", known.iter().cloned().collect::<Vec<_>>().join(", ")))
            }
        };
        self.report(d);
    }

    // ---- values ----

    fn duration(&mut self, text: &str, pointer: &str) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.report(
                    Diagnostic::new(code::BAD_DURATION, format!("`{text}` is not a duration ({why})"))
                        .at(self.at(pointer))
                        .pointer(pointer.to_string())
                        .hint("write a number and a unit, e.g. 30s, 5m, 2h, 5d or 1h30m"),
                );
                None
            }
        }
    }

    /// Compiles `${ jq }` text (the wrapper included).
    fn expr(&mut self, text: &str, pointer: &str) -> Option<Expr> {
        let inner = expression_body(text)?;
        match Expr::compile(inner) {
            Ok(e) => {
                let refs = e.step_references().into_iter().map(String::from).collect();
                self.check_references(refs, pointer, ".steps.");
                Some(e)
            }
            Err(ExprError::Compile { message, offset }) => {
                self.report(
                    Diagnostic::new(code::BAD_EXPRESSION, format!("expression `{}` does not compile: {message}", inner.trim()))
                        .at(self.inside(pointer, inner, offset).or_else(|| self.at(pointer)))
                        .pointer(pointer.to_string())
                        .hint("expressions are jq (https://jqlang.org/manual); the data is .input, .steps.<id>.output, .vars, .business_key, .instance"),
                );
                None
            }
            Err(e @ (ExprError::Unavailable { offset, .. } | ExprError::Unbounded { offset, .. })) => {
                let (code, hint) = match e {
                    ExprError::Unavailable { .. } => (
                        code::UNAVAILABLE_BUILTIN,
                        "expressions see only the case data: .input, .steps.<id>.output, .vars, .business_key, .instance; `now` is the engine's clock",
                    ),
                    _ => (code::UNBOUNDED, "bound the loop (limit(n; ...), a condition that becomes false)"),
                };
                self.report(
                    Diagnostic::new(code, format!("expression `{}` is refused: {e}", inner.trim()))
                        .at(self.inside(pointer, inner, offset).or_else(|| self.at(pointer)))
                        .pointer(pointer.to_string())
                        .hint(hint),
                );
                None
            }
            Err(ExprError::Eval { .. } | ExprError::Budget { .. }) => None,
        }
    }

    /// Compiles `{{ handlebars }}` text.
    fn text(&mut self, text: &str, pointer: &str) -> Option<Template> {
        if text.contains("${") {
            self.report(
                Diagnostic::new(code::MIXED_EXPRESSION, "`${ ... }` cannot be used inside text")
                    .at(self.inside(pointer, "${", 0).or_else(|| self.at(pointer)))
                    .pointer(pointer.to_string())
                    .hint("in text, write values as {{ input.applicant.name }}; ${ ... } must be the whole value"),
            );
            return None;
        }
        match Template::compile(text) {
            Ok(t) => {
                let refs = t.step_references().into_iter().map(String::from).collect();
                self.check_references(refs, pointer, "steps.");
                Some(t)
            }
            Err(TemplateError::Parse { message, line, column }) => {
                let message = if message.starts_with("invalid handlebars syntax") {
                    "a {{ placeholder }} is malformed or not closed".to_string()
                } else {
                    message
                };
                let at = match (line, column) {
                    (Some(1), Some(c)) => self.inside(pointer, text, c.saturating_sub(1)),
                    _ => None,
                };
                self.report(
                    Diagnostic::new(code::BAD_TEMPLATE, format!("text template does not parse: {message}"))
                        .at(at.or_else(|| self.at(pointer)))
                        .pointer(pointer.to_string())
                        .hint("placeholders are written {{ input.field }} and must be closed"),
                );
                None
            }
            Err(TemplateError::Refused { message, offset }) => {
                self.report(
                    Diagnostic::new(code::UNBOUNDED, format!("text template is refused: {message}"))
                        .at(self.inside(pointer, text, offset).or_else(|| self.at(pointer)))
                        .pointer(pointer.to_string())
                        .hint("templates may use placeholders, #if, #unless, #each, #with and lookup"),
                );
                None
            }
            Err(TemplateError::Render(_) | TemplateError::Budget(_)) => None,
        }
    }

    /// Compiles a value: whole-string `${ }` are expressions, strings with `{{ }}` are text,
    /// the rest is literal.
    fn value(&mut self, v: &Value, pointer: &str) -> ValueTemplate {
        match v {
            Value::String(s) if expression_body(s).is_some() => {
                self.expr(s, pointer).map_or(ValueTemplate::Literal(Value::Null), ValueTemplate::Expr)
            }
            Value::String(s) if s.contains("${") => {
                self.report(
                    Diagnostic::new(code::MIXED_EXPRESSION, "`${ ... }` must be the whole value, not part of a text")
                        .at(self.inside(pointer, "${", 0).or_else(|| self.at(pointer)))
                        .pointer(pointer.to_string())
                        .hint("for text use {{ ... }} (e.g. \"Pratica {{ business_key }}\"); or build the string in jq: ${ \"Pratica \" + .business_key }"),
                );
                ValueTemplate::Literal(Value::Null)
            }
            Value::String(s) if s.contains("{{") => self.text(s, pointer).map_or(ValueTemplate::Literal(Value::Null), ValueTemplate::Text),
            Value::Array(items) => {
                ValueTemplate::Array(items.iter().enumerate().map(|(i, item)| self.value(item, &format!("{pointer}/{i}"))).collect())
            }
            Value::Object(fields) => ValueTemplate::Object(
                fields.iter().map(|(k, item)| (k.clone(), self.value(item, &format!("{pointer}/{}", escape(k))))).collect(),
            ),
            other => ValueTemplate::Literal(other.clone()),
        }
    }

    // ---- pass C: reachability ----

    fn check_reachability(&mut self, steps: &[Step]) {
        for block in 0..self.blocks.len() {
            let members = self.blocks[block].steps.clone();
            let Some(first) = members.first().copied() else { continue };
            let mut reached = BTreeSet::from([first]);
            let mut todo = vec![first];
            while let Some(ix) = todo.pop() {
                for next in successors(&steps[ix.0 as usize]) {
                    if reached.insert(next) {
                        todo.push(next);
                    }
                }
            }
            // Report the first step of each unreachable run: later ones follow from it.
            let mut previous_reached = true;
            for ix in members {
                let is_reached = reached.contains(&ix);
                if !is_reached && previous_reached {
                    let pointer = format!("{}/id", self.slots[ix.0 as usize].pointer);
                    let id = steps[ix.0 as usize].id.clone();
                    self.report(
                        Diagnostic::new(code::UNREACHABLE_STEP, format!("step `{id}` can never run"))
                            .at(self.at(&pointer))
                            .pointer(pointer)
                            .hint("the step before it always jumps elsewhere or ends; point a `goto` or switch case at it, or remove it"),
                    );
                }
                previous_reached = is_reached;
            }
        }
    }
}

/// Steps that may run right after `step` in its own block.
fn successors(step: &Step) -> Vec<StepIx> {
    let mut out: Vec<StepIx> = step.next.into_iter().collect();
    match &step.action {
        Action::Switch(s) => out.extend(s.cases.iter().map(|(_, t)| *t).chain(s.default)),
        Action::Receive(r) => out.extend(r.timeout.map(|(_, t)| t)),
        _ => {}
    }
    out.extend(step.catch.iter().filter_map(|c| c.goto));
    out
}

/// The jq source inside `${ ... }` when `text` is exactly one expression.
fn expression_body(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("${")?.strip_suffix('}')?;
    (!inner.contains("${")).then_some(inner)
}
