/*
 * aggregator/chsink.c — the merger's copy of its counts into ClickHouse
 * (aggregator/chsink.h, docs/clickhouse.md "The merger's sink").
 *
 * Why an outbox rather than sending from the WAL: a merge records its
 * batches as counted (table batches) and the WAL position in LMDB, so a
 * replay of the WAL after a crash skips them and could not rebuild the
 * block. The block is fixed instead, as a file, before the transaction
 * that counts it commits; its bytes never change afterwards, so a resend
 * is byte-identical (what replicated tables' insert deduplication needs),
 * and the marker row inside it answers "was it taken?" on any table.
 *
 * Outbox file SEQ.blk (16 hex digits), little-endian:
 *   0   8  magic "FDOCHOB1"
 *   8   8  sequence number (as the name): the last + 1, or the wall
 *           clock in ms when that is larger
 *   16  4  pieces
 *   then per piece: 1 kind (1 stacks, 2 counts), 4 UTC day of a counts
 *   piece (0 for stacks), 8 body length, 4 CRC-32C of the body, body
 *   (RowBinary rows of stacks_local or counts_local).
 * A counts piece holds one day (one partition: one part, atomic) and ends
 * with its marker row.
 */
#include "aggregator/chsink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"
#include "storage/backend.h"
#include "storage/clickhouse.h"

#define MAGIC	       "FDOCHOB1"
#define HDR_SIZE       20
#define PIECE_HDR      17
#define DAY	       86400u
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000

struct chsink {
	ch_client *ch;
	char dir[4096];
	char node[40]; /* labels of the marker rows: "node=" + 32 hex */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started, stopping;
	uint64_t staged; /* last sequence number committed */
	uint64_t cur;	 /* staged by the transaction going on; 0: none */
	uint64_t cur_bytes;
	size_t piece_rows; /* rows of a counts piece at most (PIECE_ROWS_MAX) */
	uint64_t doubt_upto; /* files found at start: looked up first */
	/* the outbox: sequence numbers and sizes, ascending */
	uint64_t *seqs, *sizes;
	size_t n, cap, cap2;
	uint64_t bytes;
	int schema_ok;
	uint64_t sent, skipped, failures;
	char last_err[512];
	uint64_t full_logged; /* fdo_now_ns of the last "at its bound" */
	uint64_t fail_logged; /* ... of the last failure logged */
	/* retention (chsink_set_retention): seconds kept, 0 forever; every
	 * how many seconds; when next (unix seconds). Sender thread only,
	 * but for the first two, set under mu. */
	uint64_t retention, every, next_drop;
};

static chsink *global_sink;

void chsink_set_global(chsink *s)
{
	global_sink = s;
}

chsink *chsink_global(void)
{
	return global_sink;
}

static void le_put(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void file_path(const chsink *s, uint64_t seq, const char *suffix,
		      char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016" PRIx64 ".blk%s", s->dir, seq, suffix);
}

/* ------------------------------------------------------------- stage -- */

void chsink_file_begin(struct fdo_buf *f, uint64_t seq)
{
	uint8_t hdr[HDR_SIZE] = {0};
	memcpy(hdr, MAGIC, 8);
	le_put(hdr + 8, seq, 8);
	fdo_buf_append(f, hdr, sizeof hdr);
}

int chsink_file_piece(struct fdo_buf *f, int kind, uint32_t day,
		      const void *body, size_t len)
{
	uint8_t h[PIECE_HDR];
	h[0] = (uint8_t)kind;
	le_put(h + 1, day, 4);
	le_put(h + 5, len, 8);
	le_put(h + 13, fdo_crc32c(0, body, len), 4);
	fdo_buf_append(f, h, sizeof h);
	fdo_buf_append(f, body, len);
	if (f->oom || f->len < HDR_SIZE)
		return FDO_ENOMEM;
	uint8_t *n = (uint8_t *)f->data + 16;
	le_put(n, le_get(n, 4) + 1, 4);
	return FDO_OK;
}

/* The stacks piece: every candidate stack (stored now or before: a copy
 * more collapses in ReplacingMergeTree) with its raw build-ids. */
static int stacks_piece(struct prep *const *preps, const struct entries *c,
			struct fdo_buf *body)
{
	struct ch_frame f[STORE_STACK_MAX_FRAMES];
	for (size_t i = 0; i < c->n; i++) {
		const struct entry *e = &c->v[i];
		if (i && c->v[i - 1].k[0] == e->k[0])
			continue;
		const struct prep *p = preps[e->k[1]];
		const struct store_walstack *st = &p->b.stacks[e->k[2]];
		size_t n = st->n > STORE_STACK_MAX_FRAMES
				   ? STORE_STACK_MAX_FRAMES
				   : st->n;
		for (size_t k = 0; k < n; k++) {
			const struct store_walframe *wf =
				&p->b.frames[st->first + k];
			f[k].build_id = p->b.maps[wf->map].build_id;
			f[k].build_id_len = p->b.maps[wf->map].build_id_len;
			f[k].offset = wf->offset;
		}
		ch_stack_row(body, st->id, f, n);
	}
	return body->oom ? FDO_ENOMEM : FDO_OK;
}

/* A name of the store's dictionary, as a C string (malloc'd). */
static int name_of(store_txn *t, enum store_dict d, uint32_t id, char **out)
{
	const void *p;
	size_t n;
	int rc = store_intern_name(t, d, id, &p, &n);
	if (rc)
		return rc;
	if (memchr(p, 0, n))
		return FDO_ECORRUPT;
	if (!(*out = malloc(n + 1)))
		return FDO_ENOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	return FDO_OK;
}

struct block {
	struct backend_group *g;
	size_t ng, capg;
	struct backend_delta *d;
	size_t nd, capd;
	char **names; /* owned: binary and labels of each group */
	size_t nnames, capn;
};

static void block_fini(struct block *b)
{
	for (size_t i = 0; i < b->nnames; i++)
		free(b->names[i]);
	free(b->names);
	free(b->g);
	free(b->d);
}

static int keep_name(struct block *b, char *name)
{
	if (fdo_grow(b->names, b->capn, b->nnames + 1)) {
		free(name);
		return FDO_ENOMEM;
	}
	b->names[b->nnames++] = name;
	return FDO_OK;
}

/* The counts as a block of names: one group per (binary, label set,
 * bucket), counts sorted by those ids, so names are looked up once per
 * run of a binary and label set. */
static int counts_block(store_txn *t, const struct entries *e, struct block *b)
{
	const char *bin = NULL, *lab = NULL;
	uint32_t bin_id = 0, lab_id = 0;
	int rc = FDO_OK;
	for (size_t i = 0; i < e->n && !rc; i++) {
		const struct entry *x = &e->v[i];
		uint32_t bi = (uint32_t)(x->k[0] >> 32), li = (uint32_t)x->k[0];
		if (!bin || bi != bin_id) {
			char *nm;
			if ((rc = name_of(t, STORE_DICT_BINARIES, bi, &nm)) ||
			    (rc = keep_name(b, nm)))
				break;
			bin = nm;
			bin_id = bi;
			lab = NULL;
		}
		if (!lab || li != lab_id) {
			char *nm;
			if ((rc = name_of(t, STORE_DICT_LABELSETS, li, &nm)) ||
			    (rc = keep_name(b, nm)))
				break;
			lab = nm;
			lab_id = li;
		}
		struct backend_group *last = b->ng ? &b->g[b->ng - 1] : NULL;
		if (!last || last->binary != bin || last->labels != lab ||
		    last->bucket != (uint32_t)x->k[1]) {
			if (fdo_grow(b->g, b->capg, b->ng + 1)) {
				rc = FDO_ENOMEM;
				break;
			}
			b->g[b->ng++] = (struct backend_group){
				bin, lab, (uint32_t)x->k[1]};
		}
		if (!x->samples && !x->weight)
			continue; /* nothing to add (and refused by the seam) */
		if (fdo_grow(b->d, b->capd, b->nd + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		b->d[b->nd++] = (struct backend_delta){
			(uint32_t)(b->ng - 1), x->k[2], x->weight, x->samples};
	}
	return rc;
}

static int delta_day_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The most rows of one counts piece. ClickHouse cuts an INSERT into
 * parts every max_insert_block_size rows (1,048,576 by default, 18.16 as
 * now) or min_insert_block_size_bytes (256 MiB): a piece must stay one
 * part, or a failed request leaves its first part stored without the
 * marker, and the piece, sent again, counts those rows twice. */
#define PIECE_ROWS_MAX	(256u << 10)
#define PIECE_BYTES_MAX (64u << 20)

/* Rows per piece of b: PIECE_ROWS_MAX, fewer when its longest row would
 * pass PIECE_BYTES_MAX (a row: the two names with their lengths, the
 * bucket, the stack, the weight, the samples). */
static size_t piece_rows(const chsink *s, const struct block *b)
{
	size_t longest = 0;
	for (size_t i = 0; i < b->ng; i++) {
		size_t n = strlen(b->g[i].binary) + strlen(b->g[i].labels);
		if (n > longest)
			longest = n;
	}
	size_t row = longest + 2 * 10 + 4 + 8 + 16 + 8;
	size_t n = PIECE_BYTES_MAX / row, most = s->piece_rows;
	return n < most ? (n ? n : 1) : most;
}

static int same_key(const struct backend_delta *a,
		    const struct backend_delta *b)
{
	return a->group == b->group && a->stack == b->stack;
}

/* The counts pieces of a merge: per UTC day, PIECE_ROWS_MAX rows at most
 * each, every piece ending with its marker row, whose bucket is the
 * day's start plus the piece's index in the day (send_piece counts them
 * in the same order). */
static int counts_pieces(const chsink *s, uint64_t seq, struct block *b,
			 struct fdo_buf *file)
{
	uint32_t *days = malloc((b->ng ? b->ng : 1) * sizeof *days);
	struct backend_delta *sub = malloc((b->nd ? b->nd : 1) * sizeof *sub);
	int rc = days && sub ? FDO_OK : FDO_ENOMEM;
	size_t nd = 0;
	for (size_t i = 0; !rc && i < b->ng; i++)
		days[nd++] = b->g[i].bucket / DAY;
	if (!rc)
		qsort(days, nd, sizeof *days, delta_day_cmp);
	char err[256];
	for (size_t i = 0; !rc && i < nd; i++) {
		if (i && days[i] == days[i - 1])
			continue;
		size_t n = 0;
		for (size_t k = 0; k < b->nd; k++)
			if (b->g[b->d[k].group].bucket / DAY == days[i])
				sub[n++] = b->d[k];
		size_t per = piece_rows(s, b);
		for (size_t at = 0, k = 0; !rc && (at < n || !k); k++) {
			/* per rows: deltas of one key (adjacent, sorted)
			 * are summed into one row, and never cut apart. */
			size_t m = 0, rows = 0;
			while (at + m < n &&
			       (rows < per ||
				same_key(&sub[at + m - 1], &sub[at + m]))) {
				if (!m ||
				    !same_key(&sub[at + m - 1], &sub[at + m]))
					rows++;
				m++;
			}
			struct backend_block blk = {b->g, b->ng, sub + at, m};
			struct fdo_buf body;
			fdo_buf_init(&body);
			rc = ch_counts_encode(&blk, &body, err, sizeof err);
			if (rc)
				fdo_error("ingest: the ClickHouse block of a "
					  "merge: %s",
					  err);
			ch_count_row(&body, "", s->node,
				     days[i] * DAY + (uint32_t)k, seq, 0, 1);
			if (!rc)
				rc = chsink_file_piece(file, CHSINK_COUNTS,
						       days[i], body.data,
						       body.len);
			fdo_buf_fini(&body);
			at += m;
		}
	}
	free(days);
	free(sub);
	return rc;
}

static int write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == ENOSPC ? FDO_ENOSPACE : FDO_EIO;
	int rc = store_write_all(fd, p, n);
	if (!rc && fdatasync(fd))
		rc = FDO_EIO;
	close(fd);
	return rc;
}

int chsink_stage(chsink *s, store_txn *t, struct prep *const *preps,
		 const struct entries *counts, const struct entries *stacks)
{
	if (s->cur) {
		/* The file of a transaction that did not commit (store_write
		 * runs the merge again after growing the map, or the merge
		 * failed): its counts are in no committed merge. */
		char path[4200];
		file_path(s, s->cur, "", path, sizeof path);
		unlink(path);
		s->cur = 0;
	}
	if (!counts->n)
		return FDO_OK;
	/* Never below the wall clock in ms: a store restored from a backup
	 * (an older "ch.staged") does not reuse the number of a block whose
	 * marker ClickHouse has, which a lookup would take for this one. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ms =
		(uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	pthread_mutex_lock(&s->mu);
	uint64_t seq = s->staged + 1 > ms ? s->staged + 1 : ms;
	pthread_mutex_unlock(&s->mu);
	struct block b = {0};
	struct fdo_buf file, body;
	fdo_buf_init(&file);
	fdo_buf_init(&body);
	chsink_file_begin(&file, seq);
	int rc = stacks_piece(preps, stacks, &body);
	if (!rc && body.len)
		rc = chsink_file_piece(&file, CHSINK_STACKS, 0, body.data,
				       body.len);
	if (!rc)
		rc = counts_block(t, counts, &b);
	if (!rc)
		rc = counts_pieces(s, seq, &b, &file);
	if (!rc && file.oom)
		rc = FDO_ENOMEM;
	uint64_t held = file.cap + body.cap + b.capg * sizeof *b.g +
			b.capd * sizeof *b.d;
	fdo_mem_take(FDO_MEM_MERGE, held);
	if (!rc) {
		char tmp[4200], path[4200];
		file_path(s, seq, ".tmp", tmp, sizeof tmp);
		file_path(s, seq, "", path, sizeof path);
		/* Written whole and synced under its name before the
		 * transaction that counts it commits: a crash before the
		 * commit leaves a file past "ch.staged", deleted at start. */
		rc = write_file(tmp, file.data, file.len);
		if (!rc && rename(tmp, path))
			rc = FDO_EIO;
		if (!rc) {
			/* Named from here on: whatever fails next, the next
			 * stage (the transaction again, or the next merge)
			 * removes it, or the start does (past "ch.staged"). */
			s->cur = seq;
			s->cur_bytes = file.len;
			rc = store_fsync_dir(s->dir);
		}
		if (rc)
			fdo_error("ingest: writing the ClickHouse outbox file "
				  "%s: %s",
				  path, fdo_strerror(rc));
	}
	if (!rc)
		rc = backend_meta_staged_put(t, seq);
	/* The merge's part holds the block while it is built (the merge
	 * sets the part whole after its commit). */
	fdo_mem_give(FDO_MEM_MERGE, held);
	block_fini(&b);
	fdo_buf_fini(&file);
	fdo_buf_fini(&body);
	return rc;
}

static int push_seq(chsink *s, uint64_t seq, uint64_t size)
{
	if (fdo_grow(s->seqs, s->cap, s->n + 1) ||
	    fdo_grow(s->sizes, s->cap2, s->n + 1))
		return FDO_ENOMEM;
	s->seqs[s->n] = seq;
	s->sizes[s->n++] = size;
	s->bytes += size;
	return FDO_OK;
}

void chsink_committed(chsink *s)
{
	if (!s->cur)
		return;
	pthread_mutex_lock(&s->mu);
	s->staged = s->cur;
	/* Out of memory here only delays the file to the next start. */
	if (push_seq(s, s->cur, s->cur_bytes))
		fdo_error(
			"ingest: ClickHouse outbox: out of memory; file %016" PRIx64
			" is sent after a restart",
			s->cur);
	s->cur = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int chsink_room(chsink *s)
{
	pthread_mutex_lock(&s->mu);
	int full = s->n >= CHSINK_MAX_FILES || s->bytes >= CHSINK_MAX_BYTES;
	uint64_t now = fdo_now_ns();
	if (full && now - s->full_logged > 10 * 1000000000ull) {
		s->full_logged = now;
		fdo_warn("ingest: ClickHouse has not taken %zu merges (%llu "
			 "bytes in the outbox; last error: %s): merges wait, "
			 "batches stay in the write-ahead log",
			 s->n, (unsigned long long)s->bytes,
			 s->last_err[0] ? s->last_err : "none");
	}
	pthread_mutex_unlock(&s->mu);
	/* Busy, not a transport error: the writer refuses batches with the
	 * merge's error once the backlog passes its bound, and agents send
	 * a batch refused as busy again (after the Ack's retry-after);
	 * one refused for any other reason they drop. */
	return full ? FDO_EBUSY : FDO_OK;
}

/* -------------------------------------------------------------- send -- */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? FDO_ENOT_FOUND : FDO_EIO;
	struct stat st;
	int rc = FDO_OK;
	if (fstat(fd, &st) || st.st_size < HDR_SIZE) {
		close(fd);
		return FDO_ECORRUPT;
	}
	uint8_t *p = malloc((size_t)st.st_size);
	size_t got = 0;
	if (!p)
		rc = FDO_ENOMEM;
	while (!rc && got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = FDO_EIO;
		else
			got += (size_t)r;
	}
	close(fd);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*len = got;
	return FDO_OK;
}

int chsink_file_decode(const uint8_t *p, size_t len, uint64_t seq,
		       chsink_piece_fn fn, void *arg, char *err, size_t errlen)
{
	if (len < HDR_SIZE || memcmp(p, MAGIC, 8) || le_get(p + 8, 8) != seq)
		return backend_fail(
			err, errlen, FDO_ECORRUPT,
			"not an outbox file of sequence %016" PRIx64, seq);
	uint32_t npieces = (uint32_t)le_get(p + 16, 4);
	size_t at = HDR_SIZE;
	/* Checked whole before anything is handed out (sent). */
	for (uint32_t i = 0; i < npieces; i++) {
		if (len - at < PIECE_HDR)
			return backend_fail(err, errlen, FDO_ECORRUPT,
					    "piece %u truncated", i);
		uint64_t n = le_get(p + at + 5, 8);
		if (n > len - at - PIECE_HDR ||
		    fdo_crc32c(0, p + at + PIECE_HDR, n) !=
			    le_get(p + at + 13, 4) ||
		    (p[at] != CHSINK_STACKS && p[at] != CHSINK_COUNTS) ||
		    (p[at] == CHSINK_STACKS && le_get(p + at + 1, 4)))
			return backend_fail(err, errlen, FDO_ECORRUPT,
					    "piece %u does not check", i);
		at += PIECE_HDR + n;
	}
	if (at != len)
		return backend_fail(err, errlen, FDO_ECORRUPT,
				    "bytes after the last piece");
	at = HDR_SIZE;
	int rc = FDO_OK;
	for (uint32_t i = 0; i < npieces && !rc; i++) {
		uint64_t n = le_get(p + at + 5, 8);
		rc = fn(arg, p[at], (uint32_t)le_get(p + at + 1, 4),
			p + at + PIECE_HDR, n);
		at += PIECE_HDR + n;
	}
	return rc;
}

struct sending {
	chsink *s;
	uint64_t seq;
	int doubt;
	char *err;
	size_t errlen;
	uint32_t day, k; /* the last counts piece's day, its index in it */
	int counted;	 /* a counts piece came */
};

/* One piece to ClickHouse; doubt: a counts piece is looked up first (it
 * may have been taken already). */
static int send_piece(void *arg, int kind, uint32_t day, const uint8_t *body,
		      size_t n)
{
	struct sending *x = arg;
	chsink *s = x->s;
	/* Stopping: the rest of the file waits for the next start (its
	 * pieces looked up first), rather than a request of up to 30 s
	 * each holding the stop. */
	pthread_mutex_lock(&s->mu);
	int stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	if (stopping)
		return backend_fail(x->err, x->errlen, FDO_EBUSY,
				    "fdod is stopping");
	if (kind == CHSINK_STACKS) {
		ch_set_query_id(s->ch, NULL);
		return ch_insert(s->ch, CH_STACKS, body, n, x->err, x->errlen);
	}
	/* The piece's index in its day, as counts_pieces wrote them: its
	 * marker's bucket is the day's start plus it. */
	x->k = x->counted && x->day == day ? x->k + 1 : 0;
	x->day = day;
	x->counted = 1;
	/* One id per piece, for its insert and its lookups: ClickHouse
	 * refuses the lookup while an insert given up on (a timeout) still
	 * runs, and the retry while either does. */
	char qid[96];
	snprintf(qid, sizeof qid, "fdod-%s-%016" PRIx64 "-%u-%u", s->node + 5,
		 x->seq, day, x->k);
	ch_set_query_id(s->ch, qid);
	uint64_t have = 0;
	int rc = x->doubt ? ch_count_rows(s->ch, "", s->node, day * DAY + x->k,
					  x->seq, &have, x->err, x->errlen)
			  : FDO_OK;
	/* An answer that does not decode is ClickHouse's fault, not the
	 * file's (FDO_ECORRUPT sets a file aside). */
	if (rc)
		return rc == FDO_ECORRUPT ? FDO_ESTORE : rc;
	if (!have)
		return ch_insert(s->ch, CH_COUNTS, body, n, x->err, x->errlen);
	fdo_info("ingest: ClickHouse has the counts of merge %016" PRIx64
		 " (day %u, piece %u) already: not sent again",
		 x->seq, day, x->k);
	pthread_mutex_lock(&s->mu);
	s->skipped++;
	pthread_mutex_unlock(&s->mu);
	return FDO_OK;
}

static int send_file(chsink *s, uint64_t seq, const uint8_t *p, size_t len,
		     int doubt, char *err, size_t errlen)
{
	struct sending x = {s, seq, doubt, err, errlen, 0, 0, 0};
	int rc = chsink_file_decode(p, len, seq, send_piece, &x, err, errlen);
	ch_set_query_id(s->ch, NULL);
	return rc;
}

/* With mu held: wait ms, or until signalled (a commit, the retention
 * set, stopping). */
static void wait_ms(chsink *s, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000ull;
	ts.tv_sec += (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* With mu held: wait the whole of ms unless stopping. A backoff must
 * hold while merges commit (each commit signals cv), or the sender
 * retries a failing server at the merge rate. */
static void wait_ms_whole(chsink *s, unsigned ms)
{
	uint64_t end = fdo_now_ns() + (uint64_t)ms * 1000000ull, now;
	while (!s->stopping && (now = fdo_now_ns()) < end)
		wait_ms(s, (unsigned)((end - now + 999999) / 1000000));
}

void chsink_set_piece_rows(chsink *s, size_t rows)
{
	s->piece_rows = rows && rows < PIECE_ROWS_MAX ? rows : PIECE_ROWS_MAX;
}

void chsink_set_retention(chsink *s, uint64_t seconds, uint64_t every)
{
	pthread_mutex_lock(&s->mu);
	s->retention = seconds;
	s->every = every ? every : 600;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* With mu held: ClickHouse's retention when due. Whole UTC days of
 * counts_local that end at or before now - retention, on this node's
 * server (each shard's nodes drop theirs). */
static void retention_step(chsink *s)
{
	uint64_t now = (uint64_t)time(NULL), keep = s->retention;
	if (!keep || keep >= now || now < s->next_drop)
		return;
	pthread_mutex_unlock(&s->mu);
	uint32_t dropped = 0;
	char err[512];
	int rc = ch_drop_before(s->ch, (uint32_t)(now - keep), &dropped, err,
				sizeof err);
	pthread_mutex_lock(&s->mu);
	if (rc) {
		fdo_warn("ingest: ClickHouse retention: %s; again in a minute",
			 err);
		s->next_drop = now + 60;
		return;
	}
	if (dropped)
		fdo_info("ingest: ClickHouse retention: %u days of counts "
			 "dropped (older than --retention)",
			 dropped);
	s->next_drop = now + s->every;
}

static void *sender_main(void *arg)
{
	chsink *s = arg;
	unsigned backoff = 0;
	uint64_t failing_seq = 0;
	char err[512];
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		retention_step(s);
		if (!s->n) {
			/* Idle: until a commit, or the next retention step
			 * (a --housekeeping under a minute too). */
			uint64_t now = (uint64_t)time(NULL);
			unsigned ms = 60 * 1000;
			if (s->retention && s->next_drop > now &&
			    s->next_drop - now < 60)
				ms = (unsigned)(s->next_drop - now) * 1000;
			if (!s->stopping)
				wait_ms(s, ms ? ms : 1000);
			continue;
		}
		uint64_t seq = s->seqs[0], size = s->sizes[0];
		int doubt = seq <= s->doubt_upto || seq == failing_seq;
		pthread_mutex_unlock(&s->mu);
		int rc = FDO_OK;
		if (!s->schema_ok &&
		    !(rc = ch_create_schema(s->ch, err, sizeof err)))
			s->schema_ok = 1;
		char path[4200];
		file_path(s, seq, "", path, sizeof path);
		uint8_t *p = NULL;
		size_t len = 0;
		int bad = 0;
		if (!rc) {
			fdo_mem_take(FDO_MEM_INGEST, size);
			rc = read_file(path, &p, &len);
			if (rc)
				snprintf(err, sizeof err, "reading %.300s: %s",
					 path, fdo_strerror(rc));
			else
				rc = send_file(s, seq, p, len, doubt, err,
					       sizeof err);
			/* Gone, or not an outbox file; other errors (out
			 * of memory, I/O) are tried again. */
			bad = rc == FDO_ENOT_FOUND || rc == FDO_ECORRUPT;
			free(p);
			fdo_mem_give(FDO_MEM_INGEST, size);
		}
		if (bad) {
			/* Never sent whole: kept aside for a person to look
			 * at; LMDB holds its counts. */
			char aside[4210];
			snprintf(aside, sizeof aside, "%s.bad", path);
			fdo_error("ingest: ClickHouse outbox file %s: %s; "
				  "moved to %s, its counts are not in "
				  "ClickHouse",
				  path, err, aside);
			rename(path, aside);
			rc = FDO_OK;
		}
		pthread_mutex_lock(&s->mu);
		if (rc) {
			s->failures++;
			uint64_t now = fdo_now_ns();
			if (!s->stopping &&
			    (!s->last_err[0] ||
			     now - s->fail_logged > 60 * 1000000000ull)) {
				s->fail_logged = now;
				fdo_warn("ingest: sending a merge to "
					 "ClickHouse: %s; retrying",
					 err);
			}
			snprintf(s->last_err, sizeof s->last_err, "%s", err);
			failing_seq = seq;
			/* A new connection may meet a new server: the
			 * schema again. */
			s->schema_ok = 0;
			backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
			if (backoff > BACKOFF_MAX_MS)
				backoff = BACKOFF_MAX_MS;
			wait_ms_whole(s, backoff);
			continue;
		}
		if (s->last_err[0])
			fdo_info("ingest: ClickHouse takes merges again");
		s->last_err[0] = 0;
		backoff = 0;
		if (!bad) {
			unlink(path);
			s->sent++;
		}
		s->bytes -= s->sizes[0];
		memmove(s->seqs, s->seqs + 1, (s->n - 1) * sizeof *s->seqs);
		memmove(s->sizes, s->sizes + 1, (s->n - 1) * sizeof *s->sizes);
		s->n--;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* --------------------------------------------------------------- open -- */

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The outbox as the store left it: files of committed merges kept, the
 * others (and leftovers of a write) deleted. */
static int scan_outbox(chsink *s)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return FDO_EIO;
	struct dirent *e;
	uint64_t *found = NULL;
	size_t n = 0, cap = 0;
	int rc = FDO_OK;
	while (!rc && (e = readdir(d))) {
		const char *nm = e->d_name;
		size_t len = strlen(nm);
		if (len < 17 || nm[0] == '.')
			continue;
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", s->dir, nm);
		char *end;
		uint64_t seq = strtoull(nm, &end, 16);
		if (end != nm + 16 || strcmp(end, ".blk") || seq > s->staged) {
			if (!strcmp(end, ".blk.bad"))
				continue;
			unlink(path);
			continue;
		}
		if (fdo_grow(found, cap, n + 1))
			rc = FDO_ENOMEM;
		else
			found[n++] = seq;
	}
	closedir(d);
	if (!rc && n)
		qsort(found, n, sizeof *found, seq_cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		char path[4200];
		struct stat st;
		file_path(s, found[i], "", path, sizeof path);
		if (stat(path, &st))
			continue;
		rc = push_seq(s, found[i], (uint64_t)st.st_size);
	}
	s->doubt_upto = n ? found[n - 1] : 0;
	if (n)
		fdo_info("ingest: %zu merges of the ClickHouse outbox to send "
			 "(each looked up in ClickHouse first)",
			 n);
	free(found);
	return rc;
}

struct ids {
	char node[40];
	uint64_t staged;
};

static int ids_get(store_txn *t, void *arg)
{
	struct ids *x = arg;
	uint8_t id[BACKEND_NODE_ID_SIZE];
	int rc = backend_meta_staged_get(t, &x->staged);
	if (!rc)
		rc = backend_meta_node(t, id);
	if (rc)
		return rc;
	memcpy(x->node, "node=", 5);
	for (int i = 0; i < BACKEND_NODE_ID_SIZE; i++)
		snprintf(x->node + 5 + 2 * i, 3, "%02x", id[i]);
	return FDO_OK;
}

int chsink_open(const char *url, store *st, const char *dir, chsink **out,
		char *err, size_t errlen)
{
	chsink *s = calloc(1, sizeof *s);
	if (!s)
		return backend_fail(err, errlen, FDO_ENOMEM, "out of memory");
	int rc = ch_open(url, NULL, &s->ch, err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->piece_rows = PIECE_ROWS_MAX;
	struct ids ids = {{0}, 0};
	if (snprintf(s->dir, sizeof s->dir, "%s/clickhouse-outbox", dir) >=
	    (int)sizeof s->dir)
		rc = backend_fail(err, errlen, FDO_EINVAL, "%s: path too long",
				  dir);
	else if (mkdir(s->dir, 0700) && errno != EEXIST)
		rc = backend_fail(err, errlen, FDO_EIO, "cannot create %s: %s",
				  s->dir, strerror(errno));
	else if ((rc = store_write(st, ids_get, &ids)))
		backend_fail(err, errlen, rc,
			     "the store's ClickHouse node id: %s",
			     fdo_strerror(rc));
	if (!rc) {
		memcpy(s->node, ids.node, sizeof s->node);
		s->staged = ids.staged;
		if ((rc = scan_outbox(s)))
			backend_fail(err, errlen, rc, "reading %s: %s", s->dir,
				     fdo_strerror(rc));
	}
	if (!rc) {
		if (pthread_create(&s->thread, NULL, sender_main, s))
			rc = backend_fail(err, errlen, FDO_ENOMEM,
					  "cannot start the sender");
		else
			s->started = 1;
	}
	if (rc) {
		chsink_close(s);
		return rc;
	}
	*out = s;
	return FDO_OK;
}

void chsink_close(chsink *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	if (global_sink == s)
		global_sink = NULL;
	ch_close(s->ch);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->seqs);
	free(s->sizes);
	free(s);
}

void chsink_stats(chsink *s, struct chsink_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = (struct chsink_stats){s->n, s->bytes, s->sent, s->skipped,
				    s->failures};
	pthread_mutex_unlock(&s->mu);
}
