"""bench/clickhouse/run.sh's driver: bench/ingest/run.sh without and with
--store clickhouse:// (BENCH_FDOD_ARGS), the summaries side by side."""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import chtest  # noqa: E402


def cpu_s(pid):
    """utime + stime of pid and its waited-for children, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def figure(out, name):
    m = re.search(r"^  %s\s+([\d,.]+)" % re.escape(name), out, re.M)
    return float(m.group(1).replace(",", "")) if m else float("nan")


def run(args, extra):
    env = dict(os.environ, BENCH_FDOD_ARGS=extra)
    p = subprocess.run(["bash", "bench/ingest/run.sh"] + args, cwd=ROOT,
                       env=env, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode:
        sys.stderr.write(p.stderr[-3000:])
        raise SystemExit("bench/ingest/run.sh failed (%d)" % p.returncode)
    return p.stdout


def main():
    args = sys.argv[1:]
    seconds = float(args[args.index("--seconds") + 1]) \
        if "--seconds" in args else 20.0
    with tempfile.TemporaryDirectory() as tmp, \
            chtest.Cluster(tmp, n=1) as c:
        url = c[0].url("fdod_bench")
        print("=== without --store")
        plain = run(args, "")
        print("=== with --store %s" % url)
        ch0 = cpu_s(c[0].proc.pid)
        store = run(args, "--store " + url)
        ch_cpu = cpu_s(c[0].proc.pid) - ch0
        rows = c[0].query("SELECT count(), countIf(binary = '') FROM "
                          "fdod_bench.counts_local").split()
    stk = [figure(o, "acknowledged Stack messages/s") for o in (plain, store)]
    bps = [figure(o, "acknowledged batches/s") for o in (plain, store)]
    cpu = [figure(o, "fdod CPU") for o in (plain, store)]
    per = [1e3 * cpu[i] / max(bps[i] * seconds, 1) for i in range(2)]
    print()
    print("== fdod --store clickhouse:// on one node (shared 2-core host: "
          "compare within a run; CPU, not wall time, is the cost)")
    print("  %-40s %14s %14s  %s" % ("", "LMDB only", "+ ClickHouse",
                                      "ratio"))
    for name, a, b, fmt in (
            ("acknowledged Stack messages/s", stk[0], stk[1], "{:,.0f}"),
            ("acknowledged batches/s", bps[0], bps[1], "{:,.1f}"),
            ("fdod CPU (s)", cpu[0], cpu[1], "{:.1f}"),
            ("fdod CPU per acknowledged batch (ms)", per[0], per[1],
             "{:.2f}")):
        print("  %-40s %14s %14s  %.2f" % (name, fmt.format(a),
                                            fmt.format(b), b / a if a else 0))
    print("  %-40s %14s %14.1f" % ("ClickHouse server CPU (s)", "",
                                   ch_cpu))
    print("  %-40s %14s %14s" % ("counts_local rows (of them markers)", "",
                                 "%s (%s)" % (rows[0].decode(),
                                              rows[1].decode())))
    print("  (fdod CPU as bench/ingest measures it; the copy's sending "
          "runs in fdod, ClickHouse's work in its own server)")


main()
