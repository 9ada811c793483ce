//! What `phaseflow fit` learns: samples of an expression on a grid, rows of an `.npy`, or
//! the pixels of a PNG, each with the test set it is judged on.

use super::error::CliError;
use crate::io::{Image, read_matrix};
use crate::model::{Function, Source};
use crate::nn::Matrix;
use std::path::Path;

/// Names of the inputs of an expression, in order.
pub const INPUT_NAMES: [&str; 3] = ["x", "y", "z"];

pub struct FitData {
    /// One line saying what is fitted, for reports.
    pub what: String,
    pub train_x: Matrix,
    pub train_y: Matrix,
    pub test: Option<(Matrix, Matrix)>,
    /// Width of each input's range; Fourier features are scaled by it.
    pub widths: Vec<f64>,
    pub kind: Kind,
}

pub enum Kind {
    /// A function on a grid of `points` per axis over [lo, hi] in every input.
    Expression {
        function: Function,
        lo: f64,
        hi: f64,
        points: usize,
    },
    Samples,
    Image(Image),
}

/// The smallest and largest of `values` (infinities reversed when there are none).
pub fn bounds<'a>(values: impl IntoIterator<Item = &'a f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// The points of a regular grid over [lo, hi]^d with `points` per axis, the first input
/// varying fastest; `offset` 0 gives lo + i·h, 0.5 the cell midpoints.
pub fn grid(d: usize, points: usize, lo: f64, hi: f64, offset: f64) -> Matrix {
    let h = (hi - lo) / points as f64;
    let rows = points.pow(d as u32);
    let mut data = Vec::with_capacity(rows * d);
    for k in 0..rows {
        let mut rest = k;
        for _ in 0..d {
            data.push(lo + h * ((rest % points) as f64 + offset));
            rest /= points;
        }
    }
    Matrix {
        rows,
        cols: d,
        data,
    }
}

fn values(function: &Function, x: &Matrix) -> Matrix {
    let data = x
        .data
        .chunks(x.cols)
        .map(|row| function.eval(row))
        .collect();
    Matrix {
        rows: x.rows,
        cols: 1,
        data,
    }
}

/// Samples of `text` over `inputs` inputs (x, y, z).
pub fn from_expression(
    text: &str,
    inputs: usize,
    (lo, hi): (f64, f64),
    points: usize,
) -> Result<FitData, CliError> {
    if !(1..=3).contains(&inputs) {
        return Err(CliError::Input(format!(
            "--inputs must be 1, 2 or 3 for an expression (named x, y, z), not {inputs}"
        )));
    }
    if lo >= hi || !lo.is_finite() || !hi.is_finite() {
        return Err(CliError::Input(format!(
            "--domain must be LO:HI with LO < HI, both finite; got {lo}:{hi}"
        )));
    }
    let rows = (points as u128).pow(inputs as u32);
    if points < 2 || rows > 1 << 24 {
        return Err(CliError::Input(format!(
            "--points {points} per axis gives {rows} samples in {inputs} dimensions; use at \
             least 2 and at most 16,777,216 samples"
        )));
    }
    let source = Source::new("<--expr>", text);
    let function =
        Function::parse(&source, &INPUT_NAMES[..inputs]).map_err(CliError::Diagnostics)?;
    let train_x = grid(inputs, points, lo, hi, 0.0);
    let test_x = grid(inputs, points, lo, hi, 0.5);
    let train_y = values(&function, &train_x);
    let test_y = values(&function, &test_x);
    if let Some(bad) = train_y
        .data
        .iter()
        .chain(&test_y.data)
        .position(|v| !v.is_finite())
    {
        let x = if bad < train_x.rows {
            &train_x.data[bad * inputs..(bad + 1) * inputs]
        } else {
            let b = bad - train_x.rows;
            &test_x.data[b * inputs..(b + 1) * inputs]
        };
        return Err(CliError::Input(format!(
            "the expression is not finite at {} = {x:?}; choose a --domain where it is defined",
            INPUT_NAMES[..inputs].join(", ")
        )));
    }
    Ok(FitData {
        what: format!(
            "f({}) = {text} on [{lo}, {hi}]^{inputs}, {points} points per axis ({} samples; test at the {} cell midpoints)",
            INPUT_NAMES[..inputs].join(", "),
            train_x.rows,
            test_x.rows
        ),
        train_x,
        train_y,
        test: Some((test_x, test_y)),
        widths: vec![hi - lo; inputs],
        kind: Kind::Expression {
            function,
            lo,
            hi,
            points,
        },
    })
}

/// Splits the columns of an `.npy` into `inputs` leading input columns and the rest.
fn split_columns(path: &Path, inputs: Option<usize>) -> Result<(Matrix, Matrix), CliError> {
    let (data, rows, cols) = read_matrix(path).map_err(|e| CliError::Input(e.to_string()))?;
    let d = inputs.unwrap_or(cols.saturating_sub(1));
    if cols < 2 || d == 0 || d >= cols {
        return Err(CliError::Input(format!(
            "'{}' has {cols} column{}; it needs input columns then at least one output column \
             (--inputs says how many inputs; default: all but the last column)",
            path.display(),
            if cols == 1 { "" } else { "s" }
        )));
    }
    if rows == 0 {
        return Err(CliError::Input(format!("'{}' has no rows", path.display())));
    }
    if let Some(k) = data.iter().position(|v| !v.is_finite()) {
        return Err(CliError::Input(format!(
            "'{}' has a value that is not finite at row {}, column {}",
            path.display(),
            k / cols,
            k % cols
        )));
    }
    let mut x = Vec::with_capacity(rows * d);
    let mut y = Vec::with_capacity(rows * (cols - d));
    for row in data.chunks(cols) {
        x.extend_from_slice(&row[..d]);
        y.extend_from_slice(&row[d..]);
    }
    Ok((
        Matrix {
            rows,
            cols: d,
            data: x,
        },
        Matrix {
            rows,
            cols: cols - d,
            data: y,
        },
    ))
}

/// Rows of an `.npy` [n, inputs + outputs], with an optional test file of the same columns.
pub fn from_samples(
    path: &Path,
    test: Option<&Path>,
    inputs: Option<usize>,
) -> Result<FitData, CliError> {
    let (train_x, train_y) = split_columns(path, inputs)?;
    let test = match test {
        Some(p) => {
            let (x, y) = split_columns(p, Some(train_x.cols))?;
            if y.cols != train_y.cols {
                return Err(CliError::Input(format!(
                    "'{}' has {} output columns but '{}' has {}",
                    p.display(),
                    y.cols,
                    path.display(),
                    train_y.cols
                )));
            }
            Some((x, y))
        }
        None => None,
    };
    let widths = (0..train_x.cols)
        .map(|c| {
            let col = train_x.data.iter().skip(c).step_by(train_x.cols);
            let (lo, hi) = bounds(col);
            if hi > lo { hi - lo } else { 1.0 }
        })
        .collect();
    Ok(FitData {
        what: format!(
            "{} rows of '{}' ({} inputs → {} outputs)",
            train_x.rows,
            path.display(),
            train_x.cols,
            train_y.cols
        ),
        train_x,
        train_y,
        test,
        widths,
        kind: Kind::Samples,
    })
}

/// The pixels of a PNG as a function of (x, y) ∈ (0, 1)²; with `holdout`, training sees
/// every other pixel in each direction and the other three quarters are the test set
/// (Tancik et al. 2020's image regression).
pub fn from_image(path: &Path, holdout: bool) -> Result<FitData, CliError> {
    let image = Image::read_png(path).map_err(|e| CliError::Input(e.to_string()))?;
    if image.width < 2 || image.height < 2 {
        return Err(CliError::Input(format!(
            "'{}' is {}×{} pixels; it needs at least 2×2",
            path.display(),
            image.width,
            image.height
        )));
    }
    let c = image.channels;
    let xy = image.pixel_centres();
    let (mut tx, mut ty, mut vx, mut vy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..image.width * image.height {
        let (col, row) = (k % image.width, k / image.width);
        let train = !holdout || (col.is_multiple_of(2) && row.is_multiple_of(2));
        let (x, y) = if train {
            (&mut tx, &mut ty)
        } else {
            (&mut vx, &mut vy)
        };
        x.extend_from_slice(&xy[2 * k..2 * k + 2]);
        y.extend_from_slice(&image.data[c * k..c * (k + 1)]);
    }
    let matrix = |cols: usize, data: Vec<f64>| Matrix {
        rows: data.len() / cols,
        cols,
        data,
    };
    let test = holdout.then(|| (matrix(2, vx), matrix(c, vy)));
    let what = format!(
        "'{}': {}×{} pixels, {} ({})",
        path.display(),
        image.width,
        image.height,
        if c == 1 { "grey" } else { "RGB" },
        if holdout {
            "trained on every other pixel in each direction, tested on the rest"
        } else {
            "trained on every pixel"
        }
    );
    Ok(FitData {
        what,
        train_x: matrix(2, tx),
        train_y: matrix(c, ty),
        test,
        widths: vec![1.0, 1.0],
        kind: Kind::Image(image),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_vary_the_first_input_fastest() {
        let g = grid(2, 2, 0.0, 1.0, 0.5);
        assert_eq!(g.data, vec![0.25, 0.25, 0.75, 0.25, 0.25, 0.75, 0.75, 0.75]);
        let g = grid(1, 4, -1.0, 1.0, 0.0);
        assert_eq!(g.data, vec![-1.0, -0.5, 0.0, 0.5]);
    }

    #[test]
    fn expressions_are_checked_before_any_work() {
        assert!(matches!(
            from_expression("x", 4, (0.0, 1.0), 8),
            Err(CliError::Input(_))
        ));
        assert!(matches!(
            from_expression("x + y", 1, (0.0, 1.0), 8),
            Err(CliError::Diagnostics(_))
        ));
        let e = from_expression("log(x)", 1, (-1.0, 1.0), 8).err().unwrap();
        assert!(e.to_string().contains("not finite"), "{e}");
        let d = from_expression("x*y", 2, (0.0, 2.0), 4).unwrap();
        assert_eq!((d.train_x.rows, d.train_y.cols), (16, 1));
        assert_eq!(d.train_y.data[5], 0.5 * 0.5);
        assert_eq!(d.widths, vec![2.0, 2.0]);
    }
}
