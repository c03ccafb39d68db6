/*
 * server/readiness.c — the readiness answers of the profile API:
 *   GET /v1/binaries/{binary}/readiness?window=&min_samples=&min_hosts=
 *       &min_span=
 *   and the 409 of a pull or a publish that is not ready
 *   (srv_readiness_refuse, for server/profiles.c).
 * The rules themselves (which fail, with which figures) are the
 * aggregator's (aggregator/readiness.c), the same for a pull and for this
 * route; here they become JSON and HTTP.
 *
 * The route answers, without building a profile, whether a pull would be
 * ready: for the whole binary ("all") and for each stored label set L as
 * `labels=L` selects it (every label set holding L's pairs), the figures
 * the rules check and the rules that fail (the same rules and defaults as
 * a pull; other selectors in the query are ignored). Not checked here: that
 * an emitted profile is not empty, which needs symbols; "symbols" says
 * whether any build-id of the binary has some.
 *
 * Workload: one pass over the binary's totals (a row per label set and
 * bucket, storage/totals.c; not its counts, which are millions, which the
 * builder's pass reads), then label sets x label sets pair checks; label
 * sets are few.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "server/profiles.h"

/* "failed":[{"rule":..,"have":..,"need":..}...] of the failing rules. */
static void json_failed(struct fdo_buf *b,
			const struct agg_rule rules[AGG_RULES])
{
	fdo_buf_puts(b, "\"failed\":[");
	int first = 1;
	for (size_t i = 0; i < AGG_RULES; i++) {
		if (rules[i].have >= rules[i].need)
			continue;
		fdo_buf_printf(b,
			       "%s{\"rule\":\"%s\",\"have\":%llu,"
			       "\"need\":%llu}",
			       first ? "" : ",", rules[i].name,
			       (unsigned long long)rules[i].have,
			       (unsigned long long)rules[i].need);
		first = 0;
	}
	fdo_buf_putc(b, ']');
}

void srv_readiness_refuse(struct srv_resp *resp,
			  const struct agg_rule rules[AGG_RULES])
{
	resp->status = 409;
	struct fdo_buf *b = &resp->body;
	fdo_buf_puts(b, "{\"ready\":false,");
	json_failed(b, rules);
	fdo_buf_puts(b, ",\"error\":\"profile not ready:");
	for (size_t i = 0; i < AGG_RULES; i++)
		if (rules[i].have < rules[i].need)
			fdo_buf_printf(b, " %s %llu < %llu;", rules[i].name,
				       (unsigned long long)rules[i].have,
				       (unsigned long long)rules[i].need);
	fdo_buf_puts(b, "\"}\n");
}

/* Figures of one exact label set. */
struct lset {
	uint32_t id;
	struct agg_figures f; /* hosts: 0 (they are the binary's) */
	char text[STORE_NAME_MAX + 1];
};

/* Does label set text `set` hold every pair of `sel` (both "k=v,k=v")? */
static int lset_holds(const char *set, const char *sel)
{
	size_t sl = strlen(set);
	for (const char *p = sel; *p;) {
		size_t pl = strcspn(p, ",");
		int found = 0;
		for (size_t i = 0; i < sl && !found;) {
			size_t e = strcspn(set + i, ",");
			found = e == pl && !memcmp(set + i, p, pl);
			i += e + 1;
		}
		if (!found)
			return 0;
		p += pl + (p[pl] == ',');
	}
	return 1;
}

/* "ready", the figures and "failed" of figures f (hosts: the binary's). */
static void json_ready(struct fdo_buf *b, const struct srv_preq *pr,
		       struct agg_figures f, uint64_t hosts)
{
	f.hosts = hosts;
	struct agg_rule rules[AGG_RULES];
	int failed = agg_readiness_check(&f, &pr->min, rules);
	fdo_buf_printf(b,
		       "\"ready\":%s,\"samples\":%llu,\"hosts\":%llu,"
		       "\"span\":%llu,\"first_time\":%llu,\"last_time\":%llu,",
		       failed ? "false" : "true", (unsigned long long)f.samples,
		       (unsigned long long)f.hosts,
		       (unsigned long long)agg_figures_span(&f),
		       (unsigned long long)f.first_time,
		       (unsigned long long)f.last_time);
	json_failed(b, rules);
}

/* One pass over the totals of binary: figures per exact label set. */
struct lset_scan {
	store_txn *t;
	uint32_t width;
	uint64_t since;
	struct lset *v;
	size_t nv, cap;
	uint32_t *slot; /* label set id -> index + 1 */
	size_t nslot;
};

static int scan_one(void *arg, const struct store_totals_key *ck,
		    const struct store_totals *w)
{
	struct lset_scan *s = arg;
	if ((uint64_t)ck->bucket + s->width <= s->since)
		return FDO_OK;
	int rc = fdo_grow_zeroed(s->slot, s->nslot, (size_t)ck->labelset + 1);
	if (rc)
		return rc;
	if (!s->slot[ck->labelset]) {
		if ((rc = fdo_grow(s->v, s->cap, s->nv + 1)))
			return rc;
		struct lset *l = &s->v[s->nv];
		memset(l, 0, sizeof *l);
		l->id = ck->labelset;
		const void *p;
		size_t len;
		if (store_intern_name(s->t, STORE_DICT_LABELSETS, ck->labelset,
				      &p, &len) == FDO_OK &&
		    len <= STORE_NAME_MAX)
			memcpy(l->text, p, len);
		s->slot[ck->labelset] = (uint32_t)++s->nv;
	}
	agg_figures_add(&s->v[s->slot[ck->labelset] - 1].f, ck->bucket,
			s->width, w->samples);
	return FDO_OK;
}

static int scan_lsets(struct srv_app *app, store_txn *t, uint32_t binary,
		      const struct srv_preq *pr, struct lset **out, size_t *n)
{
	struct lset_scan s = {
		.t = t,
		.width = pr->q.bucket_seconds ? pr->q.bucket_seconds : 3600,
		.since = pr->q.window && pr->q.now > pr->q.window
				 ? pr->q.now - pr->q.window
				 : 0,
	};
	int rc = srv_totals_each(app, t, binary, scan_one, &s);
	free(s.slot);
	if (rc) {
		free(s.v);
		return rc;
	}
	*out = s.v;
	*n = s.nv;
	return FDO_OK;
}

static int cmp_lset(const void *a, const void *b)
{
	return strcmp(((const struct lset *)a)->text,
		      ((const struct lset *)b)->text);
}

void srv_h_readiness(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct srv_preq pr;
	if (srv_preq_parse(app, req, resp, &pr)) {
		agg_query_fini(&pr.q);
		return;
	}
	agg_query_fini(&pr.q); /* only the rules and the window are used */
	store_txn *t;
	uint32_t binary;
	if (srv_binary_txn(app, resp, 1, req->param[0], &t, &binary))
		return;
	uint64_t hosts = 0;
	store_hosts_count(t, binary, &hosts);
	int symbols = 0;
	for (uint32_t bid = 1;; bid++) {
		struct store_buildid rec;
		int rc = store_buildid_get(t, bid, &rec);
		if (rc == FDO_ENOT_FOUND)
			break;
		if (rc == FDO_OK && rec.binary == binary && rec.sym_state)
			symbols = 1;
	}
	struct lset *v = NULL;
	size_t n = 0;
	int rc = scan_lsets(app, t, binary, &pr, &v, &n);
	store_txn_abort(t);
	if (rc) {
		srv_resp_error(resp, 503, "cannot read the counts: %s",
			       fdo_strerror(rc));
		return;
	}
	qsort(v, n, sizeof *v, cmp_lset);
	struct fdo_buf *b = &resp->body;
	fdo_buf_puts(b, "{\"binary\":");
	fdo_buf_json_str(b, req->param[0]);
	fdo_buf_printf(b,
		       ",\"rules\":{\"min_samples\":%llu,\"min_hosts\":%llu,"
		       "\"min_span\":%llu,\"window\":%llu},\"symbols\":%s,"
		       "\"all\":{",
		       (unsigned long long)pr.min.samples,
		       (unsigned long long)pr.min.hosts,
		       (unsigned long long)pr.min.span,
		       (unsigned long long)pr.q.window,
		       symbols ? "true" : "false");
	struct agg_figures all = {0};
	for (size_t i = 0; i < n; i++)
		agg_figures_merge(&all, &v[i].f);
	json_ready(b, &pr, all, hosts);
	fdo_buf_puts(b, "},\"label_sets\":[");
	for (size_t i = 0; i < n; i++) {
		struct agg_figures sel = {0};
		for (size_t j = 0; j < n; j++)
			if (lset_holds(v[j].text, v[i].text))
				agg_figures_merge(&sel, &v[j].f);
		fdo_buf_puts(b, i ? ",{\"labels\":" : "{\"labels\":");
		fdo_buf_json_str(b, v[i].text);
		fdo_buf_printf(b, ",\"own_samples\":%llu,",
			       (unsigned long long)v[i].f.samples);
		json_ready(b, &pr, sel, hosts);
		fdo_buf_putc(b, '}');
	}
	fdo_buf_puts(b, "]}\n");
	free(v);
}
