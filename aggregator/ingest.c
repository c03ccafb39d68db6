/*
 * aggregator/ingest.c — the ingest pipeline: from a decoded SampleBatch to
 * a durable Ack, and on into the store.
 *
 * Workload: many agents, each sending a batch every few seconds; a batch
 * holds ~1,000 distinct stacks of ~20 frames, ~95% of them seen before.
 * A sample must cost a hash and a counter update.
 *
 * DESIGN
 *   Submitter threads (the agent listener's, one per request in flight)
 *   decode, validate, normalize and hash a batch into a `prep` (prep.c), in
 *   parallel, and queue it (bounded: a full queue blocks the submitter, so
 *   backpressure reaches the agent and nothing is dropped).
 *   The WAL writer thread takes everything queued as one group, drops
 *   duplicates (an (agent, seq) logged but not yet merged, or recorded in
 *   table batches), appends one record per batch to the write-ahead log and
 *   makes the group durable with ONE fdatasync (group commit); then every
 *   submitter of the group is woken to send its Ack. A stack's frames go
 *   into the log (and stay in memory) only the first time the writer logs
 *   that stack; later records carry its id alone.
 *   The merger thread takes what was logged since its last merge (up to
 *   MERGE_MAX_STACKS stacks) and applies it to LMDB in one transaction with
 *   the WAL position it reached (merge.c); whole WAL segments behind that
 *   position are then deleted. Acks never wait for LMDB, and LMDB sees each
 *   key once per merge, in key order.
 *   At start, records after the applied position are replayed into the
 *   merge queue before any new batch is accepted: an acknowledged batch
 *   survives kill -9 and power loss, and is counted exactly once.
 *   Readers that need what was acknowledged to be in LMDB call
 *   agg_ingest_flush first.
 *   Locking: mu guards both queues, the dedup set, the counters, the done
 *   flags (in each submitter's agg_result) and the stats. wal_mu guards the
 *   log (the writer appends and syncs, the merger trims). The writer alone
 *   owns `logged_stacks` and the record buffer; the merger alone owns the
 *   merge state.
 *   Shutdown: the writer logs and acknowledges everything queued, then the
 *   merger merges everything logged, then both exit.
 *
 * The wire edge (decoding, the token check, the Ack) is the server's
 * (server/ingest_edge.c): batches arrive here decoded and authorized.
 * Parts in files of their own (shared declarations in ingest_int.h): the
 * dedup set (dedup.c); the logged-stack set (an idset, idset.c); the rate
 * limiter (ratelimit.c); the growth limits (growth.c); expiry, run by the
 * merger when idle (retention.c); the merge itself (merge.c).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/ingest_int.h"
#include "aggregator/keysort.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"

#define MERGE_MAX_STACKS   (2u << 20) /* stacks in one merge transaction */
#define BACKLOG_MAX_STACKS (4u << 20) /* logged, unmerged: then writer waits */
/* A merge starts no sooner than this after the previous one started: see
 * merger_main. */
#define MERGE_INTERVAL_MS 200
#define LOGGED_MAX	  (1u << 22) /* slots of the logged-stack set */
#define KNOWN_SLOTS_MAX	  (1u << 23) /* ... of the merger's known stacks */
/* LMDB keeps at most this many dirty pages in memory in one write
 * transaction (MDB_IDL_UM_MAX); past it, it writes some out (spills). */
#define LMDB_DIRTY_MAX (1u << 17)

/*
 * The memory budget (common/mem.h): every prepared batch counts in
 * FDO_MEM_INGEST from its preparation until it is freed (refused,
 * duplicate, or merged), so the part holds what the submit queue, the
 * group being logged and the backlog of acknowledged, unmerged batches
 * hold. When it is full, new batches are refused with BUSY and a
 * retry-after (agg_ingest_batch) rather than queued: nothing acknowledged
 * is dropped, the agents keep theirs and resend. The merger sizes each
 * merge so that its buffers (FDO_MEM_MERGE) and the dirty pages of its
 * transaction (FDO_MEM_LMDB, estimated: dirty_pages) stay within their
 * caps.
 */
static size_t str_bytes(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* What a prepared batch holds: its strings and arrays. */
static size_t prep_bytes(const struct prep *p)
{
	return sizeof *p + str_bytes(p->b.agent) + str_bytes(p->b.binary) +
	       str_bytes(p->b.host) + str_bytes(p->b.labels) +
	       p->b.nmaps * sizeof *p->b.maps +
	       p->b.nframes * sizeof *p->b.frames +
	       p->b.nstacks * sizeof *p->b.stacks +
	       p->b.nbranches * sizeof *p->b.branches;
}

static void prep_account(struct prep *p)
{
	p->mem = prep_bytes(p);
	fdo_mem_take(FDO_MEM_INGEST, p->mem);
}

/* After prep_compact: give back what its frames no longer hold. */
static void prep_reaccount(struct prep *p)
{
	size_t now = prep_bytes(p);
	if (now < p->mem) {
		fdo_mem_give(FDO_MEM_INGEST, p->mem - now);
		p->mem = now;
	}
}

static void prep_release(struct prep *p)
{
	if (p)
		fdo_mem_give(FDO_MEM_INGEST, p->mem);
	prep_free(p);
}

/* The merger's buffers for p's part of a merge, at most: an entry (and
 * its copy for sorting) per stack, per candidate stack and address, per
 * branch, with the capacity up to twice the need (fdo_grow doubles). */
static uint64_t merge_need(const struct prep *p)
{
	uint64_t n = p->b.nstacks + p->b.nframes + p->b.nbranches;
	for (size_t k = 0; k < p->b.nstacks; k++)
		n += p->b.stacks[k].n > 0;
	return n * 4 * sizeof(struct entry);
}

/*
 * The LMDB writes p's part of a merge makes at most, by table and by
 * where their keys fall. Keys that are hashes, spread over their table:
 * a stack per stack that carries frames, a branch per branch record.
 * Sequential: counts, written as one new run per (binary, label set,
 * bucket) of the merge's summed deltas (storage/counts.c), whole chunks
 * of at most RUN_ENTRY_BYTES per stack whatever the table holds.
 * Clustered: a pending address per frame it carries (keyed by build-id
 * and offset: a batch's new addresses are neighbours). And a few more
 * (its batch record, hosts, build-ids, totals, the run's leaf page).
 */
#define RUN_ENTRY_BYTES 24 /* a run entry's varints, at most, in practice */
enum { PUT_STACKS, PUT_BRANCHES, PUT_SPREAD };
struct puts {
	uint64_t spread[PUT_SPREAD]; /* writes of hashed keys, by table */
	uint64_t run_bytes;	     /* bytes of counts runs */
	uint64_t clustered, other;
};

static void merge_puts(const struct prep *p, struct puts *u)
{
	u->run_bytes += (uint64_t)p->b.nstacks * RUN_ENTRY_BYTES;
	for (size_t k = 0; k < p->b.nstacks; k++)
		u->spread[PUT_STACKS] += p->b.stacks[k].n > 0;
	u->spread[PUT_BRANCHES] += p->b.nbranches;
	u->clustered += p->b.nframes;
	u->other += 8;
}

/*
 * Dirty pages of a merge's writes u, pages[t] the pages table t of
 * PUT_STACKS.. holds now. n writes of random keys into a table of P pages
 * (P grown by one per 16 new entries) dirty P(1 - e^(-n/P)) leaf pages on
 * average (n when P is far larger, P when n is); runs their bytes / 4 KiB
 * (overflow pages, written once); clustered writes fill pages of 64
 * entries or more; the others a page each; 64 for the branch pages
 * above. LMDB itself holds at most LMDB_DIRTY_MAX. An estimate, not a
 * measure: LMDB does not report the pages a transaction dirtied.
 */
static uint64_t dirty_pages(const struct puts *u, const uint64_t *pages)
{
	double d = 64 + (double)u->run_bytes / 4096 +
		   (double)u->clustered / 64 + (double)u->other;
	for (int t = 0; t < PUT_SPREAD; t++) {
		double n = (double)u->spread[t];
		double p = (double)pages[t] + n / 16;
		if (p > 0)
			d += p * -expm1(-n / p);
	}
	return d < LMDB_DIRTY_MAX ? (uint64_t)d : LMDB_DIRTY_MAX;
}

/* The set is far bigger than the caches and a batch's ids are random:
 * fetch all their slots at once rather than miss on each in turn. */
static void logged_prefetch(const agg_ingest *ing, const struct prep *p)
{
	for (size_t k = 0; k < p->b.nstacks; k++)
		if (p->b.stacks[k].n)
			idset_prefetch(&ing->logged_stacks, p->b.stacks[k].id);
}

static int with_frames(void *arg, uint64_t id)
{
	const agg_ingest *ing = arg;
	return !id || !idset_has(&ing->logged_stacks, id);
}

/* Is the ingest part of the memory budget half full? Then merges start
 * without waiting to coalesce. */
static int ingest_half_full(void)
{
	uint64_t cap = fdo_mem_cap(FDO_MEM_INGEST);
	return cap && fdo_mem_used(FDO_MEM_INGEST) >= cap / 2;
}

/* Count a refused batch by its status. Call with ing->mu held. */
void ingest_count_refusal(agg_ingest *ing, int status)
{
	ing->stats.refused++;
	ing->stats.refused_by[status > 0 && status < AGG_REFUSAL_CODES ? status
								       : 0]++;
}

static void result_ok(struct agg_result *r)
{
	r->status = FDO_OK;
	snprintf(r->message, sizeof r->message, "ok");
}

static void result_error(struct agg_result *r, int rc, const char *why)
{
	r->status = rc;
	r->duplicate = 0;
	r->samples_accepted = 0;
	snprintf(r->message, sizeof r->message, "not stored: %s; retry later",
		 why);
}

enum { NEW_BATCH, DUPLICATE, CONFLICT };

/* Is p's (agent, seq) in table batches, with the same content? Fills a
 * duplicate's figures: what its first Ack said. */
static int stored_before(store_txn *t, const struct prep *p,
			 struct agg_result *r)
{
	uint32_t agent;
	if (!t ||
	    store_intern_string(t, p->b.agent, strlen(p->b.agent), 0, &agent))
		return NEW_BATCH;
	uint8_t key[STORE_BATCHES_KEY_SIZE];
	store_batches_key_encode(key, agent, p->b.seq);
	const void *v;
	size_t vl;
	if (store_get(t, STORE_BATCHES, key, sizeof key, &v, &vl))
		return NEW_BATCH;
	/* A record that does not decode still stands for the batch. */
	struct store_batch b;
	if (store_batches_decode(v, vl, &b))
		return DUPLICATE;
	if (b.digest && b.digest != p->digest)
		return CONFLICT;
	r->samples_accepted = b.accepted;
	return DUPLICATE;
}

static void result_conflict(struct agg_result *r, const struct prep *p)
{
	r->status = FDO_ECONFLICT;
	r->duplicate = 0;
	r->samples_accepted = 0;
	snprintf(r->message, sizeof r->message,
		 "seq %llu of agent '%.64s' was stored before with different "
		 "content; not stored (a resent batch must be identical; a new "
		 "batch needs a new seq)",
		 (unsigned long long)p->b.seq, p->b.agent);
}

/* Log one group: dedup, append, one sync, then hand over and wake. */
static void log_group(agg_ingest *ing, struct prep **g, size_t n)
{
	/*
	 * A batch leaves the dedup set only after its merge committed. The
	 * snapshot t must therefore be younger than every merge whose batches
	 * left the set before we looked, or a resent batch merged in between
	 * would be found in neither place and counted twice: t is renewed
	 * whenever a merge ended since it began.
	 */
	store_txn *t = NULL;
	uint64_t t_merged = 0;
	int fail = 0;
	char why[128] = "";
	pthread_mutex_lock(&ing->wal_mu);
	for (size_t i = 0; i < n; i++) {
		struct prep *p = g[i];
		struct agg_result *r = p->res;
		uint64_t ah = prep_name_hash(p->b.agent);
		pthread_mutex_lock(&ing->mu);
		uint64_t logged = dedup_find(&ing->dedup, ah, p->b.seq);
		int dup = logged != 0;
		int stale = !t || t_merged != ing->merged;
		pthread_mutex_unlock(&ing->mu);
		if (!dup && stale) {
			if (t)
				store_txn_abort(t);
			pthread_mutex_lock(&ing->mu);
			t_merged = ing->merged;
			pthread_mutex_unlock(&ing->mu);
			if (store_txn_begin(ing->st, 0, &t))
				t = NULL; /* only the in-memory set, then */
		}
		int before = dup ? (logged == p->digest ? DUPLICATE : CONFLICT)
				 : stored_before(t, p, r);
		if (before == CONFLICT) {
			result_conflict(r, p);
			g[i] = NULL;
			continue;
		}
		if (before == DUPLICATE) {
			/* Logged or stored before: counted once. */
			r->duplicate = 1;
			g[i] = NULL;
			continue;
		}
		if (fail) {
			result_error(r, fail, why);
			g[i] = NULL;
			continue;
		}
		fdo_buf_reset(&ing->rec);
		logged_prefetch(ing, p);
		int rc = prep_compact(p, with_frames, ing);
		prep_reaccount(p);
		if (!rc)
			rc = store_walbatch_encode(&p->b, &ing->rec);
		if (!rc)
			rc = store_wal_append(ing->wal, ing->rec.data,
					      ing->rec.len, &p->wal_end);
		if (rc) {
			fail = rc;
			snprintf(why, sizeof why, "write-ahead log: %s",
				 fdo_strerror(rc));
			fdo_error("ingest: %s", why);
			result_error(r, rc, why);
			g[i] = NULL;
			continue;
		}
		for (size_t k = 0; k < p->b.nstacks; k++)
			if (p->b.stacks[k].n)
				idset_add(&ing->logged_stacks,
					  p->b.stacks[k].id);
		pthread_mutex_lock(&ing->mu);
		dedup_add(&ing->dedup, ah, p->b.seq, p->digest);
		pthread_mutex_unlock(&ing->mu);
	}
	if (t)
		store_txn_abort(t);
	if (store_wal_sync(ing->wal)) {
		/* After a failed fsync the kernel may have dropped the pages:
		 * nothing can be acknowledged or trusted any more. Restart
		 * replays what is really on disk; agents retry the rest. */
		fdo_error("ingest: fdatasync of the write-ahead log failed; "
			  "stopping to protect acknowledged data");
		abort();
	}
	pthread_mutex_unlock(&ing->wal_mu);

	pthread_mutex_lock(&ing->mu);
	ing->stats.commits++;
	for (size_t i = 0; i < n; i++) {
		struct prep *p = g[i];
		if (!p)
			continue;
		struct agg_result *r = p->res;
		result_ok(r);
		ing->stats.batches++;
		ing->stats.samples += r->samples_accepted;
		p->res = NULL; /* the merger owns p from here */
		p->logno = ++ing->logged;
		p->next = NULL;
		if (ing->mtail)
			ing->mtail->next = p;
		else
			ing->mhead = p;
		ing->mtail = p;
		ing->backlog += p->b.nstacks;
	}
	pthread_cond_signal(&ing->merge_cv);
	pthread_mutex_unlock(&ing->mu);
}

static void *writer_main(void *arg)
{
	agg_ingest *ing = arg;
	struct prep **g = malloc(ing->o.group_max * sizeof *g);
	struct agg_result **owners = malloc(ing->o.group_max * sizeof *owners);
	if (!g || !owners) {
		fdo_error("ingest: writer out of memory");
		abort();
	}
	for (;;) {
		pthread_mutex_lock(&ing->mu);
		while (!ing->head && !ing->stopping)
			pthread_cond_wait(&ing->work_cv, &ing->mu);
		if (!ing->head) {
			pthread_mutex_unlock(&ing->mu);
			break;
		}
		/* The merger is behind: wait for it, unless it is failing,
		 * in which case new batches are refused with its error. A
		 * store out of space refuses at once: what is logged already
		 * waits in the log for space, and the log does not grow
		 * without bound meanwhile. */
		while (ing->backlog > BACKLOG_MAX_STACKS && !ing->merge_error)
			pthread_cond_wait(&ing->merged_cv, &ing->mu);
		int space = ing->merge_error == FDO_ESTORE_FULL ||
			    ing->merge_error == FDO_ENOSPACE;
		int refuse = ing->backlog > BACKLOG_MAX_STACKS || space
				     ? ing->merge_error
				     : 0;
		size_t n = 0;
		while (ing->head && n < ing->o.group_max) {
			g[n] = ing->head;
			owners[n] = g[n]->res;
			ing->head = ing->head->next;
			ing->queued--;
			n++;
		}
		if (!ing->head)
			ing->tail = NULL;
		pthread_cond_broadcast(&ing->space_cv);
		pthread_mutex_unlock(&ing->mu);

		if (refuse) {
			char why[160];
			snprintf(why, sizeof why,
				 "the store cannot take more batches now "
				 "(merging what is logged fails: %s)",
				 fdo_strerror(refuse));
			for (size_t i = 0; i < n; i++)
				result_error(g[i]->res, refuse, why);
		} else {
			log_group(ing, g, n);
		}
		pthread_mutex_lock(&ing->mu);
		for (size_t i = 0; i < n; i++) {
			if (owners[i]->status)
				ingest_count_refusal(ing, owners[i]->status);
			else if (owners[i]->duplicate)
				ing->stats.duplicates++;
			if (owners[i]->duplicate)
				snprintf(owners[i]->message,
					 sizeof owners[i]->message,
					 "duplicate of a stored batch; "
					 "counted once");
			owners[i]->done = 1;
		}
		pthread_cond_broadcast(&ing->done_cv);
		pthread_mutex_unlock(&ing->mu);
	}
	pthread_mutex_lock(&ing->mu);
	ing->writer_done = 1;
	pthread_cond_broadcast(&ing->merge_cv);
	pthread_mutex_unlock(&ing->mu);
	free(g);
	free(owners);
	return NULL;
}

/* *ts = CLOCK_REALTIME now + ns, for pthread_cond_timedwait. */
static void deadline_in(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	uint64_t nsec = (uint64_t)ts->tv_nsec + ns % 1000000000u;
	ts->tv_sec += (time_t)(ns / 1000000000u + nsec / 1000000000u);
	ts->tv_nsec = (long)(nsec % 1000000000u);
}

/*
 * The fill of table aggs (merge_fill_step) in the merger's time between
 * merges: a step of at most FILL_STEP_MS, never past the next merge's
 * time (less FILL_MARGIN_MS) and never while a flusher, a full backlog or
 * a half-full ingest part wants a merge now; while idle, step after step.
 * fill_step runs one with ing->mu unlocked; *more: whether to call again
 * soon (else once a second).
 */
#define FILL_STEP_MS   20
#define FILL_MARGIN_MS 2
static void fill_step(agg_ingest *ing, uint64_t until, int *more,
		      uint64_t *next_try)
{
	uint64_t now = fdo_now_ns();
	if (!*more && now < *next_try)
		return;
	uint64_t deadline = now + FILL_STEP_MS * 1000000ull;
	if (until && until < deadline)
		deadline = until;
	*more = merge_fill_step(ing->merge, ing->st, ing->o.bucket_seconds,
				(uint64_t)time(NULL), deadline);
	if (!*more)
		*next_try = fdo_now_ns() + 1000000000ull;
}

static void *merger_main(void *arg)
{
	agg_ingest *ing = arg;
	struct prep **batch = NULL;
	size_t cap = 0;
	uint64_t next_merge = 0; /* fdo_now_ns() */
	uint64_t last_end = 0;	 /* ... when the last merge ended */
	int fill_more = 1;	 /* fill_step */
	uint64_t fill_next = 0, last_sweep = fdo_now_ns();
	compact_all(ing);
	for (;;) {
		pthread_mutex_lock(&ing->mu);
		while (!ing->mhead && !ing->writer_done) {
			if (ing->cjob_active || ing->ccand_at < ing->nccands) {
				/* Idle: compaction first, a few steps at
				 * a time; the fill of aggs after it. */
				pthread_mutex_unlock(&ing->mu);
				int more = compact_run(ing, 20 * 1000000ull);
				pthread_mutex_lock(&ing->mu);
				if (more)
					continue;
			}
			struct timespec ts;
			if (fill_more && !ing->o.no_aggs_fill) {
				/* Idle with runs to fill: the next step at
				 * once (a batch logged meanwhile wakes it
				 * first). */
				deadline_in(&ts, 1000000);
			} else {
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
			}
			pthread_cond_timedwait(&ing->merge_cv, &ing->mu, &ts);
			if (!ing->mhead && !ing->writer_done) {
				pthread_mutex_unlock(&ing->mu);
				if (fdo_now_ns() - last_sweep >=
				    1000000000ull) {
					ingest_sweep(ing);
					ingest_expire(ing);
					growth_recheck(ing);
					last_sweep = fdo_now_ns();
				}
				if (!ing->o.no_aggs_fill)
					fill_step(ing, 0, &fill_more,
						  &fill_next);
				pthread_mutex_lock(&ing->mu);
			}
		}
		if (!ing->mhead) {
			pthread_mutex_unlock(&ing->mu);
			break;
		}
		/*
		 * Coalesce. Acks never wait for a merge, so merging less often
		 * costs nothing but a little memory, and it is what makes a
		 * merge cheap per stack: stack ids are hashes, so a merge of a
		 * few batches dirties about one leaf page of stacks per new
		 * stack (counts, since store version 6, are runs written
		 * whole: storage/counts.c), while a merge of many shares its
		 * pages and its two fsyncs. Merging at once after each WAL
		 * commit (2.5 batches a merge) held ingest to ~620k Stacks/s
		 * with the merger thread a whole core. Waiting ends early for
		 * a flusher, a backlog past half its bound, or shutdown.
		 */
		while (ing->mhead && !ing->writer_done && !ing->flushers &&
		       ing->backlog < BACKLOG_MAX_STACKS / 2 &&
		       !ingest_half_full() && fdo_now_ns() < next_merge) {
			uint64_t now = fdo_now_ns();
			uint64_t margin = FILL_MARGIN_MS * 1000000ull;
			if (!ing->o.no_aggs_fill &&
			    (fill_more || now >= fill_next) &&
			    next_merge > now + 2 * margin) {
				pthread_mutex_unlock(&ing->mu);
				fill_step(ing, next_merge - margin, &fill_more,
					  &fill_next);
				pthread_mutex_lock(&ing->mu);
				continue;
			}
			struct timespec ts;
			uint64_t wait = next_merge - now;
			if (!ing->o.no_aggs_fill && !fill_more &&
			    fill_next > now && fill_next - now < wait)
				wait = fill_next - now;
			deadline_in(&ts, wait);
			pthread_cond_timedwait(&ing->merge_cv, &ing->mu, &ts);
		}
		uint64_t started = fdo_now_ns();
		next_merge = started + MERGE_INTERVAL_MS * 1000000ull;
		pthread_mutex_unlock(&ing->mu);
		/* The merge's size within the budget: its buffers within the
		 * merge part's cap (less the known sets), its dirty pages
		 * within the LMDB part's; always at least one batch. */
		uint64_t mcap = fdo_mem_cap(FDO_MEM_MERGE);
		uint64_t lcap = fdo_mem_cap(FDO_MEM_LMDB);
		uint64_t mroom =
			mcap > ing->merge_fixed ? mcap - ing->merge_fixed : 0;
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
		uint64_t pages[PUT_SPREAD] = {0};
		static const enum store_table tables[PUT_SPREAD] = {
			[PUT_STACKS] = STORE_STACKS,
			[PUT_BRANCHES] = STORE_BRANCHES};
		store_txn *lt;
		if (lcap && store_txn_begin(ing->st, 0, &lt) == FDO_OK) {
			for (int t = 0; t < PUT_SPREAD; t++)
				if (!store_table_bytes(lt, tables[t],
						       &pages[t]))
					pages[t] /= page;
			store_txn_abort(lt);
		}
		pthread_mutex_lock(&ing->mu);
		size_t n = 0, stacks = 0;
		uint64_t need = 0, freed = 0;
		struct puts puts = {{0}, 0, 0, 0};
		for (struct prep *p = ing->mhead; p; p = p->next) {
			uint64_t need2 = need + merge_need(p);
			struct puts puts2 = puts;
			merge_puts(p, &puts2);
			if (n && (stacks + p->b.nstacks > MERGE_MAX_STACKS ||
				  (mcap && need2 > mroom) ||
				  (lcap &&
				   dirty_pages(&puts2, pages) * page > lcap)))
				break;
			if (fdo_grow(batch, cap, n + 1)) {
				fdo_error("ingest: merger out of memory");
				abort();
			}
			batch[n++] = p;
			stacks += p->b.nstacks;
			need = need2;
			puts = puts2;
			freed += p->mem;
		}
		pthread_mutex_unlock(&ing->mu);

		const uint32_t *pending;
		size_t npending;
		int rc = merge_apply(ing->merge, ing->st, batch, n,
				     (uint64_t)time(NULL), &pending, &npending);
		if (!rc)
			fdo_mem_raise(FDO_MEM_LMDB,
				      dirty_pages(&puts, pages) * page);
		pthread_mutex_lock(&ing->mu);
		if (rc) {
			if (rc != ing->merge_error)
				fdo_error("ingest: merging %zu logged batches "
					  "into the store failed: %s; retrying",
					  n, fdo_strerror(rc));
			ing->merge_error = rc;
			pthread_cond_broadcast(&ing->merged_cv);
			if (ing->writer_done) {
				/* Stopping: what is logged is durable; the
				 * next start replays it. */
				fdo_warn(
					"ingest: stopping with logged batches "
					"not merged (%s); the next start "
					"replays them from the write-ahead log",
					fdo_strerror(rc));
				pthread_mutex_unlock(&ing->mu);
				break;
			}
			pthread_mutex_unlock(&ing->mu);
			usleep(200 * 1000);
			continue;
		}
		if (ing->merge_error)
			fdo_info("ingest: merging works again");
		ing->merge_error = 0;
		struct merge_growth growth;
		merge_growth(ing->merge, &growth);
		growth_note(ing, &growth);
		struct store_wal_pos applied = batch[n - 1]->wal_end;
		for (size_t i = 0; i < n; i++) {
			struct prep *p = ing->mhead;
			ing->mhead = p->next;
			dedup_del(&ing->dedup, prep_name_hash(p->b.agent),
				  p->b.seq);
			ing->backlog -= p->b.nstacks;
			ing->merged = p->logno;
		}
		if (!ing->mhead)
			ing->mtail = NULL;
		/* How fast merges free the ingest part (bytes per second
		 * since the previous merge ended, smoothed): the retry-after
		 * of a refusal for lack of memory. */
		uint64_t end = fdo_now_ns();
		if (last_end && end > last_end) {
			double bps =
				(double)freed * 1e9 / (double)(end - last_end);
			ing->drain_bps =
				ing->drain_bps > 0
					? 0.7 * ing->drain_bps + 0.3 * bps
					: bps;
		}
		last_end = end;
		pthread_cond_broadcast(&ing->merged_cv);
		pthread_mutex_unlock(&ing->mu);
		growth_pending(ing, &growth);
		for (size_t i = 0; i < n; i++)
			prep_release(batch[i]);
		pthread_mutex_lock(&ing->wal_mu);
		store_wal_trim(ing->wal, applied);
		pthread_mutex_unlock(&ing->wal_mu);
		if (npending && ing->o.pending_cb)
			ing->o.pending_cb(ing->o.pending_arg, pending,
					  npending);
		/* Compaction until the next merge is due (at least a step):
		 * off the Ack path, which waits for the WAL only. */
		compact_note(ing);
		uint64_t now_ns = fdo_now_ns(), spent = now_ns - started;
		uint64_t budget = next_merge > now_ns ? next_merge - now_ns : 0;
		/* Behind (merges back to back): compaction gets half the
		 * merger's time, or runs would pile up in open buckets. */
		if (budget < spent)
			budget = spent;
		compact_run(ing, budget);
	}
	free(batch);
	return NULL;
}

/* Replay: records after the applied position go back to the merger. */
static int replay_one(void *arg, const void *rec, size_t len,
		      struct store_wal_pos end)
{
	agg_ingest *ing = arg;
	struct prep *p;
	int rc = prep_decode(rec, len, &p);
	if (rc) {
		fdo_error("ingest: a write-ahead log record does not decode "
			  "(%zu bytes before segment %llu offset %llu)",
			  len, (unsigned long long)end.segment,
			  (unsigned long long)end.offset);
		return rc;
	}
	prep_account(p);
	p->wal_end = end;
	p->logno = ++ing->logged;
	if (dedup_add(&ing->dedup, prep_name_hash(p->b.agent), p->b.seq,
		      p->digest)) {
		prep_release(p);
		return FDO_ENOMEM;
	}
	for (size_t k = 0; k < p->b.nstacks; k++)
		if (p->b.stacks[k].n)
			idset_add(&ing->logged_stacks, p->b.stacks[k].id);
	if (ing->mtail)
		ing->mtail->next = p;
	else
		ing->mhead = p;
	ing->mtail = p;
	ing->backlog += p->b.nstacks;
	return FDO_OK;
}

static int replay(agg_ingest *ing)
{
	store_txn *t;
	struct store_wal_pos from;
	int rc = store_txn_begin(ing->st, 0, &t);
	if (rc)
		return rc;
	rc = store_wal_applied_get(t, &from);
	store_txn_abort(t);
	if (rc)
		return rc;
	if ((rc = store_wal_replay(ing->wal, from, replay_one, ing)))
		return rc;
	/* New records must come after what the store has applied, even when
	 * the log on disk is older (a restored backup, a removed log). */
	if ((rc = store_wal_start_after(ing->wal, from)))
		return rc;
	if (ing->logged)
		fdo_info("ingest: replaying %llu logged batches into the store",
			 (unsigned long long)ing->logged);
	return FDO_OK;
}

static void free_queues(agg_ingest *ing)
{
	for (struct prep *p = ing->mhead, *n; p; p = n) {
		n = p->next;
		prep_release(p);
	}
	ing->mhead = ing->mtail = NULL;
	dedup_fini(&ing->dedup);
}

int agg_ingest_create(store *s, const struct agg_ingest_opts *opts,
		      agg_ingest **out)
{
	agg_ingest *ing = calloc(1, sizeof *ing);
	if (!ing)
		return FDO_ENOMEM;
	ing->st = s;
	if (opts)
		ing->o = *opts;
	if (!ing->o.bucket_seconds)
		ing->o.bucket_seconds = 3600;
	if (!ing->o.dedup_ttl)
		ing->o.dedup_ttl = 7 * 86400;
	if (!ing->o.queue_max)
		ing->o.queue_max = 256;
	if (!ing->o.group_max)
		ing->o.group_max = 512;
	ing->limits = ing->o.limits ? ing->o.limits : &wire_limits_default;
	int rc = FDO_ENOMEM;
	/* The merger's known sets take at most half its part of the memory
	 * budget (2^23 slots of stacks and 2^22 of addresses at most, the
	 * default's), the writer's set of logged stacks a quarter of the
	 * ingest part (2^22 at most, the default's). Each stack either set
	 * forgets costs its frames again: in the log, and a lookup in table
	 * stacks (docs/scale.md). */
	size_t known = KNOWN_SLOTS_MAX, logged = LOGGED_MAX;
	uint64_t mcap = fdo_mem_cap(FDO_MEM_MERGE);
	uint64_t icap = fdo_mem_cap(FDO_MEM_INGEST);
	while (mcap && known > 4096 && (known + known / 2) * 8 > mcap / 2)
		known /= 2;
	while (icap && logged > 4096 && logged * 8 > icap / 4)
		logged /= 2;
	ing->merge_fixed = (known + known / 2) * 8;
	if (dedup_init(&ing->dedup, 65536) ||
	    idset_init(&ing->logged_stacks, logged) ||
	    ratelimit_init(&ing->rates) || growth_init(&ing->growth) ||
	    merge_create(known, &ing->merge))
		goto fail;
	ing->logged_mem = logged * 8;
	fdo_mem_take(FDO_MEM_INGEST, ing->logged_mem);
	fdo_buf_init(&ing->rec);
	if ((rc = store_wal_open(store_dir(s), ing->o.wal_segment_bytes,
				 &ing->wal))) {
		fdo_error(
			"ingest: cannot open the write-ahead log in %s/wal: %s",
			store_dir(s), fdo_strerror(rc));
		goto fail;
	}
	if ((rc = replay(ing)))
		goto fail;
	pthread_mutex_init(&ing->mu, NULL);
	pthread_mutex_init(&ing->wal_mu, NULL);
	pthread_cond_init(&ing->work_cv, NULL);
	pthread_cond_init(&ing->space_cv, NULL);
	pthread_cond_init(&ing->done_cv, NULL);
	pthread_cond_init(&ing->merge_cv, NULL);
	pthread_cond_init(&ing->merged_cv, NULL);
	if (pthread_create(&ing->writer, NULL, writer_main, ing))
		abort();
	if (pthread_create(&ing->merger, NULL, merger_main, ing))
		abort();
	*out = ing;
	return FDO_OK;
fail:
	free_queues(ing);
	store_wal_close(ing->wal);
	merge_destroy(ing->merge);
	idset_fini(&ing->logged_stacks);
	fdo_mem_give(FDO_MEM_INGEST, ing->logged_mem);
	ratelimit_fini(&ing->rates);
	growth_fini(&ing->growth);
	fdo_buf_fini(&ing->rec);
	free(ing);
	return rc;
}

void agg_ingest_destroy(agg_ingest *ing)
{
	if (!ing)
		return;
	pthread_mutex_lock(&ing->mu);
	ing->stopping = 1;
	pthread_cond_broadcast(&ing->work_cv);
	pthread_cond_broadcast(&ing->space_cv);
	pthread_mutex_unlock(&ing->mu);
	pthread_join(ing->writer, NULL);
	pthread_join(ing->merger, NULL);
	compact_free(ing);
	free_queues(ing);
	store_wal_close(ing->wal);
	merge_destroy(ing->merge);
	fdo_mem_set(FDO_MEM_MERGE, 0);
	idset_fini(&ing->logged_stacks);
	fdo_mem_give(FDO_MEM_INGEST, ing->logged_mem);
	ratelimit_fini(&ing->rates);
	growth_fini(&ing->growth);
	fdo_buf_fini(&ing->rec);
	pthread_mutex_destroy(&ing->mu);
	pthread_mutex_destroy(&ing->wal_mu);
	pthread_cond_destroy(&ing->work_cv);
	pthread_cond_destroy(&ing->space_cv);
	pthread_cond_destroy(&ing->done_cv);
	pthread_cond_destroy(&ing->merge_cv);
	pthread_cond_destroy(&ing->merged_cv);
	free(ing);
}

/*
 * A batch must lie in time where it can count: not ending further in the
 * future than the allowed clock skew (it would sit in the newest bucket,
 * never decay and satisfy any span), not older than max_age (retention
 * would drop it unseen, or its exactly-once record could be gone, so that
 * a very late retry would count twice). FDO_ETIME_RANGE with the reason.
 */
static int check_time(agg_ingest *ing, const Fdod__SampleBatch *b,
		      struct agg_result *res)
{
	uint64_t now = (uint64_t)time(NULL);
	if (ing->o.max_future && b->time_end > now + ing->o.max_future) {
		snprintf(res->message, sizeof res->message,
			 "batch ends at %llu, %llu s in the future (more than "
			 "--max-clock-skew %llu s): check the agent's clock",
			 (unsigned long long)b->time_end,
			 (unsigned long long)(b->time_end - now),
			 (unsigned long long)ing->o.max_future);
		return FDO_ETIME_RANGE;
	}
	if (ing->o.max_age && b->time_end + ing->o.max_age < now) {
		snprintf(res->message, sizeof res->message,
			 "batch ended at %llu, %llu s ago: older than %llu s "
			 "(the shorter of --retention and --dedup-ttl, less "
			 "--max-clock-skew) is not stored",
			 (unsigned long long)b->time_end,
			 (unsigned long long)(now - b->time_end),
			 (unsigned long long)ing->o.max_age);
		return FDO_ETIME_RANGE;
	}
	return FDO_OK;
}

/*
 * With mu held: would p overfill the ingest part of the memory budget?
 * Then 1, with the reason in why, *retry_ms the time merges take to free
 * half the part at their recent pace (0.2 to 10 s; 1 s before the first
 * merge), and the refusal counted. Else 0, and p is counted in the part.
 * A batch of any size gets into an empty pipeline.
 */
static int ingest_over_budget(agg_ingest *ing, struct prep *p, char *why,
			      size_t whylen, uint32_t *retry_ms)
{
	uint64_t cap = fdo_mem_cap(FDO_MEM_INGEST);
	uint64_t used = fdo_mem_used(FDO_MEM_INGEST);
	if (!cap || used + prep_bytes(p) <= cap || used <= ing->logged_mem) {
		prep_account(p);
		return 0;
	}
	double ms = 1000;
	if (ing->drain_bps > 0)
		ms = (double)(used > cap / 2 ? used - cap / 2 : 0) * 1000 /
		     ing->drain_bps;
	ms = ms < 200 ? 200 : ms > 10000 ? 10000 : ms;
	/* Spread the retries of many agents over a fifth more. */
	ms += (double)(prep_name_hash(p->b.agent) % 1000) * ms / 5000;
	*retry_ms = (uint32_t)ms;
	snprintf(why, whylen,
		 "the memory budget's ingest part is full (%llu of %llu "
		 "bytes of batches waiting to be merged, --memory-budget)",
		 (unsigned long long)used, (unsigned long long)cap);
	ingest_count_refusal(ing, FDO_EBUSY);
	ing->stats.memory_refused++;
	return 1;
}

void agg_ingest_batch(agg_ingest *ing, const Fdod__SampleBatch *batch,
		      struct agg_result *res)
{
	memset(res, 0, sizeof *res);
	struct prep *p = NULL;
	int rc = prep_build(batch, ing->limits, ing->o.bucket_seconds, &p, res);
	if (rc) {
		res->status = rc;
		if (!res->message[0])
			snprintf(res->message, sizeof res->message, "%s",
				 fdo_strerror(rc));
		res->samples_accepted = 0;
		pthread_mutex_lock(&ing->mu);
		ingest_count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
		return;
	}
	if ((rc = check_time(ing, batch, res))) {
		prep_release(p);
		res->status = rc;
		res->samples_accepted = 0;
		pthread_mutex_lock(&ing->mu);
		ingest_count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
		return;
	}
	p->res = res;
	pthread_mutex_lock(&ing->mu);
	uint32_t wait = 0;
	uint64_t now = fdo_now_ns();
	if (ing->o.rate_agent > 0)
		wait = ratelimit_take(&ing->rates,
				      prep_name_hash(p->b.agent) ^ 0xa6e7,
				      ing->o.rate_agent, 1, now);
	if (!wait && ing->o.rate_binary > 0)
		wait = ratelimit_take(&ing->rates,
				      prep_name_hash(p->b.binary) ^ 0xb1a7,
				      ing->o.rate_binary,
				      (double)res->samples_accepted, now);
	if (wait) {
		ingest_count_refusal(ing, FDO_EBUSY);
		ing->stats.rate_limited++;
		pthread_mutex_unlock(&ing->mu);
		prep_release(p);
		result_error(res, FDO_EBUSY, "rate limit reached");
		res->retry_after_ms = wait;
		return;
	}
	char why[200];
	if (growth_over(ing, p, why, sizeof why, &wait) ||
	    ingest_over_budget(ing, p, why, sizeof why, &wait)) {
		pthread_mutex_unlock(&ing->mu);
		prep_release(p);
		result_error(res, FDO_EBUSY, why);
		res->retry_after_ms = wait;
		return;
	}
	while (ing->queued >= ing->o.queue_max && !ing->stopping)
		pthread_cond_wait(&ing->space_cv, &ing->mu);
	if (ing->stopping) {
		ingest_count_refusal(ing, FDO_EBUSY);
		pthread_mutex_unlock(&ing->mu);
		prep_release(p);
		result_error(res, FDO_EBUSY, "fdod is shutting down");
		return;
	}
	p->next = NULL;
	if (ing->tail)
		ing->tail->next = p;
	else
		ing->head = p;
	ing->tail = p;
	ing->queued++;
	pthread_cond_signal(&ing->work_cv);
	/* Wait on our own result: once the writer hands p to the merger, p
	 * may be freed at any moment. */
	while (!res->done)
		pthread_cond_wait(&ing->done_cv, &ing->mu);
	pthread_mutex_unlock(&ing->mu);
	if (res->status || res->duplicate)
		prep_release(p); /* never handed over */
}

int agg_ingest_flush(agg_ingest *ing, unsigned timeout_ms)
{
	struct timespec ts;
	deadline_in(&ts, (uint64_t)timeout_ms * 1000000u);
	pthread_mutex_lock(&ing->mu);
	uint64_t target = ing->logged;
	int rc = 0;
	ing->flushers++;
	pthread_cond_signal(&ing->merge_cv); /* merge now, do not coalesce */
	while (ing->merged < target && rc == 0)
		rc = pthread_cond_timedwait(&ing->merged_cv, &ing->mu, &ts);
	ing->flushers--;
	int ok = ing->merged >= target;
	pthread_mutex_unlock(&ing->mu);
	return ok ? FDO_OK : FDO_EBUSY;
}

const double agg_latency_bounds[AGG_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

const struct wire_limits *agg_ingest_limits(const agg_ingest *ing)
{
	return ing->limits;
}

void agg_ingest_count_refusal(agg_ingest *ing, int status)
{
	pthread_mutex_lock(&ing->mu);
	ingest_count_refusal(ing, status);
	pthread_mutex_unlock(&ing->mu);
}

void agg_ingest_note_latency(agg_ingest *ing, double secs)
{
	pthread_mutex_lock(&ing->mu);
	for (int i = 0; i < AGG_LATENCY_BUCKETS; i++)
		if (secs <= agg_latency_bounds[i])
			ing->stats.latency_le[i]++;
	ing->stats.latency_count++;
	ing->stats.latency_sum += secs;
	pthread_mutex_unlock(&ing->mu);
}

void agg_ingest_stats(agg_ingest *ing, struct agg_ingest_stats *st)
{
	pthread_mutex_lock(&ing->mu);
	*st = ing->stats;
	st->queue_len = ing->queued;
	st->backlog_stacks = ing->backlog;
	st->unmerged = ing->logged - ing->merged;
	pthread_mutex_unlock(&ing->mu);
}
