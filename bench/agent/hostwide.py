#!/usr/bin/env python3
"""bench/agent/hostwide.py — driver of `bench/agent/run.sh --all`: the
overhead of host-wide sampling (`fdo-agent --all`) against `perf record -a`
at the same frequency on a busy host, and the agent's RSS over a long run.

Overhead: one copy of the workload per CPU (fixed work), ROUNDS paired,
interleaved rounds (the order rotates every round) of four variants: no
profiler, `fdo-agent --all` (to fdod, on a lock file of its own), `perf
record -a -g -e cpu-clock` and the same with cpu-clock:u (user stacks only,
as the agent samples), both writing a temporary perf.data. A profiler is
started first, given --settle seconds, then the copies run; then it is
stopped (SIGTERM, SIGINT for perf) and reaped. Per round and variant:

  overhead = (copies' CPU - copies' CPU alone + profiler's CPU)
             / copies' CPU alone

CPU is user + sys from wait4: the copies' summed, the profiler's over its
whole life (start-up scan of /proc, sampling, the agent's final batches,
perf's build-id pass at exit). The kernel's sampling work (timer interrupt,
stack walk, ring write) runs in the sampled context and lands in the
copies' CPU. Medians over rounds with a ~90% interval (order statistics),
the agent/perf ratio of the medians, and the per-round difference.

RSS: `fdo-agent --all` for --rss-minutes while the copies are restarted as
they end (a new process every fraction of a second: process churn), its
VmRSS and RssAnon read every --rss-every seconds; prints start, end of
warm-up, max and end, the slope after warm-up, whether it is flat, and
what the agent held at exit (its summary's counts) against the processes
running then. At each reading the agent is sent SIGUSR1: right after its
next flush it prints a status line with its own VmRSS and what its spool
holds. Readings between flushes also hold that interval's stacks, which
follow the host's load; the flat verdict is on the RSS after flushes,
what the agent keeps.

  hostwide.py --workload EXE --work N --agent EXE --url URL --freq HZ
              --rounds N --tmp DIR [--fdod-pid PID] [--rss-minutes M]
"""
import argparse
import os
import platform
import re
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "fdo"))
from fdobench import mid  # noqa: E402  (median and its ~90% interval)

TCK = os.sysconf("SC_CLK_TCK")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def proc_cpu(pid):
    """utime + stime of a running process, seconds (/proc/PID/stat)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TCK
    except OSError:
        return float("nan")


def proc_rss(pid):
    """(VmRSS, RssAnon) of a running process, KiB, or None."""
    got = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon"):
                    got[k] = int(v.split()[0])
    except OSError:
        return None
    return got.get("VmRSS"), got.get("RssAnon")


def said(text):
    """Prints what else the agent said (its warnings), each kind once."""
    seen = {}
    for ln in text.splitlines():
        if ("summary:" in ln or "status:" in ln or
                "sampling every process" in ln):
            continue
        seen.setdefault(re.sub(r"\d+", "N", ln), [0, ln])[0] += 1
    for n, ln in seen.values():
        print("  agent said %dx: %s" % (n, ln))


LIVE = set()   # profilers running, stopped at exit whatever happens


def spawn(argv, out_path):
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return os.posix_spawnp(argv[0], argv, os.environ,
                               file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1),
                                             (os.POSIX_SPAWN_DUP2, fd, 2)])
    finally:
        os.close(fd)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Bench:
    def __init__(self, a):
        self.a = a
        self.ncpu = a.copies or os.cpu_count()
        self.expected = None
        self.lock = os.path.join(a.tmp, "all.lock")
        self.pdata = os.path.join(a.tmp, "perf.data")

    def agent_argv(self):
        return [self.a.agent, "--all", "--freq", str(self.a.freq), "--url",
                self.a.url, "--lock-file", self.lock]

    def perf_argv(self, event):
        return [self.a.perf, "record", "-q", "-a", "-g", "-F",
                str(self.a.freq), "-e", event, "-o", self.pdata]

    def start_profiler(self, name, argv):
        """Starts a profiler; returns its pid once it samples."""
        out = os.path.join(self.a.tmp, "prof.out")
        pid = spawn(argv, out)
        LIVE.add(pid)
        if argv[0] == self.a.agent:
            # the agent says so once its events are open and /proc is read
            t_end = time.monotonic() + 20
            while "sampling every process" not in read(out):
                if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() > t_end:
                    sys.exit("bench/agent: %s did not start:\n%s" %
                             (name, read(out)))
                time.sleep(0.05)
        time.sleep(self.a.settle)
        if os.waitpid(pid, os.WNOHANG)[0]:
            sys.exit("bench/agent: %s exited at start:\n%s" % (name, read(out)))
        return pid, out

    def stop_profiler(self, name, pid, out, sig):
        os.kill(pid, sig)
        _, status, ru = os.wait4(pid, 0)
        LIVE.discard(pid)
        rc = os.waitstatus_to_exitcode(status)
        text = read(out)
        # perf ends 130 or by the signal itself after SIGINT
        if rc not in (0, 128 + sig, -sig):
            sys.exit("bench/agent: %s exited %d:\n%s" % (name, rc, text))
        return ru.ru_utime + ru.ru_stime, text

    def run_copies(self, work):
        """(wall s, summed CPU s) of one copy per CPU, output checked."""
        t0 = time.perf_counter()
        pids = [spawn([self.a.workload, str(work)],
                      os.path.join(self.a.tmp, "wl.%d" % i))
                for i in range(self.ncpu)]
        cpu = 0.0
        for i, pid in enumerate(pids):
            _, status, ru = os.wait4(pid, 0)
            cpu += ru.ru_utime + ru.ru_stime
            text = read(os.path.join(self.a.tmp, "wl.%d" % i))
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit("bench/agent: workload failed:\n" + text)
            if self.expected is None:
                self.expected = text
            elif text != self.expected:
                sys.exit("bench/agent: workload printed %r, expected %r" %
                         (text, self.expected))
        return time.perf_counter() - t0, cpu

    # ------------------------------------------------------------ overhead

    def overhead(self):
        a = self.a
        variants = [
            ("alone", None, 0),
            ("fdo-agent --all", self.agent_argv(), signal.SIGTERM),
            ("perf record -a", self.perf_argv("cpu-clock"), signal.SIGINT),
            ("perf record -a :u", self.perf_argv("cpu-clock:u"),
             signal.SIGINT),
        ]
        res = {n: [] for n, _, _ in variants}
        fdod = []
        summary = said_last = ""
        order = list(range(len(variants)))
        for rnd in range(a.rounds + 1):   # round 0: unmeasured warm-up
            for k in order:
                name, argv, sig = variants[k]
                prof, f0 = None, proc_cpu(a.fdod_pid) if a.fdod_pid else 0
                if argv:
                    prof = self.start_profiler(name, argv)
                wall, cpu = self.run_copies(a.work)
                pcpu = 0.0
                if prof:
                    pcpu, text = self.stop_profiler(name, *prof, sig)
                    if argv[0] == a.agent:
                        s = [ln for ln in text.splitlines()
                             if "summary:" in ln]
                        if not s:
                            sys.exit("bench/agent: fdo-agent printed no "
                                     "summary:\n" + text)
                        summary = s[-1].split("summary:", 1)[1].strip()
                        said_last = text
                        if a.fdod_pid and rnd > 0:
                            fdod.append(proc_cpu(a.fdod_pid) - f0)
                if os.path.exists(self.pdata):
                    os.unlink(self.pdata)
                if rnd > 0:
                    res[name].append((wall, cpu, pcpu))
            order = order[1:] + order[:1]
            if rnd > 0:
                print("  round %d/%d done" % (rnd, a.rounds), flush=True)

        base = res["alone"]
        over = {}   # per round: (overhead %, wall slowdown %, workload %, profiler %)
        for n, _, _ in variants[1:]:
            over[n] = []
            for (bw, bc, _), (w, c, p) in zip(base, res[n]):
                over[n].append(((c - bc + p) / bc * 100, (w / bw - 1) * 100,
                                (c - bc) / bc * 100, p / bc * 100))

        def iv(xs):
            m, lo, hi = mid(xs)
            return "%+6.1f%% [%+.1f, %+.1f]" % (m, lo, hi)

        print()
        print("== host-wide overhead: %d copies of %s %d on %d CPUs, %d Hz, "
              "%d paired interleaved rounds" % (
                  self.ncpu, os.path.basename(a.workload), a.work,
                  os.cpu_count(), a.freq, a.rounds))
        print("  CPU: %s; kernel %s; load average before: %s" % (
            cpu_model(), platform.release(), self.load0))
        bw = statistics.median(x[0] for x in base)
        bc = statistics.median(x[1] for x in base)
        print("  alone: wall %.2f s, copies' CPU %.2f s (medians; CPU "
              "min-max %.2f-%.2f s)" % (bw, bc, min(x[1] for x in base),
                                        max(x[1] for x in base)))
        print()
        print("  %-18s %-24s %-24s %-24s %-24s %9s" % (
            "variant", "overhead [~90%]", "copies' CPU", "profiler's CPU",
            "wall slowdown", "prof CPU s"))
        for n, _, _ in variants[1:]:
            o = over[n]
            print("  %-18s %-24s %-24s %-24s %-24s %9.2f" % (
                n, iv([x[0] for x in o]), iv([x[2] for x in o]),
                iv([x[3] for x in o]), iv([x[1] for x in o]),
                statistics.median(x[2] for x in res[n])))
        print()
        ag = [x[0] for x in over["fdo-agent --all"]]
        verdict_ok = True
        for pn in ("perf record -a", "perf record -a :u"):
            pc = [x[0] for x in over[pn]]
            mag, mpc = statistics.median(ag), statistics.median(pc)
            ratio = mag / mpc if mpc > 0 else float("inf")
            d = [x - y for x, y in zip(ag, pc)]
            m, lo, hi = mid(d)
            print("  agent vs %-17s ratio of medians %.2f; agent - perf per "
                  "round %+.1f points [%+.1f, %+.1f]" % (
                      pn + ":", ratio, m, lo, hi))
            if pn == "perf record -a":
                verdict_ok, dlo, dhi = m <= 0, lo, hi
        if fdod:
            print("  fdod's CPU while ingesting: %.3f s per agent run "
                  "(not in the agent's figure)" % statistics.median(fdod))
        print("  last agent run: " + summary)
        said(said_last)
        if dhi <= 0 or dlo > 0:
            how = "beyond the noise"
        else:
            how = "on the medians; the difference's interval spans 0: " \
                  "within the noise (more --rounds, a quieter host)"
        print("  target: fdo-agent --all's overhead <= perf record -a -g "
              "-F %d -e cpu-clock's: %s, %s" % (
                  a.freq, "met" if verdict_ok else "NOT met", how))
        return verdict_ok

    # ---------------------------------------------------------------- RSS

    def rss(self):
        a = self.a
        secs = a.rss_minutes * 60
        warm = min(60.0, secs / 4)
        pid, out = self.start_profiler("fdo-agent --all", self.agent_argv())
        t0 = time.monotonic()
        copies = {}
        started = 0
        pts = []     # (t s, VmRSS KiB, RssAnon KiB, CPU s)
        nxt = 0.0
        while True:
            now = time.monotonic() - t0
            if now >= secs:
                break
            if os.waitpid(pid, os.WNOHANG)[0]:
                sys.exit("bench/agent: fdo-agent died during the RSS run:\n" +
                         read(out))
            for slot in range(self.ncpu):
                p = copies.get(slot)
                if p is not None:
                    if not os.waitpid(p, os.WNOHANG)[0]:
                        continue
                copies[slot] = spawn(
                    [a.workload, str(a.rss_work)],
                    os.path.join(a.tmp, "rss-wl.%d" % slot))
                started += 1
            if now >= nxt:
                r = proc_rss(pid)
                if r:
                    pts.append((now, r[0], r[1], proc_cpu(pid)))
                    # a status line after the agent's next flush
                    os.kill(pid, signal.SIGUSR1)
                nxt += a.rss_every
            time.sleep(0.05)
        for p in copies.values():
            os.waitpid(p, 0)
        wall = time.monotonic() - t0
        running = sum(1 for e in os.listdir("/proc") if e.isdigit())
        pcpu, text = self.stop_profiler("fdo-agent --all", pid, out,
                                        signal.SIGTERM)
        s = [ln for ln in text.splitlines() if "summary:" in ln]
        # The agent's status lines (SIGUSR1, printed right after its
        # next flush and heap trim; stamped with CLOCK_MONOTONIC, which
        # time.monotonic reads): (t s, VmRSS KiB, spool batches, spool
        # KiB) after each flush the signals asked for.
        flushed = []
        for ln in text.splitlines():
            m = re.search(r"status: at_ms=(\d+) vmrss_kib=(\d+) .*"
                          r"spool_batches=(\d+) spool_bytes=(\d+)", ln)
            if m:
                flushed.append((int(m.group(1)) / 1000.0 - t0,
                                int(m.group(2)), int(m.group(3)),
                                int(m.group(4)) // 1024))

        def at(t):
            return min(pts, key=lambda x: abs(x[0] - t))

        st, we, en = pts[0], at(warm), pts[-1]
        post = [x for x in pts if x[0] >= warm]
        mx = max(pts, key=lambda x: x[1])
        mxa = max(pts, key=lambda x: x[2])

        def slope(k):
            """KiB per minute after warm-up, least squares."""
            if len(post) < 2:
                return 0.0
            tm = statistics.mean(x[0] for x in post)
            vm = statistics.mean(x[k] for x in post)
            num = sum((x[0] - tm) * (x[k] - vm) for x in post)
            den = sum((x[0] - tm) ** 2 for x in post)
            return num / den * 60 if den else 0.0

        print()
        print("== host-wide RSS: fdo-agent --all for %.1f min at %d Hz, %d "
              "copies of %s %d restarted as they end (%d processes)" % (
                  wall / 60, a.freq, self.ncpu, os.path.basename(a.workload),
                  a.rss_work, started))
        print("  %-8s %10s %10s %10s %10s   %s" % (
            "KiB", "start", "warm-up", "max", "end", "slope after warm-up"))
        print("  %-8s %10d %10d %10d %10d   %+.0f KiB/min" % (
            "VmRSS", st[1], we[1], mx[1], en[1], slope(1)))
        print("  %-8s %10d %10d %10d %10d   %+.0f KiB/min" % (
            "RssAnon", st[2], we[2], mxa[2], en[2], slope(2)))
        print("  (start at %.0f s, warm-up ends at %.0f s, max VmRSS at "
              "%.0f s, %d readings every %.0f s)" % (
                  st[0], we[0], mx[0], len(pts), a.rss_every))
        # flat: over the last half of the run VmRSS grew by no more than
        # 5% (or 1 MiB) of its level at the half; a table that doubles
        # now and then makes a step or two after warm-up, a leak keeps
        # growing
        def flat_from(xs, h):
            """(growth KiB after h, its limit) of readings xs (t, KiB)."""
            grew = max(x[1] for x in xs if x[0] >= h[0]) - h[1]
            return grew, max(1024, h[1] * 0.05)

        def tenth(xs):
            """about ten of xs, the last included"""
            sel = xs[::max(1, len(xs) // 10)]
            return sel if sel[-1] is xs[-1] else sel + [xs[-1]]

        half = at(wall / 2)
        grew, lim = flat_from(pts, half)
        flat = grew <= lim
        sel = tenth(pts)
        print("  timeline (s: VmRSS/RssAnon KiB): " + ", ".join(
            "%.0f: %d/%d" % x[:3] for x in sel))
        # A reading between two flushes also holds that interval's
        # stacks (as many as the host's work makes: the peaks follow the
        # load, bounded by the rate); right after a flush the agent
        # holds what it keeps (processes, mappings, build-ids, binaries,
        # the spool's backlog), and a leak raises that. The verdict is
        # on it, by the same rule.
        flat_kept = None
        fp = [x for x in flushed if x[0] >= warm]
        if len(fp) >= 4:
            f0 = min(fp, key=lambda x: abs(x[0] - half[0]))
            grew_kept, lim_kept = flat_from(fp, f0)
            flat_kept = grew_kept <= lim_kept
            sk = tenth(fp)
            print("  after each flush (s: VmRSS KiB, spool batches): " +
                  ", ".join("%.0f: %d, %d" % (x[0], x[1], x[2])
                            for x in sk))
            print("  after a flush: %d to %d KiB after warm-up, spool at "
                  "most %d batches (%d KiB); over the last half %+d KiB; "
                  "flat: %s (limit %d KiB)" % (
                      min(x[1] for x in fp), max(x[1] for x in fp),
                      max(x[2] for x in fp), max(x[3] for x in fp),
                      grew_kept, "yes" if flat_kept else "NO", lim_kept))
        print("  after warm-up VmRSS grew %+d KiB; over the last half "
              "(from %.0f s) %+d KiB" % (
                  max(x[1] for x in post) - we[1], half[0], grew))
        print("  flat over the last half: %s (limit %d KiB)" % (
            "yes" if flat else "NO", lim))
        # The floor: each minute's lowest VmRSS after warm-up. A reading
        # between two flushes holds that interval's stacks, as many as
        # the host's work makes (a compiler's deep stacks, thousands);
        # right after a flush they are freed and the heap trimmed, and
        # the lowest reading of a minute (six flushes at --interval 10)
        # shows what the agent keeps: a leak raises the floor, a busy
        # host the peaks.
        floor = {}
        for x in post:
            m = int(x[0] // 60)
            floor[m] = min(floor.get(m, x[1]), x[1])
        fl = sorted(floor.items())
        if len(fl) >= 2:
            tm = statistics.mean(m for m, _ in fl)
            vm = statistics.mean(v for _, v in fl)
            den = sum((m - tm) ** 2 for m, _ in fl)
            fslope = sum((m - tm) * (v - vm) for m, v in fl) / den
            print("  floor (each minute's lowest VmRSS, KiB): %s; slope "
                  "%+.0f KiB/min" % (", ".join("%d" % v for _, v in fl),
                                     fslope))
        print("  agent CPU over the run: %.1f s, %.2f%% of one CPU" % (
            pcpu, pcpu / wall * 100))
        if s:
            print("  summary: " + s[-1].split("summary:", 1)[1].strip())
            held = dict(kv.split("=", 1) for kv in
                        s[-1].split("summary:", 1)[1].split() if "=" in kv)
            if "procs_known" in held:
                # what it held at exit against what ran: the processes
                # that came and went must have left nothing behind
                print("  held at exit: %s processes (%d running at the "
                      "end, %d started here), %s mappings, %s build-ids, "
                      "%s binaries (%s forgotten)" % (
                          held["procs_known"], running, started,
                          held["mappings_known"], held["build_ids_cached"],
                          held["binaries_known"],
                          held["binaries_forgotten"]))
        said(text)
        # judged on what it keeps after its flushes when its status
        # lines came, else on every reading
        return flat if flat_kept is None else flat_kept


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True)
    ap.add_argument("--work", type=int, default=100000)
    ap.add_argument("--copies", type=int, default=0,
                    help="workload copies (default: one per CPU)")
    ap.add_argument("--agent", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--freq", type=int, default=997)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--fdod-pid", type=int, default=0)
    ap.add_argument("--perf", default="perf")
    ap.add_argument("--rss-minutes", type=float, default=10)
    ap.add_argument("--rss-every", type=float, default=5)
    ap.add_argument("--rss-work", type=int, default=5000)
    a = ap.parse_args()
    b = Bench(a)
    b.load0 = "%.2f %.2f %.2f" % os.getloadavg()
    ok = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if a.rounds > 0:
            ok = b.overhead() and ok
        if a.rss_minutes > 0:
            ok = b.rss() and ok
    finally:
        for pid in LIVE:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass   # reaped already (it exited at start)
    print()
    print("  verdict: %s" % ("met" if ok else "NOT met"))


if __name__ == "__main__":
    main()
