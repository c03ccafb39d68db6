/*
 * server/profiles.c — the profile API for build pipelines:
 *   GET  /v1/profiles/{binary}?format=&labels=&mix=&window=&half_life=
 *        &build_id=&min_samples=&min_hosts=&min_span=
 *        &<emitter option>= (every entry of prof_opt_defs,
 *        aggregator/emit_opts.c: counts, line_count, head, min_share...)
 *   POST /v1/profiles/{binary}/publish   (same selectors)
 *   GET  /v1/profiles/{binary}/versions[/{id}]
 *   GET  /v1/binaries/{binary}/readiness (would a pull be ready, per
 *        label set)
 * A profile is "ready" when it meets the curation minimums (config
 * defaults, overridable per request); otherwise the answer is 409 with
 * every rule that failed and the current figures. A published version is
 * frozen: its id is the SHA-256 of its bytes and GET .../versions/{id}
 * returns exactly those bytes forever.
 *
 * A version is a value of table published, coded by storage/
 * (store_published_encode/decode; layout in storage/codec.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/opts.h"
#include "server/app.h"

#define PUB_MAX_BYTES (256u << 20) /* largest profile a version may hold */

/* Everything a request selects, parsed and checked. */
struct preq {
	struct agg_profile_query q;
	const struct prof_emitter *em;
	struct prof_opts opts;
	uint64_t min_samples, min_hosts, min_span;
	char build_id_hex[129];
};

static int qget(struct srv_req *req, const char *key, char *out, size_t cap,
		struct srv_resp *resp)
{
	int rc = srv_query_get(req->query, key, out, cap);
	if (rc == FDO_ELIMIT) {
		srv_resp_error(resp, 400, "%s= is too long", key);
		return -1;
	}
	if (rc) {
		out[0] = 0;
		return 0;
	}
	return 1;
}

static int parse_request(struct srv_app *app, struct srv_req *req,
			 struct srv_resp *resp, struct preq *pr)
{
	char v[2048], labels[2048], mix[2048], err[256];
	memset(pr, 0, sizeof *pr);
	prof_opts_init(&pr->opts);
	pr->q.binary = req->param[0];
	pr->q.now = (uint64_t)time(NULL);
	pr->q.bucket_seconds = (uint32_t)app->cfg.bucket;
	pr->min_samples = app->cfg.min_samples;
	pr->min_hosts = app->cfg.min_hosts;
	pr->min_span = app->cfg.min_span;
	int got;
	if ((got = qget(req, "format", v, sizeof v, resp)) < 0)
		return -1;
	pr->em = prof_emitter_find(got ? v : "llvm");
	if (!pr->em) {
		srv_resp_error(resp, 400,
			       "unknown format '%s' (llvm, gcc, bolt, folded, "
			       "pprof)",
			       v);
		return -1;
	}
	if (qget(req, "labels", labels, sizeof labels, resp) < 0 ||
	    qget(req, "mix", mix, sizeof mix, resp) < 0)
		return -1;
	if (agg_query_selectors(&pr->q, labels, mix, err, sizeof err)) {
		srv_resp_error(resp, 400, "%s", err);
		return -1;
	}
	static const struct {
		const char *key;
		int duration;
	} nums[] = {{"window", 1},
		    {"half_life", 1},
		    {"min_span", 1},
		    {"min_samples", 0},
		    {"min_hosts", 0}};
	uint64_t *dst[] = {&pr->q.window, &pr->q.half_life, &pr->min_span,
			   &pr->min_samples, &pr->min_hosts};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		if ((got = qget(req, nums[i].key, v, sizeof v, resp)) < 0)
			return -1;
		if (!got)
			continue;
		int rc = nums[i].duration ? fdo_parse_duration(v, dst[i])
					  : fdo_parse_uint(v, dst[i]);
		if (rc || (nums[i].duration && *dst[i] > 10ull * 365 * 86400)) {
			srv_resp_error(
				resp, 400, "bad %s '%s'%s", nums[i].key, v,
				nums[i].duration
					? " (a duration like 7d, 12h, 30m)"
					: "");
			return -1;
		}
	}
	if ((got = qget(req, "build_id", v, sizeof v, resp)) < 0)
		return -1;
	if (got) {
		if (fdo_build_id_parse(v, pr->q.build_id,
				       &pr->q.build_id_len)) {
			srv_resp_error(resp, 400,
				       "build_id '%.130s' is not lowercase hex",
				       v);
			return -1;
		}
		snprintf(pr->build_id_hex, sizeof pr->build_id_hex, "%s", v);
		memcpy(pr->opts.build_id, pr->q.build_id, pr->q.build_id_len);
		pr->opts.build_id_len = pr->q.build_id_len;
	}
	/* The emitters' options, typed once (aggregator/emit_opts.c). */
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		if ((got = qget(req, d->name, v, sizeof v, resp)) < 0)
			return -1;
		if (got &&
		    prof_opts_set(&pr->opts, d->name, v, err, sizeof err)) {
			srv_resp_error(resp, 400, "%s", err);
			return -1;
		}
	}
	/* The compile-time formats read leaves and caller->callee pairs,
	 * not whole stacks; block counts cost a disassembly: only for the
	 * formats that read them. */
	int compile = !strcmp(pr->em->name, "llvm") ||
		      !strcmp(pr->em->name, "gcc") ||
		      !strcmp(pr->em->name, "bolt");
	pr->q.reduced = compile;
	if (!compile) { /* folded, pprof: trimmed by the builder */
		pr->q.max_stacks = pr->opts.max_stacks;
		pr->q.min_share = pr->opts.min_share;
	}
	pr->q.blocks = pr->opts.counts == PROF_COUNTS_BLOCKS && compile;
	/* Branch records (LBR) make the bolt profile when there are any. */
	pr->q.branches = !strcmp(pr->em->name, "bolt");
	pr->q.spread = pr->opts.balance ? (double)pr->opts.spread : 0;
	pr->q.dispersion = (double)pr->opts.dispersion;
	return 0;
}

/* The selectors as canonical JSON (the inputs of a version). */
static void inputs_json(const struct preq *pr, const struct prof *p,
			struct fdo_buf *b)
{
	fdo_buf_puts(b, "{\"format\":");
	fdo_buf_json_str(b, pr->em->name);
	fdo_buf_puts(b, ",\"selectors\":[");
	for (size_t i = 0; i < pr->q.nselectors; i++) {
		fdo_buf_printf(b, "%s{\"weight\":%g,\"labels\":[", i ? "," : "",
			       pr->q.selectors[i].weight);
		for (size_t k = 0; k < pr->q.selectors[i].npairs; k++) {
			if (k)
				fdo_buf_putc(b, ',');
			fdo_buf_json_str(b, pr->q.selectors[i].pairs[k]);
		}
		fdo_buf_puts(b, "]}");
	}
	fdo_buf_printf(b, "],\"window\":%llu,\"half_life\":%llu,\"build_id\":",
		       (unsigned long long)pr->q.window,
		       (unsigned long long)pr->q.half_life);
	fdo_buf_json_str(b, pr->build_id_hex);
	/* The emitters' options, every one (defaults change between
	 * releases; a version says what it was built with). */
	fdo_buf_puts(b, ",\"options\":{");
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		const char *base = (const char *)&pr->opts + d->offset;
		fdo_buf_printf(b, "%s\"%s\":", d == prof_opt_defs ? "" : ",",
			       d->name);
		if (d->type == PROF_OPT_ENUM)
			fdo_buf_json_str(b, d->values[*(const int *)base]);
		else if (d->type == PROF_OPT_BOOL)
			fdo_buf_puts(b, *(const int *)base ? "true" : "false");
		else if (d->type == PROF_OPT_DOUBLE)
			fdo_buf_printf(b, "%g", *(const double *)base);
		else
			fdo_buf_printf(
				b, "%llu",
				(unsigned long long)*(const uint64_t *)base);
	}
	fdo_buf_putc(b, '}');
	fdo_buf_printf(b,
		       ",\"samples\":%llu,\"hosts\":%llu,\"span\":%llu,"
		       "\"first_time\":%llu,\"last_time\":%llu,\"build_ids\":[",
		       (unsigned long long)p->samples,
		       (unsigned long long)p->hosts,
		       (unsigned long long)(p->last_time - p->first_time),
		       (unsigned long long)p->first_time,
		       (unsigned long long)p->last_time);
	for (size_t i = 0; i < p->nbuild_ids; i++) {
		if (i)
			fdo_buf_putc(b, ',');
		fdo_buf_json_str(b, p->build_ids[i].hex);
	}
	fdo_buf_puts(b, "]}");
}

/*
 * The readiness rules: a profile is ready when each figure reaches its
 * minimum. Shared by the 409 answer of a pull and GET .../readiness.
 */
#define NRULES 3
struct rule {
	const char *rule;
	uint64_t have, need;
};

/* Fill rules[NRULES] from the figures; returns 1 if any rule fails. */
static int check_rules(const struct preq *pr, uint64_t samples, uint64_t hosts,
		       uint64_t span, struct rule rules[NRULES])
{
	rules[0] = (struct rule){"min_samples", samples, pr->min_samples};
	rules[1] = (struct rule){"min_hosts", hosts, pr->min_hosts};
	rules[2] = (struct rule){"min_span", span, pr->min_span};
	int failed = 0;
	for (size_t i = 0; i < NRULES; i++)
		failed |= rules[i].have < rules[i].need;
	return failed;
}

/* "failed":[{"rule":..,"have":..,"need":..}...] of the failing rules. */
static void json_failed(struct fdo_buf *b, const struct rule rules[NRULES])
{
	fdo_buf_puts(b, "\"failed\":[");
	int first = 1;
	for (size_t i = 0; i < NRULES; i++) {
		if (rules[i].have >= rules[i].need)
			continue;
		fdo_buf_printf(b,
			       "%s{\"rule\":\"%s\",\"have\":%llu,"
			       "\"need\":%llu}",
			       first ? "" : ",", rules[i].rule,
			       (unsigned long long)rules[i].have,
			       (unsigned long long)rules[i].need);
		first = 0;
	}
	fdo_buf_putc(b, ']');
}

/* Build, check readiness, emit. Returns 0 with bytes in out, or -1 with
 * resp filled. */
static int make_profile(struct srv_app *app, struct preq *pr,
			struct srv_resp *resp, struct prof *p,
			struct fdo_buf *out)
{
	char err[256] = "";
	int rc = agg_profile_build(app->st, app->cache, app->cfg.data, &pr->q,
				   p, err, sizeof err);
	if (rc == FDO_ENOT_FOUND) {
		srv_resp_error(resp, 404, "%s", err);
		return -1;
	}
	if (rc) {
		srv_resp_error(resp, 503, "cannot build the profile: %s", err);
		return -1;
	}
	uint64_t span =
		p->last_time > p->first_time ? p->last_time - p->first_time : 0;
	struct rule rules[NRULES];
	if (check_rules(pr, p->samples, p->hosts, span, rules)) {
		resp->status = 409;
		struct fdo_buf *b = &resp->body;
		fdo_buf_puts(b, "{\"ready\":false,");
		json_failed(b, rules);
		fdo_buf_puts(b, ",\"error\":\"profile not ready:");
		for (size_t i = 0; i < NRULES; i++)
			if (rules[i].have < rules[i].need)
				fdo_buf_printf(
					b, " %s %llu < %llu;", rules[i].rule,
					(unsigned long long)rules[i].have,
					(unsigned long long)rules[i].need);
		fdo_buf_puts(b, "\"}\n");
		return -1;
	}
	rc = pr->em->emit(p, &pr->opts, out);
	if (rc == FDO_EUNSUPPORTED) {
		srv_resp_error(resp, 422,
			       "format %s needs the symbols of one exact "
			       "build-id (give build_id= and upload its ELF)",
			       pr->em->name);
		return -1;
	}
	if (rc || out->oom) {
		srv_resp_error(resp, 500, "cannot write the %s profile: %s",
			       pr->em->name,
			       fdo_strerror(rc ? rc : FDO_ENOMEM));
		return -1;
	}
	if (out->len == 0) {
		/* Compilers refuse an empty profile: never serve one. */
		resp->status = 409;
		fdo_buf_printf(&resp->body,
			       "{\"ready\":false,\"failed\":[{\"rule\":"
			       "\"not_empty\",\"have\":0,\"need\":1}],"
			       "\"error\":\"profile not ready: no symbolized "
			       "samples in format %s (are the symbols "
			       "uploaded?)\"}\n",
			       pr->em->name);
		return -1;
	}
	return 0;
}

/*
 * build_answer: build the profile pr asks for into a (its body malloc'd,
 * for pcache_publish). A refusal that the same store state would give
 * again (unknown binary, not ready, no symbols for bolt) is an answer too,
 * so that identical pulls of a profile that is not ready do not each
 * build it in turn. Returns 0, or -1 with resp filled with the error.
 */
static int build_answer(struct srv_app *app, struct preq *pr,
			struct srv_resp *resp, struct pcache_answer *a)
{
	struct prof p;
	struct fdo_buf out;
	fdo_buf_init(&out);
	memset(a, 0, sizeof *a);
	int rc = make_profile(app, pr, resp, &p, &out);
	if (rc == 0) {
		uint8_t d[32];
		fdo_sha256(out.data, out.len, d);
		fdo_hex_encode(d, 32, a->hash_hex);
		a->status = 200;
		a->content_type = prof_content_type(pr->em, out.data, out.len);
		a->samples = p.samples;
		a->hosts = p.hosts;
		size_t k = 0;
		for (size_t i = 0; i < p.nbuild_ids && i < 8; i++)
			k += (size_t)snprintf(a->build_ids + k,
					      sizeof a->build_ids - k, "%s%s",
					      i ? "," : "", p.build_ids[i].hex);
		if (p.nbuild_ids > 8)
			snprintf(a->build_ids + k, sizeof a->build_ids - k,
				 ",...");
		a->body = (uint8_t *)out.data; /* taken over */
		a->len = out.len;
		fdo_buf_init(&out);
	} else if ((resp->status == 404 || resp->status == 409 ||
		    resp->status == 422) &&
		   !resp->body.oom &&
		   (a->body = malloc(resp->body.len + 1)) != NULL) {
		a->status = resp->status;
		a->content_type = resp->content_type;
		a->len = resp->body.len;
		memcpy(a->body, resp->body.data ? resp->body.data : "", a->len);
		fdo_buf_reset(&resp->body);
		rc = 0;
	}
	fdo_buf_fini(&out);
	prof_fini(&p);
	return rc;
}

/* The response of a built profile (304 when the client has it). */
static void answer(struct srv_req *req, struct srv_resp *resp,
		   const struct pcache_answer *a)
{
	resp->content_type = a->content_type;
	if (a->status != 200) {
		resp->status = a->status;
		fdo_buf_append(&resp->body, a->body, a->len);
		return;
	}
	srv_resp_header(resp, "ETag", "\"%s\"", a->hash_hex);
	srv_resp_header(resp, "X-Fdod-Version", "%s", a->hash_hex);
	srv_resp_header(resp, "X-Fdod-Samples", "%llu",
			(unsigned long long)a->samples);
	srv_resp_header(resp, "X-Fdod-Hosts", "%llu",
			(unsigned long long)a->hosts);
	srv_resp_header(resp, "X-Fdod-Build-Ids", "%s", a->build_ids);
	const char *inm = srv_req_header(req, "If-None-Match");
	char quoted[70];
	snprintf(quoted, sizeof quoted, "\"%s\"", a->hash_hex);
	if (inm && !strcmp(inm, quoted))
		resp->status = 304;
	else
		fdo_buf_append(&resp->body, a->body, a->len);
}

/*
 * GET /v1/profiles/{binary}: everything acknowledged before the pull is
 * merged first; then identical pulls of the same store state share one
 * build (server/pcache.h): the request's text is the key, the store's
 * generation after the merge the state.
 */
void srv_h_profile(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct preq pr;
	if (parse_request(app, req, resp, &pr)) {
		srv_metrics_profile(app, NULL, resp->status);
		agg_query_fini(&pr.q);
		return;
	}
	uint64_t arrived = fdo_now_ns();
	agg_ingest_flush(app->ingest, 10000);
	struct store_stats ss;
	store_stats(app->st, &ss);
	struct fdo_buf key;
	fdo_buf_init(&key);
	fdo_buf_printf(&key, "%s?%s", req->param[0], req->query);
	struct pcache_entry *e = NULL;
	int hit = !key.oom && pcache_get(app->pcache, fdo_buf_cstr(&key),
					 ss.generation, arrived, &e);
	fdo_buf_fini(&key);
	if (hit) {
		answer(req, resp, pcache_answer_of(e));
		pcache_release(app->pcache, e);
	} else {
		struct pcache_answer own;
		if (build_answer(app, &pr, resp, &own) == 0) {
			answer(req, resp, &own);
			if (e)
				pcache_publish(app->pcache, e, &own);
			free(own.body);
		} else {
			pcache_fail(app->pcache, e);
		}
	}
	srv_metrics_profile(app, pr.em->name, resp->status);
	agg_query_fini(&pr.q);
}

/* --------------------------------------------------------- readiness -- */

/*
 * GET /v1/binaries/{binary}/readiness?window=&min_samples=&min_hosts=
 * &min_span= answers, without building a profile, whether a pull would be
 * ready: for the whole binary ("all") and for each stored label set L as
 * `labels=L` selects it (every label set holding L's pairs), the figures
 * the rules check and the rules that fail (the same rules and defaults as
 * a pull; other selectors in the query are ignored). Not checked here: that
 * an emitted profile is not empty, which needs symbols; "symbols" says
 * whether any build-id of the binary has some.
 *
 * Workload: one pass over the binary's totals (a row per label set and
 * bucket, storage/totals.c; not its counts, which are millions), then
 * label sets x label sets pair checks; label sets are few.
 */

/* Figures of one exact label set. */
struct lset {
	uint32_t id;
	uint64_t samples;
	uint64_t first, last; /* unix seconds: bucket starts, bucket ends */
	char text[STORE_NAME_MAX + 1];
};

static void lset_add(struct lset *into, const struct lset *l)
{
	into->samples += l->samples;
	if (!into->first || l->first < into->first)
		into->first = l->first;
	if (l->last > into->last)
		into->last = l->last;
}

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

static void json_ready(struct fdo_buf *b, const struct preq *pr,
		       const struct lset *l, uint64_t hosts)
{
	uint64_t span = l->last > l->first ? l->last - l->first : 0;
	struct rule rules[NRULES];
	int failed = check_rules(pr, l->samples, hosts, span, rules);
	fdo_buf_printf(b,
		       "\"ready\":%s,\"samples\":%llu,\"hosts\":%llu,"
		       "\"span\":%llu,\"first_time\":%llu,\"last_time\":%llu,",
		       failed ? "false" : "true",
		       (unsigned long long)l->samples,
		       (unsigned long long)hosts, (unsigned long long)span,
		       (unsigned long long)l->first,
		       (unsigned long long)l->last);
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
	struct lset one = {.samples = w->samples,
			   .first = ck->bucket,
			   .last = (uint64_t)ck->bucket + s->width};
	lset_add(&s->v[s->slot[ck->labelset] - 1], &one);
	return FDO_OK;
}

static int scan_lsets(struct srv_app *app, store_txn *t, uint32_t binary,
		      const struct preq *pr, struct lset **out, size_t *n)
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
	struct preq pr;
	if (parse_request(app, req, resp, &pr)) {
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
		       (unsigned long long)pr.min_samples,
		       (unsigned long long)pr.min_hosts,
		       (unsigned long long)pr.min_span,
		       (unsigned long long)pr.q.window,
		       symbols ? "true" : "false");
	struct lset all = {0};
	for (size_t i = 0; i < n; i++)
		lset_add(&all, &v[i]);
	json_ready(b, &pr, &all, hosts);
	fdo_buf_puts(b, "},\"label_sets\":[");
	for (size_t i = 0; i < n; i++) {
		struct lset sel = {0};
		for (size_t j = 0; j < n; j++)
			if (lset_holds(v[j].text, v[i].text))
				lset_add(&sel, &v[j]);
		fdo_buf_puts(b, i ? ",{\"labels\":" : "{\"labels\":");
		fdo_buf_json_str(b, v[i].text);
		fdo_buf_printf(b, ",\"own_samples\":%llu,",
			       (unsigned long long)v[i].samples);
		json_ready(b, &pr, &sel, hosts);
		fdo_buf_putc(b, '}');
	}
	fdo_buf_puts(b, "]}\n");
	free(v);
}

/* --------------------------------------------------------- publishing -- */

struct publish {
	uint32_t binary;
	struct store_published v;
	uint32_t version; /* out */
	int existed;	  /* out */
};

static int publish_txn(store_txn *t, void *arg)
{
	struct publish *pb = arg;
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_PUBLISHED, &c);
	if (rc)
		return rc;
	uint8_t start[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(start, pb->binary, 0);
	const void *k, *v;
	size_t kl, vl;
	uint32_t last = 0, b, ver;
	pb->existed = 0;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_published_key_decode(k, kl, &b, &ver) &&
	       b == pb->binary) {
		struct store_published old;
		last = ver;
		if (!store_published_decode(v, vl, &old) &&
		    !memcmp(old.sha256, pb->v.sha256, sizeof old.sha256)) {
			pb->existed = 1;
			pb->version = ver;
		}
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (pb->existed)
		return FDO_OK;
	pb->version = last + 1;
	size_t len = store_published_size(&pb->v);
	uint8_t *val = len ? malloc(len) : NULL;
	if (!val)
		return len ? FDO_ENOMEM : FDO_ELIMIT;
	rc = store_published_encode(&pb->v, val, len, &len);
	uint8_t key[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(key, pb->binary, pb->version);
	if (!rc)
		rc = store_put(t, STORE_PUBLISHED, key, sizeof key, val, len,
			       STORE_NOOVERWRITE);
	free(val);
	return rc;
}

void srv_h_publish(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct preq pr;
	if (parse_request(app, req, resp, &pr)) {
		agg_query_fini(&pr.q);
		return;
	}
	struct prof p;
	struct fdo_buf out, inputs;
	fdo_buf_init(&out);
	fdo_buf_init(&inputs);
	agg_ingest_flush(app->ingest, 10000);
	if (make_profile(app, &pr, resp, &p, &out) == 0) {
		uint8_t d[32];
		char hex[65];
		fdo_sha256(out.data, out.len, d);
		fdo_hex_encode(d, 32, hex);
		inputs_json(&pr, &p, &inputs);
		store_txn *t;
		uint32_t binary = 0;
		if (store_txn_begin(app->st, 0, &t) == FDO_OK) {
			store_intern_binary(t, pr.q.binary, strlen(pr.q.binary),
					    0, &binary);
			store_txn_abort(t);
		}
		struct publish pb = {.binary = binary};
		pb.v.format = pr.em->code;
		pb.v.created = (uint64_t)time(NULL);
		memcpy(pb.v.sha256, d, sizeof d);
		pb.v.inputs = inputs.data;
		pb.v.inputs_len = inputs.len;
		pb.v.bytes = out.data;
		pb.v.bytes_len = out.len;
		int rc = out.len + inputs.len + STORE_PUBLISHED_HDR_SIZE >
					 PUB_MAX_BYTES
				 ? FDO_ELIMIT
				 : store_write(app->st, publish_txn, &pb);
		if (rc) {
			srv_resp_error(resp, rc == FDO_ELIMIT ? 413 : 507,
				       "cannot publish: %s", fdo_strerror(rc));
		} else {
			resp->status = pb.existed ? 200 : 201;
			fdo_buf_printf(&resp->body,
				       "{\"id\":\"%s\",\"version\":%u,"
				       "\"format\":\"%s\",\"bytes\":%zu,"
				       "\"existed\":%s,\"inputs\":",
				       hex, pb.version, pr.em->name, out.len,
				       pb.existed ? "true" : "false");
			fdo_buf_append(&resp->body, inputs.data, inputs.len);
			fdo_buf_puts(&resp->body, "}\n");
			fdo_info(
				"published %s version %u (%s, %zu bytes) as %s",
				pr.q.binary, pb.version, pr.em->name, out.len,
				hex);
		}
	}
	fdo_buf_fini(&out);
	fdo_buf_fini(&inputs);
	prof_fini(&p);
	agg_query_fini(&pr.q);
}

/* Walk the versions of a binary; fn gets each decoded record (one that
 * does not decode is skipped). */
static int each_version(store_txn *t, uint32_t binary,
			int (*fn)(void *arg, uint32_t ver,
				  const struct store_published *v),
			void *arg)
{
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_PUBLISHED, &c);
	if (rc)
		return rc;
	uint8_t start[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(start, binary, 0);
	const void *k, *v;
	size_t kl, vl;
	uint32_t b, ver;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_published_key_decode(k, kl, &b, &ver) &&
	       b == binary) {
		struct store_published pv;
		if (!store_published_decode(v, vl, &pv) && fn(arg, ver, &pv))
			break;
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	return FDO_OK;
}

struct list_ctx {
	struct fdo_buf *b;
	int n;
	const char *want; /* id to find, or NULL to list */
	struct srv_resp *resp;
	int found;
};

static int list_one(void *arg, uint32_t ver, const struct store_published *v)
{
	struct list_ctx *lc = arg;
	char hex[65];
	fdo_hex_encode(v->sha256, sizeof v->sha256, hex);
	const struct prof_emitter *em = prof_emitter_by_code(v->format);
	if (lc->want) {
		if (strcmp(lc->want, hex))
			return 0;
		lc->resp->content_type =
			em ? prof_content_type(em, v->bytes, v->bytes_len)
			   : "application/octet-stream";
		srv_resp_header(lc->resp, "ETag", "\"%s\"", hex);
		srv_resp_header(lc->resp, "X-Fdod-Version", "%s", hex);
		fdo_buf_append(lc->b, v->bytes, v->bytes_len);
		lc->found = 1;
		return 1;
	}
	fdo_buf_printf(lc->b,
		       "%s{\"id\":\"%s\",\"version\":%u,\"format\":\"%s\","
		       "\"created\":%llu,\"bytes\":%zu,\"inputs\":",
		       lc->n++ ? "," : "", hex, ver, em ? em->name : "?",
		       (unsigned long long)v->created, v->bytes_len);
	fdo_buf_append(lc->b, v->inputs, v->inputs_len);
	fdo_buf_putc(lc->b, '}');
	return 0;
}

static void versions(struct srv_app *app, struct srv_req *req,
		     struct srv_resp *resp, const char *want)
{
	store_txn *t;
	uint32_t binary;
	if (srv_binary_txn(app, resp, 0, req->param[0], &t, &binary))
		return;
	struct list_ctx lc = {&resp->body, 0, want, resp, 0};
	if (!want)
		fdo_buf_puts(&resp->body, "{\"versions\":[");
	each_version(t, binary, list_one, &lc);
	store_txn_abort(t);
	if (!want)
		fdo_buf_puts(&resp->body, "]}\n");
	else if (!lc.found)
		srv_resp_error(resp, 404, "no version %s of %s", want,
			       req->param[0]);
}

void srv_h_versions(void *a, struct srv_req *req, struct srv_resp *resp)
{
	versions(a, req, resp, NULL);
}

void srv_h_version(void *a, struct srv_req *req, struct srv_resp *resp)
{
	uint8_t d[FDO_BUILD_ID_MAX];
	size_t n;
	if (fdo_build_id_parse(req->param[1], d, &n) || n != 32) {
		srv_resp_error(resp, 400,
			       "a version id is 64 lowercase hex "
			       "digits (the SHA-256 of its bytes)");
		return;
	}
	versions(a, req, resp, req->param[1]);
}
