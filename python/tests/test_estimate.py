"""Parameter estimation from Python: the CLI's fits bit for bit, recovery of known
parameters within the reported standard errors, statuses, and errors naming their key."""

import numpy as np
import pytest

import phaseflow as pf

FIT = {"sigma": (1.0, 30.0, 10.0), "rho": (1.0, 60.0, 28.0), "beta": (0.5, 6.0, 2.5)}


def lorenz_observations(engine, n, noise, seed=1):
    """n Lorenz trajectories with (sigma, rho, beta) drawn per trajectory, observed at 100
    times over [0.01, 1] with Gaussian noise of standard deviation `noise`."""
    rng = np.random.default_rng(seed)
    params = np.column_stack([rng.uniform(8, 12, n), rng.uniform(20, 35, n), rng.uniform(2, 3, n)])
    times = np.linspace(0.01, 1.0, 100)
    r = pf.simulate("lorenz", engine=engine, progress=False, params=params, solver="tsit5", tspan=(0, 1),
                    saveat=[0.0, *times], rtol=1e-11, atol=1e-11, precision="f64")
    obs = r.states[1:].transpose(1, 0, 2) + rng.normal(0.0, noise, (n, 100, 3))
    return params, times, obs


def test_lorenz_fits_recover_the_truth_within_their_standard_errors(engine):
    """200 fits of (sigma, rho, beta); the truth lies within 2 reported standard errors for
    about 95% of the 600 fitted values. With p = 0.954 the count's standard deviation is
    0.9% of 600, so [0.92, 0.985] is a band of more than 3 of them."""
    params, times, obs = lorenz_observations(engine, 200, 0.05)
    e = pf.estimate("lorenz", obs, times, FIT, engine=engine)
    assert e.names == ["sigma", "rho", "beta"]
    assert e.values.shape == e.stderr.shape == (200, 3) and e.covariance.shape == (200, 3, 3)
    assert (e.status == 1).all() and e.converged.all()
    assert (e.observed == 300).all()
    inside = np.abs(e.values - params) < 2 * e.stderr
    assert 0.92 <= inside.mean() <= 0.985, inside.mean()
    np.testing.assert_allclose(e["rho"], params[:, 1], rtol=2e-3)
    # σ² estimated from the residuals: the noise's variance, per value (cost = ½ Σ r²).
    sigma2 = 2 * e.cost / (300 - 3)
    assert 0.8 * 0.05**2 < np.median(sigma2) < 1.2 * 0.05**2


def test_fits_equal_the_cli_bit_for_bit(engine, cli, tmp_path):
    params, times, obs = lorenz_observations(engine, 12, 0.1, seed=4)
    obs[2, 10:40, 1] = np.nan  # missing values
    np.save(tmp_path / "obs.npy", obs)
    np.save(tmp_path / "times.npy", times)
    weights = {"x": 1.0, "y": 0.5, "z": 2.0}
    cli("estimate", "lorenz", "--observations", tmp_path / "obs.npy", "--times", tmp_path / "times.npy",
        *[a for k, (lo, hi, s) in FIT.items() for a in ("--fit", f"{k}={lo}:{hi}:{s}")],
        *[a for k, w in weights.items() for a in ("--weights", f"{k}={w}")],
        "--max-iterations", "30", "-o", tmp_path / "fits")
    e = pf.estimate("lorenz", obs, times, FIT, engine=engine, weights=weights, max_iterations=30)
    for name, got in [("estimates", e.values), ("stderr", e.stderr), ("covariance", e.covariance),
                      ("cost", e.cost), ("iterations", e.iterations), ("fit_status", e.status)]:
        want = np.load(tmp_path / "fits" / f"{name}.npy")
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want, equal_nan=True), name
    assert e.observed[2] == 300 - 30


def test_multiple_shooting_equals_the_cli_bit_for_bit(engine, cli, tmp_path):
    """segments=4 runs the CLI's --segments 4 fits: the same values, costs, iterations."""
    params, times, obs = lorenz_observations(engine, 6, 0.1, seed=5)
    np.save(tmp_path / "obs.npy", obs)
    np.save(tmp_path / "times.npy", times)
    cli("estimate", "lorenz", "--observations", tmp_path / "obs.npy", "--times", tmp_path / "times.npy",
        *[a for k, (lo, hi, s) in FIT.items() for a in ("--fit", f"{k}={lo}:{hi}:{s}")],
        "--segments", "4", "-o", tmp_path / "fits")
    e = pf.estimate("lorenz", obs, times, FIT, engine=engine, segments=4)
    assert e.settings["segments"] == 4
    for name, got in [("estimates", e.values), ("cost", e.cost), ("iterations", e.iterations),
                      ("fit_status", e.status)]:
        assert np.array_equal(got, np.load(tmp_path / "fits" / f"{name}.npy")), name
    np.testing.assert_allclose(e.values, params, rtol=2e-2)


def test_a_shared_fit_equals_the_cli_and_finds_the_common_value(engine, cli, tmp_path):
    """Twenty trajectories with their own sigma and rho and one beta = 8/3: beta fitted to
    all at once, the others known (params)."""
    rng = np.random.default_rng(9)
    n = 20
    params = np.column_stack([rng.uniform(8, 12, n), rng.uniform(20, 35, n), np.full(n, 8 / 3)])
    times = np.linspace(0.02, 1.0, 50)
    r = pf.simulate("lorenz", engine=engine, progress=False, params=params, solver="tsit5", tspan=(0, 1),
                    saveat=[0.0, *times], rtol=1e-11, atol=1e-11, precision="f64")
    obs = r.states[1:].transpose(1, 0, 2) + rng.normal(0.0, 0.05, (n, 50, 3))
    s = pf.estimate("lorenz", obs, times, {"beta": (0.5, 6.0, 2.0)}, engine=engine, shared=True, params=params)
    assert s.shared and s.status == 1 and s.values.shape == (1,)
    assert abs(s.values[0] - 8 / 3) < 3 * s.stderr[0] and s.stderr[0] < 1e-2
    assert s.trajectory_cost.shape == (n,) and s.failed_trajectory is None
    np.save(tmp_path / "obs.npy", obs)
    np.save(tmp_path / "times.npy", times)
    np.save(tmp_path / "params.npy", params)
    cli("estimate", "lorenz", "--observations", tmp_path / "obs.npy", "--times", tmp_path / "times.npy",
        "--fit", "beta=0.5:6:2", "--shared", "--params", tmp_path / "params.npy", "-o", tmp_path / "fits")
    assert np.array_equal(s.values, np.load(tmp_path / "fits" / "estimates.npy"))
    assert np.array_equal(s.covariance, np.load(tmp_path / "fits" / "covariance.npy"))
    assert np.array_equal(s.trajectory_cost, np.load(tmp_path / "fits" / "trajectory_cost.npy"))
    ds = s.to_xarray()
    assert ds["values"].dims == ("quantity",) and ds.trajectory_cost.dims == ("trajectory",)


def test_statuses_of_fits_that_cannot_succeed(engine):
    """A trajectory with one observed value fits nothing (underdetermined); a mask hides
    values exactly as NaN does; a start where the model blows up fails to integrate."""
    decay = pf.System.from_equations(states={"u": 1.0}, parameters={"k": 1.0}, equations="du = -k*u")
    times = np.linspace(0.1, 1.0, 10)
    k = np.array([0.5, 1.0, 2.0])
    obs = np.exp(-k[:, None] * times[None, :])[..., None]
    mask = np.ones_like(obs)
    mask[1, 1:] = 0
    masked = pf.estimate(decay, obs, times, {"k": (0.1, 5.0)}, engine=engine, mask=mask)
    nans = obs.copy()
    nans[1, 1:] = np.nan
    with_nan = pf.estimate(decay, nans, times, {"k": (0.1, 5.0), "u0": (0.0, 2.0)}, engine=engine)
    assert pf.FIT_STATUS[int(with_nan.status[1])] == "underdetermined"
    assert masked.status[1] == 1 and masked.observed[1] == 1  # one value, one unknown
    np.testing.assert_allclose(masked.values[:, 0], k, rtol=1e-6)
    # u' = k u^2 from u0 = 1 blows up at t = 1/k: at k = 5 before the first observation.
    blow = pf.System.from_equations(states={"u": 1.0}, parameters={"k": 1.0}, equations="du = k*u*u")
    e = pf.estimate(blow, np.ones((2, 10, 1)), times, {"k": (0.0, 10.0, 5.0)}, engine=engine, max_steps=2000)
    assert [pf.FIT_STATUS[int(c)] for c in e.status] == ["integration_failed"] * 2


def test_estimate_errors_name_their_key(engine):
    times = np.linspace(0.1, 1.0, 10)
    obs = np.zeros((4, 10, 3))
    cases = [
        (dict(fit={"nope": (0, 1)}), "fit", "nope"),
        (dict(fit={"rho": (2, 1)}), "fit", "LO < HI"),
        (dict(fit={"rho": "a"}), "fit", "give numbers"),
        (dict(times=times[:5]), "times", "[10]"),
        (dict(observations=obs[..., :2]), "observations", "3 states"),
        (dict(observations=obs[0]), "observations", "3-D"),
        (dict(n=3), "n", "4 trajectories"),
        (dict(precision="f32", rtol=1e-9), "rtol", "f32"),
        (dict(weights={"q": 1.0}), "weights", "'q'"),
        (dict(start=np.ones((4, 2))), "start", "[4, 1]"),
        (dict(start=np.full((4, 1), 99.0)), "start", "outside its bounds"),
        (dict(shared=True, start=np.ones((4, 1))), "start", "shared"),
        (dict(saveat=[1.0]), "saveat", "observation times"),
        (dict(sensitivity_error="some"), "sensitivity_error", "include or exclude"),
        (dict(mask=np.ones((4, 10))), "mask", "3-D"),
        (dict(mask=np.full((4, 10, 3), 0.5)), "mask", "holds 0.5 at [0, 0, 0]; it takes 1 (observed) or 0"),
        (dict(times=np.where(np.arange(10) == 3, np.nan, times)), "times", "holds NaN at index 3"),
        (dict(weights={"x": 0.0, "y": 0.0, "z": 0.0}), "weights", "0 for every state"),
        (dict(fit={"rho": (0.0, 1e300, 2e300)}), "fit", "0:1e300:2e300"),
        (dict(segments=6), "segments", "at most 5"),
        (dict(segments=0), "segments", "at least 1"),
        (dict(segments=2, shared=True), "segments", "shared"),
    ]
    for change, key, text in cases:
        args = dict(observations=obs, times=times, fit={"rho": (0.0, 50.0)}) | change
        with pytest.raises(pf.SpecError) as e:
            pf.estimate("lorenz", engine=engine, **args)
        assert e.value.key == key and text in str(e.value), (change, str(e.value))
