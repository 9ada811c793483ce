"""Mistakes raise phaseflow's exceptions, with the CLI's messages and their positions."""

import numpy as np
import pytest

import phaseflow as pf


def test_equation_mistakes_point_into_the_string():
    with pytest.raises(pf.SystemError) as e:
        pf.System.from_equations(
            states={"x": 1.0, "v": 0.0},
            parameters={"k": 2.0},
            equations="dx = v\ndv = -k * x +* v\n",
        )
    err = e.value
    assert err.file == "<equations>"
    assert (err.line, err.column) == (2, 14)  # the "*" after "+"
    assert "<equations>:2:14" in str(err)
    assert isinstance(err, pf.PhaseflowError)


def test_unknown_names_in_equations():
    with pytest.raises(pf.SystemError) as e:
        pf.System.from_equations(states={"x": 1.0}, parameters={}, equations="dx = -q * x")
    assert e.value.line == 1 and e.value.column == 7
    assert "q" in str(e.value)


def test_bad_keys_are_named(engine):
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=4, solvr="rk4")
    assert e.value.key == "solvr"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=4, solver="rk5")
    assert e.value.key == "solver"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=4, tspan=[0, 1], dt=-0.1)
    assert "dt" in str(e.value)


def test_same_message_as_the_cli(engine, cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('n = 4\nsolver = "rk4"\ntspan = [0.0, 1.0]\ndt = 0.1\nsweep = { nope = [0.0, 1.0] }\n')
    shell = cli("simulate", "lorenz", "--config", config, "-o", tmp_path / "o", check=False)
    assert shell.returncode != 0
    with pytest.raises(pf.PhaseflowError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=4, solver="rk4", tspan=[0.0, 1.0], dt=0.1,
                    sweep={"nope": [0.0, 1.0]})
    # The CLI adds its "error: " prefix and the config file's name; the sentence is the same.
    assert str(e.value).splitlines()[0].split(": ", 1)[-1] in shell.stderr


def test_bad_arrays(engine):
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, u0=np.zeros((2, 2, 3)))
    assert e.value.key == "u0"
    bad = np.ones((3, 3))
    bad[1, 2] = np.nan
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, params=bad)
    assert e.value.key == "params" and "params[1, 2]" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, u0=np.zeros((4, 2)))  # lorenz has 3 states
    assert e.value.key == "u0"
    with pytest.raises(pf.SpecError) as e:
        engine.submit("lorenz", n=4, out="somewhere")  # a job returns arrays; out= is simulate's
    assert e.value.key == "out" and "phaseflow.simulate(..., out=DIR)" in str(e.value)


def test_unknown_systems():
    with pytest.raises(pf.PhaseflowError, match="lorentz"):
        pf.System.builtin("lorentz")
    with pytest.raises(pf.SystemError) as e:
        pf.System.from_file("/nonexistent/system.toml")
    # A file that cannot be read is still named by .file (no line: no text to point into).
    assert e.value.file == "/nonexistent/system.toml" and e.value.line is None


def test_non_finite_and_deep_keywords(engine):
    with pytest.raises(pf.SpecError):
        pf.simulate("lorenz", engine=engine, progress=False, n=4, dt=float("nan"))
    deep = [0.0]
    for _ in range(100):
        deep = [deep]
    with pytest.raises(pf.SpecError):
        pf.simulate("lorenz", engine=engine, progress=False, n=4, tspan=deep)


def test_found_by_review(engine):
    """Each of these once crashed, panicked or said something wrong."""
    with pytest.raises(ValueError, match="NaN"):
        engine.submit("lorenz", n=10, solver="rk4", tspan=[0, 0.1], dt=0.01).wait(float("nan"))
    with pytest.raises(pf.SpecError) as e:
        pf.Engine(runners=10**6)
    assert e.value.key == "runners"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=5, solver="tsit5", saveat=[])
    assert e.value.key == "saveat"
    for n in (-5, "junk", 2.5):
        with pytest.raises(pf.SpecError) as e:
            pf.simulate("lorenz", engine=engine, progress=False, u0=np.zeros((4, 3)), n=n, solver="rk4", dt=0.1)
        assert e.value.key == "n"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, n=5, precision=np.float64)
    assert e.value.key == "precision"
    with pytest.raises(pf.SpecError) as e:
        pf.simulate("lorenz", engine=engine, progress=False, u0="abc")
    assert e.value.key == "u0"
    # Keys whose output the package does not hand back are refused, never silently dropped.
    for key, value, use in (("quantiles", [0.5], "phaseflow.monte_carlo"), ("outputs", ["montecarlo"], "out=DIR")):
        with pytest.raises(pf.SpecError) as e:
            pf.simulate("lorenz", engine=engine, progress=False, n=4, **{key: value})
        assert e.value.key == key and use in str(e.value)


def test_u0_as_the_run_configs_table(engine):
    r = pf.simulate("lorenz", engine=engine, progress=False, n=64, seed=3, solver="rk4", tspan=[0, 0.1], dt=0.01,
                    u0={"uniform": {"x": [-1.0, 1.0]}})
    assert r.u0[:, 0].min() >= -1 and r.u0[:, 0].max() <= 1 and np.unique(r.u0[:, 0]).size > 32
    np.testing.assert_array_equal(r.u0[:, 1:], np.tile(r.u0[0, 1:], (64, 1)))  # y, z at defaults


def test_settings_say_what_was_resolved(engine):
    r = pf.simulate("lorenz", engine=engine, progress=False, n=2, solver="rk4")
    lorenz = pf.System.builtin("lorenz")
    assert len(r.settings["tspan"]) == 2 and r.settings["dt"] > 0
    a = pf.simulate("lorenz", engine=engine, progress=False, n=2, solver="tsit5", tspan=[0, 0.1])
    assert a.settings["rtol"] > 0 and a.settings["atol"] > 0 and a.settings["max_steps"] > 0
    assert lorenz.name == r.settings["system"]


def test_a_job_outlives_its_engines_last_reference():
    job = pf.Engine().submit("lorenz", n=1000, solver="rk4", tspan=[0, 0.5], dt=0.01)
    assert pf.Result(job).ok.all()


def test_a_failed_stiff_f32_run_says_why(engine):
    with pytest.warns(RuntimeWarning, match="precision='f64'"):
        r = pf.simulate("van_der_pol_stiff", engine=engine, progress=False, n=4, solver="rodas5p")
    assert not r.ok.any()


def test_whole_numbers_and_names_are_refused_at_their_keys(engine, tmp_path):
    """A negative or fractional count is a SpecError naming its keyword and what it takes
    (not an OverflowError); names given twice, or as a state and a parameter, are refused at
    their key (not at a line of the TOML assembled from the dicts)."""
    cases = [
        (lambda: pf.simulate("lorenz", engine=engine, n=10, tspan=(0, 1), dt=0.01, seed=-1), "seed",
         "must be a whole number, 0 or more (got -1)"),
        (lambda: pf.Engine(runners=-1), "runners", "from 1 to 64, not -1"),
        (lambda: pf.Engine(memory=0), "memory", "from 1 to"),
        (lambda: pf.simulate("lorenz", engine=engine, n=4, out=""), "out", "empty"),
        (lambda: pf.fit(np.ones((8, 1)), np.ones((8, 1)), engine=engine, seed=1.5), "seed", "not 1.5"),
        (lambda: pf.train_deeponet({"data": {}}, engine=engine, iterations=-3,
                                   train=(np.ones((4, 3)), np.ones((2, 1)), np.ones((4, 2)))),
         "iterations", "not -3"),
        (lambda: pf.System.from_equations(states={"x": 1.0}, parameters={"x": 2.0}, equations="dx = -x"),
         "parameters.x", "'x' is declared twice (as a state and as a parameter)"),
        (lambda: pf.System.from_equations(states=["x", "x"], parameters=[], equations="dx = -x"),
         "states", "listed twice"),
        (lambda: pf.System.from_equations(states="x", parameters=[], equations="dx = -x"),
         "states", "list the names"),
        (lambda: pf.System.from_equations(states=["pi"], parameters=[], equations="dpi = 1"),
         "states.pi", "'pi' is reserved"),
        (lambda: pf.System.from_equations(states=["x"], parameters={"sin": 1.0}, equations="dx = -x"),
         "parameters.sin", "built-in function"),
    ]
    for call, key, words in cases:
        with pytest.raises(pf.SpecError) as e:
            call()
        assert e.value.key == key and words in str(e.value), (key, str(e.value))
    listed = pf.System.from_equations(states=["x", "y"], parameters=("k",), equations="dx = -k*y\ndy = k*x")
    assert listed.state_defaults == {"x": 0.0, "y": 0.0} and listed.parameters == ["k"]
    a_file = tmp_path / "f.txt"
    a_file.write_text("not a directory")
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet({"data": {"validation": 0.5}}, engine=engine, out=a_file, progress=False,
                          train=(np.ones((4, 3)), np.ones((2, 1)), np.ones((4, 2))))
    assert e.value.key == "out" and "is a file" in str(e.value)
