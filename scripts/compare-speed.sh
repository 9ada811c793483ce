#!/usr/bin/env bash
# Times two phaseflow binaries on the headline workloads, interleaved (old, new, old, ...),
# so that a noisy machine's drift hits both alike; compare ratios within one run.
# Usage: scripts/compare-speed.sh OLD_BIN NEW_BIN   (prints wall seconds and bench lines)
set -u
old=${1:?usage: compare-speed.sh OLD_BIN NEW_BIN}; new=${2:?usage: compare-speed.sh OLD_BIN NEW_BIN}
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1 || echo "FAILED: $*"; echo "$(date +%s.%N) - $s" | bc; }
for i in 1 2 3; do
  for side in old new; do
    b=$old; [ $side = new ] && b=$new
    echo "$side rk4   $(t $b simulate lorenz -n 100000 --sweep rho=0:50 --tspan 0:10 --dt 0.001 --solver rk4 -q)"
    echo "$side tsit5 $(t $b simulate lorenz -n 100000 --sweep rho=0:50 --tspan 0:10 --solver tsit5 --rtol 1e-6 --atol 1e-6 -q)"
  done
done
for side in old new new old; do
  b=$old; [ $side = new ] && b=$new
  echo "$side $($b bench mlp-train 2>&1 | grep -iE 'samples/s' | head -2 | tr '\n' ' ')"
  echo "$side $($b bench deeponet-train 2>&1 | grep -iE 'per 1,000|iteration' | head -2 | tr '\n' ' ')"
done
