//! The SVG picture, laid out by the `layout-rs` crate (a Sugiyama-style layered layout)
//! and drawn by our [`Canvas`].
//!
//! layout-rs knows boxes (optionally rounded), ellipses and double circles; it sizes nodes as
//! we ask and edge labels itself (a full font size per character). Each node's shape is
//! wrapped in a group with `class="pratica-node pratica-<kind>"` (plus `pratica-current`,
//! `pratica-done` or `pratica-failed-step` when marked) and `data-node="<node id>"`, for the
//! console to style or link.

use layout::adt::dag::NodeHandle;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::canvas::{Canvas, xml_escape};
use super::{Diagram, Edge, Node, NodeKind, StepMark};

/// Font size of node labels, in pixels.
const NODE_FONT: usize = 14;
/// Font size layout-rs lays edge labels out with. It must be its default (15): when it moves
/// a label to a less busy row it keeps the text but takes the default style of that spot.
const EDGE_FONT: usize = 15;
/// Font size edge labels are drawn with: smaller than the room reserved for them.
const EDGE_LABEL_FONT: usize = 12;
/// Average character width as a fraction of the font size (sans-serif, with a margin).
const CHAR_WIDTH: f64 = 0.62;
/// Line height as a fraction of the font size.
const LINE_HEIGHT: f64 = 1.25;
/// Edge labels are wrapped at this many characters per line: layout-rs reserves a full
/// font size per character, so long single lines would push the nodes far apart.
const EDGE_LABEL_WRAP: usize = 16;

const LINE_COLOR: &str = "#555555";

/// Lays out and draws `diagram`; `marks[i]` marks node `i` as current, done or failed.
pub(super) fn render(diagram: &Diagram, marks: &[Option<StepMark>]) -> String {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let handles: Vec<NodeHandle> =
        diagram.nodes.iter().enumerate().map(|(i, node)| graph.add_node(element(node, marks.get(i).copied().flatten()))).collect();
    for edge in layout_order(diagram).into_iter().map(|i| &diagram.edges[i]) {
        graph.add_edge(arrow(edge), handles[edge.from], handles[edge.to]);
    }
    let mut canvas = Canvas::new(NODE_FONT, EDGE_LABEL_FONT, CHAR_WIDTH, LINE_COLOR);
    graph.do_it(false, false, false, &mut canvas);
    canvas.finish()
}

/// The edges' indexes, with the edges that close a cycle last. layout-rs turns an edge
/// around when its target already reaches its source; adding the others first makes it turn
/// only the loops (goto loops, foreach repeats), so the flow reads from top to bottom.
fn layout_order(diagram: &Diagram) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Visit {
        New,
        Open,
        Done,
    }
    let mut outgoing = vec![Vec::new(); diagram.nodes.len()];
    for (i, edge) in diagram.edges.iter().enumerate() {
        outgoing[edge.from].push(i);
    }
    let mut visit = vec![Visit::New; diagram.nodes.len()];
    let mut closes_cycle = vec![false; diagram.edges.len()];
    let start = diagram.nodes.iter().position(|node| node.kind == NodeKind::Start);
    for root in start.into_iter().chain(0..diagram.nodes.len()) {
        if visit[root] != Visit::New {
            continue;
        }
        visit[root] = Visit::Open;
        // Depth-first, with the index of the next outgoing edge to follow.
        let mut stack = vec![(root, 0)];
        while let Some(&(node, k)) = stack.last() {
            let top = stack.len() - 1;
            match outgoing[node].get(k) {
                Some(&e) => {
                    stack[top].1 += 1;
                    let to = diagram.edges[e].to;
                    match visit[to] {
                        Visit::New => {
                            visit[to] = Visit::Open;
                            stack.push((to, 0));
                        }
                        Visit::Open => closes_cycle[e] = true,
                        Visit::Done => {}
                    }
                }
                None => {
                    visit[node] = Visit::Done;
                    stack.pop();
                }
            }
        }
    }
    let (forward, cycles): (Vec<usize>, Vec<usize>) = (0..diagram.edges.len()).partition(|&e| !closes_cycle[e]);
    forward.into_iter().chain(cycles).collect()
}

fn element(node: &Node, mark: Option<StepMark>) -> Element {
    let mut lines = node.lines.clone();
    if let (Some(mark), Some(first)) = (mark, lines.first_mut()) {
        *first = format!("{} {first}", mark.symbol());
    }
    let label = lines.join("\n");
    let text = text_size(&lines, NODE_FONT);
    let (shape, size, rounded) = match node.kind {
        NodeKind::Start => (ShapeKind::Circle(label), circle(text), 0),
        NodeKind::Finish | NodeKind::Failed => (ShapeKind::DoubleCircle(label), circle(text), 0),
        NodeKind::Switch => (ShapeKind::Circle(label), Point::new(text.x * 1.3 + 24., text.y * 1.5 + 16.), 0),
        NodeKind::Wait | NodeKind::Receive | NodeKind::Human | NodeKind::End => (ShapeKind::Box(label), padded(text), 14),
        NodeKind::Join
        | NodeKind::Call
        | NodeKind::Parallel
        | NodeKind::Foreach
        | NodeKind::Subworkflow
        | NodeKind::Set
        | NodeKind::Fail => (ShapeKind::Box(label), padded(text), 3),
    };
    let (line_color, line_width) = match mark {
        Some(StepMark::Done) => (StepMark::Done.color(), 3),
        Some(mark) => (mark.color(), 4),
        None => (LINE_COLOR, 1),
    };
    let look = StyleAttr::new(color(line_color), line_width, Some(color(node.kind.fill())), rounded, NODE_FONT);
    let class = mark.map(|m| format!(" {}", m.class())).unwrap_or_default();
    let properties = format!("class=\"pratica-node pratica-{}{class}\" data-node=\"{}\"", node.kind.name(), xml_escape(&node.id));
    Element::create_with_properties(shape, look, Orientation::TopToBottom, size, properties)
}

fn arrow(edge: &Edge) -> Arrow {
    let look = StyleAttr::new(color(LINE_COLOR), 1, None, 0, EDGE_FONT);
    let style = if edge.dashed { LineStyleKind::Dashed } else { LineStyleKind::Normal };
    let label = wrap(&edge.label, EDGE_LABEL_WRAP);
    Arrow::new(LineEndKind::None, LineEndKind::Arrow, style, &label, &look, &None, &None)
}

fn color(web: &str) -> Color {
    Color::from_name(web).unwrap_or_else(|| Color::fast("black"))
}

/// The space `lines` take at `font` pixels.
fn text_size(lines: &[String], font: usize) -> Point {
    let chars = lines.iter().map(|line| line.chars().count()).max().unwrap_or(0).max(1);
    let font = font as f64;
    Point::new(chars as f64 * font * CHAR_WIDTH, lines.len().max(1) as f64 * font * LINE_HEIGHT)
}

fn padded(text: Point) -> Point {
    Point::new(text.x + 24., text.y + 14.)
}

/// A circle around the text.
fn circle(text: Point) -> Point {
    Point::splat(text.x.max(text.y) + 24.)
}

/// Breaks `text` into lines of at most `width` characters at spaces (longer words stay whole).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}
