//! Disk space and memory found before the work: `fit`, `train` and `generate` keep their
//! results in memory until the end, so a full disk would otherwise be found only after
//! minutes of training, and the run lost. Their output directory is opened here with the
//! results' estimated size claimed on disk first (a file of that size allocated and
//! removed again), as `simulate` claims its streamed files' space.

use super::error::CliError;
use crate::io::OutputDir;
use std::path::{Path, PathBuf};

/// Bytes as "1.5 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Room for a PNG chart of `plot` (960 × 600 line drawings compress to well under this).
pub const CHART_BYTES: u64 = 256 << 10;

/// Whether `bytes` more fit on the disk of `dir`: a file of that size is allocated there
/// (which also sees quotas) and removed; where the file system cannot allocate ahead,
/// its free space is asked instead.
fn claim(dir: &Path, bytes: u64) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let probe = dir.join(format!(".phaseflow-space-{}", std::process::id()));
    let file = std::fs::File::create(&probe)?;
    // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes.max(1) as libc::off_t) };
    drop(file);
    std::fs::remove_file(&probe)?;
    match rc {
        0 => Ok(true),
        libc::ENOSPC | libc::EDQUOT | libc::EFBIG => Ok(false),
        libc::EOPNOTSUPP | libc::EINVAL => Ok(free_bytes(dir)? >= bytes),
        other => Err(std::io::Error::from_raw_os_error(other)),
    }
}

/// Free bytes for an unprivileged user on the file system of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs writes only into `stat`, and `path` is a NUL-terminated string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// The output directory, created if need be, proven writable and with room for about
/// `estimate` bytes of `what`, before any work. When it fails, a directory made here is
/// removed again, so a refused run leaves nothing behind.
pub fn output_dir(dir: &Path, estimate: u64, what: &str) -> Result<OutputDir, CliError> {
    let existed = dir.exists();
    let out = OutputDir::create(dir).map_err(|e| CliError::Input(e.to_string()))?;
    let message = match claim(dir, estimate) {
        Ok(true) => return Ok(out),
        Ok(false) => format!(
            "not enough disk space in '{}': {what} need about {}, and the disk has {} free; \
             free some space or write elsewhere",
            dir.display(),
            bytes(estimate),
            free_bytes(dir).map_or_else(|_| "less".into(), bytes)
        ),
        Err(e) => format!(
            "cannot claim disk space in '{}' for {what} ({}): {e}",
            dir.display(),
            bytes(estimate)
        ),
    };
    drop(out);
    if !existed {
        let _ = std::fs::remove_dir(dir);
    }
    Err(CliError::Input(message))
}

/// Refuses `-o DIR` onto an earlier result: a DIR holding a `summary.json` or a `run.json`
/// (what every phaseflow command leaves) would otherwise be overwritten in part, old files
/// beside new. With `overwrite`, the paths of the files this command writes (`own`), for
/// the output directory to remove when it commits; nothing else is touched.
pub fn refuse_earlier_results(
    dir: &Path,
    overwrite: bool,
    own: &[&str],
) -> Result<Vec<PathBuf>, CliError> {
    let earlier = ["summary.json", "run.json"]
        .iter()
        .any(|name| dir.join(name).is_file());
    if !earlier {
        return Ok(Vec::new());
    }
    if !overwrite {
        return Err(CliError::Input(format!(
            "'{}' holds earlier results (a summary.json or run.json); give another -o, or \
             --overwrite to replace them",
            dir.display()
        )));
    }
    // Removed when the new results are committed (`OutputDir::replace_at_commit`), not
    // now: a run that fails or diverges leaves the earlier results whole.
    Ok(own.iter().map(|name| dir.join(name)).collect())
}

/// Physical memory of this machine, where the system says.
pub fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf reads no memory of ours.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && page > 0).then(|| pages as u64 * page as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn a_claim_beyond_any_disk_is_refused_and_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("phaseflow-space-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = output_dir(&dir, 1 << 60, "the results")
            .err()
            .expect("refused");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("1048576.0 TiB"), "{e}");
        assert!(!dir.exists(), "a refused run leaves no directory");
        let out = output_dir(&dir, 1024, "the results").expect("1 KiB fits");
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no probe left");
        // Nothing committed: the directory it made goes with it.
        drop(out);
        assert!(!dir.exists());
    }
}
