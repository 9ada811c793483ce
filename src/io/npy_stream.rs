//! An `.npy` file written in pieces, in any order: the header (dtype and shape are known up
//! front) and the file's full length are fixed at creation, then blocks of elements go
//! straight to their place. Nothing is held in memory, so output can be far larger than RAM.
//! On Linux the whole length is allocated at creation, so a full disk is reported before
//! any work rather than in the middle of a run.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An element type of a streamed array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U8,
    U32,
    I32,
    I64,
    F32,
    F64,
}

impl Dtype {
    pub fn width(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// numpy's `descr`.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::U32 => "<u4",
            Dtype::I32 => "<i4",
            Dtype::I64 => "<i8",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }
}

/// The `.npy` (version 1.0) header for a C-order array, padded to a multiple of 64 bytes.
pub fn npy_header(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("{n},"),
        _ => shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({dims}), }}",
        dtype.descr()
    );
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

pub struct NpyStream {
    file: File,
    path: PathBuf,
    data_offset: u64,
    dtype: Dtype,
    len: u64,
}

impl NpyStream {
    /// Creates `path` with the header of a `shape` array of `dtype` and room for all of it.
    pub fn create(path: &Path, dtype: Dtype, shape: &[u64]) -> std::io::Result<NpyStream> {
        let header = npy_header(dtype, shape);
        let len: u64 = shape.iter().product();
        let mut file = File::create(path)?;
        file.write_all(&header)?;
        let total = header.len() as u64 + len * dtype.width() as u64;
        allocate(&file, total)?;
        Ok(NpyStream {
            file,
            path: path.to_path_buf(),
            data_offset: header.len() as u64,
            dtype,
            len,
        })
    }

    /// Opens an existing stream file for writing in place (resuming a run); its header must
    /// be the one `create` would write for `dtype` and `shape`.
    pub fn open_existing(path: &Path, dtype: Dtype, shape: &[u64]) -> std::io::Result<NpyStream> {
        let header = npy_header(dtype, shape);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let mut found = vec![0u8; header.len()];
        std::io::Read::read_exact(&mut file, &mut found)?;
        let len: u64 = shape.iter().product();
        let total = header.len() as u64 + len * dtype.width() as u64;
        if found != header || file.metadata()?.len() != total {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "it does not hold the array this run writes",
            ));
        }
        Ok(NpyStream {
            file,
            path: path.to_path_buf(),
            data_offset: header.len() as u64,
            dtype,
            len,
        })
    }

    /// Reads `count` elements from element `index` on (for resuming: what was written).
    /// A range past the array's end (e.g. from an edited run record) is an error before
    /// anything is allocated.
    pub fn read_at(&mut self, index: u64, count: usize) -> std::io::Result<Vec<u8>> {
        let width = self.dtype.width() as u64;
        if index
            .checked_add(count as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "elements {index}..+{count} lie past the end of an array of {} elements",
                    self.len
                ),
            ));
        }
        self.file
            .seek(SeekFrom::Start(self.data_offset + index * width))?;
        let mut out = vec![0u8; count * width as usize];
        std::io::Read::read_exact(&mut self.file, &mut out)?;
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Writes `bytes` (whole elements of the stream's dtype, little-endian) starting at
    /// element `index` of the flattened array.
    pub fn write_at(&mut self, index: u64, bytes: &[u8]) -> std::io::Result<()> {
        let width = self.dtype.width() as u64;
        debug_assert_eq!(bytes.len() as u64 % width, 0);
        debug_assert!(index + bytes.len() as u64 / width <= self.len);
        self.file
            .seek(SeekFrom::Start(self.data_offset + index * width))?;
        self.file.write_all(bytes)
    }

    /// Flushes the data to the disk.
    pub fn finish(self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Gives the file its full length, with the blocks allocated where the platform can.
#[cfg(target_os = "linux")]
fn allocate(file: &File, total: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, total as libc::off_t) };
    match rc {
        0 => Ok(()),
        // Some file systems cannot preallocate; a sparse file of the right length will do.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(total),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate(file: &File, total: u64) -> std::io::Result<()> {
    file.set_len(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_files_read_back_as_written() {
        let dir = std::env::temp_dir().join(format!("npy-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let mut s = NpyStream::create(&path, Dtype::F32, &[2, 3]).unwrap();
        // Rows out of order.
        s.write_at(3, bytemuck::cast_slice(&[4.0f32, 5.0, 6.0]))
            .unwrap();
        s.write_at(0, bytemuck::cast_slice(&[1.0f32, 2.0, 3.0]))
            .unwrap();
        s.finish().unwrap();
        let (data, rows, cols) = crate::io::read_matrix(&path).unwrap();
        assert_eq!((rows, cols), (2, 3));
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut s = NpyStream::open_existing(&path, Dtype::F32, &[2, 3]).unwrap();
        assert_eq!(
            s.read_at(4, 2).unwrap(),
            bytemuck::cast_slice::<f32, u8>(&[5.0f32, 6.0])
        );
        let e = s.read_at(4, 3).unwrap_err().to_string();
        assert!(e.contains("past the end of an array of 6 elements"), "{e}");
        assert!(s.read_at(u64::MAX, 2).is_err());
        assert!(NpyStream::open_existing(&path, Dtype::F32, &[3, 2]).is_err());
        let h = npy_header(Dtype::U8, &[7]);
        assert_eq!(h.len() % 64, 0);
        assert!(String::from_utf8_lossy(&h).contains("'shape': (7,)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
