"""Abuse resistance (issue 21): one test per finding of the outside review,
each asserting the refusal, its message, and that nothing stored changed.

Findings: 1 scopes and backup roots, 2 symbol store poisoning, 3 compressed
debug sections, 4 idle and half-sent connections, 5 log injection, 6 slow
bodies, 7 batch times, 8 ingest identity, 9 growth; and the low ones.
"""
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from fdodtest import (FDOCTL, Daemon, SPReq, batch_text, decode_ack,
                      encode_batch)

TOKENS = {
    "admin": "admin-token-0123456789",
    "allbutadmin": "all-but-admin-token-0123",
    "read": "read-token-0123456789xx",
    "upload": "upload-token-0123456789",
    "ingest": "ingest-token-0123456789",
}


def req(d, method, path, token=None, body=None, headers=None):
    """(status, body bytes) of one HTTP request to d."""
    r = urllib.request.Request(d.http + path, data=body, method=method)
    if token:
        r.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        r.add_header(k, v)
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def error_of(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError):
        return body.decode(errors="replace")


def write_tokens(path, lines):
    path.write_text("".join(l + "\n" for l in lines))
    os.chmod(path, 0o600)
    return str(path)


def tree(path):
    """Every file under path (relative names), for 'nothing changed'."""
    out = set()
    for root, dirs, files in os.walk(path):
        for f in files:
            out.add(os.path.relpath(os.path.join(root, f), path))
    return out


# -- finding 1: scopes that mean what they say; backups under roots only ----

def test_f1_ingest_upload_read_token_is_not_admin(tmp_path):
    tok = write_tokens(tmp_path / "tokens", [
        "%s ingest,upload,read legacy" % TOKENS["allbutadmin"],
        "%s admin boss" % TOKENS["admin"]])
    bk = tmp_path / "bk"
    bk.mkdir()
    with Daemon(tmp_path / "data", extra=["--tokens", tok, "--backup-dir",
                                          str(bk)],
                token=TOKENS["admin"]) as d:
        t = TOKENS["allbutadmin"]
        assert req(d, "GET", "/v1/status", t)[0] == 200
        st, body = req(d, "POST", "/v1/backup?dir=%s/one" % bk, t, b"")
        assert st == 403, (st, body)
        assert "lacks the needed scope" in error_of(body)
        st, body = req(d, "POST", "/v1/profiles/x/publish", t, b"")
        assert st == 403, (st, body)
        assert not os.path.exists(bk / "one")
        # The admin token may.
        st, body = req(d, "POST", "/v1/backup?dir=%s/one" % bk,
                       TOKENS["admin"], b"")
        assert st == 201, (st, body)
        log = d.read_log()
        assert re.search(r"token legacy has every scope but admin", log), log
        assert "token boss has every scope but admin" not in log


def test_f1_backup_only_under_backup_dir_never_in_data(tmp_path):
    data = tmp_path / "root" / "data"
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    # No --backup-dir: online backups are refused.
    with Daemon(data) as d:
        st, body = req(d, "POST", "/v1/backup?dir=%s/b" % outside, None, b"")
        assert st == 403 and "--backup-dir" in error_of(body), body
        assert not os.path.exists(outside / "b")
        d.stop()
    os.symlink(data, root / "link-to-data")
    with Daemon(data, extra=["--backup-dir", str(root)]) as d:
        before = tree(data)
        bad = [str(outside / "b"),                       # not under a root
               str(root / ".." / "outside" / "b"),       # climbs out
               str(data / "copy"),                       # inside --data
               str(root / "link-to-data" / "copy"),      # ... through a link
               str(root / "link-to-data"),               # the data dir itself
               "relative/path"]
        for dest in bad:
            st, body = req(d, "POST", "/v1/backup?dir=" + dest, None, b"")
            assert st in (400, 403), (dest, st, body)
        assert not os.path.exists(outside / "b")
        assert tree(data) - before <= {"store/lock.mdb"}
        assert "backup from 127.0.0.1" in d.read_log()
        st, body = req(d, "POST", "/v1/backup?dir=%s/good" % root, None, b"")
        assert st == 201, body
        assert (root / "good" / "store" / "data.mdb").exists()


# -- finding 2: the symbol store cannot be poisoned --------------------------

BID = "0123456789abcdef0123456789abcdef01234567"


def build_twins(tmp_path):
    """Two different programs with one build-id: the real release and an
    attacker's file claiming its build-id."""
    out = []
    for name, body in (("real", "return c * 3 + 1;"),
                       ("fake", "return c * 7 + 5;")):
        src = tmp_path / (name + ".c")
        src.write_text("int main(int c, char **v) { (void)v; %s }\n" % body)
        exe = tmp_path / name
        subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id=0x" + BID, "-o",
                        str(exe), str(src)], check=True, timeout=120)
        out.append(exe.read_bytes())
    return out


def test_f2_different_file_for_a_build_id_is_refused_409(tmp_path):
    real, fake = build_twins(tmp_path)
    tok = write_tokens(tmp_path / "tokens", [
        "%s admin boss" % TOKENS["admin"],
        "%s upload,read uploader" % TOKENS["upload"]])
    with Daemon(tmp_path / "data", extra=["--tokens", tok],
                token=TOKENS["admin"]) as d:
        up = TOKENS["upload"]
        st, body = req(d, "PUT", "/v1/symbols?binary=evil", up, fake)
        assert st == 201, body
        before = tree(d.data + "/symbols")
        names = [b["name"] for b in d.get("/v1/binaries")["binaries"]]
        # The real file for the same build-id: refused, with the reason.
        st, body = req(d, "PUT", "/v1/symbols?binary=web", up, real)
        assert st == 409, (st, body)
        why = error_of(body)
        assert "already has a different executable" in why, why
        assert "replace=1" in why
        assert re.search(r"upload from 127\.0\.0\.1 refused \(uploader\), "
                         r"binary web: build-id %s already has a "
                         r"different" % BID, d.read_log())
        # Nothing changed: the files, the binaries, what debuginfod serves.
        assert tree(d.data + "/symbols") == before
        assert [b["name"] for b in
                d.get("/v1/binaries")["binaries"]] == names
        st, served = req(d, "GET", "/buildid/%s/executable" % BID, up)
        assert st == 200 and served == fake
        # The same bytes again: 200 as before.
        st, body = req(d, "PUT", "/v1/symbols?binary=evil", up, fake)
        assert st == 200, body
        # Replacing needs admin.
        st, body = req(d, "PUT", "/v1/symbols?binary=web&replace=1", up,
                       real)
        assert st == 403 and "admin" in error_of(body), body
        st, body = req(d, "PUT", "/v1/symbols?binary=web&replace=1",
                       TOKENS["admin"], real)
        assert st == 201 and json.loads(body)["replaced"] is True, body
        st, served = req(d, "GET", "/buildid/%s/executable" % BID, up)
        assert served == real
        assert "replaced the stored executable and debuginfo" in \
            d.read_log()
        st, body = req(d, "PUT", "/v1/symbols?replace=maybe",
                       TOKENS["admin"], real)
        assert st == 400, body
        # fdoctl: refused without --replace, replaced with it (admin).
        fake_path = tmp_path / "fake"
        for token, flags, rc, want in (
                (up, [], 1, "HTTP 409"),
                (TOKENS["admin"], ["--replace"], 0, "replaced " + BID)):
            p = subprocess.run([FDOCTL, "upload", "--http", d.http] + flags +
                               [str(fake_path)], capture_output=True,
                               text=True, timeout=60,
                               env=dict(os.environ, FDOD_TOKEN=token))
            assert p.returncode == rc and want in p.stdout + p.stderr, \
                (p.stdout, p.stderr)
        st, served = req(d, "GET", "/buildid/%s/executable" % BID, up)
        assert served == fake


def test_f2_upload_token_restricted_to_its_binaries(tmp_path):
    real, fake = build_twins(tmp_path)
    other = tmp_path / "other"
    (tmp_path / "other.c").write_text("int main(void) { return 4; }\n")
    subprocess.run(["gcc", "-g", "-o", str(other), str(tmp_path / "other.c")],
                   check=True, timeout=120)
    tok = write_tokens(tmp_path / "tokens", [
        "%s admin boss" % TOKENS["admin"],
        "%s upload team-b" % TOKENS["upload"],
        "%s upload team-a binaries=web,web-canary" % TOKENS["allbutadmin"]])
    with Daemon(tmp_path / "data", extra=["--tokens", tok],
                token=TOKENS["admin"]) as d:
        a = TOKENS["allbutadmin"]
        # Team b owns this build-id now.
        assert req(d, "PUT", "/v1/symbols?binary=db", TOKENS["upload"],
                   fake)[0] == 201
        before = tree(d.data + "/symbols")
        for path, want in (("/v1/symbols", "give one of them"),
                           ("/v1/symbols?binary=db", "give one of them"),
                           ("/v1/symbols?binary=web", "belongs to binary "
                                                      "'db'")):
            st, body = req(d, "PUT", path, a, real)
            assert st == 403 and want in error_of(body), (path, st, body)
        assert tree(d.data + "/symbols") == before
        st, body = req(d, "PUT", "/v1/symbols?binary=web-canary", a,
                       other.read_bytes())
        assert st == 201, body


def test_low_bad_binary_on_upload_is_refused(tmp_path):
    _, fake = build_twins(tmp_path)
    with Daemon(tmp_path / "data") as d:
        for q in ("binary=", "binary=a%00b", "binary=%zz", "binary=a/b",
                  "binary=" + "x" * 300):
            st, body = req(d, "PUT", "/v1/symbols?" + q, None, fake)
            assert st == 400 and "binary=" in error_of(body), (q, st, body)
        assert not os.path.exists(os.path.join(d.data, "symbols",
                                               BID[:2]))


# -- findings 4 and 6: idle and half-sent connections, slow bodies -----------

def open_from(port, source="127.0.0.2"):
    return socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0))


def wait_closed(socks, seconds):
    """How many of socks the server closed (EOF or reset) within seconds
    (a bound for the loop, not an assertion on timing)."""
    import select
    open_ = {s.fileno(): s for s in socks}
    closed = 0
    end = time.time() + seconds
    while open_ and time.time() < end:
        ready, _, _ = select.select(list(open_), [], [], 0.5)
        for fd in ready:
            try:
                data = open_[fd].recv(65536)
            except OSError:
                data = b""
            if not data:
                closed += 1
                del open_[fd]
    return closed


def raise_own_nofile(n=4096):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def test_f4_idle_and_half_sent_connections_under_256_descriptors(tmp_path):
    """300 idle or half-sent connections from 127.0.0.2 (HTTP and agent
    ports, 150 each) under RLIMIT_NOFILE=256: an agent push and GET
    /v1/status from 127.0.0.1 are served, and every one of the 300 is
    closed by the configured timeouts."""
    raise_own_nofile()
    extra = ["--http-header-timeout", "2s", "--http-idle-timeout", "3s",
             "--agent-auth-timeout", "3s", "--agent-idle-timeout", "5s"]
    with Daemon(tmp_path / "data", extra=extra, nofile=256) as d:
        hostile = []
        for i in range(150):
            s = open_from(d.http_port)
            if i % 2:
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: ")
            hostile.append(s)
        for i in range(150):
            try:
                s = open_from(d.nng_port)
            except OSError:
                continue  # the kernel's backlog was full: as good
            if i % 2:
                # SP handshake as REQ, then a frame that announces 15 MB
                # and sends 10 bytes of it.
                s.sendall(b"\0SP\0\x00\x30\0\0" +
                          (15 << 20).to_bytes(8, "big") + b"\x80\0\0\1" +
                          b"x" * 6)
            hostile.append(s)
        # Normal clients from 127.0.0.1 are served meanwhile.
        rc, out = d.push(batch_text("good", 1, "goodprog", "ab" * 20,
                                    [(7, [0x555555555000])]))
        assert rc == 0 and "ok seq=1" in out, out
        st = d.get("/v1/status")
        assert st["ingest"]["batches"] == 1
        # And the hostile ones are all closed by the timeouts.
        assert wait_closed(hostile, 90) == len(hostile)
        for s in hostile:
            s.close()
        log = d.read_log()
        assert "listen: closed" in log and "http: closed" in log, log
        assert d.get("/v1/binaries/goodprog")["samples"] == 7
        metrics = req(d, "GET", "/metrics")[1].decode()
        assert re.search(r"fdod_agent_connections_closed_total"
                         r"\{reason=\"timeout\"\} [1-9]", metrics), metrics


def test_f6_slow_bodies_do_not_block_workers(tmp_path):
    """Connections that announce a small body and never send it hold no
    HTTP worker: GET /v1/status is served at once, and they are closed by
    the body timeout."""
    with Daemon(tmp_path / "data", extra=["--http-body-timeout", "2s",
                                          "--http-threads", "2",
                                          "--max-uploads", "1"]) as d:
        slow = []
        for _ in range(8):
            s = open_from(d.http_port, "127.0.0.1")
            s.sendall(b"POST /v1/profiles/x/publish HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n")
            slow.append(s)
        for _ in range(3):
            assert "ingest" in d.get("/v1/status")
        assert wait_closed(slow, 60) == len(slow)
        for s in slow:
            s.close()


def raw_http(port, data, body=b"", read_first=False):
    """Send data (and body), read the answer until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(data)
    first = b""
    if read_first:
        first = s.recv(4096)
    if body:
        s.sendall(body)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return first, out


def test_low_http_header_and_target_limits(tmp_path):
    with Daemon(tmp_path / "data") as d:
        # Headers over the limit: 431, not a silent close.
        big = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + \
            b"X-Big: " + b"a" * 40000 + b"\r\nConnection: close\r\n\r\n"
        _, out = raw_http(d.http_port, big)
        assert out.startswith(b"HTTP/1.1 431"), out[:200]
        # A 2,400-byte query is over the 2,048-byte request target limit.
        q = "/v1/binaries?x=" + "a" * 2400
        _, out = raw_http(d.http_port, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n" % q.encode())
        assert out.startswith(b"HTTP/1.1 414"), out[:200]
        # 413 carries its reason phrase.
        _, out = raw_http(d.http_port, b"POST /v1/profiles/x/publish "
                          b"HTTP/1.1\r\nHost: x\r\nContent-Length: 999999"
                          b"\r\nConnection: close\r\n\r\n")
        assert re.match(rb"HTTP/1.1 413 (Content|Payload|Request Entity) "
                        rb"Too Large", out), out[:200]
        # An upload expecting 100 Continue gets it before sending a byte,
        # and a body that is not ELF is refused from its first bytes.
        first, out = raw_http(d.http_port, b"PUT /v1/symbols HTTP/1.1\r\n"
                              b"Host: x\r\nContent-Length: 100000\r\n"
                              b"Expect: 100-continue\r\nConnection: close"
                              b"\r\n\r\n", b"#!/bin/sh\n" + b"x" * 99990,
                              read_first=True)
        assert first.startswith(b"HTTP/1.1 100"), first
        assert out.startswith(b"HTTP/1.1 400") and b"not an ELF" in out, out
        assert os.listdir(os.path.join(d.data, "symbols",
                                       ".incoming")) == []
        assert "refused after" in d.read_log()


# -- finding 3: compressed debug sections are not inflated blindly -----------

def bomb(tmp_path, claim=1 << 30):
    """A ~1 MB executable whose compressed .debug_info (SHF_COMPRESSED)
    claims `claim` bytes once inflated."""
    import struct
    src = tmp_path / "bomb.c"
    src.write_text("static const unsigned char pad[1000000] = {1};\n"
                   "int main(int c, char **v) { (void)v; "
                   "return pad[c * 4096] + c; }\n")
    exe = tmp_path / "bomb"
    subprocess.run(["gcc", "-g", "-gz=zlib", "-O1", "-o", str(exe),
                    str(src)], check=True, timeout=120)
    data = bytearray(exe.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)

    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    for i in range(1, shnum):
        name, _, flags, _, off, _, _, _, _, _ = sh(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".debug_info":
            assert flags & 0x800, "gcc did not compress .debug_info"
            struct.pack_into("<Q", data, off + 8, claim)  # Elf64_Chdr.ch_size
            exe.write_bytes(bytes(data))
            return exe
    raise AssertionError("no .debug_info")


def bomb_build_id(path):
    from fdodtest import build_id
    return build_id(str(path))


def test_f3_upload_claiming_1gib_compressed_is_refused(tmp_path):
    exe = bomb(tmp_path)
    assert 900_000 < exe.stat().st_size < 2_000_000
    with Daemon(tmp_path / "data") as d:
        before = tree(d.data + "/symbols")
        st, body = req(d, "PUT", "/v1/symbols?binary=bomb", None,
                       exe.read_bytes())
        assert st == 413, (st, body)
        why = error_of(body)
        assert re.search(r"claim 10737\d{5} bytes once inflated", why), why
        assert "--debug-inflate-max" in why
        assert re.search(r"upload from 127\.0\.0\.1 refused .*claim "
                         r"10737\d{5} bytes", d.read_log())
        assert tree(d.data + "/symbols") == before
        p = subprocess.run([FDOCTL, "upload", "--http", d.http, str(exe)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "413" in p.stderr, p.stderr


def test_f3_symbolizer_does_not_inflate_over_the_budget(tmp_path):
    """A file stored without a limit (an older fdod, --debug-inflate-max
    0) is not inflated by the symbolizer under the default budget."""
    exe = bomb(tmp_path)
    bid = bomb_build_id(exe)
    data = tmp_path / "data"
    with Daemon(data, extra=["--debug-inflate-max", "0"]) as d:
        st, body = req(d, "PUT", "/v1/symbols?binary=bomb", None,
                       exe.read_bytes())
        assert st == 201, body
        d.stop()
    # The DWARF index the first daemon may have built is not kept.
    import shutil
    shutil.rmtree(data / "cache", ignore_errors=True)
    with Daemon(data) as d:
        rc, out = d.push(batch_text("b", 1, "bomb", bid,
                                    [(5, [0x555555555100])]))
        assert rc == 0, out
        end = time.time() + 60
        while time.time() < end and "its DWARF is not read" not in \
                d.read_log():
            time.sleep(0.2)
        log = d.read_log()
        assert re.search(r"symbolizer: \S+: compressed debug sections "
                         r"claim 10737\d{5} bytes once inflated, over the "
                         r"limit of 536870912 \(--debug-inflate-max\)",
                         log), log
        assert d.get("/v1/status")["uptime_seconds"] >= 0


# -- finding 5: log injection; peer addresses on refusals --------------------

def test_f5_decoded_paths_are_escaped_in_logs_with_the_peer(tmp_path):
    tok = write_tokens(tmp_path / "tokens",
                       ["%s admin boss" % TOKENS["admin"]])
    with Daemon(tmp_path / "data", extra=["--tokens", tok],
                token=TOKENS["admin"]) as d:
        forged = "2026-01-01T00:00:00.000Z error fdod: forged"
        path = "/v1/binaries/x%0a" + forged.replace(" ", "%20") + "%1b%5b2J"
        st, _ = req(d, "GET", path)
        assert st == 401
        log = d.read_log()
        assert not any(l.startswith("2026-01-01T00:00:00.000Z")
                       for l in log.splitlines()), log
        assert "\x1b" not in log
        assert re.search(r"http: GET /v1/binaries/x\\n2026-01-01T00:00:00"
                         r"\.000Z error fdod: forged\\x1b\[2J from "
                         r"127\.0\.0\.1 refused \(anonymous\)", log), log
        # Agent refusals name the address too.
        p = subprocess.run([FDOCTL, "push", "--url", d.url, "-"],
                           input=batch_text("a", 1, "p", "ab" * 20,
                                            [(1, [0x555555555000])]).encode(),
                           capture_output=True, timeout=60,
                           env=dict(os.environ, FDOD_TOKEN="wrong-token-"
                                                           "0123456789"))
        assert p.returncode != 0
        assert re.search(r"ingest: batch from 127\.0\.0\.1 refused "
                         r"\(anonymous\)", d.read_log())


# -- finding 7: batches dated in the future or the distant past --------------

def test_f7_batch_times_outside_the_window_are_refused(tmp_path):
    now = int(time.time())
    mapping = [(0, bytes.fromhex("ab" * 20), 0x555555554000,
                0x555555600000, 0, "/usr/bin/t")]

    def batch(seq, t0):
        return encode_batch(agent="clock", seq=seq, binary="t",
                            time_start=t0, time_end=t0 + 60,
                            mappings=mapping,
                            stacks=[(5, [0x555555555000])])
    with Daemon(tmp_path / "data", extra=["--max-clock-skew", "1h",
                                          "--retention", "30d"]) as d:
        sp = SPReq(d.nng_port)
        y2100 = 4102444800
        ack = decode_ack(sp.request(batch(1, y2100)))
        assert ack["status"] == 23 and "in the future" in ack["message"] \
            and "--max-clock-skew 3600 s" in ack["message"], ack
        ack = decode_ack(sp.request(batch(2, 0)))  # 1970
        assert ack["status"] == 23 and "older than" in ack["message"], ack
        # 7 d exactly-once lifetime less 1 h skew is shorter than 30 d.
        assert "older than 601200 s" in ack["message"], ack
        ack = decode_ack(sp.request(batch(3, now - 8 * 86400)))
        assert ack["status"] == 23, ack
        # Within the skew and the window: stored.
        assert decode_ack(sp.request(batch(4, now + 1800)))["status"] == 0
        assert decode_ack(sp.request(batch(5, now - 6 * 86400)))[
            "status"] == 0
        sp.close()
        d.wait_merged()
        b = d.get("/v1/binaries/t")
        assert b["samples"] == 10, b
        st = d.get("/v1/status")
        assert st["ingest"]["batches"] == 2 and st["ingest"]["refused"] == 3
        metrics = req(d, "GET", "/metrics")[1].decode()
        assert 'fdod_refused_batches_total{reason="TIME_RANGE"} 3' in \
            metrics, metrics


# -- finding 8: ingest identity ------------------------------------------------

def push(d, text, token=None):
    env = dict(os.environ)
    env.pop("FDOD_TOKEN", None)
    if token:
        env["FDOD_TOKEN"] = token
    p = subprocess.run([FDOCTL, "push", "--url", d.url, "-"],
                       input=text.encode(), capture_output=True, env=env,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_f8_resent_seq_with_other_content_is_a_conflict(tmp_path):
    bid = "ab" * 20
    a = batch_text("agent-1", 1, "idprog", bid, [(10, [0x555555555000])])
    b = batch_text("agent-1", 1, "idprog", bid, [(99, [0x555555555100])])
    with Daemon(tmp_path / "data") as d:
        rc, out = push(d, a)
        assert rc == 0 and "accepted=10" in out and "duplicate=no" in out
        # Before the merge (in the write-ahead log) and after it (stored).
        for phase in ("logged", "stored"):
            rc, out = push(d, b)
            assert rc == 1 and out.startswith("CONFLICT seq=1"), out
            assert "duplicate=no" in out and "accepted=0" in out, out
            assert "stored before with different content" in out, out
            rc, out = push(d, a)
            assert rc == 0 and "duplicate=yes" in out, out
            assert "accepted=10" in out, out  # what the first Ack said
            d.wait_merged()
        assert d.get("/v1/binaries/idprog")["samples"] == 10
        st = d.get("/v1/status")["ingest"]
        assert st["batches"] == 1 and st["duplicates"] == 2 and \
            st["refused"] == 2, st


def test_f8_ingest_token_bound_to_agent_and_host_prefixes(tmp_path):
    tok = write_tokens(tmp_path / "tokens", [
        "%s admin boss" % TOKENS["admin"],
        "%s ingest team-a agents=team-a/ hosts=web-,api-" % TOKENS["ingest"],
        "%s ingest team-b agents=team-b/ binaries=db" % TOKENS["upload"]])
    bid = "cd" * 20
    with Daemon(tmp_path / "data", extra=["--tokens", tok],
                token=TOKENS["admin"]) as d:
        ta, tb = TOKENS["ingest"], TOKENS["upload"]
        # Team b squatting team a's agent id (with an empty batch first):
        squat = batch_text("team-a/web-1", 1, "app", bid, [], host="web-1")
        rc, out = push(d, squat, tb)
        assert rc == 1 and "DENIED" in out and \
            "may not send as agent 'team-a/web-1'" in out, out
        for text, why in (
                (batch_text("team-a/web-1", 1, "app", bid,
                            [(3, [0x555555555000])], host="db-7"),
                 "may not send for host 'db-7'"),
                (batch_text("team-b/x", 1, "app", bid,
                            [(3, [0x555555555000])], host="b"),
                 "may not send as agent 'team-b/x'")):
            rc, out = push(d, text, ta)
            assert rc == 1 and why in out, out
        rc, out = push(d, batch_text("team-b/x", 1, "web", bid,
                                     [(3, [0x555555555000])]), tb)
        assert rc == 1 and "samples of binary 'web'" in out, out
        assert re.search(r"ingest: batch from 127\.0\.0\.1 refused "
                         r"\(team-b\): unauthorized: this token may not "
                         r"send as agent 'team-a/web-1'", d.read_log())
        # Nothing of that was stored; the real batch is stored, not a
        # duplicate of the squatter's.
        rc, out = push(d, batch_text("team-a/web-1", 1, "app", bid,
                                     [(3, [0x555555555000])],
                                     host="web-1"), ta)
        assert rc == 0 and "duplicate=no" in out, out
        names = [b["name"] for b in d.get("/v1/binaries")["binaries"]]
        assert names == ["app"], names


def test_f8_hosts_count_only_with_samples(tmp_path):
    bid = "ef" * 20
    with Daemon(tmp_path / "data") as d:
        rc, out = push(d, batch_text("real", 1, "hp", bid,
                                     [(2000, [0x555555555000])],
                                     host="real-host"))
        assert rc == 0, out
        for i in range(5):
            rc, out = push(d, batch_text("fake%d" % i, 1, "hp", bid, [],
                                         host="invented-%d" % i))
            assert rc == 0 and "accepted=0" in out, out
        # Stacks entirely outside the mapping: no samples either.
        rc, out = push(d, batch_text("fake9", 1, "hp", bid,
                                     [(50, [0x10])], host="invented-9"))
        assert rc == 0 and "accepted=0" in out, out
        d.wait_merged()
        assert d.get("/v1/binaries/hp")["hosts"] == 1
        st, body = req(d, "GET", "/v1/profiles/hp?format=folded&min_hosts=2")
        assert st == 409 and b"min_hosts" in body, body


# -- low findings ---------------------------------------------------------------

def test_low_nul_in_names_and_huge_weight_are_refused(tmp_path):
    bid = bytes.fromhex("ab" * 20)
    m = [(0, bid, 0x555555554000, 0x555555600000, 0, "/usr/bin/web")]
    with Daemon(tmp_path / "data") as d:
        sp = SPReq(d.nng_port)
        for fields in ({"binary": "web\0evil"}, {"host": "h\0x"},
                       {"labels": [("mode", "serving\0batch")]}):
            ack = decode_ack(sp.request(encode_batch(
                agent="nul", seq=1, mappings=m,
                stacks=[(5, [0x555555555000])], **fields)))
            assert ack["status"] == 3 and "NUL byte" in ack["message"], ack
        sp.close()
        text = batch_text("w", 1, "wprog", "ab" * 20,
                          [(5, [0x555555555000])], weight=1e300)
        rc, out = push(d, text)
        assert rc == 2 and "weight 1e+300 exceeds limit 1e+06" in out, out
        assert d.get("/v1/binaries")["binaries"] == []


def test_low_loopback_check_is_not_a_string_prefix(tmp_path):
    from fdodtest import FDOD, free_port
    for flag, url in (("--http", "http://127.example.com:%d" % free_port()),
                      ("--listen", "tcp://127.0.0.1.nip.io:%d" % free_port()),
                      ("--http", "http://localhost.evil:%d" % free_port())):
        p = subprocess.run([FDOD, "--data", str(tmp_path / "d"), flag, url],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "not loopback" in p.stderr, \
            (url, p.stderr)


def test_low_idle_daemon_does_not_wake(tmp_path):
    """No timer wakes an idle fdod many times a second (nng's receive
    timeouts woke 64 threads every 200 ms): counted in context switches
    over a few seconds, not in time."""
    with Daemon(tmp_path / "data") as d:
        d.get("/v1/status")
        time.sleep(1)

        def switches():
            total = 0
            task = "/proc/%d/task" % d.proc.pid
            for t in os.listdir(task):
                try:
                    with open("%s/%s/status" % (task, t)) as f:
                        for line in f:
                            if line.startswith(("voluntary_ctxt",
                                                "nonvoluntary_ctxt")):
                                total += int(line.split()[1])
                except OSError:
                    pass
            return total
        before = switches()
        time.sleep(5)
        woke = switches() - before
        # The merger's 1-second housekeeping wait and little else; the
        # old receive loop alone made 64 x 5 x 5 = 1,600.
        assert woke < 200, woke


# -- finding 9: growth limits ----------------------------------------------------

def test_f9_new_stacks_per_binary_and_pending_per_build_id(tmp_path):
    bid = "9a" * 20
    base = 0x555555555000

    def stacks(first, n):
        return [(1, [base + 16 * (first + k)]) for k in range(n)]
    with Daemon(tmp_path / "data", extra=["--max-new-stacks", "100",
                                          "--max-pending", "150"]) as d:
        rc, out = push(d, batch_text("g", 1, "grow", bid, stacks(0, 80)))
        assert rc == 0, out
        d.wait_merged()
        rc, out = push(d, batch_text("g", 2, "grow", bid, stacks(80, 90)))
        assert rc == 0, out
        d.wait_merged()
        # 170 new stacks stored this hour: the binary's next batch waits.
        before = d.get("/v1/binaries/grow")["samples"]
        rc, out = push(d, batch_text("g", 3, "grow", bid, stacks(170, 5)))
        assert rc == 1 and out.startswith("BUSY"), out
        assert "stored 170 new stacks this hour (--max-new-stacks 100)" \
            in out, out
        assert d.get("/v1/binaries/grow")["samples"] == before == 170
        # Another binary has its own allowance; its build-id is over
        # --max-pending (170 addresses wait): its new addresses are not
        # queued, its samples are counted.
        rc, out = push(d, batch_text("o", 1, "other", bid, stacks(500, 20)))
        assert rc == 0, out
        d.wait_merged()
        assert d.get("/v1/binaries/other")["samples"] == 20
        st = d.get("/v1/status")
        assert st["pending"]["total"] == 170, st["pending"]
        metrics = req(d, "GET", "/metrics")[1].decode()
        assert "fdod_pending_dropped_total 20" in metrics, metrics
        assert "fdod_growth_limited_batches_total 1" in metrics
        assert re.search(r"build-id %s has 170 addresses waiting for "
                         r"symbols \(--max-pending 150\)" % bid,
                         d.read_log())


def test_f4_unauthenticated_messages_are_bounded_before_decoding(tmp_path):
    """12 agent connections from 12 addresses each send a 15 MB batch with
    a wrong token: at most --agent-unauthenticated (4) of them are held at
    once (the others are closed as they arrive), those are refused DENIED
    from their token before being decoded, and a good agent is served."""
    from fdodtest import pb_bytes, pb_uint
    tok = write_tokens(tmp_path / "tokens", [
        "%s ingest,read agent" % TOKENS["ingest"]])
    head = pb_uint(1, 1) + pb_bytes(2, "thief") + pb_uint(3, 1) + \
        pb_bytes(4, "h") + pb_bytes(5, "b") + pb_bytes(16, "wrong-token-xx")
    pad = (15 << 20) - len(head)
    body = head + bytes([15 << 3 | 2]) + \
        bytes([0x80 | (pad & 0x7f), 0x80 | ((pad >> 7) & 0x7f),
               0x80 | ((pad >> 14) & 0x7f), pad >> 21]) + bytes(pad)
    frame = (len(body) + 4).to_bytes(8, "big") + b"\x80\0\0\1" + body
    with Daemon(tmp_path / "data", extra=["--tokens", tok],
                token=TOKENS["ingest"]) as d:
        results = []

        def attack(i):
            try:
                s = open_from(d.nng_port, "127.0.0.%d" % (10 + i))
                s.settimeout(60)
                s.sendall(b"\0SP\0\x00\x30\0\0")
                s.recv(8)
                s.sendall(frame)
                hdr = s.recv(8)
                if len(hdr) < 8:
                    results.append("closed")
                    return
                n = int.from_bytes(hdr, "big")
                reply = b""
                while len(reply) < n:
                    chunk = s.recv(n - len(reply))
                    if not chunk:
                        break
                    reply += chunk
                ack = decode_ack(reply[4:])
                results.append("denied" if ack["status"] == 20 else
                               str(ack))
            except OSError:
                results.append("closed")
        import threading
        threads = [threading.Thread(target=attack, args=(i,))
                   for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == 12
        assert set(results) <= {"denied", "closed"}, results
        assert 1 <= results.count("denied") <= 12
        assert re.search(r"listen: connection from 127\.0\.0\.\d+ refused: "
                         r"too many connections without an authorized "
                         r"batch", d.read_log()) or \
            results.count("denied") == 12
        env_push = batch_text("agent-ok", 1, "okprog", "ab" * 20,
                              [(4, [0x555555555000])])
        rc, out = push(d, env_push, TOKENS["ingest"])
        assert rc == 0, out
