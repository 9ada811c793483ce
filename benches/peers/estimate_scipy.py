"""estimate with SciPy: `scipy.optimize.least_squares` (trust-region reflective, bounds)
fitting the Lorenz parameters of each trajectory separately, one fit after another (SciPy
has no batched least-squares; this is how a SciPy user fits many trajectories), the model
integrated by `solve_ivp`, float64. Two ways to give the fit its Jacobian: the forward
sensitivity equations (`analytic`) or SciPy's finite differences (`fd`).

    pip install numpy scipy
    python benches/peers/estimate_scipy.py [N] [--variants analytic,fd] [--method RK45]
                                           [--seed S] [--reps R] [--threads K] [--json]

The problem is `phaseflow bench estimate`'s: N independent fits (default N = 200) of
    dx/dt = sigma (y - x),  dy/dt = x (rho - z) - y,  dz/dt = x y - beta z,
u0 = (-8, 7, 27) known (not fitted), t in [0, 1]. Fit j = 0..N-1 has the true parameters
    sigma = 10 (0.8 + 0.4 a), rho = 28 (0.8 + 0.4 b), beta = (8/3) (0.8 + 0.4 c),
    (a, b, c) = frac(0.5 + j (1/g, 1/g^2, 1/g^3)),  g = 1.22074408460575947536
(Roberts' R3 low-discrepancy sequence: every parameter within +-20% of the classic
values). All three states are observed at t_k = k/100, k = 1..100 (300 values per fit):
the true trajectory (solve_ivp DOP853 at rtol = atol = 1e-12) plus independent normal
noise of standard deviation 0.1 on every value, drawn from numpy.random.default_rng(S)
(`--seed`, default 0), fit after fit. phaseflow draws its noise with its own generator:
the same distribution, different draws, so per-fit estimates differ between the two while
the statistics below should agree. Making the data is not timed.

Each fit: least_squares(method="trf", bounds sigma in [1, 30], rho in [1, 60], beta in
[0.5, 6], start (10, 28, 8/3), default xtol = ftol = gtol = 1e-8) on the 300 residuals
model(t_k) - y, the model integrated by solve_ivp with `--method` (default RK45; DOP853
works too) at rtol = atol = 1e-8 (phaseflow's defaults for estimate) and t_eval = t_k.

  analytic  jac= a callable: solve_ivp integrates the 3 states together with the 3 x 3
            forward sensitivities S = du/dp, dS/dt = J_u S + J_p, S(0) = 0 (12 equations,
            the tolerances applying to all of them), and the Jacobian is S(t_k) as a
            (300, 3) matrix. least_squares asks for the residuals and then the Jacobian at
            the same point, so both come from ONE 12-equation solve, cached by x.
  fd        jac="2-point" (SciPy's default): the residual integrates the 3 states only;
            each Jacobian costs 3 more solves (one per parameter), which SciPy does not
            count in nfev.

Reported per variant, for the whole set of N fits (R repetitions, `--reps`, default 1; no
warm-up, nothing compiles; the row gives the best): wall time and fits per second, then
on the line below the share of fits that converged (least_squares status > 0); coverage,
the share of (fit, parameter) pairs with |estimate - truth| <= 2 stderr, where stderr is
from the covariance s2 (J^T J)^-1 at the solution with s2 = 2 cost / (300 - 3) (about
0.95 when the fits and their error bars are right); the median over those pairs of
|estimate - truth| / truth; the mean nfev and njev per fit (least_squares' counts), the
mean number of solve_ivp calls and right-hand-side evaluations per fit; and fits per
CPU-second of the process (`time.process_time`). `--json` prints one JSON object per
variant instead. One fit at a time is single-threaded; `--threads K` (default 1) pins the
process to cores 0..K-1 and sizes the BLAS pools.
"""

import json
import sys
import time

try:
    from common import HEADER, pin_threads, row, threads_arg
except ImportError as e:
    sys.exit(f"this peer needs numpy and SciPy (pip install numpy scipy): {e}")


def option(name, default):
    """`--name VALUE` from the command line (removed from sys.argv), else `default`."""
    if name not in sys.argv:
        return default
    at = sys.argv.index(name)
    value = sys.argv[at + 1]
    del sys.argv[at : at + 2]
    return value


THREADS = threads_arg(1)
VARIANTS = option("--variants", "analytic,fd").split(",")
METHOD = option("--method", "RK45")
SEED = int(option("--seed", "0"))
REPS = int(option("--reps", "1"))
JSON = "--json" in sys.argv
if JSON:
    sys.argv.remove("--json")
for name in VARIANTS:
    if name not in ("analytic", "fd"):
        sys.exit(f"unknown variant {name!r}: use analytic, fd or both")
pin_threads(THREADS)

try:
    import numpy as np
    import scipy
    from scipy.integrate import solve_ivp
    from scipy.optimize import least_squares
except ImportError as e:
    sys.exit(f"this peer needs numpy and SciPy (pip install numpy scipy): {e}")

U0 = (-8.0, 7.0, 27.0)
CLASSIC = np.array([10.0, 28.0, 8.0 / 3.0])
LOWER = np.array([1.0, 1.0, 0.5])
UPPER = np.array([30.0, 60.0, 6.0])
TIMES = np.arange(1, 101) / 100.0
T_SPAN = (0.0, 1.0)
NOISE = 0.1
RTOL = ATOL = 1e-8
DATA_TOL = 1e-12
G = 1.22074408460575947536
R3 = np.array([1.0 / G, 1.0 / G**2, 1.0 / G**3])
M = 3 * len(TIMES)


def truths(n):
    """The true (sigma, rho, beta) of every fit, shape (n, 3)."""
    j = np.arange(n, dtype=np.float64)[:, None]
    frac = np.mod(0.5 + j * R3, 1.0)
    return CLASSIC * (0.8 + 0.4 * frac)


def lorenz(_t, u, sigma, rho, beta):
    x, y, z = u
    return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]


def lorenz_sens(_t, w, sigma, rho, beta):
    """The states and, row-major, S[i][k] = du_i/dp_k for p = (sigma, rho, beta)."""
    x, y, z = w[0], w[1], w[2]
    out = [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]
    # J_u = [[-sigma, sigma, 0], [rho - z, -1, -x], [y, x, -beta]]
    # J_p = [[y - x, 0, 0], [0, x, 0], [0, 0, -z]]
    s0, s1, s2 = w[3:6], w[6:9], w[9:12]
    jp = ((y - x, 0.0, 0.0), (0.0, x, 0.0), (0.0, 0.0, -z))
    out += [sigma * (s1[k] - s0[k]) + jp[0][k] for k in range(3)]
    out += [(rho - z) * s0[k] - s1[k] - x * s2[k] + jp[1][k] for k in range(3)]
    out += [y * s0[k] + x * s1[k] - beta * s2[k] + jp[2][k] for k in range(3)]
    return out


def make_data(params, rng):
    """Observations (100, 3) for each fit: DOP853 at 1e-12 plus N(0, 0.1^2) noise."""
    data = np.empty((len(params), len(TIMES), 3))
    for j, p in enumerate(params):
        sol = solve_ivp(
            lorenz, T_SPAN, U0, method="DOP853", t_eval=TIMES,
            rtol=DATA_TOL, atol=DATA_TOL, args=tuple(p),
        )
        if not sol.success:
            sys.exit(f"data for fit {j} failed: {sol.message}")
        data[j] = sol.y.T + rng.normal(0.0, NOISE, size=(len(TIMES), 3))
    return data


class Model:
    """Residuals (and, for `analytic`, their Jacobian) of one fit, counting the solves."""

    def __init__(self, obs):
        self.obs = obs.ravel()  # row k*3 + i: state i at t_k
        self.solves = 0
        self.rhs = 0
        self.key = None
        self.cached = None

    def _solve(self, fun, u0, p):
        sol = solve_ivp(
            fun, T_SPAN, u0, method=METHOD, t_eval=TIMES,
            rtol=RTOL, atol=ATOL, args=tuple(p),
        )
        self.solves += 1
        self.rhs += sol.nfev
        if not sol.success or sol.y.shape[1] != len(TIMES):
            return None
        return sol.y

    def residuals(self, p):
        """3 equations only (the `fd` variant and its difference quotients)."""
        y = self._solve(lorenz, U0, p)
        if y is None:
            return np.full(M, np.nan)  # trf shrinks its step on non-finite residuals
        return y.T.ravel() - self.obs

    def _sens(self, p):
        key = p.tobytes()
        if key != self.key:
            y = self._solve(lorenz_sens, list(U0) + [0.0] * 9, p)
            if y is None:
                self.cached = (np.full(M, np.nan), np.full((M, 3), np.nan))
            else:
                r = y[:3].T.ravel() - self.obs
                jac = y[3:].T.reshape(M, 3)  # [k, i, param] -> row k*3 + i
                self.cached = (r, jac)
            self.key = key
        return self.cached

    def sens_residuals(self, p):
        return self._sens(p)[0]

    def sens_jacobian(self, p):
        return self._sens(p)[1]


def fit(obs, variant):
    model = Model(obs)
    if variant == "analytic":
        fun, jac = model.sens_residuals, model.sens_jacobian
    else:
        fun, jac = model.residuals, "2-point"
    res = least_squares(fun, CLASSIC, jac=jac, bounds=(LOWER, UPPER), method="trf")
    return res, model


def stderr(res):
    """Standard errors from s2 (J^T J)^-1 at the solution, s2 = 2 cost / (m - 3)."""
    s2 = 2.0 * res.cost / (M - 3)
    try:
        cov = s2 * np.linalg.inv(res.jac.T @ res.jac)
    except np.linalg.LinAlgError:
        return np.full(3, np.nan)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.diag(cov))


def run_all(data, variant):
    n = len(data)
    est, err = np.empty((n, 3)), np.empty((n, 3))
    status = np.empty(n, dtype=int)
    work = np.zeros(4)  # nfev, njev, solves, rhs
    for j in range(n):
        res, model = fit(data[j], variant)
        est[j], err[j], status[j] = res.x, stderr(res), res.status
        work += (res.nfev, res.njev or 0, model.solves, model.rhs)
    return est, err, status, work / n


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 200
    params = truths(n)
    data = make_data(params, np.random.default_rng(SEED))
    if not JSON:
        print(
            f"SciPy {scipy.__version__}, numpy {np.__version__}, {THREADS} core(s) pinned; "
            f"Lorenz estimate, {M} observations/fit, noise sd {NOISE:g}, solve_ivp "
            f"{METHOD} rtol {RTOL:g} atol {ATOL:g}, f64, seed {SEED}, {REPS} repetition(s)"
        )
        print(HEADER)
    for variant in VARIANTS:
        times, cpu = [], []
        for _ in range(REPS):
            start, start_cpu = time.perf_counter(), time.process_time()
            est, err, status, work = run_all(data, variant)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        converged = float(np.mean(status > 0))
        miss = np.abs(est - params)
        coverage = float(np.mean(miss <= 2.0 * err))  # NaN stderr counts as a miss
        median_rel = float(np.median(miss / params))
        nfev, njev, solves, rhs = work
        best = min(times)
        label = f"scipy-trf {variant}"
        if JSON:
            print(
                json.dumps(
                    {
                        "scenario": "estimate",
                        "peer": f"scipy {scipy.__version__}",
                        "variant": label,
                        "method": METHOD,
                        "rtol": RTOL,
                        "atol": ATOL,
                        "seed": SEED,
                        "size": n,
                        "seconds_best": best,
                        "seconds_all": times,
                        "cpu_seconds_all": cpu,
                        "throughput": n / best,
                        "unit": "fits/s",
                        "fits_per_cpu_second": n / min(cpu),
                        "converged": converged,
                        "coverage": coverage,
                        "median_rel_error": median_rel,
                        "per_fit": {
                            "nfev": nfev,
                            "njev": njev,
                            "solves": solves,
                            "rhs": rhs,
                        },
                    }
                )
            )
            sys.stdout.flush()
            continue
        row("estimate", label, n, best, n, "fits")
        print(
            f"{'':<15} converged {converged:.3f}, coverage(2 se) {coverage:.3f}, median "
            f"|est - true|/true {median_rel:.2e}; per fit {nfev:.1f} nfev, {njev:.1f} njev, "
            f"{solves:.1f} solves, {rhs:.0f} rhs; {n / min(cpu):.2f} fits per CPU-second"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
