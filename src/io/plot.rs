//! Line charts as PNG bytes (loss curves, fitted functions, scaling curves), drawn by
//! plotters into memory so the caller decides where and when the file appears.

use super::image::encode_png;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::sync::Once;

/// Which way an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Logarithmic; only positive values are drawn.
    Log,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub series: Vec<Series>,
}

#[derive(Debug, thiserror::Error)]
#[error("drawing the chart '{title}' failed: {message}")]
pub struct PlotError {
    title: String,
    message: String,
}

impl PlotError {
    pub(crate) fn new(title: &str, message: String) -> PlotError {
        PlotError {
            title: title.to_string(),
            message,
        }
    }
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;
pub(crate) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// plotters finds fonts by family name; the only one there is comes compiled in.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        );
    });
}

/// The range an axis must show: finite values (positive ones on a log axis), padded a
/// little so lines do not sit on the frame.
fn axis_range(values: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return match scale {
            Scale::Linear => (0.0, 1.0),
            Scale::Log => (0.1, 10.0),
        };
    }
    match scale {
        Scale::Linear => {
            let pad = if hi > lo {
                0.04 * (hi - lo)
            } else {
                0.5 * lo.abs().max(1.0)
            };
            (lo - pad, hi + pad)
        }
        Scale::Log => {
            let (l, h) = (lo.log10(), hi.log10());
            // Within one decade a log axis would have no labelled tick: widen it to the
            // powers of ten around the values.
            if h - l < 1.0 {
                let (l, h) = (l.floor(), h.ceil().max(l.floor() + 1.0));
                return (10f64.powf(l), 10f64.powf(h));
            }
            let pad = 0.04 * (h - l);
            (10f64.powf(l - pad), 10f64.powf(h + pad))
        }
    }
}

impl Chart {
    /// The chart as a PNG file's bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        register_font();
        let fail = |e: String| PlotError {
            title: self.title.clone(),
            message: e,
        };
        let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        {
            let xs = self
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0));
            let ys = self
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1));
            let (x0, x1) = axis_range(xs, self.x_scale);
            let (y0, y1) = axis_range(ys, self.y_scale);
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
            // Linear axes' spans, to print a tick that rounding put at ±1e-17 as 0.
            let (sx, sy) = (Some(x1 - x0), Some(y1 - y0));
            let result = match (self.x_scale, self.y_scale) {
                (Scale::Linear, Scale::Linear) => self.draw(&root, x0..x1, y0..y1, (sx, sy)),
                (Scale::Linear, Scale::Log) => {
                    self.draw(&root, x0..x1, (y0..y1).log_scale(), (sx, None))
                }
                (Scale::Log, Scale::Linear) => {
                    self.draw(&root, (x0..x1).log_scale(), y0..y1, (None, sy))
                }
                (Scale::Log, Scale::Log) => self.draw(
                    &root,
                    (x0..x1).log_scale(),
                    (y0..y1).log_scale(),
                    (None, None),
                ),
            };
            result.map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        encode_png(WIDTH, HEIGHT, &rgb, image::ColorType::Rgb8).map_err(fail)
    }

    fn draw<X, Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        x: X,
        y: Y,
        (x_span, y_span): (Option<f64>, Option<f64>),
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(84)
            .build_cartesian_2d(x, y)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| tick(snap(*v, x_span)))
            .y_label_formatter(&|v| tick(snap(*v, y_span)))
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points = s.points.iter().copied().filter(|&(x, y)| {
                x.is_finite()
                    && y.is_finite()
                    && (self.x_scale == Scale::Linear || x > 0.0)
                    && (self.y_scale == Scale::Linear || y > 0.0)
            });
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        if self.series.len() > 1 || self.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|x| e(&x))?;
        }
        Ok(())
    }
}

/// Zero for a value within 1e-9 of a linear axis's span of it.
pub(crate) fn snap(v: f64, span: Option<f64>) -> f64 {
    match span {
        Some(s) if v.abs() < 1e-9 * s => 0.0,
        _ => v,
    }
}

/// A tick label with at most three significant digits and no trailing zeros.
pub(crate) fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exp}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ranges_skip_what_the_scale_cannot_show() {
        let (lo, hi) = axis_range([1e-3, 10.0, -5.0, f64::NAN].into_iter(), Scale::Log);
        assert!(
            lo < 1e-3 && lo > 1e-4 && hi > 10.0 && hi < 100.0,
            "{lo} {hi}"
        );
        let (lo, hi) = axis_range([2.0, 2.0].into_iter(), Scale::Linear);
        assert!(lo < 2.0 && hi > 2.0);
        // Throughputs within one decade: the axis reaches the powers of ten around them.
        assert_eq!(
            axis_range([5.3e8, 7.3e8].into_iter(), Scale::Log),
            (1e8, 1e9)
        );
        assert_eq!(axis_range([1e8, 1e8].into_iter(), Scale::Log), (1e8, 1e9));
        assert_eq!(axis_range(std::iter::empty(), Scale::Linear), (0.0, 1.0));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.09999999999), "0.1");
        assert_eq!(tick(1e-6), "1e-6");
        assert_eq!(tick(2.5e-7), "2.5e-7");
        assert_eq!(tick(500.0), "500");
        assert_eq!(tick(-1.25), "-1.25");
        assert_eq!(tick(12345.0), "12345");
        assert_eq!(tick(1e6), "1e6");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(snap(-1.39e-17, Some(0.45))), "0");
        assert_eq!(tick(snap(1e-8, None)), "1e-8");
    }

    #[test]
    fn charts_encode_as_png_with_text() {
        let chart = Chart {
            title: "loss".into(),
            x_label: "step".into(),
            y_label: "MSE".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Log,
            series: vec![Series {
                label: "train".into(),
                points: (1..100).map(|i| (i as f64, 1.0 / i as f64)).collect(),
            }],
        };
        let png = chart.to_png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        // The line's colour and dark text pixels are both there.
        let px: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(px.contains(&[31, 119, 180]));
        assert!(
            px.iter()
                .filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80)
                .count()
                > 500
        );
    }
}
