"""Fitting an MLP from NumPy arrays: the CLI's `fit --data` bit for bit (weights and loss
curve), a 1-D function learned, save/load round trip, and refusals at their key."""

import json

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


def png(path, pixels):
    """A grey 8-bit PNG of `pixels` [h, w] (uint8), written with zlib alone."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    h, w = pixels.shape
    raw = b"".join(b"\x00" + bytes(row) for row in pixels.astype(np.uint8))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_expressions_and_images_fit_as_the_cli_fits_them(engine, cli, tmp_path):
    """expr= and image= make the CLI's samples (fit --expr, --image): the same weights to
    the bit and the same test scores; mistakes in the expression point into it."""
    safetensors = pytest.importorskip("safetensors.numpy")
    train = {"steps": 100, "log_every": 50}
    cli("fit", "--expr", "sin(2*pi*x)*y", "--inputs", "2", "--domain", "-1:1", "--points", "24",
        "--steps", "100", "--log-every", "50", "-q", "-o", tmp_path / "expr")
    r = pf.fit(expr="sin(2*pi*x)*y", inputs=2, domain=(-1, 1), points=24, train=train, engine=engine)
    r.model.save(tmp_path / "expr.safetensors")
    want = safetensors.load_file(str(tmp_path / "expr" / "model.safetensors"))
    got = safetensors.load_file(str(tmp_path / "expr.safetensors"))
    for name in want:
        assert np.array_equal(want[name], got[name]), name
    assert "576 samples" in r.summary["what"] and r.summary["test"]["mse"] < 1.0

    yy, xx = np.mgrid[0:24, 0:32]
    png(tmp_path / "img.png", 127.5 + 127.5 * np.sin(xx / 5.0) * np.cos(yy / 7.0))
    cli("fit", "--image", tmp_path / "img.png", "--holdout", "--hidden", "32,32", "--steps", "100",
        "--log-every", "50", "-q", "--json", "-o", tmp_path / "img")
    r = pf.fit(image=tmp_path / "img.png", holdout=True, network={"hidden": [32, 32]}, train=train,
               engine=engine)
    r.model.save(tmp_path / "img.safetensors")
    want = safetensors.load_file(str(tmp_path / "img" / "model.safetensors"))
    got = safetensors.load_file(str(tmp_path / "img.safetensors"))
    for name in want:
        assert np.array_equal(want[name], got[name]), name
    assert r.model.predict(np.array([[0.5, 0.5]])).shape == (1, 1)
    cli_summary = json.loads((tmp_path / "img" / "summary.json").read_text())
    np.testing.assert_allclose(r.summary["test"]["psnr_db"], cli_summary["test"]["psnr_db"], rtol=1e-9)

    with pytest.raises(pf.SystemError) as e:
        pf.fit(expr="sin(2*pi*x", engine=engine)
    assert e.value.file == "<expr>" and e.value.line == 1
    for kwargs, key in [
        (dict(expr="x", inputs=4), "inputs"),
        (dict(expr="x", domain=(1, 0)), "domain"),
        (dict(expr="x", points=1), "points"),
        (dict(expr="x", image=tmp_path / "img.png"), "x"),
        (dict(), "x"),
        (dict(image=tmp_path / "img.png", points=10), "points"),
        (dict(expr="x", holdout=True), "holdout"),
        (dict(image=tmp_path / "missing.png"), "image"),
        (dict(expr="x*y*z", inputs=3, points=240), None),  # past one storage binding
    ]:
        with pytest.raises(pf.SpecError) as e:
            pf.fit(engine=engine, train=train, **kwargs)
        assert e.value.key == key, (kwargs, e.value.key, str(e.value))
