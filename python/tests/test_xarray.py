"""`Result.to_xarray` and its round trip through netCDF."""

import json

import numpy as np
import pytest

import phaseflow as pf

xr = pytest.importorskip("xarray")


def test_dataset_layout_and_netcdf_round_trip(engine, tmp_path):
    r = pf.simulate("lorenz", engine=engine, progress=False, n=50, solver="tsit5", tspan=[0, 1],
                    saveat=[0.0, 0.5, 1.0], rtol=1e-6, atol=1e-6, sweep={"rho": [0, 50]})
    ds = r.to_xarray()
    assert ds["states"].dims == ("time", "trajectory", "state")
    assert ds["state"].values.tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(ds["time"].values, [0.0, 0.5, 1.0])
    # The swept parameter is a coordinate along the trajectories, as the engine set it.
    np.testing.assert_allclose(ds["rho"].values, np.linspace(0, 50, 50))
    assert ds.attrs["solver"] == "tsit5" and ds.attrs["system"] == "lorenz"
    assert json.loads(ds.attrs["sweep"]) == {"rho": [0, 50]}
    # Selecting by the swept value works like any xarray coordinate.
    near_28 = ds.swap_dims(trajectory="rho").sel(rho=28.0, method="nearest")
    assert near_28["states"].shape == (3, 3)

    path = tmp_path / "run.nc"
    ds.to_netcdf(path, engine="scipy")
    back = xr.open_dataset(path, engine="scipy").load()
    np.testing.assert_array_equal(back["states"].values, r.states)
    np.testing.assert_array_equal(back["rho"].values, ds["rho"].values)
    np.testing.assert_array_equal(back["status"].values, r.status)
    np.testing.assert_array_equal(back["steps"].values, r.steps.astype(back["steps"].dtype))
    assert back.attrs["solver"] == "tsit5"
    assert back["status"].attrs["flag_meanings"].split()[1] == "success"
