//! `fit.png`: the fitted model against the data for a few trajectories, one panel each:
//! every state's fitted curve as a line and its observed values as dots of the same
//! colour, the fitted values and status in the panel's title.

use crate::io::image::encode_png;
use crate::io::plot::{COLORS, register_font, snap, tick};
use crate::ode::Solution;
use crate::ode::estimate::EstimationProblem;
use plotters::prelude::*;

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 420;
/// States drawn per panel at most (one colour each); a wider system shows its first ones.
const MAX_STATES: usize = 6;
/// Points on each fitted curve (adaptive and stiff runs; fixed-step ones use their grid).
pub const CURVE_POINTS: usize = 400;

/// Which trajectories to draw: the first three and the one with the largest cost (where
/// a fit went worst), at most four in all.
pub fn samples(costs: &[f64]) -> Vec<usize> {
    let mut out: Vec<usize> = (0..costs.len().min(3)).collect();
    let worst = (0..costs.len())
        .filter(|&j| costs[j].is_finite())
        .max_by(|&a, &b| costs[a].total_cmp(&costs[b]));
    if let Some(w) = worst.filter(|w| !out.contains(w)) {
        out.push(w);
    }
    out
}

/// The save times of a fitted curve from the start of the run to the last observation.
pub fn curve_times(ep: &EstimationProblem) -> Vec<f64> {
    let (t0, _) = ep.problem.span();
    let last = ep.observations.times.last().copied().unwrap_or(t0);
    (0..CURVE_POINTS)
        .map(|k| t0 + (last - t0) * k as f64 / (CURVE_POINTS - 1) as f64)
        .collect()
}

/// What one panel says above its plot: the trajectory and its fit.
pub struct Panel {
    pub trajectory: usize,
    pub caption: String,
}

/// The PNG bytes: `panels[a]` is drawn from `fitted`'s trajectory `a` and the observations
/// of trajectory `panels[a].trajectory`.
pub fn picture(
    ep: &EstimationProblem,
    panels: &[Panel],
    fitted: &Solution,
) -> Result<Vec<u8>, String> {
    register_font();
    let system = ep.problem.system();
    let dim = system.dim();
    let shown = dim.min(MAX_STATES);
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(2).max(1);
    let height = PANEL_HEIGHT * rows as u32 + 60;
    let mut rgb = vec![255u8; (WIDTH * height * 3) as usize];
    let e = |x: &dyn std::fmt::Display| x.to_string();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let more = if shown < dim {
            format!(", first {shown} of {dim} states")
        } else {
            String::new()
        };
        let title = format!(
            "{}: fitted model (lines) against observations (dots){more}",
            system.name()
        );
        let root = root.titled(&title, ("sans-serif", 24)).map_err(|x| e(&x))?;
        let areas = root.split_evenly((rows, cols));
        let obs = &ep.observations;
        let n_obs = obs.times.len();
        for (a, (panel, area)) in panels.iter().zip(&areas).enumerate() {
            let j = panel.trajectory;
            let curve = |i: usize| -> Vec<(f64, f64)> {
                (0..fitted.n_save())
                    .map(|s| (fitted.times[s], fitted.state(s, a)[i]))
                    .filter(|(t, u)| t.is_finite() && u.is_finite())
                    .collect()
            };
            let dots = |i: usize| -> Vec<(f64, f64)> {
                (0..n_obs)
                    .map(|o| (obs.times[o], obs.values[(j * n_obs + o) * dim + i]))
                    .filter(|(_, y)| y.is_finite())
                    .collect()
            };
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for i in 0..shown {
                for (x, y) in curve(i).into_iter().chain(dots(i)) {
                    (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
                }
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
            }
            let pad = |lo: f64, hi: f64| {
                let p = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
                (lo - p, hi + p)
            };
            let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0, y1));
            let (sx, sy) = (Some(x1 - x0), Some(y1 - y0));
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.caption, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_label_formatter(&|v| tick(snap(*v, sx)))
                .y_label_formatter(&|v| tick(snap(*v, sy)))
                .x_desc("t")
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(|x| e(&x))?;
            for i in 0..shown {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(curve(i), color.stroke_width(2)))
                    .map_err(|x| e(&x))?
                    .label(system.states[i].name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        dots(i)
                            .into_iter()
                            .map(|p| Circle::new(p, 3, color.mix(0.8).filled())),
                    )
                    .map_err(|x| e(&x))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    encode_png(WIDTH, height, &rgb, image::ColorType::Rgb8).map_err(|x| e(&x))
}
