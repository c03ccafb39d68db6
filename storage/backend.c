/*
 * storage/backend.c — the storage seam (storage/backend.h): the block
 * checks and sums both backends share, and the LMDB backend.
 */
#include "storage/backend.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "storage/clickhouse.h"

/* Longest binary name or label set text a block may carry. */
#define BACKEND_NAME_MAX 4096

#define fail backend_fail

int backend_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int delta_cmp(const void *a, const void *b)
{
	const struct backend_delta *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

int backend_block_sum(const struct backend_block *b, struct backend_delta **out,
		      size_t *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < b->ngroups; i++) {
		const struct backend_group *g = &b->groups[i];
		if (!g->binary || !g->labels || !g->binary[0] ||
		    strnlen(g->binary, BACKEND_NAME_MAX + 1) >
			    BACKEND_NAME_MAX ||
		    strnlen(g->labels, BACKEND_NAME_MAX + 1) > BACKEND_NAME_MAX)
			return fail(err, errlen, FDO_EINVAL,
				    "block group %zu: binary name or label set "
				    "missing or longer than %d bytes",
				    i, BACKEND_NAME_MAX);
	}
	if (b->ndeltas == 0)
		return FDO_OK;
	struct backend_delta *d = malloc(b->ndeltas * sizeof *d);
	if (!d)
		return fail(err, errlen, FDO_ENOMEM, "out of memory");
	for (size_t i = 0; i < b->ndeltas; i++) {
		if (b->deltas[i].group >= b->ngroups) {
			free(d);
			return fail(err, errlen, FDO_EINVAL,
				    "block delta %zu: group %u of %zu", i,
				    b->deltas[i].group, b->ngroups);
		}
		/* A merge never writes one, and SummingMergeTree deletes a
		 * row whose sums are all zero where LMDB keeps it: the two
		 * backends would read back differently. */
		if (b->deltas[i].samples == 0 && b->deltas[i].weight == 0) {
			free(d);
			return fail(err, errlen, FDO_EINVAL,
				    "block delta %zu: zero weight and samples",
				    i);
		}
		d[i] = b->deltas[i];
	}
	qsort(d, b->ndeltas, sizeof *d, delta_cmp);
	size_t k = 0;
	for (size_t i = 0; i < b->ndeltas; i++) {
		if (k > 0 && d[k - 1].group == d[i].group &&
		    d[k - 1].stack == d[i].stack) {
			if (wire_weight_add(&d[k - 1].weight, d[i].weight)) {
				free(d);
				return fail(err, errlen, FDO_ELIMIT,
					    "block: a weight passes 2^128");
			}
			if (d[i].samples > UINT64_MAX - d[k - 1].samples) {
				free(d);
				return fail(err, errlen, FDO_ELIMIT,
					    "block: a sample count passes "
					    "2^64");
			}
			d[k - 1].samples += d[i].samples;
		} else {
			d[k++] = d[i];
		}
	}
	*out = d;
	*n = k;
	return FDO_OK;
}

int backend_read_check(const struct backend_read *r, char *err, size_t errlen)
{
	if (!r->binary || !r->binary[0])
		return fail(err, errlen, FDO_EINVAL, "read: no binary");
	if (r->nlabels == 0 || r->nlabels > BACKEND_READ_LABELS_MAX)
		return fail(err, errlen, FDO_EINVAL,
			    "read: %zu label sets (1 to %d)", r->nlabels,
			    BACKEND_READ_LABELS_MAX);
	/* ClickHouse's indexOf names only the first of equal label sets,
	 * LMDB would read both: one of each, as a profile asks. */
	for (size_t i = 0; i < r->nlabels; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(r->labels[i] ? r->labels[i] : "",
				    r->labels[j] ? r->labels[j] : ""))
				return fail(err, errlen, FDO_EINVAL,
					    "read: label sets %zu and %zu are "
					    "the same",
					    j, i);
	return FDO_OK;
}

/* --------------------------------------------------------------- LMDB -- */

struct lmdb_append {
	const struct backend_block *b;
	const struct backend_delta *d;
	size_t n;
};

/* One run per group of the block, its totals row changed with it: what a
 * merge writes (aggregator/merge.c flush_runs). */
static int lmdb_append_txn(store_txn *t, void *arg)
{
	const struct lmdb_append *a = arg;
	store_run_writer *w;
	int rc = store_run_writer_open(t, &w);
	if (rc)
		return rc;
	for (size_t i = 0, j; i < a->n && !rc; i = j) {
		const struct backend_group *g = &a->b->groups[a->d[i].group];
		uint32_t bin, ls;
		uint64_t run;
		if ((rc = store_intern_binary(t, g->binary, strlen(g->binary),
					      1, &bin)) ||
		    (rc = store_intern_labelset(t, g->labels, strlen(g->labels),
						1, &ls)) ||
		    (rc = store_run_id_next(t, &run)))
			break;
		struct store_run_key rk = {bin, ls, g->bucket, run, 0};
		store_run_writer_start(w, &rk);
		struct store_totals sum = {0};
		for (j = i; j < a->n && a->d[j].group == a->d[i].group; j++) {
			struct store_count_entry e = {
				a->d[j].stack, a->d[j].weight, a->d[j].samples};
			if (wire_weight_add(&sum.weight, e.weight)) {
				rc = FDO_ELIMIT;
				break;
			}
			sum.samples += e.samples;
			if ((rc = store_run_writer_add(w, &e)))
				break;
		}
		if (rc || (rc = store_run_writer_finish(w)))
			break;
		sum.entries = store_run_writer_entries(w);
		struct store_totals_key tk = {bin, ls, g->bucket};
		rc = store_totals_add(t, &tk, &sum, 0);
	}
	store_run_writer_close(w);
	return rc;
}

static int lmdb_append(void *self, const struct backend_block *b, char *err,
		       size_t errlen)
{
	struct lmdb_append a = {.b = b};
	struct backend_delta *d;
	int rc = backend_block_sum(b, &d, &a.n, err, errlen);
	if (rc || a.n == 0) {
		free(d);
		return rc;
	}
	a.d = d;
	rc = store_write(self, lmdb_append_txn, &a);
	free(d);
	if (rc)
		return fail(err, errlen, rc, "LMDB append: %s",
			    fdo_strerror(rc));
	return FDO_OK;
}

static int lmdb_read_txn(store_txn *t, const struct backend_read *r,
			 backend_sum_fn fn, void *arg)
{
	uint32_t bin;
	int rc = store_intern_binary(t, r->binary, strlen(r->binary), 0, &bin);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	for (size_t i = 0; i < r->nlabels && !rc; i++) {
		const char *l = r->labels[i] ? r->labels[i] : "";
		uint32_t ls;
		rc = store_intern_labelset(t, l, strlen(l), 0, &ls);
		if (rc == FDO_ENOT_FOUND) {
			rc = FDO_OK;
			continue;
		}
		if (rc)
			break;
		uint8_t prefix[8] = {(uint8_t)(bin >> 24), (uint8_t)(bin >> 16),
				     (uint8_t)(bin >> 8),  (uint8_t)bin,
				     (uint8_t)(ls >> 24),  (uint8_t)(ls >> 16),
				     (uint8_t)(ls >> 8),   (uint8_t)ls};
		store_counts_iter *it;
		if ((rc = store_counts_iter_open(t, prefix, sizeof prefix,
						 &it)))
			break;
		struct store_counts_key k;
		struct store_weight w;
		while ((rc = store_counts_iter_next(it, &k, &w)) == FDO_OK) {
			if (k.bucket < r->from || k.bucket >= r->to)
				continue;
			struct backend_sum s = {(uint32_t)i, k.bucket, k.stack,
						w.weight, w.samples};
			if ((rc = fn(arg, &s)))
				break;
		}
		if (rc == FDO_ENOT_FOUND)
			rc = FDO_OK;
		store_counts_iter_close(it);
	}
	return rc;
}

static int lmdb_read_sums(void *self, const struct backend_read *r,
			  backend_sum_fn fn, void *arg, char *err,
			  size_t errlen)
{
	int rc = backend_read_check(r, err, errlen);
	if (rc)
		return rc;
	store_txn *t;
	rc = store_txn_begin(self, 0, &t);
	if (rc)
		return fail(err, errlen, rc, "LMDB read: %s", fdo_strerror(rc));
	rc = lmdb_read_txn(t, r, fn, arg);
	store_txn_abort(t);
	if (rc)
		return fail(err, errlen, rc, "LMDB read: %s", fdo_strerror(rc));
	return FDO_OK;
}

static void lmdb_close(void *self)
{
	(void)self; /* the store is the caller's */
}

static const struct backend_ops lmdb_ops = {
	.name = "lmdb",
	.append = lmdb_append,
	.read_sums = lmdb_read_sums,
	.close = lmdb_close,
};

int backend_lmdb(store *st, struct backend *out)
{
	out->ops = &lmdb_ops;
	out->self = st;
	return FDO_OK;
}

/* --------------------------------------------------------- ClickHouse -- */

static int ch_append_op(void *self, const struct backend_block *b, char *err,
			size_t errlen)
{
	return ch_append(self, b, err, errlen);
}

static int ch_read_op(void *self, const struct backend_read *r,
		      backend_sum_fn fn, void *arg, char *err, size_t errlen)
{
	int rc = backend_read_check(r, err, errlen);
	return rc ? rc : ch_read_sums(self, r, fn, arg, err, errlen);
}

static void ch_close_op(void *self)
{
	ch_close(self);
}

static const struct backend_ops ch_ops = {
	.name = "clickhouse",
	.append = ch_append_op,
	.read_sums = ch_read_op,
	.close = ch_close_op,
};

int backend_open(const char *spec, struct backend *out, char *err,
		 size_t errlen)
{
	out->ops = NULL;
	out->self = NULL;
	if (!spec || strncmp(spec, "clickhouse://", 13) != 0)
		return fail(err, errlen, FDO_EINVAL,
			    "store must be clickhouse://HOST:PORT/DB"
			    "[?cluster=NAME]");
	ch_client *c;
	int rc = ch_open(spec, NULL, &c, err, errlen);
	if (rc)
		return rc;
	if ((rc = ch_create_schema(c, err, errlen))) {
		ch_close(c);
		return rc;
	}
	out->ops = &ch_ops;
	out->self = c;
	return FDO_OK;
}

void backend_close(struct backend *b)
{
	if (b && b->ops)
		b->ops->close(b->self);
	if (b) {
		b->ops = NULL;
		b->self = NULL;
	}
}

/* ------------------------------------------- fdod --store bookkeeping -- */

#define META_NODE   "ch.node"
#define META_STAGED "ch.staged"

int backend_meta_node(store_txn *t, uint8_t id[BACKEND_NODE_ID_SIZE])
{
	const void *v;
	size_t vl;
	int rc =
		store_get(t, STORE_META, META_NODE, strlen(META_NODE), &v, &vl);
	if (rc == FDO_OK) {
		if (vl != BACKEND_NODE_ID_SIZE)
			return FDO_ECORRUPT;
		memcpy(id, v, BACKEND_NODE_ID_SIZE);
		return FDO_OK;
	}
	if (rc != FDO_ENOT_FOUND)
		return rc;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, id, BACKEND_NODE_ID_SIZE) : -1;
	if (fd >= 0)
		close(fd);
	if (got != BACKEND_NODE_ID_SIZE)
		return FDO_EIO;
	return store_put(t, STORE_META, META_NODE, strlen(META_NODE), id,
			 BACKEND_NODE_ID_SIZE, 0);
}

int backend_meta_staged_get(store_txn *t, uint64_t *seq)
{
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_META, META_STAGED, strlen(META_STAGED), &v,
			   &vl);
	*seq = 0;
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	if (vl != 8)
		return FDO_ECORRUPT;
	*seq = fdo_get_be64(v);
	return FDO_OK;
}

int backend_meta_staged_put(store_txn *t, uint64_t seq)
{
	uint8_t v[8];
	fdo_put_be64(v, seq);
	return store_put(t, STORE_META, META_STAGED, strlen(META_STAGED), v,
			 sizeof v, 0);
}
