//! Time-dependent inputs: a signal `u(t)` given by its values at equally spaced sensor
//! times, linearly interpolated between them and held at the end values outside them.
//! Each trajectory has its own values, stored after its parameters ("parameter slots"), so
//! one ensemble run integrates the system once per input function.
//!
//! Linear interpolation keeps `u` continuous, so a Runge–Kutta step whose stages land on a
//! sensor time sees one value there, and a step that spans whole sensor intervals
//! integrates `ds/dt = u(t)` exactly (RK4 is exact for piecewise-linear right-hand sides
//! when steps do not straddle a sensor). Kernels compute the same formula as `Signal::eval`
//! in `input_value` (ode::codegen::accessors).

use std::ops::Range;

/// A declared input: its name, sensors and the value it takes when a run gives none.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    /// Number of sensor times, at least 2: t0 + j (t1 − t0)/(sensors − 1).
    pub sensors: usize,
    pub t0: f64,
    pub t1: f64,
    /// The value at every sensor when the run gives no input table.
    pub default: f64,
    /// Span of the name in the system's source, for messages.
    pub span: Option<Range<usize>>,
}

impl Input {
    /// An input sampled at `sensors` times from `t0` to `t1`, 0 by default.
    pub fn new(name: impl Into<String>, sensors: usize, (t0, t1): (f64, f64)) -> Input {
        Input {
            name: name.into(),
            sensors,
            t0,
            t1,
            default: 0.0,
            span: None,
        }
    }

    /// Why this declaration cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.sensors < 2 {
            return Some(format!(
                "input '{}' needs at least 2 sensors (got {})",
                self.name, self.sensors
            ));
        }
        if !(self.t0.is_finite() && self.t1.is_finite() && self.t0 < self.t1) {
            return Some(format!(
                "the sensor span of input '{}' must be [start, end] with start < end (got [{}, {}])",
                self.name, self.t0, self.t1
            ));
        }
        if !self.default.is_finite() {
            return Some(format!(
                "the default of input '{}' must be finite",
                self.name
            ));
        }
        None
    }

    /// The sensor times.
    pub fn times(&self) -> Vec<f64> {
        linspace(self.t0, self.t1, self.sensors)
    }
}

/// `n` (≥ 2) equally spaced times from `t0` to `t1`: `t0 + j h`, the last exactly `t1`.
pub fn linspace(t0: f64, t1: f64, n: usize) -> Vec<f64> {
    let h = (t1 - t0) / (n - 1) as f64;
    (0..n)
        .map(|j| if j + 1 == n { t1 } else { t0 + j as f64 * h })
        .collect()
}

/// Where an input's values sit among a trajectory's parameter slots, and its sensor grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// Slot of the first sensor value (the system's parameters come first).
    pub first: usize,
    pub sensors: usize,
    pub t0: f64,
    pub t1: f64,
}

impl Signal {
    /// Sensor intervals per unit time.
    pub fn inverse_spacing(&self) -> f64 {
        (self.sensors - 1) as f64 / (self.t1 - self.t0)
    }

    /// Time between sensors.
    pub fn spacing(&self) -> f64 {
        (self.t1 - self.t0) / (self.sensors - 1) as f64
    }

    /// The first sensor time after `t`, or `end` if none comes before it. Adaptive solvers
    /// stop there, so no step straddles a kink of the interpolant; the kernels compute the
    /// same operations in `next_sensor` (model::wgsl).
    pub fn next_sensor(&self, t: f64, end: f64) -> f64 {
        let (t0, h) = (self.t0, self.spacing());
        let mut k = ((t - t0) / h).floor().max(-1.0) + 1.0;
        if k > 0.0 && t0 + (k - 1.0) * h > t {
            k -= 1.0;
        }
        if t0 + k * h <= t {
            k += 1.0;
        }
        if k > (self.sensors - 1) as f64 {
            return end;
        }
        (t0 + k * h).min(end)
    }

    /// The interpolated value at time `t`, from a trajectory's parameter slots.
    pub fn eval(&self, slots: &[f64], t: f64) -> f64 {
        let last = (self.sensors - 1) as f64;
        let s = ((t - self.t0) * self.inverse_spacing()).clamp(0.0, last);
        // A NaN time gives j = 0 and a NaN value, as on the GPU the index stays in range.
        let j = (s as usize).min(self.sensors - 2);
        let f = s - j as f64;
        let (a, b) = (slots[self.first + j], slots[self.first + j + 1]);
        a + f * (b - a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_linearly_and_holds_the_ends() {
        let s = Signal {
            first: 1,
            sensors: 3,
            t0: 0.0,
            t1: 2.0,
        };
        let slots = [9.0, 1.0, 3.0, -1.0];
        assert_eq!(s.eval(&slots, 0.0), 1.0);
        assert_eq!(s.eval(&slots, 0.5), 2.0);
        assert_eq!(s.eval(&slots, 1.0), 3.0);
        assert_eq!(s.eval(&slots, 1.75), 0.0);
        assert_eq!(s.eval(&slots, 2.0), -1.0);
        assert_eq!(s.eval(&slots, 5.0), -1.0);
        assert_eq!(s.eval(&slots, -1.0), 1.0);
        assert!(s.eval(&slots, f64::NAN).is_nan());
    }

    #[test]
    fn next_sensor_is_strictly_later() {
        let s = Signal {
            first: 0,
            sensors: 11,
            t0: 0.0,
            t1: 1.0,
        };
        assert_eq!(s.next_sensor(-5.0, 2.0), 0.0);
        assert_eq!(s.next_sensor(0.0, 2.0), 0.1);
        assert_eq!(s.next_sensor(0.1, 2.0), 0.2);
        assert_eq!(s.next_sensor(0.15, 2.0), 0.2);
        assert_eq!(s.next_sensor(0.15, 0.17), 0.17);
        assert_eq!(s.next_sensor(0.95, 2.0), 1.0);
        assert_eq!(s.next_sensor(1.0, 2.0), 2.0);
        // 3 × 0.1 is 0.30000000000000004: a time just past it goes on to 0.4.
        let b = s.next_sensor(0.25, 2.0);
        assert_eq!(s.next_sensor(b, 2.0), 0.4);
    }

    #[test]
    fn sensor_times_end_exactly_at_t1() {
        let u = Input::new("u", 100, (0.0, 1.0));
        let t = u.times();
        assert_eq!((t[0], t[99], t.len()), (0.0, 1.0, 100));
        assert!((t[33] - 1.0 / 3.0).abs() < 1e-15);
        assert!(Input::new("u", 1, (0.0, 1.0)).problem().is_some());
        assert!(Input::new("u", 2, (1.0, 1.0)).problem().is_some());
    }
}
