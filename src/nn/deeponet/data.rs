//! DeepONet data sets in files and made on the host: DeepXDE's `.npz` files (aligned and
//! unaligned), the documented `.npz` layouts of our own, and the antiderivative set
//! DeepXDE's example uses.
//!
//! Our aligned layout (`np.savez`, any float dtype):
//! - `functions` [n_functions, n_sensors]: each input function at the sensors;
//! - `points` [n_points, dims]: the locations where every function's output is known;
//! - `values` [n_functions, n_points, n_outputs] (or [n_functions, n_points] for one
//!   output): G(u)(y).
//!
//! Our unaligned layout, one sample per row:
//! - `sample_functions` [n_samples, n_sensors], `sample_points` [n_samples, dims],
//!   `sample_values` [n_samples, n_outputs] (or [n_samples]).
//!
//! DeepXDE's aligned layout: `X` an object array (branch inputs [n_functions, n_sensors],
//! trunk inputs [n_points, dims]) and `y` [n_functions, n_points] (one output) or
//! [n_functions, n_points, n_outputs]. Its unaligned layout (the `Triple` examples):
//! `X_train0` [n_samples, n_sensors], `X_train1` [n_samples, dims], `y_train`
//! [n_samples, n_outputs], or the same with `test` (a file with both is read as its
//! training set).

use super::grf::Grf;
use super::model::{AlignedData, DeepONetArch, DeepONetData, NetSpec, Strategy, UnalignedData};
use crate::io::{NpzError, NpzValue, read_npz, write_npz};
use crate::nn::mlp::model::Activation;
use crate::nn::mlp::model::Matrix;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Npz(#[from] NpzError),
    #[error("'{path}': {message}")]
    Layout { path: String, message: String },
    #[error("cannot write '{path}': {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn matrix(v: &NpzValue, what: &str) -> Result<Matrix, String> {
    match v {
        NpzValue::Array { shape, data } if shape.len() == 2 => Ok(Matrix {
            rows: shape[0],
            cols: shape[1],
            data: data.clone(),
        }),
        NpzValue::Array { shape, .. } => Err(format!(
            "{what} must be a 2-D array; it has shape {shape:?}"
        )),
        NpzValue::Objects { .. } => Err(format!("{what} must be a numeric array")),
    }
}

/// G's values [functions, points(, outputs)] and the number of outputs.
fn values(
    v: &NpzValue,
    what: &str,
    functions: usize,
    points: usize,
) -> Result<(Vec<f64>, usize), String> {
    let NpzValue::Array { shape, data } = v else {
        return Err(format!("{what} must be a numeric array"));
    };
    let outputs = match shape[..] {
        [f, p] if (f, p) == (functions, points) => 1,
        [f, p, k] if (f, p) == (functions, points) && k > 0 => k,
        _ => {
            return Err(format!(
                "{what} has shape {shape:?}; with {functions} functions and {points} points it \
                 must be [{functions}, {points}] or [{functions}, {points}, outputs]"
            ));
        }
    };
    Ok((data.clone(), outputs))
}

/// Unaligned samples from the members named `names` (functions, points, values), if the
/// file has them.
fn unaligned_members(
    m: &BTreeMap<String, NpzValue>,
    names: [&str; 3],
) -> Option<Result<UnalignedData, String>> {
    let [f, p, v] = names.map(|n| m.get(n));
    let (f, p, v) = (f?, p?, v?);
    Some((|| {
        let u = matrix(f, names[0])?;
        let y = matrix(p, names[1])?;
        let g = match v {
            NpzValue::Array { shape, data } if shape.len() == 1 => Matrix {
                rows: shape[0],
                cols: 1,
                data: data.clone(),
            },
            other => matrix(other, names[2])?,
        };
        if y.rows != u.rows || g.rows != u.rows {
            return Err(format!(
                "{}, {} and {} must have one row per sample; they have {}, {} and {}",
                names[0], names[1], names[2], u.rows, y.rows, g.rows
            ));
        }
        if g.cols == 0 {
            return Err(format!("{} has no outputs", names[2]));
        }
        Ok(UnalignedData { u, y, g })
    })())
}

/// A data set of either layout: our unaligned members, DeepXDE's unaligned ones (training
/// set first), or else an aligned set.
fn data_from_members(m: &BTreeMap<String, NpzValue>) -> Result<DeepONetData, String> {
    let unaligned = [
        ["sample_functions", "sample_points", "sample_values"],
        ["X_train0", "X_train1", "y_train"],
        ["X_test0", "X_test1", "y_test"],
    ]
    .into_iter()
    .find_map(|names| unaligned_members(m, names));
    let Some(d) = unaligned else {
        return from_members(m).map(DeepONetData::Aligned);
    };
    // A file with both layouts would otherwise be read as one of them in silence.
    let aligned_too = ["functions", "points", "values"]
        .iter()
        .all(|n| m.contains_key(*n))
        || (m.contains_key("X") && m.contains_key("y"));
    if aligned_too {
        return Err(
            "the file holds both an aligned data set (functions, points, values or X, y) and \
             an unaligned one (samples): keep one of them per file"
                .into(),
        );
    }
    let d = d?;
    if d.samples() == 0 {
        return Err("the data set is empty".into());
    }
    inputs_present(&d.u, &d.y)?;
    finite(d.u.data.iter().chain(&d.y.data).chain(&d.g.data))?;
    Ok(DeepONetData::Unaligned(d))
}

/// Functions need at least one sensor value and points at least one coordinate (a
/// network with no inputs would otherwise be refused later, without the file's name).
fn inputs_present(u: &Matrix, y: &Matrix) -> Result<(), String> {
    if u.cols == 0 {
        return Err("the functions have no sensor values (0 columns)".into());
    }
    if y.cols == 0 {
        return Err("the points have no coordinates (0 columns)".into());
    }
    Ok(())
}

fn finite<'a>(mut values: impl Iterator<Item = &'a f64>) -> Result<(), String> {
    match values.find(|v| !v.is_finite()) {
        Some(bad) => Err(format!("the data holds a non-finite value ({bad})")),
        None => Ok(()),
    }
}

fn from_members(m: &BTreeMap<String, NpzValue>) -> Result<AlignedData, String> {
    let (u, y, g, what) = if let (Some(f), Some(p), Some(v)) =
        (m.get("functions"), m.get("points"), m.get("values"))
    {
        (matrix(f, "functions")?, matrix(p, "points")?, v, "values")
    } else if let (Some(x), Some(v)) = (m.get("X"), m.get("y")) {
        let NpzValue::Objects { items, .. } = x else {
            return Err("X must be DeepXDE's pair (branch inputs, trunk inputs)".into());
        };
        let [branch, trunk] = &items[..] else {
            return Err(format!(
                "X must hold two arrays (branch inputs, trunk inputs); it holds {}",
                items.len()
            ));
        };
        (matrix(branch, "X[0]")?, matrix(trunk, "X[1]")?, v, "y")
    } else {
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        return Err(format!(
            "expected members functions, points and values (aligned), sample_functions, \
             sample_points and sample_values (unaligned), or DeepXDE's X and y (aligned) or \
             X_train0, X_train1 and y_train (unaligned); found {}",
            names.join(", ")
        ));
    };
    let (g, outputs) = values(g, what, u.rows, y.rows)?;
    aligned(u, y, g, outputs)
}

/// An aligned data set from its parts (`g` [functions, points, outputs], row-major), held
/// to what a file must hold: not empty, every value finite.
pub fn aligned(u: Matrix, y: Matrix, g: Vec<f64>, outputs: usize) -> Result<AlignedData, String> {
    if g.len() != u.rows * y.rows * outputs {
        return Err(format!(
            "{} values for {} functions × {} points × {outputs} outputs",
            g.len(),
            u.rows,
            y.rows
        ));
    }
    let data = AlignedData { u, y, g, outputs };
    if data.functions() == 0 || data.points() == 0 || outputs == 0 {
        return Err("the data set is empty".into());
    }
    inputs_present(&data.u, &data.y)?;
    finite(data.u.data.iter().chain(&data.y.data).chain(&data.g))?;
    Ok(data)
}

/// An aligned data set from our `.npz` layout or DeepXDE's.
pub fn read_aligned(path: &Path) -> Result<AlignedData, DataError> {
    let members = read_npz(path)?;
    from_members(&members).map_err(|message| DataError::Layout {
        path: path.display().to_string(),
        message,
    })
}

/// A data set of either layout from our `.npz` layouts or DeepXDE's.
pub fn read_data(path: &Path) -> Result<DeepONetData, DataError> {
    let members = read_npz(path)?;
    data_from_members(&members).map_err(|message| DataError::Layout {
        path: path.display().to_string(),
        message,
    })
}

/// Writes unaligned `data` in our layout.
pub fn write_unaligned(path: &Path, data: &UnalignedData) -> Result<(), DataError> {
    let n = data.samples();
    write_npz(
        path,
        &[
            ("sample_functions", &[n, data.u.cols], &data.u.data),
            ("sample_points", &[n, data.y.cols], &data.y.data),
            ("sample_values", &[n, data.g.cols], &data.g.data),
        ],
    )
    .map_err(|source| DataError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `data` in our layout.
pub fn write_aligned(path: &Path, data: &AlignedData) -> Result<(), DataError> {
    let (nf, ny, k) = (data.functions(), data.points(), data.outputs);
    write_npz(
        path,
        &[
            ("functions", &[nf, data.u.cols], &data.u.data),
            ("points", &[ny, data.y.cols], &data.y.data),
            ("values", &[nf, ny, k], &data.g),
        ],
    )
    .map_err(|source| DataError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// DeepXDE's antiderivative example made here: `count` functions v from a Gaussian random
/// field with RBF kernel (`length_scale`) on `sensors` points of [0, 1], and
/// u(x_k) = Σ_{j<k} h v(x_j) at the same points (h = 1 / (sensors − 1)): the left Riemann
/// sum the published labels follow.
pub fn antiderivative(
    sensors: usize,
    length_scale: f64,
    count: usize,
    seed: u64,
) -> Result<AlignedData, super::grf::GrfError> {
    let x: Vec<f64> = (0..sensors)
        .map(|i| i as f64 / (sensors - 1).max(1) as f64)
        .collect();
    let h = x.get(1).copied().unwrap_or(0.0);
    let u = Grf::rbf(&x, length_scale)?.sample(seed, count);
    let mut g = Vec::with_capacity(count * sensors);
    for f in 0..count {
        let mut s = 0.0;
        for v in &u.data[f * sensors..(f + 1) * sensors] {
            g.push(s);
            s += h * v;
        }
    }
    Ok(AlignedData {
        u,
        y: Matrix {
            rows: sensors,
            cols: 1,
            data: x,
        },
        g,
        outputs: 1,
    })
}

/// DeepXDE's network for that example: branch [sensors, 40, 40], trunk [1, 40, 40], ReLU.
pub fn antiderivative_arch(sensors: usize) -> DeepONetArch {
    let net = |inputs| NetSpec {
        inputs,
        hidden: vec![40],
        encoding: None,
    };
    DeepONetArch::new(
        net(sensors),
        net(1),
        40,
        1,
        Strategy::SplitBoth,
        Activation::Relu,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_layout_round_trips_and_bad_layouts_say_why() {
        let data = antiderivative(20, 0.2, 3, 1).unwrap();
        let dir = std::env::temp_dir().join(format!("pf-onet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npz");
        write_aligned(&path, &data).unwrap();
        assert_eq!(read_aligned(&path).unwrap(), data);

        write_npz(&path, &[("functions", &[3, 20], &data.u.data)]).unwrap();
        let e = read_aligned(&path).unwrap_err().to_string();
        assert!(
            e.contains("expected members functions, points and values"),
            "{e}"
        );
        assert!(read_data(&path).is_err());
        write_npz(
            &path,
            &[
                ("functions", &[3, 20], &data.u.data),
                ("points", &[20, 1], &data.y.data),
                ("values", &[3, 19], &data.g[..57]),
            ],
        )
        .unwrap();
        let e = read_aligned(&path).unwrap_err().to_string();
        assert!(e.contains("must be [3, 20] or [3, 20, outputs]"), "{e}");
        // No sensors, no coordinates: refused with the file, not later by the network.
        write_npz(
            &path,
            &[
                ("functions", &[3, 0], &[]),
                ("points", &[20, 1], &data.y.data),
                ("values", &[3, 20], &data.g),
            ],
        )
        .unwrap();
        let e = read_data(&path).unwrap_err().to_string();
        assert!(e.contains("no sensor values") && e.contains("a.npz"), "{e}");
        write_npz(
            &path,
            &[
                ("functions", &[3, 20], &data.u.data),
                ("points", &[20, 0], &[]),
                ("values", &[3, 20], &data.g),
            ],
        )
        .unwrap();
        let e = read_data(&path).unwrap_err().to_string();
        assert!(e.contains("no coordinates"), "{e}");
        // Both layouts in one file: refused, not read as one of them in silence.
        write_npz(
            &path,
            &[
                ("functions", &[3, 20], &data.u.data),
                ("points", &[20, 1], &data.y.data),
                ("values", &[3, 20], &data.g),
                ("sample_functions", &[3, 20], &data.u.data),
                ("sample_points", &[3, 1], &data.y.data[..3]),
                ("sample_values", &[3], &data.g[..3]),
            ],
        )
        .unwrap();
        let e = read_data(&path).unwrap_err().to_string();
        assert!(e.contains("holds both an aligned data set"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unaligned_layouts_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("pf-onet-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.npz");
        let data = UnalignedData {
            u: Matrix {
                rows: 3,
                cols: 2,
                data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            },
            y: Matrix {
                rows: 3,
                cols: 1,
                data: vec![0.1, 0.2, 0.3],
            },
            g: Matrix {
                rows: 3,
                cols: 1,
                data: vec![7.0, 8.0, 9.0],
            },
        };
        write_unaligned(&path, &data).unwrap();
        assert_eq!(
            read_data(&path).unwrap(),
            DeepONetData::Unaligned(data.clone())
        );
        // DeepXDE's names, with y_train one-dimensional and a test set beside it.
        write_npz(
            &path,
            &[
                ("X_test0", &[1, 2], &[0.0, 0.0]),
                ("X_train0", &[3, 2], &data.u.data),
                ("X_train1", &[3, 1], &data.y.data),
                ("y_train", &[3], &data.g.data),
            ],
        )
        .unwrap();
        assert_eq!(
            read_data(&path).unwrap(),
            DeepONetData::Unaligned(data.clone())
        );
        write_npz(
            &path,
            &[
                ("X_train0", &[3, 2], &data.u.data),
                ("X_train1", &[2, 1], &data.y.data[..2]),
                ("y_train", &[3, 1], &data.g.data),
            ],
        )
        .unwrap();
        let e = read_data(&path).unwrap_err().to_string();
        assert!(
            e.contains("one row per sample; they have 3, 2 and 3"),
            "{e}"
        );
        // An aligned file reads as aligned.
        let aligned = antiderivative(5, 0.3, 2, 7).unwrap();
        write_aligned(&path, &aligned).unwrap();
        assert_eq!(read_data(&path).unwrap(), DeepONetData::Aligned(aligned));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn antiderivative_labels_are_left_riemann_sums() {
        let d = antiderivative(5, 0.3, 2, 7).unwrap();
        assert_eq!(d.y.data, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let v = &d.u.data[5..10];
        let want = [0.0, 0.25 * v[0], 0.25 * (v[0] + v[1])];
        for (g, w) in d.g[5..8].iter().zip(want) {
            assert!((g - w).abs() < 1e-15);
        }
    }
}
