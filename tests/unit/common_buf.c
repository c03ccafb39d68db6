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
