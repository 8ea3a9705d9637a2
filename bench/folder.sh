#!/usr/bin/env bash
# bench/folder.sh: 10,000 files of 4 KiB, `msg send --file DIR` against
# `tar c | nc` -> `nc | tar x`, interleaved, over TCP loopback.
#
#   bench/folder.sh [--rounds N]          (default 3; env ROUNDS)
#   MSG=target/release/msg MSG_BEFORE=/tmp/msg-old bench/folder.sh --rounds 5
#
# MSG_BEFORE, when set, is a second msg binary run in the same rounds (an
# older build, for a before/after in one run).
#
# Each timed transfer gets the same start: caches dropped (`sync; echo 3 >
# /proc/sys/vm/drop_caches`, when allowed), then the source read back into
# the page cache, then a fresh empty target folder. Why both: ext4 skips
# inodes deleted in the last minute whose table block is still cached
# (`recently_deleted()`), so whoever writes right after a deletion, with
# those blocks cached, scans past them, at up to several seconds for 10,000
# files; and a source read from disk by one tool and from the cache by the
# next is no comparison. Targets are removed at the end, not between
# transfers. Tools alternate who goes first from round to round.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: bench/folder.sh [--rounds N]" >&2; exit 2 ;;
  esac
done
MSG=${MSG:-$(dirname "$0")/../target/release/msg}
MSG_BEFORE=${MSG_BEFORE:-}
W=$(mktemp -d "${TMPDIR:-/tmp}/msg-folder.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src/tree"
for d in $(seq 0 99); do
  mkdir "$W/src/tree/d$d"
  for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$W/src/tree/d$d/f$f"; done
done
port=${PORT:-19555}

fresh_start() {
  sync
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  find "$W/src" -type f -exec cat {} + > /dev/null
}

# run_msg BINARY TARGET: seconds from the send to its last verdict, and the
# files saved.
run_msg() {
  mkdir -p "$2"
  "$1" listen --tcp 127.0.0.1:$port --save-dir "$2" --count 10000 > /dev/null 2>&1 &
  local lp=$!
  while ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done
  local s e
  s=$(date +%s.%N)
  "$1" -q send --tcp 127.0.0.1:$port --file "$W/src/tree"
  e=$(date +%s.%N)
  wait $lp || true
  echo "$(echo "$e - $s" | bc) $(find "$2/tree" -type f | wc -l)"
}

# run_tar TARGET: seconds from tar c's start to tar x's end, and the files.
run_tar() {
  mkdir -p "$1"
  (cd "$1" && nc -l 127.0.0.1 $((port+1)) | tar x) &
  local tp=$!
  sleep 0.3
  local s e
  s=$(date +%s.%N)
  tar c -C "$W/src" tree | nc -N 127.0.0.1 $((port+1))
  wait $tp
  e=$(date +%s.%N)
  echo "$(echo "$e - $s" | bc) $(find "$1/tree" -type f | wc -l)"
}

echo "load: $(uptime)"
for round in $(seq 1 "$ROUNDS"); do
  tools="msg tar"; [ -n "$MSG_BEFORE" ] && tools="msg before tar"
  [ $((round % 2)) = 0 ] && tools=$(echo "$tools" | tr ' ' '\n' | tac | tr '\n' ' ')
  line="round $round:"
  declare -A t=()
  for tool in $tools; do
    fresh_start
    case $tool in
      msg) out=$(run_msg "$MSG" "$W/to-msg-$round") ;;
      before) out=$(run_msg "$MSG_BEFORE" "$W/to-before-$round") ;;
      tar) out=$(run_tar "$W/to-tar-$round") ;;
    esac
    t[$tool]=${out% *}
    line="$line  $tool ${t[$tool]}s (${out#* } files)"
  done
  line="$line  tar/msg $(echo "scale=2; ${t[tar]} / ${t[msg]}" | bc)"
  [ -n "$MSG_BEFORE" ] && line="$line  tar/before $(echo "scale=2; ${t[tar]} / ${t[before]}" | bc)"
  echo "$line  (first: ${tools%% *})"
done
echo "load: $(uptime)"
