"""Zarr stores from Python and on Dask: the CLI's store (`phaseflow simulate -o run.zarr`)
opened by xarray with the documented dims, coordinates and attributes; shards from Python
giving the CLI's bytes; and `phaseflow.dask.simulate` on a real `dask.distributed`
LocalCluster of two worker processes equal to the single-process result."""

import pathlib

import numpy as np
import pytest

import phaseflow as pf

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")

SPEC = dict(n=3000, tspan=(0, 2), saveat="0:0.25:2", solver="tsit5", sweep={"rho": [0, 50]})


def chunk_files(store: pathlib.Path) -> dict[str, bytes]:
    """Every array file of a store (the root and the shards' progress left out)."""
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.parent != store and "shards" not in p.parts
    }


def test_the_cli_store_opens_in_xarray_as_documented(engine, cli, tmp_path):
    cli("simulate", "lorenz", "-n", "3000", "--tspan", "0:2", "--saveat", "0:0.25:2", "--solver", "tsit5",
        "--sweep", "rho=0:50", "--seed", "4", "--zarr-chunk", "1024", "-q", "-o", tmp_path / "cli.zarr")
    ds = xr.open_zarr(tmp_path / "cli.zarr")
    assert ds.states.dims == ("time", "trajectory", "state")
    assert ds.states.shape == (9, 3000, 3) and ds.states.dtype == np.float32
    assert ds.states.chunks == ((9,), (1024, 1024, 952), (3,))
    assert list(ds.state.values) == ["x", "y", "z"]
    assert list(ds.parameter.values) == ["sigma", "rho", "beta"]
    assert ds.params.dims == ("trajectory", "parameter") and ds.u0.dims == ("trajectory", "state")
    assert ds.stats.dims == ("trajectory", "step_count") and ds.status.dims == ("trajectory",)
    np.testing.assert_allclose(ds.time.values, np.arange(9) * 0.25)
    assert ds.attrs["system"] == "lorenz" and ds.attrs["solver"] == "tsit5"
    assert ds.attrs["seed"] == 4 and ds.attrs["precision"] == "f32"
    assert ds.attrs["phaseflow"]["complete"] is True
    assert ds.attrs["phaseflow"]["status"] == {"success": 3000}
    assert ds.status.attrs["flag_meanings"].split()[1] == "success"

    # The same values as an in-memory run, and a Python store of the CLI's bytes.
    r = pf.simulate("lorenz", engine=engine, seed=4, **SPEC)
    assert np.array_equal(ds.states.values, r.states)
    assert np.array_equal(ds.status.values, r.status)
    np.testing.assert_allclose(ds.params.sel(parameter="rho").values, np.linspace(0, 50, 3000), rtol=1e-14)
    s = pf.simulate("lorenz", engine=engine, seed=4, out=tmp_path / "py.zarr", zarr_chunk=1024, **SPEC)
    assert isinstance(s, pf.Store) and s.complete and s.finalized
    assert chunk_files(s.path) == chunk_files(tmp_path / "cli.zarr")


def test_shards_from_python_fill_the_store_and_say_what_is_missing(engine, tmp_path):
    whole = pf.simulate("lorenz", engine=engine, out=tmp_path / "whole.zarr", zarr_chunk=500, **SPEC)
    out = tmp_path / "parts.zarr"
    first = pf.simulate("lorenz", engine=engine, out=out, shard="1/3", zarr_chunk=500, **SPEC)
    assert first.complete and not first.finalized
    assert first.shard["trajectories"] == [1000, 2000]
    status = first.status()
    assert status["complete_shards"] == 1 and status["shards"][0]["state"] == "not started"
    with pytest.raises(pf.SpecError, match="2 of 3 shard"):
        first.finalize()
    pf.simulate("lorenz", engine=engine, out=out, shard=(0, 3), zarr_chunk=500, **SPEC)
    last = pf.simulate("lorenz", engine=engine, out=out, shard=(2, 3), zarr_chunk=500, **SPEC)
    assert last.finalized
    again = pf.simulate("lorenz", engine=engine, out=out, shard=(2, 3), zarr_chunk=500, **SPEC)
    assert again.already_complete
    assert chunk_files(out) == chunk_files(whole.path)
    for key, value, says in [
        ("shard", "3/3", "does not exist"),
        ("compression", "lz4", "not a compression"),
    ]:
        with pytest.raises(pf.SpecError, match=says) as e:
            pf.simulate("lorenz", engine=engine, out=tmp_path / "bad.zarr", **{key: value}, **SPEC)
        assert e.value.key == key
    with pytest.raises(pf.SpecError, match="Zarr stores") as e:
        pf.simulate("lorenz", engine=engine, shard="0/2", **SPEC)
    assert e.value.key == "shard"


def test_dask_local_cluster_computes_the_single_process_result(engine, tmp_path):
    distributed = pytest.importorskip("distributed")
    dask = pytest.importorskip("dask")
    import phaseflow.dask as pfd

    spec = dict(n=100_000, tspan=(0, 1), dt=0.01, save_every=25, sweep={"rho": [0, 50]})
    want = pf.simulate("lorenz", engine=engine, **spec)
    # The Monte Carlo statistics of the same run, from one process into a run directory.
    one = pf.simulate("lorenz", engine=engine, out=tmp_path / "one", outputs=["montecarlo"], **spec)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        ds = pfd.simulate("lorenz", store=tmp_path / "dask.zarr", shards=4, zarr_chunk=8192,
                          outputs=["states", "montecarlo"], **spec)
        assert ds.states.dims == ("time", "trajectory", "state")
        assert len(ds.states.chunks[1]) == 4 and sum(ds.states.chunks[1]) == 100_000
        assert ds.attrs["store"] == str(tmp_path / "dask.zarr")
        assert ds.mc_quantiles.dims == ("time", "quantile", "state")
        assert list(ds["quantile"].values) == [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
        states, status, mean, quantiles, count = dask.compute(
            ds.states.data, ds.status.data, ds.mc_mean.data, ds.mc_quantiles.data, ds.mc_count.data)
    assert np.array_equal(states, want.states)
    assert np.array_equal(status, want.status)
    # Merged from four shards computed on two workers: the single process's bits.
    assert np.array_equal(mean, np.load(one.path / "mc_mean.npy"))
    assert np.array_equal(quantiles, np.load(one.path / "mc_quantiles.npy"))
    assert (count == 100_000).all()
    done = xr.open_zarr(tmp_path / "dask.zarr")
    assert done.attrs["phaseflow"]["complete"] is True and done.attrs["phaseflow"]["shards"] == 4
    with pytest.raises(pf.SpecError, match="system file's path") as e:
        pfd.simulate(pf.System.builtin("lorenz"), store=tmp_path / "x.zarr", **spec)
    assert e.value.key == "system"


def test_dask_event_logs_equal_the_in_memory_run(engine, tmp_path):
    pytest.importorskip("dask")
    import phaseflow.dask as pfd

    spec = dict(n=2000, tspan=(0, 10), dt=0.01, sweep={"rho": [20, 50]}, section="z = 27")
    want = pf.simulate("lorenz", engine=engine, **spec)
    ds = pfd.simulate("lorenz", store=tmp_path / "ev.zarr", shards=2, zarr_chunk=500, **spec)
    assert ds.events.dims == ("trajectory", "record", "field")
    assert list(ds.field.values) == ["t", "event", "x", "y", "z"]
    events, counts = ds.events.values, ds.event_counts.values
    assert np.array_equal(events, want.events, equal_nan=True)
    assert np.array_equal(counts, want.event_counts) and counts.max() > 0
    # The finished store opens with the same arrays and the in-memory result's dims.
    done = xr.open_zarr(tmp_path / "ev.zarr")
    assert done.events.dims == want.to_xarray().events.dims
