//! An output directory whose files appear together: each is written under a temporary
//! name and renamed into place by `commit`. Dropped without a commit (an error, Ctrl-C
//! unwinding), the temporaries are removed, so a failed run leaves no half-written results,
//! and a directory it made itself goes too if nothing else was put in it.

use super::npy_stream::{Dtype, NpyStream};
use npyz::AutoSerialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot write to output directory '{path}': {source}")]
    Unwritable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing '{path}' failed: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "not enough disk space for '{path}' ({gib:.2} GiB); free some space, save less often \
         or write elsewhere"
    )]
    NoSpace { path: String, gib: f64 },
}

pub struct OutputDir {
    dir: PathBuf,
    /// (temporary, final) paths written so far.
    pending: Vec<(PathBuf, PathBuf)>,
    /// (temporary, final) paths of an interrupted run's files found under their temporary
    /// names (the run was killed): moved into place by `commit` too, but never removed on
    /// drop, since they hold finished work.
    adopted: Vec<(PathBuf, PathBuf)>,
    /// `create` made the directory (it did not exist): removed if dropped uncommitted and
    /// still empty, so an interrupted or failed run leaves no empty result directory.
    made: bool,
    /// An earlier run's files that `--overwrite` replaces: removed by `commit` (those the
    /// new run does not write again), so a run that fails leaves the earlier results whole.
    replaced: Vec<PathBuf>,
}

/// Directories `create` made in this process, for `remove_made_if_empty`.
static MADE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every directory an `OutputDir` of this process made that is still empty: for an
/// exit that skips `Drop` (a second Ctrl-C quits at once). A directory with anything in it
/// stays (an interrupted stream's files are what `--resume` continues from).
pub fn remove_made_if_empty() {
    let made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    for dir in made.iter() {
        let _ = std::fs::remove_dir(dir);
    }
}

impl OutputDir {
    /// Creates the directory if needed and proves it writable, before any work is done.
    pub fn create(dir: &Path) -> Result<OutputDir, OutputError> {
        let unwritable = |source| OutputError::Unwritable {
            path: dir.display().to_string(),
            source,
        };
        let made = !dir.exists();
        std::fs::create_dir_all(dir).map_err(unwritable)?;
        let probe = dir.join(format!(".phaseflow-probe-{}", std::process::id()));
        std::fs::write(&probe, b"probe").map_err(unwritable)?;
        std::fs::remove_file(&probe).map_err(unwritable)?;
        if made {
            MADE.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(dir.to_path_buf());
        }
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
            adopted: Vec::new(),
            made,
            replaced: Vec::new(),
        })
    }

    /// An existing output directory whose files are written in place (resuming a run).
    pub fn reopen(dir: &Path) -> Result<OutputDir, OutputError> {
        if !dir.is_dir() {
            return Err(OutputError::Unwritable {
                path: dir.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
            adopted: Vec::new(),
            made: false,
            replaced: Vec::new(),
        })
    }

    /// The temporary name a file has until `commit`.
    pub fn temporary_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.partial"))
    }

    /// A stream file of an interrupted run, opened where it is: under its own name (the
    /// run was stopped with Ctrl-C) or under its temporary name (the run was killed), in
    /// which case `commit` moves it into place.
    pub fn resume_npy(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[u64],
    ) -> Result<NpyStream, OutputError> {
        let final_path = self.dir.join(name);
        let tmp = self.temporary_path(name);
        let path = if tmp.exists() { &tmp } else { &final_path };
        let stream =
            NpyStream::open_existing(path, dtype, shape).map_err(|source| OutputError::Write {
                path: final_path.display().to_string(),
                source,
            })?;
        if tmp.exists() {
            self.adopted.push((tmp, final_path));
        }
        Ok(stream)
    }

    /// Writes a whole file now, atomically (under its temporary name, then renamed): a
    /// reader sees the old content or the new one, never a mix. For files that must exist
    /// while the run goes (its run.json, its inputs).
    pub fn write_now(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let final_path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.writing"));
        let error = |source| OutputError::Write {
            path: final_path.display().to_string(),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(error)?;
        std::fs::rename(&tmp, &final_path).map_err(error)
    }

    /// An already written stream file of this directory, opened in place.
    pub fn existing_npy(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &[u64],
    ) -> Result<NpyStream, OutputError> {
        let path = self.dir.join(name);
        NpyStream::open_existing(&path, dtype, shape).map_err(|source| OutputError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A file made by `write` at a temporary path, moved into place by `commit`.
    pub fn stage(
        &mut self,
        name: &str,
        write: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), OutputError> {
        let final_path = self.dir.join(name);
        let tmp = self.temporary_path(name);
        write(&tmp).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            OutputError::Write {
                path: final_path.display().to_string(),
                source,
            }
        })?;
        self.pending.push((tmp, final_path));
        Ok(())
    }

    pub fn write_npy<T: AutoSerialize + Copy>(
        &mut self,
        name: &str,
        shape: &[u64],
        data: &[T],
    ) -> Result<(), OutputError> {
        self.stage(name, |p| super::npy::write_npy(p, shape, data))
    }

    /// A `.npy` file to be written in pieces while the run goes on (see `NpyStream`); its
    /// full size is claimed on disk now, so a full disk fails here, before any work.
    pub fn stream_npy(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[u64],
    ) -> Result<NpyStream, OutputError> {
        let mut stream = None;
        let gib = shape.iter().product::<u64>() as f64 * dtype.width() as f64 / (1u64 << 30) as f64;
        let final_path = self.dir.join(name);
        self.stage(name, |p| {
            stream = Some(NpyStream::create(p, dtype, shape)?);
            Ok(())
        })
        .map_err(|e| match e {
            OutputError::Write { source, .. }
                if source.raw_os_error() == Some(libc::ENOSPC)
                    || source.kind() == std::io::ErrorKind::StorageFull =>
            {
                OutputError::NoSpace {
                    path: final_path.display().to_string(),
                    gib,
                }
            }
            other => other,
        })?;
        Ok(stream.expect("created"))
    }

    pub fn write_json(&mut self, name: &str, value: &serde_json::Value) -> Result<(), OutputError> {
        let text =
            serde_json::to_string_pretty(value).expect("JSON values always serialise") + "\n";
        self.stage(name, |p| std::fs::write(p, text))
    }

    /// A file whose whole content is already in memory (a checkpoint, a PNG).
    pub fn write_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        self.stage(name, |p| std::fs::write(p, bytes))
    }

    /// Files of an earlier run (`cli::space::refuse_earlier_results`) that `commit`
    /// removes, when the new results are in place of them, and not before.
    pub fn replace_at_commit(&mut self, earlier: Vec<PathBuf>) {
        self.replaced = earlier;
    }

    /// Moves every staged file into place (removing the earlier run's it replaces).
    pub fn commit(mut self) -> Result<Vec<PathBuf>, OutputError> {
        let mut done = Vec::new();
        self.made = false;
        let mut all = std::mem::take(&mut self.adopted);
        all.append(&mut self.pending);
        // The earlier run's files the new one does not write again (a picture it could not
        // draw): gone, so that no file of the directory is the earlier run's.
        for old in &self.replaced {
            if all.iter().any(|(_, f)| f == old) {
                continue;
            }
            match std::fs::remove_file(old) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(OutputError::Write {
                        path: old.display().to_string(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        for (tmp, final_path) in all {
            std::fs::rename(&tmp, &final_path).map_err(|source| OutputError::Write {
                path: final_path.display().to_string(),
                source,
            })?;
            done.push(final_path);
        }
        Ok(done)
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        for (tmp, _) in &self.pending {
            let _ = std::fs::remove_file(tmp);
        }
        if self.made {
            // Fails, as it should, if anything else is in it.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("phaseflow-outdir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A hard exit's clean-up removes a made directory only while it is empty.
    #[test]
    fn made_directories_go_on_a_hard_exit_only_when_empty() {
        let empty = scratch("hard-empty");
        let full = scratch("hard-full");
        let _a = OutputDir::create(&empty).unwrap();
        let _b = OutputDir::create(&full).unwrap();
        std::fs::write(full.join("states.npy.partial"), b"x").unwrap();
        remove_made_if_empty();
        assert!(!empty.exists());
        assert!(full.join("states.npy.partial").exists());
        std::fs::remove_dir_all(&full).unwrap();
    }

    /// An interrupted or failed run leaves neither temporaries nor a directory it made;
    /// a directory that was there, or one that holds anything else, stays.
    #[test]
    fn an_uncommitted_run_leaves_no_directory_it_made() {
        let made = scratch("made");
        let mut out = OutputDir::create(&made).unwrap();
        out.write_bytes("a.txt", b"half").unwrap();
        drop(out);
        assert!(!made.exists());

        let there = scratch("there");
        std::fs::create_dir_all(&there).unwrap();
        drop(OutputDir::create(&there).unwrap());
        assert!(there.is_dir());

        let shared = scratch("shared");
        let out = OutputDir::create(&shared).unwrap();
        std::fs::write(shared.join("other.txt"), b"not ours").unwrap();
        drop(out);
        assert!(shared.join("other.txt").is_file());

        let done = scratch("done");
        let mut out = OutputDir::create(&done).unwrap();
        out.write_bytes("a.txt", b"whole").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(done.join("a.txt")).unwrap(), b"whole");
        for d in [there, shared, done] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
