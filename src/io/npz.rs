//! `.npz` archives as `np.savez` writes them: a zip of `.npy` members. Numeric members of
//! any float or integer dtype are read as f64; object arrays (which NumPy stores as a
//! pickle, e.g. DeepXDE's `X = (branch inputs, trunk inputs)`) are read through
//! `io::pickle` without running any Python.

use super::npy::{NpyError, header_length, parse_header, read_array};
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

/// The most bytes an archive's members may hold, uncompressed, all together (4 GiB): a
/// member is read only up to the size its archive declares, and the declared sizes must
/// add up to no more than this, so a small archive cannot inflate into all of memory.
pub const MAX_NPZ_BYTES: u64 = 4 << 30;

/// An array from a pickled NumPy value. Recursion follows the pickle's nesting, which
/// `io::pickle` bounds (`pickle::MAX_DEPTH`).
fn from_pickle(v: &Value) -> Result<NpzValue, String> {
    let Value::Array { shape, dtype, data } = v else {
        return Err(format!(
            "an object array holds {}, not an array; only arrays of arrays are supported",
            v.kind()
        ));
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("an array's shape {shape:?} has too many elements"))?;
    match (dtype.as_str(), data.as_ref()) {
        ("|O", Value::List(items)) => {
            if items.len() != count {
                return Err(format!(
                    "an object array of shape {shape:?} holds {} items",
                    items.len()
                ));
            }
            Ok(NpzValue::Objects {
                shape: shape.clone(),
                items: items.iter().map(from_pickle).collect::<Result<_, _>>()?,
            })
        }
        (dt, Value::Bytes(b)) => {
            let (order, kind) = dt.split_at(dt.chars().next().map_or(0, char::len_utf8));
            let width = match kind {
                "f8" | "i8" | "u8" => 8,
                "f4" | "i4" | "u4" => 4,
                other => return Err(format!("dtype '{other}' inside an object array")),
            };
            if order == ">" {
                return Err("big-endian arrays inside object arrays are not supported".into());
            }
            if count.checked_mul(width) != Some(b.len()) {
                return Err(format!(
                    "an array of shape {shape:?} and dtype {dt} holds {} bytes",
                    b.len(),
                ));
            }
            let data = b
                .chunks_exact(width)
                .map(|c| match kind {
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
        _ => Err(format!(
            "an array of dtype {dtype} holding {} inside an object array is not supported",
            data.kind()
        )),
    }
}

/// Every member of an `.npz`, by name (without `.npy`), reading at most `MAX_NPZ_BYTES`.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpzValue>, NpzError> {
    read_npz_limited(path, MAX_NPZ_BYTES)
}

/// `read_npz` with the cap on the members' total uncompressed size given.
pub fn read_npz_limited(
    path: &Path,
    max_bytes: u64,
) -> Result<BTreeMap<String, NpzValue>, NpzError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| NpzError::Io {
        path: p.clone(),
        source,
    })?;
    // A directory opens on Linux and fails later as "Invalid argument".
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(NpzError::Io {
            path: p,
            source: std::io::Error::other("it is a directory, not an .npz file"),
        });
    }
    let zip_err = |e: zip::result::ZipError| NpzError::Zip {
        path: p.clone(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(zip_err)?;
        let member = entry.name().map_err(zip_err)?.to_string();
        let Some(name) = member.strip_suffix(".npy") else {
            continue;
        };
        let bad = |message: String| NpzError::Member {
            path: p.clone(),
            member: name.to_string(),
            message,
        };
        let declared = entry.size();
        total = total.saturating_add(declared);
        if total > max_bytes {
            return Err(bad(format!(
                "the members up to this one declare {total} bytes uncompressed; at most {max_bytes} are read"
            )));
        }
        let bytes = read_member(entry, declared).map_err(|e| match e {
            MemberError::Io(source) => NpzError::Io {
                path: format!("{p}:{name}"),
                source,
            },
            MemberError::Message(m) => bad(m),
        })?;
        let value = read_member_array(&bytes, &p, name)?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

enum MemberError {
    Io(std::io::Error),
    Message(String),
}

/// A member's bytes, exactly as many as its archive declares (a member that inflates past
/// its declared size, or holds less, is refused); memory grows with what is really read,
/// not with the declaration.
fn read_member(entry: impl Read, declared: u64) -> Result<Vec<u8>, MemberError> {
    let mut bytes = Vec::new();
    entry
        .take(declared.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(MemberError::Io)?;
    if bytes.len() as u64 > declared {
        return Err(MemberError::Message(format!(
            "it inflates past the {declared} bytes its archive declares"
        )));
    }
    if (bytes.len() as u64) < declared {
        return Err(MemberError::Message(format!(
            "it holds {} bytes but its archive declares {declared}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A member's `.npy` bytes as a value: numeric arrays directly, object arrays through the
/// pickle reader.
fn read_member_array(bytes: &[u8], path: &str, name: &str) -> Result<NpzValue, NpzError> {
    let bad = |message: String| NpzError::Member {
        path: path.to_string(),
        member: name.to_string(),
        message,
    };
    let header_len = header_length(bytes).map_err(bad)?;
    let head = bytes
        .get(..header_len)
        .ok_or_else(|| bad("it ends inside its .npy header".into()))?;
    let header = parse_header(head).map_err(bad)?;
    if header.descr == "|O" {
        let v = pickle::load(&bytes[header_len..]).map_err(|e| bad(e.to_string()))?;
        return from_pickle(&v).map_err(bad);
    }
    let (shape, data) =
        read_array(bytes, &format!("{path}:{name}")).map_err(|source| NpzError::Npy {
            path: path.to_string(),
            source,
        })?;
    Ok(NpzValue::Array { shape, data })
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
