//! Input functions for operator learning: samples of a zero-mean Gaussian random field with
//! the RBF kernel k(x, x') = exp(−(x − x')² / (2 l²)), as DeepXDE's `GRF` draws them, but
//! evaluated at the chosen points directly instead of interpolated from a 1,000-point grid.
//! A sample is L z with K = L Lᵀ (Cholesky, f64) and z standard normal from the seeded
//! counter-based generator, so function f of seed s is the same on every machine.

use crate::nn::mlp::model::Matrix;
use crate::rng::normal_f64;

#[derive(Debug, Clone)]
pub struct Grf {
    pub points: Vec<f64>,
    pub length_scale: f64,
    /// Lower-triangular factor of the kernel matrix (plus jitter), row-major.
    factor: Vec<f64>,
    /// The jitter that made the kernel matrix factorable.
    pub jitter: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GrfError {
    #[error("a Gaussian random field needs at least one point and a positive length scale")]
    Empty,
    #[error("the kernel matrix could not be factored even with jitter 1e-4")]
    NotPositive,
}

/// Cholesky factor of `a` [n, n], or None if a pivot is not positive.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

impl Grf {
    /// The field on `points` with length scale `length_scale`. Smooth kernels make K
    /// singular in floating point; the smallest jitter of 1e-12, 1e-11, ... 1e-4 (times
    /// the identity) that lets it factor is used.
    pub fn rbf(points: &[f64], length_scale: f64) -> Result<Grf, GrfError> {
        let n = points.len();
        if n == 0 || length_scale.is_nan() || length_scale <= 0.0 {
            return Err(GrfError::Empty);
        }
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let d = points[i] - points[j];
                k[i * n + j] = (-d * d / (2.0 * length_scale * length_scale)).exp();
            }
        }
        for exponent in (4..=12).rev() {
            let jitter = 10f64.powi(-exponent);
            let mut kj = k.clone();
            for i in 0..n {
                kj[i * n + i] += jitter;
            }
            if let Some(factor) = cholesky(&kj, n) {
                return Ok(Grf {
                    points: points.to_vec(),
                    length_scale,
                    factor,
                    jitter,
                });
            }
        }
        Err(GrfError::NotPositive)
    }

    /// `count` functions [count, points]: function f uses the normals of indices
    /// f·points .. (f + 1)·points of `seed`.
    pub fn sample(&self, seed: u64, count: usize) -> Matrix {
        self.sample_stream(seed, 0, count)
    }

    /// `sample` from another stream of the generator: independent functions for the same
    /// seed (one stream per input signal).
    pub fn sample_stream(&self, seed: u64, stream: u32, count: usize) -> Matrix {
        let n = self.points.len();
        let mut data = vec![0.0; count * n];
        let mut z = vec![0.0; n];
        for f in 0..count {
            for (i, zi) in z.iter_mut().enumerate() {
                *zi = normal_f64(seed, (f * n + i) as u64, stream);
            }
            for i in 0..n {
                let row = &self.factor[i * n..i * n + i + 1];
                data[f * n + i] = row.iter().zip(&z).map(|(l, z)| l * z).sum();
            }
        }
        Matrix {
            rows: count,
            cols: n,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample covariance of 20,000 functions at 6 points is the kernel: each entry's
    /// standard error is at most sqrt(2 / 20,000) = 0.01, so 0.05 is five of them.
    #[test]
    fn samples_have_the_kernel_as_covariance() {
        let points: Vec<f64> = (0..6).map(|i| i as f64 * 0.1).collect();
        let grf = Grf::rbf(&points, 0.2).unwrap();
        let s = grf.sample(7, 20_000);
        let mut worst: f64 = 0.0;
        for i in 0..6 {
            for j in 0..6 {
                let cov = (0..s.rows).map(|f| s.at(f, i) * s.at(f, j)).sum::<f64>() / s.rows as f64;
                let d = points[i] - points[j];
                let want = (-d * d / (2.0 * 0.04)).exp();
                worst = worst.max((cov - want).abs());
            }
        }
        assert!(worst < 0.05, "{worst}");
        // Same seed, same functions; another seed, others.
        assert_eq!(grf.sample(7, 3).data, s.data[..18].to_vec());
        assert_ne!(grf.sample(8, 1).data, s.data[..6].to_vec());
    }

    /// DeepXDE's antiderivative set-up: length scale 0.2 at 100 sensors on [0, 1] (a
    /// nearly singular kernel matrix) factors with a tiny jitter, and L Lᵀ gives it back.
    #[test]
    fn smooth_fields_factor_with_jitter() {
        let points: Vec<f64> = (0..100).map(|i| i as f64 / 99.0).collect();
        let grf = Grf::rbf(&points, 0.2).unwrap();
        assert!(grf.jitter <= 1e-6, "{}", grf.jitter);
        let n = 100;
        let mut worst: f64 = 0.0;
        for i in 0..n {
            for j in 0..n {
                let llt: f64 = (0..n)
                    .map(|k| grf.factor[i * n + k] * grf.factor[j * n + k])
                    .sum();
                let d = points[i] - points[j];
                let k = (-d * d / 0.08).exp() + if i == j { grf.jitter } else { 0.0 };
                worst = worst.max((llt - k).abs());
            }
        }
        assert!(worst < 1e-12, "{worst:e}");
        assert_eq!(Grf::rbf(&[], 0.2).unwrap_err(), GrfError::Empty);
        let v = grf.sample(1, 1).data;
        // A length scale of 0.2 gives smooth functions: neighbours differ little.
        let roughness = v
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max);
        assert!(roughness < 0.2, "{roughness}");
    }
}
