#!/usr/bin/env bash
# bench/callgrind.sh: user-space instructions per round trip, client and
# server separately, for msg (blocking and tokio engines) and sockperf.
#
# Each side runs in its own process under `valgrind --tool=callgrind` on
# 127.0.0.1. Every cell is measured twice, a short and a long run, and the
# instructions per round trip are the difference of the two totals over the
# difference of the round trips: start-up, connection set-up and exit
# cancel out. Kernel instructions are not counted (callgrind sees user
# space only).
#
# Report (Markdown) goes to stdout; progress goes to stderr:
#   bench/callgrind.sh > /tmp/callgrind.md
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/callgrind.sh [OPTIONS]

Options:
  --sizes LIST     Payload sizes, comma-separated (default 64,1024)
  --tools LIST     Comma-separated: blocking, tokio, sockperf (default all three)
  --transports L   Comma-separated: udp, tcp, unix, unix-dgram, seqpacket
                   (default udp,tcp); the Unix ones as socket files in a
                   temporary directory, and without sockperf (3.7 takes
                   no paths; a note says so)
  --short SECS     The short run's duration (default 1)
  --long SECS      The long run's duration (default 3)
  --out DIR        Keep the callgrind files there (default: a temporary directory)
  -h, --help       This help

Environment:
  MSG_BIN          The msg binary (default target/release/msg; build it with
                   cargo build --release: the release profile keeps line tables)
EOF
}

die() {
	echo "callgrind.sh: $*" >&2
	exit 1
}
note() { echo "callgrind.sh: $*" >&2; }

SIZES=64,1024
TOOLS=blocking,tokio,sockperf
TRANSPORTS=udp,tcp
SHORT=1
LONG=3
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) SIZES=$2; shift 2 ;;
	--tools) TOOLS=$2; shift 2 ;;
	--transports) TRANSPORTS=$2; shift 2 ;;
	--short) SHORT=$2; shift 2 ;;
	--long) LONG=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MSG_BIN=${MSG_BIN:-$ROOT/target/release/msg}
[ -x "$MSG_BIN" ] || die "no msg binary at $MSG_BIN (cargo build --release)"
command -v valgrind >/dev/null || die "valgrind is not installed"
case ,$TOOLS, in *,sockperf,*) command -v sockperf >/dev/null || die "sockperf is not installed" ;; esac
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d /tmp/msg-callgrind.XXXXXX)
fi
mkdir -p "$OUT"
note "callgrind files in $OUT"
# The Unix transports' socket files, in a private directory of their own.
SOCKDIR=$(mktemp -d /tmp/msg-callgrind-sock.XXXXXX)
trap 'rm -rf "$SOCKDIR"' EXIT

# A port nobody listens on, UDP or TCP.
free_port() {
	local port
	while :; do
		port=$((40000 + RANDOM % 20000))
		if [ -z "$(ss -Hltun "sport = :$port")" ]; then
			echo "$port"
			return
		fi
	done
}

# Whether $1 is a Unix transport, addressed by a socket file's path.
is_unix() {
	case $1 in unix | unix-dgram | seqpacket) return 0 ;; *) return 1 ;; esac
}

# Waits until something listens at $2 (127.0.0.1:PORT, or PORT) over $1
# (udp|tcp), or, for a Unix transport, until the socket file $2 is there.
wait_listening() {
	local flag=-Hltn
	[ "$1" = udp ] && flag=-Hlun
	for _ in $(seq 1 300); do
		if is_unix "$1"; then
			[ -S "$2" ] && return 0
		elif [ -n "$(ss $flag "sport = :${2##*:}")" ]; then
			return 0
		fi
		sleep 0.1
	done
	die "nothing listens on $1 at $2"
}

# The total instructions in a callgrind file.
total_ir() {
	awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

# Runs one server and one client, both under callgrind; prints
# "ROUND_TRIPS CLIENT_IR SERVER_IR".
run_once() {
	local tool=$1 transport=$2 size=$3 secs=$4 tag=$5
	local addr server_pid trips
	if is_unix "$transport"; then
		addr=$SOCKDIR/$tag.sock
	else
		addr=127.0.0.1:$(free_port)
	fi
	local cg=(valgrind --tool=callgrind --quiet)
	local srv_out=$OUT/$tag.server.cg cli_out=$OUT/$tag.client.cg
	case $tool in
	blocking | tokio)
		"${cg[@]}" --callgrind-out-file="$srv_out" "$MSG_BIN" listen --quiet --io "$tool" \
			"--$transport" --reply echo "$addr" >"$OUT/$tag.server.log" 2>&1 &
		server_pid=$!
		# run_once runs in a subshell of its own: this trap is its, and a
		# failure below (die) leaves no listener behind.
		trap 'kill "$server_pid" 2>/dev/null || true' EXIT
		wait_listening "$transport" "$addr"
		"${cg[@]}" --callgrind-out-file="$cli_out" "$MSG_BIN" bench --transports "$transport" \
			"$addr" --io "$tool" --sizes "$size" --runs 1 --duration "${secs}s" \
			--warmup 0s --json >"$OUT/$tag.client.json" 2>"$OUT/$tag.client.log"
		# Every ping sent got its pong over loopback; "sent" counts them all.
		trips=$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' "$OUT/$tag.client.json")
		;;
	sockperf)
		local proto=()
		[ "$transport" = tcp ] && proto=(--tcp)
		local port=${addr#127.0.0.1:}
		"${cg[@]}" --callgrind-out-file="$srv_out" sockperf server "${proto[@]}" \
			-i 127.0.0.1 -p "$port" >"$OUT/$tag.server.log" 2>&1 &
		server_pid=$!
		# run_once runs in a subshell of its own: this trap is its, and a
		# failure below (die) leaves no listener behind.
		trap 'kill "$server_pid" 2>/dev/null || true' EXIT
		wait_listening "$transport" "$port"
		"${cg[@]}" --callgrind-out-file="$cli_out" sockperf ping-pong "${proto[@]}" \
			-i 127.0.0.1 -p "$port" -m "$size" -t "$secs" >"$OUT/$tag.client.log" 2>&1
		# "[Total Run] ... SentMessages=N; ReceivedMessages=M": warm-up included.
		trips=$(sed -n 's/.*Total Run.*ReceivedMessages=\([0-9]*\).*/\1/p' "$OUT/$tag.client.log")
		;;
	*) die "unknown tool $tool" ;;
	esac
	kill -INT "$server_pid"
	wait "$server_pid" || true
	[ -n "$trips" ] || die "no round-trip count for $tag (see $OUT/$tag.client.log)"
	echo "$trips $(total_ir "$cli_out") $(total_ir "$srv_out")"
}

echo "| tool | transport | size | round trips (short, long) | client instr/RT | server instr/RT | both |"
echo "|---|---|---:|---|---:|---:|---:|"
IFS=, read -r -a tools <<<"$TOOLS"
IFS=, read -r -a transports <<<"$TRANSPORTS"
IFS=, read -r -a sizes <<<"$SIZES"
for transport in "${transports[@]}"; do
	for size in "${sizes[@]}"; do
		for tool in "${tools[@]}"; do
			if [ "$tool" = sockperf ] && is_unix "$transport"; then
				note "sockperf: no $transport (it takes no socket paths here)"
				continue
			fi
			note "$tool $transport $size B"
			read -r n1 c1 s1 < <(run_once "$tool" "$transport" "$size" "$SHORT" "$tool-$transport-$size-short")
			read -r n2 c2 s2 < <(run_once "$tool" "$transport" "$size" "$LONG" "$tool-$transport-$size-long")
			awk -v tool="$tool" -v tr="$transport" -v size="$size" \
				-v n1="$n1" -v n2="$n2" -v c1="$c1" -v c2="$c2" -v s1="$s1" -v s2="$s2" 'BEGIN {
				dn = n2 - n1
				if (dn <= 0) { printf "| %s | %s | %s | %d, %d | ? | ? | ? |\n", tool, toupper(tr), size, n1, n2; exit }
				c = (c2 - c1) / dn; s = (s2 - s1) / dn
				printf "| %s | %s | %s | %d, %d | %.0f | %.0f | %.0f |\n", tool, toupper(tr), size, n1, n2, c, s, c + s
			}'
		done
	done
done
