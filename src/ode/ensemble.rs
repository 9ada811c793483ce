//! How each trajectory of an ensemble gets its initial state and parameters. Every generator
//! is a pure function of the trajectory index, so a chunk can be filled without the others
//! and results do not depend on chunking.

use crate::model::System;
use crate::rng::uniform_f64;
use std::ops::Range;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum EnsembleError {
    #[error("the ensemble must have at least one trajectory")]
    Empty,
    #[error("{what} has {got} rows but the ensemble has {n} trajectories")]
    RowCount { what: String, got: usize, n: usize },
    #[error("{what} has {got} columns but the system has {want} {kind}")]
    ColumnCount {
        what: String,
        got: usize,
        want: usize,
        kind: &'static str,
    },
    #[error("{what} holds a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
        value: f64,
    },
    #[error("the grid over {axes} has {product} points but the ensemble has {n} trajectories")]
    GridSize {
        axes: String,
        product: usize,
        n: usize,
    },
    #[error("a grid axis needs at least one point")]
    EmptyAxis,
    #[error("{0}")]
    BadRange(String),
}

/// A linear range over one state or parameter: `count` points from `lo` to `hi` inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub index: usize,
    pub lo: f64,
    pub hi: f64,
    /// `None`: as many points as there are trajectories (only for a single axis).
    pub count: Option<usize>,
}

impl Axis {
    /// `lo..=hi` spread linearly over all trajectories (a one-axis sweep).
    pub fn linear(index: usize, lo: f64, hi: f64) -> Axis {
        Axis {
            index,
            lo,
            hi,
            count: None,
        }
    }

    /// `count` points from `lo` to `hi` inclusive (one axis of a grid).
    pub fn grid(index: usize, lo: f64, hi: f64, count: usize) -> Axis {
        Axis {
            index,
            lo,
            hi,
            count: Some(count),
        }
    }

    fn value(&self, k: usize, count: usize) -> f64 {
        if count <= 1 {
            self.lo
        } else {
            // lo + (hi - lo) * k / (count - 1), exact at both ends.
            let f = k as f64 / (count - 1) as f64;
            self.lo + (self.hi - self.lo) * f
        }
    }
}

/// Values for a set of indices given as a table with one row per trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Row-major [rows][cols].
    pub data: Vec<f64>,
    pub rows: usize,
    pub cols: usize,
    /// Where it came from, for messages (a file path).
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum InitialStates {
    /// Every trajectory starts at the base state.
    #[default]
    Default,
    /// Trajectory j starts at the base state plus `j * step` in one state: a series of
    /// small perturbations, e.g. to watch nearby trajectories separate.
    Perturb { state: usize, step: f64 },
    /// Uniform random in a box over some states (the others at the base value), keyed by
    /// (seed, trajectory, state) so the same seed gives the same ensemble anywhere.
    Uniform {
        seed: u64,
        ranges: Vec<(usize, f64, f64)>,
    },
    /// A regular grid over one or more states; the first axis varies slowest.
    Grid(Vec<Axis>),
    /// One row per trajectory, `dim` columns.
    Table(Table),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Parameters {
    /// Every trajectory uses the base parameters.
    #[default]
    Default,
    /// A linear sweep of one parameter, or a grid over several; the first axis varies slowest.
    Sweep(Vec<Axis>),
    /// One row per trajectory, `n_params` columns.
    Table(Table),
}

/// Values of the system's input signals, per trajectory.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Inputs {
    /// Every input at its declared default.
    #[default]
    Default,
    /// One row per trajectory: every input's sensor values, inputs in declaration order.
    Table(Table),
}

/// How N trajectories differ from each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub n: usize,
    /// The state and parameters every generator starts from: the system's defaults with
    /// the user's overrides applied.
    pub base_state: Vec<f64>,
    pub base_params: Vec<f64>,
    pub initial: InitialStates,
    pub params: Parameters,
    /// The input signals' defaults at every sensor, and how trajectories' inputs differ.
    pub base_inputs: Vec<f64>,
    pub inputs: Inputs,
}

impl Ensemble {
    /// `n` copies of the system's default state and parameters.
    pub fn new(system: &System, n: usize) -> Ensemble {
        Ensemble {
            n,
            base_state: system.default_state(),
            base_params: system.default_params(),
            initial: InitialStates::Default,
            params: Parameters::Default,
            base_inputs: system.default_inputs(),
            inputs: Inputs::Default,
        }
    }

    /// The number of trajectories implied by grids (product of axis counts), if any.
    pub fn implied_size(&self) -> Option<usize> {
        let product = |axes: &[Axis]| -> Option<usize> {
            if axes.len() == 1 && axes[0].count.is_none() {
                return None;
            }
            // Saturating: a product past usize is refused as too large, never wrapped to 0.
            Some(
                axes.iter()
                    .map(|a| a.count.unwrap_or(1))
                    .fold(1usize, usize::saturating_mul),
            )
        };
        match (&self.initial, &self.params) {
            (InitialStates::Grid(a), _) => product(a),
            (_, Parameters::Sweep(a)) => product(a),
            (InitialStates::Table(t), _) | (_, Parameters::Table(t)) => Some(t.rows),
            _ => match &self.inputs {
                Inputs::Table(t) => Some(t.rows),
                Inputs::Default => None,
            },
        }
    }

    /// Checks sizes, shapes and values against the system before any work starts.
    pub fn validate(&self, system: &System) -> Result<(), EnsembleError> {
        if self.n == 0 {
            return Err(EnsembleError::Empty);
        }
        let check_table =
            |t: &Table, want: usize, kind: &'static str| -> Result<(), EnsembleError> {
                if t.rows != self.n {
                    return Err(EnsembleError::RowCount {
                        what: t.origin.clone(),
                        got: t.rows,
                        n: self.n,
                    });
                }
                if t.cols != want {
                    return Err(EnsembleError::ColumnCount {
                        what: t.origin.clone(),
                        got: t.cols,
                        want,
                        kind,
                    });
                }
                if let Some(k) = t.data.iter().position(|v| !v.is_finite()) {
                    return Err(EnsembleError::NonFinite {
                        what: t.origin.clone(),
                        row: k / t.cols.max(1),
                        col: k % t.cols.max(1),
                        value: t.data[k],
                    });
                }
                Ok(())
            };
        let check_axes = |axes: &[Axis], names: &[String]| -> Result<(), EnsembleError> {
            for a in axes {
                if !a.lo.is_finite() || !a.hi.is_finite() {
                    return Err(EnsembleError::BadRange(format!(
                        "the range of '{}' must be finite",
                        names[a.index]
                    )));
                }
                if a.count == Some(0) {
                    return Err(EnsembleError::EmptyAxis);
                }
            }
            if axes.len() > 1 && axes.iter().any(|a| a.count.is_none()) {
                return Err(EnsembleError::BadRange(
                    "with several grid axes, each needs its number of points".into(),
                ));
            }
            let product: usize = axes
                .iter()
                .map(|a| a.count.unwrap_or(self.n))
                .fold(1usize, usize::saturating_mul);
            if product != self.n {
                return Err(EnsembleError::GridSize {
                    axes: axes
                        .iter()
                        .map(|a| names[a.index].clone())
                        .collect::<Vec<_>>()
                        .join(" × "),
                    product,
                    n: self.n,
                });
            }
            Ok(())
        };
        let state_names: Vec<String> = system.states.iter().map(|v| v.name.clone()).collect();
        let param_names: Vec<String> = system.params.iter().map(|v| v.name.clone()).collect();
        match &self.initial {
            InitialStates::Table(t) => check_table(t, system.dim(), "states")?,
            InitialStates::Grid(axes) => check_axes(axes, &state_names)?,
            InitialStates::Uniform { ranges, .. } => {
                for &(i, lo, hi) in ranges {
                    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                        return Err(EnsembleError::BadRange(format!(
                            "the box for '{}' needs finite bounds, low <= high",
                            state_names[i]
                        )));
                    }
                }
            }
            InitialStates::Perturb { step, .. } if !step.is_finite() => {
                return Err(EnsembleError::BadRange(
                    "the perturbation step must be finite".into(),
                ));
            }
            _ => {}
        }
        match &self.params {
            Parameters::Table(t) => check_table(t, system.n_params(), "parameters")?,
            Parameters::Sweep(axes) => check_axes(axes, &param_names)?,
            Parameters::Default => {}
        }
        if let Inputs::Table(t) = &self.inputs {
            check_table(t, system.n_input_values(), "input values")?;
        }
        if self.base_inputs.len() != system.n_input_values() {
            return Err(EnsembleError::BadRange(format!(
                "{} input defaults for {} input values",
                self.base_inputs.len(),
                system.n_input_values()
            )));
        }
        for (what, values) in [
            ("initial state", &self.base_state),
            ("parameter", &self.base_params),
            ("input", &self.base_inputs),
        ] {
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(EnsembleError::BadRange(format!(
                    "a base {what} is not finite ({v})"
                )));
            }
        }
        Ok(())
    }

    /// Initial states of trajectories `range`, row-major [j][dim].
    pub fn states(&self, range: Range<usize>) -> Vec<f64> {
        let mut out = Vec::new();
        self.fill_states(range, &mut out);
        out
    }

    /// Parameters of trajectories `range`, row-major [j][n_params].
    pub fn params(&self, range: Range<usize>) -> Vec<f64> {
        let mut out = Vec::new();
        self.fill_params(range, &mut out);
        out
    }

    /// `states` into a buffer the caller reuses.
    pub fn fill_states(&self, range: Range<usize>, out: &mut Vec<f64>) {
        let dim = self.base_state.len();
        out.clear();
        out.resize(range.len() * dim, 0.0);
        for (row, j) in out.chunks_exact_mut(dim.max(1)).zip(range) {
            self.state_row(j, row);
        }
    }

    /// Trajectory `j`'s initial state into `row` (`dim` long).
    pub fn state_row(&self, j: usize, row: &mut [f64]) {
        let dim = self.base_state.len();
        row.copy_from_slice(&self.base_state);
        match &self.initial {
            InitialStates::Default => {}
            InitialStates::Perturb { state, step } => row[*state] += j as f64 * step,
            InitialStates::Uniform { seed, ranges } => {
                for &(i, lo, hi) in ranges {
                    row[i] = lo + (hi - lo) * uniform_f64(*seed, j as u64, i as u32);
                }
            }
            InitialStates::Grid(axes) => apply_grid(axes, j, self.n, row),
            InitialStates::Table(t) => row.copy_from_slice(&t.data[j * dim..(j + 1) * dim]),
        }
    }

    /// `params` into a buffer the caller reuses.
    pub fn fill_params(&self, range: Range<usize>, out: &mut Vec<f64>) {
        self.fill_rows(range, false, out);
    }

    /// What the kernels and the CPU integrators read per trajectory: the parameters, then
    /// every input's sensor values; row-major [j][n_param_slots].
    pub fn param_slots(&self, range: Range<usize>) -> Vec<f64> {
        let mut out = Vec::new();
        self.fill_param_slots(range, &mut out);
        out
    }

    /// `param_slots` into a buffer the caller reuses.
    pub fn fill_param_slots(&self, range: Range<usize>, out: &mut Vec<f64>) {
        self.fill_rows(range, true, out);
    }

    fn fill_rows(&self, range: Range<usize>, with_inputs: bool, out: &mut Vec<f64>) {
        let width = self.base_params.len()
            + if with_inputs {
                self.base_inputs.len()
            } else {
                0
            };
        out.clear();
        out.resize(range.len() * width, 0.0);
        if width == 0 {
            return;
        }
        for (row, j) in out.chunks_exact_mut(width).zip(range) {
            self.param_row(j, row);
        }
    }

    /// Trajectory `j`'s parameters into `row`, followed by its input values when `row` is
    /// long enough for them (`param_slots`' row).
    pub fn param_row(&self, j: usize, row: &mut [f64]) {
        let np = self.base_params.len();
        let (params, inputs) = row.split_at_mut(np);
        params.copy_from_slice(&self.base_params);
        match &self.params {
            Parameters::Default => {}
            Parameters::Sweep(axes) => apply_grid(axes, j, self.n, params),
            Parameters::Table(t) => params.copy_from_slice(&t.data[j * np..(j + 1) * np]),
        }
        let ni = inputs.len();
        if ni > 0 {
            match &self.inputs {
                Inputs::Default => inputs.copy_from_slice(&self.base_inputs),
                Inputs::Table(t) => inputs.copy_from_slice(&t.data[j * ni..(j + 1) * ni]),
            }
        }
    }
}

/// Sets the grid coordinates of point `j` (first axis slowest, like C-order flattening).
fn apply_grid(axes: &[Axis], j: usize, n: usize, row: &mut [f64]) {
    let mut rest = j;
    for (a, axis) in axes.iter().enumerate().rev() {
        let count = axis.count.unwrap_or(n);
        let k = rest % count;
        rest /= count;
        row[axes[a].index] = axis.value(k, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lorenz() -> System {
        System::from_equations(
            "lorenz",
            &[("x", 1.0), ("y", 0.0), ("z", 0.0)],
            &[("sigma", 10.0), ("rho", 28.0), ("beta", 8.0 / 3.0)],
            "dx = sigma*(y - x)\ndy = x*(rho - z) - y\ndz = x*y - beta*z",
        )
        .unwrap()
    }

    #[test]
    fn sweep_and_grid_orders() {
        let s = lorenz();
        let mut e = Ensemble::new(&s, 5);
        e.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 50.0)]);
        e.validate(&s).unwrap();
        let p = e.params(0..5);
        let rho: Vec<f64> = p.chunks(3).map(|r| r[1]).collect();
        assert_eq!(rho, [0.0, 12.5, 25.0, 37.5, 50.0]);
        assert!(p.chunks(3).all(|r| r[0] == 10.0));

        let mut e = Ensemble::new(&s, 6);
        e.params = Parameters::Sweep(vec![Axis::grid(0, 1.0, 2.0, 2), Axis::grid(1, 0.0, 2.0, 3)]);
        e.validate(&s).unwrap();
        let p = e.params(0..6);
        let pairs: Vec<(f64, f64)> = p.chunks(3).map(|r| (r[0], r[1])).collect();
        assert_eq!(
            pairs,
            [
                (1.0, 0.0),
                (1.0, 1.0),
                (1.0, 2.0),
                (2.0, 0.0),
                (2.0, 1.0),
                (2.0, 2.0)
            ]
        );
        // A chunk in the middle is filled exactly as the whole.
        assert_eq!(e.params(2..4), p[6..12].to_vec());
        e.n = 7;
        assert!(matches!(
            e.validate(&s),
            Err(EnsembleError::GridSize {
                product: 6,
                n: 7,
                ..
            })
        ));
    }

    #[test]
    fn uniform_box_is_seeded_and_chunk_independent() {
        let s = lorenz();
        let mut e = Ensemble::new(&s, 1000);
        e.initial = InitialStates::Uniform {
            seed: 42,
            ranges: vec![(0, -20.0, 20.0), (2, 0.0, 50.0)],
        };
        let all = e.states(0..1000);
        assert_eq!(e.states(500..510), all[1500..1530].to_vec());
        assert!(
            all.chunks(3).all(|r| (-20.0..20.0).contains(&r[0])
                && r[1] == 0.0
                && (0.0..50.0).contains(&r[2]))
        );
        let mean_x = all.chunks(3).map(|r| r[0]).sum::<f64>() / 1000.0;
        assert!(mean_x.abs() < 2.0, "{mean_x}");
    }

    #[test]
    fn tables_are_checked() {
        let s = lorenz();
        let mut e = Ensemble::new(&s, 2);
        let table = |data: Vec<f64>, rows, cols| Table {
            data,
            rows,
            cols,
            origin: "u0.npy".into(),
        };
        e.initial = InitialStates::Table(table(vec![0.0; 6], 2, 3));
        e.validate(&s).unwrap();
        e.initial = InitialStates::Table(table(vec![0.0; 4], 2, 2));
        assert!(matches!(
            e.validate(&s),
            Err(EnsembleError::ColumnCount {
                got: 2,
                want: 3,
                ..
            })
        ));
        e.initial = InitialStates::Table(table(vec![0.0, 1.0, f64::NAN, 0.0, 0.0, 0.0], 2, 3));
        assert_eq!(
            e.validate(&s).unwrap_err().to_string(),
            "u0.npy holds a non-finite value (NaN) at row 0, column 2"
        );
    }
}
