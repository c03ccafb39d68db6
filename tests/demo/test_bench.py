"""deploy/demo/bench.py, the demo's timing table: options, pairing,
output checks. (What it measures is not asserted: timing stays out of
make test.)"""
import os
import subprocess

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "deploy",
                     "demo", "bench.py")


def script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return str(p)


def bench(*args):
    return subprocess.run(["/usr/bin/python3", BENCH] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_table_repeat_and_compare(tmp_path):
    log = tmp_path / "runs"
    a = script(tmp_path, "a", 'echo "$0 $1" >>%s; echo out $1' % log)
    b = script(tmp_path, "b", 'echo "$0 $1" >>%s; echo out $1' % log)
    c = script(tmp_path, "c", 'echo "$0 $1" >>%s; echo out $1' % log)
    p = bench("--repeat=2", "--compare=b:a", "3", "a", "c",
              "a=" + a, "b=" + b, "c=" + c, "--", "7")
    assert p.returncode == 0, p.stderr
    runs = log.read_text().split("\n")[:-1]
    # 3 rounds x 2 passes x 3 variants, every one with the argument.
    assert len(runs) == 18 and all(r.endswith(" 7") for r in runs)
    # Rounds rotate the order; passes within a round keep it.
    assert runs[0].startswith(a) and runs[6].startswith(b)
    assert runs[3].startswith(a)
    out = p.stdout
    assert "output of every variant: out 7" in out
    assert "fastest of 2 interleaved runs per round" in out
    for n in ("a", "b", "c"):
        assert any(line.startswith(n + " ") for line in out.split("\n")), n
    assert "b against a: " in out and "positive: b is faster" in out


def test_refusals(tmp_path):
    a = script(tmp_path, "a", "echo same")
    b = script(tmp_path, "b", "echo different")
    p = bench("2", "a", "b", "a=" + a, "b=" + b)
    assert p.returncode != 0 and "printed" in p.stderr
    p = bench("--compare=x:a", "2", "a", "a", "a=" + a)
    assert p.returncode != 0 and "unknown variant" in p.stderr
    p = bench("--repeat=0", "2", "a", "a", "a=" + a)
    assert p.returncode != 0 and "bad option" in p.stderr
    f = script(tmp_path, "f", "exit 3")
    p = bench("2", "a", "a", "a=" + f)
    assert p.returncode != 0 and "exited 3" in p.stderr


def test_gate_sorts_out_slow_rounds(tmp_path):
    # base burns 40 ms of CPU, or 250 ms while the file "slow" exists: a
    # slow phase of the host. x's first run starts one, its second ends it:
    # the probe after round 1 is slow, so rounds 1 and 2 are not quiet, and
    # rounds go on until 5 are.
    slow, count = tmp_path / "slow", tmp_path / "count"
    burn = ("import os,time\n"
            "ms = 250 if os.path.exists(%r) else 40\n"
            "t = time.process_time()\n"
            "while time.process_time() - t < ms / 1000: pass\n"
            "print('same')\n" % str(slow))
    base = script(tmp_path, "base", "/usr/bin/python3 -c \"%s\"" % burn)
    x = script(tmp_path, "x", """n=$(cat %s 2>/dev/null || echo 0)
n=$((n + 1)); echo $n >%s
if [ $n = 1 ]; then touch %s; fi
if [ $n = 2 ]; then rm %s; fi
echo same""" % (count, count, slow, slow))
    p = bench("--gate=0.5", "--max-rounds=12", "5", "base", "base",
              "base=" + base, "x=" + x)
    assert p.returncode == 0, p.stderr
    assert "all 7 paired interleaved rounds" in p.stdout, p.stdout
    assert "the 5 quiet rounds of 7" in p.stdout, p.stdout
    # Both tables.
    assert p.stdout.count("\nx  ") == 2, p.stdout
    # At most 3 rounds (all quiet now), fewer than the 5 asked for.
    p = bench("--gate=0.5", "--max-rounds=3", "5", "base", "base",
              "base=" + base, "x=" + x)
    assert p.returncode == 0, p.stderr
    assert "too few for a table" in p.stdout, p.stdout


def test_share_without_interval_names_its_rounds():
    """A round where the ceiling gained nothing has no share: the median is
    over the other rounds, and the table says how many, not an interval."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    times = {"base": [1.0] * 5, "x": [0.9, 0.95, 0.9, 0.92, 0.9],
             "c": [0.8, 1.01, 0.85, 0.8, 0.82]}
    lines = mod.table(times, list(range(5)), "t", ["base", "x", "c"],
                      "base", "c", [])
    row = [l for l in lines if l.startswith("x ")][0]
    assert row.rstrip().endswith("of 4 rounds"), row
    times["c"][1] = 0.9  # the ceiling gains in every round now
    lines = mod.table(times, list(range(5)), "t", ["base", "x", "c"],
                      "base", "c", [])
    row = [l for l in lines if l.startswith("x ")][0]
    assert row.rstrip().endswith("%]") and "rounds" not in row, row


def test_mean_share_of_two_groups(tmp_path):
    """--mean-share: per round the mean of each group's speedups, and the
    share is the median over rounds of their ratio (not a mean of shares)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # Speedups per round: a1 +25%, a2 +0%; c1 +25%, c2 +100% (1/0.5 - 1):
    # means 12.5% and 62.5%, share 20%. (A mean of the two per-pair shares
    # would be 50%.)
    times = {"base": [1.0] * 5, "a1": [0.8] * 5, "a2": [1.0] * 5,
             "c1": [0.8] * 5, "c2": [0.5] * 5}
    lines = mod.table(times, list(range(5)), "t", list(times), "base", "c1",
                      [], [[["a1", "a2"], ["c1", "c2"]]])
    line = lines[-1]
    assert line.startswith("mean of a1, a2 against mean of c1, c2: "), line
    assert "speedups +12.5% [+12.5%, +12.5%] and +62.5% [+62.5%, +62.5%]" \
        in line, line
    assert "share 20% [20%, 20%]" in line, line
    # The option names its variants; an unknown one is refused.
    a = script(tmp_path, "a", "echo same")
    p = bench("--mean-share=a:zz", "2", "a", "a", "a=" + a)
    assert p.returncode != 0 and "unknown variant 'zz'" in p.stderr
    p = bench("--mean-share=a:a", "2", "a", "a", "a=" + a)
    assert p.returncode == 0 and "mean of a against mean of a" in p.stdout


def test_fresh_copies(tmp_path):
    """--fresh-copies runs a new copy of each variant's file every round
    (and removes them at the end); a variant that is not a file is refused."""
    log = tmp_path / "runs"
    a = script(tmp_path, "a", 'echo "$0" >>%s; echo same' % log)
    b = script(tmp_path, "b", 'echo "$0" >>%s; echo same' % log)
    p = bench("--fresh-copies", "--repeat=2", "3", "a", "b",
              "a=" + a, "b=" + b)
    assert p.returncode == 0, p.stderr
    runs = log.read_text().split()
    assert len(runs) == 12, runs
    # A copy per variant and round, used for the round's passes.
    assert len(set(runs)) == 6, runs
    assert a not in runs and b not in runs
    assert {os.path.basename(r) for r in runs} == {
        "a.0", "a.1", "a.2", "b.0", "b.1", "b.2"}, runs
    assert not any(os.path.exists(r) for r in runs)
    p = bench("--fresh-copies", "2", "a", "a", "a=true")
    assert p.returncode != 0 and "is not a file" in p.stderr
