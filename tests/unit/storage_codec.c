/* Tests for storage/codec.c: fixed layouts, round trips, and that byte
 * order of encoded keys is the numeric order of their fields. */
#include "storage/storage.h"
#include "tests/unit/test.h"

static int cmp_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	int c = memcmp(a, b, n);
	return c < 0 ? -1 : c > 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_counts(const struct store_counts_key *a,
		      const struct store_counts_key *b)
{
	int c;
	if ((c = cmp_u64(a->binary, b->binary)))
		return c;
	if ((c = cmp_u64(a->labelset, b->labelset)))
		return c;
	if ((c = cmp_u64(a->bucket, b->bucket)))
		return c;
	return cmp_u64(a->stack, b->stack);
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*; values biased to small and boundary numbers. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	uint64_t v = *s * 2685821657736338717ull;
	switch (v % 4) {
	case 0:
		return v >> 60;
	case 1:
		return (v >> 8) & 0xff;
	case 2:
		return v % 2 ? UINT64_MAX - (v >> 62) : v;
	default:
		return v;
	}
}

TEST(counts_key_order_is_field_order)
{
	uint64_t seed = 88172645463325252ull;
	for (int i = 0; i < 20000; i++) {
		struct store_counts_key a = {(uint32_t)rnd(&seed),
					     (uint32_t)rnd(&seed),
					     (uint32_t)rnd(&seed), rnd(&seed)};
		struct store_counts_key b = a;
		switch (i % 4) { /* vary one field, or all */
		case 0:
			b.stack = rnd(&seed);
			break;
		case 1:
			b.bucket = (uint32_t)rnd(&seed);
			break;
		case 2:
			b.labelset = (uint32_t)rnd(&seed);
			break;
		default:
			b = (struct store_counts_key){(uint32_t)rnd(&seed),
						      (uint32_t)rnd(&seed),
						      (uint32_t)rnd(&seed),
						      rnd(&seed)};
		}
		uint8_t ea[STORE_COUNTS_KEY_SIZE], eb[STORE_COUNTS_KEY_SIZE];
		store_counts_key_encode(ea, &a);
		store_counts_key_encode(eb, &b);
		if (cmp_bytes(ea, eb, sizeof ea) != cmp_counts(&a, &b)) {
			CHECK(!"byte order differs from field order");
			return;
		}
		struct store_counts_key d;
		REQUIRE(store_counts_key_decode(ea, sizeof ea, &d) == FDO_OK);
		CHECK(!cmp_counts(&a, &d));
	}
}

TEST(counts_key_layout_is_big_endian)
{
	struct store_counts_key k = {0x01020304, 0x05060708, 0x090a0b0c,
				     0x0d0e0f1011121314ull};
	uint8_t e[STORE_COUNTS_KEY_SIZE];
	store_counts_key_encode(e, &k);
	for (int i = 0; i < STORE_COUNTS_KEY_SIZE; i++)
		CHECK_EQ_INT(e[i], i + 1);
	CHECK_EQ_INT(store_counts_key_decode(e, 19, &k), FDO_ECORRUPT);
}

TEST(branches_and_addr_keys_round_trip_in_order)
{
	struct store_branches_key a = {1, 2, 3, 4, 0x10, 0xffffffffffull};
	struct store_branches_key b = a;
	b.from = 0x11;
	uint8_t ea[STORE_BRANCHES_KEY_SIZE], eb[STORE_BRANCHES_KEY_SIZE];
	store_branches_key_encode(ea, &a);
	store_branches_key_encode(eb, &b);
	CHECK(memcmp(ea, eb, sizeof ea) < 0);
	struct store_branches_key d;
	REQUIRE(store_branches_key_decode(ea, sizeof ea, &d) == FDO_OK);
	CHECK(d.binary == 1 && d.labelset == 2 && d.bucket == 3 &&
	      d.build_id == 4 && d.from == 0x10 && d.to == 0xffffffffffull);

	struct store_frame x = {7, 0x1000}, y = {7, 0x100000000ull}, z = {8, 0};
	uint8_t kx[STORE_ADDR_KEY_SIZE], ky[STORE_ADDR_KEY_SIZE],
		kz[STORE_ADDR_KEY_SIZE];
	store_addr_key_encode(kx, &x);
	store_addr_key_encode(ky, &y);
	store_addr_key_encode(kz, &z);
	CHECK(memcmp(kx, ky, sizeof kx) < 0);
	CHECK(memcmp(ky, kz, sizeof kx) < 0);
	struct store_frame f;
	REQUIRE(store_addr_key_decode(ky, sizeof ky, &f) == FDO_OK);
	CHECK(f.build_id == 7 && f.offset == 0x100000000ull);
	CHECK_EQ_INT(store_addr_key_decode(ky, 11, &f), FDO_ECORRUPT);
}

TEST(batches_and_published_keys)
{
	uint8_t a[STORE_BATCHES_KEY_SIZE], b[STORE_BATCHES_KEY_SIZE];
	store_batches_key_encode(a, 3, 255);
	store_batches_key_encode(b, 3, 256);
	CHECK(memcmp(a, b, sizeof a) < 0);
	uint32_t agent;
	uint64_t seq;
	REQUIRE(store_batches_key_decode(b, sizeof b, &agent, &seq) == FDO_OK);
	CHECK(agent == 3 && seq == 256);

	uint8_t p[STORE_PUBLISHED_KEY_SIZE], q[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(p, 1, 9);
	store_published_key_encode(q, 1, 10);
	CHECK(memcmp(p, q, sizeof p) < 0);
	uint32_t bin, ver;
	REQUIRE(store_published_key_decode(q, sizeof q, &bin, &ver) == FDO_OK);
	CHECK(bin == 1 && ver == 10);
}

TEST(weight_value_round_trip)
{
	struct store_weight w = {(wire_weight_t)3 << 100 | 12345, 120}, d;
	uint8_t e[STORE_WEIGHT_VAL_SIZE];
	store_weight_encode(e, &w);
	REQUIRE(store_weight_decode(e, sizeof e, &d) == FDO_OK);
	CHECK(d.weight == w.weight && d.samples == 120);
	CHECK_EQ_INT(store_weight_decode(e, 8, &d), FDO_ECORRUPT);
}

TEST(stack_round_trip_and_stable_id)
{
	struct store_frame f[3] = {{1, 0x1a10}, {1, 0x1c33}, {2, 0x29d90}};
	uint8_t buf[3 * STORE_FRAME_SIZE];
	size_t len;
	REQUIRE(store_stack_encode(f, 3, buf, sizeof buf, &len) == FDO_OK);
	/* The compact layout, pinned byte for byte (storage/codec.c). */
	static const uint8_t want[] = {0xff, 0xa1, 0x68, 0x01, 0xe6,
				       0x70, 0xa1, 0xf6, 0x14, 0x02};
	CHECK_EQ_INT(len, sizeof want);
	CHECK(memcmp(buf, want, sizeof want) == 0);
	CHECK_EQ_INT(store_stack_encode(f, 3, buf, 9, &len), FDO_ELIMIT);
	struct store_frame d[4];
	size_t n;
	REQUIRE(store_stack_decode(want, sizeof want, d, 4, &n) == FDO_OK);
	CHECK_EQ_INT(n, 3);
	CHECK(d[0].build_id == 1 && d[0].offset == 0x1a10);
	CHECK(d[1].build_id == 1 && d[1].offset == 0x1c33);
	CHECK(d[2].build_id == 2 && d[2].offset == 0x29d90);
	CHECK_EQ_INT(store_stack_decode(want, sizeof want, d, 2, &n),
		     FDO_ELIMIT);
	REQUIRE(store_stack_encode(f, 0, buf, sizeof buf, &len) == FDO_OK);
	CHECK(len == 1 && buf[0] == STORE_STACK_COMPACT);
	REQUIRE(store_stack_decode(buf, len, d, 4, &n) == FDO_OK);
	CHECK_EQ_INT(n, 0);

	/* Version 1's fixed layout still reads. */
	for (int i = 0; i < 3; i++)
		store_addr_key_encode(buf + i * STORE_FRAME_SIZE, &f[i]);
	REQUIRE(store_stack_decode(buf, 36, d, 4, &n) == FDO_OK);
	CHECK(n == 3 && d[2].build_id == 2 && d[2].offset == 0x29d90);
	CHECK_EQ_INT(store_stack_decode(buf, 13, d, 4, &n), FDO_ECORRUPT);
	CHECK_EQ_INT(store_stack_decode(buf, 36, d, 2, &n), FDO_ELIMIT);

	/* Offsets of 2^63 and up, and ids outside the dictionary's range,
	 * are written fixed. */
	struct store_frame big[2] = {{1, 0x10}, {3, 1ull << 63}};
	REQUIRE(store_stack_encode(big, 2, buf, sizeof buf, &len) == FDO_OK);
	CHECK_EQ_INT(len, 2 * STORE_FRAME_SIZE);
	CHECK(buf[0] != STORE_STACK_COMPACT);
	REQUIRE(store_stack_decode(buf, len, d, 4, &n) == FDO_OK);
	CHECK(n == 2 && d[1].build_id == 3 && d[1].offset == 1ull << 63);
	struct store_frame zero[1] = {{0, 0x10}};
	REQUIRE(store_stack_encode(zero, 1, buf, sizeof buf, &len) == FDO_OK);
	CHECK_EQ_INT(len, STORE_FRAME_SIZE);
	CHECK_EQ_INT(store_stack_encode(f, 3, buf, 35, &len), FDO_OK);
	CHECK_EQ_INT(store_stack_encode(big, 2, buf, 23, &len), FDO_ELIMIT);

	/* Malformed compact values. */
	static const struct {
		uint8_t b[12];
		size_t n;
	} bad[] = {
		{{0xff, 0xa1}, 2},		     /* truncated offset */
		{{0xff, 0x03}, 2},		     /* id missing */
		{{0xff, 0x02}, 2},		     /* first frame, no id */
		{{0xff, 0x03, 0x00}, 3},	     /* id 0 */
		{{0xff, 0x03, 0x01, 0x05, 0x01}, 5}, /* same id again */
		{{0xff, 0x03, 0x80, 0x80, 0x80, 0xf8, 0x0f}, 7}, /* >= max */
		{{0xff, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		  0x80, 0x01},
		 12}, /* varint > 10 bytes */
		{{0xff, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		  0x02},
		 11}, /* > 64 bits */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(store_stack_decode(bad[i].b, bad[i].n, d, 4, &n),
			     FDO_ECORRUPT);

	/* Random stacks round-trip; random bytes never decode out of
	 * bounds (the sanitizer run checks). */
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	static struct store_frame rf[64], rd[64];
	static uint8_t rb[64 * 15 + 1];
	for (int round = 0; round < 2000; round++) {
		size_t k = rnd(&seed) % 64;
		for (size_t i = 0; i < k; i++) {
			rf[i].build_id = (uint32_t)(rnd(&seed) % 4 + 1);
			rf[i].offset = rnd(&seed);
		}
		REQUIRE(store_stack_encode(rf, k, rb, sizeof rb, &len) ==
			FDO_OK);
		REQUIRE(store_stack_decode(rb, len, rd, 64, &n) == FDO_OK);
		REQUIRE(n == k);
		for (size_t i = 0; i < k; i++)
			REQUIRE(rd[i].build_id == rf[i].build_id &&
				rd[i].offset == rf[i].offset);
		for (size_t i = 1; i < len; i++)
			rb[i] = (uint8_t)rnd(&seed);
		(void)store_stack_decode(rb, len, rd, 64, &n);
	}

	/* The id is on disk: pin its value (computed by an independent
	 * Python implementation of the definition in storage/codec.c).
	 * Order matters, and every field. */
	static const uint8_t b1[] = {0x5f, 0x3c, 0x00, 0xe1};
	static const uint8_t b2[] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee,
				     0xff, 0x00, 0x11, 0x22, 0x33};
	uint64_t h1 = store_buildid_hash(b1, sizeof b1);
	uint64_t h2 = store_buildid_hash(b2, sizeof b2);
	CHECK(h1 == 0x09d7fe8d9a7bb951ull);
	CHECK(h2 == 0x9cdfa720cfcf2988ull);
	struct store_hframe hf[3] = {{h1, 0x1a10}, {h1, 0x1c33}, {h2, 0x29d90}};
	uint64_t id = store_stack_id(hf, 3);
	CHECK(id == 0xab1a8969c7d076daull);
	struct store_hframe g[3] = {hf[1], hf[0], hf[2]};
	CHECK(id != store_stack_id(g, 3));
	CHECK(id != store_stack_id(hf, 2));
	CHECK(store_stack_id(NULL, 0) != 0);
}

TEST(symcache_round_trip_and_limits)
{
	struct store_sym_frame f[2] = {{10, 11, 42, 7, 1, 40},
				       {12, 11, 100, 0, 0, 90}};
	uint8_t buf[STORE_SYMCACHE_HDR_SIZE + 2 * STORE_SYM_FRAME_SIZE];
	size_t len;
	REQUIRE(store_symcache_encode(f, 2, buf, sizeof buf, &len) == FDO_OK);
	CHECK_EQ_INT(len, 52);
	CHECK_EQ_INT(buf[0], 1);
	CHECK_EQ_INT(buf[1], 2);
	struct store_sym_frame d[2];
	size_t n;
	REQUIRE(store_symcache_decode(buf, len, d, 2, &n) == FDO_OK);
	CHECK_EQ_INT(n, 2);
	CHECK(d[0].line == 42 && d[0].column == 7 && d[1].start_line == 90);
	CHECK_EQ_INT(store_symcache_decode(buf, len - 1, d, 2, &n),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(store_symcache_decode(buf, len, d, 1, &n), FDO_ELIMIT);
	buf[0] = 2;
	CHECK_EQ_INT(store_symcache_decode(buf, len, d, 2, &n), FDO_ECORRUPT);
	/* No symbol: header only. */
	REQUIRE(store_symcache_encode(NULL, 0, buf, sizeof buf, &len) ==
		FDO_OK);
	CHECK_EQ_INT(len, 4);
	REQUIRE(store_symcache_decode(buf, len, d, 2, &n) == FDO_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(store_symcache_encode(f, 256, buf, sizeof buf, &len),
		     FDO_ELIMIT);
}

/* Decodes the first len bytes of full from a heap copy of exactly len
 * bytes, so that the sanitized build catches any read past the value. */
static int decode_exact(int (*dec)(const void *, size_t, void *),
			const uint8_t *full, size_t len, void *out)
{
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		return -1;
	memcpy(p, full, len);
	int rc = dec(p, len, out);
	free(p);
	return rc;
}

static int dec_batch(const void *p, size_t len, void *out)
{
	return store_batches_decode(p, len, out);
}

static int dec_host(const void *p, size_t len, void *out)
{
	return store_hosts_decode(p, len, out);
}

static int dec_pub(const void *p, size_t len, void *out)
{
	return store_published_decode(p, len, out);
}

TEST(batches_value_layout_and_corruption)
{
	struct store_batch b = {1763719260, 100, 0, 0x0123456789abcdefull}, d;
	uint8_t e[STORE_BATCHES_VAL_SIZE + 1] = {0};
	store_batches_encode(e, &b);
	static const uint8_t want[STORE_BATCHES_VAL_SIZE] = {
		0,    0,    0,	  0,	0x69, 0x20, 0x38, 0x5c, /* time */
		0,    0,    0,	  0,	0,    0,    0,	  100,	/* accepted */
		0,    0,    0,	  0,	0,    0,    0,	  0,	/* unmapped */
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, /* digest */
	};
	CHECK(!memcmp(e, want, sizeof want));
	REQUIRE(store_batches_decode(e, STORE_BATCHES_VAL_SIZE, &d) == FDO_OK);
	CHECK(d.committed == b.committed && d.accepted == 100 &&
	      d.unmapped == 0 && d.digest == b.digest);
	/* A record from before the digest: 24 bytes, digest 0. */
	REQUIRE(decode_exact(dec_batch, e, STORE_BATCHES_VAL_SIZE_V1, &d) ==
		FDO_OK);
	CHECK(d.accepted == 100 && d.digest == 0);
	for (size_t n = 0; n <= sizeof e; n++)
		if (n != STORE_BATCHES_VAL_SIZE &&
		    n != STORE_BATCHES_VAL_SIZE_V1)
			CHECK_EQ_INT(decode_exact(dec_batch, e, n, &d),
				     FDO_ECORRUPT);
	/* 32 bytes with digest 0 say two things at once. */
	memset(e + 24, 0, 8);
	CHECK_EQ_INT(decode_exact(dec_batch, e, STORE_BATCHES_VAL_SIZE, &d),
		     FDO_ECORRUPT);
}

TEST(hosts_value_layout_and_corruption)
{
	struct store_host h = {1763719200, 1763719260}, d;
	uint8_t e[STORE_HOSTS_VAL_SIZE + 1] = {0};
	store_hosts_encode(e, &h);
	CHECK(fdo_get_be64(e) == 1763719200 &&
	      fdo_get_be64(e + 8) == 1763719260);
	REQUIRE(decode_exact(dec_host, e, STORE_HOSTS_VAL_SIZE, &d) == FDO_OK);
	CHECK(d.first == h.first && d.last == h.last);
	for (size_t n = 0; n <= sizeof e; n++)
		if (n != STORE_HOSTS_VAL_SIZE)
			CHECK_EQ_INT(decode_exact(dec_host, e, n, &d),
				     FDO_ECORRUPT);
	/* First seen after last seen cannot be written. */
	store_hosts_encode(e, &(struct store_host){10, 9});
	CHECK_EQ_INT(decode_exact(dec_host, e, STORE_HOSTS_VAL_SIZE, &d),
		     FDO_ECORRUPT);
}

TEST(published_value_layout_and_corruption)
{
	struct store_published v = {0}, d;
	v.format = 4;
	v.created = 1763719300;
	for (int i = 0; i < STORE_SHA256_SIZE; i++)
		v.sha256[i] = (uint8_t)(0xa0 + i);
	v.inputs = "{\"format\":\"folded\"}";
	v.inputs_len = 19;
	v.bytes = "main;work 100\n";
	v.bytes_len = 14;
	size_t len;
	CHECK_EQ_INT(store_published_size(&v), 48 + 19 + 14);
	uint8_t e[48 + 19 + 14];
	CHECK_EQ_INT(store_published_encode(&v, e, sizeof e - 1, &len),
		     FDO_ELIMIT);
	REQUIRE(store_published_encode(&v, e, sizeof e, &len) == FDO_OK);
	CHECK_EQ_INT(len, sizeof e);
	CHECK(e[0] == 1 && e[1] == 4 && e[2] == 0 && e[3] == 0);
	CHECK(fdo_get_be32(e + 4) == 19 && fdo_get_be64(e + 8) == 1763719300);
	CHECK(e[16] == 0xa0 && e[47] == 0xa0 + 31);
	CHECK(!memcmp(e + 48, v.inputs, 19) && !memcmp(e + 67, v.bytes, 14));
	REQUIRE(store_published_decode(e, len, &d) == FDO_OK);
	CHECK(d.format == 4 && d.created == v.created);
	CHECK(!memcmp(d.sha256, v.sha256, STORE_SHA256_SIZE));
	CHECK((const void *)d.inputs == e + 48 && d.inputs_len == 19);
	CHECK(d.bytes == (const void *)(e + 67) && d.bytes_len == 14);
	/* Cut anywhere inside the inputs or the header: corrupt; cut in the
	 * profile bytes: a shorter profile (its hash tells, not the layout). */
	for (size_t n = 0; n < 48 + 19; n++)
		CHECK_EQ_INT(decode_exact(dec_pub, e, n, &d), FDO_ECORRUPT);
	REQUIRE(decode_exact(dec_pub, e, 48 + 19, &d) == FDO_OK);
	CHECK_EQ_INT(d.bytes_len, 0);
	/* An inputs length past the end, the largest one, another format. */
	fdo_put_be32(e + 4, 19 + 14 + 1);
	CHECK_EQ_INT(decode_exact(dec_pub, e, len, &d), FDO_ECORRUPT);
	fdo_put_be32(e + 4, UINT32_MAX);
	CHECK_EQ_INT(decode_exact(dec_pub, e, len, &d), FDO_ECORRUPT);
	fdo_put_be32(e + 4, 19 + 14);
	REQUIRE(decode_exact(dec_pub, e, len, &d) == FDO_OK);
	CHECK(d.inputs_len == 33 && d.bytes_len == 0);
	e[0] = 2;
	CHECK_EQ_INT(decode_exact(dec_pub, e, len, &d), FDO_ECORRUPT);
	/* Nothing that cannot be written whole: an inputs length over 32
	 * bits, a size that overflows. */
	v.inputs_len = (size_t)UINT32_MAX + 1;
	if (sizeof(size_t) > 4) {
		CHECK_EQ_INT(store_published_size(&v), 0);
		CHECK_EQ_INT(store_published_encode(&v, e, sizeof e, &len),
			     FDO_ELIMIT);
	}
	v.inputs_len = 19;
	v.bytes_len = SIZE_MAX - 20;
	CHECK_EQ_INT(store_published_size(&v), 0);
}
