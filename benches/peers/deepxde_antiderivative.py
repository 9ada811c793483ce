"""deeponet-train and deeponet-infer with DeepXDE: its aligned antiderivative example
(branch [100, 40, 40], trunk [1, 40, 40], ReLU, Glorot normal, Adam 1e-3, full batch) on
the published training file, 1,000 iterations timed.

    pip install deepxde torch        # or tensorflow; DDE_BACKEND=pytorch selects the backend
    python benches/peers/deepxde_antiderivative.py PATH/antiderivative_aligned_train.npz [--threads K]

Prints phaseflow's table columns; compare with `phaseflow bench deeponet-train` and
`phaseflow bench deeponet-infer` (which generate data of the same shape: 150 functions ×
100 points).
"""

import os
import sys
import time

from common import threads_arg, HEADER, pin_threads, row

THREADS = threads_arg(2)
pin_threads(THREADS)
os.environ.setdefault("DDE_BACKEND", "pytorch")

import numpy as np

try:
    import deepxde as dde
except ImportError as e:
    sys.exit(f"this peer needs DeepXDE and a backend (pip install deepxde torch): {e}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = np.load(sys.argv[1], allow_pickle=True)
    x = (d["X"][0].astype(np.float32), d["X"][1].astype(np.float32))
    y = d["y"].astype(np.float32)
    functions, points = y.shape
    data = dde.data.TripleCartesianProd(x, y, x, y)
    net = dde.nn.DeepONetCartesianProd([x[0].shape[1], 40, 40], [1, 40, 40], "relu", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=0.001)
    print(f"DeepXDE {dde.__version__}, backend {dde.backend.backend_name}, {THREADS} thread(s)")
    print(HEADER)
    model.train(iterations=100, display_every=1000)  # warm-up
    start = time.perf_counter()
    model.train(iterations=1000, display_every=1000)
    per_iteration = (time.perf_counter() - start) / 1000
    row("deeponet-train", "deepxde", functions, per_iteration, functions * points, "samples")

    one = (x[0][:1], x[1])
    model.predict(one)
    latencies = []
    for _ in range(50):
        start = time.perf_counter()
        model.predict(one)
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    row("deeponet-infer", "one function", 1, latencies[len(latencies) // 2], 1, "functions")
    many = np.tile(x[0], (10_000 // functions + 1, 1))[:10_000]
    start = time.perf_counter()
    model.predict((many, x[1]))
    seconds = time.perf_counter() - start
    row("deeponet-infer", "many functions", len(many), seconds, len(many), "functions")


if __name__ == "__main__":
    main()
