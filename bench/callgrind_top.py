#!/usr/bin/env python3
"""bench/callgrind_top.py: where the instructions of one round trip go.

Takes two callgrind files of the same side (a short and a long run, as
bench/callgrind.sh writes them) and the round trips of each, and prints
the functions whose self cost grew the most, per round trip: the
difference of the two runs over the difference of the round trips, so
that start-up and set-up cancel out. Inlined code is credited to the
function it was inlined into (the release profile keeps line tables only),
and one function's lines from several source files are added up.

    bench/callgrind_top.py SHORT.cg N_SHORT LONG.cg N_LONG [--top 15]
"""

import argparse
import re
import subprocess
from collections import defaultdict

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)$")


def self_costs(path):
    """Self cost per function name, summed over source files."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    costs = defaultdict(int)
    body = out.split("file:function", 1)[-1]
    for line in body.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if "PROGRAM TOTALS" in name:
            continue
        # "file:function [object]": the file never holds ": " or "::".
        _, _, func = name.partition(":")
        func = re.sub(r" \[[^\]]*\]$", "", func)
        costs[func] += cost
    return costs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("short")
    ap.add_argument("n_short", type=int)
    ap.add_argument("long")
    ap.add_argument("n_long", type=int)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    a, b = self_costs(args.short), self_costs(args.long)
    dn = args.n_long - args.n_short
    per = {f: (b.get(f, 0) - a.get(f, 0)) / dn for f in set(a) | set(b)}
    total = sum(per.values())
    print(f"{total:8.0f}  total per round trip")
    for func, cost in sorted(per.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{cost:8.0f}  {func[:150]}")


if __name__ == "__main__":
    main()
