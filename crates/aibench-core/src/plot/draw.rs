//! The drawing, on plotters' SVG backend: plotters lays out and draws the
//! chart (mesh, ticks, axis descriptions, lines, bars) on the axes and runs
//! of points that `mod.rs` chose; this file puts the ticks where those axes
//! say, the legend in a band of its own below the plot, and then says in the
//! SVG what was drawn:
//! data attributes on the root `<svg>` and classes on the series' polylines,
//! points, bars and tick labels, added to plotters' output without changing it
//! otherwise. Tests read a chart back from those.

use super::{Axis, BarChart, COLORS, LEGEND_ROW, LineChart, SWATCH, TICK_PX, XScale, YScale, n, tick_label, xml};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// Font sizes as plotters takes them: it writes a whole size divided by
/// 1.24 into the SVG, so these come out as 16.1, 13.7 and 12.1 px (none
/// under 12).
const TITLE_FONT: f64 = 20.0;
const DESC_FONT: f64 = 17.0;
const TICK_FONT: f64 = 15.0;

fn font(size: f64) -> (&'static str, f64) {
    ("sans-serif", size)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn rgb(hex: &str) -> RGBColor {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    RGBColor(c(1), c(3), c(5))
}

fn color(i: usize) -> RGBColor {
    rgb(COLORS[i % COLORS.len()])
}

/// An axis whose ticks are where `Axis` put them (plotters' own key points
/// are round too, but not always the ones the domain was widened to).
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ticked<R> {
    fn new(inner: R, axis: &Axis) -> Self {
        Ticked { inner, ticks: axis.ticks.iter().map(|t| t.0).collect() }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(v, limit)
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // The ticks are the grid's bold lines; no light lines between them.
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }
    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// What the tagging pass expects to meet, in drawing order: a series' line
/// segment (a polyline of width 2) or its lone point (a circle).
enum Mark<'a> {
    Line(&'a str),
    Point(&'a str),
}

/// The data attributes of the root `<svg>`, and the id: inserted into
/// plotters' opening tag.
fn root_attrs(svg: String, id: &Option<String>, attrs: &str) -> String {
    let id = match id {
        Some(id) if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => format!("id=\"{id}\" "),
        _ => String::new(),
    };
    svg.replacen("<svg ", &format!("<svg {id}class=\"chart\" font-family=\"sans-serif\"{attrs} "), 1)
}

/// A numeric attribute of one tag (plotters writes integers for positions).
fn tag_num(tag: &str, name: &str) -> Option<f64> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[at..at + tag[at..].find('"')?].parse().ok()
}

/// Classes for what a test or a style sheet looks for, added to plotters'
/// tags (each on its own line): the series' polylines and points in the
/// order they were drawn, bars (the only rects at 0.8 opacity) with their
/// value, and tick labels (centred below the plot for x, right-aligned left
/// of it for y, and reading one of the axis' labels).
fn tag_marks(
    svg: &str,
    marks: &[Mark],
    bars: &[f64],
    plot: (f64, f64, f64, f64),
    x_labels: &[String],
    y_labels: &[String],
) -> String {
    let mut out = String::with_capacity(svg.len() + 64 * marks.len());
    let (mut marks, mut bars) = (marks.iter(), bars.iter());
    let mut lines = svg.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let mut extra = String::new();
        if line.starts_with("<polyline ") && line.contains(" stroke-width=\"2\"") {
            if let Some(Mark::Line(name)) = marks.next() {
                extra = format!(" class=\"series\" data-series=\"{}\"", xml(name));
            }
        } else if line.starts_with("<circle ") {
            if let Some(Mark::Point(name)) = marks.next() {
                extra = format!(" class=\"point\" data-series=\"{}\"", xml(name));
            }
        } else if line.starts_with("<rect ") && line.contains(" opacity=\"0.8\"") {
            if let Some(v) = bars.next() {
                extra = format!(" class=\"bar\" data-value=\"{}\"", n(*v));
            }
        } else if line.starts_with("<text ") {
            let content = lines.peek().map(|l| l.trim_end().trim_end_matches("</text>")).unwrap_or("");
            let is = |labels: &[String]| labels.iter().any(|l| xml(l) == content);
            let (x, y) = (tag_num(line, "x").unwrap_or(0.0), tag_num(line, "y").unwrap_or(0.0));
            if line.contains("text-anchor=\"middle\"") && y >= plot.3 && is(x_labels) {
                extra = " class=\"x-tick\"".into();
            } else if line.contains("text-anchor=\"end\"") && x <= plot.0 && is(y_labels) {
                extra = " class=\"y-tick\"".into();
            }
        }
        match line.find(' ') {
            Some(at) if !extra.is_empty() => {
                out.push_str(&line[..at]);
                out.push_str(&extra);
                out.push_str(&line[at..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// The y label area's width: the longest tick label, a gap and the rotated description.
fn y_area(ticks: &[(f64, String)]) -> u32 {
    let chars = ticks.iter().map(|t| t.1.chars().count()).max().unwrap_or(1);
    (chars as f64 * TICK_PX * super::CHAR_EM + 10.0 + 14.0 + 12.0).ceil() as u32
}

/// The x label area's height: tick labels and the description under them.
const X_AREA: u32 = 42;

/// An axis' label for a tick value: its own label where it is one of the
/// ticks, else a plain number.
fn label_of(ticks: &[(f64, String)], v: f64) -> String {
    ticks
        .iter()
        .find(|t| (t.0 - v).abs() <= 1e-9 * t.0.abs().max(1.0))
        .map_or_else(|| tick_label(v, 1.0), |t| t.1.clone())
}

/// A line chart with nothing to draw: its title and "no data".
pub(super) fn empty(c: &LineChart) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (c.width, c.height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mid = c.width as i32 / 2;
        let center = |px| {
            TextStyle::from(font(px)).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ))
        };
        if !c.title.is_empty() {
            root.draw(&Text::new(c.title.as_str(), (mid, 20), center(TITLE_FONT))).map_err(err)?;
        }
        root.draw(&Text::new("no data", (mid, c.height as i32 / 2), center(TITLE_FONT))).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(root_attrs(buf, &c.id, " data-empty=\"true\""))
}

/// The legend, in rows in its band: a swatch and the name per series.
/// Returns its box in the band's pixels.
fn legend(
    band: &DrawingArea<SVGBackend, Shift>,
    names: &[&str],
    items: &[(usize, f64, usize)],
) -> Result<(f64, f64), String> {
    let mut right = 0.0f64;
    for &(i, x, row) in items {
        let cy = 4 + (row as f64 * LEGEND_ROW + LEGEND_ROW / 2.0) as i32;
        let x = x as i32;
        band.draw(&Rectangle::new([(x, cy - 1), (x + SWATCH as i32, cy + 2)], color(i).filled())).map_err(err)?;
        let style = TextStyle::from(font(TICK_FONT)).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        band.draw(&Text::new(names[i], (x + SWATCH as i32 + 6, cy), style)).map_err(err)?;
        right = right.max(x as f64 + SWATCH + 6.0 + super::text_width(names[i], TICK_PX));
    }
    Ok((items.iter().map(|t| t.1).fold(f64::INFINITY, f64::min), right))
}

/// The plot itself on `area`: mesh, ticks and the series' segments. Returns
/// the plot rectangle (left, top, right, bottom) in pixels.
#[allow(clippy::too_many_arguments)]
fn lines<Y: Ranged<ValueType = f64>>(
    area: &DrawingArea<SVGBackend, Shift>,
    c: &LineChart,
    x: &Axis,
    y: &Axis,
    y_spec: Ticked<Y>,
    segs: &[Vec<Vec<(f64, f64)>>],
) -> Result<(f64, f64, f64, f64), String> {
    let mut b = ChartBuilder::on(area);
    b.margin(10).margin_right(24).x_label_area_size(X_AREA).y_label_area_size(y_area(&y.ticks));
    if !c.title.is_empty() {
        b.caption(&c.title, font(TITLE_FONT));
    }
    let x_spec = Ticked::new(RangedCoordf64::from(x.lo..x.hi), x);
    let mut chart = b.build_cartesian_2d(x_spec, y_spec).map_err(err)?;
    let fmt_x = |v: &f64| label_of(&x.ticks, *v);
    let fmt_y = |v: &f64| label_of(&y.ticks, *v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(RGBColor(235, 235, 235))
        .axis_style(RGBColor(85, 85, 85))
        .label_style(font(TICK_FONT))
        .axis_desc_style(font(DESC_FONT))
        .x_labels(x.ticks.len())
        .y_labels(y.ticks.len())
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y);
    if !c.x_label.is_empty() {
        mesh.x_desc(c.x_label.as_str());
    }
    if !c.y_label.is_empty() {
        mesh.y_desc(c.y_label.as_str());
    }
    mesh.draw().map_err(err)?;
    for (i, runs) in segs.iter().enumerate() {
        let style = color(i).stroke_width(2);
        for run in runs.iter().filter(|r| r.len() > 1) {
            chart.draw_series(LineSeries::new(run.iter().copied(), style)).map_err(err)?;
        }
        // A lone point between gaps draws no line: mark it.
        for run in runs.iter().filter(|r| r.len() == 1) {
            chart.draw_series(std::iter::once(Circle::new(run[0], 3, color(i).filled()))).map_err(err)?;
        }
    }
    let (l, t) = chart.backend_coord(&(x.lo, y.hi));
    let (r, b) = chart.backend_coord(&(x.hi, y.lo));
    Ok((l as f64, t as f64, r as f64, b as f64))
}

/// A line chart on plotters: `x` and `y` are the chosen axes, `segs` each
/// series' runs of points.
pub(super) fn line_chart(c: &LineChart, x: &Axis, y: &Axis, segs: &[Vec<Vec<(f64, f64)>>]) -> Result<String, String> {
    let (w, h) = (c.width, c.height);
    let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
    let show_legend = c.series.len() > 1 || names.first().is_some_and(|s| !s.is_empty());
    let left = 10.0 + y_area(&y.ticks) as f64;
    let (items, rows) =
        if show_legend { super::legend_layout(&names, left, w as f64 - left - 10.0) } else { (vec![], 0) };
    let band = if rows > 0 { (8.0 + rows as f64 * LEGEND_ROW).ceil() as u32 } else { 0 };
    let mut buf = String::new();
    let (plot, legend_box) = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (upper, lower) = root.split_vertically(h - band);
        let plot = if y.log {
            let spec = Ticked::new(LogCoord::from((y.lo..y.hi).log_scale()), y);
            lines(&upper, c, x, y, spec, segs)?
        } else {
            let spec = Ticked::new(RangedCoordf64::from(y.lo..y.hi), y);
            lines(&upper, c, x, y, spec, segs)?
        };
        let legend_box = if rows > 0 { Some(legend(&lower, &names, &items)?) } else { None };
        root.present().map_err(err)?;
        (plot, legend_box)
    };
    let legend_attr = match legend_box {
        Some((l, r)) => {
            let top = (h - band) as f64;
            format!(" data-legend=\"{} {} {} {}\"", n(l - 4.0), n(top + 2.0), n(r + 4.0), n(h as f64 - 2.0))
        }
        None => String::new(),
    };
    let attrs = format!(
        " data-plot=\"{} {} {} {}\" data-x-min=\"{}\" data-x-max=\"{}\" data-y-min=\"{}\" data-y-max=\"{}\" data-x-scale=\"{}\" data-y-scale=\"{}\"{legend_attr}",
        n(plot.0),
        n(plot.1),
        n(plot.2),
        n(plot.3),
        x.lo,
        x.hi,
        y.lo,
        y.hi,
        if c.x_scale == XScale::Nines { "nines" } else { "linear" },
        if c.y_scale == YScale::Log { "log" } else { "linear" },
    );
    let mut marks = Vec::new();
    for (s, runs) in c.series.iter().zip(segs) {
        marks.extend(runs.iter().filter(|r| r.len() > 1).map(|_| Mark::Line(&s.name)));
        marks.extend(runs.iter().filter(|r| r.len() == 1).map(|_| Mark::Point(&s.name)));
    }
    let labels = |a: &Axis| a.ticks.iter().map(|t| t.1.clone()).collect::<Vec<_>>();
    let svg = tag_marks(&buf, &marks, &[], plot, &labels(x), &labels(y));
    Ok(root_attrs(svg, &c.id, &attrs))
}

/// A bar chart on plotters: one bar per (name, value), on `y` from 0.
pub(super) fn bar_chart(c: &BarChart, y: &Axis) -> Result<String, String> {
    let values: Vec<f64> = c.bars.iter().map(|b| if b.1.is_finite() { b.1.max(0.0) } else { 0.0 }).collect();
    let names: Vec<String> = c.bars.iter().map(|b| b.0.clone()).collect();
    let count = c.bars.len().max(1);
    let mut buf = String::new();
    let plot = {
        let root = SVGBackend::with_string(&mut buf, (c.width, c.height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut b = ChartBuilder::on(&root);
        b.margin(10).margin_right(24).x_label_area_size(X_AREA).y_label_area_size(y_area(&y.ticks));
        if !c.title.is_empty() {
            b.caption(&c.title, font(TITLE_FONT));
        }
        let y_spec = Ticked::new(RangedCoordf64::from(y.lo..y.hi), y);
        // One unit of x per bar, its name as the tick at its middle.
        let x = Axis {
            lo: 0.0,
            hi: count as f64,
            ticks: names.iter().enumerate().map(|(i, name)| (i as f64 + 0.5, name.clone())).collect(),
            log: false,
        };
        let x_spec = Ticked::new(RangedCoordf64::from(x.lo..x.hi), &x);
        let mut chart = b.build_cartesian_2d(x_spec, y_spec).map_err(err)?;
        let fmt_x = |v: &f64| label_of(&x.ticks, *v);
        let fmt_y = |v: &f64| label_of(&y.ticks, *v);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .bold_line_style(RGBColor(235, 235, 235))
            .axis_style(RGBColor(85, 85, 85))
            .label_style(font(TICK_FONT))
            .axis_desc_style(font(DESC_FONT))
            .x_labels(count)
            .y_labels(y.ticks.len())
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y);
        if !c.y_label.is_empty() {
            mesh.y_desc(c.y_label.as_str());
        }
        mesh.draw().map_err(err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1;
                Rectangle::new([(x0, 0.0), (x0 + 0.8, *v)], color(i).mix(0.8).filled())
            }))
            .map_err(err)?;
        let (l, t) = chart.backend_coord(&(x.lo, y.hi));
        let (r, b) = chart.backend_coord(&(x.hi, y.lo));
        root.present().map_err(err)?;
        (l as f64, t as f64, r as f64, b as f64)
    };
    let attrs = format!(
        " data-plot=\"{} {} {} {}\" data-y-min=\"{}\" data-y-max=\"{}\"",
        n(plot.0),
        n(plot.1),
        n(plot.2),
        n(plot.3),
        y.lo,
        y.hi
    );
    let y_labels: Vec<String> = y.ticks.iter().map(|t| t.1.clone()).collect();
    let svg = tag_marks(&buf, &[], &values, plot, &names, &y_labels);
    Ok(root_attrs(svg, &c.id, &attrs))
}
