//! Server-side charts for the status page: a timeline (one point per batch) and a histogram
//! of the same values, as inline SVG, so the page needs no script and no network.

use std::fmt::Write;

const WIDTH: f64 = 440.0;
const HEIGHT: f64 = 140.0;
const LEFT: f64 = 52.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 8.0;

/// HTML-escapes text for the page and its charts.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// A short number for axis labels.
pub(crate) fn short(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A timeline of `points` (x: batch time ms, y: value) with an optional dashed threshold
/// (the batch interval on the processing time chart). Each point is a `circle` with a
/// `title` giving its batch and value.
pub(crate) fn timeline(
    id: &str,
    unit: &str,
    points: &[(u64, f64)],
    threshold: Option<f64>,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="timeline" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">"#
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max_y = points
        .iter()
        .map(|p| p.1)
        .chain(threshold)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let (x0, x1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.0, b.0.max(a.0 + 1)),
        _ => (0, 1),
    };
    let x = |t: u64| LEFT + (t - x0) as f64 / (x1 - x0) as f64 * plot_w;
    let y = |v: f64| TOP + plot_h - v / max_y * plot_h;
    axes(&mut s, max_y / 1.1, max_y, unit);
    if let Some(t) = threshold {
        let _ = write!(
            s,
            r##"<line class="threshold" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
            WIDTH - RIGHT,
            y = y(t)
        );
    }
    if points.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#888">no completed batch yet</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    } else {
        let line: Vec<String> = points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
            line.join(" ")
        );
        for &(t, v) in points {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f77b4" data-batch="{t}" data-value="{v}"><title>batch {t}: {} {unit}</title></circle>"##,
                x(t),
                y(v),
                short(v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The axes, with `label` (the largest value) at its height on a scale up to `scale`.
fn axes(s: &mut String, label: f64, scale: f64, unit: &str) {
    let bottom = HEIGHT - BOTTOM;
    let label_y = TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - label / scale) + 4.0;
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}" stroke="#555"/><line x1="{LEFT}" x2="{}" y1="{bottom}" y2="{bottom}" stroke="#555"/><text x="{}" y="{}" text-anchor="end" font-size="10">{}</text><text x="{}" y="{bottom}" text-anchor="end" font-size="10">0</text><text x="{}" y="{}" font-size="10" fill="#555">{}</text>"##,
        WIDTH - RIGHT,
        LEFT - 4.0,
        label_y,
        short(label),
        LEFT - 4.0,
        LEFT + 4.0,
        HEIGHT - 4.0,
        esc(unit)
    );
}

/// A histogram of `values` in ten bins; each bar is a `rect` with a `title` giving its range
/// and count.
pub(crate) fn histogram(id: &str, unit: &str, values: &[f64]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="histogram" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">"#
    );
    const BINS: usize = 10;
    let max_v = values.iter().copied().fold(0.0_f64, f64::max);
    let width = if max_v > 0.0 {
        max_v / BINS as f64
    } else {
        1.0
    };
    let mut counts = [0u64; BINS];
    for v in values {
        let i = ((v / width) as usize).min(BINS - 1);
        counts[i] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let top = most * 1.1;
    axes(&mut s, most, top, "batches");
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar = plot_w / BINS as f64;
    for (i, &c) in counts.iter().enumerate() {
        let h = c as f64 / top * plot_h;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#2ca02c" data-count="{c}"><title>{} to {} {}: {c} batches</title></rect>"##,
            LEFT + i as f64 * bar + 1.0,
            TOP + plot_h - h,
            bar - 2.0,
            short(i as f64 * width),
            short((i + 1) as f64 * width),
            esc(unit)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end" font-size="10">{} {}</text>"#,
        WIDTH - RIGHT,
        HEIGHT - 4.0,
        short(max_v),
        esc(unit)
    );
    s.push_str("</svg>");
    s
}
