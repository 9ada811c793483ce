"""A DeepONet trained by the CLI, used and saved from Python, and read back with
safetensors' NumPy API under PyTorch's names.

    phaseflow train deeponet --config examples/antiderivative.toml     # writes runs/antiderivative/
    pip install ./python safetensors
    python examples/python/deeponet_roundtrip.py
"""

import pathlib

import numpy as np
from safetensors.numpy import load_file

import phaseflow as pf

root = pathlib.Path(__file__).resolve().parents[2]
net = pf.DeepONet.load(root / "runs" / "antiderivative" / "model.safetensors")
print(net)

# The antiderivative of u(x) = cos(2 pi x): G(u)(y) = sin(2 pi y) / (2 pi).
sensors = np.linspace(0, 1, net.sensors)
u = np.cos(2 * np.pi * sensors)[None, :]
y = np.linspace(0, 1, 11)[:, None]
g = net.predict(u, y)[0, :, 0]
exact = np.sin(2 * np.pi * y[:, 0]) / (2 * np.pi)
print("G(u)(y):", np.round(g, 4))
print("exact:  ", np.round(exact, 4))
print(f"max error {np.abs(g - exact).max():.2e}")

path = root / "runs" / "antiderivative" / "copy.safetensors"
net.save(path)
tensors = load_file(str(path))
print({name: t.shape for name, t in tensors.items()})
assert np.array_equal(pf.DeepONet.load(path).predict(u, y), net.predict(u, y))
print(f"wrote {path}; it reads back to the same predictions")
