//! Grouping trajectories by the attractor they reach, one trajectory at a time in grid order,
//! in memory that grows with the number of attractors, never with the grid.
//!
//! Two ways: `Clusters` matches each trajectory's feature vector (per state, the minimum and
//! maximum over the run's last stretch) to the representatives found so far, with a relative
//! and an absolute tolerance; `Classes` groups the rounded values of a user expression.
//! Either way attractors are numbered when the run is over, by a property of the attractor
//! itself (the representative's features, or the class value, in ascending order), not by
//! where on the grid it was first met, so the same system gives the same numbers on any grid.

use thiserror::Error;

/// The label of a trajectory that reached no attractor: it stopped early (non-finite state,
/// step budget, step-size underflow), its features are not finite, or it left the escape
/// radius.
pub const DIVERGED: i32 = -1;

/// How close two feature vectors must be to belong to one attractor: in every component,
/// |a − b| ≤ atol + rtol · max(|a|, |b|).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub atol: f64,
    pub rtol: f64,
}

impl Default for Match {
    /// 1e-2 both: a fixed point's features converge far below that over a typical run, and
    /// a limit cycle's minimum and maximum sampled every 1/100 of a period are off by about
    /// (π/100)²/2 ≈ 5e-4 of its amplitude.
    fn default() -> Self {
        Match {
            atol: 1e-2,
            rtol: 1e-2,
        }
    }
}

impl Match {
    /// Whether `a` and `b` match, and how far apart they are in units of the tolerance (the
    /// largest component's |a − b| / (atol + rtol · max(|a|, |b|))): ≤ 1 for a match.
    pub fn distance(&self, a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let allowed = self.atol + self.rtol * x.abs().max(y.abs());
                let d = (x - y).abs();
                if d == 0.0 { 0.0 } else { d / allowed }
            })
            .fold(0.0, f64::max)
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClassifyError {
    #[error(
        "more than {max} attractors were found (trajectory {at} matched none of them): the \
         features did not settle, as on a chaotic attractor or a run too short to converge; \
         lengthen the run or the window, widen the tolerances, raise the limit, or classify \
         by an expression"
    )]
    TooMany { max: usize, at: usize },
}

/// One attractor as found: its first trajectory in grid order (the representative), that
/// trajectory's features and final state, and how many trajectories reached it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub representative: usize,
    pub features: Vec<f64>,
    pub final_state: Vec<f64>,
    pub count: usize,
}

/// Greedy matching of feature vectors to representatives.
#[derive(Debug, Clone)]
pub struct Clusters {
    tol: Match,
    max: usize,
    found: Vec<Found>,
    diverged: usize,
}

impl Clusters {
    pub fn new(tol: Match, max: usize) -> Clusters {
        Clusters {
            tol,
            max,
            found: Vec::new(),
            diverged: 0,
        }
    }

    /// The provisional label of trajectory `index` (labels count up in order of first
    /// appearance until `finish` renumbers them). A non-finite feature gives `DIVERGED`.
    /// Of several representatives within tolerance, the nearest wins (the first on a tie),
    /// so a tolerance wider than needed does not hand points to whichever came first.
    pub fn assign(
        &mut self,
        index: usize,
        features: &[f64],
        final_state: &[f64],
    ) -> Result<i32, ClassifyError> {
        if features.iter().any(|v| !v.is_finite()) {
            self.diverged += 1;
            return Ok(DIVERGED);
        }
        let mut best: Option<(usize, f64)> = None;
        for (k, f) in self.found.iter().enumerate() {
            let d = self.tol.distance(features, &f.features);
            if d <= 1.0 && best.is_none_or(|(_, b)| d < b) {
                best = Some((k, d));
            }
        }
        if let Some((k, _)) = best {
            self.found[k].count += 1;
            return Ok(k as i32);
        }
        if self.found.len() == self.max {
            return Err(ClassifyError::TooMany {
                max: self.max,
                at: index,
            });
        }
        self.found.push(Found {
            representative: index,
            features: features.to_vec(),
            final_state: final_state.to_vec(),
            count: 1,
        });
        Ok(self.found.len() as i32 - 1)
    }

    /// A trajectory that stopped early (its status is not success).
    pub fn diverged(&mut self) -> i32 {
        self.diverged += 1;
        DIVERGED
    }

    /// The attractors sorted by their representatives' features (lexicographically: the
    /// minimum of the first state first), and `renumber[provisional] = final label`.
    pub fn finish(self) -> (Vec<Found>, Vec<i32>) {
        sort_found(self.found, |a, b| {
            a.features
                .iter()
                .zip(&b.features)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }
}

/// Sorts attractors found in order of appearance; returns them and the renumbering.
fn sort_found(
    found: Vec<Found>,
    cmp: impl Fn(&Found, &Found) -> std::cmp::Ordering,
) -> (Vec<Found>, Vec<i32>) {
    let mut order: Vec<usize> = (0..found.len()).collect();
    // Ties (equal keys) keep the order of appearance: a stable sort.
    order.sort_by(|&a, &b| cmp(&found[a], &found[b]));
    let mut renumber = vec![0i32; found.len()];
    for (label, &k) in order.iter().enumerate() {
        renumber[k] = label as i32;
    }
    let mut slots: Vec<Option<Found>> = found.into_iter().map(Some).collect();
    let sorted = order
        .iter()
        .map(|&k| slots[k].take().expect("each once"))
        .collect();
    (sorted, renumber)
}

/// Grouping by a user expression's rounded value: one class per distinct integer.
#[derive(Debug, Clone)]
pub struct Classes {
    max: usize,
    found: Vec<Found>,
    /// The rounded value of each class, in order of appearance.
    values: Vec<f64>,
}

impl Classes {
    pub fn new(max: usize) -> Classes {
        Classes {
            max,
            found: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The provisional label of trajectory `index` whose expression has `value`; a
    /// non-finite value gives `DIVERGED`.
    pub fn assign(
        &mut self,
        index: usize,
        value: f64,
        final_state: &[f64],
    ) -> Result<i32, ClassifyError> {
        if !value.is_finite() {
            return Ok(DIVERGED);
        }
        // round() is exact and -0.0 == 0.0, so a class is one integer whatever the sign of
        // a value that rounds to zero.
        let key = value.round();
        if let Some(k) = self.values.iter().position(|&v| v == key) {
            self.found[k].count += 1;
            return Ok(k as i32);
        }
        if self.found.len() == self.max {
            return Err(ClassifyError::TooMany {
                max: self.max,
                at: index,
            });
        }
        self.values.push(key);
        self.found.push(Found {
            representative: index,
            features: vec![key + 0.0],
            final_state: final_state.to_vec(),
            count: 1,
        });
        Ok(self.found.len() as i32 - 1)
    }

    /// The classes in ascending order of value (their `features` hold the value), and the
    /// renumbering.
    pub fn finish(self) -> (Vec<Found>, Vec<i32>) {
        sort_found(self.found, |a, b| a.features[0].total_cmp(&b.features[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_absolute_plus_relative_per_component() {
        let m = Match {
            atol: 0.1,
            rtol: 0.01,
        };
        // Allowed at 10: 0.1 + 0.01·10.2 = 0.202.
        assert!(m.distance(&[10.0], &[10.2]) <= 1.0);
        assert!(m.distance(&[10.0], &[10.21]) > 1.0);
        // Near zero only atol counts.
        assert!(m.distance(&[0.0], &[0.1]) <= 1.0 + 1e-12);
        assert!(m.distance(&[0.0], &[0.11]) > 1.0);
        // Every component must match.
        assert!(m.distance(&[0.0, 0.0], &[0.0, 0.5]) > 1.0);
        let exact = Match {
            atol: 0.0,
            rtol: 0.0,
        };
        assert_eq!(exact.distance(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!(exact.distance(&[1.0], &[1.0 + 1e-15]).is_infinite());
    }

    #[test]
    fn points_join_the_nearest_representative_and_nan_diverges() {
        let mut c = Clusters::new(Match::default(), 8);
        assert_eq!(c.assign(0, &[1.0, 1.0], &[1.0]), Ok(0));
        assert_eq!(c.assign(1, &[-1.0, -1.0], &[-1.0]), Ok(1));
        assert_eq!(c.assign(2, &[1.005, 0.999], &[1.0]), Ok(0));
        assert_eq!(c.assign(3, &[f64::NAN, 0.0], &[0.0]), Ok(DIVERGED));
        assert_eq!(c.assign(4, &[f64::INFINITY, 0.0], &[0.0]), Ok(DIVERGED));
        assert_eq!(c.diverged(), DIVERGED);
        // Representatives are fixed: 1.019 matches 1.0 (allowed 0.01 + 0.01·1.019), but a
        // point that drifted further does not chain onto it.
        assert_eq!(c.assign(5, &[1.019, 1.0], &[1.0]), Ok(0));
        assert_eq!(c.assign(6, &[1.03, 1.0], &[1.0]), Ok(2));
        // Within tolerance of both 1.0 (0.79 of it) and 1.03 (0.69): the nearer one wins.
        assert_eq!(c.assign(7, &[1.016, 1.0], &[1.0]), Ok(2));
        assert_eq!(c.diverged, 3);
        let (found, renumber) = c.finish();
        let counts: Vec<usize> = found.iter().map(|f| f.count).collect();
        // Sorted by features: -1, then 1.0, then 1.03.
        assert_eq!(renumber, [1, 0, 2]);
        assert_eq!(counts, [1, 3, 2]);
        assert_eq!(found[0].representative, 1);
        assert_eq!(found[2].representative, 6);
    }

    #[test]
    fn labels_do_not_depend_on_the_order_of_appearance() {
        let points = [[2.0], [-3.0], [0.5], [2.001], [-3.002]];
        let label_all = |order: &[usize]| {
            let mut c = Clusters::new(Match::default(), 8);
            let provisional: Vec<(usize, i32)> = order
                .iter()
                .map(|&i| (i, c.assign(i, &points[i], &points[i]).unwrap()))
                .collect();
            let (_, renumber) = c.finish();
            let mut labels = vec![0; points.len()];
            for (i, p) in provisional {
                labels[i] = renumber[p as usize];
            }
            labels
        };
        let forward = label_all(&[0, 1, 2, 3, 4]);
        assert_eq!(forward, [2, 0, 1, 2, 0]);
        assert_eq!(label_all(&[4, 3, 2, 1, 0]), forward);
        assert_eq!(label_all(&[2, 4, 0, 1, 3]), forward);
    }

    #[test]
    fn too_many_attractors_is_an_error_naming_the_limit() {
        let mut c = Clusters::new(Match::default(), 2);
        c.assign(0, &[0.0], &[0.0]).unwrap();
        c.assign(1, &[1.0], &[1.0]).unwrap();
        let e = c.assign(2, &[2.0], &[2.0]).unwrap_err();
        assert_eq!(e, ClassifyError::TooMany { max: 2, at: 2 });
        assert!(e.to_string().starts_with("more than 2 attractors"));
    }

    #[test]
    fn expression_classes_are_rounded_values_in_ascending_order() {
        let mut c = Classes::new(4);
        assert_eq!(c.assign(0, 1.2, &[1.0]), Ok(0));
        assert_eq!(c.assign(1, -0.9, &[-1.0]), Ok(1));
        assert_eq!(c.assign(2, -0.2, &[0.0]), Ok(2));
        assert_eq!(c.assign(3, 0.3, &[0.0]), Ok(2));
        assert_eq!(c.assign(4, 0.6, &[0.0]), Ok(0));
        assert_eq!(c.assign(5, f64::NAN, &[0.0]), Ok(DIVERGED));
        let (found, renumber) = c.finish();
        assert_eq!(renumber, [2, 0, 1]);
        let values: Vec<f64> = found.iter().map(|f| f.features[0]).collect();
        assert_eq!(values, [-1.0, 0.0, 1.0]);
        assert_eq!(found[1].count, 2);
        assert!(found[1].features[0].is_sign_positive());
    }
}
