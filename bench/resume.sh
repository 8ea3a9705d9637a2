#!/usr/bin/env bash
# A 1 GiB file whose sender is killed (SIGKILL) at about half, then sent
# again with --resume: how many bytes the resumed transfer sends, against
# the file's size. A relay in between counts what crosses the wire (frames
# and all) on each connection, independently of what msg says.
# MSG=path/to/msg SIZE_MIB=1024 ROUNDS=3 bench/resume.sh
set -euo pipefail
MSG=${MSG:-$(dirname "$0")/../target/release/msg}
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-3}
size=$((SIZE_MIB << 20))
W=$(mktemp -d "${TMPDIR:-/tmp}/msg-resume.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/from"
head -c "$size" /dev/urandom > "$W/from/big.bin"
port=19573
relay=$((port + 1))
# The relay: one line per connection, the bytes it passed client -> listener.
python3 - "$relay" "$port" > "$W/relay.log" <<'EOF' &
import socket, sys, threading
relay, port = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", relay)); srv.listen()
def back(a, b):
    try:
        while (d := a.recv(1 << 20)):
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
while True:
    c, _ = srv.accept()
    try:
        s = socket.create_connection(("127.0.0.1", port))
    except OSError:  # no listener yet: the script's probe
        c.close(); print(0, flush=True); continue
    threading.Thread(target=back, args=(s, c), daemon=True).start()
    n = 0
    try:
        while (d := c.recv(1 << 20)):
            s.sendall(d); n += len(d)
    except OSError:
        pass
    s.shutdown(socket.SHUT_WR)
    print(n, flush=True)
EOF
pids+=("$!")
while ! (exec 3<>/dev/tcp/127.0.0.1/$relay) 2>/dev/null; do sleep 0.05; done
# That probe was a connection of its own: its line.
while [ "$(wc -l < "$W/relay.log")" -lt 1 ]; do sleep 0.02; done
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$W/to"; mkdir -p "$W/to"
  : > "$W/listen.err"
  "$MSG" listen --tcp -v 127.0.0.1:$port --save-dir "$W/to" > /dev/null 2> "$W/listen.err" &
  lp=$!
  pids+=("$lp")
  while ! grep -q "listening on" "$W/listen.err"; do sleep 0.02; done
  lines=$(wc -l < "$W/relay.log")
  "$MSG" -q send --tcp 127.0.0.1:$relay --resume --file "$W/from/big.bin" 2>/dev/null &
  sp=$!
  # Killed once the receiver's partial file holds half the file.
  while :; do
    held=$(stat -c %s "$W"/to/.msg-resume-* 2>/dev/null || echo 0)
    [ "$held" -ge $((size / 2)) ] && break
    kill -0 $sp 2>/dev/null || { echo "the sender ended before half" >&2; exit 1; }
    sleep 0.005
  done
  kill -9 $sp; wait $sp 2>/dev/null || true
  while ! grep -q "kept " "$W/listen.err"; do sleep 0.02; done
  kept=$(sed -n 's/.*kept \([0-9]*\) bytes.*/\1/p' "$W/listen.err")
  s=$(date +%s.%N)
  json=$("$MSG" send --tcp 127.0.0.1:$relay --resume --json --file "$W/from/big.bin" 2>/dev/null)
  e=$(date +%s.%N)
  sent=$(echo "$json" | sed -n 's/.*"sent":\([0-9]*\).*/\1/p')
  while [ "$(wc -l < "$W/relay.log")" -lt $((lines + 2)) ]; do sleep 0.02; done
  wire=$(tail -n 1 "$W/relay.log")
  first=$(tail -n 2 "$W/relay.log" | head -n 1)
  cmp -s "$W/from/big.bin" "$W/to/big.bin" && same=identical || same=DIFFERENT
  kill $lp; wait $lp 2>/dev/null || true
  printf 'round %s: killed after %d bytes on the wire, %d kept (%.1f %%); resumed: %d content bytes, %d on the wire = %.1f %% of %d; %.2f s; file %s\n' \
    "$round" "$first" "$kept" "$(echo "100 * $kept / $size" | bc -l)" "$sent" "$wire" \
    "$(echo "100 * $wire / $size" | bc -l)" "$size" "$(echo "$e - $s" | bc)" "$same"
done
