/*
 * aggregator/ingest.c — from a SampleBatch to a durable Ack, and on into
 * the store.
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
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define MERGE_MAX_STACKS (2u << 20) /* stacks in one merge transaction */
#define BACKLOG_MAX_STACKS                                                     \
	(4u << 20) /* logged, unmerged: then writer waits                      \
		    */
/* A merge starts no sooner than this after the previous one started: see
 * merger_main. */
#define MERGE_INTERVAL_MS 200
#define SWEEP_INTERVAL_S  60
#define LOGGED_MAX	  (1u << 21) /* slots of the logged-stack set */

/* (agent, seq) of batches logged but not merged yet, with their content
 * digest (prep_digest). */
struct dnode {
	uint64_t agent_hash, seq, digest;
	struct dnode *next;
};

struct dedup {
	struct dnode **b;
	size_t nb, n;
};

static uint64_t agent_hash(const char *a)
{
	return store_buildid_hash((const uint8_t *)a, strlen(a));
}

static size_t dedup_slot(const struct dedup *d, uint64_t ah, uint64_t seq)
{
	return (size_t)((ah ^ (seq * 0x9e3779b97f4a7c15ull)) % d->nb);
}

/* The digest of the logged batch (agent, seq), or 0 when none is. */
static uint64_t dedup_find(const struct dedup *d, uint64_t ah, uint64_t seq)
{
	for (struct dnode *n = d->b[dedup_slot(d, ah, seq)]; n; n = n->next)
		if (n->agent_hash == ah && n->seq == seq)
			return n->digest;
	return 0;
}

static int dedup_add(struct dedup *d, uint64_t ah, uint64_t seq,
		     uint64_t digest)
{
	struct dnode *n = malloc(sizeof *n);
	if (!n)
		return FDO_ENOMEM;
	size_t s = dedup_slot(d, ah, seq);
	*n = (struct dnode){ah, seq, digest ? digest : 1, d->b[s]};
	d->b[s] = n;
	d->n++;
	return FDO_OK;
}

static void dedup_del(struct dedup *d, uint64_t ah, uint64_t seq)
{
	for (struct dnode **pp = &d->b[dedup_slot(d, ah, seq)]; *pp;
	     pp = &(*pp)->next)
		if ((*pp)->agent_hash == ah && (*pp)->seq == seq) {
			struct dnode *n = *pp;
			*pp = n->next;
			free(n);
			d->n--;
			return;
		}
}

struct agg_ingest {
	store *st;
	struct agg_ingest_opts o;
	const struct wire_limits *limits;
	store_wal *wal;
	pthread_mutex_t wal_mu;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;	  /* writer: queue not empty, or stopping */
	pthread_cond_t space_cv;  /* submitters: queue has room */
	pthread_cond_t done_cv;	  /* submitters: their group was logged */
	pthread_cond_t merge_cv;  /* merger: something was logged */
	pthread_cond_t merged_cv; /* flushers and the writer: a merge ended */
	struct prep *head, *tail; /* submitted, not logged */
	size_t queued;
	struct prep *mhead, *mtail; /* logged, not merged */
	size_t backlog;		    /* stacks in the merge queue */
	uint64_t logged, merged;    /* lognos */
	int merge_error;	    /* last merge failure, 0 after a success */
	int stopping, writer_done;
	unsigned flushers; /* agg_ingest_flush callers waiting */
	struct dedup dedup;
	struct agg_ingest_stats stats;
	pthread_t writer, merger;

	/* Writer only. */
	uint64_t *logged_stacks; /* lossy set of stack ids whose frames are
				    durable in the log or the store */
	size_t nlogged_stacks;
	struct fdo_buf rec;

	/* Merger only. */
	struct merge *merge;
	time_t last_sweep, last_expire;

	/* Rate limits (guarded by mu): token buckets by key hash. */
	struct rate_slot {
		uint64_t key;
		double tokens;
		uint64_t last_ns;
	} *rates;

	/* Growth limits. grow (guarded by mu): stacks each binary stored for
	 * the first time in the current hour, by name hash (a collision
	 * shares a slot: stricter, never looser). pend (merger only): each
	 * build-id's pending addresses as last counted plus those added
	 * since; a build-id at the limit is recounted, at most every
	 * PENDING_RECOUNT_S, and is "full" while over it. */
	struct grow_slot {
		uint64_t key, hour, count;
	} *grow;
	struct pend_est {
		uint32_t id;
		int full;
		uint64_t est;
		time_t checked;
	} *pend;
	size_t npend, cap_pend;
	struct fdo_map64 pend_index; /* id + 1 -> index in pend */
};

#define RATE_SLOTS	  4096
#define GROW_SLOTS	  4096
#define PENDING_RECOUNT_S 10

/*
 * Take cost tokens from key's bucket (refilled at rate per second, holding
 * at most one second's worth). Returns 0, or the milliseconds to wait.
 * Keys hash into a fixed table; a collision shares a bucket (stricter,
 * never looser). Called with mu held.
 */
static uint32_t rate_take(agg_ingest *ing, uint64_t key, double rate,
			  double cost, uint64_t now)
{
	struct rate_slot *r = &ing->rates[fdo_mix64(key) & (RATE_SLOTS - 1)];
	if (r->key != key) {
		r->key = key;
		r->tokens = rate;
		r->last_ns = now;
	}
	r->tokens += rate * (double)(now - r->last_ns) / 1e9;
	if (r->tokens > rate)
		r->tokens = rate;
	r->last_ns = now;
	if (r->tokens >= cost || (cost > rate && r->tokens >= rate)) {
		r->tokens -= cost;
		return 0;
	}
	double wait = (cost - r->tokens) / rate * 1000.0;
	return wait < 1 ? 1 : wait > 60000 ? 60000 : (uint32_t)wait;
}

static size_t ls_slot(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 40) & (LOGGED_MAX - 1);
}

static int logged_has(void *arg, uint64_t id)
{
	agg_ingest *ing = arg;
	for (size_t j = ls_slot(id); ing->logged_stacks[j];
	     j = (j + 1) & (LOGGED_MAX - 1))
		if (ing->logged_stacks[j] == id)
			return 1;
	return 0;
}

/* The set is far bigger than the caches and a batch's ids are random:
 * fetch all their slots at once rather than miss on each in turn. */
static void logged_prefetch(const agg_ingest *ing, const struct prep *p)
{
	for (size_t k = 0; k < p->nstacks; k++)
		if (p->stacks[k].n)
			__builtin_prefetch(
				&ing->logged_stacks[ls_slot(p->stacks[k].id)]);
}

static int with_frames(void *arg, uint64_t id)
{
	return !id || !logged_has(arg, id);
}

static void logged_add(agg_ingest *ing, uint64_t id)
{
	if (!id)
		return;
	if ((ing->nlogged_stacks + 1) * 4 > (size_t)LOGGED_MAX * 3) {
		memset(ing->logged_stacks, 0,
		       LOGGED_MAX * sizeof *ing->logged_stacks);
		ing->nlogged_stacks = 0;
	}
	size_t j = ls_slot(id);
	for (; ing->logged_stacks[j]; j = (j + 1) & (LOGGED_MAX - 1))
		if (ing->logged_stacks[j] == id)
			return;
	ing->logged_stacks[j] = id;
	ing->nlogged_stacks++;
}

const double agg_latency_bounds[AGG_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

/* Count a refused batch by its status. Call with ing->mu held. */
static void count_refusal(agg_ingest *ing, int status)
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
	if (!t || store_intern_string(t, p->agent, strlen(p->agent), 0, &agent))
		return NEW_BATCH;
	uint8_t key[STORE_BATCHES_KEY_SIZE];
	store_batches_key_encode(key, agent, p->seq);
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
		 (unsigned long long)p->seq, p->agent);
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
		uint64_t ah = agent_hash(p->agent);
		pthread_mutex_lock(&ing->mu);
		uint64_t logged = dedup_find(&ing->dedup, ah, p->seq);
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
		if (!rc)
			rc = prep_encode(p, &ing->rec);
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
		for (size_t k = 0; k < p->nstacks; k++)
			if (p->stacks[k].n)
				logged_add(ing, p->stacks[k].id);
		pthread_mutex_lock(&ing->mu);
		dedup_add(&ing->dedup, ah, p->seq, p->digest);
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
		ing->backlog += p->nstacks;
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
				count_refusal(ing, owners[i]->status);
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

static void maybe_sweep(agg_ingest *ing)
{
	time_t now = time(NULL);
	if (now - ing->last_sweep < SWEEP_INTERVAL_S)
		return;
	ing->last_sweep = now;
	uint64_t cutoff = (uint64_t)now > ing->o.dedup_ttl
				  ? (uint64_t)now - ing->o.dedup_ttl
				  : 0;
	size_t deleted = 0;
	int rc = merge_sweep(ing->st, cutoff, &deleted);
	if (rc)
		fdo_warn("ingest: expiring batch records: %s",
			 fdo_strerror(rc));
	else if (deleted)
		fdo_info("ingest: expired %zu batch records", deleted);
}

/*
 * Retention and the store budget, in the merger's idle time: buckets past
 * the retention age go; then, while the live data exceeds the budget, the
 * oldest bucket goes, with a log line.
 */
static void maybe_expire(agg_ingest *ing)
{
	time_t now = time(NULL);
	uint64_t every = ing->o.housekeeping ? ing->o.housekeeping : 600;
	if ((!ing->o.retention && !ing->o.store_budget) ||
	    (uint64_t)(now - ing->last_expire) < every)
		return;
	ing->last_expire = now;
	size_t deleted, total = 0;
	uint32_t oldest = UINT32_MAX;
	int rc = FDO_OK;
	if (ing->o.retention && (uint64_t)now > ing->o.retention) {
		uint32_t cutoff = (uint32_t)((uint64_t)now - ing->o.retention);
		for (int i = 0; i < 1000; i++) {
			if ((rc = merge_expire(ing->st, cutoff, &deleted,
					       &oldest)) ||
			    !deleted)
				break;
			total += deleted;
		}
		if (total)
			fdo_info(
				"retention: dropped %zu counts older than %llu s",
				total, (unsigned long long)ing->o.retention);
		pthread_mutex_lock(&ing->mu);
		ing->stats.expired += total;
		pthread_mutex_unlock(&ing->mu);
	}
	for (int round = 0; !rc && ing->o.store_budget && round < 1000;
	     round++) {
		store_txn *t;
		uint64_t live = 0;
		if ((rc = store_txn_begin(ing->st, 0, &t)))
			break;
		rc = store_live_bytes(t, &live);
		store_txn_abort(t);
		if (rc || live <= ing->o.store_budget)
			break;
		if ((rc = merge_expire(ing->st, 0, &deleted, &oldest)) ||
		    oldest == UINT32_MAX)
			break;
		uint32_t cutoff = oldest + ing->o.bucket_seconds;
		total = 0;
		do {
			if ((rc = merge_expire(ing->st, cutoff, &deleted,
					       &oldest)))
				break;
			total += deleted;
		} while (deleted);
		fdo_warn("store over its budget (%llu > %llu live bytes): "
			 "dropped the oldest bucket (%u, %zu counts)",
			 (unsigned long long)live,
			 (unsigned long long)ing->o.store_budget,
			 cutoff - ing->o.bucket_seconds, total);
		pthread_mutex_lock(&ing->mu);
		ing->stats.budget_dropped += total;
		pthread_mutex_unlock(&ing->mu);
	}
	if (rc)
		fdo_warn("retention: %s", fdo_strerror(rc));
}

/* ------------------------------------------------------ growth limits -- */

/* Count the stacks each binary stored for the first time. Call with mu
 * held. */
static void note_growth(agg_ingest *ing, const struct merge_growth *g)
{
	uint64_t hour = (uint64_t)time(NULL) / 3600;
	for (size_t i = 0; i < g->nbin; i++) {
		struct grow_slot *s =
			&ing->grow[fdo_mix64(g->bin_hash[i]) & (GROW_SLOTS - 1)];
		if (s->key != g->bin_hash[i] || s->hour != hour) {
			s->key = g->bin_hash[i];
			s->hour = hour;
			s->count = 0;
		}
		s->count += g->bin_new[i];
	}
	ing->stats.pending_dropped += g->dropped;
}

/* Pending addresses of build-id id in the store (a range count). */
static uint64_t pending_count(agg_ingest *ing, uint32_t id, char *hex)
{
	store_txn *t;
	uint64_t n = 0;
	hex[0] = 0;
	if (store_txn_begin(ing->st, 0, &t))
		return 0;
	struct store_buildid rec;
	if (store_buildid_get(t, id, &rec) == FDO_OK)
		fdo_hex_encode(rec.build_id, rec.build_id_len, hex);
	store_cursor *c;
	if (store_cursor_open(t, STORE_PENDING, &c) == FDO_OK) {
		uint8_t start[STORE_ADDR_KEY_SIZE];
		struct store_frame f = {id, 0};
		store_addr_key_encode(start, &f);
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v,
					   &vl);
		while (rc == FDO_OK && !store_addr_key_decode(k, kl, &f) &&
		       f.build_id == id) {
			n++;
			rc = store_cursor_next(c, &k, &kl, &v, &vl);
		}
		store_cursor_close(c);
	}
	store_txn_abort(t);
	return n;
}

/* Recount e; mark it full (or not) and tell the merge. Merger only. */
static void pending_check(agg_ingest *ing, struct pend_est *e)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	e->est = pending_count(ing, e->id, hex);
	e->checked = time(NULL);
	int full = e->est >= ing->o.max_pending;
	if (full == e->full)
		return;
	if (merge_pending_full(ing->merge, e->id, full))
		return;
	e->full = full;
	pthread_mutex_lock(&ing->mu);
	ing->stats.pending_full += full ? 1 : (uint64_t)-1;
	pthread_mutex_unlock(&ing->mu);
	if (full)
		fdo_warn("ingest: build-id %s has %llu addresses waiting for "
			 "symbols (--max-pending %llu): its new addresses are "
			 "not queued for symbolization until it drops below; "
			 "upload its symbols",
			 hex, (unsigned long long)e->est,
			 (unsigned long long)ing->o.max_pending);
	else
		fdo_info("ingest: build-id %s is below --max-pending again "
			 "(%llu addresses waiting)",
			 hex, (unsigned long long)e->est);
}

/* The addresses a merge made pending, per build-id. Merger only. */
static void pending_growth(agg_ingest *ing, const struct merge_growth *g)
{
	if (!ing->o.max_pending)
		return;
	for (size_t i = 0; i < g->npending; i++) {
		uint32_t at;
		int found;
		if (fdo_map64_put(&ing->pend_index, (uint64_t)g->pending[i] + 1,
				  (uint32_t)ing->npend, &at, &found))
			return;
		if (!found) {
			if (fdo_grow(ing->pend, ing->cap_pend, ing->npend + 1))
				return; /* the index points past: ignored */
			ing->pend[ing->npend++] =
				(struct pend_est){g->pending[i], 0, 0, 0};
			/* Count what the store holds the first time. */
			ing->pend[at].est = (uint64_t)-1;
		}
		if (at >= ing->npend)
			continue;
		struct pend_est *e = &ing->pend[at];
		e->est = e->est == (uint64_t)-1 ? ing->o.max_pending
						: e->est + g->pending_added[i];
		/* est is an upper bound (resolved addresses are not taken
		 * off): only a recount can tell the limit is reached. */
		if (e->est >= ing->o.max_pending && !e->full)
			pending_check(ing, e);
	}
}

/* Build-ids over the limit: recounted now and then (symbols resolve
 * them). Merger only, when idle. */
static void pending_recheck(agg_ingest *ing)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < ing->npend; i++)
		if (ing->pend[i].full &&
		    now - ing->pend[i].checked >= PENDING_RECOUNT_S)
			pending_check(ing, &ing->pend[i]);
}

/* *ts = CLOCK_REALTIME now + ns, for pthread_cond_timedwait. */
static void deadline_in(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	uint64_t nsec = (uint64_t)ts->tv_nsec + ns % 1000000000u;
	ts->tv_sec += (time_t)(ns / 1000000000u + nsec / 1000000000u);
	ts->tv_nsec = (long)(nsec % 1000000000u);
}

static void *merger_main(void *arg)
{
	agg_ingest *ing = arg;
	struct prep **batch = NULL;
	size_t cap = 0;
	uint64_t next_merge = 0; /* fdo_now_ns() */
	for (;;) {
		pthread_mutex_lock(&ing->mu);
		while (!ing->mhead && !ing->writer_done) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ing->merge_cv, &ing->mu, &ts);
			if (!ing->mhead && !ing->writer_done) {
				pthread_mutex_unlock(&ing->mu);
				maybe_sweep(ing);
				maybe_expire(ing);
				pending_recheck(ing);
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
		 * few batches dirties (copies and writes back) about one leaf
		 * page of counts per stack, while a merge of many shares its
		 * pages and its two fsyncs. Merging at once after each WAL
		 * commit (2.5 batches a merge) held ingest to ~620k Stacks/s
		 * with the merger thread a whole core. Waiting ends early for
		 * a flusher, a backlog past half its bound, or shutdown.
		 */
		while (ing->mhead && !ing->writer_done && !ing->flushers &&
		       ing->backlog < BACKLOG_MAX_STACKS / 2 &&
		       fdo_now_ns() < next_merge) {
			struct timespec ts;
			deadline_in(&ts, next_merge - fdo_now_ns());
			pthread_cond_timedwait(&ing->merge_cv, &ing->mu, &ts);
		}
		next_merge = fdo_now_ns() + MERGE_INTERVAL_MS * 1000000ull;
		size_t n = 0, stacks = 0;
		for (struct prep *p = ing->mhead;
		     p && (n == 0 || stacks + p->nstacks <= MERGE_MAX_STACKS);
		     p = p->next) {
			if (fdo_grow(batch, cap, n + 1)) {
				fdo_error("ingest: merger out of memory");
				abort();
			}
			batch[n++] = p;
			stacks += p->nstacks;
		}
		pthread_mutex_unlock(&ing->mu);

		const uint32_t *pending;
		size_t npending;
		int rc = merge_apply(ing->merge, ing->st, batch, n,
				     (uint64_t)time(NULL), &pending, &npending);
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
		note_growth(ing, &growth);
		struct store_wal_pos applied = batch[n - 1]->wal_end;
		for (size_t i = 0; i < n; i++) {
			struct prep *p = ing->mhead;
			ing->mhead = p->next;
			dedup_del(&ing->dedup, agent_hash(p->agent), p->seq);
			ing->backlog -= p->nstacks;
			ing->merged = p->logno;
		}
		if (!ing->mhead)
			ing->mtail = NULL;
		pthread_cond_broadcast(&ing->merged_cv);
		pthread_mutex_unlock(&ing->mu);
		pending_growth(ing, &growth);
		for (size_t i = 0; i < n; i++)
			prep_free(batch[i]);
		pthread_mutex_lock(&ing->wal_mu);
		store_wal_trim(ing->wal, applied);
		pthread_mutex_unlock(&ing->wal_mu);
		if (npending && ing->o.pending_cb)
			ing->o.pending_cb(ing->o.pending_arg, pending,
					  npending);
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
	p->wal_end = end;
	p->logno = ++ing->logged;
	if (dedup_add(&ing->dedup, agent_hash(p->agent), p->seq, p->digest)) {
		prep_free(p);
		return FDO_ENOMEM;
	}
	for (size_t k = 0; k < p->nstacks; k++)
		if (p->stacks[k].n)
			logged_add(ing, p->stacks[k].id);
	if (ing->mtail)
		ing->mtail->next = p;
	else
		ing->mhead = p;
	ing->mtail = p;
	ing->backlog += p->nstacks;
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
		prep_free(p);
	}
	ing->mhead = ing->mtail = NULL;
	for (size_t i = 0; i < ing->dedup.nb; i++)
		for (struct dnode *d = ing->dedup.b[i], *n; d; d = n) {
			n = d->next;
			free(d);
		}
	free(ing->dedup.b);
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
	ing->dedup.nb = 65536;
	ing->dedup.b = calloc(ing->dedup.nb, sizeof *ing->dedup.b);
	ing->logged_stacks = calloc(LOGGED_MAX, sizeof *ing->logged_stacks);
	ing->rates = calloc(RATE_SLOTS, sizeof *ing->rates);
	ing->grow = calloc(GROW_SLOTS, sizeof *ing->grow);
	int rc = FDO_ENOMEM;
	if (!ing->dedup.b || !ing->logged_stacks || !ing->rates || !ing->grow ||
	    merge_create(&ing->merge))
		goto fail;
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
	free(ing->logged_stacks);
	free(ing->rates);
	free(ing->grow);
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
	free_queues(ing);
	store_wal_close(ing->wal);
	merge_destroy(ing->merge);
	free(ing->logged_stacks);
	free(ing->rates);
	free(ing->grow);
	free(ing->pend);
	fdo_map64_fini(&ing->pend_index);
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
		count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
		return;
	}
	if ((rc = check_time(ing, batch, res))) {
		prep_free(p);
		res->status = rc;
		res->samples_accepted = 0;
		pthread_mutex_lock(&ing->mu);
		count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
		return;
	}
	p->res = res;
	pthread_mutex_lock(&ing->mu);
	uint32_t wait = 0;
	uint64_t now = fdo_now_ns();
	if (ing->o.rate_agent > 0)
		wait = rate_take(ing, agent_hash(p->agent) ^ 0xa6e7,
				 ing->o.rate_agent, 1, now);
	if (!wait && ing->o.rate_binary > 0)
		wait = rate_take(ing, agent_hash(p->binary) ^ 0xb1a7,
				 ing->o.rate_binary,
				 (double)res->samples_accepted, now);
	if (wait) {
		count_refusal(ing, FDO_EBUSY);
		ing->stats.rate_limited++;
		pthread_mutex_unlock(&ing->mu);
		prep_free(p);
		result_error(res, FDO_EBUSY, "rate limit reached");
		res->retry_after_ms = wait;
		return;
	}
	if (ing->o.max_new_stacks && p->nstacks) {
		uint64_t h = prep_name_hash(p->binary);
		uint64_t secs = (uint64_t)time(NULL);
		const struct grow_slot *g =
			&ing->grow[fdo_mix64(h) & (GROW_SLOTS - 1)];
		if (g->key == h && g->hour == secs / 3600 &&
		    g->count >= ing->o.max_new_stacks) {
			count_refusal(ing, FDO_EBUSY);
			ing->stats.growth_limited++;
			uint64_t stored = g->count;
			pthread_mutex_unlock(&ing->mu);
			char why[200];
			snprintf(why, sizeof why,
				 "binary '%.64s' stored %llu new stacks this "
				 "hour (--max-new-stacks %llu)",
				 p->binary, (unsigned long long)stored,
				 (unsigned long long)ing->o.max_new_stacks);
			prep_free(p);
			result_error(res, FDO_EBUSY, why);
			res->retry_after_ms =
				(uint32_t)((3600 - secs % 3600) * 1000);
			return;
		}
	}
	while (ing->queued >= ing->o.queue_max && !ing->stopping)
		pthread_cond_wait(&ing->space_cv, &ing->mu);
	if (ing->stopping) {
		count_refusal(ing, FDO_EBUSY);
		pthread_mutex_unlock(&ing->mu);
		prep_free(p);
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
		prep_free(p); /* never handed over */
}

/* Each receiving thread decodes into an arena of its own, kept from
 * message to message and freed when the thread ends; without one (no
 * memory, no key) it decodes with malloc. */
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_key_ok;

static void arena_drop(void *a)
{
	wire_arena_free(a);
}

static void arena_key_init(void)
{
	arena_key_ok = pthread_key_create(&arena_key, arena_drop) == 0;
}

static struct wire_arena *thread_arena(void)
{
	pthread_once(&arena_once, arena_key_init);
	if (!arena_key_ok)
		return NULL;
	struct wire_arena *a = pthread_getspecific(arena_key);
	if (!a && (a = wire_arena_new()) && pthread_setspecific(arena_key, a)) {
		wire_arena_free(a);
		a = NULL;
	}
	return a;
}

void agg_ingest_message(agg_ingest *ing, const uint8_t *msg, size_t len,
			struct fdo_buf *reply)
{
	agg_ingest_message_from(ing, msg, len, NULL, reply, NULL);
}

/*
 * The authorize hook on the identity fields of an encoded batch (peeked,
 * not decoded). *checked = 1 when the hook ran and allowed it; 0 when the
 * top level does not parse (decoding then reports why). Returns the
 * hook's refusal, or FDO_OK.
 */
static int authorize_head(agg_ingest *ing, const uint8_t *msg, size_t len,
			  const char *peer, struct agg_result *res,
			  int *checked)
{
	struct wire_batch_head h;
	*checked = 0;
	if (wire_batch_peek(msg, len, ing->limits, &h))
		return FDO_OK;
	/* NUL-terminated copies; longer fields than these are refused by
	 * validation anyway, and a token never is that long. */
	char agent[260], host[260], binary[260], token[1024];
	const struct {
		struct wire_str *in;
		char *out;
		size_t cap;
	} f[] = {{&h.agent_id, agent, sizeof agent},
		 {&h.host, host, sizeof host},
		 {&h.binary, binary, sizeof binary},
		 {&h.auth_token, token, sizeof token}};
	for (size_t i = 0; i < 4; i++) {
		size_t n = f[i].in->len < f[i].cap - 1 ? f[i].in->len
						       : f[i].cap - 1;
		memcpy(f[i].out, f[i].in->p ? f[i].in->p : "", n);
		f[i].out[n] = 0;
	}
	Fdod__SampleBatch stub = FDOD__SAMPLE_BATCH__INIT;
	stub.agent_id = agent;
	stub.host = host;
	stub.binary = binary;
	stub.auth_token = token;
	int rc = ing->o.authorize(ing->o.authorize_arg, &stub, peer,
				  res->message, sizeof res->message);
	if (!rc)
		*checked = 1;
	volatile char *t = token; /* no copy of a token outlives the check */
	for (size_t i = 0; i < sizeof token; i++)
		t[i] = 0;
	return rc;
}

void agg_ingest_message_from(agg_ingest *ing, const uint8_t *msg, size_t len,
			     const char *peer, struct fdo_buf *reply,
			     int *authorized)
{
	if (authorized)
		*authorized = 0;
	struct agg_result res = {0};
	Fdod__SampleBatch *b = NULL;
	uint64_t t0 = fdo_now_ns();
	Fdod__Ack ack = FDOD__ACK__INIT;
	Fdod__SamplingAdvice advice = FDOD__SAMPLING_ADVICE__INIT;
	/* The token first, from the message's top-level fields, before the
	 * rest is decoded (and copied): memory spent on a batch without a
	 * valid token stays the message itself. */
	int rc = FDO_OK, checked = 0;
	struct wire_arena *arena = NULL;
	if (ing->o.authorize) {
		rc = authorize_head(ing, msg, len, peer, &res, &checked);
		if (rc) {
			res.status = rc;
			pthread_mutex_lock(&ing->mu);
			count_refusal(ing, rc);
			pthread_mutex_unlock(&ing->mu);
			goto reply;
		}
	}
	arena = thread_arena();
	rc = arena ? wire_batch_decode_in(arena, msg, len, ing->limits, &b)
		   : wire_batch_decode(msg, len, ing->limits, &b);
	if (rc) {
		res.status = rc;
		if (rc == FDO_ELIMIT)
			snprintf(
				res.message, sizeof res.message,
				"batch too large: %zu bytes (limits: %zu bytes "
				"encoded, %zu bytes decoded); split it",
				len, ing->limits->max_message_bytes,
				ing->limits->max_decoded_bytes);
		else if (rc == FDO_EINVAL)
			snprintf(res.message, sizeof res.message,
				 "SampleBatch refused: a string (agent, host, "
				 "binary, event, label or path) holds a NUL "
				 "byte");
		else
			snprintf(res.message, sizeof res.message,
				 "malformed SampleBatch (%zu bytes): %s", len,
				 fdo_strerror(rc));
		pthread_mutex_lock(&ing->mu);
		count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
	} else if (ing->o.authorize && !checked &&
		   (rc = ing->o.authorize(ing->o.authorize_arg, b, peer,
					  res.message, sizeof res.message))) {
		res.status = rc;
		ack.seq = b->seq;
		pthread_mutex_lock(&ing->mu);
		count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
	} else {
		if (authorized)
			*authorized = 1;
		agg_ingest_batch(ing, b, &res);
		ack.seq = b->seq;
		if (ing->o.advise &&
		    ing->o.advise(ing->o.advise_arg, b, &res, &advice))
			ack.sampling = &advice;
	}
reply:
	ack.status = (uint32_t)res.status;
	ack.message = res.message;
	ack.duplicate = res.duplicate;
	ack.samples_accepted = res.samples_accepted;
	ack.samples_unmapped = res.samples_unmapped;
	ack.frames_unmapped = res.frames_unmapped;
	ack.branches_accepted = res.branches_accepted;
	ack.branches_unmapped = res.branches_unmapped;
	ack.schema_version = WIRE_SCHEMA_VERSION;
	if (res.retry_after_ms)
		ack.retry_after_ms = res.retry_after_ms;
	else if (res.status == FDO_EBUSY || res.status == FDO_ESTORE_FULL ||
		 res.status == FDO_ENOSPACE || res.status == FDO_EIO)
		ack.retry_after_ms = 1000;
	uint8_t *out;
	size_t olen;
	if (wire_ack_encode(&ack, &out, &olen) == FDO_OK) {
		fdo_buf_append(reply, out, olen);
		free(out);
	}
	if (arena)
		wire_arena_reset(arena);
	else
		wire_batch_free(b);
	double secs = (double)(fdo_now_ns() - t0) / 1e9;
	pthread_mutex_lock(&ing->mu);
	for (int i = 0; i < AGG_LATENCY_BUCKETS; i++)
		if (secs <= agg_latency_bounds[i])
			ing->stats.latency_le[i]++;
	ing->stats.latency_count++;
	ing->stats.latency_sum += secs;
	pthread_mutex_unlock(&ing->mu);
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

void agg_ingest_stats(agg_ingest *ing, struct agg_ingest_stats *st)
{
	pthread_mutex_lock(&ing->mu);
	*st = ing->stats;
	st->queue_len = ing->queued;
	st->backlog_stacks = ing->backlog;
	st->unmerged = ing->logged - ing->merged;
	pthread_mutex_unlock(&ing->mu);
}
