/*
 * Tests for common/map.c: put finds or inserts, get finds, growth keeps
 * every key, clear forgets, a zeroed map works without init; deletion
 * keeps the probe runs whole; the four-word map and the id set the same,
 * through long runs of keys sharing a home slot; the id set compares whole
 * keys on a hash match; a failed allocation leaves each map unchanged.
 *
 * This binary is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (Makefile: LDFLAGS_common_map), so the maps' allocations can be failed.
 */
#include <stdlib.h>

#include "common/common.h"
#include "common/map.h"
#include "tests/unit/test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static long fail_at = -1; /* allocations to let through before one fails */

static int inject(void)
{
	if (fail_at < 0)
		return 0;
	return fail_at-- == 0;
}

void *__wrap_malloc(size_t n)
{
	return inject() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return inject() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return inject() ? NULL : __real_realloc(p, n);
}

TEST(put_finds_or_inserts_and_get_finds)
{
	struct fdo_map64 m = {0};
	uint32_t v;
	int found;
	CHECK(!fdo_map64_get(&m, 7, &v));
	REQUIRE(fdo_map64_put(&m, 7, 70, &v, &found) == FDO_OK);
	CHECK(!found && v == 70);
	REQUIRE(fdo_map64_put(&m, 7, 99, &v, &found) == FDO_OK);
	CHECK(found && v == 70);
	CHECK(fdo_map64_get(&m, 7, &v) && v == 70);
	fdo_map64_fini(&m);
	CHECK(m.cap == 0 && m.n == 0);
}

TEST(growth_keeps_every_key)
{
	struct fdo_map64 m = {0};
	uint32_t v;
	int found;
	for (uint64_t k = 1; k <= 100000; k++)
		REQUIRE(fdo_map64_put(&m, k * 0x9e3779b97f4a7c15ull,
				      (uint32_t)k, &v, &found) == FDO_OK &&
			!found);
	CHECK(m.n == 100000 && m.cap >= 200000);
	int ok = 1;
	for (uint64_t k = 1; k <= 100000; k++)
		ok &= fdo_map64_get(&m, k * 0x9e3779b97f4a7c15ull, &v) &&
		      v == (uint32_t)k;
	CHECK(ok);
	fdo_map64_clear(&m);
	CHECK(m.n == 0 && !fdo_map64_get(&m, 0x9e3779b97f4a7c15ull, &v));
	fdo_map64_fini(&m);
}

/* n keys (k * step + 1 for k = 0, 1, ...) whose home slot in a table of
 * 4096 is the same, filtered with hash (the maps' own). */
static size_t same_home(uint64_t (*hash)(uint64_t), uint64_t *out, size_t n)
{
	size_t got = 0;
	uint64_t want = hash(1) & 4095;
	for (uint64_t k = 1; got < n; k++)
		if ((hash(k) & 4095) == want)
			out[got++] = k;
	return got;
}

static uint64_t mix(uint64_t k)
{
	return fdo_mix64(k);
}

TEST(map64_del_keeps_probe_runs)
{
	enum { N = 1500 };
	static uint64_t keys[N];
	same_home(mix, keys, N);
	struct fdo_map64 m = {0};
	uint32_t v;
	int found;
	for (size_t i = 0; i < N; i++)
		REQUIRE(fdo_map64_put(&m, keys[i], (uint32_t)i, &v, &found) ==
				FDO_OK &&
			!found);
	CHECK(!fdo_map64_del(&m, 0x1234567)); /* absent */
	/* Every third key goes: the rest stay findable behind the holes. */
	for (size_t i = 0; i < N; i += 3)
		CHECK(fdo_map64_del(&m, keys[i]));
	CHECK(m.n == N - (N + 2) / 3);
	int ok = 1;
	for (size_t i = 0; i < N; i++)
		ok &= fdo_map64_get(&m, keys[i], &v) == (i % 3 != 0) &&
		      (i % 3 == 0 || v == (uint32_t)i);
	CHECK(ok);
	CHECK(!fdo_map64_del(&m, keys[0])); /* already gone */
	/* Put back: found nowhere, then found. */
	for (size_t i = 0; i < N; i += 3)
		CHECK(fdo_map64_put(&m, keys[i], (uint32_t)i + 7, &v, &found) ==
			      FDO_OK &&
		      !found);
	for (size_t i = 0; i < N; i++)
		ok &= fdo_map64_get(&m, keys[i], &v) &&
		      v == (uint32_t)i + (i % 3 ? 0 : 7);
	CHECK(ok);
	for (size_t i = 0; i < N; i++)
		ok &= fdo_map64_del(&m, keys[i]);
	CHECK(ok && m.n == 0);
	for (size_t i = 0; i < m.cap; i++)
		ok &= !m.keys[i];
	CHECK(ok);
	fdo_map64_fini(&m);
	struct fdo_map64 z = {0};
	CHECK(!fdo_map64_del(&z, 1)); /* a zeroed map */
}

static uint64_t hash128_of(uint64_t k)
{
	uint32_t w[4] = {(uint32_t)k, (uint32_t)(k >> 32), 0, 0};
	return fdo_hash_words(w, sizeof w);
}

/* keys[0..n) as fdo_map128 keys (low word, high word, 0, 0) into m, each
 * with its index as value. */
static void put_same_home(struct fdo_map128 *m, const uint64_t *keys, size_t n)
{
	uint32_t v;
	int found;
	for (size_t i = 0; i < n; i++) {
		uint32_t k[4] = {(uint32_t)keys[i], (uint32_t)(keys[i] >> 32),
				 0, 0};
		REQUIRE(fdo_map128_put(m, k, (uint32_t)i, &v, &found) ==
				FDO_OK &&
			!found);
	}
}

TEST(map128_finds_every_key_through_collisions)
{
	struct fdo_map128 m = {0};
	uint32_t v;
	int found;
	uint32_t zero[4] = {0, 0, 0, 0}, one[4] = {0, 0, 0, 1};
	CHECK(!fdo_map128_get(&m, zero, &v));
	REQUIRE(fdo_map128_put(&m, zero, 5, &v, &found) == FDO_OK && !found &&
		v == 5);
	REQUIRE(fdo_map128_put(&m, zero, 6, &v, &found) == FDO_OK && found &&
		v == 5);
	CHECK(!fdo_map128_get(&m, one, &v));
	REQUIRE(fdo_map128_put(&m, one, 0, &v, &found) == FDO_OK && !found);
	CHECK(fdo_map128_get(&m, one, &v) && v == 0);
	CHECK(fdo_map128_get(&m, zero, &v) && v == 5);
	fdo_map128_fini(&m);
	CHECK(!m.s && !m.cap && !m.n);

	/* 1500 keys with one home slot while the table is small, then
	 * 100000 more through several growths. */
	enum { N = 1500 };
	static uint64_t keys[N];
	same_home(hash128_of, keys, N);
	put_same_home(&m, keys, N);
	for (uint32_t i = 0; i < 100000; i++) {
		uint32_t k[4] = {i, 7, i * 3, 1};
		REQUIRE(fdo_map128_put(&m, k, N + i, &v, &found) == FDO_OK &&
			!found);
	}
	CHECK(m.n == N + 100000 && m.cap >= 2 * m.n);
	int ok = 1;
	for (size_t i = 0; i < N; i++) {
		uint32_t k[4] = {(uint32_t)keys[i], (uint32_t)(keys[i] >> 32),
				 0, 0};
		ok &= fdo_map128_get(&m, k, &v) && v == (uint32_t)i;
	}
	for (uint32_t i = 0; i < 100000; i++) {
		uint32_t k[4] = {i, 7, i * 3, 1}, other[4] = {i, 7, i * 3, 2};
		ok &= fdo_map128_get(&m, k, &v) && v == N + i &&
		      !fdo_map128_get(&m, other, &v);
	}
	CHECK(ok);
	fdo_map128_fini(&m);
}

TEST(map128_del_keeps_probe_runs)
{
	/* Keys sharing one home slot (a long run), every third deleted:
	 * the rest stay findable; an all-zero key and an absent one. */
	enum { N = 1500 };
	static uint64_t keys[N];
	same_home(hash128_of, keys, N);
	struct fdo_map128 m = {0};
	uint32_t v, zero[4] = {0, 0, 0, 0};
	int found;
	CHECK(!fdo_map128_del(&m, zero)); /* a zeroed map */
	put_same_home(&m, keys, N);
	CHECK(!fdo_map128_del(&m, zero)); /* absent, though empty slots
					     may hold its words */
	REQUIRE(fdo_map128_put(&m, zero, 9, &v, &found) == FDO_OK && !found);
	for (size_t i = 0; i < N; i += 3) {
		uint32_t k[4] = {(uint32_t)keys[i], (uint32_t)(keys[i] >> 32),
				 0, 0};
		CHECK(fdo_map128_del(&m, k));
		CHECK(!fdo_map128_del(&m, k));
	}
	int ok = 1;
	for (size_t i = 0; i < N; i++) {
		uint32_t k[4] = {(uint32_t)keys[i], (uint32_t)(keys[i] >> 32),
				 0, 0};
		ok &= fdo_map128_get(&m, k, &v) == (i % 3 != 0) &&
		      (i % 3 == 0 || v == (uint32_t)i);
	}
	CHECK(ok && m.n == N - (N + 2) / 3 + 1);
	CHECK(fdo_map128_get(&m, zero, &v) && v == 9);
	CHECK(fdo_map128_del(&m, zero) && !fdo_map128_get(&m, zero, &v));
	fdo_map128_fini(&m);
}

/* Keys of the id-set tests: strings in an array, or (below) a key_of that
 * answers another key than the one added. */
struct strs {
	char **v;
	size_t n;
};

static const void *str_key(const void *ctx, uint32_t id, size_t *len)
{
	const struct strs *s = ctx;
	*len = strlen(s->v[id]);
	return s->v[id];
}

static uint64_t hash_str_of(uint64_t k)
{
	char b[32];
	int n = snprintf(b, sizeof b, "k%llu", (unsigned long long)k);
	return fdo_hash_words(b, (size_t)n);
}

TEST(idset_interns_strings)
{
	enum { COLL = 1500, N = 60000 };
	static uint64_t coll[COLL];
	same_home(hash_str_of, coll, COLL);
	struct strs st = {calloc(COLL + N, sizeof(char *)), 0};
	REQUIRE(st.v);
	struct fdo_idset s;
	fdo_idset_init(&s, str_key, &st);
	uint32_t id;
	CHECK(!fdo_idset_get(&s, "k1", 2, &id));
	int ok = 1;
	for (size_t i = 0; i < COLL + N; i++) {
		char b[32];
		unsigned long long k = i < COLL ? coll[i] : (i - COLL) * 7919;
		int n = snprintf(b, sizeof b, "%s%llu", i < COLL ? "k" : "n",
				 k);
		if (fdo_idset_get(&s, b, (size_t)n, &id))
			continue; /* "n0": once */
		REQUIRE((st.v[st.n] = strdup(b)));
		REQUIRE(fdo_idset_add(&s, b, (size_t)n, (uint32_t)st.n) ==
			FDO_OK);
		st.n++;
	}
	CHECK(st.n == s.n && st.n == COLL + N && s.cap >= 2 * s.n);
	for (size_t i = 0; i < st.n; i++)
		ok &= fdo_idset_get(&s, st.v[i], strlen(st.v[i]), &id) &&
		      id == (uint32_t)i;
	CHECK(ok);
	/* Prefixes and extensions of keys are other keys. */
	CHECK(!fdo_idset_get(&s, st.v[0], strlen(st.v[0]) - 1, &id));
	CHECK(!fdo_idset_get(&s, "k10", 3, &id) || !strcmp(st.v[id], "k10"));
	CHECK(!fdo_idset_get(&s, "", 0, &id));
	fdo_idset_fini(&s);
	CHECK(!s.s && !s.cap && !s.n && s.key_of == str_key);
	for (size_t i = 0; i < st.n; i++)
		free(st.v[i]);
	free(st.v);
}

/* Id 0's key reads as "other": a key added as id 0 hashes like itself but
 * its bytes differ, as two keys with one 64-bit hash would. */
static const void *lying_key(const void *ctx, uint32_t id, size_t *len)
{
	(void)ctx;
	if (id == 0) {
		*len = 5;
		return "other";
	}
	*len = 4;
	return "same";
}

TEST(idset_compares_the_whole_key_on_a_hash_match)
{
	struct fdo_idset s;
	fdo_idset_init(&s, lying_key, NULL);
	uint32_t id;
	REQUIRE(fdo_idset_add(&s, "same", 4, 0) == FDO_OK);
	CHECK(!fdo_idset_get(&s, "same", 4, &id));
	REQUIRE(fdo_idset_add(&s, "same", 4, 1) == FDO_OK);
	CHECK(fdo_idset_get(&s, "same", 4, &id) && id == 1);
	CHECK(!fdo_idset_get(&s, "other", 5, &id)); /* another hash */
	fdo_idset_fini(&s);
}

TEST(failed_allocations_leave_the_maps_unchanged)
{
	uint32_t v;
	int found;
	/* fdo_map64: the first table, then a growth. */
	struct fdo_map64 m = {0};
	fail_at = 0;
	CHECK(fdo_map64_put(&m, 1, 1, &v, &found) == FDO_ENOMEM);
	CHECK(m.cap == 0 && m.n == 0 && !fdo_map64_get(&m, 1, &v));
	uint64_t k = 1;
	for (; (m.n + 1) * 2 <= m.cap || !m.cap; k++)
		REQUIRE(fdo_map64_put(&m, k, (uint32_t)k, &v, &found) ==
			FDO_OK);
	size_t cap = m.cap, n = m.n;
	for (fail_at = 0; fail_at >= 0;) { /* the keys fail, then the values */
		long at = fail_at;
		CHECK(fdo_map64_put(&m, k, 9, &v, &found) == FDO_ENOMEM);
		CHECK(m.cap == cap && m.n == n && !fdo_map64_get(&m, k, &v));
		fail_at = at < 1 ? at + 1 : -1;
	}
	int ok = 1;
	for (uint64_t i = 1; i < k; i++)
		ok &= fdo_map64_get(&m, i, &v) && v == (uint32_t)i;
	CHECK(ok);
	REQUIRE(fdo_map64_put(&m, k, 9, &v, &found) == FDO_OK && !found);
	CHECK(m.cap == 2 * cap);
	fdo_map64_fini(&m);

	/* fdo_map128 */
	struct fdo_map128 m2 = {0};
	uint32_t w[4] = {1, 2, 3, 4};
	fail_at = 0;
	CHECK(fdo_map128_put(&m2, w, 1, &v, &found) == FDO_ENOMEM);
	CHECK(m2.cap == 0 && !fdo_map128_get(&m2, w, &v));
	for (w[0] = 0; (m2.n + 1) * 2 <= m2.cap || !m2.cap; w[0]++)
		REQUIRE(fdo_map128_put(&m2, w, w[0], &v, &found) == FDO_OK);
	cap = m2.cap;
	n = m2.n;
	fail_at = 0;
	CHECK(fdo_map128_put(&m2, w, 9, &v, &found) == FDO_ENOMEM);
	CHECK(m2.cap == cap && m2.n == n && !fdo_map128_get(&m2, w, &v));
	for (uint32_t i = 0; i < w[0]; i++) {
		uint32_t x[4] = {i, 2, 3, 4};
		ok &= fdo_map128_get(&m2, x, &v) && v == i;
	}
	CHECK(ok);
	fdo_map128_fini(&m2);

	/* fdo_idset */
	struct strs st = {calloc(1024, sizeof(char *)), 0};
	REQUIRE(st.v);
	struct fdo_idset s;
	fdo_idset_init(&s, str_key, &st);
	fail_at = 0;
	CHECK(fdo_idset_add(&s, "a", 1, 0) == FDO_ENOMEM);
	CHECK(s.cap == 0 && s.n == 0);
	char b[32];
	int len;
	for (;;) {
		len = snprintf(b, sizeof b, "s%zu", st.n);
		if ((s.n + 1) * 2 > s.cap && s.cap)
			break;
		REQUIRE((st.v[st.n] = strdup(b)));
		REQUIRE(fdo_idset_add(&s, b, (size_t)len, (uint32_t)st.n) ==
			FDO_OK);
		st.n++;
	}
	cap = s.cap;
	fail_at = 0;
	CHECK(fdo_idset_add(&s, b, (size_t)len, (uint32_t)st.n) == FDO_ENOMEM);
	CHECK(s.cap == cap && s.n == st.n && !fdo_idset_get(&s, b, len, &v));
	for (size_t i = 0; i < st.n; i++)
		ok &= fdo_idset_get(&s, st.v[i], strlen(st.v[i]), &v) &&
		      v == (uint32_t)i;
	CHECK(ok);
	fdo_idset_fini(&s);
	for (size_t i = 0; i < st.n; i++)
		free(st.v[i]);
	free(st.v);
}
