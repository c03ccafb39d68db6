/*
 * aggregator/aggregator.h — what fdod does with samples: ingest (decode,
 * validate, normalize, group commit, merge into the store), delayed
 * symbolization, profile building and the readiness rules. Other parts
 * include this header; it includes aggregator/profile.h, the profile
 * model the emitters share.
 */
#ifndef FDO_AGGREGATOR_H
#define FDO_AGGREGATOR_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "schemas/schemas.h"
#include "storage/storage.h"

/* ---------------------------------------------------------------- ingest -- */

struct agg_result;

struct agg_ingest_opts {
	uint32_t bucket_seconds; /* time bucket width; default 3600 */
	uint64_t dedup_ttl;	 /* seconds a (agent, seq) is remembered;
				      default 7 days */
	size_t queue_max;	 /* prepared batches waiting for the writer
				      before submitters block; default 256 */
	size_t group_max;	 /* batches in one commit at most; def. 512 */
	uint64_t wal_segment_bytes; /* rotate the write-ahead log; 0: 64 MiB */
	uint64_t retention;	    /* seconds of buckets kept; 0: forever */
	uint64_t store_budget;	    /* live bytes; over it the oldest buckets
				      go first; 0: no budget */
	uint64_t housekeeping;	    /* seconds between retention passes;
				      0: 600 */
	uint64_t max_future;	    /* seconds a batch may end after now
				      (clock skew); 0: not checked */
	uint64_t max_age;	    /* seconds a batch may have ended before
				      now; 0: not checked. fdod passes the
				      shorter of the retention age and the
				      exactly-once lifetime (less the skew),
				      so a late retry is never counted twice
				      and nothing is stored only to expire */
	uint64_t max_new_stacks;    /* stacks one binary may store for the
				      first time per hour; past it its
				      batches get BUSY until the next hour;
				      0: no limit */
	uint64_t max_pending;	    /* addresses of one build-id waiting for
				      symbols; past it its new addresses are
				      not queued (counted); 0: no limit */
	double rate_agent;	    /* batches/s per agent id; 0: no limit */
	double rate_binary;	    /* samples/s per binary; 0: no limit */
	int no_aggs_fill;	    /* the merger does not compute table aggs
				      between merges (merge_fill_step) */
	const struct wire_limits *limits; /* NULL: wire_limits_default */
	/* Called by the writer thread after a commit with the build-ids
	 * (interned ids) that got new pending addresses. May be NULL. */
	void (*pending_cb)(void *arg, const uint32_t *build_ids, size_t n);
	void *pending_arg;
};

/* Figures of one batch, as its Ack reports them. */
struct agg_result {
	int status;    /* FDO_OK or an FDO_E* error */
	int duplicate; /* already committed earlier: counted once */
	uint64_t samples_accepted;
	uint64_t samples_unmapped; /* stacks with no address in any mapping */
	uint64_t frames_unmapped; /* addresses outside every mapping, dropped */
	uint64_t branches_accepted, branches_unmapped;
	char message[256];
	uint32_t retry_after_ms; /* when refused for a while (rate limit) */
	int done; /* set by the WAL writer, under the ingest lock */
};

typedef struct agg_ingest agg_ingest;

/*
 * agg_ingest_create opens the write-ahead log beside store s (which must
 * outlive it), replays what was logged but not yet in the store, and
 * starts the WAL writer and the merger. Returns FDO_OK, FDO_ENOMEM, or the
 * log's errors (FDO_EIO, FDO_ECORRUPT: a damaged record that was
 * acknowledged; fdod refuses to start rather than lose it).
 */
int agg_ingest_create(store *s, const struct agg_ingest_opts *opts,
		      agg_ingest **out);

/*
 * agg_ingest_destroy commits every batch already submitted, answers their
 * submitters, stops the writer and frees ing. Blocks. NULL is a no-op.
 * No submit may start after it is called.
 */
void agg_ingest_destroy(agg_ingest *ing);

/*
 * agg_ingest_batch validates and normalizes batch, queues it for the next
 * group commit to the write-ahead log and blocks until that is durable
 * (or failed); fills *res. Blocks while the queue is full (backpressure).
 * Any thread; the batch is only read, and not after the call returns.
 */
void agg_ingest_batch(agg_ingest *ing, const Fdod__SampleBatch *batch,
		      struct agg_result *res);

/*
 * For the wire edge that decodes and authorizes batches before
 * agg_ingest_batch (server/ingest_edge.c): agg_ingest_limits is the wire
 * limits ing validates with (fixed at create); agg_ingest_count_refusal
 * counts a batch refused before it reached agg_ingest_batch, by its status
 * (stats refused, refused_by); agg_ingest_note_latency adds one message's
 * time from receipt to Ack (seconds) to the latency histogram. Any thread.
 */
const struct wire_limits *agg_ingest_limits(const agg_ingest *ing);
void agg_ingest_count_refusal(agg_ingest *ing, int status);
void agg_ingest_note_latency(agg_ingest *ing, double secs);

/*
 * agg_ingest_flush waits until every batch acknowledged before the call is
 * in the store (merged), for at most timeout_ms. Returns FDO_OK or
 * FDO_EBUSY on timeout. For readers that must see acknowledged data.
 */
int agg_ingest_flush(agg_ingest *ing, unsigned timeout_ms);

/* Upper bounds (seconds) of the ack latency histogram's buckets. */
#define AGG_LATENCY_BUCKETS 12
extern const double agg_latency_bounds[AGG_LATENCY_BUCKETS];
#define AGG_REFUSAL_CODES 32 /* FDO_E* numbers counted one by one */

struct agg_ingest_stats {
	uint64_t batches, duplicates, refused, commits, samples;
	uint64_t refused_by[AGG_REFUSAL_CODES]; /* by FDO_E* status */
	/* Time from receiving a message to its Ack, cumulative as
	 * Prometheus wants: latency_le[i] counts acks <= bounds[i]. */
	uint64_t latency_le[AGG_LATENCY_BUCKETS];
	uint64_t latency_count;
	double latency_sum;
	uint64_t queue_len;	  /* submitted, not yet logged */
	uint64_t unmerged;	  /* logged (acknowledged), not yet merged */
	uint64_t backlog_stacks;  /* their stacks */
	uint64_t expired;	  /* counts entries deleted by retention */
	uint64_t budget_dropped;  /* ... deleted to stay within the budget */
	uint64_t rate_limited;	  /* batches refused by a rate limit */
	uint64_t growth_limited;  /* ... by the new-stacks limit */
	uint64_t pending_dropped; /* addresses not queued: build-id over the
				     pending limit */
	uint64_t pending_full;	  /* build-ids over the pending limit now */
	uint64_t memory_refused;  /* batches refused: the memory budget's
				     ingest part was full */
};
void agg_ingest_stats(agg_ingest *ing, struct agg_ingest_stats *st);

/* ------------------------------------------------ delayed symbolization -- */

typedef struct agg_symwork agg_symwork;
/* sym_cache comes from symbolizer/symbolizer.h. */
struct sym_cache;

struct agg_symwork_stats {
	uint64_t resolved; /* addresses written to symcache */
	uint64_t failures; /* build-ids whose symbol files would not open */
	uint64_t queued;   /* build-ids waiting for a worker */
	uint64_t busy;	   /* build-ids being worked on */
	uint64_t deferred; /* build-ids left to their owner node (now) */
};

/*
 * agg_symwork_create starts `threads` workers that resolve pending
 * addresses of build-ids whose symbols are in datadir's symbol store,
 * through the shared DWARF cache, and marks every build-id that already has
 * pending addresses to be looked at. st and cache must outlive it.
 * Returns FDO_OK or FDO_ENOMEM.
 */
int agg_symwork_create(store *st, struct sym_cache *cache, const char *datadir,
		       unsigned threads, agg_symwork **out);

/* agg_symwork_wake asks for build-ids ids to be looked at (new pending
 * addresses, or symbols uploaded). Never blocks on work; any thread. */
void agg_symwork_wake(agg_symwork *w, const uint32_t *ids, size_t n);

/*
 * agg_symwork_on_missing sets fn to be called by a worker whenever it
 * looks at build-id id (interned id, its bytes in build_id) for pending
 * addresses and the symbol store has no executable for it (a separate
 * debug file alone cannot map sampled file offsets); fn(NULL) removes it.
 * fn runs with the pool's lock held: it must not block nor call into the
 * pool. Once agg_symwork_on_missing(w, NULL, NULL) returns, no call of the
 * previous fn is running. Setting fn looks at every build-id with pending
 * addresses again. Any thread.
 */
typedef void (*agg_symwork_missing_fn)(void *arg, uint32_t id,
				       const uint8_t *build_id, size_t len);
void agg_symwork_on_missing(agg_symwork *w, agg_symwork_missing_fn fn,
			    void *arg);

/*
 * agg_symwork_on_owner sets fn, asked by a worker before it symbolizes (or
 * asks the missing hook to fetch symbols for) a build-id: 0 leaves the
 * build-id to another node (*owner, for the log, names it), and the
 * worker asks again every few seconds, so a build-id is taken over when
 * its owner stops answering. fn may block (it runs without the pool's
 * lock); set it once, before work arrives, and keep arg alive until
 * agg_symwork_destroy. NULL (the default): every build-id is symbolized
 * here.
 */
typedef int (*agg_symwork_owner_fn)(void *arg, const uint8_t *build_id,
				    size_t len, const char **owner);
void agg_symwork_on_owner(agg_symwork *w, agg_symwork_owner_fn fn, void *arg);

/* agg_symwork_idle: 1 when no build-id is queued or being worked on. */
int agg_symwork_idle(agg_symwork *w);

void agg_symwork_stats(agg_symwork *w, struct agg_symwork_stats *st);

/* agg_symwork_destroy lets workers finish their chunk, then frees w. */
void agg_symwork_destroy(agg_symwork *w);

/* ------------------------------------------------------------ profiles -- */

#define AGG_MAX_SELECTORS 16
#define AGG_MAX_PAIRS	  16

/* A label selector: every "k=v" pair must be in a batch's label set. */
struct agg_selector {
	char *pairs[AGG_MAX_PAIRS];
	size_t npairs;
	double weight; /* share in a mix (> 0) */
};

struct agg_profile_query {
	const char *binary;
	struct agg_selector selectors[AGG_MAX_SELECTORS];
	size_t nselectors;	 /* 0: every label set */
	uint64_t window;	 /* seconds; 0: everything stored */
	uint64_t half_life;	 /* seconds; 0: no decay */
	uint64_t now;		 /* reference time, unix seconds */
	uint32_t bucket_seconds; /* width of the stored buckets */
	uint8_t build_id[FDO_BUILD_ID_MAX];
	size_t build_id_len; /* 0: every build-id of the binary */
	int blocks;	     /* also infer block counts (counts=blocks:
				    aggregator/blocks.c) */
	double spread;	     /* ... in one unit across functions,
				    scales within 1/spread..spread (0: not) */
	double dispersion;   /* ... flow_infer's r (0: Poisson) */
	int reduced;	     /* keep only leaves and caller->callee
				    pairs (prof_reduce), not the stacks:
				    all the llvm, gcc and bolt formats read */
	int branches;	     /* also the window's stored branch records
				    (LBR), weighted as the stacks: what the
				    bolt format writes when it has them */
	int full_scan;	     /* reduced: every bucket from its stacks, table
				    aggs neither read nor written (what a
				    build from stored sums must equal) */
	uint64_t max_stacks; /* keep only the heaviest N stacks (0: all) */
	double min_share;    /* ... and those with at least this share of
				    the selected count (0: all) */
	/* clickhouse://... (fdod --store): folded and pprof from what
	 * ClickHouse holds of every node (docs/clickhouse.md); NULL: the
	 * store */
	const char *store_url;
};

/*
 * agg_query_selectors parses `labels` ("k:v,k:v": one selector, all pairs
 * required; '=' also accepted for ':') and `mix` ("k:v+k:v*3,k:v*1": a
 * weighted selector per item) into q (either may be NULL; not both given).
 * The pairs are allocated; agg_query_fini frees them. Returns FDO_OK or
 * FDO_EINVAL with err set.
 */
int agg_query_selectors(struct agg_profile_query *q, const char *labels,
			const char *mix, char *err, size_t errlen);
void agg_query_fini(struct agg_profile_query *q);

/*
 * agg_profile_build builds the profile of q->binary into *p (which it
 * initializes; free with prof_fini): selected, decayed, mixed counts of
 * every stack, each location symbolized from symcache, with the
 * build-ids' symbol files and virtual addresses (through cache, which may
 * be NULL), and with q->blocks the block counts of the sampled functions
 * (struct prof_func and after). Returns FDO_OK (an empty profile is not an
 * error),
 * FDO_ENOT_FOUND (unknown binary), store errors; err explains. Blocks
 * (one read transaction). Any thread.
 */
int agg_profile_build(store *st, struct sym_cache *cache, const char *datadir,
		      const struct agg_profile_query *q, struct prof *p,
		      char *err, size_t errlen);

/* ------------------------------------------------------------- readiness -- */

/*
 * The figures the readiness rules check (aggregator/readiness.c): raw
 * samples, distinct hosts, and the time they cover in unix seconds, from
 * the first bucket's start to the last bucket's end. Zeroed: nothing.
 */
struct agg_figures {
	uint64_t samples;
	uint64_t hosts;
	uint64_t first_time, last_time;
};

/* agg_figures_add folds one row into f: `samples` raw samples of the
 * bucket that starts at `bucket` and is `width` seconds wide. Hosts are
 * the caller's (they are counted per binary, not per row). */
void agg_figures_add(struct agg_figures *f, uint64_t bucket, uint64_t width,
		     uint64_t samples);
/* agg_figures_merge folds from's samples and time into into's. */
void agg_figures_merge(struct agg_figures *into,
		       const struct agg_figures *from);
/* agg_figures_span: the seconds f covers (0 when it covers none). */
uint64_t agg_figures_span(const struct agg_figures *f);

/* The curation minimums (server config defaults, overridable per
 * request): samples, hosts, seconds of span. */
struct agg_minimums {
	uint64_t samples, hosts, span;
};

/* One rule checked: its name ("min_samples", ...), the figure and the
 * minimum; it fails when have < need. */
#define AGG_RULES 3
struct agg_rule {
	const char *name;
	uint64_t have, need;
};

/*
 * agg_readiness_check fills rules[AGG_RULES] from f and min, in the order
 * min_samples, min_hosts, min_span, and returns 1 when any rule fails (not
 * ready), 0 when the figures reach every minimum. The one implementation
 * of the rules: for a built profile (agg_profile_figures) and for the
 * label sets of GET /v1/binaries/{b}/readiness alike.
 */
int agg_readiness_check(const struct agg_figures *f,
			const struct agg_minimums *min,
			struct agg_rule rules[AGG_RULES]);

/* agg_profile_figures: the figures of a profile agg_profile_build made
 * (its pass 1 folds every selected counts entry with agg_figures_add). */
void agg_profile_figures(const struct prof *p, struct agg_figures *f);

/*
 * The releases of a binary compared (aggregator/releases.c, for GET
 * /v1/binaries/{b}/releases).
 *
 * agg_run_parts calls fn with each leaf build-id partition of run k (its
 * totals row: seen, read in t): the weight and raw samples of the run's
 * stacks whose leaf is in that build-id. From table aggs when stored, else
 * summed from the run's stacks (one bucket's counts). FDO_OK, fn's
 * nonzero return, FDO_ENOMEM or a store error.
 */
typedef int (*agg_part_fn)(void *arg, const struct store_totals_key *k,
			   uint32_t leaf_bid, wire_weight_t weight,
			   uint64_t samples);
int agg_run_parts(store_txn *t, const struct store_totals_key *k,
		  const struct store_totals *seen, agg_part_fn fn, void *arg);

/* One (label set, bucket) of one release: its CPU (weight, in the event's
 * unit) and raw samples, and the host-seconds it stands for. */
struct agg_rel_cell {
	uint32_t labelset;
	uint64_t bucket;
	double cpu, samples, exposure;
};

/* A comparison of release b against release a (docs/http.md): ratio of
 * CPU per host-hour under equal label sets, its 95% interval, and what it
 * stands on. ratio 0: no label set holds both. */
struct agg_rel_cmp {
	double ratio, lo, hi;
	size_t labelsets, cells_a, cells_b;
	double samples_a, samples_b;
};

/* agg_rel_by_bucket folds a release's cells (label set, bucket; each
 * with the binary's host-seconds of its bucket, as the route builds them)
 * into one cell per bucket (label set 0), sorted by bucket, into out (room
 * for n): CPU and samples summed, the host-seconds counted once, since
 * nothing stored says which hosts ran which label set. Returns the cells
 * written. */
size_t agg_rel_by_bucket(const struct agg_rel_cell *c, size_t n,
			 struct agg_rel_cell *out);

/* agg_release_compare compares the cells of b against those of a (each
 * sorted by label set, then bucket). */
void agg_release_compare(const struct agg_rel_cell *a, size_t na,
			 const struct agg_rel_cell *b, size_t nb,
			 struct agg_rel_cmp *out);

#endif
