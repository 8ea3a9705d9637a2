#!/usr/bin/env bash
# bench/stream.sh: a TCP stream of 64 KiB messages, msg against iperf3, on
# loopback, alternating in rounds. Prints one Markdown row per round:
# round, iperf3 MB/s (its sum_received), msg MB/s (bodies the built-in
# listener received), msg / iperf3.
#
#   bench/stream.sh [ROUNDS]        (MSG_BIN overrides target/release/msg)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
msg=${MSG_BIN:-target/release/msg}
command -v iperf3 >/dev/null || { echo "stream.sh: iperf3 is not installed" >&2; exit 2; }
[[ -x $msg ]] || { echo "stream.sh: build msg first (cargo build --release)" >&2; exit 2; }
echo "| round | iperf3 MB/s | msg MB/s | msg / iperf3 |"
echo "|---:|---:|---:|---:|"
for ((r = 1; r <= rounds; r++)); do
	port=$((25000 + RANDOM % 5000))
	timeout 20 iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	server=$!
	for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
	ip=$(timeout 20 iperf3 -c 127.0.0.1 -p "$port" -l 65536 -t 2 --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8/1e6)')
	wait "$server" || true
	ms=$(timeout 60 "$msg" bench --tcp --mode throughput --sizes 65536 --runs 1 --duration 2s \
		--pin off --json -q |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["msgs_per_s"]*65536/1e6)')
	python3 -c "print(f'| $r | {$ip:,.0f} | {$ms:,.0f} | {$ms/$ip:.2f} |')"
done
