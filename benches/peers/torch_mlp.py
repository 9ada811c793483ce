"""mlp-train and mlp-infer with PyTorch: Gaussian Fourier features (2 inputs, 64
frequencies, sigma = 10, 128 outputs) -> 3 x 64 ReLU -> 1, full Adam steps on batches of
16,384 samples, and the forward pass over 2^20 samples.

    pip install torch
    python benches/peers/torch_mlp.py [--threads K]

Prints phaseflow's table columns; compare with `phaseflow bench mlp-train` and
`phaseflow bench mlp-infer`.
"""

import math
import sys
import time

from common import threads_arg, HEADER, pin_threads, row

THREADS = threads_arg(1)
pin_threads(THREADS)

try:
    import torch
except ImportError as e:
    sys.exit(f"this peer needs PyTorch (pip install torch): {e}")

torch.set_num_threads(THREADS)
torch.manual_seed(1)


class FourierMlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", 10.0 * torch.randn(2, 64))
        layers, width = [], 128
        for _ in range(3):
            layers += [torch.nn.Linear(width, 64), torch.nn.ReLU()]
            width = 64
        layers.append(torch.nn.Linear(64, 1))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x):
        z = 2 * math.pi * x @ self.b
        return self.layers(torch.cat([torch.cos(z), torch.sin(z)], dim=1))


def main():
    print(f"PyTorch {torch.__version__}, cpu, {THREADS} thread(s)")
    print(HEADER)
    net = FourierMlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 1 << 14
    x = torch.rand(batch, 2)
    t = torch.sin(6 * x[:, :1]) * torch.cos(4 * x[:, 1:])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((net(x) - t) ** 2)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    steps = 20
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    row("mlp-train", "pytorch", batch, seconds, batch, "samples")

    big = torch.rand(1 << 20, 2)
    with torch.no_grad():
        net(big)
        start = time.perf_counter()
        net(big)
        seconds = time.perf_counter() - start
    row("mlp-infer", "pytorch", 1 << 20, seconds, 1 << 20, "samples")


if __name__ == "__main__":
    main()
