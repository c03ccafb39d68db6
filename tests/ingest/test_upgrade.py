"""A store of an older layout opened by this fdod (issue 22, store version 3).

tests/fixtures/store-v2 is a store written by fdod of layout version 2, with
the answers that fdod gave over it (its README says how both were made).
Opened now, it is upgraded in place (table totals computed from its counts)
and /v1/binaries, /v1/binaries/{b} and readiness, which read the totals, give
the same bytes as before; later batches add to the totals.
"""
import os
import time
import shutil

from fdodtest import ROOT, Daemon, without_staleness

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v2")
# The fixture's buckets are of 2025: kept forever, and a batch of that
# time is still accepted (no retention; exactly-once for ten years).
KEEP = ["--retention", "0", "--dedup-ttl", "3650d"]

ANSWERS = [
    ("binaries.json", "/v1/binaries"),
    ("webserver.json", "/v1/binaries/webserver"),
    ("readiness.json", "/v1/binaries/webserver/readiness?window=0"),
]


def fixture_copy(tmp_path):
    data = tmp_path / "data"
    os.makedirs(data / "store")
    shutil.copy(os.path.join(FIXTURE, "store", "data.mdb"),
                data / "store" / "data.mdb")
    return data


def test_version_2_store_is_upgraded_and_answers_the_same_bytes(tmp_path):
    data = fixture_copy(tmp_path)
    with Daemon(data, extra=KEEP) as d:
        assert ("upgraded from version 2 to 6: 4 totals rows from 12 "
                "counts entries") in d.read_log()
        for name, path in ANSWERS:
            status, body = d.request("GET", path)
            assert status == 200, (path, body)
            with open(os.path.join(FIXTURE, "answers", name), "rb") as f:
                want = f.read()
            body = without_staleness(body)
            assert body == want, "%s:\n got %s\nwant %s" % (path, body, want)

        # The fixture's first batch again under a new seq: the same stacks
        # in the same bucket, so the samples grow and the stacks do not.
        with open(os.path.join(FIXTURE, "batches", "b1.txt")) as f:
            text = f.read().replace("seq 1\n", "seq 3\n")
        rc, out = d.push(text)
        assert rc == 0, out
        d.wait_merged()
        web = d.get("/v1/binaries/webserver")
        assert web["samples"] == 392 + 130
        # The merge wrote a second run into the bucket (its stacks count
        # twice); the bucket's hour is over, so compaction merges its
        # runs into one, soon after, and the stacks are distinct again.
        deadline = time.time() + 20
        while web["stacks"] != 9 and time.time() < deadline:
            time.sleep(0.1)
            web = d.get("/v1/binaries/webserver")
        assert web["samples"] == 392 + 130
        assert web["stacks"] == 9
        assert d.stop() == 0

    # Opened again: the current version already, nothing recomputed.
    with Daemon(data, extra=KEEP) as d:
        assert d.get("/v1/binaries/webserver")["samples"] == 522
        assert d.stop() == 0
        log = open(d.log_path).read()
        assert log.count("upgraded from version 2") == 1, log
