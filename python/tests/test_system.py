"""Systems from Python: built-ins, files and equations, and their Jacobians."""

import numpy as np
import pytest

import phaseflow as pf

LORENZ = "dx = sigma * (y - x)\ndy = x * (rho - z) - y\ndz = x * y - beta * z\n"


def test_builtin_lorenz():
    s = pf.System.builtin("lorenz")
    assert s.states == ["x", "y", "z"]
    assert s.parameters == ["sigma", "rho", "beta"]
    assert s.parameter_defaults["rho"] == 28.0
    assert not s.stochastic
    assert "lorenz" in pf.systems()


def test_from_equations_runs_like_the_builtin(engine):
    builtin = pf.System.builtin("lorenz")
    mine = pf.System.from_equations(
        states=builtin.state_defaults, parameters=builtin.parameter_defaults, equations=LORENZ, name="mine"
    )
    assert mine.name == "mine" and mine.states == builtin.states
    kw = dict(engine=engine, progress=False, n=16, solver="rk4", tspan=[0, 1], dt=0.01,
              sweep={"rho": [10.0, 30.0]}, precision="f64")
    a = pf.simulate(builtin, **kw)
    b = pf.simulate(mine, **kw)
    np.testing.assert_array_equal(a.states, b.states)


def test_from_file(tmp_path, engine):
    path = tmp_path / "decay.toml"
    path.write_text('name = "decay"\nstates = { x = 1.0 }\nparameters = { k = 0.5 }\nequations = "dx = -k * x"\n')
    s = pf.System.from_file(path)
    assert s.name == "decay" and s.parameters == ["k"]
    r = pf.simulate(s, engine=engine, progress=False, n=1, solver="rk4", tspan=[0, 2], dt=0.01, precision="f64")
    np.testing.assert_allclose(r.states[-1, 0, 0], np.exp(-1.0), rtol=1e-9)
    # A path works wherever a system does.
    r2 = pf.simulate(path, engine=engine, progress=False, n=1, solver="rk4", tspan=[0, 2], dt=0.01, precision="f64")
    np.testing.assert_array_equal(r.states, r2.states)


def test_jacobian_entries():
    j = pf.System.builtin("lorenz").jacobian()
    entries = j["entries"]
    # Keyed (equation's state, state): ∂(dx)/∂x = -sigma; ∂(dx)/∂z is structurally zero.
    assert entries[("x", "x")] == "-sigma"
    assert entries[("y", "x")] == "rho - z"
    assert "beta" in entries[("z", "z")]
    assert ("x", "z") not in entries
    assert len(entries) == 8  # x: x,y; y: x,y,z; z: x,y,z


def test_from_equations_names_the_bad_default():
    """A bad name or default in states/parameters is named by its argument, not by a line
    of the system text assembled from them."""
    for states, key in [({"x": "abc"}, "states.x"), ({"x": True}, "states.x"), ({"1x": 1.0}, "states")]:
        with pytest.raises(pf.SpecError) as e:
            pf.System.from_equations(states=states, parameters={"k": 1.0}, equations="dx = -k*x")
        assert e.value.key == key and "<from_equations>" not in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.System.from_equations(states={"x": 1.0}, parameters={"k": float("inf")}, equations="dx = -k*x")
    assert e.value.key == "parameters.k"
