"""fdoctl backup while fdod runs, and a daemon restored from the copy."""
import subprocess

from fdodtest import FDOCTL, Daemon, batch_text

BID = "ab" * 20


def push(d, seq, count):
    rc, out = d.push(batch_text("bk", seq, "bk", BID,
                                [(count, [0x555555555000 + seq])]))
    assert rc == 0, out
    return out


def test_online_backup_and_restore(tmp_path):
    dest = tmp_path / "backup"
    with Daemon(tmp_path / "data",
                extra=["--backup-dir", str(tmp_path)]) as d:
        for seq in (1, 2, 3):
            push(d, seq, 10 * seq)
        p = subprocess.run([FDOCTL, "backup", "--http", d.http, str(dest)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        push(d, 4, 1000)  # after the backup: not in it
        assert d.get("/v1/binaries/bk")["samples"] == 1060
        p = subprocess.run([FDOCTL, "backup", "--http", d.http, str(dest)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "409" in p.stderr
        assert d.stop() == 0
    r = Daemon(dest)
    with r:
        assert r.get("/v1/binaries/bk")["samples"] == 60
        assert "duplicate=yes" in push(r, 2, 20)
        push(r, 5, 5)
        assert r.get("/v1/binaries/bk")["samples"] == 65
        assert r.stop() == 0
        r.start()
        assert r.get("/v1/binaries/bk")["samples"] == 65
        push(r, 6, 6)
        r.kill9()
        r.start()
        assert r.get("/v1/binaries/bk")["samples"] == 71
    # Local mode on a stopped store.
    p = subprocess.run([FDOCTL, "backup", "--data", str(dest),
                        str(tmp_path / "second")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "second" / "store" / "data.mdb").exists()
