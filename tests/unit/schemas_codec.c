/*
 * Tests for schemas/codec.c: SampleBatch and Ack bytes; truncated, random
 * and oversized input must give an error, never a crash or a leak.
 */
#include "schemas/schemas.h"
#include "tests/unit/test.h"

static const char example[] =
	"agent host-17/agent\nseq 42\nhost host-17\nbinary webserver\n"
	"label mode=serving\nlabel region=eu\nevent cpu-clock\nperiod 1000000\n"
	"weight 2.5\ntime 1763719200 1763719260\n"
	"mapping 0 5f3c0a1b2c3d4e5f60718293a4b5c6d7e8f901e1 555555554000 "
	"555555600000 0 /usr/bin/webserver\n"
	"mapping 1 00ff 7ffff7dd0000 7ffff7e00000 2000 /lib/libc.so.6\n"
	"stack 120 555555555a10 555555555c33 7ffff7dd2d90\n"
	"stack 3 555555555b00\n"
	"branch 555555555a10 555555555b00 37 2\n";

static Fdod__SampleBatch *example_batch(void)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	if (wire_batch_parse_text(example, strlen(example), NULL, &b, err,
				  sizeof err)) {
		fprintf(stderr, "  example: %s\n", err);
		return NULL;
	}
	return b;
}

TEST(batch_round_trip)
{
	Fdod__SampleBatch *a = example_batch(), *b = NULL;
	REQUIRE(a);
	a->auth_token = strdup("tok-123"); /* travels on the wire */
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_batch_encode(a, NULL, &bytes, &n) == FDO_OK);
	CHECK(n > 100);
	REQUIRE(wire_batch_decode(bytes, n, NULL, &b) == FDO_OK);
	CHECK_EQ_STR(b->agent_id, "host-17/agent");
	CHECK_EQ_INT(b->seq, 42);
	CHECK(b->weight == 2.5);
	CHECK_EQ_STR(b->auth_token, "tok-123");
	REQUIRE(b->n_stacks == 2 && b->stacks[0]->n_addrs == 3);
	CHECK(b->stacks[0]->addrs[2] == 0x7ffff7dd2d90ull);
	CHECK_EQ_INT(b->branches[0]->mispredicts, 2);
	CHECK(b->mappings[1]->file_offset == 0x2000);
	CHECK(wire_batch_validate(b, NULL, NULL, 0) == FDO_OK);
	/* Re-encoding gives the same bytes. */
	uint8_t *again = NULL;
	size_t n2 = 0;
	REQUIRE(wire_batch_encode(b, NULL, &again, &n2) == FDO_OK);
	CHECK(n2 == n && memcmp(bytes, again, n) == 0);
	/* Text form and protobuf agree (the token is never printed). */
	char *t1 = NULL, *t2 = NULL;
	REQUIRE(wire_batch_print_text(a, &t1, NULL) == FDO_OK);
	REQUIRE(wire_batch_print_text(b, &t2, NULL) == FDO_OK);
	CHECK_EQ_STR(t1, t2);
	CHECK(strstr(t1, "tok-123") == NULL);
	free(t1);
	free(t2);
	free(again);
	free(bytes);
	wire_batch_free(a);
	wire_batch_free(b);
}

TEST(empty_bytes_decode_to_an_invalid_batch)
{
	Fdod__SampleBatch *b = NULL;
	REQUIRE(wire_batch_decode(NULL, 0, NULL, &b) == FDO_OK);
	char err[128];
	CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "agent is missing") != NULL);
	wire_batch_free(b);
}

TEST(every_truncation_is_an_error_or_a_prefix_message)
{
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_batch_encode(a, NULL, &bytes, &n) == FDO_OK);
	int parse_errors = 0;
	for (size_t len = 0; len < n; len++) {
		/* Copy into an exact-size buffer so ASan sees any overread. */
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, bytes, len);
		Fdod__SampleBatch *b = NULL;
		int rc = wire_batch_decode(cut, len, NULL, &b);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE);
		if (rc == FDO_EPARSE)
			parse_errors++;
		if (rc == FDO_OK) {
			/* A field boundary: must validate or fail cleanly. */
			wire_batch_validate(b, NULL, NULL, 0);
			wire_batch_free(b);
		}
		free(cut);
	}
	CHECK(parse_errors > 0);
	/* Cut inside the last field: certainly malformed. */
	Fdod__SampleBatch *b = NULL;
	CHECK(wire_batch_decode(bytes, n - 1, NULL, &b) == FDO_EPARSE);
	free(bytes);
	wire_batch_free(a);
}

/* xorshift64*: deterministic garbage. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

TEST(random_garbage_never_crashes)
{
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *good = NULL;
	size_t gn = 0;
	REQUIRE(wire_batch_encode(a, NULL, &good, &gn) == FDO_OK);
	int ok = 0, bad = 0;
	for (int i = 0; i < 20000; i++) {
		size_t len;
		uint8_t *buf;
		if (i % 2) {
			/* Pure noise. */
			len = next() % 300;
			buf = malloc(len ? len : 1);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)next();
		} else {
			/* A valid message with a few bytes flipped. */
			len = gn;
			buf = malloc(len);
			memcpy(buf, good, len);
			for (int k = 0; k < 3; k++)
				buf[next() % len] = (uint8_t)next();
		}
		Fdod__SampleBatch *b = NULL;
		int rc = wire_batch_decode(buf, len, NULL, &b);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT ||
		      rc == FDO_EINVAL); /* a NUL in a string */
		if (rc == FDO_OK) {
			ok++;
			char err[256];
			char *text = NULL;
			/* Whatever decodes must survive validate and print. */
			if (wire_batch_validate(b, NULL, err, sizeof err) ==
			    FDO_OK) {
				Fdod__SampleBatch *c = NULL;
				REQUIRE(wire_batch_print_text(b, &text, NULL) ==
					FDO_OK);
				CHECK(wire_batch_parse_text(
					      text, strlen(text), NULL, &c, err,
					      sizeof err) == FDO_OK);
				wire_batch_free(c);
				free(text);
			} else if (wire_batch_print_text(b, &text, NULL) ==
				   FDO_OK) {
				free(text);
			}
			wire_batch_free(b);
		} else {
			bad++;
		}
		Fdod__Ack *ack = NULL;
		rc = wire_ack_decode(buf, len, 0, &ack);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT);
		wire_ack_free(ack);
		free(buf);
	}
	CHECK(ok > 0 && bad > 0);
	free(good);
	wire_batch_free(a);
}

TEST(oversized_is_limit)
{
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_batch_encode(a, NULL, &bytes, &n) == FDO_OK);
	struct wire_limits lim = wire_limits_default;
	lim.max_message_bytes = n - 1;
	Fdod__SampleBatch *b = NULL;
	CHECK(wire_batch_decode(bytes, n, &lim, &b) == FDO_ELIMIT);
	CHECK(b == NULL);
	uint8_t *out = NULL;
	size_t on = 0;
	CHECK(wire_batch_encode(a, &lim, &out, &on) == FDO_ELIMIT);
	CHECK(out == NULL);
	lim.max_message_bytes = n;
	CHECK(wire_batch_decode(bytes, n, &lim, &b) == FDO_OK);
	wire_batch_free(b);
	free(bytes);
	wire_batch_free(a);
}

TEST(decode_memory_is_bounded)
{
	/*
	 * 100000 empty Stack sub-messages: 2 bytes each on the wire (tag 13,
	 * length 0) but ~56 bytes each once decoded.
	 */
	size_t count = 100000, len = 2 * count;
	uint8_t *buf = malloc(len);
	for (size_t i = 0; i < count; i++) {
		buf[2 * i] = 13 << 3 | 2;
		buf[2 * i + 1] = 0;
	}
	struct wire_limits lim = wire_limits_default;
	lim.max_decoded_bytes = 1 << 20;
	Fdod__SampleBatch *b = NULL;
	CHECK(wire_batch_decode(buf, len, &lim, &b) == FDO_ELIMIT);
	CHECK(b == NULL);
	lim.max_decoded_bytes = 64u << 20;
	REQUIRE(wire_batch_decode(buf, len, &lim, &b) == FDO_OK);
	CHECK_EQ_INT(b->n_stacks, count);
	char err[128];
	CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_EINVAL);
	wire_batch_free(b);
	free(buf);
}

/* An arena decode re-encodes to the input's bytes. */
static int arena_round_trips(struct wire_arena *ar, const uint8_t *bytes,
			     size_t n)
{
	Fdod__SampleBatch *b = NULL;
	if (wire_batch_decode_in(ar, bytes, n, NULL, &b) != FDO_OK)
		return 0;
	uint8_t *again = NULL;
	size_t n2 = 0;
	int same = wire_batch_encode(b, NULL, &again, &n2) == FDO_OK &&
		   n2 == n && memcmp(again, bytes, n) == 0;
	free(again);
	return same;
}

/* Both decoders on the same bytes: the same status and, when they
 * succeed, structures that encode to the same bytes (unknown fields
 * included). Returns 1 when they agree. */
static int decoders_agree(struct wire_arena *ar, const uint8_t *buf, size_t len)
{
	Fdod__SampleBatch *m = NULL, *x = NULL;
	int rm = wire_batch_decode(buf, len, NULL, &m);
	int rx = wire_batch_decode_in(ar, buf, len, NULL, &x);
	int same = rm == rx;
	if (same && rm == FDO_OK) {
		uint8_t *e1 = NULL, *e2 = NULL;
		size_t n1 = 0, n2 = 0;
		same = wire_batch_encode(m, NULL, &e1, &n1) ==
			       wire_batch_encode(x, NULL, &e2, &n2) &&
		       n1 == n2 && (!n1 || !memcmp(e1, e2, n1));
		free(e1);
		free(e2);
	}
	if (!same)
		fprintf(stderr, "  decoders differ (%d, %d) on %zu bytes\n", rm,
			rx, len);
	wire_batch_free(m);
	wire_arena_reset(ar);
	return same;
}

TEST(receivers_decoder_agrees_with_protobuf_c)
{
	CHECK(wire_decoder_matches_schema());
	struct wire_arena *ar = wire_arena_new();
	REQUIRE(ar);
	/* Edge cases of the wire format, each a whole message. */
	static const struct {
		const char *what;
		uint8_t b[16];
		size_t n;
	} edge[] = {
		{"empty", {0}, 0},
		{"field number 0", {0x00, 0x01}, 2},
		{"field 0 in a 2-byte tag", {0x80, 0x01, 0x01}, 3},
		{"field 16 in a 2-byte tag", {0x82, 0x01, 0x01, 0x41}, 4},
		{"tag of 6 bytes", {0x88, 0x80, 0x80, 0x80, 0x80, 0x01, 0}, 7},
		{"truncated tag", {0x88}, 1},
		{"varint of 10 bytes",
		 {0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		  0x7f},
		 11},
		{"varint of 11 bytes",
		 {0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		  0x80, 0x00},
		 12},
		{"uint32 truncated", {0x08, 0xff, 0xff, 0xff, 0xff, 0x7f}, 6},
		{"wire type 3", {0x0b}, 1},
		{"wire type 4", {0x0c}, 1},
		{"wire type 6", {0x0e, 0}, 2},
		{"wire type 7", {0x0f, 0}, 2},
		{"unknown 32-bit", {0xfd, 0x01, 1, 2, 3, 4}, 6},
		{"unknown 32-bit short", {0xfd, 0x01, 1, 2, 3}, 5},
		{"unknown 64-bit", {0xf9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
		{"unknown length-prefixed", {0xfa, 0x01, 2, 9, 9}, 5},
		{"string as varint", {0x10, 0x01}, 2},
		{"uint64 as 64-bit", {0x19, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
		{"double as varint", {0x48, 0x01}, 2},
		{"double", {0x49, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, 9},
		{"last string wins", {0x12, 1, 'a', 0x12, 2, 'b', 'c'}, 7},
		{"string with NUL", {0x12, 3, 'a', 0, 'b'}, 5},
		{"length of 5 bytes",
		 {0x12, 0x81, 0x80, 0x80, 0x80, 0x00, 'a'},
		 7},
		{"length of 6 bytes",
		 {0x12, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'a'},
		 8},
		{"length 2^32 + 1",
		 {0x12, 0x81, 0x80, 0x80, 0x80, 0x10, 'a'},
		 7},
		{"length past the end", {0x12, 5, 'a'}, 3},
		{"stack, packed and not",
		 {0x6a, 8, 0x10, 5, 0x12, 2, 6, 7, 0x10, 8},
		 10},
		{"stack, packed, unterminated",
		 {0x6a, 4, 0x12, 2, 0x81, 0x82},
		 6},
		{"stack, packed, empty", {0x6a, 2, 0x12, 0}, 4},
		{"stack, addrs as 64-bit",
		 {0x6a, 9, 0x11, 1, 2, 3, 4, 5, 6, 7, 8},
		 11},
		{"stack as varint", {0x68, 1}, 2},
		{"stack with unknown field", {0x6a, 4, 0x08, 3, 0x78, 1}, 6},
		{"label, bad inside", {0x32, 2, 0x0b, 0}, 4},
		{"mapping, empty build-id", {0x62, 2, 0x12, 0}, 4},
		{"mapping, build-id twice",
		 {0x62, 6, 0x12, 1, 7, 0x12, 1, 8},
		 8},
		{"branch", {0x72, 4, 0x08, 1, 0x10, 2}, 6},
	};
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
		int agree = decoders_agree(ar, edge[i].b, edge[i].n);
		if (!agree)
			fprintf(stderr, "  case: %s\n", edge[i].what);
		CHECK(agree);
	}

	/* A valid batch with every kind of field, mutated. */
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *good = NULL;
	size_t gn = 0;
	REQUIRE(wire_batch_encode(a, NULL, &good, &gn) == FDO_OK);
	uint8_t *buf = malloc(gn + 64);
	REQUIRE(buf);
	int disagree = 0;
	for (int i = 0; i < 40000 && disagree < 5; i++) {
		size_t len = gn;
		memcpy(buf, good, gn);
		switch (i % 4) {
		case 0: /* bytes changed */
			for (int k = 0; k < 1 + i % 3; k++)
				buf[next() % len] = (uint8_t)next();
			break;
		case 1: /* a byte set to a boundary value */
			buf[next() % len] =
				(uint8_t[]){0, 1, 0x7f, 0x80, 0xff}[next() % 5];
			break;
		case 2: { /* a run of bytes inserted */
			size_t at = next() % len, n = 1 + next() % 8;
			memmove(buf + at + n, buf + at, len - at);
			for (size_t k = 0; k < n; k++)
				buf[at + k] = (uint8_t)next();
			len += n;
			break;
		}
		default: { /* a run removed */
			size_t at = next() % len, n = 1 + next() % 8;
			if (at + n > len)
				n = len - at;
			memmove(buf + at, buf + at + n, len - at - n);
			len -= n;
			break;
		}
		}
		disagree += !decoders_agree(ar, buf, len);
	}
	CHECK_EQ_INT(disagree, 0);
	/* Truncations and noise. */
	for (size_t n = 0; n <= gn; n++)
		CHECK(decoders_agree(ar, good, n));
	for (int i = 0; i < 20000; i++) {
		size_t len = next() % 64;
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)next();
		CHECK(decoders_agree(ar, buf, len));
	}
	free(buf);
	free(good);
	wire_batch_free(a);
	wire_arena_free(ar);
}

static size_t put_varint(uint8_t *o, uint64_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		o[n++] = (uint8_t)(v | 0x80);
	o[n++] = (uint8_t)v;
	return n;
}

/* Packed addresses long enough for the decoder's 32-byte blocks (40
 * bytes and more), of values of every length: 1 to 10 bytes, and now and
 * then 11 or more (malformed), an unterminated one at the end, a value
 * whose 10th byte holds more than the 64th bit (truncated alike). */
TEST(packed_values_of_every_length_decode_alike)
{
	struct wire_arena *ar = wire_arena_new();
	REQUIRE(ar);
	uint8_t pay[600], msg[640];
	int disagree = 0;
	for (int i = 0; i < 20000 && disagree < 5; i++) {
		size_t n = 0, want = 40 + next() % 400;
		int bad = i % 7 == 0;
		while (n < want) {
			size_t len = 1 + next() % 10;
			if (bad && next() % 16 == 0)
				len = 11 + next() % 30;
			for (size_t k = 0; k + 1 < len; k++)
				pay[n++] = (uint8_t)(0x80 | next());
			pay[n++] = (uint8_t)(next() & 0x7f);
		}
		if (bad && i % 2)
			pay[n - 1] |= 0x80; /* unterminated */
		size_t m = 0, sub = 1 + put_varint(msg, n) + n;
		uint8_t hdr[16];
		size_t h = put_varint(hdr, sub);
		msg[m++] = 0x6a; /* stacks */
		memcpy(msg + m, hdr, h);
		m += h;
		msg[m++] = 0x12; /* addrs, packed */
		m += put_varint(msg + m, n);
		memcpy(msg + m, pay, n);
		m += n;
		disagree += !decoders_agree(ar, msg, m);
	}
	CHECK_EQ_INT(disagree, 0);
	wire_arena_free(ar);
}

TEST(arena_decodes_as_malloc_does_and_reuses_its_blocks)
{
	struct wire_arena *ar = wire_arena_new();
	REQUIRE(ar);
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *small = NULL;
	size_t ns = 0;
	REQUIRE(wire_batch_encode(a, NULL, &small, &ns) == FDO_OK);
	/* A batch that needs several blocks: 20000 stacks of 8 addresses. */
	size_t nst = 20000;
	Fdod__Stack *st = calloc(nst, sizeof *st);
	Fdod__Stack **sp = calloc(nst, sizeof *sp);
	uint64_t addrs[8];
	for (size_t k = 0; k < 8; k++)
		addrs[k] = 0x555555555a10ull + 16 * k;
	for (size_t i = 0; i < nst; i++) {
		fdod__stack__init(&st[i]);
		st[i].count = i + 1;
		st[i].n_addrs = 8;
		st[i].addrs = addrs;
		sp[i] = &st[i];
	}
	Fdod__Stack **keep = a->stacks;
	size_t nkeep = a->n_stacks;
	a->stacks = sp;
	a->n_stacks = nst;
	uint8_t *big = NULL;
	size_t nb = 0;
	REQUIRE(wire_batch_encode(a, NULL, &big, &nb) == FDO_OK);
	a->stacks = keep;
	a->n_stacks = nkeep;
	CHECK(nb > 200000);
	/* Small, big, small, big...: each decode after a reset reuses or
	 * replaces blocks, none sees another's bytes. */
	for (int round = 0; round < 6; round++) {
		CHECK(arena_round_trips(ar, round % 2 ? big : small,
					round % 2 ? nb : ns));
		wire_arena_reset(ar);
	}
	/* Two batches live in one arena at once. */
	Fdod__SampleBatch *x = NULL, *y = NULL;
	REQUIRE(wire_batch_decode_in(ar, big, nb, NULL, &x) == FDO_OK);
	REQUIRE(wire_batch_decode_in(ar, small, ns, NULL, &y) == FDO_OK);
	CHECK_EQ_INT(x->n_stacks, nst);
	CHECK_EQ_INT(x->stacks[nst - 1]->count, nst);
	CHECK_EQ_STR(y->agent_id, "host-17/agent");
	wire_arena_reset(ar);
	/* Errors: truncated, over the decode budget, over the size limit;
	 * the arena works on afterwards. */
	CHECK(wire_batch_decode_in(ar, small, ns - 1, NULL, &x) == FDO_EPARSE);
	struct wire_limits lim = wire_limits_default;
	lim.max_decoded_bytes = 64 << 10;
	CHECK(wire_batch_decode_in(ar, big, nb, &lim, &x) == FDO_ELIMIT);
	lim = wire_limits_default;
	lim.max_message_bytes = nb - 1;
	CHECK(wire_batch_decode_in(ar, big, nb, &lim, &x) == FDO_ELIMIT);
	CHECK(arena_round_trips(ar, big, nb));
	wire_arena_free(ar);
	wire_arena_free(NULL);
	free(big);
	free(small);
	free(sp);
	free(st);
	wire_batch_free(a);
}

TEST(ack_round_trip)
{
	Fdod__Ack a;
	fdod__ack__init(&a);
	a.status = FDO_EBUSY;
	a.message = "busy, retry later";
	a.seq = 42;
	a.duplicate = 1;
	a.samples_accepted = 100;
	a.samples_dropped = 23;
	a.samples_unmapped = 20;
	a.frames_unmapped = 7;
	a.branches_accepted = 5;
	a.branches_unmapped = 1;
	a.retry_after_ms = 250;
	a.schema_version = WIRE_SCHEMA_VERSION;
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_ack_encode(&a, &bytes, &n) == FDO_OK);
	Fdod__Ack *b = NULL;
	REQUIRE(wire_ack_decode(bytes, n, 0, &b) == FDO_OK);
	CHECK_EQ_INT(b->status, 18);
	CHECK_EQ_STR(b->message, "busy, retry later");
	CHECK_EQ_INT(b->seq, 42);
	CHECK(b->duplicate);
	CHECK_EQ_INT(b->samples_accepted, 100);
	CHECK_EQ_INT(b->samples_dropped, 23);
	CHECK_EQ_INT(b->samples_unmapped, 20);
	CHECK_EQ_INT(b->frames_unmapped, 7);
	CHECK_EQ_INT(b->branches_accepted, 5);
	CHECK_EQ_INT(b->branches_unmapped, 1);
	CHECK_EQ_INT(b->retry_after_ms, 250);
	CHECK_EQ_INT(b->schema_version, 1);
	wire_ack_free(b);
	b = NULL;
	CHECK(wire_ack_decode(bytes, n, n - 1, &b) == FDO_ELIMIT);
	CHECK(wire_ack_decode(bytes, n - 1, 0, &b) == FDO_EPARSE);
	CHECK(b == NULL);
	free(bytes);
}

TEST(ack_too_large_to_encode)
{
	Fdod__Ack a;
	fdod__ack__init(&a);
	char *msg = malloc(WIRE_ACK_MAX_BYTES + 1);
	memset(msg, 'x', WIRE_ACK_MAX_BYTES);
	msg[WIRE_ACK_MAX_BYTES] = '\0';
	a.message = msg;
	uint8_t *bytes = NULL;
	size_t n = 0;
	CHECK(wire_ack_encode(&a, &bytes, &n) == FDO_ELIMIT);
	CHECK(bytes == NULL);
	free(msg);
}

TEST(broken_struct_is_not_encoded)
{
	Fdod__SampleBatch b;
	fdod__sample_batch__init(&b);
	b.n_stacks = 2; /* but no array */
	uint8_t *bytes = NULL;
	size_t n = 0;
	CHECK(wire_batch_encode(&b, NULL, &bytes, &n) == FDO_EINVAL);
	CHECK(bytes == NULL);
}

/* Issue 21: a NUL byte inside a string (a binary name, a label value in a
 * sub-message) would cut the C string short; both decoders refuse it. */
TEST(nul_in_a_string_is_refused_by_both_decoders)
{
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_batch_encode(a, NULL, &bytes, &n) == FDO_OK);
	wire_batch_free(a);
	struct wire_arena *ar = wire_arena_new();
	REQUIRE(ar);
	const char *const names[] = {"webserver", "serving", "/lib/libc.so.6"};
	for (size_t k = 0; k < 3; k++) {
		uint8_t *copy = malloc(n);
		REQUIRE(copy);
		memcpy(copy, bytes, n);
		uint8_t *at = memmem(copy, n, names[k], strlen(names[k]));
		REQUIRE(at);
		at[3] = 0;
		Fdod__SampleBatch *b = NULL;
		CHECK_EQ_INT(wire_batch_decode(copy, n, NULL, &b), FDO_EINVAL);
		CHECK(b == NULL);
		CHECK_EQ_INT(wire_batch_decode_in(ar, copy, n, NULL, &b),
			     FDO_EINVAL);
		wire_arena_reset(ar);
		free(copy);
	}
	/* Bytes fields (the build-id) may hold any byte. */
	Fdod__SampleBatch *b = NULL;
	CHECK_EQ_INT(wire_batch_decode_in(ar, bytes, n, NULL, &b), FDO_OK);
	CHECK(b && b->mappings[1]->build_id.data[0] == 0);
	wire_arena_free(ar);
	free(bytes);
}

/* Issue 21: the identity fields and the token, read before decoding. */
TEST(peek_reads_the_identity_before_decoding)
{
	Fdod__SampleBatch *a = example_batch();
	REQUIRE(a);
	a->auth_token = strdup("tok-0123456789abcdef");
	uint8_t *bytes = NULL;
	size_t n = 0;
	REQUIRE(wire_batch_encode(a, NULL, &bytes, &n) == FDO_OK);
	wire_batch_free(a);
	struct wire_batch_head h;
	REQUIRE(wire_batch_peek(bytes, n, NULL, &h) == FDO_OK);
	CHECK(h.agent_id.len == 13 &&
	      !memcmp(h.agent_id.p, "host-17/agent", 13));
	CHECK(h.host.len == 7 && !memcmp(h.host.p, "host-17", 7));
	CHECK(h.binary.len == 9 && !memcmp(h.binary.p, "webserver", 9));
	CHECK(h.auth_token.len == 20 &&
	      !memcmp(h.auth_token.p, "tok-0123456789abcdef", 20));
	/* Truncated at the top level: malformed, as decoding says. */
	CHECK_EQ_INT(wire_batch_peek(bytes, n - 1, NULL, &h), FDO_EPARSE);
	struct wire_limits small = wire_limits_default;
	small.max_message_bytes = n - 1;
	CHECK_EQ_INT(wire_batch_peek(bytes, n, &small, &h), FDO_ELIMIT);
	CHECK_EQ_INT(wire_batch_peek(NULL, 0, NULL, &h), FDO_OK);
	CHECK_EQ_INT(h.auth_token.len, 0);
	free(bytes);
}
