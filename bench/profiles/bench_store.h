/*
 * bench/profiles/bench_store.h — what same_bytes.c and pull_loop.c share:
 * opening a data directory's store and symbol cache, and the query and
 * options of a compile-time pull as the profile route sets them from its
 * defaults (server/profiles.c).
 */
#ifndef FDO_BENCH_PROFILES_BENCH_STORE_H
#define FDO_BENCH_PROFILES_BENCH_STORE_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "symbolizer/symbolizer.h"

/* 0 and *st, *cache open; else nonzero and nothing open. */
static inline int bench_open(const char *data, store **st, sym_cache **cache)
{
	struct store_opts o = {.dir = data};
	char cdir[4096];
	snprintf(cdir, sizeof cdir, "%s/cache", data);
	if (store_open(&o, st))
		return 1;
	if (sym_cache_create((size_t)1 << 30, cdir, cache)) {
		store_close(*st);
		return 1;
	}
	return 0;
}

/* Format f (0 llvm, 1 gcc, 2 bolt, of build-id bid), a 7-day window of
 * binary; full: from the stacks of every bucket (q->full_scan). */
static inline int bench_query(int f, const char *binary, const char *bid,
			      int full, struct agg_profile_query *q,
			      struct prof_opts *po)
{
	*q = (struct agg_profile_query){.binary = binary,
					.now = (uint64_t)time(NULL),
					.window = 7 * 86400,
					.bucket_seconds = 3600,
					.reduced = 1,
					.branches = f == 2,
					.full_scan = full};
	prof_opts_init(po);
	/* Block counts unless counts=samples. */
	q->blocks = po->counts == PROF_COUNTS_BLOCKS;
	q->spread = po->balance ? (double)po->spread : 0;
	q->dispersion = (double)po->dispersion;
	if (f == 2 && bid) {
		if (fdo_build_id_parse(bid, q->build_id, &q->build_id_len))
			return FDO_EINVAL;
		memcpy(po->build_id, q->build_id, q->build_id_len);
		po->build_id_len = q->build_id_len;
	}
	return FDO_OK;
}

#endif
