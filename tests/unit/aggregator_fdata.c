/*
 * Tests for aggregator/fdata.c: llvm-bolt branch records read back against
 * a hand-made symbol table: globals, locals by ordinal, escaped names,
 * entries from outside, calls, memory records skipped, records naming
 * unknown functions dropped, and the refusals (no_lbr, a BOLTed binary's
 * profile, malformed lines, absurd counts, over-long lines) with the line
 * they name.
 */
#include "aggregator/blocks.h"
#include "common/common.h"
#include "tests/unit/test.h"

static const struct sym_func FUNCS[] = {
	{0x1000, 0x40, "main", 0, SYM_BIND_GLOBAL},
	{0x1040, 0x20, "mix", 1, SYM_BIND_LOCAL},
	{0x1060, 0x20, "mix", 2, SYM_BIND_LOCAL},
	{0x1080, 0x10, "with space", 0, SYM_BIND_WEAK},
	{0x1090, 0x30, ".Lcold", 1, SYM_BIND_LOCAL},
};
#define NF (sizeof FUNCS / sizeof FUNCS[0])

static int parse(const char *text, struct agg_branch **x, size_t *n, char *err)
{
	return agg_fdata_parse(text, strlen(text), FUNCS, NF, x, n, err, 256);
}

TEST(records_of_instrumentation)
{
	const char *t = "1 main 10 1 main 20 0 100\n"
			"1 main 1c 1 mix/2 0 0 100\n"
			"1 mix/2 8 1 mix/2 10 3 12.5\n"
			"0 [unknown] 0 1 main 0 0 1\n"
			"1 with\\ space 4 1 PG.Lcold/1 0 0 5\n"
			"4 main 10 4 table 0 7\n"	/* memory: skipped */
			"1 main 4 1 nosuch 0 0 9\n"	/* unknown: dropped */
			"1 main 4 0 libc.so 1234 0 9\n" /* out: dropped */
			"1 main 0 1 main 20 0 0\n";	/* zero: dropped */
	struct agg_branch *x;
	size_t n;
	char err[256];
	REQUIRE(parse(t, &x, &n, err) == FDO_OK);
	REQUIRE(n == 5);
	CHECK(x[0].from == 0x1010 && x[0].to == 0x1020 && x[0].count == 100);
	CHECK(x[1].from == 0x101c && x[1].to == 0x1060);
	CHECK(x[2].from == 0x1068 && x[2].to == 0x1070 && x[2].count == 12.5);
	CHECK(x[3].from == 0 && x[3].to == 0x1000 && x[3].count == 1);
	CHECK(x[4].from == 0x1084 && x[4].to == 0x1090 && x[4].count == 5);
	free(x);
}

TEST(offsets_past_the_function_are_dropped)
{
	struct agg_branch *x;
	size_t n;
	char err[256];
	REQUIRE(parse("1 mix/1 20 1 mix/1 4 0 3\n1 mix/1 4 1 mix/1 8 0 3\n", &x,
		      &n, err) == FDO_OK);
	CHECK(n == 1 && x[0].from == 0x1044);
	free(x);
}

TEST(refusals_name_the_line)
{
	struct agg_branch *x;
	size_t n;
	char err[256];
	CHECK_EQ_INT(parse("no_lbr cpu-clock:\n1 main 4 10\n", &x, &n, err),
		     FDO_EINVAL);
	CHECK(strstr(err, "no_lbr") != NULL);
	CHECK_EQ_INT(parse("1 main 4 1 main 8 0 1\nboltedcollection\n", &x, &n,
			   err),
		     FDO_EINVAL);
	CHECK(strstr(err, "line 2") != NULL);
	const char *bad[] = {
		"1 main 4 1 main 8 0\n",       /* a field short */
		"1 main 4 1 main 8 0 1 9\n",   /* a field too many */
		"1 main 0x4 1 main 8 0 1\n",   /* 0x */
		"1 main 4 1 main 8 0 -1\n",    /* negative */
		"1 main 4 1 main 8 0 1e300\n", /* absurd */
		"1 main 4 1 main 8 0 nan\n",   /* not a number */
		"7 main 4 1 main 8 0 1\n",     /* kind */
		"1\tmain 4 1 main 8 0 1\n",    /* tab */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char text[128];
		snprintf(text, sizeof text, "1 main 4 1 main 8 0 1\n%s",
			 bad[i]);
		CHECK_EQ_INT(parse(text, &x, &n, err), FDO_EPARSE);
		CHECK(strstr(err, "line 2") != NULL);
	}
	char *longline = malloc(10000);
	REQUIRE(longline);
	memset(longline, 'a', 9999);
	longline[9999] = 0;
	CHECK_EQ_INT(parse(longline, &x, &n, err), FDO_ELIMIT);
	free(longline);
}

TEST(empty_text_is_no_records)
{
	struct agg_branch *x;
	size_t n = 7;
	char err[256];
	CHECK_EQ_INT(parse("", &x, &n, err), FDO_OK);
	CHECK(n == 0);
	free(x);
}
