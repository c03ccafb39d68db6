"""Stored bytes have one owner (issue 25, item 1): every LMDB value is
encoded and decoded by storage/'s codecs (layouts in storage/codec.c), and
no code outside storage/ and schemas/ reads or writes a value by raw
offsets.

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
PUTTERS = {"store_put": 4, "store_cursor_put": 3}  # -> the value's index
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
    """(first line, body) of each top-level brace block."""
    depth, start = 0, None
    for i, c in enumerate(src):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                yield src.count("\n", 0, start) + 1, src[start:i + 1]
                start = None


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


def value_names(body):
    names = set()
    for calls, is_get in ((GETTERS, True), (PUTTERS, False)):
        for name, at in calls.items():
            for args in call_args(body, name):
                if len(args) <= at:
                    continue
                a = args[at]
                if is_get:
                    a = a.lstrip("&")
                m = re.fullmatch(r"\(?\s*(?:\([^()]*\)\s*)?([A-Za-z_]\w*)"
                                 r"\s*\)?", a)
                if m and m.group(1) != "NULL":
                    names.add(m.group(1))
    return names


def findings_in(path, src):
    src = strip(src)
    found = []
    for line, body in functions(src):
        names = value_names(body)
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
                    r"\b%s\s*\[\s*\d)" % (v, v, v), body):
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


def findings(root=ROOT):
    out = []
    for part in PARTS:
        for dirpath, _, files in os.walk(os.path.join(root, part)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8", errors="replace") as fh:
                        out += findings_in(os.path.relpath(p, root),
                                           fh.read())
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
    }
    for name, src in bad.items():
        assert findings_in(name, src), name
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
    """
    assert not findings_in("good", good)


if __name__ == "__main__":
    found = findings(sys.argv[1] if len(sys.argv) > 1 else ROOT)
    print("\n".join(found) or "none")
    sys.exit(1 if found else 0)
