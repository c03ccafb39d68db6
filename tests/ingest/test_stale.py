"""A stale profile matched onto the next release (GET /v1/profiles/...
?for_build_id=, aggregator/stale.c): two real releases of a small program,
samples pushed over release 1's addresses, both ELF files uploaded, the
profile pulled for release 2 and checked against release 2's DWARF."""
import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from fdodtest import (FDOCTL, Daemon, batch_text, build_id, metric,
                      symbols, vaddr_to_offset)

V1 = r"""#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) unsigned leaf_a(unsigned x) { return x * 3u + 1u; }
__attribute__((noinline)) unsigned leaf_b(unsigned x) { return x ^ (x >> 3); }
__attribute__((noinline)) unsigned leaf_c(unsigned x) { return x + 7u; }
__attribute__((noinline)) unsigned leaf_d(unsigned x) { return x * 5u; }

__attribute__((noinline)) unsigned steady(unsigned x)
{
	unsigned s = leaf_a(x);
	for (unsigned i = 0; i < 100; i++)
		s = s * 31u + i; /* STEADY */
	return leaf_b(s);
}

__attribute__((noinline)) unsigned shifted(unsigned x)
{
	unsigned s = leaf_a(x);
	s = leaf_c(s);
	for (unsigned i = 0; i < 200; i++)
		s = (s ^ (s >> 7)) * 2654435761u + i; /* HOT */
	s = leaf_b(s);
	return leaf_d(s) + 1u;
}

__attribute__((noinline)) unsigned old_name(unsigned x)
{
	unsigned s = leaf_c(x);
	s = leaf_a(s);
	for (unsigned i = 0; i < 50; i++)
		s += s >> 3; /* RENAMED */
	s = leaf_b(s);
	return leaf_d(s) + leaf_c(s);
}

__attribute__((noinline)) unsigned doomed(unsigned x)
{
	unsigned s = x;
	for (unsigned i = 0; i < 30; i++)
		s = s * 7u + leaf_d(i); /* DOOMED */
	return s;
}

__attribute__((noinline)) unsigned splitme(unsigned x)
{
	unsigned s = leaf_a(x);
	for (unsigned i = 0; i < 40; i++)
		s = s * 13u + i; /* SPLIT1 */
	for (unsigned i = 0; i < 40; i++)
		s = (s >> 1) ^ (i * s); /* SPLIT2 */
	return leaf_b(s);
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 1000, s = 0;
	for (unsigned i = 0; i < n; i++)
		s += steady(i) + shifted(i) + old_name(i) + doomed(i) +
		     splitme(i);
	printf("%u\n", s);
	return 0;
}
"""


def release2(src):
    """Release 2: three lines inserted in shifted's hot path, old_name
    renamed new_name, doomed removed, splitme's second loop split out."""
    src = src.replace("""	s = leaf_c(s);
	for (unsigned i = 0; i < 200; i++)""", """	s = leaf_c(s);
	s ^= x & 1u;
	s += x >> 29;
	s ^= x >> 27;
	for (unsigned i = 0; i < 200; i++)""")
    src = src.replace("old_name", "new_name")
    a = src.index("__attribute__((noinline)) unsigned doomed")
    b = src.index("__attribute__((noinline)) unsigned splitme")
    src = src[:a] + src[b:]
    src = src.replace(""" + doomed(i) +
		     splitme(i);""", """ + splitme(i);""")
    src = src.replace("""__attribute__((noinline)) unsigned splitme(unsigned x)
{
	unsigned s = leaf_a(x);
	for (unsigned i = 0; i < 40; i++)
		s = s * 13u + i; /* SPLIT1 */
	for (unsigned i = 0; i < 40; i++)
		s = (s >> 1) ^ (i * s); /* SPLIT2 */
	return leaf_b(s);
}""", """__attribute__((noinline)) unsigned splitme_tail(unsigned s)
{
	for (unsigned i = 0; i < 40; i++)
		s = (s >> 1) ^ (i * s); /* SPLIT2 */
	return s;
}

__attribute__((noinline)) unsigned splitme(unsigned x)
{
	unsigned s = leaf_a(x);
	for (unsigned i = 0; i < 40; i++)
		s = s * 13u + i; /* SPLIT1 */
	return leaf_b(splitme_tail(s));
}""")
    return src


V2 = release2(V1)
START = 0x555555554000
CFLAGS = ["-O2", "-fdebug-info-for-profiling", "-fno-omit-frame-pointer"]


def line_of(src, marker):
    """1-based line of the first line holding marker."""
    for i, ln in enumerate(src.splitlines(), 1):
        if marker in ln:
            return i
    raise AssertionError(marker)


def offset_in(src, fn, marker):
    """marker's line offset from fn's DW_AT_decl_line (the line of its
    name), as the llvm profile keys it."""
    return line_of(src, marker) - line_of(src, " %s(unsigned" % fn)


def insn_lines(exe, fn):
    """[(vaddr, line)] of fn's instructions (objdump, then addr2line)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          "--disassemble=" + fn, exe], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    addrs = [int(m.group(1), 16)
             for m in re.finditer(r"^\s+([0-9a-f]+):", out, re.M)]
    lines = subprocess.run(["addr2line", "-e", exe] +
                           ["%x" % a for a in addrs], capture_output=True,
                           text=True, check=True, timeout=120).stdout
    res = []
    for a, ln in zip(addrs, lines.splitlines()):
        m = re.search(r":(\d+)", ln)
        res.append((a, int(m.group(1)) if m else 0))
    return res


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    d = tmp_path_factory.mktemp("stale")
    res = {}
    for name, src, extra in (("v1", V1, ["-g"]), ("v2", V2, ["-g"]),
                             ("v2nodwarf", V2 + "\n/* other */\n", []),
                             ("v1probe", V1, ["-g",
                                              "-fpseudo-probe-for-profiling"])):
        (d / (name + ".c")).write_text(src)
        exe = str(d / name)
        subprocess.run(["clang-16"] + CFLAGS + extra + ["-o", exe,
                                                        str(d / (name + ".c"))],
                       check=True, timeout=300)
        res[name] = exe
    # another program altogether, uploaded as another binary
    (d / "other.c").write_text("int main(void) { return 0; }\n")
    res["other"] = str(d / "other")
    subprocess.run(["clang-16", "-O2", "-g", "-o", res["other"],
                    str(d / "other.c")], check=True, timeout=300)
    return res


def functions(text):
    """{name: [its lines]} of an llvm text profile's top-level functions."""
    res, cur = {}, None
    for ln in text.splitlines():
        if not ln.startswith(" "):
            cur = ln.split(":")[0]
            res[cur] = [ln]
        else:
            res[cur].append(ln)
    return res


def body_counts(lines):
    """{offset: count} of a function's own lines (one space of indent)."""
    res = {}
    for ln in lines[1:]:
        m = re.match(r"^ (\d+)(?:\.\d+)?: (\d+)", ln)
        if m:
            res[int(m.group(1))] = res.get(int(m.group(1)), 0) + \
                int(m.group(2))
    return res


def pull(d, query):
    r = urllib.request.urlopen(d.http + "/v1/profiles/st?" + query,
                               timeout=60)
    return r.headers, r.read()


def push_v1(d, v1, binary="st", agent="a"):
    """Samples over release 1's hot lines (and a little of the rest)."""
    bid1 = build_id(v1)
    main = START + vaddr_to_offset(v1, symbols(v1)["main"][0] + 30)
    stacks = []
    hot = {"steady": "STEADY", "shifted": "HOT", "old_name": "RENAMED",
           "doomed": "DOOMED", "splitme": "SPLIT1"}
    src_lines = {fn: line_of(V1, m) for fn, m in hot.items()}
    for fn in hot:
        for a, ln in insn_lines(v1, fn):
            n = 40 if ln == src_lines[fn] else 2
            stacks.append((n, [START + vaddr_to_offset(v1, a), main]))
    for fn in ("leaf_a", "leaf_b", "leaf_c", "leaf_d"):
        for a, _ in insn_lines(v1, fn):
            stacks.append((3, [START + vaddr_to_offset(v1, a), main]))
    rc, out = d.push(batch_text(agent, 1, binary, bid1, stacks))
    assert rc == 0, out


def load(d, old, new, binary="st"):
    """Samples of release old, then both releases' files uploaded and
    symbolized."""
    push_v1(d, old, binary)
    for exe in (old, new):
        with open(exe, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=" + binary,
                             f.read())[0] == 201
    d.wait_pending_zero()


@pytest.fixture
def loaded(tmp_path, releases):
    v1 = releases["v1"]
    with Daemon(tmp_path / "data") as d:
        load(d, v1, releases["v2"])
        yield d, build_id(v1), build_id(releases["v2"])


Q = "format=llvm&encoding=text&counts=samples&line_count=sum"


def test_matched_onto_next_release(loaded, releases):
    d, bid1, bid2 = loaded
    _, plain = pull(d, Q)
    h, matched = pull(d, Q + "&for_build_id=" + bid2)
    assert h["X-Fdod-For-Build-Id"] == bid2
    old, new = functions(plain.decode()), functions(matched.decode())
    # Unchanged functions: byte for byte as in the plain pull.
    for fn in ("steady", "leaf_a", "leaf_b", "leaf_c", "leaf_d"):
        assert fn in old, plain.decode()
        assert new[fn] == old[fn], (fn, old[fn], new[fn])
    # shifted: its hot line moved by the 3 inserted lines, where release
    # 2's DWARF has it.
    o1, o2 = offset_in(V1, "shifted", "HOT"), offset_in(V2, "shifted", "HOT")
    assert o2 == o1 + 3
    v2lines = {ln for _, ln in insn_lines(releases["v2"], "shifted")}
    assert line_of(V2, "HOT") in v2lines
    c_old, c_new = body_counts(old["shifted"]), body_counts(new["shifted"])
    assert c_old[o1] == max(c_old.values()), c_old
    assert c_new.get(o2) == c_old[o1], (c_old, c_new)
    assert c_new.get(o1, 0) < c_old[o1] / 4, c_new
    # old_name is new_name in release 2; doomed is gone.
    assert "old_name" not in new and "new_name" in new, new.keys()
    assert body_counts(new["new_name"]) == body_counts(old["old_name"])
    assert "doomed" in old and "doomed" not in new
    # splitme's first loop stays where it was.
    o = offset_in(V1, "splitme", "SPLIT1")
    assert o == offset_in(V2, "splitme", "SPLIT1")
    assert body_counts(new["splitme"]).get(o) == \
        body_counts(old["splitme"])[o]
    # The headers: shares of the profile's counts.
    shares = {k: float(h["X-Fdod-Stale-" + k])
              for k in ("Fresh", "Matched", "Renamed", "Dropped")}
    assert abs(sum(shares.values()) - 1) < 0.01, shares
    assert shares["Renamed"] > 0 and shares["Dropped"] > 0, shares
    assert shares["Fresh"] > 0 and shares["Matched"] > 0, shares
    fns = dict(kv.split("=") for kv in
               h["X-Fdod-Stale-Functions"].split(","))
    assert fns["renamed"] == "1", fns
    assert int(fns["dropped"]) >= 1, fns
    doomed = sum(body_counts(old["doomed"]).values())
    total = sum(sum(body_counts(v).values()) for v in old.values())
    assert shares["Dropped"] >= doomed / total - 0.01, (shares, doomed,
                                                         total)
    # Without the option: the same bytes as ever (pcache keys differ).
    _, again = pull(d, Q)
    assert again == plain
    # newest: release 2 was the last build-id fdod learnt of.
    h2, body = pull(d, Q + "&for_build_id=newest")
    assert h2["X-Fdod-For-Build-Id"] == bid2 and body == matched
    # The default encoding and counts work too.
    h3, body = pull(d, "for_build_id=" + bid2)
    assert body[:1] == b"\x84" and "X-Fdod-Stale-Fresh" in h3
    h4, body = pull(d, "format=gcc&for_build_id=" + bid2)
    assert body and "X-Fdod-Stale-Dropped" in h4


def test_fdoctl_pull_for_build_id(loaded, releases, tmp_path):
    """fdoctl pull --for-build-id: the route's answer byte for byte, and
    what the matching did (the X-Fdod-Stale-* headers) on stderr."""
    d, bid1, bid2 = loaded
    flags = ["--format", "llvm", "--encoding", "text", "--counts",
             "samples", "--line-count", "sum"]
    h, want = pull(d, Q + "&for_build_id=" + bid2)
    out = tmp_path / "st.prof"
    p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http] + flags +
                       ["--for-build-id", bid2, "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p
    assert out.read_bytes() == want
    m = re.search(r"matched onto (\w+): fresh (\S+) matched (\S+) "
                  r"renamed (\S+) dropped (\S+) of the profile's counts; "
                  r"functions (\S+)\n", p.stderr)
    assert m, p.stderr
    assert m.group(1) == bid2
    for i, k in enumerate(("Fresh", "Matched", "Renamed", "Dropped"), 2):
        assert m.group(i) == h["X-Fdod-Stale-" + k], (k, p.stderr)
    assert m.group(6) == h["X-Fdod-Stale-Functions"], p.stderr
    # newest, to stdout: the same profile, the same report.
    p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http] + flags +
                       ["--for-build-id", "newest"], capture_output=True,
                       timeout=120)
    assert p.returncode == 0 and p.stdout == want, p.stderr
    assert ("matched onto " + bid2).encode() in p.stderr, p.stderr
    # Without it: the plain profile, and no report.
    _, plain = pull(d, Q)
    p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http] + flags,
                       capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout == plain, p.stderr
    assert b"matched onto" not in p.stderr, p.stderr
    # The route's refusals: exit 1 with its reason.
    for extra, why in ((["--for-build-id", "XYZ"], "not lowercase hex"),
                       (["--format", "folded", "--for-build-id", bid2],
                        "llvm and gcc"),
                       (["--for-build-id", "ab" * 20], "no such build-id")):
        p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http] + extra,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 1 and why in p.stderr, (extra, p)
        assert "matched onto" not in p.stderr, p.stderr


def test_bad_for_build_id(loaded, releases):
    d, bid1, bid2 = loaded
    # not hex
    st, body = d.request("GET", "/v1/profiles/st?for_build_id=xyz")
    assert st == 400 and b"not lowercase hex" in body, body
    # a format that is not matched
    st, body = d.request("GET", "/v1/profiles/st?format=folded&for_build_id="
                         + bid2)
    assert st == 400 and b"llvm and gcc" in body, body
    # unknown build-id
    st, body = d.request("GET", "/v1/profiles/st?for_build_id=" + "ab" * 20)
    assert st == 404 and b"no such build-id" in body, body
    # a build of another binary
    with open(releases["other"], "rb") as f:
        assert d.request("PUT", "/v1/symbols?binary=other",
                         f.read())[0] == 201
    st, body = d.request("GET", "/v1/profiles/st?for_build_id=" +
                         build_id(releases["other"]))
    assert st == 409 and b"build of 'other'" in body, body
    # fdoctl pull: that 409 is no "not ready yet" (exit 3): waiting will
    # not change it, so it exits 1.
    p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http,
                        "--for-build-id", build_id(releases["other"])],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "build of 'other'" in p.stderr, p
    # a release without DWARF
    with open(releases["v2nodwarf"], "rb") as f:
        assert d.request("PUT", "/v1/symbols?binary=st", f.read())[0] == 201
    st, body = d.request("GET", "/v1/profiles/st?for_build_id=" +
                         build_id(releases["v2nodwarf"]))
    assert st == 422 and b"no DWARF" in body, body
    # the plain pull is unaffected by all of it
    st, _ = d.request("GET", "/v1/profiles/st?" + Q)
    assert st == 200


def staleness(d):
    st, body = d.request("GET", "/v1/binaries/st")
    assert st == 200, body
    return json.loads(body)["staleness"]


def fresh_gauge(d):
    """fdod_profile_fresh_share{binary="st"}, or None when absent."""
    st, body = d.request("GET", "/metrics")
    assert st == 200
    m = re.search(r'^fdod_profile_fresh_share\{binary="st"\} (\S+)$',
                  body.decode(), re.M)
    return float(m.group(1)) if m else None


def test_staleness_score(loaded, releases):
    d, bid1, bid2 = loaded
    assert fresh_gauge(d) is None  # /metrics never computes one
    s = staleness(d)
    # The score is the fresh share of the default pull for the newest
    # release: its header says the same.
    h, _ = pull(d, "for_build_id=newest")
    fresh = float(h["X-Fdod-Stale-Fresh"])
    assert s["reason"] is None, s
    assert s["newest_build_id"] == bid2 and s["releases"] == 2, s
    assert s["fresh_share"] == pytest.approx(fresh, abs=1e-4), (s, fresh)
    assert 0 < s["fresh_share"] < 1, s
    for k in ("Matched", "Renamed", "Dropped"):
        assert s[k.lower() + "_share"] == pytest.approx(
            float(h["X-Fdod-Stale-" + k]), abs=1e-4), (k, s)
    assert s["functions"]["renamed"] == 1, s
    assert bid1 in s["profile_build_ids"], s
    assert s["profile_samples"] == int(h["X-Fdod-Samples"]), s
    # Kept: asked again, nothing is built.
    builds = metric(d, "fdod_profile_builds_total")
    assert staleness(d) == s
    assert metric(d, "fdod_profile_builds_total") == builds
    # /metrics has it now.
    assert fresh_gauge(d) == pytest.approx(s["fresh_share"], abs=1e-4)
    # A minimum below the score passes, above it fails with the figures.
    lo, hi = "%.4f" % (fresh / 2), "%.4f" % ((fresh + 1) / 2)
    st, body = d.request("GET", "/v1/profiles/st?" + Q +
                         "&min_fresh_share=" + lo)
    assert st == 200, (lo, body)
    st, body = d.request("GET", "/v1/profiles/st?" + Q +
                         "&min_fresh_share=" + hi)
    assert st == 409, body
    ans = json.loads(body)
    assert ans["failed"][0]["rule"] == "min_fresh_share", ans
    assert ans["failed"][0]["have"] == pytest.approx(fresh, abs=1e-4), ans
    assert ans["failed"][0]["need"] == pytest.approx(float(hi)), ans
    st, body = d.request("GET", "/v1/binaries/st/readiness?min_fresh_share="
                         + hi)
    r = json.loads(body)
    assert st == 200 and r["all"]["ready"] is False, r
    assert [f["rule"] for f in r["all"]["failed"]] == ["min_fresh_share"], r
    assert r["rules"]["min_fresh_share"] == pytest.approx(float(hi)), r
    assert r["staleness"]["fresh_share"] == s["fresh_share"], r
    st, body = d.request("GET", "/v1/binaries/st/readiness?min_fresh_share="
                         + lo)
    r = json.loads(body)
    assert st == 200 and r["all"]["ready"] is True, r
    # fdoctl pull --min-fresh-share: not ready is exit 3, the rule named.
    p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http,
                        "--min-fresh-share", hi], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 3 and "min_fresh_share" in p.stderr, p
    # Bad minimums: 400 with the reason, nothing built.
    for bad in ("1.5", "-0.1", "x", "", "nan"):
        st, body = d.request("GET", "/v1/profiles/st?min_fresh_share=" + bad)
        assert st == 400 and b"min_fresh_share" in body, (bad, body)


def test_staleness_unavailable(tmp_path, releases):
    v1 = releases["v1"]
    with Daemon(tmp_path / "data",
                extra=["--min-fresh-share", "0.5"]) as d:
        push_v1(d, v1)
        with open(v1, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=st",
                             f.read())[0] == 201
        d.wait_pending_zero()
        # One release: null with the reason, not 0.
        s = staleness(d)
        assert s["fresh_share"] is None and s["releases"] == 1, s
        assert "only one release" in s["reason"], s
        # Nothing is stale in the only release: the configured minimum
        # does not refuse its pulls.
        st, body = d.request("GET", "/v1/profiles/st?" + Q)
        assert st == 200, body
        # A newest release without DWARF (a build not uploaded yet, or a
        # stray local build of the same name): the score is of the
        # newest release with both files (v1), and the reason says why.
        with open(releases["v2nodwarf"], "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=st",
                             f.read())[0] == 201
        s = staleness(d)
        assert s["releases"] == 2, s
        assert s["newest_build_id"] == build_id(releases["v2nodwarf"]), s
        assert s["judged_build_id"] == build_id(v1), s
        assert s["fresh_share"] == 1.0, s
        assert "no DWARF" in s["reason"], s
        assert build_id(v1) in s["reason"], s
        # ... so the configured minimum does not refuse the fleet's
        # pulls and publishes for it.
        st, body = d.request("GET", "/v1/profiles/st?" + Q)
        assert st == 200, body
        st, body = d.request("POST", "/v1/profiles/st/publish")
        assert st == 201, body
        r = json.loads(d.request("GET", "/v1/binaries/st/readiness")[1])
        assert r["all"]["ready"] is True, r
        assert r["staleness"]["judged_build_id"] == build_id(v1), r
        # An unknown binary is 404, not a 409 "not ready".
        st, body = d.request("GET", "/v1/profiles/nosuch?" + Q)
        assert st == 404, body


def test_staleness_none_uploaded(tmp_path, releases):
    """No release has its executable and DWARF: no score, the rule
    refuses (409) with the reason."""
    v1 = releases["v1"]
    with Daemon(tmp_path / "data",
                extra=["--min-fresh-share", "0.5"]) as d:
        push_v1(d, v1)
        with open(releases["v2nodwarf"], "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=st",
                             f.read())[0] == 201
        d.wait_pending_zero()
        s = staleness(d)
        assert s["fresh_share"] is None and s["releases"] == 2, s
        assert "no DWARF" in s["reason"], s
        assert fresh_gauge(d) is None
        st, body = d.request("GET", "/v1/profiles/st?" + Q)
        assert st == 409, body
        f = json.loads(body)["failed"][0]
        assert f["rule"] == "min_fresh_share" and f["have"] is None, f
        assert "no DWARF" in f["reason"], f
        st, body = d.request("POST", "/v1/profiles/st/publish")
        assert st == 409 and b"min_fresh_share" in body, body


def test_bad_min_fresh_share_option(tmp_path):
    d = Daemon(tmp_path / "data", extra=["--min-fresh-share", "2"])
    with pytest.raises(AssertionError, match="min-fresh-share must be"):
        with d:
            pass


def test_budget_refuses_the_shapes(tmp_path, releases):
    """The releases' shapes count in the memory budget's builds part: with
    a part too small for them a for_build_id= pull is 503 (without
    Retry-After: alone in the part, no wait helps) rather than growing
    past it, and a
    min_fresh_share rule passes that 503 through (pull, readiness,
    publish) instead of calling the profile not ready."""
    v1 = releases["v1"]
    # 16 KiB left to the parts the options do not set: the builds part
    # gets 2/15 of it (docs/operations.md#the-memory-budget), 2184 bytes,
    # less than either release's shapes (release 1's table of its names
    # alone about 13 KB, release 2's shapes 3 KB at their scan's peak), so
    # the refusal does not hang on the size of the profile itself.
    with Daemon(tmp_path / "data",
                extra=["--memory-budget", str((16 << 20) + (16 << 10)),
                       "--http-body-memory", "16M"]) as d:
        load(d, v1, releases["v2"])
        bid2 = build_id(releases["v2"])
        st, body = d.request("GET", "/metrics")
        cap = int(re.search(r'^fdod_memory_budget_bytes\{part="builds"\} '
                            r'(\d+)$', body.decode(), re.M).group(1))
        assert cap == (16 << 10) * 2 // 15, cap
        refused = metric(d, "fdod_memory_refused_pulls_total")
        # A plain pull goes into the empty part whatever its size.
        st, plain = d.request("GET", "/v1/profiles/st?" + Q)
        assert st == 200, plain
        req = urllib.request.Request(d.http + "/v1/profiles/st?" + Q +
                                     "&for_build_id=" + bid2)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=60)
        body = e.value.read().decode()
        assert e.value.code == 503, body
        # Alone in the part: waiting will not make room, so no
        # Retry-After and no "retry later" (a part others hold too is
        # busy: common/mem.h fdo_mem_try_take).
        assert "Retry-After" not in e.value.headers, e.value.headers
        m = re.search(r"matching the releases' code \(their shapes, then "
                      r"call-site tables\) would take the memory budget's "
                      r"builds part to (\d+) bytes, over its (\d+)", body)
        assert m and int(m.group(2)) == cap < int(m.group(1)), body
        assert "--memory-budget" in body and "even with nothing else in " \
            "the part: raise it" in body and "retry later" not in body, body
        assert metric(d, "fdod_memory_refused_pulls_total") == refused + 1
        # Nothing is left counted in the part once the pull is over.
        st, body = d.request("GET", "/metrics")
        assert re.search(r'^fdod_memory_bytes\{part="builds"\} 0$',
                         body.decode(), re.M), body.decode()
        # The score is that pull: no score now, the reason says why, and
        # a rule answers the 503 itself.
        s = staleness(d)
        assert s["fresh_share"] is None and "builds part" in s["reason"], s
        for method, path in (
                ("GET", "/v1/profiles/st?" + Q + "&min_fresh_share=0.1"),
                ("GET", "/v1/binaries/st/readiness?min_fresh_share=0.1"),
                ("POST", "/v1/profiles/st/publish?min_fresh_share=0.1")):
            st, body = d.request(method, path)
            assert st == 503, (path, st, body)
            assert b"builds part" in body, (path, body)
        # fdoctl pull: an error (exit 1), not "not ready" (3).
        p = subprocess.run([FDOCTL, "pull", "st", "--http", d.http,
                            "--for-build-id", bid2], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 1 and "HTTP 503" in p.stderr, p
        # Nothing was published, and the plain pull is unchanged.
        st, body = d.request("GET", "/v1/profiles/st/versions")
        assert json.loads(body)["versions"] == [], body
        assert d.request("GET", "/v1/profiles/st?" + Q)[1] == plain


def test_old_release_shapes_for_the_profile_only(tmp_path, releases):
    """Shapes are gathered for the functions the matching can read: an
    old release's for the profile's names, the target's for those and the
    names no old release has (rename candidates); every other function
    only as a name. The answers are the same as ever (the other tests);
    the debug log says how many functions of how many have shapes."""
    v1, v2 = releases["v1"], releases["v2"]
    with Daemon(tmp_path / "data", extra=["--log-level", "debug"]) as d:
        load(d, v1, v2)
        _, plain = pull(d, Q)
        h, _ = pull(d, Q + "&for_build_id=" + build_id(v2))
        with open(d.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
    n = {}
    for m in re.finditer(r"stale: shapes of \S*?([0-9a-f]{40})\S*: (\d+) "
                         r"functions, \d+ bytes \(\d+ at the scan's "
                         r"peak\) of (\d+) with lines", log):
        n[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    old, new = n.get(build_id(v1)), n.get(build_id(v2))
    assert old is not None and new is not None, log[-3000:]
    named = functions(plain.decode())
    # main, libc's start files and the like have lines but no samples.
    assert 0 < old[0] <= len(named) < old[1], (old, named)
    assert 0 < new[0] < new[1], new
    # The target's: the profile's names it still has, and the renamed
    # function's new name (found: the rename test).
    assert new[0] <= len(named) + 1, (new, named)
    fns = dict(kv.split("=") for kv in
               h["X-Fdod-Stale-Functions"].split(","))
    assert fns["renamed"] == "1", fns


def test_two_old_releases(tmp_path, releases):
    """A window with samples of two older releases (release 1 as built,
    and at -O1): both releases' shapes are made, each function matched
    from one of them, and the target's rename candidates are the names
    neither has (the renamed function still found)."""
    v1, v2 = releases["v1"], releases["v2"]
    v1o1 = str(tmp_path / "v1o1")
    (tmp_path / "v1o1.c").write_text(V1)
    subprocess.run(["clang-16"] + CFLAGS + ["-g", "-O1", "-o", v1o1,
                                            str(tmp_path / "v1o1.c")],
                   check=True, timeout=300)
    with Daemon(tmp_path / "data", extra=["--log-level", "debug"]) as d:
        push_v1(d, v1)
        push_v1(d, v1o1, agent="b")
        for exe in (v1, v1o1, v2):
            with open(exe, "rb") as f:
                assert d.request("PUT", "/v1/symbols?binary=st",
                                 f.read())[0] == 201
        d.wait_pending_zero()
        h, body = pull(d, Q + "&for_build_id=" + build_id(v2))
        with open(d.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
    (tmp_path / "matched.prof").write_bytes(body)  # compared by hand
    new = functions(body.decode())
    assert "old_name" not in new and "doomed" not in new, new
    assert "steady" in new and "shifted" in new, new
    fns = dict(kv.split("=") for kv in
               h["X-Fdod-Stale-Functions"].split(","))
    assert fns["renamed"] == "1" and int(fns["dropped"]) >= 1, fns
    shares = [float(h["X-Fdod-Stale-" + k])
              for k in ("Fresh", "Matched", "Renamed", "Dropped")]
    assert abs(sum(shares) - 1) < 0.01, shares
    made = set(re.findall(r"stale: shapes of \S*?([0-9a-f]{40})\S*: \d+ "
                          r"functions", log))
    assert made == {build_id(v1), build_id(v1o1), build_id(v2)}, log[-3000:]


def test_probe_based_refused(tmp_path, releases):
    """A probe-based profile (a build with -fpseudo-probe-for-profiling,
    counts=blocks) cannot be matched: 422, and the answer says why."""
    v1p = releases["v1probe"]
    with Daemon(tmp_path / "data") as d:
        load(d, v1p, releases["v2"], binary="pr")
        st, body = d.request("GET", "/v1/profiles/pr?format=llvm&"
                             "encoding=text")
        assert st == 200 and b"!CFGChecksum" in body, body[:500]
        st, body = d.request("GET", "/v1/profiles/pr?for_build_id=" +
                             build_id(releases["v2"]))
        assert st == 422, body
        for why in (b"probe-based", b"-fpseudo-probe-for-profiling",
                    b"checksum", b"counts=samples"):
            assert why in body, (why, body)
        # counts=samples is line-based whatever the build: matched.
        st, body = d.request("GET", "/v1/profiles/pr?counts=samples&"
                             "for_build_id=" + build_id(releases["v2"]))
        assert st == 200, body
