/*
 * bench/profiles/same_bytes.c — on a real store, is a compile-time
 * profile built from table aggs the one built from the stacks of every
 * bucket (q->full_scan)? For llvm, gcc and bolt (bolt of BUILD-ID), a
 * 7-day window of BINARY, the route's default options: builds both,
 * times them, emits both and
 * compares the bytes. Opens the store itself: stop fdod first. Exit 0
 * when every format gives the same bytes. bench/profiles/README.md says
 * how to build and run it.
 *
 *   same_bytes DATA-DIR BINARY [BUILD-ID]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "aggregator/flow.h"
#include "symbolizer/symbolizer.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Builds and emits format f (0 llvm, 1 gcc, 2 bolt) into out. */
static int one(store *st, sym_cache *cache, const char *data,
	       const char *binary, const char *bid, int f, int full,
	       struct fdo_buf *out)
{
	static const char *const fmts[] = {"llvm", "gcc", "bolt"};
	struct agg_profile_query q = {.binary = binary,
				      .now = (uint64_t)time(NULL),
				      .window = 7 * 86400,
				      .bucket_seconds = 3600,
				      .reduced = 1,
				      .branches = f == 2,
				      .full_scan = full};
	struct prof_opts po;
	prof_opts_init(&po);
	/* As the profile route sets them from the defaults
	 * (server/profiles.c): block counts unless counts=samples. */
	q.blocks = po.counts == PROF_COUNTS_BLOCKS;
	q.spread = po.balance ? (double)po.spread : 0;
	q.dispersion = (double)po.dispersion;
	if (f == 2 && bid) {
		if (fdo_build_id_parse(bid, q.build_id, &q.build_id_len))
			return FDO_EINVAL;
		memcpy(po.build_id, q.build_id, q.build_id_len);
		po.build_id_len = q.build_id_len;
	}
	struct prof p;
	char err[256] = "";
	/* Each build infers its blocks itself (aggregator/flow.c keeps the
	 * results for later builds): its time is a whole build's, and both
	 * sides of the comparison are solved. */
	flow_memo_clear();
	double t0 = now_s();
	int rc = agg_profile_build(st, cache, data, &q, &p, err, sizeof err);
	double t1 = now_s();
	if (!rc)
		rc = prof_emitter_find(fmts[f])->emit(&p, &po, out);
	struct flow_memo_stats ms;
	flow_memo_stats(&ms);
	printf("%-4s %-10s %s, %zu bytes, %zu leaves, %zu pairs, built in "
	       "%.2f s; %zu functions, flow memo %zu entries, %.1f MiB\n",
	       fmts[f], full ? "full scan" : "table aggs",
	       rc ? fdo_strerror(rc) : "ok", out->len, p.nleaves, p.npairs,
	       t1 - t0, p.nfuncs, ms.entries, ms.bytes / 1048576.0);
	prof_fini(&p);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: same_bytes DATA-DIR BINARY [BUILD-ID]\n");
		return 2;
	}
	const char *data = argv[1], *binary = argv[2];
	const char *bid = argc > 3 ? argv[3] : NULL;
	struct store_opts o = {.dir = data};
	store *st;
	sym_cache *cache;
	char cdir[4096];
	snprintf(cdir, sizeof cdir, "%s/cache", data);
	if (store_open(&o, &st))
		return 2;
	if (sym_cache_create((size_t)1 << 30, cdir, &cache)) {
		store_close(st);
		return 2;
	}
	int bad = 0;
	for (int f = 0; f < 3; f++) {
		struct fdo_buf full, aggs;
		fdo_buf_init(&full);
		fdo_buf_init(&aggs);
		int rc = one(st, cache, data, binary, bid, f, 1, &full) ||
			 one(st, cache, data, binary, bid, f, 0, &aggs);
		int same =
			!rc && full.len == aggs.len &&
			(!full.len || !memcmp(full.data, aggs.data, full.len));
		printf("%-4s %s\n",
		       f == 0	? "llvm"
		       : f == 1 ? "gcc"
				: "bolt",
		       same ? "same bytes" : "DIFFERENT");
		bad |= !same;
		fdo_buf_fini(&full);
		fdo_buf_fini(&aggs);
	}
	sym_cache_destroy(cache);
	store_close(st);
	return bad;
}
