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

#include "aggregator/flow.h"
#include "bench/profiles/bench_store.h"

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
	struct agg_profile_query q;
	struct prof_opts po;
	if (bench_query(f, binary, bid, full, &q, &po))
		return FDO_EINVAL;
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
	store *st;
	sym_cache *cache;
	if (bench_open(data, &st, &cache))
		return 2;
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
