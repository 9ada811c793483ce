"""paper-lorenz and ode-adaptive with Diffrax (JAX, jit + vmap), the way its docs batch an
ensemble: one solve per trajectory, vmapped over rho, so each trajectory keeps its own
step size as phaseflow's do.

    pip install jax diffrax
    python benches/peers/diffrax_lorenz.py [LARGEST_N] [--threads K]

Prints phaseflow's table columns; compare with `phaseflow bench paper-lorenz -n LARGEST_N`
and `phaseflow bench ode-adaptive -n N` on the same machine. Float32, as the benchmark
asks (JAX's default).
"""

import sys

from common import threads_arg, T1, HEADER, error, pin_threads, rho, row, sizes, timed

THREADS = threads_arg(2)
pin_threads(THREADS)

try:
    import diffrax
    import jax
    import jax.numpy as jnp
except ImportError as e:
    sys.exit(f"this peer needs JAX and Diffrax (pip install jax diffrax): {e}")


def vector_field(t, u, r):
    x, y, z = u
    return jnp.stack([10.0 * (y - x), x * (r - z) - y, x * y - 2.666 * z])


TERM = diffrax.ODETerm(vector_field)
U0 = jnp.array([1.0, 0.0, 0.0], dtype=jnp.float32)


def solver(adaptive, tol):
    def one(r):
        if adaptive:
            controller = diffrax.PIDController(rtol=tol, atol=tol)
            dt0 = None
        else:
            controller = diffrax.ConstantStepSize()
            dt0 = 1e-3
        sol = diffrax.diffeqsolve(
            TERM,
            diffrax.Tsit5(),
            t0=0.0,
            t1=T1,
            dt0=dt0,
            y0=U0,
            args=r,
            stepsize_controller=controller,
            saveat=diffrax.SaveAt(t1=True),
            max_steps=100_000,
        )
        return sol.ys[-1], sol.stats["num_steps"]

    return jax.jit(jax.vmap(one))


def main():
    print(f"Diffrax {diffrax.__version__}, JAX {jax.__version__}, {jax.devices()[0]}, {THREADS} thread(s)")
    print(HEADER)
    cases = [
        ("paper-lorenz", "tsit5 dt=1e-3", False, None),
        ("paper-lorenz", "tsit5 tol=1e-8", True, 1e-8),
        ("ode-adaptive", "tsit5 tol=1e-6", True, 1e-6),
    ]
    for n in sizes(1 << 20):
        rhos = jnp.asarray(rho(n), dtype=jnp.float32)
        for scenario, variant, adaptive, tol in cases:
            solve = solver(adaptive, tol)

            def run():
                final, steps = solve(rhos)
                final.block_until_ready()
                return final, steps

            seconds, (final, steps) = timed(run)
            work = float(n * 1000) if not adaptive else float(steps.sum())
            unit = "trajectory-steps" if not adaptive else "accepted steps"
            row(scenario, variant, n, seconds, work, unit, error(final, n))


if __name__ == "__main__":
    main()
