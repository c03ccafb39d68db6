"""fdod as a debuginfod server, checked with the real clients."""
import filecmp
import os
import subprocess

from fdodtest import Daemon, build_id, symbols


def test_debuginfod_clients_get_fdod_symbols(tmp_path):
    src = tmp_path / "d.c"
    src.write_text("__attribute__((noinline)) int deep_function(int x)\n"
                   "{ return x * 3 + 1; }\n"
                   "int main(int c, char **v) { return deep_function(c); }\n")
    exe = str(tmp_path / "d")
    subprocess.run(["gcc", "-O2", "-g", "-o", exe, str(src)], check=True, timeout=300)
    stripped = str(tmp_path / "d.stripped")
    subprocess.run(["strip", "-g", "-o", stripped, exe], check=True, timeout=300)
    bid = build_id(exe)
    cache = tmp_path / "client-cache"
    with Daemon(tmp_path / "data") as d:
        with open(exe, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=d", f.read())[0] \
                == 201
        env = dict(os.environ, DEBUGINFOD_URLS=d.http,
                   DEBUGINFOD_CACHE_PATH=str(cache), DEBUGINFOD_TIMEOUT="10")
        for kind in ("debuginfo", "executable"):
            p = subprocess.run(["debuginfod-find", kind, bid], env=env,
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            assert filecmp.cmp(p.stdout.strip(), exe, shallow=False)
        # A tool that only has the stripped binary finds lines through fdod.
        addr = "0x%x" % symbols(exe)["deep_function"][0]
        p = subprocess.run(["eu-addr2line", "-f", "-e", stripped, addr],
                           env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        assert "deep_function" in p.stdout and "d.c:" in p.stdout, p.stdout
        # Unknown ids and sources: clean 404s.
        p = subprocess.run(["debuginfod-find", "debuginfo", "ab" * 20],
                           env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode != 0
        assert d.request("GET", "/buildid/%s/source/usr/src/d.c" % bid)[0] \
            == 404
        assert d.request("GET", "/buildid/NOTHEX/debuginfo")[0] == 404
        status, body = d.request("HEAD", "/buildid/%s/debuginfo" % bid)
        assert status == 200 and body == b""
        req = __import__("urllib.request").request
        r = req.urlopen(d.http + "/buildid/%s/executable" % bid)
        assert int(r.headers["X-DEBUGINFOD-SIZE"]) == os.path.getsize(exe)
        assert r.headers["X-DEBUGINFOD-FILE"]
        assert r.read() == open(exe, "rb").read()
