#!/usr/bin/env bash
# bench/ab.sh: two msg binaries, A and B, measured in the same run.
#
# Rounds alternate A B A B ..., each one `msg bench --runs 1 --json` of the
# same sizes and transports, so both see the same machine noise. Prints a
# Markdown table of the median p50 and p99 across rounds, and B/A.
#
#   bench/ab.sh OLD_MSG NEW_MSG [--rounds N] [extra msg bench flags...]
#   bench/ab.sh /tmp/msg-before target/release/msg --rounds 5 --sizes 64,1024
set -euo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 2; }
[[ $# -ge 2 ]] || usage
a=$1 b=$2
shift 2
rounds=5
if [[ ${1:-} == --rounds ]]; then rounds=$2; shift 2; fi
[[ -x $a && -x $b ]] || { echo "ab.sh: both binaries must be executable" >&2; exit 2; }
flags=(--runs 1 --duration 1s --warmup 200ms --sizes 64,1024 "$@")

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
    for side in A B; do
        bin=$a; [[ $side == B ]] && bin=$b
        echo "round $r/$rounds: $side" >&2
        "$bin" bench "${flags[@]}" --json > "$out/$side.$r.json"
    done
done

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
cells = {}
for side in "AB":
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{side}.{r}.json"))["results"]:
            if "p50_us" not in row:
                continue
            # The engine too: with --io both, each cell has a row per engine.
            key = (row["transport"], row.get("io", "-"), row["mode"], row["size"])
            cells.setdefault(key, {"A": [], "B": []})[side].append(row)
print("| transport | io | size | A p50 µs | B p50 µs | B/A p50 | A p99 µs | B p99 µs | B/A p99 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for (transport, io, mode, size), sides in sorted(cells.items()):
    med = lambda side, k: statistics.median(row[k] for row in sides[side])
    a50, b50, a99, b99 = med("A", "p50_us"), med("B", "p50_us"), med("A", "p99_us"), med("B", "p99_us")
    print(f"| {transport} | {io} | {size} | {a50:.1f} | {b50:.1f} | {b50/a50:.2f} | {a99:.1f} | {b99:.1f} | {b99/a99:.2f} |")
PY
