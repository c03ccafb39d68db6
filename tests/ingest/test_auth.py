"""API tokens: every scope boundary over HTTP and for agent batches;
refusals change nothing; no token file means loopback only."""
import json
import os
import re
import subprocess
import urllib.request

from fdodtest import FDOCTL, FDOD, Daemon, batch_text, free_port

TOKENS = {
    "ingest": "ingest-token-0123456789",
    "upload": "upload-token-0123456789",
    "read": "read-token-012345678901",
    "admin": "admin-token-01234567890",
}


def req(d, method, path, token=None, body=None):
    r = urllib.request.Request(d.http + path, data=body, method=method)
    if token:
        r.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_scopes_over_http_and_batches(tmp_path):
    tokfile = tmp_path / "tokens"
    tokfile.write_text("".join("%s %s %s-client\n" % (t, s, s)
                               for s, t in TOKENS.items()))
    os.chmod(tokfile, 0o600)
    exe = "/bin/true"
    with open(exe, "rb") as f:
        elf = f.read()
    with Daemon(tmp_path / "data", extra=["--tokens", str(tokfile),
                                          "--backup-dir", str(tmp_path)],
                token=TOKENS["admin"]) as d:
        # (method, path, body, the scope that may)
        routes = [("GET", "/v1/status", None, "read"),
                  ("GET", "/v1/binaries", None, "read"),
                  ("GET", "/metrics", None, "read"),
                  ("PUT", "/v1/symbols?binary=t", elf, "upload"),
                  ("POST", "/v1/backup?dir=" + str(tmp_path / "bk"), b"",
                   "admin")]
        for method, path, body, scope in routes:
            assert req(d, method, path, None, body) == 401, path
            assert req(d, method, path, "not-a-token-at-all!", body) == 401
            for s, t in TOKENS.items():
                st = req(d, method, path, t, body)
                if s == scope or s == "admin":
                    assert st in (200, 201), (path, s, st)
                else:
                    assert st == 403, (path, s, st)
        # Batches: only ingest (or admin) tokens are stored.
        text = batch_text("auth", 1, "authprog", "ab" * 20,
                          [(5, [0x555555555000])])
        for s, t in [(None, None)] + list(TOKENS.items()):
            env = dict(os.environ)
            env.pop("FDOD_TOKEN", None)
            if t:
                env["FDOD_TOKEN"] = t
            p = subprocess.run([FDOCTL, "push", "--url", d.url, "-"],
                               input=text.encode(), capture_output=True,
                               env=env, timeout=120)
            out = (p.stdout + p.stderr).decode()
            if s in ("ingest", "admin"):
                assert p.returncode == 0, out
            else:
                assert p.returncode == 1 and "DENIED" in out, (s, out)
        # fdoctl's HTTP commands send $FDOD_TOKEN.
        env = dict(os.environ, FDOD_TOKEN=TOKENS["read"])
        p = subprocess.run([FDOCTL, "status", "--http", d.http, "--json"],
                           capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        st = json.loads(p.stdout)
        assert st["ingest"]["batches"] == 1   # stored once (ingest token),
        assert st["ingest"]["duplicates"] == 1  # then admin's retry
        # Every refusal is logged with the token's name.
        log = d.read_log()
        # ... and the address it came from.
        assert re.search(r"ingest: batch from 127\.0\.0\.1\S* refused "
                         r"\(anonymous\)", log), log
        assert re.search(r"ingest: batch from \S+ refused \(read-client\)",
                         log)
        assert "refused (upload-client): token lacks the scope" in log
        assert not re.search(r"ingest: batch from \S+ refused "
                             r"\(ingest-client\)", log)


def test_without_tokens_only_loopback(tmp_path):
    for flag, url in (("--listen", "tcp://0.0.0.0:%d" % free_port()),
                      ("--http", "http://0.0.0.0:%d" % free_port())):
        p = subprocess.run([FDOD, "--data", str(tmp_path / "d"), flag, url],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "not loopback" in p.stderr and "--tokens" in p.stderr
    bad = tmp_path / "bad-tokens"
    bad.write_text("short read\n")
    p = subprocess.run([FDOD, "--data", str(tmp_path / "d"), "--tokens",
                        str(bad)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "16 characters" in p.stderr


def test_https_api_with_tokens(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=120)
    tokfile = tmp_path / "tokens"
    tokfile.write_text("%s read\n" % TOKENS["read"])
    port = free_port()
    d = Daemon(tmp_path / "data", extra=[
        "--tokens", str(tokfile), "--tls-cert", str(cert), "--tls-key",
        str(key)])
    d.http_port = port
    d.extra += ["--http", "https://127.0.0.1:%d" % port]
    d.start(wait=False)
    try:
        url = "https://127.0.0.1:%d/v1/status" % port
        for _ in range(100):
            p = subprocess.run(["curl", "-sS", "--max-time", "10",
                                "--cacert", str(cert), "-H",
                                "Authorization: Bearer " + TOKENS["read"],
                                "-o", "/dev/null", "-w", "%{http_code}", url],
                               capture_output=True, text=True, timeout=60)
            if p.stdout == "200":
                break
            __import__("time").sleep(0.1)
        assert p.stdout == "200", (p.stdout, p.stderr, d.read_log())
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert",
                            str(cert), "-o", "/dev/null", "-w",
                            "%{http_code}", url],
                           capture_output=True, text=True, timeout=60)
        assert p.stdout == "401"
        env = dict(os.environ, FDOD_TOKEN=TOKENS["read"],
                   FDOD_CA_FILE=str(cert))
        # fdoctl (libcurl) checks the name or the address against the
        # certificate's subjectAltName, and refuses without the CA.
        for host in ("localhost", "127.0.0.1"):
            p = subprocess.run([FDOCTL, "status", "--json", "--http",
                                "https://%s:%d" % (host, port)],
                               capture_output=True, text=True, env=env,
                               timeout=120)
            assert p.returncode == 0, (p.stderr, d.read_log())
            assert "pending" in json.loads(p.stdout)
        env.pop("FDOD_CA_FILE")
        p = subprocess.run([FDOCTL, "status", "--http",
                            "https://localhost:%d" % port],
                           capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 1 and "certificate" in p.stderr, p.stderr
    finally:
        d.stop()
