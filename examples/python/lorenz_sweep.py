"""A parameter sweep from Python, plotted from its xarray Dataset.

10^4 Lorenz systems with rho swept over [0, 50], adaptive Tsit5, every trajectory saved
on one time grid; then the long-run range of z against rho (the onset of chaos near
rho = 24.74 shows as the band opening up), and one trajectory's z(t).

    pip install "./python[xarray]" matplotlib
    python examples/python/lorenz_sweep.py          # writes lorenz_sweep.png
"""

import matplotlib

matplotlib.use("Agg")  # headless: no display needed
import matplotlib.pyplot as plt

import phaseflow as pf

r = pf.simulate("lorenz", n=10_000, solver="tsit5", tspan=(0, 40), rtol=1e-6, atol=1e-6,
                saveat="0:0.05:40", sweep={"rho": (0, 50)})
print(r, f"in {r.stats['solve_s']:.2f} s")
ds = r.to_xarray()
late = ds.states.sel(state="z").where(ds.time >= 20, drop=True)  # after the transient

fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
a.fill_between(ds.rho, late.min("time"), late.max("time"), alpha=0.4, lw=0)
a.plot(ds.rho, late.mean("time"), lw=0.8)
a.set(xlabel="rho", ylabel="z for t in [20, 40]", title="range of z across the sweep")
one = ds.states.swap_dims(trajectory="rho").sel(rho=28.0, method="nearest")
b.plot(one.time, one.sel(state="z"), lw=0.6)
b.set(xlabel="t", ylabel="z", title=f"rho = {float(one.rho):.2f}")
fig.tight_layout()
fig.savefig("lorenz_sweep.png", dpi=120)
print("wrote lorenz_sweep.png")
