"""paper-lorenz (fixed step) and ode-fixed with torchdiffeq, and the adaptive cases with
torchode when it is installed (torchdiffeq's adaptive solvers take one step size for the
whole batch, so its adaptive figures are not like for like; torchode controls each
trajectory's step, as phaseflow does).

    pip install torch torchdiffeq torchode
    python benches/peers/torchdiffeq_lorenz.py [LARGEST_N] [--threads K]

Prints phaseflow's table columns; compare with `phaseflow bench paper-lorenz -n LARGEST_N`
and `phaseflow bench ode-fixed -n N`. Float32 throughout.
"""

import sys

from common import threads_arg, HEADER, T1, error, pin_threads, rho, row, sizes, timed

THREADS = threads_arg(2)
pin_threads(THREADS)

try:
    import torch
    import torchdiffeq
except ImportError as e:
    sys.exit(f"this peer needs PyTorch and torchdiffeq (pip install torch torchdiffeq): {e}")
try:
    import torchode
except ImportError:
    torchode = None

torch.set_num_threads(THREADS)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Lorenz(torch.nn.Module):
    def __init__(self, r):
        super().__init__()
        self.r = r

    def forward(self, t, u):
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        return torch.stack([10.0 * (y - x), x * (self.r - z) - y, x * y - 2.666 * z], dim=1)


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def fixed(n, method):
    r = torch.tensor(rho(n), dtype=torch.float32, device=DEVICE)
    u0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float32, device=DEVICE).repeat(n, 1)
    t = torch.tensor([0.0, T1], dtype=torch.float32, device=DEVICE)
    f = Lorenz(r)

    def run():
        with torch.no_grad():
            out = torchdiffeq.odeint(f, u0, t, method=method, options={"step_size": 1e-3})
        sync()
        return out[-1].cpu().numpy()

    return timed(run)


def adaptive(n, tol):
    r = torch.tensor(rho(n), dtype=torch.float32, device=DEVICE)
    u0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float32, device=DEVICE).repeat(n, 1)
    f = Lorenz(r)
    term = torchode.ODETerm(lambda t, u: f(t, u))
    step = torchode.Tsit5(term=term)
    control = torchode.IntegralController(atol=tol, rtol=tol, term=term)
    solver = torchode.AutoDiffAdjoint(step, control)
    t_eval = torch.tensor([[0.0, T1]], dtype=torch.float32, device=DEVICE).repeat(n, 1)

    def run():
        with torch.no_grad():
            sol = solver.solve(torchode.InitialValueProblem(y0=u0, t_eval=t_eval))
        sync()
        return sol.ys[:, -1].cpu().numpy(), sol.stats["n_steps"].sum().item()

    seconds, (final, steps) = timed(run)
    return seconds, final, steps


def main():
    print(f"PyTorch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, {DEVICE}, {THREADS} thread(s)")
    print(HEADER)
    for n in sizes(1 << 20):
        seconds, final = fixed(n, "rk4")
        row("ode-fixed", "rk4 dt=1e-3", n, seconds, n * 1000.0, "trajectory-steps", error(final, n))
        # torchdiffeq has no fixed-step Tsit5; its fixed-step methods are euler,
        # midpoint, rk4 and explicit_adams.
        if torchode is None:
            continue
        for scenario, variant, tol in [
            ("paper-lorenz", "tsit5 tol=1e-8", 1e-8),
            ("ode-adaptive", "tsit5 tol=1e-6", 1e-6),
        ]:
            seconds, final, steps = adaptive(n, tol)
            row(scenario, variant + " (torchode)", n, seconds, steps, "steps", error(final, n))
    if torchode is None:
        print("torchode is not installed: adaptive cases skipped (pip install torchode)")


if __name__ == "__main__":
    main()
