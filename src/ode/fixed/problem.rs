//! What a fixed-step run integrates: the time grid and which steps are saved.

use crate::model::System;
use crate::ode::ensemble::Ensemble;
use crate::ode::solver::Solver;
use crate::precision::Precision;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ProblemError {
    #[error("the time span must go forward: t0 = {t0} is not before t1 = {t1}")]
    EmptySpan { t0: f64, t1: f64 },
    #[error("dt must be a positive, finite number (got {0})")]
    BadDt(f64),
    #[error(
        "the span t1 - t0 = {span} is not a whole number of steps of dt = {dt} ({steps:.4} steps); \
         choose a dt that divides the span, e.g. {suggestion}"
    )]
    NotWholeSteps {
        span: f64,
        dt: f64,
        steps: f64,
        suggestion: f64,
    },
    #[error(
        "{steps} steps is more than the {max} steps one run can take; use a larger dt or a shorter span"
    )]
    TooManySteps { steps: f64, max: u64 },
    #[error("times must be finite (t0 = {t0}, t1 = {t1})")]
    NonFiniteSpan { t0: f64, t1: f64 },
    #[error("save_every must be at least 1")]
    ZeroSaveEvery,
}

/// A uniform grid of steps: step `i` starts at `t0 + i*dt` (never an accumulated sum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeGrid {
    pub t0: f64,
    pub dt: f64,
    pub n_steps: u32,
}

/// Steps are counted in u32 on the GPU and their times computed as `t0 + f32(i)*dt`, which is
/// exact for i below 2^24.
pub const MAX_STEPS: u64 = 1 << 24;

impl TimeGrid {
    /// The grid from `t0` to `t1` with step `dt`, which must divide the span (to a relative
    /// 1e-9, so that 10/0.001 counts as 10,000 steps).
    pub fn from_span(t0: f64, t1: f64, dt: f64) -> Result<TimeGrid, ProblemError> {
        if !t0.is_finite() || !t1.is_finite() {
            return Err(ProblemError::NonFiniteSpan { t0, t1 });
        }
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(ProblemError::BadDt(dt));
        }
        if t1 <= t0 {
            return Err(ProblemError::EmptySpan { t0, t1 });
        }
        let steps = (t1 - t0) / dt;
        let n = steps.round();
        if (steps - n).abs() > 1e-9 * steps.max(1.0) || n < 1.0 {
            let suggestion = (t1 - t0) / steps.ceil().max(1.0);
            return Err(ProblemError::NotWholeSteps {
                span: t1 - t0,
                dt,
                steps,
                suggestion,
            });
        }
        if n > MAX_STEPS as f64 {
            return Err(ProblemError::TooManySteps {
                steps: n,
                max: MAX_STEPS,
            });
        }
        Ok(TimeGrid {
            t0,
            dt,
            n_steps: n as u32,
        })
    }

    pub fn t1(&self) -> f64 {
        self.time_of_step(self.n_steps)
    }

    pub fn time_of_step(&self, i: u32) -> f64 {
        self.t0 + i as f64 * self.dt
    }
}

/// What to keep of each trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Save {
    /// Only the state at the end of the span (the cheapest mode).
    #[default]
    Final,
    /// The initial state and every k-th step; the final state is always included, so the
    /// last interval may be shorter than k steps.
    Every(u32),
}

/// Save slots and the steps they are taken at. Slot `s` holds the state after step
/// `step_of_slot(s)`; the kernel computes the same mapping as `slot_of_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavePlan {
    pub n_steps: u32,
    /// Saves happen when the step count is a multiple of this, and at the end.
    pub every: u32,
    /// Whether slot 0 holds the initial state.
    pub initial: bool,
}

impl SavePlan {
    pub fn new(save: Save, n_steps: u32) -> Result<SavePlan, ProblemError> {
        Ok(match save {
            Save::Final => SavePlan {
                n_steps,
                every: n_steps,
                initial: false,
            },
            Save::Every(0) => return Err(ProblemError::ZeroSaveEvery),
            Save::Every(k) => SavePlan {
                n_steps,
                every: k.min(n_steps),
                initial: true,
            },
        })
    }

    pub fn n_slots(&self) -> usize {
        self.n_steps.div_ceil(self.every) as usize + usize::from(self.initial)
    }

    pub fn step_of_slot(&self, slot: usize) -> u32 {
        let s = slot as u64 + u64::from(!self.initial);
        (s * self.every as u64).min(self.n_steps as u64) as u32
    }

    /// The slot a save after `step` steps goes to (`step` must be a save point).
    pub fn slot_of_step(&self, step: u32) -> usize {
        step.div_ceil(self.every) as usize - usize::from(!self.initial)
    }

    /// The times of all slots.
    pub fn times(&self, grid: &TimeGrid) -> Vec<f64> {
        (0..self.n_slots())
            .map(|s| grid.time_of_step(self.step_of_slot(s)))
            .collect()
    }
}

/// A fixed-step ensemble problem.
#[derive(Debug, Clone)]
pub struct FixedStepProblem {
    pub system: System,
    pub solver: Solver,
    pub grid: TimeGrid,
    pub save: Save,
    pub ensemble: Ensemble,
    pub precision: Precision,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_counts_whole_steps() {
        let g = TimeGrid::from_span(0.0, 10.0, 1e-3).unwrap();
        assert_eq!(g.n_steps, 10_000);
        assert_eq!(g.t1(), 10.0);
        assert!(matches!(
            TimeGrid::from_span(0.0, 1.0, 0.3),
            Err(ProblemError::NotWholeSteps { .. })
        ));
        assert!(matches!(
            TimeGrid::from_span(1.0, 1.0, 0.1),
            Err(ProblemError::EmptySpan { .. })
        ));
        assert!(matches!(
            TimeGrid::from_span(0.0, 1.0, -0.1),
            Err(ProblemError::BadDt(_))
        ));
        assert!(matches!(
            TimeGrid::from_span(0.0, 1e9, 1.0),
            Err(ProblemError::TooManySteps { .. })
        ));
    }

    #[test]
    fn save_slots_map_to_steps_both_ways() {
        let p = SavePlan::new(Save::Every(3), 10).unwrap();
        assert_eq!(p.n_slots(), 5);
        let steps: Vec<u32> = (0..5).map(|s| p.step_of_slot(s)).collect();
        assert_eq!(steps, [0, 3, 6, 9, 10]);
        for (s, &step) in steps.iter().enumerate().skip(1) {
            assert_eq!(p.slot_of_step(step), s);
        }
        let f = SavePlan::new(Save::Final, 10).unwrap();
        assert_eq!(f.n_slots(), 1);
        assert_eq!(f.step_of_slot(0), 10);
        assert_eq!(f.slot_of_step(10), 0);
        let g = TimeGrid::from_span(1.0, 2.0, 0.1).unwrap();
        let t = SavePlan::new(Save::Every(5), g.n_steps).unwrap().times(&g);
        assert_eq!(t, vec![1.0, 1.5, 2.0]);
    }
}
