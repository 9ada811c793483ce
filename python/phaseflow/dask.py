"""phaseflow on a Dask cluster: one ensemble run spread over the workers of a
``dask.distributed`` cluster, as a lazy ``xarray.Dataset``.

``simulate`` creates the run's Zarr store (the one ``phaseflow simulate -o run.zarr``
writes; root, metadata and coordinates, nothing computed) and returns a Dataset whose
arrays are Dask arrays with one block per shard along ``trajectory``. Computing a block runs
its shard on whichever worker Dask picks, into the store (``--shard I/M``), and reads the
block back; each worker process keeps one engine on its own device (``PHASEFLOW_ADAPTER`` in
the worker's environment chooses it). The store is the CLI's, byte for byte, so ``store``
must be on a file system every worker sees (a laptop's disk for a ``LocalCluster``, a shared
file system for a real cluster). A shard whose worker died is run again by Dask and
continues where it stopped; a block computed twice reads the finished shard.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

import numpy as np

from . import SpecError, default_engine
from ._phaseflow import create_store as _create_store
from ._phaseflow import simulate_to_store as _simulate_to_store

__all__ = ["simulate"]

#: Shards at most when ``shards`` is not given: one per store chunk up to this many.
DEFAULT_MAX_SHARDS = 64

_run_lock = threading.Lock()


def _run_shard(system: Any, out: str, index: int, count: int, options: dict[str, Any]) -> dict[str, Any]:
    """Runs shard ``index`` of ``count`` into the store (on a worker). One at a time per
    process: the worker's engine has one device."""
    with _run_lock:
        raw = _simulate_to_store(system, engine=default_engine(), shard=(index, count), **options, out=out)
    if not raw["complete"]:
        raise RuntimeError(f"shard {index}/{count} of {out} did not finish: {raw['shard']}")
    return raw["shard"]


def _finalize(out: str, *_shards: Any) -> dict[str, Any]:
    """Finalizes the store once every shard has run (the last shard to finish did already,
    unless shards ran more than once): merges the shards' Monte Carlo accumulators."""
    from ._phaseflow import finalize_store

    return finalize_store(out)


def _read_whole(out: str, name: str, _final: Any) -> np.ndarray:
    """Array ``name`` whole (written by ``store finalize``)."""
    import zarr

    return np.asarray(zarr.open_array(os.path.join(out, name), mode="r")[...])


def _read_block(out: str, name: str, start: int, end: int, axis: int, _shard: Any) -> np.ndarray:
    """The block of array ``name`` for trajectories ``start..end`` (after its shard ran)."""
    import zarr

    array = zarr.open_array(os.path.join(out, name), mode="r")
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, end)
    return np.asarray(array[tuple(index)])


def simulate(
    system: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    shards: int | None = None,
    zarr_chunk: int | None = None,
    compression: str | None = None,
    **options: Any,
) -> Any:
    """A lazy ``xarray.Dataset`` of the run, computed on the Dask cluster (the current
    ``dask.distributed`` client's, or Dask's default scheduler without one).

    ``system`` is a built-in's name or a system file's path; the keywords are
    ``phaseflow.simulate``'s (the run config's keys: ``n``, ``solver``, ``tspan``, ``sweep``,
    ...; parameters and initial states as spec keys, not arrays). ``store``: where the Zarr
    store goes (default: a new folder under the temporary directory, which only a cluster on
    this machine sees); ``shards``: blocks along ``trajectory``, each one task (default: one
    per store chunk, at most 64); ``zarr_chunk``, ``compression``: as ``simulate``'s.

    Dims ``time``, ``trajectory``, ``state`` (and ``parameter``, ``step_count``, and for a
    system with events or a ``section`` ``record``, ``field``: ``events`` and
    ``event_counts``, as the store's); the save
    times and the state and parameter names as coordinates; the run's settings as attrs,
    with ``attrs["store"]`` the store's path. ``.compute()`` runs the shards;
    ``xarray.open_zarr(ds.attrs["store"])`` opens the finished store. With
    ``outputs=["montecarlo"]`` (or ``["states", "montecarlo"]``) the Dataset has the
    statistics across trajectories (``mc_mean``, ``mc_var``, ``mc_stderr``, ``mc_min``,
    ``mc_max``, ``mc_count`` [time, state], ``mc_quantiles`` [time, quantile, state]), each
    one block computed once every shard has run, from the shards' merged accumulators.
    """
    try:
        import dask
        import dask.array as da
        import xarray as xr
    except ImportError as e:
        raise ImportError("phaseflow.dask needs dask, xarray and zarr: pip install 'dask[distributed]' xarray zarr") from e
    if not isinstance(system, (str, os.PathLike)):
        err = SpecError("system: give a built-in's name or a system file's path (workers build it themselves)")
        err.key = "system"
        raise err
    system = os.fspath(system)
    out = os.fspath(store) if store is not None else tempfile.mkdtemp(prefix="phaseflow-dask-", suffix=".zarr")
    if not out.lower().endswith(".zarr"):
        err = SpecError(f"store: '{out}' must end in .zarr")
        err.key = "store"
        raise err
    for key in ("out", "shard"):
        if key in options:
            err = SpecError(f"{key}: phaseflow.dask.simulate writes into store= and cuts it into shards= itself")
            err.key = key
            raise err
    store_options = {"zarr_chunk": zarr_chunk, "compression": compression}
    layout = _create_store(system, shards=shards, max_shards=DEFAULT_MAX_SHARDS, out=out, **store_options, **options)
    shards = layout["shards"]
    ranges = [tuple(r) for r in layout["ranges"]]
    n, n_save, dim, n_params = layout["n"], layout["n_save"], layout["dim"], layout["n_params"]
    real = np.float32 if layout["precision"] == "f32" else np.float64

    run_options = dict(options, **{k: v for k, v in store_options.items() if v is not None})
    tasks = [
        dask.delayed(_run_shard, pure=True)(system, out, i, shards, run_options, dask_key_name=f"phaseflow-shard-{i}-{dask.base.tokenize(out, i, shards)}")
        for i in range(shards)
    ]

    def lazy(name: str, shape_of: Any, dtype: Any, axis: int) -> Any:
        blocks = [
            da.from_delayed(dask.delayed(_read_block, pure=True)(out, name, lo, hi, axis, tasks[i]), shape=shape_of(hi - lo), dtype=dtype)
            for i, (lo, hi) in enumerate(ranges)
            if hi > lo
        ]
        return da.concatenate(blocks, axis=axis)

    import json

    import zarr

    def attrs(name: str) -> dict[str, Any]:
        with open(os.path.join(out, name, "zarr.json")) as f:
            return dict(json.load(f).get("attributes", {}))

    root_attrs = attrs("")
    data = {}
    if "states" in layout["outputs"]:
        data["states"] = (("time", "trajectory", "state"), lazy("states", lambda m: (n_save, m, dim), real, 1))
    data.update({
        "status": (("trajectory",), lazy("status", lambda m: (m,), np.uint8, 0)),
        "u0": (("trajectory", "state"), lazy("u0", lambda m: (m, dim), np.float64, 0)),
    })
    if n_params > 0:
        data["params"] = (("trajectory", "parameter"), lazy("params", lambda m: (m, n_params), np.float64, 0))
    if layout["adaptive"]:
        columns = zarr.open_array(os.path.join(out, "stats"), mode="r").shape[1]
        data["stats"] = (("trajectory", "step_count"), lazy("stats", lambda m: (m, columns), np.uint32, 0))
    k = layout["event_records"]
    if k is not None:
        data["events"] = (("trajectory", "record", "field"), lazy("events", lambda m: (m, k, 2 + dim), real, 0))
        data["event_counts"] = (("trajectory",), lazy("event_counts", lambda m: (m,), np.uint32, 0))
    names = ("time", "state", "parameter") if n_params > 0 else ("time", "state")
    names += ("field",) if k is not None else ()
    coords = {name: (name, np.asarray(zarr.open_array(os.path.join(out, name), mode="r")[...]), attrs(name)) for name in names}
    levels = layout["quantiles"]
    if levels is not None:
        final = dask.delayed(_finalize, pure=True)(out, *tasks, dask_key_name=f"phaseflow-finalize-{dask.base.tokenize(out, shards)}")
        whole = {name: ((n_save, dim), ("time", "state"), np.float64) for name in ("mc_mean", "mc_var", "mc_stderr", "mc_min", "mc_max")}
        whole["mc_count"] = ((n_save, dim), ("time", "state"), np.int64)
        whole["mc_quantiles"] = ((n_save, len(levels), dim), ("time", "quantile", "state"), np.float64)
        for name, (shape, dims, dtype) in whole.items():
            block = da.from_delayed(dask.delayed(_read_whole, pure=True)(out, name, final), shape=shape, dtype=dtype)
            data[name] = (dims, block)
        coords["quantile"] = ("quantile", np.asarray(levels, dtype=np.float64), {"long_name": "quantile levels"})
    ds = xr.Dataset(
        {k: (dims, arr, attrs(k) if os.path.exists(os.path.join(out, k, "zarr.json")) else {}) for k, (dims, arr) in data.items()},
        coords=coords,
        attrs=dict(root_attrs, store=out),
    )
    return ds
