"""Forward sensitivities and event records from Python: the CLI's arrays bit for bit, and
the closed forms they must agree with."""

import numpy as np
import pytest

import phaseflow as pf

from test_results import toml_value


def cli_run(cli, tmp_path, system, options, *extra):
    config = tmp_path / "run.toml"
    config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in options.items()))
    cli("simulate", system, "--config", config, "-o", tmp_path / "out", *extra)
    return tmp_path / "out"


SENSITIVITY_CASES = {
    "rk4-f32": dict(n=24, solver="rk4", tspan=[0.0, 1.0], dt=0.01, save_every=50, sweep={"rho": [10.0, 30.0]}),
    "tsit5-f64": dict(n=24, solver="tsit5", tspan=[0.0, 1.0], rtol=1e-8, atol=1e-8, saveat=[0.0, 0.5, 1.0],
                      sweep={"rho": [10.0, 30.0]}, precision="f64"),
    "tsit5-f64-exclude": dict(n=24, solver="tsit5", tspan=[0.0, 1.0], rtol=1e-8, atol=1e-8, saveat=[0.0, 0.5, 1.0],
                              sweep={"rho": [10.0, 30.0]}, precision="f64", sensitivity_error="exclude"),
}


@pytest.mark.parametrize("case", sorted(SENSITIVITY_CASES))
def test_sensitivities_equal_the_cli_bit_for_bit(case, engine, cli, tmp_path):
    options = dict(SENSITIVITY_CASES[case], sensitivities=["rho", "sigma", "x0"])
    out = cli_run(cli, tmp_path, "lorenz", options)
    want = np.load(out / "sensitivities.npy")
    r = pf.simulate("lorenz", engine=engine, progress=False, **options)
    assert r.sensitivity_names == ["rho", "sigma", "x0"]
    assert r.sensitivities.shape == want.shape == (3, 24, 3, 3)
    assert r.sensitivities.dtype == want.dtype
    assert np.array_equal(r.sensitivities, want)
    # The states are the run's own, split from the augmented system's.
    assert np.array_equal(r.states, np.load(out / "states.npy"))
    ds = r.to_xarray()
    assert ds.sensitivities.dims == ("time", "trajectory", "state", "target")
    assert list(ds.target.values) == ["rho", "sigma", "x0"]


@pytest.mark.parametrize("solver", ["rk4", "tsit5"])
def test_sensitivities_of_exponential_decay_match_the_closed_form(engine, solver):
    """u' = -k u: u = u0 exp(-k t), so du/dk = -t u0 exp(-k t) and du/du0 = exp(-k t)."""
    decay = pf.System.from_equations(states={"u": 2.0}, parameters={"k": 0.5}, equations="u' = -k*u")
    k = np.linspace(0.1, 2.0, 16)[:, None]
    options = dict(tspan=(0.0, 2.0), precision="f64", sensitivities=["k", "u0"])
    if solver == "rk4":
        options.update(dt=1e-3, save_every=500)
    else:
        options.update(rtol=1e-10, atol=1e-12, saveat=[0.0, 0.5, 1.0, 1.5, 2.0])
    r = pf.simulate(decay, engine=engine, progress=False, solver=solver, params=k, **options)
    t = r.times[:, None]
    kk = k[:, 0][None, :]
    np.testing.assert_allclose(r.states[..., 0], 2.0 * np.exp(-kk * t), rtol=1e-9)
    # RK4 at dt = 1e-3: a global error ~ dt^4 ≈ 1e-12 relative; the adaptive run holds 1e-10.
    np.testing.assert_allclose(r.sensitivities[..., 0, 0], -t * 2.0 * np.exp(-kk * t), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r.sensitivities[..., 0, 1], np.exp(-kk * t), rtol=1e-8)


def test_sensitivities_against_central_differences(engine):
    """∂x(1)/∂rho for Lorenz against (x(rho + h) - x(rho - h)) / 2h, f64, RK4 at a fine step."""
    rho, h = 20.0, 1e-5
    options = dict(solver="rk4", tspan=(0.0, 1.0), dt=1e-3, precision="f64", progress=False, engine=engine)
    params = np.array([[10.0, rho, 8 / 3]])
    r = pf.simulate("lorenz", params=params, sensitivities=["rho"], **options)
    up = pf.simulate("lorenz", params=params + [0, h, 0], **options).states[-1, 0]
    down = pf.simulate("lorenz", params=params - [0, h, 0], **options).states[-1, 0]
    # Central differences: truncation ~h^2 |u'''| and rounding ~1e-16 |u| / h ≈ 1e-10.
    np.testing.assert_allclose(r.sensitivities[-1, 0, :, 0], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_sensitivity_errors_name_their_key(engine):
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=2, sensitivities=["nope"])
    assert e.value.key == "sensitivities" and "nope" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=2, sensitivity_error="exclude")
    assert e.value.key == "sensitivity_error"


def test_section_records_equal_the_cli(engine, cli, tmp_path):
    options = dict(n=16, solver="tsit5", tspan=[0.0, 20.0], rtol=1e-8, atol=1e-8, precision="f64",
                   section="z = 27", direction="up", points=12, transient=2.0, sweep={"rho": [25.0, 40.0]})
    out = cli_run(cli, tmp_path, "lorenz", options)
    r = pf.simulate("lorenz", engine=engine, progress=False, **options)
    want = np.load(out / "events.npy")
    assert r.events.shape == want.shape == (16, 12, 5)
    assert np.array_equal(r.events, want, equal_nan=True)
    assert np.array_equal(r.event_counts, np.load(out / "event_counts.npy"))
    assert r.settings["event_names"] == ["section"]
    # Every kept record lies on the section, after the transient, in time order.
    kept = ~np.isnan(r.events[..., 0])
    assert kept.sum() == np.minimum(r.event_counts, 12).sum() > 0
    np.testing.assert_allclose(r.events[..., 4][kept], 27.0, atol=1e-9)
    assert (r.events[..., 0][kept] >= 2.0).all()
    for times, count in zip(r.events[..., 0], r.event_counts):
        assert (np.diff(times[: min(count, 12)]) > 0).all()


def test_bouncing_ball_events_have_the_closed_form_times(engine):
    """A ball dropped from y = 1 with restitution e hits the ground at t1 = sqrt(2/g), then
    every t_{k+1} = t_k + 2 e^k t1."""
    r = pf.simulate("bouncing_ball", engine=engine, progress=False, n=1, solver="tsit5",
                    tspan=(0.0, 3.0), rtol=1e-10, atol=1e-10, precision="f64", events=4)
    g, e = 9.81, 0.8
    t1 = np.sqrt(2 / g)
    want = [t1, t1 + 2 * e * t1, t1 + 2 * e * t1 + 2 * e**2 * t1]
    np.testing.assert_allclose(r.events[0, :3, 0], want, rtol=1e-7)
    assert r.events.shape == (1, 4, 4)
    assert r.settings["event_names"] == ["impact"]
    np.testing.assert_array_equal(r.events[0, :3, 1], 0.0)  # the event's id
