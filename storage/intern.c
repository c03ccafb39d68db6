/*
 * storage/intern.c — dictionaries: strings, binary names, label sets and
 * build-ids to 32-bit ids and back, and the per-build-id record.
 *
 * Workload: lookups (name -> id on every ingested batch, id -> name on every
 * profile built) outnumber inserts by far; a name is inserted once, ever.
 * Both directions live in the dictionary's own table under a one-byte
 * prefix ('n' name -> id, 'i' id -> name), so one put pair keeps them in
 * step; ids come from a counter in meta ("id.<dict>"), start at 1 and are
 * never reused. Layouts: storage/codec.c.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/storage_int.h"

#define PFX_NAME   'n'
#define PFX_ID	   'i'
#define PFX_FILEID 'f' /* table buildids only: file id -> build-id */
#define REC_FORMAT 1
#define REC_HDR	   24

static const enum store_table dict_table[STORE_NDICTS] = {
	[STORE_DICT_STRINGS] = STORE_STRINGS,
	[STORE_DICT_BINARIES] = STORE_BINARIES,
	[STORE_DICT_LABELSETS] = STORE_LABELSETS,
	[STORE_DICT_BUILDIDS] = STORE_BUILDIDS,
};
static const char *const dict_counter[STORE_NDICTS] = {
	[STORE_DICT_STRINGS] = "id.strings",
	[STORE_DICT_BINARIES] = "id.binaries",
	[STORE_DICT_LABELSETS] = "id.labelsets",
	[STORE_DICT_BUILDIDS] = "id.buildids",
};

/* ----------------------------------------------------------- label sets -- */

static int key_char_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '=' && c != ',';
}

static int value_char_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != ',';
}

/* check_label validates "k=v" of length len; *klen gets the key length. */
static int check_label(const char *l, size_t len, size_t *klen)
{
	const char *eq = memchr(l, '=', len);
	if (!eq || eq == l)
		return FDO_EINVAL;
	size_t k = (size_t)(eq - l);
	for (size_t i = 0; i < k; i++)
		if (!key_char_ok((unsigned char)l[i]))
			return FDO_EINVAL;
	for (size_t i = k + 1; i < len; i++)
		if (!value_char_ok((unsigned char)l[i]))
			return FDO_EINVAL;
	*klen = k;
	return FDO_OK;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* labelset_canonical: bytes is a valid canonical label set text. */
static int labelset_canonical(const char *p, size_t len)
{
	const char *prev = NULL;
	size_t prev_k = 0;
	size_t i = 0;
	if (len == 0)
		return 1;
	while (i <= len) {
		const char *end = memchr(p + i, ',', len - i);
		size_t l = end ? (size_t)(end - (p + i)) : len - i;
		size_t k;
		if (check_label(p + i, l, &k))
			return 0;
		if (prev && key_cmp(prev, prev_k, p + i, k) >= 0)
			return 0;
		prev = p + i;
		prev_k = k;
		i += l + 1;
	}
	return 1;
}

struct label_ref {
	const char *s;
	size_t len, klen;
};

static int label_ref_cmp(const void *a, const void *b)
{
	const struct label_ref *x = a, *y = b;
	return key_cmp(x->s, x->klen, y->s, y->klen);
}

int store_labelset_canon(const char *const *labels, size_t n, char *out,
			 size_t cap, size_t *len)
{
	if (cap == 0)
		return FDO_ELIMIT;
	out[0] = '\0';
	*len = 0;
	if (n == 0)
		return FDO_OK;
	struct label_ref *refs = calloc(n, sizeof *refs);
	if (!refs)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	size_t total = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		refs[i].s = labels[i];
		refs[i].len = strlen(labels[i]);
		rc = check_label(refs[i].s, refs[i].len, &refs[i].klen);
		total += refs[i].len + 1;
	}
	if (!rc) {
		qsort(refs, n, sizeof *refs, label_ref_cmp);
		for (size_t i = 1; i < n && !rc; i++)
			if (!label_ref_cmp(&refs[i - 1], &refs[i]))
				rc = FDO_EINVAL; /* a key given twice */
	}
	if (!rc && total > cap)
		rc = FDO_ELIMIT;
	if (!rc) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (i)
				out[o++] = ',';
			memcpy(out + o, refs[i].s, refs[i].len);
			o += refs[i].len;
		}
		out[o] = '\0';
		*len = o;
	}
	free(refs);
	return rc;
}

/* --------------------------------------------------------- build-id rec -- */

static void rec_encode(uint8_t *out, const struct store_buildid *r)
{
	out[0] = REC_FORMAT;
	out[1] = (uint8_t)(r->sym_state & 0x7);
	out[2] = (uint8_t)r->build_id_len;
	out[3] = 0;
	fdo_put_be32(out + 4, r->binary);
	fdo_put_be64(out + 8, r->first_seen);
	fdo_put_be64(out + 16, r->last_seen);
	memcpy(out + REC_HDR, r->build_id, r->build_id_len);
}

static int rec_decode(const uint8_t *p, size_t len, struct store_buildid *r)
{
	if (len < REC_HDR || p[0] != REC_FORMAT)
		return FDO_ECORRUPT;
	size_t n = p[2];
	if (n < 1 || n > FDO_BUILD_ID_MAX || len != REC_HDR + n)
		return FDO_ECORRUPT;
	memset(r, 0, sizeof *r);
	r->sym_state = p[1];
	r->build_id_len = n;
	r->binary = fdo_get_be32(p + 4);
	r->first_seen = fdo_get_be64(p + 8);
	r->last_seen = fdo_get_be64(p + 16);
	memcpy(r->build_id, p + REC_HDR, n);
	return FDO_OK;
}

static void id_key(uint8_t key[5], uint32_t id)
{
	key[0] = PFX_ID;
	fdo_put_be32(key + 1, id);
}

/* ------------------------------------------------------------ interning -- */

static int check_name(enum store_dict dict, const void *bytes, size_t len)
{
	if (len > STORE_NAME_MAX)
		return FDO_ELIMIT;
	switch (dict) {
	case STORE_DICT_STRINGS:
		return FDO_OK;
	case STORE_DICT_BINARIES:
		return len ? FDO_OK : FDO_EINVAL;
	case STORE_DICT_LABELSETS:
		return labelset_canonical(bytes, len) ? FDO_OK : FDO_EINVAL;
	case STORE_DICT_BUILDIDS:
		return len >= 1 && len <= FDO_BUILD_ID_MAX ? FDO_OK
							   : FDO_EBAD_BUILD_ID;
	default:
		return FDO_EINVAL;
	}
}

/* next_id takes the next id of dict from its counter in meta. */
static int next_id(store_txn *t, enum store_dict dict, uint32_t *id)
{
	const char *name = dict_counter[dict];
	const void *v;
	size_t vl;
	uint32_t next = 1;
	int rc = store_get(t, STORE_META, name, strlen(name), &v, &vl);
	if (rc == FDO_OK) {
		if (vl != 4)
			return FDO_ECORRUPT;
		next = fdo_get_be32(v);
	} else if (rc != FDO_ENOT_FOUND) {
		return rc;
	}
	/* Build-id ids stay below STORE_BUILDID_MAX_ID: a stacks value's
	 * first byte tells its layout by that (storage/codec.c). */
	uint32_t end = dict == STORE_DICT_BUILDIDS ? STORE_BUILDID_MAX_ID
						   : UINT32_MAX;
	if (next == 0 || next >= end) {
		fdo_error("store: dictionary %s ran out of ids",
			  store_table_name(dict_table[dict]));
		return FDO_ELIMIT;
	}
	uint8_t b[4];
	fdo_put_be32(b, next + 1);
	rc = store_put(t, STORE_META, name, strlen(name), b, 4, 0);
	if (rc)
		return rc;
	*id = next;
	return FDO_OK;
}

int store_intern(store_txn *t, enum store_dict dict, const void *bytes,
		 size_t len, int create, uint32_t *id)
{
	if ((unsigned)dict >= STORE_NDICTS || (len && !bytes))
		return FDO_EINVAL;
	int rc = check_name(dict, bytes, len);
	if (rc)
		return rc;
	enum store_table table = dict_table[dict];
	uint8_t key[1 + STORE_NAME_MAX];
	key[0] = PFX_NAME;
	if (len)
		memcpy(key + 1, bytes, len);
	const void *v;
	size_t vl;
	rc = store_get(t, table, key, len + 1, &v, &vl);
	if (rc == FDO_OK) {
		if (vl != 4)
			return FDO_ECORRUPT;
		*id = fdo_get_be32(v);
		return FDO_OK;
	}
	if (rc != FDO_ENOT_FOUND)
		return rc;
	if (!create)
		return FDO_ENOT_FOUND;
	if (!t->write)
		return FDO_EINVAL;

	uint32_t nid;
	rc = next_id(t, dict, &nid);
	if (rc)
		return rc;
	uint8_t idb[4], ik[5];
	fdo_put_be32(idb, nid);
	id_key(ik, nid);
	/* A new name changes no profile (store_generation_of): only counts
	 * that use it will, and a new build-id has no symbols yet. */
	t->quiet = 1;
	rc = store_put(t, table, key, len + 1, idb, 4, STORE_NOOVERWRITE);
	if (!rc && dict == STORE_DICT_BUILDIDS) {
		struct store_buildid r = {.build_id_len = len};
		uint8_t rec[REC_HDR + FDO_BUILD_ID_MAX];
		memcpy(r.build_id, bytes, len);
		rec_encode(rec, &r);
		rc = store_put(t, table, ik, 5, rec, REC_HDR + len,
			       STORE_NOOVERWRITE);
	} else if (!rc) {
		rc = store_put(t, table, ik, 5, bytes, len, STORE_NOOVERWRITE);
	}
	t->quiet = 0;
	if (rc == FDO_EEXISTS) {
		fdo_error("store: %s: id %u is taken twice (counter behind)",
			  store_table_name(table), nid);
		return FDO_ECORRUPT;
	}
	if (rc)
		return rc;
	*id = nid;
	return FDO_OK;
}

int store_intern_string(store_txn *t, const void *bytes, size_t len, int create,
			uint32_t *id)
{
	return store_intern(t, STORE_DICT_STRINGS, bytes, len, create, id);
}

int store_intern_binary(store_txn *t, const void *bytes, size_t len, int create,
			uint32_t *id)
{
	return store_intern(t, STORE_DICT_BINARIES, bytes, len, create, id);
}

int store_intern_labelset(store_txn *t, const void *bytes, size_t len,
			  int create, uint32_t *id)
{
	return store_intern(t, STORE_DICT_LABELSETS, bytes, len, create, id);
}

int store_intern_buildid(store_txn *t, const void *bytes, size_t len,
			 int create, uint32_t *id)
{
	return store_intern(t, STORE_DICT_BUILDIDS, bytes, len, create, id);
}

int store_intern_name(store_txn *t, enum store_dict dict, uint32_t id,
		      const void **bytes, size_t *len)
{
	if ((unsigned)dict >= STORE_NDICTS)
		return FDO_EINVAL;
	uint8_t k[5];
	id_key(k, id);
	const void *v;
	size_t vl;
	int rc = store_get(t, dict_table[dict], k, 5, &v, &vl);
	if (rc)
		return rc;
	if (dict == STORE_DICT_BUILDIDS) {
		struct store_buildid r;
		if (rec_decode(v, vl, &r))
			return FDO_ECORRUPT;
		*bytes = (const uint8_t *)v + REC_HDR;
		*len = r.build_id_len;
		return FDO_OK;
	}
	*bytes = v;
	*len = vl;
	return FDO_OK;
}

/* ----------------------------------------------------------- build-ids -- */

int store_buildid_get(store_txn *t, uint32_t id, struct store_buildid *rec)
{
	uint8_t k[5];
	id_key(k, id);
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_BUILDIDS, k, 5, &v, &vl);
	if (rc)
		return rc;
	return rec_decode(v, vl, rec);
}

int store_buildid_put(store_txn *t, uint32_t id,
		      const struct store_buildid *rec)
{
	struct store_buildid old;
	int rc = store_buildid_get(t, id, &old);
	if (rc)
		return rc;
	if (rec->build_id_len != old.build_id_len ||
	    memcmp(rec->build_id, old.build_id, old.build_id_len) ||
	    (rec->sym_state & ~0x7u))
		return FDO_EINVAL;
	uint8_t k[5], v[REC_HDR + FDO_BUILD_ID_MAX];
	id_key(k, id);
	rec_encode(v, rec);
	/* First and last seen, or the binary, change no profile: only the
	 * symbol state does (store_generation_of). */
	t->quiet = rec->sym_state == old.sym_state;
	rc = store_put(t, STORE_BUILDIDS, k, 5, v, REC_HDR + rec->build_id_len,
		       0);
	t->quiet = 0;
	return rc;
}

int store_buildid_widen(struct store_buildid *rec, uint64_t now, uint64_t step)
{
	int changed = 0;
	if (rec->first_seen == 0 || now < rec->first_seen) {
		rec->first_seen = now;
		changed = 1;
	}
	if (now >= rec->last_seen + (step ? step : 1)) {
		rec->last_seen = now;
		changed = 1;
	}
	return changed;
}

int store_buildid_seen(store_txn *t, uint32_t id, uint64_t now)
{
	struct store_buildid r;
	int rc = store_buildid_get(t, id, &r);
	if (rc)
		return rc;
	return store_buildid_widen(&r, now, 1) ? store_buildid_put(t, id, &r)
					       : FDO_OK;
}

/* ------------------------------------------------------------ file ids -- */

static void fileid_key(uint8_t key[1 + STORE_FILE_ID_SIZE],
		       const uint8_t fid[STORE_FILE_ID_SIZE])
{
	key[0] = PFX_FILEID;
	memcpy(key + 1, fid, STORE_FILE_ID_SIZE);
}

int store_fileid_put(store_txn *t, const uint8_t fid[STORE_FILE_ID_SIZE],
		     const uint8_t *bid, size_t len)
{
	if (len < 1 || len > FDO_BUILD_ID_MAX)
		return FDO_EBAD_BUILD_ID;
	uint8_t k[1 + STORE_FILE_ID_SIZE];
	fileid_key(k, fid);
	int rc = store_put(t, STORE_BUILDIDS, k, sizeof k, bid, len,
			   STORE_NOOVERWRITE);
	return rc == FDO_EEXISTS ? FDO_OK : rc;
}

int store_fileid_get(store_txn *t, const uint8_t fid[STORE_FILE_ID_SIZE],
		     uint8_t *bid, size_t *len)
{
	uint8_t k[1 + STORE_FILE_ID_SIZE];
	fileid_key(k, fid);
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_BUILDIDS, k, sizeof k, &v, &vl);
	if (rc)
		return rc;
	if (vl < 1 || vl > FDO_BUILD_ID_MAX)
		return FDO_ECORRUPT;
	memcpy(bid, v, vl);
	*len = vl;
	return FDO_OK;
}

int store_fileid_alias(store_txn *t, const struct store_buildid *rec,
		       uint32_t *gnu)
{
	if ((rec->sym_state & STORE_SYM_EXECUTABLE) ||
	    rec->build_id_len != STORE_FILE_ID_SIZE)
		return FDO_ENOT_FOUND;
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t len;
	int rc = store_fileid_get(t, rec->build_id, bid, &len);
	if (rc)
		return rc;
	/* A file whose GNU build-id is its own file id names itself. */
	if (len == rec->build_id_len && !memcmp(bid, rec->build_id, len))
		return FDO_ENOT_FOUND;
	return store_intern_buildid(t, bid, len, 0, gnu);
}

int store_walk_binary(store_txn *t, enum store_table table, uint32_t binary,
		      store_entry_fn fn, void *arg)
{
	store_cursor *c;
	int rc = store_cursor_open(t, table, &c);
	if (rc)
		return rc;
	uint8_t start[4];
	fdo_put_be32(start, binary);
	const void *k, *v;
	size_t kl, vl;
	int crc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (crc == FDO_OK && kl >= 4 && fdo_get_be32(k) == binary) {
		if ((rc = fn(arg, k, kl, v, vl)))
			break;
		crc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (rc)
		return rc;
	return crc == FDO_OK || crc == FDO_ENOT_FOUND ? FDO_OK : crc;
}

static int count_host(void *arg, const void *k, size_t kl, const void *v,
		      size_t vl)
{
	uint32_t b, h;
	if (!store_hosts_key_decode(k, kl, &b, &h))
		++*(uint64_t *)arg;
	return FDO_OK;
}

int store_hosts_count(store_txn *t, uint32_t binary, uint64_t *n)
{
	*n = 0;
	return store_walk_binary(t, STORE_HOSTS, binary, count_host, n);
}

struct hosts_walk {
	store_hosts_fn fn;
	void *arg;
};

static int each_host(void *arg, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	struct hosts_walk *w = arg;
	uint32_t b, host;
	struct store_host h;
	if (store_hosts_key_decode(k, kl, &b, &host) ||
	    store_hosts_decode(v, vl, &h))
		return FDO_OK; /* as store_hosts_count: not a host row */
	return w->fn(w->arg, host, &h);
}

int store_hosts_each(store_txn *t, uint32_t binary, store_hosts_fn fn,
		     void *arg)
{
	struct hosts_walk w = {fn, arg};
	return store_walk_binary(t, STORE_HOSTS, binary, each_host, &w);
}
