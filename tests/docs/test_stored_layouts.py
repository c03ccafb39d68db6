"""Stored bytes have one owner (issue 25, item 1): every LMDB value is
encoded and decoded by storage/'s codecs (layouts in storage/codec.c), and
no code outside storage/ and schemas/ reads or writes a value by raw
offsets. The same holds for the write-ahead log's record of a batch
(storage/walrec.c, store_walbatch_encode/decode): a function that appends
a record (store_wal_append) or gets one back (a store_wal_replay callback,
known by its struct store_wal_pos parameter) does not code its bytes.

A function outside them that gets a value from the store (store_get,
store_cursor_seek, store_cursor_next, store_cursor_get) or puts one
(store_put, store_cursor_put) must not code bytes itself: no
fdo_get_be*/fdo_put_be* (or _le*), no `v + 8`, `v[1]`, `(const uint8_t *)v
+ 24` on the value it got or the buffer it puts. Wire, HTTP and file code
does not touch the store and is not looked at; keys are built by
storage's key codecs, which this does not forbid.
"""
import os
import re
import sys

HERE = os.path.dirname(__file__)
ROOT = os.environ.get("FDOD_ROOT") or os.path.abspath(
    os.path.join(HERE, "..", ".."))
# Everything built into fdod, fdoctl and fdo-agent but the two owners.
PARTS = ["agent", "aggregator", "cli", "common", "server", "symbolizer"]

GETTERS = {  # call -> index of the argument that receives the value
    "store_get": 4,
    "store_cursor_seek": 5,
    "store_cursor_next": 3,
    "store_cursor_get": 3,
}
PUTTERS = {"store_put": 4, "store_cursor_put": 3,  # -> the value's index
           "store_wal_append": 1}
NAME = r"[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*"
# A store_wal_replay callback's record parameter: (..., const void *rec,
# size_t len, struct store_wal_pos end).
REPLAYED = re.compile(r"const\s+(?:void|u?int8_t)\s*\*\s*([A-Za-z_]\w*)\s*,"
                      r"\s*size_t\s+\w+\s*,\s*struct\s+store_wal_pos\b")
RAW = re.compile(r"\bfdo_(?:get|put)_[bl]e(?:16|32|64)\s*\(")


def strip(src):
    """src without comments, string and character literals (same
    length, line breaks kept)."""
    out = re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|"
                 r"'(?:\\.|[^'\\\n])*'",
                 lambda m: re.sub(r"[^\n]", " ", m.group(0)), src,
                 flags=re.S)
    return out


def functions(src):
    """(first line, header, body) of each top-level brace block; the
    header is the text since the previous block or declaration."""
    depth, start, prev = 0, None, 0
    for i, c in enumerate(src):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                head = src[prev:start]
                head = head[head.rfind(";") + 1:]
                yield (src.count("\n", 0, start) + 1, head,
                       src[start:i + 1])
                start, prev = None, i + 1


def call_args(body, name):
    """The argument lists (split at top-level commas) of calls to name."""
    for m in re.finditer(r"\b%s\s*\(" % name, body):
        i, depth, args, cur = m.end(), 1, [], ""
        while i < len(body) and depth:
            c = body[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            if depth == 1 and c == ",":
                args.append(cur.strip())
                cur = ""
            elif depth:
                cur += c
            i += 1
        args.append(cur.strip())
        yield args


def value_names(body, head=""):
    names = set(REPLAYED.findall(head))
    for calls, is_get in ((GETTERS, True), (PUTTERS, False)):
        for name, at in calls.items():
            for args in call_args(body, name):
                if len(args) <= at:
                    continue
                a = args[at]
                if is_get:
                    a = a.lstrip("&")
                m = re.fullmatch(r"\(?\s*(?:\([^()]*\)\s*)?(%s)"
                                 r"\s*\)?" % NAME, a)
                if m and m.group(1) != "NULL":
                    names.add(m.group(1))
    return names


def findings_in(path, src):
    src = strip(src)
    found = []
    for line, head, body in functions(src):
        names = value_names(body, head)
        if not names:
            continue
        if RAW.search(body):
            found.append("%s:%d: byte coding (fdo_*_be/le) in a function "
                         "that reads or writes a store value" % (path, line))
        for v in sorted(names):
            raw = None
            for m in re.finditer(
                    r"(?:\(\s*(?:const\s+)?(?:u?int8_t|unsigned char|char)"
                    r"\s*\*\s*\)\s*%s\s*\+|\b%s\s*\+\s*\w|"
                    r"\b%s\s*\[\s*\d)" % ((re.escape(v),) * 3), body):
                # Not the declaration of the buffer: uint8_t val[16].
                if not re.search(r"(?:\b(?:u?int8_t|char)|,)\s*$",
                                 body[max(0, m.start() - 40):m.start()]):
                    raw = m
                    break
            if raw:
                at = line + body.count("\n", 0, raw.start())
                found.append("%s:%d: raw offset into store value %r: %s" %
                             (path, at, v, raw.group(0)))
    return found


def wal_findings_in(path, src):
    """A record appended to the WAL is built by store_walbatch_encode in
    the same file: the buffer whose bytes go to store_wal_append is that
    encoder's output (aggregator/prep.c had its own encoder before)."""
    src = strip(src)
    built = set()
    for args in call_args(src, "store_walbatch_encode"):
        if len(args) == 2:
            built.add(args[1].lstrip("&").strip())
    found = []
    for args in call_args(src, "store_wal_append"):
        if len(args) < 2:
            continue
        buf = re.sub(r"\s*(?:\.|->)data$", "", args[1])
        if buf not in built:
            found.append("%s: store_wal_append(%s) is not given the output "
                         "of store_walbatch_encode" % (path, args[1]))
    return found


def findings(root=ROOT):
    out = []
    for part in PARTS:
        for dirpath, _, files in os.walk(os.path.join(root, part)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                    rel = os.path.relpath(p, root)
                    out += findings_in(rel, text) + wal_findings_in(rel, text)
    return out


def test_no_store_value_is_coded_outside_storage():
    found = findings()
    assert not found, "\n".join(
        ["stored layouts are coded in storage/ (storage/codec.c):"] + found)


def test_the_check_sees_raw_offsets():
    """The check itself: it flags the shapes that were in the tree before
    the codecs (server/profiles.c, aggregator/merge.c, ingest.c) and
    leaves wire code alone."""
    bad = {
        "read": """static int f(store_txn *t) {
            const void *v; size_t vl;
            if (store_get(t, STORE_BATCHES, k, sizeof k, &v, &vl))
                return 0;
            return fdo_get_be64((const uint8_t *)v + 24) != 1;
        }""",
        "cursor": """static int f(store_cursor *c) {
            const void *k, *v; size_t kl, vl;
            int rc = store_cursor_seek(c, s, sizeof s, &k, &kl, &v, &vl);
            return rc == 0 && vl >= 48 && !memcmp((const uint8_t *)v + 16,
                                                  h, 32);
        }""",
        "write": """static int f(store_txn *t, uint8_t *val) {
            val[0] = 1;
            memcpy(val + 16, h, 32);
            return store_put(t, STORE_PUBLISHED, key, sizeof key, val,
                             len, 0);
        }""",
        "wal append": """static int f(struct ing *g, struct prep *p) {
            fdo_put_be64(seq, p->b.seq);
            fdo_buf_append(&g->rec, seq, 8);
            return store_wal_append(g->wal, g->rec.data, g->rec.len, NULL);
        }""",
        "wal replay": """static int replay_one(void *arg, const void *rec,
                                        size_t len, struct store_wal_pos end)
        {
            struct prep *p = arg;
            p->b.seq = fdo_get_be64((const uint8_t *)rec + 9);
            return 0;
        }""",
        "wal replay offset": """static int replay_one(void *arg,
            const uint8_t *rec, size_t len, struct store_wal_pos end)
        {
            return rec[0] != 1;
        }""",
    }
    for name, src in bad.items():
        assert findings_in(name, src), name
    old_ingest = """static int log_batch(agg_ingest *ing, struct prep *p) {
        int rc = prep_encode(p, &ing->rec);
        if (!rc)
            rc = store_wal_append(ing->wal, ing->rec.data, ing->rec.len,
                                  &p->wal_end);
        return rc;
    }"""
    assert wal_findings_in("old ingest.c", old_ingest)
    assert not wal_findings_in("ingest.c", old_ingest.replace(
        "prep_encode(p, &ing->rec)", "store_walbatch_encode(&p->b, &ing->rec)"))
    good = """static int f(store_txn *t, struct prep *p) {
        const void *v; size_t vl; struct store_batch b;
        uint8_t key[STORE_BATCHES_KEY_SIZE];
        store_batches_key_encode(key, 1, p->seq);
        if (store_get(t, STORE_BATCHES, key, sizeof key, &v, &vl) ||
            store_batches_decode(v, vl, &b))
            return 0;
        return b.digest != p->digest;
    }
    static uint64_t seq_of(const uint8_t *h) { return fdo_get_be64(h); }
    static int replay_one(void *arg, const void *rec, size_t len,
                          struct store_wal_pos end) {
        struct prep *p;
        return prep_decode(rec, len, &p);
    }
    static int log_one(struct ing *g, struct prep *p) {
        int rc = store_walbatch_encode(&p->b, &g->rec);
        return rc ? rc : store_wal_append(g->wal, g->rec.data, g->rec.len,
                                          &p->wal_end);
    }
    """
    assert not findings_in("good", good)


if __name__ == "__main__":
    found = findings(sys.argv[1] if len(sys.argv) > 1 else ROOT)
    print("\n".join(found) or "none")
    sys.exit(1 if found else 0)
