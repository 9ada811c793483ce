//! The tables a run config adds for the commands that run an ensemble for something other
//! than its trajectories: `[lyapunov]`, `[orbit]` and `[basins]`. The ensemble, the span,
//! the solver and the precision keep their run-config names (`n`, `sweep`, `tspan`,
//! `solver`, `dt`, `transient`, ...); only what those commands add lives in their table,
//! with the name of the command's flag. A spec holding one of these tables is that analysis
//! (`phaseflow lyapunov --config`, `POST /v1/lyapunov`), never a simulation.

use serde::{Deserialize, Serialize};

/// `run::OrderedMap` (insertion-ordered), named here so that this file need not import
/// run.rs, which imports it (tests/architecture.rs).
type OrderedMap = toml::map::Map<String, toml::Value>;

/// Fields set in `over` replace those in `base`.
macro_rules! merge_fields {
    ($base:ident, $over:ident, $($f:ident),*) => {{
        $( if $over.$f.is_some() { $base.$f = $over.$f; } )*
        $base
    }};
}

/// `[lyapunov]`: `phaseflow lyapunov`'s own flags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LyapunovSpec {
    /// Exponents: the k largest (default: the full spectrum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Time averaged over after the transient (default 100); not with `tspan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// Time between re-orthonormalisations (default: 10 steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renorm: Option<f64>,
    /// Stretches of the averaging time whose spread gives the standard errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
}

impl LyapunovSpec {
    pub fn merge(mut self, over: LyapunovSpec) -> LyapunovSpec {
        merge_fields!(self, over, k, time, renorm, blocks)
    }
}

/// `[orbit]`: `phaseflow orbit-diagram`'s own flags (the section is the run config's
/// `section`, `direction`, `points` and `transient`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrbitSpec {
    /// Record the local maxima of this state instead of a section's crossings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxima: Option<String>,
    /// The state whose value at each crossing is plotted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observe: Option<String>,
    /// Time recorded after the transient; not with `tspan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// Points closer than this count as one (the distinct-value count, the period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tol: Option<f64>,
}

impl OrbitSpec {
    pub fn merge(mut self, over: OrbitSpec) -> OrbitSpec {
        merge_fields!(self, over, maxima, observe, time, tol)
    }
}

/// `[basins]`: `phaseflow basins`' own flags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasinsSpec {
    /// The grid of initial states: two states, each `[lo, hi, count]`, the first along x.
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub grid: OrderedMap,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_atol: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_rtol: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escape: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attractors: Option<usize>,
    /// An expression of the final state naming its attractor, instead of matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classify: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy_box: Option<u32>,
}

impl BasinsSpec {
    pub fn merge(mut self, over: BasinsSpec) -> BasinsSpec {
        self.grid.extend(over.grid);
        merge_fields!(
            self,
            over,
            window,
            samples,
            match_atol,
            match_rtol,
            escape,
            max_attractors,
            classify,
            entropy_box
        )
    }
}
