"""The storage seam against real ClickHouse servers (docs/clickhouse.md).

Two private clickhouse-server processes are the shards of cluster `fdod`;
build/cluster/chcheck writes the same blocks of count deltas to an LMDB
store and, block by block, to each shard's local table, and reads the
per-bucket sums back from LMDB and through the Distributed table of each
server: every row must be identical. Then a server stopped: a clear error.
"""
import os
import subprocess

import pytest

import chtest

ROOT = os.environ.get("FDOD_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("FDOD_BUILD") or os.path.join(ROOT, "build")
CHCHECK = os.path.join(BUILD, "cluster", "chcheck")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not os.access(CHCHECK, os.X_OK):
        pytest.fail("%s missing: run make unit" % CHCHECK)
    # No skip when the server is missing: install-deps.sh installs it.
    with chtest.Cluster(tmp_path_factory.mktemp("ch"), n=2) as c:
        yield c


def run(*args, timeout=120):
    return subprocess.run([CHCHECK, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_schema_accepted_and_idempotent(cluster):
    for _ in range(2):
        r = run("read", *(s.url("schema_db", chtest.CLUSTER)
                          for s in cluster.servers))
        assert r.returncode == 0, r.stderr
    tables = cluster[0].query("SHOW TABLES FROM schema_db").split()
    assert tables == [b"counts", b"counts_local", b"published",
                      b"published_local", b"stacks", b"stacks_local",
                      b"symcache", b"symcache_local"]
    engine = cluster[0].query(
        "SELECT engine, partition_key FROM system.tables WHERE "
        "database = 'schema_db' AND name = 'counts_local'")
    assert engine.startswith(b"SummingMergeTree\t")


def test_lmdb_and_two_shards_same_sums(cluster, tmp_path):
    urls = [cluster[i].url("fdod_cmp", chtest.CLUSTER) for i in range(2)]
    r = run("compare", str(tmp_path / "lmdb"), *urls)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "same sums from LMDB and ClickHouse" in r.stdout
    # Both shards hold rows (so the Distributed reads merged two), in
    # partitions of two days.
    for s in cluster.servers:
        n = int(s.query("SELECT count() FROM fdod_cmp.counts_local"))
        assert n > 0
        days = s.query("SELECT DISTINCT partition FROM system.parts WHERE "
                       "database = 'fdod_cmp' AND table = 'counts_local' "
                       "AND active ORDER BY partition").split()
        assert days == [b"20429", b"20430"]  # 2025-12-07 and -08, UTC
    # SummingMergeTree's own merges keep the sums exact (the 128-bit
    # wrap of Decimal(38, 0) included): merged into one part per
    # partition, the reads are the same.
    for s in cluster.servers:
        s.query("OPTIMIZE TABLE fdod_cmp.counts_local FINAL")
        parts = s.query("SELECT count() FROM system.parts WHERE database ="
                        " 'fdod_cmp' AND table = 'counts_local' AND active")
        assert parts == b"2\n"
    r = run("recheck", str(tmp_path / "lmdb"), *urls)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "same sums from LMDB and ClickHouse" in r.stdout


def test_retention_drops_days_on_each_shard(cluster, tmp_path):
    urls = [cluster[i].url("fdod_ret", chtest.CLUSTER) for i in range(2)]
    r = run("compare", str(tmp_path / "lmdb"), *urls)
    assert r.returncode == 0, r.stdout + r.stderr
    day2 = 1765065600 + 86400  # the buckets span 2025-12-07 and -08
    total = int(cluster[0].query("SELECT count() FROM fdod_ret.counts"))
    later = int(cluster[0].query(
        "SELECT count() FROM fdod_ret.counts WHERE bucket >= %d" % day2))
    assert 0 < later < total
    # A time inside the second day drops only the first.
    for i, url in enumerate(urls):
        r = run("drop", url, str(day2 + 3600))
        assert r.returncode == 0 and "dropped 1 days" in r.stdout, r.stderr
        if i == 0:  # one shard done: the other still holds its first day
            n = int(cluster[0].query("SELECT count() FROM fdod_ret.counts"))
            assert later < n < total
    assert int(cluster[0].query(
        "SELECT count() FROM fdod_ret.counts")) == later
    assert run("drop", urls[0], str(day2 + 3600)).stdout == \
        "dropped 0 days\n"


def test_one_server_without_cluster(cluster, tmp_path):
    # No ?cluster=: reads the local table of that one server; both URLs
    # are the same server, so its sums alone equal LMDB's.
    url = cluster[1].url("fdod_one")
    r = run("compare", str(tmp_path / "lmdb"), url, url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"counts\n" not in cluster[1].query("SHOW TABLES FROM fdod_one")


def test_clickhouse_error_is_reported(cluster):
    # A cluster name the servers do not know: ClickHouse refuses the
    # Distributed table; the message says so.
    r = run("read", cluster[0].url("fdod_bad", "nosuchcluster"))
    assert r.returncode == 3
    assert "HTTP 500" in r.stderr and "nosuchcluster" in r.stderr, r.stderr


def test_unreachable_is_a_clear_error(tmp_path):
    (port,) = chtest.free_ports(1)
    r = run("read", "clickhouse://127.0.0.1:%d/fdod" % port)
    assert r.returncode == 3
    assert "ClickHouse http://127.0.0.1:%d/" % port in r.stderr, r.stderr


def test_stopped_shard_is_a_clear_error(tmp_path):
    with chtest.Cluster(tmp_path / "ch", n=2) as c:
        url = c[0].url("fdod_stop", chtest.CLUSTER)
        r = run("read", url, c[1].url("fdod_stop", chtest.CLUSTER))
        assert r.returncode == 0, r.stderr
        c[1].stop()
        r = run("read", url)
        assert r.returncode == 3
        assert "HTTP" in r.stderr, r.stderr
        c[0].stop()
        r = run("read", url)
        assert r.returncode == 3
        assert "ClickHouse http://127.0.0.1:%d/" % c[0].http_port in \
            r.stderr, r.stderr


def test_harness_missing_server_is_clear(tmp_path):
    with pytest.raises(chtest.ClickHouseMissing, match="install-deps"):
        chtest.Cluster(tmp_path, server=str(tmp_path / "no-such-server"))


def test_harness_distributed_over_two_shards(cluster):
    # The harness's cluster `fdod`: a Distributed table on either server
    # reads the local tables of both.
    for s in cluster.servers:
        s.query("CREATE TABLE IF NOT EXISTS default.h (x UInt32) "
                "ENGINE = MergeTree() ORDER BY x")
    cluster[0].query("INSERT INTO default.h VALUES (1), (2)")
    cluster[1].query("INSERT INTO default.h VALUES (40)")
    for s in cluster.servers:
        s.query("CREATE TABLE IF NOT EXISTS default.hd AS default.h "
                "ENGINE = Distributed(%s, default, h)" % chtest.CLUSTER)
        assert s.query("SELECT sum(x), count() FROM default.hd") == \
            b"43\t3\n"
