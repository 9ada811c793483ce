"""Fitting an MLP from NumPy arrays: the CLI's `fit --data` bit for bit (weights and loss
curve), a 1-D function learned, save/load round trip, and refusals at their key."""

import numpy as np
import pytest

import phaseflow as pf

NETWORK = {"hidden": [32, 32], "features": 16, "sigma": 4.0}
TRAIN = {"steps": 300, "lr": 3e-3, "log_every": 50}


def samples(m=256):
    x = np.linspace(0.0, 1.0, m)
    return x, np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x)


def test_fit_equals_the_cli(engine, cli, tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    x, y = samples()
    np.save(tmp_path / "data.npy", np.stack([x, y], axis=1))
    config = tmp_path / "fit.toml"
    config.write_text(f'[target.data]\nfile = "{tmp_path / "data.npy"}"\n'
                      "[network]\nhidden = [32, 32]\nfeatures = 16\nsigma = 4.0\n"
                      "[train]\nsteps = 300\nlr = 3e-3\nlog_every = 50\n")
    cli("fit", "--config", config, "-q", "-o", tmp_path / "out")
    r = pf.fit(x, y, engine=engine, network=NETWORK, train=TRAIN)
    r.model.save(tmp_path / "mine.safetensors")
    want = safetensors.load_file(str(tmp_path / "out" / "model.safetensors"))
    got = safetensors.load_file(str(tmp_path / "mine.safetensors"))
    assert sorted(want) == sorted(got)
    for name in want:
        assert np.array_equal(want[name], got[name]), name
    curve = np.loadtxt(tmp_path / "out" / "loss.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(r.steps, curve[:, 0])
    np.testing.assert_array_equal(r.loss, curve[:, 1])


def test_fit_learns_and_round_trips(engine, tmp_path):
    x, y = samples()
    xt = np.linspace(0.001, 0.999, 97)
    yt = np.sin(2 * np.pi * xt) + 0.5 * np.cos(6 * np.pi * xt)
    r = pf.fit(x, y, engine=engine, test=(xt, yt), network=NETWORK, train={"steps": 1500, "lr": 3e-3})
    assert r.summary["test"]["relative_l2"] < 0.05, r.summary["test"]
    assert r.loss[-1] < r.loss[0] / 100
    p = r.predict(xt)
    assert p.shape == (97, 1)
    np.testing.assert_allclose(np.sqrt(np.mean((p[:, 0] - yt) ** 2) / np.mean(yt**2)),
                               r.summary["test"]["relative_l2"], rtol=1e-6)
    r.model.save(tmp_path / "m.safetensors")
    again = pf.MLP.load(tmp_path / "m.safetensors", engine=engine)
    np.testing.assert_array_equal(again.predict(xt.reshape(-1, 1)), p)
    assert again.parameters == r.model.parameters and again.architecture["layers"][-1] == 1


def test_refusals_name_their_key(engine):
    x, y = samples(16)
    cases = [
        (dict(x=x, y=y[:8]), "y"),
        (dict(x=np.where(x > 0.5, np.nan, x), y=y), "x"),
        (dict(x=x, y=y, network={"hiden": [8]}), "network"),
        (dict(x=x, y=y, network={"hidden": [0]}), "network.hidden"),
        (dict(x=x, y=y, train={"steps": 0}), "train.steps"),
        (dict(x=x, y=y, train={"batch": 100}), "train.batch"),
        (dict(x=x, y=y, test=(x, np.stack([y, y], axis=1))), "test"),
    ]
    for kwargs, key in cases:
        with pytest.raises(pf.SpecError) as e:
            pf.fit(engine=engine, **kwargs)
        assert e.value.key == key, (key, str(e.value))
    with pytest.raises(pf.SpecError) as e:
        pf.fit(x, y, engine=engine, test=(x,))
    assert e.value.key == "test"
    r = pf.fit(x, y, engine=engine, train={"steps": 5})
    with pytest.raises(pf.SpecError) as e:
        r.model.predict(np.ones((3, 2)))
    assert e.value.key == "x"
    # No rows: no outputs (no device work); 1-D: one input per row of this one-input network.
    assert r.model.predict(np.zeros((0, 1))).shape == (0, 1)
    np.testing.assert_array_equal(r.predict([0.25, 0.5]), r.model.predict([[0.25], [0.5]]))
