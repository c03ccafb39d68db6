#!/usr/bin/env python3
"""deploy/demo/bench.py — paired, interleaved timing of the demo variants.

usage: bench.py ROUNDS BASE_NAME CEILING_NAME NAME=CMD... [-- ARG...]

Each round runs every variant once, in an order that rotates by one each
round (so no variant always runs first or after the same neighbour), and
records its CPU time (user + system). Prints, per variant: median, min-max, speedup over
BASE (median over rounds of t_base / t - 1: paired) and the fraction of CEILING's speedup.
Every variant must print what BASE prints (checked on every run).
"""
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
    gain = lambda n: statistics.median(
        b / t for b, t in zip(times[base], times[n])) - 1.0
    top = gain(ceiling)
    w = max(len(n) for n in names)
    lines = [
        "output of every variant: %s" % expect.decode().strip(),
        "%d paired interleaved rounds of CPU time (user+sys); speedup = median over rounds of t_base/t - 1; "
        "share = speedup / speedup of %s" % (rounds, ceiling),
        "%-*s  %8s  %15s  %8s  %9s" % (w, "variant", "median s",
                                       "min-max s", "speedup", "share"),
    ]
    for n in names:
        share = "%8.0f%%" % (100 * gain(n) / top) if top > 0 else "%9s" % "n/a"
        lines.append("%-*s  %8.3f  %7.3f-%-7.3f  %+7.1f%%  %s" % (
            w, n, med[n], min(times[n]), max(times[n]), 100 * gain(n), share))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
