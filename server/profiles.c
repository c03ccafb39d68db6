/*
 * server/profiles.c — the profile API's request and the pull:
 *   GET  /v1/profiles/{binary}?format=&labels=&mix=&window=&half_life=
 *        &build_id=&min_samples=&min_hosts=&min_span=&min_fresh_share=
 *        &<emitter option>= (every entry of prof_opt_defs,
 *        aggregator/emit_opts.c: counts, line_count, head, min_share...)
 *        &for_build_id=HEX|newest (the pull only: the profile matched
 *        onto that release, aggregator/stale.c; stale_resolve below)
 * Here: the query parsed and checked once (srv_preq_parse, also for
 * publish and readiness), the build, readiness check and emit of one
 * profile (srv_profile_make, also for publish), and the pull's answer,
 * shared by identical pulls (server/pcache.c). A profile is "ready" when
 * it meets the curation minimums (config defaults, overridable per
 * request; the rules: aggregator/readiness.c); otherwise the answer is 409
 * with every rule that failed and the current figures.
 * Publish and versions: server/publish.c; GET .../readiness:
 * server/readiness.c.
 *
 * Workload: a pull reads every counts entry of one binary (the builder,
 * aggregator/profile.c); parsing is a few dozen query keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"
#include "common/opts.h"
#include "server/profiles.h"

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

int srv_preq_parse(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, struct srv_preq *pr)
{
	char v[2048], labels[2048], mix[2048], err[256];
	memset(pr, 0, sizeof *pr);
	prof_opts_init(&pr->opts);
	pr->q.binary = req->param[0];
	pr->q.now = (uint64_t)time(NULL);
	pr->q.bucket_seconds = (uint32_t)app->cfg.bucket;
	pr->min.samples = app->cfg.min_samples;
	pr->min.hosts = app->cfg.min_hosts;
	pr->min.span = app->cfg.min_span;
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
	uint64_t *dst[] = {&pr->q.window, &pr->q.half_life, &pr->min.span,
			   &pr->min.samples, &pr->min.hosts};
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
	pr->min_fresh = app->cfg.min_fresh_share;
	if ((got = qget(req, "min_fresh_share", v, sizeof v, resp)) < 0)
		return -1;
	if (got && srv_fresh_parse(v, &pr->min_fresh)) {
		srv_resp_error(resp, 400,
			       "bad min_fresh_share '%.64s' (a share from 0 "
			       "to 1, like 0.8)",
			       v);
		return -1;
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
		/* --store: from ClickHouse's sums of every node */
		pr->q.store_url = app->cfg.store;
	}
	pr->q.blocks = pr->opts.counts == PROF_COUNTS_BLOCKS && compile;
	/* Branch records (LBR) make the bolt profile when there are any. */
	pr->q.branches = !strcmp(pr->em->name, "bolt");
	pr->q.spread = pr->opts.balance ? (double)pr->opts.spread : 0;
	pr->q.dispersion = (double)pr->opts.dispersion;
	return 0;
}

/* What a built profile holds, from its arrays (strings counted at 32
 * bytes each; the builder's lookup tables not at all). */
static size_t prof_bytes(const struct prof *p)
{
	return p->nstrings * (sizeof *p->strings + 32) +
	       p->nbuild_ids * sizeof *p->build_ids +
	       p->nlocs * sizeof *p->locs + p->nframes * sizeof *p->frames +
	       p->nstack_locs * sizeof *p->stack_locs +
	       p->nstacks * sizeof *p->stacks +
	       p->nbranches * sizeof *p->branches +
	       p->nleaves * sizeof *p->leaves + p->npairs * sizeof *p->pairs +
	       p->nfuncs * sizeof *p->funcs + p->nblocks * sizeof *p->blocks +
	       p->ninsns * sizeof *p->insns + p->nedges * sizeof *p->edges +
	       p->ncalls * sizeof *p->calls + p->npctxs * sizeof *p->pctxs +
	       p->nprobes * sizeof *p->probes;
}

/*
 * stale_releases: per build-id of p, 1 when the store has it as a build
 * of the pulled binary (an older release, compared by the matcher), 0 for
 * the other files of the stacks (shared libraries, kept as they are).
 * NULL (every build-id a release) when it cannot tell.
 */
static uint8_t *stale_releases(struct srv_app *app, const struct srv_preq *pr,
			       const struct prof *p)
{
	uint8_t *rel = calloc(p->nbuild_ids ? p->nbuild_ids : 1, 1);
	store_txn *t;
	if (!rel || store_txn_begin(app->st, 0, &t)) {
		free(rel);
		return NULL;
	}
	for (size_t i = 0; i < p->nbuild_ids; i++) {
		uint32_t id;
		struct store_buildid rec;
		if (!store_intern_buildid(t, p->build_ids[i].id,
					  p->build_ids[i].len, 0, &id) &&
		    !store_buildid_get(t, id, &rec))
			rel[i] = rec.binary == pr->stale.binary;
	}
	store_txn_abort(t);
	return rel;
}

/* srv_profile_make without the admission; *held: what it counted in the
 * builds part (the caller gives it back). */
static int profile_make(struct srv_app *app, struct srv_preq *pr,
			struct srv_resp *resp, struct prof *p,
			struct fdo_buf *out, size_t *held)
{
	char err[512] = "";
	int rc = agg_profile_build(app->st, app->cache, app->cfg.data, &pr->q,
				   p, err, sizeof err);
	if (rc == FDO_ENOT_FOUND) {
		srv_resp_error(resp, 404, "%s", err);
		return -1;
	}
	if (rc == FDO_ELIMIT && pr->q.store_url) {
		/* More than a pull may read (the answer's bound, 4,096 label
		 * sets, a sum past 2^128): no retry makes room for it. */
		srv_resp_error(resp, 422,
			       "cannot build the profile from ClickHouse: %s "
			       "(select fewer label sets or a shorter window)",
			       err);
		return -1;
	}
	if (rc && pr->q.store_url) {
		/* ClickHouse away, refusing or answering what does not
		 * decode: nothing is served rather than part of it. */
		srv_resp_error(resp, 503,
			       "cannot build the profile from ClickHouse: %s: "
			       "retry later",
			       err);
		srv_resp_header(resp, "Retry-After", "5");
		return -1;
	}
	if (rc) {
		srv_resp_error(resp, 503, "cannot build the profile: %s", err);
		return -1;
	}
	*held = prof_bytes(p);
	fdo_mem_take(FDO_MEM_BUILDS, *held);
	struct agg_figures f;
	struct agg_rule rules[AGG_RULES];
	agg_profile_figures(p, &f);
	if (agg_readiness_check(&f, &pr->min, rules)) {
		srv_readiness_refuse(resp, rules);
		return -1;
	}
	if (pr->stale.on) {
		uint8_t *rel = stale_releases(app, pr, p);
		struct agg_stale_release r = {
			.id = pr->stale.id,
			.len = pr->stale.len,
			.elf_path = pr->stale.elf_path,
			.debug_path = pr->stale.debug_path[0]
					      ? pr->stale.debug_path
					      : NULL,
			.held = *held};
		rc = agg_stale_emit(p, &pr->opts, pr->em, app->cache, &r, rel,
				    &pr->stale.st, out, err, sizeof err);
		free(rel);
		if (rc == FDO_EUNSUPPORTED || rc == FDO_EDWARF) {
			srv_resp_error(resp, 422, "for_build_id %s: %s",
				       pr->stale.hex, err);
			return -1;
		}
		if (rc == FDO_EBUSY || rc == FDO_ELIMIT) {
			/* the shapes' memory (stale.c): busy, retry; or
			 * too much even alone in the part, no retry helps */
			atomic_fetch_add(&app->builds_refused, 1);
			srv_resp_error(resp, 503, "for_build_id %s: %s%s",
				       pr->stale.hex, err,
				       rc == FDO_EBUSY ? ": retry later" : "");
			if (rc == FDO_EBUSY)
				srv_resp_header(resp, "Retry-After", "1");
			return -1;
		}
		if (rc) {
			srv_resp_error(resp, 500, "for_build_id %s: %s",
				       pr->stale.hex, err);
			return -1;
		}
	} else {
		rc = pr->em->emit(p, &pr->opts, out);
	}
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
	fdo_mem_take(FDO_MEM_BUILDS, out->cap);
	*held += out->cap;
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
 * The memory budget's builds part (common/mem.h): a profile counts in it
 * from the end of its build until it is written out (its arrays, then
 * also the answer's bytes). A pull or publish that finds the part full
 * is answered 503 with Retry-After before it builds anything; one into
 * an empty part always goes on, whatever its size.
 */
int srv_profile_make(struct srv_app *app, struct srv_preq *pr,
		     struct srv_resp *resp, struct prof *p, struct fdo_buf *out)
{
	if (fdo_mem_full(FDO_MEM_BUILDS)) {
		prof_init(p); /* the caller finishes it */
		atomic_fetch_add(&app->builds_refused, 1);
		srv_resp_error(resp, 503,
			       "the memory budget's builds part is full (%llu "
			       "of %llu bytes of profiles being made, "
			       "--memory-budget): retry later",
			       (unsigned long long)fdo_mem_used(FDO_MEM_BUILDS),
			       (unsigned long long)fdo_mem_cap(FDO_MEM_BUILDS));
		srv_resp_header(resp, "Retry-After", "1");
		return -1;
	}
	size_t held = 0;
	int rc = profile_make(app, pr, resp, p, out, &held);
	fdo_mem_give(FDO_MEM_BUILDS, held);
	return rc;
}

/*
 * build_answer: build the profile pr asks for into a (its body malloc'd,
 * for pcache_publish). A refusal that the same store state would give
 * again (unknown binary, not ready, no symbols for bolt) is an answer too,
 * so that identical pulls of a profile that is not ready do not each
 * build it in turn. Returns 0, or -1 with resp filled with the error.
 */
static int build_answer(struct srv_app *app, struct srv_preq *pr,
			struct srv_resp *resp, struct pcache_answer *a)
{
	struct prof p;
	struct fdo_buf out;
	fdo_buf_init(&out);
	memset(a, 0, sizeof *a);
	int rc = srv_profile_make(app, pr, resp, &p, &out);
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
		if (pr->stale.on) {
			const struct agg_stale_stats *st = &pr->stale.st;
			snprintf(a->for_build_id, sizeof a->for_build_id, "%s",
				 pr->stale.hex);
			double all = st->fresh + st->matched + st->renamed +
				     st->dropped;
			const double v[4] = {st->fresh, st->matched,
					     st->renamed, st->dropped};
			const size_t n[4] = {st->nfresh, st->nmatched,
					     st->nrenamed, st->ndropped};
			for (int i = 0; i < 4; i++) {
				a->stale[i] = all > 0 ? v[i] / all : 0;
				a->stale_n[i] = n[i];
			}
		}
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
	if (a->for_build_id[0]) {
		/* Shares of the profile's counts; functions per class. */
		srv_resp_header(resp, "X-Fdod-For-Build-Id", "%s",
				a->for_build_id);
		srv_resp_header(resp, "X-Fdod-Stale-Fresh", "%.4f",
				a->stale[0]);
		srv_resp_header(resp, "X-Fdod-Stale-Matched", "%.4f",
				a->stale[1]);
		srv_resp_header(resp, "X-Fdod-Stale-Renamed", "%.4f",
				a->stale[2]);
		srv_resp_header(resp, "X-Fdod-Stale-Dropped", "%.4f",
				a->stale[3]);
		srv_resp_header(resp, "X-Fdod-Stale-Functions",
				"fresh=%zu,matched=%zu,renamed=%zu,dropped=%zu",
				a->stale_n[0], a->stale_n[1], a->stale_n[2],
				a->stale_n[3]);
	}
	const char *inm = srv_req_header(req, "If-None-Match");
	char quoted[70];
	snprintf(quoted, sizeof quoted, "\"%s\"", a->hash_hex);
	if (inm && !strcmp(inm, quoted))
		resp->status = 304;
	else
		fdo_buf_append(&resp->body, a->body, a->len);
}

/*
 * The state a pull of binary is built from: the binary's generation
 * (store_generation_of: merges of other binaries leave it), or, for a
 * binary the store does not know (a 404 that any merge may change), the
 * store's.
 */
static uint64_t profile_generation(struct srv_app *app, const char *binary)
{
	struct store_stats ss;
	store_stats(app->st, &ss);
	store_txn *t;
	uint32_t id;
	if (store_txn_begin(app->st, 0, &t))
		return ss.generation;
	int rc = store_intern_binary(t, binary, strlen(binary), 0, &id);
	store_txn_abort(t);
	return rc ? ss.generation : store_generation_of(app->st, id);
}

/*
 * stale_resolve: the pull's for_build_id=, checked before anything is
 * built or looked up in the cache (so that a refusal, which an upload
 * changes, is never cached): HEX or `newest` (the build-id of the binary
 * the store learnt of last: the last uploaded or first sampled). The
 * release must be a build of this binary (or of none named yet) with its
 * executable and DWARF uploaded. 0 (pr->stale.on when given), or -1 with
 * resp: 400 bad value or format, 404 unknown binary or build-id, 409 a
 * build of another binary, 422 its files are not uploaded.
 */
static int stale_resolve(struct srv_app *app, struct srv_req *req,
			 struct srv_resp *resp, struct srv_preq *pr)
{
	char v[256];
	int got = qget(req, "for_build_id", v, sizeof v, resp);
	if (got <= 0)
		return got;
	struct srv_stale *sl = &pr->stale;
	if (strcmp(pr->em->name, "llvm") && strcmp(pr->em->name, "gcc")) {
		srv_resp_error(resp, 400,
			       "for_build_id= matches the llvm and gcc formats "
			       "only, not %s",
			       pr->em->name);
		return -1;
	}
	int newest = !strcmp(v, "newest");
	if (!newest && fdo_build_id_parse(v, sl->id, &sl->len)) {
		srv_resp_error(resp, 400,
			       "for_build_id '%.130s' is not lowercase hex "
			       "(or newest)",
			       v);
		return -1;
	}
	store_txn *t;
	if (srv_binary_txn(app, resp, 1, pr->q.binary, &t, &sl->binary))
		return -1;
	uint32_t bid = 0;
	struct store_buildid rec;
	int rc = FDO_OK;
	if (newest) {
		for (uint32_t i = 1;; i++) {
			struct store_buildid r;
			int e = store_buildid_get(t, i, &r);
			if (e == FDO_ENOT_FOUND)
				break;
			if (!e && r.binary == sl->binary) {
				bid = i;
				rec = r;
			}
		}
		if (!bid)
			rc = FDO_ENOT_FOUND;
		else {
			memcpy(sl->id, rec.build_id, rec.build_id_len);
			sl->len = rec.build_id_len;
		}
	} else if (!(rc = store_intern_buildid(t, sl->id, sl->len, 0, &bid))) {
		rc = store_buildid_get(t, bid, &rec);
	}
	const char *other = NULL;
	size_t other_len = 0;
	if (!rc && rec.binary && rec.binary != sl->binary) {
		const void *nm;
		if (!store_intern_name(t, STORE_DICT_BINARIES, rec.binary, &nm,
				       &other_len))
			other = nm;
		else
			other = "?", other_len = 1;
	}
	char otherbuf[256] = "";
	if (other)
		snprintf(otherbuf, sizeof otherbuf, "%.*s",
			 (int)(other_len < 200 ? other_len : 200), other);
	store_txn_abort(t);
	fdo_hex_encode(sl->id, sl->len, sl->hex);
	if (rc == FDO_ENOT_FOUND) {
		if (newest)
			srv_resp_error(resp, 404,
				       "for_build_id=newest: no build-id of "
				       "'%s' is known",
				       pr->q.binary);
		else
			srv_resp_error(resp, 404,
				       "for_build_id %s: fdod knows no such "
				       "build-id (upload the release's ELF "
				       "with its DWARF first: fdoctl upload "
				       "--binary %s)",
				       sl->hex, pr->q.binary);
		return -1;
	}
	if (rc) {
		srv_resp_error(resp, 503, "cannot read the store: %s",
			       fdo_strerror(rc));
		return -1;
	}
	if (other) {
		srv_resp_error(resp, 409,
			       "for_build_id %s is a build of '%s', not of "
			       "'%s'",
			       sl->hex, otherbuf, pr->q.binary);
		return -1;
	}
	if (!(rec.sym_state & STORE_SYM_EXECUTABLE) ||
	    !(rec.sym_state & STORE_SYM_DWARF)) {
		srv_resp_error(resp, 422,
			       "for_build_id %s: the release's executable with "
			       "its DWARF is not uploaded (%s); matching needs "
			       "both (fdoctl upload --binary %s)",
			       sl->hex,
			       !(rec.sym_state & STORE_SYM_EXECUTABLE)
				       ? "no executable"
				       : "no DWARF",
			       pr->q.binary);
		return -1;
	}
	if (store_symbols_path(app->cfg.data, sl->id, sl->len,
			       STORE_SYM_EXECUTABLE, sl->elf_path,
			       sizeof sl->elf_path) ||
	    store_symbols_path(app->cfg.data, sl->id, sl->len,
			       STORE_SYM_DEBUGINFO, sl->debug_path,
			       sizeof sl->debug_path)) {
		srv_resp_error(resp, 500, "for_build_id %s: no symbol path",
			       sl->hex);
		return -1;
	}
	if (!(rec.sym_state & STORE_SYM_DEBUGINFO))
		sl->debug_path[0] = 0;
	sl->on = 1;
	return 0;
}

/*
 * pull_shared: the answer of pull pr (query: the request's text) through
 * the cache (server/pcache.h): the request's text is the key, the
 * binary's generation after the merge the state. done(arg, answer) gets
 * the answer; a build that failed leaves its error in resp instead.
 */
static void pull_shared(struct srv_app *app, struct srv_preq *pr,
			const char *query, uint64_t arrived,
			struct srv_resp *resp,
			void (*done)(void *, const struct pcache_answer *),
			void *arg)
{
	if (pr->q.store_url) {
		/* From ClickHouse: no node's generation moves when another
		 * node's merges arrive there, so every pull builds its own
		 * (docs/clickhouse.md). */
		struct pcache_answer own;
		if (build_answer(app, pr, resp, &own) == 0) {
			done(arg, &own);
			free(own.body);
		}
		return;
	}
	uint64_t gen = profile_generation(app, pr->q.binary);
	struct fdo_buf key;
	fdo_buf_init(&key);
	fdo_buf_printf(&key, "%s?%s", pr->q.binary, query);
	if (pr->stale.on) /* newest names another release after an upload */
		fdo_buf_printf(&key, "#for=%s", pr->stale.hex);
	struct pcache_entry *e = NULL;
	int hit = !key.oom &&
		  pcache_get(app->pcache, fdo_buf_cstr(&key), gen, arrived, &e);
	fdo_buf_fini(&key);
	if (hit) {
		done(arg, pcache_answer_of(e));
		pcache_release(app->pcache, e);
	} else {
		struct pcache_answer own;
		if (build_answer(app, pr, resp, &own) == 0) {
			done(arg, &own);
			if (e)
				pcache_publish(app->pcache, e, &own);
			free(own.body);
		} else {
			pcache_fail(app->pcache, e);
		}
	}
}

struct answer_to {
	struct srv_req *req;
	struct srv_resp *resp;
};

static void answer_done(void *arg, const struct pcache_answer *a)
{
	struct answer_to *to = arg;
	answer(to->req, to->resp, a);
}

/*
 * GET /v1/profiles/{binary}: everything acknowledged before the pull is
 * merged first; then identical pulls of the same state share one build
 * (pull_shared).
 */
void srv_h_profile(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct srv_preq pr;
	if (srv_preq_parse(app, req, resp, &pr)) {
		srv_metrics_profile(app, NULL, resp->status);
		agg_query_fini(&pr.q);
		return;
	}
	if (stale_resolve(app, req, resp, &pr) ||
	    srv_fresh_refuse(app, &pr, resp)) {
		srv_metrics_profile(app, pr.em->name, resp->status);
		agg_query_fini(&pr.q);
		return;
	}
	uint64_t arrived = fdo_now_ns();
	agg_ingest_flush(app->ingest, 10000);
	struct answer_to to = {req, resp};
	pull_shared(app, &pr, req->query, arrived, resp, answer_done, &to);
	srv_metrics_profile(app, pr.em->name, resp->status);
	agg_query_fini(&pr.q);
}

/* What the score keeps of an answer (any status). */
static void score_done(void *arg, const struct pcache_answer *a)
{
	struct srv_score *s = arg;
	s->status = a->status;
	if (a->status != 200) {
		size_t n = a->len < sizeof s->why - 1 ? a->len
						      : sizeof s->why - 1;
		memcpy(s->why, a->body, n);
		s->why[n] = 0;
		return;
	}
	for (int i = 0; i < 4; i++) {
		s->share[i] = a->stale[i];
		s->nfunc[i] = a->stale_n[i];
	}
	s->samples = a->samples;
	snprintf(s->build_ids, sizeof s->build_ids, "%s", a->build_ids);
}

int srv_profile_score(struct srv_app *app, const char *binary,
		      const char *for_hex, struct srv_score *s)
{
	/* The pull a build job asks for the newest release with every
	 * default: the same text, so the same cache key. */
	char query[2 * FDO_BUILD_ID_MAX + 32];
	snprintf(query, sizeof query, "for_build_id=%s",
		 for_hex ? for_hex : "newest");
	struct srv_req req = {.method = "GET",
			      .path = "",
			      .query = query,
			      .param = {binary},
			      .nparam = 1,
			      .body_fd = -1};
	struct srv_resp resp = {.status = 200, .body_fd = -1};
	fdo_buf_init(&resp.body);
	fdo_buf_init(&resp.headers);
	memset(s, 0, sizeof *s);
	struct srv_preq pr;
	if (srv_preq_parse(app, &req, &resp, &pr) == 0 &&
	    stale_resolve(app, &req, &resp, &pr) == 0)
		pull_shared(app, &pr, query, fdo_now_ns(), &resp, score_done,
			    s);
	if (!s->status) { /* refused before or by a build */
		size_t n = resp.body.len < sizeof s->why - 1
				   ? resp.body.len
				   : sizeof s->why - 1;
		s->status = resp.status;
		memcpy(s->why, resp.body.data ? resp.body.data : "", n);
		s->why[n] = 0;
	}
	agg_query_fini(&pr.q);
	fdo_buf_fini(&resp.body);
	fdo_buf_fini(&resp.headers);
	return s->status;
}
