//! An SVG [`RenderBackend`] for layout-rs, in place of its own `SVGWriter`.
//!
//! layout-rs computes the positions and calls this canvas to draw; writing the SVG here lets
//! the picture fit its content (`SVGWriter` grows the view by ten pixels per character of
//! every text, leaving large empty margins), draw labels above the edges with a white halo,
//! use a sans-serif font, and start with `<svg` so it can be inlined in HTML. Every text and
//! attribute value is XML-escaped here.

use std::fmt::Write;

use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;

/// Space around the drawing, in pixels.
const MARGIN: f64 = 10.;

/// Collects the drawing; [`Canvas::finish`] produces the SVG document.
#[derive(Debug)]
pub(super) struct Canvas {
    /// Texts drawn at this font size are node labels; any other size is an edge label.
    node_font: usize,
    /// Font size edge labels are drawn with, whatever size layout-rs gives them.
    edge_label_font: usize,
    /// Estimated character width as a fraction of the font size, to bound texts.
    char_width: f64,
    /// Colour of arrowheads (`#rrggbb`).
    arrow_color: &'static str,
    shapes: String,
    texts: String,
    clips: String,
    clip_count: usize,
    arrow_count: usize,
    min: Point,
    max: Point,
}

impl Canvas {
    pub(super) fn new(node_font: usize, edge_label_font: usize, char_width: f64, arrow_color: &'static str) -> Self {
        Canvas {
            node_font,
            edge_label_font,
            char_width,
            arrow_color,
            shapes: String::new(),
            texts: String::new(),
            clips: String::new(),
            clip_count: 0,
            arrow_count: 0,
            min: Point::splat(f64::INFINITY),
            max: Point::splat(f64::NEG_INFINITY),
        }
    }

    /// The SVG document, sized to what was drawn.
    pub(super) fn finish(self) -> String {
        let (min, max) = if self.min.x <= self.max.x { (self.min, self.max) } else { (Point::zero(), Point::zero()) };
        let (x, y) = (min.x - MARGIN, min.y - MARGIN);
        let (width, height) = (max.x - min.x + 2. * MARGIN, max.y - min.y + 2. * MARGIN);
        let mut out = String::new();
        write!(
            out,
            concat!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"{x:.1} {y:.1} {w:.1} {h:.1}\">\n",
                "<defs>\n",
                "<marker id=\"arrowhead\" markerWidth=\"10\" markerHeight=\"7\" refX=\"10\" refY=\"3.5\" orient=\"auto\">",
                "<polygon points=\"0 0, 10 3.5, 0 7\" fill=\"{arrow}\"/></marker>\n",
                "<marker id=\"arrowtail\" markerWidth=\"10\" markerHeight=\"7\" refX=\"0\" refY=\"3.5\" orient=\"auto\">",
                "<polygon points=\"10 0, 10 7, 0 3.5\" fill=\"{arrow}\"/></marker>\n",
                "{clips}</defs>\n",
                "<style>\n",
                "text {{ font-family: Helvetica, Arial, sans-serif; fill: #222222; }}\n",
                ".node-label {{ font-size: {node}px; }}\n",
                ".edge-label {{ font-size: {edge}px; paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }}\n",
                "</style>\n",
            ),
            w = width,
            h = height,
            x = x,
            y = y,
            clips = self.clips,
            node = self.node_font,
            edge = self.edge_label_font,
            arrow = self.arrow_color,
        )
        .expect("writing to a String cannot fail");
        out.push_str(&self.shapes);
        out.push_str(&self.texts);
        out.push_str("</svg>\n");
        out
    }

    fn include(&mut self, p: Point) {
        self.min = Point::new(self.min.x.min(p.x), self.min.y.min(p.y));
        self.max = Point::new(self.max.x.max(p.x), self.max.y.max(p.y));
    }

    fn include_box(&mut self, top_left: Point, size: Point) {
        self.include(top_left);
        self.include(top_left.add(size));
    }

    /// Opens a group carrying the caller's attributes, if any; returns the closing tag.
    fn open_group(&mut self, properties: Option<String>) -> &'static str {
        match properties {
            Some(attributes) => {
                write!(self.shapes, "<g {attributes}>").expect("writing to a String cannot fail");
                "</g>\n"
            }
            None => "\n",
        }
    }
}

/// `#rrggbbaa` as SVG understands it; fully transparent becomes `none`.
fn paint(color: Option<Color>) -> String {
    match color {
        Some(c) if c.to_web_color() != "#00000000" => c.to_web_color(),
        _ => "none".into(),
    }
}

/// Escapes text for XML content and double-quoted attribute values.
pub(super) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl RenderBackend for Canvas {
    fn draw_rect(&mut self, xy: Point, size: Point, look: &StyleAttr, properties: Option<String>, clip: Option<ClipHandle>) {
        self.include_box(xy, size);
        let close = self.open_group(properties);
        let clip = clip.map(|c| format!(" clip-path=\"url(#clip{c})\"")).unwrap_or_default();
        write!(
            self.shapes,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{clip}/>{close}",
            xy.x,
            xy.y,
            size.x,
            size.y,
            look.rounded,
            paint(look.fill_color),
            paint(Some(look.line_color)),
            look.line_width,
        )
        .expect("writing to a String cannot fail");
    }

    fn draw_line(&mut self, start: Point, stop: Point, look: &StyleAttr, properties: Option<String>) {
        self.include(start);
        self.include(stop);
        let close = self.open_group(properties);
        write!(
            self.shapes,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{}\"/>{close}",
            start.x,
            start.y,
            stop.x,
            stop.y,
            paint(Some(look.line_color)),
            look.line_width,
        )
        .expect("writing to a String cannot fail");
    }

    fn draw_circle(&mut self, xy: Point, size: Point, look: &StyleAttr, properties: Option<String>) {
        self.include_box(xy.sub(size.scale(0.5)), size);
        let close = self.open_group(properties);
        write!(
            self.shapes,
            "<ellipse cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>{close}",
            xy.x,
            xy.y,
            size.x / 2.,
            size.y / 2.,
            paint(look.fill_color),
            paint(Some(look.line_color)),
            look.line_width,
        )
        .expect("writing to a String cannot fail");
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        let class = if look.font_size == self.node_font { "node-label" } else { "edge-label" };
        let lines: Vec<&str> = text.lines().collect();
        let line_height = look.font_size as f64 * 1.2;
        let top = xy.y - line_height * (lines.len() as f64 - 1.) / 2.;
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let half = Point::new(widest * look.font_size as f64 * self.char_width / 2., line_height * lines.len() as f64 / 2.);
        self.include(xy.sub(half));
        self.include(xy.add(half));
        write!(self.texts, "<text class=\"{class}\" text-anchor=\"middle\" dominant-baseline=\"central\">")
            .expect("writing to a String cannot fail");
        for (i, line) in lines.iter().enumerate() {
            let y = top + line_height * i as f64;
            write!(self.texts, "<tspan x=\"{:.1}\" y=\"{y:.1}\">{}</tspan>", xy.x, xml_escape(line))
                .expect("writing to a String cannot fail");
        }
        self.texts.push_str("</text>\n");
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        text: &str,
    ) {
        let [first, second, rest @ ..] = path else {
            return;
        };
        for (a, b) in path {
            self.include(*a);
            self.include(*b);
        }
        // The first pair is the exit from the source; each following pair is (control, point).
        let mut d = format!(
            "M {:.1} {:.1} C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
            first.0.x, first.0.y, first.1.x, first.1.y, second.0.x, second.0.y, second.1.x, second.1.y
        );
        for (control, point) in rest {
            write!(d, " S {:.1} {:.1}, {:.1} {:.1}", control.x, control.y, point.x, point.y).expect("writing to a String cannot fail");
        }
        let id = self.arrow_count;
        self.arrow_count += 1;
        let close = self.open_group(properties);
        write!(
            self.shapes,
            "<path id=\"edge{id}\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}{}{}/>{close}",
            paint(Some(look.line_color)),
            look.line_width,
            if dashed { " stroke-dasharray=\"5,5\"" } else { "" },
            if head.0 { " marker-start=\"url(#arrowtail)\"" } else { "" },
            if head.1 { " marker-end=\"url(#arrowhead)\"" } else { "" },
        )
        .expect("writing to a String cannot fail");
        if !text.is_empty() {
            writeln!(
                self.texts,
                "<text class=\"edge-label\"><textPath href=\"#edge{id}\" startOffset=\"50%\" text-anchor=\"middle\">{}</textPath></text>",
                xml_escape(text)
            )
            .expect("writing to a String cannot fail");
        }
    }

    fn create_clip(&mut self, xy: Point, size: Point, rounded_px: usize) -> ClipHandle {
        let handle = self.clip_count;
        self.clip_count += 1;
        writeln!(
            self.clips,
            "<clipPath id=\"clip{handle}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{rounded_px}\"/></clipPath>",
            xy.x, xy.y, size.x, size.y
        )
        .expect("writing to a String cannot fail");
        handle
    }
}
