#!/usr/bin/env python3
"""deploy/demo/bench.py — paired, interleaved timing of the demo variants.

usage: bench.py ROUNDS BASE_NAME CEILING_NAME NAME=CMD... [-- ARG...]

Each round runs every variant once, in an order that rotates by one each
round (so no variant always runs first or after the same neighbour), and
records its CPU time (user + system). Prints, per variant: median, min-max, speedup over
BASE (median over rounds of t_base / t - 1: paired) and its share of CEILING's speedup
(median over rounds of the two speedups' ratio in the same round), each with a ~90%
interval for the median from order statistics (distribution-free).
Every variant must print what BASE prints (checked on every run).
"""
import math
import os
import statistics
import subprocess
import sys


def run(cmd, args):
    """Run one variant; its output and its CPU time (user + system, from
    wait4: less disturbed than wall time by other work on a small host)."""
    p = subprocess.Popen([cmd] + args, stdout=subprocess.PIPE)
    out = p.stdout.read()
    p.stdout.close()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("bench: %s exited %d" % (cmd, p.returncode))
    return out, ru.ru_utime + ru.ru_stime


def main():
    argv = sys.argv[1:]
    args = []
    if "--" in argv:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    rounds, base, ceiling = int(argv[0]), argv[1], argv[2]
    variants = [a.split("=", 1) for a in argv[3:]]
    names = [n for n, _ in variants]
    times = {n: [] for n in names}
    expect = None
    for r in range(rounds):
        k = r % len(variants)
        for name, cmd in variants[k:] + variants[:k]:
            out, cpu = run(cmd, args)
            times[name].append(cpu)
            if expect is None:
                expect = out
            elif out != expect:
                sys.exit("bench: %s printed %r, expected %r" %
                         (name, out, expect))
        print("  round %d/%d: %s" % (r + 1, rounds, "  ".join(
            "%s %.3f" % (n, times[n][-1]) for n in names)), flush=True)
    med = {n: statistics.median(times[n]) for n in names}
    # Paired: each round's base time over the variant's time in that round,
    # median over rounds (slow periods of a shared host hit both alike).
    # The share is paired too: per round, the variant's gain over the
    # ceiling's gain in that same round.
    def ratios(n):
        return [b / t - 1.0 for b, t in zip(times[base], times[n])]

    def shares(n):
        return [g / c for g, c in zip(ratios(n), ratios(ceiling)) if c > 0]

    w = max(len(n) for n in names)
    lo_k = median_interval_rank(rounds)
    lines = [
        "output of every variant: %s" % expect.decode().strip(),
        "%d paired interleaved rounds of CPU time (user+sys); speedup = median over rounds of t_base/t - 1; "
        "share = median over rounds of speedup / speedup of %s in the same round; "
        "[lo, hi] = a %.0f%% interval for the median (order statistics %d and %d of %d)"
        % (rounds, ceiling, 100 * median_interval_level(rounds, lo_k), lo_k,
           rounds + 1 - lo_k, rounds),
        "%-*s  %8s  %15s  %8s  %17s  %5s  %13s" % (
            w, "variant", "median s", "min-max s", "speedup", "[lo, hi]",
            "share", "[lo, hi]"),
    ]
    for n in names:
        g = sorted(ratios(n))
        sh = sorted(shares(n))
        lines.append("%-*s  %8.3f  %7.3f-%-7.3f  %+7.1f%%  %17s  %s  %13s" % (
            w, n, med[n], min(times[n]), max(times[n]),
            100 * statistics.median(g),
            "[%+.1f%%, %+.1f%%]" % (100 * g[lo_k - 1], 100 * g[-lo_k]),
            "%4.0f%%" % (100 * statistics.median(sh)) if sh else "  n/a",
            "[%.0f%%, %.0f%%]" % (100 * sh[lo_k - 1], 100 * sh[-lo_k])
            if len(sh) == rounds else ""))
    print("\n".join(lines))


def median_interval_level(n, k):
    """P(X_(k) <= median <= X_(n+1-k)) for n samples: 1 - 2 P(B(n, 1/2) < k)."""
    tail = sum(math.comb(n, i) for i in range(k)) / 2.0 ** n
    return 1 - 2 * tail


def median_interval_rank(n):
    """The largest k whose interval [X_(k), X_(n+1-k)] still covers the
    median with probability >= 90% (k = 1 for very few rounds)."""
    k = 1
    while k + 1 <= (n + 1) // 2 and median_interval_level(n, k + 1) >= 0.90:
        k += 1
    return k

if __name__ == "__main__":
    main()
