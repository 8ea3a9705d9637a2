#!/usr/bin/env bash
# bench/print.sh: how fast a listener prints. `msg listen --tcp --count N
# | cat > /dev/null`, fed by `msg send --tcp` from a file of N 64-byte
# lines; the time from the send's start to the listener's exit. With two
# binaries, A and B alternate round by round, so both see the same noise.
#
#   bench/print.sh MSG_A [MSG_B] [--rounds R] [--messages N]
#   bench/print.sh /tmp/msg-old target/release/msg --rounds 11 --messages 500000
#
# Prints each time, then the medians, and B/A with two binaries (as
# bench/ab.sh: the old one first, and B/A is new against old).
# Loopback only, on a port the system gives the listener.
set -euo pipefail

rounds=5
messages=200000
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --messages) messages=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) bins+=("$1"); shift ;;
  esac
done
[ ${#bins[@]} -ge 1 ] && [ ${#bins[@]} -le 2 ] || { sed -n '2,12p' "$0"; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 -c "import sys; sys.stdout.write(''.join('line %07d of the printing benchmark, sixty-four bytes long....\n' % i for i in range($messages)))" > "$dir/in"

# One timed transfer with binary $1: seconds on stdout.
one() {
  local bin=$1
  "$bin" listen --tcp --count "$messages" -v 127.0.0.1:0 2> "$dir/err" | cat > /dev/null &
  local listener=$!
  local addr=""
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*listening on tcp \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$dir/err")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "the listener did not start: $(cat "$dir/err")" >&2; exit 1; }
  local start end
  start=$(date +%s.%N)
  timeout 120 "$bin" send --tcp -q "$addr" < "$dir/in"
  timeout 120 tail --pid="$listener" -f /dev/null
  wait "$listener"
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

for round in $(seq 1 "$rounds"); do
  for which in A B; do
    [ "$which" = B ] && [ ${#bins[@]} -lt 2 ] && continue
    bin=${bins[0]}
    [ "$which" = B ] && bin=${bins[1]}
    echo "$which $(one "$bin")"
  done
done | tee "$dir/times"

python3 - "$dir/times" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    which, secs = line.split()
    times.setdefault(which, []).append(float(secs))
medians = {k: statistics.median(v) for k, v in times.items()}
for k in sorted(medians):
    print(f"{k}: median {medians[k]:.3f} s over {len(times[k])} rounds "
          f"({min(times[k]):.3f}-{max(times[k]):.3f})")
if "B" in medians:
    print(f"B/A: {medians['B'] / medians['A']:.2f}")
PY
