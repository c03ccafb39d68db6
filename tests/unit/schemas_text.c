/* Tests for schemas/text.c: the text form of a SampleBatch, parse and print. */
#include "schemas/schemas.h"
#include "tests/unit/test.h"

/* DESIGN.md "Text form", with a real 20-byte build-id. */
static const char design_example[] =
	"agent   host-17/agent      # agent id\n"
	"seq     42                 # per-agent sequence number (exactly-once)\n"
	"host    host-17\n"
	"binary  webserver\n"
	"label   mode=serving\n"
	"event   cpu-clock\n"
	"period  1000000            # sampling period, in the event's unit\n"
	"weight  2.5                # fleet weight of this batch\n"
	"time    1763719200 1763719260          # window start and end, unix "
	"seconds\n"
	"mapping 0 5f3c0a1b2c3d4e5f60718293a4b5c6d7e8f901e1 555555554000 "
	"555555600000 0 /usr/bin/webserver   # index build-id start limit "
	"file-offset path\n"
	"stack   120 555555555a10 555555555c33 7ffff7dd2d90                  # "
	"count, then addresses\n"
	"branch  555555555a10 555555555b00 37                                  # "
	"from to count (LBR)\n";

static const char design_canonical[] =
	"agent   host-17/agent\n"
	"seq     42\n"
	"host    host-17\n"
	"binary  webserver\n"
	"label   mode=serving\n"
	"event   cpu-clock\n"
	"period  1000000\n"
	"weight  2.5\n"
	"time    1763719200 1763719260\n"
	"mapping 0 5f3c0a1b2c3d4e5f60718293a4b5c6d7e8f901e1 555555554000 "
	"555555600000 0 /usr/bin/webserver\n"
	"stack   120 555555555a10 555555555c33 7ffff7dd2d90\n"
	"branch  555555555a10 555555555b00 37\n";

static int parse(const char *text, Fdod__SampleBatch **b, char *err,
		 size_t errlen)
{
	return wire_batch_parse_text(text, strlen(text), NULL, b, err, errlen);
}

/* Two batches are equal when their (deterministic) encodings are. */
static int same_batch(const Fdod__SampleBatch *a, const Fdod__SampleBatch *b)
{
	uint8_t *x, *y;
	size_t nx, ny;
	if (wire_batch_encode(a, NULL, &x, &nx) ||
	    wire_batch_encode(b, NULL, &y, &ny))
		return 0;
	int same = nx == ny && memcmp(x, y, nx) == 0;
	free(x);
	free(y);
	return same;
}

TEST(parses_design_example)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	int rc = parse(design_example, &b, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(b->schema_version, WIRE_SCHEMA_VERSION);
	CHECK_EQ_STR(b->agent_id, "host-17/agent");
	CHECK_EQ_INT(b->seq, 42);
	CHECK_EQ_STR(b->host, "host-17");
	CHECK_EQ_STR(b->binary, "webserver");
	REQUIRE(b->n_labels == 1);
	CHECK_EQ_STR(b->labels[0]->key, "mode");
	CHECK_EQ_STR(b->labels[0]->value, "serving");
	CHECK_EQ_STR(b->event, "cpu-clock");
	CHECK_EQ_INT(b->period, 1000000);
	CHECK(b->weight == 2.5);
	CHECK_EQ_INT(b->time_start, 1763719200);
	CHECK_EQ_INT(b->time_end, 1763719260);
	REQUIRE(b->n_mappings == 1);
	const Fdod__Mapping *m = b->mappings[0];
	CHECK_EQ_INT(m->index, 0);
	REQUIRE(m->build_id.len == 20);
	CHECK(m->build_id.data[0] == 0x5f && m->build_id.data[19] == 0xe1);
	CHECK(m->start == 0x555555554000ull);
	CHECK(m->limit == 0x555555600000ull);
	CHECK_EQ_INT(m->file_offset, 0);
	CHECK_EQ_STR(m->path, "/usr/bin/webserver");
	REQUIRE(b->n_stacks == 1);
	CHECK_EQ_INT(b->stacks[0]->count, 120);
	REQUIRE(b->stacks[0]->n_addrs == 3);
	CHECK(b->stacks[0]->addrs[0] == 0x555555555a10ull);
	CHECK(b->stacks[0]->addrs[2] == 0x7ffff7dd2d90ull);
	REQUIRE(b->n_branches == 1);
	CHECK(b->branches[0]->from == 0x555555555a10ull);
	CHECK(b->branches[0]->to == 0x555555555b00ull);
	CHECK_EQ_INT(b->branches[0]->count, 37);
	CHECK_EQ_INT(b->branches[0]->mispredicts, 0);
	CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_OK);
	wire_batch_free(b);
}

TEST(prints_canonical_form)
{
	Fdod__SampleBatch *b = NULL;
	REQUIRE(parse(design_example, &b, NULL, 0) == FDO_OK);
	char *text = NULL;
	size_t len = 0;
	REQUIRE(wire_batch_print_text(b, &text, &len) == FDO_OK);
	CHECK_EQ_STR(text, design_canonical);
	CHECK_EQ_INT(len, strlen(design_canonical));
	free(text);
	wire_batch_free(b);
}

/* Escapes, 0x and upper-case hex, any order, mispredicts, CRLF, comments. */
TEST(round_trips_through_print)
{
	const char *inputs[] = {
		design_example,
		"agent a%20b%23c%25d\nseq 18446744073709551615\nhost h\xc3\xa9te\n"
		"binary web+server_2.x\nlabel region=eu-west\nlabel mode=a=b%20c\n"
		"event cycles\nperiod 1\nweight 0.1\ntime 0 86400\n"
		"mapping 7 00 1000 2000 ff /tmp/my%20file%20(deleted)\n"
		"mapping 3 "
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		" 0x3000 0X4000 0\n"
		"stack 3 0x1A10 0X1c33\t\r\n"
		"stack 1 ffffffffffffffff\n"
		"branch 1a10 1b00 37 5\n",
		/* No labels, mappings, stacks or branches at all. */
		"agent a\nseq 1\nhost h\nbinary b\nevent e\nperiod 7\n"
		"weight 1e-06\ntime 5 5\n",
	};
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		Fdod__SampleBatch *a = NULL, *b = NULL;
		char err[256] = "";
		int rc = parse(inputs[i], &a, err, sizeof err);
		if (rc)
			fprintf(stderr, "  input %zu: %s\n", i, err);
		REQUIRE(rc == FDO_OK);
		char *text = NULL;
		REQUIRE(wire_batch_print_text(a, &text, NULL) == FDO_OK);
		rc = parse(text, &b, err, sizeof err);
		if (rc)
			fprintf(stderr, "  reparse %zu: %s\n%s", i, err, text);
		REQUIRE(rc == FDO_OK);
		CHECK(same_batch(a, b));
		/* Printing is a fixed point. */
		char *again = NULL;
		REQUIRE(wire_batch_print_text(b, &again, NULL) == FDO_OK);
		CHECK_EQ_STR(again, text);
		free(again);
		free(text);
		wire_batch_free(a);
		wire_batch_free(b);
	}
}

TEST(decodes_escapes_and_hex_variants)
{
	const char *text =
		"agent a%20b%23c%25d\nseq 9\nhost h\nbinary b\nevent e\n"
		"period 1\ntime 1 2\nlabel k=v%2Cw\n"
		"mapping 1 ab 0x1000 0X2000 10 /x%09y\n"
		"stack 2 0xABC def\n";
	Fdod__SampleBatch *b = NULL;
	char err[256];
	/* A ',' in a label value is refused even when escaped. */
	CHECK(parse(text, &b, err, sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "line 8:") != NULL);
	const char *ok =
		"agent a%20b%23c%25d\nseq 9\nhost h\nbinary b\nevent e\n"
		"period 1\ntime 1 2\nmapping 1 ab 0x1000 0X2000 10 /x%20y\n"
		"stack 2 0xABC def\n";
	int rc = parse(ok, &b, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_STR(b->agent_id, "a b#c%d");
	CHECK(b->weight == 1.0); /* default */
	CHECK(b->mappings[0]->start == 0x1000 &&
	      b->mappings[0]->limit == 0x2000);
	CHECK(b->mappings[0]->file_offset == 0x10);
	CHECK_EQ_STR(b->mappings[0]->path, "/x y");
	CHECK(b->stacks[0]->addrs[0] == 0xabc &&
	      b->stacks[0]->addrs[1] == 0xdef);
	wire_batch_free(b);
}

/* A valid header: lines 1..7. Errors below are on line 8 unless noted. */
#define HDR                                                                    \
	"agent a\nseq 1\nhost h\nbinary b\nevent e\nperiod 1000\ntime 10 20\n"

static const struct err_case {
	const char *text;
	int code;
	const char *want; /* substring of the message */
} err_cases[] = {
	{HDR "frobnicate 1\n", FDO_EPARSE,
	 "line 8: unknown keyword 'frobnicate'"},
	{HDR "stack 1 55xz\n", FDO_EPARSE,
	 "line 8: address '55xz' is not a hex"},
	{HDR "stack 1 0x\n", FDO_EPARSE, "line 8: address '0x' is not a hex"},
	{HDR "stack 1 12345678901234567\n", FDO_EPARSE, "line 8: address"},
	{HDR "stack 1\n", FDO_EINVAL, "line 8: stack has no address"},
	{HDR "stack 0 1000\n", FDO_EINVAL, "line 8: count is 0"},
	{HDR "stack x 1000\n", FDO_EPARSE,
	 "line 8: stack count 'x' is not a decimal"},
	{HDR "branch 1 2\n", FDO_EPARSE,
	 "line 8: wrong number of fields for 'branch'"},
	{HDR "branch 1 2 3 4\n", FDO_EINVAL,
	 "line 8: mispredicts 4 exceed count 3"},
	{HDR "mapping 0 5F3C 1000 2000 0\n", FDO_EBAD_BUILD_ID,
	 "line 8: build-id '5F3C' is not 2..128 lowercase hex"},
	{HDR "mapping 0 abc 1000 2000 0\n", FDO_EBAD_BUILD_ID,
	 "line 8: build-id 'abc'"},
	{HDR "mapping 0 0xab 1000 2000 0\n", FDO_EBAD_BUILD_ID,
	 "line 8: build-id"},
	{HDR
	 "mapping 0 "
	 "0011223344556677889900112233445566778899001122334455667788990011"
	 "001122334455667788990011223344556677889900112233445566778899001122"
	 " 1000 2000 0\n",
	 FDO_EBAD_BUILD_ID, "line 8: build-id"},
	{HDR "mapping 0 ab 2000 2000 0\n", FDO_EINVAL,
	 "line 8: start 2000 is not below limit 2000"},
	{HDR "mapping 0 ab 1000 2000\n", FDO_EPARSE,
	 "usage: mapping INDEX BUILDID"},
	{HDR "mapping 0 ab 1000 2000 0\nmapping 0 cd 3000 4000 0\n", FDO_EINVAL,
	 "line 9: mapping index 0 already used on line 8"},
	{HDR "mapping 0 ab 1000 2000 0\nmapping 1 cd 1fff 4000 0\n", FDO_EINVAL,
	 "line 9: mapping 1 overlaps mapping 0 (line 8)"},
	{HDR "mapping 4294967296 ab 1000 2000 0\n", FDO_EPARSE,
	 "line 8: mapping index"},
	{HDR "seq 2\n", FDO_EPARSE,
	 "line 8: 'seq' given twice (first on line 2)"},
	{HDR "label mode\n", FDO_EPARSE,
	 "line 8: label 'mode' is not KEY=VALUE"},
	{HDR "label mode=\n", FDO_EINVAL, "line 8: label value is missing"},
	{HDR "label mo/de=x\n", FDO_EINVAL, "line 8: label key: byte 2"},
	{HDR "label a=1\nlabel a=2\n", FDO_EINVAL,
	 "line 9: label key 'a' appears twice"},
	{HDR "label a=%zz\n", FDO_EPARSE, "line 8: label value: bad escape"},
	{HDR "label a=%0\n", FDO_EPARSE, "line 8: label value: bad escape"},
	{HDR "label a=b%00\n", FDO_EPARSE, "line 8: label value: bad escape"},
	{HDR "label a=\xff\n", FDO_EINVAL,
	 "line 8: label value: invalid UTF-8"},
	{HDR "label a=b%01\n", FDO_EINVAL,
	 "line 8: label value: control character"},
	{HDR "weight abc\n", FDO_EPARSE,
	 "line 8: weight 'abc' is not a number"},
	{HDR "weight nan\n", FDO_EINVAL, "line 8: weight nan must be finite"},
	{HDR "weight -1\n", FDO_EINVAL,
	 "line 8: weight -1 must be finite and > 0"},
	{HDR "weight 0\n", FDO_EINVAL, "line 8: weight 0"},
	{HDR "weight 1e-9\n", FDO_ELIMIT, "line 8: weight 1e-09 rounds to 0"},
	{HDR "weight 2e6\n", FDO_ELIMIT, "line 8: weight 2e+06 exceeds limit"},
	{HDR "host x\tbad\x01\n", FDO_EPARSE, "line 8: control character 0x01"},
	{"agent a\nseq 0\n", FDO_EINVAL, "line 2: seq must be >= 1"},
	{"agent a\nseq 18446744073709551616\n", FDO_EPARSE,
	 "line 2: seq '18446744073709551616' does not fit 64 bits"},
	{"agent a\nseq -1\n", FDO_EPARSE, "line 2: seq '-1' is not a decimal"},
	{"agent\n", FDO_EPARSE, "line 1: wrong number of fields for 'agent'"},
	{"agent a b\n", FDO_EPARSE,
	 "line 1: wrong number of fields for 'agent'"},
	{"binary ../etc\n", FDO_EINVAL,
	 "line 1: binary must not start with '.'"},
	{"binary a/b\n", FDO_EINVAL, "line 1: binary: byte 1"},
	{"time 20 10\n", FDO_EINVAL, "line 1: time: start 20 is after end 10"},
	{"time 0 100000\n", FDO_ELIMIT, "line 1: time: window of 100000 s"},
	{"period 0\n", FDO_EINVAL, "line 1: period is missing"},
	{"period 1000000000001\n", FDO_ELIMIT,
	 "line 1: period 1000000000001 exceeds"},
	{"", FDO_EINVAL, "end of input: missing 'agent'"},
	{"# nothing\n\n", FDO_EINVAL, "end of input: missing 'agent'"},
	{"agent a\nhost h\nbinary b\nevent e\nperiod 1\ntime 1 2\n", FDO_EINVAL,
	 "end of input: missing 'seq'"},
	{"agent a\nseq 1\nhost h\nevent e\nperiod 1\ntime 1 2\n", FDO_EINVAL,
	 "end of input: missing 'binary'"},
	{"agent a\nseq 1\nhost h\nbinary b\nevent e\nperiod 1\n", FDO_EINVAL,
	 "end of input: missing 'time'"},
};

TEST(errors_name_their_line)
{
	for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
		const struct err_case *c = &err_cases[i];
		Fdod__SampleBatch *b =
			(Fdod__SampleBatch *)&err_cases; /* poison */
		char err[256] = "";
		int rc = parse(c->text, &b, err, sizeof err);
		if (rc != c->code || !strstr(err, c->want)) {
			fprintf(stderr,
				"  case %zu: rc %s, err \"%s\"; want %s, \"%s\"\n",
				i, fdo_errname(rc), err, fdo_errname(c->code),
				c->want);
			test_failed_now = 1;
		}
		/* out is untouched on error */
		CHECK(b == (Fdod__SampleBatch *)&err_cases);
	}
}

TEST(nul_byte_is_refused_with_its_line)
{
	const char text[] = "agent a\nseq 1\nho\0st h\n";
	Fdod__SampleBatch *b = NULL;
	char err[128];
	CHECK(wire_batch_parse_text(text, sizeof text - 1, NULL, &b, err,
				    sizeof err) == FDO_EPARSE);
	CHECK(strstr(err, "line 3: NUL byte") != NULL);
	CHECK(b == NULL);
}

TEST(text_limits)
{
	struct wire_limits lim = wire_limits_default;
	lim.max_stack_depth = 3;
	lim.max_stacks = 2;
	lim.max_labels = 1;
	lim.max_mappings = 1;
	lim.max_branches = 1;
	lim.max_frames = 4;
	lim.max_text_bytes = 400;
	struct {
		const char *text;
		int code;
		const char *want;
	} cases[] = {
		{HDR "stack 1 1 2 3 4\n", FDO_ELIMIT,
		 "line 8: 4 addresses, limit 3"},
		{HDR "stack 1 1 2 3 4 5 6 7 8 9\n", FDO_ELIMIT,
		 "line 8: stack: more than 3"},
		{HDR "stack 1 1\nstack 1 2\nstack 1 3\n", FDO_ELIMIT,
		 "line 10: more than 2 stacks"},
		{HDR "stack 1 1 2 3\nstack 1 2 3\n", FDO_ELIMIT,
		 "line 9: more than 4 addresses in all stacks"},
		{HDR "label a=1\nlabel b=2\n", FDO_ELIMIT,
		 "line 9: more than 1 labels"},
		{HDR "mapping 0 ab 1 2 0\nmapping 1 ab 3 4 0\n", FDO_ELIMIT,
		 "line 9: more than 1 mappings"},
		{HDR "branch 1 2 3\nbranch 1 2 3\n", FDO_ELIMIT,
		 "line 9: more than 1 branches"},
		{HDR "stack 1000000001 1\n", FDO_ELIMIT,
		 "line 8: count 1000000001 exceeds"},
		{HDR
		 "# padding padding padding padding padding padding padding\n"
		 "# padding padding padding padding padding padding padding\n"
		 "# padding padding padding padding padding padding padding\n"
		 "# padding padding padding padding padding padding padding\n"
		 "# padding padding padding padding padding padding padding\n"
		 "# padding padding padding padding padding padding padding\n",
		 FDO_ELIMIT, "text is 409 bytes, limit 400"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Fdod__SampleBatch *b = NULL;
		char err[256] = "";
		int rc = wire_batch_parse_text(cases[i].text,
					       strlen(cases[i].text), &lim, &b,
					       err, sizeof err);
		if (rc != cases[i].code || !strstr(err, cases[i].want)) {
			fprintf(stderr,
				"  case %zu: rc %s, err \"%s\"; want \"%s\"\n",
				i, fdo_errname(rc), err, cases[i].want);
			test_failed_now = 1;
		}
		CHECK(b == NULL);
	}
	/* Exactly at every limit is fine. */
	const char *at = HDR "stack 1 1 2 3\nstack 1000000000 4\nlabel a=1\n"
			     "mapping 0 ab 1 2 0\nbranch 1 2 3\n";
	Fdod__SampleBatch *b = NULL;
	char err[256] = "";
	int rc = wire_batch_parse_text(at, strlen(at), &lim, &b, err,
				       sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK(rc == FDO_OK);
	wire_batch_free(b);
}

TEST(long_token_in_error_is_shortened)
{
	char text[600];
	snprintf(text, sizeof text, "%s", HDR "stack 1 ");
	size_t n = strlen(text);
	memset(text + n, 'z', 500);
	text[n + 500] = '\n';
	text[n + 501] = '\0';
	Fdod__SampleBatch *b = NULL;
	char err[128];
	CHECK(parse(text, &b, err, sizeof err) == FDO_EPARSE);
	CHECK(strstr(err, "line 8: address 'zzzz") != NULL);
	CHECK(strstr(err, "...'") != NULL);
	/* A tiny error buffer is truncated, not overrun. */
	char small[8];
	CHECK(parse(text, &b, small, sizeof small) == FDO_EPARSE);
	CHECK_EQ_INT(strlen(small), 7);
}

TEST(print_leaves_out_unset_and_token)
{
	Fdod__SampleBatch b;
	fdod__sample_batch__init(&b);
	b.auth_token = "secret";
	char *text = NULL;
	REQUIRE(wire_batch_print_text(&b, &text, NULL) == FDO_OK);
	CHECK_EQ_STR(text, "weight  0\n");
	CHECK(strstr(text, "secret") == NULL);
	free(text);
}
