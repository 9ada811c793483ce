//! The results directory: one folder per finished job (`<id>/job.json` and its `.npy`
//! arrays), so a restarted server lists and serves what an earlier one computed. A folder is
//! filled under `.partial-<id>`, its files synced, and renamed into place in one step: a
//! crash mid-write leaves a `.partial-` folder, which the next start removes, never a result
//! that looks complete but is not.
//!
//! Job ids are durable: `next-id` holds a bound below which every id may already have been
//! handed out, synced to disk before any id under it is; a job's record (state "queued")
//! is synced before the job is accepted. So a server killed at any moment and restarted
//! never hands out an id again, and a job it lost is reported as failed, not as unknown.

use crate::engine::JobId;
use crate::io::{Dtype, header_length, npy_header, npz_bytes, parse_header, read_npy};
use crate::ode::events::log::record_width;
use crate::ode::{Solution, StateValues, Status, StepCounts};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file holding the bound on ids handed out.
const NEXT_ID: &str = "next-id";

fn pretty(record: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(record).expect("a JSON value serializes")
}

/// Replaces `dir/name` with `bytes` in one step (a synced temporary renamed over it, the
/// directory synced), so a crash leaves the old file or the new, never half of one.
fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// What a finished job leaves: its record's summary, and its arrays as (name, `.npy`
/// bytes) in the order an `.npz` lists them.
pub struct Finished {
    pub summary: Value,
    pub arrays: Vec<(String, Vec<u8>)>,
}

pub struct ResultStore {
    root: PathBuf,
}

/// The arrays of a result, in the order an `.npz` lists them. `steps` comes with adaptive
/// and stiff runs, `events` and `event_counts` with systems that have events.
pub const ARRAYS: [&str; 6] = [
    "states",
    "times",
    "status",
    "steps",
    "events",
    "event_counts",
];

pub fn npy<T: bytemuck::Pod>(dtype: Dtype, shape: &[u64], data: &[T]) -> Vec<u8> {
    let mut bytes = npy_header(dtype, shape);
    bytes.extend_from_slice(bytemuck::cast_slice(data));
    bytes
}

/// A finished simulation's arrays as `.npy` bytes, in `ARRAYS` order: the states in the
/// run's precision, times, status codes, step counts (adaptive and stiff runs; stiff ones
/// add Jacobian evaluations and method switches) and event logs.
pub fn solution_arrays(s: &Solution, stiff: bool) -> Vec<(String, Vec<u8>)> {
    let (slots, n, dim) = (s.times.len() as u64, s.n as u64, s.dim as u64);
    let shape = [slots, n, dim];
    let mut out = vec![
        (
            "states".to_string(),
            match &s.states {
                StateValues::F32(v) => npy(Dtype::F32, &shape, v),
                StateValues::F64(v) => npy(Dtype::F64, &shape, v),
            },
        ),
        ("times".to_string(), npy(Dtype::F64, &[slots], &s.times)),
        ("status".to_string(), status_npy(&s.status)),
    ];
    if let Some(steps) = &s.steps {
        let columns = if stiff {
            StepCounts::STIFF_COLUMNS
        } else {
            StepCounts::COLUMNS
        };
        let flat: Vec<u32> = steps.iter().flat_map(|c| c.row(columns)).collect();
        out.push((
            "steps".to_string(),
            npy(Dtype::U32, &[n, columns as u64], &flat),
        ));
    }
    if let Some(log) = &s.events {
        // The run's precision, as the CLI writes it: [N, K, 2 + dim] of t, event id and
        // state, NaN past each count.
        let shape = [n, log.k as u64, record_width(log.dim) as u64];
        let records = match &s.states {
            StateValues::F32(_) => {
                let v: Vec<f32> = log.records.iter().map(|&x| x as f32).collect();
                npy(Dtype::F32, &shape, &v)
            }
            StateValues::F64(_) => npy(Dtype::F64, &shape, &log.records),
        };
        out.push(("events".to_string(), records));
        out.push((
            "event_counts".to_string(),
            npy(Dtype::U32, &[n], &log.counts),
        ));
    }
    out
}

/// Status codes as a u8 `.npy` [N].
pub fn status_npy(status: &[Status]) -> Vec<u8> {
    let codes: Vec<u8> = status.iter().map(|&st| st as u8).collect();
    npy(Dtype::U8, &[codes.len() as u64], &codes)
}

impl ResultStore {
    /// Opens (creating) the directory, removes what a crash left half-written, and returns
    /// the records of the jobs stored there, by id.
    pub fn open(root: &Path) -> std::io::Result<(ResultStore, BTreeMap<JobId, Value>)> {
        std::fs::create_dir_all(root.join("models"))?;
        let mut records = BTreeMap::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(".tmp-") {
                std::fs::remove_file(entry.path())?;
                continue;
            }
            if name.starts_with(".partial-") {
                log::warn!("removing the unfinished result {name}");
                std::fs::remove_dir_all(entry.path())?;
                continue;
            }
            let Ok(id) = name.parse::<JobId>() else {
                continue;
            };
            match std::fs::read_to_string(entry.path().join("job.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                Some(mut record) => {
                    if matches!(record["state"].as_str(), Some("queued" | "running")) {
                        // Accepted but never finished: the server stopped uncleanly.
                        record["state"] = "failed".into();
                        record["error"] = "the server stopped (it was killed or crashed) \
                                           before this job finished; its result is lost, \
                                           submit it again"
                            .into();
                        write_synced(&entry.path(), "job.json", &pretty(&record))?;
                    }
                    records.insert(id, record);
                }
                None => log::warn!("ignoring {name}: no readable job.json"),
            }
        }
        Ok((
            ResultStore {
                root: root.to_path_buf(),
            },
            records,
        ))
    }

    /// The first id no earlier server may have handed out: past every stored job and past
    /// what `next-id` reserved.
    pub fn first_free_id(&self, stored: &BTreeMap<JobId, Value>) -> JobId {
        let reserved = std::fs::read_to_string(self.root.join(NEXT_ID))
            .ok()
            .and_then(|t| t.trim().parse::<JobId>().ok())
            .unwrap_or(1);
        let after_stored = stored.keys().next_back().map_or(1, |last| last + 1);
        reserved.max(after_stored).max(1)
    }

    /// Records durably that ids below `bound` may be in use; returns once it is on disk.
    pub fn reserve_ids(&self, bound: JobId) -> std::io::Result<()> {
        write_synced(&self.root, NEXT_ID, format!("{bound}\n").as_bytes())
    }

    /// A job's first record, durable before the job is accepted.
    pub fn save_accepted(&self, id: JobId, record: &Value) -> std::io::Result<()> {
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir)?;
        write_synced(&dir, "job.json", &pretty(record))?;
        std::fs::File::open(&self.root).and_then(|d| d.sync_all())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Stores a job's record and, for a finished job, its arrays (name, `.npy` bytes), all
    /// or nothing. The record lists the arrays' names in order (`arrays`), so that an
    /// `.npz` lists them as they came.
    pub fn save(
        &self,
        id: JobId,
        record: &Value,
        arrays: &[(String, Vec<u8>)],
    ) -> std::io::Result<()> {
        let partial = self.root.join(format!(".partial-{id}"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)?;
        let write = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut f = std::fs::File::create(partial.join(name))?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        for (name, bytes) in arrays {
            write(&format!("{name}.npy"), bytes)?;
        }
        write("job.json", &pretty(record))?;
        let done = self.root.join(id.to_string());
        let _ = std::fs::remove_dir_all(&done);
        std::fs::rename(&partial, &done)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(&self.root).and_then(|d| d.sync_all())
    }

    fn dir(&self, id: JobId) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// The names of a job's arrays in order: the list its record keeps, or (a record from
    /// before the list was kept) those of `ARRAYS` that are there.
    pub fn array_names(&self, id: JobId, record: &Value) -> Vec<String> {
        match record["arrays"].as_array() {
            Some(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            None => ARRAYS
                .iter()
                .filter(|a| self.dir(id).join(format!("{a}.npy")).is_file())
                .map(|a| a.to_string())
                .collect(),
        }
    }

    /// The stored `.npy` files of a job, in order.
    fn arrays(&self, id: JobId, record: &Value) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for name in self.array_names(id, record) {
            match std::fs::read(self.dir(id).join(format!("{name}.npy"))) {
                Ok(bytes) => out.push((name, bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub fn has_arrays(&self, id: JobId) -> bool {
        self.dir(id).join("states.npy").is_file()
    }

    /// Bytes of what `format=json` would have to spell out: a simulation's states and
    /// event records, every array of an analysis.
    pub fn json_bytes(&self, id: JobId, record: &Value) -> u64 {
        let names = if record["kind"] == "simulate" {
            ["states", "sensitivities", "events"]
                .map(str::to_string)
                .to_vec()
        } else {
            self.array_names(id, record)
        };
        names
            .iter()
            .map(|f| {
                std::fs::metadata(self.dir(id).join(format!("{f}.npy"))).map_or(0, |m| m.len())
            })
            .sum()
    }

    pub fn npz(&self, id: JobId, record: &Value) -> std::io::Result<Vec<u8>> {
        let arrays = self.arrays(id, record)?;
        let entries: Vec<(&str, &[u8])> = arrays
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        npz_bytes(&entries)
    }

    pub fn npy(&self, id: JobId, array: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir(id).join(format!("{array}.npy")))
    }

    /// The arrays as JSON: times, states as [save][trajectory][state], status codes,
    /// for adaptive runs step counts, with sensitivities S as
    /// [save][trajectory][state][target] (`sensitivity_names` the targets), and for systems
    /// with events the counts and, per trajectory, its recorded rows [t, event id, state...]
    /// (no NaN padding).
    pub fn json(&self, id: JobId, record: &Value) -> Result<Value, String> {
        let read = |name: &str| read_npy(&self.dir(id).join(format!("{name}.npy")));
        let (shape, states) = read("states").map_err(|e| e.to_string())?;
        let (_, times) = read("times").map_err(|e| e.to_string())?;
        let (_, status) = read("status").map_err(|e| e.to_string())?;
        let [slots, n, dim] = shape[..] else {
            return Err("states.npy is not 3-dimensional".into());
        };
        let by_save: Vec<Vec<&[f64]>> = (0..slots)
            .map(|s| {
                (0..n)
                    .map(|j| &states[(s * n + j) * dim..(s * n + j + 1) * dim])
                    .collect()
            })
            .collect();
        let mut out = serde_json::json!({
            "id": id,
            "state_names": record["summary"]["states"],
            "shape": [slots, n, dim],
            "times": times,
            "states": by_save,
            "status": status.iter().map(|&c| c as u8).collect::<Vec<_>>(),
        });
        if let Ok((shape, steps)) = read("steps") {
            let columns = shape.get(1).copied().unwrap_or(StepCounts::COLUMNS).max(1);
            out["steps"] = serde_json::json!(
                steps
                    .chunks(columns)
                    .map(|c| c.iter().map(|&v| v as u32).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            );
        }
        if let Ok((shape, sens)) = read("sensitivities") {
            out["sensitivities"] = nested(&shape, &sens, false);
            out["sensitivity_names"] = record["summary"]["sensitivities"]["names"].clone();
        }
        if let (Ok((shape, records)), Ok((_, counts))) = (read("events"), read("event_counts")) {
            let [n, k, width] = shape[..] else {
                return Err("events.npy is not 3-dimensional".into());
            };
            let per_trajectory: Vec<Vec<&[f64]>> = (0..n)
                .map(|j| {
                    let kept = (counts.get(j).copied().unwrap_or(0.0) as usize).min(k);
                    (0..kept)
                        .map(|r| &records[(j * k + r) * width..(j * k + r + 1) * width])
                        .collect()
                })
                .collect();
            out["event_counts"] =
                serde_json::json!(counts.iter().map(|&c| c as u64).collect::<Vec<_>>());
            out["events"] = serde_json::json!(per_trajectory);
        }
        Ok(out)
    }

    /// An analysis' arrays as JSON: each array nested by its shape under its own name
    /// (NaN as null), their shapes under `shapes`.
    pub fn analysis_json(&self, id: JobId, record: &Value) -> Result<Value, String> {
        let mut out = serde_json::json!({"id": id, "kind": record["kind"]});
        let mut shapes = serde_json::Map::new();
        for name in self.array_names(id, record) {
            let path = self.dir(id).join(format!("{name}.npy"));
            let (shape, values) = read_npy(&path).map_err(|e| e.to_string())?;
            // Integer arrays (labels, counts, status codes) are written as integers.
            let integer = std::fs::read(&path)
                .ok()
                .and_then(|b| {
                    let len = header_length(&b).ok()?;
                    parse_header(b.get(..len)?).ok()
                })
                .is_some_and(|h| h.descr.contains(['i', 'u']));
            out[name.as_str()] = nested(&shape, &values, integer);
            shapes.insert(name, serde_json::json!(shape));
        }
        out["shapes"] = Value::Object(shapes);
        Ok(out)
    }

    pub fn delete(&self, id: JobId) -> std::io::Result<()> {
        std::fs::remove_dir_all(self.dir(id))
    }
}

/// `values` (row-major) as nested JSON lists of `shape`; a 0-dimensional array is its value.
fn nested(shape: &[usize], values: &[f64], integer: bool) -> Value {
    match shape {
        [] => nested(&[1], values, integer)[0].take(),
        [_] if integer => serde_json::json!(values.iter().map(|&v| v as i64).collect::<Vec<_>>()),
        [_] => serde_json::json!(values),
        [rows, rest @ ..] => {
            let width: usize = rest.iter().product();
            Value::Array(
                (0..*rows)
                    .map(|r| nested(rest, &values[r * width..(r + 1) * width], integer))
                    .collect(),
            )
        }
    }
}
