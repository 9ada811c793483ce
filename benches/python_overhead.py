"""Python's cost over the Rust library (issue 28's benchmark).

1. Call overhead: N = 1,000 Lorenz, RK4, 1,000 steps, final state, on a warm engine:
   `phaseflow.simulate` against the same run through the Rust library
   (`examples/python_overhead.rs`), medians over repeats, in one run on one device.
2. Handing back about 1 GB of states: the time `Job.result()` takes and the memory NumPy
   allocates for it (tracemalloc sees NumPy's allocations; a copy would show 1 GB), and the
   process's peak RSS.

    cargo build --release --example python_overhead
    .venv/bin/python benches/python_overhead.py [--repeats 50] [--gb 1.0]
"""

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import time
import tracemalloc

import phaseflow as pf

ROOT = pathlib.Path(__file__).resolve().parents[1]


def rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--gb", type=float, default=1.0, help="size of the states handed back")
    args = ap.parse_args()

    engine = pf.Engine()
    kw = dict(engine=engine, progress=False, n=1000, solver="rk4", tspan=(0, 1), dt=1e-3,
              sweep={"rho": (0, 50)})
    pf.simulate("lorenz", **kw)  # warm-up: compiles the kernel
    py = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        pf.simulate("lorenz", **kw)
        py.append(time.perf_counter() - t)
    rust = json.loads(subprocess.run(
        [str(ROOT / "target/release/examples/python_overhead"), str(args.repeats)],
        check=True, capture_output=True, text=True).stdout)
    py_median = statistics.median(py)
    print(f"adapter: {engine.adapter['name']}")
    print(f"small run (N=1000 Lorenz, RK4, 1000 steps), median of {args.repeats}:")
    print(f"  Python phaseflow.simulate  {py_median * 1e3:8.3f} ms")
    print(f"  Rust Engine::simulate      {rust['median_s'] * 1e3:8.3f} ms")
    print(f"  Python / Rust              {py_median / rust['median_s']:8.3f}")

    # ~GB of f32 states: N trajectories × 3 states × n_save saves × 4 bytes.
    n = 1_000_000
    n_save = max(2, round(args.gb * 2**30 / (n * 3 * 4)))
    job = engine.submit("lorenz", n=n, solver="rk4", tspan=(0, (n_save - 1) * 1e-3), dt=1e-3,
                        save_every=1, sweep={"rho": (0, 50)})
    job.wait()
    before = rss_gib()
    tracemalloc.start()
    t = time.perf_counter()
    raw = job.result()
    took = time.perf_counter() - t
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    states = raw["states"]
    print(f"handing back {states.nbytes / 2**30:.2f} GiB of states {states.shape} {states.dtype}:")
    print(f"  Job.result()               {took * 1e3:8.3f} ms")
    print(f"  allocated by NumPy/Python  {numpy_peak / 2**20:8.3f} MiB (a copy would be {states.nbytes / 2**20:.0f})")
    print(f"  peak RSS                   {before:.2f} GiB before, {rss_gib():.2f} GiB after")


if __name__ == "__main__":
    main()
