"""Results from Python equal the Rust engine's (through the CLI) bit for bit."""

import numpy as np
import pytest

import phaseflow as pf

# Each case: one run config, given to the CLI as a TOML file and to Python as keywords.
CASES = {
    "rk4-f32": dict(n=96, solver="rk4", tspan=[0.0, 2.0], dt=0.01, save_every=100, sweep={"rho": [0.0, 50.0]}),
    "rk4-f64": dict(n=96, solver="rk4", tspan=[0.0, 2.0], dt=0.01, save_every=100, sweep={"rho": [0.0, 50.0]}, precision="f64"),
    "tsit5-f32": dict(n=96, solver="tsit5", tspan=[0.0, 3.0], rtol=1e-5, atol=1e-5, saveat=[0.0, 0.5, 3.0], sweep={"rho": [0.0, 50.0]}),
    "tsit5-f64": dict(n=96, solver="tsit5", tspan=[0.0, 3.0], rtol=1e-9, atol=1e-9, saveat=[0.0, 0.5, 3.0], sweep={"rho": [0.0, 50.0]}, precision="f64"),
}


def toml_value(v):
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_the_cli_bit_for_bit(case, engine, cli, tmp_path):
    options = CASES[case]
    config = tmp_path / "run.toml"
    config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in options.items()))
    cli("simulate", "lorenz", "--config", config, "-o", tmp_path / "out")
    want_states = np.load(tmp_path / "out" / "states.npy")
    want_status = np.load(tmp_path / "out" / "status.npy")

    r = pf.simulate("lorenz", engine=engine, progress=False, **options)
    assert r.states.dtype == want_states.dtype == (np.float64 if "f64" in case else np.float32)
    assert r.states.shape == want_states.shape == (3, 96, 3)
    # Bit for bit: the same kernels on the same device; NaN where the CLI has NaN.
    assert np.array_equal(r.states, want_states, equal_nan=True)
    assert np.array_equal(r.status, want_status)
    assert r.times.tolist() == options.get("saveat", [0.0, 1.0, 2.0])
    if case.startswith("tsit5"):
        assert r.steps.shape == (96, 5) and r.steps.dtype == np.uint32
        assert (r.steps[:, 0] > 0).all()  # accepted steps
    else:
        assert r.steps is None


def test_arrays_as_initial_states_and_parameters(engine):
    rng = np.random.default_rng(7)
    u0 = rng.uniform(-5, 5, size=(40, 3))
    params = np.column_stack([np.full(40, 10.0), rng.uniform(0, 40, 40), np.full(40, 8 / 3)])
    r = pf.simulate("lorenz", engine=engine, progress=False, u0=u0, params=params,
                    solver="rk4", tspan=[0, 0.5], dt=0.01, precision="f64")
    assert r.n == 40  # taken from the arrays' rows
    np.testing.assert_array_equal(r.u0, u0)
    np.testing.assert_array_equal(r.params, params)
    # Each trajectory is its own problem: rerunning one row alone gives the same numbers.
    one = pf.simulate("lorenz", engine=engine, progress=False, u0=u0[7], params=params[7],
                      solver="rk4", tspan=[0, 0.5], dt=0.01, precision="f64")
    np.testing.assert_array_equal(one.states[:, 0], r.states[:, 7])


def test_rk4_matches_an_independent_reference(engine):
    """RK4 at dt = 1e-3 over [0, 1] agrees with scipy's DOP853 at tight tolerances."""
    from scipy.integrate import solve_ivp

    def lorenz(t, u, s=10.0, r=28.0, b=8 / 3):
        x, y, z = u
        return [s * (y - x), x * (r - z) - y, x * y - b * z]

    r = pf.simulate("lorenz", engine=engine, progress=False, n=1, solver="rk4",
                    tspan=[0, 1], dt=1e-3, precision="f64")
    ref = solve_ivp(lorenz, (0, 1), r.u0[0], method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1]
    # RK4's global error at dt = 1e-3 on [0, 1] is ~1e-9 relative for Lorenz.
    np.testing.assert_allclose(r.states[-1, 0], ref, rtol=1e-7)
