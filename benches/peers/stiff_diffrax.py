"""stiff-rober with Diffrax (JAX, `jit(vmap(diffeqsolve))`): Kvaerno5 (and Kvaerno3), ESDIRK
methods with Diffrax's default Newton-chord root finder (Jacobian by JAX autodiff of the
vector field, exact for this polynomial right-hand side), `PIDController(rtol, atol)`,
float64 (`jax_enable_x64`), per-trajectory steps.

    pip install numpy scipy jax diffrax
    python benches/peers/stiff_diffrax.py [N] [--methods kvaerno5,kvaerno5-pi,kvaerno3] [--reps R]
                                          [--threads K] [--ref-dir DIR] [--json]

The problem is `phaseflow bench stiff-rober`'s (see stiff_reference.py): ROBER with
k1 = 0.04 (1 + a), a = linspace(-0.5, 0.5, N) (default N = 1000), k2 = 3e7, k3 = 1e4,
y0 = (1, 0, 0), t in [0, 1e5], rtol = 1e-6, atol = 1e-10, final state only
(`SaveAt(t1=True)`), the initial step chosen by Diffrax (dt0 = None), as Diffrax's own
stiff example sets the problem up (default controller coefficients, Kvaerno5). The `-pi`
variants (`kvaerno5-pi`) use the PI controller pcoeff = icoeff = 0.3 that Diffrax's
`PIDController` docs suggest for mildly stiff problems.

Compilation (`jit(...).lower(k1).compile()`) is timed separately and excluded from the
throughput; each timed run calls the compiled function on the same N parameters. R runs
(default 3): the row gives the best, the line under it every run, the spread,
trajectories per CPU-second of the process (`time.process_time`, summed over XLA's
threads; less disturbed by other load than wall time), the compile time and the mean
accepted/rejected steps per trajectory (a vmapped while loop keeps every lane busy until
the slowest trajectory finishes). The error column is
phaseflow's: over the 16 sampled trajectories, max |y - y_ref| / max(|y_ref|, 1e-4),
against stiff_reference.py's Radau at rtol 1e-12 (read from DIR, default
phaseflow-stiff-reference in the temporary directory; computed there if absent).
"""

import json
import sys
import time

from common import HEADER, pin_threads, row, threads_arg
from stiff_reference import (
    ATOL,
    DEFAULT_DIR,
    K2,
    K3,
    RTOL,
    T1,
    Y0,
    error,
    load,
    option,
    sweep,
)

THREADS = threads_arg(2)
METHODS = option("--methods", "kvaerno5,kvaerno5-pi,kvaerno3").split(",")
REPS = int(option("--reps", "3"))
REF_DIR = option("--ref-dir", DEFAULT_DIR)
JSON = "--json" in sys.argv
if JSON:
    sys.argv.remove("--json")
pin_threads(THREADS)

try:
    import diffrax
    import jax
    import jax.numpy as jnp
    import numpy as np
except ImportError as e:
    sys.exit(f"this peer needs JAX and Diffrax (pip install jax diffrax): {e}")

jax.config.update("jax_enable_x64", True)

SOLVERS = {"kvaerno5": diffrax.Kvaerno5, "kvaerno3": diffrax.Kvaerno3}
# The default controller is an I controller (pcoeff = 0, icoeff = 1); Diffrax's docs
# suggest a less sensitive PI controller for "mildly stiff" problems, among them
# pcoeff = icoeff = 0.3: the `-pi` variants use it.
PI = {"pcoeff": 0.3, "icoeff": 0.3}


def rober(t, y, k1):
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack(
        [
            -k1 * y1 + K3 * y2 * y3,
            k1 * y1 - K2 * y2 * y2 - K3 * y2 * y3,
            K2 * y2 * y2,
        ]
    )


def solver(method):
    name, pi = method.removesuffix("-pi"), method.endswith("-pi")
    coefficients = PI if pi else {}

    def one(k1):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rober),
            SOLVERS[name](),
            t0=0.0,
            t1=T1,
            dt0=None,
            y0=jnp.asarray(Y0, dtype=jnp.float64),
            args=k1,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL, **coefficients),
            max_steps=100_000,
            throw=False,
        )
        return (
            sol.ys[-1],
            sol.stats["num_accepted_steps"],
            sol.stats["num_rejected_steps"],
            sol.result == diffrax.RESULTS.successful,
        )

    return jax.jit(jax.vmap(one))


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000
    ref = load(n, REF_DIR)
    js = ref[:, 0].astype(int)
    _, k1 = sweep(n)
    k1 = jnp.asarray(k1, dtype=jnp.float64)
    if not JSON:
        print(
            f"Diffrax {diffrax.__version__}, JAX {jax.__version__}, {jax.devices()[0]}, "
            f"{THREADS} thread(s); ROBER t1 = 1e5, rtol {RTOL:g}, atol {ATOL:g}, f64, "
            f"{REPS} runs after compiling"
        )
        print(HEADER)
    for method in METHODS:
        start = time.perf_counter()
        compiled = solver(method).lower(k1).compile()
        compile_s = time.perf_counter() - start
        times, cpu = [], []
        for _ in range(REPS):
            start, start_cpu = time.perf_counter(), time.process_time()
            out = compiled(k1)
            jax.block_until_ready(out)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        final, accepted, rejected, ok = (np.asarray(x) for x in out)
        failed = int((~ok).sum())
        err = error(final[js], ref[:, 2:]) if failed == 0 else float("nan")
        best, worst = min(times), max(times)
        acc, rej = accepted.mean(), rejected.mean()
        if JSON:
            print(
                json.dumps(
                    {
                        "scenario": "stiff-rober",
                        "peer": f"diffrax {diffrax.__version__}",
                        "variant": method,
                        "size": n,
                        "compile_seconds": compile_s,
                        "seconds_best": best,
                        "seconds_all": times,
                        "cpu_seconds_all": cpu,
                        "throughput": n / best,
                        "unit": "trajectories/s",
                        "error": err,
                        "failed": failed,
                        "per_trajectory": {"accepted": float(acc), "rejected": float(rej)},
                    }
                )
            )
            sys.stdout.flush()
            continue
        row("stiff-rober", f"diffrax {method}", n, best, n, "trajectories", err)
        spread = ", ".join(f"{n / t:.1f}" for t in times)
        print(
            f"{'':<15} best of {REPS}: {n / best:.1f} traj/s (runs: {spread}; slowest "
            f"{100 * (worst / best - 1):.0f}% slower; per CPU-second of the process "
            f"{n / min(cpu):.1f}); compile {compile_s:.1f} s; steps per "
            f"trajectory accepted {acc:.1f} (max {accepted.max()}), rejected {rej:.1f}"
            + (f"; {failed} trajectories FAILED" if failed else "")
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
