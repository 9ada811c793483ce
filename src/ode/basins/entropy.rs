//! Basin entropy (A. Daza, A. Wagemakers, B. Georgeot, D. Guéry-Odelin, M. A. F. Sanjuán,
//! "Basin entropy: a new tool to analyze uncertainty in dynamical systems", Scientific
//! Reports 6, 31416 (2016)): the grid is cut into boxes of ε × ε points; each box's Gibbs
//! entropy over the labels in it, S_i = Σ_j p_ij ln(1/p_ij), is zero inside a basin and
//! positive on a boundary. S_b is the mean over all boxes, S_bb the mean over boundary boxes
//! (those with more than one label); S_bb > ln 2 is their sufficient condition for a fractal
//! boundary. Diverging trajectories count as one more outcome, as the paper counts escapes.

/// The basin entropy of a label map and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BasinEntropy {
    /// ε: the side of a box in grid points.
    pub box_size: usize,
    /// Whole boxes in the grid (a partial row or column of boxes at the edge is left out).
    pub boxes: usize,
    /// Boxes holding more than one label.
    pub boundary_boxes: usize,
    /// S_b: the mean entropy over all boxes (NaN when the grid holds no whole box).
    pub entropy: f64,
    /// S_bb: the mean entropy over boundary boxes (0 when there are none).
    pub boundary_entropy: f64,
}

impl BasinEntropy {
    /// The share of boxes that straddle a boundary.
    pub fn boundary_fraction(&self) -> f64 {
        self.boundary_boxes as f64 / self.boxes as f64
    }

    /// Daza et al.'s log 2 criterion: a boundary entropy above ln 2 proves the boundary fractal
    /// (below it, the test says nothing).
    pub fn fractal(&self) -> bool {
        self.boundary_entropy > std::f64::consts::LN_2
    }
}

/// The basin entropy of `labels` [ny][nx] with boxes of `box_size` × `box_size` points.
pub fn basin_entropy(labels: &[i32], ny: usize, nx: usize, box_size: usize) -> BasinEntropy {
    assert_eq!(labels.len(), ny * nx, "labels are [ny][nx]");
    let e = box_size.max(1);
    let (by, bx) = (ny / e, nx / e);
    let mut total = 0.0;
    let mut boundary = 0usize;
    // The labels of one box, sorted so equal labels are adjacent: counting without a map.
    let mut cell = Vec::with_capacity(e * e);
    for i in 0..by {
        for j in 0..bx {
            cell.clear();
            for r in i * e..(i + 1) * e {
                cell.extend_from_slice(&labels[r * nx + j * e..r * nx + (j + 1) * e]);
            }
            cell.sort_unstable();
            let n = cell.len() as f64;
            let mut s = 0.0;
            let mut run = 1usize;
            for k in 1..=cell.len() {
                if k < cell.len() && cell[k] == cell[k - 1] {
                    run += 1;
                } else {
                    let p = run as f64 / n;
                    s -= p * p.ln();
                    run = 1;
                }
            }
            if cell.first() != cell.last() {
                boundary += 1;
            }
            total += s;
        }
    }
    let boxes = by * bx;
    BasinEntropy {
        box_size: e,
        boxes,
        boundary_boxes: boundary,
        entropy: if boxes == 0 {
            f64::NAN
        } else {
            total / boxes as f64
        },
        boundary_entropy: if boundary == 0 {
            0.0
        } else {
            total / boundary as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 × 10 map split at column `at`: label 0 left of it, 1 from it on.
    fn split(at: usize) -> Vec<i32> {
        (0..100).map(|k| i32::from(k % 10 >= at)).collect()
    }

    #[test]
    fn a_boundary_between_boxes_has_no_entropy() {
        let e = basin_entropy(&split(5), 10, 10, 5);
        assert_eq!((e.boxes, e.boundary_boxes), (4, 0));
        assert_eq!((e.entropy, e.boundary_entropy), (0.0, 0.0));
        assert!(!e.fractal());
    }

    #[test]
    fn a_boundary_through_boxes_has_their_gibbs_entropy() {
        // Column 3 cuts the left boxes 3 : 2.
        let e = basin_entropy(&split(3), 10, 10, 5);
        let s = -(0.6f64 * 0.6f64.ln() + 0.4 * 0.4f64.ln());
        assert_eq!((e.boxes, e.boundary_boxes), (4, 2));
        assert!((e.boundary_entropy - s).abs() < 1e-15);
        assert!((e.entropy - s / 2.0).abs() < 1e-15);
        assert_eq!(e.boundary_fraction(), 0.5);
        assert!(!e.fractal()); // ln 2 is the most two labels can give
    }

    #[test]
    fn evenly_mixed_boxes_pass_the_log_2_test_and_edges_are_left_out() {
        // Three labels cycling: every 3 × 3 box holds each three times: S = ln 3 > ln 2.
        let labels: Vec<i32> = (0..56i32).map(|k| (k % 8) % 3 - 1).collect();
        let e = basin_entropy(&labels, 7, 8, 3);
        assert_eq!((e.boxes, e.boundary_boxes), (4, 4));
        assert!((e.boundary_entropy - 3f64.ln()).abs() < 1e-15);
        assert!(e.fractal());
        assert!(basin_entropy(&labels, 7, 8, 9).entropy.is_nan());
    }
}
