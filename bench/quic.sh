#!/usr/bin/env bash
# bench/quic.sh: QUIC stream throughput on loopback, msg against quinn's
# own perf tool built on the same quinn (GSO on wherever quinn-udp finds
# it), alternating in rounds, with msg's TCP (64 KiB messages) and UDP
# (1400-byte datagrams, about a QUIC packet, as received) for context.
# Prints one Markdown row per round: round, quinn perf MB/s, msg's QUIC
# MB/s (bodies its listener received) and its ratio to perf, the CPU time
# both ends of each spent per GB (user and system), and msg's TCP and UDP
# MB/s; then the medians; then msg's ping-pong p50 over QUIC and UDP at
# 64 B and their ratio.
#
#   QUINN_PERF=/path/to/quinn-perf bench/quic.sh [ROUNDS]
#       (MSG_BIN overrides target/release/msg; DURATION seconds per
#       measurement, default 3)
#   bench/quic.sh build [QUINN_CHECKOUT]
#       builds quinn's perf in /tmp/quinn-perf-build from a checkout of
#       quinn-rs/quinn (cloned, branch 0.11.x, when none is given) against
#       the quinn and quinn-proto versions of msg's Cargo.lock, and prints
#       the binary's path for QUINN_PERF
#
# perf's client uploads one stream for DURATION seconds (--upload-size
# 100G --download-size 0, its default 2 MiB socket buffers and quinn's
# default transport settings); its MB/s is what it wrote after its first
# one-second interval (its handshake and slow start), over the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

lock_version() {
	awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

if [[ ${1:-} == build ]]; then
	src=${2:-/tmp/quinn-src}
	out=/tmp/quinn-perf-build
	if [[ ! -d $src/perf ]]; then
		git clone --depth 1 -b 0.11.x https://github.com/quinn-rs/quinn "$src"
	fi
	mkdir -p "$out"
	rm -rf "$out/src"
	cp -r "$src/perf/src" "$out/src"
	cat >"$out/Cargo.toml" <<EOF
# quinn's perf (quinn-rs/quinn perf/) against msg's quinn versions.
[package]
name = "perf"
version = "0.1.0"
edition = "2021"
publish = false

[[bin]]
name = "quinn-perf"
path = "src/bin/perf.rs"

[features]
default = ["json-output"]
json-output = ["serde", "serde_json"]
qlog = []
tokio-console = []

[dependencies]
anyhow = "1.0.22"
bytes = "1"
clap = { version = "4", features = ["derive"] }
hdrhistogram = { version = "7.2", default-features = false }
quinn = "=$(lock_version quinn)"
quinn-proto = "=$(lock_version quinn-proto)"
rcgen = "0.14"
rustls = { version = "0.23.5", default-features = false, features = ["std", "ring"] }
serde = { version = "1.0", features = ["derive"], optional = true }
serde_json = { version = "1", optional = true }
socket2 = ">=0.5, <0.7"
tokio = { version = "1.28.1", features = ["rt", "macros", "signal", "net", "sync"] }
tracing = { version = "0.1.10", default-features = false, features = ["std"] }
tracing-subscriber = { version = "0.3.0", default-features = false, features = ["env-filter", "fmt", "ansi", "time", "local-time"] }

[profile.release]
debug = true

[workspace]
EOF
	(cd "$out" && cargo generate-lockfile -q &&
		cargo update -q -p quinn-udp --precise "$(lock_version quinn-udp)" &&
		CARGO_TARGET_DIR="$out/target" cargo build -q --release) >&2
	echo "$out/target/release/quinn-perf"
	exit 0
fi

rounds=${1:-5}
msg=${MSG_BIN:-target/release/msg}
secs=${DURATION:-3}
perf=${QUINN_PERF:-}
[[ -x $msg ]] || { echo "quic.sh: build msg first (cargo build --release)" >&2; exit 2; }
if [[ -z $perf || ! -x $perf ]]; then
	echo "quic.sh: quinn's perf not found (QUINN_PERF='$perf'): msg measured alone, no ratio;" \
		"build it with: QUINN_PERF=\$(bench/quic.sh build) bench/quic.sh" >&2
	perf=""
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# quinn perf's upload MB/s over its intervals after the first, and the
# CPU time of its client and server together per GB written.
perf_run() {
	local port=$((30000 + RANDOM % 5000))
	/usr/bin/time -o "$tmp/server.cpu" -f "%U %S" \
		timeout -s INT $((secs + 2)) "$perf" server --listen "127.0.0.1:$port" >/dev/null 2>&1 &
	local server=$!
	for _ in $(seq 50); do ss -lun | grep -q "127.0.0.1:$port " && break; sleep 0.05; done
	/usr/bin/time -o "$tmp/client.cpu" -f "%U %S" \
		timeout $((secs + 10)) "$perf" client "127.0.0.1:$port" --duration "$secs" \
		--upload-size 100G --download-size 0 --json "$tmp/perf.json" >/dev/null 2>&1 || true
	# The server ends at its timeout, a second or two after the client.
	wait "$server" 2>/dev/null || true
	python3 - "$tmp/perf.json" "$tmp/client.cpu" "$tmp/server.cpu" <<'EOF'
import json, sys
intervals = json.load(open(sys.argv[1]))["intervals"]
after = intervals[1:]
mbs = sum(i["sum"]["bytes"] for i in after) / sum(i["sum"]["seconds"] for i in after) / 1e6
# /usr/bin/time's last line: user and system seconds.
cpu = sum(float(x) for f in sys.argv[2:] for x in open(f).read().split()[-2:])
print(mbs, cpu / (sum(i["sum"]["bytes"] for i in intervals) / 1e9))
EOF
}

# msg's received MB/s over TRANSPORT with SIZE-byte messages, and its
# client's and listener's CPU time together per GB.
msg_run() {
	timeout $((secs + 60)) "$msg" bench --transports "$1" --mode throughput --sizes "$2" --runs 1 \
		--duration "${secs}s" --pin off --json -q |
		python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
us = sum(v for side in r["cpu"].values() for v in side.values())
print(r["msgs_per_s"] * r["size"] / 1e6, us / r["size"] * 1e3)'
}

# One Markdown row of "ROUND PERF QUIC PERF_CPU QUIC_CPU TCP UDP [RATIO]".
table_row() {
	python3 -c '
import math, sys
label, perf, quic, perf_cpu, quic_cpu, tcp, udp, *ratio = sys.stdin.read().split()
ratio = ratio[0] if ratio else float(quic) / float(perf)
f = lambda x, d=0: "-" if math.isnan(float(x)) else f"{float(x):,.{d}f}"
print(f"| {label} | {f(perf)} | {f(quic)} | {f(ratio, 2)} | {f(perf_cpu, 2)} | {f(quic_cpu, 2)} | {f(tcp)} | {f(udp)} |")'
}

echo "| round | quinn perf MB/s | msg quic MB/s | quic / perf | perf CPU s/GB | msg quic CPU s/GB | msg tcp MB/s | msg udp 1400 B MB/s |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for ((r = 1; r <= rounds; r++)); do
	if [[ -n $perf ]]; then
		read -r peer peer_cpu < <(perf_run)
	else
		peer=nan peer_cpu=nan
	fi
	read -r quic quic_cpu < <(msg_run quic 65536)
	read -r tcp _ < <(msg_run tcp 65536)
	read -r udp _ < <(msg_run udp 1400)
	echo "$r $peer $quic $peer_cpu $quic_cpu $tcp $udp" | tee -a "$tmp/rows" | table_row
done
# Medians of each column, and of the rounds' ratios.
python3 - "$tmp/rows" <<'EOF' | table_row
import sys
from statistics import median
rows = [list(map(float, line.split()[1:])) for line in open(sys.argv[1])]
cols = list(zip(*rows))
print("median", *(median(c) for c in cols), median(q / p for p, q in zip(cols[0], cols[1])))
EOF

echo
echo "ping-pong, 64 B, 5 runs interleaved (msg bench --transports udp,quic --sizes 64 --runs 5):"
timeout 120 "$msg" bench --transports udp,quic --sizes 64 --runs 5 --pin off --json -q |
	python3 -c '
import json, sys
p50 = {r["transport"]: r["p50_us"] for r in json.load(sys.stdin)["results"]}
udp, quic = p50["udp"], p50["quic"]
print(f"udp p50 {udp:.1f} us, quic p50 {quic:.1f} us, quic / udp {quic / udp:.2f}")'
