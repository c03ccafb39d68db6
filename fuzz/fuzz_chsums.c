/*
 * fuzz/fuzz_chsums.c — a ClickHouse server's answer to a read of
 * per-bucket sums (storage/clickhouse.c ch_sums_decode): RowBinary rows
 * from outside the process. The first input byte is the number of label
 * sets the read asked for; the rest is the answer, copied to a buffer of
 * exactly its length so a read past the end is caught.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - the only error is FDO_ECORRUPT, and it comes exactly when the
 *     answer is not whole rows, a label set is out of range or the rows
 *     are not in strictly increasing (label, bucket, stack) order;
 *   - an accepted answer yields one row per CH_SUM_ROW_SIZE bytes, and
 *     re-encoding the rows gives back the answer's bytes;
 *   - a callback's nonzero return stops the decoder and is returned;
 *   - the same bytes as retention's list of days (ch_days_decode): only
 *     FDO_ECORRUPT or FDO_ELIMIT refuse it, and an accepted list is
 *     strictly increasing, below the bound, as long as the bytes say;
 *   - the same bytes as the profile builder's label sets
 *     (ch_labels_decode): only FDO_ECORRUPT, FDO_ELIMIT (or FDO_ENOMEM)
 *     refuse them; accepted strings are strictly increasing, without a
 *     NUL, and their bytes fit in the answer;
 *   - the same bytes as its stacks (ch_stacks_decode): only FDO_ECORRUPT
 *     (or FDO_ENOMEM); accepted rows have strictly increasing ids, 1 to
 *     STORE_STACK_MAX_FRAMES frames each, build-ids of 1 to
 *     FDO_BUILD_ID_MAX bytes inside the answer; a callback's code stops
 *     it and comes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fuzz/fuzz.h"
#include "storage/clickhouse.h"
#include "storage/storage.h"

struct seen {
	uint8_t *out; /* the rows re-encoded */
	size_t n, stop_at;
};

static void le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int row(void *arg, const struct backend_sum *s)
{
	struct seen *x = arg;
	if (x->n == x->stop_at)
		return FDO_EEXISTS; /* any code the decoder never returns */
	uint8_t *p = x->out + x->n * CH_SUM_ROW_SIZE;
	le(p, s->label, 4);
	le(p + 4, s->bucket, 4);
	le(p + 8, s->stack, 8);
	le(p + 16, (uint64_t)s->weight, 8);
	le(p + 24, (uint64_t)(s->weight >> 64), 8);
	le(p + 32, s->samples, 8);
	x->n++;
	return FDO_OK;
}

static uint64_t get(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The decoder's promise, computed independently. */
static int valid(const uint8_t *p, size_t len, size_t nlabels)
{
	if (len % CH_SUM_ROW_SIZE)
		return 0;
	for (size_t at = 0; at < len; at += CH_SUM_ROW_SIZE) {
		if (get(p + at, 4) >= nlabels)
			return 0;
		if (at == 0)
			continue;
		const uint8_t *a = p + at - CH_SUM_ROW_SIZE, *b = p + at;
		uint64_t ka[3] = {get(a, 4), get(a + 4, 4), get(a + 8, 8)};
		uint64_t kb[3] = {get(b, 4), get(b + 4, 4), get(b + 8, 8)};
		int less = 0;
		for (int i = 0; i < 3; i++)
			if (ka[i] != kb[i]) {
				less = ka[i] < kb[i];
				break;
			}
		if (!less)
			return 0;
	}
	return 1;
}

struct stk {
	const uint8_t *p;
	size_t len, n, stop_at;
	uint64_t prev;
};

static int stack_row(void *arg, uint64_t stack, const struct ch_frame *f,
		     size_t n)
{
	struct stk *x = arg;
	if (x->n == x->stop_at)
		return FDO_EEXISTS;
	FUZZ_CHECK(x->n == 0 || x->prev < stack);
	FUZZ_CHECK(n >= 1 && n <= STORE_STACK_MAX_FRAMES);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(f[i].build_id_len >= 1 &&
			   f[i].build_id_len <= FDO_BUILD_ID_MAX &&
			   f[i].build_id >= x->p &&
			   f[i].build_id + f[i].build_id_len <= x->p + x->len);
	x->prev = stack;
	x->n++;
	return FDO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t nlabels = data[0], len = size - 1;
	uint8_t *p = malloc(len ? len : 1), *out = malloc(len ? len : 1);
	if (!p || !out) {
		free(p);
		free(out);
		return 0;
	}
	memcpy(p, data + 1, len);
	char err[256];
	struct seen x = {out, 0, SIZE_MAX};
	int rc = ch_sums_decode(p, len, nlabels, row, &x, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ECORRUPT);
	FUZZ_CHECK((rc == FDO_OK) == valid(p, len, nlabels));
	if (rc == FDO_OK) {
		FUZZ_CHECK(x.n == len / CH_SUM_ROW_SIZE);
		FUZZ_CHECK(len == 0 || memcmp(out, p, len) == 0);
		if (x.n > 0) {
			/* Stopped at the last row: its code comes back. */
			struct seen y = {out, 0, x.n - 1};
			FUZZ_CHECK(ch_sums_decode(p, len, nlabels, row, &y, err,
						  sizeof err) == FDO_EEXISTS);
			FUZZ_CHECK(y.n == x.n - 1);
		}
	}
	uint32_t days[64];
	size_t nd;
	uint32_t below = nlabels ? UINT32_MAX / nlabels : 0;
	rc = ch_days_decode(p, len, below, days, 64, &nd, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ECORRUPT || rc == FDO_ELIMIT);
	FUZZ_CHECK((rc == FDO_ELIMIT) == (len % 4 == 0 && len / 4 > 64));
	if (rc == FDO_OK) {
		FUZZ_CHECK(nd == len / 4);
		for (size_t i = 0; i < nd; i++)
			FUZZ_CHECK(days[i] < below &&
				   (i == 0 || days[i - 1] < days[i]) &&
				   days[i] == get(p + 4 * i, 4));
	}
	char **labels;
	size_t nl;
	rc = ch_labels_decode(p, len, &labels, &nl, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ECORRUPT || rc == FDO_ELIMIT ||
		   rc == FDO_ENOMEM);
	if (rc == FDO_OK) {
		size_t bytes = 0;
		for (size_t i = 0; i < nl; i++) {
			bytes += strlen(labels[i]) + 1; /* + its length */
			FUZZ_CHECK(i == 0 ||
				   strcmp(labels[i - 1], labels[i]) < 0);
		}
		FUZZ_CHECK(bytes <= len && nl <= BACKEND_READ_LABELS_MAX);
		ch_labels_free(labels, nl);
	} else {
		FUZZ_CHECK(labels == NULL && nl == 0);
	}
	struct stk sk = {p, len, 0, SIZE_MAX, 0};
	rc = ch_stacks_decode(p, len, stack_row, &sk, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ECORRUPT || rc == FDO_ENOMEM);
	if (rc == FDO_OK && sk.n > 0) {
		struct stk sy = {p, len, 0, sk.n - 1, 0};
		FUZZ_CHECK(ch_stacks_decode(p, len, stack_row, &sy, err,
					    sizeof err) == FDO_EEXISTS);
	}
	free(p);
	free(out);
	return 0;
}
