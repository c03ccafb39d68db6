/*
 * aggregator/reduce.h — the compile-time formats' reduction of a window,
 * run by run (aggregator/reduce.c), for the profile builder
 * (aggregator/profile.c). Private to aggregator/.
 *
 * A run is the counts of one (binary, label set, bucket). Each run's
 * exact (integer) sums by leaf frame and by caller->callee frame pair
 * come from table aggs when its bucket is over and they are stored, else
 * from its stacks (and are then stored, after the build, when its bucket
 * is over); either way they are added to the profile's counts as
 * ((double)sum x decay) x factor, run after run in the builder's order and
 * partition (leaf build-id) after partition, so a key's count is the same
 * sum of the same doubles, to the bit, whichever way a run came.
 *
 * Not thread safe: one per build, on the builder's thread.
 */
#ifndef FDO_AGGREGATOR_REDUCE_H
#define FDO_AGGREGATOR_REDUCE_H

#include "aggregator/profile.h"
#include "common/map.h"
#include "storage/storage.h"

struct red_leaf {
	uint32_t g; /* global frame index */
	double count;
	uint64_t samples;
};

struct red_pair {
	uint32_t callee, caller; /* global frame indexes */
	double count;
};

struct reducer {
	/* set by the caller before the first red_run */
	store_txn *t;
	uint32_t binary;
	uint32_t width;	     /* bucket width, seconds */
	uint64_t closed_now; /* a bucket ending at or before it is over */
	uint32_t leaf_bid;   /* only stacks with a leaf there; 0: every */
	int none;	     /* no stack can match (unknown build-id) */
	int full_scan;	     /* every run from its stacks; none stored */
	size_t write_budget; /* bytes of runs kept to store after the build */
	/* the profile so far */
	/* frame (build-id, offset) -> index: fmap64 for the frames whose
	 * build-id id and offset pack into one word (frame_key: nearly
	 * all), fmap for the others */
	struct fdo_map64 fmap64;
	struct fdo_map128 fmap;
	struct store_frame *frames;
	size_t nframes, cap_frames;
	struct fdo_map64 lmap, pmap; /* frame + 1 / pair + 1 -> index */
	struct red_leaf *leaves;
	size_t nleaves, cap_leaves;
	struct red_pair *pairs;
	size_t npairs, cap_pairs;
	struct store_frame last_callee; /* a stored run's pairs come by */
	uint32_t last_callee_g;		/* callee: its index, looked up */
	int have_last_callee;		/* once per callee */
	double count;			/* of the stacks that match */
	double decay, factor;		/* the run being added */
	/* runs computed here that are over: stored by red_store */
	struct store_aggs_run *keep;
	size_t nkeep, cap_keep, keep_bytes;
	/* what happened, for the log */
	uint64_t runs_read, runs_computed, runs_stored, runs_stale;
};

/*
 * red_run adds run k (its totals row: seen) with the run's decay and
 * selector factor. Returns FDO_OK, FDO_ENOMEM or a store error.
 */
int red_run(struct reducer *r, const struct store_totals_key *k,
	    const struct store_totals *seen, double decay, double factor);

/*
 * red_finish hands over the profile's leaves and pairs (those whose count
 * is positive and finite) as prof wants them: locations from loc_of(arg,
 * frame, &loc), asked in increasing frame order (build-id id, offset), so
 * location indexes follow the frames; leaves by location, pairs by
 * (callee, caller). The caller frees both arrays. FDO_OK, FDO_ENOMEM or
 * loc_of's error.
 */
int red_finish(struct reducer *r,
	       int (*loc_of)(void *arg, const struct store_frame *f,
			     uint32_t *loc),
	       void *arg, struct prof_leaf **leaves, size_t *nleaves,
	       struct prof_pair **pairs, size_t *npairs);

/*
 * red_store writes the runs red_run computed from their stacks and kept
 * (over, within write_budget) to table aggs, each only while its totals
 * row is still the one it was computed from. Call with no transaction of
 * this thread open. Returns FDO_OK or store_write's error.
 */
int red_store(struct reducer *r, store *st);

void red_fini(struct reducer *r);

#endif
