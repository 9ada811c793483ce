"""Lyapunov spectra, orbit diagrams and basins from Python: the arrays the CLI writes, bit
for bit, from the same config, and what the analyses must find."""

import numpy as np
import pytest

import phaseflow as pf

DOUBLE_WELL = (
    'name = "double_well"\nstates = { x = 0.0, v = 0.0 }\nparameters = { delta = 0.2 }\n'
    'tspan = [0.0, 100.0]\nequations = """\ndx = v\ndv = -delta*v + x - x^3\n"""\n'
)


def test_lyapunov_equals_the_cli(engine, cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('system = "lorenz"\nn = 4\ndt = 0.01\ntransient = 1\n'
                      "[sweep]\nrho = [20, 40]\n[lyapunov]\nk = 2\ntime = 2\nrenorm = 0.1\n")
    cli("lyapunov", "--config", config, "-o", tmp_path / "out")
    r = pf.lyapunov("lorenz", engine=engine, progress=False, n=4, dt=0.01, transient=1, sweep={"rho": [20, 40]},
                    lyapunov={"k": 2, "time": 2, "renorm": 0.1})
    for attr, file in [("exponents", "lyapunov"), ("errors", "lyapunov_error"), ("status", "status"),
                       ("params", "params"), ("final", "final")]:
        want = np.load(tmp_path / "out" / f"{file}.npy")
        got = getattr(r, attr)
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), attr
    assert r.summary["k"] == 2 and r.summary["n"] == 4


def test_lyapunov_of_the_standard_lorenz_system(engine):
    """The largest exponent of Lorenz at (10, 28, 8/3) is 0.9056 (Sprott); the sum of all
    three is the trace -(sigma + 1 + beta) = -13.667. Over 200 time units the estimate's
    spread is a few percent."""
    r = pf.lyapunov("lorenz", engine=engine, progress=False, n=4, dt=0.01, transient=20, precision="f64",
                    u0=np.random.default_rng(0).normal(1.0, 0.1, (4, 3)), lyapunov={"time": 200})
    assert (r.status == 1).all()
    np.testing.assert_allclose(r.exponents[:, 0], 0.9056, rtol=0.06)
    np.testing.assert_allclose(r.exponents.sum(axis=1), -(10 + 1 + 8 / 3), rtol=1e-3)


def test_orbit_diagram_equals_the_cli_and_finds_the_period(engine, cli, tmp_path):
    """Rössler's maxima of x: period 1 at c = 2.5 and period 2 at c = 3.5 (the first
    doubling is near c = 2.83 with a = b = 0.2)."""
    options = dict(transient=500, precision="f64", rtol=1e-8, atol=1e-8, points=32,
                   sweep={"c": [2.5, 3.5, 2]}, orbit={"maxima": "x", "time": 300})
    r = pf.orbit_diagram("rossler", engine=engine, progress=False, **options)
    assert r.orbit.shape == (2, 32) and list(r.distinct) == [1, 2]
    np.testing.assert_array_equal(r.params[:, 2], [2.5, 3.5])
    config = tmp_path / "orbit.toml"
    config.write_text('system = "rossler"\ntransient = 500\nprecision = "f64"\nrtol = 1e-8\natol = 1e-8\n'
                      'points = 32\n[sweep]\nc = [2.5, 3.5, 2]\n[orbit]\nmaxima = "x"\ntime = 300\n')
    cli("orbit-diagram", "--config", config, "-q", "-o", tmp_path / "out")
    for name in ["orbit", "counts", "distinct", "params", "status"]:
        want = np.load(tmp_path / "out" / f"{name}.npy")
        assert np.array_equal(getattr(r, name), want, equal_nan=True), name


def test_basins_equal_the_cli(engine, cli, tmp_path):
    system = tmp_path / "double_well.toml"
    system.write_text(DOUBLE_WELL)
    config = tmp_path / "basins.toml"
    config.write_text(f'system = "{system}"\ntspan = [0, 100]\n'
                      "[basins]\nwindow = 10\n[basins.grid]\nx = [-2, 2, 8]\nv = [-1, 1, 6]\n")
    cli("basins", "--config", config, "-q", "-o", tmp_path / "out")
    r = pf.basins(system, engine=engine, progress=False, tspan=[0, 100],
                  basins={"window": 10, "grid": {"x": [-2, 2, 8], "v": [-1, 1, 6]}})
    assert r.basins.shape == (6, 8) and r.basins.dtype == np.int32
    for name in ["basins", "attractors", "features"]:
        assert np.array_equal(getattr(r, name), np.load(tmp_path / "out" / f"{name}.npy")), name
    # Two attractors, the wells at x = -1 and x = +1, at rest.
    np.testing.assert_allclose(np.sort(r.attractors[:, 0]), [-1.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(r.attractors[:, 1], 0.0, atol=1e-3)


def test_analysis_jobs_cancel_and_errors_name_their_key(engine):
    job = engine.submit_lyapunov("lorenz", n=64, dt=1e-3, lyapunov={"time": 1e4})
    job.cancel()
    with pytest.raises(pf.CancelledError):
        job.result()
    with pytest.raises(pf.SpecError) as e:
        pf.lyapunov("lorenz", engine=engine, progress=False, n=2, lyapunov={"k": 9})
    assert e.value.key == "lyapunov.k" and "3 states" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.lyapunov("lorenz", engine=engine, progress=False, orbit={})
    assert e.value.key == "orbit" and "orbit_diagram" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, lyapunov={"k": 2})
    assert e.value.key == "lyapunov" and "phaseflow.lyapunov" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        engine.submit_basins("lorenz", n=4, basins={"grid": {"x": [-1, 1, 4], "y": [-1, 1, 4]}})
    assert e.value.key == "n"
    # Arrays of initial states or parameters are refused by name: the grid gives the states.
    for key in ("u0", "params"):
        with pytest.raises(pf.SpecError) as e:
            pf.basins("lorenz", engine=engine, progress=False, basins={"grid": {"x": [-1, 1, 4], "y": [-1, 1, 4]}},
                      **{key: np.ones((16, 3))})
        assert e.value.key == key and "basins.grid" in str(e.value)
