#!/usr/bin/env bash
# bench/parallel.sh: N parallel TCP streams on loopback, msg bench
# --parallel N against iperf3 -P N, alternating in rounds. Prints one
# Markdown row per round: round, iperf3's summed MB/s (its
# sum_received), then for each msg engine its summed MB/s (bodies the
# built-in listener received, over the flows) and msg / iperf3; then the
# medians.
#
#   bench/parallel.sh [ROUNDS]   (P=4 flows, SIZE=65536 bytes a message,
#                                 DURATION=2 seconds a run; MSG_BIN
#                                 overrides target/release/msg;
#                                 IO=blocking,tokio picks the engines,
#                                 default blocking)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
flows=${P:-4}
size=${SIZE:-65536}
duration=${DURATION:-2}
msg=${MSG_BIN:-target/release/msg}
IFS=, read -r -a engines <<<"${IO:-blocking}"
command -v iperf3 >/dev/null || { echo "parallel.sh: iperf3 is not installed" >&2; exit 2; }
[[ -x $msg ]] || { echo "parallel.sh: build msg first (cargo build --release)" >&2; exit 2; }
echo "$flows flows of $size-byte messages, $duration s a run"
header="| round | iperf3 -P $flows MB/s |"
rule="|---:|---:|"
for io in "${engines[@]}"; do
	header+=" msg $io -P $flows MB/s | $io / iperf3 |"
	rule+="---:|---:|"
done
echo "$header"
echo "$rule"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for ((r = 1; r <= rounds; r++)); do
	port=$((25000 + RANDOM % 5000))
	timeout $((duration + 20)) iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	server=$!
	for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
	ip=$(timeout $((duration + 20)) iperf3 -c 127.0.0.1 -p "$port" -P "$flows" -l "$size" \
		-t "$duration" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8/1e6)')
	wait "$server" || true
	line="$ip"
	for io in "${engines[@]}"; do
		ms=$(timeout $((duration * 3 + 30)) "$msg" bench --tcp --mode throughput -P "$flows" \
			--sizes "$size" --runs 1 --duration "$duration" --pin off --io "$io" --json -q |
			python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["bits_per_s"]/8/1e6)')
		line+=" $ms"
	done
	echo "$line" >>"$rows"
	python3 bench/ratios.py row "$r" $line
done
python3 bench/ratios.py median "$rows"
