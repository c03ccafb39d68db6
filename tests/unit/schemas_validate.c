/*
 * Tests for schemas/validate.c: every documented rule and limit of a
 * SampleBatch, on batches as protobuf senders build them (not via text).
 */
#include <math.h>

#include "schemas/schemas.h"
#include "tests/unit/test.h"

static const char base_text[] =
	"agent a\nseq 1\nhost h\nbinary b\nevent e\nperiod 1000\nweight 1\n"
	"time 10 20\nlabel k=v\n"
	"mapping 0 ab 1000 2000 0 /bin/x\nmapping 1 cd 3000 4000 0\n"
	"stack 5 1010 3010\nbranch 1010 1020 4 1\n";

static Fdod__SampleBatch *base(void)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	if (wire_batch_parse_text(base_text, strlen(base_text), NULL, &b, err,
				  sizeof err))
		fprintf(stderr, "  base: %s\n", err);
	return b;
}

/* Run one mutation on a fresh base batch and check code and message. */
#define EXPECT(mutation, lim, code, want)                                      \
	do {                                                                   \
		Fdod__SampleBatch *b = base();                                 \
		REQUIRE(b);                                                    \
		mutation;                                                      \
		char err[256] = "";                                            \
		int rc_ = wire_batch_validate(b, lim, err, sizeof err);        \
		if (rc_ != (code) || !strstr(err, want)) {                     \
			fprintf(stderr,                                        \
				"  %s:%d: %s: rc %s, err \"%s\"; want %s, "    \
				"\"%s\"\n",                                    \
				__FILE__, __LINE__, #mutation,                 \
				fdo_errname(rc_), err, fdo_errname(code),      \
				want);                                         \
			test_failed_now = 1;                                   \
		}                                                              \
		wire_batch_free(b);                                            \
	} while (0)

/* Replace a malloc'd string field. */
static void set(char **field, const char *v)
{
	if (*field != protobuf_c_empty_string)
		free(*field);
	*field = strdup(v);
}

/* Append a label the way a protobuf sender would (all malloc'd). */
static void add_label(Fdod__SampleBatch *b, const char *k, const char *v)
{
	Fdod__Label *l = malloc(sizeof *l);
	fdod__label__init(l);
	l->key = strdup(k);
	l->value = strdup(v);
	b->labels = realloc(b->labels, (b->n_labels + 1) * sizeof *b->labels);
	b->labels[b->n_labels++] = l;
}

TEST(base_is_valid)
{
	EXPECT((void)0, NULL, FDO_OK, "");
	EXPECT(b->schema_version = 0, NULL, FDO_OK, "");
}

TEST(required_fields)
{
	EXPECT(set(&b->agent_id, ""), NULL, FDO_EINVAL, "agent is missing");
	EXPECT(b->seq = 0, NULL, FDO_EINVAL, "seq is missing");
	EXPECT(set(&b->host, ""), NULL, FDO_EINVAL, "host is missing");
	EXPECT(set(&b->binary, ""), NULL, FDO_EINVAL, "binary is missing");
	EXPECT(set(&b->event, ""), NULL, FDO_EINVAL, "event is missing");
	EXPECT(b->period = 0, NULL, FDO_EINVAL, "period is missing");
	EXPECT(b->weight = 0, NULL, FDO_EINVAL,
	       "weight 0 must be finite and > 0");
	EXPECT(b->time_start = b->time_end = 0, NULL, FDO_EINVAL,
	       "time is missing");
	/* A NULL string counts as unset, not as a crash. */
	EXPECT(free(b->host);
	       b->host = NULL, NULL, FDO_EINVAL, "host is missing");
}

TEST(schema_version)
{
	EXPECT(b->schema_version = WIRE_SCHEMA_VERSION + 1, NULL,
	       FDO_EUNSUPPORTED, "schema_version 2 is newer than 1");
}

TEST(names)
{
	EXPECT(set(&b->binary, "a/b"), NULL, FDO_EINVAL, "binary: byte 1");
	EXPECT(set(&b->binary, ".hidden"), NULL, FDO_EINVAL,
	       "must not start with '.'");
	EXPECT(set(&b->binary, "web+server-2_x.y"), NULL, FDO_OK, "");
	EXPECT(set(&b->host, "h\x01"), NULL, FDO_EINVAL,
	       "host: control character at byte 1");
	EXPECT(set(&b->host, "h\x7f"), NULL, FDO_EINVAL, "control character");
	EXPECT(set(&b->host, "h\xc3"), NULL, FDO_EINVAL,
	       "host: invalid UTF-8 at byte 1");
	EXPECT(set(&b->host, "\xc0\xaf"), NULL, FDO_EINVAL, "invalid UTF-8");
	EXPECT(set(&b->host, "\xed\xa0\x80"), NULL, FDO_EINVAL,
	       "invalid UTF-8");
	EXPECT(set(&b->host, "\xf4\x90\x80\x80"), NULL, FDO_EINVAL,
	       "invalid UTF-8");
	EXPECT(set(&b->host, "h\xc3\xa9t\xe2\x82\xac\xf0\x9f\x98\x80 x"), NULL,
	       FDO_OK, "");
	EXPECT(set(&b->mappings[0]->path, "/bin/\xff"), NULL, FDO_EINVAL,
	       "mapping 0: path: invalid UTF-8");
}

TEST(name_lengths)
{
	struct wire_limits lim = wire_limits_default;
	lim.max_name_len = 4;
	lim.max_path_len = 6;
	EXPECT(set(&b->agent_id, "abcd"), &lim, FDO_OK, "");
	EXPECT(set(&b->agent_id, "abcde"), &lim, FDO_ELIMIT,
	       "agent is 5 bytes, limit 4");
	EXPECT(set(&b->host, "abcde"), &lim, FDO_ELIMIT, "host is 5 bytes");
	EXPECT(set(&b->binary, "abcde"), &lim, FDO_ELIMIT, "binary is 5 bytes");
	EXPECT(set(&b->event, "abcde"), &lim, FDO_ELIMIT, "event is 5 bytes");
	EXPECT(set(&b->mappings[0]->path, "/bin/xy"), &lim, FDO_ELIMIT,
	       "mapping 0: path is 7 bytes, limit 6");
}

TEST(labels)
{
	struct wire_limits lim = wire_limits_default;
	lim.max_label_key_len = 3;
	lim.max_label_value_len = 3;
	lim.max_labels = 1;
	EXPECT(set(&b->labels[0]->key, "abcd"), &lim, FDO_ELIMIT,
	       "label 0: label key is 4 bytes, limit 3");
	EXPECT(set(&b->labels[0]->value, "abcd"), &lim, FDO_ELIMIT,
	       "label 0: label value is 4 bytes, limit 3");
	EXPECT(set(&b->labels[0]->key, "a=b"), NULL, FDO_EINVAL,
	       "label 0: label key: byte 1");
	EXPECT(set(&b->labels[0]->value, "a,b"), NULL, FDO_EINVAL,
	       "label 0: label value must not contain ','");
	EXPECT(set(&b->labels[0]->value, ""), NULL, FDO_EINVAL,
	       "label 0: label value is missing");
	/* Two labels: over the count limit, and a duplicate key. */
	EXPECT(add_label(b, "k", "w"), NULL, FDO_EINVAL,
	       "label key 'k' appears twice");
	EXPECT(add_label(b, "z", "w"), &lim, FDO_ELIMIT, "2 labels, limit 1");
	EXPECT(add_label(b, "z", "w"), NULL, FDO_OK, "");
	/* The whole set is bounded too: "k=v" and "z=w", 4 bytes each. */
	lim = wire_limits_default;
	lim.max_labels_bytes = 7;
	EXPECT(add_label(b, "z", "w"), &lim, FDO_ELIMIT,
	       "labels take more than 7 bytes as key=value pairs");
	lim.max_labels_bytes = 8;
	EXPECT(add_label(b, "z", "w"), &lim, FDO_OK, "");
}

/* The default bounds let every batch through that the store can keep:
 * ten long labels in the limits are refused by validation, not later. */
TEST(label_set_bound_matches_the_store)
{
	Fdod__SampleBatch *b = base();
	char k[8], v[251];
	memset(v, 'x', 250);
	v[250] = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof k, "k%d", i);
		add_label(b, k, v);
	}
	char err[256];
	CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_ELIMIT);
	wire_batch_free(b);
}

TEST(mappings)
{
	uint8_t big[FDO_BUILD_ID_MAX + 1] = {0};
	EXPECT(b->mappings[0]->build_id.len = 0, NULL, FDO_EBAD_BUILD_ID,
	       "mapping 0: build-id is 0 bytes, must be 1..64");
	EXPECT(free(b->mappings[0]->build_id.data);
	       b->mappings[0]->build_id.data = malloc(sizeof big);
	       b->mappings[0]->build_id.len = sizeof big, NULL,
	       FDO_EBAD_BUILD_ID, "build-id is 65 bytes");
	EXPECT(free(b->mappings[0]->build_id.data);
	       b->mappings[0]->build_id.data = calloc(1, 64);
	       b->mappings[0]->build_id.len = 64, NULL, FDO_OK, "");
	EXPECT(b->mappings[0]->limit = 0x1000, NULL, FDO_EINVAL,
	       "mapping 0: start 1000 is not below limit 1000");
	EXPECT(b->mappings[1]->index = 0, NULL, FDO_EINVAL,
	       "mapping index 0 appears twice");
	EXPECT(b->mappings[1]->start = 0x1fff, NULL, FDO_EINVAL,
	       "mapping 1 overlaps mapping 0");
	/* Order does not matter; touching is not overlapping. */
	EXPECT(Fdod__Mapping *t = b->mappings[0];
	       b->mappings[0] = b->mappings[1]; b->mappings[1] = t;
	       b->mappings[1]->limit = 0x3000, NULL, FDO_OK, "");
	EXPECT(Fdod__Mapping *t = b->mappings[0];
	       b->mappings[0] = b->mappings[1]; b->mappings[1] = t;
	       b->mappings[1]->limit = 0x3001, NULL, FDO_EINVAL,
	       "mapping 1 overlaps mapping 0");
	struct wire_limits lim = wire_limits_default;
	lim.max_mappings = 1;
	EXPECT((void)0, &lim, FDO_ELIMIT, "2 mappings, limit 1");
}

TEST(stacks)
{
	struct wire_limits lim = wire_limits_default;
	EXPECT(b->stacks[0]->count = 0, NULL, FDO_EINVAL,
	       "stack 0: count is 0");
	EXPECT(b->stacks[0]->n_addrs = 0, NULL, FDO_EINVAL,
	       "stack 0: stack has no address");
	EXPECT(b->stacks[0]->count = 1000000001, NULL, FDO_ELIMIT,
	       "stack 0: count 1000000001 exceeds limit 1000000000");
	EXPECT(b->stacks[0]->count = 1000000000, NULL, FDO_OK, "");
	lim.max_stack_depth = 1;
	EXPECT((void)0, &lim, FDO_ELIMIT, "stack 0: 2 addresses, limit 1");
	lim = wire_limits_default;
	lim.max_stacks = 0;
	EXPECT((void)0, &lim, FDO_ELIMIT, "1 stacks, limit 0");
	lim = wire_limits_default;
	lim.max_frames = 1;
	EXPECT((void)0, &lim, FDO_ELIMIT,
	       "stack 0: more than 1 addresses in all stacks");
	lim.max_count = 4;
	lim.max_frames = 2;
	EXPECT((void)0, &lim, FDO_ELIMIT, "stack 0: count 5 exceeds limit 4");
}

TEST(branches)
{
	EXPECT(b->branches[0]->count = 0, NULL, FDO_EINVAL,
	       "branch 0: count is 0");
	EXPECT(b->branches[0]->mispredicts = 5, NULL, FDO_EINVAL,
	       "branch 0: mispredicts 5 exceed count 4");
	EXPECT(b->branches[0]->count = 2000000000, NULL, FDO_ELIMIT,
	       "branch 0: count 2000000000 exceeds");
	struct wire_limits lim = wire_limits_default;
	lim.max_branches = 0;
	EXPECT((void)0, &lim, FDO_ELIMIT, "1 branches, limit 0");
}

TEST(period_weight_time)
{
	EXPECT(b->period = 1000000000000ull, NULL, FDO_OK, "");
	EXPECT(b->period = 1000000000001ull, NULL, FDO_ELIMIT,
	       "period 1000000000001 exceeds limit 1000000000000");
	EXPECT(b->weight = NAN, NULL, FDO_EINVAL, "must be finite");
	EXPECT(b->weight = INFINITY, NULL, FDO_EINVAL, "must be finite");
	EXPECT(b->weight = -2, NULL, FDO_EINVAL, "must be finite and > 0");
	EXPECT(b->weight = 1e-7, NULL, FDO_ELIMIT, "rounds to 0");
	EXPECT(b->weight = 1e-6, NULL, FDO_OK, "");
	EXPECT(b->weight = 1e6, NULL, FDO_OK, "");
	EXPECT(b->weight = 1000000.5, NULL, FDO_ELIMIT,
	       "weight 1e+06 exceeds limit 1e+06");
	/* Issue 21: a huge weight is over the limit, not "rounding to 0". */
	EXPECT(b->weight = 1e300, NULL, FDO_ELIMIT,
	       "weight 1e+300 exceeds limit 1e+06");
	EXPECT(b->time_start = 21, NULL, FDO_EINVAL,
	       "time: start 21 is after end 20");
	EXPECT(b->time_start = 20, NULL, FDO_OK, "");
	EXPECT(b->time_start = 0; b->time_end = 86400, NULL, FDO_OK, "");
	EXPECT(b->time_start = 0;
	       b->time_end = 86401, NULL, FDO_ELIMIT,
	       "time: window of 86401 s exceeds limit 86400 s");
}

TEST(null_elements_are_invalid_not_fatal)
{
	EXPECT(free(b->stacks[0]->addrs); free(b->stacks[0]);
	       b->stacks[0] = NULL, NULL, FDO_EINVAL, "stack 0 is missing");
}

TEST(no_error_buffer_is_fine)
{
	wire_batch_free(NULL);
	Fdod__SampleBatch *b = base();
	REQUIRE(b);
	b->seq = 0;
	CHECK(wire_batch_validate(b, NULL, NULL, 0) == FDO_EINVAL);
	wire_batch_free(b);
}
