"""Private ClickHouse servers for tests (Debian's clickhouse-server).

Every server a test starts gets free loopback ports (HTTP, native TCP,
interserver), its own data directory, logs to files there, and a users.xml
of its own (user `default`, no password, loopback only). Every server's
config names the same cluster `fdod` whose shards are the first two servers
(one replica each), so a `Distributed(fdod, ...)` table on any of them
reads both. Servers die with the test process (PR_SET_PDEATHSIG) and are
stopped by pid (SIGTERM, then SIGKILL). Waits are bounded.

    with Cluster(tmpdir, n=2) as c:
        c.query(0, "SELECT 1")
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

SERVER = os.environ.get("CLICKHOUSE_SERVER") or shutil.which(
    "clickhouse-server") or "/usr/sbin/clickhouse-server"
CLUSTER = "fdod"
START_SECONDS = 60


class ClickHouseMissing(RuntimeError):
    pass


def _die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def free_ports(n):
    """n distinct free loopback ports (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


USERS_XML = """<?xml version="1.0"?>
<yandex>
  <profiles><default>
    <max_memory_usage>2000000000</max_memory_usage>
    <load_balancing>in_order</load_balancing>
  </default></profiles>
  <users><default>
    <password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile>
    <quota>default</quota>
  </default></users>
  <quotas><default><interval>
    <duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows>
    <execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


def _config(d, ports, shards):
    http, tcp, inter = ports
    shard_xml = "".join(
        "<shard><replica><host>127.0.0.1</host><port>%d</port></replica>"
        "</shard>" % p for p in shards)
    return """<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{d}/log/server.log</log>
    <errorlog>{d}/log/server.err.log</errorlog>
    <size>10M</size><count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>64</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>16</max_concurrent_queries>
  <uncompressed_cache_size>16777216</uncompressed_cache_size>
  <mark_cache_size>16777216</mark_cache_size>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <remote_servers><{cluster}>{shards}</{cluster}></remote_servers>
</yandex>
""".format(d=d, http=http, tcp=tcp, inter=inter, cluster=CLUSTER,
           shards=shard_xml)


class Server:
    def __init__(self, d, ports, server=None):
        self.dir = d
        self.server = server or SERVER
        self.http_port, self.tcp_port, self.inter_port = ports
        self.proc = None

    def url(self, db="default", cluster=None):
        u = "clickhouse://127.0.0.1:%d/%s" % (self.http_port, db)
        return u + ("?cluster=%s" % cluster if cluster else "")

    def start(self, shards):
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, "users.xml"), "w") as f:
            f.write(USERS_XML)
        cfg = os.path.join(self.dir, "config.xml")
        with open(cfg, "w") as f:
            f.write(_config(self.dir, (self.http_port, self.tcp_port,
                                       self.inter_port), shards))
        out = open(os.path.join(self.dir, "log", "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [self.server, "--config-file=" + cfg], cwd=self.dir, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        out.close()

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "clickhouse-server in %s exited with %d: %s" %
                    (self.dir, self.proc.returncode, self.log_tail()))
            try:
                if self.query("SELECT 1", timeout=2).strip() == b"1":
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError("clickhouse-server in %s did not answer within "
                           "%d s: %s" % (self.dir, START_SECONDS,
                                         self.log_tail()))

    def log_tail(self, n=2000):
        out = b""
        for name in ("server.err.log", "stdout.log"):
            try:
                with open(os.path.join(self.dir, "log", name), "rb") as f:
                    out += f.read()[-n:]
            except OSError:
                pass
        return out.decode(errors="replace")

    def query(self, sql, data=None, timeout=30):
        """POST sql (and data after it) to the HTTP interface; the body."""
        if data is None:
            url = "http://127.0.0.1:%d/" % self.http_port
            body = sql.encode()
        else:
            url = "http://127.0.0.1:%d/?%s" % (
                self.http_port, urllib.parse.urlencode({"query": sql}))
            body = data
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("ClickHouse: %s: %s" % (
                sql[:200], e.read().decode(errors="replace")[:2000]))

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Cluster:
    """n private servers; the first two are the shards of cluster `fdod`."""

    def __init__(self, tmpdir, n=2, server=None):
        server = server or SERVER
        if not (os.path.isfile(server) and os.access(server, os.X_OK)):
            raise ClickHouseMissing(
                "clickhouse-server not found (%s): run deploy/install-deps.sh"
                % server)
        ports = free_ports(3 * n)
        self.servers = [
            Server(os.path.join(str(tmpdir), "ch%d" % i),
                   ports[3 * i:3 * i + 3], server) for i in range(n)]

    def __enter__(self):
        shards = [s.tcp_port for s in self.servers[:2]]
        try:
            for s in self.servers:
                s.start(shards)
            deadline = time.monotonic() + START_SECONDS
            for s in self.servers:
                s.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        for s in self.servers:
            s.stop()

    def __getitem__(self, i):
        return self.servers[i]

    def query(self, i, sql, data=None):
        return self.servers[i].query(sql, data)
