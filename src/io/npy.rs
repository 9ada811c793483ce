//! `.npy` reading and writing through npyz.

use npyz::{AutoSerialize, DType, NpyFile, Order, TypeChar, WriterBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NpyError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a 2-D array: its shape is {shape:?}; expected [rows, columns]")]
    NotMatrix { path: String, shape: Vec<u64> },
    #[error("'{path}' holds {dtype}; expected floats or integers")]
    DType { path: String, dtype: String },
}

/// Writes `data` (C order) with the given shape.
pub fn write_npy<T: AutoSerialize + Copy>(
    path: &Path,
    shape: &[u64],
    data: &[T],
) -> std::io::Result<()> {
    debug_assert_eq!(shape.iter().product::<u64>(), data.len() as u64);
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut file)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    file.flush()
}

/// Reads a 2-D numeric array as row-major f64: (data, rows, cols). Accepts f32/f64 and
/// integer dtypes, C or Fortran order.
pub fn read_matrix(path: &Path) -> Result<(Vec<f64>, usize, usize), NpyError> {
    let p = path.display().to_string();
    let (shape, data) = read_npy(path)?;
    match shape[..] {
        [r, c] => Ok((data, r, c)),
        [r] => Ok((data, r, 1)),
        _ => Err(NpyError::NotMatrix {
            path: p,
            shape: shape.iter().map(|&d| d as u64).collect(),
        }),
    }
}

/// Reads an .npy file of any shape as f64 in C order: (shape, data).
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f64>), NpyError> {
    let p = path.display().to_string();
    let io = |source| NpyError::Io {
        path: p.clone(),
        source,
    };
    let file = NpyFile::new(BufReader::new(File::open(path).map_err(io)?)).map_err(io)?;
    read_array(file, &p)
}

/// Reads any numeric array (f32/f64, signed or unsigned integers) as f64 in C order, with
/// its shape; `name` is what errors call it.
pub fn read_array<R: Read>(
    file: NpyFile<R>,
    name: &str,
) -> Result<(Vec<usize>, Vec<f64>), NpyError> {
    let io = |source| NpyError::Io {
        path: name.to_string(),
        source,
    };
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let fortran = file.order() == Order::Fortran;
    let dtype = file.dtype();
    let bad_dtype = || NpyError::DType {
        path: name.to_string(),
        dtype: dtype.descr(),
    };
    let DType::Plain(ts) = &dtype else {
        return Err(bad_dtype());
    };
    fn widen<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
        v.into_iter().map(Into::into).collect()
    }
    let values: Vec<f64> = match (ts.type_char(), ts.num_bytes()) {
        (TypeChar::Float, Some(8)) => file.into_vec::<f64>().map_err(io)?,
        (TypeChar::Float, Some(4)) => widen(file.into_vec::<f32>().map_err(io)?),
        (TypeChar::Int, Some(8)) => file
            .into_vec::<i64>()
            .map_err(io)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Int, Some(4)) => widen(file.into_vec::<i32>().map_err(io)?),
        (TypeChar::Uint, Some(8)) => file
            .into_vec::<u64>()
            .map_err(io)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Uint, Some(4)) => widen(file.into_vec::<u32>().map_err(io)?),
        (TypeChar::Uint, Some(1)) => widen(file.into_vec::<u8>().map_err(io)?),
        _ => return Err(bad_dtype()),
    };
    let data = if fortran && shape.len() > 1 {
        // Fortran order: the first index varies fastest.
        let mut c_strides = vec![1; shape.len()];
        for k in (0..shape.len() - 1).rev() {
            c_strides[k] = c_strides[k + 1] * shape[k + 1];
        }
        let mut c_order = vec![0.0; values.len()];
        for (f, &v) in values.iter().enumerate() {
            let (mut rest, mut c) = (f, 0);
            for (&d, &stride) in shape.iter().zip(&c_strides) {
                c += (rest % d) * stride;
                rest /= d;
            }
            c_order[c] = v;
        }
        c_order
    } else {
        values
    };
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header() {
        let dir = std::env::temp_dir().join(format!("phaseflow-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        write_npy(&path, &[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header = String::from_utf8_lossy(&bytes[10..80]);
        assert!(
            header.contains("'descr': '<f4'") && header.contains("'shape': (2, 3"),
            "{header}"
        );
        let (data, rows, cols) = read_matrix(&path).unwrap();
        assert_eq!((rows, cols), (2, 3));
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        write_npy(&path, &[2, 2, 1], &[1.0f64; 4]).unwrap();
        assert!(matches!(
            read_matrix(&path),
            Err(NpyError::NotMatrix { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
