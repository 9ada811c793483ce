"""sde-em and the adaptive SDE comparison with Diffrax (JAX, `jit(vmap(diffeqsolve))`), one
solve per path, vmapped over per-path Brownian keys, float32.

    pip install jax diffrax
    python benches/peers/diffrax_sde.py [N] [--threads K] [--tree-n M] [--gbm-n M] [--only ou|gbm]

1. sde-em (Ornstein-Uhlenbeck): dX = theta (mu - X) dt + sigma dW, theta = 1, mu = 0.5,
   sigma = 0.3, X0 = 1, t in [0, 1], 1,000 Euler-Maruyama steps (`diffrax.Euler()` on
   `MultiTerm(ODETerm, ControlTerm)`), with two Brownian paths:
   - `UnsafeBrownianPath` (a fresh normal per step, fixed steps only) on N paths
     (default 10^5);
   - `VirtualBrownianTree` (tol = dt / 2: each increment is a tree descent of ~11 levels,
     the price of a path that can be queried anywhere) on `--tree-n` paths (default 10^4).
   Throughput is path-steps per second; the error column is |ensemble mean - exact mean|,
   and the line under each row gives mean and variance of X(1) beside the closed forms
   mu + (X0 - mu) e^{-theta T} and sigma^2 / (2 theta) (1 - e^{-2 theta T}), in standard
   errors (z); Euler-Maruyama's own bias is ~0.5 standard error at N = 10^6, less below.

2. sde-adaptive (geometric Brownian motion, Ito): dS = mu S dt + sigma S dW with mu = 1,
   sigma = 0.5, S0 = 1, t in [0, 1], on `--gbm-n` paths (default 4096), each on its own
   `VirtualBrownianTree` (tol = 2^-14, finer than any step taken here), so the exact
   solution on the same path is S0 exp((mu - sigma^2 / 2) T + sigma W_T) with
   W_T = bm.evaluate(0, 1). Error = mean over paths of |S_T - exact S_T| (strong error).
   - adaptive: `SPaRK` (Diffrax's recommended adaptive SDE solver: embedded error
     estimate, needs space-time Levy area) with `PIDController(pcoeff=0.1, icoeff=0.3)`
     (the insensitive PI controller Diffrax's docs recommend for SDEs) at several
     tolerances; also `Heun` (embedded Euler estimate), which needs no Levy area. Both
     converge to the Stratonovich solution, so they integrate GBM's Stratonovich form
     (drift (mu - sigma^2 / 2) S, same diffusion), whose solution is the same process.
     error_order = 1.5 (strong order 1 for scalar, hence commutative, noise, plus 0.5 as
     Diffrax's error_order docs prescribe); Diffrax's default assumes general noise
     (order 0.5 + 0.5 = 1). Throughput counts accepted steps; rejected steps are printed.
   - fixed step, for an error-vs-time curve: Euler-Maruyama on the Ito form and SPaRK on
     the Stratonovich form at dt = 2^-4 ... 2^-10 (dyadic, so the f32 time grid is exact).

Each figure is the median of three runs after a warm-up run that compiles.
"""

import math
import sys

from common import HEADER, pin_threads, row, threads_arg, timed


def option(name, default, cast=int):
    """`--name VALUE` from the command line (removed from sys.argv), else `default`."""
    if name not in sys.argv:
        return default
    at = sys.argv.index(name)
    value = cast(float(sys.argv[at + 1])) if cast is int else cast(sys.argv[at + 1])
    del sys.argv[at : at + 2]
    return value


THREADS = threads_arg(2)
TREE_N = option("--tree-n", 10_000)
GBM_N = option("--gbm-n", 4096)
ONLY = option("--only", "all", str)
pin_threads(THREADS)

try:
    import diffrax
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np
except ImportError as e:
    sys.exit(f"this peer needs JAX and Diffrax (pip install jax diffrax): {e}")

F32 = jnp.float32

# --- sde-em: Ornstein-Uhlenbeck ------------------------------------------------------

THETA, MU, SIGMA, X0, T1, STEPS = 1.0, 0.5, 0.3, 1.0, 1.0, 1000
DT = T1 / STEPS
EXACT_MEAN = MU + (X0 - MU) * math.exp(-THETA * T1)
EXACT_VAR = SIGMA**2 / (2 * THETA) * (1 - math.exp(-2 * THETA * T1))


def ou_drift(t, x, args):
    return THETA * (MU - x)


def ou_diffusion(t, x, args):
    return jnp.asarray(SIGMA, dtype=x.dtype)


def ou_solver(tree):
    def one(key):
        if tree:
            bm = diffrax.VirtualBrownianTree(0.0, T1, tol=DT / 2, shape=(), key=key)
        else:
            bm = diffrax.UnsafeBrownianPath(shape=(), key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(ou_drift), diffrax.ControlTerm(ou_diffusion, bm))
        sol = diffrax.diffeqsolve(
            terms,
            diffrax.Euler(),
            t0=0.0,
            t1=T1,
            dt0=DT,
            y0=jnp.asarray(X0, dtype=F32),
            saveat=diffrax.SaveAt(t1=True),
            max_steps=STEPS + 8,
            # No gradients are taken; UnsafeBrownianPath refuses the default
            # checkpointing adjoint, and the tree runs the same way for a like comparison.
            adjoint=diffrax.ForwardMode(),
        )
        return sol.ys[-1], sol.stats["num_steps"]

    return jax.jit(jax.vmap(one))


def moments(final):
    """Mean and variance of X(T) in f64, and their distance from the closed forms in
    standard errors: sqrt(var / N) for the mean, var sqrt(2 / (N - 1)) for the variance
    (X(T) is Gaussian)."""
    x = np.asarray(final, dtype=np.float64)
    n = x.size
    mean, var = float(x.mean()), float(x.var(ddof=1))
    z_mean = (mean - EXACT_MEAN) / math.sqrt(EXACT_VAR / n)
    z_var = (var - EXACT_VAR) / (EXACT_VAR * math.sqrt(2.0 / (n - 1)))
    return mean, var, z_mean, z_var


def run_ou(n, tree, variant):
    solve = ou_solver(tree)
    keys = jr.split(jr.key(24), n)

    def run():
        final, steps = solve(keys)
        final.block_until_ready()
        return final, steps

    seconds, (final, steps) = timed(run)
    # Euler with ConstantStepSize: the f32 clock may need one short last step to land on
    # t1; count the steps actually taken.
    work = float(np.asarray(steps, dtype=np.float64).sum())
    mean, var, z_mean, z_var = moments(final)
    row("sde-em", variant, n, seconds, work, "path-steps", abs(mean - EXACT_MEAN))
    print(
        f"{'':<15} mean {mean:.6f} (exact {EXACT_MEAN:.6f}, z {z_mean:+.2f})"
        f"  var {var:.6f} (exact {EXACT_VAR:.6f}, z {z_var:+.2f})"
        f"  steps/path {work / n:.0f}"
    )
    sys.stdout.flush()


# --- sde-adaptive: geometric Brownian motion ----------------------------------------

G_MU, G_SIGMA, S0 = 1.0, 0.5, 1.0
TREE_TOL = 2.0**-14


def gbm_drift_ito(t, s, args):
    return G_MU * s


def gbm_drift_strat(t, s, args):
    # Stratonovich drift of the same process: mu S - (1/2) sigma (d/dS)(sigma S) S.
    return (G_MU - 0.5 * G_SIGMA**2) * s


def gbm_diffusion(t, s, args):
    return G_SIGMA * s


def gbm_solver(method, tol=None, dt=None):
    """One solve per path; returns (S_T, exact S_T on the same path, accepted, rejected)."""
    levy = diffrax.SpaceTimeLevyArea if method == "spark" else diffrax.BrownianIncrement

    def one(key):
        bm = diffrax.VirtualBrownianTree(0.0, T1, tol=TREE_TOL, shape=(), key=key, levy_area=levy)
        drift = gbm_drift_ito if method == "euler" else gbm_drift_strat
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(gbm_diffusion, bm))
        solver = {"euler": diffrax.Euler, "heun": diffrax.Heun, "spark": diffrax.SPaRK}[method]()
        if tol is None:
            controller, dt0 = diffrax.ConstantStepSize(), dt
        else:
            controller = diffrax.PIDController(
                rtol=tol, atol=tol, pcoeff=0.1, icoeff=0.3, error_order=1.5
            )
            # Diffrax has no initial step-size guess for SDEs; start from 1/100 of the span.
            dt0 = 0.01
        sol = diffrax.diffeqsolve(
            terms,
            solver,
            t0=0.0,
            t1=T1,
            dt0=dt0,
            y0=jnp.asarray(S0, dtype=F32),
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=controller,
            max_steps=1 << 16,
            adjoint=diffrax.ForwardMode(),
        )
        w_t = bm.evaluate(0.0, T1)
        exact = S0 * jnp.exp((G_MU - 0.5 * G_SIGMA**2) * T1 + G_SIGMA * w_t)
        return (
            sol.ys[-1],
            exact,
            sol.stats["num_accepted_steps"],
            sol.stats["num_rejected_steps"],
        )

    return jax.jit(jax.vmap(one))


def run_gbm(n, method, variant, tol=None, dt=None):
    solve = gbm_solver(method, tol, dt)
    keys = jr.split(jr.key(2024), n)

    def run():
        out = solve(keys)
        out[0].block_until_ready()
        return out

    seconds, (final, exact, accepted, rejected) = timed(run)
    final = np.asarray(final, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    err = float(np.abs(final - exact).mean())
    acc = float(np.asarray(accepted, dtype=np.float64).sum())
    rej = float(np.asarray(rejected, dtype=np.float64).sum())
    scenario = "sde-adaptive" if tol is not None else "sde-gbm-fixed"
    row(scenario, variant, n, seconds, acc, "accepted steps", err)
    print(
        f"{'':<15} steps/path accepted {acc / n:.1f}, rejected {rej / n:.1f};"
        f"  exact E[S_T] = {S0 * math.exp(G_MU * T1):.4f}, sample {final.mean():.4f}"
    )
    sys.stdout.flush()


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 100_000
    print(
        f"Diffrax {diffrax.__version__}, JAX {jax.__version__}, {jax.devices()[0]}, "
        f"{THREADS} thread(s)"
    )
    print(HEADER)
    if ONLY in ("all", "ou"):
        run_ou(n, False, "euler unsafe-bm")
        run_ou(TREE_N, True, "euler vbt tol=dt/2")
    if ONLY in ("all", "gbm"):
        # SPaRK's embedded estimate is far below its actual error on this problem (12
        # steps per path at tol = 1e-3), so its tolerances reach further down than Heun's.
        for tol in (1e-2, 1e-3, 1e-4, 1e-5):
            run_gbm(GBM_N, "spark", f"spark pid tol={tol:g}", tol=tol)
        for tol in (3e-2, 1e-2, 3e-3, 1e-3):
            run_gbm(GBM_N, "heun", f"heun pid tol={tol:g}", tol=tol)
        for k in (4, 6, 8, 10):
            run_gbm(GBM_N, "euler", f"euler dt=2^-{k}", dt=2.0**-k)
        for k in (4, 6, 8, 10):
            run_gbm(GBM_N, "spark", f"spark dt=2^-{k}", dt=2.0**-k)


if __name__ == "__main__":
    main()
