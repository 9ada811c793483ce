#!/usr/bin/env bash
# Where a kernel's time goes on lavapipe: the JIT code llvmpipe made for it, with CPU-clock
# samples attributed to its instructions.
#
#   scripts/profile-jit.sh [-s SECONDS] [-r FROM:TO] -- COMMAND...
#
# COMMAND (e.g. `target/release/phaseflow simulate lorenz -n 1048576 --solver tsit5
# --tspan 0:60 -o /tmp/x`) is run twice with address-space randomisation off, so that
# llvmpipe's JIT code lands at the same addresses both times:
#   1. under gdb, interrupted after SECONDS (default 5; the command must still be running
#      then), to dump every anonymous executable mapping (the JIT code);
#   2. under `perf record -e cpu-clock` to the end.
# It prints the share of samples in the JIT code, the hot 256-byte blocks of each mapping,
# and the instruction mix weighted by samples; with -r FROM:TO (offsets in a mapping, hex,
# e.g. -r 0x3300:0x3400) the annotated instructions of that range. The dumps, the
# disassembly and perf.data stay in $PROFILE_DIR (default /tmp/phaseflow-profile).
# Needs gdb, perf, objdump and python3. COMMAND must not write where a second run fails
# (remove its -o directory in between: the script does it for `-o DIR`).
#
# What it found: docs/performance.md, "2026-12-07: the adaptive step loop on lavapipe".
set -euo pipefail

seconds=5
range=""
while [ $# -gt 0 ]; do
    case "$1" in
        -s) seconds=$2; shift 2 ;;
        -r) range=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [-s SECONDS] [-r FROM:TO] -- COMMAND..." >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-s SECONDS] [-r FROM:TO] -- COMMAND..." >&2; exit 2; }
for tool in gdb perf objdump python3 setarch; do
    command -v "$tool" > /dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done

dir=${PROFILE_DIR:-/tmp/phaseflow-profile}
mkdir -p "$dir"
rm -f "$dir"/jit-*.bin "$dir"/jit-*.s

# The -o directory of COMMAND, removed before each run.
out=""
prev=""
for a in "$@"; do
    [ "$prev" = "-o" ] && out=$a
    prev=$a
done
clean() { [ -n "$out" ] && rm -rf "$out" || true; }

# 1. The JIT mappings, from a run interrupted while its kernels run.
clean
# The inferior is the newest process whose command line starts with COMMAND's program, by
# its full path as gdb starts it (gdb's and this script's command lines hold it further on).
first="^$(readlink -f "$(command -v "$1")")"
(sleep "$seconds"; pkill -INT -n -f "$first" || true) &
gdb -batch -ex 'handle SIGINT stop print' -ex run -ex 'info proc mappings' --args "$@" \
    > "$dir/gdb-maps.txt" 2>&1 || true
wait
maps=$(awk '$5 == "r-xp" && NF == 5 {print $1 "-" $2}' "$dir/gdb-maps.txt")
[ -n "$maps" ] || { echo "$0: no anonymous executable mapping seen: is -s $seconds too late?" >&2; exit 1; }
dump_cmds=()
for m in $maps; do
    dump_cmds+=(-ex "dump binary memory $dir/jit-${m%-*}.bin ${m%-*} ${m#*-}")
done
clean
(sleep "$seconds"; pkill -INT -n -f "$first" || true) &
gdb -batch -ex 'handle SIGINT stop print' -ex run "${dump_cmds[@]}" --args "$@" \
    > "$dir/gdb-dump.txt" 2>&1 || true
wait
for f in "$dir"/jit-*.bin; do
    [ -s "$f" ] || continue
    base=$(basename "$f" .bin); base=${base#jit-}
    objdump -D -b binary -m i386:x86-64 --adjust-vma="$base" "$f" > "${f%.bin}.s"
done

# 2. Samples, to the end of the run.
clean
setarch -R perf record -q -e cpu-clock -F 4000 -o "$dir/perf.data" "$@" > /dev/null 2>&1
clean
perf report -i "$dir/perf.data" --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5
perf report -i "$dir/perf.data" --sort sym -g none 2>/dev/null \
    | awk '/\[\.\] 0x/ {print $1, $NF}' > "$dir/samples.txt"

python3 - "$dir" "$range" <<'EOF'
import glob, os, re, sys
from collections import Counter

folder, wanted = sys.argv[1], sys.argv[2]
hot = {}
for line in open(os.path.join(folder, "samples.txt")):
    share, addr = line.split()
    hot[int(addr, 16)] = hot.get(int(addr, 16), 0.0) + float(share.rstrip("%"))
ins = re.compile(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(\S.*)")
for listing in sorted(glob.glob(os.path.join(folder, "jit-*.s"))):
    base = int(os.path.basename(listing)[4:-2], 16)
    code = [(int(m.group(1), 16), m.group(3)) for m in map(ins.match, open(listing)) if m]
    if not code:
        continue
    end = code[-1][0] + 16
    mine = {a: s for a, s in hot.items() if base <= a < end}
    total = sum(mine.values())
    if total < 0.5:
        continue
    print(f"\nmapping {base:#x}: {total:.1f}% of all samples")
    blocks = Counter()
    for a, s in mine.items():
        blocks[(a - base) // 256 * 256] += s
    print("  hot blocks (offset: % of all samples):",
          " ".join(f"{o:#x}:{s:.1f}" for o, s in sorted(blocks.items()) if s >= 0.5))
    mix = Counter()
    for a, text in code:
        mix[text.split()[0]] += mine.get(a, 0.0)
    print("  instructions by samples:",
          ", ".join(f"{op} {s:.1f}" for op, s in mix.most_common(12)))
    if wanted:
        lo, hi = (int(x, 16) for x in wanted.split(":"))
        for a, text in code:
            if lo <= a - base < hi:
                print(f"  {a - base:#07x} {mine.get(a, 0.0):5.2f}  {text[:90]}")
EOF
