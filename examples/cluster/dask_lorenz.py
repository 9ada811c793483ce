"""A Lorenz ensemble on a Dask cluster: one lazy xarray Dataset whose blocks are shards of
the run, computed on the workers into one Zarr store (the store `phaseflow simulate -o`
writes). Run it as it is for a LocalCluster on this machine, or set DASK_SCHEDULER to a
running scheduler's address (workers started with `dask worker ADDRESS`, each with its own
GPU, e.g. PHASEFLOW_ADAPTER=0/1/... in their environment) and STORE to a path on a file
system every worker sees.

    python examples/cluster/dask_lorenz.py
"""

import os

import phaseflow.dask as pfd
from dask.distributed import Client, LocalCluster


def main() -> None:
    address = os.environ.get("DASK_SCHEDULER")
    cluster = None if address else LocalCluster(n_workers=2, processes=True, threads_per_worker=1)
    store = os.environ.get("STORE", "runs/dask_lorenz.zarr")
    with Client(address or cluster):
        ds = pfd.simulate("lorenz", store=store, n=1_000_000, sweep={"rho": (0, 50)},
                          solver="tsit5", tspan=(0, 10), saveat="0:0.5:10", shards=16)
        print(ds)
        # Only the final z values are pulled back; every shard runs once, on some worker.
        z = ds.states.sel(state="z").isel(time=-1)
        rho = ds.params.sel(parameter="rho")
        chaotic = (rho > 24.74).sum().compute()
        print(f"{int(chaotic)} trajectories with rho above the Hopf point; "
              f"final z from {float(z.min().compute()):.2f} to {float(z.max().compute()):.2f}")
    print(f"the store: {store} (xarray.open_zarr opens it)")
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
