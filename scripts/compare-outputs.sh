#!/usr/bin/env bash
# Runs one matrix of ensemble runs (every solver, both precisions, every save mode and output,
# several chunks) with two phaseflow binaries and compares every result file byte for byte.
# Used to show a refactor changes no output:  scripts/compare-outputs.sh OLD_BIN NEW_BIN
# Exit 0 when every .npy is identical; prints each run's verdict.
set -uo pipefail
old=${1:?usage: compare-outputs.sh OLD_BIN NEW_BIN}
new=${2:?usage: compare-outputs.sh OLD_BIN NEW_BIN}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0 runs=0

run_pair() {  # name, then simulate arguments
    local name=$1; shift
    runs=$((runs + 1))
    for side in old new; do
        local bin=$old; [ $side = new ] && bin=$new
        if ! "$bin" simulate "$@" -q -o "$work/$side/$name" >"$work/$name.$side.log" 2>&1; then
            echo "FAIL  $name: $side binary failed: $(tail -1 "$work/$name.$side.log")"
            fail=1; return
        fi
    done
    local diff=""
    for f in "$work/old/$name"/*.npy; do
        cmp -s "$f" "$work/new/$name/$(basename "$f")" || diff="$diff $(basename "$f")"
    done
    local n_old n_new
    n_old=$(ls "$work/old/$name"/*.npy | wc -l); n_new=$(ls "$work/new/$name"/*.npy | wc -l)
    [ "$n_old" = "$n_new" ] || diff="$diff (file count $n_old vs $n_new)"
    if [ -n "$diff" ]; then echo "DIFF  $name:$diff"; fail=1; else echo "same  $name ($n_old files)"; fi
}

outs=states,trajectory-stats,ensemble-stats
for prec in f32 f64; do
    for s in euler heun rk4; do
        run_pair "$s-$prec-final" lorenz -n 3000 --chunk 1000 --sweep rho=0:50 --solver $s --precision $prec --tspan 0:2 --dt 0.001
        run_pair "$s-$prec-every" lorenz -n 3000 --chunk 1000 --sweep rho=0:50 --solver $s --precision $prec --tspan 0:2 --dt 0.001 --save-every 50 --outputs $outs
    done
    for s in bs3 dp5 tsit5 dop853; do
        run_pair "$s-$prec-final" lorenz -n 3000 --chunk 1000 --sweep rho=0:50 --solver $s --precision $prec --tspan 0:5 --rtol 1e-6 --atol 1e-6
        run_pair "$s-$prec-saveat" lorenz -n 3000 --chunk 1000 --sweep rho=0:50 --solver $s --precision $prec --tspan 0:5 --rtol 1e-6 --atol 1e-6 --saveat 0:0.1:5 --outputs $outs
        run_pair "$s-$prec-fixed" lorenz -n 2000 --chunk 1000 --solver $s --fixed-step --precision $prec --tspan 0:2 --dt 0.001 --save-every 100
    done
    run_pair "vdp-$prec-stats" van_der_pol -n 2000 --chunk 500 --sweep mu=0.1:20 --solver tsit5 --precision $prec --rtol 1e-5 --atol 1e-7 --max-steps 400 --saveat 0:0.5:20
    run_pair "duffing-$prec-grid" duffing --sweep gamma=0.2:0.6:20 --sweep omega=1:1.4:30 --solver rk4 --precision $prec --save-every 500
    run_pair "lorenz-$prec-u0" lorenz -n 1500 --chunk 400 --u0-uniform x=-20:20 --u0-uniform z=0:50 --seed 7 --solver dp5 --precision $prec --tspan 0:3 --saveat 0:0.25:3 --rtol x=1e-5 --atol 1e-7
    run_pair "henon-$prec-long" henon_heiles -n 256 --solver dop853 --precision $prec --tspan 0:200 --rtol 1e-9 --atol 1e-9 --saveat 0:1:200 --workgroup-size 32
done
echo "$runs runs compared"
exit $fail
