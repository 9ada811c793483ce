"""Shared by the peer scripts: the benchmark problems exactly as `phaseflow bench` sets
them up, an independent f64 reference for the error column, thread pinning, and a table
with phaseflow's columns (scenario, variant, size, wall ms, throughput, error).

Only numpy is needed here; each script imports its own framework and says so when it is
missing.
"""

import os
import sys
import time

import numpy as np

SIGMA, BETA = 10.0, 2.666
T1 = 1.0
SAMPLE = 16


def threads_arg(default):
    """`--threads K` from the command line (removed from sys.argv), else `default`."""
    if "--threads" not in sys.argv:
        return default
    at = sys.argv.index("--threads")
    threads = int(sys.argv[at + 1])
    del sys.argv[at : at + 2]
    return threads


def pin_threads(threads):
    """Fix every math library's thread pool to `threads` before the framework loads, so a
    comparison with phaseflow (which uses every core through lavapipe, or the GPU) is
    stated rather than accidental. Call before importing jax/torch."""
    n = str(threads)
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[var] = n
    # JAX/XLA on CPU: one intra-op thread pool of this size.
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
        + f" intra_op_parallelism_threads={threads}"
    ).strip()
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, set(range(threads)))
        except OSError:
            pass


def rho(n, hi=21.0):
    """rho = linspace(0, hi, N), as phaseflow's sweep and the published benchmark."""
    return np.linspace(0.0, hi, n)


def sampled(n):
    """The trajectories phaseflow checks: both ends and evenly between."""
    m = min(SAMPLE, n)
    if m == 1:
        return [0]
    return sorted(set(k * (n - 1) // (m - 1) for k in range(m)))


def lorenz_numpy(u, r):
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return np.stack([SIGMA * (y - x), x * (r - z) - y, x * y - BETA * z], axis=-1)


def reference(rhos):
    """Final states at t = 1 from u0 = (1, 0, 0): classic RK4 in f64 with dt = 1e-5
    (truncation error ~1e-17, rounding ~1e-12), independent of every framework."""
    r = np.asarray(rhos, dtype=np.float64)
    u = np.tile([1.0, 0.0, 0.0], (len(r), 1))
    dt = 1e-5
    for _ in range(int(round(T1 / dt))):
        k1 = lorenz_numpy(u, r)
        k2 = lorenz_numpy(u + 0.5 * dt * k1, r)
        k3 = lorenz_numpy(u + 0.5 * dt * k2, r)
        k4 = lorenz_numpy(u + dt * k3, r)
        u = u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return u


def error(final, n, hi=21.0):
    """phaseflow's error column: over the sampled trajectories, the largest difference
    from the reference relative to max(1, |reference|)."""
    js = sampled(n)
    want = reference(rho(n, hi)[js])
    got = np.asarray(final, dtype=np.float64)[js]
    scale = np.maximum(1.0, np.abs(want).max(axis=1))
    return float((np.abs(got - want).max(axis=1) / scale).max())


def timed(run, reps=3):
    """Median wall time of `reps` calls after one warm-up (which compiles); returns
    (seconds, last result)."""
    result = run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], result


HEADER = f"{'scenario':<15} {'variant':<22} {'size':>9} {'wall ms':>11} {'throughput':>30} {'error':>9}"


def row(scenario, variant, size, seconds, items, unit, err=None):
    e = "-" if err is None else f"{err:.2e}"
    thr = f"{items / seconds:.3e} {unit}/s"
    print(f"{scenario:<15} {variant:<22} {size:>9} {1e3 * seconds:>11.3f} {thr:>30} {e:>9}")
    sys.stdout.flush()


def sizes(default_max):
    """N = 8, 32, ... up to the first argument (default `default_max`), from `--from N` on
    when given (removed from sys.argv): on a GPU the small sizes cost a compile each and
    say little, so a short session measures only the large ones."""
    smallest = 8
    if "--from" in sys.argv:
        at = sys.argv.index("--from")
        smallest = int(float(sys.argv[at + 1]))
        del sys.argv[at : at + 2]
    largest = int(float(sys.argv[1])) if len(sys.argv) > 1 else default_max
    out, n = [], 8
    while n <= largest:
        if n >= smallest:
            out.append(n)
        n *= 4
    return out
