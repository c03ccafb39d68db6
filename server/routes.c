/*
 * server/routes.c — fdod's HTTP API: the route table and its handlers.
 * Handlers run on HTTP worker threads (server/http.c) and may block.
 * Read-only handlers use one LMDB read transaction each.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/opts.h"
#include "server/app.h"
#include "server/auth.h"

#define UPLOAD_MAX_BYTES (8ull << 30)

/* ------------------------------------------------------------- helpers -- */

/* Decimal text of a 128-bit unsigned integer. */
static void u128_str(wire_weight_t v, char out[48])
{
	char tmp[48];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = 0;
}

/* A weight as JSON: the exact fixed-point integer and its value. */
static void json_weight(struct fdo_buf *b, const char *name, wire_weight_t w)
{
	char s[48];
	u128_str(w, s);
	fdo_buf_printf(b, "\"%s_fixed\":\"%s\",\"%s\":%.6g", name, s, name,
		       (double)w / WIRE_WEIGHT_SCALE);
}

static const char *sym_state_name(uint32_t st)
{
	if ((st & STORE_SYM_EXECUTABLE) && (st & STORE_SYM_DEBUGINFO))
		return "executable+debuginfo";
	if (st & STORE_SYM_DEBUGINFO)
		return "debuginfo";
	if (st & STORE_SYM_EXECUTABLE)
		return "executable";
	return "none";
}

/* Name of an interned id as a JSON string (or null). */
static void json_name(struct fdo_buf *b, store_txn *t, enum store_dict d,
		      uint32_t id)
{
	const void *p;
	size_t len;
	if (!id || store_intern_name(t, d, id, &p, &len)) {
		fdo_buf_puts(b, "null");
		return;
	}
	char s[STORE_NAME_MAX + 1];
	memcpy(s, p, len);
	s[len] = 0;
	fdo_buf_json_str(b, s);
}

/* Pending addresses of build-id id (a range count). */
static uint64_t pending_of(store_txn *t, uint32_t id)
{
	store_cursor *c;
	if (store_cursor_open(t, STORE_PENDING, &c))
		return 0;
	uint8_t start[STORE_ADDR_KEY_SIZE];
	struct store_frame a = {id, 0};
	store_addr_key_encode(start, &a);
	const void *k, *v;
	size_t kl, vl;
	uint64_t n = 0;
	int rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_addr_key_decode(k, kl, &a) &&
	       a.build_id == id) {
		n++;
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	return n;
}

static void json_buildid(struct fdo_buf *b, store_txn *t, uint32_t id,
			 const struct store_buildid *rec)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(rec->build_id, rec->build_id_len, hex);
	fdo_buf_printf(b, "{\"build_id\":\"%s\",\"binary\":", hex);
	json_name(b, t, STORE_DICT_BINARIES, rec->binary);
	fdo_buf_printf(b,
		       ",\"symbols\":\"%s\",\"first_seen\":%llu,"
		       "\"last_seen\":%llu,\"pending\":%llu}",
		       sym_state_name(rec->sym_state),
		       (unsigned long long)rec->first_seen,
		       (unsigned long long)rec->last_seen,
		       (unsigned long long)pending_of(t, id));
}

/* Totals of one binary from table totals. */
struct bin_totals {
	wire_weight_t weight;
	uint64_t samples, stacks;
	uint32_t first_bucket, last_bucket;
	uint32_t labelsets[64];
	uint64_t label_samples[64];
	size_t nlabelsets;
};

static int add_total(void *arg, const struct store_totals_key *tk,
		     const struct store_totals *v)
{
	struct bin_totals *bt = arg;
	bt->weight += v->weight;
	bt->samples += v->samples;
	bt->stacks += v->entries;
	if (!bt->first_bucket || tk->bucket < bt->first_bucket)
		bt->first_bucket = tk->bucket;
	if (tk->bucket > bt->last_bucket)
		bt->last_bucket = tk->bucket;
	size_t i = 0;
	while (i < bt->nlabelsets && bt->labelsets[i] != tk->labelset)
		i++;
	if (i == bt->nlabelsets && i < 64)
		bt->labelsets[bt->nlabelsets++] = tk->labelset;
	if (i < 64)
		bt->label_samples[i] += v->samples;
	return FDO_OK;
}

int srv_totals_each(struct srv_app *app, store_txn *t, uint32_t binary,
		    store_totals_fn fn, void *arg)
{
	srv_totals_walk walk = app->totals_walk ? app->totals_walk
						: store_totals_each;
	return walk(t, binary, fn, arg);
}

static int totals_of(struct srv_app *app, store_txn *t, uint32_t binary,
		     struct bin_totals *bt)
{
	memset(bt, 0, sizeof *bt);
	return srv_totals_each(app, t, binary, add_total, bt);
}

/* Distinct hosts of a binary (table hosts). */
static uint64_t hosts_of(store_txn *t, uint32_t binary)
{
	uint64_t n = 0;
	store_hosts_count(t, binary, &n);
	return n;
}

/* The health endpoint does not flush: it reports the backlog instead. */
int srv_read_txn(struct srv_app *app, struct srv_resp *resp, int flush,
		 store_txn **t)
{
	if (flush && agg_ingest_flush(app->ingest, 10000))
		fdo_warn("http: the store lags the write-ahead log by more "
			 "than 10 s; answering from what is merged");
	int rc = store_txn_begin(app->st, 0, t);
	if (rc)
		srv_resp_error(resp, 503, "store unavailable: %s",
			       fdo_strerror(rc));
	return rc;
}

int srv_binary_txn(struct srv_app *app, struct srv_resp *resp, int flush,
		   const char *name, store_txn **t, uint32_t *binary)
{
	int rc = srv_read_txn(app, resp, flush, t);
	if (rc)
		return rc;
	if ((rc = store_intern_binary(*t, name, strlen(name), 0, binary))) {
		store_txn_abort(*t);
		srv_resp_error(resp, 404, "unknown binary '%s'", name);
	}
	return rc;
}

/* ------------------------------------------------------------ handlers -- */

static void h_status(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	store_txn *t;
	/* The ingest figures first: the snapshot below then holds every
	 * merge they count (one begun before could miss the last). */
	struct agg_ingest_stats is;
	agg_ingest_stats(app->ingest, &is);
	if (srv_read_txn(app, resp, 0, &t))
		return;
	struct store_stats ss;
	struct agg_symwork_stats ws;
	size_t cidx, cbytes;
	uint64_t chits, cmiss;
	store_stats(app->st, &ss);
	agg_symwork_stats(app->symwork, &ws);
	sym_cache_stats(app->cache, &cidx, &cbytes, &chits, &cmiss);
	struct fdo_buf *b = &resp->body;
	fdo_buf_printf(b,
		       "{\"uptime_seconds\":%lld,"
		       "\"store\":{\"map_bytes\":%llu,\"used_bytes\":%llu,"
		       "\"max_bytes\":%llu},",
		       (long long)(time(NULL) - app->started),
		       (unsigned long long)ss.map_size,
		       (unsigned long long)ss.used_size,
		       (unsigned long long)ss.max_size);
	fdo_buf_printf(b,
		       "\"ingest\":{\"batches\":%llu,\"duplicates\":%llu,"
		       "\"refused\":%llu,\"commits\":%llu,\"samples\":%llu,"
		       "\"queue\":%llu,\"unmerged\":%llu},",
		       (unsigned long long)is.batches,
		       (unsigned long long)is.duplicates,
		       (unsigned long long)is.refused,
		       (unsigned long long)is.commits,
		       (unsigned long long)is.samples,
		       (unsigned long long)is.queue_len,
		       (unsigned long long)is.unmerged);
	fdo_buf_printf(b,
		       "\"symbolizer\":{\"resolved\":%llu,\"failures\":%llu,"
		       "\"queued\":%llu,\"busy\":%llu,\"cache_indexes\":%zu,"
		       "\"cache_bytes\":%zu,\"cache_hits\":%llu,"
		       "\"cache_misses\":%llu},",
		       (unsigned long long)ws.resolved,
		       (unsigned long long)ws.failures,
		       (unsigned long long)ws.queued,
		       (unsigned long long)ws.busy, cidx, cbytes,
		       (unsigned long long)chits, (unsigned long long)cmiss);
	/* Pending addresses per build-id, in one pass over the table. */
	fdo_buf_puts(b, "\"pending\":{\"build_ids\":[");
	uint64_t total = 0;
	store_cursor *c;
	if (store_cursor_open(t, STORE_PENDING, &c) == FDO_OK) {
		const void *k, *v;
		size_t kl, vl;
		struct store_frame f;
		uint32_t cur = 0;
		uint64_t n = 0;
		int first = 1;
		int rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
		for (;;) {
			int end = rc != FDO_OK ||
				  store_addr_key_decode(k, kl, &f);
			if ((end || f.build_id != cur) && n) {
				struct store_buildid rec;
				if (store_buildid_get(t, cur, &rec) == FDO_OK) {
					char hex[2 * FDO_BUILD_ID_MAX + 1];
					fdo_hex_encode(rec.build_id,
						       rec.build_id_len, hex);
					fdo_buf_printf(
						b,
						"%s{\"build_id\":\"%s\","
						"\"pending\":%llu,"
						"\"symbols\":\"%s\"",
						first ? "" : ",", hex,
						(unsigned long long)n,
						sym_state_name(rec.sym_state));
					/* --debuginfod-urls: "fetching"... */
					const char *up = srv_upstream_state(
						app->upstream, cur);
					if (up)
						fdo_buf_printf(
							b,
							",\"upstream\":\"%s\"",
							up);
					fdo_buf_putc(b, '}');
					first = 0;
				}
				total += n;
				n = 0;
			}
			if (end)
				break;
			cur = f.build_id;
			n++;
			rc = store_cursor_next(c, &k, &kl, &v, &vl);
		}
		store_cursor_close(c);
	}
	uint64_t nbin = 0;
	store_count(t, STORE_BINARIES, &nbin);
	fdo_buf_printf(b, "],\"total\":%llu}}\n", (unsigned long long)total);
	store_txn_abort(t);
}

static void json_binary(struct srv_app *app, struct fdo_buf *b, store_txn *t,
			uint32_t id, int detail)
{
	struct bin_totals bt;
	totals_of(app, t, id, &bt);
	fdo_buf_puts(b, "{\"name\":");
	json_name(b, t, STORE_DICT_BINARIES, id);
	fdo_buf_printf(b, ",\"samples\":%llu,", (unsigned long long)bt.samples);
	json_weight(b, "weight", bt.weight);
	fdo_buf_printf(b,
		       ",\"hosts\":%llu,\"first_bucket\":%u,"
		       "\"last_bucket\":%u,\"stacks\":%llu",
		       (unsigned long long)hosts_of(t, id), bt.first_bucket,
		       bt.last_bucket, (unsigned long long)bt.stacks);
	fdo_buf_puts(b, ",\"labels\":[");
	for (size_t i = 0; i < bt.nlabelsets; i++) {
		fdo_buf_puts(b, i ? ",{\"labels\":" : "{\"labels\":");
		json_name(b, t, STORE_DICT_LABELSETS, bt.labelsets[i]);
		fdo_buf_printf(b, ",\"samples\":%llu}",
			       (unsigned long long)bt.label_samples[i]);
	}
	fdo_buf_puts(b, "],\"build_ids\":[");
	int first = 1;
	for (uint32_t bid = 1;; bid++) {
		struct store_buildid rec;
		int rc = store_buildid_get(t, bid, &rec);
		if (rc == FDO_ENOT_FOUND)
			break;
		if (rc || rec.binary != id)
			continue;
		if (!first)
			fdo_buf_putc(b, ',');
		first = 0;
		if (detail)
			json_buildid(b, t, bid, &rec);
		else {
			char hex[2 * FDO_BUILD_ID_MAX + 1];
			fdo_hex_encode(rec.build_id, rec.build_id_len, hex);
			fdo_buf_json_str(b, hex);
		}
	}
	fdo_buf_puts(b, "]}");
}

static void h_binaries(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	store_txn *t;
	if (srv_read_txn(app, resp, 1, &t))
		return;
	fdo_buf_puts(&resp->body, "{\"binaries\":[");
	for (uint32_t id = 1;; id++) {
		const void *p;
		size_t len;
		if (store_intern_name(t, STORE_DICT_BINARIES, id, &p, &len))
			break;
		if (id > 1)
			fdo_buf_putc(&resp->body, ',');
		json_binary(app, &resp->body, t, id, 0);
	}
	fdo_buf_puts(&resp->body, "]}\n");
	store_txn_abort(t);
}

static void h_binary(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	store_txn *t;
	uint32_t id;
	if (srv_binary_txn(app, resp, 1, req->param[0], &t, &id))
		return;
	json_binary(app, &resp->body, t, id, 1);
	store_txn_abort(t);
	/* The staleness score (server/readiness.c) after the read: it may
	 * build a profile. In place of json_binary's closing brace, which
	 * an out-of-memory body does not have. */
	struct fdo_buf *b = &resp->body;
	if (b->oom || !b->len || b->data[b->len - 1] != '}') {
		srv_resp_error(resp, 500, "out of memory");
		return;
	}
	resp->body.len--;
	fdo_buf_putc(&resp->body, ',');
	srv_staleness_json(app, req->param[0], &resp->body);
	fdo_buf_puts(&resp->body, "}\n");
}

/*
 * May the uploader write symbols for the build-id of the file on fd? A token
 * restricted to binaries (binaries= in the token file) must name one of
 * them with binary=, and the build-id must not already belong to another
 * binary. 0, or an HTTP status with the reason in resp.
 */
static int upload_allowed(struct srv_app *app, struct srv_req *req,
			  const char *binary, struct srv_resp *resp)
{
	const struct srv_token *tok = req->principal;
	if (!srv_token_restricted_binaries(tok))
		return 0;
	if (!binary[0] || !srv_token_allows_binary(tok, binary)) {
		srv_resp_error(resp, 403,
			       "this token may upload symbols only for its "
			       "binaries (binaries= in the token file): give "
			       "one of them with binary=");
		return 403;
	}
	struct store_elf_info info;
	if (store_elf_inspect(req->body_fd, &info, NULL, 0) != FDO_OK)
		return 0; /* the store refuses it with the reason */
	store_txn *t;
	uint32_t id;
	struct store_buildid rec;
	if (store_txn_begin(app->st, 0, &t))
		return 0;
	int status = 0;
	if (store_intern_buildid(t, info.build_id, info.build_id_len, 0, &id) ==
		    FDO_OK &&
	    store_buildid_get(t, id, &rec) == FDO_OK && rec.binary) {
		const void *p;
		size_t len;
		char name[STORE_NAME_MAX + 1] = "";
		if (store_intern_name(t, STORE_DICT_BINARIES, rec.binary, &p,
				      &len) == FDO_OK) {
			memcpy(name, p, len);
			name[len] = 0;
		}
		if (!srv_token_allows_binary(tok, name)) {
			char hex[2 * FDO_BUILD_ID_MAX + 1];
			fdo_hex_encode(info.build_id, info.build_id_len, hex);
			srv_resp_error(resp, 403,
				       "build-id %s belongs to binary '%s', "
				       "which this token may not upload for",
				       hex, name);
			status = 403;
		}
	}
	store_txn_abort(t);
	return status;
}

static void h_upload(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	const char *peer = req->peer ? req->peer : "?";
	const char *who = srv_token_name(req->principal);
	char binary[STORE_NAME_MAX + 1], replace[8], why[256];
	int rc = srv_query_get(req->query, "binary", binary, sizeof binary);
	if (rc == FDO_ENOT_FOUND) {
		binary[0] = 0;
	} else if (rc) {
		srv_resp_error(resp, 400,
			       "binary= is malformed (bad percent-encoding, a "
			       "NUL byte, or over %d bytes)",
			       STORE_NAME_MAX);
		return;
	} else if (wire_binary_name_check(binary, why, sizeof why)) {
		srv_resp_error(resp, 400, "binary=: %s", why);
		return;
	}
	unsigned flags = 0;
	rc = srv_query_get(req->query, "replace", replace, sizeof replace);
	if (rc != FDO_ENOT_FOUND) {
		if (rc || (strcmp(replace, "1") && strcmp(replace, "0"))) {
			srv_resp_error(resp, 400, "replace= must be 1 or 0");
			return;
		}
		if (!strcmp(replace, "1")) {
			if (!srv_token_has_scope(req->principal,
						 SRV_SCOPE_ADMIN)) {
				fdo_warn("upload from %s refused (%s): "
					 "replace=1 needs scope admin",
					 peer, who);
				srv_resp_error(resp, 403,
					       "replace=1 needs a token with "
					       "scope admin");
				return;
			}
			flags |= STORE_SYM_REPLACE;
		}
	}
	if (req->refusal) {
		atomic_fetch_add(&app->uploads[SRV_UPLOAD_REFUSED], 1);
		fdo_warn("upload from %s refused (%s): %s", peer, who,
			 req->refusal);
		srv_resp_error(resp, 400, "%s", req->refusal);
		return;
	}
	if (req->body_fd < 0 || req->body_size == 0) {
		srv_resp_error(resp, 400, "empty body: send the ELF file");
		return;
	}
	if (upload_allowed(app, req, binary, resp)) {
		fdo_warn("upload from %s refused (%s): %s", peer, who,
			 "outside the token's binaries");
		atomic_fetch_add(&app->uploads[SRV_UPLOAD_REFUSED], 1);
		return;
	}
	struct store_sym_result res;
	rc = store_symbols_adopt(app->st, app->cfg.data, req->body_path,
				 binary[0] ? binary : NULL, flags, &res);
	char hex[2 * FDO_BUILD_ID_MAX + 1] = "";
	if (res.elf.build_id_len)
		fdo_hex_encode(res.elf.build_id, res.elf.build_id_len, hex);
	if (rc != FDO_OK && rc != FDO_EEXISTS) {
		int status = 400;
		if (rc == FDO_EIO || rc == FDO_ESTORE)
			status = 500;
		else if (rc == FDO_ESTORE_FULL || rc == FDO_ENOSPACE)
			status = 507;
		else if (rc == FDO_ECONFLICT)
			status = 409;
		else if (rc == FDO_ELIMIT)
			status = 413;
		atomic_fetch_add(&app->uploads[SRV_UPLOAD_REFUSED], 1);
		fdo_warn("upload from %s refused (%s)%s%s: %s", peer, who,
			 binary[0] ? ", binary " : "", binary,
			 res.why[0] ? res.why : fdo_strerror(rc));
		srv_resp_error(resp, status, "%s",
			       res.why[0] ? res.why : fdo_strerror(rc));
		return;
	}
	resp->status = rc == FDO_OK ? 201 : 200;
	atomic_fetch_add(&app->uploads[rc == FDO_OK ? SRV_UPLOAD_STORED
						    : SRV_UPLOAD_PRESENT],
			 1);
	fdo_buf_printf(
		&resp->body,
		"{\"build_id\":\"%s\",\"kind\":\"%s\",\"stored\":[%s%s%s],"
		"\"present\":[%s%s%s],\"replaced\":%s}\n",
		hex, store_elf_kind_name(&res.elf),
		res.stored & STORE_SYM_EXECUTABLE ? "\"executable\"" : "",
		(res.stored & STORE_SYM_EXECUTABLE) &&
				(res.stored & STORE_SYM_DEBUGINFO)
			? ","
			: "",
		res.stored & STORE_SYM_DEBUGINFO ? "\"debuginfo\"" : "",
		res.present & STORE_SYM_EXECUTABLE ? "\"executable\"" : "",
		(res.present & STORE_SYM_EXECUTABLE) &&
				(res.present & STORE_SYM_DEBUGINFO)
			? ","
			: "",
		res.present & STORE_SYM_DEBUGINFO ? "\"debuginfo\"" : "",
		res.replaced ? "true" : "false");
	if (res.replaced)
		fdo_warn("upload %s (%s) from %s (%s)%s%s: replaced the stored "
			 "%s%s%s (replace=1)",
			 hex, store_elf_kind_name(&res.elf), peer, who,
			 binary[0] ? " binary " : "", binary,
			 res.replaced & STORE_SYM_EXECUTABLE ? "executable"
							     : "",
			 res.replaced == (STORE_SYM_EXECUTABLE |
					  STORE_SYM_DEBUGINFO)
				 ? " and "
				 : "",
			 res.replaced & STORE_SYM_DEBUGINFO ? "debuginfo" : "");
	else
		fdo_info("upload %s (%s)%s%s: %s", hex,
			 store_elf_kind_name(&res.elf),
			 binary[0] ? " binary " : "", binary,
			 rc == FDO_OK ? "stored" : "already present");
	/* Symbols arrived: let the symbolizer at its pending addresses (a
	 * replaced file's old results went back to pending, and its index in
	 * the DWARF cache is dropped). */
	store_txn *t;
	uint32_t id;
	if (res.replaced)
		sym_cache_forget(app->cache, res.elf.build_id,
				 res.elf.build_id_len);
	if ((rc == FDO_OK || rc == FDO_EEXISTS) &&
	    store_txn_begin(app->st, 0, &t) == FDO_OK) {
		if (store_intern_buildid(t, res.elf.build_id,
					 res.elf.build_id_len, 0,
					 &id) == FDO_OK)
			agg_symwork_wake(app->symwork, &id, 1);
		/* Frames keyed by this file's file id (an OpenTelemetry
		 * sender's htlhash) resolve through it now (symwork.c). */
		if (res.has_file_id &&
		    store_intern_buildid(t, res.file_id, STORE_FILE_ID_SIZE, 0,
					 &id) == FDO_OK)
			agg_symwork_wake(app->symwork, &id, 1);
		store_txn_abort(t);
	}
}

/* Text of an interned string as a JSON string ("" for id 0). */
static void json_string_id(struct fdo_buf *b, store_txn *t, uint32_t id)
{
	if (!id) {
		fdo_buf_puts(b, "\"\"");
		return;
	}
	json_name(b, t, STORE_DICT_STRINGS, id);
}

#define SYMCACHE_LIST_MAX 100000

static void h_symcache(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t bid_len;
	if (fdo_build_id_parse(req->param[0], bid, &bid_len)) {
		srv_resp_error(resp, 400,
			       "'%s' is not a build-id (lowercase hex)",
			       req->param[0]);
		return;
	}
	store_txn *t;
	if (srv_read_txn(app, resp, 1, &t))
		return;
	uint32_t id;
	if (store_intern_buildid(t, bid, bid_len, 0, &id)) {
		store_txn_abort(t);
		srv_resp_error(resp, 404, "unknown build-id %s", req->param[0]);
		return;
	}
	struct fdo_buf *b = &resp->body;
	fdo_buf_printf(b, "{\"build_id\":\"%s\",\"addresses\":[",
		       req->param[0]);
	store_cursor *c;
	size_t listed = 0;
	if (store_cursor_open(t, STORE_SYMCACHE, &c) == FDO_OK) {
		uint8_t start[STORE_ADDR_KEY_SIZE];
		struct store_frame f = {id, 0};
		store_addr_key_encode(start, &f);
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v,
					   &vl);
		while (rc == FDO_OK && listed < SYMCACHE_LIST_MAX &&
		       !store_addr_key_decode(k, kl, &f) && f.build_id == id) {
			struct store_sym_frame sf[STORE_SYMCACHE_MAX_FRAMES];
			size_t n;
			if (store_symcache_decode(v, vl, sf,
						  STORE_SYMCACHE_MAX_FRAMES,
						  &n) == FDO_OK) {
				fdo_buf_printf(
					b, "%s{\"offset\":%llu,\"frames\":[",
					listed ? "," : "",
					(unsigned long long)f.offset);
				for (size_t i = 0; i < n; i++) {
					fdo_buf_puts(b, i ? ",{\"function\":"
							  : "{\"function\":");
					json_string_id(b, t, sf[i].function);
					fdo_buf_puts(b, ",\"file\":");
					json_string_id(b, t, sf[i].file);
					fdo_buf_printf(
						b,
						",\"line\":%u,\"column\":%u,"
						"\"discriminator\":%u,"
						"\"start_line\":%u}",
						sf[i].line, sf[i].column,
						sf[i].discriminator,
						sf[i].start_line);
				}
				fdo_buf_puts(b, "]}");
				listed++;
			}
			rc = store_cursor_next(c, &k, &kl, &v, &vl);
		}
		store_cursor_close(c);
	}
	fdo_buf_printf(b, "],\"truncated\":%s}\n",
		       listed == SYMCACHE_LIST_MAX ? "true" : "false");
	store_txn_abort(t);
}

/* Is path (resolved) at or below dir (resolved)? */
static int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return !strncmp(path, dir, n) &&
	       (path[n] == 0 || path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/*
 * backup_target resolves dir (absolute) into out: the directory itself when
 * it exists, else its parent (which must exist) plus its last component,
 * symbolic links followed, so "..", links and doubled slashes cannot take
 * the copy elsewhere. The result must lie under one of --backup-dir and
 * not inside --data (a copy of the store inside itself, or a path the
 * daemon's own files live in). FDO_OK, or FDO_EDENIED / FDO_EINVAL with why.
 */
static int backup_target(const struct srv_app *app, const char *dir,
			 char out[PATH_MAX], char *why, size_t whylen)
{
	if (!app->cfg.backup_dir.n) {
		snprintf(why, whylen,
			 "online backups are off: start fdod with "
			 "--backup-dir DIR to allow them under DIR");
		return FDO_EDENIED;
	}
	if (dir[0] != '/') {
		snprintf(why, whylen,
			 "dir= must be an absolute path on fdod's "
			 "host");
		return FDO_EINVAL;
	}
	if (!realpath(dir, out)) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", dir);
		size_t n = strlen(parent);
		while (n > 1 && parent[n - 1] == '/')
			parent[--n] = 0;
		char *slash = strrchr(parent, '/');
		const char *base = slash + 1;
		if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
			snprintf(why, whylen, "dir= must name a directory");
			return FDO_EINVAL;
		}
		char last[NAME_MAX + 1];
		snprintf(last, sizeof last, "%s", base);
		*slash = 0;
		char real[PATH_MAX];
		if (!realpath(parent[0] ? parent : "/", real)) {
			snprintf(why, whylen, "the parent of %s does not exist",
				 dir);
			return FDO_EINVAL;
		}
		if (snprintf(out, PATH_MAX, "%s%s%s", real,
			     strcmp(real, "/") ? "/" : "", last) >= PATH_MAX) {
			snprintf(why, whylen, "dir= is too long");
			return FDO_EINVAL;
		}
	}
	char data[PATH_MAX];
	if (realpath(app->cfg.data, data) &&
	    (path_within(out, data) || path_within(data, out))) {
		snprintf(why, whylen,
			 "%s is inside the data directory (or "
			 "holds it): choose a place outside --data",
			 dir);
		return FDO_EDENIED;
	}
	for (size_t i = 0; i < app->cfg.backup_dir.n; i++) {
		char root[PATH_MAX];
		if (realpath(app->cfg.backup_dir.items[i], root) &&
		    path_within(out, root))
			return FDO_OK;
	}
	snprintf(why, whylen, "%s is not under a --backup-dir of this fdod",
		 dir);
	return FDO_EDENIED;
}

/*
 * POST /v1/backup?dir=/absolute/path: a consistent, compacted copy of the
 * store, taken while ingest goes on. Everything acknowledged before the
 * request is merged first, so the copy holds it without the write-ahead
 * log. The path is on fdod's host, under one of --backup-dir.
 */
static void h_backup(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	char dir[2048], target[PATH_MAX], why[PATH_MAX + 128];
	int rc = srv_query_get(req->query, "dir", dir, sizeof dir);
	if (rc) {
		srv_resp_error(resp, 400,
			       "dir= must be an absolute path on "
			       "fdod's host");
		return;
	}
	if ((rc = backup_target(app, dir, target, why, sizeof why))) {
		fdo_warn("backup from %s refused: %s",
			 req->peer ? req->peer : "?", why);
		srv_resp_error(resp, rc == FDO_EDENIED ? 403 : 400, "%s", why);
		return;
	}
	if (agg_ingest_flush(app->ingest, 60000)) {
		srv_resp_error(resp, 503,
			       "the store lags the write-ahead log; "
			       "retry later");
		return;
	}
	uint64_t t0 = fdo_now_ns();
	rc = store_backup(app->st, target);
	if (rc) {
		srv_resp_error(resp, rc == FDO_EEXISTS ? 409 : 500,
			       "backup to %s failed: %s", dir,
			       fdo_strerror(rc));
		return;
	}
	resp->status = 201;
	fdo_buf_puts(&resp->body, "{\"dir\":");
	fdo_buf_json_str(&resp->body, target);
	fdo_buf_printf(&resp->body, ",\"seconds\":%.3f}\n",
		       (double)(fdo_now_ns() - t0) / 1e9);
	fdo_info("backup written to %s", target);
}

/* GET /v1/sampling: the sampling policy and every binary's advice. */
static void h_sampling(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	srv_sampling_json(app->sampling, &resp->body);
}

/* POST /v1/sampling/{binary}?mode=on-demand&freq=HZ&for=DURATION,
 * mode=paused|continuous&for=DURATION, or mode=policy: an operator's
 * window over the policy ("*": every binary). */
static void h_sampling_set(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	const char *binary = req->param[0];
	char mode[32], freq[32], dur[32], why[256];
	if (strcmp(binary, "*") &&
	    wire_binary_name_check(binary, why, sizeof why)) {
		srv_resp_error(resp, 400, "binary: %s", why);
		return;
	}
	if (srv_query_get(req->query, "mode", mode, sizeof mode)) {
		srv_resp_error(resp, 400,
			       "mode= is required: on-demand, "
			       "paused, continuous or policy");
		return;
	}
	int m;
	uint64_t f = 0, secs = 0;
	if (!strcmp(mode, "policy")) {
		m = SRV_SAMPLING_CONTINUOUS; /* and no window: the policy */
	} else {
		if (!strcmp(mode, "on-demand"))
			m = SRV_SAMPLING_ON_DEMAND;
		else if (!strcmp(mode, "paused"))
			m = SRV_SAMPLING_PAUSED;
		else if (!strcmp(mode, "continuous"))
			m = SRV_SAMPLING_CONTINUOUS;
		else {
			srv_resp_error(resp, 400,
				       "mode=%s: want on-demand, paused, "
				       "continuous or policy",
				       mode);
			return;
		}
		if (srv_query_get(req->query, "for", dur, sizeof dur) ||
		    fdo_parse_duration(dur, &secs) || secs == 0 ||
		    secs > 30 * 86400) {
			srv_resp_error(resp, 400,
				       "for= must be a duration "
				       "from 1s to 30d");
			return;
		}
		if (m == SRV_SAMPLING_ON_DEMAND &&
		    (srv_query_get(req->query, "freq", freq, sizeof freq) ||
		     fdo_parse_uint(freq, &f) || f > UINT32_MAX)) {
			srv_resp_error(resp, 400,
				       "mode=on-demand needs "
				       "freq=HZ");
			return;
		}
	}
	int rc = srv_sampling_override(app->sampling, binary, m, (uint32_t)f,
				       secs, why, sizeof why);
	if (rc) {
		srv_resp_error(resp, rc == FDO_ELIMIT ? 503 : 400, "%s", why);
		return;
	}
	fdo_info("sampling: %s set %s to %s%s%s for %llu s",
		 req->peer ? req->peer : "?", binary, mode,
		 m == SRV_SAMPLING_ON_DEMAND ? " at " : "",
		 m == SRV_SAMPLING_ON_DEMAND ? freq : "",
		 (unsigned long long)secs);
	srv_sampling_json(app->sampling, &resp->body);
}

const struct srv_route srv_routes[] = {
	{"POST", "/v1/backup", h_backup, 1 << 16, 0, SRV_SCOPE_ADMIN, NULL,
	 NULL},
	{"GET", "/v1/symcache/{}", h_symcache, 0, 0, SRV_SCOPE_READ, NULL,
	 NULL},
	{"GET", "/v1/profiles/{}", srv_h_profile, 0, 0, SRV_SCOPE_READ, NULL,
	 NULL},
	{"GET", "/metrics", srv_h_metrics, 0, 0, SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/buildid/{}/debuginfo", srv_h_debuginfo, 0, 0, SRV_SCOPE_READ,
	 NULL, NULL},
	{"GET", "/buildid/{}/executable", srv_h_executable, 0, 0,
	 SRV_SCOPE_READ, NULL, NULL},
	{"POST", "/v1/profiles/{}/publish", srv_h_publish, 1 << 16, 0,
	 SRV_SCOPE_ADMIN, NULL, NULL},
	{"GET", "/v1/profiles/{}/versions", srv_h_versions, 0, 0,
	 SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/v1/profiles/{}/versions/{}", srv_h_version, 0, 0,
	 SRV_SCOPE_READ, NULL, NULL},
	{"PUT", "/v1/symbols", h_upload, UPLOAD_MAX_BYTES, 1, SRV_SCOPE_UPLOAD,
	 "\177ELF",
	 "not an ELF file (no ELF magic): send an executable, "
	 "shared object or separate debug file"},
	{"POST", "/v1/pprof", srv_h_pprof, SRV_PPROF_MAX_BODY, 0,
	 SRV_SCOPE_INGEST, NULL, NULL},
	{"POST", "/v1development/profiles", srv_h_otlp, SRV_PPROF_MAX_BODY, 0,
	 SRV_SCOPE_INGEST, NULL, NULL},
	{"GET", "/v1/status", h_status, 0, 0, SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/v1/sampling", h_sampling, 0, 0, SRV_SCOPE_READ, NULL, NULL},
	{"POST", "/v1/sampling/{}", h_sampling_set, 0, 0, SRV_SCOPE_ADMIN, NULL,
	 NULL},
	{"GET", "/v1/binaries", h_binaries, 0, 0, SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/v1/binaries/{}", h_binary, 0, 0, SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/v1/binaries/{}/readiness", srv_h_readiness, 0, 0,
	 SRV_SCOPE_READ, NULL, NULL},
	{"GET", "/v1/binaries/{}/releases", srv_h_releases, 0, 0,
	 SRV_SCOPE_READ, NULL, NULL},
	/* The page holds no data (its fetch() calls need read): no scope. */
	{"GET", "/", srv_h_web, 0, 0, 0, NULL, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
