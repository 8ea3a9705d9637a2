#!/usr/bin/env bash
# bench/stream.sh: a TCP stream of 64 KiB messages, msg against iperf3, on
# loopback, alternating in rounds. Prints one Markdown row per round:
# round, iperf3 MB/s (its sum_received), then for each msg engine its MB/s
# (bodies the built-in listener received) and msg / iperf3; then the
# medians.
#
#   bench/stream.sh [ROUNDS]        (MSG_BIN overrides target/release/msg;
#                                    IO=blocking,tokio picks the engines,
#                                    default both)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
msg=${MSG_BIN:-target/release/msg}
IFS=, read -r -a engines <<<"${IO:-blocking,tokio}"
command -v iperf3 >/dev/null || { echo "stream.sh: iperf3 is not installed" >&2; exit 2; }
[[ -x $msg ]] || { echo "stream.sh: build msg first (cargo build --release)" >&2; exit 2; }
header="| round | iperf3 MB/s |"
rule="|---:|---:|"
for io in "${engines[@]}"; do
	header+=" msg $io MB/s | $io / iperf3 |"
	rule+="---:|---:|"
done
echo "$header"
echo "$rule"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for ((r = 1; r <= rounds; r++)); do
	port=$((25000 + RANDOM % 5000))
	timeout 20 iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	server=$!
	for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
	ip=$(timeout 20 iperf3 -c 127.0.0.1 -p "$port" -l 65536 -t 2 --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8/1e6)')
	wait "$server" || true
	line="$ip"
	for io in "${engines[@]}"; do
		ms=$(timeout 60 "$msg" bench --tcp --mode throughput --sizes 65536 --runs 1 --duration 2s \
			--pin off --io "$io" --json -q |
			python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["msgs_per_s"]*65536/1e6)')
		line+=" $ms"
	done
	echo "$line" >>"$rows"
	python3 bench/ratios.py row "$r" $line
done
python3 bench/ratios.py median "$rows"
