#!/usr/bin/env python3
"""bench/file_floor.py: the floor for a file over a socket, no msg code.

One file from a sender to a receiver over TCP loopback or a Unix stream
socket, the least a program can do: no framing, no hash, the bytes and the
end of the stream. What bench/floor.c is for the ping-pong, this is for
bench/file.sh's file transfer: the kernel's own Unix/TCP ratio for a file,
measured beside msg, nc and socat in the same rounds.

    bench/file_floor.py recv --tcp 127.0.0.1:PORT --out FILE
    bench/file_floor.py send --tcp 127.0.0.1:PORT --in FILE

(--unix PATH for a Unix stream socket.) The receiver listens, takes one
connection, writes what arrives into FILE until the sender closes, and
exits; the sender connects, sends FILE and closes. Both sides move 1 MiB at
a time, as msg's file chunks are 1 MiB, and a Unix stream sender asks for a
1 MiB send buffer, as msg's does (a Unix stream's bytes in flight are
bounded by the sender's buffer alone).

Two ways to move fewer bytes through user space, each off by default:
  --sendfile (send)  sendfile(2) from the file into the socket: no copy
                     through user space (page references since Linux 6.5,
                     on both transports)
  --splice (recv)    splice(2) from the socket through a pipe into FILE

Every wait is bounded: --timeout (default 60 s) is each socket's timeout
and the receiver's wait for its one connection. Only 127.0.0.1, ::1 and
Unix sockets are accepted. Exit 0 on success, 1 on a failure (with one line
on stderr), 2 on a usage error.
"""

import argparse
import fcntl
import os
import socket
import sys

CHUNK = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named only from Python 3.10


def address(args):
    """(family, address) from --tcp or --unix, loopback only."""
    if args.unix is not None:
        return socket.AF_UNIX, args.unix
    host, sep, port = args.tcp.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise SystemExit(usage_error(f"--tcp takes HOST:PORT, got {args.tcp!r}"))
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(usage_error(f"--tcp: loopback only (127.0.0.1 or ::1), got {host!r}"))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def usage_error(text):
    print(f"file_floor.py: {text}", file=sys.stderr)
    return 2


def receive(args):
    family, addr = address(args)
    listener = socket.socket(family, socket.SOCK_STREAM)
    if family != socket.AF_UNIX:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(addr)
    listener.listen(1)
    listener.settimeout(args.timeout)
    conn, _ = listener.accept()
    listener.close()
    conn.settimeout(args.timeout)
    out = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        got = splice_in(conn, out, args.timeout) if args.splice else copy_in(conn, out)
    finally:
        os.close(out)
        conn.close()
        if family == socket.AF_UNIX:
            os.unlink(addr)
    print(got)


def copy_in(conn, out):
    """recv into one 1 MiB buffer, write it out; the byte count."""
    buf = memoryview(bytearray(CHUNK))
    got = 0
    while n := conn.recv_into(buf):
        done = 0
        while done < n:
            done += os.write(out, buf[done:n])
        got += n
    return got


def splice_in(conn, out, timeout):
    """splice from the socket into a pipe and from the pipe into the file.

    splice takes no timeout of the socket's: the socket is made blocking
    with SO_RCVTIMEO instead, so that each splice from it still gives up
    after `timeout` (EAGAIN)."""
    conn.setblocking(True)
    seconds = int(timeout)
    tv = seconds.to_bytes(8, sys.byteorder) + int((timeout - seconds) * 1e6).to_bytes(8, sys.byteorder)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: the default pipe, 64 KiB
        got = 0
        while n := os.splice(conn.fileno(), w, CHUNK):
            left = n
            while left:
                left -= os.splice(r, out, left)
            got += n
        return got
    finally:
        os.close(r)
        os.close(w)


def send(args):
    family, addr = address(args)
    conn = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
    conn.settimeout(args.timeout)
    conn.connect(addr)
    src = os.open(args.input, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        if args.sendfile:
            # socket.sendfile would fall back to read/send on a socket with a
            # timeout; os.sendfile is the system call, on a blocking socket
            # whose SO_SNDTIMEO bounds each call.
            conn.setblocking(True)
            seconds = int(args.timeout)
            usec = int((args.timeout - seconds) * 1e6)
            tv = seconds.to_bytes(8, sys.byteorder) + usec.to_bytes(8, sys.byteorder)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            offset = 0
            while offset < size:
                sent = os.sendfile(conn.fileno(), src, offset, min(CHUNK, size - offset))
                if sent == 0:
                    raise OSError(f"{args.input} ended at {offset} of {size} bytes")
                offset += sent
        else:
            buf = memoryview(bytearray(CHUNK))
            while n := os.readv(src, [buf]):
                conn.sendall(buf[:n])
        conn.shutdown(socket.SHUT_WR)
        # The receiver closes once it has written everything: wait for that
        # (recv returns b"" then), so that the sender's exit means done.
        conn.settimeout(args.timeout)
        conn.recv(1)
    finally:
        os.close(src)
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    for role in ("recv", "send"):
        p = roles.add_parser(role)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--tcp", metavar="HOST:PORT")
        where.add_argument("--unix", metavar="PATH")
        p.add_argument("--timeout", type=float, default=60.0, metavar="SECS")
        if role == "recv":
            p.add_argument("--out", required=True, metavar="FILE")
            p.add_argument("--splice", action="store_true")
        else:
            p.add_argument("--in", dest="input", required=True, metavar="FILE")
            p.add_argument("--sendfile", action="store_true")
    args = parser.parse_args()
    if not args.timeout > 0:
        sys.exit(usage_error(f"--timeout must be more than 0 seconds, got {args.timeout}"))
    try:
        receive(args) if args.role == "recv" else send(args)
    except (OSError, socket.timeout) as err:
        print(f"file_floor.py {args.role}: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
