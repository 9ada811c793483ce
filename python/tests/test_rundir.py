"""simulate(..., out=DIR) from Python: the CLI's run directory, file for file, streamed with
the optional outputs; overwrite, refusals, and a run directory the CLI resumes."""

import json

import numpy as np
import pytest

import phaseflow as pf

SPEC = dict(n=500, tspan=(0, 1), dt=0.01, save_every=25, sweep={"rho": [10, 40]})


def test_run_directory_equals_the_cli(engine, cli, tmp_path):
    cli("simulate", "lorenz", "-n", "500", "--tspan", "0:1", "--dt", "0.01", "--save-every", "25",
        "--sweep", "rho=10:40", "--outputs", "states,montecarlo,trajectory-stats", "--quantiles", "0.5",
        "-q", "-o", tmp_path / "cli")
    r = pf.simulate("lorenz", engine=engine, out=tmp_path / "py", outputs=["states", "montecarlo", "trajectory-stats"],
                    quantiles=[0.5], **SPEC)
    assert isinstance(r, pf.RunDir) and r.complete
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert sorted(p.name for p in r.path.iterdir()) == cli_files
    for name in r.files:
        want = np.load(tmp_path / "cli" / f"{name}.npy")
        assert np.array_equal(r[name], want, equal_nan=True), name
    assert r.states.shape == (5, 500, 3) and r["mc_mean"].shape == (5, 3)
    run = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert r.summary["state"] == run["state"] == "complete"
    assert r.summary["fingerprint"] == run["fingerprint"]
    assert pf.RunDir(r.path).summary["n"] == 500


def test_overwrite_and_refusals(engine, tmp_path):
    out = tmp_path / "run"
    pf.simulate("lorenz", engine=engine, out=out, **SPEC)
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, out=out, **SPEC)
    assert e.value.key == "out" and "overwrite" in str(e.value)
    again = pf.simulate("lorenz", engine=engine, out=out, overwrite=True, **dict(SPEC, n=20))
    assert again.states.shape[1] == 20
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, out=tmp_path / "x", params=np.ones((4, 2)), n=4)
    assert e.value.key == "params" and "the params array" in str(e.value) and "/tmp" not in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, out=tmp_path / "x", params=np.ones((4, 3)),
                    params_file=tmp_path / "p.npy", n=4)
    assert e.value.key == "params"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, overwrite=True, n=4)
    assert e.value.key == "overwrite"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, outputs=["montecarlo"], n=4)
    assert e.value.key == "outputs"
    with pytest.raises(KeyError):
        again["mc_mean"]
    with pytest.raises(pf.SpecError) as e:
        pf.RunDir(tmp_path)  # holds no run.json
    assert e.value.key == "path"


def test_the_cli_resumes_a_python_run(engine, cli, tmp_path):
    """A run directory written from Python is the CLI's: marked interrupted by hand (as a
    killed run leaves it), `phaseflow simulate --resume` finishes it to the same states."""
    out = tmp_path / "run"
    full = pf.simulate("lorenz", engine=engine, out=out, **SPEC)
    states = np.array(full.states)
    run = json.loads((out / "run.json").read_text())
    run.update(state="interrupted", complete=False, trajectories_done=0)
    (out / "run.json").write_text(json.dumps(run))
    cli("simulate", "--resume", out, "-q")
    np.testing.assert_array_equal(np.load(out / "states.npy"), states)


def test_resume_from_python(engine, tmp_path):
    """A run marked interrupted after 200 of 500 trajectories (as a killed run leaves it)
    is continued by pf.resume to the states of the whole run; a complete one is refused."""
    out = tmp_path / "run"
    full = pf.simulate("lorenz", engine=engine, out=out, **SPEC)
    states = np.array(full.states)
    with pytest.raises(pf.SpecError) as e:
        pf.resume(out, engine=engine)
    assert e.value.key == "path" and "already complete" in str(e.value)
    run = json.loads((out / "run.json").read_text())
    run.update(state="interrupted", complete=False, trajectories_done=200)
    (out / "run.json").write_text(json.dumps(run))
    r = pf.resume(out, engine=engine)
    assert r.complete and r.summary["trajectories_done"] == 500
    np.testing.assert_array_equal(np.array(r.states), states)


def test_arrays_and_systems_built_in_python_go_to_a_run_directory(engine, tmp_path):
    """u0 and params as arrays, and a System built from equations (even one named like a
    built-in), run into out=DIR as they run in memory; the directory keeps copies of them
    (run.json names its own files), so pf.resume needs nothing else."""
    rng = np.random.default_rng(7)
    u0 = rng.normal(size=(60, 3))
    params = np.column_stack([np.full(60, 10.0), rng.uniform(0, 30, 60), np.full(60, 8 / 3)])
    spec = dict(n=60, tspan=(0, 1), dt=0.01, save_every=10)
    memory = pf.simulate("lorenz", engine=engine, u0=u0, params=params, progress=False, **spec)
    r = pf.simulate("lorenz", engine=engine, u0=u0, params=params, out=tmp_path / "arrays", **spec)
    np.testing.assert_array_equal(np.array(r.states), memory.states)
    np.testing.assert_array_equal(np.load(tmp_path / "arrays" / "u0.npy"), u0)
    run = json.loads((tmp_path / "arrays" / "run.json").read_text())
    assert run["spec"]["params_file"] == "params.npy" and run["spec"]["u0"]["file"] == "u0.npy"
    # Not the built-in Lorenz, though it is called that.
    decay = pf.System.from_equations(states=["x"], parameters={"k": 2.0}, equations="dx = -k*x", name="lorenz")
    d = pf.simulate(decay, engine=engine, out=tmp_path / "decay", u0=np.ones((5, 1)), **dict(spec, n=5))
    np.testing.assert_allclose(np.array(d.states)[-1, :, 0], np.exp(-2.0), rtol=1e-4)
    assert "dx = -k*x" in (tmp_path / "decay" / "system.toml").read_text()
    run = json.loads((tmp_path / "decay" / "run.json").read_text())
    run.update(state="interrupted", complete=False, trajectories_done=2)
    (tmp_path / "decay" / "run.json").write_text(json.dumps(run))
    resumed = pf.resume(tmp_path / "decay", engine=engine)
    np.testing.assert_array_equal(np.array(resumed.states), np.array(d.states))
    # A file the caller named keeps its own key: only handed-over arrays are renamed.
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, out=tmp_path / "p", params_file=tmp_path / "nope.npy",
                    u0=u0, **spec)
    assert e.value.key == "params_file" and "nope.npy" in str(e.value)
