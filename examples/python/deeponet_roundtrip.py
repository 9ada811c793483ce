"""A DeepONet round trip in Python: data generated on the device, a network trained on it,
written as a checkpoint, loaded back, asked for an antiderivative it never saw, saved
again and read with safetensors' NumPy API under PyTorch's names.

    pip install ./python safetensors
    python examples/python/deeponet_roundtrip.py        # writes runs/antiderivative-py/
"""

import pathlib

import numpy as np
from safetensors.numpy import load_file

import phaseflow as pf

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "runs" / "antiderivative-py"

# DeepXDE's antiderivative set-up: u from a Gaussian random field at 100 sensors of [0, 1],
# G(u)(y) = the integral of u from 0 to y, at 100 points.
data = pf.generate_deeponet_data({
    "system": "antiderivative", "functions": 1000, "test_functions": 100, "seed": 1,
    "inputs": {"u": {"length_scale": 0.2}},
})
t = pf.train_deeponet(
    {"data": {}, "model": {"branch": [40], "trunk": [40], "latent": 40},
     "train": {"iterations": 5000, "evaluate_every": 500}},
    train=data["train"], test=data["test"], out=out, overwrite=True,
)
print(t, f"test mean relative L2 {t.summary['test_mean_relative_l2']:.4f}")

net = pf.DeepONet.load(out / "model.safetensors")
sensors = np.linspace(0, 1, net.sensors)
u = np.cos(2 * np.pi * sensors)[None, :]  # not a random field: a function it never saw
y = np.linspace(0, 1, 11)[:, None]
g = net.predict(u, y)[0, :, 0]
exact = np.sin(2 * np.pi * y[:, 0]) / (2 * np.pi)
print("G(cos)(y):", np.round(g, 4))
print("exact:    ", np.round(exact, 4))
print(f"max error {np.abs(g - exact).max():.2e}")

copy = out / "copy.safetensors"
net.save(copy)
tensors = load_file(str(copy))
print({name: t.shape for name, t in tensors.items()})
assert np.array_equal(pf.DeepONet.load(copy).predict(u, y), net.predict(u, y))
print(f"wrote {copy}; it reads back to the same predictions")
