"""Peer of `phaseflow bench lyapunov`: the full Lorenz Lyapunov spectrum the way
ChaosTools.jl / dysts users compute it today, one trajectory at a time on the CPU, here
compiled with numba: classic RK4 on the state and the 3×3 tangent matrix Q (dQ/dt = J·Q with
the dense Jacobian), QR (numpy's LAPACK `np.linalg.qr`, i.e. Householder) every `renorm`,
λ_i = Σ ln|R_ii| / T; trajectories spread over the cores with `prange`.

The problem is phaseflow's exactly: σ = 10, β = 8/3, ρ = linspace(0, 200, N), u0 = (1, 0,
0), a transient of 20 (state only), then T = 100 with dt = 0.005 (24,000 steps, 20,000
of them with the tangent matrix), re-orthonormalised every 0.1, in f64.

    python benches/peers/lyapunov_numba.py [N] [--threads K] [--json]

Two variants: `spectra` as such a loop is usually written (numpy array expressions in the
RK4 stages, `J @ Q`), and `spectra_tuned` with no allocation in the loop (one 12-vector of
state and Q, stages in preallocated buffers, J·Q written out), the fairer peer.

N (default 2000) is the number of ρ values; the figure to compare is per trajectory
(trajectories/s and trajectory-steps/s), since one trajectory costs the same whatever N.
Prints phaseflow's table columns and, with --json, one JSON object: n, seconds (median of
3 runs after a compiling warm-up), trajectories_per_s, trajectory_steps_per_s and the
spectrum at ρ = 28 (the value nearest it) for the accuracy check.
"""

import json
import sys
import time

from common import HEADER, pin_threads, row, threads_arg

THREADS = threads_arg(2)
pin_threads(THREADS)
JSON = "--json" in sys.argv
if JSON:
    sys.argv.remove("--json")

import numpy as np  # noqa: E402

try:
    import numba  # noqa: E402
    from numba import njit, prange  # noqa: E402
except ImportError:
    sys.exit("lyapunov_numba.py needs numba: pip install numpy numba")

numba.set_num_threads(THREADS)

SIGMA, BETA = 10.0, 8.0 / 3.0
DT, TRANSIENT, TIME, RENORM = 0.005, 20.0, 100.0, 0.1
RHO_HI = 200.0


@njit(cache=True, fastmath=False)
def rhs(u, r, out):
    out[0] = SIGMA * (u[1] - u[0])
    out[1] = u[0] * (r - u[2]) - u[1]
    out[2] = u[0] * u[1] - BETA * u[2]


@njit(cache=True)
def jacobian(u, r, J):
    J[0, 0] = -SIGMA
    J[0, 1] = SIGMA
    J[0, 2] = 0.0
    J[1, 0] = r - u[2]
    J[1, 1] = -1.0
    J[1, 2] = -u[0]
    J[2, 0] = u[1]
    J[2, 1] = u[0]
    J[2, 2] = -BETA


@njit(cache=True)
def aug_rhs(u, Q, r, du, dQ, J):
    """The state's slope and the tangent matrix's, J(u)·Q (dense, as ChaosTools's
    tangent dynamics)."""
    rhs(u, r, du)
    jacobian(u, r, J)
    dQ[:, :] = J @ Q


@njit(cache=True)
def spectrum(r):
    u = np.array([1.0, 0.0, 0.0])
    k1, k2, k3, k4 = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    n_transient = int(round(TRANSIENT / DT))
    n_main = int(round(TIME / DT))
    every = int(round(RENORM / DT))
    for _ in range(n_transient):
        rhs(u, r, k1)
        rhs(u + 0.5 * DT * k1, r, k2)
        rhs(u + 0.5 * DT * k2, r, k3)
        rhs(u + DT * k3, r, k4)
        u = u + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    Q = np.eye(3)
    J = np.empty((3, 3))
    G1, G2 = np.empty((3, 3)), np.empty((3, 3))
    G3, G4 = np.empty((3, 3)), np.empty((3, 3))
    sums = np.zeros(3)
    for step in range(1, n_main + 1):
        aug_rhs(u, Q, r, k1, G1, J)
        aug_rhs(u + 0.5 * DT * k1, Q + 0.5 * DT * G1, r, k2, G2, J)
        aug_rhs(u + 0.5 * DT * k2, Q + 0.5 * DT * G2, r, k3, G3, J)
        aug_rhs(u + DT * k3, Q + DT * G3, r, k4, G4, J)
        u = u + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        Q = Q + DT / 6.0 * (G1 + 2.0 * G2 + 2.0 * G3 + G4)
        if step % every == 0:
            Q, R = np.linalg.qr(Q)
            for i in range(3):
                sums[i] += np.log(abs(R[i, i]))
    return sums / TIME


@njit(cache=True)
def aug_slope(y, r, out):
    """The augmented system's slope, y = (u, Q column-major): f(u) and J(u)·Q, written
    out without temporaries."""
    x, yy, z = y[0], y[1], y[2]
    out[0] = SIGMA * (yy - x)
    out[1] = x * (r - z) - yy
    out[2] = x * yy - BETA * z
    for m in range(3):
        a, b, c = y[3 + 3 * m], y[4 + 3 * m], y[5 + 3 * m]
        out[3 + 3 * m] = SIGMA * (b - a)
        out[4 + 3 * m] = (r - z) * a - b - x * c
        out[5 + 3 * m] = yy * a + x * b - BETA * c


@njit(cache=True)
def spectrum_tuned(r):
    """The same computation with no allocation in the loop: one 12-vector (state and
    Q), RK4 stages in preallocated buffers, LAPACK QR every `renorm`."""
    n_transient = int(round(TRANSIENT / DT))
    n_main = int(round(TIME / DT))
    every = int(round(RENORM / DT))
    y = np.zeros(12)
    y[0] = 1.0
    k1, k2, k3, k4, t = (np.empty(12), np.empty(12), np.empty(12), np.empty(12),
                         np.empty(12))
    Q = np.empty((3, 3))
    sums = np.zeros(3)
    for step in range(n_transient + n_main):
        if step == n_transient:
            for m in range(3):
                for c in range(3):
                    y[3 + 3 * m + c] = 1.0 if m == c else 0.0
        # The transient integrates the (then unused) tangent part too: one code path.
        aug_slope(y, r, k1)
        for i in range(12):
            t[i] = y[i] + 0.5 * DT * k1[i]
        aug_slope(t, r, k2)
        for i in range(12):
            t[i] = y[i] + 0.5 * DT * k2[i]
        aug_slope(t, r, k3)
        for i in range(12):
            t[i] = y[i] + DT * k3[i]
        aug_slope(t, r, k4)
        for i in range(12):
            y[i] += DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
        done = step + 1 - n_transient
        if done > 0 and done % every == 0:
            for m in range(3):
                for c in range(3):
                    Q[c, m] = y[3 + 3 * m + c]
            q, R = np.linalg.qr(Q)
            for m in range(3):
                sums[m] += np.log(abs(R[m, m]))
                for c in range(3):
                    y[3 + 3 * m + c] = q[c, m]
    return sums / TIME


@njit(parallel=True, cache=True)
def spectra(rhos):
    out = np.empty((rhos.shape[0], 3))
    for j in prange(rhos.shape[0]):
        out[j] = spectrum(rhos[j])
    return out


@njit(parallel=True, cache=True)
def spectra_tuned(rhos):
    out = np.empty((rhos.shape[0], 3))
    for j in prange(rhos.shape[0]):
        out[j] = spectrum_tuned(rhos[j])
    return out


def measure(run, rhos):
    run(rhos[:2])  # compile
    times, result = [], None
    for _ in range(3):
        start = time.perf_counter()
        result = run(rhos)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[1], times, result


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 2000
    rhos = np.linspace(0.0, RHO_HI, n)
    steps = int(round((TRANSIENT + TIME) / DT))
    j28 = int(np.argmin(np.abs(rhos - 28.0)))
    variants = [("numba rk4+qr f64", spectra), ("numba tuned rk4+qr f64", spectra_tuned)]
    rows = []
    for name, run in variants:
        seconds, times, result = measure(run, rhos)
        rows.append(
            {
                "variant": name,
                "seconds": seconds,
                "runs": times,
                "trajectories_per_s": n / seconds,
                "trajectory_steps_per_s": n * steps / seconds,
                "rho": float(rhos[j28]),
                "spectrum": [float(v) for v in result[j28]],
                "sum": float(result[j28].sum()),
            }
        )
    if JSON:
        print(
            json.dumps(
                {"peer": "numba", "numba": numba.__version__, "threads": THREADS, "n": n,
                 "steps": steps, "rows": rows}
            )
        )
        return
    print(
        f"lyapunov: Lorenz full spectrum, rho = linspace(0, {RHO_HI}, N), transient "
        f"{TRANSIENT}, T = {TIME}, RK4 dt = {DT}, QR every {RENORM}, f64, numba "
        f"{numba.__version__}, {THREADS} threads"
    )
    print(HEADER)
    for r in rows:
        row("lyapunov", r["variant"], n, r["seconds"], n, "trajectories")
        row("lyapunov", r["variant"], n, r["seconds"], n * steps, "traj-steps")
        print(f"  rho = {r['rho']:.3f}: spectrum {r['spectrum']}, sum {r['sum']:.5f}")


if __name__ == "__main__":
    main()
