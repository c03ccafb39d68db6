/* Tests for common/buf.c: fdo_grow and the byte buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "tests/unit/test.h"

struct pair {
	uint64_t a, b;
};

TEST(grow_doubles_from_16_and_keeps_elements)
{
	struct pair *v = NULL;
	size_t cap = 0;
	REQUIRE(fdo_grow(v, cap, 1) == FDO_OK);
	CHECK_EQ_INT(cap, 16);
	for (size_t i = 0; i < 16; i++)
		v[i] = (struct pair){i, ~i};
	REQUIRE(fdo_grow(v, cap, 17) == FDO_OK);
	CHECK_EQ_INT(cap, 32);
	REQUIRE(fdo_grow(v, cap, 1000) == FDO_OK);
	CHECK_EQ_INT(cap, 1024);
	for (size_t i = 0; i < 16; i++)
		CHECK(v[i].a == i && v[i].b == ~i);
	free(v);
}

TEST(grow_within_capacity_changes_nothing)
{
	uint32_t *v = NULL;
	size_t cap = 0;
	REQUIRE(fdo_grow(v, cap, 16) == FDO_OK);
	uint32_t *before = v;
	REQUIRE(fdo_grow(v, cap, 0) == FDO_OK);
	REQUIRE(fdo_grow(v, cap, 16) == FDO_OK);
	CHECK(v == before);
	CHECK_EQ_INT(cap, 16);
	free(v);
}

TEST(grow_zeroed_zeroes_only_new_slots)
{
	int *v = NULL;
	size_t cap = 0;
	REQUIRE(fdo_grow_zeroed(v, cap, 3) == FDO_OK);
	for (size_t i = 0; i < cap; i++)
		CHECK_EQ_INT(v[i], 0);
	for (size_t i = 0; i < cap; i++)
		v[i] = 7;
	size_t old = cap;
	REQUIRE(fdo_grow_zeroed(v, cap, old + 1) == FDO_OK);
	for (size_t i = 0; i < old; i++)
		CHECK_EQ_INT(v[i], 7);
	for (size_t i = old; i < cap; i++)
		CHECK_EQ_INT(v[i], 0);
	free(v);
}

TEST(grow_refuses_overflow_and_leaves_array)
{
	struct pair *v = NULL;
	size_t cap = 0;
	REQUIRE(fdo_grow(v, cap, 4) == FDO_OK);
	struct pair *before = v;
	/* need * elem overflows size_t; so does doubling past SIZE_MAX / 2 */
	CHECK_EQ_INT(fdo_grow(v, cap, SIZE_MAX / sizeof *v + 1), FDO_ENOMEM);
	CHECK_EQ_INT(fdo_grow(v, cap, SIZE_MAX), FDO_ENOMEM);
	CHECK(v == before);
	CHECK_EQ_INT(cap, 16);
	free(v);
}

TEST(buf_appends_and_terminates)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, "abc");
	fdo_buf_printf(&b, "-%d", 42);
	CHECK_EQ_STR(fdo_buf_cstr(&b), "abc-42");
	CHECK_EQ_INT(b.len, 6);
	CHECK_EQ_INT(b.oom, 0);
	fdo_buf_fini(&b);
}

TEST(header_value_of_an_answer)
{
	const char h[] = "HTTP/1.1 200 OK\r\n"
			 "X-Fdod-Stale-Fresh: 0.0486\r\n"
			 "x-fdod-stale-functions:  fresh=5,matched=3 \r\n"
			 "X-Fdod-Stale-Freshness: no\r\n"
			 "X-Odd: a b\tc;<d>\xff-e\r\n"
			 "X-Fdod-Stale-Fresh: 0.9\r\n\r\n";
	char out[16];
	/* The first line that is the name and a colon, case-insensitive;
	 * spaces and CR left out. */
	CHECK_EQ_INT(fdo_header_value(h, sizeof h - 1, "X-Fdod-Stale-Fresh",
				      out, sizeof out),
		     1);
	CHECK_EQ_STR(out, "0.0486");
	CHECK_EQ_INT(fdo_header_value(h, sizeof h - 1, "X-Fdod-Stale-Functions",
				      out, sizeof out),
		     1);
	CHECK_EQ_STR(out, "fresh=5,matched");
	/* Only letters, digits and ".=,_-". */
	CHECK_EQ_INT(
		fdo_header_value(h, sizeof h - 1, "X-Odd", out, sizeof out), 1);
	CHECK_EQ_STR(out, "abcd-e");
	/* A prefix of a name is not the name; absent: 0 and "". */
	CHECK_EQ_INT(fdo_header_value(h, sizeof h - 1, "X-Fdod-Stale", out,
				      sizeof out),
		     0);
	CHECK_EQ_STR(out, "");
	/* Within the bytes given: a line cut before its colon is not it. */
	CHECK_EQ_INT(fdo_header_value(h, 20, "X-Fdod-Stale-Fresh", out,
				      sizeof out),
		     0);
	CHECK_EQ_INT(fdo_header_value("A:", 2, "A", out, 1), 1);
	CHECK_EQ_STR(out, "");
}
