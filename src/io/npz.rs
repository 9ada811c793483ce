//! `.npz` archives as `np.savez` writes them: a zip of `.npy` members. Numeric members of
//! any float or integer dtype are read as f64; object arrays (which NumPy stores as a
//! pickle, e.g. DeepXDE's `X = (branch inputs, trunk inputs)`) are read through
//! `io::pickle` without running any Python.

use super::npy::{NpyError, read_array};
use super::pickle::{self, Value};
use npyz::WriterBuilder;
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;

/// One member of an archive.
#[derive(Debug, Clone, PartialEq)]
pub enum NpzValue {
    /// A numeric array, C order.
    Array { shape: Vec<usize>, data: Vec<f64> },
    /// An object array whose elements are arrays (or further object arrays).
    Objects {
        shape: Vec<usize>,
        items: Vec<NpzValue>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a zip archive (.npz): {message}")]
    Zip { path: String, message: String },
    #[error("'{path}': {source}")]
    Npy {
        path: String,
        #[source]
        source: NpyError,
    },
    #[error("'{path}', member '{member}': {message}")]
    Member {
        path: String,
        member: String,
        message: String,
    },
}

/// The bytes of a `.npy` after its header.
fn npy_body(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy member".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    bytes
        .get(start + len..)
        .ok_or_else(|| "the .npy header runs past the member".into())
}

/// An array from a pickled NumPy value.
fn from_pickle(v: &Value) -> Result<NpzValue, String> {
    let Value::Array { shape, dtype, data } = v else {
        return Err(format!(
            "an object array holds {v:?}, not an array; only arrays of arrays are supported"
        ));
    };
    let count: usize = shape.iter().product();
    match (dtype.as_str(), data.as_ref()) {
        ("|O", Value::List(items)) => {
            if items.len() != count {
                return Err("object array of the wrong length".into());
            }
            Ok(NpzValue::Objects {
                shape: shape.clone(),
                items: items.iter().map(from_pickle).collect::<Result<_, _>>()?,
            })
        }
        (dt, Value::Bytes(b)) => {
            let width = match &dt[1..] {
                "f8" | "i8" | "u8" => 8,
                "f4" | "i4" | "u4" => 4,
                other => return Err(format!("dtype '{other}' inside an object array")),
            };
            if dt.starts_with('>') {
                return Err("big-endian arrays are not supported".into());
            }
            if b.len() != count * width {
                return Err(format!(
                    "an array of shape {shape:?} holds {} bytes, not {}",
                    b.len(),
                    count * width
                ));
            }
            let data = b
                .chunks_exact(width)
                .map(|c| match &dt[1..] {
                    "f8" => f64::from_le_bytes(c.try_into().expect("8")),
                    "i8" => i64::from_le_bytes(c.try_into().expect("8")) as f64,
                    "u8" => u64::from_le_bytes(c.try_into().expect("8")) as f64,
                    "f4" => f32::from_le_bytes(c.try_into().expect("4")) as f64,
                    "i4" => i32::from_le_bytes(c.try_into().expect("4")) as f64,
                    _ => u32::from_le_bytes(c.try_into().expect("4")) as f64,
                })
                .collect();
            Ok(NpzValue::Array {
                shape: shape.clone(),
                data,
            })
        }
        _ => Err(format!("unsupported array {dtype} in an object array")),
    }
}

/// Every member of an `.npz`, by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpzValue>, NpzError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| NpzError::Io {
        path: p.clone(),
        source,
    })?;
    let zip_err = |e: zip::result::ZipError| NpzError::Zip {
        path: p.clone(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let member = entry.name().map_err(zip_err)?.to_string();
        let Some(name) = member.strip_suffix(".npy") else {
            continue;
        };
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|source| NpzError::Io {
                path: p.clone(),
                source,
            })?;
        let bad = |message: String| NpzError::Member {
            path: p.clone(),
            member: name.to_string(),
            message,
        };
        let header = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
        let value = if header.contains("'descr': '|O'") {
            let body = npy_body(&bytes).map_err(bad)?;
            let v = pickle::load(body).map_err(|e| bad(e.to_string()))?;
            from_pickle(&v).map_err(bad)?
        } else {
            let npy = npyz::NpyFile::new(Cursor::new(&bytes)).map_err(|source| NpzError::Io {
                path: format!("{p}:{name}"),
                source,
            })?;
            let (shape, data) =
                read_array(npy, &format!("{p}:{name}")).map_err(|source| NpzError::Npy {
                    path: p.clone(),
                    source,
                })?;
            NpzValue::Array { shape, data }
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// An uncompressed `.npz` in memory from ready-made `.npy` files: (name without `.npy`,
/// file bytes).
pub fn npz_bytes(entries: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(entries.iter().any(|e| e.1.len() > u32::MAX as usize / 2));
    for (name, npy) in entries {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(std::io::Error::other)?;
        zip.write_all(npy)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

/// Writes f64 arrays as an uncompressed `.npz` (what `np.savez` writes; `np.load` reads it).
pub fn write_npz(path: &Path, arrays: &[(&str, &[usize], &[f64])]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(arrays.iter().any(|a| a.2.len() * 8 > u32::MAX as usize / 2));
    for (name, shape, data) in arrays {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        let mut npy = Vec::new();
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut npy)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()?;
        zip.start_file(format!("{name}.npy"), options)
            .map_err(std::io::Error::other)?;
        zip.write_all(&npy)?;
    }
    zip.finish().map_err(std::io::Error::other)?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_archives_round_trip() {
        let dir = std::env::temp_dir().join(format!("phaseflow-npz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npz");
        let a: Vec<f64> = (0..6).map(|i| i as f64 * 0.5).collect();
        write_npz(&path, &[("a", &[2, 3], &a), ("b", &[1], &[-1.0])]).unwrap();
        let back = read_npz(&path).unwrap();
        assert_eq!(
            back["a"],
            NpzValue::Array {
                shape: vec![2, 3],
                data: a
            }
        );
        assert_eq!(back.len(), 2);
        std::fs::write(dir.join("bad.npz"), b"not a zip").unwrap();
        assert!(matches!(
            read_npz(&dir.join("bad.npz")),
            Err(NpzError::Zip { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
