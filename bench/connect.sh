#!/usr/bin/env bash
# bench/connect.sh: `msg bench --mode connect` against the minimal C loop
# (bench/connect_floor.c) and, where installed, netperf's TCP_CRR,
# interleaved round by round on one core; prints each round and the
# medians, and msg's connections/s over the C loop's.
#
# Usage: bench/connect.sh [--close fin|rst] [--transports udp,tcp,unix]
#   ROUNDS (default 5) rounds of DURATION (default 1) seconds each, SIZE
#   (default 64) bytes, CPU (default 0). Run from the checkout's root; it
#   builds msg (release) and the C loop.
set -euo pipefail

close=rst
transports=udp,tcp,unix
while [ $# -gt 0 ]; do
  case "$1" in
    --close) close="$2"; shift 2 ;;
    --transports) transports="$2"; shift 2 ;;
    *) echo "usage: $0 [--close fin|rst] [--transports udp,tcp,unix]" >&2; exit 2 ;;
  esac
done
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-1}
SIZE=${SIZE:-64}
CPU=${CPU:-0}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/connect_floor" bench/connect_floor.c -lpthread
cargo build --release -q -p msg-cli
msg=target/release/msg
netperf=$(command -v netperf || true)
netserver=$(command -v netserver || true)
if [ -z "$netperf" ]; then
  echo "netperf: not installed (Debian's non-free component); TCP_CRR not measured" >&2
fi

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

IFS=, read -r -a list <<< "$transports"
for round in $(seq "$ROUNDS"); do
  for t in "${list[@]}"; do
    line=$(timeout 120 "$work/connect_floor" "$t" "$SIZE" "$DURATION" "$close" "$CPU")
    echo "round $round c    $line"
    echo "$line" | field conn_per_s >> "$work/c-$t"
    json=$(timeout 120 "$msg" bench --mode connect --transports "$t" --sizes "$SIZE" \
      --close "$close" --runs 1 --duration "${DURATION}s" --json)
    rate=$(echo "$json" | sed -n 's/.*"connections_per_s":\([0-9.]*\).*/\1/p')
    p50=$(echo "$json" | sed -n 's/.*"cycle_p50_us":\([0-9.]*\).*/\1/p')
    echo "round $round msg  transport=$t conn_per_s=$rate cycle_p50_us=$p50"
    echo "$rate" >> "$work/msg-$t"
    echo "$(echo "$line" | field conn_per_s) $rate" | awk '{print $2/$1}' >> "$work/ratio-$t"
  done
  if [ -n "$netperf" ] && [ -n "$netserver" ] && [[ ",$transports," == *,tcp,* ]]; then
    port=$((20000 + RANDOM % 20000))
    taskset -c "$CPU" "$netserver" -D -p "$port" >/dev/null 2>&1 & ns=$!
    sleep 0.2
    rate=$(taskset -c "$CPU" timeout 120 "$netperf" -H 127.0.0.1 -p "$port" -t TCP_CRR \
      -l "$DURATION" -P 0 -- -r "$SIZE,$SIZE" | awk 'NF {v=$NF} END {print v}')
    kill "$ns" 2>/dev/null || true; wait "$ns" 2>/dev/null || true
    echo "round $round netperf TCP_CRR conn_per_s=$rate"
    echo "$rate" >> "$work/netperf-tcp"
  fi
done

echo
printf '%-6s %14s %14s %10s %18s\n' transport "C conn/s" "msg conn/s" "msg/C" "netperf TCP_CRR"
for t in "${list[@]}"; do
  np=-
  [ -f "$work/netperf-$t" ] && np=$(median < "$work/netperf-$t")
  printf '%-6s %14s %14s %10s %18s\n' "$t" "$(median < "$work/c-$t")" \
    "$(median < "$work/msg-$t")" "$(median < "$work/ratio-$t")" "$np"
done
