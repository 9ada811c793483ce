//! What a fit learns (`spec::fit::FitTarget` made concrete): samples of an expression on a
//! grid, rows of an `.npy`, or the pixels of a PNG, each with the test set it is judged on.
//! A bad value is a `FieldError` at its key (`target.expr.points`), a file that cannot be
//! used one sentence, an expression that does not parse diagnostics with a caret.

use super::error::{FieldError, SpecError};
use crate::io::{Image, read_matrix};
use crate::model::{Function, Source};
use crate::nn::Matrix;
use std::path::Path;

/// Names of the inputs of an expression, in order.
pub const INPUT_NAMES: [&str; 3] = ["x", "y", "z"];

/// The samples of a fit, ready for a trainer.
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

/// Where a fit's samples came from (what its pictures draw).
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

const EXPR: &str = "target.expr";

/// Whether an expression's inputs, domain and grid can be sampled: checked before the
/// expression is parsed, so a spec is refused before any work.
pub fn check_expression(
    inputs: usize,
    (lo, hi): (f64, f64),
    points: usize,
) -> Result<(), FieldError> {
    if !(1..=3).contains(&inputs) {
        return Err(FieldError::new(
            format!("{EXPR}.inputs"),
            format!("must be 1, 2 or 3 for an expression (named x, y, z), not {inputs}"),
        ));
    }
    if lo >= hi || !lo.is_finite() || !hi.is_finite() {
        return Err(FieldError::new(format!("{EXPR}.domain"), "must be ")
            .form("lo:hi", "[lo, hi]")
            .text(format!(
                " with lo < hi, both finite; got lo = {lo}, hi = {hi}"
            )));
    }
    let rows = (points as u128).pow(inputs as u32);
    if points < 2 || rows > 1 << 24 {
        return Err(FieldError::new(
            format!("{EXPR}.points"),
            format!(
                "{points} per axis gives {rows} samples over {inputs} input(s); use at least 2 \
                 and at most 16,777,216 samples"
            ),
        ));
    }
    Ok(())
}

/// Samples of `text` over `inputs` inputs (x, y, z); `name` is what diagnostics call the
/// expression's text (the command line: `<--expr>`).
pub fn from_expression(
    text: &str,
    name: &str,
    inputs: usize,
    (lo, hi): (f64, f64),
    points: usize,
) -> Result<FitData, SpecError> {
    check_expression(inputs, (lo, hi), points)?;
    let source = Source::new(name, text);
    let function =
        Function::parse(&source, &INPUT_NAMES[..inputs]).map_err(SpecError::Diagnostics)?;
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
        let e = FieldError::at(format!("{EXPR}.domain"))
            .text(format!(
                "the expression is not finite at {} = {x:?}; choose a ",
                INPUT_NAMES[..inputs].join(", ")
            ))
            .key(format!("{EXPR}.domain"))
            .text(" where it is defined");
        return Err(e.into());
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

/// Splits the columns of an `.npy` (the value of key `field`) into `inputs` leading input
/// columns and the rest.
fn split_columns(
    path: &Path,
    field: &str,
    inputs: Option<usize>,
) -> Result<(Matrix, Matrix), SpecError> {
    let (data, rows, cols) = read_matrix(path).map_err(|e| SpecError::Input(e.to_string()))?;
    let d = inputs.unwrap_or(cols.saturating_sub(1));
    if cols < 2 || d == 0 || d >= cols {
        let e = FieldError::at(field)
            .text(format!(
                "'{}' has {cols} column{}; it needs input columns then at least one output \
                 column (",
                path.display(),
                if cols == 1 { "" } else { "s" }
            ))
            .key("target.data.inputs")
            .text(" says how many inputs; default: all but the last column)");
        return Err(e.into());
    }
    if rows == 0 {
        return Err(SpecError::Input(format!(
            "'{}' has no rows",
            path.display()
        )));
    }
    if let Some(k) = data.iter().position(|v| !v.is_finite()) {
        return Err(SpecError::Input(format!(
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
) -> Result<FitData, SpecError> {
    let (train_x, train_y) = split_columns(path, "target.data.file", inputs)?;
    let test = match test {
        Some(p) => {
            let (x, y) = split_columns(p, "target.data.test", Some(train_x.cols))?;
            if y.cols != train_y.cols {
                return Err(SpecError::Input(format!(
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
    let what = format!(
        "{} rows of '{}' ({} inputs → {} outputs)",
        train_x.rows,
        path.display(),
        train_x.cols,
        train_y.cols
    );
    from_matrices(what, train_x, train_y, test)
}

/// Samples handed over as matrices (a front-end with arrays: Python's `fit(x, y)`): inputs
/// `x` [m, d] and outputs `y` [m, k], and an optional test pair with the same columns.
/// Every value must be finite and the rows must agree; a mistake is a `FieldError` at `x`,
/// `y` or `test`.
pub fn from_matrices(
    what: String,
    train_x: Matrix,
    train_y: Matrix,
    test: Option<(Matrix, Matrix)>,
) -> Result<FitData, SpecError> {
    let field = |key: &str, m: String| -> SpecError { FieldError::new(key, m).into() };
    for (key, m) in [("x", &train_x), ("y", &train_y)] {
        if m.rows == 0 || m.cols == 0 {
            return Err(field(
                key,
                format!(
                    "is {} × {}: it needs at least one row and column",
                    m.rows, m.cols
                ),
            ));
        }
    }
    if train_x.rows != train_y.rows {
        return Err(field(
            "y",
            format!(
                "has {} rows but x has {}: one row per sample",
                train_y.rows, train_x.rows
            ),
        ));
    }
    if let Some((x, y)) = &test
        && (x.cols != train_x.cols || y.cols != train_y.cols || x.rows != y.rows || x.rows == 0)
    {
        return Err(field(
            "test",
            format!(
                "holds {} × {} inputs and {} × {} outputs; it needs rows of {} inputs and {} \
                 outputs, as many of each",
                x.rows, x.cols, y.rows, y.cols, train_x.cols, train_y.cols
            ),
        ));
    }
    let pairs = [("x", &train_x), ("y", &train_y)]
        .into_iter()
        .chain(test.iter().flat_map(|(x, y)| [("test", x), ("test", y)]));
    for (key, m) in pairs {
        if let Some(k) = m.data.iter().position(|v| !v.is_finite()) {
            return Err(field(
                key,
                format!(
                    "has a value that is not finite at row {}, column {}",
                    k / m.cols,
                    k % m.cols
                ),
            ));
        }
    }
    let widths = (0..train_x.cols)
        .map(|c| {
            let col = train_x.data.iter().skip(c).step_by(train_x.cols);
            let (lo, hi) = bounds(col);
            if hi > lo { hi - lo } else { 1.0 }
        })
        .collect();
    Ok(FitData {
        what,
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
pub fn from_image(path: &Path, holdout: bool) -> Result<FitData, SpecError> {
    let image = Image::read_png(path).map_err(|e| SpecError::Input(e.to_string()))?;
    if image.width < 2 || image.height < 2 {
        return Err(SpecError::Input(format!(
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
        let field = |r: Result<FitData, SpecError>| match r {
            Err(SpecError::Field(f)) => f.field,
            _ => panic!("not a field error"),
        };
        let e = |text, inputs, domain, points| from_expression(text, "<e>", inputs, domain, points);
        assert_eq!(field(e("x", 4, (0.0, 1.0), 8)), "target.expr.inputs");
        assert_eq!(field(e("x", 1, (1.0, 1.0), 8)), "target.expr.domain");
        assert_eq!(field(e("x", 3, (0.0, 1.0), 1000)), "target.expr.points");
        assert!(matches!(
            e("x + y", 1, (0.0, 1.0), 8),
            Err(SpecError::Diagnostics(_))
        ));
        let bad = e("log(x)", 1, (-1.0, 1.0), 8).err().unwrap();
        assert!(bad.to_string().contains("not finite"), "{bad}");
        assert_eq!(field(e("log(x)", 1, (-1.0, 1.0), 8)), "target.expr.domain");
        let d = e("x*y", 2, (0.0, 2.0), 4).unwrap();
        assert_eq!((d.train_x.rows, d.train_y.cols), (16, 1));
        assert_eq!(d.train_y.data[5], 0.5 * 0.5);
        assert_eq!(d.widths, vec![2.0, 2.0]);
    }
}
