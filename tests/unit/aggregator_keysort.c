/*
 * Tests for aggregator/keysort.c (included whole: the digit planning is
 * static): the bucket pass plus per-bucket sorts must order any keys as a
 * plain comparison sort does, for the key shapes a merge sees (a few
 * prefixes times hashes, small offsets, all equal, skewed) and for random
 * ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/keysort.c"
#include "tests/unit/test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return entry_less(x, y) ? -1 : entry_less(y, x) ? 1 : 0;
}

enum shape { HASHES, OFFSETS, EQUAL, SKEWED, RANDOM, TWO_WORDS };

static void fill(struct entry *a, size_t n, enum shape sh)
{
	for (size_t i = 0; i < n; i++) {
		struct entry *x = &a[i];
		memset(x, 0, sizeof *x);
		switch (sh) {
		case HASHES: /* 4 label sets, 2 buckets, stack hashes */
			x->k[0] = 7ull << 32 | (rnd() % 4 + 1);
			x->k[1] = 100 + rnd() % 2;
			x->k[2] = rnd() | 1;
			break;
		case OFFSETS: /* branches: small from/to offsets */
			x->k[0] = 3ull << 32 | 1;
			x->k[1] = 5ull << 32 | 2;
			x->k[2] = rnd() % 5000;
			x->k[3] = rnd() % 5000;
			break;
		case EQUAL:
			x->k[0] = 1;
			x->k[2] = 42;
			break;
		case SKEWED: /* most keys in one bucket's range */
			x->k[2] = rnd() % 16 ? rnd() % 64 : rnd();
			break;
		case RANDOM:
			for (int w = 0; w < 4; w++)
				x->k[w] = rnd() % 4 ? rnd() : rnd() % 3;
			break;
		case TWO_WORDS: /* one varying bit in k[0], then k[3] */
			x->k[0] = (rnd() & 1) << 40;
			x->k[3] = rnd() >> (rnd() % 64);
			break;
		}
		x->samples = i; /* identifies the entry */
		x->weight = (wire_weight_t)i * 3;
	}
}

static int sorted_like_ref(enum shape sh, size_t n)
{
	struct entries e = {malloc(n * sizeof *e.v), n, n, NULL, 0};
	struct entry *ref = malloc(n * sizeof *ref);
	int ok = e.v && ref;
	if (ok) {
		fill(e.v, n, sh);
		memcpy(ref, e.v, n * sizeof *ref);
		ok = bucket_sort_entries(&e) == FDO_OK;
		qsort(ref, n, sizeof *ref, cmp_ref);
	}
	struct entry *a = e.v;
	uint64_t sum = 0, want = 0;
	for (size_t i = 0; ok && i < n; i++) {
		/* Same keys in the same order; each entry kept whole. */
		if (memcmp(a[i].k, ref[i].k, sizeof a[i].k) ||
		    a[i].weight != (wire_weight_t)a[i].samples * 3) {
			fprintf(stderr, "  shape %d n %zu: differs at %zu\n",
				sh, n, i);
			ok = 0;
		}
		sum += a[i].samples;
		want += i;
	}
	if (ok && sum != want) {
		fprintf(stderr, "  shape %d n %zu: entries lost\n", sh, n);
		ok = 0;
	}
	free(e.v);
	free(e.tmp);
	free(ref);
	return ok;
}

TEST(bucket_sort_orders_every_key_shape)
{
	static const size_t sizes[] = {2, 3, 100, 4096, 5000, 70000, 300000};
	for (int sh = HASHES; sh <= TWO_WORDS; sh++)
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
			CHECK(sorted_like_ref((enum shape)sh, sizes[i]));
}

TEST(digit_never_decreases_along_sorted_keys)
{
	size_t n = 50000;
	for (int sh = HASHES; sh <= TWO_WORDS; sh++) {
		struct entry *a = malloc(n * sizeof *a);
		REQUIRE(a);
		fill(a, n, (enum shape)sh);
		struct digit d;
		int any = plan_digit(a, n, 14, &d);
		CHECK(any == (sh != EQUAL));
		qsort(a, n, sizeof *a, cmp_ref);
		for (size_t i = 1; any && i < n; i++)
			if (digit_of(&d, &a[i]) < digit_of(&d, &a[i - 1]) ||
			    digit_of(&d, &a[i]) >= 1u << 14) {
				fprintf(stderr, "  shape %d: digit at %zu\n",
					sh, i);
				CHECK(0);
				break;
			}
		free(a);
	}
}
