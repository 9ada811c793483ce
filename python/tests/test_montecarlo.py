"""Monte Carlo statistics from Python: the CLI's montecarlo output bit for bit, the closed
form of geometric Brownian motion within statistical bands, the statistics of the paths
pf.simulate returns, and refusals at their key."""

import numpy as np
import pytest

import phaseflow as pf


def test_monte_carlo_equals_the_cli(engine, cli, tmp_path):
    cli("simulate", "gbm", "-n", "1000", "--tspan", "0:1", "--dt", "0.01", "--save-every", "50",
        "--outputs", "montecarlo", "--quantiles", "0.1,0.5,0.9", "-q", "-o", tmp_path / "out")
    r = pf.monte_carlo("gbm", engine=engine, progress=False, n=1000, tspan=(0, 1), dt=0.01,
                       save_every=50, quantiles=[0.1, 0.5, 0.9])
    for name in ["mean", "var", "stderr", "min", "max", "quantiles", "count"]:
        want = np.load(tmp_path / "out" / f"mc_{name}.npy")
        got = getattr(r, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want, equal_nan=True), name
    np.testing.assert_array_equal(r.times, np.load(tmp_path / "out" / "times.npy"))
    np.testing.assert_array_equal(r.levels, [0.1, 0.5, 0.9])
    assert r.summary["status"] == {"success": 1000} and r.summary["trajectories"] == 1000


def test_geometric_brownian_motion_moments():
    """Ito GBM with mu = 0.05, sigma = 0.2 from S0 = 1: E[S(1)] = e^mu, Var[S(1)] =
    e^(2 mu) (e^(sigma^2) - 1), median e^(mu - sigma^2 / 2). 20,000 Euler-Maruyama paths
    (dt = 1e-3; the scheme's weak error in the mean is 1.3e-6): the mean within 4 standard
    errors, the variance within 8% (lognormal tails make its sampling spread about 2%),
    the median within 1.5% (sampling 0.2%, the sketch's buckets about 0.5%)."""
    r = pf.monte_carlo("gbm", n=20000, precision="f64", progress=False, tspan=(0, 1), dt=1e-3,
                       save_every=500, quantiles=[0.5])
    assert r.mean.shape == (3, 1) and r.quantiles.shape == (3, 1, 1)
    mu, sigma = 0.05, 0.2
    mean, var = np.exp(mu), np.exp(2 * mu) * (np.exp(sigma**2) - 1)
    assert abs(r.mean[-1, 0] - mean) < 4 * r.stderr[-1, 0], (r.mean[-1, 0], r.stderr[-1, 0])
    assert abs(r.var[-1, 0] / var - 1) < 0.08, r.var[-1, 0]
    assert abs(r.quantiles[-1, 0, 0] / np.exp(mu - sigma**2 / 2) - 1) < 0.015
    assert r.count[-1, 0] == 20000 and r.var[0, 0] == 0.0 and r.mean[0, 0] == 1.0


def test_statistics_of_the_paths_simulate_returns(engine):
    """The same run kept whole by pf.simulate: mean and variance agree with NumPy's to
    rounding (the reducer's sums are exact), min and max exactly, every quantile lies
    between the sample's order statistics around it (1% of the sorted values either side)."""
    options = dict(n=3000, precision="f64", tspan=(0, 1), dt=0.01, save_every=20,
                   sweep={"rho": [10, 40]}, u0={"uniform": {"x": [-5, 5]}})
    r = pf.monte_carlo("lorenz", engine=engine, progress=False, quantiles=[0.05, 0.5, 0.95], **options)
    paths = pf.simulate("lorenz", engine=engine, progress=False, **options).states
    np.testing.assert_allclose(r.mean, paths.mean(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.var, paths.var(axis=1, ddof=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(r.min, paths.min(axis=1))
    np.testing.assert_array_equal(r.max, paths.max(axis=1))
    ordered = np.sort(paths, axis=1)
    for k, q in enumerate(r.levels):
        lo = ordered[:, max(int((q - 0.01) * 3000), 0), :]
        hi = ordered[:, min(int((q + 0.01) * 3000), 2999), :]
        got = r.quantiles[:, k, :]
        assert ((got >= lo - 1e-9 * abs(lo)) & (got <= hi + 1e-9 * abs(hi))).all(), q


def test_to_xarray(engine):
    r = pf.monte_carlo("lorenz", engine=engine, progress=False, n=64, tspan=(0, 0.5), dt=0.01, save_every=10)
    ds = r.to_xarray()
    assert dict(ds.sizes) == {"time": 6, "state": 3, "quantile": 7}
    assert list(ds.state.values) == ["x", "y", "z"]
    assert ds["quantiles"].dims == ("time", "quantile", "state")
    np.testing.assert_array_equal(ds["mean"].values, r.mean)


def test_refusals_name_their_key(engine):
    with pytest.raises(pf.SpecError) as e:
        pf.monte_carlo("lorenz", engine=engine, progress=False, n=4, quantiles=[0.5, 1.5])
    assert e.value.key == "quantiles" and "1.5" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.monte_carlo("lorenz", engine=engine, progress=False, n=4, sensitivities=["rho"])
    assert e.value.key == "sensitivities"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=4, quantiles=[0.5])
    assert e.value.key == "quantiles" and "monte_carlo" in str(e.value)
