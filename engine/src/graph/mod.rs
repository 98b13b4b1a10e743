//! Diagrams of a compiled [`Plan`]: Mermaid, Graphviz DOT and a laid-out SVG picture.
//!
//! All three formats draw the same graph, built once from the plan:
//!
//! - a `start` node, a `finish` node labelled "end" (the end of the top-level step list)
//!   and, when the workflow has `fail` steps, a `failed` node;
//! - one node per step, with the id `s<index>` and the label `<step id>` over a short tag
//!   of what the step does (`call inps.contributions`, `human task`, `wait 5d`, ...); the
//!   shape and fill colour follow the kind of step;
//! - one `join` node (`j<index>`) per parallel step, where its branches meet again;
//! - solid edges for the normal flow: `next`, switch cases (labelled with the condition) and
//!   the `default`, a receive's `timeout 30d`, the fork into each parallel branch (labelled
//!   with the branch name), `for each` into a foreach body and back from the body's end;
//! - dashed edges for the exceptional flow: `catch <patterns>` into a handler (or straight to
//!   its `goto`) and `compensate` into a compensation.
//!
//! Where a step list ends decides where its last step leads: the top level ends at `finish`,
//! a parallel branch at its join, a foreach body loops back to the foreach step, a catch
//! handler continues at its `goto` or after the failed step, and a compensation simply ends.
//! `end` steps lead where their enclosing top level or branch ends; `fail` steps to `failed`.
//!
//! Labels longer than 30 characters (conditions, `set` variable lists) are cut with `…`.
//! The SVG is laid out by the `layout-rs` crate and written by this module (see `svg.rs`
//! and `canvas.rs`). Node ids are stable for a plan (`s<index>` follows [`StepIx`]), so the
//! console can refer to them; [`to_svg_highlighting`] draws the given steps with a thick
//! orange border, and [`to_svg_marked`] marks steps as current, done or failed (class,
//! border colour and a symbol before the step's id).

mod canvas;
mod labels;
mod svg;
mod text;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::plan::{Action, BlockIx, BlockRole, Plan, Step, StepIx};
use labels::{format_duration, shorten, tag};

/// The plan as a Mermaid `flowchart TD`.
pub fn to_mermaid(plan: &Plan) -> String {
    text::mermaid(&Diagram::of(plan))
}

/// The plan as a Graphviz DOT `digraph`.
pub fn to_dot(plan: &Plan) -> String {
    text::dot(&Diagram::of(plan))
}

/// The plan as a laid-out, self-contained SVG picture (starting with `<svg`).
pub fn to_svg(plan: &Plan) -> String {
    to_svg_highlighting(plan, &[])
}

/// Like [`to_svg`], with the steps in `current` (for example where an instance waits)
/// drawn with a thick orange border. Indexes outside the plan are ignored.
pub fn to_svg_highlighting(plan: &Plan, current: &[StepIx]) -> String {
    let marks: Vec<(StepIx, StepMark)> = current.iter().map(|ix| (*ix, StepMark::Current)).collect();
    to_svg_marked(plan, &marks)
}

/// How a step is marked on an instance's diagram. Each mark has a class, a border colour
/// and a symbol before the step's id, so that it does not rely on colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepMark {
    /// Completed: a green border and `✓`.
    Done,
    /// Failed (not caught): a thick red border and `✗`.
    Failed,
    /// Where the instance is now: a thick orange border and `▶`.
    Current,
}

impl StepMark {
    pub const ALL: [StepMark; 3] = [StepMark::Current, StepMark::Done, StepMark::Failed];

    /// The SVG class of the node's group: `pratica-current`, `pratica-done`,
    /// `pratica-failed-step` (`pratica-failed` is the class of the diagram's `failed` end).
    pub fn class(self) -> &'static str {
        match self {
            StepMark::Current => "pratica-current",
            StepMark::Done => "pratica-done",
            StepMark::Failed => "pratica-failed-step",
        }
    }

    /// The symbol drawn before the step's id.
    pub fn symbol(self) -> &'static str {
        match self {
            StepMark::Current => "▶",
            StepMark::Done => "✓",
            StepMark::Failed => "✗",
        }
    }

    /// The border colour (`#rrggbb`).
    pub fn color(self) -> &'static str {
        match self {
            StepMark::Current => "#e8590c",
            StepMark::Done => "#2b8a3e",
            StepMark::Failed => "#c92a2a",
        }
    }
}

/// Like [`to_svg`], with steps marked as current, done or failed. A step marked twice keeps
/// the strongest mark (current, then failed, then done). Indexes outside the plan are ignored.
pub fn to_svg_marked(plan: &Plan, marks: &[(StepIx, StepMark)]) -> String {
    let diagram = Diagram::of(plan);
    let marked: Vec<Option<StepMark>> = diagram
        .nodes
        .iter()
        .map(|node| node.step.and_then(|ix| marks.iter().filter(|(m, _)| *m == ix).map(|(_, mark)| *mark).max()))
        .collect();
    svg::render(&diagram, &marked)
}

/// What a node stands for; decides its shape and colour in every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NodeKind {
    Start,
    Finish,
    Failed,
    Join,
    Call,
    Switch,
    Parallel,
    Foreach,
    Wait,
    Receive,
    Human,
    Subworkflow,
    Set,
    Fail,
    End,
}

impl NodeKind {
    fn of(action: &Action) -> Self {
        match action {
            Action::Call(_) => Self::Call,
            Action::Switch(_) => Self::Switch,
            Action::Parallel { .. } => Self::Parallel,
            Action::Foreach(_) => Self::Foreach,
            Action::Wait(_) => Self::Wait,
            Action::Receive(_) => Self::Receive,
            Action::Human(_) => Self::Human,
            Action::Subworkflow(_) => Self::Subworkflow,
            Action::Set { .. } => Self::Set,
            Action::Fail { .. } => Self::Fail,
            Action::End { .. } => Self::End,
        }
    }

    /// A lower-case name, used as the Mermaid class.
    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Finish => "finish",
            Self::Failed => "failed",
            Self::Join => "join",
            Self::Call => "call",
            Self::Switch => "switch",
            Self::Parallel => "parallel",
            Self::Foreach => "foreach",
            Self::Wait => "wait",
            Self::Receive => "receive",
            Self::Human => "human",
            Self::Subworkflow => "subworkflow",
            Self::Set => "set",
            Self::Fail => "fail",
            Self::End => "end_step",
        }
    }

    /// The fill colour (`#rrggbb`), the same in every format.
    fn fill(self) -> &'static str {
        match self {
            Self::Start | Self::End => "#d5e8d4",
            Self::Finish => "#b9e0a5",
            Self::Failed | Self::Fail => "#f8cecc",
            Self::Join | Self::Parallel | Self::Foreach => "#eeeeee",
            Self::Call | Self::Subworkflow => "#dae8fc",
            Self::Switch => "#fff9c4",
            Self::Wait | Self::Receive => "#ffe6cc",
            Self::Human => "#e1d5e7",
            Self::Set => "#ffffff",
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// Stable id: `s<index>` for steps, `j<index>` for joins, `start`, `finish`, `failed`.
    id: String,
    /// Text lines, unescaped.
    lines: Vec<String>,
    kind: NodeKind,
    step: Option<StepIx>,
}

#[derive(Debug, Clone)]
struct Edge {
    /// Indexes into [`Diagram::nodes`].
    from: usize,
    to: usize,
    /// Unescaped, at most [`MAX_LABEL`] characters; empty for no label.
    label: String,
    /// Exceptional flow: catch and compensation.
    dashed: bool,
}

/// The format-independent graph of a plan. Step `i` is node `i`.
#[derive(Debug, Clone, Default)]
struct Diagram {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Diagram {
    fn of(plan: &Plan) -> Self {
        let mut nodes: Vec<Node> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| Node {
                id: format!("s{i}"),
                lines: vec![step.id.clone(), shorten(&tag(step))],
                kind: NodeKind::of(&step.action),
                step: Some(step_ix(i)),
            })
            .collect();
        let mut push = |id: String, label: &str, kind| {
            nodes.push(Node { id, lines: vec![label.to_string()], kind, step: None });
            nodes.len() - 1
        };
        let start = push("start".into(), "start", NodeKind::Start);
        let finish = push("finish".into(), "end", NodeKind::Finish);
        let has_fail = plan.steps.iter().any(|s| matches!(s.action, Action::Fail { .. }));
        let failed = has_fail.then(|| push("failed".into(), "failed", NodeKind::Failed));
        let joins = plan
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.action, Action::Parallel { .. }))
            .map(|(i, _)| (step_ix(i), push(format!("j{i}"), "join", NodeKind::Join)))
            .collect();

        let mut builder = Builder { plan, finish, failed, joins, edges: Vec::new() };
        let first = builder.entry(BlockIx::ROOT).unwrap_or(finish);
        builder.edge(start, first, "", false);
        for (i, step) in plan.steps.iter().enumerate() {
            builder.step_edges(i, step);
        }
        Diagram { nodes, edges: builder.edges }
    }
}

/// Computes the edges; knows where each step list leads when it ends.
struct Builder<'p> {
    plan: &'p Plan,
    finish: usize,
    failed: Option<usize>,
    joins: HashMap<StepIx, usize>,
    edges: Vec<Edge>,
}

impl Builder<'_> {
    fn edge(&mut self, from: usize, to: usize, label: &str, dashed: bool) {
        self.edges.push(Edge { from, to, label: shorten(label), dashed });
    }

    /// An edge to `to` when there is somewhere to go.
    fn edge_to(&mut self, from: usize, to: Option<usize>, label: &str, dashed: bool) {
        if let Some(to) = to {
            self.edge(from, to, label, dashed);
        }
    }

    fn step_edges(&mut self, i: usize, step: &Step) {
        let after = self.continuation(step);
        match &step.action {
            Action::Switch(switch) => {
                for (condition, target) in &switch.cases {
                    self.edge(i, node(*target), condition.source(), false);
                }
                self.edge_to(i, switch.default.map(node).or(after), "default", false);
            }
            Action::Parallel { branches } => {
                let join = self.joins[&step_ix(i)];
                for branch in branches {
                    let entry = self.entry(branch.block).unwrap_or(join);
                    self.edge(i, entry, &branch.name, false);
                }
                self.edge_to(join, after, "", false);
            }
            Action::Foreach(foreach) => {
                let label = match foreach.concurrency {
                    1 => "for each".to_string(),
                    n => format!("for each (concurrency {n})"),
                };
                let entry = self.entry(foreach.body).unwrap_or(i);
                self.edge(i, entry, &label, false);
                self.edge_to(i, after, "", false);
            }
            Action::Receive(receive) => {
                self.edge_to(i, after, "", false);
                if let Some((duration, target)) = receive.timeout {
                    self.edge(i, node(target), &format!("timeout {}", format_duration(duration)), false);
                }
            }
            Action::Fail { .. } => self.edge_to(i, self.failed, "", false),
            Action::End { .. } => {
                let end = self.end_of(step.block);
                self.edge_to(i, end, "", false);
            }
            Action::Call(_) | Action::Wait(_) | Action::Human(_) | Action::Subworkflow(_) | Action::Set { .. } => {
                self.edge_to(i, after, "", false);
            }
        }
        for clause in &step.catch {
            let target = match (clause.handler.and_then(|b| self.entry(b)), clause.goto) {
                (Some(entry), _) => Some(entry),
                (None, Some(goto)) => Some(node(goto)),
                (None, None) => after,
            };
            self.edge_to(i, target, &format!("catch {}", clause.errors.join(", ")), true);
        }
        if let Some(entry) = step.compensate.and_then(|b| self.entry(b)) {
            self.edge(i, entry, "compensate", true);
        }
    }

    /// The node of a block's first step.
    fn entry(&self, block: BlockIx) -> Option<usize> {
        self.plan.block(block).steps.first().map(|ix| node(*ix))
    }

    /// Where the flow goes after `step` completes normally.
    fn continuation(&self, step: &Step) -> Option<usize> {
        match step.next {
            Some(next) => Some(node(next)),
            None => self.exit_of(step.block),
        }
    }

    /// Where the flow goes when the last step of `block` completes.
    fn exit_of(&self, block: BlockIx) -> Option<usize> {
        match &self.plan.block(block).role {
            BlockRole::Root => Some(self.finish),
            BlockRole::Branch { step, .. } => self.joins.get(step).copied(),
            BlockRole::ForeachBody { step } => Some(node(*step)),
            BlockRole::Catch { step, clause } => {
                let owner = self.plan.step(*step);
                match owner.catch.get(*clause).and_then(|c| c.goto) {
                    Some(goto) => Some(node(goto)),
                    None => self.continuation(owner),
                }
            }
            BlockRole::Compensation { .. } => None,
        }
    }

    /// Where an `end` step in `block` leads: the end of the top level or of its branch (or
    /// foreach iteration); catch handlers end what their failed step belongs to.
    fn end_of(&self, block: BlockIx) -> Option<usize> {
        match &self.plan.block(block).role {
            BlockRole::Root | BlockRole::Branch { .. } | BlockRole::ForeachBody { .. } => self.exit_of(block),
            BlockRole::Catch { step, .. } => self.end_of(self.plan.step(*step).block),
            BlockRole::Compensation { .. } => None,
        }
    }
}

fn node(ix: StepIx) -> usize {
    ix.0 as usize
}

fn step_ix(i: usize) -> StepIx {
    StepIx(u32::try_from(i).expect("a plan has fewer than 2^32 steps"))
}
