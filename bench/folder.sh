#!/usr/bin/env bash
# 10,000 files of 4 KiB: msg send --file DIR against tar c | nc -> nc | tar x, interleaved.
set -euo pipefail
MSG=${MSG:-$(dirname "$0")/../target/release/msg}
W=$(mktemp -d "${TMPDIR:-/tmp}/msg-folder.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src/tree"
for d in $(seq 0 99); do
  mkdir "$W/src/tree/d$d"
  for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$W/src/tree/d$d/f$f"; done
done
port=19555
for round in 1 2 3; do
  rm -rf "$W/to-msg" "$W/to-tar"; mkdir -p "$W/to-msg" "$W/to-tar"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  "$MSG" listen --tcp 127.0.0.1:$port --save-dir "$W/to-msg" --count 10000 > /dev/null 2>&1 &
  lp=$!
  while ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done
  s=$(date +%s.%N)
  "$MSG" -q send --tcp 127.0.0.1:$port --file "$W/src/tree"
  e=$(date +%s.%N)
  wait $lp || true
  msg_t=$(echo "$e - $s" | bc)
  n=$(find "$W/to-msg/tree" -type f | wc -l)
  (cd "$W/to-tar" && nc -l 127.0.0.1 $((port+1)) | tar x) &
  tp=$!
  sleep 0.3
  s=$(date +%s.%N)
  tar c -C "$W/src" tree | nc -N 127.0.0.1 $((port+1))
  wait $tp
  e=$(date +%s.%N)
  tar_t=$(echo "$e - $s" | bc)
  m=$(find "$W/to-tar/tree" -type f | wc -l)
  echo "round $round: msg ${msg_t}s ($n files)  tar|nc ${tar_t}s ($m files)  tar/msg $(echo "scale=2; $tar_t / $msg_t" | bc)"
done
