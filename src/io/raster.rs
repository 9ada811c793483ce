//! Pictures of values on a grid, with labelled axes, as PNG bytes: orbit (bifurcation)
//! diagrams as point densities, Lyapunov exponents over a parameter plane as a colour map,
//! basins of attraction as a label map. plotters draws the frame, ticks and labels; the
//! cells are written straight into the plotting area's pixels, so a million cells cost a
//! million pixel writes rather than a million drawn rectangles.

use super::image::encode_png;
use super::label_map::label_color;
use super::plot::{PlotError, register_font, snap, tick};
use plotters::prelude::*;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;

/// Cells over a rectangle of the plane, row 0 at the bottom (lowest y), as a chart.
#[derive(Debug, Clone)]
pub struct Raster {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The x and y ranges the cells cover, left to right and bottom to top.
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub cols: usize,
    pub rows: usize,
    /// `rows × cols` colours, row by row from the bottom.
    pub colors: Vec<[u8; 3]>,
}

impl Raster {
    /// The picture as a PNG file's bytes. Each pixel of the plotting area shows the cell
    /// under its centre (nearest cell), so any grid fills the frame exactly.
    pub fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        register_font();
        let fail = |e: String| PlotError::new(&self.title, e);
        if self.cols == 0 || self.rows == 0 || self.colors.len() != self.rows * self.cols {
            return Err(fail(format!(
                "{} colours do not fill a grid of {} × {} cells",
                self.colors.len(),
                self.rows,
                self.cols
            )));
        }
        let (x0, x1) = widen(self.x_range);
        let (y0, y1) = widen(self.y_range);
        let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        let area = {
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
            let e = |x: &dyn std::fmt::Display| fail(x.to_string());
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(84)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|x| e(&x))?;
            let (sx, sy) = (Some(x1 - x0), Some(y1 - y0));
            chart
                .configure_mesh()
                .disable_mesh()
                .x_label_formatter(&|v| tick(snap(*v, sx)))
                .y_label_formatter(&|v| tick(snap(*v, sy)))
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .draw()
                .map_err(|x| e(&x))?;
            let area = chart.plotting_area().get_pixel_range();
            root.present().map_err(|x| e(&x))?;
            area
        };
        let (px0, px1) = (
            area.0.start.max(0) as u32,
            area.0.end.min(WIDTH as i32) as u32,
        );
        let (py0, py1) = (
            area.1.start.max(0) as u32,
            area.1.end.min(HEIGHT as i32) as u32,
        );
        let (w, h) = ((px1 - px0).max(1) as f64, (py1 - py0).max(1) as f64);
        for py in py0..py1 {
            // Pixel rows run downwards, cell rows upwards.
            let fy = 1.0 - ((py - py0) as f64 + 0.5) / h;
            let r = ((fy * self.rows as f64) as usize).min(self.rows - 1);
            for px in px0..px1 {
                let fx = ((px - px0) as f64 + 0.5) / w;
                let c = ((fx * self.cols as f64) as usize).min(self.cols - 1);
                let at = 3 * (py * WIDTH + px) as usize;
                rgb[at..at + 3].copy_from_slice(&self.colors[r * self.cols + c]);
            }
        }
        encode_png(WIDTH, HEIGHT, &rgb, image::ColorType::Rgb8).map_err(fail)
    }
}

/// A range the chart can draw: ordered, finite and not empty.
fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
    }
}

/// Point counts per cell as ink on paper: white where nothing fell, darker with the
/// logarithm of the count, black at the busiest cell. The logarithm keeps the faint
/// branches of an orbit diagram visible next to its dense chaotic bands.
pub fn density_colors(counts: &[u32]) -> Vec<[u8; 3]> {
    let most = counts.iter().copied().max().unwrap_or(0);
    let scale = ((most as f64) + 1.0).ln().max(f64::MIN_POSITIVE);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                return [255; 3];
            }
            // Even one point is clearly visible (at least 35% ink).
            let ink = 0.35 + 0.65 * ((c as f64) + 1.0).ln() / scale;
            let v = (255.0 * (1.0 - ink.min(1.0))).round() as u8;
            [v; 3]
        })
        .collect()
}

/// Values on a perceptually even colour map (dark blue → green → yellow, viridis-like)
/// between `lo` and `hi`; values outside are clamped, NaN is grey.
pub fn value_colors(values: &[f64], lo: f64, hi: f64) -> Vec<[u8; 3]> {
    // Samples of the viridis map at 0, 1/4, 1/2, 3/4, 1 (its published endpoints and
    // quartiles), interpolated linearly.
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let span = if hi > lo { hi - lo } else { 1.0 };
    values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                return [160; 3];
            }
            let f = ((v - lo) / span).clamp(0.0, 1.0) * 4.0;
            let i = (f.floor() as usize).min(3);
            let w = f - i as f64;
            let mix = |k: usize| (STOPS[i][k] * (1.0 - w) + STOPS[i + 1][k] * w).round() as u8;
            [mix(0), mix(1), mix(2)]
        })
        .collect()
}

/// Labels as distinct colours (`label_map::label_color`: a qualitative palette, then hues
/// spaced by the golden angle); negative labels (no attractor) near-black.
pub fn label_colors(labels: &[i32]) -> Vec<[u8; 3]> {
    labels
        .iter()
        .map(|&l| {
            let c = label_color(l);
            [c.0, c.1, c.2]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).expect("a PNG").to_rgb8()
    }

    #[test]
    fn cells_fill_the_plotting_area_in_their_places() {
        // Two columns, two rows: bottom-left red, bottom-right green, top blue, top-right
        // white-ish grey.
        let raster = Raster {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_range: (0.0, 2.0),
            y_range: (0.0, 2.0),
            cols: 2,
            rows: 2,
            colors: vec![[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]],
        };
        let img = decode(&raster.to_png().unwrap());
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        let (r, g, b) = (count([255, 0, 0]), count([0, 255, 0]), count([0, 0, 255]));
        // Four equal quarters of the plotting area, which is most of the picture.
        assert!(
            r > 50_000 && r.abs_diff(g) <= r / 50 && r.abs_diff(b) <= r / 50,
            "{r} {g} {b}"
        );
        // Red lies below and left of blue... find their centroids.
        let centroid = |c: [u8; 3]| {
            let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
            for (x, y, p) in img.enumerate_pixels() {
                if p.0 == c {
                    sx += x as u64;
                    sy += y as u64;
                    n += 1;
                }
            }
            (sx / n, sy / n)
        };
        let (red, green, blue) = (
            centroid([255, 0, 0]),
            centroid([0, 255, 0]),
            centroid([0, 0, 255]),
        );
        assert!(red.0 < green.0 && red.1 == green.1, "{red:?} {green:?}");
        assert!(blue.1 < red.1 && blue.0 == red.0, "{blue:?} {red:?}");
    }

    #[test]
    fn a_grid_that_does_not_match_its_colours_is_an_error_not_a_panic() {
        let raster = Raster {
            title: "t".into(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (0.0, f64::NAN),
            y_range: (1.0, 1.0),
            cols: 3,
            rows: 2,
            colors: vec![[0; 3]; 5],
        };
        let e = raster.to_png().unwrap_err().to_string();
        assert!(e.contains("5 colours do not fill a grid of 2 × 3"), "{e}");
        let ok = Raster {
            colors: vec![[0; 3]; 6],
            ..raster
        };
        assert!(
            ok.to_png().is_ok(),
            "degenerate ranges are widened, not refused"
        );
    }

    #[test]
    fn colour_maps() {
        let d = density_colors(&[0, 1, 10, 100]);
        assert_eq!(d[0], [255; 3]);
        assert!(
            d[1][0] > d[2][0] && d[2][0] > d[3][0] && d[3] == [0; 3],
            "{d:?}"
        );
        assert!(d[1][0] <= 166, "a single point is visible: {:?}", d[1]);
        let v = value_colors(&[0.0, 0.5, 1.0, 2.0, f64::NAN], 0.0, 1.0);
        assert_eq!(v[0], [68, 1, 84]);
        assert_eq!(v[1], [33, 145, 140]);
        assert_eq!(v[2], [253, 231, 37]);
        assert_eq!(v[3], v[2], "clamped");
        assert_eq!(v[4], [160; 3]);
        let l = label_colors(&[-1, 0, 1, 10]);
        assert_eq!(l[0], [30; 3]);
        assert_ne!(l[1], l[2]);
        assert_ne!(l[1], l[3], "beyond the palette, more hues");
    }
}
