#!/usr/bin/env python3
"""Prints the results of the benchmark scripts as one table.

usage: table.py RESULTS [MACHINE_FILE]

RESULTS holds one tab-separated line per comparison, written by `record` in
bench/common.sh: NAME OURS_S REF_S REF_LABEL KIND GOAL RSS_BYTES BYTES, and
by `record_pairs` with four more fields: the median of the pair ratios, their
spread ("lo-hi over N pairs"), and the spread of our times and of the
reference's ("lo-hi" seconds), shown for goals on our time alone.
MACHINE_FILE, if given, holds "key: value" lines printed above the table.
A last row checks the peak memory of every dbackup command against 100 MiB.
"""
import os
import sys

MiB = 1 << 20
RSS_GOAL = 100 * MiB


def t(sec):
    return f"{sec * 1000:.0f} ms" if sec < 1 else f"{sec:.2f} s"


def span(spread):
    """'lo-hi' seconds -> '110-130 ms' or '1.10-1.30 s'."""
    lo, _, hi = spread.partition("-")
    lo, hi = float(lo), float(hi)
    if hi < 1:
        return f"{lo * 1000:.0f}-{hi * 1000:.0f} ms"
    return f"{lo:.2f}-{hi:.2f} s"


def met(value, goal):
    for op in ("<=", ">=", "<", ">"):
        if goal.startswith(op):
            bound = float(goal[len(op):])
            return {"<=": value <= bound, ">=": value >= bound,
                    "<": value < bound, ">": value > bound}[op]
    raise ValueError(f"bad goal {goal!r}")


def pretty(goal):
    for op, sign in (("<=", "≤"), (">=", "≥"), ("<", "<"), (">", ">")):
        if goal.startswith(op):
            return f"{sign} {goal[len(op):]}"
    return goal


def main():
    path = sys.argv[1]
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        print(open(sys.argv[2]).read().rstrip())
        print()
    table, rss_all = [], []
    for line in open(path):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        name, ours, ref, ref_label, kind, goal, rss, nbytes = fields[:8]
        # Interleaved pairs (record_pairs): the median of the pair ratios,
        # and their spread; then the spread of each side's times.
        paired = (float(fields[8]), fields[9]) if len(fields) > 9 else None
        spreads = (fields[10], fields[11]) if len(fields) > 11 else None
        ours = float(ours)
        ref = None if ref == "-" else float(ref)
        rss = None if rss == "-" else int(float(rss))
        nbytes = None if nbytes == "-" else int(nbytes)
        shown = t(ours)
        ref_shown = "-" if ref is None else f"{t(ref)} ({ref_label})"
        if nbytes:
            shown += f" = {nbytes / ours / 1e6:.0f} MB/s"
            if ref is not None:
                ref_shown = f"{t(ref)} = {nbytes / ref / 1e6:.0f} MB/s ({ref_label})"
        if kind == "time":
            ratio = paired[0] if paired else ours / ref
            ratio_shown, goal_shown = f"{ratio:.2f}x time", f"{pretty(goal)}x time"
            ok = met(ratio, goal)
        elif kind == "rate":
            ratio = paired[0] if paired else ref / ours
            ratio_shown, goal_shown = f"{ratio:.2f}x throughput", f"{pretty(goal)}x throughput"
            ok = met(ratio, goal)
        elif kind == "abs":
            ratio_shown, goal_shown = "-", f"{pretty(goal)} s"
            ok = met(ours, goal)
            # Not the same work: each side's times, not a ratio.
            if spreads:
                shown += f" ({span(spreads[0])})"
                if ref is not None:
                    ref_shown = f"{t(ref)} ({span(spreads[1])}, {ref_label})"
        else:
            raise ValueError(f"bad kind {kind!r}")
        if rss is not None:
            rss_all.append((rss, name))
        if paired and kind in ("time", "rate"):
            lo, _, rest = paired[1].partition("-")
            hi, _, n = rest.partition(" over ")
            ratio_shown += f" (pairs {float(lo):.2f}-{float(hi):.2f}, {n})"
        table.append((name, shown, ref_shown, ratio_shown, goal_shown,
                      "yes" if ok else "NO", "-" if rss is None else f"{rss / MiB:.0f} MiB"))
    if rss_all:
        top, top_name = max(rss_all)
        table.append((f"peak memory, every dbackup command above ({len(rss_all)})",
                      f"{top / MiB:.0f} MiB", "-", "-", "< 100 MiB",
                      "yes" if top < RSS_GOAL else "NO", f"max: {top_name}"))
    head = ("measurement", "dbackup", "reference", "ratio", "goal", "met", "peak RSS")
    widths = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
    fmt = lambda r: " | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    print(fmt(head))
    print("-|-".join("-" * w for w in widths))
    for r in table:
        print(fmt(r))
    fails = sum(r[5] == "NO" for r in table)
    print()
    print(f"all {len(table)} goals met" if fails == 0
          else f"{fails} of {len(table)} goals NOT met")
    if os.path.exists(path + ".notes"):
        print(open(path + ".notes").read().rstrip())
    if os.path.exists(path + ".busy"):
        print("WARNING: the machine was busy during some comparisons: results are unreliable")


main()
