/*
 * Tests for common/map.c: put finds or inserts, get finds, growth keeps
 * every key, clear forgets, a zeroed map works without init.
 */
#include "common/common.h"
#include "common/map.h"
#include "tests/unit/test.h"

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
