"""DeepONets from Python: training and predictions equal the CLI's, and a checkpoint saved
from Python reads back with safetensors' NumPy API under PyTorch's names."""

import pathlib
import shutil

import numpy as np
import pytest

import phaseflow as pf
from conftest import ROOT

DATA = ROOT / "tests" / "data" / "antiderivative_aligned_train.npz"


def branch_and_trunk_inputs():
    """DeepXDE's aligned layout: X = (functions [150, 100], points [100, 1]) as objects."""
    x = np.load(DATA, allow_pickle=True)["X"]
    return np.asarray(x[0], dtype=np.float64), np.asarray(x[1], dtype=np.float64)


@pytest.fixture(scope="module")
def trained(cli, tmp_path_factory):
    """A small DeepONet trained by the CLI on DeepXDE's antiderivative data (200 steps)."""
    d = tmp_path_factory.mktemp("deeponet")
    config = d / "train.toml"
    config.write_text(
        f'out = "{d / "run"}"\n[data]\ntrain = "{DATA}"\nvalidation = 0.2\n'
        "[model]\nbranch = [16]\ntrunk = [16]\nlatent = 16\nactivation = \"tanh\"\nseed = 3\n"
        "[train]\niterations = 200\nlr = 1e-3\nevaluate_every = 100\n"
    )
    cli("train", "deeponet", "--config", config)
    return d / "run" / "model.safetensors"


def test_predictions_equal_the_cli(trained, cli, engine, tmp_path):
    functions, points = branch_and_trunk_inputs()
    functions = functions[:20]
    np.save(tmp_path / "u.npy", functions)
    np.save(tmp_path / "y.npy", points)
    cli("predict", trained, "--functions", tmp_path / "u.npy", "--points", tmp_path / "y.npy",
        "-o", tmp_path / "g.npy")
    want = np.load(tmp_path / "g.npy")

    net = pf.DeepONet.load(trained, engine=engine)
    assert (net.sensors, net.dims, net.outputs) == (functions.shape[1], 1, 1)
    g = net.predict(functions, points)
    assert g.shape == (20, points.shape[0], 1) and g.dtype == np.float64
    # The CLI stores f32; the same device pass rounded once more.
    np.testing.assert_array_equal(g.astype(np.float32), want)
    # Not a constant: the network learned something of the antiderivative's shape.
    assert np.std(g) > 1e-3


def test_checkpoint_round_trip_under_pytorch_names(trained, engine, tmp_path):
    from safetensors.numpy import load_file

    net = pf.DeepONet.load(trained, engine=engine)
    weights = net.weights()
    path = tmp_path / "copy.safetensors"
    net.save(path)
    assert not (tmp_path / "copy.safetensors.partial").exists()
    tensors = load_file(str(path))
    # PyTorch's state_dict names and shapes: Linear weights are [out, in].
    assert set(tensors) == set(weights)
    assert "b" in tensors and any(k.startswith("branch.") for k in tensors)
    first = sorted(k for k in tensors if k.startswith("branch.") and k.endswith("weight"))[0]
    assert tensors[first].shape == (16, net.sensors)
    for name, w in weights.items():
        assert tensors[name].dtype == np.float32
        np.testing.assert_array_equal(tensors[name], w.astype(np.float32))
    # And phaseflow reads its own copy back to the same predictions.
    u = branch_and_trunk_inputs()[0][:3]
    y = np.linspace(0, 1, 7).reshape(-1, 1)
    again = pf.DeepONet.load(path, engine=engine)
    np.testing.assert_array_equal(again.predict(u, y), net.predict(u, y))


def test_bad_prediction_inputs(trained, engine):
    net = pf.DeepONet.load(trained, engine=engine)
    with pytest.raises(pf.SpecError, match="sensor") as e:
        net.predict(np.zeros((2, net.sensors + 1)), np.zeros((3, 1)))
    assert e.value.key == "functions"
    with pytest.raises(pf.SpecError) as e:
        net.predict(np.zeros((2, net.sensors)), np.zeros((3, 2)))
    assert e.value.key == "points"
    bad = np.zeros((2, net.sensors))
    bad[1, 4] = np.inf
    with pytest.raises(pf.SpecError) as e:
        net.predict(bad, np.zeros((3, 1)))
    assert e.value.key == "functions"
    with pytest.raises(pf.PhaseflowError):
        pf.DeepONet.load(DATA, engine=engine)  # an .npz, not a checkpoint


def test_array_likes_are_accepted(trained, engine):
    net = pf.DeepONet.load(trained, engine=engine)
    u = np.arange(2 * net.sensors, dtype=np.int32).reshape(2, -1) / 100  # f64 after /
    y = [[0.0], [0.5], [1.0]]  # a list
    g = net.predict(u.astype(np.float32), y)
    np.testing.assert_array_equal(g, net.predict(u, np.asarray(y)))
    # 1-D: one function; points of the network's one-dimensional domain.
    np.testing.assert_array_equal(net.predict(u, [0.0, 0.5, 1.0]), g)
    np.testing.assert_array_equal(net.predict(u[1], y), g[1:])
    with pytest.raises(pf.SpecError) as e:
        net.predict(u, np.zeros((3, 1, 1)))
    assert e.value.key == "points" and "2-D" in str(e.value)


def test_training_from_python_equals_the_cli(trained, engine, tmp_path):
    """The same config trains to the same weights from Python as from the CLI (the same
    loop, seeds and device), and the run leaves the CLI's files."""
    from safetensors.numpy import load_file

    config = trained.parent.parent / "train.toml"
    seen = []
    t = pf.train_deeponet(config, engine=engine, out=tmp_path / "py", callback=seen.append, progress=False)
    assert [r["step"] for r in seen] == [100, 200] and t.history["step"].tolist() == [100, 200]
    assert set(seen[0]) == {"step", "batch_mse", "validation_mse", "validation_mean_rel_l2"}
    assert t.summary["selected_on"] == "validation" and t.summary["iterations"] == 200
    names = sorted(pathlib.Path(p).name for p in t.written)
    assert names == ["history.csv", "model.safetensors", "state.safetensors", "summary.json"]
    mine, cli_weights = load_file(str(tmp_path / "py" / "model.safetensors")), load_file(str(trained))
    assert set(mine) == set(cli_weights)
    for name in mine:
        np.testing.assert_array_equal(mine[name], cli_weights[name])
    # The history matches the CLI's history.csv row for row.
    rows = np.genfromtxt(trained.parent / "history.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(rows["step"], t.history["step"])
    np.testing.assert_allclose(rows["validation_mean_rel_l2"], t.history["validation_mean_rel_l2"], rtol=1e-6)
    # A second run into the same directory is refused unless asked to overwrite.
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(config, engine=engine, out=tmp_path / "py", progress=False)
    assert e.value.key == "out"


def test_a_resumed_run_takes_the_steps_of_the_uninterrupted_one(trained, engine, tmp_path):
    """100 steps, then resume=... up to 200: the same weights as the CLI's straight run of
    200 steps, written back into the first run's directory, with the whole history. Resuming
    a finished run, with out naming another directory, or from nothing is refused."""
    from safetensors.numpy import load_file

    config = trained.parent.parent / "train.toml"
    run = tmp_path / "run"
    first = pf.train_deeponet(config, engine=engine, out=run, iterations=100, progress=False)
    assert first.history["step"].tolist() == [100]
    t = pf.train_deeponet(config, engine=engine, resume=run, progress=False)
    assert t.history["step"].tolist() == [100, 200]
    assert t.summary["resumed_from"] == str(run) and t.summary["iterations"] == 200
    assert sorted(pathlib.Path(p).parent for p in t.written) == [run] * 4
    mine, straight = load_file(str(run / "model.safetensors")), load_file(str(trained))
    for name in straight:
        np.testing.assert_array_equal(mine[name], straight[name])
    rows = np.genfromtxt(trained.parent / "history.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(rows["validation_mean_rel_l2"], t.history["validation_mean_rel_l2"])
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(config, engine=engine, resume=run, progress=False)
    assert e.value.key == "resume" and "already taken 200 steps" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(config, engine=engine, resume=run, out=tmp_path / "elsewhere", iterations=300,
                          progress=False)
    assert e.value.key == "out"
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(config, engine=engine, resume=tmp_path / "nothing", progress=False)
    assert e.value.key == "resume" and "state.safetensors" in str(e.value)
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(config, engine=engine, resume=run, iterations=300, overwrite=True, progress=False)
    assert e.value.key == "overwrite"
    # Settings that change the steps are refused (here the sampler's seed).
    changed = tmp_path / "changed.toml"
    changed.write_text(config.read_text().replace("evaluate_every = 100", "evaluate_every = 100\nseed = 4"))
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet(changed, engine=engine, resume=run, iterations=300, progress=False)
    assert e.value.key == "resume" and "other settings or data" in str(e.value)
    # Going on from Python in a directory the CLI wrote removes the CLI's pictures of the
    # earlier network (Python draws none).
    cli_run = tmp_path / "cli-run"
    shutil.copytree(trained.parent, cli_run)
    assert (cli_run / "loss.png").exists()
    pf.train_deeponet(config, engine=engine, resume=cli_run, iterations=300, progress=False)
    assert not (cli_run / "loss.png").exists() and not (cli_run / "prediction.png").exists()


def test_training_from_arrays(engine):
    functions, points = branch_and_trunk_inputs()
    values = np.load(DATA, allow_pickle=True)["y"]
    config = {"data": {"validation": 0.2}, "model": {"branch": [16], "trunk": [16], "latent": 16, "seed": 5},
              "train": {"iterations": 300, "evaluate_every": 100}}
    t = pf.train_deeponet(config, engine=engine, train=(functions, points, values), progress=False)
    assert t.written == [] and t.summary["data"]["train_size"] == {"functions": 120, "points": 100}
    # It learned: the held-out error falls, and the model predicts like its own history says.
    rel = t.history["validation_mean_rel_l2"]
    assert rel[-1] < rel[0] and rel.min() < 0.5
    g = t.model.predict(functions[120:], points)[:, :, 0]
    truth = values[120:]
    mean_rel = np.mean(np.linalg.norm(g - truth, axis=1) / np.linalg.norm(truth, axis=1))
    np.testing.assert_allclose(mean_rel, rel.min(), rtol=1e-3)


def test_several_outputs_report_each_ones_error(engine):
    """With two outputs, each output's error is reported beside the joint one (history and
    callback), and it is what the model's predictions give."""
    functions, points = branch_and_trunk_inputs()
    y = np.load(DATA, allow_pickle=True)["y"]
    values = np.stack([y, 300.0 + 0.1 * y], axis=-1)  # a small output beside a large one
    config = {"data": {"validation": 0.2}, "model": {"branch": [16], "trunk": [16], "latent": 16, "seed": 5},
              "train": {"iterations": 200, "evaluate_every": 100}}
    seen = []
    t = pf.train_deeponet(config, engine=engine, train=(functions, points, values), callback=seen.append,
                          progress=False)
    each = t.history["validation_mean_rel_l2_per_output"]
    assert each.shape == (2, 2) and len(seen[-1]["validation_mean_rel_l2_per_output"]) == 2
    np.testing.assert_array_equal(each[-1], seen[-1]["validation_mean_rel_l2_per_output"])
    g = t.model.predict(functions[120:], points)
    best = int(np.argmin(t.history["validation_mean_rel_l2"]))
    for k in range(2):
        truth = values[120:, :, k]
        rel = np.mean(np.linalg.norm(g[:, :, k] - truth, axis=1) / np.linalg.norm(truth, axis=1))
        np.testing.assert_allclose(rel, each[best, k], rtol=1e-3)


def test_training_config_mistakes(engine):
    functions, points = branch_and_trunk_inputs()
    values = np.load(DATA, allow_pickle=True)["y"]
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet({"data": {"validation": 0.2}, "train": {"lr": -1.0}}, engine=engine,
                          train=(functions, points, values), progress=False)
    assert e.value.key == "train.lr"
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet({"data": {"validation": 0.2}, "modle": {}}, engine=engine,
                          train=(functions, points, values), progress=False)
    assert e.value.key == "modle"
    with pytest.raises(pf.SpecError) as e:
        pf.train_deeponet({"data": {"validation": 0.2}}, engine=engine,
                          train=(functions, points, values[:, :50]), progress=False)
    assert e.value.key == "train" and "shape" in str(e.value)
    with pytest.raises(pf.SpecError):
        pf.train_deeponet({"data": {"train": "/nonexistent.npz", "validation": 0.2}}, engine=engine, progress=False)


def test_a_prediction_too_large_for_the_device_is_refused_up_front(trained, engine):
    net = pf.DeepONet.load(trained, engine=engine)
    u, y = np.zeros((30_000, net.sensors)), np.zeros((30_000, 1))  # 3.6 GB of f32 results
    with pytest.raises(pf.SpecError, match="predict fewer"):
        net.predict(u, y)
    # Nothing is left behind for the next call.
    assert net.predict(u[:2], y[:3]).shape == (2, 3, 1)


GENERATE = {"system": "antiderivative", "functions": 64, "test_functions": 8, "seed": 3, "points": 20,
            "steps_per_point": 10, "inputs": {"u": {"length_scale": 0.2}}}


def test_generated_data_equals_the_clis(cli, engine, tmp_path):
    config = tmp_path / "gen.toml"
    config.write_text(
        'system = "antiderivative"\nfunctions = 64\ntest_functions = 8\nseed = 3\npoints = 20\n'
        'steps_per_point = 10\n[inputs.u]\nlength_scale = 0.2\n'
    )
    cli("generate", "--config", config, "-o", tmp_path / "data")
    want = np.load(tmp_path / "data" / "train.npz")
    d = pf.generate_deeponet_data(GENERATE, engine=engine)
    assert d["layout"] == "aligned"
    functions, points, values = d["train"]
    assert functions.shape == (64, 100) and points.shape == (20, 1) and values.shape == (64, 20, 1)
    np.testing.assert_array_equal(functions, want["functions"])
    np.testing.assert_array_equal(points, want["points"])
    np.testing.assert_array_equal(values, want["values"].reshape(values.shape))
    test = np.load(tmp_path / "data" / "test.npz")
    np.testing.assert_array_equal(d["test"][2], test["values"].reshape(d["test"][2].shape))
    # The same config from its file gives the same data.
    again = pf.generate_deeponet_data(config, engine=engine)
    np.testing.assert_array_equal(again["train"][2], values)


def test_generated_data_is_the_antiderivative(engine):
    """G(u)(y) = ∫_0^y u: checked against the trapezoid rule on the sensor values."""
    d = pf.generate_deeponet_data(dict(GENERATE, points=100), engine=engine)
    functions, points, values = d["train"]
    sensors = np.linspace(0, 1, functions.shape[1])
    exact = np.concatenate([np.zeros((64, 1)), np.cumsum((functions[:, 1:] + functions[:, :-1]) / 2 * np.diff(sensors), axis=1)], axis=1)
    np.testing.assert_allclose(points[:, 0], sensors)
    # The input is linear between sensors, so the trapezoid rule is exact up to RK4 and f32.
    np.testing.assert_allclose(values[:, :, 0], exact, atol=1e-4)


def test_unaligned_generation_and_an_all_python_round_trip(engine, tmp_path):
    d = pf.generate_deeponet_data(dict(GENERATE, points_per_function=2), engine=engine)
    assert d["layout"] == "unaligned"
    sf, sp, sv = d["train"]
    assert sf.shape == (128, 100) and sp.shape == (128, 1) and sv.shape == (128, 1)
    aligned = pf.generate_deeponet_data(dict(GENERATE, functions=256), engine=engine)
    t = pf.train_deeponet({"data": {}, "model": {"branch": [32], "trunk": [32], "latent": 32},
                           "train": {"iterations": 400, "evaluate_every": 200}},
                          engine=engine, train=aligned["train"], test=aligned["test"], out=tmp_path / "m",
                          progress=False)
    assert t.summary["test_mean_relative_l2"] < 1.0
    net = pf.DeepONet.load(tmp_path / "m" / "model.safetensors", engine=engine)
    u, y, _ = aligned["test"]
    np.testing.assert_array_equal(net.predict(u, y), t.model.predict(u, y))


def test_unaligned_arrays_train_as_the_cli_trains_their_file(cli, engine, tmp_path):
    """Unaligned samples as a dict {"u", "y", "g"} train to the same weights as the CLI
    trains the .npz they came from (the same loop, split and seeds); shape and key mistakes
    name the argument."""
    from safetensors.numpy import load_file

    gen = tmp_path / "gen.toml"
    gen.write_text('system = "antiderivative"\nfunctions = 64\ntest_functions = 8\nseed = 3\npoints = 20\n'
                   'points_per_function = 4\nsteps_per_point = 10\n[inputs.u]\nlength_scale = 0.2\n')
    cli("generate", "--config", gen, "-o", tmp_path / "data")
    config = tmp_path / "train.toml"
    config.write_text(f'out = "{tmp_path / "cli"}"\n[data]\ntrain = "{tmp_path / "data" / "train.npz"}"\n'
                      "validation = 0.25\n[model]\nbranch = [16]\ntrunk = [16]\nlatent = 16\nseed = 3\n"
                      "[train]\niterations = 100\nevaluate_every = 50\nsamples_per_batch = 64\n")
    cli("train", "deeponet", "--config", config)
    d = np.load(tmp_path / "data" / "train.npz")
    samples = {"u": d["sample_functions"], "y": d["sample_points"], "g": d["sample_values"][:, 0]}
    settings = {"data": {"validation": 0.25}, "model": {"branch": [16], "trunk": [16], "latent": 16, "seed": 3},
                "train": {"iterations": 100, "evaluate_every": 50, "samples_per_batch": 64}}
    t = pf.train_deeponet(settings, engine=engine, train=samples, out=tmp_path / "py", progress=False)
    mine, theirs = load_file(str(tmp_path / "py" / "model.safetensors")), load_file(str(tmp_path / "cli" / "model.safetensors"))
    assert set(mine) == set(theirs)
    for name in mine:
        np.testing.assert_array_equal(mine[name], theirs[name])
    assert t.history["step"].tolist() == [50, 100]
    for bad, words in [(dict(samples, g=samples["g"][:10]), "samples"), (dict(samples, v=1), "unknown key 'v'"),
                       ({"u": samples["u"], "y": samples["y"]}, "no 'g'")]:
        with pytest.raises(pf.SpecError) as e:
            pf.train_deeponet(settings, engine=engine, train=bad, progress=False)
        assert e.value.key == "train" and words in str(e.value)
