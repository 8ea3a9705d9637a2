#!/usr/bin/env bash
# bench/file.sh: file transfer over loopback TCP and over Unix stream
# sockets, msg against nc, socat and bench/file_floor.py (the least a
# program can do: the kernel's own Unix/TCP ratio for a file), with iperf3
# (memory to memory, TCP) as the ceiling.
#
# One random file on tmpfs; per round, one transfer with each tool and
# transport in turn, each into a fresh receiver and a fresh empty directory.
# Reports the median MB/s across rounds, ratios to nc and socat (over the
# same transport), each tool's Unix/TCP ratio, and peak RSS of both ends.
#
# Report (Markdown) goes to stdout; progress goes to stderr:
#   bench/file.sh > /tmp/file.md
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bench/file.sh [OPTIONS]

Sends one random file over TCP on 127.0.0.1 with msg, nc (netcat-openbsd),
socat and bench/file_floor.py (1 MiB reads and writes, no framing, no hash:
the floor), and the same file over a Unix stream socket with each of them
(msg --unix, nc -U, socat UNIX-LISTEN/UNIX-CONNECT, file_floor.py --unix),
interleaved in rounds, plus an iperf3 memory-to-memory run of the same byte
count over TCP, and prints Markdown tables of throughput, peak RSS and each
tool's Unix/TCP ratio.

Options:
  --rounds N       Rounds of interleaved transfers (default 3; env ROUNDS)
  --size-mib N     File size in MiB (default 1024; env SIZE_MIB)
  --timeout SECS   Bound on each transfer (default 30 + size-mib/8; env TIMEOUT)
  --skip-msg       Leave msg out (no build, no b3sum); nc, socat and iperf3 only
  --no-unix        TCP only: leave the Unix-socket transfers out
  --no-floor       Leave bench/file_floor.py out
  --floor-sendfile The floor's sender uses sendfile(2) (no copy through user
                   space), its receiver still recv and write
  --floor-splice   The floor's receiver uses splice(2) through a pipe
  --no-build       Do not run cargo build (use MSG_BIN or the existing binary)
  --no-install     Do not apt-get install missing tools (netcat-openbsd,
                   socat, iperf3, time, b3sum)
  --keep-logs      Keep the tools' logs and timings (the directory is printed)
  --quick          Smoke test: 1 round, 256 MiB (unless given explicitly)
  -h, --help       This help

Environment:
  MSG_BIN          Path to a built msg binary (default target/release/msg,
                   under CARGO_TARGET_DIR when set)

Notes:
  * Time is wall clock (date +%s%N) from the sender's start to the receiver's
    exit, after the receiver is seen listening; MB/s is 10^6 bytes per second.
  * Peak RSS is GNU time's %M (KiB) around each sender and receiver process.
  * Received files are checked with cmp, outside the timing; for msg also
    the BLAKE3 hash msg prints against b3sum's, when msg prints one.
  * Ports: a random port in 20000-32767 (below Linux's default ephemeral
    range), free if python3 can bind it on 127.0.0.1; a new one per transfer.
  * Unix sockets: a fresh socket file per transfer, in a private directory
    (mode 0700) that mktemp -d makes under TMPDIR (or /tmp, when that path
    would be too long for a socket) and the script removes at exit. A tool
    that cannot do Unix stream sockets (an msg without --unix, a socat built
    without them) gets no Unix row, with a note in the report.
  * Only 127.0.0.1 and Unix sockets are used. msg needs `send --file` and
    `listen --save-dir` (and `--unix` for its Unix row).
EOF
}

die() { echo "file.sh: $*" >&2; exit 1; }
note() { echo "file.sh: $*" >&2; }

CMDLINE="bench/file.sh${*:+ $(printf '%q ' "$@")}"
CMDLINE=${CMDLINE% }
ROUNDS=${ROUNDS:-}
SIZE_MIB=${SIZE_MIB:-}
TIMEOUT=${TIMEOUT:-}
DO_MSG=1
DO_UNIX=1
DO_FLOOR=1
FLOOR_SEND=()
FLOOR_RECV=()
DO_BUILD=1
DO_INSTALL=1
KEEP_LOGS=0
QUICK=0
HOST=127.0.0.1

while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
	--rounds=*) ROUNDS=${1#*=}; shift ;;
	--size-mib) SIZE_MIB=${2:?--size-mib needs a value}; shift 2 ;;
	--size-mib=*) SIZE_MIB=${1#*=}; shift ;;
	--timeout) TIMEOUT=${2:?--timeout needs a value}; shift 2 ;;
	--timeout=*) TIMEOUT=${1#*=}; shift ;;
	--skip-msg) DO_MSG=0; shift ;;
	--no-unix) DO_UNIX=0; shift ;;
	--no-floor) DO_FLOOR=0; shift ;;
	--floor-sendfile) FLOOR_SEND=(--sendfile); shift ;;
	--floor-splice) FLOOR_RECV=(--splice); shift ;;
	--no-build) DO_BUILD=0; shift ;;
	--no-install) DO_INSTALL=0; shift ;;
	--keep-logs) KEEP_LOGS=1; shift ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
if ((QUICK)); then ROUNDS=${ROUNDS:-1} SIZE_MIB=${SIZE_MIB:-256}; fi
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive whole number, got '$ROUNDS'"
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "--size-mib must be a positive whole number, got '$SIZE_MIB'"
TIMEOUT=${TIMEOUT:-$((30 + SIZE_MIB / 8))}
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be whole seconds >= 1, got '$TIMEOUT'"
SIZE=$((SIZE_MIB * 1048576))

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
FLOOR=(python3 "$SCRIPT_DIR/file_floor.py")

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
	# iperf3's package asks whether to start a daemon: no.
	if [[ " $* " == *" iperf3 "* ]] && command -v debconf-set-selections >/dev/null; then
		echo 'iperf3 iperf3/start_daemon boolean false' | as_root debconf-set-selections
	fi
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# The nc to use: OpenBSD's (it has -N, shutdown after EOF on stdin).
nc_flavour() {
	local c
	for c in nc.openbsd nc; do
		command -v "$c" >/dev/null || continue
		if "$c" -h 2>&1 | grep -qi openbsd; then NC=$(command -v "$c"); return 0; fi
	done
	return 1
}

missing=()
nc_flavour || missing+=(netcat-openbsd)
command -v socat >/dev/null || missing+=(socat)
command -v iperf3 >/dev/null || missing+=(iperf3)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v ss >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
((DO_MSG)) && ! command -v b3sum >/dev/null && missing+=(b3sum)
if ((${#missing[@]})); then
	((DO_INSTALL)) || die "missing: ${missing[*]} (and --no-install given)"
	apt_install "${missing[@]}"
fi
nc_flavour || die "no OpenBSD netcat (nc -h does not say OpenBSD; $(command -v nc || echo 'no nc')): install netcat-openbsd"

# ---------------------------------------------------------------- msg binary
if ((DO_MSG)); then
	if ((DO_BUILD)); then
		note "cargo build --release --locked -q (in $REPO_ROOT)"
		(cd "$REPO_ROOT" && cargo build --release --locked -q) >&2
	fi
	if [[ -z ${MSG_BIN:-} ]]; then
		target_dir=${CARGO_TARGET_DIR:-target}
		[[ $target_dir == /* ]] || target_dir="$REPO_ROOT/$target_dir"
		MSG_BIN="$target_dir/release/msg"
	fi
	[[ -x $MSG_BIN ]] || die "no msg binary at $MSG_BIN (build it, or set MSG_BIN)"
	for need in "send --file" "listen --save-dir"; do
		# Not `| grep -q`: under pipefail an early grep exit can fail the pipe.
		help=$(timeout 10 "$MSG_BIN" "${need% *}" --help 2>&1 || true)
		grep -q -- "${need#* }" <<<"$help" ||
			die "$MSG_BIN has no '$need' (file transfer is not in this build): build one that has it, or pass --skip-msg"
	done
fi

# ---------------------------------------------------------------- Unix sockets: who can
UNIX_TOOLS=()
UNIX_NOTE=
if ((DO_UNIX)); then
	if ((DO_MSG)); then
		help=$(timeout 10 "$MSG_BIN" send --help 2>&1 || true)
		if grep -q -- '--unix' <<<"$help"; then
			UNIX_TOOLS+=(msg)
		else
			UNIX_NOTE+=" msg: this build has no --unix, no msg-unix row."
		fi
	fi
	# OpenBSD's nc has -U; check anyway, the usage line lists the flags.
	if "$NC" -h 2>&1 | grep -q -- '-[A-Za-z]*U'; then
		UNIX_TOOLS+=(nc)
	else
		UNIX_NOTE+=" nc: $NC has no -U, no nc-unix row."
	fi
	if socat -V 2>/dev/null | grep -q 'define WITH_UNIX 1'; then
		UNIX_TOOLS+=(socat)
	else
		UNIX_NOTE+=" socat: built without UNIX addresses, no socat-unix row."
	fi
	((DO_FLOOR)) && UNIX_TOOLS+=(floor)
	((${#UNIX_TOOLS[@]})) || UNIX_NOTE+=" No tool here can do Unix sockets: TCP only."
	UNIX_NOTE=${UNIX_NOTE# }
fi

# ---------------------------------------------------------------- scratch, cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msg-filebench.XXXXXX")
DATA=
if [[ -d /dev/shm && -w /dev/shm && $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
	DATA=$(mktemp -d /dev/shm/msg-filebench.XXXXXX)
	TMPFS_NOTE="/dev/shm (tmpfs)"
else
	DATA=$(mktemp -d)
	TMPFS_NOTE="$DATA (no tmpfs /dev/shm; filesystem: $(stat -f -c %T "$DATA"))"
fi
SOCK_DIR=
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$DATA"
	[[ -z $SOCK_DIR ]] || rm -rf "$SOCK_DIR"
	if ((KEEP_LOGS)); then note "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Socket files: a private directory of their own (mktemp -d makes it 0700),
# short enough for sun_path (107 bytes) with the longest name put in it.
if ((${#UNIX_TOOLS[@]})); then
	SOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/msg-filebench-sock.XXXXXX")
	if ((${#SOCK_DIR} + 32 > 107)); then
		rmdir "$SOCK_DIR"
		SOCK_DIR=$(mktemp -d /tmp/msg-filebench-sock.XXXXXX)
	fi
	((${#SOCK_DIR} + 32 <= 107)) || die "socket directory $SOCK_DIR is too long a path for a Unix socket"
fi

avail=$(($(df -Pk "$DATA" | awk 'NR == 2 {print $4}') * 1024))
((avail > 2 * SIZE + 64 * 1048576)) ||
	die "$TMPFS_NOTE has $((avail / 1048576)) MiB free; needs twice the file ($((2 * SIZE_MIB)) MiB) and some"

SRC="$DATA/source.bin"
note "writing $SIZE_MIB MiB of random bytes to $SRC"
head -c "$SIZE" /dev/urandom >"$SRC"
SRC_B3=
((DO_MSG)) && SRC_B3=$(b3sum --no-names "$SRC")

# A port on 127.0.0.1 that python3 can bind now, not used before in this run.
USED_PORTS=" "
free_port() {
	local p tries
	for ((tries = 0; tries < 200; tries++)); do
		p=$((20000 + RANDOM % 12768))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; then
			USED_PORTS+="$p "
			echo "$p"
			return 0
		fi
	done
	die "could not find a free port"
}

# wait_listen ADDR PID LOG: until something listens on 127.0.0.1:ADDR (a
# port) or, when ADDR is a path, on that Unix socket (10 s at most).
wait_listen() {
	local addr=$1 pid=$2 log=$3 listening
	for _ in $(seq 100); do
		if [[ $addr == /* ]]; then
			# A socket file appears at bind, before listen: ask ss, by path.
			listening=$(ss -Hlx 2>/dev/null || true)
			[[ $'\n'$listening$'\n' == *[[:space:]]"$addr"[[:space:]]* ]] && return 0
		else
			[[ -n $(ss -Hltn "( sport = :$addr )" 2>/dev/null) ]] && return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2 || true
	if [[ $addr == /* ]]; then die "receiver on $addr did not come up"; fi
	die "receiver on $HOST:$addr did not come up"
}

# TIMED RSS_FILE CMD...: peak RSS (KiB) of CMD into RSS_FILE, bounded by timeout.
# A plain command, not a function: `TIMED ... &` makes $! timeout's own pid.
TIMED=(timeout -k 5 "$TIMEOUT" /usr/bin/time -f %M -o)
rss_of() { tail -n1 "$1" | grep -E '^[0-9]+$' || die "no peak RSS in $1"; }

RESULTS="$WORK/results.tsv" # tool round ns sender_kib receiver_kib [iperf3_bps]
: >"$RESULTS"

# run_one TOOL ROUND: one transfer; fresh port (or socket file), fresh
# receiver, fresh directory. TOOL is msg, nc, socat or iperf3 over TCP, or
# msg-unix, nc-unix or socat-unix over a Unix stream socket.
run_one() {
	local tool=$1 r=$2 port="" sock="" dir log rpid t0 t1 rc=0 out extra=""
	if [[ $tool == *-unix ]]; then
		sock="$SOCK_DIR/$tool-r$r.sock"
		rm -f "$sock"
	else
		port=$(free_port)
	fi
	dir=$(mktemp -d "$DATA/recv-$tool-r$r.XXXXXX")
	log="$WORK/$tool-r$r"
	case $tool in
	msg-unix) "${TIMED[@]}" "$log.recv.rss" "$MSG_BIN" listen -v --unix --save-dir "$dir" --count 1 "$sock" \
		>"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	nc-unix) "${TIMED[@]}" "$log.recv.rss" "$NC" -l -U "$sock" >"$dir/out.bin" 2>"$log.recv.err" </dev/null & ;;
	socat-unix) "${TIMED[@]}" "$log.recv.rss" socat -u "UNIX-LISTEN:$sock" "CREATE:$dir/out.bin" \
		>"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	msg) "${TIMED[@]}" "$log.recv.rss" "$MSG_BIN" listen -v --tcp --save-dir "$dir" --count 1 "$HOST:$port" \
		>"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	nc) "${TIMED[@]}" "$log.recv.rss" "$NC" -l "$HOST" "$port" >"$dir/out.bin" 2>"$log.recv.err" </dev/null & ;;
	socat) "${TIMED[@]}" "$log.recv.rss" socat -u "TCP-LISTEN:$port,bind=$HOST,reuseaddr" "CREATE:$dir/out.bin" \
		>"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	iperf3) "${TIMED[@]}" "$log.recv.rss" iperf3 -s -1 -B "$HOST" -p "$port" \
		>"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	floor) "${TIMED[@]}" "$log.recv.rss" "${FLOOR[@]}" recv "${FLOOR_RECV[@]}" --timeout "$TIMEOUT" \
		--tcp "$HOST:$port" --out "$dir/out.bin" >"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	floor-unix) "${TIMED[@]}" "$log.recv.rss" "${FLOOR[@]}" recv "${FLOOR_RECV[@]}" --timeout "$TIMEOUT" \
		--unix "$sock" --out "$dir/out.bin" >"$log.recv.out" 2>"$log.recv.err" </dev/null & ;;
	esac
	rpid=$!
	PIDS+=("$rpid")
	wait_listen "${sock:-$port}" "$rpid" "$log.recv.err"
	t0=$(date +%s%N)
	case $tool in
	msg-unix) "${TIMED[@]}" "$log.send.rss" "$MSG_BIN" send -v --unix "$sock" --file "$SRC" \
		>"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	nc-unix) "${TIMED[@]}" "$log.send.rss" "$NC" -N -U "$sock" <"$SRC" >"$log.send.out" 2>"$log.send.err" || rc=$? ;;
	socat-unix) "${TIMED[@]}" "$log.send.rss" socat -u "FILE:$SRC" "UNIX-CONNECT:$sock" \
		>"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	msg) "${TIMED[@]}" "$log.send.rss" "$MSG_BIN" send -v --tcp "$HOST:$port" --file "$SRC" \
		>"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	nc) "${TIMED[@]}" "$log.send.rss" "$NC" -N "$HOST" "$port" <"$SRC" >"$log.send.out" 2>"$log.send.err" || rc=$? ;;
	socat) "${TIMED[@]}" "$log.send.rss" socat -u "FILE:$SRC" "TCP:$HOST:$port" \
		>"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	iperf3) "${TIMED[@]}" "$log.send.rss" iperf3 -c "$HOST" -p "$port" -n "$SIZE" --json \
		>"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	floor) "${TIMED[@]}" "$log.send.rss" "${FLOOR[@]}" send "${FLOOR_SEND[@]}" --timeout "$TIMEOUT" \
		--tcp "$HOST:$port" --in "$SRC" >"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	floor-unix) "${TIMED[@]}" "$log.send.rss" "${FLOOR[@]}" send "${FLOOR_SEND[@]}" --timeout "$TIMEOUT" \
		--unix "$sock" --in "$SRC" >"$log.send.out" 2>"$log.send.err" </dev/null || rc=$? ;;
	esac
	((rc == 0)) || { cat "$log.send.err" >&2; die "$tool sender failed (exit $rc; 124 is the $TIMEOUT s timeout)"; }
	wait "$rpid" || rc=$?
	t1=$(date +%s%N)
	PIDS=() # the only receiver running was this one
	((rc == 0)) || { cat "$log.recv.err" >&2; die "$tool receiver failed (exit $rc; 124 is the $TIMEOUT s timeout)"; }

	# Verification, outside the timing.
	if [[ $tool == iperf3 ]]; then
		extra=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"])' \
			"$log.send.out") || die "could not parse iperf3's JSON ($log.send.out)"
	else
		mapfile -t out < <(find "$dir" -type f)
		((${#out[@]} == 1)) || die "$tool: expected one file in $dir, found ${#out[@]}"
		cmp -s "$SRC" "${out[0]}" || die "$tool: received file differs from the source (${out[0]})"
		if [[ $tool == msg || $tool == msg-unix ]]; then
			local said
			said=$(cat "$log".*.err "$log".*.out | grep -oiE '\b[0-9a-f]{64}\b' | tr A-F a-f | sort -u | paste -sd' ' || true)
			if [[ -n $said ]]; then
				[[ $said == "$SRC_B3" ]] || die "msg printed BLAKE3 $said, b3sum says $SRC_B3"
				B3_NOTE="the BLAKE3 hash msg printed equals b3sum's"
			fi
		fi
	fi
	rm -rf "$dir"
	[[ -z $sock ]] || rm -f "$sock" # nc -l -U leaves its socket file behind
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$r" $((t1 - t0)) \
		"$(rss_of "$log.send.rss")" "$(rss_of "$log.recv.rss")" "$extra" >>"$RESULTS"
}

# Groups run in turn: a tool's TCP transfer and its Unix one back to back
# (they run on the same state of the machine, and the per-round ratio
# compares like with like), then the next tool's, iperf3 alone at the end.
has_unix() { [[ " ${UNIX_TOOLS[*]} " == *" $1 "* ]]; }
GROUPS_=()
for t in msg nc socat floor; do
	[[ $t == msg ]] && ! ((DO_MSG)) && continue
	[[ $t == floor ]] && ! ((DO_FLOOR)) && continue
	if has_unix "$t"; then GROUPS_+=("$t $t-unix"); else GROUPS_+=("$t"); fi
done
GROUPS_+=(iperf3)
TOOLS=()
for g in "${GROUPS_[@]}"; do
	read -ra pair <<<"$g"
	TOOLS+=("${pair[@]}")
done
B3_NOTE="msg printed no BLAKE3 hash: checked with cmp only"
note "$ROUNDS round(s) of ${TOOLS[*]}, $SIZE_MIB MiB each, timeout ${TIMEOUT}s per transfer"
# Each round starts with the next group (msg, nc, socat, iperf3, then nc,
# socat, iperf3, msg, ...): the first transfer of a round runs on a machine
# that has just freed the previous round's files, and no tool should always
# be the one that pays for it. Within a pair, TCP goes first in odd rounds
# and Unix in even ones.
n_groups=${#GROUPS_[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((i = 0; i < n_groups; i++)); do
		read -ra pair <<<"${GROUPS_[(r - 1 + i) % n_groups]}"
		if ((r % 2 == 0 && ${#pair[@]} == 2)); then pair=("${pair[1]}" "${pair[0]}"); fi
		for tool in "${pair[@]}"; do
			note "round $r/$ROUNDS: $tool"
			run_one "$tool" "$r"
		done
	done
done

# ---------------------------------------------------------------- report
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
msg_rev=$(git -C "$REPO_ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
nc_ver=$(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null || echo unknown)
socat_ver=$(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p' | head -n1)
iperf_ver=$(iperf3 --version 2>/dev/null | head -n1 | awk '{print $2}')
time_ver=$(dpkg-query -W -f='${Version}' time 2>/dev/null || echo unknown)
msg_ver="skipped (--skip-msg)" MSG_NOTE="msg: skipped (--skip-msg)"
if ((DO_MSG)); then
	msg_ver="$(timeout 10 "$MSG_BIN" --version 2>/dev/null | head -n1) at $msg_rev ($MSG_BIN)"
	MSG_NOTE="msg: received files checked with cmp; $B3_NOTE ($(b3sum --version))"
fi

UNIX_DESC="Unix sockets: left out (--no-unix)"
if ((DO_UNIX)); then
	UNIX_DESC="Unix stream sockets: ${UNIX_TOOLS[*]:-none}, a fresh socket file per transfer in a private directory (0700) under $(dirname "${SOCK_DIR:-/tmp/x}"), removed at exit"
	[[ -z $UNIX_NOTE ]] || UNIX_DESC+=". $UNIX_NOTE"
fi
TITLE="File transfer over loopback TCP: msg, nc, socat, the floor; iperf3 ceiling"
ORDER_DESC="each round starting one tool later"
CHECKED="nc, socat, the floor"
if ((${#UNIX_TOOLS[@]})); then
	TITLE="File transfer over loopback TCP and Unix stream sockets: msg, nc, socat, the floor; iperf3 ceiling"
	ORDER_DESC="each round starting one tool later, a tool's TCP and Unix transfers back to back, TCP first in odd rounds"
	CHECKED="nc, socat, the floor (TCP and Unix)"
fi

cat <<EOF
## $TITLE

- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- Kernel: $(uname -srm); CPU: ${cpu_model:-unknown} ($(nproc) CPUs allowed)
- File: $SIZE_MIB MiB ($SIZE bytes) of /dev/urandom, on $TMPFS_NOTE; received into fresh directories there
- Rounds: $ROUNDS, interleaved (per round: ${TOOLS[*]}, $ORDER_DESC); a fresh receiver and port (or socket file) per transfer
- $UNIX_DESC
- Command: \`$CMDLINE\`
- Versions: msg $msg_ver; nc netcat-openbsd $nc_ver ($NC); socat ${socat_ver:-unknown}; iperf3 ${iperf_ver:-unknown}; GNU time $time_ver
- Timing: wall clock from the sender's start to the receiver's exit; MB/s = 10^6 bytes/s; peak RSS from \`/usr/bin/time -f %M\`
- Checks: $CHECKED: cmp against the source, outside the timing; $MSG_NOTE
- Commands (receiver / sender):
EOF
((DO_MSG)) && echo "  - \`msg listen -v --tcp --save-dir DIR --count 1 $HOST:PORT\` / \`msg send -v --tcp $HOST:PORT --file SRC\`"
has_unix msg && echo "  - \`msg listen -v --unix --save-dir DIR --count 1 SOCK\` / \`msg send -v --unix SOCK --file SRC\`"
echo "  - \`nc -l $HOST PORT > DIR/out.bin\` / \`nc -N $HOST PORT < SRC\`"
has_unix nc && echo "  - \`nc -l -U SOCK > DIR/out.bin\` / \`nc -N -U SOCK < SRC\`"
echo "  - \`socat -u TCP-LISTEN:PORT,bind=$HOST,reuseaddr CREATE:DIR/out.bin\` / \`socat -u FILE:SRC TCP:$HOST:PORT\`"
has_unix socat && echo "  - \`socat -u UNIX-LISTEN:SOCK CREATE:DIR/out.bin\` / \`socat -u FILE:SRC UNIX-CONNECT:SOCK\`"
if ((DO_FLOOR)); then
	echo "  - \`bench/file_floor.py recv ${FLOOR_RECV[*]}${FLOOR_RECV[*]:+ }--tcp $HOST:PORT --out DIR/out.bin\` / \`bench/file_floor.py send ${FLOOR_SEND[*]}${FLOOR_SEND[*]:+ }--tcp $HOST:PORT --in SRC\` (python3 $(python3 -c 'import platform; print(platform.python_version())'); its start-up, some 20 ms, is in its time)"
	has_unix floor && echo "  - the same with \`--unix SOCK\`"
fi
echo "  - \`iperf3 -s -1 -B $HOST -p PORT\` / \`iperf3 -c $HOST -p PORT -n $SIZE --json\` (memory to memory: no file)"
echo

python3 - "$RESULTS" "$ROUNDS" "$SIZE" <<'PY'
import sys
from statistics import median

path, rounds, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}  # tool -> list of (MB/s, sender KiB, receiver KiB, iperf3 bps, round)
for line in open(path):
    f = line.rstrip("\n").split("\t")
    rows.setdefault(f[0], []).append(
        (size / (int(f[2]) / 1e9) / 1e6, int(f[3]), int(f[4]),
         float(f[5]) if f[5] else None, int(f[1])))

med = {t: median(x[0] for x in v) for t, v in rows.items()}
unix = any(t.endswith("-unix") for t in rows)


def ratio(tool, ref):
    """The tool's median over ref's, over the same transport; '-' without ref."""
    if tool.endswith("-unix"):
        ref += "-unix"
    return f"{med[tool] / med[ref]:.2f}" if ref in med else "-"


names = {"iperf3": "iperf3 (ceiling, no file)"}
for t in ("msg", "nc", "socat", "floor"):
    names[t] = f"{t} (tcp)" if unix else t
    names[t + "-unix"] = f"{t} (unix)"
print("| tool | median MB/s | min–max MB/s | ratio to nc | ratio to socat "
      "| peak RSS sender MiB | peak RSS receiver MiB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for tool in ("msg", "msg-unix", "nc", "nc-unix", "socat", "socat-unix", "floor", "floor-unix", "iperf3"):
    if tool not in rows:
        continue
    v = rows[tool]
    mbs = [x[0] for x in v]
    print(f"| {names[tool]} | {med[tool]:,.0f} | {min(mbs):,.0f}–{max(mbs):,.0f} "
          f"| {ratio(tool, 'nc')} | {ratio(tool, 'socat')} "
          f"| {median(x[1] for x in v) / 1024:.1f} | {median(x[2] for x in v) / 1024:.1f} |")
print()
what = f"Medians over {rounds} rounds" if rounds > 1 else "One round"
if unix:
    print(f"{what}; ratio = the tool's median MB/s / nc's (socat's) over the same "
          f"transport (a Unix row against nc's and socat's Unix rows; iperf3 against "
          f"their TCP rows). Above 1 means faster.")
else:
    print(f"{what}; ratio = the tool's median MB/s / nc's (socat's). Above 1 means faster.")

if unix:
    print()
    print("Unix against TCP, tool by tool (the floor's, nc's and socat's are the kernel's own "
          "difference):")
    print()
    print("| tool | tcp median MB/s | unix median MB/s | unix/tcp (of the medians) "
          "| unix/tcp per round: median (min–max) |")
    print("|---|---:|---:|---:|---:|")
    for t in ("msg", "nc", "socat", "floor"):
        if t not in rows or t + "-unix" not in rows:
            continue
        tcp = {x[4]: x[0] for x in rows[t]}
        per = sorted(x[0] / tcp[x[4]] for x in rows[t + "-unix"] if x[4] in tcp)
        print(f"| {t} | {med[t]:,.0f} | {med[t + '-unix']:,.0f} "
              f"| **{med[t + '-unix'] / med[t]:.2f}** "
              f"| {median(per):.2f} ({per[0]:.2f}–{per[-1]:.2f}) |")
    if "msg" in rows and "msg-unix" in rows:
        r = med["msg-unix"] / med["msg"]
        verdict = "holds" if r >= 1.2 else "does **not** hold"
        print()
        print(f"Target (msg over a Unix stream ≥ 1.2× msg over loopback TCP, the same "
              f"file, hash verified): msg-unix/msg-tcp = {r:.2f}, so it {verdict} in this run.")

if "iperf3" in rows:
    rep = median(x[3] for x in rows["iperf3"]) / 8 / 1e6
    print()
    print(f"Ceiling: iperf3 moved the same {size:,} bytes memory to memory at "
          f"**{rep:,.0f} MB/s** by its own count (receiver side, over TCP), "
          f"{med['iperf3']:,.0f} MB/s by the wall clock above (which includes its "
          f"control connection and start-up).")
PY
