"""A store of layout version 4 opened (and upgraded to 5) by this fdod.

tests/fixtures/store-v4 holds what fdod of layout version 4 kept on disk:
the LMDB environment (every table: dictionaries, buildids with a file id,
stacks, counts, totals, branches, pending, symcache, batches, hosts, two
published versions), its write-ahead log with one batch the store had not
merged yet, and the symbolizer's index cache; answers/ holds what that
fdod answered once the batch was merged (make.sh made both). A change of
any stored layout that forgets a new STORE_VERSION (and a new fixture)
makes this fdod answer differently, or refuse the store, and fails here.
"""
import json
import os
import shutil

from fdodtest import ROOT, Daemon, without_staleness

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v4")
BID = "902c87aa03aa2fc4e3ed0ab8916fcb1f88885cbb"
# The fixture's buckets are of 2025: kept forever, and its batches stay
# known (exactly-once for ten years).
KEEP = ["--retention", "0", "--dedup-ttl", "3650d"]
SEL = "window=0&min_samples=1"
ANSWERS = [
    ("binaries.json", "/v1/binaries"),
    ("hot.json", "/v1/binaries/hot"),
    ("readiness.json", "/v1/binaries/hot/readiness?window=0"),
    ("hot.folded", "/v1/profiles/hot?format=folded&" + SEL),
    ("versions.json", "/v1/profiles/hot/versions"),
    ("symcache.json", "/v1/symcache/" + BID),
]


def answer(name, mode="rb", fixture=FIXTURE):
    with open(os.path.join(fixture, "answers", name), mode) as f:
        return f.read()


def fixture_copy(tmp_path, fixture=FIXTURE):
    """The fixture as fdod's --data: opening it replays (and trims) the
    WAL, so it is opened from a copy; the symbol tree is put back from
    src/hot, as the upload left it."""
    data = tmp_path / "data"
    os.makedirs(data / "store")
    shutil.copy(os.path.join(fixture, "store", "data.mdb"),
                data / "store" / "data.mdb")
    for d in ("wal", "cache"):
        shutil.copytree(os.path.join(fixture, d), data / d)
    slot = data / "symbols" / BID[:2] / BID
    os.makedirs(slot)
    for name in ("executable", "debuginfo"):
        shutil.copy(os.path.join(fixture, "src", "hot"), slot / name)
    return data


def check_answers(d, fixture=FIXTURE, answers=ANSWERS):
    for name, path in answers:
        status, body = d.request("GET", path)
        assert status == 200, (path, body)
        want = answer(name, fixture=fixture)
        body = without_staleness(body)
        assert body == want, "%s:\n got %s\nwant %s" % (path, body, want)
    for fmt in ("folded", "llvm"):
        pub = json.loads(answer("publish-%s.json" % fmt, fixture=fixture))
        status, body = d.request(
            "GET", "/v1/profiles/hot/versions/" + pub["id"])
        assert status == 200, body
        assert body == answer("version-%s.bin" % fmt, fixture=fixture), fmt
    st = d.get("/v1/status")
    got = json.loads(json.dumps(st["pending"], sort_keys=True))
    want = json.loads(answer("status-pending.json", fixture=fixture))
    assert got == want, st["pending"]


def check_resent_and_reopened(data, d):
    """b1 and b2 sent again are duplicates; stopped and opened again, the
    store answers the same with nothing to replay."""
    for b in ("b1.txt", "b2.txt"):
        with open(os.path.join(FIXTURE, "batches", b)) as f:
            rc, out = d.push(f.read())
        assert rc == 0 and "duplicate=yes" in out, out
    d.wait_merged()
    assert d.get("/v1/binaries/hot")["samples"] == 135
    assert d.stop() == 0


def test_version_4_store_and_wal_answer_as_when_written(tmp_path):
    data = fixture_copy(tmp_path)
    with Daemon(data, extra=KEEP) as d:
        # b2's new address is symbolized after the replay.
        d.wait_pending_zero()
        log = d.read_log()
        # Version 5 added table aggs, created empty; b2 was in the WAL
        # only.
        assert "upgraded from version 4 to 6" in log, log
        assert "replaying 1 logged batches" in log, log
        check_answers(d)
        check_resent_and_reopened(data, d)
    # Opened again: nothing to replay, the same answers.
    with Daemon(data, extra=KEEP) as d:
        d.wait_pending_zero()
        check_answers(d)
        assert d.stop() == 0
        log = open(d.log_path).read()
        assert log.count("replaying") == 1, log
        assert log.count("upgraded") == 1, log


def test_published_versions_keep_their_bytes_and_inputs(tmp_path):
    data = fixture_copy(tmp_path)
    with Daemon(data, extra=KEEP) as d:
        d.wait_merged()
        versions = d.get("/v1/profiles/hot/versions")["versions"]
        assert [v["version"] for v in versions] == [1, 2]
        for v in versions:
            pub = json.loads(answer("publish-%s.json" % v["format"]))
            assert v["id"] == pub["id"]
            assert v["inputs"] == pub["inputs"]
            # Published before b2 arrived: b1's 100 samples only.
            assert v["inputs"]["samples"] == 100
            assert v["bytes"] == pub["bytes"]
        assert d.stop() == 0
