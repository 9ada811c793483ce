#!/usr/bin/env bash
# The Zarr store's cost against the .npy files, and two shard processes against one
# (issue 29): RK4 Lorenz, N = 10^6, 10^4 steps, 101 saves (1.2 GB of states), each form
# run twice in one session so that ratios come from the same machine state.
#   bash benches/store.sh [BINARY]      (default target/release/phaseflow)
set -euo pipefail
P=${1:-target/release/phaseflow}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
A=(lorenz -n 1000000 --sweep rho=0:50 --tspan 0:10 --dt 0.001 --save-every 100 -q)
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
for r in 1 2; do
    npy=$(secs "$P" simulate "${A[@]}" -o "$W/d$r")
    none=$(secs "$P" simulate "${A[@]}" -o "$W/n$r.zarr" --compression none)
    zstd=$(secs "$P" simulate "${A[@]}" -o "$W/z$r.zarr")
    s=$(date +%s.%N)
    "$P" simulate "${A[@]}" -o "$W/s$r.zarr" --shard 0/2 >/dev/null &
    "$P" simulate "${A[@]}" -o "$W/s$r.zarr" --shard 1/2 >/dev/null
    wait
    two=$(echo "$(date +%s.%N) - $s" | bc)
    printf 'run %d: npy %.1f s · zarr none %.1f s (%.3f×) · zarr zstd %.1f s (%.3f×) · 2 shards (zstd) %.1f s (%.3f× one process)\n' \
        "$r" "$npy" "$none" "$(echo "$none / $npy" | bc -l)" "$zstd" "$(echo "$zstd / $npy" | bc -l)" \
        "$two" "$(echo "$two / $zstd" | bc -l)"
done
raw=$(du -sb "$W/d1/states.npy" | cut -f1)
packed=$(du -sb "$W/z1.zarr/states" | cut -f1)
printf 'states: %d bytes as .npy, %d with zstd:3 (ratio %.2f)\n' "$raw" "$packed" "$(echo "$raw / $packed" | bc -l)"
