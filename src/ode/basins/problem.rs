//! A basins problem (an ensemble run whose initial states are a grid over two states, and
//! how to classify its trajectories), its checks, and the run that labels the grid.

use super::classify::{Classes, ClassifyError, Clusters, DIVERGED, Match};
use super::entropy::{BasinEntropy, basin_entropy};
use super::sink::{BasinsSink, Labelled, Labeller};
use crate::gpu::GpuContext;
use crate::model::{Diagnostics, Function, Source, System};
use crate::ode::adaptive::problem::SaveAt;
use crate::ode::any::Problem;
use crate::ode::ensemble::{Axis, InitialStates, Parameters};
use crate::ode::error::SimError;
use crate::ode::fixed::problem::Save;
use crate::ode::options::RunOptions;
use crate::ode::sink::{FanOut, Sink, Tally};
use crate::ode::solution::RunStats;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use thiserror::Error;

/// How trajectories are grouped into attractors.
#[derive(Debug, Clone)]
pub enum Method {
    /// Attractor-agnostic: per state, the minimum and maximum over the saves in the last
    /// `window` time units of the run (a fixed point has min = max; a limit cycle the same
    /// extremes whatever its phase), matched to representatives within `tol`. Trajectories
    /// that stop early, turn non-finite or whose features exceed `escape` in magnitude are
    /// labelled −1.
    Features {
        window: f64,
        tol: Match,
        escape: Option<f64>,
    },
    /// A user expression of the final state and the parameters (see `expression`), rounded
    /// to the nearest integer: one attractor per integer value.
    Expression(Function),
}

/// An ensemble run over a grid of initial states, and how to classify its trajectories.
#[derive(Debug, Clone)]
pub struct BasinsProblem {
    /// The run: its initial states a grid over two different states,
    /// `InitialStates::Grid(vec![rows, columns])` (the first axis varies slowest, so the
    /// label map is [rows][columns]), its parameters the base ones, its saves ending at the
    /// end of the span (and covering the window: see `save_window`).
    pub run: Problem,
    pub method: Method,
    /// Refuse the run once more attractors than this are found.
    pub max_attractors: usize,
}

/// Most attractors a run may find unless told otherwise: more means the features did not
/// settle (chaos, a short run), and every trajectory is matched against each of them.
pub const DEFAULT_MAX_ATTRACTORS: usize = 64;

#[derive(Debug, Error)]
pub enum BasinsError {
    #[error("{0}")]
    Problem(String),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

/// The two grid axes of a basins problem and the states they vary.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Columns (the axis that varies fastest), drawn horizontally.
    pub x: Axis,
    /// Rows, drawn vertically.
    pub y: Axis,
    pub x_name: String,
    pub y_name: String,
}

impl Grid {
    pub fn nx(&self) -> usize {
        self.x.count.unwrap_or(1)
    }

    pub fn ny(&self) -> usize {
        self.y.count.unwrap_or(1)
    }

    /// The value of grid column `k` (as `Ensemble` computes it).
    pub fn x_at(&self, k: usize) -> f64 {
        axis_value(&self.x, k)
    }

    pub fn y_at(&self, k: usize) -> f64 {
        axis_value(&self.y, k)
    }
}

fn axis_value(a: &Axis, k: usize) -> f64 {
    match a.count {
        Some(n) if n > 1 => a.lo + (a.hi - a.lo) * (k as f64 / (n - 1) as f64),
        _ => a.lo,
    }
}

/// Parses a classifying expression over `system`'s states and parameters (by name), with
/// positions, carets and hints in its errors. `origin` names it in messages (a flag).
pub fn expression(system: &System, text: &str, origin: &str) -> Result<Function, Diagnostics> {
    let names: Vec<&str> = system
        .states
        .iter()
        .chain(&system.params)
        .map(|v| v.name.as_str())
        .collect();
    Function::parse(&Source::new(origin, text), &names)
}

/// Sets a run's saves so that the last `window` time units hold about `samples` of them:
/// adaptive and stiff runs save at `t1 − window, …, t1` only; fixed-step runs save every
/// k-th step of the whole span (they have no other save rule), k chosen so the window holds
/// at least `samples` saves. A zero window keeps the final state alone.
pub fn save_window(run: &mut Problem, window: f64, samples: usize) -> Result<(), BasinsError> {
    let bad = |m: String| Err(BasinsError::Problem(m));
    if !(window.is_finite() && window >= 0.0) {
        return bad(format!(
            "the window must be zero or positive (got {window})"
        ));
    }
    if samples == 0 {
        return bad("the window needs at least one sample".into());
    }
    let span = |t0: f64, t1: f64| -> Result<(), BasinsError> {
        if window > t1 - t0 {
            return Err(BasinsError::Problem(format!(
                "the window ({window}) is longer than the run ({t0} to {t1})"
            )));
        }
        Ok(())
    };
    match run {
        Problem::Adaptive(p) => {
            span(p.t0, p.t1)?;
            p.saveat = window_times(p.t1, window, samples);
        }
        Problem::Stiff(p) => {
            span(p.t0, p.t1)?;
            p.saveat = window_times(p.t1, window, samples);
        }
        Problem::Fixed(p) => {
            span(p.grid.t0, p.grid.t1())?;
            let steps = (window / p.grid.dt).floor() as u64;
            p.save = if window == 0.0 || steps == 0 {
                Save::Final
            } else {
                Save::Every((steps / samples as u64).clamp(1, u32::MAX as u64) as u32)
            };
        }
        Problem::Sde(_) => return bad(sde_refusal()),
    }
    Ok(())
}

fn sde_refusal() -> String {
    "basins of attraction are for deterministic systems; this one has a noise block".into()
}

/// `samples` + 1 times from `t1 − window` to `t1` (t1 exactly the last).
fn window_times(t1: f64, window: f64, samples: usize) -> SaveAt {
    if window == 0.0 {
        return SaveAt::Final;
    }
    let start = t1 - window;
    let mut times: Vec<f64> = (0..=samples)
        .map(|i| start + window * (i as f64 / samples as f64))
        .collect();
    *times.last_mut().expect("at least two") = t1;
    SaveAt::Times(times)
}

/// The end of a run's span.
fn end_time(run: &Problem) -> Option<f64> {
    match run {
        Problem::Fixed(p) => Some(p.grid.t1()),
        Problem::Adaptive(p) => Some(p.t1),
        Problem::Stiff(p) => Some(p.t1),
        Problem::Sde(_) => None,
    }
}

impl BasinsProblem {
    /// The grid's axes, or what is wrong with the run's initial states.
    pub fn grid(&self) -> Result<Grid, BasinsError> {
        let system = self.run.system();
        let ensemble = self.run.ensemble();
        let InitialStates::Grid(axes) = &ensemble.initial else {
            return Err(BasinsError::Problem(
                "basins need the initial states on a grid over two states".into(),
            ));
        };
        let [y, x] = &axes[..] else {
            return Err(BasinsError::Problem(format!(
                "basins need a grid over exactly two states (this one has {} axes)",
                axes.len()
            )));
        };
        if x.index == y.index {
            return Err(BasinsError::Problem(format!(
                "the two grid axes vary the same state '{}'",
                system.states[x.index].name
            )));
        }
        if x.count.is_none() || y.count.is_none() {
            return Err(BasinsError::Problem(
                "each grid axis needs its number of points".into(),
            ));
        }
        Ok(Grid {
            x: x.clone(),
            y: y.clone(),
            x_name: system.states[x.index].name.clone(),
            y_name: system.states[y.index].name.clone(),
        })
    }

    /// Everything a run would refuse before any work: the grid, the parameters, the saves
    /// and the method's settings. Returns the save times.
    pub fn check(&self) -> Result<Vec<f64>, BasinsError> {
        if self.run.is_sde() {
            return Err(BasinsError::Problem(sde_refusal()));
        }
        self.grid()?;
        if !matches!(self.run.ensemble().params, Parameters::Default) {
            return Err(BasinsError::Problem(
                "basins use one parameter set for the whole grid; set parameters, do not \
                 sweep them"
                    .into(),
            ));
        }
        if self.max_attractors == 0 {
            return Err(BasinsError::Problem(
                "the attractor limit must be at least 1".into(),
            ));
        }
        let times = self.run.save_times()?;
        let t1 = end_time(&self.run).expect("not an SDE");
        if times.last() != Some(&t1) {
            return Err(BasinsError::Problem(format!(
                "the saves must end at the end of the span ({t1}): the last one is the final \
                 state that attractors are described by"
            )));
        }
        if let Method::Features {
            window,
            tol,
            escape,
        } = &self.method
        {
            if !(window.is_finite() && *window >= 0.0) {
                return Err(BasinsError::Problem(format!(
                    "the window must be zero or positive (got {window})"
                )));
            }
            for (what, v) in [("absolute", tol.atol), ("relative", tol.rtol)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(BasinsError::Problem(format!(
                        "the {what} matching tolerance must be zero or positive (got {v})"
                    )));
                }
            }
            if let Some(r) = escape
                && (r.is_nan() || *r <= 0.0)
            {
                return Err(BasinsError::Problem(format!(
                    "the escape radius must be positive (got {r})"
                )));
            }
        }
        if let Method::Expression(f) = &self.method {
            let system = self.run.system();
            if f.inputs.len() != system.dim() + system.n_params() {
                return Err(BasinsError::Problem(
                    "the expression must be parsed over the system's states and parameters \
                     (see basins::expression)"
                        .into(),
                ));
            }
        }
        Ok(times)
    }
}

/// One attractor: how many grid points reached it, and what it looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Attractor {
    pub label: i32,
    pub count: usize,
    /// `count` over all grid points (its basin stability).
    pub fraction: f64,
    /// The first grid point (in grid order) that reached it.
    pub representative: usize,
    /// Features: per state the window minimum, then per state the window maximum; or, for
    /// an expression, its rounded value alone.
    pub features: Vec<f64>,
    /// The representative's final state.
    pub final_state: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct BasinsResult {
    pub grid: Grid,
    /// [ny][nx] labels: attractors from 0, `DIVERGED` (−1) for none.
    pub labels: Vec<i32>,
    /// Sorted by label.
    pub attractors: Vec<Attractor>,
    /// Grid points labelled −1.
    pub diverged: usize,
    pub stats: RunStats,
}

impl BasinsResult {
    /// Each attractor's share of the grid, by label.
    pub fn fractions(&self) -> Vec<f64> {
        self.attractors.iter().map(|a| a.fraction).collect()
    }

    pub fn diverged_fraction(&self) -> f64 {
        self.diverged as f64 / self.labels.len() as f64
    }

    /// The label of grid column `ix`, row `iy`.
    pub fn label(&self, ix: usize, iy: usize) -> i32 {
        self.labels[iy * self.grid.nx() + ix]
    }

    /// Basin entropy with boxes of `box_size` × `box_size` grid points.
    pub fn entropy(&self, box_size: usize) -> BasinEntropy {
        basin_entropy(&self.labels, self.grid.ny(), self.grid.nx(), box_size)
    }
}

/// Runs the ensemble and labels every grid point, streaming: host memory holds a chunk's
/// window statistics, the labels and the attractors, never the saves.
pub fn run_basins(
    ctx: &GpuContext,
    problem: &BasinsProblem,
    options: &RunOptions,
) -> Result<BasinsResult, BasinsError> {
    run_basins_into(ctx, problem, options, &mut Tally::default())
}

/// `run_basins`, with `also` fed the same results (a progress display, a tally, a file
/// stream). A run stopped by `options.cancel` labels the trajectories it did not reach −1;
/// `stats.completed` says how far it got.
pub fn run_basins_into(
    ctx: &GpuContext,
    problem: &BasinsProblem,
    options: &RunOptions,
    also: &mut dyn Sink,
) -> Result<BasinsResult, BasinsError> {
    let times = problem.check()?;
    let grid = problem.grid()?;
    let system = problem.run.system();
    let ensemble = problem.run.ensemble();
    // A label per grid point, and a chunk's window statistics, are held in memory.
    crate::ode::error::host_results_fit(
        "the labels",
        "use a coarser grid",
        ensemble.n as u64,
        1,
        crate::ode::Precision::F64,
    )?;
    let t1 = *times.last().expect("checked");
    let (labeller, window) = match &problem.method {
        Method::Features {
            window,
            tol,
            escape,
        } => (
            Labeller::Features {
                clusters: Clusters::new(*tol, problem.max_attractors),
                escape: *escape,
            },
            *window,
        ),
        Method::Expression(function) => (
            Labeller::Expression {
                function: function.clone(),
                params: ensemble.base_params.clone(),
                classes: Classes::new(problem.max_attractors),
            },
            0.0,
        ),
    };
    // The sink stops the run through the caller's flag, or its own.
    let stop = options
        .cancel
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    let mut options = options.clone();
    options.cancel = Some(stop.clone());
    let mut sink = BasinsSink::new(
        labeller,
        ensemble.n,
        system.dim(),
        &times,
        t1 - window,
        stop,
    );
    let stats = problem
        .run
        .run_into(ctx, &options, &mut FanOut(vec![&mut sink, also]))?;
    let Labelled {
        mut labels,
        found,
        renumber,
    } = sink.finish()?;
    for l in labels.iter_mut().filter(|l| **l != DIVERGED) {
        *l = renumber[*l as usize];
    }
    let n = labels.len();
    let attractors: Vec<Attractor> = found
        .into_iter()
        .enumerate()
        .map(|(label, f)| Attractor {
            label: label as i32,
            count: f.count,
            fraction: f.count as f64 / n as f64,
            representative: f.representative,
            features: f.features,
            final_state: f.final_state,
        })
        .collect();
    let diverged = labels.iter().filter(|&&l| l == DIVERGED).count();
    Ok(BasinsResult {
        grid,
        labels,
        attractors,
        diverged,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::adaptive::problem::{AdaptiveProblem, Control};
    use crate::ode::ensemble::Ensemble;
    use crate::ode::solver::Solver;
    use crate::precision::Precision;

    fn duffing(initial: InitialStates) -> BasinsProblem {
        let system = System::from_equations(
            "double_well",
            &[("x", 0.0), ("v", 0.0)],
            &[("delta", 0.1)],
            "dx = v\ndv = -delta*v + x - x^3",
        )
        .unwrap();
        let mut ensemble = Ensemble::new(&system, 12);
        ensemble.initial = initial;
        BasinsProblem {
            run: Problem::Adaptive(AdaptiveProblem {
                system,
                solver: Solver::Tsit5,
                t0: 0.0,
                t1: 10.0,
                saveat: SaveAt::Final,
                control: Control::default(),
                ensemble,
                precision: Precision::F32,
            }),
            method: Method::Features {
                window: 1.0,
                tol: Match::default(),
                escape: None,
            },
            max_attractors: 4,
        }
    }

    #[test]
    fn the_grid_must_be_two_different_states() {
        let p = duffing(InitialStates::Grid(vec![
            Axis::grid(1, -1.0, 1.0, 3),
            Axis::grid(0, -2.0, 2.0, 4),
        ]));
        p.check().unwrap();
        let g = p.grid().unwrap();
        assert_eq!((g.nx(), g.ny(), g.x_name.as_str()), (4, 3, "x"));
        assert_eq!((g.x_at(0), g.x_at(3), g.y_at(1)), (-2.0, 2.0, 0.0));
        let one = duffing(InitialStates::Grid(vec![Axis::grid(0, -1.0, 1.0, 12)]));
        assert!(one.check().unwrap_err().to_string().contains("exactly two"));
        let same = duffing(InitialStates::Grid(vec![
            Axis::grid(0, -1.0, 1.0, 3),
            Axis::grid(0, -2.0, 2.0, 4),
        ]));
        assert!(
            same.check()
                .unwrap_err()
                .to_string()
                .contains("same state 'x'")
        );
        let none = duffing(InitialStates::Default);
        assert!(none.check().is_err());
    }

    #[test]
    fn window_saves_end_at_t1_and_bad_settings_are_refused() {
        let mut p = duffing(InitialStates::Grid(vec![
            Axis::grid(1, -1.0, 1.0, 3),
            Axis::grid(0, -2.0, 2.0, 4),
        ]));
        save_window(&mut p.run, 2.5, 10).unwrap();
        let times = p.check().unwrap();
        assert_eq!(times.len(), 11);
        assert_eq!((times[0], times[10]), (7.5, 10.0));
        assert!(save_window(&mut p.run, 11.0, 10).is_err());
        assert!(save_window(&mut p.run, f64::NAN, 10).is_err());
        p.method = Method::Features {
            window: 1.0,
            tol: Match {
                atol: -1.0,
                rtol: 0.0,
            },
            escape: None,
        };
        assert!(p.check().unwrap_err().to_string().contains("absolute"));
        // Saves that stop short of t1 describe no final state.
        if let Problem::Adaptive(a) = &mut p.run {
            a.saveat = SaveAt::Times(vec![1.0, 2.0]);
        }
        p.method = Method::Features {
            window: 1.0,
            tol: Match::default(),
            escape: None,
        };
        assert!(p.check().unwrap_err().to_string().contains("must end"));
    }

    #[test]
    fn expressions_name_states_and_parameters() {
        let p = duffing(InitialStates::Default);
        let f = expression(p.run.system(), "sign(x) + delta", "--classify").unwrap();
        assert_eq!(f.eval(&[-2.0, 0.0, 0.1]), -0.9);
        let e = expression(p.run.system(), "sign(y)", "--classify").unwrap_err();
        assert!(e.to_string().contains("--classify"), "{e}");
        assert_eq!(e.first().position(), Some((1, 6)));
    }
}
