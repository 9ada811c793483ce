//! The per-trajectory arithmetic of Levenberg–Marquardt in f64 (a handful of fitted
//! quantities, so dense and small): the damped normal equations, the bounds, the
//! covariance estimate.

/// The normal equations of one trajectory at one point: `jtj` = JᵀWJ (row-major n × n),
/// `jtr` = JᵀWr, `cost` = ½ rᵀWr over `count` observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Normal {
    pub jtj: Vec<f64>,
    pub jtr: Vec<f64>,
    pub cost: f64,
    pub count: usize,
}

impl Normal {
    pub fn zero(n: usize) -> Normal {
        Normal {
            jtj: vec![0.0; n * n],
            jtr: vec![0.0; n],
            cost: 0.0,
            count: 0,
        }
    }

    /// Adds one observed value: weighted residual `w·r` with gradient row `w·j` (√w on
    /// each, so that the products carry w).
    pub fn add(&mut self, r: f64, j: &[f64]) {
        let n = self.jtr.len();
        for a in 0..n {
            self.jtr[a] += j[a] * r;
            for b in 0..n {
                self.jtj[a * n + b] += j[a] * j[b];
            }
        }
        self.cost += 0.5 * r * r;
        self.count += 1;
    }

    /// Adds one observed value whose gradient row is zero except at `index` (the unknowns
    /// it depends on, each once), where it is `value`: `add` for rows that touch a few of
    /// many unknowns (a multiple-shooting segment's).
    pub fn add_sparse(&mut self, r: f64, index: &[usize], value: &[f64]) {
        let n = self.jtr.len();
        for (&a, &va) in index.iter().zip(value) {
            self.jtr[a] += va * r;
            for (&b, &vb) in index.iter().zip(value) {
                self.jtj[a * n + b] += va * vb;
            }
        }
        self.cost += 0.5 * r * r;
        self.count += 1;
    }

    /// Adds another set of observations' equations (the cost of a shared fit is the sum
    /// over trajectories, and so are its gradient and Gauss–Newton matrix).
    pub fn merge(&mut self, other: &Normal) {
        for (a, b) in self.jtj.iter_mut().zip(&other.jtj) {
            *a += b;
        }
        for (a, b) in self.jtr.iter_mut().zip(&other.jtr) {
            *a += b;
        }
        self.cost += other.cost;
        self.count += other.count;
    }
}

/// Cholesky factor L (row-major, lower) of a symmetric positive definite matrix, or
/// `None` when a pivot is not positive (singular or indefinite to working precision).
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
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

/// Solves L Lᵀ x = b.
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            y[i] -= l[i * n + k] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= l[k * n + i] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    y
}

/// The damped step δ of (JᵀWJ + λ·diag(JᵀWJ)) δ = −JᵀWr (Marquardt's scaling, with a
/// floor on the diagonal so a parameter the data do not see still gets a finite step),
/// or `None` if the damped matrix is not positive definite.
pub fn damped_step(normal: &Normal, lambda: f64) -> Option<Vec<f64>> {
    let n = normal.jtr.len();
    let mut a = normal.jtj.clone();
    let largest = (0..n).map(|i| a[i * n + i]).fold(0.0, f64::max);
    for i in 0..n {
        let d = a[i * n + i].max(1e-12 * largest).max(f64::MIN_POSITIVE);
        a[i * n + i] += lambda * d;
    }
    let l = cholesky(&a, n)?;
    let neg: Vec<f64> = normal.jtr.iter().map(|g| -g).collect();
    Some(cholesky_solve(&l, n, &neg))
}

/// How a fit ends whose next (damped) step moves it less than xtol. At a minimum the
/// Gauss–Newton step itself, projected onto the bounds, is tiny too (the cost is flat to
/// the integration's error there, so damping grows through rejections until the step
/// vanishes): converged. Where the Gauss–Newton step is still large, only the damping made
/// the step small and the fit never got anywhere: stalled. "Tiny" is √xtol relative, far
/// above the few-ulp steps a minimum leaves and far below a fit that has not moved.
pub fn small_step_status(
    normal: &Normal,
    x: &[f64],
    bounds: &[(f64, f64)],
    xtol: f64,
) -> super::problem::FitStatus {
    use super::problem::FitStatus;
    let Some(step) = damped_step(normal, 0.0) else {
        return FitStatus::Stalled;
    };
    let moved: f64 = clip(x, &step, bounds)
        .iter()
        .zip(x)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let size = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let tol = xtol.sqrt();
    if moved <= tol * (size + tol) {
        FitStatus::Converged
    } else {
        FitStatus::Stalled
    }
}

/// `x` moved by `step` and clipped into the bounds (a projected step).
pub fn clip(x: &[f64], step: &[f64], bounds: &[(f64, f64)]) -> Vec<f64> {
    x.iter()
        .zip(step)
        .zip(bounds)
        .map(|((x, d), &(lo, hi))| (x + d).clamp(lo, hi))
        .collect()
}

/// The covariance estimate σ²·(JᵀWJ)⁻¹ with σ² = 2·cost / (m − n) (the residual variance
/// with m observed values and n fitted quantities); NaN where JᵀWJ is singular or m ≤ n.
pub fn covariance(normal: &Normal) -> Vec<f64> {
    let n = normal.jtr.len();
    let nan = vec![f64::NAN; n * n];
    if normal.count <= n {
        return nan;
    }
    let Some(l) = cholesky(&normal.jtj, n) else {
        return nan;
    };
    let sigma2 = 2.0 * normal.cost / (normal.count - n) as f64;
    let mut cov = vec![0.0; n * n];
    for c in 0..n {
        let mut e = vec![0.0; n];
        e[c] = 1.0;
        let col = cholesky_solve(&l, n, &e);
        for r in 0..n {
            cov[r * n + c] = sigma2 * col[r];
        }
    }
    cov
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight-line fit y = a + b·t through the normal equations: the undamped step
    /// lands on the least-squares solution, and the covariance is the textbook one.
    #[test]
    fn a_linear_fit_lands_in_one_step_with_the_textbook_covariance() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.1, 2.9, 5.2, 7.1, 8.8];
        let mut normal = Normal::zero(2);
        // Residuals at (a, b) = (0, 0): r = model − y = −y, gradient (1, t).
        for (t, y) in t.iter().zip(y) {
            normal.add(-y, &[1.0, *t]);
        }
        let step = damped_step(&normal, 0.0).unwrap();
        // Closed form: b = Sxy/Sxx, a = ȳ − b·t̄.
        let (tm, ym) = (2.0, y.iter().sum::<f64>() / 5.0);
        let sxy: f64 = t.iter().zip(y).map(|(t, y)| (t - tm) * (y - ym)).sum();
        let b = sxy / 10.0;
        let a = ym - b * tm;
        assert!((step[0] - a).abs() < 1e-12 && (step[1] - b).abs() < 1e-12);
        // Residual variance and Var(b) = σ²/Sxx at the solution.
        let mut at = Normal::zero(2);
        for (t, y) in t.iter().zip(y) {
            at.add(a + b * t - y, &[1.0, *t]);
        }
        let s2: f64 = 2.0 * at.cost / 3.0;
        let cov = covariance(&at);
        assert!((cov[3] - s2 / 10.0).abs() < 1e-12, "{cov:?}");
        assert!((cov[0] - s2 * (1.0 / 5.0 + tm * tm / 10.0)).abs() < 1e-12);
        // Damping shortens the step; bounds clip it.
        let damped = damped_step(&normal, 10.0).unwrap();
        assert!(damped[1].abs() < step[1].abs());
        assert_eq!(
            clip(&[0.0, 0.0], &step, &[(0.0, 0.5), (-1.0, 1.0)]),
            [0.5, 1.0]
        );
        // A singular system has no covariance.
        let mut flat = Normal::zero(2);
        for y in y {
            flat.add(-y, &[1.0, 1.0]);
        }
        assert!(covariance(&flat).iter().all(|v| v.is_nan()));
    }
}
