//! `orbit.png`: the classic density picture of an orbit diagram, the swept parameter
//! across, the observed values up, each cell darker with the logarithm of the points in it
//! (`OrbitDiagram::histogram`, `io::raster::density_colors`).

use crate::io::{Raster, density_colors};
use crate::ode::orbit::OrbitDiagram;

/// Most columns and rows of cells: about the plotting area's pixels, so that a cell is
/// never narrower than a pixel (a thinner one could vanish between pixel centres).
const MAX_COLS: usize = 800;
const ROWS: usize = 600;

/// The PNG bytes of `diagram`, with `title` and the vertical axis labelled `y_label`.
pub fn picture(diagram: &OrbitDiagram, title: &str, y_label: &str) -> Result<Vec<u8>, String> {
    // One column per parameter value while they fit: more columns than values would leave
    // empty stripes between them.
    let mut xs: Vec<f64> = diagram
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let cols = xs.len().clamp(1, MAX_COLS);
    let (counts, x_range, y_range) = diagram.histogram(cols, ROWS);
    Raster {
        title: title.to_string(),
        x_label: diagram.parameter.clone(),
        y_label: y_label.to_string(),
        x_range,
        y_range,
        cols,
        rows: ROWS,
        colors: density_colors(&counts),
    }
    .to_png()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_branch_diagram_draws_two_dark_bands() {
        // Period 1 below c = 1, period 2 above.
        let values: Vec<f64> = (0..40).map(|j| j as f64 / 20.0).collect();
        let points = values
            .iter()
            .map(|&c| {
                if c < 1.0 {
                    vec![0.0; 8]
                } else {
                    vec![-1.0, 1.0, -1.0, 1.0]
                }
            })
            .collect();
        let d = OrbitDiagram {
            parameter: "c".into(),
            observed: "x".into(),
            values,
            points,
        };
        let png = picture(&d, "t", "x maxima").unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let dark = img.pixels().filter(|p| p.0[0] < 100).count();
        // Three thin bands of 40 columns × 1 row across ~800 × 600 pixels: some thousands of
        // dark pixels, far from the whole area.
        assert!(dark > 1000 && dark < 40_000, "{dark}");
    }
}
