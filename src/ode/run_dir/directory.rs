//! The directory itself: preparing it (refusing one that holds something else), the
//! fingerprint of a run's settings, the spec stored for `--resume`, and reading it back.

use super::error::RunDirError;
use crate::io::OutputDir;
use crate::io::fnv::Fnv;
use crate::model::builtin;
use crate::ode::{Ensemble, InitialStates, Inputs, Parameters, Problem, Table};
use crate::spec::{Output, RunSpec, relative_to_config};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Names, inside the run directory, of the inputs a resumed run reads back.
pub const SYSTEM_FILE: &str = "system.toml";
const PARAMS_FILE: &str = "params.npy";
const U0_FILE: &str = "u0.npy";
const INPUTS_FILE: &str = "inputs.npy";

/// Files a fresh run writes before its first chunk (besides the staged streams).
const EARLY_FILES: [&str; 5] = ["run.json", SYSTEM_FILE, PARAMS_FILE, U0_FILE, INPUTS_FILE];

/// Hashes a table's data, not where it came from: a relocated run reads the same values
/// from its own copy.
fn hash_table(h: &mut Fnv, t: &Table) {
    let _ = write!(h, "table {}x{}:", t.rows, t.cols);
    for v in &t.data {
        h.bytes(&v.to_bits().to_le_bytes());
    }
}

/// A fingerprint of everything that decides a run's results: the system (names, defaults,
/// inputs, equations, events and the event log's size), the solver and its settings, the
/// time grid or save times, the precision, the ensemble (sizes, overrides, generators with
/// their seeds, tables' values) and the outputs. Two runs with the same fingerprint write
/// the same bytes.
pub fn fingerprint(problem: &Problem, outputs: &[Output]) -> String {
    let mut h = Fnv::new();
    let system = problem.system();
    let vars = |v: &[crate::model::Var]| {
        v.iter()
            .map(|v| format!("{}={:?}", v.name, v.default.to_bits()))
            .collect::<Vec<_>>()
    };
    let inputs: Vec<String> = system
        .inputs
        .iter()
        .map(|i| {
            format!(
                "{}:{}:{:?}:{:?}:{:?}",
                i.name, i.sensors, i.t0, i.t1, i.default
            )
        })
        .collect();
    let _ = write!(
        h,
        "system {} states {:?} params {:?} inputs {:?} equations {:?};",
        system.name(),
        vars(&system.states),
        vars(&system.params),
        inputs,
        system.equations
    );
    // Events decide what a run records (and, through their actions, its states); the
    // log's size and transient decide the shape of its event arrays.
    for e in &system.events {
        let _ = write!(
            h,
            "event {} {:?} {:?} {:?} {:?} {:?};",
            e.name, e.kind, e.direction, e.action, e.condition_text, e.assign_text
        );
    }
    let _ = write!(
        h,
        "event log {} {:?};",
        system.event_log.k,
        system.event_log.transient.to_bits()
    );
    let _ = write!(
        h,
        "solver {:?} precision {:?} outputs {:?};",
        problem.solver(),
        problem.precision(),
        outputs
    );
    match problem {
        Problem::Fixed(f) => {
            let _ = write!(h, "fixed {:?} {:?};", f.grid, f.save);
        }
        Problem::Adaptive(a) => {
            let _ = write!(
                h,
                "adaptive {:?} {:?} {:?} {:?};",
                a.t0, a.t1, a.saveat, a.control
            );
        }
        Problem::Stiff(p) => {
            let _ = write!(
                h,
                "stiff {:?} {:?} {:?} {:?} {:?};",
                p.method, p.t0, p.t1, p.saveat, p.control
            );
        }
        Problem::Sde(p) => {
            let _ = write!(
                h,
                "sde {:?} {:?} noise {:?} {:?};",
                p.method,
                p.steps,
                p.noise,
                p.system.noise.as_ref().map(|n| &n.text)
            );
        }
    }
    ensemble_fingerprint(&mut h, problem.ensemble());
    format!("{:016x}", h.value())
}

fn ensemble_fingerprint(h: &mut Fnv, e: &Ensemble) {
    let _ = write!(
        h,
        "n {} base {:?} {:?} {:?};",
        e.n, e.base_state, e.base_params, e.base_inputs
    );
    match &e.initial {
        InitialStates::Table(t) => hash_table(h, t),
        other => {
            let _ = write!(h, "initial {other:?};");
        }
    }
    match &e.params {
        Parameters::Table(t) => hash_table(h, t),
        other => {
            let _ = write!(h, "params {other:?};");
        }
    }
    match &e.inputs {
        Inputs::Table(t) => hash_table(h, t),
        Inputs::Default => {
            let _ = write!(h, "inputs default;");
        }
    }
}

/// The spec as run.json stores it: no output path (the run is wherever run.json is) and
/// every input by its name inside the run directory.
pub fn stored_spec(spec: &RunSpec) -> RunSpec {
    let mut s = spec.clone();
    s.out = None;
    if let Some(sys) = s.system.as_mut()
        && builtin(sys).is_none()
    {
        *sys = SYSTEM_FILE.into();
    }
    if s.params_file.is_some() {
        s.params_file = Some(PARAMS_FILE.into());
    }
    if let Some(file) = s.u0.as_mut().and_then(|u| u.file.as_mut()) {
        *file = U0_FILE.into();
    }
    if s.inputs_file.is_some() {
        s.inputs_file = Some(INPUTS_FILE.into());
    }
    s
}

/// The text of the system file a spec names, to copy into the run directory (`None` for a
/// built-in).
pub fn system_text(spec: &RunSpec) -> Result<Option<String>, RunDirError> {
    match spec.system.as_deref() {
        Some(name) if builtin(name).is_none() => std::fs::read_to_string(name)
            .map(Some)
            .map_err(|e| RunDirError::Input(format!("cannot read system file '{name}': {e}"))),
        _ => Ok(None),
    }
}

/// run.json while the run goes: enough to resume it if the process dies.
pub fn running_json(spec: &RunSpec, fingerprint: &str, n: usize, done: usize) -> Value {
    json!({
        "phaseflow": env!("CARGO_PKG_VERSION"),
        "state": "running",
        "complete": false,
        "n": n,
        "trajectories_done": done,
        "fingerprint": fingerprint,
        "spec": stored_spec(spec),
    })
}

/// An unfinished run found in a directory, for `--resume`.
pub struct ResumePoint {
    /// The run's spec, its paths resolved inside the directory, its output the directory.
    pub spec: RunSpec,
    /// Trajectories `0..done` are finished.
    pub done: usize,
    fingerprint: String,
    path: PathBuf,
}

impl ResumePoint {
    pub fn read(dir: &Path) -> Result<ResumePoint, RunDirError> {
        let path = dir.join("run.json");
        let bad = |why: String| RunDirError::Input(format!("--resume: '{}' {why}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            RunDirError::Input(format!(
                "--resume: cannot read '{}': {e}; give the output directory of an interrupted run",
                path.display()
            ))
        })?;
        let run: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
        if run["complete"] == json!(true) || run["state"] == json!("complete") {
            return Err(RunDirError::Input(format!(
                "--resume: the run in '{}' is already complete",
                dir.display()
            )));
        }
        let mut spec: RunSpec = serde_json::from_value(run["spec"].clone())
            .map_err(|e| bad(format!("does not describe a resumable run ({e})")))?;
        let done = run["trajectories_done"]
            .as_u64()
            .ok_or_else(|| bad("does not say how many trajectories are done".into()))?;
        let fingerprint = run["fingerprint"]
            .as_str()
            .ok_or_else(|| {
                bad(
                    "has no fingerprint of its settings (written by an older phaseflow?); \
                     start the run again"
                        .into(),
                )
            })?
            .to_string();
        let u0_file = spec.u0.as_mut().and_then(|u| u.file.as_mut());
        relative_to_config(
            &path,
            [
                spec.params_file.as_mut(),
                spec.inputs_file.as_mut(),
                u0_file,
            ]
            .into_iter()
            .flatten(),
            spec.system.as_mut(),
        );
        spec.out = Some(dir.to_path_buf());
        Ok(ResumePoint {
            spec,
            done: done as usize,
            fingerprint,
            path,
        })
    }

    /// Refuses a run whose settings are not those that wrote its files (an edited
    /// run.json, an edited system file or input table).
    pub fn check(&self, fingerprint: &str, n: usize) -> Result<(), RunDirError> {
        if fingerprint != self.fingerprint || self.done > n {
            return Err(RunDirError::Input(format!(
                "--resume: the settings in '{}' are not those that wrote the run's files \
                 (fingerprint {} expected, {fingerprint} found): run.json or an input in the \
                 directory was edited; start a new run with -o instead",
                self.path.display(),
                self.fingerprint
            )));
        }
        Ok(())
    }
}

/// Every file `simulate -o` writes into a run directory; with their temporary forms
/// (`.NAME.writing`, `.NAME.partial`) these are all that `--overwrite` may remove.
const RUN_FILES: [&str; 24] = [
    "run.json",
    SYSTEM_FILE,
    PARAMS_FILE,
    U0_FILE,
    INPUTS_FILE,
    "times.npy",
    "states.npy",
    "status.npy",
    "stats.npy",
    "trajectory_min.npy",
    "trajectory_max.npy",
    "trajectory_mean.npy",
    "ensemble_mean.npy",
    "ensemble_var.npy",
    "ensemble_count.npy",
    "mc_mean.npy",
    "mc_var.npy",
    "mc_stderr.npy",
    "mc_min.npy",
    "mc_max.npy",
    "mc_quantiles.npy",
    "mc_count.npy",
    "events.npy",
    "event_counts.npy",
];

/// Whether `name` is a file a run writes, finished or under its temporary name.
fn is_run_file(name: &str) -> bool {
    let base = name
        .strip_prefix('.')
        .and_then(|n| {
            n.strip_suffix(".writing")
                .or_else(|| n.strip_suffix(".partial"))
        })
        .unwrap_or(name);
    RUN_FILES.contains(&base)
}

/// The output directory of a new run. A directory that holds a run (a run.json) is refused
/// unless `overwrite`, which removes the old run's files first, so that none of them stays
/// beside the new run. `--overwrite` removes only files a run writes: a directory holding
/// anything else (the user's own files, a folder) is refused whole, and nothing is removed.
/// Returns the directory and whether it was created here.
pub fn prepare(dir: &Path, overwrite: bool) -> Result<(OutputDir, bool), RunDirError> {
    if dir.join("run.json").exists() {
        if !overwrite {
            return Err(RunDirError::Input(format!(
                "'{}' holds a run already (it has a run.json); continue it with \
                 `phaseflow simulate --resume {}`, replace it with --overwrite, or give \
                 another -o",
                dir.display(),
                dir.display()
            )));
        }
        remove_old_run(dir)?;
    }
    let created = !dir.exists();
    let out = OutputDir::create(dir).map_err(|e| RunDirError::Input(e.to_string()))?;
    Ok((out, created))
}

/// Removes the run files of `dir` after checking that it holds nothing else.
fn remove_old_run(dir: &Path) -> Result<(), RunDirError> {
    let failed = |e: std::io::Error| {
        RunDirError::Input(format!(
            "--overwrite: cannot remove the old run in '{}': {e}",
            dir.display()
        ))
    };
    let mut run_files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map_err(failed)?.is_file();
        if !is_file || !is_run_file(&name) {
            return Err(RunDirError::Input(format!(
                "--overwrite: '{}' holds '{name}', which is not a file of a phaseflow run, so \
                 nothing was removed; move your own files out or give another -o",
                dir.display()
            )));
        }
        run_files.push(entry.path());
    }
    for path in run_files {
        std::fs::remove_file(path).map_err(failed)?;
    }
    Ok(())
}

/// Removes what a new run wrote before its first chunk (run.json, the copied inputs, the
/// directory if it made it) unless disarmed: a run that fails leaves nothing behind. Its
/// staged result files are the `OutputDir`'s to remove.
pub struct FreshRunGuard {
    dir: PathBuf,
    created: bool,
    armed: bool,
}

impl FreshRunGuard {
    pub fn new(dir: &Path, created: bool) -> FreshRunGuard {
        FreshRunGuard {
            dir: dir.to_path_buf(),
            created,
            armed: true,
        }
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for FreshRunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for name in EARLY_FILES {
            let _ = std::fs::remove_file(self.dir.join(name));
            let _ = std::fs::remove_file(self.dir.join(format!(".{name}.writing")));
        }
        if self.created {
            // Only if empty: the staged files are removed by their own owner first.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}
