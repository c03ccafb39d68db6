"""The operator web page (GET /) in headless Chromium, against the real
daemon with a symbolized profile: what the DOM shows (binaries, build-ids,
symbol state, backlog, readiness with the failing rule, versions, the
flame graph), what the screenshot looks like (decoded here: no PIL), and
interaction over the DevTools protocol: a real click zooms, typing in the
search box highlights, the token form unlocks a daemon with --tokens.

Chromium must be installed (deploy/install-deps.sh): without it every test
here fails, never skips.
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import Daemon, batch_text, build_id, symbols, \
    vaddr_to_offset  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
BASE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--no-first-run",
              "--disable-extensions", "--hide-scrollbars",
              "--force-device-scale-factor=1", "--mute-audio"]

PROG = r"""
#include <stdio.h>
__attribute__((noinline)) unsigned web_hot_loop(unsigned x) {
    for (unsigned i = 0; i < 1000; i++) x = x * 2654435761u + i;
    return x;
}
__attribute__((noinline)) unsigned web_cold_path(unsigned x) {
    return x ^ 0x5a5a;
}
int main(int argc, char **argv) {
    unsigned s = 0;
    for (int i = 0; i < 100; i++) s += web_hot_loop(i) + web_cold_path(i);
    printf("%u\n", s);
    return 0;
}
"""
START = 0x555555554000
# (labels, host, hot samples, cold samples): 1500 hot, 300 cold in all;
# mode=batch alone has 500 samples, under the default --min-samples 1000.
BATCHES = [("mode=serving", "h1", 1200, 100), ("mode=batch", "h2", 300, 200)]
NOSYM_BID = "feed" * 10  # a build-id whose symbols never arrive


@pytest.fixture(scope="module", autouse=True)
def chromium():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail("chromium not found at %s: install it "
                    "(deploy/install-deps.sh) or set $CHROMIUM" % CHROMIUM)
    return CHROMIUM


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    d = tmp_path_factory.mktemp("webprog")
    (d / "p.c").write_text(PROG)
    exe = str(d / "p")
    subprocess.run(["clang-16", "-O2", "-g", "-fno-omit-frame-pointer",
                    "-o", exe, str(d / "p.c")], check=True, timeout=120)
    return exe


def rt(exe, name, delta):
    return START + vaddr_to_offset(exe, symbols(exe)[name][0] + delta)


def load(d, exe, with_symbols=True):
    """Two label sets of webapp (symbolized), one batch of webnosym."""
    bid = build_id(exe)
    hot, cold = rt(exe, "web_hot_loop", 8), rt(exe, "web_cold_path", 1)
    main = rt(exe, "main", 30)
    for seq, (label, host, h, c) in enumerate(BATCHES, 1):
        rc, out = d.push(batch_text("web", seq, "webapp", bid,
                                    [(h, [hot, main]), (c, [cold, main])],
                                    labels=[label], host=host))
        assert rc == 0, out
    rc, out = d.push(batch_text("web2", 1, "webnosym", NOSYM_BID,
                                [(7, [START + 0x1234])]))
    assert rc == 0, out
    if with_symbols:
        with open(exe, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=webapp",
                             f.read())[0] == 201
        d.wait_pending_zero()
    return bid


@pytest.fixture(scope="module")
def site(tmp_path_factory, prog):
    tmp = tmp_path_factory.mktemp("web")
    with Daemon(tmp / "data") as d:
        bid = load(d, prog)
        status, body = d.request("POST",
                                 "/v1/profiles/webapp/publish?format=llvm",
                                 b"")
        assert status == 201, body
        yield d, bid, json.loads(body)["id"], tmp


# ------------------------------------------------------------ chromium --

def run_chromium(args, tmp, timeout=90):
    """Run headless chromium to completion in its own process group (so
    every helper process it forks goes too). Returns stdout."""
    ud = tmp / ("chrome-profile-%d" % time.monotonic_ns())
    p = subprocess.Popen([CHROMIUM] + BASE_FLAGS +
                         ["--user-data-dir=%s" % ud] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise AssertionError("chromium did not finish in %ds" % timeout)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


def dump_dom(url, tmp):
    dom = run_chromium(["--virtual-time-budget=20000", "--dump-dom", url],
                       tmp)
    assert "data-rendered" in dom, "the page's script never finished:\n" + \
        dom[-3000:]
    return dom


def row(dom, attr, value):
    """The inner HTML of the first <tr> whose attr is value."""
    m = re.search(r'<tr[^>]*\b%s="%s"[^>]*>(.*?)</tr>' %
                  (re.escape(attr), re.escape(value)), dom, re.S)
    assert m, "no row with %s=%r" % (attr, value)
    return m.group(0)


def frames(dom):
    """{data-path: <g> start tag} of the drawn flame graph frames."""
    return {m.group(2): m.group(0) for m in re.finditer(
        r'<g class="frame[^"]*" data-name="([^"]*)" data-path="([^"]*)"',
        dom)}


# ----------------------------------------------------------------- PNG --

def png_decode(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    i, idat = 8, b""
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        chunk = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB",
                                                                chunk)
            assert depth == 8 and ctype in (2, 6) and not interlace
        elif kind == b"IDAT":
            idat += chunk
        i += 12 + n
    bpp = 4 if ctype == 6 else 3
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pr) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def warm(px):
    """A frame color of the page's flame palette (not grey unknowns)."""
    r, g, b = px
    return r >= 200 and 70 <= g <= 235 and b <= 60


def longest_run(row, pred):
    best = run = 0
    for px in row:
        run = run + 1 if pred(px) else 0
        best = max(best, run)
    return best


# ------------------------------------------------- DevTools protocol ----

class CDP:
    """Chromium with --remote-debugging-port=0 and a minimal client of the
    DevTools protocol over a websocket (RFC 6455, client side: masked
    frames out, unmasked in)."""

    def __init__(self, url, tmp, size=(1200, 1000), timeout=120):
        self.ud = tmp / ("cdp-profile-%d" % time.monotonic_ns())
        self.proc = subprocess.Popen(
            [CHROMIUM] + BASE_FLAGS + ["--user-data-dir=%s" % self.ud,
                                       "--remote-debugging-port=0",
                                       "--window-size=%d,%d" % size, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.deadline = time.time() + timeout
        self.sock = None
        self.next_id = 1
        try:
            self._connect(url)
        except BaseException:
            self.close()
            raise

    def _connect(self, url):
        port_file = self.ud / "DevToolsActivePort"
        while not (port_file.exists() and
                   port_file.read_text().count("\n") >= 1):
            assert self.proc.poll() is None, "chromium exited early"
            assert time.time() < self.deadline, "no DevToolsActivePort"
            time.sleep(0.1)
        port = int(port_file.read_text().split("\n")[0])
        ws = None
        while ws is None:
            assert time.time() < self.deadline, "no page target"
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" %
                                        port, timeout=10) as r:
                for t in json.load(r):
                    if t.get("type") == "page" and \
                            t.get("url", "").startswith(url.split("#")[0]):
                        ws = t["webSocketDebuggerUrl"]
            if ws is None:
                time.sleep(0.1)
        path = ws.split("127.0.0.1:%d" % port, 1)[1]
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" %
                           (path, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "websocket handshake: connection closed"
            head += chunk
        assert head.split(b" ")[1] == b"101", head

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            self.sock.settimeout(max(0.1, self.deadline - time.time()))
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "devtools connection closed"
            buf += chunk
        return buf

    def _send(self, text):
        payload = text.encode()
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4]
                                              for i, b in
                                              enumerate(payload)))

    def _recv(self):
        msg = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n, = struct.unpack(">H", self._recv_exact(2))
            elif n == 127:
                n, = struct.unpack(">Q", self._recv_exact(8))
            mask = self._recv_exact(4) if b1 & 0x80 else None
            data = self._recv_exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0F
            assert op != 0x8, "devtools closed the websocket"
            if op in (0x0, 0x1):
                msg += data
                if b0 & 0x80:
                    return json.loads(msg)

    def call(self, method, **params):
        mid = self.next_id
        self.next_id += 1
        self._send(json.dumps({"id": mid, "method": method,
                               "params": params}))
        while True:
            m = self._recv()
            if m.get("id") == mid:
                assert "error" not in m, (method, m["error"])
                return m.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr,
                      returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, (expr, r["exceptionDetails"])
        return r["result"].get("value")

    def wait(self, expr, what, timeout=20):
        """Until expr is truthy (an exception, e.g. while the page is
        still loading, counts as not yet)."""
        end = min(self.deadline, time.time() + timeout)
        while True:
            r = self.call("Runtime.evaluate", expression=expr,
                          returnByValue=True, awaitPromise=True)
            v = None if "exceptionDetails" in r else \
                r["result"].get("value")
            if v:
                return v
            assert time.time() < end, "timed out waiting for " + what
            time.sleep(0.1)

    def click(self, selector):
        """A real mouse click (press + release) at the middle of the
        element's box, as a user's."""
        box = self.js("(() => { const e = document.querySelector(%s);"
                      " e.scrollIntoView({block: 'center'});"
                      " const r = e.getBoundingClientRect();"
                      " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                      % json.dumps(selector))
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0],
                      y=box[1], button="left", clickCount=1)

    def type(self, selector, text):
        self.js("document.querySelector(%s).focus()" % json.dumps(selector))
        self.call("Input.insertText", text=text)

    def close(self):
        if self.sock:
            self.sock.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


# --------------------------------------------------------------- tests --

def test_page_is_self_contained(site):
    d, _, _, _ = site
    with urllib.request.urlopen(d.http + "/", timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        html = r.read().decode()
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    # No external script, style, font or image: nothing is loaded by URL
    # but fdod's own routes.
    assert not re.search(r'<(script|link|img|iframe)[^>]*\b(src|href)='
                         r'"(https?:)?//', html), "external resource"
    assert "@import" not in html and "@font-face" not in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    with urllib.request.urlopen(d.http + "/", timeout=30) as r2:
        assert r2.read().decode() == html


def test_readiness_route(site):
    d, _, _, _ = site
    rd = d.get("/v1/binaries/webapp/readiness")
    assert rd["binary"] == "webapp" and rd["symbols"] is True
    assert rd["rules"] == {"min_samples": 1000, "min_hosts": 1,
                           "min_span": 0, "min_fresh_share": 0,
                           "window": 0}
    assert rd["all"]["ready"] and rd["all"]["samples"] == 1800
    assert rd["all"]["hosts"] == 2 and rd["all"]["failed"] == []
    sets = {l["labels"]: l for l in rd["label_sets"]}
    assert set(sets) == {"mode=serving", "mode=batch"}
    assert sets["mode=serving"]["ready"] and \
        sets["mode=serving"]["samples"] == 1300
    b = sets["mode=batch"]
    assert not b["ready"] and b["samples"] == 500 and b["own_samples"] == 500
    assert b["failed"] == [{"rule": "min_samples", "have": 500,
                            "need": 1000}]
    # The same verdict as a pull with labels= gives.
    status, body = d.request("GET", "/v1/profiles/webapp?labels=mode:batch")
    assert status == 409 and json.loads(body)["failed"] == b["failed"]
    assert d.request("GET", "/v1/profiles/webapp?labels=mode:serving")[0] \
        == 200
    # The pull's overrides apply.
    rd = d.get("/v1/binaries/webapp/readiness?min_samples=10&min_hosts=3")
    assert [f["rule"] for f in rd["all"]["failed"]] == ["min_hosts"]
    assert d.request("GET", "/v1/binaries/nope/readiness")[0] == 404
    assert d.request("GET", "/v1/binaries/webapp/readiness?window=x")[0] \
        == 400
    nosym = d.get("/v1/binaries/webnosym/readiness")
    assert nosym["symbols"] is False and not nosym["all"]["ready"]
    assert nosym["label_sets"][0]["labels"] == ""


def test_dom_shows_everything(site):
    d, bid, version, tmp = site
    dom = dump_dom(d.http + "/", tmp)
    # Binaries; the first one is selected by default.
    assert 'class="selected" data-binary="webapp"' in dom
    assert 'data-binary="webnosym"' in dom
    # Its build-id and symbol state.
    r = row(dom, "data-build-id", bid)
    assert 'data-symbols="executable+debuginfo"' in r
    # Its staleness score: none with one release, and why.
    assert re.search(r'<p id="staleness"[^>]*>Staleness: no score \(only '
                     r'one release', dom), dom[:3000]
    # Backlog: the build-id without symbols waits with its address.
    pending = re.search(r'<table id="pending".*?</table>', dom, re.S)
    assert pending and NOSYM_BID in pending.group(0), dom[:3000]
    assert "addresses waiting for symbols" in dom
    # Readiness per label set, with the rule that is not met.
    assert 'data-ready="true"' in row(dom, "data-labels", "*")
    assert 'data-ready="true"' in row(dom, "data-labels", "mode=serving")
    r = row(dom, "data-labels", "mode=batch")
    assert 'data-ready="false"' in r
    assert "not ready: min_samples 500 &lt; 1,000" in r
    # The published version.
    assert 'data-version="%s"' % version in dom
    # The releases view: webapp's one build-id is release 1, with its
    # CPU per host-hour; no comparison yet.
    rel = re.search(r'<table id="releases".*?</table>', dom, re.S)
    assert rel and 'data-release="1"' in rel.group(0), dom[:3000]
    assert bid in rel.group(0)
    assert re.search(r'<p id="relcmp"></p>', dom), dom[:3000]
    # The flame graph: the root and the hottest function under main.
    f = frames(dom)
    assert "" in f and 'data-name="all"' in f[""]
    assert "main;web_hot_loop" in f and "main;web_cold_path" in f
    assert 'data-root-samples="1800"' in dom
    m = re.search(r'data-path="main;web_hot_loop"><title>([^<]*)</title>',
                  dom)
    assert m and m.group(1).startswith("web_hot_loop (1,500 samples,"), m
    err = re.search(r'<div id="error"[^>]*>(.*?)</div>', dom, re.S)
    assert err and err.group(1) == "", err


# Release 2 of PROG: web_hot_loop edited (two lines inserted), the rest
# unchanged; release 3 is release 2 built without DWARF (a build the
# pipeline has not uploaded in full, as fdod sees it).
PROG2 = PROG.replace("""    for (unsigned i = 0; i < 1000; i++) x = x * 2654435761u + i;""",
                     """    x ^= x >> 3;
    x += 17u;
    for (unsigned i = 0; i < 1000; i++) x = x * 2654435761u + i;""")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """webrel's releases: v1 (PROG), v2 (PROG2), v3 (v2 without DWARF)."""
    assert PROG2 != PROG
    d = tmp_path_factory.mktemp("webrel")
    exes = {}
    for name, src, g in (("v1", PROG, ["-g"]), ("v2", PROG2, ["-g"]),
                         ("v3", PROG2 + "/* v3 */\n", [])):
        (d / (name + ".c")).write_text(src)
        exes[name] = str(d / name)
        subprocess.run(["clang-16", "-O2", "-fno-omit-frame-pointer"] + g +
                       ["-o", exes[name], str(d / (name + ".c"))],
                       check=True, timeout=120)
    return exes, {k: build_id(v) for k, v in exes.items()}


def load_releases(d, exes, bids):
    """Samples of v1 and v2 in two closed hours of one host, both
    releases' files uploaded and symbolized."""
    hour = int(time.time()) // 3600 * 3600
    for seq, (name, t0, hot, cold) in enumerate(
            (("v1", hour - 3 * 3600 + 60, 1200, 300),
             ("v2", hour - 3600 + 60, 600, 100)), 1):
        exe = exes[name]
        rc, out = d.push(batch_text(
            "rel", seq, "webrel", bids[name],
            [(hot, [rt(exe, "web_hot_loop", 8), rt(exe, "main", 30)]),
             (cold, [rt(exe, "web_cold_path", 1), rt(exe, "main", 30)])],
            labels=["mode=serving"], host="h1", t0=t0))
        assert rc == 0, out
    for name in ("v1", "v2"):
        with open(exes[name], "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=webrel",
                             f.read())[0] == 201
    d.wait_pending_zero()


def test_dom_staleness_and_releases(tmp_path, releases):
    """Two releases of a binary with samples in closed hours: the page
    shows the staleness score with the release it judged (marked among
    the build-ids), the releases table and the comparison; once a newest
    release without DWARF appears, it names both and says why."""
    exes, bids = releases
    with Daemon(tmp_path / "data") as d:
        load_releases(d, exes, bids)
        sc = d.get("/v1/binaries/webrel")["staleness"]
        assert sc["fresh_share"] is not None, sc
        assert sc["judged_build_id"] == sc["newest_build_id"] == bids["v2"]
        rel = d.get("/v1/binaries/webrel/releases")
        cmp_text = rel["comparisons"][0]["text"]
        assert cmp_text.startswith("release 2 ("), rel

        dom = dump_dom(d.http + "/#binary=webrel", tmp_path)
        m = re.search(r'<p id="staleness"([^>]*)>([^<]*)</p>', dom)
        assert m, dom[:3000]
        attrs, text = m.group(1), m.group(2)
        assert float(re.search(r'data-fresh="([^"]*)"', attrs).group(1)) \
            == sc["fresh_share"], attrs
        assert 'data-judged="%s"' % bids["v2"] in attrs, attrs
        m = re.match(r"Staleness: ([\d.]+)% of the profile's ([\d,]+) "
                     r"samples are from functions unchanged in release "
                     r"(\w+) \(the newest\); matched ([\d.]+)%, renamed "
                     r"([\d.]+)%, dropped ([\d.]+)%", text)
        assert m, text
        # JavaScript's toFixed(1) rounds the exact value's half up.
        for v, k in zip(m.group(1, 4, 5, 6), ("fresh", "matched", "renamed",
                                              "dropped")):
            assert abs(float(v) - 100 * sc[k + "_share"]) <= 0.05 + 1e-9, \
                (k, text)
        assert m.group(2).replace(",", "") == str(sc["profile_samples"])
        assert m.group(3) == bids["v2"][:16], text
        fn = sc["functions"]
        assert "(functions: %d fresh, %d matched," % (
            fn["fresh"], fn["matched"]) in text, text
        assert "Not the newest" not in text, text
        assert 'data-role="newest, judged"' in row(dom, "data-build-id",
                                                   bids["v2"])
        assert 'data-role=""' in row(dom, "data-build-id", bids["v1"])
        # The releases view: both releases, the comparison's text.
        for n, name in ((1, "v1"), (2, "v2")):
            r = row(dom, "data-release", str(n))
            assert bids[name] in r and "none published before it" in r, r
        m = re.search(r'<p id="relcmp">(.*?)</p>', dom, re.S)
        assert m and 'data-release="2"' in m.group(1), dom[:3000]
        assert cmp_text.replace("&", "&amp;") in m.group(1), m.group(1)

        # A newest release without DWARF: the score stays release 2's,
        # and the page says which release it judged and why.
        with open(exes["v3"], "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=webrel",
                             f.read())[0] == 201
        sc = d.get("/v1/binaries/webrel")["staleness"]
        assert sc["newest_build_id"] == bids["v3"], sc
        assert sc["judged_build_id"] == bids["v2"], sc
        dom = dump_dom(d.http + "/#binary=webrel", tmp_path)
        m = re.search(r'<p id="staleness"([^>]*)>([^<]*)</p>', dom)
        attrs, text = m.group(1), m.group(2)
        assert 'data-judged="%s"' % bids["v2"] in attrs, attrs
        assert 'data-newest="%s"' % bids["v3"] in attrs, attrs
        assert "unchanged in release %s;" % bids["v2"][:16] in text, text
        assert text.endswith(" Not the newest: %s." % sc["reason"]), text
        assert "no DWARF" in sc["reason"] and bids["v3"] in sc["reason"], sc
        assert 'data-role="newest"' in row(dom, "data-build-id", bids["v3"])
        assert 'data-role="judged"' in row(dom, "data-build-id", bids["v2"])


def test_dom_readiness_refused_for_now(tmp_path, releases):
    """With --min-fresh-share and a memory budget too small for the
    score's matching, readiness answers the score's 503 (docs/http.md):
    the page shows it where readiness goes, and everything else as
    always (build-ids, the staleness score's reason, the releases)."""
    exes, bids = releases
    with Daemon(tmp_path / "data",
                extra=["--min-fresh-share", "0.5", "--memory-budget",
                       str((16 << 20) + (16 << 10)), "--http-body-memory",
                       "16M"]) as d:
        load_releases(d, exes, bids)
        st, body = d.request("GET", "/v1/binaries/webrel/readiness")
        assert st == 503 and b"builds part" in body, (st, body)
        sc = d.get("/v1/binaries/webrel")["staleness"]
        assert sc["fresh_share"] is None and "builds part" in sc["reason"]
        dom = dump_dom(d.http + "/#binary=webrel", tmp_path)
        m = re.search(r'<p id="rules" class="bad">([^<]*)</p>', dom)
        assert m, dom[:4000]
        assert m.group(1).startswith(
            "Readiness: /v1/binaries/webrel/readiness: 503 "), m.group(1)
        assert "builds part" in m.group(1), m.group(1)
        assert '<table id="readiness"><tr></tr></table>' in dom, dom[:4000]
        assert re.search(r'<p id="staleness"[^>]*>Staleness: no score '
                         r'\([^<]*builds part', dom), dom[:4000]
        for name in ("v1", "v2"):
            row(dom, "data-build-id", bids[name])
        assert bids["v2"] in row(dom, "data-release", "2")


def test_dom_follows_url_state(site):
    """A link with the view's state in the fragment shows that view: the
    same path clicks and the search box take."""
    d, _, _, tmp = site
    dom = dump_dom(d.http + "/#binary=webapp&zoom=main%3Bweb_hot_loop"
                   "&search=hot", tmp)
    assert 'data-zoom="main;web_hot_loop"' in dom
    f = frames(dom)
    assert "main;web_cold_path" not in f  # outside the zoomed frame
    assert "ancestor" in f["main"] and "ancestor" in f[""]
    assert "match" in f["main;web_hot_loop"]
    assert "match" not in f["main"]
    assert 'data-matched="1500"' in dom
    dom = dump_dom(d.http + "/#binary=webapp&labels=mode%3Dbatch", tmp)
    assert 'data-root-samples="500"' in dom
    dom = dump_dom(d.http + "/#binary=webnosym", tmp)
    assert 'class="selected" data-binary="webnosym"' in dom
    assert 'data-symbols="none"' in dom
    # Not symbolized: the one frame names its build-id and offset.
    assert re.search(r'data-name="\[feedfeedfeed\+0x1234\]"', dom)


def test_screenshot(site):
    d, _, _, tmp = site
    shots = {}
    for name, frag in (("plain", ""), ("search", "#search=web_")):
        png = tmp / ("page-%s.png" % name)
        run_chromium(["--virtual-time-budget=20000", "--window-size=1200,1400",
                      "--screenshot=%s" % png, d.http + "/" + frag], tmp)
        shots[name] = png_decode(png.read_bytes())
    w, h, rows = shots["plain"]
    assert (w, h) == (1200, 1400)
    colors = {px for r in rows[::4] for px in r[::4]}
    assert len(colors) > 20, "the page looks blank"
    # The flame graph: a frame (the root, "all") spans the graph's width,
    # and several levels of frames are drawn below it.
    runs = [longest_run(r, warm) for r in rows]
    assert max(runs) > 0.85 * w, max(runs)
    assert sum(1 for n in runs if n > 20) >= 3 * 10, \
        "fewer than three frame levels"
    magenta = lambda px: px[0] > 200 and px[1] < 40 and px[2] > 200
    assert not any(longest_run(r, magenta) > 5 for r in rows)
    # Searching "web_" paints both leaf functions magenta.
    w, h, rows = shots["search"]
    assert sum(1 for r in rows if longest_run(r, magenta) > 50) >= 10


def test_click_zooms_and_search_highlights(site):
    d, _, _, tmp = site
    c = CDP(d.http + "/", tmp)
    try:
        c.wait("!!document.querySelector('#flame g[data-path=\"main;"
               "web_hot_loop\"]')", "the flame graph")
        width = c.js("Number(document.getElementById('flame')"
                     ".getAttribute('width'))")
        hot = "#flame g[data-path=\"main;web_hot_loop\"] rect"
        before = c.js("document.querySelector(%s).getBBox().width" %
                      json.dumps(hot))
        assert 0.5 * width < before < 0.95 * width  # 1500 of 1800
        # Click the hot frame: it fills the width, its sibling is gone,
        # its ancestors stay (dimmed) and the URL says so.
        c.click(hot)
        c.wait("document.getElementById('flame').dataset.zoom === "
               "'main;web_hot_loop'", "zoom on click")
        assert "zoom=main%3Bweb_hot_loop" in c.js("location.hash")
        after = c.js("document.querySelector(%s).getBBox().width" %
                     json.dumps(hot))
        assert after > 0.98 * width, (after, width)
        assert c.js("document.querySelector('#flame g[data-path=\"main;"
                    "web_cold_path\"]')") is None
        assert c.js("document.querySelector('#flame g[data-path=\"main\"]')"
                    ".classList.contains('ancestor')")
        assert "zoomed on web_hot_loop" in c.js(
            "document.getElementById('flameinfo').textContent")
        # Back (browser history) un-zooms; forward zooms again.
        c.js("history.back()")
        c.wait("document.getElementById('flame').dataset.zoom === ''",
               "un-zoom on back")
        c.js("history.forward()")
        c.wait("document.getElementById('flame').dataset.zoom === "
               "'main;web_hot_loop'", "zoom on forward")
        # Click the root: the whole profile again.
        c.click("#flame g[data-path=\"\"] rect")
        c.wait("document.getElementById('flame').dataset.zoom === ''",
               "un-zoom on the root")
        assert c.js("!!document.querySelector('#flame g[data-path=\"main;"
                    "web_cold_path\"]')")
        # Type in the search box: matching frames turn magenta.
        c.type("#search", "cold")
        c.wait("document.getElementById('flameinfo').dataset.matched === "
               "'300'", "search highlight")
        matches = c.js("[...document.querySelectorAll('#flame g.match')]"
                       ".map(g => [g.dataset.path, g.querySelector('rect')"
                       ".getAttribute('fill')])")
        assert matches == [["main;web_cold_path", "rgb(230,0,230)"]]
        assert "search=cold" in c.js("location.hash")
        assert "matches 16.7% of samples" in c.js(
            "document.getElementById('flameinfo').textContent")
        # Label set link in the readiness table: the batch profile.
        c.click("tr[data-labels=\"mode=batch\"] a")
        c.wait("document.getElementById('flame').dataset.rootSamples === "
               "'500'", "the mode=batch flame graph")
    finally:
        c.close()


def test_token_form(tmp_path, prog, monkeypatch):
    """With --tokens, the page loads without one and asks for it; a read
    token typed into the form brings the data."""
    read = "read-token-0123456789abc"
    admin = "admin-token-0123456789ab"
    tokfile = tmp_path / "tokens"
    tokfile.write_text("%s read reader\n%s admin admin\n" % (read, admin))
    os.chmod(tokfile, 0o600)
    with Daemon(tmp_path / "data", extra=["--tokens", str(tokfile)],
                token=admin) as d:
        monkeypatch.setenv("FDOD_TOKEN", admin)  # for fdoctl push
        load(d, prog, with_symbols=False)
        d.wait_merged()
        assert urllib.request.urlopen(d.http + "/", timeout=30).status == 200
        c = CDP(d.http + "/", tmp_path)
        try:
            c.wait("document.getElementById('error').textContent"
                   ".includes('401')", "the token request")
            assert c.js("document.querySelectorAll('tr[data-binary]')"
                        ".length") == 0
            c.type("#token", read)
            c.js("document.getElementById('tokenform').requestSubmit()")
            c.wait("!!document.querySelector('tr[data-binary=\"webapp\"]')",
                   "data with the token")
            assert c.js("sessionStorage.getItem('fdod.token')") == read
            assert c.js("document.getElementById('error').style.display") \
                == "none"
        finally:
            c.close()
