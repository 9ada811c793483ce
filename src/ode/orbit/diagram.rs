//! The diagram itself: per trajectory, the parameter value it ran at and the observed
//! values at its records; the distinct values that tell a period, and the point counts the
//! classic density picture is drawn from.

/// Recorded points per trajectory, with the parameter value each trajectory ran at.
#[derive(Debug, Clone, PartialEq)]
pub struct OrbitDiagram {
    /// The swept parameter's name and the observed state's name, for labels.
    pub parameter: String,
    pub observed: String,
    /// Per trajectory: the parameter value and the observed values at its records.
    pub values: Vec<f64>,
    pub points: Vec<Vec<f64>>,
}

impl OrbitDiagram {
    /// The ranges the points cover: the parameter's and the observed values' (finite ones,
    /// of trajectories with a finite parameter).
    pub fn extent(&self) -> ((f64, f64), (f64, f64)) {
        let range = |it: &mut dyn Iterator<Item = f64>| {
            it.filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let x = range(&mut self.values.iter().copied());
        let y = range(
            &mut self
                .values
                .iter()
                .zip(&self.points)
                .filter(|(p, _)| p.is_finite())
                .flat_map(|(_, pts)| pts.iter().copied()),
        );
        (x, y)
    }

    /// Point counts on a `cols × rows` grid over `extent` (the y range padded by 2% so
    /// the extreme branches do not sit on the frame), row 0 at the bottom; columns are
    /// parameter values, so each trajectory lands in one column.
    pub fn histogram(&self, cols: usize, rows: usize) -> (Vec<u32>, (f64, f64), (f64, f64)) {
        let ((x0, x1), (y0, y1)) = self.extent();
        let (x0, x1) = if x0 < x1 {
            (x0, x1)
        } else {
            (x0 - 0.5, x0 + 0.5)
        };
        let pad = if y1 > y0 { 0.02 * (y1 - y0) } else { 0.5 };
        let (y0, y1) = if y0.is_finite() {
            (y0 - pad, y1 + pad)
        } else {
            (0.0, 1.0)
        };
        let mut counts = vec![0u32; cols * rows];
        let bin = |v: f64, lo: f64, hi: f64, n: usize| {
            (((v - lo) / (hi - lo) * n as f64) as usize).min(n - 1)
        };
        for (&p, pts) in self.values.iter().zip(&self.points) {
            if !p.is_finite() {
                continue;
            }
            let c = bin(p, x0, x1, cols);
            for &v in pts.iter().filter(|v| v.is_finite()) {
                let r = bin(v, y0, y1, rows);
                counts[r * cols + c] = counts[r * cols + c].saturating_add(1);
            }
        }
        (counts, (x0, x1), (y0, y1))
    }
}

/// The distinct values among `points`, merging values closer than `tol` to the previous
/// one in sorted order (each group reported by its mean): the branches of a periodic orbit
/// at one parameter value. NaN is ignored.
pub fn distinct_values(points: &[f64], tol: f64) -> Vec<f64> {
    let mut v: Vec<f64> = points.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut groups: Vec<(f64, usize, f64)> = Vec::new(); // (sum, count, last)
    for x in v {
        match groups.last_mut() {
            Some((sum, count, last)) if x - *last <= tol => {
                *sum += x;
                *count += 1;
                *last = x;
            }
            _ => groups.push((x, 1, x)),
        }
    }
    groups.into_iter().map(|(s, c, _)| s / c as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_merge_close_points_and_skip_nan() {
        let d = distinct_values(&[2.0, 1.0, 1.0005, f64::NAN, 2.0004, 5.0], 1e-3);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            (d[0] - 1.00025).abs() < 1e-12 && (d[2] - 5.0).abs() < 1e-12,
            "{d:?}"
        );
        assert!(distinct_values(&[], 1.0).is_empty());
    }

    #[test]
    fn histogram_puts_each_trajectory_in_its_column() {
        let diagram = OrbitDiagram {
            parameter: "c".into(),
            observed: "x".into(),
            values: vec![0.0, 1.0, 2.0, f64::NAN],
            points: vec![vec![0.0, 0.0], vec![1.0], vec![2.0, f64::NAN], vec![9.0]],
        };
        let (counts, xr, yr) = diagram.histogram(3, 4);
        assert_eq!(xr, (0.0, 2.0));
        assert!(
            (yr.0 + 0.04).abs() < 1e-12 && (yr.1 - 2.04).abs() < 1e-12,
            "{yr:?}"
        );
        // Column 0 holds two points at the bottom row, column 2 one at the top.
        assert_eq!(counts[0], 2);
        assert_eq!(counts[3 * 3 + 2], 1);
        assert_eq!(
            counts.iter().sum::<u32>(),
            4,
            "NaN points and parameters are skipped"
        );
    }
}
