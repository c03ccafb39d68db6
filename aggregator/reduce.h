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
 * sum of the same doubles, to the bit, whichever way a run came. The
 * runs' records are sorted by frame, so red_finish merges them (a heap of
 * partitions, ties in the order added): the profile's leaves and pairs
 * come out in frame order, each summed in the order above, with no map
 * of pairs and no sort.
 *
 * Not thread safe: one per build, on the builder's thread.
 */
#ifndef FDO_AGGREGATOR_REDUCE_H
#define FDO_AGGREGATOR_REDUCE_H

#include "aggregator/profile.h"
#include "common/map.h"
#include "storage/storage.h"

/* How one partition of the layout is scaled: (double)sum x decay x
 * factor, as the run it is of. */
struct red_scale {
	double decay, factor;
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
	/* optional: told, before red_finish asks loc_of anything, at most
	 * how many distinct frames it will ask (with loc_of's arg) */
	void (*reserve)(void *arg, size_t nframes);
	/* Every partition added so far, stored (bytes of t's map) or
	 * computed (bytes of a run in mem), in the order added, and the
	 * scale of each: red_finish merges them record by record. */
	struct store_aggs_layout lay;
	struct red_scale *scale; /* per lay.srcs */
	size_t cap_scale;
	/* runs computed from their stacks, encoded; those with store set
	 * (over, within write_budget) are written by red_store */
	struct store_aggs_run *mem;
	size_t nmem, cap_mem;
	uint8_t *store; /* per mem */
	size_t cap_store, keep_bytes;
	/* frame (build-id, offset) -> index, while runs are computed from
	 * their stacks: fmap64 for the frames whose build-id id and offset
	 * pack into one word (frame_key: nearly all), fmap for the others */
	struct fdo_map64 fmap64;
	struct fdo_map128 fmap;
	struct store_frame *frames;
	size_t nframes, cap_frames;
	double count; /* of the stacks that match */
	/* what happened, for the log */
	uint64_t runs_read, runs_computed, runs_stored, runs_stale;
	uint64_t records; /* leaf and pair records merged */
};

/*
 * red_run adds run k (its totals row: seen) with the run's decay and
 * selector factor: its rows from table aggs, or its stacks summed and
 * encoded as rows (kept in memory until red_fini; stored by red_store
 * when over, within write_budget and STORE_AGGS_RUN_MAX). Returns
 * FDO_OK, FDO_ENOMEM or a store error.
 */
int red_run(struct reducer *r, const struct store_totals_key *k,
	    const struct store_totals *seen, double decay, double factor);

/*
 * red_compute: run k (its totals row: seen, read in t) summed from its
 * stacks and encoded as its rows into run (initialized here; the caller
 * finis it), for table aggs: what red_run does for a run that is not
 * stored, without a profile (the merger's fill, aggregator/merge.c).
 * Returns FDO_OK, FDO_ENOMEM, FDO_ELIMIT or a store error.
 */
int red_compute(store_txn *t, const struct store_totals_key *k,
		const struct store_totals *seen, struct store_aggs_run *run);

/*
 * The same in steps, so that the merger computes the runs of buckets
 * that are over between merges (aggregator/merge.c), each step in a
 * read transaction of its own and bounded in time: red_fill_begin for
 * run k; red_fill_step reads the run's stacks in t (the caller checks in
 * t that the run's totals row is still the one it began with) until
 * deadline (fdo_now_ns) passes, setting *done once all are read;
 * red_fill_encode encodes the sums as the rows of the run computed from
 * totals row seen (run initialized here; the caller finis it);
 * red_fill_bytes: the memory it holds; red_fill_free. The steps return
 * FDO_OK, FDO_ENOMEM or a store error; encode as red_compute.
 */
struct red_fill;
int red_fill_begin(const struct store_totals_key *k, struct red_fill **out);
int red_fill_step(struct red_fill *f, store_txn *t, uint64_t deadline,
		  int *done);
int red_fill_encode(struct red_fill *f, const struct store_totals *seen,
		    struct store_aggs_run *run);
size_t red_fill_bytes(const struct red_fill *f);
void red_fill_free(struct red_fill *f);

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
