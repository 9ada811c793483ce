//! `.npy` reading and writing. Writing goes through npyz; reading is our own, because a
//! `.npy` is user input: the header is parsed by a small non-recursive reader of exactly the
//! dict numpy writes, and every size it declares (header length, element count, data bytes)
//! is checked against the file before anything is allocated.

use npyz::{AutoSerialize, WriterBuilder};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use thiserror::Error;

/// The longest `.npy` header read. numpy writes about 128 bytes (its own reader refuses more
/// than 10,000 by default); anything longer is not an array we could use.
pub const MAX_HEADER_BYTES: usize = 65_536;

/// The most dimensions an array may have (numpy's own limit, `NPY_MAXDIMS`, is 64).
pub const MAX_DIMS: usize = 64;

#[derive(Debug, Error)]
pub enum NpyError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a .npy file: {message}")]
    Header { path: String, message: String },
    #[error("'{path}': {message}")]
    Size { path: String, message: String },
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
/// integer dtypes, C or Fortran order; a 1-D array is one column.
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
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut prefix = vec![0u8; PREAMBLE_MAX.min(file_len as usize)];
    file.read_exact(&mut prefix).map_err(io)?;
    let header_len = header_length(&prefix).map_err(|m| header_err(&p, m))?;
    if header_len as u64 > file_len {
        return Err(header_err(
            &p,
            format!("its header is {header_len} bytes long but the file holds {file_len}"),
        ));
    }
    let mut head = vec![0u8; header_len];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.read_exact(&mut head).map_err(io)?;
    let header = parse_header(&head).map_err(|m| header_err(&p, m))?;
    let elem = header.element(&p)?;
    let count = header.checked_count(elem, file_len - header_len as u64, &p)?;
    let mut values = Vec::with_capacity(count);
    let mut chunk = vec![0u8; (1 << 20) / 8 * elem.width];
    let mut left = count * elem.width;
    while left > 0 {
        let n = left.min(chunk.len());
        file.read_exact(&mut chunk[..n]).map_err(io)?;
        elem.decode(&chunk[..n], &mut values);
        left -= n;
    }
    Ok((header.shape_usize(), header.to_c_order(values)))
}

/// Reads a whole `.npy` held in memory (e.g. an `.npz` member) as f64 in C order, with its
/// shape; `name` is what errors call it.
pub fn read_array(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f64>), NpyError> {
    let header_len = header_length(bytes).map_err(|m| header_err(name, m))?;
    let head = bytes.get(..header_len).ok_or_else(|| {
        header_err(
            name,
            format!(
                "its header is {header_len} bytes long but it holds {}",
                bytes.len()
            ),
        )
    })?;
    let header = parse_header(head).map_err(|m| header_err(name, m))?;
    let elem = header.element(name)?;
    let body = &bytes[header_len..];
    let count = header.checked_count(elem, body.len() as u64, name)?;
    let mut values = Vec::with_capacity(count);
    elem.decode(&body[..count * elem.width], &mut values);
    Ok((header.shape_usize(), header.to_c_order(values)))
}

fn header_err(path: &str, message: String) -> NpyError {
    NpyError::Header {
        path: path.to_string(),
        message,
    }
}

/// Magic (6 bytes), version (2), header length (2 or 4).
const PREAMBLE_MAX: usize = 12;

/// The length of the whole header (magic, version, length field and dict) from the file's
/// first bytes, checked against `MAX_HEADER_BYTES`.
pub fn header_length(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("it does not start with numpy's magic bytes".into());
    }
    let (dict_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err("it ends inside its header".into()),
        v => return Err(format!("format version {v} is not supported (1 to 3 are)")),
    };
    if dict_len > MAX_HEADER_BYTES {
        return Err(format!(
            "its header declares {dict_len} bytes; at most {MAX_HEADER_BYTES} are read"
        ));
    }
    Ok(start + dict_len)
}

/// What a `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// numpy's dtype string, e.g. `<f8` or `|O`.
    pub descr: String,
    pub fortran: bool,
    pub shape: Vec<u64>,
}

/// The header of a `.npy` from its first `header_length` bytes.
pub fn parse_header(head: &[u8]) -> Result<NpyHeader, String> {
    let start = if head.get(6) == Some(&1) { 10 } else { 12 };
    let text = head.get(start..).ok_or("it ends inside its header")?;
    // Version 3 headers are UTF-8, earlier ones latin-1; numpy writes ASCII in both.
    let text: String = match std::str::from_utf8(text) {
        Ok(t) => t.to_string(),
        Err(_) => text.iter().map(|&b| b as char).collect(),
    };
    let mut p = DictParser {
        chars: text.chars().collect(),
        at: 0,
    };
    p.parse()
}

/// A reader of the one dict numpy writes: `{'descr': '<f8', 'fortran_order': False,
/// 'shape': (3, 4), }`. Flat by construction (no recursion): a shape is a tuple or list of
/// integers and nothing nests deeper.
struct DictParser {
    chars: Vec<char>,
    at: usize,
}

impl DictParser {
    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.peek() {
            Some(d) if d == c => {
                self.at += 1;
                Ok(())
            }
            Some(d) => Err(format!("expected '{c}' in its header, found '{d}'")),
            None => Err(format!("its header ends where '{c}' should be")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err("expected a quoted string in its header".into()),
        };
        self.at += 1;
        let start = self.at;
        while let Some(&c) = self.chars.get(self.at) {
            self.at += 1;
            if c == quote {
                return Ok(self.chars[start..self.at - 1].iter().collect());
            }
        }
        Err("a string in its header is not closed".into())
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '+')
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn dimension(&mut self) -> Result<u64, String> {
        let w = self.word();
        // Python 2 wrote longs with an L.
        let digits = w.strip_suffix('L').unwrap_or(&w);
        if digits.starts_with('-') {
            return Err(format!("its shape has a negative dimension ({w})"));
        }
        digits
            .parse::<u64>()
            .map_err(|_| format!("'{w}' in its shape is not a dimension"))
    }

    fn shape(&mut self) -> Result<Vec<u64>, String> {
        let close = match self.peek() {
            Some('(') => ')',
            Some('[') => ']',
            _ => return Err("its shape is not a tuple".into()),
        };
        self.at += 1;
        let mut dims = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(dims);
            }
            if dims.len() == MAX_DIMS {
                return Err(format!("its shape has more than {MAX_DIMS} dimensions"));
            }
            dims.push(self.dimension()?);
            match self.peek() {
                Some(',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err("its shape is not a tuple of integers".into()),
            }
        }
    }

    fn parse(&mut self) -> Result<NpyHeader, String> {
        self.expect('{')?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            if self.peek() == Some('}') {
                self.at += 1;
                break;
            }
            let key = self.string()?;
            self.expect(':')?;
            match key.as_str() {
                "descr" if self.peek() == Some('[') => {
                    return Err("structured dtypes (records) are not supported".into());
                }
                "descr" => descr = Some(self.string()?),
                "fortran_order" => {
                    fortran = Some(match self.word().as_str() {
                        "True" => true,
                        "False" => false,
                        w => return Err(format!("fortran_order is '{w}', not True or False")),
                    })
                }
                "shape" => shape = Some(self.shape()?),
                other => return Err(format!("its header has an unknown key '{other}'")),
            }
            match self.peek() {
                Some(',') => self.at += 1,
                Some('}') => {}
                _ => return Err("its header is not a dict".into()),
            }
        }
        let missing = |k: &str| format!("its header has no '{k}'");
        Ok(NpyHeader {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran: fortran.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

impl NpyHeader {
    /// The element type, if it is one we read as numbers.
    fn element(&self, name: &str) -> Result<Element, NpyError> {
        Element::from_descr(&self.descr).ok_or_else(|| NpyError::DType {
            path: name.to_string(),
            dtype: self.descr.clone(),
        })
    }

    /// The number of elements, checked to fit in `available` bytes of data before any of
    /// them is read or allocated.
    fn checked_count(&self, elem: Element, available: u64, name: &str) -> Result<usize, NpyError> {
        let too_big = || NpyError::Size {
            path: name.to_string(),
            message: format!(
                "its shape {:?} has more elements than any file can hold",
                self.shape
            ),
        };
        let count = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(too_big)?;
        let bytes = count.checked_mul(elem.width as u64).ok_or_else(too_big)?;
        if bytes > available {
            return Err(NpyError::Size {
                path: name.to_string(),
                message: format!(
                    "its shape {:?} needs {bytes} bytes of {} data but only {available} follow its header",
                    self.shape, self.descr
                ),
            });
        }
        usize::try_from(count).map_err(|_| too_big())
    }

    fn shape_usize(&self) -> Vec<usize> {
        // checked_count has bounded the product, so every dimension fits.
        self.shape.iter().map(|&d| d as usize).collect()
    }

    /// `values` in C order (the last index fastest) whatever order the file stores.
    fn to_c_order(&self, values: Vec<f64>) -> Vec<f64> {
        let shape = self.shape_usize();
        if !self.fortran || shape.len() < 2 || values.is_empty() {
            return values;
        }
        // Fortran order: the first index varies fastest. The product of the dimensions is
        // values.len(), so no stride overflows.
        let mut c_strides = vec![1usize; shape.len()];
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
    }
}

/// A numeric element type of a `.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    kind: Kind,
    width: usize,
    big_endian: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

impl Element {
    fn from_descr(descr: &str) -> Option<Element> {
        let mut chars = descr.chars();
        let big_endian = match chars.next()? {
            '<' | '|' | '=' => false,
            '>' => true,
            _ => return None,
        };
        let (kind, width) = match chars.as_str() {
            "f4" => (Kind::Float, 4),
            "f8" => (Kind::Float, 8),
            "i1" => (Kind::Int, 1),
            "i2" => (Kind::Int, 2),
            "i4" => (Kind::Int, 4),
            "i8" => (Kind::Int, 8),
            "u1" => (Kind::Uint, 1),
            "u2" => (Kind::Uint, 2),
            "u4" => (Kind::Uint, 4),
            "u8" => (Kind::Uint, 8),
            "b1" => (Kind::Bool, 1),
            _ => return None,
        };
        Some(Element {
            kind,
            width,
            big_endian,
        })
    }

    /// Appends the values of `bytes` (whole elements) to `out`.
    fn decode(self, bytes: &[u8], out: &mut Vec<f64>) {
        out.extend(bytes.chunks_exact(self.width).map(|c| {
            let mut b = [0u8; 8];
            b[..self.width].copy_from_slice(c);
            if self.big_endian {
                b[..self.width].reverse();
            }
            let raw = u64::from_le_bytes(b);
            // Sign-extend from the element's width.
            let shift = 64 - 8 * self.width as u32;
            let signed = ((raw << shift) as i64) >> shift;
            match (self.kind, self.width) {
                (Kind::Float, 4) => f32::from_bits(raw as u32) as f64,
                (Kind::Float, _) => f64::from_bits(raw),
                (Kind::Int, _) => signed as f64,
                (Kind::Uint, _) => raw as f64,
                (Kind::Bool, _) => (raw != 0) as u8 as f64,
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("phaseflow-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn round_trip_and_header() {
        let path = temp("a.npy");
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
        assert_eq!(read_array(&bytes, "a").unwrap().1, data);
        write_npy(&path, &[2, 2, 1], &[1.0f64; 4]).unwrap();
        assert!(matches!(
            read_matrix(&path),
            Err(NpyError::NotMatrix { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }

    /// A hand-made `.npy` with the given dict and body.
    fn npy(dict: &str, body: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out.extend(body);
        out
    }

    /// Through npyz, [3, 6148914691236517206] had 2 elements once its (wrapping) product
    /// was taken, and the Fortran reordering then indexed far out of bounds (a panic).
    #[test]
    fn shapes_whose_product_overflows_are_refused() {
        let f = npy(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 6148914691236517206), }",
            &[0; 16],
        );
        let e = read_array(&f, "x").unwrap_err().to_string();
        assert!(e.contains("more elements than any file can hold"), "{e}");
        let f = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
            &[],
        );
        assert!(matches!(read_array(&f, "x"), Err(NpyError::Size { .. })));
    }

    #[test]
    fn declared_sizes_beyond_the_file_are_refused_before_allocating() {
        // 2^40 doubles promised, 8 bytes present.
        let f = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }",
            &[0; 8],
        );
        let e = read_array(&f, "x").unwrap_err().to_string();
        assert!(e.contains("needs 8796093022208 bytes"), "{e}");
        assert!(e.contains("only 8 follow"), "{e}");
        // A version-2 header length of 4 GiB.
        let mut f = b"\x93NUMPY\x02\x00".to_vec();
        f.extend(u32::MAX.to_le_bytes());
        let e = read_array(&f, "x").unwrap_err().to_string();
        assert!(e.contains("at most 65536 are read"), "{e}");
        // A header length past the end of the file, through the file reader.
        let path = temp("short.npy");
        std::fs::write(&path, b"\x93NUMPY\x01\x00\xff\x00{").unwrap();
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(
            e.contains("header is 265 bytes long but the file holds 11"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn odd_headers_get_a_sentence() {
        let bad = |dict: &str| {
            read_array(&npy(dict, &[0; 8]), "x")
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }").contains("negative")
        );
        assert!(
            bad("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }")
                .contains("structured")
        );
        assert!(bad("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }").contains("<c16"));
        assert!(
            bad("{'descr': '<f8', 'fortran_order': 1, 'shape': (1,), }").contains("fortran_order")
        );
        assert!(bad("{'descr': '<f8', 'shape': (1,), }").contains("no 'fortran_order'"));
        assert!(
            bad("{'descr': '<f8', 'fortran_order': False, 'shape': ((1,),), }").contains("shape")
        );
        let deep = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}",
            "1,".repeat(65)
        );
        assert!(bad(&deep).contains("more than 64 dimensions"));
    }

    #[test]
    fn fortran_order_big_endian_and_integers_are_read() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column, big-endian i2.
        let body: Vec<u8> = [1i16, 4, 2, 5, 3, 6]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let f = npy(
            "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }",
            &body,
        );
        let (shape, data) = read_array(&f, "x").unwrap();
        assert_eq!(shape, [2, 3]);
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let f = npy(
            "{'descr': '|i1', 'fortran_order': False, 'shape': (2L,), }",
            &[0xff, 7],
        );
        assert_eq!(read_array(&f, "x").unwrap().1, [-1.0, 7.0]);
    }
}
