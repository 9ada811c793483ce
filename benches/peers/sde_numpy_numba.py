"""sde-em with numpy (vectorised over paths) and numba (parallel loop over paths): the
Ornstein-Uhlenbeck ensemble phaseflow's `bench sde-em` runs, in float32.

    pip install numpy numba
    python benches/peers/sde_numpy_numba.py [N] [--threads K]

dX = theta (mu - X) dt + sigma dW, theta = 1, mu = 0.5, sigma = 0.3, X0 = 1, t in [0, 1],
1,000 Euler-Maruyama steps, N paths (default 10^6). Throughput is path-steps per second
(N x 1,000 / wall time); each figure is the median of three runs after a warm-up (which
compiles numba's kernels). The error column is |ensemble mean - exact mean|; the line
under each row gives the ensemble mean and variance of X(1) beside the closed forms
    mean = mu + (X0 - mu) e^{-theta T},  var = sigma^2 / (2 theta) (1 - e^{-2 theta T})
and their differences in standard errors (z). Euler-Maruyama's own bias at dt = 1e-3 is
(X0 - mu) e^{-theta T} theta^2 T dt / 2 ~ 9e-5 in the mean, about half a standard error at
N = 10^6, so |z| of a few is expected and |z| > 5 means something is wrong.

Variants:
- numpy: one `rng.standard_normal(N, dtype=float32)` per step and a vectorised update;
  numpy's generator is single-threaded, so `--threads` only pins the cores it may use.
- numba builtin-rng: `@njit(parallel=True)`, `prange` over paths, the whole path in a
  register; normals from numba's `np.random.standard_normal` (one independent stream per
  worker thread, seeded from the OS; float64, rounded to float32).
- numba counter-rng: the same loop with a counter-based generator a GPU kernel would use:
  splitmix64 of (seed, path, step) gives two uniforms, Box-Muller turns them into one
  float32 normal, so every path's noise is fixed by its index whatever the thread count.
"""

import math
import sys
import time

from common import HEADER, pin_threads, row, threads_arg, timed

THREADS = threads_arg(2)
pin_threads(THREADS)

try:
    import numpy as np
    import numba
    from numba import njit, prange
except ImportError as e:
    sys.exit(f"this peer needs numpy and numba (pip install numpy numba): {e}")

numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))

THETA, MU, SIGMA, X0, T1, STEPS = 1.0, 0.5, 0.3, 1.0, 1.0, 1000
EXACT_MEAN = MU + (X0 - MU) * math.exp(-THETA * T1)
EXACT_VAR = SIGMA**2 / (2 * THETA) * (1 - math.exp(-2 * THETA * T1))


def moments(final):
    """Ensemble mean and variance of X(T) (accumulated in f64: an f32 sum over 10^6 paths
    would lose ~1e-4 to rounding, as much as the statistic's standard error), and the
    differences from the closed forms in standard errors: sqrt(var / N) for the mean,
    var sqrt(2 / (N - 1)) for the variance (X(T) is Gaussian)."""
    x = np.asarray(final, dtype=np.float64)
    n = x.size
    mean = float(x.mean())
    var = float(x.var(ddof=1))
    z_mean = (mean - EXACT_MEAN) / math.sqrt(EXACT_VAR / n)
    z_var = (var - EXACT_VAR) / (EXACT_VAR * math.sqrt(2.0 / (n - 1)))
    return mean, var, z_mean, z_var


def report(variant, n, seconds, final):
    mean, var, z_mean, z_var = moments(final)
    row("sde-em", variant, n, seconds, float(n) * STEPS, "path-steps", abs(mean - EXACT_MEAN))
    print(
        f"{'':<15} mean {mean:.6f} (exact {EXACT_MEAN:.6f}, z {z_mean:+.2f})"
        f"  var {var:.6f} (exact {EXACT_VAR:.6f}, z {z_var:+.2f})"
    )
    sys.stdout.flush()


def ou_numpy(n, rng):
    f32 = np.float32
    dt = f32(T1 / STEPS)
    sqdt = f32(math.sqrt(T1 / STEPS))
    theta, mu, sigma = f32(THETA), f32(MU), f32(SIGMA)
    x = np.full(n, X0, dtype=f32)
    dw = np.empty(n, dtype=f32)
    for _ in range(STEPS):
        rng.standard_normal(n, dtype=f32, out=dw)
        dw *= sqdt
        # x += theta (mu - x) dt + sigma dW, in place: no temporaries of size N per step
        # beyond one, as a careful numpy user would write it.
        dw *= sigma
        x += theta * dt * (mu - x) + dw
    return x


@njit(parallel=True, fastmath=False, cache=False)
def ou_numba_builtin(n):
    f32 = np.float32
    dt = f32(T1 / STEPS)
    sqdt = f32(math.sqrt(T1 / STEPS))
    theta, mu, sigma = f32(THETA), f32(MU), f32(SIGMA)
    out = np.empty(n, dtype=f32)
    # Not seeded: numba gives each worker thread its own stream, seeded from the OS, and
    # a seed call would reach only the thread that makes it.
    for p in prange(n):
        x = f32(X0)
        for _ in range(STEPS):
            dw = f32(np.random.standard_normal()) * sqdt
            x = x + theta * (mu - x) * dt + sigma * dw
        out[p] = x
    return out


@njit(inline="always")
def splitmix64(z):
    # Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (OOPSLA 2014):
    # the finaliser's constants; uint64 arithmetic wraps as in the paper.
    z = (z + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return z ^ (z >> np.uint64(31))


@njit(parallel=True, fastmath=False, cache=False)
def ou_numba_counter(n, seed):
    f32 = np.float32
    dt = f32(T1 / STEPS)
    sqdt = f32(math.sqrt(T1 / STEPS))
    theta, mu, sigma = f32(THETA), f32(MU), f32(SIGMA)
    two_pi = f32(2.0 * math.pi)
    inv24 = f32(1.0 / 16777216.0)  # 2^-24: a uniform with float32's 24-bit mantissa
    out = np.empty(n, dtype=f32)
    key = splitmix64(np.uint64(seed))
    for p in prange(n):
        x = f32(X0)
        base = splitmix64(key ^ np.uint64(p))
        for s in range(STEPS):
            bits = splitmix64(base + np.uint64(s))
            # two 24-bit uniforms; u1 in (0, 1] so the log is finite
            u1 = f32((bits >> np.uint64(40)) + np.uint64(1)) * inv24
            u2 = f32((bits >> np.uint64(8)) & np.uint64(0xFFFFFF)) * inv24
            z = math.sqrt(f32(-2.0) * math.log(u1)) * math.cos(two_pi * u2)
            x = x + theta * (mu - x) * dt + sigma * (f32(z) * sqdt)
        out[p] = x
    return out


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000
    print(
        f"numpy {np.__version__}, numba {numba.__version__}, "
        f"{numba.get_num_threads()} numba thread(s), {THREADS} core(s) pinned"
    )
    print(f"sde-em: OU theta={THETA} mu={MU} sigma={SIGMA} X0={X0}, T={T1}, {STEPS} EM steps, f32")
    print(HEADER)

    rng = np.random.default_rng(24)
    seconds, final = timed(lambda: ou_numpy(n, rng))
    report("numpy", n, seconds, final)

    seeds = iter(range(1000, 2000))
    seconds, final = timed(lambda: ou_numba_builtin(n))
    report("numba builtin-rng", n, seconds, final)

    seconds, final = timed(lambda: ou_numba_counter(n, next(seeds)))
    report("numba counter-rng", n, seconds, final)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s")
