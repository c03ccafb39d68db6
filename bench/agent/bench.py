#!/usr/bin/env python3
"""bench/agent/bench.py — driver of bench/agent/run.sh (see there).

Runs the workload ROUNDS times per variant, interleaved (the order rotates
every round), and measures each run's wall time and the CPU time
(user + sys) of its whole process tree: os.wait4() on the direct child
returns the rusage of the child and of every descendant it waited for
(the agent and perf both wait for the workload). Prints a table of medians
and the overheads over the workload alone.

  bench.py --workload EXE --args A... --agent EXE --url URL --freq HZ
           --rounds N --tmp DIR [--fdod-pid PID]
"""
import argparse
import os
import statistics
import sys
import time


def run_once(argv, out_path):
    """(wall s, cpu s, exit status) of one run, its output to out_path."""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1),
                                       (os.POSIX_SPAWN_DUP2, fd, 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    os.close(fd)
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def proc_cpu(pid):
    """utime + stime of a running process, seconds (/proc/PID/stat)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True)
    ap.add_argument("--args", nargs="*", default=[])
    ap.add_argument("--agent", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--freq", type=int, default=997)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--fdod-pid", type=int, default=0)
    ap.add_argument("--perf", default="perf")
    a = ap.parse_args()

    w = [a.workload] + a.args
    pdata = os.path.join(a.tmp, "perf.data")
    perf = [a.perf, "record", "-q", "-F", str(a.freq), "-g", "-o", pdata]
    variants = [
        ("alone", w),
        ("fdo-agent", [a.agent, "--freq", str(a.freq), "--url", a.url,
                       "--binary", "benchwork", "--"] + w),
        ("perf record", perf + ["-e", "cpu-clock", "--"] + w),
        ("perf record :u", perf + ["-e", "cpu-clock:u", "--"] + w),
    ]
    res = {name: [] for name, _ in variants}
    fdod_cpu = 0.0
    expected = None
    # one unmeasured warm-up of each (page cache, perf's first-run setup)
    order = list(range(len(variants)))
    for rnd in range(a.rounds + 1):
        for k in order:
            name, argv = variants[k]
            out = os.path.join(a.tmp, "out.%d" % k)
            c0 = proc_cpu(a.fdod_pid) if a.fdod_pid and k == 1 else 0
            wall, cpu, rc = run_once(argv, out)
            if a.fdod_pid and k == 1 and rnd > 0:
                fdod_cpu += proc_cpu(a.fdod_pid) - c0
            with open(out) as f:
                text = f.read()
            if rc != 0:
                sys.exit("bench/agent: %s exited %d:\n%s" % (name, rc, text))
            # the workload's own line (first line the workload printed)
            line = [l for l in text.splitlines()
                    if l and l.split()[0].isdigit()][:1]
            if expected is None:
                expected = line
            elif line != expected:
                sys.exit("bench/agent: %s printed %r, alone printed %r" %
                         (name, line, expected))
            if k == 1 and "samples_sent=" not in text:
                sys.exit("bench/agent: fdo-agent printed no summary:\n" + text)
            if k == 1:
                last_agent = text
            if rnd > 0:
                res[name].append((wall, cpu))
            if os.path.exists(pdata):
                os.unlink(pdata)
        order = order[1:] + order[:1]

    med = {n: (statistics.median(x[0] for x in v),
               statistics.median(x[1] for x in v)) for n, v in res.items()}
    spread = {n: (max(x[1] for x in v) - min(x[1] for x in v)) for n, v in
              res.items()}
    base_wall, base_cpu = med["alone"]

    def over(n):
        wall, cpu = med[n]
        return (cpu - base_cpu) / base_cpu * 100, \
            (wall - base_wall) / base_wall * 100

    print()
    print("== agent overhead: %s %s, %d Hz, %d interleaved rounds per "
          "variant, medians" % (os.path.basename(a.workload),
                                " ".join(a.args), a.freq, a.rounds))
    print("  %-16s %10s %10s %12s %14s %14s" % (
        "variant", "wall s", "CPU s", "CPU spread", "CPU overhead",
        "wall overhead"))
    for n, _ in variants:
        wall, cpu = med[n]
        if n == "alone":
            print("  %-16s %10.3f %10.3f %11.3fs %14s %14s" % (
                n, wall, cpu, spread[n], "-", "-"))
        else:
            co, wo = over(n)
            print("  %-16s %10.3f %10.3f %11.3fs %13.1f%% %13.1f%%" % (
                n, wall, cpu, spread[n], co, wo))
    ag = med["fdo-agent"][1] - base_cpu
    verdicts = []
    for pn in ("perf record", "perf record :u"):
        pc = med[pn][1] - base_cpu
        ratio = ag / pc if pc > 0 else float("inf")
        verdicts.append((pn, pc, ratio))
        print("  agent/%-15s CPU overhead ratio %.2f (agent +%.3f s, "
              "%s +%.3f s)" % (pn, ratio, ag, pn, pc))
    if a.fdod_pid:
        print("  fdod CPU while ingesting the agent runs: %.3f s per run "
              "(server side, not in the agent's figure)" %
              (fdod_cpu / a.rounds))
    m = [l for l in last_agent.splitlines() if "summary:" in l]
    if m:
        print("  last agent run: " + m[0].split("summary:", 1)[1].strip())
    pn, pc, ratio = verdicts[0]
    noise = spread["alone"]
    print()
    print("  target: fdo-agent's CPU overhead no more than perf record's at "
          "the same frequency (-F %d -g -e cpu-clock)" % a.freq)
    verdict = "met" if ag <= pc else "NOT met"
    if abs(ag - pc) < noise:
        verdict += " (difference %.3f s is within the alone runs' spread "\
            "%.3f s)" % (abs(ag - pc), noise)
    print("  verdict: %s (ratio %.2f)" % (verdict, ratio))
    print("""
  CPU = user + sys of the whole process tree (wait4 rusage): the workload
  plus the sampler. The kernel's sampling work (timer interrupt, stack
  walk, ring-buffer write) runs in the workload's context, so it is counted
  in both sampled variants. 'perf record' samples kernel stacks too (what
  the target names); 'perf record :u' samples user space only, as fdo-agent
  does (exclude_kernel), the like-for-like comparison.""")


if __name__ == "__main__":
    main()
