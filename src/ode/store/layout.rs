//! The store's arrays: names, shapes, chunks, dimension names and attributes, fixed by the
//! run alone (never by the device or the process), so that every shard of a run makes the
//! same metadata and writes chunks that fit together.

use crate::ode::{Problem, StepCounts};
use crate::precision::Precision;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use zarrs::array::builder::ArrayBuilderFillValue;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{Array, ArrayBuilder, DataType, data_type};
use zarrs::filesystem::FilesystemStore;

/// Uncompressed bytes a chunk of `states` aims at: a few MiB, the size Zarr and Dask
/// guides recommend (small enough to stream, large enough to compress well).
const CHUNK_TARGET_BYTES: usize = 4 << 20;

/// Save times per chunk of `states` at most: long saves are cut along time too, so that a
/// chunk stays small and a shard's host buffers stay bounded.
const MAX_TIME_CHUNK: usize = 256;

/// A chunk compression by name: `zstd` (level 3), `zstd:LEVEL` (1-22) or `none`; the zstd
/// level, or `None` for uncompressed chunks.
pub fn parse_compression(s: &str) -> Result<Option<i32>, String> {
    match s.trim() {
        "none" => Ok(None),
        "zstd" => Ok(Some(3)),
        other => other
            .strip_prefix("zstd:")
            .and_then(|l| l.trim().parse::<i32>().ok())
            .filter(|l| (1..=22).contains(l))
            .map(Some)
            .ok_or_else(|| {
                format!("'{s}' is not a compression: give zstd, zstd:LEVEL (1-22) or none")
            }),
    }
}

/// How the run's arrays are cut and compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub n: usize,
    pub n_save: usize,
    pub dim: usize,
    pub n_params: usize,
    pub precision: Precision,
    /// Columns of `stats` (adaptive runs), else `None`.
    pub stats_columns: Option<usize>,
    /// Trajectories per chunk: the unit a shard is made of.
    pub traj_chunk: usize,
    /// Save times per chunk of `states`.
    pub time_chunk: usize,
    /// zstd level, or `None` for uncompressed chunks.
    pub zstd: Option<i32>,
    /// Event records kept per trajectory, for a system with events (or a section).
    pub event_records: Option<usize>,
}

impl Layout {
    /// The layout of `problem`'s run with `n_save` save times; `traj_chunk` overrides the
    /// trajectories per chunk (else about `CHUNK_TARGET_BYTES` per chunk of `states`).
    pub fn new(
        problem: &Problem,
        n_save: usize,
        traj_chunk: Option<usize>,
        zstd: Option<i32>,
    ) -> Layout {
        let (n, dim) = (problem.ensemble().n, problem.system().dim());
        let precision = problem.precision();
        let time_chunk = n_save.clamp(1, MAX_TIME_CHUNK);
        let system = problem.system();
        let event_records = (!system.events.is_empty()).then_some(system.event_log.k);
        // A trajectory's bytes in its chunk of `states` or of `events`, whichever is larger.
        let events_row = event_records.map_or(0, |k| k * (2 + dim));
        let row = (time_chunk * dim.max(1)).max(events_row) * precision.bytes() as usize;
        // A power of two, so that chunk boundaries of runs of different sizes line up.
        let by_size = (CHUNK_TARGET_BYTES / row).max(1);
        let pow2 = 1usize << (usize::BITS - 1 - by_size.leading_zeros());
        let traj_chunk = traj_chunk.unwrap_or(pow2).clamp(1, n.max(1));
        let stats_columns = problem.is_adaptive().then(|| {
            if problem.is_stiff() {
                StepCounts::STIFF_COLUMNS
            } else {
                StepCounts::COLUMNS
            }
        });
        Layout {
            n,
            n_save,
            dim,
            n_params: problem.system().n_params(),
            precision,
            stats_columns,
            traj_chunk,
            time_chunk,
            zstd,
            event_records,
        }
    }

    /// Bytes of one uncompressed chunk of `states`.
    pub fn chunk_bytes(&self) -> u64 {
        (self.time_chunk * self.traj_chunk * self.dim.max(1)) as u64 * self.precision.bytes()
    }

    /// Values per trajectory in `events`: every record's time, event id and state.
    pub fn event_width(&self) -> usize {
        self.event_records.unwrap_or(0) * (2 + self.dim)
    }

    /// Refuses chunks too large to hold in memory and encode (a huge --zarr-chunk).
    pub fn check(&self) -> Result<(), String> {
        let events = (self.traj_chunk * self.event_width()) as u64 * self.precision.bytes();
        if events > MAX_CHUNK_BYTES {
            return Err(format!(
                "a chunk of event records would be {:.1} GiB ({} trajectories × {} records × \
                 {} values), held in memory while it fills; at most {} GiB: give fewer \
                 trajectories per chunk (--zarr-chunk) or fewer records",
                events as f64 / (1u64 << 30) as f64,
                self.traj_chunk,
                self.event_records.unwrap_or(0),
                2 + self.dim,
                MAX_CHUNK_BYTES >> 30
            ));
        }
        if self.chunk_bytes() > MAX_CHUNK_BYTES {
            return Err(format!(
                "--zarr-chunk {}: a chunk of states would be {:.1} GiB ({} save times × {} \
                 trajectories × {} states), held in memory while it fills; at most {} GiB: \
                 give fewer trajectories per chunk",
                self.traj_chunk,
                self.chunk_bytes() as f64 / (1u64 << 30) as f64,
                self.time_chunk,
                self.traj_chunk,
                self.dim,
                MAX_CHUNK_BYTES >> 30
            ));
        }
        Ok(())
    }

    /// Blocks of `traj_chunk` trajectories.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(self.traj_chunk)
    }

    /// Time blocks of `states`.
    pub fn time_blocks(&self) -> usize {
        self.n_save.div_ceil(self.time_chunk)
    }

    /// How the layout is recorded in the root attributes (and checked by later shards).
    pub fn json(&self) -> Value {
        let mut v = json!({
            "chunk_trajectories": self.traj_chunk,
            "chunk_times": self.time_chunk,
            "compression": match self.zstd { Some(l) => format!("zstd:{l}"), None => "none".into() },
        });
        if let Some(k) = self.event_records {
            v["event_records"] = json!(k);
        }
        v
    }
}

/// The names of states or parameters, in their order.
pub fn names(vars: &[crate::model::Var]) -> Vec<String> {
    vars.iter().map(|v| v.name.clone()).collect()
}

/// The uncompressed bytes of one chunk of `states` at most: every shard holds the chunks it
/// is filling in host memory, and zarrs encodes a chunk whole.
const MAX_CHUNK_BYTES: u64 = 1 << 30;

/// The columns of `stats` (the first 3, or all 5 for the stiff family).
const STATS_COLUMNS: [&str; 5] = ["accepted", "rejected", "rhs_evals", "jacobians", "switches"];

/// One array of the store: its name, and its zarrs handle for chunk writes and reads.
pub struct StoreArray {
    pub name: &'static str,
    pub array: Array<FilesystemStore>,
}

impl StoreArray {
    /// Writes a chunk, even one of fill values only (which zarrs would otherwise leave
    /// out): a chunk's file then says it was written, and a continued shard can tell a
    /// chunk lost from one never filled.
    pub fn put<'a>(
        &self,
        chunk: &[u64],
        data: impl zarrs::array::IntoArrayBytes<'a>,
    ) -> Result<(), zarrs::array::ArrayError> {
        let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
        self.array.store_chunk_opt(chunk, data, &options)
    }

    /// Whether chunk `chunk` is in the store.
    pub fn has_chunk(&self, chunk: &[u64]) -> Result<bool, String> {
        has_chunk(&self.array, chunk).map_err(|e| format!("{}: {e}", self.name))
    }
}

/// Whether chunk `chunk` of `array` is in the store: a stat, no chunk read.
pub fn has_chunk(array: &Array<FilesystemStore>, chunk: &[u64]) -> Result<bool, String> {
    use zarrs::storage::ReadableStorageTraits;
    array
        .storage()
        .size_key(&array.chunk_key(chunk))
        .map(|size| size.is_some())
        .map_err(|e| e.to_string())
}

/// The arrays of a run, with the attributes xarray shows.
pub struct Arrays {
    /// `None` when the run keeps no states (`--outputs montecarlo` alone).
    pub states: Option<StoreArray>,
    /// The save times, named as their dimension so that xarray makes them its coordinate.
    pub time: StoreArray,
    /// The state names (coordinate of `state`).
    pub state: StoreArray,
    /// The parameter names (coordinate of `parameter`).
    pub parameter: Option<StoreArray>,
    pub status: StoreArray,
    pub stats: Option<StoreArray>,
    pub params: Option<StoreArray>,
    pub u0: StoreArray,
    /// Event records [trajectory, event, field] and how many fired per trajectory, for a
    /// system with events.
    pub events: Option<(StoreArray, StoreArray)>,
    /// The names of an event record's values: `t`, `event` and the states (coordinate of
    /// `field`), for a system with events.
    pub field: Option<StoreArray>,
}

impl Arrays {
    /// The handles of the arrays of `layout` in the store at `path` (nothing is written);
    /// `states`: whether the run keeps its states.
    pub fn new(
        path: &Path,
        layout: &Layout,
        problem: &Problem,
        states: bool,
    ) -> Result<Arrays, String> {
        let maker = Maker::new(path, layout.zstd)?;
        let make = |name, shape, chunks, dtype_fill, dims: &[&str], attrs| {
            maker.make(name, shape, chunks, dtype_fill, dims, attrs)
        };
        let system = problem.system();
        let (n, t) = (layout.n as u64, layout.traj_chunk as u64);
        let real = || match layout.precision {
            Precision::F32 => (data_type::float32(), ArrayBuilderFillValue::from(f32::NAN)),
            Precision::F64 => (data_type::float64(), ArrayBuilderFillValue::from(f64::NAN)),
        };
        let f64_nan = || (data_type::float64(), ArrayBuilderFillValue::from(f64::NAN));
        let states = match states {
            true => Some(make(
                "states",
                vec![layout.n_save as u64, n, layout.dim as u64],
                vec![layout.time_chunk as u64, t, layout.dim as u64],
                real(),
                &["time", "trajectory", "state"],
                json!({"long_name": "state at the save times", "state_names": names(&system.states)}),
            )?),
            false => None,
        };
        let time = make(
            "time",
            vec![layout.n_save as u64],
            vec![layout.n_save.max(1) as u64],
            f64_nan(),
            &["time"],
            json!({"long_name": "save times"}),
        )?;
        let label = || (data_type::string(), ArrayBuilderFillValue::from(""));
        let state = make(
            "state",
            vec![layout.dim as u64],
            vec![layout.dim.max(1) as u64],
            label(),
            &["state"],
            json!({"long_name": "state names"}),
        )?;
        let parameter = match layout.n_params {
            0 => None,
            p => Some(make(
                "parameter",
                vec![p as u64],
                vec![p as u64],
                label(),
                &["parameter"],
                json!({"long_name": "parameter names"}),
            )?),
        };
        let status = make(
            "status",
            vec![n],
            vec![t],
            (data_type::uint8(), 0u8.into()),
            &["trajectory"],
            status_attributes(),
        )?;
        let stats = match layout.stats_columns {
            Some(c) => Some(make(
                "stats",
                vec![n, c as u64],
                vec![t, c as u64],
                (data_type::uint32(), 0u32.into()),
                &["trajectory", "step_count"],
                json!({
                    "long_name": "steps per trajectory",
                    "columns": STATS_COLUMNS[..c],
                }),
            )?),
            None => None,
        };
        let params = match layout.n_params {
            0 => None,
            p => Some(make(
                "params",
                vec![n, p as u64],
                vec![t, p as u64],
                f64_nan(),
                &["trajectory", "parameter"],
                json!({"long_name": "parameters of each trajectory", "parameter_names": names(&system.params)}),
            )?),
        };
        let u0 = make(
            "u0",
            vec![n, layout.dim as u64],
            vec![t, layout.dim as u64],
            f64_nan(),
            &["trajectory", "state"],
            json!({"long_name": "initial state of each trajectory", "state_names": names(&system.states)}),
        )?;
        let events = match layout.event_records {
            Some(k) => {
                let event_names: Vec<&str> =
                    system.events.iter().map(|e| e.name.as_str()).collect();
                let width = 2 + layout.dim as u64;
                let records = make(
                    "events",
                    vec![n, k as u64, width],
                    // A chunk is never empty: with no records kept (`--events 0`, only
                    // the counts), the array has no chunks at all.
                    vec![t, k.max(1) as u64, width],
                    real(),
                    &["trajectory", "record", "field"],
                    json!({
                        "long_name": "event records of each trajectory (NaN past its count)",
                        "event_names": event_names,
                    }),
                )?;
                let counts = make(
                    "event_counts",
                    vec![n],
                    vec![t],
                    (data_type::uint32(), 0u32.into()),
                    &["trajectory"],
                    json!({"long_name": "events fired per trajectory (may exceed the records kept)"}),
                )?;
                Some((records, counts))
            }
            None => None,
        };
        let field = match layout.event_records {
            Some(_) => Some(make(
                "field",
                vec![2 + layout.dim as u64],
                vec![2 + layout.dim as u64],
                label(),
                &["field"],
                json!({"long_name": "values of an event record"}),
            )?),
            None => None,
        };
        Ok(Arrays {
            states,
            time,
            state,
            parameter,
            status,
            stats,
            params,
            u0,
            events,
            field,
        })
    }

    pub fn all(&self) -> Vec<&StoreArray> {
        let mut v: Vec<&StoreArray> = self.states.iter().collect();
        v.extend([&self.time, &self.state, &self.status]);
        v.extend(self.parameter.as_ref());
        v.extend(self.stats.as_ref());
        v.extend(self.params.as_ref());
        v.push(&self.u0);
        if let Some((records, counts)) = &self.events {
            v.extend([records, counts]);
        }
        v.extend(self.field.as_ref());
        v
    }
}

/// Makes the arrays of one store: the layout's compression, dimension names, attributes.
struct Maker {
    store: Arc<FilesystemStore>,
    zstd: Option<i32>,
}

impl Maker {
    fn new(path: &Path, zstd: Option<i32>) -> Result<Maker, String> {
        Ok(Maker {
            store: Arc::new(FilesystemStore::new(path).map_err(|e| e.to_string())?),
            zstd,
        })
    }

    fn make(
        &self,
        name: &'static str,
        shape: Vec<u64>,
        chunks: Vec<u64>,
        (dtype, fill): (DataType, ArrayBuilderFillValue),
        dims: &[&str],
        attrs: Value,
    ) -> Result<StoreArray, String> {
        let mut b = ArrayBuilder::new(shape, chunks, dtype, fill);
        if let Some(level) = self.zstd {
            b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(level, false))]);
        }
        b.dimension_names(Some(dims.to_vec()));
        if let Value::Object(map) = attrs {
            b.attributes(map);
        }
        Ok(StoreArray {
            name,
            array: b
                .build(self.store.clone(), &format!("/{name}"))
                .map_err(|e| e.to_string())?,
        })
    }
}

/// The Monte Carlo statistics across every trajectory of the run (`--outputs montecarlo`),
/// written once, whole, by `store finalize` from the shards' merged accumulators: per save
/// time and state `mc_mean`, `mc_var`, `mc_stderr`, `mc_min`, `mc_max` (float64) and
/// `mc_count` (int64), `mc_quantiles` [time, quantile, state], and the levels as the
/// `quantile` coordinate. Chunked along time as `states` is.
pub struct MonteCarloArrays {
    pub moments: Vec<StoreArray>,
    pub count: StoreArray,
    pub quantiles: StoreArray,
    pub quantile: StoreArray,
}

/// Every array any run may write into a store (its folder's name): what `--overwrite`
/// may remove.
pub const ARRAY_NAMES: [&str; 19] = [
    "states",
    "time",
    "state",
    "parameter",
    "status",
    "stats",
    "params",
    "u0",
    "events",
    "event_counts",
    "field",
    "mc_mean",
    "mc_var",
    "mc_stderr",
    "mc_min",
    "mc_max",
    "mc_count",
    "mc_quantiles",
    "quantile",
];

/// The names and descriptions of the `[time, state]` statistics, in `MonteCarloArrays`
/// order.
pub const MONTECARLO_MOMENTS: [(&str, &str); 5] = [
    ("mc_mean", "mean across trajectories"),
    ("mc_var", "variance across trajectories (unbiased)"),
    (
        "mc_stderr",
        "standard error of the mean across trajectories",
    ),
    ("mc_min", "minimum across trajectories"),
    ("mc_max", "maximum across trajectories"),
];

impl MonteCarloArrays {
    /// The arrays for `n_save` save times × `dim` states with `levels` quantile levels,
    /// chunked by `time_chunk` save times, compressed as the store's other arrays.
    pub fn new(
        path: &Path,
        (n_save, dim, levels): (usize, usize, usize),
        time_chunk: usize,
        zstd: Option<i32>,
    ) -> Result<Self, String> {
        let maker = Maker::new(path, zstd)?;
        let (n_save, dim, c) = (n_save as u64, dim as u64, time_chunk.max(1) as u64);
        let f64_nan = || (data_type::float64(), ArrayBuilderFillValue::from(f64::NAN));
        let dims = ["time", "state"];
        let moments = MONTECARLO_MOMENTS
            .iter()
            .map(|(name, what)| {
                maker.make(
                    name,
                    vec![n_save, dim],
                    vec![c, dim],
                    f64_nan(),
                    &dims,
                    json!({"long_name": what, "of": "states"}),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = maker.make(
            "mc_count",
            vec![n_save, dim],
            vec![c, dim],
            (data_type::int64(), 0i64.into()),
            &dims,
            json!({"long_name": "finite values counted across trajectories"}),
        )?;
        let nq = levels as u64;
        let quantiles = maker.make(
            "mc_quantiles",
            vec![n_save, nq, dim],
            vec![c, nq, dim],
            f64_nan(),
            &["time", "quantile", "state"],
            json!({"long_name": "quantiles across trajectories (histogram sketch)"}),
        )?;
        let quantile = maker.make(
            "quantile",
            vec![nq],
            vec![nq.max(1)],
            f64_nan(),
            &["quantile"],
            json!({"long_name": "quantile levels"}),
        )?;
        Ok(MonteCarloArrays {
            moments,
            count,
            quantiles,
            quantile,
        })
    }
}

/// CF-style flags: what each status code means.
fn status_attributes() -> Value {
    let codes: Vec<u8> = crate::ode::Status::ALL.iter().map(|s| *s as u8).collect();
    let names: Vec<String> = crate::ode::Status::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let mut m = Map::new();
    m.insert("long_name".into(), json!("how each trajectory ended"));
    m.insert("flag_values".into(), json!(codes));
    m.insert("flag_meanings".into(), json!(names.join(" ")));
    Value::Object(m)
}
