/*
 * server/readiness.c — the readiness answers of the profile API:
 *   GET /v1/binaries/{binary}/readiness?window=&min_samples=&min_hosts=
 *       &min_span=&min_fresh_share=
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
 * The staleness score of a binary (GET /v1/binaries/{binary}'s
 * "staleness", /metrics' fdod_profile_fresh_share, the rule
 * min_fresh_share): the share of the samples of its default pull that
 * come from functions unchanged ("fresh", aggregator/stale.c) in the
 * newest release, i.e. X-Fdod-Stale-Fresh of
 * GET /v1/profiles/{binary}?for_build_id=newest. It is that very pull,
 * built through the profile cache under the same key
 * (srv_profile_score), so the score and the header agree by
 * construction and a build job's pull of the newest release shares the
 * build. It needs a profile build and the matching (both releases'
 * DWARF), so it is computed when asked (GET /v1/binaries/{binary}, a
 * readiness rule with a minimum), never by /metrics, and kept per binary
 * (scores[]) by the state it was computed at: the binary's generation,
 * the newest build-id and that build-id's symbol state (an upload of its
 * DWARF changes the answer without a generation). Under live ingest every
 * merge moves the generation; a score of the same newest release younger
 * than SCORE_REUSE_S is reused then, so that a page polling the binary
 * costs one build per SCORE_REUSE_S, not one per request. No score (null,
 * with the reason) when the binary has fewer than two releases, when no
 * release's files are uploaded, or when the default pull is refused (not
 * ready, no symbols). The score is of the newest release whose files are
 * uploaded (score_key.judged). A score that cannot be had now (the pull
 * busy or broken, the store unreadable, no such binary) is not a reason
 * to refuse as not ready: a rule answers the pull's status instead.
 *
 * Workload: one pass over the binary's totals (a row per label set and
 * bucket, storage/totals.c; not its counts, which are millions, which the
 * builder's pass reads), then label sets x label sets pair checks; label
 * sets are few. A score: one pass over the build-ids, then at most one
 * pull per binary per state.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/common.h"
#include "server/profiles.h"

/* ------------------------------------------------ the staleness score -- */

#define SCORES_MAX    64 /* binaries whose score is kept (and exported) */
#define SCORE_REUSE_S 60 /* a score of the same newest release reused */

/* What a score depends on besides time. */
struct score_key {
	uint32_t binary;
	uint64_t gen;
	uint8_t newest[FDO_BUILD_ID_MAX];
	size_t newest_len;
	unsigned sym_state; /* the newest build-id's */
	size_t releases;    /* build-ids of the binary */
	/* The release the score is of: the newest with its executable and
	 * DWARF uploaded (none: the newest, whose pull says what is
	 * missing). Not the newest itself when that one's files are not
	 * uploaded yet: a build the pipeline has not uploaded (or a stray
	 * local build of the same name) must not hold every pull and
	 * publish of the binary hostage to the rule. */
	uint8_t judged[FDO_BUILD_ID_MAX];
	size_t judged_len;
};

struct staleness {
	struct score_key k;
	int have; /* fresh_share holds */
	char newest_hex[2 * FDO_BUILD_ID_MAX + 1];
	char judged_hex[2 * FDO_BUILD_ID_MAX + 1]; /* "": the newest */
	struct srv_score s;
	char reason[512]; /* !have */
	uint64_t computed_at;
	/* 0, or why there is no score now rather than a reason to refuse:
	 * 404 (no such binary), 503 (the score's pull was busy, or the
	 * store could not be read), 500 (the pull broke). A rule passes
	 * these through: they say nothing of the profile's freshness. */
	int status;
};

/* Kept scores, the least recently computed replaced first. One table per
 * process (fdod runs one app); its own lock, held only to copy. */
static struct {
	pthread_mutex_t mu;
	struct staleness v[SCORES_MAX];
	char name[SCORES_MAX][STORE_NAME_MAX + 1];
	size_t n;
} scores = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int score_key_of(struct srv_app *app, const char *binary,
			struct score_key *k)
{
	memset(k, 0, sizeof *k);
	store_txn *t;
	int rc = store_txn_begin(app->st, 0, &t);
	if (rc)
		return rc;
	rc = store_intern_binary(t, binary, strlen(binary), 0, &k->binary);
	for (uint32_t bid = 1; !rc; bid++) {
		struct store_buildid rec;
		int e = store_buildid_get(t, bid, &rec);
		if (e == FDO_ENOT_FOUND)
			break;
		if (e || rec.binary != k->binary)
			continue;
		k->releases++;
		memcpy(k->newest, rec.build_id, rec.build_id_len);
		k->newest_len = rec.build_id_len;
		k->sym_state = rec.sym_state;
		if ((rec.sym_state & STORE_SYM_EXECUTABLE) &&
		    (rec.sym_state & STORE_SYM_DWARF)) {
			memcpy(k->judged, rec.build_id, rec.build_id_len);
			k->judged_len = rec.build_id_len;
		}
	}
	store_txn_abort(t);
	if (!rc)
		k->gen = store_generation_of(app->st, k->binary);
	return rc;
}

/* The "error" text of a refusal's JSON body, unescaped. */
static void error_text(const char *json, char *out, size_t cap)
{
	const char *p = strstr(json, "\"error\":\"");
	size_t n = 0;
	if (p)
		for (p += 9; *p && *p != '"' && n + 1 < cap; p++) {
			char ch = *p;
			if (ch == '\\' && p[1]) {
				ch = *++p;
				if (ch == 'n' || ch == 'r' || ch == 't')
					ch = ' ';
			}
			out[n++] = ch;
		}
	out[n] = 0;
	if (!n)
		snprintf(out, cap, "%s", "the pull was refused");
}

/*
 * staleness_get: the score of binary, from scores[] when its state is
 * the same (or the newest release is and it is young), else computed
 * (a pull) and kept. 0, or -1 when the binary is unknown or the store
 * cannot be read (out->reason says which).
 */
static int staleness_get(struct srv_app *app, const char *binary,
			 struct staleness *out)
{
	memset(out, 0, sizeof *out);
	int rc = score_key_of(app, binary, &out->k);
	if (rc) {
		snprintf(out->reason, sizeof out->reason, "%s",
			 rc == FDO_ENOT_FOUND ? "no such binary"
					      : fdo_strerror(rc));
		out->status = rc == FDO_ENOT_FOUND ? 404 : 503;
		return -1;
	}
	const struct score_key *k = &out->k;
	fdo_hex_encode(k->newest, k->newest_len, out->newest_hex);
	int older = k->judged_len &&
		    (k->judged_len != k->newest_len ||
		     memcmp(k->judged, k->newest, k->newest_len));
	if (older)
		fdo_hex_encode(k->judged, k->judged_len, out->judged_hex);
	if (k->releases < 2) {
		snprintf(out->reason, sizeof out->reason,
			 k->releases ? "only one release of the binary is "
				       "known: nothing to be stale against"
				     : "no release of the binary is known");
		return 0;
	}
	uint64_t now = (uint64_t)time(NULL);
	pthread_mutex_lock(&scores.mu);
	for (size_t i = 0; i < scores.n; i++) {
		const struct staleness *c = &scores.v[i];
		if (strcmp(scores.name[i], binary) ||
		    c->k.newest_len != k->newest_len ||
		    memcmp(c->k.newest, k->newest, k->newest_len) ||
		    c->k.sym_state != k->sym_state ||
		    c->k.releases != k->releases ||
		    c->k.judged_len != k->judged_len ||
		    memcmp(c->k.judged, k->judged, k->judged_len))
			continue;
		if (c->k.gen == k->gen ||
		    now < c->computed_at + SCORE_REUSE_S) {
			*out = *c;
			pthread_mutex_unlock(&scores.mu);
			return 0;
		}
	}
	pthread_mutex_unlock(&scores.mu);
	int status = srv_profile_score(app, binary,
				       older ? out->judged_hex : NULL, &out->s);
	out->computed_at = now;
	out->have = status == 200;
	if (!out->have)
		error_text(out->s.why, out->reason, sizeof out->reason);
	else if (older)
		snprintf(out->reason, sizeof out->reason,
			 "the newest release %s has no %s uploaded: the "
			 "score is of release %s, the newest with both",
			 out->newest_hex,
			 !(k->sym_state & STORE_SYM_EXECUTABLE) ? "executable"
								: "DWARF",
			 out->judged_hex);
	if (status == 503 || status == 500) {
		out->status = status;
		return 0; /* busy or broken now: not kept */
	}
	pthread_mutex_lock(&scores.mu);
	size_t slot = scores.n;
	for (size_t i = 0; i < scores.n; i++)
		if (!strcmp(scores.name[i], binary)) {
			slot = i;
			break;
		}
	if (slot == SCORES_MAX) /* full: the oldest out */
		for (size_t i = slot = 0; i < scores.n; i++)
			if (scores.v[i].computed_at <
			    scores.v[slot].computed_at)
				slot = i;
	if (slot == scores.n)
		scores.n++;
	scores.v[slot] = *out;
	snprintf(scores.name[slot], sizeof scores.name[slot], "%s", binary);
	pthread_mutex_unlock(&scores.mu);
	return 0;
}

static void json_share(struct fdo_buf *b, const char *key, int have, double v)
{
	if (have)
		fdo_buf_printf(b, "\"%s\":%.4f", key, v);
	else
		fdo_buf_printf(b, "\"%s\":null", key);
}

static void json_staleness(struct fdo_buf *b, const struct staleness *st)
{
	static const char *const cls[4] = {"fresh", "matched", "renamed",
					   "dropped"};
	fdo_buf_putc(b, '{');
	for (int i = 0; i < 4; i++) {
		char key[32];
		snprintf(key, sizeof key, "%s_share", cls[i]);
		json_share(b, key, st->have, st->s.share[i]);
		fdo_buf_putc(b, ',');
	}
	fdo_buf_puts(b, "\"functions\":");
	if (st->have)
		fdo_buf_printf(b,
			       "{\"fresh\":%zu,\"matched\":%zu,\"renamed\":%zu,"
			       "\"dropped\":%zu}",
			       st->s.nfunc[0], st->s.nfunc[1], st->s.nfunc[2],
			       st->s.nfunc[3]);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_puts(b, ",\"newest_build_id\":");
	if (st->k.newest_len)
		fdo_buf_json_str(b, st->newest_hex);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_puts(b, ",\"judged_build_id\":");
	if (st->judged_hex[0])
		fdo_buf_json_str(b, st->judged_hex);
	else if (st->k.newest_len)
		fdo_buf_json_str(b, st->newest_hex);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_printf(
		b, ",\"releases\":%zu,\"profile_samples\":", st->k.releases);
	if (st->have)
		fdo_buf_printf(b, "%llu,\"profile_build_ids\":[",
			       (unsigned long long)st->s.samples);
	else
		fdo_buf_puts(b, "null,\"profile_build_ids\":null");
	for (const char *p = st->s.build_ids; st->have && *p;) {
		size_t n = strcspn(p, ",");
		char one[2 * FDO_BUILD_ID_MAX + 8];
		snprintf(one, sizeof one, "%.*s", (int)n, p);
		if (p != st->s.build_ids)
			fdo_buf_putc(b, ',');
		fdo_buf_json_str(b, one);
		p += n + (p[n] == ',');
	}
	if (st->have)
		fdo_buf_putc(b, ']');
	fdo_buf_printf(b, ",\"generation\":%llu,\"computed_at\":",
		       (unsigned long long)st->k.gen);
	if (st->computed_at)
		fdo_buf_printf(b, "%llu", (unsigned long long)st->computed_at);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_puts(b, ",\"reason\":");
	if (st->reason[0])
		fdo_buf_json_str(b, st->reason);
	else
		fdo_buf_puts(b, "null");
	fdo_buf_putc(b, '}');
}

void srv_staleness_json(struct srv_app *app, const char *binary,
			struct fdo_buf *b)
{
	struct staleness st;
	staleness_get(app, binary, &st);
	fdo_buf_puts(b, "\"staleness\":");
	json_staleness(b, &st);
}

void srv_staleness_metrics(struct srv_app *app, struct fdo_buf *b)
{
	(void)app;
	fdo_buf_puts(b, "# HELP fdod_profile_fresh_share Share of a binary's "
			"default profile's samples from functions unchanged in "
			"its newest release, as last computed (at most "
			"64 binaries, the most recently computed; none: never "
			"asked, or no score).\n"
			"# TYPE fdod_profile_fresh_share gauge\n");
	pthread_mutex_lock(&scores.mu);
	for (size_t i = 0; i < scores.n; i++) {
		if (!scores.v[i].have)
			continue;
		fdo_buf_puts(b, "fdod_profile_fresh_share{binary=\"");
		for (const char *p = scores.name[i]; *p; p++) {
			if (*p == '\\' || *p == '"')
				fdo_buf_putc(b, '\\');
			if (*p == '\n')
				fdo_buf_puts(b, "\\n");
			else
				fdo_buf_putc(b, *p);
		}
		fdo_buf_printf(b, "\"} %.17g\n", scores.v[i].s.share[0]);
	}
	pthread_mutex_unlock(&scores.mu);
}

int srv_fresh_parse(const char *v, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (!*v || *end || !(d >= 0 && d <= 1))
		return -1;
	*out = d;
	return 0;
}

/* The rule min_fresh_share against score st (need > 0): 1 when it
 * fails. Without a score it fails (nothing says the profile still fits),
 * except for a binary of one release: every sample is of it, so nothing
 * is stale, and a new binary is not refused for ever. */
static int fresh_fails(const struct staleness *st, double need)
{
	if (!(need > 0))
		return 0;
	if (!st->have)
		return st->k.releases != 1;
	return st->s.share[0] < need;
}

/* {"rule":"min_fresh_share",...} of a failing rule. */
static void json_fresh_rule(struct fdo_buf *b, const struct staleness *st,
			    double need)
{
	fdo_buf_puts(b, "{\"rule\":\"min_fresh_share\",");
	json_share(b, "have", st->have, st->s.share[0]);
	fdo_buf_printf(b, ",\"need\":%.4f", need);
	if (!st->have) {
		fdo_buf_puts(b, ",\"reason\":");
		fdo_buf_json_str(b, st->reason);
	}
	fdo_buf_putc(b, '}');
}

int srv_fresh_refuse(struct srv_app *app, const struct srv_preq *pr,
		     struct srv_resp *resp)
{
	if (!(pr->min_fresh > 0))
		return 0;
	struct staleness st;
	staleness_get(app, pr->q.binary, &st);
	if (st.status) {
		srv_resp_error(resp, st.status,
			       "min_fresh_share: no staleness score now: %s%s",
			       st.reason,
			       st.status == 503 ? " (retry later)" : "");
		if (st.status == 503)
			srv_resp_header(resp, "Retry-After", "1");
		return -1;
	}
	if (!fresh_fails(&st, pr->min_fresh))
		return 0;
	resp->status = 409;
	struct fdo_buf *b = &resp->body;
	fdo_buf_reset(b);
	fdo_buf_puts(b, "{\"ready\":false,\"failed\":[");
	json_fresh_rule(b, &st, pr->min_fresh);
	char msg[768];
	if (st.have)
		snprintf(msg, sizeof msg,
			 "profile not ready: min_fresh_share %.4f < %.4f "
			 "(newest release %s)",
			 st.s.share[0], pr->min_fresh, st.newest_hex);
	else
		snprintf(msg, sizeof msg,
			 "profile not ready: min_fresh_share %.4f: no "
			 "staleness score (%s)",
			 pr->min_fresh, st.reason);
	fdo_buf_puts(b, "],\"error\":");
	fdo_buf_json_str(b, msg);
	fdo_buf_puts(b, "}\n");
	return -1;
}

/* ------------------------------------------------------ the answers -- */

/* "failed":[{"rule":..,"have":..,"need":..}...] of the failing rules
 * (fresh: the score when min_fresh_share is a rule, else NULL). */
static void json_failed(struct fdo_buf *b,
			const struct agg_rule rules[AGG_RULES],
			const struct staleness *fresh, double need)
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
	if (fresh && fresh_fails(fresh, need)) {
		if (!first)
			fdo_buf_putc(b, ',');
		json_fresh_rule(b, fresh, need);
	}
	fdo_buf_putc(b, ']');
}

void srv_readiness_refuse(struct srv_resp *resp,
			  const struct agg_rule rules[AGG_RULES])
{
	resp->status = 409;
	struct fdo_buf *b = &resp->body;
	fdo_buf_puts(b, "{\"ready\":false,");
	json_failed(b, rules, NULL, 0);
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

/* "ready", the figures and "failed" of figures f (hosts: the binary's;
 * fresh: the binary's score when min_fresh_share is a rule, else NULL). */
static void json_ready(struct fdo_buf *b, const struct srv_preq *pr,
		       struct agg_figures f, uint64_t hosts,
		       const struct staleness *fresh)
{
	f.hosts = hosts;
	struct agg_rule rules[AGG_RULES];
	int failed = agg_readiness_check(&f, &pr->min, rules);
	failed |= fresh && fresh_fails(fresh, pr->min_fresh);
	fdo_buf_printf(b,
		       "\"ready\":%s,\"samples\":%llu,\"hosts\":%llu,"
		       "\"span\":%llu,\"first_time\":%llu,\"last_time\":%llu,",
		       failed ? "false" : "true", (unsigned long long)f.samples,
		       (unsigned long long)f.hosts,
		       (unsigned long long)agg_figures_span(&f),
		       (unsigned long long)f.first_time,
		       (unsigned long long)f.last_time);
	json_failed(b, rules, fresh, pr->min_fresh);
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
	/* The score only when it is a rule: it may cost a pull. */
	struct staleness fresh_st, *fresh = NULL;
	if (pr.min_fresh > 0) {
		staleness_get(app, req->param[0], &fresh_st);
		fresh = &fresh_st;
		if (fresh_st.status) { /* as a pull's rule: not an answer */
			free(v);
			srv_resp_error(resp, fresh_st.status,
				       "min_fresh_share: no staleness score "
				       "now: %s",
				       fresh_st.reason);
			if (fresh_st.status == 503)
				srv_resp_header(resp, "Retry-After", "1");
			return;
		}
	}
	struct fdo_buf *b = &resp->body;
	fdo_buf_puts(b, "{\"binary\":");
	fdo_buf_json_str(b, req->param[0]);
	fdo_buf_printf(b,
		       ",\"rules\":{\"min_samples\":%llu,\"min_hosts\":%llu,"
		       "\"min_span\":%llu,\"min_fresh_share\":%.4f,"
		       "\"window\":%llu},\"symbols\":%s,",
		       (unsigned long long)pr.min.samples,
		       (unsigned long long)pr.min.hosts,
		       (unsigned long long)pr.min.span, pr.min_fresh,
		       (unsigned long long)pr.q.window,
		       symbols ? "true" : "false");
	if (fresh) {
		fdo_buf_puts(b, "\"staleness\":");
		json_staleness(b, fresh);
		fdo_buf_putc(b, ',');
	}
	fdo_buf_puts(b, "\"all\":{");
	struct agg_figures all = {0};
	for (size_t i = 0; i < n; i++)
		agg_figures_merge(&all, &v[i].f);
	json_ready(b, &pr, all, hosts, fresh);
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
		json_ready(b, &pr, sel, hosts, fresh);
		fdo_buf_putc(b, '}');
	}
	fdo_buf_puts(b, "]}\n");
	free(v);
}
