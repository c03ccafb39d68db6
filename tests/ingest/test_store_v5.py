"""A store of layout version 5 opened, and upgraded, by this fdod.

tests/fixtures/store-v5 holds what fdod of layout version 5 kept on disk,
made as tests/fixtures/store-v4 was (its README), with table aggs holding
the leaf and pair sums of b1's bucket (the llvm publish computed them);
answers/ also holds an llvm profile, which reads those sums. A change of
any stored layout that forgets a new STORE_VERSION (and a new fixture)
makes this fdod answer differently, or refuse the store, and fails here.
Version 6 keeps counts as sorted runs (storage/counts.c): opening converts
each bucket's counts entries into one run, and the recorded answers
(table aggs' llvm profile included: the conversion keeps it) still hold.
The helpers are test_store_v4's.
"""
import os

from fdodtest import ROOT, Daemon
from test_profiles_api import metric
from test_store_v4 import (ANSWERS, KEEP, SEL, check_answers,
                           check_resent_and_reopened, fixture_copy)

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v5")
# Read from the fixture's table aggs (b1's bucket) and b2's stacks.
ANSWERS_V5 = ANSWERS + [
    ("hot.llvm", "/v1/profiles/hot?format=llvm&encoding=text&" + SEL)]


def test_version_5_store_and_wal_answer_as_when_written(tmp_path):
    data = fixture_copy(tmp_path, FIXTURE)
    with Daemon(data, extra=KEEP) as d:
        d.wait_pending_zero()
        log = d.read_log()
        # Its counts become runs; b2 was in the WAL only.
        assert ("upgraded from version 5 to 6: 2 counts entries into 1 "
                "runs") in log, log
        assert "replaying 1 logged batches" in log, log
        assert metric(d, 'fdod_store_entries{table="aggs"}') > 0
        check_answers(d, FIXTURE, ANSWERS_V5)
        check_resent_and_reopened(data, d)
    with Daemon(data, extra=KEEP) as d:
        d.wait_pending_zero()
        check_answers(d, FIXTURE, ANSWERS_V5)
        assert d.stop() == 0
        log = open(d.log_path).read()
        assert log.count("replaying") == 1, log
        assert log.count("upgraded") == 1, log  # the first open only
