"""POST /v1/pprof: pprof profiles into the real fdod on loopback.

A Go program (Debian's golang-go) with one hot function, linked with
-ldflags=-B=0x<hex> so its ELF has a GNU build-id, writes its own CPU
profile with runtime/pprof; posted to /v1/pprof after `fdoctl upload` of
the binary, it must give a profile whose top function is the one `go tool
pprof -top` names on the same file, and the same profile, stack for
stack, as the same samples pushed as an agent's SampleBatch, with the
caller's call site on the source line of the call. Posting the same
request again counts once; other profiles of the same service are stored
under the same agent. Bad input (a cut protobuf or gzip body, a wrong
content type, gzip claimed but not sent, a huge declared body, a gzip
bomb, a location outside its mapping, a Go binary without a GNU build-id,
a token without scope ingest or outside its binaries=) is refused with a
clear error and nothing is stored. Only the cases that need a Go program
need Go: the others post profiles built here (fuzz/seeds.py's writer).
"""
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (FDOCTL, Daemon, _read_varint, pb_fields,  # noqa: E402
                      samples_stored)

# The profile.proto writer of the fuzz seeds (google/pprof's numbers).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "fuzz"))
from seeds import pprof_profile  # noqa: E402

GO_SRC = r"""
package main

import (
	"os"
	"runtime/pprof"
	"time"
)

//go:noinline
func hotLoop(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i % 7
	}
	return s
}

//go:noinline
func coldLoop(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i % 3
	}
	return s
}

var sink int

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	end := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(end) {
		sink += hotLoop(1000000)
		sink += coldLoop(100000)
	}
	pprof.StopCPUProfile()
	f.Close()
}
"""

BUILD_ID = "5eed0f0dc0ffee00112233445566778899aabbcc"
CT = "application/octet-stream"


def small_profile(end=None, leaf=0x401000, count=3):
    """A Go-like CPU profile made here, no Go needed: /usr/bin/web with a
    GNU build-id, a leaf and its caller; 2 s ending at end (default:
    now)."""
    end = end or int(time.time())
    return pprof_profile(
        [(1, 0x400000, 0x500000, 0, "/usr/bin/web", BUILD_ID)],
        [(1, 1, leaf), (2, 1, 0x402000)],
        [([1, 2], [count, count * 10000000])],
        time_nanos=(end - 2) * 10**9)


def go_env(tmp):
    env = dict(os.environ, GOCACHE=str(tmp / "gocache"),
               GOPATH=str(tmp / "gopath"), HOME=str(tmp), GOFLAGS="",
               GO111MODULE="on", CGO_ENABLED="0", GOTOOLCHAIN="local")
    return env


@pytest.fixture(scope="module")
def goprof(tmp_path_factory):
    """(executable, its profile, executable without a GNU build-id, its
    profile, go env), or a skip that says why Go is missing."""
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed (golang-go: deploy/install-deps.sh)")
    tmp = tmp_path_factory.mktemp("go")
    (tmp / "hot.go").write_text(GO_SRC)
    env = go_env(tmp)
    out = {}
    for name, flags in (("hot", ["-ldflags=-B=0x" + BUILD_ID]),
                        ("nobid", [])):
        exe = str(tmp / name)
        p = subprocess.run([go, "build"] + flags + ["-o", exe, "hot.go"],
                           cwd=str(tmp), env=env, capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        prof = str(tmp / (name + ".pprof"))
        subprocess.run([exe, prof], check=True, timeout=120)
        out[name] = (exe, prof)
    return out["hot"][0], out["hot"][1], out["nobid"][0], \
        out["nobid"][1], env


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def post(d, query, body, ctype=CT, headers=None, token=None):
    """(status, JSON answer) of POST /v1/pprof?query."""
    r = urllib.request.Request(d.http + "/v1/pprof?" + query, data=body,
                               method="POST")
    if ctype:
        r.add_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        r.add_header(k, v)
    if token or d.token:
        r.add_header("Authorization", "Bearer " + (token or d.token))
    try:
        with urllib.request.urlopen(r, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def upload(d, name, exe):
    p = subprocess.run([FDOCTL, "upload", "--http", d.http, "--binary",
                        name, exe], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr


def pull(d, binary, fmt, extra=""):
    url = "%s/v1/profiles/%s?format=%s&min_samples=1%s" % (d.http, binary,
                                                           fmt, extra)
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def leaves(folded):
    out = {}
    for line in folded.splitlines():
        stack, count = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1]
        out[leaf] = out.get(leaf, 0) + int(count)
    return out


def metric(d, name):
    status, body = d.request("GET", "/metrics")
    assert status == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else 0


def decl_line(exe, name):
    """DW_AT_decl_line of function name in exe's DWARF, 0 when absent."""
    out = subprocess.run(["readelf", "--debug-dump=info", exe],
                         capture_output=True, text=True, timeout=300).stdout
    m = re.search(r"DW_AT_name\s*: %s\n((?:(?!.*Abbrev Number).*\n)*)"
                  % re.escape(name), out)
    assert m, name
    line = re.search(r"DW_AT_decl_line\s*: (\d+)", m.group(1))
    return int(line.group(1)) if line else 0


def go_top(exe, prof, env):
    """The first function of `go tool pprof -top` (most flat time)."""
    p = subprocess.run(["go", "tool", "pprof", "-top", exe, prof],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = [ln.split() for ln in p.stdout.splitlines()
            if re.match(r"\s*[\d.]+\w*s\s+[\d.]+%", ln)]
    assert rows, p.stdout
    return rows[0][-1], p.stdout


def test_go_profile_top_function_matches_go_tool_pprof(daemon, goprof):
    exe, prof, _, _, env = goprof
    upload(daemon, "hot", exe)
    with open(prof, "rb") as f:
        body = f.read()
    assert body[:2] == b"\x1f\x8b"  # runtime/pprof writes it gzipped
    status, ans = post(daemon, "binary=hot&labels=mode=test", body)
    assert status == 200, ans
    assert ans["agent"].startswith("pprof/") and not ans["duplicate"]
    assert ans["sample_types"] == "samples/count"
    assert ans["event"] == "cpu-clock" and ans["period"] == 10000000
    assert ans["samples"]["accepted"] > 20, ans
    assert ans["mappings"] == 1  # the Go binary's one text mapping
    assert samples_stored(daemon, "hot") == ans["samples"]["accepted"]
    daemon.wait_pending_zero()

    top, text = go_top(exe, prof, env)
    assert top == "main.hotLoop", text
    got = leaves(pull(daemon, "hot", "folded"))
    assert max(got, key=got.get) == top, (got, text)
    info = daemon.get("/v1/binaries/hot")
    assert [b["build_id"] for b in info["build_ids"]] == [BUILD_ID], info
    assert info["labels"][0]["labels"] == "mode=test", info
    # The compiler profile too: the hot function heads it.
    body = pull(daemon, "hot", "llvm", "&encoding=text")
    heads = sorted(re.findall(r"^(\S+):(\d+):", body, re.M),
                   key=lambda f: -int(f[1]))
    assert heads and heads[0][0] == top, body


# -- a minimal protobuf reader, to turn a pprof into an agent's batch ------

def _ints(wt, v):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = _read_varint(v, i)
        out.append(x)
    return out


def read_pprof(raw):
    """{'mappings': {id: (start, limit, off, build_id)}, 'locs': {id:
    (mapping, address)}, 'samples': [(count, [loc ids])], ...}."""
    strings, maps, locs, samples, prof = [], {}, {}, [], {}
    for num, wt, v in pb_fields(raw):
        if num == 6:
            strings.append(v.decode())
        elif num in (9, 10, 12):
            prof[num] = v
    for num, wt, v in pb_fields(raw):
        if num == 3:
            f = {n: x for n, _, x in pb_fields(v)}
            maps[f.get(1, 0)] = (f.get(2, 0), f.get(3, 0), f.get(4, 0),
                                 strings[f.get(6, 0)])
        elif num == 4:
            f = {n: x for n, _, x in pb_fields(v)}
            locs[f.get(1, 0)] = (f.get(2, 0), f.get(3, 0))
        elif num == 2:
            ids, vals = [], []
            for n, w, x in pb_fields(v):
                if n == 1:
                    ids += _ints(w, x)
                elif n == 2:
                    vals += _ints(w, x)
            samples.append((vals[0], ids))
    return {"maps": maps, "locs": locs, "samples": samples,
            "time": prof.get(9, 0) // 10**9, "period": prof.get(12, 0)}


def test_same_samples_as_an_agent_batch_give_the_same_profile(daemon,
                                                              goprof):
    """The profile's samples pushed as a SampleBatch (absolute addresses,
    callers as return addresses, the Go binary's own mapping) and posted
    as pprof are stored as the same stacks: same folded and llvm profiles,
    same exact weight."""
    exe, prof, _, _, _ = goprof
    upload(daemon, "hot", exe)
    with open(prof, "rb") as f:
        body = f.read()
    p = read_pprof(gzip.decompress(body))
    (start, limit, off, bid), = [m for m in p["maps"].values()
                                 if m[3] == BUILD_ID]
    # An agent sends callers as return addresses: pprof's + 1. Frames
    # elsewhere ([vdso]) are outside the batch's one mapping, as they are
    # unmapped in the pprof path.
    stacks = [(count, [p["locs"][lid][1] + (1 if k else 0)
                       for k, lid in enumerate(ids)])
              for count, ids in p["samples"]]
    assert stacks
    t0 = p["time"]
    text = ["agent native/1", "seq 1", "host 127.0.0.1", "binary hotnative",
            "event cpu-clock", "period %d" % p["period"], "weight 1",
            "time %d %d" % (t0, t0 + 2),
            "mapping 0 %s %x %x %x %s" % (bid, start, limit, off, exe)]
    text += ["stack %d %s" % (c, " ".join("%x" % a for a in addrs))
             for c, addrs in stacks]
    rc, out = daemon.push("\n".join(text) + "\n")
    assert rc == 0, out
    status, ans = post(daemon, "binary=hot", body)
    assert status == 200, ans
    accepted = re.search(r"accepted=(\d+)", out)
    assert accepted and int(accepted.group(1)) == \
        ans["samples"]["accepted"], (out, ans)
    daemon.wait_pending_zero()
    for fmt in ("folded", "llvm&encoding=text"):
        a = pull(daemon, "hot", fmt)
        b = pull(daemon, "hotnative", fmt)
        assert "main.hotLoop" in a and a == b, (fmt, a, b)
    wa = daemon.get("/v1/binaries/hot")["weight_fixed"]
    wb = daemon.get("/v1/binaries/hotnative")["weight_fixed"]
    assert wa == wb
    # Both paths send callers the same way, so the comparison above
    # cannot see that way being wrong: the source can. main.main's call
    # site of hotLoop must be on the line of the `hotLoop(` call: offset
    # line - DW_AT_decl_line of main.main (emit_llvm.c), and Go 1.19
    # writes no decl_line for functions, so then the line itself.
    src = GO_SRC.split("\n")  # hot.go is GO_SRC: line n is src[n - 1]
    call_line, = [i + 1 for i, ln in enumerate(src)
                  if "hotLoop(" in ln and "func" not in ln]
    llvm = pull(daemon, "hot", "llvm&encoding=text")
    m = re.search(r"^main\.main:\d+:\d+\n((?: .*\n)*)", llvm, re.M)
    assert m, llvm
    sites = re.findall(r"^ (\d+)(?:\.\d+)?: \d+ .*\bmain\.hotLoop:\d+",
                       m.group(1), re.M)
    decl = decl_line(exe, "main.main")
    assert [int(x) for x in sites] == [call_line - decl], \
        (call_line, decl, m.group(0))


def test_identical_repost_counts_once(daemon, goprof):
    _, prof, _, _, _ = goprof
    with open(prof, "rb") as f:
        body = f.read()
    q = "binary=hot&labels=mode=a,region=eu"
    status, first = post(daemon, q, body)
    assert status == 200 and not first["duplicate"], first
    n = samples_stored(daemon, "hot")
    assert n == first["samples"]["accepted"]
    # The same request again, and the same profile not gzipped, with the
    # labels in another order: one batch.
    status, again = post(daemon, q, body)
    assert status == 200 and again["duplicate"], again
    assert again["agent"] == first["agent"]
    status, raw = post(daemon, "labels=region=eu,mode=a&binary=hot",
                       gzip.decompress(body), ctype="application/x-protobuf")
    assert status == 200 and raw["duplicate"], raw
    assert samples_stored(daemon, "hot") == n
    assert metric(daemon, "fdod_pprof_duplicates_total") == 2
    assert daemon.get("/v1/status")["ingest"]["batches"] == 1
    # Other labels: another batch, counted again.
    status, other = post(daemon, "binary=hot&labels=mode=b", body)
    assert status == 200 and not other["duplicate"], other
    assert other["agent"] != first["agent"]
    assert samples_stored(daemon, "hot") == 2 * n


def raw_request(d, head):
    """Send head (request line and headers) and no body; the whole answer
    (fdod closes the connection after refusing a body it did not read)."""
    with socket.create_connection(("127.0.0.1", d.http_port), 30) as s:
        s.sendall(head.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


def test_bad_input_is_refused_and_nothing_is_stored(daemon):
    """Profiles built here: no Go needed, never skipped."""
    raw = small_profile()
    gz = gzip.compress(raw)
    bomb = gzip.compress(b"\0" * (100 << 20), 9)
    assert len(bomb) < (1 << 20)
    outside = pprof_profile(
        [(1, 0x400000, 0x500000, 0, "/usr/bin/x", BUILD_ID)],
        [(1, 1, 0x401000), (2, 1, 0x600000)],
        [([1, 2], [3, 30000000])], time_nanos=int(time.time()) * 10**9)
    cases = [
        # Cut inside its last field (a string of the table).
        ("binary=x", raw[:-1], CT, {}, 400,
         "not a profile.proto, or cut short"),
        ("binary=x", gz[:len(gz) // 2], CT, {}, 400,
         "gzip body ends inside its stream"),
        ("binary=x", gz, "text/plain", {}, 415,
         "Content-Type text/plain is not a pprof profile"),
        ("binary=x", gz, "application/x-www-form-urlencoded", {}, 415,
         "--data-binary @cpu.pprof -H 'Content-Type: "
         "application/octet-stream'"),
        ("binary=x", raw, CT, {"Content-Encoding": "gzip"}, 400,
         "Content-Encoding: gzip, but the body is not gzip"),
        ("binary=x", gz, CT, {"Content-Encoding": "br"}, 415,
         "Content-Encoding br"),
        ("binary=x", bomb, CT, {}, 413,
         "gzip body inflates to more than 67108864 bytes"),
        ("binary=x", outside, CT, {}, 400,
         "location 2: address 0x600000 is outside its mapping 1 "
         "[0x400000, 0x500000)"),
        ("binary=x", b"", CT, {}, 400, "empty body"),
        ("binary=x&time=soon", gz, CT, {}, 400, "time= must be"),
        ("binary=../etc", gz, CT, {}, 400, "binary="),
        ("binary=x&labels=nolabel", gz, CT, {}, 400,
         "labels=: 'nolabel' is not key=value"),
        ("binary=x&labels=bad%20key=1", gz, CT, {}, 400, "label"),
    ]
    for query, body, ctype, headers, want, msg in cases:
        status, ans = post(daemon, query, body, ctype, headers)
        assert status == want, (query, ctype, headers, status, ans)
        assert msg in ans["error"], (msg, ans)

    # A body declared far larger than the route takes: 413 before a byte
    # of it is read, with the reason.
    answer = raw_request(
        daemon, "POST /v1/pprof?binary=x HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: %s\r\nContent-Length: 2147483648\r\n\r\n" % CT)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "larger than 16777216 bytes" in answer, answer

    st = daemon.wait_merged()
    assert st["ingest"]["batches"] == 0 and st["ingest"]["samples"] == 0, st
    assert daemon.get("/v1/binaries")["binaries"] == []
    assert metric(daemon, 'fdod_pprof_requests_total{code="400"}') == 9
    assert metric(daemon, 'fdod_pprof_requests_total{code="415"}') == 3
    assert metric(daemon, 'fdod_pprof_requests_total{code="413"}') == 1
    assert metric(daemon, 'fdod_pprof_samples_total{result="accepted"}') == 0


def test_go_binary_without_gnu_build_id_is_422(daemon, goprof):
    """A Go binary linked without -B: its mapping has no GNU build-id."""
    _, _, nobid_exe, nobid_prof, _ = goprof
    with open(nobid_prof, "rb") as f:
        nobid = f.read()
    status, ans = post(daemon, "binary=nobid", nobid)
    assert status == 422, ans
    assert "no sample has a frame in a file with a GNU build-id" in \
        ans["error"], ans
    assert ans["samples"]["accepted"] == 0
    assert ans["samples"]["unmapped"] > 0
    assert ans["unmapped"]["no_build_id"]["samples"] == \
        ans["samples"]["unmapped"], ans
    assert "-ldflags=-B=0x" in ans["unmapped"]["no_build_id"]["why"]
    assert ans["unmapped_mappings"][0]["file"] == nobid_exe, ans
    assert ans["unmapped_mappings"][0]["reason"] == "no_build_id"
    st = daemon.wait_merged()
    assert st["ingest"]["batches"] == 0, st
    assert metric(daemon, 'fdod_pprof_requests_total{code="422"}') == 1
    assert metric(daemon, 'fdod_pprof_unmapped_samples_total'
                          '{reason="no_build_id"}') == \
        ans["samples"]["unmapped"]


def test_samples_metric_counts_stored_profiles_once(daemon):
    """fdod_pprof_samples_total{result="accepted"} counts a profile when
    it is stored: not again for an identical retry, not for one the
    ingest refused."""
    body = small_profile(count=5)
    status, ans = post(daemon, "binary=web", body)
    assert status == 200 and ans["samples"]["accepted"] == 5, ans
    status, again = post(daemon, "binary=web", gzip.compress(body))
    assert status == 200 and again["duplicate"], again
    # Ended 30 days ago: older than --dedup-ttl, refused by the ingest.
    old = small_profile(end=int(time.time()) - 30 * 86400, count=7)
    status, ans = post(daemon, "binary=web", old)
    assert status == 422 and "TIME_RANGE" in ans["error"], ans
    assert samples_stored(daemon, "web") == 5
    assert metric(daemon, 'fdod_pprof_samples_total{result="accepted"}') \
        == 5
    assert metric(daemon, "fdod_pprof_duplicates_total") == 1


def import_seq(kind, body, extra):
    """The seq of an imported batch (docs/ingest.md "At-least-once"):
    the first 64 bits of SHA-256 over "fdod <kind> seq v1" NUL,
    SHA-256(the inflated body), extra NUL; never 0."""
    h = hashlib.sha256(("fdod %s seq v1\0" % kind).encode() +
                       hashlib.sha256(body).digest() +
                       extra.encode() + b"\0").digest()
    return int.from_bytes(h[:8], "big") or 1


def test_one_service_is_one_agent(tmp_path):
    """Profiles of one service (binary=, host, labels) come as one agent,
    each with its own seq: different profiles are all stored, fdod's
    strings gain one agent, and --rate-agent applies to the service."""
    with Daemon(tmp_path / "data", extra=["--rate-agent", "0.01"]) as d:
        q = "binary=web&host=h1&labels=mode=a"
        status, a = post(d, q, small_profile(leaf=0x401000))
        assert status == 200 and not a["duplicate"], a
        # Another profile at once: the same agent, over its rate.
        status, busy = post(d, q, small_profile(leaf=0x401100))
        assert status == 503, busy
        assert "rate limit" in busy["error"], busy
    with Daemon(tmp_path / "data2") as d:
        q = "binary=web&host=h1&labels=mode=a"
        body = small_profile(leaf=0x401000)
        status, a = post(d, q, body)
        assert status == 200, a
        status, b = post(d, "labels=mode=a&host=h1&binary=web",
                         small_profile(leaf=0x401100))
        assert status == 200 and not b["duplicate"], b
        assert a["agent"] == b["agent"] and a["seq"] != b["seq"], (a, b)
        assert 1 <= a["seq"] < 2**64 and 1 <= b["seq"] < 2**64
        # The seq as docs/ingest.md defines it: a retry stays a duplicate
        # across an fdod upgrade only if it never changes.
        assert a["seq"] == import_seq("pprof", body, ""), a
        # time= is part of the seq: the same bytes stamped with time=
        # are another batch; that request again is a duplicate.
        t = str(int(time.time()))
        tq = q + "&time=" + t
        status, c = post(d, tq, body)
        assert status == 200 and not c["duplicate"], c
        assert c["seq"] == import_seq("pprof", body, t), c
        assert c["agent"] == a["agent"] and c["seq"] != a["seq"], (a, c)
        status, c2 = post(d, tq, gzip.compress(body))
        assert status == 200 and c2["duplicate"] and c2["seq"] == c["seq"]
        assert samples_stored(d, "web") == 9
        # Another host is another service.
        status, h2 = post(d, "binary=web&host=h2&labels=mode=a",
                          small_profile(leaf=0x401000))
        assert status == 200 and h2["agent"] != a["agent"], h2


def test_only_ingest_tokens_may_post(tmp_path):
    body = gzip.compress(small_profile())
    bomb = gzip.compress(b"\0" * (100 << 20), 9)
    tokfile = tmp_path / "tokens"
    tokfile.write_text("ingest-token-0123456789 ingest ci\n"
                       "read-token-012345678901 read reader\n"
                       "team-token-01234567890 ingest team binaries=web\n"
                       "host-token-01234567890 ingest hosts hosts=h1\n")
    os.chmod(tokfile, 0o600)
    with Daemon(tmp_path / "data", extra=["--tokens", str(tokfile)],
                token="read-token-012345678901") as d:
        assert post(d, "binary=hot", body, token="nope-not-a-token!!")[0] \
            == 401
        status, ans = post(d, "binary=hot", body)
        assert status == 403, ans
        status, ans = post(d, "binary=hot", body,
                           token="team-token-01234567890")
        assert status == 403 and "binaries=" in ans["error"], ans
        # binary= and host= are checked before the body is inflated: a
        # bomb outside the token's restrictions is 403, not 413.
        status, ans = post(d, "binary=hot", bomb,
                           token="team-token-01234567890")
        assert status == 403 and "binaries=" in ans["error"], ans
        status, ans = post(d, "binary=web&host=h2", bomb,
                           token="host-token-01234567890")
        assert status == 403 and "hosts=" in ans["error"], ans
        assert d.get("/v1/status")["ingest"]["batches"] == 0
        # Without binary=, the binary the profile names is checked.
        status, ans = post(d, "", body, token="team-token-01234567890")
        assert status == 200, ans
        assert d.get("/v1/status")["ingest"]["batches"] == 1
        status, ans = post(d, "binary=hot", body,
                           token="ingest-token-0123456789")
        assert status == 200, ans
        assert d.get("/v1/status")["ingest"]["batches"] == 2
