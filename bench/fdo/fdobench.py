#!/usr/bin/env python3
"""bench/fdo/fdobench.py — the FDO benchmark of real programs (driver).

Run it through bench/fdo/run.sh (`make bench-fdo`), which checks the
machine first; `run.sh --help` prints the options. README.md beside this
file says what it measures and how to read the table.

Steps, per program (programs.py defines them):
  1. `apt-get source PACKAGE` into WORK/src, configure a copy of the tree
     once with the base flags (WORK/build/PROG/configured), generate the
     inputs (WORK/inputs/PROG),
  2. build each variant from a fresh copy of the configured tree with the
     variant's flags; builds are cached in WORK/bin/PROG/ by (program,
     flags, profile file hash), so a rerun skips them,
  3. sample the base binary under fdo-agent on the training set, pull
     fdod's profiles, build the sample-PGO variants, sample those for BOLT,
     build instrumented PGO from the same training set,
  4. check every variant's output against the base's (timing input and
     training set),
then, once everything is built (nothing is built while timing):
  5. paired, interleaved timing rounds of every program's variants,
     until the shares are known to +-5 points or --max-rounds,
  6. the table (WORK/table.txt) and every per-round time (WORK/results.json).
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import programs as P  # noqa: E402
import releases as R  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FDOD = os.path.join(ROOT, "build", "fdod")
FDOCTL = os.path.join(ROOT, "build", "fdoctl")
AGENT = os.path.join(ROOT, "build", "fdo-agent")
CC = "clang-16"
PROFDATA = "llvm-profdata-16"
BOLT = "/usr/lib/llvm-16/bin/llvm-bolt"  # never /usr/bin/perf2bolt-16 (fdo-tools.md)
MERGE_FDATA = "/usr/lib/llvm-16/bin/merge-fdata"

# The sampled binary and every variant use these flags; only the profile
# (and, for the probe variants, -fpseudo-probe-for-profiling) differs.
BASE_CFLAGS = ["-O2", "-g", "-fdebug-info-for-profiling", "-fno-omit-frame-pointer"]
BASE_LDFLAGS = ["-Wl,--emit-relocs"]
PROBE_CFLAGS = ["-fpseudo-probe-for-profiling"]
BOLT_NO_LBR = ["-relocs=0", "-reorder-blocks=ext-tsp", "-split-functions", "-split-all-cold"]
BOLT_LBR = ["-reorder-blocks=ext-tsp", "-reorder-functions=hfsort", "-split-functions",
            "-split-all-cold"]
# What in a build log is a complaint about the profile.
PROFILE_WARNING = re.compile(
    r"(warning|error):.*(profile|sample|pseudo-probe)|\[-W[a-z-]*(profile|sample)[a-z-]*\]",
    re.I)

T0 = time.time()
CHILDREN = set()  # processes started and not yet waited for: stopped at exit


def log(msg):
    print("[%s +%4.0fs] %s" % (time.strftime("%H:%M:%S"), time.time() - T0, msg), flush=True)


class Failed(Exception):
    """A step failed; the message names the command and its log."""


def cmd_str(argv):
    return " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else "'%s'" % a.replace("'", "'\\''")
                    for a in argv)


def run(argv, logf, cwd=None, env=None, stdin=None, stdout=None, what=None, timeout=None):
    """Run argv, its output appended to logf; Failed names the command and
    the log when it exits non-zero or runs past timeout seconds (then it is
    killed)."""
    os.makedirs(os.path.dirname(logf), exist_ok=True)
    with open(logf, "ab") as lf:
        lf.write(("$ (cd %s && %s)\n" % (cwd or os.getcwd(), cmd_str(argv))).encode())
        lf.flush()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin or subprocess.DEVNULL,
                             stdout=stdout or lf, stderr=lf)
        CHILDREN.add(p)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failed("%s: `%s` ran past %d s, killed (log: %s)"
                         % (what or "command", cmd_str(argv), timeout, logf))
        finally:
            CHILDREN.discard(p)
    if rc != 0:
        raise Failed("%s: `%s` exited %d (log: %s)" % (what or "command", cmd_str(argv), rc, logf))


def stop_children():
    """SIGTERM every process still running, 10 s to exit, then SIGKILL
    (bench/lib.sh stop_pid), each by its pid."""
    for p in list(CHILDREN):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        CHILDREN.discard(p)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    if not m:
        raise Failed("%s has no GNU build-id" % path)
    return m.group(1)


def free_ports():
    """Two distinct free TCP ports on 127.0.0.1 (bench/lib.sh free_ports)."""
    a, b = socket.socket(), socket.socket()
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    ports = a.getsockname()[1], b.getsockname()[1]
    a.close()
    b.close()
    return ports


# ------------------------------------------------------------------ fdod


class Fdod:
    """One fdod on loopback for the whole run (bench/lib.sh start_fdod)."""

    def __init__(self, d):
        self.dir = d
        nng, http = free_ports()
        self.url = "tcp://127.0.0.1:%d" % nng
        self.http = "http://127.0.0.1:%d" % http
        self.log = os.path.join(d, "fdod.log")
        os.makedirs(d, exist_ok=True)
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen(
                [FDOD, "--data", os.path.join(d, "data"), "--listen", self.url,
                 "--http", self.http], stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        CHILDREN.add(self.proc)
        for _ in range(100):
            if self.proc.poll() is not None:
                break
            try:
                self.get("/v1/status")
                break
            except (OSError, Failed):
                time.sleep(0.1)
        time.sleep(0.2)  # the agent port: fdod exits when it cannot listen
        if self.proc.poll() is not None:
            raise Failed("fdod exited %s at start (log: %s)" % (self.proc.returncode, self.log))
        self.get("/v1/status")

    def get(self, path, raw=False, headers=None):
        """GET path (JSON, or its bytes with raw); headers (a dict) gets
        the answer's headers."""
        try:
            with urllib.request.urlopen(self.http + path, timeout=600) as r:
                data = r.read()
                if headers is not None:
                    headers.update(r.headers.items())
        except urllib.error.HTTPError as e:
            raise Failed("GET %s: HTTP %d: %s" % (path, e.code, e.read().decode(errors="replace")
                                                  .strip()[:500]))
        except urllib.error.URLError as e:
            raise Failed("GET %s: %s" % (path, e.reason))
        return data if raw else json.loads(data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        CHILDREN.discard(self.proc)

    def pending(self, bids):
        s = self.get("/v1/status")
        return s["ingest"]["unmerged"] + sum(b["pending"] for b in s["pending"]["build_ids"]
                                             if b["build_id"] in bids)

    def wait_symbolized(self, bids, timeout=180):
        """Until fdod has merged every batch and symbolized every address of
        bids (deploy/demo.sh wait_symbolized)."""
        n = None
        for _ in range(timeout * 10):
            n = self.pending(bids)
            if n == 0:
                return
            time.sleep(0.1)
        raise Failed("%s addresses of %s still pending after %d s (log: %s)"
                     % (n, " ".join(bids), timeout, self.log))

    def samples(self, name):
        return self.get("/v1/binaries/" + name).get("samples", 0)


# ------------------------------------------------------------------ builds


class Flags:
    def __init__(self, cflags, ldflags):
        self.cc = CC
        self.cflags = cflags
        self.ldflags = ldflags


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.rundir = os.path.join(self.work, "run")
        self.fdod = None
        self.checks = []
        self.failed_programs = []  # (name, reason): no source or configure failed

    def path(self, *p):
        return os.path.join(self.work, *p)

    def check(self, name, ok, detail=""):
        """One checked property; printed as `check ok: ...` or `check
        FAILED: ...` (tests/fdo/test_fdo_short.sh counts them)."""
        self.checks.append((name, ok, detail))
        log("check %s: %s%s" % ("ok" if ok else "FAILED", name, " (%s)" % detail if detail else ""))
        return ok

    # -- sources and configured trees

    def source(self, prog):
        d = self.path("src", prog.package)
        stamp = os.path.join(d, ".bench-fdo-source")
        if os.path.exists(stamp):
            with open(stamp) as f:
                name = f.read().strip()
            if os.path.isdir(os.path.join(d, name)):
                return os.path.join(d, name), name
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        log("%s: apt-get source %s" % (prog.name, prog.package))
        run(["apt-get", "source", "-qq", prog.package], os.path.join(d, "apt-get-source.log"),
            cwd=d, what="apt-get source (deb-src enabled? archive reachable?)")
        dirs = [e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e))]
        dscs = [e for e in os.listdir(d) if e.endswith(".dsc")]
        if len(dirs) != 1 or len(dscs) != 1:
            raise Failed("apt-get source %s left %s in %s" % (prog.package, dirs + dscs, d))
        name = dirs[0]
        with open(stamp, "w") as f:
            f.write(name + "\n")
        return os.path.join(d, name), name

    def configured(self, prog, src):
        d = self.path("build", prog.name)
        tree = os.path.join(d, "configured")
        base = Flags(BASE_CFLAGS, BASE_LDFLAGS)
        key = hashlib.sha256(json.dumps([P.DEFS_VERSION, src, prog.configure(base)])
                             .encode()).hexdigest()
        stamp = os.path.join(tree, ".bench-fdo-configured")
        if os.path.exists(stamp) and open(stamp).read().strip() == key:
            return tree, key
        shutil.rmtree(tree, ignore_errors=True)
        os.makedirs(d, exist_ok=True)
        logf = os.path.join(d, "configure.log")
        if os.path.exists(logf):
            os.remove(logf)
        log("%s: configuring a copy of %s with the base flags (log: %s)"
            % (prog.name, os.path.basename(src), logf))
        run(["cp", "-a", src, tree], logf)
        for argv in prog.configure(base):
            run(argv, logf, cwd=tree, what="configure")
        with open(stamp, "w") as f:
            f.write(key + "\n")
        return tree, key

    def next_release(self, prog, tree_n, key_n):
        """Release N+1 (--next-release): a copy of release N's configured
        tree with the program's patch series (releases.py) applied, and
        its key; the series' diff goes to WORK/run/PROG/next-release.patch."""
        rel = R.RELEASES.get(prog.name)
        if rel is None:
            raise Failed("no next-release patch series for %s in bench/fdo/releases.py"
                         % prog.name)
        d = self.path("build", prog.name)
        tree = os.path.join(d, "configured-next")
        key = hashlib.sha256(json.dumps([key_n, rel.key()]).encode()).hexdigest()
        stamp = os.path.join(tree, ".bench-fdo-configured")
        logf = os.path.join(d, "next-release.log")
        diff = os.path.join(self.rundir, prog.name, "next-release.patch")
        if not (os.path.exists(stamp) and open(stamp).read().strip() == key):
            shutil.rmtree(tree, ignore_errors=True)
            if os.path.exists(logf):
                os.remove(logf)
            log("%s: release N+1: release N's configured tree + %d edits (%s) (log: %s)"
                % (prog.name, len(rel.edits), ", ".join(
                    "%d %s" % (n, k) for k, n in rel.kinds().items()), logf))
            run(["cp", "-a", tree_n, tree], logf)
            try:
                changed = rel.apply(tree)
            except R.Failed as e:
                raise Failed("release N+1 of %s: %s" % (prog.name, e))
            with open(os.path.join(tree, ".bench-fdo-next-release"), "w") as f:
                f.write("\n".join(changed) + "\n")
            with open(stamp, "w") as f:
                f.write(key + "\n")
        with open(os.path.join(tree, ".bench-fdo-next-release")) as f:
            changed = f.read().split()
        # The series as a patch (patch -p1 in release N's tree makes N+1).
        os.makedirs(os.path.dirname(diff), exist_ok=True)
        with open(diff, "wb") as out:
            for p in changed:
                r = subprocess.run(["diff", "-u", "--label", "a/" + p, "--label", "b/" + p,
                                    os.path.join(tree_n, p), os.path.join(tree, p)],
                                   stdout=subprocess.PIPE)
                if r.returncode > 1:
                    raise Failed("diff of %s between the releases failed" % p)
                out.write(r.stdout)
        return tree, key, diff

    def inputs(self, prog, src):
        d = self.path("inputs", prog.name)
        # Any change of programs.py makes the inputs again (a few seconds).
        key = "%s %s %s" % (sha256_file(P.__file__)[:16], os.path.basename(src),
                            self.args.input_scale)
        stamp = os.path.join(d, ".bench-fdo-inputs")
        if os.path.exists(stamp) and open(stamp).read().strip() == key:
            return d
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        log("%s: generating the inputs in %s" % (prog.name, d))
        prog.inputs(d, src, self.args.input_scale)
        with open(stamp, "w") as f:
            f.write(key + "\n")
        return d

    def build(self, pr, label, cflags=(), ldflags=(), files=None, release_n=False):
        """The binary of prog built with BASE flags + cflags/ldflags, in
        which {profile} is files["profile"] (copied into the cache entry) and
        {dir} the cache entry. Cached by (program, configured tree, flags,
        files' hashes). With --next-release every build is of release N+1
        unless release_n."""
        prog = pr.prog
        files = files or {}
        conf_tree, conf_key = (pr.conf_tree_n, pr.conf_key_n) if release_n else (
            pr.conf_tree, pr.conf_key)
        key = hashlib.sha256(json.dumps(
            [P.DEFS_VERSION, prog.name, conf_key, BASE_CFLAGS, BASE_LDFLAGS, list(cflags),
             list(ldflags), prog.make(Flags(["{cflags}"], ["{ldflags}"])),
             {k: sha256_file(v) for k, v in files.items()}]).encode()).hexdigest()[:16]
        entry = self.path("bin", prog.name, "%s.%s" % (label, key))
        binary = os.path.join(entry, prog.name)
        if os.path.exists(os.path.join(entry, ".ok")):
            log("%s: %s build is cached (%s)" % (prog.name, label, binary))
            return binary, entry
        shutil.rmtree(entry, ignore_errors=True)
        os.makedirs(entry)
        subst = {"{dir}": entry}
        for k, v in files.items():
            dst = os.path.join(entry, k + os.path.splitext(v)[1])
            shutil.copy(v, dst)
            subst["{%s}" % k] = dst

        def fill(flags):
            out = []
            for f in flags:
                for a, b in subst.items():
                    f = f.replace(a, b)
                out.append(f)
            return out
        c = Flags(BASE_CFLAGS + fill(cflags), BASE_LDFLAGS + fill(ldflags))
        logf = os.path.join(entry, "build.log")
        with open(os.path.join(entry, "flags.txt"), "w") as f:
            f.write("CFLAGS: %s\nLDFLAGS: %s\n" % (" ".join(c.cflags), " ".join(c.ldflags)))
        tmp = self.path("build", prog.name, "tmp.%s.%s" % (label, key))
        shutil.rmtree(tmp, ignore_errors=True)
        t = time.time()
        log("%s: building %s: %s %s (log: %s)" % (prog.name, label, CC, " ".join(c.cflags), logf))
        run(["cp", "-a", conf_tree, tmp], logf)
        for argv in prog.make(c):
            run(argv, logf, cwd=tmp, what="build of %s %s" % (prog.name, label))
        shutil.copy2(os.path.join(tmp, prog.binary), binary)
        shutil.rmtree(tmp)
        open(os.path.join(entry, ".ok"), "w").close()
        log("%s: %s built in %.0f s" % (prog.name, label, time.time() - t))
        return binary, entry


def profile_warnings(logf):
    with open(logf, errors="replace") as f:
        return [ln.strip() for ln in f if PROFILE_WARNING.search(ln)]


# ------------------------------------------------------------------ one program


class ProgramRun:
    """One program: its builds, samples, profiles and variants."""

    def __init__(self, bench, prog):
        self.b = bench
        self.prog = prog
        self.name = prog.name
        self.dir = os.path.join(bench.rundir, prog.name)
        os.makedirs(self.dir, exist_ok=True)
        self.src, self.src_name = bench.source(prog)
        self.conf_tree, self.conf_key = bench.configured(prog, self.src)
        # --next-release: the variants are built from release N+1's tree;
        # release N's (today's source) is kept for its base build.
        self.conf_tree_n, self.conf_key_n = self.conf_tree, self.conf_key
        self.release = None  # --next-release: what N+1 is and how N's profile fared
        if bench.args.next_release:
            rel = R.RELEASES.get(prog.name)
            self.conf_tree, self.conf_key, diff = bench.next_release(
                prog, self.conf_tree_n, self.conf_key_n)
            self.release = {"edits": [{"kind": e.kind, "why": e.why} for e in rel.edits],
                            "kinds": rel.kinds(), "patch": diff, "renamed": rel.renamed()}
        self.inputs = bench.inputs(prog, self.src)
        self.training = prog.short_training if bench.args.short else prog.training
        self.variants = {}  # name -> dict(status, binary, reason, ...)
        self.train_ref = {}  # training label -> sha256 of the first output seen
        self.samples = {}
        self.sampled = {}
        self.expect = None
        self.base_cpu = None

    # -- running the program

    def command(self, binary, args):
        return [binary] + list(args)

    def run_once(self, binary, args, stdin, env=None, agent=None, logf=None):
        """Run binary args (< stdin) in the inputs directory; the sha256 of
        its stdout and its CPU time (user + sys)."""
        argv = self.command(binary, args)
        env = dict(env or os.environ, LC_ALL="C")  # the same behaviour on every machine
        if agent:
            argv = agent + ["--"] + argv
        logf = logf or os.path.join(self.dir, "runs.log")
        with tempfile.TemporaryFile(dir=self.dir) as out, open(logf, "ab") as lf:
            lf.write(("$ %s%s\n" % (cmd_str(argv), " < " + stdin if stdin else "")).encode())
            lf.flush()
            fin = open(os.path.join(self.inputs, stdin), "rb") if stdin else subprocess.DEVNULL
            try:
                p = subprocess.Popen(argv, cwd=self.inputs, stdin=fin, stdout=out, stderr=lf,
                                     env=env)
                CHILDREN.add(p)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                CHILDREN.discard(p)
            finally:
                if stdin:
                    fin.close()
            if p.returncode != 0:
                raise Failed("`%s` exited %d (log: %s)" % (cmd_str(argv), p.returncode, logf))
            out.seek(0)
            h = hashlib.sha256()
            for chunk in iter(lambda: out.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest(), ru.ru_utime + ru.ru_stime

    def train(self, binary, who, agent=None, env=None, times=1):
        """Run the training set (times times); every output is checked
        against the first one seen for that input."""
        cpu, per = 0.0, {}
        for _ in range(times):
            for t in self.training:
                label, args, stdin = t[:3]
                for _ in range(t[3] if len(t) > 3 else 1):
                    h, c = self.run_once(binary, args, stdin, env=env, agent=agent)
                    cpu += c
                    per[label] = per.get(label, 0) + c
                    ref = self.train_ref.setdefault(label, (h, who))
                    if ref[0] != h:
                        raise Failed("%s printed another output than %s on training input %s"
                                     % (who, ref[1], label))
        log("%s: %s training CPU s: %s" % (self.name, who, " ".join(
            "%s %.2f" % kv for kv in per.items())))
        return cpu

    def check_timing_output(self, vname, binary):
        h, cpu = self.run_once(binary, *self.prog.timing)
        if vname == "base":
            self.expect, self.base_cpu = h, cpu
            return
        if not self.b.check("%s %s prints what base prints on the timing input"
                            % (self.name, vname), h == self.expect):
            raise Failed("output differs from base's on the timing input")

    # -- sampling and profiles

    def sample(self, fdod_name, binary, label):
        """Upload binary as fdod_name, run the training set under fdo-agent
        (--sample-scale times), wait until fdod has symbolized it; the
        number of samples it added."""
        if label in self.sampled:
            return self.sampled[label]
        f = self.b.fdod
        bid = build_id(binary)
        run([FDOCTL, "upload", "--http", f.http, "--binary", fdod_name, binary],
            os.path.join(self.dir, "upload.log"), what="fdoctl upload")
        try:
            before = f.samples(fdod_name)
        except Failed:  # not known to fdod yet
            before = 0
        agent = [AGENT, "--url", f.url, "--binary", fdod_name, "--label", "set=train",
                 "--interval", "5", "--freq", str(self.b.args.freq)]
        n = sum(t[3] if len(t) > 3 else 1 for t in self.training) * self.b.args.sample_scale
        log("%s: sampling %s (build-id %s): %d training runs under fdo-agent at %d Hz"
            % (self.name, label, bid[:12], n, self.b.args.freq))
        t = time.time()
        cpu = self.train(binary, label, agent=agent, times=self.b.args.sample_scale)
        f.wait_symbolized([bid])
        got = f.samples(fdod_name) - before
        log("%s: %s: %d samples from %.1f s of training CPU (%.0f s wall), symbolized"
            % (self.name, label, got, cpu, time.time() - t))
        self.b.check("%s: samples of %s stored and symbolized" % (self.name, label), got > 0,
                     "%d samples" % got)
        if got <= 0:
            raise Failed("fdod stored no samples of %s" % label)
        self.sampled[label] = (bid, got)
        self.samples[label] = {"samples": got, "training_cpu_s": round(cpu, 2),
                               "runs": n, "build_id": bid}
        return bid, got

    def pull_llvm(self, fdod_name, bid, out, query="", check_hot=True, release_n=False,
                  headers=None):
        """Pull an llvm profile of bid; it must have programs.py's hot
        functions (their release N+1 names, unless release_n). headers (a
        dict, query not None) gets the answer's headers."""
        f = self.b.fdod
        if query is None:
            run([FDOCTL, "pull", fdod_name, "--http", f.http, "--format", "llvm",
                 "--build-id", bid, "-o", out] + self.min_samples(),
                os.path.join(self.dir, "pull.log"), what="fdoctl pull --format llvm")
        else:
            q = "format=llvm&build_id=%s" % bid
            if self.b.args.short:
                q += "&min_samples=100"
            if query:
                q += "&" + query
            with open(out, "wb") as fh:
                fh.write(f.get("/v1/profiles/%s?%s" % (fdod_name, q), raw=True,
                               headers=headers))
        size = os.path.getsize(out)
        show = out + ".show"
        with open(show, "wb") as fh:
            run([PROFDATA, "show", "--sample", out], os.path.join(self.dir, "profdata.log"),
                stdout=fh, what="llvm-profdata-16 show --sample")
        self.b.check("%s: llvm profile %s accepted by llvm-profdata-16 show --sample"
                     % (self.name, os.path.basename(out)), True, "%d bytes" % size)
        # The profile is extbinary by default: its functions from show.
        with open(show, errors="replace") as fh:
            heads = {m.group(1) for m in re.finditer(r"^Function: (\S+): ", fh.read(), re.M)}
        hot = self.prog.hot
        if self.release and not release_n:
            hot = [self.release["renamed"].get(h, h) for h in hot]
        missing = [h for h in hot if h not in heads]
        if check_hot:
            self.b.check("%s: llvm profile has the hot functions %s" % (self.name, ", ".join(
                hot)), not missing, "%s missing: %s" % (os.path.basename(out), " ".join(missing))
                if missing else "%s: %d functions" % (os.path.basename(out), len(heads)))
        return out

    def min_samples(self):
        return ["--min-samples", "100"] if self.b.args.short else []

    def spgo_build(self, vname, prof, extra=(), stale=False):
        """Build vname with -fprofile-sample-use of prof. A profile
        warning fails it, unless stale (a profile of another release: its
        mismatches are expected, the warnings are counted in the variant's
        `profile_warnings` and the table)."""
        binary, entry = self.b.build(self, vname, ["-fprofile-sample-use={profile}"] + list(extra),
                                     list(extra), files={"profile": prof})
        warns = profile_warnings(os.path.join(entry, "build.log"))
        if stale:
            self.variants[vname]["profile_warnings"] = len(warns)
            self.variants[vname]["profile_warnings_first"] = warns[:5]
            self.b.check("%s %s: clang-16 built with the stale profile" % (self.name, vname),
                         True, "%d profile warnings%s (log: %s)" % (
                             len(warns), ", e.g. " + warns[0] if warns else "",
                             os.path.join(entry, "build.log")))
            return binary
        if not self.b.check("%s %s: clang-16 built with the profile, no profile warning"
                            % (self.name, vname), not warns,
                            "%s (log: %s)" % (warns[0], os.path.join(entry, "build.log"))
                            if warns else ""):
            raise Failed("clang-16 warned about the profile: %s (log: %s)"
                         % (warns[0], os.path.join(entry, "build.log")))
        return binary

    def variant(self, vname, fn):
        """Build one variant with fn; a failure is the variant's row, not
        the end of the run."""
        v = {"status": "ok"}
        self.variants[vname] = v
        t = time.time()
        try:
            binary = fn(self)
            v["binary"] = binary
            v["build_id"] = build_id(binary)
            v["sha256"] = sha256_file(binary)
            self.check_timing_output(vname, binary)
        except Failed as e:
            v.update(status="failed", reason=str(e))
            log("%s: variant %s failed: %s" % (self.name, vname, e))
        v["prepare_s"] = round(time.time() - t, 1)
        return v


# ------------------------------------------------------------------ variants
# Each variant is a function of the ProgramRun that returns the path of its
# binary or raises Failed (its row then says why). Add new ones here and to
# the list in variant_list().


def v_base(pr):
    binary, _ = pr.b.build(pr, "base")
    return binary


def v_pgo_instr(pr):
    gen, entry = pr.b.build(pr, "pgo-gen", ["-fprofile-generate={dir}/raw-build"],
                            ["-fprofile-generate={dir}/raw-build"])
    raw = os.path.join(pr.dir, "pgo-raw")
    shutil.rmtree(raw, ignore_errors=True)
    os.makedirs(raw)
    env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(raw, "%p.profraw"))
    log("%s: training the instrumented binary (%d runs)" % (pr.name, len(pr.training)))
    cpu = pr.train(gen, "pgo-gen", env=env)
    profdata = os.path.join(pr.dir, "pgo.profdata")
    raws = sorted(os.path.join(raw, f) for f in os.listdir(raw))
    run([PROFDATA, "merge", "-o", profdata] + raws, os.path.join(pr.dir, "profdata.log"),
        what="llvm-profdata-16 merge")
    log("%s: instrumented training took %.1f s CPU; %s" % (pr.name, cpu, profdata))
    binary, entry = pr.b.build(pr, "pgo-instr", ["-fprofile-use={profile}"],
                               ["-fprofile-use={profile}"], files={"profile": profdata})
    warns = profile_warnings(os.path.join(entry, "build.log"))
    if warns:
        log("%s: pgo-instr: %d profile warnings, e.g. %s" % (pr.name, len(warns), warns[0]))
    return binary


def v_spgo(pr):
    bid, _ = pr.sample(pr.name, pr.variants["base"]["binary"], "base")
    prof = pr.pull_llvm(pr.name, bid, os.path.join(pr.dir, "prof.llvm"), query=None)
    return pr.spgo_build("fdod-spgo", prof)


def v_spgo_stale(pr):
    """--next-release: release N+1 built with the profile pulled for
    release N's build-id (what a fleet gets: N+1's profile comes from N's
    samples). Release N's base is built, checked against N+1's base
    (timing input here, training inputs while sampled) and sampled under
    the same fdod name."""
    if pr.variants.get("base", {}).get("status") != "ok":
        raise Failed("needs base, which failed")
    n_bin, _ = pr.b.build(pr, "base-release-n", release_n=True)
    h, cpu = pr.run_once(n_bin, *pr.prog.timing)
    pr.release["base_n"] = {"binary": n_bin, "build_id": build_id(n_bin),
                            "timing_cpu_s": round(cpu, 3)}
    if not pr.b.check("%s release N's base prints what release N+1's base prints on the "
                      "timing input" % pr.name, h == pr.expect):
        raise Failed("release N+1 changed the output on the timing input: its patch "
                     "series is not behaviour-preserving")
    bid, _ = pr.sample(pr.name, n_bin, "base-release-n")
    prof = pr.pull_llvm(pr.name, bid, os.path.join(pr.dir, "prof.stale.llvm"), query=None,
                        release_n=True)
    return pr.spgo_build("fdod-spgo-stale", prof, stale=True)


def text_profile(text):
    """{function: {offset[.discriminator]: count}} of an llvm text
    profile's top-level functions (their own lines, not inlined ones)."""
    res, cur = {}, None
    for ln in text.splitlines():
        if not ln.startswith(" "):
            cur = res.setdefault(ln.split(":")[0], {})
            continue
        m = re.match(r"^ (\d+(?:\.\d+)?): (\d+)", ln)
        if m and cur is not None:
            cur[m.group(1)] = cur.get(m.group(1), 0) + int(m.group(2))
    return res


def line_overlap(prof, fresh):
    """How much of the fresh profile's line distribution prof has: per
    function of fresh, the overlap of the two profiles' line shares (sum
    of the smaller share over its lines; 0 when prof lacks the function),
    weighted by the function's share of fresh. 1: the same lines in the
    same proportions."""
    tot = sum(sum(v.values()) for v in fresh.values())
    score = 0.0
    for fn, lines in fresh.items():
        sf, o = sum(lines.values()), prof.get(fn, {})
        so = sum(o.values())
        if tot and sf and so:
            score += sf / tot * sum(min(o.get(k, 0) / so, c / sf) for k, c in lines.items())
    return score


def v_spgo_matched(pr):
    """--next-release: release N's profile (the samples of fdod-spgo-stale)
    matched on the server onto release N+1 (for_build_id= of N+1's base
    build, uploaded: aggregator/stale.c), then N+1 built with it. What
    the matching did (the X-Fdod-Stale-* shares) goes to the variant's
    `matching`."""
    base_n = (pr.release or {}).get("base_n")
    if pr.variants.get("fdod-spgo-stale", {}).get("status") != "ok" or not base_n:
        raise Failed("needs fdod-spgo-stale (release N's samples), which failed")
    n1 = pr.variants["base"]["binary"]
    n1_bid = build_id(n1)
    f = pr.b.fdod
    run([FDOCTL, "upload", "--http", f.http, "--binary", pr.name, n1],
        os.path.join(pr.dir, "upload.log"), what="fdoctl upload")
    h = {}
    prof = pr.pull_llvm(pr.name, base_n["build_id"], os.path.join(pr.dir, "prof.matched.llvm"),
                        query="for_build_id=" + n1_bid, headers=h)
    m = {k[len("X-Fdod-Stale-"):].lower(): (float(v) if k != "X-Fdod-Stale-Functions" else v)
         for k, v in h.items() if k.startswith("X-Fdod-Stale-")}
    # Without timing noise: how close each profile of N's samples is to
    # N+1's fresh profile, line by line (the text form of each).
    q = "/v1/profiles/%s?format=llvm&encoding=text&build_id=" % pr.name
    fresh = text_profile(f.get(q + n1_bid, raw=True).decode())
    for k, extra in (("overlap_stale", ""), ("overlap_matched", "&for_build_id=" + n1_bid)):
        m[k] = round(line_overlap(text_profile(
            f.get(q + base_n["build_id"] + extra, raw=True).decode()), fresh), 3)
    pr.variants["fdod-spgo-matched"]["matching"] = m
    log("%s: release N's profile matched onto N+1 (%s): %s" % (pr.name, n1_bid[:12], m))
    return pr.spgo_build("fdod-spgo-matched", prof, stale=True)


def make_bolt(name, override):
    """fdod-spgo+bolt[-NAME]: llvm-bolt of fdod-spgo with fdod's .fdata of
    its samples, with the default flags or with override (--bolt-choice)."""
    vname = "fdod-spgo+bolt" + ("-" + name if name else "")

    def v(pr):
        return v_bolt(pr, vname, override)
    return v


def v_bolt(pr, vname, override):
    sp = pr.variants.get("fdod-spgo", {})
    if sp.get("status") != "ok":
        raise Failed("needs fdod-spgo, which failed")
    spgo = sp["binary"]
    sbid, _ = pr.sample(pr.name, spgo, "fdod-spgo")
    fdata = os.path.join(pr.dir, "prof.fdata")
    run([FDOCTL, "pull", pr.name, "--http", pr.b.fdod.http, "--format", "bolt", "--build-id",
         sbid, "-o", fdata] + pr.min_samples(), os.path.join(pr.dir, "pull.log"),
        what="fdoctl pull --format bolt")
    with open(fdata, errors="replace") as f:
        lines = f.read().splitlines()
    pr.b.check("%s: bolt profile of fdod-spgo pulled" % pr.name, len(lines) > 1,
               "%d lines" % len(lines))
    if len(lines) <= 1:
        raise Failed("empty bolt profile (%s)" % fdata)
    # No LBR here: a no_lbr profile, non-relocation mode (deploy/demo.sh).
    flags = override or (BOLT_NO_LBR if lines[0].startswith("no_lbr") else BOLT_LBR)
    key = hashlib.sha256(json.dumps([sha256_file(spgo), sha256_file(fdata), flags])
                         .encode()).hexdigest()[:16]
    entry = pr.b.path("bin", pr.name, "%s.%s" % (vname, key))
    out = os.path.join(entry, pr.name)
    pr.variants[vname]["bolt_flags"] = " ".join(flags)
    if os.path.exists(os.path.join(entry, ".ok")):
        log("%s: %s is cached (%s)" % (pr.name, vname, out))
        return out
    shutil.rmtree(entry, ignore_errors=True)
    os.makedirs(entry)
    shutil.copy(fdata, os.path.join(entry, "prof.fdata"))
    logf = os.path.join(entry, "bolt.log")
    log("%s: llvm-bolt %s (log: %s)" % (pr.name, " ".join(flags), logf))
    run([BOLT, spgo, "-o", out, "-data=" + os.path.join(entry, "prof.fdata")] + flags
        + ["-dyno-stats"], logf, what="llvm-bolt")
    pr.b.check("%s: llvm-bolt rewrote fdod-spgo (%s)" % (pr.name, vname), os.path.exists(out))
    open(os.path.join(entry, ".ok"), "w").close()
    return out


def make_choice(name, query, clang_flags):
    def v_choice(pr):
        bid, _ = pr.sample(pr.name, pr.variants["base"]["binary"], "base")
        prof = pr.pull_llvm(pr.name, bid, os.path.join(pr.dir, "prof.%s.llvm" % name),
                            query=query)
        return pr.spgo_build("fdod-spgo-" + name, prof, clang_flags)
    return v_choice


def v_base_probe(pr):
    binary, _ = pr.b.build(pr, "base-probe", PROBE_CFLAGS)
    return binary


def v_spgo_probe(pr):
    bp = pr.variants.get("base-probe", {})
    if bp.get("status") != "ok":
        raise Failed("needs base-probe, which failed")
    bid, _ = pr.sample(pr.name + "-probe", bp["binary"], "base-probe")
    prof = pr.pull_llvm(pr.name + "-probe", bid, os.path.join(pr.dir, "prof.probe.llvm"),
                        query="", check_hot=False)
    # A pseudo-probe profile carries each function's CFG checksum; clang
    # uses a line-based one on a probe build without a word, by lines.
    # The profile is extbinary: llvm-profdata's listing (pull_llvm's .show)
    # prints the checksums.
    with open(prof + ".show", errors="replace") as f:
        if "CFG checksum" not in f.read():
            raise Failed("fdod served a line-based profile, not a pseudo-probe one (no "
                         "CFG checksum in %s.show)" % prof)
    return pr.spgo_build("fdod-spgo-probe", prof, PROBE_CFLAGS)


def exact_fdata(pr, of="base"):
    """The exact edge counts of variant `of` (base, or base-probe) on the
    training set (llvm-bolt -instrument, merge-fdata), made once per run
    and shared by the exact variants of that binary."""
    done = getattr(pr, "exact_fdatas", {})
    pr.exact_fdatas = done
    if of in done:
        return done[of]
    v = pr.variants.get(of, {})
    if v.get("status") != "ok":
        raise Failed("needs %s, which failed" % of)
    base = v["binary"]
    entry = os.path.join(pr.dir, "exact" if of == "base" else "exact-" + of)
    shutil.rmtree(entry, ignore_errors=True)
    os.makedirs(entry)
    instr = os.path.join(entry, pr.name + ".instr")
    # One thread: llvm-bolt 16 -instrument hung (every thread waiting on a
    # futex, no CPU for 18 min) on gawk built with pseudo probes.
    run([BOLT, base, "-instrument", "-no-threads", "-o", instr,
         "-instrumentation-file=" + os.path.join(entry, "counts"),
         "-instrumentation-file-append-pid"], os.path.join(entry, "bolt.log"),
        what="llvm-bolt -instrument", timeout=1200)
    cpu = pr.train(instr, "exact-instrumented")
    dumps = sorted(os.path.join(entry, f) for f in os.listdir(entry)
                   if f.startswith("counts.") and f.endswith(".fdata"))
    if not dumps:
        raise Failed("the instrumented binary wrote no counts (%s)" % entry)
    fdata = os.path.join(entry, "exact.fdata")
    with open(fdata, "wb") as fh:
        run([MERGE_FDATA] + dumps, os.path.join(entry, "merge.log"), stdout=fh,
            what="merge-fdata")
    log("%s: exact counts from %d instrumented runs (%.1f s CPU): %s"
        % (pr.name, len(dumps), cpu, fdata))
    done[of] = fdata
    return fdata


def make_exact(name, query, clang_flags):
    """The exact-count ceiling: base run under `llvm-bolt -instrument` on
    the training set counts every edge exactly; `fdoctl emit` turns those
    counts into an llvm profile through fdod's own emitters (the same
    inline tree, line rule and heads as a pull with counts=blocks; query:
    emitter options as in a pull, e.g. zeros=1). It separates what the
    emitters lose from what inferring counts from samples loses."""
    def v_exact(pr):
        fdata = exact_fdata(pr)
        prof = os.path.join(pr.dir, "exact", "exact%s.llvm" % (
            "." + name if name else ""))
        opts = []
        for kv in filter(None, (query or "").split("&")):
            k, _, v = kv.partition("=")
            opts += ["--" + k.replace("_", "-"), v]
        run([FDOCTL, "emit", "--elf", pr.variants["base"]["binary"], "--fdata", fdata,
             "-o", prof] + opts, os.path.join(pr.dir, "exact", "emit.log"),
            what="fdoctl emit")
        return pr.spgo_build("exact-spgo" + ("-" + name if name else ""), prof,
                             clang_flags)
    return v_exact


def v_exact_probe(pr):
    """The exact-count ceiling of the probe-based profile: base-probe's
    exact counts through fdoctl emit, which attributes them to the
    binary's pseudo probes as a pull of its samples does."""
    fdata = exact_fdata(pr, "base-probe")
    binary = pr.variants["base-probe"]["binary"]
    prof = os.path.join(pr.dir, "exact-base-probe", "exact.probe.llvm")
    run([FDOCTL, "emit", "--elf", binary, "--fdata", fdata, "--encoding", "text",
         "-o", prof], os.path.join(pr.dir, "exact-base-probe", "emit.log"),
        what="fdoctl emit")
    with open(prof, errors="replace") as f:
        if not any(ln.lstrip().startswith("!CFGChecksum:") for ln in f):
            raise Failed("fdoctl emit wrote a line-based profile, not a pseudo-probe one "
                         "(no !CFGChecksum lines in %s)" % prof)
    return pr.spgo_build("exact-spgo-probe", prof, PROBE_CFLAGS)


def variant_list(args):
    """[(name, function)] in build order (a variant's inputs come first)."""
    vs = [("base", v_base), ("pgo-instr", v_pgo_instr), ("fdod-spgo", v_spgo),
          ("fdod-spgo+bolt", make_bolt("", None))]
    if args.short:
        vs = [v for v in vs if v[0] != "pgo-instr"]
    if args.next_release:
        vs = [("base", v_base), ("pgo-instr", v_pgo_instr), ("fdod-spgo", v_spgo),
              ("fdod-spgo-stale", v_spgo_stale), ("fdod-spgo-matched", v_spgo_matched)]
    for name, flags in args.bolt_choices:
        vs.append(("fdod-spgo+bolt-" + name, make_bolt(name, flags)))
    for name, query, flags in args.choices:
        vs.append(("fdod-spgo-" + name, make_choice(name, query, flags)))
    if args.probes:
        vs += [("base-probe", v_base_probe), ("fdod-spgo-probe", v_spgo_probe)]
    if args.exact:
        vs.append(("exact-spgo", make_exact("", "", [])))
    for name, query, flags in args.exact_choices:
        vs.append(("exact-spgo-" + name, make_exact(name, query, flags)))
    if args.exact and args.probes:
        vs.append(("exact-spgo-probe", v_exact_probe))
    if args.variants:
        keep = set(args.variants.split(",")) | {"base"}
        unknown = keep - {n for n, _ in vs}
        if unknown:
            sys.exit("fdobench: --variants: unknown %s" % ", ".join(sorted(unknown)))
        vs = [v for v in vs if v[0] in keep]
    return vs


# ------------------------------------------------------------------ statistics


def median_interval_level(n, k):
    """P(X_(k) <= median <= X_(n+1-k)) for n samples (deploy/demo/bench.py)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2.0 ** n


def median_interval_rank(n):
    k = 1
    while k + 1 <= (n + 1) // 2 and median_interval_level(n, k + 1) >= 0.90:
        k += 1
    return k


def mid(vals):
    """Median and a ~90% interval for it (order statistics), or None."""
    if not vals:
        return None
    s = sorted(vals)
    k = median_interval_rank(len(s))
    return statistics.median(s), s[k - 1], s[-k]


def gains(t, over):
    """Per round, t_over / t - 1."""
    return [a / b - 1.0 for a, b in zip(over, t)]


def shares(tv, tb, tc):
    """Per round where the ceiling gained: gain of v / gain of the ceiling."""
    return [gv / gc for gv, gc in zip(gains(tv, tb), gains(tc, tb)) if gc > 0]


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def overall(times, names, rng_seed=1, resamples=2000, ceiling="pgo-instr"):
    """Across programs: per variant the geometric mean of the per-program
    speedup ratios (median over rounds of t_base/t), the share (gm - 1) /
    (gm of the ceiling - 1) over the programs where both ran (the ceiling:
    pgo-instr, or fdod-spgo for the stale profile's share of the fresh
    one's gain), with bootstrap intervals (rounds resampled within each
    program)."""
    progs = sorted(times)

    def point(idx):
        ratio = {}
        for p in progs:
            tb = [times[p]["base"][i] for i in idx[p]]
            for n in names:
                if n in times[p]:
                    tv = [times[p][n][i] for i in idx[p]]
                    ratio[p, n] = statistics.median(b / v for b, v in zip(tb, tv))
        res = {}
        for n in names:
            ps = [p for p in progs if (p, n) in ratio]
            if not ps:
                continue
            gm = geomean([ratio[p, n] for p in ps])
            both = [p for p in ps if (p, ceiling) in ratio]
            share = None
            if both:
                gc = geomean([ratio[p, ceiling] for p in both])
                gv = geomean([ratio[p, n] for p in both])
                share = (gv - 1) / (gc - 1) if gc > 1 else None
            res[n] = (gm, share, len(ps))
        return res
    full = {p: list(range(len(times[p]["base"]))) for p in progs}
    est = point(full)
    rng = random.Random(rng_seed)
    boots = {n: ([], []) for n in est}
    for _ in range(resamples):
        idx = {p: [rng.randrange(len(full[p])) for _ in full[p]] for p in progs}
        for n, (gm, share, _k) in point(idx).items():
            boots[n][0].append(gm)
            if share is not None:
                boots[n][1].append(share)

    def pct(xs):
        if not xs:
            return None
        s = sorted(xs)
        return s[int(0.05 * (len(s) - 1))], s[int(math.ceil(0.95 * (len(s) - 1)))]
    return {n: {"geomean_ratio": gm, "geomean_interval": pct(boots[n][0]), "share": share,
                "share_interval": pct(boots[n][1]) if share is not None else None,
                "programs": k} for n, (gm, share, k) in est.items()}


# ------------------------------------------------------------------ timing


def fresh_copy(src, d, name):
    dst = os.path.join(d, name)
    shutil.copy2(src, dst)
    return dst


def converged(times, names, tol):
    """Every fdod variant's share: its ~90% interval within tol of its
    median; with --next-release also the stale profile's share of the
    fresh one's gain."""
    tb, tc = times["base"], times.get("pgo-instr")
    if tc is None:
        return True
    for n in names:
        if not n.startswith("fdod-"):
            continue
        m = mid(shares(times[n], tb, tc))
        if m is None or m[0] - m[1] > tol or m[2] - m[0] > tol:
            return False
    for n in ("fdod-spgo-stale", "fdod-spgo-matched"):
        if n in names and "fdod-spgo" in names:
            m = mid(shares(times[n], tb, times["fdod-spgo"]))
            if m is None or m[0] - m[1] > tol or m[2] - m[0] > tol:
                return False
    return True


def time_all(bench, prs):
    a = bench.args
    copies = os.path.join(bench.rundir, "copies")
    shutil.rmtree(copies, ignore_errors=True)
    os.makedirs(copies)
    timed = {}
    for pr in prs:
        names = [n for n, v in pr.variants.items() if v["status"] == "ok"]
        if "base" in names and len(names) > 1:
            timed[pr.name] = (pr, names, {n: [] for n in names})
    active = set(timed)
    max_rounds = a.rounds or a.max_rounds
    min_rounds = a.rounds or min(a.min_rounds, max_rounds)
    log("timing %s: paired interleaved rounds (%s), the fastest of %d runs per variant per "
        "round, a fresh copy of every binary each round"
        % (", ".join(sorted(timed)), "exactly %d" % a.rounds if a.rounds else
           "%d to %d, until every fdod variant's share is known to +-%g points"
           % (min_rounds, max_rounds, a.tolerance), a.repeat))
    r = 0
    while active and r < max_rounds:
        for pname in sorted(active):
            pr, names, times = timed[pname]
            d = os.path.join(copies, pname)
            os.makedirs(d, exist_ok=True)
            bins = {n: fresh_copy(pr.variants[n]["binary"], d, "%s.%d" % (n, r)) for n in names}
            k = r % len(names)
            order = names[k:] + names[:k]
            best = {}
            for _ in range(a.repeat):
                for n in order:
                    h, cpu = pr.run_once(bins[n], *pr.prog.timing,
                                         logf=os.path.join(pr.dir, "timing.log"))
                    if h != pr.expect:
                        raise Failed("%s %s printed another output than base in timing round %d"
                                     % (pname, n, r + 1))
                    best[n] = min(cpu, best.get(n, cpu))
            for n in names:
                times[n].append(best[n])
            print("  round %d %s: %s" % (r + 1, pname, "  ".join(
                "%s %.3f" % (n, best[n]) for n in names)), flush=True)
            if not a.rounds and r + 1 >= min_rounds and converged(times, names, a.tolerance / 100):
                log("%s: every share known to +-%g points after %d rounds" % (pname, a.tolerance,
                                                                             r + 1))
                active.discard(pname)
        r += 1
    shutil.rmtree(copies, ignore_errors=True)
    return {p: t[2] for p, t in timed.items()}


# ------------------------------------------------------------------ report


def host_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    clang = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout
    clang = clang.splitlines()[0] if clang else "?"
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cpus": os.cpu_count(), "clang": clang, "fdod_revision": rev,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def show_args(args):
    """args with runs of the same word shortened: `timing.dat x10`."""
    out, i = [], 0
    while i < len(args):
        j = i
        while j < len(args) and args[j] == args[i]:
            j += 1
        out.append(args[i] if j - i == 1 else "%s x%d" % (args[i], j - i))
        i = j
    return " ".join(out)


def pct(x):
    return "%+.1f%%" % (100 * x)


def report(bench, prs, times, host):
    a = bench.args
    L = []
    L.append("fdod FDO benchmark of real programs (bench/fdo), %s" % host["date"])
    L.append("host: %s, %d CPUs; %s; fdod %s" % (host["cpu"], host["cpus"], host["clang"],
                                                 host["fdod_revision"]))
    L.append("base = clang-16 %s, linked with %s (the binary fdo-agent samples);"
             % (" ".join(BASE_CFLAGS), " ".join(BASE_LDFLAGS)))
    L.append("pgo-instr = + -fprofile-generate, the training set, -fprofile-use (the ceiling);")
    L.append("fdod-spgo = + -fprofile-sample-use of fdod's llvm profile of base's samples;")
    if not a.next_release:
        L.append("fdod-spgo+bolt = llvm-bolt of fdod-spgo with fdod's .fdata of its own "
                 "samples (a no_lbr profile: %s; with branch records: %s)."
                 % (" ".join(BOLT_NO_LBR), " ".join(BOLT_LBR)))
    for name, flags in a.bolt_choices:
        L.append("fdod-spgo+bolt-%s = the same with llvm-bolt %s." % (name, " ".join(flags)))
    for name, query, flags in a.choices:
        L.append("fdod-spgo-%s = fdod-spgo with the profile query '%s'%s." % (
            name, query, " and clang flags '%s'" % " ".join(flags) if flags else ""))
    if a.exact or a.exact_choices:
        L.append("exact-spgo = base's exact edge counts on the training set (llvm-bolt "
                 "-instrument), through fdoctl emit (fdod's emitters), -fprofile-sample-use;")
    for name, query, flags in a.exact_choices:
        L.append("exact-spgo-%s = exact-spgo with the emitter options '%s'%s." % (
            name, query, " and clang flags '%s'" % " ".join(flags) if flags else ""))
    if a.probes:
        L.append("base-probe = base + %s; fdod-spgo-probe = its fdod profile (build_id of "
                 "base-probe), built with the probe flags." % " ".join(PROBE_CFLAGS))
        if a.exact:
            L.append("exact-spgo-probe = base-probe's exact edge counts on the training set, "
                     "through fdoctl emit (a pseudo-probe profile), built with the probe flags.")
    if a.next_release:
        L.append("--next-release: every variant is built from release N+1 = today's source + "
                 "the program's patch series (bench/fdo/releases.py); base, pgo-instr and "
                 "fdod-spgo (fresh: N+1's base sampled, its own profile) as above;")
        L.append("fdod-spgo-stale = N+1 + -fprofile-sample-use of the profile pulled for "
                 "release N's build-id (N's base sampled on the same training set), profile "
                 "warnings counted, not fatal; kept = median over rounds of its gain / "
                 "fdod-spgo's gain in the same round (rounds where fdod-spgo gained).")
        L.append("fdod-spgo-matched = the same samples of release N, pulled with "
                 "for_build_id= of N+1's base build (uploaded): fdod matches the profile onto "
                 "N+1 (aggregator/stale.c); the shares fresh/matched/renamed/dropped are "
                 "the answer's X-Fdod-Stale-* headers.")
    L.append("sampling: fdo-agent cpu-clock at %d Hz; the training set run %d time(s) "
             "(--sample-scale)." % (a.freq, a.sample_scale))
    if times:
        L.append("timing: CPU time (user+sys) of the timing command; per round the fastest of "
                 "%d interleaved runs of each variant (rotating order, a fresh copy of each "
                 "binary); speedup = median over rounds of t_base/t - 1; share = median over "
                 "rounds of speedup / pgo-instr's speedup in the same round (rounds where "
                 "pgo-instr gained); [lo, hi] = ~90%% interval for the median (order "
                 "statistics)." % a.repeat)
    for pr in prs:
        L.append("")
        s = pr.samples
        L.append("%s (Debian %s; %s%s)" % (pr.name, pr.src_name, pr.prog.binary,
                                           ": " + pr.prog.note if pr.prog.note else ""))
        L.append("  timing: %s %s%s; training: %d commands (%s)" % (
            pr.name, show_args(pr.prog.timing[0]), " < " + pr.prog.timing[1]
            if pr.prog.timing[1] else "", len(pr.training),
            ", ".join(t[0] for t in pr.training)))
        if pr.release:
            rl = pr.release
            L.append("  release N+1: %d edits (%s); patch: %s" % (
                len(rl["edits"]), ", ".join("%d %s" % (n, k) for k, n in rl["kinds"].items()),
                rl["patch"]))
        L.append("  samples: " + "; ".join(
            "%s %d (%d runs, %.1f s CPU)" % (k, v["samples"], v["runs"], v["training_cpu_s"])
            for k, v in s.items()) if s else "  samples: none")
        t = times.get(pr.name)
        if t:
            L.append("  rounds: %d" % len(t["base"]))
        L.append("  %-18s %9s %8s %18s %6s %14s" % ("variant", "median s", "speedup",
                                                   "[lo, hi]", "share", "[lo, hi]"))
        for n, v in pr.variants.items():
            if v["status"] != "ok":
                L.append("  %-18s failed: %s" % (n, v["reason"]))
                continue
            if not t or n not in t:
                L.append("  %-18s built, not timed" % n)
                continue
            tb, tv = t["base"], t[n]
            g = mid(gains(tv, tb))
            row = "  %-18s %9.3f" % (n, statistics.median(tv))
            if n != "base":
                row += " %8s %18s" % (pct(g[0]), "[%s, %s]" % (pct(g[1]), pct(g[2])))
                if "pgo-instr" in t and n != "pgo-instr":
                    sh = shares(tv, tb, t["pgo-instr"])
                    m = mid(sh)
                    if m:
                        row += " %5.0f%% %14s" % (100 * m[0], "[%.0f%%, %.0f%%]" % (
                            100 * m[1], 100 * m[2]))
                        if len(sh) < len(tb):
                            row += " (of %d rounds)" % len(sh)
                    else:
                        row += "    n/a (pgo-instr never gained)"
            L.append(row)
        for sv in ("fdod-spgo-stale", "fdod-spgo-matched"):
            st = pr.variants.get(sv, {})
            if st.get("status") != "ok":
                continue
            row = "  %s: %d profile warnings from clang-16" % (sv, st["profile_warnings"])
            mt = st.get("matching")
            if mt:
                row += "; matching: %s" % ", ".join(
                    "%s %.0f%%" % (k, 100 * mt[k]) for k in
                    ("fresh", "matched", "renamed", "dropped") if k in mt)
                if "overlap_matched" in mt:
                    row += "; line overlap with the fresh profile %.3f (stale: %.3f)" % (
                        mt["overlap_matched"], mt["overlap_stale"])
            if t and sv in t and "fdod-spgo" in t:
                sh = shares(t[sv], t["base"], t["fdod-spgo"])
                m = mid(sh)
                row += "; keeps " + ("%.0f%% [%.0f%%, %.0f%%] of fdod-spgo's gain" % (
                    100 * m[0], 100 * m[1], 100 * m[2]) if m else
                    "n/a (fdod-spgo never gained)")
                if m and len(sh) < len(t["base"]):
                    row += " (of %d rounds)" % len(sh)
            L.append(row)
        bolts = [v for v in (t or {}) if v.startswith("fdod-spgo+bolt") and "fdod-spgo" in t]
        for bv in sorted(bolts):
            g = mid(gains(t[bv], t["fdod-spgo"]))
            L.append("  %s against fdod-spgo: %s [%s, %s] (median over rounds of "
                     "t_spgo/t_bolt - 1)" % (bv, pct(g[0]), pct(g[1]), pct(g[2])))
    for name, reason in bench.failed_programs:
        L.append("")
        L.append("%s: failed: %s" % (name, reason))
    summary = None
    if times:
        names = sorted({n for t in times.values() for n in t if n != "base"})
        summary = overall(times, names)
        L.append("")
        L.append("over programs: geometric mean of each program's speedup ratio (median over "
                 "rounds of t_base/t); share = (geomean - 1) / (geomean of pgo-instr - 1); "
                 "[lo, hi] = 90% bootstrap interval (rounds resampled within each program, "
                 "2000 resamples, seed 1)")
        L.append("  %-18s %8s %18s %6s %14s %s" % ("variant", "speedup", "[lo, hi]", "share",
                                                  "[lo, hi]", "smallest program share"))
        for n in names:
            o = summary[n]
            gi = o["geomean_interval"]
            row = "  %-18s %8s %18s" % (n, pct(o["geomean_ratio"] - 1), "[%s, %s]" % (
                pct(gi[0] - 1), pct(gi[1] - 1)))
            if n != "pgo-instr" and o["share"] is not None:
                si = o["share_interval"]
                row += " %5.0f%% %14s" % (100 * o["share"], "[%.0f%%, %.0f%%]" % (
                    100 * si[0], 100 * si[1]))
                per = []
                for p, t in times.items():
                    if n in t and "pgo-instr" in t:
                        sh = shares(t[n], t["base"], t["pgo-instr"])
                        if sh:
                            per.append((statistics.median(sh), p))
                if per:
                    m, p = min(per)
                    row += " %4.0f%% (%s)" % (100 * m, p)
            if o["programs"] < len(times):
                row += "  [%d of %d programs]" % (o["programs"], len(times))
            L.append(row)
        for sv, how in (("fdod-spgo-stale", "without matching"),
                        ("fdod-spgo-matched", "with matching")):
            if sv not in names or "fdod-spgo" not in names:
                continue
            o = overall(times, ["fdod-spgo", sv], ceiling="fdod-spgo")
            o = o.get(sv)
            summary[sv]["share_of_fresh"] = o and o["share"]
            summary[sv]["share_of_fresh_interval"] = o and o["share_interval"]
            if o and o["share"] is not None:
                si = o["share_interval"]
                L.append("  %s (%s) keeps %.0f%% [%.0f%%, %.0f%%] of fdod-spgo's gain "
                         "(geomean: (gm stale - 1) / (gm fresh - 1), the same bootstrap)" % (
                             sv, how, 100 * o["share"], 100 * si[0], 100 * si[1]))
            else:
                L.append("  %s: n/a (fdod-spgo gained nothing on the geometric mean)" % sv)
    return L, summary


# ------------------------------------------------------------------ main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench/fdo/run.sh",
        description="FDO benchmark of real programs built from Debian source packages: base, "
        "instrumented PGO (the ceiling), fdod's sample PGO and BOLT, timed in paired "
        "interleaved rounds. See bench/fdo/README.md.")
    ap.add_argument("--programs", default=None,
                    help="comma-separated, from: %s (default: %s; --short: %s; "
                    "--next-release: those of them with a patch series, %s)" % (
                        ", ".join(P.PROGRAMS), ",".join(P.DEFAULT), P.SHORT,
                        ",".join(p for p in P.DEFAULT if p in R.RELEASES)))
    ap.add_argument("--rounds", type=int, default=0,
                    help="exactly N timing rounds (default: until every fdod variant's share "
                    "of the instrumented-PGO gain has a ~90%% interval within +-5 points)")
    ap.add_argument("--max-rounds", type=int, default=41, help="at most N rounds (41)")
    ap.add_argument("--min-rounds", type=int, default=9, help="at least N rounds (9)")
    ap.add_argument("--tolerance", type=float, default=5.0,
                    help="the shares' interval half-width to stop at, in points (5)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each variant per round, interleaved; the fastest counts (3)")
    ap.add_argument("--work", default=os.path.join(ROOT, "var", "bench-fdo"),
                    help="work directory: sources, build cache, runs, table.txt, results.json "
                    "(default var/bench-fdo)")
    ap.add_argument("--choice", action="append", default=[], metavar="NAME=QUERY[;CLANGFLAGS]",
                    help="also build fdod-spgo-NAME from the llvm profile pulled with QUERY "
                    "appended (e.g. 'sum=line_count=sum', 'accurate=;-fprofile-sample-accurate')"
                    "; repeatable")
    ap.add_argument("--bolt-choice", action="append", default=[], metavar="NAME=FLAGS",
                    help="also fdod-spgo+bolt-NAME: llvm-bolt of fdod-spgo with the same "
                    ".fdata and these flags instead of the default ones (e.g. "
                    "'nosplit=-reorder-blocks=ext-tsp -reorder-functions=hfsort'); "
                    "repeatable")
    ap.add_argument("--probes", action="store_true",
                    help="also base-probe (+ -fpseudo-probe-for-profiling, sampled) and "
                    "fdod-spgo-probe (its profile)")
    ap.add_argument("--sample-scale", type=int, default=1, metavar="N",
                    help="run the training set N times under fdo-agent: N times the samples")
    ap.add_argument("--freq", type=int, default=997, help="fdo-agent sampling rate, Hz (997)")
    ap.add_argument("--no-time", action="store_true", help="build and check only")
    ap.add_argument("--short", action="store_true",
                    help="the quick check of make test: one small program, a few seconds "
                    "of sampling, no pgo-instr, no timing")
    ap.add_argument("--keep-fdod", action="store_true",
                    help="leave fdod running at the end (its URL and pid are printed)")
    ap.add_argument("--variants", default=None,
                    help="only these variants (comma-separated; base is always built), e.g. "
                    "base,pgo-instr to screen a program")
    ap.add_argument("--exact", action="store_true",
                    help="also exact-spgo: the exact-count ceiling (base under llvm-bolt "
                    "-instrument on the training set, fdoctl emit, -fprofile-sample-use)")
    ap.add_argument("--exact-choice", action="append", default=[],
                    metavar="NAME=OPTIONS[;CLANGFLAGS]",
                    help="also exact-spgo-NAME: the exact counts emitted with fdoctl emit "
                    "options (e.g. 'zeros=zeros=1'), built with the extra clang flags; "
                    "repeatable")
    ap.add_argument("--next-release", action="store_true",
                    help="profiles across releases: the variants base, pgo-instr, fdod-spgo "
                    "(fresh), fdod-spgo-stale and fdod-spgo-matched, all of release N+1 (the "
                    "program's patch series of bench/fdo/releases.py applied to today's "
                    "source); the stale one is built with the profile of release N's "
                    "samples as it is, the matched one with the same profile matched onto "
                    "N+1 by fdod (for_build_id=), their profile warnings counted, not fatal; "
                    "reports the share of the fresh profile's gain each keeps")
    ap.add_argument("--input-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--measure-training", action="store_true",
                    help="also run the training set once with base and print each "
                    "command's CPU time (to size the inputs)")
    a = ap.parse_args(argv)
    def parse_choices(items, what):
        out = []
        for c in items:
            name, eq, rest = c.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                ap.error("%s %r: want NAME=QUERY[;CLANGFLAGS]" % (what, c))
            query, _, flags = rest.partition(";")
            out.append((name, query, flags.split()))
        return out
    a.choices = parse_choices(a.choice, "--choice")
    a.exact_choices = parse_choices(a.exact_choice, "--exact-choice")
    a.bolt_choices = []
    for c in a.bolt_choice:
        name, eq, flags = c.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not flags.split():
            ap.error("--bolt-choice %r: want NAME=FLAGS" % c)
        a.bolt_choices.append((name, flags.split()))
    if a.programs is None:
        a.programs = P.SHORT if a.short else ",".join(
            p for p in P.DEFAULT if not a.next_release or p in R.RELEASES)
    a.programs = [p for p in a.programs.split(",") if p]
    for p in a.programs:
        if p not in P.PROGRAMS:
            ap.error("unknown program %r (known: %s)" % (p, ", ".join(P.PROGRAMS)))
    if a.short:
        a.no_time = True
    if a.next_release:
        if a.short or a.probes or a.exact or a.choices or a.exact_choices or a.bolt_choices:
            ap.error("--next-release: not with --short, --probes, --exact, --choice, "
                     "--exact-choice or --bolt-choice")
        for p in a.programs:
            if p not in R.RELEASES:
                ap.error("--next-release: no patch series for %r in bench/fdo/releases.py "
                         "(there are: %s)" % (p, ", ".join(R.RELEASES) or "none"))
    for opt in ("rounds", "max_rounds", "repeat", "sample_scale", "freq", "min_rounds"):
        if getattr(a, opt) < 0 or (opt != "rounds" and getattr(a, opt) == 0):
            ap.error("--%s must be positive" % opt.replace("_", "-"))
    return a


def main(argv):
    a = parse_args(argv)
    bench = Bench(a)

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    shutil.rmtree(bench.rundir, ignore_errors=True)
    os.makedirs(bench.rundir)
    host = host_info()
    log("fdod FDO benchmark: programs %s; work directory %s" % (",".join(a.programs), bench.work))
    log("host: %s, %d CPUs; %s" % (host["cpu"], host["cpus"], host["clang"]))
    rc = 0
    prs = []
    try:
        bench.fdod = Fdod(os.path.join(bench.rundir, "fdod"))
        bench.check("fdod up", True, "agents %s, HTTP %s, pid %d (log: %s)" % (
            bench.fdod.url, bench.fdod.http, bench.fdod.proc.pid, bench.fdod.log))
        vlist = variant_list(a)
        for name in a.programs:
            prog = P.PROGRAMS[name]
            log("== %s (Debian source package %s)" % (name, prog.package))
            try:
                pr = ProgramRun(bench, prog)
            except Failed as e:
                # no source or no configured tree: the program's line says why
                log("%s: FAILED: %s" % (name, e))
                bench.check("%s: source fetched and configured" % name, False, str(e))
                bench.failed_programs.append((name, str(e)))
                continue
            prs.append(pr)
            for vname, fn in vlist:
                v = pr.variant(vname, fn)
                if vname == "base":
                    if v["status"] != "ok":
                        log("%s: base failed, so does every other variant" % name)
                        break
                    log("%s: base runs the timing command in %.2f s CPU" % (name, pr.base_cpu))
                    if a.measure_training:
                        pr.train(v["binary"], "base")
                    if not a.short and not 0.2 <= pr.base_cpu <= 1.5:
                        log("%s: warning: the timing command should take 0.3-1 s" % name)
            log("%s: variants %s" % (name, ", ".join(
                "%s %s" % (n, v["status"]) for n, v in pr.variants.items())))
        times = {}
        if not a.no_time:
            if not a.keep_fdod:
                bench.fdod.stop()  # nothing else runs while timing
            times = time_all(bench, prs)
        lines, summary = report(bench, prs, times, host)
        table = bench.path("table.txt")
        with open(table, "w") as f:
            f.write("\n".join(lines) + "\n")
        results = {
            "host": host, "args": {k: v for k, v in vars(a).items()},
            "base_cflags": BASE_CFLAGS, "base_ldflags": BASE_LDFLAGS,
            "programs": {pr.name: {
                "package": pr.prog.package, "source": pr.src_name, "binary": pr.prog.binary,
                "timing": pr.prog.timing, "training": pr.training, "samples": pr.samples,
                "base_cpu_s": pr.base_cpu, "variants": pr.variants,
                "next_release": pr.release,
                "times": times.get(pr.name, {}),
                "rounds": len(times[pr.name]["base"]) if pr.name in times else 0}
                for pr in prs},
            "overall": summary,
            "checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in bench.checks],
        }
        with open(bench.path("results.json"), "w") as f:
            json.dump(results, f, indent=1)
        print()
        print("\n".join(lines))
        print()
        log("table: %s; every time: %s" % (table, bench.path("results.json")))
        bad = [c for c in bench.checks if not c[1]]
        failed = [(pr.name, n) for pr in prs for n, v in pr.variants.items()
                  if v["status"] != "ok"] + [(n, "(all)") for n, _ in bench.failed_programs]
        if bad or (a.short and failed):
            rc = 1
        log("%d checks passed, %d failed; failed variants: %s" % (
            len(bench.checks) - len(bad), len(bad),
            ", ".join("%s %s" % f for f in failed) or "none"))
    except Failed as e:
        log("FAILED: %s" % e)
        bench.check("the run finished", False, str(e))
        rc = 1
    finally:
        if bench.fdod and a.keep_fdod and bench.fdod.proc.poll() is None:
            CHILDREN.discard(bench.fdod.proc)
            log("fdod left running (--keep-fdod): pid %d, HTTP %s, agents %s, data %s" % (
                bench.fdod.proc.pid, bench.fdod.http, bench.fdod.url, bench.fdod.dir))
        elif bench.fdod:
            bench.fdod.stop()
        stop_children()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
