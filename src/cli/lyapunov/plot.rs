//! `lyapunov.png`: the exponents against the one swept parameter (a line per exponent,
//! drawn by `io::plot`), the largest exponent as a colour map over a two-parameter grid,
//! or the exponents against the trajectory index when nothing is swept.

use crate::io::image::encode_png;
use crate::io::{Chart, Scale, Series};
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult};
use plotters::prelude::*;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;
/// Width of the colour bar's area at the right.
const BAR: u32 = 130;

/// The PNG bytes for a run; `swept` holds each swept parameter's name, values per
/// trajectory and grid count.
pub fn picture(
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    swept: &[(String, Vec<f64>, Option<usize>)],
) -> Result<Vec<u8>, String> {
    match swept {
        [(a, va, Some(na)), (b, vb, Some(nb))] if na * nb == r.n => {
            let title = format!("{}: largest Lyapunov exponent λ1", problem.system.name());
            colour_map(&title, (b, vb, *nb), (a, va, *na), &column(r, 0))
        }
        [(name, values, _), ..] => lines(problem, r, name, values),
        [] => {
            let index: Vec<f64> = (0..r.n).map(|j| j as f64).collect();
            lines(problem, r, "trajectory", &index)
        }
    }
}

fn column(r: &LyapunovResult, m: usize) -> Vec<f64> {
    (0..r.n).map(|j| r.exponents(j)[m]).collect()
}

/// One line per exponent against `x`, points in the order of x.
fn lines(
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    x_name: &str,
    x: &[f64],
) -> Result<Vec<u8>, String> {
    let mut order: Vec<usize> = (0..r.n).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let series = (0..r.k)
        .map(|m| Series {
            label: format!("λ{}", m + 1),
            points: order.iter().map(|&j| (x[j], r.exponents(j)[m])).collect(),
        })
        .collect();
    Chart {
        title: format!(
            "{}: Lyapunov exponents ({}, dt = {}, T = {})",
            problem.system.name(),
            problem.tableau.name,
            problem.dt,
            problem.time
        ),
        x_label: x_name.to_string(),
        y_label: "λ".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        series,
    }
    .to_png()
    .map_err(|e| e.to_string())
}

/// The colour of λ: blue below zero (contracting: fixed points, cycles), white at zero, red
/// above (chaos), each side scaled to its own extreme so that weak chaos stays visible.
fn colour(v: f64, lo: f64, hi: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(128, 128, 128);
    }
    let mix = |a: (f64, f64, f64), t: f64| {
        let t = t.clamp(0.0, 1.0);
        let c = |x: f64| (255.0 + (x - 255.0) * t).round() as u8;
        RGBColor(c(a.0), c(a.1), c(a.2))
    };
    if v >= 0.0 {
        mix((178.0, 24.0, 43.0), if hi > 0.0 { v / hi } else { 0.0 })
    } else {
        mix((33.0, 102.0, 172.0), if lo < 0.0 { v / lo } else { 0.0 })
    }
}

/// plotters finds fonts by family name; the only one there is comes compiled in (as
/// `io::plot` registers it for its charts, which a colour map may be drawn before).
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        );
    });
}

/// `values[j]` at (x, y) = (the fast axis's j-th value, the slow axis's), as cells.
fn colour_map(
    title: &str,
    (x_name, xs, nx): (&str, &[f64], usize),
    (y_name, ys, ny): (&str, &[f64], usize),
    values: &[f64],
) -> Result<Vec<u8>, String> {
    register_font();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(0.0, f64::min);
    let hi = finite.fold(0.0, f64::max);
    let span = |v: &[f64]| {
        let a = v.iter().copied().fold(f64::INFINITY, f64::min);
        let b = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (a, b)
    };
    let ((x0, x1), (y0, y1)) = (span(xs), span(ys));
    // Half a cell beyond the first and last values, so every cell is whole.
    let dx = if nx > 1 {
        (x1 - x0) / (nx - 1) as f64
    } else {
        1.0
    };
    let dy = if ny > 1 {
        (y1 - y0) / (ny - 1) as f64
    } else {
        1.0
    };
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let (main, bar) = root.split_horizontally(WIDTH - BAR);
        let mut chart = ChartBuilder::on(&main)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (x0 - dx / 2.0)..(x1 + dx / 2.0),
                (y0 - dy / 2.0)..(y1 + dy / 2.0),
            )
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_name)
            .y_desc(y_name)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(|x| e(&x))?;
        chart
            .draw_series(values.iter().enumerate().map(|(j, &v)| {
                let (x, y) = (xs[j], ys[j]);
                Rectangle::new(
                    [(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
                    colour(v, lo, hi).filled(),
                )
            }))
            .map_err(|x| e(&x))?;
        // The colour bar: λ from lo to hi.
        let (b0, b1) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, hi + 1.0)
        };
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(56)
            .margin_bottom(64)
            .margin_right(16)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..1.0, b0..b1)
            .map_err(|x| e(&x))?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc("λ1")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(|x| e(&x))?;
        let steps = 200;
        scale
            .draw_series((0..steps).map(|i| {
                let a = b0 + (b1 - b0) * i as f64 / steps as f64;
                let b = b0 + (b1 - b0) * (i + 1) as f64 / steps as f64;
                Rectangle::new([(0.0, a), (1.0, b)], colour(0.5 * (a + b), lo, hi).filled())
            }))
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    encode_png(WIDTH, HEIGHT, &rgb, image::ColorType::Rgb8)
}
