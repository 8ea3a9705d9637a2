#!/usr/bin/env bash
# bench/compare.sh: msg bench against sockperf on loopback, same run, interleaved.
#
# For each round, for UDP and TCP, for each size: one sockperf ping-pong run,
# then one `msg bench --runs 1` run for that transport and size. Reports the
# median p50/p99 round-trip times across rounds and the ratio msg/sockperf,
# then UDP throughput at 64 B (messages per second at the receiver).
#
# Beside them, in the same rounds, the floor: bench/floor.c (built here with
# cc -O2), the bare blocking ping-pong, for each of five transports (udp, tcp,
# unix, unix-dgram, seqpacket) at 64 B and 1 KiB, next to sockperf (where it
# takes the transport) and `msg bench --io blocking` for the same cell; a
# second table gives msg/floor and sockperf/floor, and the floor's ordering.
#
# Report (Markdown) goes to stdout; progress goes to stderr:
#   bench/compare.sh > /tmp/compare.md
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/compare.sh [OPTIONS]

Runs sockperf and `msg bench` on 127.0.0.1 for UDP and TCP, interleaved, and
prints one Markdown table of round-trip p50/p99 with the ratio msg/sockperf,
plus a UDP 64 B throughput comparison. In the same rounds it runs the floor,
bench/floor.c (a bare blocking ping-pong, no msg code), for udp, tcp, unix,
unix-dgram and seqpacket at 64 B and 1 KiB, beside sockperf and `msg bench
--io blocking` in the same cell, and prints msg/floor, sockperf/floor and the
floor's ordering of the transports.

Options:
  --rounds N         Rounds of interleaved runs (default 3; env ROUNDS)
  --duration SECS    Seconds per run, whole number >= 1 (default 1; env DURATION;
                     before the floor runs were added it was 2).
                     sockperf ping-pong spends ~0.45 s of it warming up;
                     msg and the floor measure SECS after a 200 ms warm-up.
  --sizes LIST       Payload sizes of the UDP/TCP comparison with sockperf,
                     comma-separated (default 64,1024,16384; env SIZES)
  --transports LIST  Ping-pong transports, comma-separated, from udp, tcp, unix,
                     unix-dgram, seqpacket (default all five; env TRANSPORTS;
                     with --busy-poll: udp,tcp). udp and tcp run at --sizes and
                     --floor-sizes, the Unix ones at --floor-sizes. msg's Unix
                     rows need `msg bench --transports`: a msg without it gets
                     a note and no msg rows for them; sockperf's need a
                     sockperf that takes a path for -i (3.9 and later:
                     unix and unix-dgram; none has seqpacket).
  --floor-sizes LIST Sizes of the floor comparison (default 64,1024; env FLOOR_SIZES)
  --no-floor-c       Do not build or run bench/floor.c (the floor table goes)
  --floor-timeout S  bench/floor.c's receive timeout, SO_RCVTIMEO on both sides
                     (default 2, as msg's --timeout 2s here; env FLOOR_TIMEOUT).
                     0: none, as sockperf: the timer-free floor
  --tput-size BYTES  Throughput message size (default 64; env TPUT_SIZE)
  --pin MODE         same | cross | off (default same; env PIN). same: sockperf
                     server and client with `taskset -c` on the first allowed
                     CPU, msg with --pin same. cross: client on the first,
                     server on the second. off: no pinning.
  --io LIST          msg's engines, comma-separated: blocking, tokio or
                     blocking,tokio (default blocking; env IO). Each runs in
                     every round, next to sockperf, and gets its own ratios.
  --busy-poll        Both tools spin instead of sleeping: sockperf with
                     --nonblocked -F recvfrom (a feed file), msg with
                     --busy-poll. Implies --pin cross (same is refused: the
                     spinners would share one core) and --no-throughput.
  --no-netperf       Do not run netperf's UDP_RR/TCP_RR beside sockperf
                     (it runs by default where netperf is installed, e.g.
                     from Debian non-free: apt-get install netperf)
  --floor            Also run the bare-tokio UDP ping-pong (the tokio_floor
                     example: no msg code at all) in each round, for the
                     floor under msg's tokio UDP round trip (bench/floor.c,
                     which runs by default, is the floor under the blocking
                     engine)
  --no-throughput    Skip the throughput comparison
  --batch N          In the throughput comparison, also run msg bench
                     --batch N (sendmmsg/recvmmsg, N datagrams per send call,
                     with UDP GSO/GRO where the kernel offers them), and the
                     same with --no-gso (sendmmsg/recvmmsg alone)
  --throughput-only  Skip the ping-pong comparison
  --no-build         Do not run cargo build (use MSG_BIN or the existing binary)
  --no-install       Do not apt-get install sockperf when it is missing
  --keep-logs        Keep raw sockperf/msg output (the directory is printed)
  --quick            Smoke test: 1 round, 1 s runs
  -h, --help         This help

Environment:
  MSG_BIN            Path to a built msg binary (implies nothing about building;
                     combine with --no-build to skip cargo)
  CARGO_TARGET_DIR   Honoured when looking for target/release/msg

Notes:
  * sockperf reports one-way latency (RTT/2) by default; this script uses
    --full-rtt when the installed sockperf has it, otherwise doubles its
    numbers. msg bench reports round-trip times. Both columns are RTT.
  * Sizes are payload sizes as given to each tool: sockperf -m SIZE counts its
    own 14-byte header inside SIZE; msg adds a 28-byte header on top of SIZE.
  * Only 127.0.0.1 is used, and Unix sockets in a temporary directory this
    script makes and removes.
  * The floor program runs with --pin same only (client and server on the
    first allowed CPU, as msg --pin same); with --pin cross or off, or with
    --busy-poll, it is not run. It needs a C compiler (cc).
EOF
}

die() {
	echo "compare.sh: $*" >&2
	exit 1
}
note() { echo "compare.sh: $*" >&2; }

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-1}
SIZES=${SIZES:-64,1024,16384}
TRANSPORTS=${TRANSPORTS:-}
FLOOR_SIZES=${FLOOR_SIZES:-64,1024}
FLOOR_C=1
FLOOR_TIMEOUT=${FLOOR_TIMEOUT:-2}
TPUT_SIZE=${TPUT_SIZE:-64}
PIN=${PIN:-}
IO=${IO:-blocking}
BUSY=0
FLOOR=0
NO_NETPERF=0
DO_TPUT=1
DO_PP=1
BATCH=
DO_BUILD=1
DO_INSTALL=1
KEEP_LOGS=0
WARMUP=200ms
WARMUP_S=0.2 # WARMUP in seconds, for bench/floor.c
HOST=127.0.0.1

while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
	--rounds=*) ROUNDS=${1#*=}; shift ;;
	--duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
	--duration=*) DURATION=${1#*=}; shift ;;
	--sizes) SIZES=${2:?--sizes needs a value}; shift 2 ;;
	--sizes=*) SIZES=${1#*=}; shift ;;
	--transports) TRANSPORTS=${2:?--transports needs a value}; shift 2 ;;
	--transports=*) TRANSPORTS=${1#*=}; shift ;;
	--floor-sizes) FLOOR_SIZES=${2:?--floor-sizes needs a value}; shift 2 ;;
	--floor-sizes=*) FLOOR_SIZES=${1#*=}; shift ;;
	--no-floor-c) FLOOR_C=0; shift ;;
	--floor-timeout) FLOOR_TIMEOUT=${2:?--floor-timeout needs a value}; shift 2 ;;
	--floor-timeout=*) FLOOR_TIMEOUT=${1#*=}; shift ;;
	--tput-size) TPUT_SIZE=${2:?--tput-size needs a value}; shift 2 ;;
	--tput-size=*) TPUT_SIZE=${1#*=}; shift ;;
	--pin) PIN=${2:?--pin needs a value}; shift 2 ;;
	--pin=*) PIN=${1#*=}; shift ;;
	--io) IO=${2:?--io needs a value}; shift 2 ;;
	--io=*) IO=${1#*=}; shift ;;
	--busy-poll) BUSY=1; shift ;;
	--floor) FLOOR=1; shift ;;
	--no-netperf) NO_NETPERF=1; shift ;;
	--no-throughput) DO_TPUT=0; shift ;;
	--batch) BATCH=${2:?--batch needs a value}; shift 2 ;;
	--batch=*) BATCH=${1#*=}; shift ;;
	--throughput-only) DO_PP=0; shift ;;
	--no-build) DO_BUILD=0; shift ;;
	--no-install) DO_INSTALL=0; shift ;;
	--keep-logs) KEEP_LOGS=1; shift ;;
	--quick) ROUNDS=1; DURATION=1; WARMUP=100ms; WARMUP_S=0.1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive whole number, got '$ROUNDS'"
# sockperf -t takes whole seconds only (and silently does nothing with 0.5).
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration must be whole seconds >= 1, got '$DURATION'"
[[ $SIZES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--sizes must look like 64,1024,16384, got '$SIZES'"
[[ $IO =~ ^(blocking|tokio)(,(blocking|tokio))?$ ]] || die "--io must be blocking, tokio or blocking,tokio, got '$IO'"
IFS=, read -r -a IO_LIST <<<"$IO"
[[ $TPUT_SIZE =~ ^[0-9]+$ ]] || die "--tput-size must be a number, got '$TPUT_SIZE'"
[[ -z $BATCH || $BATCH =~ ^[1-9][0-9]*$ ]] || die "--batch must be a positive whole number, got '$BATCH'"
if ((FLOOR && BUSY)); then
	die "--floor measures tokio's sleeping wake-up; it does not combine with --busy-poll"
fi
if ((BUSY)); then
	PIN=${PIN:-cross}
	[[ $PIN != same ]] || die "--busy-poll needs --pin cross or off: on one core each spinner holds up the other"
	DO_TPUT=0
fi
((DO_PP || DO_TPUT)) || die "--throughput-only and --no-throughput leave nothing to run"
PIN=${PIN:-same}
case $PIN in same | cross | off) ;; *) die "--pin must be same, cross or off, got '$PIN'" ;; esac
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
[[ $FLOOR_SIZES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--floor-sizes must look like 64,1024, got '$FLOOR_SIZES'"
IFS=, read -r -a FLOOR_SIZE_LIST <<<"$FLOOR_SIZES"
[[ $FLOOR_TIMEOUT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--floor-timeout must be seconds (0: none), got '$FLOOR_TIMEOUT'"
for s in "${SIZE_LIST[@]}" "${FLOOR_SIZE_LIST[@]}" "$TPUT_SIZE"; do
	((s >= 14)) || die "size $s is below sockperf's minimum of 14 bytes"
done
ALL_TRANSPORTS=(udp tcp unix unix-dgram seqpacket)
if [[ -z $TRANSPORTS ]]; then
	if ((BUSY)); then TRANSPORTS=udp,tcp; else TRANSPORTS=$(IFS=,; echo "${ALL_TRANSPORTS[*]}"); fi
fi
[[ $TRANSPORTS =~ ^(udp|tcp|unix|unix-dgram|seqpacket)(,(udp|tcp|unix|unix-dgram|seqpacket))*$ ]] ||
	die "--transports must be a comma-separated list of udp, tcp, unix, unix-dgram, seqpacket, got '$TRANSPORTS'"
IFS=, read -r -a TRANSPORT_LIST <<<"$TRANSPORTS"
if ((BUSY)); then
	[[ $TRANSPORTS =~ unix|seqpacket ]] && die "--busy-poll compares UDP and TCP only: use --transports udp,tcp"
	FLOOR_C=0 # the floor program sleeps in recv; it is no floor for spinning
fi
if [[ $PIN != same ]] && ((FLOOR_C)); then
	note "--pin $PIN: bench/floor.c runs on one core only; not run"
	FLOOR_C=0
fi
((DO_PP)) || FLOOR_C=0

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# ---------------------------------------------------------------- tools
as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
	note "installing $* with apt-get"
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

missing=()
command -v sockperf >/dev/null || missing+=(sockperf)
command -v taskset >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
if ((FLOOR_C)); then command -v cc >/dev/null || missing+=(gcc libc6-dev); fi
if ((${#missing[@]})); then
	((DO_INSTALL)) || die "missing: ${missing[*]} (and --no-install given)"
	apt_install "${missing[@]}"
fi
# netperf lives in Debian's non-free component, which a machine may not
# have enabled: it is used where it is installed, and not installed here.
HAVE_NETPERF=0
if command -v netperf >/dev/null && command -v netserver >/dev/null; then
	HAVE_NETPERF=1
fi

# Whether this sockperf can report round-trip times itself.
if sockperf ping-pong --help 2>&1 | grep -q -- '--full-rtt'; then
	SP_RTT_FLAG=(--full-rtt)
	SP_RTT_FACTOR=1
	SP_RTT_NOTE="sockperf run with --full-rtt (reports round-trip times directly)"
else
	SP_RTT_FLAG=()
	SP_RTT_FACTOR=2
	SP_RTT_NOTE="this sockperf has no --full-rtt: its one-way latency (RTT/2) is doubled"
fi
SP_VERSION=$(sockperf --version 2>&1 | sed -n 's/^sockperf, version //p' | head -n1)

# ---------------------------------------------------------------- msg binary
if ((DO_BUILD)); then
	note "cargo build --release --locked -q (in $REPO_ROOT)"
	(cd "$REPO_ROOT" && cargo build --release --locked -q) >&2
	if ((FLOOR)); then
		(cd "$REPO_ROOT" && cargo build --release --locked -q --example tokio_floor) >&2
	fi
fi
if [[ -z ${MSG_BIN:-} ]]; then
	target_dir=$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null) ||
		target_dir=""
	if [[ -z $target_dir ]]; then
		target_dir=${CARGO_TARGET_DIR:-target}
		[[ $target_dir == /* ]] || target_dir="$REPO_ROOT/$target_dir"
	fi
	MSG_BIN="$target_dir/release/msg"
fi
[[ -x $MSG_BIN ]] || die "no msg binary at $MSG_BIN (build it, or set MSG_BIN)"
FLOOR_BIN="$(dirname "$MSG_BIN")/examples/tokio_floor"
if ((FLOOR)); then
	[[ $PIN == same ]] || die "--floor pins itself to one core: use it with --pin same"
	[[ -x $FLOOR_BIN ]] || die "no tokio_floor example at $FLOOR_BIN (cargo build --release --example tokio_floor)"
fi

# ---------------------------------------------------------------- CPUs
mapfile -t CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
SP_SERVER_PIN=()
SP_CLIENT_PIN=()
case $PIN in
same)
	SP_SERVER_PIN=(taskset -c "${CPUS[0]}")
	SP_CLIENT_PIN=(taskset -c "${CPUS[0]}")
	PIN_NOTE="same core: sockperf server and client on cpu ${CPUS[0]} (taskset), msg --pin same"
	;;
cross)
	((${#CPUS[@]} >= 2)) || die "--pin cross needs two allowed CPUs, have ${#CPUS[@]}"
	SP_SERVER_PIN=(taskset -c "${CPUS[1]}")
	SP_CLIENT_PIN=(taskset -c "${CPUS[0]}")
	PIN_NOTE="cross: clients on cpu ${CPUS[0]}, servers/listeners on cpu ${CPUS[1]} (taskset / msg --pin cross)"
	;;
off)
	PIN_NOTE="off: no pinning (msg --pin off)"
	;;
esac

# ---------------------------------------------------------------- scratch, cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msg-compare.XXXXXX")
SERVER_PIDS=()
cleanup() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do
		kill -INT "$pid" 2>/dev/null || true
	done
	for pid in "${SERVER_PIDS[@]}"; do
		# Give sockperf a moment to exit on SIGINT, then insist.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if ((KEEP_LOGS)); then
		note "raw logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nobody listens on, over TCP or UDP, on any address.
USED_PORTS=" "
free_port() {
	local p tries
	for ((tries = 0; tries < 200; tries++)); do
		p=$((20000 + RANDOM % 30000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if [[ -z $(ss -Htanu "( sport = :$p )" 2>/dev/null) ]]; then
			USED_PORTS+="$p "
			echo "$p"
			return 0
		fi
	done
	die "could not find a free port"
}

# start_server PROTO PORT LOG -> sets SERVER_PID. PROTO is udp or tcp
# (PORT on $HOST), or unix or unix-dgram (PORT is then a socket path).
start_server() {
	local proto=$1 port=$2 log=$3 ssflag=-Hlun
	[[ $proto == tcp ]] && ssflag=-Hltn
	# shellcheck disable=SC2046 # sp_target's words are meant to split
	"${SP_SERVER_PIN[@]}" sockperf server $(sp_target "$proto" "$port") >"$log" 2>&1 &
	SERVER_PID=$!
	SERVER_PIDS+=("$SERVER_PID")
	for _ in $(seq 50); do
		if [[ $proto == unix* ]]; then
			[[ -S $port ]] && return 0
		elif [[ -n $(ss "$ssflag" "( sport = :$port )" 2>/dev/null) ]]; then
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	die "sockperf $proto server on ${port} did not come up"
}

# ---------------------------------------------------------------- Unix transports, the floor
# Which transports each tool takes: sockperf 3.9 and later takes an absolute
# path for -i (a stream with --tcp, datagrams without); 3.7 (Debian 12)
# answers "Invalid address". No sockperf has SOCK_SEQPACKET.
SP_UNIX=0
want_unix=0
for t in "${TRANSPORT_LIST[@]}"; do [[ $t == unix || $t == unix-dgram ]] && want_unix=1; done
if ((want_unix && DO_PP)); then
	probe="$WORK/sockperf-probe.sock"
	sockperf server -i "$probe" >"$WORK/sockperf-probe.log" 2>&1 &
	probe_pid=$!
	for _ in $(seq 20); do
		[[ -S $probe ]] && { SP_UNIX=1; break; }
		kill -0 "$probe_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -INT "$probe_pid" 2>/dev/null || true
	for _ in $(seq 20); do kill -0 "$probe_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" 2>/dev/null || true
	rm -f "$probe"
	((SP_UNIX)) || note "sockperf ${SP_VERSION:-?} takes no Unix socket path for -i (3.9 and later do): no sockperf rows for unix, unix-dgram"
fi
sp_takes() { # TRANSPORT: does this sockperf measure it?
	case $1 in
	udp | tcp) return 0 ;;
	unix | unix-dgram) ((SP_UNIX)) ;;
	*) return 1 ;;
	esac
}

# msg: `msg bench --transports LIST` is how it names the Unix transports;
# before that flag exists there is only --udp and --tcp. A tiny run of each
# asks this binary whether it can measure the transport on the blocking engine.
MSG_TRANSPORTS=0
MSG_HAS=" udp tcp "
if ((DO_PP)) && "$MSG_BIN" bench --help 2>/dev/null | grep -q -- '--transports'; then
	MSG_TRANSPORTS=1
fi
no_flag=()
for t in "${TRANSPORT_LIST[@]}"; do
	[[ $t == udp || $t == tcp ]] && continue
	((DO_PP)) || break
	if ((!MSG_TRANSPORTS)); then
		no_flag+=("$t")
		continue
	fi
	if "$MSG_BIN" bench --transports "$t" --io blocking --mode pingpong --sizes 64 --runs 1 \
		--duration 20ms --warmup 10ms --timeout 2s --pin "$PIN" --json -q \
		>"$WORK/msg-probe-$t.json" 2>"$WORK/msg-probe-$t.err"; then
		MSG_HAS+="$t "
	else
		note "msg bench --transports $t --io blocking failed, so no msg rows for $t: $(head -n1 "$WORK/msg-probe-$t.err")"
	fi
done
if ((${#no_flag[@]})); then
	note "this msg has no 'msg bench --transports' flag yet: no msg rows for ${no_flag[*]}"
fi
msg_takes() { [[ $MSG_HAS == *" $1 "* ]]; }

# bench/floor.c, built for this run.
FLOOR_C_BIN="$WORK/floor"
if ((FLOOR_C)); then
	note "cc -O2 bench/floor.c"
	cc -O2 -o "$FLOOR_C_BIN" "$SCRIPT_DIR/floor.c" -lpthread >&2 || die "could not build bench/floor.c"
fi

stop_server() { # PID: SIGINT so sockperf prints its totals, then reap
	local pid=$1
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local kept=()
	for p in "${SERVER_PIDS[@]}"; do
		[[ $p == "$pid" ]] || kept+=("$p")
	done
	SERVER_PIDS=("${kept[@]}")
}

strip_ansi() { sed 's/\x1b\[[0-9;]*m//g'; }

# sp_target PROTO PORT: sockperf's arguments naming the peer (a path for
# unix and unix-dgram, which this script never runs with --busy-poll; and, with
# --busy-poll, a feed file, which -F recvfrom requires, and non-blocking
# sockets: sockperf then spins on recvfrom).
sp_target() {
	local proto=$1 port=$2 feed
	if [[ $proto == unix ]]; then
		echo "--tcp -i $port"
	elif [[ $proto == unix-dgram ]]; then
		echo "-i $port"
	elif ((BUSY)); then
		feed="$WORK/feed-$proto-$port.txt"
		if [[ $proto == tcp ]]; then echo "T:$HOST:$port"; else echo "U:$HOST:$port"; fi >"$feed"
		echo "-f $feed --nonblocked -F recvfrom"
	elif [[ $proto == tcp ]]; then
		echo "--tcp -i $HOST -p $port"
	else
		echo "-i $HOST -p $port"
	fi
}

# run_netperf_pp TRANSPORT SIZE ROUND: netperf's request/response test
# (UDP_RR, TCP_RR) against the netserver started below, one transaction
# in flight as in the other tools' ping-pong. -j asks for its latency
# percentiles, which it reports in whole microseconds.
run_netperf_pp() {
	local t=$1 size=$2 r=$3 log test=UDP_RR
	[[ $t == tcp ]] && test=TCP_RR
	log="$WORK/netperf-$t-$size-r$r.log"
	"${SP_CLIENT_PIN[@]}" netperf -H "$HOST" -p "$NETSERVER_PORT" -t "$test" -l "$DURATION" -j -- \
		-r "$size,$size" -o P50_LATENCY,P99_LATENCY,MEAN_LATENCY >"$log" 2>&1 ||
		{ cat "$log" >&2; die "netperf $test failed ($size B)"; }
	python3 - "$log" "$t" "$size" "$r" >>"$RESULTS" <<'PY'
import sys
log, t, size, r = sys.argv[1:]
last = open(log).read().strip().splitlines()[-1].split(",")
try:
    p50, p99, _mean = (float(x) for x in last[:3])
except ValueError:
    sys.exit(f"compare.sh: could not parse netperf output: {last}")
print(f"pp\t{t}\t{size}\t{r}\tnetperf\t{p50}\t{p99}")
PY
}

# ---------------------------------------------------------------- runs
RESULTS="$WORK/results.tsv" # kind transport size round tool a b [c d]
: >"$RESULTS"

MSG_PIN=(--pin "$PIN")
((BUSY)) && MSG_PIN+=(--busy-poll)

run_sockperf_pp() { # transport size round
	local t=$1 size=$2 r=$3 port log spid=
	case $t in
	tcp) port=$TCP_PORT ;;
	unix) port=$SP_UNIX_PATH ;;
	unix-dgram) port=$SP_DGRAM_PATH ;;
	*) port=$UDP_PORT ;;
	esac
	log="$WORK/sockperf-pp-$t-$size-r$r.log"
	if ((BUSY)); then
		# A spinning server only while it is measured: an idle one would
		# take its share of the core from whatever runs next.
		port=$(free_port)
		start_server "$t" "$port" "$WORK/sockperf-server-$t-$size-r$r.log"
		spid=$SERVER_PID
	fi
	# shellcheck disable=SC2046 # sp_target's words are meant to split
	"${SP_CLIENT_PIN[@]}" sockperf ping-pong $(sp_target "$t" "$port") \
		-m "$size" -t "$DURATION" "${SP_RTT_FLAG[@]}" 2>&1 | strip_ansi >"$log" || true
	[[ -z $spid ]] || stop_server "$spid"
	local p50 p99
	p50=$(awk '/---> percentile 50\.000 =/ {print $NF}' "$log")
	p99=$(awk '/---> percentile 99\.000 =/ {print $NF}' "$log")
	if [[ -z $p50 || -z $p99 ]]; then
		cat "$log" >&2
		die "could not parse sockperf ping-pong output ($t, $size B)"
	fi
	if ((SP_RTT_FACTOR == 1)) && ! grep -q 'Summary: Round trip is' "$log"; then
		die "sockperf ran with --full-rtt but did not say 'Round trip' ($log)"
	fi
	printf 'pp\t%s\t%s\t%s\tsockperf\t%s\t%s\n' "$t" "$size" "$r" \
		"$(awk -v v="$p50" -v f="$SP_RTT_FACTOR" 'BEGIN {print v * f}')" \
		"$(awk -v v="$p99" -v f="$SP_RTT_FACTOR" 'BEGIN {print v * f}')" >>"$RESULTS"
}

run_msg() { # mode transport size round [engine] [batch] [no-gso]
	local mode=$1 t=$2 size=$3 r=$4 io=${5:-} batch=${6:-} nogso=${7:-} json extra=() which
	json="$WORK/msg-$mode-$t-$size-r$r${io:+-$io}${batch:+-batch$batch}${nogso:+-nogso}.json"
	# --udp and --tcp work with every msg; the Unix transports need --transports.
	case $t in udp | tcp) which=("--$t") ;; *) which=(--transports "$t") ;; esac
	[[ -z $io ]] || extra+=(--io "$io")
	[[ -z $batch ]] || extra+=(--batch "$batch")
	[[ -z $nogso ]] || extra+=(--no-gso)
	# --timeout 2s: on a shared machine a pinned thread can be preempted for
	# longer than the 200 ms default, and over TCP that fails the run.
	"$MSG_BIN" bench "${which[@]}" --mode "$mode" --sizes "$size" --runs 1 "${extra[@]}" --timeout 2s \
		--duration "${DURATION}s" --warmup "$WARMUP" "${MSG_PIN[@]}" --json -q >"$json" ||
		die "msg bench failed ($mode, $t, $size B${io:+, --io $io}${batch:+, --batch $batch}${nogso:+ --no-gso})"
	python3 - "$json" "$mode" "$t" "$size" "$r" "$io" "$batch" "$nogso" >>"$RESULTS" <<'PY'
import json, sys
path, mode, t, size, r, io, batch, nogso = sys.argv[1:]
tool = f"msg-{io}" if io else "msg"
norm = lambda name: str(name).lower().replace("_", "").replace("-", "")
res = [x for x in json.load(open(path))["results"]
       if norm(x.get("transport")) == norm(t) and x.get("size") == int(size) and x.get("mode") == mode]
if not res and t not in ("udp", "tcp"):
    # One transport was asked for: whatever msg calls it, its row is the one.
    res = [x for x in json.load(open(path))["results"]
           if x.get("size") == int(size) and x.get("mode") == mode and "p50_us" in x]
if len(res) != 1:
    sys.exit(f"compare.sh: expected one {mode}/{t}/{size} result in {path}, got {len(res)}")
x = res[0]
if mode == "pingpong":
    print(f"pp\t{t}\t{size}\t{r}\t{tool}\t{x['p50_us']}\t{x['p99_us']}")
else:
    if batch:
        tool = f"msg --batch {batch}" + (" --no-gso" if nogso else "")
    calls = ""
    if batch:
        per = lambda v: "n/a" if v is None else f"{v:.1f}"
        offload = "+".join(k.upper() for k in ("gso", "gro") if x.get(k)) or "none"
        calls = f"\t{per(x['datagrams_per_send_call'])}\t{per(x['datagrams_per_recv_call'])}\t{offload}"
    print(f"tput\t{t}\t{size}\t{r}\t{tool}\t{x['msgs_per_s']}\t{x['sent']}\t{x['received']}\t{x['lost']}{calls}")
PY
}

run_floor() { # size round
	local size=$1 r=$2 out
	out=$("$FLOOR_BIN" "$size" "$DURATION") || die "tokio_floor failed ($size B)"
	# "tokio floor, UDP 64 B, same core: p50 12.19 µs, p99 14.07 µs, ..."
	python3 - "$out" "$size" "$r" >>"$RESULTS" <<'PY'
import re, sys
out, size, r = sys.argv[1:]
m = re.search(r"p50 ([\d.]+) µs, p99 ([\d.]+) µs", out)
if not m:
    sys.exit(f"compare.sh: could not parse tokio_floor output: {out}")
print(f"pp\tudp\t{size}\t{r}\ttokio\t{m.group(1)}\t{m.group(2)}")
PY
}

run_floor_c() { # transport size round
	local t=$1 size=$2 r=$3 out
	# -w: the same warm-up as msg's; -T: by default the same reply timeout
	# as msg's --timeout 2s (and like msg, SO_RCVTIMEO on both sides). -A:
	# the unix-dgram client autobinds, as msg's does: with a socket file
	# of its own, each reply's sendto walks that path (about 1 µs), which
	# msg's replies never do, and the floor would rank the transports by
	# how they are addressed rather than by what they cost.
	out=$("$FLOOR_C_BIN" -A -w "$WARMUP_S" -T "$FLOOR_TIMEOUT" "$t" "$size" "$DURATION" "${CPUS[0]}") ||
		die "bench/floor.c failed ($t, $size B)"
	# "transport=udp size=64 rtts=171234 lost=0 p50_us=11.52 p90_us=12.31 p99_us=14.02 ..."
	python3 - "$out" "$t" "$size" "$r" >>"$RESULTS" <<'PY'
import sys
out, t, size, r = sys.argv[1:]
kv = dict(f.split("=", 1) for f in out.split() if "=" in f)
if kv.get("transport") != t or kv.get("size") != size or "p50_us" not in kv:
    sys.exit(f"compare.sh: could not parse bench/floor.c output: {out}")
print(f"pp\t{t}\t{size}\t{r}\tfloor\t{kv['p50_us']}\t{kv['p99_us']}")
PY
}

run_sockperf_tput() { # size round
	local size=$1 r=$2 port log slog
	port=$(free_port)
	log="$WORK/sockperf-tput-$size-r$r.log"
	slog="$WORK/sockperf-tput-server-$size-r$r.log"
	# A fresh server per run: its "messages received" total on SIGINT is this run's.
	start_server udp "$port" "$slog"
	local spid=$SERVER_PID
	"${SP_CLIENT_PIN[@]}" sockperf throughput -i "$HOST" -p "$port" -m "$size" -t "$DURATION" \
		2>&1 | strip_ansi >"$log" || true
	sleep 0.2 # let the server drain its socket buffer
	stop_server "$spid"
	python3 - "$log" "$slog" "$size" "$r" >>"$RESULTS" <<'PY'
import re, sys
log, slog, size, r = sys.argv[1:]
c = open(log).read()
s = re.sub(r"\x1b\[[0-9;]*m", "", open(slog).read())
m = re.search(r"Total of (\d+) messages sent in ([\d.]+) sec", c)
n = re.search(r"Total (\d+) messages received", s)
if not m or not n:
    sys.stderr.write(c + s)
    sys.exit("compare.sh: could not parse sockperf throughput output")
sent, secs, recv = int(m.group(1)), float(m.group(2)), int(n.group(1))
# The server's count includes sockperf's few warm-up messages; negligible.
print(f"tput\tudp\t{size}\t{r}\tsockperf\t{recv / secs:.1f}\t{sent}\t{recv}\t{max(sent - recv, 0)}")
PY
}

UDP_PORT=
TCP_PORT=
if ((!BUSY)); then
	UDP_PORT=$(free_port)
	TCP_PORT=$(free_port)
	start_server udp "$UDP_PORT" "$WORK/sockperf-server-udp.log"
	start_server tcp "$TCP_PORT" "$WORK/sockperf-server-tcp.log"
fi
# netperf: sleeping ping-pong only (it has no spinning mode to match).
NETPERF=0
if ((HAVE_NETPERF && !NO_NETPERF && !BUSY && DO_PP)); then
	NETPERF=1
	NETSERVER_PORT=$(free_port)
	# -D: stays in the foreground, so it is stopped with the others; its
	# per-test children inherit the pinning.
	"${SP_SERVER_PIN[@]}" netserver -D -L "$HOST" -p "$NETSERVER_PORT" >"$WORK/netserver.log" 2>&1 &
	SERVER_PIDS+=("$!")
	for _ in $(seq 50); do
		[[ -n $(ss -Hltn "( sport = :$NETSERVER_PORT )" 2>/dev/null) ]] && break
		sleep 0.1
	done
	[[ -n $(ss -Hltn "( sport = :$NETSERVER_PORT )" 2>/dev/null) ]] || die "netserver did not come up"
elif ((!HAVE_NETPERF)); then
	note "netperf not installed (Debian non-free): not run"
fi

in_list() { # WORD LIST...: is WORD one of LIST?
	local w=$1
	shift
	for x in "$@"; do [[ $x == "$w" ]] && return 0; done
	return 1
}

# cell_runs TRANSPORT SIZE: the runs of one ping-pong cell, one a line, in
# the order they run: the floor, sockperf, msg's engines (on a Unix transport
# the blocking one; in a floor cell the blocking one whatever --io says),
# netperf, bare tokio. Each only where it measures this transport and size.
cell_runs() {
	local t=$1 size=$2 floor_cell=0 io
	if ((FLOOR_C)) && in_list "$size" "${FLOOR_SIZE_LIST[@]}"; then floor_cell=1; fi
	if ((floor_cell)); then echo floor; fi
	if sp_takes "$t"; then echo sockperf; fi
	if msg_takes "$t"; then
		case $t in
		udp | tcp)
			for io in "${IO_LIST[@]}"; do echo "msg $io"; done
			if ((floor_cell)) && ! in_list blocking "${IO_LIST[@]}"; then echo "msg blocking"; fi
			;;
		*) echo "msg blocking" ;;
		esac
	fi
	if ((NETPERF)) && [[ $t == udp || $t == tcp ]]; then echo netperf; fi
	if ((FLOOR)) && [[ $t == udp ]]; then echo tokio; fi
}

# The ping-pong's cells, in the order each round runs them: every transport,
# each of its sizes (udp and tcp: --sizes and, with the floor, --floor-sizes;
# the Unix ones: --floor-sizes), where some tool measures it.
CELLS=()
seen=" "
runs=0 # runs per round, for the estimate: each about DURATION + 1.3 s
for t in "${TRANSPORT_LIST[@]}"; do
	[[ $seen == *" $t "* ]] && continue
	seen+="$t "
	((DO_PP)) || break
	case $t in
	udp | tcp)
		sizes=("${SIZE_LIST[@]}")
		if ((FLOOR_C)); then sizes+=("${FLOOR_SIZE_LIST[@]}"); fi
		;;
	*) sizes=("${FLOOR_SIZE_LIST[@]}") ;;
	esac
	mapfile -t sizes < <(printf '%s\n' "${sizes[@]}" | sort -n -u)
	for size in "${sizes[@]}"; do
		mapfile -t these < <(cell_runs "$t" "$size")
		if ((${#these[@]})); then
			CELLS+=("$t $size")
			runs=$((runs + ${#these[@]}))
		fi
	done
done
runs=$((runs + DO_TPUT * (1 + ${#IO_LIST[@]} + 2 * (${#BATCH} > 0))))

# Start sockperf's Unix servers beside the UDP and TCP ones.
SP_UNIX_PATH="$WORK/sockperf-unix.sock"
SP_DGRAM_PATH="$WORK/sockperf-unix-dgram.sock"
for t in unix unix-dgram; do
	if ((SP_UNIX && DO_PP)) && in_list "$t" "${TRANSPORT_LIST[@]}"; then
		path=$SP_UNIX_PATH
		[[ $t == unix-dgram ]] && path=$SP_DGRAM_PATH
		start_server "$t" "$path" "$WORK/sockperf-server-$t.log"
	fi
done

n_pp=$((ROUNDS * ${#CELLS[@]}))
est=$((ROUNDS * runs * (10 * DURATION + 13) / 10))
what="sizes $SIZES"
((DO_PP)) && what+=", transports ${TRANSPORT_LIST[*]}"
note "$ROUNDS round(s), ${DURATION}s runs, $what, pin $PIN; $((ROUNDS * runs)) runs, about ${est}s"
i=0
for ((r = 1; r <= ROUNDS; r++)); do
	for cell in "${CELLS[@]}"; do
		read -r t size <<<"$cell"
		i=$((i + 1))
		mapfile -t these < <(cell_runs "$t" "$size")
		joined=$(IFS=,; echo "${these[*]}")
		note "[$i/$n_pp] round $r: $t $size B: ${joined//,/, }"
		for run in "${these[@]}"; do
			case $run in
			floor) run_floor_c "$t" "$size" "$r" ;;
			sockperf) run_sockperf_pp "$t" "$size" "$r" ;;
			"msg "*) run_msg pingpong "$t" "$size" "$r" "${run#msg }" ;;
			netperf) run_netperf_pp "$t" "$size" "$r" ;;
			tokio) run_floor "$size" "$r" ;;
			esac
		done
	done
	if ((DO_TPUT)); then
		note "round $r: udp throughput $TPUT_SIZE B: sockperf, then msg"
		run_sockperf_tput "$TPUT_SIZE" "$r"
		for io in "${IO_LIST[@]}"; do
			run_msg throughput udp "$TPUT_SIZE" "$r" "$io"
		done
		if [[ -n $BATCH ]]; then
			note "round $r: udp throughput $TPUT_SIZE B: msg --batch $BATCH, without and with GSO/GRO"
			run_msg throughput udp "$TPUT_SIZE" "$r" "" "$BATCH" no-gso
			run_msg throughput udp "$TPUT_SIZE" "$r" "" "$BATCH"
		fi
	fi
done

# ---------------------------------------------------------------- report
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
[[ -n $cpu_model ]] || cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)
# Read-only git: --no-optional-locks keeps status from rewriting the index.
msg_rev=$(git -C "$REPO_ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $msg_rev != unknown && -n $(git -C "$REPO_ROOT" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	msg_rev+="-dirty"
fi
sp_flags=${SP_RTT_FLAG[*]:-}
if ((BUSY)); then
	SP_PEER="-f FEED --nonblocked -F recvfrom"
	WAIT_NOTE="busy-poll: sockperf spins on non-blocking recvfrom (FEED holds U:$HOST:PORT or T:$HOST:PORT), msg --busy-poll"
else
	SP_PEER="[--tcp] -i $HOST -p PORT"
	WAIT_NOTE="both sleep until a message arrives (sockperf in recvfrom, msg blocking in recv/recvfrom, msg tokio in epoll_wait)"
fi
sp_srv=${SP_SERVER_PIN[*]:+${SP_SERVER_PIN[*]} }
floor_first=
((FLOOR_C)) && floor_first="the floor, "
# What each tool measured of the Unix transports, for the header.
transports_note() {
	local t unix_kinds=() sp_u=() no_msg=()
	for t in "${TRANSPORT_LIST[@]}"; do
		[[ $t == udp || $t == tcp ]] && continue
		unix_kinds+=("$t")
		if sp_takes "$t"; then sp_u+=("$t"); fi
		if ! msg_takes "$t"; then no_msg+=("$t"); fi
	done
	((${#unix_kinds[@]})) || return 0
	printf '%s' "; the Unix ones at $FLOOR_SIZES B, as socket files in a temporary directory (removed afterwards)"
	printf '%s' "; sockperf measures ${sp_u[*]:-none of them}"
	if ((${#no_msg[@]})); then
		if ((MSG_TRANSPORTS)); then
			printf '%s' "; msg did not measure ${no_msg[*]} (its --transports refused them)"
		else
			printf '%s' "; msg did not measure ${no_msg[*]}: this msg has no 'msg bench --transports' yet"
		fi
	fi
}
sp_cli=${SP_CLIENT_PIN[*]:+${SP_CLIENT_PIN[*]} }

cat <<EOF
## msg vs sockperf (loopback)

- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- Kernel: $(uname -srm)
- CPU: ${cpu_model:-unknown} ($(nproc) CPUs allowed: ${CPUS[*]})
- msg: $msg_rev ($MSG_BIN); sockperf: ${SP_VERSION:-unknown}
- Pinning: $PIN_NOTE
- Waiting: $WAIT_NOTE
- Rounds: $ROUNDS, interleaved (per round, per transport and size: ${floor_first}sockperf, then msg); ${DURATION}s per run
- Transports: ${TRANSPORT_LIST[*]}$(transports_note)
- Latency: round-trip times in µs; $SP_RTT_NOTE. msg bench reports RTT.
- Sizes: payload bytes as given to each tool (sockperf's 14-byte header is inside -m; msg adds a 28-byte header)
- Commands:
  - \`${sp_srv}sockperf server $SP_PEER\`
  - \`${sp_cli}sockperf ping-pong $SP_PEER -m SIZE -t $DURATION${sp_flags:+ $sp_flags}\`
  - \`msg bench --udp|--tcp --sizes SIZE --runs 1 --io ENGINE --timeout 2s --duration ${DURATION}s --warmup $WARMUP ${MSG_PIN[*]} --json\` for ENGINE in ${IO_LIST[*]}
EOF
msg_unix=$(for t in unix unix-dgram seqpacket; do if in_list "$t" "${TRANSPORT_LIST[@]}" && msg_takes "$t"; then printf ' %s' "$t"; fi; done)
if [[ -n $msg_unix ]]; then
	echo "  - \`msg bench --transports T --mode pingpong --sizes SIZE --runs 1 --io blocking --timeout 2s --duration ${DURATION}s --warmup $WARMUP ${MSG_PIN[*]} --json\` for T in$msg_unix"
fi
if ((SP_UNIX)); then
	echo "  - \`${sp_srv}sockperf server [--tcp] -i PATH\`, \`${sp_cli}sockperf ping-pong [--tcp] -i PATH -m SIZE -t $DURATION${sp_flags:+ $sp_flags}\` (unix with --tcp, unix-dgram without)"
fi
if ((FLOOR_C)); then
	if [[ $FLOOR_TIMEOUT =~ ^0*(\.0*)?$ ]]; then
		floor_timeo="no receive timeouts (as sockperf)"
	else
		floor_timeo="SO_RCVTIMEO ${FLOOR_TIMEOUT}s on both sides (as msg)"
	fi
	echo "  - \`cc -O2 -o floor bench/floor.c -lpthread\`; \`floor -A -w $WARMUP_S -T $FLOOR_TIMEOUT TRANSPORT SIZE $DURATION ${CPUS[0]}\` (client and echo-server thread on cpu ${CPUS[0]}; blocking send/recv, $floor_timeo, one clock read per round trip; Unix sockets as files in a temporary directory, the unix-dgram client autobound to an abstract name, as msg's)"
fi
if ((NETPERF)); then
	echo "  - \`${sp_srv}netserver -D -L $HOST -p PORT\`; \`${sp_cli}netperf -H $HOST -p PORT -t UDP_RR|TCP_RR -l $DURATION -j -- -r SIZE,SIZE -o P50_LATENCY,P99_LATENCY,MEAN_LATENCY\` ($(netperf -V 2>&1 | head -n1); SIZE is its payload, no header; its percentiles are whole µs)"
fi
if ((FLOOR)); then
	echo "  - \`target/release/examples/tokio_floor SIZE $DURATION\` (bare tokio UDP ping-pong, same core)"
fi
if ((DO_TPUT)); then
	cat <<EOF
  - \`${sp_cli}sockperf throughput -i $HOST -p PORT -m $TPUT_SIZE -t $DURATION\` (received count from the server's total on SIGINT)
  - \`msg bench --udp --mode throughput --sizes $TPUT_SIZE --runs 1 --io ENGINE --duration ${DURATION}s --warmup $WARMUP --pin $PIN --json\` for ENGINE in ${IO_LIST[*]}
EOF
	if [[ -n $BATCH ]]; then
		echo "  - the same on tokio with \`--batch $BATCH --no-gso\` (sendmmsg, $BATCH datagrams per call; the built-in listener receives up to 64 per recvmmsg) and with \`--batch $BATCH\` (each batch also one UDP GSO send, received coalesced with GRO, where the kernel offers them)"
	fi
fi
echo

python3 - "$RESULTS" "$ROUNDS" "$IO" "$TRANSPORTS" <<'PY'
import sys
from collections import defaultdict
from statistics import median

path, rounds = sys.argv[1], int(sys.argv[2])
engines = [f"msg-{e}" for e in sys.argv[3].split(",")]
others = []  # peer tools beside sockperf, when they ran
pp = defaultdict(dict)    # (t, size) -> {round: {tool: (p50, p99)}}
tput = defaultdict(dict)  # size -> {round: {tool: (rate, sent, recv, lost)}}
order = []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    kind, t, size, r, tool = f[0], f[1], int(f[2]), int(f[3]), f[4]
    if kind == "pp":
        key = (t, size)
        if key not in order:
            order.append(key)
        pp[key].setdefault(r, {})[tool] = (float(f[5]), float(f[6]))
        if not tool.startswith("msg") and tool not in ("sockperf", "tokio", "floor") and tool not in others:
            others.append(tool)
    else:
        # rate, sent, received, lost[, datagrams per send call, per receive call, offload]
        tput[size].setdefault(r, {})[tool] = tuple(float(x) for x in f[5:9]) + tuple(f[9:12])

def fmt(v):
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"

def size_str(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"

multi = rounds > 1
if order:
    hdr = ["transport", "size", "engine", "sockperf p50 µs", "msg p50 µs", "ratio p50",
           "sockperf p99 µs", "msg p99 µs", "ratio p99"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---", "---:", "---"] + ["---:"] * 6) + "|")
    for key in order:
        for tool in engines + others:
            runs = [v for _, v in sorted(pp[key].items()) if tool in v and "sockperf" in v]
            if not runs:
                continue
            name = tool[4:] if tool.startswith("msg-") else f"({tool})"
            cells = [key[0].upper(), size_str(key[1]), name]
            for i in (0, 1):
                sp = median(v["sockperf"][i] for v in runs)
                ms = median(v[tool][i] for v in runs)
                ratio = f"{ms / sp:.2f}"
                if multi:
                    ratio += f" ({median(v[tool][i] / v['sockperf'][i] for v in runs):.2f})"
                cells += [fmt(sp), fmt(ms), ratio]
            print("| " + " | ".join(cells) + " |")
    print()
    if multi:
        print(f"Medians over {rounds} rounds; ratio = msg / sockperf of the medians, "
              "in brackets the median of the per-round ratios. Below 1 means msg is faster.")
    else:
        print("One round; ratio = msg / sockperf. Below 1 means msg is faster.")
    for tool in others:
        print(f"Rows in brackets, ({tool}): {tool} in the msg columns, the same ratio to sockperf.")

# TCP/UDP p50 ratio per tool, from the medians of the same rounds.
sizes = sorted({k[1] for k in order if ("udp", k[1]) in pp and ("tcp", k[1]) in pp})
tools = ["sockperf"] + engines + others
if sizes:
    print()
    print("TCP/UDP p50 ratio, each tool in the same rounds (msg / sockperf of those ratios in brackets):\n")
    print("| size | " + " | ".join(t for t in tools) + " |")
    print("|---:|" + "---:|" * len(tools))
for size in sizes:
    cells = [size_str(size)]
    base = None
    for tool in tools:
        u = [v[tool][0] for v in pp[("udp", size)].values() if tool in v]
        t = [v[tool][0] for v in pp[("tcp", size)].values() if tool in v]
        if not u or not t:
            cells.append("-")
            continue
        ratio = median(t) / median(u)
        if base is None:
            base = ratio
            cells.append(f"{ratio:.2f}")
        else:
            cells.append(f"{ratio:.2f} ({ratio / base:.2f})")
    print("| " + " | ".join(cells) + " |")

floor = [k for k in order if any("tokio" in v for v in pp[k].values())]
if floor:
    print()
    print("The floor: the same UDP ping-pong in bare tokio (the tokio_floor example, no msg code), "
          "in the same rounds:\n")
    print("| size | sockperf p50 µs | bare tokio p50 µs | msg p50 µs | tokio / sockperf | msg / tokio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for key in floor:
        mt = "msg-tokio" if "msg-tokio" in engines else engines[0]
        runs = [v for _, v in sorted(pp[key].items()) if {mt, "sockperf", "tokio"} <= v.keys()]
        sp, tk, ms = (median(v[t][0] for v in runs) for t in ("sockperf", "tokio", mt))
        print(f"| {size_str(key[1])} | {fmt(sp)} | {fmt(tk)} | {fmt(ms)} | {tk / sp:.2f} | {ms / tk:.2f} |")

# The floor (bench/floor.c) beside msg's blocking engine and sockperf, per
# transport and size, and its ordering of the transports.
transports = list(dict.fromkeys(sys.argv[4].split(",")))
fkeys = [k for k in order if any("floor" in v for v in pp[k].values())]
if fkeys:
    MSG = "msg-blocking"

    def med_of(key, tool, i=0):
        xs = [v[tool][i] for v in pp[key].values() if tool in v]
        return median(xs) if xs else None

    def ratio(key, tool, i=0):
        a, b = med_of(key, tool, i), med_of(key, "floor", i)
        if a is None or b is None:
            return None, None
        per = [v[tool][i] / v["floor"][i] for v in pp[key].values() if tool in v and "floor" in v]
        return a / b, median(per)

    def rcell(pair):
        r, per = pair
        if r is None:
            return "-"
        return f"{r:.2f}" + (f" ({per:.2f})" if multi else "")

    def vcell(v):
        return "-" if v is None else fmt(v)

    print()
    print("The floor: bench/floor.c, a bare blocking ping-pong (no msg code), per transport, "
          "beside msg's blocking engine and sockperf in the same cells of the same rounds:\n")
    print("| transport | size | floor p50 µs | msg p50 µs | msg/floor | sockperf p50 µs | sockperf/floor "
          "| floor p99 µs | msg p99 µs | msg/floor p99 | msg/floor p50 ≤ 1.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    fsizes = sorted({k[1] for k in fkeys})
    for size in fsizes:
        for t in transports:
            key = (t, size)
            if key not in fkeys:
                continue
            r50 = ratio(key, MSG)
            verdict = "not measured" if r50[0] is None else ("meets" if r50[0] <= 1.05 else "ABOVE")
            cells = [t, size_str(size), vcell(med_of(key, "floor")), vcell(med_of(key, MSG)), rcell(r50),
                     vcell(med_of(key, "sockperf")), rcell(ratio(key, "sockperf")),
                     vcell(med_of(key, "floor", 1)), vcell(med_of(key, MSG, 1)), rcell(ratio(key, MSG, 1)),
                     verdict]
            print("| " + " | ".join(cells) + " |")
    print()
    print(f"Medians over {rounds} rounds; ratio = tool / floor of the medians, in brackets the median "
          "of the per-round ratios." if multi else "One round; ratio = tool / floor.")
    print("A - is a cell the tool did not measure (see Transports above).")
    print()
    # Two transports less than TIE apart are a tie on this machine: their
    # order flips from run to run, so no tool is held to it.
    TIE = 0.03
    print("Ordering of the transports by median p50, fastest first "
          f"(≈: less than {TIE:.0%} apart, a tie here):\n")
    for size in fsizes:
        def ranked(tool):
            xs = [(med_of((t, size), tool), t) for t in transports if (t, size) in pp]
            return sorted((v, t) for v, t in xs if v is not None)

        def chain(rank):
            out = f"{rank[0][1]} {fmt(rank[0][0])}"
            for (pv, _), (v, t) in zip(rank, rank[1:]):
                out += (" ≈ " if v < pv * (1 + TIE) else " < ") + f"{t} {fmt(v)}"
            return out
        floor_rank = ranked("floor")
        if not floor_rank:
            continue
        fl = {t: v for v, t in floor_rank}
        print(f"- {size_str(size)}, floor: {chain(floor_rank)}")
        for tool, name in ((MSG, "msg blocking"), ("sockperf", "sockperf")):
            rank = ranked(tool)
            if not rank:
                continue
            got = {t: v for v, t in rank}
            both = [t for _, t in floor_rank if t in got]
            # Every pair the floor orders clearly (not a tie) must come out the same.
            wrong = [(a, b) for a in both for b in both
                     if fl[a] * (1 + TIE) <= fl[b] and got[a] >= got[b]]
            missing = [t for t in fl if t not in got]
            if wrong:
                verdict = "DIFFERS from the floor's: " + ", ".join(f"{b} ahead of {a}" for a, b in wrong)
            elif [t for _, t in rank if t in fl] == both:
                verdict = "the floor's order"
            else:
                verdict = "the floor's order but for its ties"
            if missing:
                verdict += f"; {', '.join(missing)} not measured"
            print(f"- {size_str(size)}, {name}: {chain(rank)} ({verdict})")

for size, byround in sorted(tput.items()):
    runs = [v for _, v in sorted(byround.items()) if "sockperf" in v]
    unbatched = [t for t in engines if runs and all(t in v for v in runs)]
    if not runs or not unbatched:
        continue
    def med(tool, i):
        return median(v[tool][i] for v in runs)
    def loss(tool):
        return median(100.0 * v[tool][3] / v[tool][1] if v[tool][1] else 0.0 for v in runs)
    # "msg --batch N [--no-gso]" rows, when the script ran with --batch.
    batched = sorted({t for v in runs for t in v if t.startswith("msg --batch")}, key=lambda t: -len(t))
    batched = [t for t in batched if all(t in v for v in runs)]
    sp = med("sockperf", 0)
    print()
    print(f"UDP throughput, {size_str(size)}, one-way stream, messages/s received"
          f"{' (median of %d rounds)' % rounds if multi else ''}:\n")
    if batched:
        print("| tool | received msg/s | sent | received | loss | datagrams per send call | per receive call | offload |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
    else:
        print("| tool | received msg/s | sent | received | loss |")
        print("|---|---:|---:|---:|---:|")
    for tool in ["sockperf"] + unbatched + batched:
        calls = ""
        if batched:
            # The median run's (by received msg/s) call counts.
            if tool.startswith("msg --batch"):
                ranked = sorted(runs, key=lambda v: v[tool][0])
                per_send, per_recv, offload = ranked[(len(ranked) - 1) // 2][tool][4:7]
            else:
                # sendto and recvfrom: one datagram per call at most.
                per_send, per_recv, offload = "1", "≤ 1", "none"
            calls = f" {per_send} | {per_recv} | {offload} |"
        print(f"| {tool} | {med(tool, 0):,.0f} | {med(tool, 1):,.0f} | "
              f"{med(tool, 2):,.0f} | {loss(tool):.1f} % |{calls}")
    print()
    for tool in unbatched:
        ratio = med(tool, 0) / sp
        extra = ""
        if multi:
            extra = f" (median of per-round ratios {median(v[tool][0] / v['sockperf'][0] for v in runs):.2f})"
        verdict = "meets" if ratio >= 1.0 else "BELOW"
        print(f"Ratio {tool}/sockperf: **{ratio:.2f}**{extra}; target ≥ 1.0: {verdict}.")
    for tool in batched:
        b = med(tool, 0)
        per_round = median(v[tool][0] / v["sockperf"][0] for v in runs)
        verdict = "meets" if b / sp >= 2.0 else "BELOW"
        print(f"Ratio {tool}/sockperf: **{b / sp:.2f}** (per round {per_round:.2f}); target ≥ 2.0: {verdict}.")
PY
