#!/usr/bin/env python3
"""deploy/demo/bench.py — paired, interleaved timing of the demo variants.

usage: bench.py [--repeat=K] [--fresh-copies] [--compare=A:B]...
                [--mean-share=A,...:C,...]... [--gate=F [--max-rounds=M]]
                ROUNDS BASE_NAME CEILING_NAME NAME=CMD... [-- ARG...]

Each round runs every variant once, in an order that rotates by one each
round (so no variant always runs first or after the same neighbour), and
records its CPU time (user + system). With --repeat=K (default 1) a round
goes through the variants K times and keeps each variant's fastest run:
on a shared host interference only ever adds time, and the K passes are
interleaved so that a slow phase of seconds hits every variant alike.
Prints, per variant: median, min-max, speedup over
BASE (median over rounds of t_base / t - 1: paired) and its share of CEILING's speedup
(median over rounds of the two speedups' ratio in the same round), each with a ~90%
interval for the median from order statistics (distribution-free).
--fresh-copies runs, in every round, a new copy of each variant's file
(kept to the end, so each copy has its own page-cache pages): on some
hosts the same binary runs at one of two speeds, 20% apart, depending on
its file's copy (where its pages landed, not its path), so without fresh
copies one lucky or unlucky file would bias a variant for the whole run;
with them that luck is drawn again every round, and the median over rounds
takes the typical copy.
--compare=A:B adds a line for A against B, paired the same way (median over
rounds of t_B / t_A - 1; positive: A is faster), e.g. BOLT against its input.
--mean-share=A1,A2,...:C1,C2,... adds a line for the A variants against the
C variants taken together (e.g. one method's builds from several training
sets against another's from the same sets): per round, the mean of the A
variants' speedups over BASE and the mean of the C variants'; their medians
over rounds, and the share = median over rounds of the first mean over the
second (rounds where the C mean gained).
--gate=F (e.g. 0.1) sorts out the host's slow phases: BASE also runs before
the first round and after every round as a probe (not counted); a round is
quiet when the probes on both sides of it took at most F over the fastest
probe. Rounds go on until ROUNDS of them are quiet or --max-rounds=M
(default 4 x ROUNDS; without --gate ROUNDS is all) have run; the table is printed for all rounds and
again for the quiet ones (a slow phase of a shared host can last many
seconds and changes the variants' ratios, not only their times).
Every variant must print what BASE prints (checked on every run).
"""
import atexit
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


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
    repeat, compare, gate, max_rounds = 1, [], None, None
    mean_share, fresh = [], False
    while argv and argv[0].startswith("--"):
        opt, _, val = argv.pop(0).partition("=")
        if opt == "--repeat" and val.isdigit() and int(val) > 0:
            repeat = int(val)
        elif opt == "--compare" and ":" in val:
            compare.append(val.split(":", 1))
        elif opt == "--fresh-copies" and not val:
            fresh = True
        elif opt == "--mean-share" and val.count(":") == 1:
            mean_share.append([g.split(",") for g in val.split(":")])
        elif opt == "--gate" and is_fraction(val):
            gate = float(val)
        elif opt == "--max-rounds" and val.isdigit() and int(val) > 0:
            max_rounds = int(val)
        else:
            sys.exit("bench: bad option %s=%s (see the usage at the top)" %
                     (opt, val))
    rounds, base, ceiling = int(argv[0]), argv[1], argv[2]
    variants = [a.split("=", 1) for a in argv[3:]]
    names = [n for n, _ in variants]
    for a, b in compare:
        if a not in names or b not in names:
            sys.exit("bench: --compare=%s:%s names an unknown variant" % (a, b))
    for group in mean_share:
        for n in group[0] + group[1]:
            if n not in names:
                sys.exit("bench: --mean-share names an unknown variant %r" % n)
    if base not in names or ceiling not in names:
        sys.exit("bench: BASE and CEILING must be among the variants")
    if gate is None:
        max_rounds = rounds
    elif max_rounds is None:
        max_rounds = 4 * rounds
    base_cmd = dict(variants)[base]
    copies = None
    if fresh:
        for n, c in variants:
            if not os.path.isfile(c):
                sys.exit("bench: --fresh-copies: %s is not a file (%s)" % (n, c))
        copies = tempfile.mkdtemp(prefix="bench-copies.")
        atexit.register(shutil.rmtree, copies, True)
    times = {n: [] for n in names}
    probes = []  # probes[r] is taken before round r, probes[r + 1] after it
    expect = None

    def quiet(r):
        fastest = min(probes)
        return max(probes[r], probes[r + 1]) <= (1 + gate) * fastest

    if gate is not None:
        probes.append(run(base_cmd, args)[1])
    r = 0
    while r < max_rounds:
        if gate is not None and r >= rounds and \
                sum(quiet(i) for i in range(r)) >= rounds:
            break
        k = r % len(variants)
        best = {}
        cmds = dict(variants)
        if fresh:
            cmds = {n: fresh_copy(c, copies, "%s.%d" % (n, r))
                    for n, c in variants}
        for _ in range(repeat):
            for name, _cmd in variants[k:] + variants[:k]:
                out, cpu = run(cmds[name], args)
                best[name] = min(cpu, best.get(name, cpu))
                if expect is None:
                    expect = out
                elif out != expect:
                    sys.exit("bench: %s printed %r, expected %r" %
                             (name, out, expect))
        for name in names:
            times[name].append(best[name])
        if gate is not None:
            probes.append(run(base_cmd, args)[1])
        r += 1
        print("  round %d: %s%s" % (r, "  ".join(
            "%s %.3f" % (n, times[n][-1]) for n in names),
            "  (probe %.3f, then %.3f)" % (probes[-2], probes[-1])
            if gate is not None else ""), flush=True)
    lines = ["output of every variant: %s" % expect.decode().strip()]
    how = ("CPU time (user+sys%s)" % (
        ", the fastest of %d interleaved runs per round" % repeat
        if repeat > 1 else ""))
    lines += table(times, list(range(r)), "all %d paired interleaved rounds"
                   " of %s" % (r, how), names, base, ceiling, compare,
                   mean_share)
    if gate is not None:
        kept = [i for i in range(r) if quiet(i)]
        title = ("the %d quiet rounds of %d: the host was in its fast phase"
                 " (a run of %s, not counted, took at most %.0f%% over its"
                 " fastest, %.3f s, before and after the round)" % (
                     len(kept), r, base, 100 * gate, min(probes)))
        if len(kept) >= 5:
            lines += table(times, kept, title, names, base, ceiling, compare,
                           mean_share)
        else:
            lines.append(title + ": too few for a table")
    print("\n".join(lines))


def fresh_copy(cmd, where, name):
    """A new copy of the file cmd (its mode too), named name in where."""
    path = os.path.join(where, name.replace("/", "_"))
    shutil.copy(cmd, path)
    return path


def is_fraction(val):
    try:
        return 0 < float(val) < 1
    except ValueError:
        return False


def table(all_times, idx, title, names, base, ceiling, compare, mean_share=()):
    """The table of the rounds numbered idx."""
    times = {n: [all_times[n][i] for i in idx] for n in names}
    rounds = len(idx)
    med = {n: statistics.median(times[n]) for n in names}
    # Paired: each round's base time over the variant's time in that round,
    # median over rounds (slow periods of a shared host hit both alike).
    # The share is paired too: per round, the variant's gain over the
    # ceiling's gain in that same round.
    def speedup(n, over):
        """Per round, how much faster n ran than over: t_over / t_n - 1."""
        return [to / t - 1.0 for to, t in zip(times[over], times[n])]

    ceiling_gain = speedup(ceiling, base)

    def shares(n):
        return [g / c for g, c in zip(speedup(n, base), ceiling_gain) if c > 0]

    w = max(len(n) for n in names)
    lo_k = median_interval_rank(rounds)

    def mid(vals):
        """The median of vals and its [lo, hi] interval, in percent."""
        s = sorted(vals)
        return (100 * statistics.median(s), 100 * s[lo_k - 1],
                100 * s[-lo_k])
    lines = [
        "%s; speedup = median over rounds of t_base/t - 1; "
        "share = median over rounds of speedup / speedup of %s in the same round; "
        "[lo, hi] = a %.0f%% interval for the median (order statistics %d and %d of %d); "
        "a share without one is the median over the rounds where %s gained"
        % (title, ceiling, 100 * median_interval_level(rounds, lo_k), lo_k,
           rounds + 1 - lo_k, rounds, ceiling),
        "%-*s  %8s  %15s  %8s  %17s  %5s  %13s" % (
            w, "variant", "median s", "min-max s", "speedup", "[lo, hi]",
            "share", "[lo, hi]"),
    ]
    for n in names:
        g_med, g_lo, g_hi = mid(speedup(n, base))
        sh = shares(n)
        lines.append("%-*s  %8.3f  %7.3f-%-7.3f  %+7.1f%%  %17s  %s  %13s" % (
            w, n, med[n], min(times[n]), max(times[n]), g_med,
            "[%+.1f%%, %+.1f%%]" % (g_lo, g_hi),
            "%4.0f%%" % (100 * statistics.median(sh)) if sh else "  n/a",
            "[%.0f%%, %.0f%%]" % mid(sh)[1:]
            if len(sh) == rounds else "of %d rounds" % len(sh)))
    for a, b in compare:
        lines.append("%s against %s: %+.1f%% [%+.1f%%, %+.1f%%] (median over "
                     "rounds of t_%s/t_%s - 1; positive: %s is faster)" % (
                         (a, b) + mid(speedup(a, b)) + (b, a, a)))
    for group_a, group_c in mean_share:
        def mean_gain(group):
            per = [speedup(n, base) for n in group]
            return [statistics.mean(g) for g in zip(*per)]
        ga, gc = mean_gain(group_a), mean_gain(group_c)
        sh = [a / c for a, c in zip(ga, gc) if c > 0]
        if len(sh) == rounds:
            share, where = "%.0f%% [%.0f%%, %.0f%%]" % mid(sh), ""
        else:
            share = "%.0f%%" % (100 * statistics.median(sh)) if sh else "n/a"
            where = ", of the %d rounds where the second gained" % len(sh)
        lines.append(
            "mean of %s against mean of %s: speedups %+.1f%% [%+.1f%%, "
            "%+.1f%%] and %+.1f%% [%+.1f%%, %+.1f%%] (per round, the mean "
            "of the variants' speedups; median over rounds); share %s (median "
            "over rounds of the first mean over the second%s)" % (
                (", ".join(group_a), ", ".join(group_c)) + mid(ga) + mid(gc)
                + (share, where)))
    return lines


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
