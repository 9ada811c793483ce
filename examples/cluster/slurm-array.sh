#!/usr/bin/env bash
# A Slurm job array: 8 tasks, one GPU each, fill one Zarr store on a shared file system.
# Submit with `sbatch slurm-array.sh`; a requeued or resubmitted task continues its shard
# where it stopped, and the last task to finish finalizes the store.
#SBATCH --job-name=phaseflow-lorenz
#SBATCH --array=0-7
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%a.out
set -euo pipefail

# The store must be on a file system every node sees (Lustre, GPFS, NFS).
STORE=${STORE:-$SLURM_SUBMIT_DIR/lorenz.zarr}

# --shard auto/8 takes this task's index from SLURM_ARRAY_TASK_ID (less
# SLURM_ARRAY_TASK_MIN, so --array=1-8 works too). Every task runs the same command.
phaseflow simulate lorenz -n 100000000 --sweep rho=0:50 --solver tsit5 \
    --saveat 0:0.1:10 -o "$STORE" --shard "auto/${SLURM_ARRAY_TASK_COUNT}" -q

# Any task (or you, later) can ask where the store stands:
phaseflow store status "$STORE" || true
