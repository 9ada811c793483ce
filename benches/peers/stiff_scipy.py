"""stiff-rober with SciPy: `solve_ivp` one trajectory at a time (SciPy has no ensemble
solver; this is how a SciPy user runs a parameter sweep), LSODA, BDF and Radau, each given
the analytic Jacobian, float64.

    pip install numpy scipy
    python benches/peers/stiff_scipy.py [N] [--methods LSODA,BDF,Radau] [--reps R]
                                        [--threads K] [--ref-dir DIR] [--json]

The problem is `phaseflow bench stiff-rober`'s (see stiff_reference.py): ROBER with
k1 = 0.04 (1 + a), a = linspace(-0.5, 0.5, N) (default N = 200), k2 = 3e7, k3 = 1e4,
y0 = (1, 0, 0), t in [0, 1e5], rtol = 1e-6, atol = 1e-10, final state only (t_eval = [t1]).
Throughput is trajectories per second of wall time for the whole sweep. The error column
is phaseflow's: over the 16 sampled trajectories, max |y - y_ref| / max(|y_ref|, 1e-4),
against stiff_reference.py's Radau at rtol 1e-12 (read from DIR, default
phaseflow-stiff-reference in the temporary directory; computed there if absent).

Each sweep runs R times (default 3; no warm-up is needed, nothing compiles): the row gives
the best, the line under it every repetition and the spread, trajectories per CPU-second
of the process (`time.process_time`; on a shared machine it moves far less than wall
time, since this process runs single-threaded), and the mean work per trajectory
(right-hand sides, Jacobians, LU factorisations). One trajectory at a time is
single-threaded whatever the thread count; `--threads K` (default 2) pins the process to
cores 0..K-1 and sizes the BLAS pools (which a 3 x 3 LU never uses).
"""

import json
import sys
import time

from common import HEADER, pin_threads, row, threads_arg
from stiff_reference import (
    ATOL,
    DEFAULT_DIR,
    RTOL,
    error,
    load,
    option,
    solve_one,
    sweep,
)

THREADS = threads_arg(2)
METHODS = option("--methods", "LSODA,BDF,Radau").split(",")
REPS = int(option("--reps", "3"))
REF_DIR = option("--ref-dir", DEFAULT_DIR)
JSON = "--json" in sys.argv
if JSON:
    sys.argv.remove("--json")
pin_threads(THREADS)

try:
    import numpy as np
    import scipy
except ImportError as e:
    sys.exit(f"this peer needs numpy and SciPy (pip install numpy scipy): {e}")


def sweep_once(method, k1):
    """Every trajectory, one solve_ivp call each; final states and summed work."""
    final = np.empty((len(k1), 3))
    work = np.zeros(3)
    for j, k in enumerate(k1):
        final[j], sol = solve_one(method, k, RTOL, ATOL)
        work += (sol.nfev, sol.njev, sol.nlu)
    return final, work


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200
    ref = load(n, REF_DIR)
    js = ref[:, 0].astype(int)
    _, k1 = sweep(n)
    if not JSON:
        print(
            f"SciPy {scipy.__version__}, numpy {np.__version__}, {THREADS} core(s) pinned; "
            f"ROBER t1 = 1e5, rtol {RTOL:g}, atol {ATOL:g}, f64, {REPS} repetitions"
        )
        print(HEADER)
    for method in METHODS:
        times, cpu = [], []
        for _ in range(REPS):
            start, start_cpu = time.perf_counter(), time.process_time()
            final, work = sweep_once(method, k1)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        err = error(final[js], ref[:, 2:])
        best, worst = min(times), max(times)
        fevals, jevals, lus = work / n
        if JSON:
            print(
                json.dumps(
                    {
                        "scenario": "stiff-rober",
                        "peer": f"scipy {scipy.__version__}",
                        "variant": f"solve_ivp {method}",
                        "size": n,
                        "seconds_best": best,
                        "seconds_all": times,
                        "cpu_seconds_all": cpu,
                        "throughput": n / best,
                        "unit": "trajectories/s",
                        "error": err,
                        "per_trajectory": {"rhs": fevals, "jacobians": jevals, "lu": lus},
                    }
                )
            )
            sys.stdout.flush()
            continue
        row("stiff-rober", f"scipy {method}", n, best, n, "trajectories", err)
        spread = ", ".join(f"{n / t:.1f}" for t in times)
        print(
            f"{'':<15} best of {REPS}: {n / best:.1f} traj/s (runs: {spread}; slowest "
            f"{100 * (worst / best - 1):.0f}% slower; per CPU-second of the process "
            f"{n / min(cpu):.1f}); per trajectory {fevals:.0f} f, "
            f"{jevals:.0f} J, {lus:.0f} LU"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
