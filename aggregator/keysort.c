/*
 * aggregator/keysort.c — the sort of a merge's entries by key
 * (keysort.h): bucket passes on the keys' leading varying bits (a
 * most-significant-digit radix sort), an inlined insertion sort for short
 * buckets. Called by the merger thread only; no
 * state of its own.
 */
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/keysort.h"
#include "common/buf.h"
#include "common/common.h"

/*
 * Sort entries in place by key: quicksort with the comparison inlined
 * (qsort's callback through pointers into a scattered map was a fifth of
 * the merger's time), insertion sort for short runs.
 */
static void sort_entries(struct entry *a, size_t n)
{
	while (n > 16) {
		/* Median of three as pivot. */
		size_t m = n / 2;
		if (entry_less(&a[m], &a[0])) {
			struct entry t = a[m];
			a[m] = a[0];
			a[0] = t;
		}
		if (entry_less(&a[n - 1], &a[m])) {
			struct entry t = a[m];
			a[m] = a[n - 1];
			a[n - 1] = t;
			if (entry_less(&a[m], &a[0])) {
				t = a[m];
				a[m] = a[0];
				a[0] = t;
			}
		}
		struct entry pivot = a[m];
		size_t i = 0, j = n - 1;
		for (;;) {
			while (entry_less(&a[i], &pivot))
				i++;
			while (entry_less(&pivot, &a[j]))
				j--;
			if (i >= j)
				break;
			struct entry t = a[i];
			a[i] = a[j];
			a[j] = t;
			i++;
			j--;
		}
		/* Recurse into the smaller side, loop on the larger. */
		if (j + 1 < n - j - 1) {
			sort_entries(a, j + 1);
			a += j + 1;
			n -= j + 1;
		} else {
			sort_entries(a + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++) {
		struct entry t = a[i];
		size_t j = i;
		while (j > 0 && entry_less(&t, &a[j - 1])) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = t;
	}
}

/*
 * bucket_sort_entries sorts large arrays: one pass scatters the entries
 * into 256 buckets of a second array by a digit of the keys' leading
 * varying bits, then each bucket is sorted the same way (radix_sort), in
 * cache.
 * Counts keys are a few (binary, label set, bucket) prefixes times a stack
 * hash, so the digit is the prefix's varying bits followed by the hash's
 * top bits and the buckets come out even. The digit never decreases as
 * keys increase, so the result is sorted whatever the keys (skewed ones
 * just make big buckets). Quicksort alone spent most of its time on the
 * top levels, out of cache; an in-place bucket pass (American flag sort)
 * was slower still: every move a cache miss. 256 buckets keep the scatter
 * to as many sequential write streams.
 */
#define DIGIT_BITS 8

struct digit {
	int w0, w1;	    /* first and second varying words (w1 -1: none) */
	int shift0, shift1; /* right shifts of each word */
	uint64_t mask0, mask1; /* masks after shifting */
	int bits1;	       /* bits taken from w1 */
};

static inline uint32_t digit_of(const struct digit *d, const struct entry *x)
{
	uint32_t v = (uint32_t)((x->k[d->w0] >> d->shift0) & d->mask0);
	if (d->w1 >= 0)
		v = v << d->bits1 |
		    (uint32_t)((x->k[d->w1] >> d->shift1) & d->mask1);
	return v;
}

static uint64_t mask_bits(int bits)
{
	return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

/* Fill d for digits of `bits` bits; 0 when every key is the same. */
static int plan_digit(const struct entry *a, size_t n, int bits,
		      struct digit *d)
{
	uint64_t diff[4] = {0};
	for (size_t i = 1; i < n; i++)
		for (int w = 0; w < 4; w++)
			diff[w] |= a[i].k[w] ^ a[0].k[w];
	int w0 = 0;
	while (w0 < 4 && !diff[w0])
		w0++;
	if (w0 == 4)
		return 0;
	int hi = 63 - __builtin_clzll(diff[w0]), lo = __builtin_ctzll(diff[w0]);
	int span = hi - lo + 1;
	*d = (struct digit){.w0 = w0, .w1 = -1};
	if (span >= bits) { /* the top bits of w0's varying span */
		d->shift0 = hi + 1 - bits;
		d->mask0 = mask_bits(bits);
		return 1;
	}
	/* All of w0's varying bits, then the top of the next varying word's. */
	d->shift0 = lo;
	d->mask0 = mask_bits(span);
	int w1 = w0 + 1;
	while (w1 < 4 && !diff[w1])
		w1++;
	if (w1 == 4)
		return 1;
	int hi1 = 63 - __builtin_clzll(diff[w1]);
	d->w1 = w1;
	d->bits1 = bits - span;
	if (d->bits1 > hi1 + 1)
		d->bits1 = hi1 + 1;
	d->shift1 = hi1 + 1 - d->bits1;
	d->mask1 = mask_bits(d->bits1);
	return 1;
}

/*
 * radix_sort sorts the n entries at x, with y (as long) as scratch: the
 * sorted entries end in y when to_y, else in x. Most-significant digit
 * first: a bucket pass on the digit plan_digit finds for these entries,
 * then each bucket the same way, its own digit planned afresh (a bucket's
 * keys share their leading bits, so its digit is the next varying bits),
 * until a bucket is short enough for insertion sort or all its keys are
 * equal. After the first pass a bucket is small enough to stay in cache,
 * where the next pass spreads it to one or two entries a bucket: about
 * twice as fast as quicksorting each first-level bucket, whose levels of
 * comparisons moved 64-byte entries again and again.
 */
#define RADIX_MIN 24 /* buckets this short are insertion-sorted */

static void radix_sort(struct entry *x, struct entry *y, size_t n, int to_y)
{
	struct digit d;
	if (n <= RADIX_MIN || !plan_digit(x, n, DIGIT_BITS, &d)) {
		sort_entries(x, n);
		if (to_y)
			memcpy(y, x, n * sizeof *x);
		return;
	}
	uint32_t at[1u << DIGIT_BITS] = {0}, end[1u << DIGIT_BITS];
	for (size_t i = 0; i < n; i++)
		at[digit_of(&d, &x[i])]++;
	uint32_t sum = 0;
	for (size_t b = 0; b < 1u << DIGIT_BITS; b++) {
		uint32_t c = at[b];
		at[b] = sum;
		sum += c;
		end[b] = sum;
	}
	for (size_t i = 0; i < n; i++)
		y[at[digit_of(&d, &x[i])]++] = x[i];
	/* Each bucket is in y now; its sorted entries go where ours must. */
	for (size_t b = 0, from = 0; b < 1u << DIGIT_BITS; from = end[b], b++)
		if (end[b] > from)
			radix_sort(y + from, x + from, end[b] - from, !to_y);
}

int bucket_sort_entries(struct entries *e)
{
	struct entry *a = e->v;
	size_t n = e->n;
	if (n < 4096) {
		sort_entries(a, n);
		return FDO_OK;
	}
	if (fdo_grow(e->tmp, e->tmp_cap, e->cap))
		return FDO_ENOMEM;
	/* Into the second array, which then becomes the first. */
	radix_sort(a, e->tmp, n, 1);
	e->v = e->tmp;
	e->tmp = a;
	size_t c = e->cap;
	e->cap = e->tmp_cap;
	e->tmp_cap = c;
	return FDO_OK;
}
