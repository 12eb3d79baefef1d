//! Charts as SVG text for the self-contained HTML report, drawn with
//! plotters' SVG backend (`draw`). This file chooses what is drawn: the
//! domains and ticks (whole numbers, percentiles as "nines", powers of ten),
//! the runs of each series between gaps, and the legend's rows. The chart
//! says what it drew: the plot rectangle, the axes' domains and the legend's
//! box are data attributes on the `<svg>` (`data-plot`, `data-x-min`...,
//! `data-legend`), and each series' segments are polylines with
//! `class="series" data-series="NAME"`. Tests read a chart back from those.

mod draw;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    /// (x, y) points in x order. A non-finite point (or, on a log axis, a
    /// y at or below 0) is left out and breaks the line there.
    pub points: Vec<(f64, f64)>,
    /// The widest x step drawn as a line: consecutive points further apart
    /// start a new segment, so a gap in the data (a missed scrape) stays a
    /// gap instead of becoming a straight ramp. None: no limit.
    #[serde(default)]
    pub gap: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XScale {
    #[default]
    Linear,
    /// Percentile axis: x = log10(1 / (1 - p)); labels 50%, 90%, 99%, 99.9%...
    Nines,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum YScale {
    #[default]
    Linear,
    /// Powers of ten: latencies from 1 ms to 10 s on one panel.
    Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineChart {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub x_label: String,
    #[serde(default)]
    pub y_label: String,
    pub series: Vec<Series>,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default)]
    pub x_scale: XScale,
    #[serde(default)]
    pub y_scale: YScale,
    /// The x domain (a run's window for a time chart): points outside it are
    /// left out. Unset: the data's extent.
    #[serde(default)]
    pub x_min: Option<f64>,
    #[serde(default)]
    pub x_max: Option<f64>,
    /// The y domain (0 and 1 for a fraction). Data beyond it widens it: a
    /// chart never hides a value. Unset: 0 (or the data's least) to the
    /// data's greatest, on round ticks.
    #[serde(default)]
    pub y_min: Option<f64>,
    #[serde(default)]
    pub y_max: Option<f64>,
    /// An `id` attribute for the <svg> element (tests and CSS find charts by it).
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarChart {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub y_label: String,
    pub bars: Vec<(String, f64)>,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default)]
    pub id: Option<String>,
}

fn default_width() -> u32 {
    660
}
fn default_height() -> u32 {
    360
}

const COLORS: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/// A sans-serif character's mean advance, as a fraction of the font size:
/// enough to size label areas and lay the legend out without fonts.
const CHAR_EM: f64 = 0.6;
/// The legend's font size, row height and swatch width (px).
const TICK_PX: f64 = 12.5;
const LEGEND_ROW: f64 = 18.0;
const SWATCH: f64 = 18.0;

/// Percentile (0-100) to the "nines" axis.
pub fn nines(p: f64) -> f64 {
    let q = (1.0 - p / 100.0).max(1e-7);
    -q.log10()
}

fn nines_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Text for SVG: the XML specials as entities (titles and series names may
/// come from a result file).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn text_width(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * px * CHAR_EM
}

/// A number for an attribute or a path: short, and never `NaN`.
fn n(v: f64) -> String {
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A tick label: whole numbers without `.0`; otherwise as many decimals as
/// the tick step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    if (v - v.round()).abs() < 1e-9 * step.abs().max(1.0) {
        return format!("{}", v.round() as i64);
    }
    let decimals = if step > 0.0 { (-step.log10().floor()).clamp(0.0, 9.0) as usize + 1 } else { 2 };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// The multiples of `step` within [lo, hi].
fn ticks_in(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// One axis: its domain and its ticks (value, label).
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
    log: bool,
}

impl Axis {
    /// A linear axis over [lo, hi] with round ticks; `widen` moves the ends
    /// out to ticks (an automatic y axis), otherwise they stay (a run window).
    fn linear(lo: f64, hi: f64, widen: bool) -> Axis {
        let (mut lo, mut hi) = (lo, hi);
        if hi - lo < 1e-12 {
            let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
            if lo == 0.0 {
                hi += pad;
            } else {
                lo -= pad;
                hi += pad;
            }
        }
        let step = nice_step(hi - lo, 5.0);
        if widen {
            // Out to the next tick, but not past a tick the end already sits on.
            lo = (lo / step + 1e-9).floor() * step;
            hi = (hi / step - 1e-9).ceil() * step;
        }
        let ticks = ticks_in(lo, hi, step).into_iter().map(|v| (v, tick_label(v, step))).collect();
        Axis { lo, hi, ticks, log: false }
    }

    /// Whole powers of ten around [lo, hi] (lo > 0), with 2 and 5 between
    /// them when there are few decades.
    fn log(lo: f64, hi: f64) -> Axis {
        let a = lo.log10().floor();
        let b = hi.log10().ceil().max(a + 1.0);
        let (lo, hi) = (10f64.powf(a), 10f64.powf(b));
        let mut ticks = Vec::new();
        for e in a as i32..=b as i32 {
            let p = 10f64.powi(e);
            let mults: &[f64] = if b - a <= 2.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            for m in mults {
                let v = m * p;
                if v <= hi * (1.0 + 1e-9) {
                    ticks.push((v, tick_label(v, p)));
                }
            }
        }
        Axis { lo, hi, ticks, log: true }
    }

    /// The percentile axis: from 0 (p0) to whole nines, ticks at 0%, 50%,
    /// 90%, 99%, 99.9%...
    fn nines(hi: f64) -> Axis {
        // nines(99.9) is 3.0000000000000004: not a reason for a fourth nine.
        let hi = (hi - 1e-9).ceil().max(1.0);
        let mut ticks = vec![(0.0, "0%".to_string()), (nines(50.0), "50%".to_string())];
        for k in 1..=hi as i32 {
            ticks.push((k as f64, nines_label(k as f64)));
        }
        Axis { lo: 0.0, hi, ticks, log: false }
    }
}

/// The drawable runs of each series: points in the x domain, finite (and
/// positive on a log y axis), split where x jumps by more than its `gap`.
fn segments(s: &Series, x: (f64, f64), log_y: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for &(px, py) in &s.points {
        let ok = px.is_finite() && py.is_finite() && !(log_y && py <= 0.0);
        if !ok {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if px < x.0 - 1e-9 || px > x.1 + 1e-9 {
            continue;
        }
        if let (Some(g), Some(last)) = (s.gap, cur.last())
            && px - last.0 > g
        {
            out.push(std::mem::take(&mut cur));
        }
        cur.push((px, py));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The legend laid out in rows below the plot: (name, x, row) per item, and
/// the number of rows.
fn legend_layout(names: &[&str], x0: f64, width: f64) -> (Vec<(usize, f64, usize)>, usize) {
    let mut items = Vec::new();
    let (mut x, mut row) = (x0, 0);
    for (i, name) in names.iter().enumerate() {
        let w = SWATCH + 6.0 + text_width(name, TICK_PX) + 18.0;
        if x > x0 && x + w > x0 + width {
            x = x0;
            row += 1;
        }
        items.push((i, x, row));
        x += w;
    }
    (items, if names.is_empty() { 0 } else { row + 1 })
}

fn check_domain(what: &str, lo: Option<f64>, hi: Option<f64>) -> Result<(), String> {
    for (name, v) in [(format!("{what}_min"), lo), (format!("{what}_max"), hi)] {
        if let Some(v) = v
            && !v.is_finite()
        {
            return Err(format!("{name}: expected a finite number, got {v}"));
        }
    }
    if let (Some(a), Some(b)) = (lo, hi)
        && a >= b
    {
        return Err(format!("{what}_min ({a}) must be below {what}_max ({b})"));
    }
    Ok(())
}

fn check_size(w: u32, h: u32) -> Result<(), String> {
    if !(160..=4000).contains(&w) || !(120..=4000).contains(&h) {
        return Err(format!("width and height: expected 160-4000 and 120-4000 pixels, got {w} x {h}"));
    }
    Ok(())
}

/// The x domain: the chart's own, else the data's extent.
fn x_domain(c: &LineChart) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in &c.series {
        for &(x, y) in &s.points {
            if x.is_finite() && y.is_finite() {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
    }
    let lo = c.x_min.unwrap_or(lo);
    let hi = c.x_max.unwrap_or(hi);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

pub fn line_chart(c: &LineChart) -> Result<String, String> {
    check_size(c.width, c.height)?;
    check_domain("x", c.x_min, c.x_max)?;
    check_domain("y", c.y_min, c.y_max)?;
    let log_y = c.y_scale == YScale::Log;
    let xd = x_domain(c).unwrap_or((0.0, 1.0));
    let segs: Vec<Vec<Vec<(f64, f64)>>> = c.series.iter().map(|s| segments(s, xd, log_y)).collect();
    let ys = segs.iter().flatten().flatten().map(|p| p.1);
    let (mut ylo, mut yhi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if ylo > yhi {
        // Nothing to draw: say so rather than draw axes with nothing on them.
        return draw::empty(c);
    }
    let x = match c.x_scale {
        XScale::Nines => Axis::nines(xd.1),
        XScale::Linear => Axis::linear(xd.0, xd.1, c.x_min.is_none() && c.x_max.is_none()),
    };
    let y = if log_y {
        Axis::log(c.y_min.filter(|v| *v > 0.0).map_or(ylo, |v| v.min(ylo)), c.y_max.map_or(yhi, |v| v.max(yhi)))
    } else {
        ylo = c.y_min.map_or(ylo.min(0.0), |v| v.min(ylo));
        yhi = c.y_max.map_or(yhi, |v| v.max(yhi));
        let fixed =
            c.y_min.is_some() && c.y_max.is_some() && ylo >= c.y_min.unwrap_or(0.0) && yhi <= c.y_max.unwrap_or(0.0);
        Axis::linear(ylo, yhi, !fixed)
    };
    draw::line_chart(c, &x, &y, &segs)
}

pub fn bar_chart(c: &BarChart) -> Result<String, String> {
    check_size(c.width, c.height)?;
    let top = c.bars.iter().map(|b| b.1).filter(|v| v.is_finite()).fold(0.0, f64::max);
    draw::bar_chart(c, &Axis::linear(0.0, top.max(1.0), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> LineChart {
        LineChart {
            title: "T".into(),
            x_label: "seconds".into(),
            y_label: "requests".into(),
            series,
            width: 400,
            height: 300,
            x_scale: XScale::Linear,
            y_scale: YScale::Linear,
            x_min: None,
            x_max: None,
            y_min: None,
            y_max: None,
            id: Some("c".into()),
        }
    }

    fn attr<'a>(svg: &'a str, name: &str) -> &'a str {
        let at = svg.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {svg}")) + name.len() + 3;
        &svg[at..at + svg[at..].find('"').unwrap()]
    }

    /// Every text's content (plotters puts it on a line of its own).
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text").skip(1).map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim()).collect()
    }

    /// The labels of the ticks on one axis ("x-tick" or "y-tick").
    fn ticks<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let tag = format!("<text class=\"{class}\"");
        svg.match_indices(&tag).map(|(i, _)| texts(&svg[i..])[0]).collect()
    }

    fn nums(s: &str) -> Vec<f64> {
        s.split_whitespace().map(|v| v.parse().unwrap()).collect()
    }

    /// The points of every series segment (one polyline each), in pixels.
    fn segs(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.match_indices("<polyline class=\"series\"")
            .map(|(i, _)| {
                let pts = attr(&svg[i..], "points");
                nums(&pts.replace(',', " ")).chunks(2).map(|p| (p[0], p[1])).collect()
            })
            .collect()
    }

    fn lens(svg: &str) -> Vec<usize> {
        segs(svg).iter().map(Vec::len).collect()
    }

    #[test]
    fn line_and_bar_svgs() {
        let c = LineChart {
            title: "TTFT <p50>".into(),
            x_label: "percentile".into(),
            y_label: "ms".into(),
            x_scale: XScale::Nines,
            ..chart(vec![Series {
                name: "run a".into(),
                points: vec![(nines(50.0), 1.0), (nines(99.0), 5.0), (nines(99.9), 9.0)],
                gap: None,
            }])
        };
        let svg = line_chart(&c).unwrap();
        assert!(svg.starts_with("<svg id=\"c\""), "{}", &svg[..60]);
        assert!(svg.contains("TTFT &lt;p50&gt;"), "the title is escaped");
        assert_eq!(ticks(&svg, "x-tick"), ["0%", "50%", "90%", "99%", "99.9%"], "{svg}");
        assert_eq!(segs(&svg).len(), 1);
        assert!(svg.contains("data-series=\"run a\""));
        let b = bar_chart(&BarChart {
            title: "errors".into(),
            y_label: "n".into(),
            bars: vec![("connect".into(), 2.0), ("timeout".into(), 0.0)],
            width: 300,
            height: 200,
            id: None,
        })
        .unwrap();
        assert_eq!(b.matches("<rect class=\"bar\"").count(), 2, "{b}");
        assert!(b.contains("data-value=\"2\""), "{b}");
        assert_eq!(ticks(&b, "x-tick"), ["connect", "timeout"], "{b}");
        let empty = line_chart(&LineChart { series: vec![], ..c }).unwrap();
        assert!(empty.contains("no data"));
        assert_eq!(nines_label(nines(99.9)), "99.9%");
    }

    #[test]
    fn a_gap_breaks_the_line() {
        let pts = vec![
            (0.0, 1.0),
            (1.0, 2.0),
            (2.0, 3.0),
            (10.0, 4.0),
            (11.0, 5.0),
            (12.0, f64::NAN),
            (13.0, 1.0),
            (14.0, 2.0),
        ];
        let svg = line_chart(&chart(vec![Series { name: "s".into(), points: pts.clone(), gap: Some(1.5) }])).unwrap();
        // 0-2, then 10-11 (8 s later), then 13-14 (after the NaN).
        assert_eq!(lens(&svg), vec![3, 2, 2], "{svg}");
        // Without a gap only the non-finite point breaks it.
        let svg = line_chart(&chart(vec![Series { name: "s".into(), points: pts, gap: None }])).unwrap();
        assert_eq!(lens(&svg), vec![5, 2]);
        // A lone point between gaps is still shown.
        let svg = line_chart(&chart(vec![Series {
            name: "s".into(),
            points: vec![(0.0, 1.0), (1.0, 1.0), (9.0, 2.0)],
            gap: Some(1.5),
        }]))
        .unwrap();
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 1);
    }

    #[test]
    fn every_series_is_tagged_by_name() {
        // More series than colours: the tags follow the drawing order, not the colour.
        let series: Vec<Series> = (0..10)
            .map(|i| Series { name: format!("s{i}"), points: vec![(0.0, i as f64), (1.0, i as f64 + 1.0)], gap: None })
            .collect();
        let svg = line_chart(&chart(series)).unwrap();
        let names: Vec<&str> =
            svg.match_indices("<polyline class=\"series\"").map(|(i, _)| attr(&svg[i..], "data-series")).collect();
        let want: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        assert_eq!(names, want);
        assert_eq!(segs(&svg).iter().map(Vec::len).sum::<usize>(), 20);
    }

    #[test]
    fn integer_ticks_have_no_decimals() {
        assert_eq!(tick_label(20.0, 5.0), "20");
        assert_eq!(tick_label(1.0, 0.2), "1");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        let svg = line_chart(&chart(vec![Series {
            name: "".into(),
            points: vec![(0.0, 0.0), (7.0, 19.0), (14.0, 20.0)],
            gap: None,
        }]))
        .unwrap();
        let labels = ticks(&svg, "y-tick");
        assert_eq!(labels, ["0", "5", "10", "15", "20"], "{svg}");
        let labels = texts(&svg);
        assert!(!labels.iter().any(|l| l.ends_with(".0")), "{labels:?}");
        // Counts start at 0, not at a tick below it, and end on the tick at their top.
        assert_eq!((attr(&svg, "data-y-min"), attr(&svg, "data-y-max")), ("0", "20"));
        // One unnamed series: no legend.
        assert!(!svg.contains("data-legend"));
    }

    #[test]
    fn domains_fit_the_data() {
        // A fraction: y in [0, 1] even with small values; x the run window,
        // and a point outside it is left out.
        let c = LineChart {
            x_min: Some(0.0),
            x_max: Some(15.0),
            y_min: Some(0.0),
            y_max: Some(1.0),
            ..chart(vec![Series {
                name: "hit rate".into(),
                points: vec![(-2.0, 0.1), (0.0, 0.2), (7.0, 0.3), (15.0, 0.3), (29.0, 0.9)],
                gap: None,
            }])
        };
        let svg = line_chart(&c).unwrap();
        assert_eq!((attr(&svg, "data-y-min"), attr(&svg, "data-y-max")), ("0", "1"));
        assert_eq!((attr(&svg, "data-x-min"), attr(&svg, "data-x-max")), ("0", "15"));
        let plot = nums(attr(&svg, "data-plot"));
        assert_eq!(lens(&svg), vec![3], "two points outside the window are dropped: {svg}");
        for xy in segs(&svg).concat() {
            assert!(xy.0 >= plot[0] - 0.01 && xy.0 <= plot[2] + 0.01, "{xy:?} outside {plot:?}");
            assert!(xy.1 >= plot[1] - 0.01 && xy.1 <= plot[3] + 0.01, "{xy:?} outside {plot:?}");
        }
        // The window's ends are the plot's edges.
        let ends = (segs(&svg)[0][0].0, segs(&svg)[0][2].0);
        assert!((ends.0 - plot[0]).abs() < 0.01 && (ends.1 - plot[2]).abs() < 0.01, "{ends:?} vs {plot:?}");
        // The legend sits below the plot area, not over it.
        let legend = nums(attr(&svg, "data-legend"));
        assert!(legend[1] > plot[3], "legend {legend:?} overlaps plot {plot:?}");
        // Bad domains are refused with the field named.
        let e = line_chart(&LineChart { y_min: Some(1.0), y_max: Some(0.0), ..c.clone() }).unwrap_err();
        assert!(e.contains("y_min") && e.contains("y_max"), "{e}");
    }

    #[test]
    fn log_axis() {
        let c = LineChart {
            y_scale: YScale::Log,
            ..chart(vec![Series {
                name: "ITL".into(),
                points: vec![(0.0, 0.0), (1.0, 3.0), (2.0, 40.0), (3.0, 900.0)],
                gap: None,
            }])
        };
        let svg = line_chart(&c).unwrap();
        assert_eq!((attr(&svg, "data-y-min"), attr(&svg, "data-y-max")), ("1", "1000"));
        assert_eq!(ticks(&svg, "y-tick"), ["1", "10", "100", "1000"], "{svg}");
        // The zero is left out on a log axis (and breaks nothing before it).
        assert_eq!(lens(&svg), vec![3]);
    }
}
