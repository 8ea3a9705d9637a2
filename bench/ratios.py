#!/usr/bin/env python3
"""bench/ratios.py: the Markdown rows of a tool-against-msg comparison
(bench/stream.sh, bench/parallel.sh): the peer tool's figure first, then
each msg engine's and its ratio to the peer's.

  ratios.py row ROUND PEER MSG...   one round's row
  ratios.py median FILE             the medians of FILE's rounds, one
                                    round a line: PEER MSG...
"""
import sys
from statistics import median


def row(label, peer, msgs, ratios):
    cells = "".join(f" {m:,.0f} | {r:.2f} |" for m, r in zip(msgs, ratios))
    return f"| {label} | {peer:,.0f} |{cells}"


if sys.argv[1] == "row":
    peer, *msgs = map(float, sys.argv[3:])
    print(row(sys.argv[2], peer, msgs, [m / peer for m in msgs]))
else:
    rows = [list(map(float, line.split())) for line in open(sys.argv[2])]
    cols = list(zip(*rows))
    msgs = [median(c) for c in cols[1:]]
    ratios = [median(m / p for m, p in zip(c, cols[0])) for c in cols[1:]]
    print(row("median", median(cols[0]), msgs, ratios))
