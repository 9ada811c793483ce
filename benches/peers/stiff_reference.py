"""The reference for `phaseflow bench stiff-rober` and its peers: the final state of ROBER
for each sampled trajectory, to far tighter tolerances than the benchmark's, checked by
three independent solvers, written to a .npy the peer scripts read. Also the problem and
the error measure they share.

    pip install numpy scipy
    python benches/peers/stiff_reference.py N [N ...] [--sample M|all] [--out DIR]

The problem (issue 25): ROBER
    y1' = -k1 y1 + k3 y2 y3
    y2' =  k1 y1 - k2 y2^2 - k3 y2 y3
    y3' =  k2 y2^2
with k1 = 0.04 (1 + a), a = linspace(-0.5, 0.5, N), k2 = 3e7, k3 = 1e4, y0 = (1, 0, 0),
t in [0, 1e5], f64; the benchmark runs at rtol = 1e-6, atol = 1e-10 and keeps the final
state only.

The reference for trajectory j is SciPy's Radau (5th-order Radau IIA, implicit) at rtol =
1e-12, atol = 1e-16 with the analytic Jacobian; LSODA and BDF at the same tolerances must
agree with it to within REF_AGREE in the benchmark's error measure or the script stops.
Over the 16 sampled trajectories (N = 200, 10^3, 10^4, 10^5) LSODA agrees with Radau to
6.6e-11 and BDF to 1.1e-10 in the error measure below, 10^4 times finer than the ~1e-6
errors being measured, and y1 + y2 + y3 = 1 holds to 7e-15. phaseflow's f64 twin
(Rodas5P at the same tolerances) agrees with this Radau reference to 1.3e-11.

The error measure (phaseflow's error column for this scenario): over the sampled
trajectories and the three components, the largest |y - y_ref| / max(|y_ref|, atol/rtol)
with the benchmark's atol/rtol = 1e-4, so the tiny y2 (~1e-7 at t = 1e5) is held to
the absolute tolerance's scale rather than to its own size.

Output: DIR/stiff-reference-N{N}.npy (DIR defaults to phaseflow-stiff-reference in the
system's temporary directory, where the peer scripts look too), a float64 array of shape
(M, 5), one row per sampled trajectory: j, a_j, y1, y2, y3. The sample is phaseflow's:
both ends of the sweep and evenly between (16 trajectories; `--sample all` takes every
trajectory, ~2 s each).
"""

import os
import sys
import tempfile
import time

import numpy as np

K1, K2, K3 = 0.04, 3e7, 1e4
Y0 = (1.0, 0.0, 0.0)
T1 = 1e5
RTOL, ATOL = 1e-6, 1e-10
REF_RTOL, REF_ATOL = 1e-12, 1e-16
# The reference solvers must agree this closely (in the error measure) before the
# reference is written: 100x below the benchmark's errors of ~1e-6.
REF_AGREE = 1e-8
SAMPLE = 16
# Where references are written and looked for unless --out / --ref-dir say otherwise: out
# of the repository, and kept between runs (computing one takes ~40 s or more).
DEFAULT_DIR = os.path.join(tempfile.gettempdir(), "phaseflow-stiff-reference")


def option(name, default):
    """`--name VALUE` from the command line (removed from sys.argv), else `default`."""
    if name not in sys.argv:
        return default
    at = sys.argv.index(name)
    value = sys.argv[at + 1]
    del sys.argv[at : at + 2]
    return value


def sweep(n):
    """a = linspace(-0.5, 0.5, N) and k1 = 0.04 (1 + a), as the issue defines the sweep
    (phaseflow sweeps k1 = linspace(0.02, 0.06, N): the same values to an ulp or two)."""
    a = np.linspace(-0.5, 0.5, n)
    return a, K1 * (1.0 + a)


def sampled(n, m=SAMPLE):
    """The trajectories phaseflow checks: both ends and evenly between."""
    m = min(m, n)
    if m == 1:
        return [0]
    return sorted(set(k * (n - 1) // (m - 1) for k in range(m)))


def rober(t, y, k1):
    y1, y2, y3 = y
    return np.array(
        [
            -k1 * y1 + K3 * y2 * y3,
            k1 * y1 - K2 * y2 * y2 - K3 * y2 * y3,
            K2 * y2 * y2,
        ]
    )


def rober_jac(t, y, k1):
    """The analytic Jacobian df/dy, as a user who knows the model would pass it."""
    _, y2, y3 = y
    return np.array(
        [
            [-k1, K3 * y3, K3 * y2],
            [k1, -2.0 * K2 * y2 - K3 * y3, -K3 * y2],
            [0.0, 2.0 * K2 * y2, 0.0],
        ]
    )


def solve_one(method, k1, rtol, atol):
    """One trajectory with solve_ivp, final state only (t_eval = [t1]); returns (y(t1),
    the solver result)."""
    from scipy.integrate import solve_ivp

    kwargs = {} if method in ("RK45", "DOP853") else {"jac": rober_jac}
    sol = solve_ivp(
        rober,
        (0.0, T1),
        Y0,
        method=method,
        t_eval=[T1],
        rtol=rtol,
        atol=atol,
        args=(k1,),
        **kwargs,
    )
    if sol.status != 0:
        raise RuntimeError(f"{method} failed at k1 = {k1}: {sol.message}")
    return sol.y[:, -1], sol


def error(got, ref):
    """max over trajectories and components of |y - y_ref| / max(|y_ref|, atol/rtol).
    `got` and `ref` are (M, 3) arrays for the same trajectories."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.maximum(np.abs(ref), ATOL / RTOL)
    return float((np.abs(got - ref) / scale).max())


def path(n, out=DEFAULT_DIR):
    return os.path.join(out, f"stiff-reference-N{n}.npy")


def load(n, out=DEFAULT_DIR):
    """The reference rows (j, a, y1, y2, y3) for size N from `out`, computed (~30 s for
    the 16 sampled trajectories) and written there if it is not there yet."""
    p = path(n, out)
    if not os.path.exists(p):
        print(f"no reference for N = {n} at {p}: computing it ...")
        write(n, SAMPLE, out)
    return np.load(p)


def compute(n, m):
    """Reference rows for the sampled trajectories; stops if the three solvers disagree."""
    a, k1 = sweep(n)
    js = sampled(n, m)
    rows, worst = [], {"LSODA": 0.0, "BDF": 0.0}
    for j in js:
        ref, _ = solve_one("Radau", k1[j], REF_RTOL, REF_ATOL)
        for method in worst:
            other, _ = solve_one(method, k1[j], REF_RTOL, REF_ATOL)
            worst[method] = max(worst[method], error([other], [ref]))
        rows.append([j, a[j], *ref])
    for method, d in worst.items():
        if not d <= REF_AGREE:
            raise RuntimeError(
                f"N = {n}: {method} at rtol {REF_RTOL:g} differs from Radau by {d:.2e} "
                f"(> {REF_AGREE:g}); the reference is not trustworthy"
            )
    return np.array(rows), worst


def write(n, m, out):
    start = time.perf_counter()
    rows, worst = compute(n, m)
    os.makedirs(out, exist_ok=True)
    np.save(path(n, out), rows)
    y = rows[:, 2:]
    mass = float(np.abs(y.sum(axis=1) - 1.0).max())
    print(
        f"N = {n}: {len(rows)} trajectories, Radau rtol {REF_RTOL:g} atol {REF_ATOL:g}; "
        f"agreement (error measure) LSODA {worst['LSODA']:.1e}, BDF {worst['BDF']:.1e}; "
        f"|y1 + y2 + y3 - 1| <= {mass:.1e}; {time.perf_counter() - start:.1f} s "
        f"-> {path(n, out)}"
    )
    sys.stdout.flush()


def main():
    m = option("--sample", str(SAMPLE))
    m = sys.maxsize if m == "all" else int(m)
    out = option("--out", DEFAULT_DIR)
    sizes = [int(float(s)) for s in sys.argv[1:]] or [200]
    import scipy

    print(f"SciPy {scipy.__version__}, numpy {np.__version__}")
    for n in sizes:
        write(n, m, out)


if __name__ == "__main__":
    main()
