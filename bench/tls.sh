#!/usr/bin/env bash
# bench/tls.sh: TLS's stream beside plain TCP's, msg binaries side by side.
#
# For each binary, each placement (--pin same, --pin cross) and each round,
# one `msg bench --transports tcp,tls --mode throughput --sizes 65536
# --runs 5 --json` (TCP and TLS interleaved inside it), binaries alternating
# round by round so that all see the same machine noise. With --no-rep-movsb
# every binary also runs a second time with glibc told never to copy with
# `rep movsb` (GLIBC_TUNABLES), which shows what the slow copy costs (see
# BENCHMARKS.md). Prints the median TCP and TLS msg/s and TLS/TCP per row.
#
#   bench/tls.sh MSG [MSG...] [--rounds N] [--no-rep-movsb]
#   bench/tls.sh /tmp/msg-before target/release/msg --rounds 5
set -euo pipefail

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 2; }
bins=() rounds=3 tunables=("")
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --no-rep-movsb) tunables+=("glibc.cpu.x86_rep_movsb_threshold=1000000000"); shift ;;
        -*) usage ;;
        *) [[ -x $1 ]] || { echo "tls.sh: $1 is not executable" >&2; exit 2; }; bins+=("$1"); shift ;;
    esac
done
[[ ${#bins[@]} -ge 1 ]] || usage

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 1; r <= rounds; r++)); do
    for pin in same cross; do
        for ((b = 0; b < ${#bins[@]}; b++)); do
            for ((t = 0; t < ${#tunables[@]}; t++)); do
                echo "round $r/$rounds: ${bins[b]} --pin $pin ${tunables[t]}" >&2
                GLIBC_TUNABLES=${tunables[t]} "${bins[b]}" bench --transports tcp,tls \
                    --mode throughput --sizes 65536 --runs 5 --pin "$pin" --json \
                    > "$out/$b.$t.$pin.$r.json"
            done
        done
    done
done

python3 - "$out" "$rounds" "${#tunables[@]}" "${bins[@]}" <<'PY'
import json, statistics, sys
out, rounds, tunables, bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
print("| binary | rep movsb | pin | TCP msg/s | TLS msg/s | TLS/TCP (median of rounds) | TLS/TCP each round |")
print("|---|---|---|---:|---:|---:|---|")
for pin in ("same", "cross"):
    for b, name in enumerate(bins):
        for t in range(tunables):
            rates = {"tcp": [], "tls": []}
            ratios = []
            for r in range(1, rounds + 1):
                rows = json.load(open(f"{out}/{b}.{t}.{pin}.{r}.json"))["results"]
                got = {row["transport"]: row["msgs_per_s"] for row in rows}
                for k in rates:
                    rates[k].append(got[k])
                ratios.append(got["tls"] / got["tcp"])
            movsb = "off" if t else "on"
            each = ", ".join(f"{x:.2f}" for x in ratios)
            print(f"| {name} | {movsb} | {pin} | {statistics.median(rates['tcp']):.0f} "
                  f"| {statistics.median(rates['tls']):.0f} | {statistics.median(ratios):.2f} | {each} |")
PY
