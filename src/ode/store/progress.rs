//! A shard's progress file (`shards/I-of-M.json` in the store): which trajectories are its
//! own, how far the store holds all of their values, and whether it has finished. Written
//! whole under a temporary name and renamed, so a reader (another shard, `store status`)
//! never sees half of one.

use super::shard::Shard;
use serde_json::{Value, json};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Folder of the progress files inside the store.
pub const SHARDS_DIR: &str = "shards";

/// Writes `value` as `path` atomically: under a name no other process uses, then renamed.
pub fn write_json_atomically(path: &Path, value: &Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON") + "\n";
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` as `path` atomically: under a name no other process uses, then renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.writing", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path))
}

/// Reads a JSON file, `None` when it does not exist.
pub fn read_json(path: &Path) -> Result<Option<Value>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("'{}' is not valid JSON: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read '{}': {e}", path.display())),
    }
}

/// How far a shard has got.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardState {
    pub shard: Shard,
    pub trajectories: Range<usize>,
    /// The store holds every value of trajectories `trajectories.start..done`.
    pub done: usize,
    /// "running", "interrupted" or "complete".
    pub state: String,
    pub fingerprint: String,
    /// The shard's run summary (complete shards).
    pub summary: Option<Value>,
}

impl ShardState {
    pub fn path(store: &Path, shard: Shard) -> PathBuf {
        store.join(SHARDS_DIR).join(shard.file_name())
    }

    pub fn is_complete(&self) -> bool {
        self.state == "complete"
    }

    pub fn json(&self) -> Value {
        let mut v = json!({
            "shard": self.shard.index,
            "of": self.shard.count,
            "trajectories": [self.trajectories.start, self.trajectories.end],
            "done": self.done,
            "state": self.state,
            "fingerprint": self.fingerprint,
        });
        if let Some(s) = &self.summary {
            v["summary"] = s.clone();
        }
        v
    }

    /// The shard's file in `store`, `None` when it has not started.
    pub fn read(store: &Path, shard: Shard) -> Result<Option<ShardState>, String> {
        let path = ShardState::path(store, shard);
        let Some(v) = read_json(&path)? else {
            return Ok(None);
        };
        let bad = || {
            format!(
                "'{}' is not a phaseflow shard progress file",
                path.display()
            )
        };
        let num = |k: &str| v[k].as_u64().map(|x| x as usize).ok_or_else(bad);
        let range = v["trajectories"].as_array().ok_or_else(bad)?;
        let bound = |i: usize| {
            range
                .get(i)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(bad)
        };
        let trajectories = bound(0)?..bound(1)?;
        let done = num("done")?;
        if num("shard")? != shard.index
            || num("of")? != shard.count
            || trajectories.start > trajectories.end
            || !(trajectories.start..=trajectories.end).contains(&done)
        {
            return Err(bad());
        }
        Ok(Some(ShardState {
            shard,
            trajectories,
            done,
            state: v["state"].as_str().ok_or_else(bad)?.to_string(),
            fingerprint: v["fingerprint"].as_str().ok_or_else(bad)?.to_string(),
            summary: v.get("summary").cloned(),
        }))
    }
}

/// The progress file of the shard this process runs, kept up to date as chunks finish.
pub struct ShardProgress {
    path: PathBuf,
    pub state: ShardState,
}

impl ShardProgress {
    pub fn new(store: &Path, state: ShardState) -> std::io::Result<ShardProgress> {
        let path = ShardState::path(store, state.shard);
        std::fs::create_dir_all(store.join(SHARDS_DIR))?;
        let p = ShardProgress { path, state };
        p.write()?;
        Ok(p)
    }

    fn write(&self) -> std::io::Result<()> {
        write_json_atomically(&self.path, &self.state.json())
    }

    /// The store now holds every value of the shard's trajectories before `done`.
    pub fn advance(&mut self, done: usize) -> std::io::Result<()> {
        if done > self.state.done {
            self.state.done = done.min(self.state.trajectories.end);
            self.write()?;
        }
        Ok(())
    }

    /// The shard ended: complete (with its summary) or interrupted.
    pub fn end(&mut self, complete: bool, summary: Value) -> std::io::Result<()> {
        self.state.state = if complete { "complete" } else { "interrupted" }.into();
        self.state.summary = complete.then_some(summary);
        self.write()
    }
}
