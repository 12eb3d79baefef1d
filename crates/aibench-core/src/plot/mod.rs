//! Charts as SVG text (plotters' SVG backend, no fonts or files needed), for
//! the self-contained HTML report.

use plotters::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    /// (x, y) points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XScale {
    #[default]
    Linear,
    /// Percentile axis: x = log10(1 / (1 - p)); labels 50%, 90%, 99%, 99.9%...
    Nines,
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

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

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

fn with_id(svg: String, id: &Option<String>) -> String {
    match id {
        Some(id) if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            svg.replacen("<svg ", &format!("<svg id=\"{id}\" "), 1)
        }
        _ => svg,
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    if (hi - lo).abs() < 1e-12 {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub fn line_chart(c: &LineChart) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (c.width, c.height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xs = bounds(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let ys = bounds(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let (Some((x0, x1)), Some((_, y1))) = (xs, ys) else {
            root.draw(&Text::new("no data", (c.width as i32 / 2 - 30, c.height as i32 / 2), ("sans-serif", 16)))
                .map_err(err)?;
            root.present().map_err(err)?;
            drop(root);
            return Ok(with_id(buf, &c.id));
        };
        let y0 = ys.map(|(lo, _)| lo.min(0.0)).unwrap_or(0.0);
        // On the percentile axis, ticks at whole nines: 0%, 90%, 99%, 99.9%...
        let (x0, x1) = if c.x_scale == XScale::Nines { (0.0, x1.ceil().max(1.0)) } else { (x0, x1) };
        let x_ticks = if c.x_scale == XScale::Nines { x1 as usize + 1 } else { 10 };
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..(y1 * 1.05))
            .map_err(err)?;
        let scale = c.x_scale;
        let fmt_x = move |x: &f64| {
            if scale == XScale::Nines { nines_label(*x) } else { format!("{}", (x * 100.0).round() / 100.0) }
        };
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .x_label_formatter(&fmt_x)
            .x_labels(x_ticks)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (i, s) in c.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        if c.series.len() > 1 || c.series.first().is_some_and(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(with_id(buf, &c.id))
}

pub fn bar_chart(c: &BarChart) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (c.width, c.height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = c.bars.len().max(1);
        let top = c.bars.iter().map(|b| b.1).filter(|v| v.is_finite()).fold(0.0, f64::max).max(1.0) * 1.1;
        let labels: Vec<String> = c.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(c.y_label.as_str())
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(c.bars.iter().enumerate().map(|(i, b)| {
                let color = COLORS[i % COLORS.len()];
                Rectangle::new(
                    [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.1.max(0.0))],
                    color.mix(0.8).filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(with_id(buf, &c.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_bar_svgs() {
        let c = LineChart {
            title: "TTFT".into(),
            x_label: "percentile".into(),
            y_label: "ms".into(),
            series: vec![Series {
                name: "run a".into(),
                points: vec![(nines(50.0), 1.0), (nines(99.0), 5.0), (nines(99.9), 9.0)],
            }],
            width: 400,
            height: 300,
            x_scale: XScale::Nines,
            id: Some("ttft".into()),
        };
        let svg = line_chart(&c).unwrap();
        assert!(svg.starts_with("<svg id=\"ttft\""), "{}", &svg[..60]);
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(svg.contains("TTFT"));
        let b = bar_chart(&BarChart {
            title: "errors".into(),
            y_label: "n".into(),
            bars: vec![("connect".into(), 2.0), ("timeout".into(), 0.0)],
            width: 300,
            height: 200,
            id: None,
        })
        .unwrap();
        assert!(b.contains("<rect"));
        let empty = line_chart(&LineChart { series: vec![], ..c }).unwrap();
        assert!(empty.contains("no data"));
        assert_eq!(nines_label(nines(99.9)), "99.9%");
    }
}
