//! A map of integer labels over a grid of two variables as a PNG (basins of attraction):
//! each grid cell a flat colour, axes labelled with the variables, a legend beside it.

use super::image::encode_png;
use super::plot::register_font;
use plotters::prelude::*;

/// A label map to draw: `labels` are [ny][nx], row 0 at `y.0` and column 0 at `x.0`.
#[derive(Debug, Clone)]
pub struct LabelMap<'a> {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The first and last column's values (centres of the cells; either order).
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub nx: usize,
    pub ny: usize,
    pub labels: &'a [i32],
    /// (label, text) in the order to list them; a text may have several lines.
    pub legend: Vec<(i32, String)>,
}

const WIDTH: u32 = 1080;
const HEIGHT: u32 = 800;
const LEGEND: u32 = 300;

/// Ten colours that tell apart at a glance (matplotlib's tab10 without its grey).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(255, 187, 120),
];

/// The colour of a label: the palette for 0–9, hues spaced by the golden angle after
/// that, and near-black for negative labels (trajectories that reached nothing).
pub fn label_color(label: i32) -> RGBColor {
    if label < 0 {
        return RGBColor(30, 30, 30);
    }
    if let Some(c) = PALETTE.get(label as usize) {
        return *c;
    }
    let hue = (label as f64 * 0.618_033_988_75).fract();
    let hsl = HSLColor(hue, 0.65, 0.55).to_rgba();
    RGBColor(hsl.0, hsl.1, hsl.2)
}

/// The cell index of value `v` on an axis of `n` points from `lo` to `hi`.
fn cell(v: f64, (lo, hi): (f64, f64), n: usize) -> usize {
    if n <= 1 || hi == lo {
        return 0;
    }
    let k = ((v - lo) / ((hi - lo) / (n - 1) as f64)).round();
    k.clamp(0.0, (n - 1) as f64) as usize
}

/// The range a chart axis shows: the cells' outer edges, ascending.
fn extent((lo, hi): (f64, f64), n: usize) -> (f64, f64) {
    let (a, b) = (lo.min(hi), lo.max(hi));
    let half = if n > 1 && b > a {
        0.5 * (b - a) / (n - 1) as f64
    } else {
        0.5 * a.abs().max(1.0)
    };
    (a - half, b + half)
}

impl LabelMap<'_> {
    /// The map as a PNG file's bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        if self.labels.len() != self.nx * self.ny || self.labels.is_empty() {
            return Err(format!(
                "{} labels for a {} × {} grid",
                self.labels.len(),
                self.nx,
                self.ny
            ));
        }
        register_font();
        let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| e.to_string())?;
        }
        encode_png(WIDTH, HEIGHT, &rgb, image::ColorType::Rgb8)
    }

    fn draw(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let (left, right) = root.split_horizontally(WIDTH - LEGEND);
        let (x0, x1) = extent(self.x, self.nx);
        let (y0, y1) = extent(self.y, self.ny);
        let mut chart = ChartBuilder::on(&left)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|x| e(&x))?;
        // Cells first, pixel by pixel (nearest cell), then the axes over them.
        let (px, py) = chart.plotting_area().get_pixel_range();
        let (w, h) = ((px.end - px.start) as f64, (py.end - py.start) as f64);
        for i in py.clone() {
            let v = y1 - (y1 - y0) * ((i - py.start) as f64 + 0.5) / h;
            let row = cell(v, self.y, self.ny);
            for j in px.clone() {
                let u = x0 + (x1 - x0) * ((j - px.start) as f64 + 0.5) / w;
                let label = self.labels[row * self.nx + cell(u, self.x, self.nx)];
                root.draw_pixel((j, i), &label_color(label))
                    .map_err(|x| e(&x))?;
            }
        }
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(|x| e(&x))?;
        let style = ("sans-serif", 15).into_font().color(&BLACK);
        // Entries of one or more lines ('\n'), each with its swatch, while they fit.
        let mut y = 60;
        for (k, (label, text)) in self.legend.iter().enumerate() {
            let lines: Vec<&str> = text.lines().collect();
            let height = 20 * lines.len() as i32 + 8;
            if y + height > HEIGHT as i32 - 40 {
                let more = format!("… and {} more", self.legend.len() - k);
                right
                    .draw(&Text::new(more, (8, y + 2), style.clone()))
                    .map_err(|x| e(&x))?;
                break;
            }
            let swatch = [(8, y), (26, y + 18)];
            right
                .draw(&Rectangle::new(swatch, label_color(*label).filled()))
                .map_err(|x| e(&x))?;
            right
                .draw(&Rectangle::new(swatch, BLACK))
                .map_err(|x| e(&x))?;
            for (i, line) in lines.iter().enumerate() {
                right
                    .draw(&Text::new(
                        line.to_string(),
                        (34, y + 2 + 20 * i as i32),
                        style.clone(),
                    ))
                    .map_err(|x| e(&x))?;
            }
            y += height;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_the_axis_either_way_round() {
        assert_eq!(cell(-2.0, (-2.0, 2.0), 5), 0);
        assert_eq!(cell(0.4, (-2.0, 2.0), 5), 2);
        assert_eq!(cell(0.6, (-2.0, 2.0), 5), 3);
        assert_eq!(cell(9.0, (-2.0, 2.0), 5), 4);
        assert_eq!(cell(2.0, (2.0, -2.0), 5), 0);
        assert_eq!(cell(-1.9, (2.0, -2.0), 5), 4);
        assert_eq!(cell(3.0, (1.0, 1.0), 1), 0);
        assert_eq!(extent((-2.0, 2.0), 5), (-2.5, 2.5));
        assert_eq!(extent((2.0, -2.0), 5), (-2.5, 2.5));
        assert_eq!(extent((1.0, 1.0), 1), (0.5, 1.5));
    }

    #[test]
    fn a_map_draws_its_cells_upright_with_text() {
        // Left half 0, right half 1, bottom-right quarter −1 (rows count upwards).
        let (nx, ny) = (40, 30);
        let labels: Vec<i32> = (0..nx * ny)
            .map(|k| {
                let (r, c) = (k / nx, k % nx);
                if c < nx / 2 {
                    0
                } else if r < ny / 2 {
                    -1
                } else {
                    1
                }
            })
            .collect();
        let map = LabelMap {
            title: "basins".into(),
            x_label: "x".into(),
            y_label: "v".into(),
            x: (-2.0, 2.0),
            y: (-1.0, 1.0),
            nx,
            ny,
            labels: &labels,
            legend: vec![(0, "0: 50%".into()), (1, "1: 25%\n  two lines".into())],
        };
        let png = map.to_png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        let at = |x: u32, y: u32| img.get_pixel(x, y).0;
        let plot_w = WIDTH - LEGEND;
        // Sample well inside each quadrant of the plotting area.
        assert_eq!(at(plot_w / 3, HEIGHT / 3), [31, 119, 180]);
        assert_eq!(at(plot_w * 3 / 4, HEIGHT / 3), [255, 127, 14]);
        assert_eq!(at(plot_w * 3 / 4, HEIGHT * 3 / 4), [30, 30, 30]);
        // Legend text is there.
        let dark = (plot_w..WIDTH)
            .flat_map(|x| (0..HEIGHT).map(move |y| (x, y)))
            .filter(|&(x, y)| at(x, y).iter().all(|&c| c < 80))
            .count();
        assert!(dark > 100, "{dark}");
        let bad = LabelMap {
            labels: &labels[1..],
            ..map.clone()
        };
        assert!(bad.to_png().is_err());
    }
}
