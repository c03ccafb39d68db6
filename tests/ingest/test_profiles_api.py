"""The profile API on the real daemon: pull in every format, readiness
rules, publishing (immutable, content-addressed versions), fdoctl pull."""
import hashlib
import json
import os
import re
import subprocess

import pytest

from fdodtest import FDOCTL, Daemon, batch_text, build_id, symbols, \
    vaddr_to_offset

PROG = r"""
#include <stdio.h>
__attribute__((noinline)) unsigned hot(unsigned x) {
    for (unsigned i = 0; i < 1000; i++) x = x * 2654435761u + i;
    return x;
}
__attribute__((noinline)) unsigned cold(unsigned x) { return x ^ 0x5a5a; }
int main(int argc, char **argv) {
    unsigned s = 0;
    for (int i = 0; i < 100; i++) s += hot(i) + cold(i);
    printf("%u\n", s);
    return 0;
}
"""
START = 0x555555554000


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    d = tmp_path_factory.mktemp("papi")
    (d / "p.c").write_text(PROG)
    exe = str(d / "p")
    subprocess.run(["clang-16", "-O2", "-g", "-fdebug-info-for-profiling",
                    "-fno-omit-frame-pointer", "-o", exe, str(d / "p.c")],
                   check=True, timeout=300)
    return exe


def rt(exe, name, delta):
    return START + vaddr_to_offset(exe, symbols(exe)[name][0] + delta)


@pytest.fixture
def loaded(tmp_path, prog):
    with Daemon(tmp_path / "data") as d:
        bid = build_id(prog)
        hot, cold = rt(prog, "hot", 8), rt(prog, "cold", 1)
        main = rt(prog, "main", 30)
        for seq, (label, h, c) in enumerate(
                [("mode=serving", 900, 100), ("mode=batch", 100, 900)], 1):
            rc, out = d.push(batch_text("p", seq, "papi", bid,
                                        [(h, [hot, main]), (c, [cold, main])],
                                        labels=[label], host="h%d" % seq))
            assert rc == 0, out
        with open(prog, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=papi",
                             f.read())[0] == 201
        d.wait_pending_zero()
        yield d, bid


def folded(d, query=""):
    status, body = d.request("GET", "/v1/profiles/papi?format=folded" + query)
    assert status == 200, body
    res = {}
    for line in body.decode().splitlines():
        stack, count = line.rsplit(" ", 1)
        res[stack.split(";")[-1]] = res.get(stack.split(";")[-1], 0) + \
            int(count)
    return res


def test_pull_every_format_with_headers(loaded):
    d, bid = loaded
    for fmt in ("llvm", "gcc", "folded", "pprof"):
        status, body = d.request("GET", "/v1/profiles/papi?format=" + fmt)
        assert status == 200, (fmt, body)
        assert body, fmt
    status, body = d.request("GET", "/v1/profiles/papi?format=bolt&build_id="
                             + bid)
    assert status == 200, body
    # counts=blocks (the default): inferred edges as branch records
    assert re.match(rb"1 \S+ [0-9a-f]+ 1 \S+ [0-9a-f]+ 0 \d+\n", body), \
        body[:100]
    status, body = d.request("GET", "/v1/profiles/papi?format=bolt&build_id="
                             + bid + "&counts=samples")
    assert status == 200, body
    assert body.startswith(b"no_lbr"), body[:100]
    req = __import__("urllib.request").request
    r = req.urlopen(d.http + "/v1/profiles/papi?format=folded")
    assert r.headers["X-Fdod-Samples"] == "2000"
    assert r.headers["X-Fdod-Hosts"] == "2"
    assert bid in r.headers["X-Fdod-Build-Ids"]
    assert r.headers["ETag"].strip('"') == \
        hashlib.sha256(r.read()).hexdigest()


def test_labels_and_mix_select_numerically(loaded):
    d, _ = loaded
    f = folded(d, "&labels=mode:serving")
    assert f["hot"] == 900 and f["cold"] == 100
    f = folded(d, "&mix=mode:serving*1,mode:batch*1")
    assert f["hot"] == 1000 and f["cold"] == 1000
    f = folded(d, "&mix=mode:serving*3,mode:batch*1")
    assert f["hot"] == 1400 and f["cold"] == 600


def test_not_ready_names_the_rules(loaded):
    d, _ = loaded
    status, body = d.request("GET", "/v1/profiles/papi?min_samples=5000"
                             "&min_hosts=3")
    assert status == 409
    j = json.loads(body)
    rules = {r["rule"]: r for r in j["failed"]}
    assert rules["min_samples"]["have"] == 2000
    assert rules["min_samples"]["need"] == 5000
    assert rules["min_hosts"]["have"] == 2
    assert "min_span" not in rules
    p = subprocess.run([FDOCTL, "pull", "papi", "--http", d.http,
                        "--min-samples", "5000"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 3 and "min_samples" in p.stderr
    for ok in ("line_count=max", "line_count=sum&head=stacks",
               "line_count=mean&head=entry"):
        assert d.request("GET", "/v1/profiles/papi?" + ok)[0] == 200, ok
    # The defaults are spelled out: the same bytes.
    assert (d.request("GET", "/v1/profiles/papi")[1] ==
            d.request("GET", "/v1/profiles/papi?line_count=mean&head=entry")[1])
    for bad in ("format=nope", "window=3x", "build_id=XYZ",
                "min_share=2", "labels=novalue", "line_count=avg",
                "head=calls"):
        assert d.request("GET", "/v1/profiles/papi?" + bad)[0] == 400, bad
    # The llvm choices' refusals name the values (from the emitter's list).
    for bad, why in (("line_count=avg", b"line_count is sum, max or mean"),
                     ("head=calls", b"head is stacks or entry")):
        assert why in d.request("GET", "/v1/profiles/papi?" + bad)[1], bad
    assert d.request("GET", "/v1/profiles/nope")[0] == 404


def test_published_version_never_changes(loaded, prog):
    d, bid = loaded
    status, body = d.request("POST", "/v1/profiles/papi/publish?format=llvm",
                             b"")
    assert status == 201, body
    v = json.loads(body)
    assert v["version"] == 1 and v["inputs"]["samples"] == 2000
    status, original = d.request("GET", "/v1/profiles/papi/versions/" +
                                 v["id"])
    assert status == 200
    assert hashlib.sha256(original).hexdigest() == v["id"]
    # Same inputs again: the same version.
    status, body = d.request("POST", "/v1/profiles/papi/publish?format=llvm",
                             b"")
    assert status == 200 and json.loads(body)["id"] == v["id"]
    # More samples arrive: the current profile changes, the version not.
    rc, out = d.push(batch_text("p", 3, "papi", bid,
                                [(5000, [rt(prog, "cold", 1)])],
                                labels=["mode=batch"]))
    assert rc == 0, out
    status, now = d.request("GET", "/v1/profiles/papi?format=llvm")
    assert now != original
    assert d.request("GET", "/v1/profiles/papi/versions/" +
                     v["id"]) == (200, original)
    listing = d.get("/v1/profiles/papi/versions")["versions"]
    assert [x["id"] for x in listing] == [v["id"]]
    assert listing[0]["inputs"]["build_ids"] == [bid]
    assert d.request("GET", "/v1/profiles/papi/versions/" + "0" * 64)[0] \
        == 404


def test_fdoctl_pull_writes_the_file(loaded, tmp_path):
    d, _ = loaded
    out = tmp_path / "app.prof"
    p = subprocess.run([FDOCTL, "pull", "papi", "--http", d.http, "--format",
                        "llvm", "--labels", "mode=serving", "-o", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"hot\0" in out.read_bytes()  # extbinary's name table
    show = subprocess.run(["llvm-profdata-16", "show", "--sample", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr
    # --line-count and --head reach the emitter.
    sum_out = tmp_path / "sum.prof"
    p = subprocess.run([FDOCTL, "pull", "papi", "--http", d.http, "--format",
                        "llvm", "--labels", "mode=serving", "--line-count",
                        "sum", "--head", "stacks", "-o", str(sum_out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    status, body = d.request(
        "GET", "/v1/profiles/papi?format=llvm&labels=mode:serving"
        "&line_count=sum&head=stacks")
    assert status == 200 and sum_out.read_bytes() == body


def test_pprof_top_function_matches_folded(loaded, tmp_path):
    d, _ = loaded
    status, body = d.request("GET", "/v1/profiles/papi?format=pprof")
    assert status == 200
    pb = tmp_path / "p.pb.gz"
    pb.write_bytes(body)
    env = dict(os.environ, HOME=str(tmp_path), GOCACHE=str(tmp_path / "gc"))
    top = subprocess.run(["go", "tool", "pprof", "-top", str(pb)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert top.returncode == 0, top.stderr
    rows = [l.split() for l in top.stdout.splitlines()
            if l.strip() and l.split()[0][0].isdigit() and "%" in l]
    assert rows, top.stdout
    f = folded(d)
    assert rows[0][-1] == max(f, key=f.get), (rows[0], f)


RELEASE2 = PROG.replace("int main(", "int unused_new_code(int x) {"
                        " return x * 7; }\nint main(")


def test_releases_merge_by_symbol(tmp_path, prog):
    """Samples of release N and N+1 (different build-ids, different
    addresses) merge into one llvm profile keyed by function and line."""
    d2 = tmp_path / "r2"
    d2.mkdir()
    (d2 / "p.c").write_text(RELEASE2)
    prog2 = str(d2 / "p")
    subprocess.run(["clang-16", "-O2", "-g", "-fdebug-info-for-profiling",
                    "-fno-omit-frame-pointer", "-o", prog2, str(d2 / "p.c")],
                   check=True, timeout=300)
    assert build_id(prog2) != build_id(prog)
    with Daemon(tmp_path / "data") as d:
        for seq, exe in enumerate((prog, prog2), 1):
            rc, out = d.push(batch_text(
                "rel", seq, "rel", build_id(exe),
                [(600, [rt(exe, "hot", 8), rt(exe, "main", 30)])]))
            assert rc == 0, out
            with open(exe, "rb") as f:
                assert d.request("PUT", "/v1/symbols?binary=rel",
                                 f.read())[0] == 201
        d.wait_pending_zero()
        status, body = d.request("GET",
                                 "/v1/profiles/rel?format=llvm&encoding=text")
        assert status == 200, body
        heads = [l for l in body.decode().splitlines()
                 if l.startswith("hot:")]
        assert len(heads) == 1, body
        assert int(heads[0].split(":")[1]) == 1200, heads


def metric(d, name):
    status, body = d.request("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name + " not in /metrics")


def test_identical_pulls_share_one_build_until_the_store_changes(loaded,
                                                                 prog):
    import concurrent.futures
    d, bid = loaded
    q = "/v1/profiles/papi?format=llvm&encoding=text&labels=mode:serving"
    b0 = metric(d, "fdod_profile_builds_total")
    h0 = metric(d, "fdod_profile_cache_hits_total")
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(lambda _: d.request("GET", q), range(8)))
    assert all(s == 200 for s, _ in res), res[0]
    assert len({b for _, b in res}) == 1
    assert metric(d, "fdod_profile_builds_total") == b0 + 1
    assert metric(d, "fdod_profile_cache_hits_total") == h0 + 7
    # A profile that is not ready is refused alike, also from one build.
    nr = q + "&min_samples=1000000"
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda _: d.request("GET", nr), range(4)))
    assert all(s == 409 and b"min_samples" in b for s, b in res), res[0]
    assert metric(d, "fdod_profile_builds_total") == b0 + 2
    # Another query is another build; a sample acknowledged before the
    # next pull is in it (the store changed: the shared build is not
    # reused).
    assert d.request("GET", q + "&min_samples=1")[0] == 200
    assert metric(d, "fdod_profile_builds_total") == b0 + 3
    hot, main = rt(prog, "hot", 8), rt(prog, "main", 30)
    rc, out = d.push(batch_text("p", 3, "papi", bid, [(500, [hot, main])],
                                labels=["mode=serving"], host="h3"))
    assert rc == 0, out
    r = __import__("urllib.request").request.urlopen(d.http + q)
    assert r.headers["X-Fdod-Samples"] == "1500"
    assert metric(d, "fdod_profile_builds_total") == b0 + 4
    # A merge of another binary leaves this one's state: the next pull
    # takes the same build (store_generation_of).
    rc, out = d.push(batch_text("o", 1, "papi-other", bid,
                                [(5, [hot, main])], labels=["mode=serving"],
                                host="h4"))
    assert rc == 0, out
    r = __import__("urllib.request").request.urlopen(d.http + q)
    assert r.headers["X-Fdod-Samples"] == "1500"
    assert metric(d, "fdod_profile_builds_total") == b0 + 4


def test_folded_and_pprof_keep_the_heaviest_stacks(loaded, tmp_path):
    d, _ = loaded
    f = folded(d, "&labels=mode:serving")
    assert f == {"hot": 900, "cold": 100}
    assert folded(d, "&labels=mode:serving&max_stacks=1") == {"hot": 900}
    assert folded(d, "&labels=mode:serving&min_share=0.2") == {"hot": 900}
    assert folded(d, "&labels=mode:serving&max_stacks=0&min_share=0") == f
    status, body = d.request("GET", "/v1/profiles/papi?format=folded"
                             "&max_stacks=-1")
    assert status == 400, body
    status, body = d.request("GET", "/v1/profiles/papi?format=pprof"
                             "&labels=mode:serving&max_stacks=1")
    assert status == 200
    (tmp_path / "p.pb.gz").write_bytes(body)
    out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=5",
                          str(tmp_path / "p.pb.gz")],
                         capture_output=True, text=True, timeout=120) \
        if os.path.exists("/usr/bin/go") else None
    if out is not None:
        assert out.returncode == 0, out.stderr
        assert "hot" in out.stdout and "cold" not in out.stdout
