/*
 * server/releases.c — GET /v1/binaries/{binary}/releases?limit=N: the
 * fleet's measurement of each release (build-id) of a binary, CPU per
 * host-hour under equal label sets, and each release against the one
 * before it with a 95% interval (docs/http.md, docs/sampling.md "CPU per
 * release").
 *
 * A release is a build-id whose record names this binary as its
 * executable (aggregator/merge.c: the mapping named like the binary);
 * releases are ordered by first seen. The newest `limit` are answered.
 *
 * Workload: the binary's totals rows (one per label set and bucket),
 * each run's leaf build-id partitions from the oldest listed release's
 * first bucket on (aggregator/releases.c: table aggs, or the run's
 * counts for a bucket the merger has not summed yet, the open bucket,
 * each entry's stack read for its leaf), the binary's hosts and the
 * build-id records. Memory: the rows, the releases' cells and a run's
 * distinct leaf build-ids; never a run's frames.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"
#include "server/profiles.h"

#define REL_LIMIT_DEFAULT 10
#define REL_LIMIT_MAX	  100
#define WINDOW_MAX_S	  86400 /* a batch's longest window (schemas.h) */

struct rel {
	uint32_t bid;
	struct store_buildid rec;
	uint64_t number; /* 1: the binary's first release */
	/* the newest version published before it was first seen (0: none) */
	uint32_t version;
	uint64_t version_created;
	char version_id[2 * STORE_SHA256_SIZE + 1];
	struct agg_rel_cell *cells;
	size_t ncells, cap;
	/* cells folded per bucket (agg_rel_by_bucket): totals, comparison */
	struct agg_rel_cell *bcells;
	size_t nbcells;
};

struct row {
	struct store_totals_key k;
	struct store_totals v;
};

struct rel_scan {
	struct rel *rel;
	size_t nrel;
	struct row *rows;
	size_t nrows, cap_rows;
	/* the binary's hosts' first and (last + 60) seen, each sorted */
	uint64_t *firsts, *lasts;
	size_t nhosts, cap_firsts, cap_lasts;
	/* Every release's build-id (sorted), kept or not: a partition is
	 * classed against all of them, so that limit= does not move an
	 * older release's own weight into the shared part. */
	uint32_t *all;
	size_t nall;
	/* one run's partitions: own weight per kept release, the own weight
	 * of releases not kept, the rest (shared libraries) */
	double *own, *own_samples, older, rest, rest_samples;
	double unattributed; /* weight of runs with no release's code */
};

static int keep_row(void *arg, const struct store_totals_key *k,
		    const struct store_totals *v)
{
	struct rel_scan *s = arg;
	int rc = fdo_grow(s->rows, s->cap_rows, s->nrows + 1);
	if (rc)
		return rc;
	s->rows[s->nrows++] = (struct row){*k, *v};
	return FDO_OK;
}

static int keep_host(void *arg, uint32_t host, const struct store_host *h)
{
	(void)host;
	struct rel_scan *s = arg;
	int rc = fdo_grow(s->firsts, s->cap_firsts, s->nhosts + 1);
	if (!rc)
		rc = fdo_grow(s->lasts, s->cap_lasts, s->nhosts + 1);
	if (rc)
		return rc;
	s->firsts[s->nhosts] = h->first;
	/* kept to the minute; a stored last near the end of time stays */
	s->lasts[s->nhosts++] = h->last > UINT64_MAX - 60 ? UINT64_MAX
							  : h->last + 60;
	return FDO_OK;
}

static double wdouble(wire_weight_t w)
{
	return (double)w / 1e6; /* fixed point: 1e-6 event unit */
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int take_part(void *arg, const struct store_totals_key *k,
		     uint32_t leaf_bid, wire_weight_t weight, uint64_t samples)
{
	(void)k;
	struct rel_scan *s = arg;
	for (size_t i = 0; i < s->nrel; i++)
		if (s->rel[i].bid == leaf_bid) {
			s->own[i] += wdouble(weight);
			s->own_samples[i] += (double)samples;
			return FDO_OK;
		}
	if (bsearch(&leaf_bid, s->all, s->nall, sizeof *s->all, cmp_u32)) {
		s->older += wdouble(weight); /* a release not listed */
		return FDO_OK;
	}
	s->rest += wdouble(weight);
	s->rest_samples += (double)samples;
	return FDO_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* How many of v (sorted) are below x. */
static size_t below(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Hosts of the binary seen during [b, b + width): their first and last
 * batch times overlap it (those first seen before its end, less those
 * last seen before its start; two binary searches a row). At least 1. */
static double hosts_in(const struct rel_scan *s, uint64_t b, uint64_t width)
{
	size_t seen = below(s->firsts, s->nhosts, b + width);
	size_t gone = below(s->lasts, s->nhosts, b + 1);
	return seen > gone ? (double)(seen - gone) : 1;
}

/* One run: each release's own partition plus its share of the others
 * (shared libraries), in proportion to its own, becomes a cell. */
static int add_run(struct rel_scan *s, store_txn *t, const struct row *r,
		   uint64_t width, uint64_t now)
{
	for (size_t i = 0; i < s->nrel; i++)
		s->own[i] = s->own_samples[i] = 0;
	s->rest = s->rest_samples = s->older = 0;
	int rc = agg_run_parts(t, &r->k, &r->v, take_part, s);
	if (rc)
		return rc;
	/* The shared part goes to every release of the run in proportion
	 * to its own, the releases not listed too: their share (as their
	 * own weight) is dropped, so a listed release's CPU does not
	 * depend on limit=. */
	double own = s->older;
	for (size_t i = 0; i < s->nrel; i++)
		own += s->own[i];
	if (own <= 0) {
		s->unattributed += s->rest;
		return FDO_OK;
	}
	/* The open bucket counts the seconds it has had so far. */
	uint64_t secs = width;
	if (now >= r->k.bucket && now - r->k.bucket < width)
		secs = now - r->k.bucket ? now - r->k.bucket : 1;
	double exposure = hosts_in(s, r->k.bucket, width) * (double)secs;
	for (size_t i = 0; i < s->nrel; i++) {
		if (s->own[i] <= 0)
			continue;
		struct rel *x = &s->rel[i];
		if ((rc = fdo_grow(x->cells, x->cap, x->ncells + 1)))
			return rc;
		double share = s->own[i] / own;
		x->cells[x->ncells++] = (struct agg_rel_cell){
			.labelset = r->k.labelset,
			.bucket = r->k.bucket,
			.cpu = s->own[i] + s->rest * share,
			.samples = s->own_samples[i] + s->rest_samples * share,
			.exposure = exposure,
		};
	}
	return FDO_OK;
}

/* Which published version each release was likely built with: the
 * newest one created before the release was first seen. fdod is not told
 * which profile a build used; a pipeline that builds with the newest
 * version publishes before it rolls out, so this is the usual answer. */
static int version_before(void *arg, uint32_t ver,
			  const struct store_published *v)
{
	struct rel_scan *s = arg;
	for (size_t i = 0; i < s->nrel; i++) {
		struct rel *x = &s->rel[i];
		if (v->created > x->rec.first_seen ||
		    (x->version && x->version_created > v->created))
			continue;
		x->version = ver;
		x->version_created = v->created;
		fdo_hex_encode(v->sha256, sizeof v->sha256, x->version_id);
	}
	return 0;
}

static int cmp_rel(const void *a, const void *b)
{
	const struct rel *x = a, *y = b;
	if (x->rec.first_seen != y->rec.first_seen)
		return x->rec.first_seen < y->rec.first_seen ? -1 : 1;
	return x->bid < y->bid ? -1 : x->bid > y->bid;
}

/* The binary's releases, oldest first, numbered; the newest `limit` are
 * kept in s->rel. */
static int find_releases(store_txn *t, uint32_t binary, size_t limit,
			 struct rel_scan *s, uint64_t *total)
{
	struct rel *v = NULL;
	size_t n = 0, cap = 0;
	for (uint32_t bid = 1;; bid++) {
		struct store_buildid rec;
		int rc = store_buildid_get(t, bid, &rec);
		if (rc == FDO_ENOT_FOUND)
			break;
		if (rc || rec.binary != binary || !rec.first_seen)
			continue;
		if ((rc = fdo_grow(v, cap, n + 1))) {
			free(v);
			return rc;
		}
		memset(&v[n], 0, sizeof v[n]);
		v[n].bid = bid;
		v[n++].rec = rec;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_rel);
	for (size_t i = 0; i < n; i++)
		v[i].number = i + 1;
	*total = n;
	s->all = malloc((n ? n : 1) * sizeof *s->all);
	if (!s->all) {
		free(v);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		s->all[i] = v[i].bid;
	s->nall = n;
	if (n)
		qsort(s->all, n, sizeof *s->all, cmp_u32);
	size_t skip = n > limit ? n - limit : 0;
	if (skip)
		memmove(v, v + skip, (n - skip) * sizeof *v);
	s->rel = v;
	s->nrel = n - skip;
	s->own = calloc(s->nrel ? s->nrel : 1, sizeof *s->own);
	s->own_samples = calloc(s->nrel ? s->nrel : 1, sizeof *s->own);
	return s->own && s->own_samples ? FDO_OK : FDO_ENOMEM;
}

static void scan_free(struct rel_scan *s)
{
	for (size_t i = 0; i < s->nrel; i++) {
		free(s->rel[i].cells);
		free(s->rel[i].bcells);
	}
	free(s->rel);
	free(s->all);
	free(s->rows);
	free(s->firsts);
	free(s->lasts);
	free(s->own);
	free(s->own_samples);
}

static void json_release(struct fdo_buf *b, store_txn *t, const struct rel *x)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(x->rec.build_id, x->rec.build_id_len, hex);
	double w = 0, e = 0, n = 0;
	for (size_t i = 0; i < x->nbcells; i++) {
		w += x->bcells[i].cpu;
		e += x->bcells[i].exposure;
		n += x->bcells[i].samples;
	}
	fdo_buf_printf(b,
		       "{\"release\":%llu,\"build_id\":\"%s\","
		       "\"first_seen\":%llu,\"last_seen\":%llu,"
		       "\"profile_version\":",
		       (unsigned long long)x->number, hex,
		       (unsigned long long)x->rec.first_seen,
		       (unsigned long long)x->rec.last_seen);
	if (x->version)
		fdo_buf_printf(b,
			       "{\"version\":%u,\"id\":\"%s\","
			       "\"created\":%llu,\"inferred\":true}",
			       x->version, x->version_id,
			       (unsigned long long)x->version_created);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_printf(b,
		       ",\"weight\":%.6g,\"samples\":%.0f,"
		       "\"host_hours\":%.6g,\"weight_per_host_hour\":%.6g,"
		       "\"label_sets\":[",
		       w, n, e / 3600, e > 0 ? w / e * 3600 : 0);
	int first = 1;
	for (size_t i = 0; i < x->ncells;) {
		uint32_t ls = x->cells[i].labelset;
		double lw = 0, le = 0;
		size_t buckets = 0;
		for (; i < x->ncells && x->cells[i].labelset == ls; i++) {
			lw += x->cells[i].cpu;
			le += x->cells[i].exposure;
			buckets++;
		}
		const void *p = "";
		size_t len = 0;
		if (store_intern_name(t, STORE_DICT_LABELSETS, ls, &p, &len))
			p = "", len = 0;
		char text[STORE_NAME_MAX + 1];
		len = len > STORE_NAME_MAX ? STORE_NAME_MAX : len;
		memcpy(text, p, len);
		text[len] = 0;
		fdo_buf_puts(b, first ? "{\"labels\":" : ",{\"labels\":");
		first = 0;
		fdo_buf_json_str(b, text);
		fdo_buf_printf(b,
			       ",\"buckets\":%zu,\"weight\":%.6g,"
			       "\"host_hours\":%.6g,"
			       "\"weight_per_host_hour\":%.6g}",
			       buckets, lw, le / 3600,
			       le > 0 ? lw / le * 3600 : 0);
	}
	fdo_buf_puts(b, "]}");
}

static void json_compare(struct fdo_buf *b, const struct rel *a,
			 const struct rel *x)
{
	struct agg_rel_cmp c;
	agg_release_compare(a->bcells, a->nbcells, x->bcells, x->nbcells, &c);
	/* The label sets both hold (both ran with those labels); the ratio
	 * is over all of them, per bucket. */
	size_t common = 0;
	for (size_t i = 0, j = 0; i < a->ncells; i++) {
		uint32_t ls = a->cells[i].labelset;
		if (i && a->cells[i - 1].labelset == ls)
			continue;
		while (j < x->ncells && x->cells[j].labelset < ls)
			j++;
		common += j < x->ncells && x->cells[j].labelset == ls;
	}
	char ha[2 * FDO_BUILD_ID_MAX + 1], hx[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(a->rec.build_id, a->rec.build_id_len, ha);
	fdo_hex_encode(x->rec.build_id, x->rec.build_id_len, hx);
	fdo_buf_printf(b,
		       "{\"release\":%llu,\"build_id\":\"%s\","
		       "\"previous\":%llu,\"previous_build_id\":\"%s\","
		       "\"label_sets\":%zu,\"buckets\":%zu,"
		       "\"previous_buckets\":%zu,\"samples\":%.0f,"
		       "\"previous_samples\":%.0f,",
		       (unsigned long long)x->number, hx,
		       (unsigned long long)a->number, ha, common, c.cells_b,
		       c.cells_a, c.samples_b, c.samples_a);
	if (c.ratio <= 0) {
		fdo_buf_puts(b, "\"ratio\":null,\"low\":null,\"high\":null,"
				"\"text\":");
		char text[256];
		snprintf(text, sizeof text,
			 "release %llu (%.12s): no CPU measured for it or "
			 "for release %llu",
			 (unsigned long long)x->number, hx,
			 (unsigned long long)a->number);
		fdo_buf_json_str(b, text);
		fdo_buf_putc(b, '}');
		return;
	}
	fdo_buf_printf(b, "\"ratio\":%.6g,\"low\":%.6g,\"high\":%.6g,\"text\":",
		       c.ratio, c.lo, c.hi);
	char text[320], built[64] = "";
	if (x->version)
		snprintf(built, sizeof built,
			 ", likely built with profile version %u", x->version);
	snprintf(text, sizeof text,
		 "release %llu (%.12s)%s: %+.1f%% CPU per host-hour [%+.1f, "
		 "%+.1f] vs release %llu (%.12s)",
		 (unsigned long long)x->number, hx, built, (c.ratio - 1) * 100,
		 (c.lo - 1) * 100, (c.hi - 1) * 100,
		 (unsigned long long)a->number, ha);
	fdo_buf_json_str(b, text);
	fdo_buf_putc(b, '}');
}

void srv_h_releases(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	size_t limit = REL_LIMIT_DEFAULT;
	char val[32];
	int qrc = srv_query_get(req->query, "limit", val, sizeof val);
	if (qrc == FDO_OK) {
		char *end;
		unsigned long long l = strtoull(val, &end, 10);
		if (!val[0] || *end || val[0] == '-' || l < 1 ||
		    l > REL_LIMIT_MAX) {
			srv_resp_error(resp, 400, "limit= must be 1 to %d",
				       REL_LIMIT_MAX);
			return;
		}
		limit = (size_t)l;
	} else if (qrc != FDO_ENOT_FOUND) {
		srv_resp_error(resp, 400, "limit= must be 1 to %d",
			       REL_LIMIT_MAX);
		return;
	}
	store_txn *t;
	uint32_t binary;
	if (srv_binary_txn(app, resp, 1, req->param[0], &t, &binary)) {
		if (resp->status == 503) /* the store: busy now */
			srv_resp_header(resp, "Retry-After", "1");
		return;
	}
	struct rel_scan s = {0};
	uint64_t width = app->cfg.bucket ? app->cfg.bucket : 3600;
	uint64_t now = (uint64_t)time(NULL), total = 0;
	int rc = find_releases(t, binary, limit, &s, &total);
	if (!rc)
		rc = srv_each_version(t, binary, version_before, &s);
	if (!rc)
		rc = store_hosts_each(t, binary, keep_host, &s);
	if (!rc && s.nhosts) {
		qsort(s.firsts, s.nhosts, sizeof *s.firsts, cmp_u64);
		qsort(s.lasts, s.nhosts, sizeof *s.lasts, cmp_u64);
	}
	if (!rc)
		rc = srv_totals_each(app, t, binary, keep_row, &s);
	/* Buckets over before the oldest listed release was first seen
	 * hold none of its samples: not read. A batch's samples may sit in
	 * buckets up to its window (a day at most) before its end, which is
	 * what first_seen is. */
	uint64_t from = 0;
	if (s.nrel && s.rel[0].rec.first_seen > width + WINDOW_MAX_S)
		from = s.rel[0].rec.first_seen - width - WINDOW_MAX_S;
	for (size_t i = 0; i < s.nrows && !rc; i++)
		if (s.rows[i].k.bucket >= from)
			rc = add_run(&s, t, &s.rows[i], width, now);
	for (size_t i = 0; i < s.nrel && !rc; i++) {
		struct rel *x = &s.rel[i];
		x->bcells =
			malloc((x->ncells ? x->ncells : 1) * sizeof *x->bcells);
		if (!x->bcells)
			rc = FDO_ENOMEM;
		else
			x->nbcells = agg_rel_by_bucket(x->cells, x->ncells,
						       x->bcells);
	}
	if (rc) {
		store_txn_abort(t);
		scan_free(&s);
		srv_resp_error(resp, 503, "cannot read the counts: %s",
			       fdo_strerror(rc));
		srv_resp_header(resp, "Retry-After", "1");
		return;
	}
	struct fdo_buf *b = &resp->body;
	fdo_buf_puts(b, "{\"binary\":");
	fdo_buf_json_str(b, req->param[0]);
	fdo_buf_printf(b,
		       ",\"measure\":\"weight per host-hour\","
		       "\"bucket_seconds\":%llu,\"releases_total\":%llu,"
		       "\"limit\":%zu,\"unattributed_weight\":%.6g,"
		       "\"releases\":[",
		       (unsigned long long)width, (unsigned long long)total,
		       limit, s.unattributed);
	/* Newest first. */
	for (size_t i = s.nrel; i-- > 0;) {
		if (i + 1 < s.nrel)
			fdo_buf_putc(b, ',');
		json_release(b, t, &s.rel[i]);
	}
	fdo_buf_puts(b, "],\"comparisons\":[");
	for (size_t i = s.nrel; i-- > 1;) {
		if (i + 1 < s.nrel)
			fdo_buf_putc(b, ',');
		json_compare(b, &s.rel[i - 1], &s.rel[i]);
	}
	fdo_buf_puts(b, "]}\n");
	store_txn_abort(t);
	scan_free(&s);
}
