"""phaseflow: GPU ensembles of differential equations, with NumPy arrays in and out.

The native module (``phaseflow._phaseflow``, Rust through PyO3) does the work: systems,
engines and jobs. This file adds what is easier in Python: ``simulate`` with a progress
bar, the ``Result`` wrapper and its ``to_xarray``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from typing import Any, Iterator

import numpy as np


def _quiet_wsi_warning() -> None:
    """Mesa's Vulkan window-system code prints "XDG_RUNTIME_DIR is invalid" on headless
    machines where the variable is unset; phaseflow never opens a window, so give it a
    private directory (as the CLI does)."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = os.path.join(tempfile.gettempdir(), f"phaseflow-runtime-{os.environ.get('USER', '')}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return
    os.environ["XDG_RUNTIME_DIR"] = path


_quiet_wsi_warning()

from ._phaseflow import (  # noqa: E402  (after the environment is set)
    CancelledError,
    DeepONet,
    MLP,
    Engine,
    Job,
    NoAdapterError,
    PhaseflowError,
    RunError,
    SpecError,
    System,
    SystemError,
    __version__,
    info,
    systems,
)
from ._phaseflow import estimate_fits as _estimate_fits
from ._phaseflow import fit_mlp as _fit_mlp
from ._phaseflow import resume_dir as _resume_dir
from ._phaseflow import simulate_to_dir as _simulate_to_dir
from ._phaseflow import simulate_to_store as _simulate_to_store
from ._phaseflow import finalize_store as _finalize_store
from ._phaseflow import store_status as _store_status
from ._phaseflow import generate_deeponet_data as _generate_deeponet_data
from ._phaseflow import train_deeponet as _train_deeponet

# SystemError is left out of __all__: `from phaseflow import *` would hide Python's own
# SystemError; use it as pf.SystemError.
__all__ = [
    "CancelledError",
    "DeepONet",
    "Engine",
    "Job",
    "NoAdapterError",
    "PhaseflowError",
    "Basins",
    "Lyapunov",
    "OrbitDiagram",
    "Result",
    "resume",
    "RunDir",
    "Store",
    "STATUS",
    "RunError",
    "SpecError",
    "System",
    "__version__",
    "default_engine",
    "estimate",
    "Estimates",
    "FIT_STATUS",
    "generate_deeponet_data",
    "basins",
    "info",
    "fit",
    "Fit",
    "MLP",
    "lyapunov",
    "monte_carlo",
    "MonteCarlo",
    "orbit_diagram",
    "simulate",
    "systems",
    "train_deeponet",
    "Training",
]

#: What each value of ``Result.status`` means (the CLI's ``status.npy`` codes).
STATUS = {
    0: "not_run",
    1: "success",
    2: "max_steps",
    3: "step_underflow",
    4: "non_finite",
    5: "singular",
    6: "terminated",
}

#: What each value of ``Estimates.status`` means (the CLI's ``fit_status.npy`` codes).
FIT_STATUS = {
    0: "not_finished",
    1: "converged",
    2: "max_iterations",
    3: "integration_failed",
    4: "stalled",
    5: "underdetermined",
}

_default_engine: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The engine ``simulate`` uses when given none: the best adapter, made on first use."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = Engine()
        return _default_engine


def _table(value: Any, key: str) -> np.ndarray | dict | None:
    """An array of initial states or parameters as the native side takes it: 2-D f64, C order."""
    if value is None or isinstance(value, dict):
        return value  # a dict is the run config's table (u0 = {uniform = ...}): the spec's
    try:
        array = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        err = SpecError(f"{key}: not an array of numbers ({e})")
        err.key = key
        raise err from None
    if array.ndim == 1:
        # One row: the same initial state (or parameters) for a single trajectory.
        array = array.reshape(1, -1)
    if array.ndim != 2:
        err = SpecError(f"{key}: expected a 2-D array [trajectories, values], got shape {array.shape}")
        err.key = key
        raise err
    return array


def simulate(
    system: System | str,
    *,
    engine: Engine | None = None,
    progress: bool | str = "auto",
    u0: Any = None,
    params: Any = None,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    zarr_chunk: int | None = None,
    compression: str | None = None,
    **options: Any,
) -> Result | RunDir | Store:
    """Integrates an ensemble and returns its ``Result``.

    ``system`` is a ``System``, a built-in's name or a system file's path. The keywords are
    the run config file's keys (``n``, ``solver``, ``tspan``, ``dt``, ``saveat``, ``rtol``,
    ``atol``, ``sweep``, ``precision``, ``seed``, ...); ``u0`` and ``params`` may be arrays
    [N, dim] and [N, n_params]. ``sensitivities=["rho", "x0"]`` integrates the forward
    sensitivities beside the states (``Result.sensitivities``); a system with events, or
    ``section="z = 27"``, gives ``Result.events``. ``progress``: a tqdm bar ("auto": when tqdm is installed and
    stderr is a terminal). Ctrl-C cancels the run and raises ``KeyboardInterrupt``.

    With ``out=DIR`` the run streams into a run directory as ``phaseflow simulate -o DIR``
    writes it (the same files and run.json, bounded memory, ``outputs=[...]`` and
    ``quantiles`` as there) and returns a ``RunDir``; ``overwrite=True`` replaces an earlier
    run there. Ctrl-C then stops between chunks and leaves a directory that ``phaseflow
    simulate --resume DIR`` continues. The system is a ``System``, a built-in's name or a
    file's path (the directory keeps its text); ``u0`` and ``params`` may be arrays (the directory keeps a
    copy, as of the spec's files) or the spec's keys (``u0={"uniform": ...}``,
    ``params_file``, ``sweep``).

    With ``out="run.zarr"`` (a path ending in .zarr) the run goes into a Zarr v3 store as
    ``phaseflow simulate -o run.zarr`` writes it and returns a ``Store``; ``shard="I/M"``,
    ``"auto/M"`` or ``(I, M)`` computes only that shard (a store is filled by M processes at
    once, each continuing where it stopped when run again), ``zarr_chunk`` (trajectories per
    chunk) and ``compression`` (``"zstd"``, ``"zstd:LEVEL"``, ``"none"``) as the CLI's flags.
    """
    engine = engine or default_engine()
    out = options.get("out")
    zarr = out is not None and os.fspath(out).lower().endswith(".zarr")
    for key, given in (("shard", shard), ("zarr_chunk", zarr_chunk), ("compression", compression)):
        if given is not None and not zarr:
            err = SpecError(f"{key}: for Zarr stores; give out with a path ending in .zarr")
            err.key = key
            raise err
    if options.get("out") is not None:
        options["out"] = os.fspath(options["out"])
        if not options["out"].strip():
            err = SpecError("out is empty; give a directory (or a path ending in .zarr)")
            err.key = "out"
            raise err
        with _handed_over(system, u0, params, options) as (system, options):
            if zarr:
                return Store(
                    _simulate_to_store(
                        system,
                        engine=engine,
                        shard=shard,
                        zarr_chunk=zarr_chunk,
                        compression=compression,
                        overwrite=overwrite,
                        **options,
                    )
                )
            return RunDir(_simulate_to_dir(system, engine=engine, overwrite=overwrite, **options))
    if overwrite:
        err = SpecError("overwrite replaces the run in out=DIR; give out too")
        err.key = "overwrite"
        raise err
    job = engine.submit(system, u0=_table(u0, "u0"), params=_table(params, "params"), **options)
    try:
        _wait(job, progress)
    except BaseException:
        job.cancel()
        raise
    return Result(job)


@contextlib.contextmanager
def _handed_over(system: Any, u0: Any, params: Any,
                 options: dict[str, Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The system and options of a run into ``out``, with what has no file of its own
    handed over as the spec's files, in a private temporary directory removed afterwards:
    a ``System`` built from equations as its text, array ``u0``/``params`` as ``.npy``
    (``u0={"file": ...}``, ``params_file``). The run directory or store copies them, so
    ``resume`` needs nothing else. A mistake those files show is reported at ``u0`` /
    ``params``, naming the array, not the temporary file."""
    arrays = {"u0": _table(u0, "u0"), "params": _table(params, "params")}
    if arrays["params"] is not None and options.get("params_file") is not None:
        err = SpecError("params: give params (an array) or params_file, not both")
        err.key = "params"
        raise err
    if isinstance(arrays["u0"], dict):
        options["u0"] = arrays.pop("u0")
    arrays = {k: v for k, v in arrays.items() if v is not None}
    text = system.assembled_text if isinstance(system, System) else None
    if not arrays and text is None:
        yield system, options
        return
    with tempfile.TemporaryDirectory(prefix="phaseflow-inputs-") as tmp:
        if text is not None:
            system = os.path.join(tmp, "system.toml")
            with open(system, "w", encoding="utf-8") as f:
                f.write(text)
        spelled = {}
        for key, array in arrays.items():
            path = os.path.join(tmp, f"{key}.npy")
            np.save(path, array)
            spelled[path] = f"the {key} array"
            if key == "u0":
                options["u0"] = {"file": path}
            else:
                options["params_file"] = path
        try:
            yield system, options
        except SpecError as e:
            message = str(e)
            if not any(path in message for path in spelled):
                raise
            for path, name in spelled.items():
                message = message.replace(f"'{path}'", name).replace(path, name)
            # The message names a file made here: say it at the keyword that gave it.
            key = {"u0.file": "u0", "params_file": "params"}.get(e.key, e.key)
            if key is None:
                key = next((k for k in arrays if f"the {k} array" in message), None)
            err = SpecError(message)
            err.key = key
            raise err from None


def resume(path: str | os.PathLike[str], *, engine: Engine | None = None) -> RunDir:
    """Continues an interrupted run directory, as ``phaseflow simulate --resume DIR`` does:
    the run from the directory alone (its run.json and copied inputs, their fingerprint
    checked), from the first trajectory not done. Returns its ``RunDir``."""
    engine = engine or default_engine()
    return RunDir(_resume_dir(os.fspath(path), engine=engine))


class RunDir:
    """A run directory written by ``simulate(..., out=DIR)`` (or ``phaseflow simulate -o``):
    ``path``, ``summary`` (run.json), ``complete``, ``files`` (the ``.npy`` names), and each
    array by name, memory-mapped: ``run["states"]``, ``run.states``, ``run["mc_mean"]``."""

    def __init__(self, raw: dict[str, Any] | str | os.PathLike[str]) -> None:
        import pathlib

        if not isinstance(raw, dict):
            path = pathlib.Path(raw)
            try:
                summary = json.loads((path / "run.json").read_text())
            except (OSError, ValueError) as e:
                err = SpecError(f"path: '{path}' is not a run directory (no readable run.json: {e})")
                err.key = "path"
                raise err from None
            raw = {"path": path, "summary": summary}
            raw["complete"] = bool(raw["summary"].get("complete"))
        self.path = pathlib.Path(raw["path"])
        self.summary: dict[str, Any] = raw["summary"]
        self.complete: bool = raw["complete"]

    @property
    def files(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.npy"))

    def __getitem__(self, name: str) -> np.ndarray:
        file = self.path / f"{name}.npy"
        if not file.is_file():
            raise KeyError(f"{name}: the run directory holds {', '.join(self.files)}")
        return np.load(file, mmap_mode="r")

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name in ("path", "summary", "complete"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __repr__(self) -> str:
        return f"RunDir('{self.path}', complete={self.complete}, files={self.files})"


class Store:
    """A Zarr store written by ``simulate(..., out="run.zarr")`` (or ``phaseflow simulate -o
    run.zarr``), whole or by shards: ``path``; ``summary`` (this call's shard); ``shard``
    (its progress: range, ``done``, ``state``); ``complete`` (the shard); ``finalized``
    (every shard is complete and the root holds the run's summary); ``status()`` (every
    shard's, as ``phaseflow store status --json``); ``to_xarray()`` (``xarray.open_zarr``)."""

    def __init__(self, raw: dict[str, Any] | str | os.PathLike[str]) -> None:
        import pathlib

        if not isinstance(raw, dict):
            raw = {"path": raw, "summary": None, "shard": None, "complete": None, "finalized": None}
        self.path = pathlib.Path(raw["path"])
        self.summary: dict[str, Any] | None = raw["summary"]
        self.shard: dict[str, Any] | None = raw["shard"]
        self.complete: bool | None = raw["complete"]
        self.already_complete: bool = bool(raw.get("already_complete"))

    @property
    def finalized(self) -> bool:
        """Whether every shard is complete and the store's root says so."""
        return bool(self.status()["finalized"])

    def status(self) -> dict[str, Any]:
        """Every shard's progress (``phaseflow store status --json``)."""
        return _store_status(os.fspath(self.path))

    def finalize(self) -> dict[str, Any]:
        """Writes the run's summary once every shard is complete (``phaseflow store
        finalize``); raises ``SpecError`` naming the shards missing otherwise."""
        return _finalize_store(os.fspath(self.path))

    def to_xarray(self, **kwargs: Any) -> Any:
        """The store as an ``xarray.Dataset`` backed by Dask arrays (``xarray.open_zarr``;
        needs xarray, zarr and dask)."""
        import xarray as xr

        return xr.open_zarr(self.path, **kwargs)

    def __repr__(self) -> str:
        return f"Store('{self.path}', shard={self.shard and self.shard.get('state')})"


def _progress_bar(progress: bool | str, **kwargs: Any) -> Any:
    """A tqdm bar when asked for (True) or when "auto" and stderr is a terminal, and tqdm is
    installed; else None."""
    wanted = progress is True or (progress == "auto" and sys.stderr is not None and sys.stderr.isatty())
    if not wanted:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(leave=False, **kwargs)


def _wait(job: Job, progress: bool | str) -> None:
    bar = _progress_bar(progress, total=job.progress()["total"], unit="traj")
    try:
        while not job.wait(0.2 if bar is not None else None):
            if bar is not None:
                bar.n = job.progress()["done"]
                bar.refresh()
        if bar is not None:
            bar.n = job.progress()["done"]
            bar.refresh()
    finally:
        if bar is not None:
            bar.close()


class Result:
    """A finished simulation: NumPy arrays that own the engine's buffers (moved, not copied).

    ``states`` [n_save, N, dim] in the run's precision, ``times`` [n_save], ``status`` [N]
    (``STATUS`` names the codes: 1 = success, 6 = ended by a terminating event), ``steps`` [N, 5] (accepted, rejected, rhs_evals, jacobians, switches;
    None for fixed-step runs), ``stats`` (timings, throughput), ``settings`` (the run's
    keys, as given and as resolved).

    With ``sensitivities=[...]``: ``sensitivities`` [n_save, N, dim, n_sens], the
    derivatives of each saved state with respect to each target, named by
    ``sensitivity_names``. For a system with events (or a ``section``): ``events``
    [N, k, 2 + dim] float64, each record (t, event id, state) with NaN rows past the
    trajectory's count, and ``event_counts`` [N] (events that fired after the transient; it
    may exceed k, the records kept). ``settings["event_names"]`` names the ids.
    """

    def __init__(self, job: Job) -> None:
        raw = job.result()
        self._job = job
        self.states: np.ndarray = raw["states"]
        self.times: np.ndarray = raw["times"]
        self.status: np.ndarray = raw["status"]
        self.steps: np.ndarray | None = raw.get("steps")
        self.state_names: list[str] = raw["state_names"]
        self.sensitivities: np.ndarray | None = raw.get("sensitivities")
        self.sensitivity_names: list[str] = raw.get("sensitivity_names", [])
        self.events: np.ndarray | None = raw.get("events")
        self.event_counts: np.ndarray | None = raw.get("event_counts")
        self.stats: dict[str, Any] = raw["stats"]
        self.settings: dict[str, Any] = raw["settings"]
        self._tables: tuple[np.ndarray, np.ndarray] | None = None
        _warn_f32_stiff(self)

    def _load_tables(self) -> tuple[np.ndarray, np.ndarray]:
        if self._tables is None:
            self._tables = self._job.tables()
        return self._tables

    @property
    def u0(self) -> np.ndarray:
        """Every trajectory's initial state, [N, dim]."""
        return self._load_tables()[0]

    @property
    def params(self) -> np.ndarray:
        """Every trajectory's parameters, [N, n_params], in the system's parameter order."""
        return self._load_tables()[1]

    @property
    def ok(self) -> np.ndarray:
        """Per trajectory: whether it reached the end (success, or a terminating event)."""
        return (self.status == 1) | (self.status == 6)

    @property
    def n(self) -> int:
        """Trajectories in the ensemble."""
        return int(self.states.shape[1])

    def __repr__(self) -> str:
        s = self.settings
        failed = int(np.count_nonzero((self.status != 1) & (self.status != 6)))
        return (
            f"Result(system={s.get('system')!r}, solver={s.get('solver')!r}, n={self.n}, "
            f"n_save={self.times.size}, precision={s.get('precision')!r}, failed={failed})"
        )

    def to_xarray(self):
        """An ``xarray.Dataset``: ``states`` with dims (time, trajectory, state), ``status``
        and ``steps`` per trajectory, the swept parameters as coordinates along
        ``trajectory``, and the run's settings as attributes (netCDF-safe: nested values as
        JSON text)."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install xarray") from None
        coords: dict[str, Any] = {
            "time": ("time", self.times),
            "trajectory": ("trajectory", np.arange(self.n)),
            "state": ("state", np.asarray(self.state_names, dtype=str)),
        }
        sweep = self.settings.get("sweep") or {}
        if sweep:
            names = _parameter_names(self.settings)
            params = self.params
            for name in sweep:
                if name in names:
                    coords[name] = ("trajectory", params[:, names.index(name)])
        data_vars: dict[str, Any] = {
            "states": (("time", "trajectory", "state"), self.states),
            "status": (
                "trajectory",
                self.status,
                {
                    # CF conventions: what each code means, readable by netCDF tools.
                    "flag_values": np.asarray(list(STATUS), dtype=np.uint8),
                    "flag_meanings": " ".join(STATUS.values()),
                },
            ),
        }
        if self.steps is not None:
            coords["step_kind"] = (
                "step_kind",
                np.asarray(["accepted", "rejected", "rhs_evals", "jacobians", "switches"], dtype=str),
            )
            data_vars["steps"] = (("trajectory", "step_kind"), self.steps)
        if self.sensitivities is not None:
            coords["target"] = ("target", np.asarray(self.sensitivity_names, dtype=str))
            data_vars["sensitivities"] = (("time", "trajectory", "state", "target"), self.sensitivities)
        if self.events is not None:
            width = self.events.shape[2]
            coords["field"] = ("field", np.asarray(["t", "event", *self.state_names][:width], dtype=str))
            data_vars["events"] = (("trajectory", "record", "field"), self.events)
            data_vars["event_counts"] = ("trajectory", self.event_counts)
        attrs = {k: _attr(v) for k, v in self.settings.items()}
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


_STIFF_SOLVERS = {"rosenbrock23", "rodas4", "rodas5p", "auto"}


def _warn_f32_stiff(r: Result) -> None:
    """The CLI's note on a failed stiff f32 run: f32 resolves about 6e-8, so a Rosenbrock
    step at rtol <= 1e-6 asks for a few units in the last place and shrinks until it
    underflows."""
    s = r.settings
    if s.get("solver") not in _STIFF_SOLVERS or s.get("precision") != "f32" or r.ok.all():
        return
    rtol = np.min(np.atleast_1d(s.get("rtol", 1.0)))
    if rtol <= 1e-6:
        import warnings

        warnings.warn(
            f"{np.count_nonzero(~r.ok)} of {r.n} trajectories failed; rtol {rtol:g} is within a "
            "few f32 roundings (f32 resolves about 6e-8) and stiff steps at such tolerances can "
            "shrink until they underflow: try precision='f64', or rtol 1e-5 or looser in f32",
            RuntimeWarning,
            stacklevel=3,
        )


def _parameter_names(settings: dict[str, Any]) -> list[str]:
    names = settings.get("parameter_names")
    if names:
        return list(names)
    return []


def _attr(value: Any) -> Any:
    """A setting as a netCDF attribute: numbers and strings as they are, lists of numbers as
    arrays, anything else as JSON text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, list) and value and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        return np.asarray(value, dtype=np.float64)
    return json.dumps(value)


class Training:
    """A finished DeepONet training run: ``model`` (the best network, a ``DeepONet`` on the
    engine's device), ``history`` (one array per column of history.csv: ``step``,
    ``batch_mse``, the selection set's ``*_mse`` and ``*_mean_rel_l2``, and ``test_*`` with a
    test set; with several outputs also ``*_mean_rel_l2_per_output`` [evaluations, outputs],
    each output's error on its own), ``summary`` (summary.json's fields) and ``written``
    (the files, with ``out``).
    """

    def __init__(self, raw: dict[str, Any]) -> None:
        self.model: DeepONet = raw["model"]
        self.history: dict[str, np.ndarray] = raw["history"]
        self.summary: dict[str, Any] = raw["summary"]
        self.written: list[str] = raw["written"]

    def __repr__(self) -> str:
        s = self.summary
        sel = s.get("selected_on")
        return (
            f"Training(iterations={s.get('iterations')}, best_step={s.get('best_step')}, "
            f"{sel}_mean_relative_l2={s.get(f'{sel}_mean_relative_l2'):.4g})"
        )


def train_deeponet(
    config: dict[str, Any] | str | os.PathLike[str],
    *,
    engine: Engine | None = None,
    train: tuple[Any, Any, Any] | dict[str, Any] | None = None,
    test: tuple[Any, Any, Any] | dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    iterations: int | None = None,
    callback: Any = None,
    progress: bool | str = "auto",
    resume: str | os.PathLike[str] | None = None,
) -> Training:
    """Trains a DeepONet as ``phaseflow train deeponet`` does and returns a ``Training``.

    ``config``: a dict with the training config file's keys (``data``, ``model``, ``train``,
    ``out``) or the file's path. ``train``/``test``: aligned data as arrays ``(functions [F,
    sensors], points [P, dims], values [F, P] or [F, P, outputs])``, or unaligned samples as
    a dict ``{"u": [S, sensors], "y": [S, dims], "g": [S] or [S, outputs]}`` (DeepXDE's
    ``Triple``), instead of the config's files (``data.validation`` still holds a share
    out). ``out``: write model.safetensors,
    state.safetensors, history.csv and summary.json there (the CLI's files; a checkpoint
    ``DeepONet.load`` and ``phaseflow predict`` read). ``callback(record)`` is called after
    every evaluation with a dict of that row. Ctrl-C stops at the next evaluation, writes
    the best network so far to ``out`` and raises ``KeyboardInterrupt``. ``iterations``:
    steps in all, instead of the config's ``train.iterations``.

    ``resume``: the directory of an earlier run (its state.safetensors and
    model.safetensors), to go on with it up to ``iterations`` steps in all, taking exactly
    the steps the uninterrupted run would have taken, and writing back there (as ``phaseflow
    train deeponet --resume``). Give the same config and data; ``out`` may only name the
    same directory. The history then holds the earlier evaluations too.
    """
    engine = engine or default_engine()
    bar = _progress_bar(progress, unit="step")

    def on_evaluation(record: dict[str, Any]) -> None:
        if bar is not None:
            bar.n = record["step"]
            bar.set_postfix(batch_mse=f"{record['batch_mse']:.3e}")
            bar.refresh()
        if callback is not None:
            callback(record)

    try:
        raw = _train_deeponet(config, engine=engine, train=train, test=test, out=out,
                              overwrite=overwrite, iterations=iterations,
                              callback=on_evaluation if (bar is not None or callback is not None) else None,
                              resume=resume)
    finally:
        if bar is not None:
            bar.close()
    return Training(raw)


def generate_deeponet_data(
    config: dict[str, Any] | str | os.PathLike[str], *, engine: Engine | None = None
) -> dict[str, Any]:
    """Operator-learning data as ``phaseflow generate`` makes it: input functions (Gaussian
    random fields or tables) drive a system with inputs, all integrated together on the
    device, and the chosen states at ``points`` times are the labels.

    ``config``: a dict with the generation config's keys (``system`` may be a ``System``)
    or the file's path. Returns ``{"train": (functions [F, sensors], points [P, 1], values
    [F, P, outputs]), "test": the same or None, "layout": "aligned", "summary": {...}}``;
    with ``points_per_function`` the training set is unaligned ``(sample_functions,
    sample_points, sample_values)`` and ``layout`` says so. The aligned tuples go straight
    into ``train_deeponet(train=..., test=...)``.
    """
    return _generate_deeponet_data(config, engine=engine or default_engine())


def estimate(
    system: System | str,
    observations: Any,
    times: Any,
    fit: dict[str, Any],
    *,
    engine: Engine | None = None,
    mask: Any = None,
    start: Any = None,
    weights: dict[str, float] | None = None,
    shared: bool = False,
    segments: int = 1,
    max_iterations: int | None = None,
    sensitivity_error: str | None = None,
    u0: Any = None,
    params: Any = None,
    **options: Any,
) -> Estimates:
    """Fits parameters and initial values to observed trajectories, as ``phaseflow
    estimate`` does: Levenberg-Marquardt on the weighted least-squares cost, with residuals
    and Jacobians from the engine's forward-sensitivity kernels.

    ``observations`` [N, n_obs, dim] (NaN: not observed) at ``times`` [n_obs]; ``fit`` maps
    each quantity to fit (a parameter's name, or a state's initial value as ``"x0"``) to
    ``(low, high)`` or ``(low, high, start)``; ``mask`` (the observations' shape, 0: not
    observed); ``start`` [N, n_fit] per-trajectory starts; ``weights`` a state's weight in
    the cost (default 1); ``shared=True`` fits one set of values to all trajectories;
    ``segments=K`` fits each by multiple shooting over K segments (chaotic systems, long
    windows: ``phaseflow estimate --segments``). The
    other keywords are ``simulate``'s (``solver`` (tsit5), ``rtol``/``atol`` (1e-8),
    ``dt``, ``tspan`` (0 to the last time), ``precision`` (f64), ``u0``/``params`` arrays
    for what is not fitted, ...). Ctrl-C cancels the fits and raises ``KeyboardInterrupt``.
    """
    engine = engine or default_engine()
    raw = _estimate_fits(
        system, observations, times, fit, engine=engine, mask=mask, start=start, weights=weights,
        shared=shared, segments=segments, max_iterations=max_iterations,
        sensitivity_error=sensitivity_error,
        u0=_table(u0, "u0"), params=_table(params, "params"), **options,
    )
    return Estimates(raw)


class Estimates:
    """Fitted values with their uncertainty.

    One fit per trajectory: ``values`` and ``stderr`` [N, n_fit], ``covariance``
    [N, n_fit, n_fit] (σ²(JᵀWJ)⁻¹, σ² = 2 cost / (m - n_fit); NaN where it does not exist),
    ``cost`` [N], ``iterations`` [N], ``status`` [N] uint8 (``FIT_STATUS``), ``observed``
    [N]. A shared fit (``shared=True``): ``values``, ``stderr`` [n_fit], ``covariance``
    [n_fit, n_fit], ``cost``, ``iterations`` and ``status`` as numbers, ``trajectory_cost``
    [N] (each trajectory's share: where an outlier shows), ``failed_trajectory``. Both:
    ``names`` (the fitted quantities, the last axis), ``runs``, ``trajectory_runs``,
    ``solve_s`` and ``settings``.
    """

    def __init__(self, raw: dict[str, Any]) -> None:
        self.names: list[str] = raw["names"]
        self.values: np.ndarray = raw["values"]
        self.stderr: np.ndarray = raw["stderr"]
        self.covariance: np.ndarray = raw["covariance"]
        self.cost = raw["cost"]
        self.iterations = raw["iterations"]
        self.status = raw["status"]
        self.observed = raw["observed"]
        self.trajectory_cost: np.ndarray | None = raw.get("trajectory_cost")
        self.failed_trajectory: int | None = raw.get("failed_trajectory")
        self.runs: int = raw["runs"]
        self.trajectory_runs: int = raw["trajectory_runs"]
        self.solve_s: float = raw["solve_s"]
        self.settings: dict[str, Any] = raw["settings"]

    @property
    def shared(self) -> bool:
        """Whether this is one fit to all trajectories."""
        return bool(self.settings.get("shared"))

    @property
    def converged(self) -> np.ndarray | bool:
        """Per fit (or for the shared fit): whether it converged."""
        return self.status == 1

    def __getitem__(self, name: str) -> np.ndarray:
        """The fitted values of one quantity: [N] per trajectory, or a 0-d array shared."""
        if name not in self.names:
            raise KeyError(f"{name!r} was not fitted; fitted: {', '.join(self.names)}")
        return self.values[..., self.names.index(name)]

    def __repr__(self) -> str:
        if self.shared:
            return (
                f"Estimates(shared, {dict(zip(self.names, self.values.tolist()))}, "
                f"status={FIT_STATUS.get(int(self.status))!r}, iterations={self.iterations})"
            )
        counts = {FIT_STATUS[int(c)]: int(k) for c, k in zip(*np.unique(self.status, return_counts=True))}
        return f"Estimates(n={self.values.shape[0]}, names={self.names}, status={counts})"

    def to_xarray(self):
        """An ``xarray.Dataset``: ``values``, ``stderr``, ``covariance`` and the per-fit
        numbers, with dims ``trajectory`` (per-trajectory fits) and ``quantity``; the
        settings as attributes."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install xarray") from None
        q = np.asarray(self.names, dtype=str)
        lead: tuple[str, ...] = () if self.shared else ("trajectory",)
        data_vars: dict[str, Any] = {
            "values": ((*lead, "quantity"), self.values),
            "stderr": ((*lead, "quantity"), self.stderr),
            "covariance": ((*lead, "quantity", "quantity_2"), self.covariance),
            "cost": (lead, np.asarray(self.cost)),
            "iterations": (lead, np.asarray(self.iterations)),
            "status": (
                lead,
                np.asarray(self.status, dtype=np.uint8),
                {
                    "flag_values": np.asarray(list(FIT_STATUS), dtype=np.uint8),
                    "flag_meanings": " ".join(FIT_STATUS.values()),
                },
            ),
        }
        if self.trajectory_cost is not None:
            data_vars["trajectory_cost"] = ("trajectory", self.trajectory_cost)
        attrs = {k: _attr(v) for k, v in self.settings.items()}
        return xr.Dataset(data_vars, coords={"quantity": q, "quantity_2": q}, attrs=attrs)


def _run_analysis(submit: Any, system: Any, progress: bool | str, **kwargs: Any) -> tuple[Job, dict[str, Any]]:
    job = submit(system, **kwargs)
    try:
        _wait(job, progress)
    except BaseException:
        job.cancel()
        raise
    return job, job.result()


def lyapunov(
    system: System | str,
    *,
    engine: Engine | None = None,
    progress: bool | str = "auto",
    u0: Any = None,
    params: Any = None,
    **options: Any,
) -> Lyapunov:
    """Lyapunov spectra of an ensemble, as ``phaseflow lyapunov`` computes them: the
    keywords are its config file's keys, the run's (``n``, ``sweep``, ``solver``, ``dt``,
    ``tspan``, ``precision``, ...) and its own table as ``lyapunov={"k": 3, "transient":
    100, ...}``; ``u0``/``params`` arrays as in ``simulate``."""
    engine = engine or default_engine()
    job, raw = _run_analysis(engine.submit_lyapunov, system, progress,
                             u0=_table(u0, "u0"), params=_table(params, "params"), **options)
    return Lyapunov(raw)


def orbit_diagram(
    system: System | str,
    *,
    engine: Engine | None = None,
    progress: bool | str = "auto",
    u0: Any = None,
    params: Any = None,
    **options: Any,
) -> OrbitDiagram:
    """An orbit (bifurcation) diagram, as ``phaseflow orbit-diagram`` computes it: the run's
    keys (a ``sweep`` of the bifurcation parameter) and its own table as ``orbit={...}``
    (``points``, ``section``/``maxima``, ``transient``, ...)."""
    engine = engine or default_engine()
    job, raw = _run_analysis(engine.submit_orbit_diagram, system, progress,
                             u0=_table(u0, "u0"), params=_table(params, "params"), **options)
    return OrbitDiagram(raw)


def basins(
    system: System | str,
    *,
    engine: Engine | None = None,
    progress: bool | str = "auto",
    **options: Any,
) -> Basins:
    """Basins of attraction on a grid of initial states, as ``phaseflow basins`` computes
    them: the run's keys and its own table as ``basins={"grid": {...}, ...}``."""
    engine = engine or default_engine()
    job, raw = _run_analysis(engine.submit_basins, system, progress, **options)
    return Basins(raw)


def fit(
    x: Any = None,
    y: Any = None,
    *,
    test: tuple[Any, Any] | None = None,
    network: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    seed: int = 1,
    engine: Engine | None = None,
    expr: str | None = None,
    inputs: int | None = None,
    domain: tuple[float, float] | None = None,
    points: int | None = None,
    image: str | os.PathLike[str] | None = None,
    holdout: bool = False,
) -> Fit:
    """Fits an MLP, behind a Fourier-feature encoding by default, on the GPU, as ``phaseflow
    fit`` does (the same set-up, loop and bits), to one of:

    - ``y`` [m, outputs] as a function of ``x`` [m, inputs] (``fit --data``), with
      ``test=(x_test, y_test)`` scored after training;
    - ``expr``, an expression of x (and y, z with ``inputs`` 2 or 3) in the system language,
      sampled on a grid of ``points`` per input over ``domain`` (default (0, 1)) and tested
      on the cell midpoints (``fit --expr``); a mistake in it raises ``SystemError`` with
      its position in the string (file ``<expr>``);
    - ``image``, a PNG's path (grey or RGB) as a function of the pixel position (``fit
      --image``); ``holdout=True`` trains on every other pixel in each direction and scores
      the rest (with its PSNR).

    ``network`` and ``train`` take the keys of the config file's ``[network]`` (``hidden``,
    ``activation``, ``encoding``, ``features``, ``sigma``, ``train_encoding``, ``init``)
    and ``[train]`` (``steps``, ``lr``, ``schedule``, ``weight_decay``, ``sgd``, ``loss``,
    ``batch``, ``clip``, ``log_every``) tables. Ctrl-C stops at the next loss read-back and
    keeps the network so far (``Fit.interrupted``)."""
    engine = engine or default_engine()

    def columns(a: Any) -> np.ndarray | None:
        if a is None:
            return None
        a = np.asarray(a, dtype=np.float64)
        return a.reshape(-1, 1) if a.ndim == 1 else a

    if test is not None and (not isinstance(test, (tuple, list)) or len(test) != 2):
        err = SpecError("test must be a pair (x_test, y_test)")
        err.key = "test"
        raise err
    pair = None if test is None else (columns(test[0]), columns(test[1]))
    return Fit(_fit_mlp(columns(x), columns(y), engine=engine, test=pair, network=network,
                        train=train, seed=seed, expr=expr, inputs=inputs, domain=domain,
                        points=points, image=None if image is None else os.fspath(image),
                        holdout=holdout))


class Fit:
    """A finished fit: ``model`` (an ``MLP``: ``predict(x)``, ``save(path)``), the loss curve
    ``steps`` and ``loss``, ``summary`` (what ``phaseflow fit --json`` prints, with the test
    set's ``mse`` and ``relative_l2``) and ``interrupted``."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.model: MLP = raw["model"]
        self.steps: np.ndarray = raw["steps"]
        self.loss: np.ndarray = raw["loss"]
        self.summary: dict[str, Any] = raw["summary"]
        self.interrupted: bool = raw["interrupted"]

    def predict(self, x: Any) -> np.ndarray:
        """The network at inputs ``x`` [rows, inputs] (1-D: one input per row for a
        one-input network, else one row)."""
        return self.model.predict(x)

    def __repr__(self) -> str:
        final = self.summary.get("final_loss")
        return f"Fit({self.model!r}, steps={self.summary.get('steps')}, final_loss={final:.4g})"


def monte_carlo(
    system: System | str,
    *,
    engine: Engine | None = None,
    progress: bool | str = "auto",
    u0: Any = None,
    params: Any = None,
    quantiles: Any = None,
    **options: Any,
) -> MonteCarlo:
    """Statistics of an ensemble at every save time, its paths never kept: the keywords
    are ``simulate``'s (``n``, ``solver``, ``tspan``, ``saveat``, ``sweep``, ``u0``, ...),
    and ``quantiles`` the levels to estimate (default 0.01, 0.05, 0.25, 0.5, 0.75, 0.95,
    0.99). The same numbers as ``phaseflow simulate --outputs montecarlo`` writes, bit for
    bit, for any N: memory holds statistics, not trajectories. Means and variances are
    exact sums; quantiles come from a histogram, within 2^-8 (0.4%) relative."""
    engine = engine or default_engine()
    levels = None if quantiles is None else [float(q) for q in np.atleast_1d(quantiles)]
    job, raw = _run_analysis(engine.submit_monte_carlo, system, progress, u0=_table(u0, "u0"),
                             params=_table(params, "params"), quantiles=levels, **options)
    return MonteCarlo(raw)


class _Analysis:
    """The arrays of a finished analysis, under the names of the CLI's files, and its
    ``summary`` (the CLI's ``--json``)."""

    _arrays: tuple[str, ...] = ()

    def __init__(self, raw: dict[str, Any]) -> None:
        self.summary: dict[str, Any] = raw["summary"]
        for name in self._arrays:
            setattr(self, name, raw[name])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a}={tuple(getattr(self, a).shape)}" for a in self._arrays)
        return f"{type(self).__name__}({shapes})"


class Lyapunov(_Analysis):
    """``exponents`` [N, k] (NaN where a trajectory failed), ``errors`` [N, k] (standard
    errors), ``status`` [N], ``params`` [N, n_params], ``final`` [N, dim], ``summary``."""

    _arrays = ("exponents", "errors", "status", "params", "final")

    def __init__(self, raw: dict[str, Any]) -> None:
        raw = dict(raw, exponents=raw["lyapunov"], errors=raw["lyapunov_error"])
        super().__init__(raw)


class OrbitDiagram(_Analysis):
    """``orbit`` [N, K] (the observed values at each trajectory's records; NaN past its
    count), ``counts`` [N], ``distinct`` [N] (distinct values: the period), ``params``
    [N, n_params], ``status`` [N], ``summary``."""

    _arrays = ("orbit", "counts", "distinct", "params", "status")


class MonteCarlo(_Analysis):
    """Per save time and state: ``mean``, ``var`` (sample variance), ``stderr`` (of the
    mean), ``min``, ``max`` and ``count`` (finite values counted, int64) [n_save, dim];
    ``quantiles`` [n_save, n_levels, dim] at ``levels``; ``times`` [n_save]; ``summary``
    (the run's settings, status counts, ``nonfinite`` values left out, timings)."""

    _arrays = ("times", "mean", "var", "stderr", "min", "max", "quantiles", "count", "levels")

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``time``, ``state`` and ``quantile`` (the levels
        as its coordinate); the summary as attributes (nested values as JSON text)."""
        import xarray as xr

        states = self.summary.get("state_names") or [f"u{i}" for i in range(self.mean.shape[1])]
        two = ("time", "state")
        data_vars = {name: (two, getattr(self, name)) for name in ("mean", "var", "stderr", "min", "max", "count")}
        data_vars["quantiles"] = (("time", "quantile", "state"), self.quantiles)
        coords = {"time": self.times, "state": states, "quantile": self.levels}
        attrs = {k: _attr(v) for k, v in self.summary.items()}
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


class Basins(_Analysis):
    """``basins`` [ny, nx] int32 labels (-1: diverged), ``attractors`` [K, dim] (a final
    state of each), ``features`` [K, 2 dim] (or [K] for a classifying expression),
    ``summary`` (fractions, basin entropy, ...)."""

    _arrays = ("basins", "attractors", "features")
