/*
 * fuzz/fuzz_batch.c — what an agent's bytes go through on fdod's ingest
 * path (server/ingest_edge.c srv_ingest_message): wire_batch_decode, then
 * prep_build (wire_batch_validate, label canonicalization, address
 * normalization, stack hashing), then the prep's WAL record codec. The same
 * bytes are also decoded as an Ack (what fdo-agent and fdoctl read back).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - prep_build refuses every batch wire_batch_validate refuses;
 *   - every normalized frame and branch names an existing mapping, and the
 *     accepted + unmapped samples add up to the batch's counts;
 *   - the WAL record of a prep decodes (prep_decode) to a prep that encodes
 *     to the same bytes;
 *   - a valid batch survives the text form: parse(print(b)) == b
 *     (schemas/README.md), compared as protobuf bytes;
 *   - encode(decode(x)) (without unknown fields) decodes again and
 *     validates the same;
 *   - fdod's own decoder (wire_batch_decode_in, what its receivers use,
 *     written apart from protobuf-c) gives the same result and the same
 *     re-encoded bytes, unknown fields included (both refuse a NUL byte
 *     in a string);
 *   - wire_batch_peek (the identity a token is checked on before the
 *     batch is decoded) reads the agent, host, binary and token the
 *     decoders read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "fuzz/fuzz.h"
#include "schemas/schemas.h"

/* Hide (or restore) the unknown fields of m: protobuf-c keeps them and
 * encodes them again as read (a field number 0 among them, which its
 * decoder then refuses); fdod never re-encodes a message it received, and
 * the text form has no place for them. */
static void hide_unknown(ProtobufCMessage *m, unsigned *saved, int restore)
{
	if (restore)
		m->n_unknown_fields = *saved;
	else {
		*saved = m->n_unknown_fields;
		m->n_unknown_fields = 0;
	}
}

static void check_ack(const uint8_t *data, size_t size)
{
	Fdod__Ack *ack = NULL;
	if (wire_ack_decode(data, size, 0, &ack) != FDO_OK)
		return;
	uint8_t *enc = NULL;
	size_t len = 0;
	unsigned saved;
	hide_unknown(&ack->base, &saved, 0);
	int rc = wire_ack_encode(ack, &enc, &len);
	hide_unknown(&ack->base, &saved, 1);
	if (rc == FDO_OK) {
		Fdod__Ack *again = NULL;
		FUZZ_CHECK(wire_ack_decode(enc, len, 0, &again) == FDO_OK);
		FUZZ_CHECK(again->status == ack->status &&
			   again->seq == ack->seq &&
			   !strcmp(again->message, ack->message));
		wire_ack_free(again);
		free(enc);
	}
	wire_ack_free(ack);
}

static void hide_all_unknown(Fdod__SampleBatch *b, unsigned *saved, int restore)
{
	size_t k = 0;
	hide_unknown(&b->base, &saved[k++], restore);
	for (size_t i = 0; i < b->n_labels; i++)
		hide_unknown(&b->labels[i]->base, &saved[k++], restore);
	for (size_t i = 0; i < b->n_mappings; i++)
		hide_unknown(&b->mappings[i]->base, &saved[k++], restore);
	for (size_t i = 0; i < b->n_stacks; i++)
		hide_unknown(&b->stacks[i]->base, &saved[k++], restore);
	for (size_t i = 0; i < b->n_branches; i++)
		hide_unknown(&b->branches[i]->base, &saved[k++], restore);
}

/* The protobuf bytes of b without what the text form does not carry:
 * schema_version (0 reads as 1), auth_token, unknown fields. */
static void text_canon(Fdod__SampleBatch *b, uint8_t **out, size_t *len)
{
	uint32_t sv = b->schema_version;
	char *tok = b->auth_token;
	size_t n =
		1 + b->n_labels + b->n_mappings + b->n_stacks + b->n_branches;
	unsigned *saved = calloc(n, sizeof *saved);
	FUZZ_CHECK(saved != NULL);
	b->schema_version = WIRE_SCHEMA_VERSION;
	b->auth_token = (char *)protobuf_c_empty_string;
	hide_all_unknown(b, saved, 0);
	FUZZ_CHECK(wire_batch_encode(b, NULL, out, len) == FDO_OK);
	hide_all_unknown(b, saved, 1);
	b->schema_version = sv;
	b->auth_token = tok;
	free(saved);
}

static void check_text_roundtrip(Fdod__SampleBatch *b)
{
	char *text = NULL;
	size_t tlen = 0;
	FUZZ_CHECK(wire_batch_print_text(b, &text, &tlen) == FDO_OK);
	Fdod__SampleBatch *back = NULL;
	char err[256];
	int rc =
		wire_batch_parse_text(text, tlen, NULL, &back, err, sizeof err);
	if (rc != FDO_OK) {
		fprintf(stderr, "valid batch does not read back: %s\n%s\n", err,
			text);
		abort();
	}
	uint8_t *x, *y;
	size_t xl, yl;
	text_canon(b, &x, &xl);
	text_canon(back, &y, &yl);
	if (xl != yl || memcmp(x, y, xl)) {
		char *t2 = NULL;
		wire_batch_print_text(back, &t2, NULL);
		fprintf(stderr, "parse(print(b)) != b\n%s\nread back as\n%s\n",
			text, t2 ? t2 : "?");
		abort();
	}
	free(x);
	free(y);
	free(text);
	wire_batch_free(back);
}

static void check_prep(const Fdod__SampleBatch *b, int valid)
{
	struct agg_result res;
	memset(&res, 0, sizeof res);
	struct prep *p = NULL;
	int rc = prep_build(b, &wire_limits_default, 3600, &p, &res);
	if (valid != FDO_OK)
		FUZZ_CHECK(rc != FDO_OK);
	if (rc != FDO_OK)
		return;
	uint64_t total = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		total += b->stacks[i]->count;
	FUZZ_CHECK(res.samples_accepted + res.samples_unmapped == total);
	FUZZ_CHECK(p->b.nmaps == b->n_mappings);
	for (size_t i = 0; i < p->b.nstacks; i++) {
		const struct store_walstack *s = &p->b.stacks[i];
		FUZZ_CHECK(s->n >= 1 && s->samples >= 1);
		FUZZ_CHECK((uint64_t)s->first + s->n <= p->b.nframes);
	}
	for (size_t i = 0; i < p->b.nframes; i++)
		FUZZ_CHECK(p->b.frames[i].map < p->b.nmaps);
	for (size_t i = 0; i < p->b.nbranches; i++)
		FUZZ_CHECK(p->b.branches[i].map < p->b.nmaps);

	/* The WAL record codec: encode, decode, encode again. */
	struct fdo_buf rec, again;
	fdo_buf_init(&rec);
	fdo_buf_init(&again);
	FUZZ_CHECK(store_walbatch_encode(&p->b, &rec) == FDO_OK);
	struct prep *q = NULL;
	FUZZ_CHECK(prep_decode((const uint8_t *)rec.data, rec.len, &q) ==
		   FDO_OK);
	FUZZ_CHECK(store_walbatch_encode(&q->b, &again) == FDO_OK);
	FUZZ_CHECK(rec.len == again.len &&
		   !memcmp(rec.data, again.data, rec.len));
	prep_free(q);
	fdo_buf_fini(&rec);
	fdo_buf_fini(&again);
	prep_free(p);
}

/* The arena decode of fdod's receivers (kept across inputs, as a
 * receiving thread keeps it) agrees with the malloc decode: the same
 * result, and a batch that encodes to the same bytes. */
static struct wire_arena *arena;

static void check_arena(const uint8_t *data, size_t size, int rc,
			const Fdod__SampleBatch *b)
{
	if (!arena)
		FUZZ_CHECK((arena = wire_arena_new()) != NULL);
	Fdod__SampleBatch *a = NULL;
	int ra = wire_batch_decode_in(arena, data, size, NULL, &a);
	FUZZ_CHECK(ra == rc);
	if (ra == FDO_OK) {
		uint8_t *e1 = NULL, *e2 = NULL;
		size_t n1 = 0, n2 = 0;
		int r1 = wire_batch_encode(b, NULL, &e1, &n1);
		int r2 = wire_batch_encode(a, NULL, &e2, &n2);
		FUZZ_CHECK(r1 == r2);
		FUZZ_CHECK(n1 == n2 && (!n1 || !memcmp(e1, e2, n1)));
		free(e1);
		free(e2);
	}
	wire_arena_reset(arena);
}

/* A peeked field is the decoded string (which holds no NUL: decoding
 * refuses that). */
static int same_str(const struct wire_str *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return w->len == n && (!n || !memcmp(w->p, s, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_ack(data, size);

	/* A WAL record is CRC-checked before replay, but its decoder is
	 * bounds-checked anyway: feed it the raw bytes too. */
	struct prep *raw = NULL;
	if (prep_decode(data, size, &raw) == FDO_OK)
		prep_free(raw);

	Fdod__SampleBatch *b = NULL;
	int rc = wire_batch_decode(data, size, NULL, &b);
	check_arena(data, size, rc, b);
	struct wire_batch_head h;
	int rp = wire_batch_peek(data, size, NULL, &h);
	if (rc != FDO_OK)
		return 0;
	/* What the receiver checks the token on before decoding is what the
	 * decoder reads. */
	FUZZ_CHECK(rp == FDO_OK);
	FUZZ_CHECK(same_str(&h.agent_id, b->agent_id) &&
		   same_str(&h.host, b->host) &&
		   same_str(&h.binary, b->binary) &&
		   same_str(&h.auth_token, b->auth_token));
	char err[256];
	int valid = wire_batch_validate(b, NULL, err, sizeof err);
	check_prep(b, valid);
	if (valid == FDO_OK)
		check_text_roundtrip(b);

	/* Unknown fields left out: see hide_unknown. */
	size_t nmsg =
		1 + b->n_labels + b->n_mappings + b->n_stacks + b->n_branches;
	unsigned *saved = calloc(nmsg, sizeof *saved);
	FUZZ_CHECK(saved != NULL);
	hide_all_unknown(b, saved, 0);
	uint8_t *enc = NULL;
	size_t len = 0;
	int enc_rc = wire_batch_encode(b, NULL, &enc, &len);
	hide_all_unknown(b, saved, 1);
	free(saved);
	if (enc_rc == FDO_OK) {
		Fdod__SampleBatch *again = NULL;
		FUZZ_CHECK(wire_batch_decode(enc, len, NULL, &again) == FDO_OK);
		FUZZ_CHECK(wire_batch_validate(again, NULL, err, sizeof err) ==
			   valid);
		wire_batch_free(again);
		free(enc);
	}
	wire_batch_free(b);
	return 0;
}
