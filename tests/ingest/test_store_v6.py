"""A store of the current layout (version 6) opened by this fdod.

tests/fixtures/store-v6 holds what fdod of layout version 6 kept on disk,
made as tests/fixtures/store-v5 was (its README), with table counts as
sorted runs (storage/counts.c; one run per bucket, as compaction leaves a
bucket whose hour is over) and table aggs holding the leaf and pair sums
of b1's bucket. Its recorded answers are store-v5's, byte for byte (but
the versions' creation times). A change of any stored layout that forgets
a new STORE_VERSION (and a new fixture) makes this fdod answer
differently, or refuse the store, and fails here. The helpers are
test_store_v4's.
"""
import os

from fdodtest import ROOT, Daemon
from test_profiles_api import metric
from test_store_v4 import (KEEP, check_answers, check_resent_and_reopened,
                           fixture_copy)
from test_store_v5 import ANSWERS_V5

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v6")


def test_version_6_store_and_wal_answer_as_when_written(tmp_path):
    data = fixture_copy(tmp_path, FIXTURE)
    with Daemon(data, extra=KEEP) as d:
        d.wait_pending_zero()
        log = d.read_log()
        # Its version needs no upgrade; b2 was in the WAL only.
        assert "upgraded" not in log, log
        assert "replaying 1 logged batches" in log, log
        assert metric(d, 'fdod_store_entries{table="aggs"}') > 0
        assert metric(d, 'fdod_store_entries{table="countruns"}') >= 1
        check_answers(d, FIXTURE, ANSWERS_V5)
        check_resent_and_reopened(data, d)
    with Daemon(data, extra=KEEP) as d:
        d.wait_pending_zero()
        check_answers(d, FIXTURE, ANSWERS_V5)
        assert d.stop() == 0
        log = open(d.log_path).read()
        assert log.count("replaying") == 1, log
        assert "upgraded" not in log, log
