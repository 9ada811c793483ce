//! Input and output normalisation for DeepONets. Data from simulations mixes units (a
//! temperature near 384 K beside a concentration near 0.1), and a network learns best when
//! every input column and every output is near zero with unit spread. A `Scaling` holds the
//! per-column means and standard deviations of the training data's branch inputs, trunk
//! inputs and outputs; it travels in the architecture (and so in the checkpoint), the
//! trainer fits the network to scaled data, and every prediction is returned in the data's
//! own units.
//! Fitting a `Scaling` to a data set and applying it to one live beside the data types
//! (`deeponet::model`), so this file depends on nothing of DeepONet's.

use crate::nn::mlp::model::Matrix;
use serde::{Deserialize, Serialize};

/// x ↦ (x − mean) / std per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Affine {
    /// Means and (population) standard deviations of the columns of row-major `data`. A
    /// column that does not vary gets std 1, so it is only centred.
    pub fn fit(data: &[f64], cols: usize) -> Affine {
        let rows = data.len() / cols.max(1);
        let mut mean = vec![0.0; cols];
        let mut var = vec![0.0; cols];
        for row in data.chunks(cols) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= rows.max(1) as f64);
        for row in data.chunks(cols) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let std = var
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / rows.max(1) as f64).sqrt();
                if sd > 0.0 && sd > 1e-12 * m.abs() {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Affine { mean, std }
    }

    pub fn cols(&self) -> usize {
        self.mean.len()
    }

    pub fn scale(&self, data: &mut [f64]) {
        for row in data.chunks_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    pub fn restore(&self, data: &mut [f64]) {
        for row in data.chunks_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
    }

    fn scaled(&self, m: &Matrix) -> Matrix {
        let mut out = m.clone();
        self.scale(&mut out.data);
        out
    }
}

/// The three maps: branch inputs (per sensor column), trunk inputs (per coordinate) and
/// outputs (per output channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub u: Affine,
    pub y: Affine,
    pub g: Affine,
}

impl Scaling {
    /// Whether it fits data of these widths.
    pub fn matches(&self, sensors: usize, dims: usize, outputs: usize) -> bool {
        (self.u.cols(), self.y.cols(), self.g.cols()) == (sensors, dims, outputs)
            && [&self.u, &self.y, &self.g].iter().all(|a| {
                a.std.iter().chain(&a.mean).all(|v| v.is_finite()) && a.std.iter().all(|&s| s > 0.0)
            })
    }

    /// The network's inputs for data inputs.
    pub fn inputs(&self, u: &Matrix, y: &Matrix) -> (Matrix, Matrix) {
        (self.u.scaled(u), self.y.scaled(y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_to_zero_mean_unit_spread_and_back() {
        let data = [1.0, 10.0, 3.0, 10.0, 5.0, 10.0];
        let a = Affine::fit(&data, 2);
        assert_eq!(a.mean, vec![3.0, 10.0]);
        assert!((a.std[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(a.std[1], 1.0); // constant column: centred only
        let mut d = data;
        a.scale(&mut d);
        assert!((d[0] + d[2] + d[4]).abs() < 1e-15 && d[1] == 0.0);
        assert!(((d[0] * d[0] + d[2] * d[2] + d[4] * d[4]) / 3.0 - 1.0).abs() < 1e-14);
        a.restore(&mut d);
        for (x, y) in d.iter().zip(&data) {
            assert!((x - y).abs() < 1e-14);
        }
    }
}
