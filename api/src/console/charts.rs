//! Charts drawn as SVG on the server: pure functions from figures to markup, no script.
//!
//! Every chart has a fixed `viewBox` and `width="100%"`, so it scales with the page; it is
//! `role="img"` and labelled by the caption of the [`figure`] that holds it, which also
//! carries the same figures as an HTML table. Colours have at least 3:1 contrast with the
//! white background (text at least 4.5:1). Numbers and dates follow the language: `1.234,5`
//! and `01/03` in Italian, `1,234.5` and `Mar 1` in English. Times are UTC.

use std::fmt::Write as _;

use super::i18n::Lang;

/// Drawing width and height (the `viewBox`).
const W: f64 = 640.0;
const H: f64 = 260.0;
/// The plot area inside the margins.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

/// Dark blue on white: 6.6:1.
pub const BLUE: &str = "#1f5fa8";
/// Dark orange on white: 4.6:1.
pub const ORANGE: &str = "#a65200";
/// Axis and tick text: 7:1.
const INK: &str = "#404040";
/// Grid lines (decoration only).
const GRID: &str = "#d9d9d9";

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An integer with thousands separators: `12.345` (it), `12,345` (en).
pub fn format_int(n: i64, lang: Lang) -> String {
    let digits = n.unsigned_abs().to_string();
    let sep = lang.pick(".", ",");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A number with `decimals` decimals: `1.234,5` (it), `1,234.5` (en).
pub fn format_number(value: f64, decimals: usize, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int: i64 = int.parse().unwrap_or(0);
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    let int = format_int(int, lang);
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}{}{frac}", lang.pick(",", ".")) }
}

/// A share as a percentage with one decimal: `75,0%` (it), `75.0%` (en); `–` for none.
pub fn format_percent(share: Option<f64>, lang: Lang) -> String {
    match share {
        Some(s) => format!("{}%", format_number(s * 100.0, 1, lang)),
        None => "–".into(),
    }
}

/// A day, short: `01/03` (it), `Mar 1` (en).
pub fn format_day(ms: i64, lang: Lang) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => match lang {
            Lang::It => t.format("%d/%m").to_string(),
            Lang::En => t.format("%b %-d").to_string(),
        },
        None => ms.to_string(),
    }
}

/// A date: `01/03/2026` (it), `2026-03-01` (en).
pub fn format_date(ms: i64, lang: Lang) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => match lang {
            Lang::It => t.format("%d/%m/%Y").to_string(),
            Lang::En => t.format("%Y-%m-%d").to_string(),
        },
        None => ms.to_string(),
    }
}

/// One series of a bar chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub color: &'static str,
}

/// Round tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten,
/// about four of them; whole numbers when `integers`.
pub fn ticks(max: f64, integers: bool) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let mut step = magnitude
        * if residual <= 1.0 {
            1.0
        } else if residual <= 2.0 {
            2.0
        } else if residual <= 5.0 {
            5.0
        } else {
            10.0
        };
    if integers {
        step = step.max(1.0).round();
    }
    let n = (max / step).ceil() as usize;
    (0..=n).map(|k| k as f64 * step).collect()
}

fn open_svg(out: &mut String, label_id: &str, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="{}" class="chart" font-family="sans-serif" font-size="12"><title>{}</title>"#,
        escape_html(label_id),
        escape_html(title)
    );
}

fn no_data(label_id: &str, title: &str, lang: Lang) -> String {
    let mut out = String::new();
    open_svg(&mut out, label_id, title);
    let _ = write!(
        out,
        r#"<rect x="0.5" y="0.5" width="{}" height="{}" fill="none" stroke="{GRID}"/><text x="{}" y="{}" text-anchor="middle" fill="{INK}" font-size="16" class="no-data">{}</text></svg>"#,
        W - 1.0,
        H - 1.0,
        W / 2.0,
        H / 2.0,
        lang.pick("Nessun dato nel periodo", "No data in the period")
    );
    out
}

/// The y axis: grid lines and tick labels for `ticks`; returns the scale (value → y).
fn y_axis(out: &mut String, ticks: &[f64], decimals: usize, lang: Lang) -> impl Fn(f64) -> f64 + use<> {
    let top = ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let scale = move |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    for &t in ticks {
        let y = scale(t);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{GRID}"/><text x="{}" y="{:.1}" text-anchor="end" fill="{INK}">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape_html(&format_number(t, decimals, lang))
        );
    }
    let _ = write!(out, r#"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="{INK}"/>"#, H - BOTTOM, W - RIGHT, H - BOTTOM);
    scale
}

/// X labels under slots of width `slot`, thinned to at most about ten.
fn x_labels(out: &mut String, labels: &[String], slot: f64) {
    let every = labels.len().div_ceil(10).max(1);
    for (i, label) in labels.iter().enumerate() {
        if i % every == 0 {
            let x = LEFT + slot * (i as f64 + 0.5);
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle" fill="{INK}">{}</text>"#,
                H - BOTTOM + 16.0,
                escape_html(label)
            );
        }
    }
}

fn legend(out: &mut String, series: &[Series]) {
    let mut x = LEFT;
    for s in series {
        let _ = write!(
            out,
            r#"<rect x="{x}" y="8" width="12" height="12" fill="{}"/><text x="{}" y="18" fill="{INK}">{}</text>"#,
            s.color,
            x + 16.0,
            escape_html(&s.name)
        );
        x += 24.0 + 7.0 * s.name.chars().count() as f64;
    }
}

/// A line with the area under it, one point per label (backlog over time).
pub fn area_chart(label_id: &str, title: &str, labels: &[String], values: &[f64], lang: Lang) -> String {
    if labels.is_empty() || values.len() != labels.len() {
        return no_data(label_id, title, lang);
    }
    let mut out = String::new();
    open_svg(&mut out, label_id, title);
    let max = values.iter().copied().fold(0.0, f64::max);
    let y = y_axis(&mut out, &ticks(max, true), 0, lang);
    let slot = (W - LEFT - RIGHT) / labels.len() as f64;
    let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, v)| (LEFT + slot * (i as f64 + 0.5), y(*v))).collect();
    let line: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    let _ = write!(
        out,
        r#"<polygon points="{first:.1},{base} {} {last:.1},{base}" fill="{BLUE}" fill-opacity="0.15"/><polyline points="{}" fill="none" stroke="{BLUE}" stroke-width="2.5" class="line"/>"#,
        line.join(" "),
        line.join(" "),
        base = H - BOTTOM
    );
    for (x, y) in &points {
        let _ = write!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{BLUE}" class="point"/>"#);
    }
    x_labels(&mut out, labels, slot);
    out.push_str("</svg>");
    out
}

/// Grouped bars, one group per label (throughput: started and closed per day). Each bar is a
/// `<rect class="bar">` with `data-value`.
pub fn bar_chart(label_id: &str, title: &str, labels: &[String], series: &[Series], lang: Lang) -> String {
    bars(label_id, title, labels, series, 0.2, lang)
}

/// Adjacent bars, one per bin (the time-to-decision histogram).
pub fn histogram(label_id: &str, title: &str, labels: &[String], counts: &[f64], lang: Lang) -> String {
    let series = [Series { name: String::new(), values: counts.to_vec(), color: BLUE }];
    bars(label_id, title, labels, &series, 0.04, lang)
}

fn bars(label_id: &str, title: &str, labels: &[String], series: &[Series], gap: f64, lang: Lang) -> String {
    if labels.is_empty() || series.is_empty() || series.iter().any(|s| s.values.len() != labels.len()) {
        return no_data(label_id, title, lang);
    }
    let mut out = String::new();
    open_svg(&mut out, label_id, title);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max);
    let y = y_axis(&mut out, &ticks(max, true), 0, lang);
    let slot = (W - LEFT - RIGHT) / labels.len() as f64;
    let width = slot * (1.0 - gap) / series.len() as f64;
    for (k, s) in series.iter().enumerate() {
        for (i, v) in s.values.iter().enumerate() {
            let x = LEFT + slot * i as f64 + slot * gap / 2.0 + width * k as f64;
            let top = y(v.max(0.0));
            let _ = write!(
                out,
                r#"<rect x="{x:.2}" y="{top:.2}" width="{width:.2}" height="{:.2}" fill="{}" class="bar" data-value="{v}"/>"#,
                H - BOTTOM - top,
                s.color
            );
        }
    }
    if series.len() > 1 || series.iter().any(|s| !s.name.is_empty()) {
        legend(&mut out, series);
    }
    x_labels(&mut out, labels, slot);
    out.push_str("</svg>");
    out
}

/// A horizontal meter for a share in [0, 1] with its percentage (`None`: no data).
pub fn share_bar(label_id: &str, title: &str, share: Option<f64>, lang: Lang) -> String {
    let Some(share) = share else {
        let mut out = String::new();
        open_svg_sized(&mut out, label_id, title, 40.0);
        let _ = write!(
            out,
            r#"<text x="0" y="26" fill="{INK}" font-size="16" class="no-data">{}</text></svg>"#,
            lang.pick("Nessun dato", "No data")
        );
        return out;
    };
    let share = share.clamp(0.0, 1.0);
    let mut out = String::new();
    open_svg_sized(&mut out, label_id, title, 40.0);
    let track = W - 100.0;
    let _ = write!(
        out,
        r#"<rect x="0.5" y="8.5" width="{track}" height="22" fill="white" stroke="{INK}"/><rect x="0.5" y="8.5" width="{:.2}" height="22" fill="{BLUE}" class="bar" data-value="{share}"/><text x="{}" y="25" fill="{INK}" font-size="16">{}</text></svg>"#,
        track * share,
        track + 10.0,
        escape_html(&format_percent(Some(share), lang))
    );
    out
}

fn open_svg_sized(out: &mut String, label_id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="100%" role="img" aria-labelledby="{}" class="chart meter" font-family="sans-serif" font-size="12"><title>{}</title>"#,
        escape_html(label_id),
        escape_html(title)
    );
}

/// A `<figure>`: the caption (`id`, which the chart is labelled by), the chart, and the same
/// figures as a table in a `<details>`. Header and cell texts are escaped here.
pub fn figure(id: &str, caption: &str, svg: &str, headers: &[String], rows: &[Vec<String>], lang: Lang) -> String {
    let mut out = String::new();
    let _ = write!(out, r#"<figure class="chart-figure"><figcaption id="{}">{}</figcaption>{svg}"#, escape_html(id), escape_html(caption));
    let _ = write!(
        out,
        r#"<details><summary>{}</summary><table class="compact"><caption>{}</caption><thead><tr>"#,
        lang.pick("Dati in tabella", "Data as a table"),
        escape_html(caption)
    );
    for h in headers {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, escape_html(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, r#"<th scope="row">{}</th>"#, escape_html(cell));
            } else {
                let _ = write!(out, "<td>{}</td>", escape_html(cell));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details></figure>");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that `xml` is well formed enough for a browser's XML parser: tags nest and
    /// close, attributes are quoted, and `&` starts an entity. Returns the tag names opened.
    pub(crate) fn check_xml(xml: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut opened = Vec::new();
        let mut rest = xml;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt]);
            let end = rest[lt..].find('>').expect("an unclosed tag") + lt;
            let tag = &rest[lt + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}> in {xml}");
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().expect("a tag name").to_string();
                let attrs = &body[name.len()..];
                assert_eq!(attrs.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
                check_text(attrs);
                assert!(!attrs.contains('<'), "`<` inside <{tag}>");
                opened.push(name.clone());
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed tags {stack:?}");
        opened
    }

    fn check_text(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| entity.starts_with(e)), "bare `&` in {text}");
        }
    }

    fn attr_values(svg: &str, class: &str, attr: &str) -> Vec<f64> {
        svg.split('<')
            .filter(|t| t.contains(&format!("class=\"{class}\"")))
            .map(|t| {
                let start = t.find(&format!(" {attr}=\"")).expect("the attribute") + attr.len() + 3;
                t[start..start + t[start..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn numbers_and_dates_follow_the_language() {
        assert_eq!(format_int(1_234_567, Lang::It), "1.234.567");
        assert_eq!(format_int(1_234_567, Lang::En), "1,234,567");
        assert_eq!(format_int(-999, Lang::It), "-999");
        assert_eq!(format_number(1234.56, 1, Lang::It), "1.234,6");
        assert_eq!(format_number(1234.56, 1, Lang::En), "1,234.6");
        assert_eq!(format_percent(Some(0.75), Lang::It), "75,0%");
        assert_eq!(format_percent(Some(0.75), Lang::En), "75.0%");
        assert_eq!(format_percent(None, Lang::En), "–");
        // 2026-03-01T09:00:00Z
        assert_eq!(format_day(1_772_355_600_000, Lang::It), "01/03");
        assert_eq!(format_day(1_772_355_600_000, Lang::En), "Mar 1");
        assert_eq!(format_date(1_772_355_600_000, Lang::It), "01/03/2026");
    }

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(ticks(7.0, true), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(ticks(0.0, true), [0.0, 1.0]);
        assert_eq!(ticks(2.0, true), [0.0, 1.0, 2.0]);
        assert_eq!(ticks(1234.0, true), [0.0, 500.0, 1000.0, 1500.0]);
    }

    #[test]
    fn bars_are_proportional_to_their_values() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let series = [
            Series { name: "Avviate".into(), values: vec![2.0, 4.0, 0.0], color: BLUE },
            Series { name: "Chiuse".into(), values: vec![1.0, 3.0, 4.0], color: ORANGE },
        ];
        let svg = bar_chart("cap", "Throughput", &labels, &series, Lang::It);
        let tags = check_xml(&svg);
        assert_eq!(tags.iter().filter(|t| *t == "rect").count(), 6 + 2, "six bars and two legend swatches");
        let heights = attr_values(&svg, "bar", "height");
        let values = attr_values(&svg, "bar", "data-value");
        assert_eq!(values, [2.0, 4.0, 0.0, 1.0, 3.0, 4.0]);
        let unit = heights[1] / 4.0;
        for (h, v) in heights.iter().zip(&values) {
            assert!((h - v * unit).abs() < 0.05, "height {h} for value {v}");
        }
        assert!(svg.contains(r#"role="img""#) && svg.contains(r#"aria-labelledby="cap""#));
        assert!(svg.contains(r#"width="100%""#) && svg.contains("viewBox"));
    }

    #[test]
    fn histogram_and_area_chart_are_well_formed() {
        let labels: Vec<String> = (0..30).map(|d| format!("{d}–{}", d + 1)).collect();
        let counts: Vec<f64> = (0..30).map(|d| f64::from(d % 7)).collect();
        let svg = histogram("h", "Tempo <decisione> & \"altro\"", &labels, &counts, Lang::It);
        check_xml(&svg);
        assert!(svg.contains("Tempo &lt;decisione&gt; &amp; &quot;altro&quot;"), "the title is escaped");
        assert_eq!(attr_values(&svg, "bar", "data-value").len(), 30);
        let area = area_chart("b", "Arretrato", &labels, &counts, Lang::En);
        check_xml(&area);
        assert_eq!(area.matches("class=\"point\"").count(), 30);
        // Thinned x labels: at most about ten.
        assert!(area.matches("text-anchor=\"middle\"").count() <= 11);
    }

    #[test]
    fn empty_data_says_so() {
        let svg = bar_chart("x", "Throughput", &[], &[], Lang::En);
        check_xml(&svg);
        assert!(svg.contains("No data in the period"));
        let svg = area_chart("x", "Arretrato", &[], &[], Lang::It);
        assert!(svg.contains("Nessun dato nel periodo"));
        let meter = share_bar("x", "Automazione", None, Lang::It);
        check_xml(&meter);
        assert!(meter.contains("Nessun dato"));
    }

    #[test]
    fn share_bar_fills_its_share() {
        let svg = share_bar("m", "Entro il termine", Some(0.75), Lang::It);
        check_xml(&svg);
        assert!(svg.contains("75,0%"));
        let width = attr_values(&svg, "bar", "width")[0];
        assert!((width - 0.75 * (W - 100.0)).abs() < 0.01);
    }

    #[test]
    fn figures_carry_a_caption_and_a_table() {
        let html = figure(
            "f1",
            "Arretrato <per giorno>",
            "<svg></svg>",
            &["Giorno".into(), "Casi".into()],
            &[vec!["01/03".into(), "2".into()]],
            Lang::It,
        );
        check_xml(&html);
        assert!(html.contains(r#"<figcaption id="f1">Arretrato &lt;per giorno&gt;</figcaption>"#));
        assert!(html.contains(r#"<th scope="row">01/03</th><td>2</td>"#));
        assert!(html.contains("<details><summary>Dati in tabella</summary>"));
    }
}
