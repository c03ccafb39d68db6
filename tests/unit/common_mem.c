/*
 * Tests for common/mem.c: the plan gives each part its weight's share of
 * the budget, explicit caps win and the rest is shared among the others,
 * caps over the budget are reported (with the parts named) and still
 * filled, minimums are kept; the default budget; the counters take, give,
 * set, raise and say when a part is full.
 */
#include <pthread.h>

#include "common/common.h"
#include "common/mem.h"
#include "tests/unit/test.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

TEST(every_part_gets_its_weight_of_the_budget)
{
	uint64_t given[FDO_MEM_PARTS] = {0}, caps[FDO_MEM_PARTS];
	char err[512] = "";
	CHECK_EQ_INT(fdo_mem_plan(GIB, given, NULL, caps, err, sizeof err), 0);
	uint64_t sum = 0;
	unsigned w = 0;
	for (int p = 0; p < FDO_MEM_PARTS; p++) {
		CHECK_EQ_INT(caps[p], GIB / 16 * fdo_mem_weight(p));
		sum += caps[p];
		w += fdo_mem_weight(p);
	}
	CHECK_EQ_INT(w, 16);
	CHECK_EQ_INT(sum, GIB);
	/* The shares operations.md documents. */
	CHECK_EQ_INT(caps[FDO_MEM_INGEST], 128 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_MERGE], 192 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_LMDB], 256 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_DWARF], 128 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_INFLATE], 64 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_HTTP], 64 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_PROFILES], 64 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_BUILDS], 128 * MIB);
	CHECK_EQ_STR(fdo_mem_name(FDO_MEM_INGEST), "ingest");
	CHECK_EQ_STR(fdo_mem_name(FDO_MEM_PROFILES), "profiles");
}

TEST(explicit_caps_win_and_the_rest_is_shared)
{
	uint64_t given[FDO_MEM_PARTS] = {0}, caps[FDO_MEM_PARTS];
	char err[512] = "";
	given[FDO_MEM_DWARF] = 512 * MIB;
	given[FDO_MEM_HTTP] = 16 * MIB;
	CHECK_EQ_INT(fdo_mem_plan(GIB, given, NULL, caps, err, sizeof err), 0);
	CHECK_EQ_INT(caps[FDO_MEM_DWARF], 512 * MIB);
	CHECK_EQ_INT(caps[FDO_MEM_HTTP], 16 * MIB);
	/* 496 MiB left over weights 3+2+4+2+2 = 13. */
	uint64_t rest = GIB - 528 * MIB, sum = 0;
	CHECK_EQ_INT(caps[FDO_MEM_LMDB], rest / 13 * 4 + rest % 13 * 4 / 13);
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		sum += caps[p];
	CHECK(sum <= GIB);
	CHECK(sum > GIB - 16);
}

TEST(caps_over_the_budget_are_an_error_naming_them)
{
	uint64_t given[FDO_MEM_PARTS] = {0}, caps[FDO_MEM_PARTS];
	char err[512] = "";
	given[FDO_MEM_DWARF] = GIB;
	given[FDO_MEM_INFLATE] = GIB;
	CHECK_EQ_INT(fdo_mem_plan(GIB, given, NULL, caps, err, sizeof err), -1);
	CHECK(strstr(err, "over --memory-budget 1073741824") != NULL);
	CHECK(strstr(err, "dwarf 1073741824 (given)") != NULL);
	CHECK(strstr(err, "inflate 1073741824 (given)") != NULL);
	/* The derived parts get their share of the whole budget. */
	CHECK_EQ_INT(caps[FDO_MEM_INGEST], GIB / 8);
	CHECK_EQ_INT(caps[FDO_MEM_DWARF], GIB);
	/* Every cap given, exactly the budget: fits. */
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		given[p] = 16 * MIB;
	CHECK_EQ_INT(fdo_mem_plan(16 * MIB * FDO_MEM_PARTS, given, NULL, caps,
				  err, sizeof err),
		     0);
	CHECK_EQ_INT(fdo_mem_plan(16 * MIB * FDO_MEM_PARTS - 1, given, NULL,
				  caps, err, sizeof err),
		     -1);
}

TEST(minimums_are_kept_and_can_overflow_a_small_budget)
{
	uint64_t given[FDO_MEM_PARTS] = {0}, mins[FDO_MEM_PARTS] = {0};
	uint64_t caps[FDO_MEM_PARTS];
	char err[512] = "";
	mins[FDO_MEM_HTTP] = 16 * MIB;
	CHECK_EQ_INT(
		fdo_mem_plan(256 * MIB, given, mins, caps, err, sizeof err), 0);
	CHECK_EQ_INT(caps[FDO_MEM_HTTP], 16 * MIB);
	CHECK_EQ_INT(fdo_mem_plan(128 * MIB, given, mins, caps, err,
				  sizeof err),
		     -1);
	CHECK_EQ_INT(caps[FDO_MEM_HTTP], 16 * MIB);
	CHECK(strstr(err, "http 16777216") != NULL);
	/* An explicit cap is not raised to the minimum (the config checks
	 * it). */
	given[FDO_MEM_HTTP] = MIB;
	CHECK_EQ_INT(
		fdo_mem_plan(128 * MIB, given, mins, caps, err, sizeof err), 0);
	CHECK_EQ_INT(caps[FDO_MEM_HTTP], MIB);
}

TEST(the_default_budget_is_a_gib_or_a_quarter_of_the_host)
{
	CHECK_EQ_INT(fdo_mem_default_budget(0), GIB);
	CHECK_EQ_INT(fdo_mem_default_budget(64 * GIB), GIB);
	CHECK_EQ_INT(fdo_mem_default_budget(4 * GIB), GIB);
	CHECK_EQ_INT(fdo_mem_default_budget(2 * GIB), 512 * MIB);
	uint64_t host = fdo_mem_host_total();
	CHECK(host > 64 * MIB);
}

TEST(counters_take_give_set_raise_and_fill)
{
	enum fdo_mem_part p = FDO_MEM_INGEST;
	fdo_mem_set(p, 0);
	fdo_mem_cap_set(p, 0);
	fdo_mem_take(p, 100);
	CHECK_EQ_INT(fdo_mem_used(p), 100);
	CHECK(!fdo_mem_full(p)); /* no cap: never full */
	fdo_mem_cap_set(p, 150);
	CHECK_EQ_INT(fdo_mem_cap(p), 150);
	CHECK(!fdo_mem_full(p));
	fdo_mem_take(p, 50);
	CHECK(fdo_mem_full(p));
	fdo_mem_give(p, 120);
	CHECK_EQ_INT(fdo_mem_used(p), 30);
	CHECK(!fdo_mem_full(p));
	fdo_mem_raise(p, 10);
	CHECK_EQ_INT(fdo_mem_used(p), 30);
	fdo_mem_raise(p, 70);
	CHECK_EQ_INT(fdo_mem_used(p), 70);
	fdo_mem_set(p, 5);
	CHECK_EQ_INT(fdo_mem_used(p), 5);
	/* Other parts are untouched. */
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_MERGE), 0);
	/* Out of range: ignored, not a crash. */
	fdo_mem_take(FDO_MEM_PARTS, 1);
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_PARTS), 0);
	CHECK_EQ_STR(fdo_mem_name(FDO_MEM_PARTS), "?");
}

/* Two threads taking from one part: their takes together never pass the
 * cap (each takes the check and the sum in one step). */
struct racer {
	int got;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < 100000; i++)
		if (fdo_mem_try_take(FDO_MEM_BUILDS, 1, NULL))
			r->got++;
	return NULL;
}

TEST(try_take_never_passes_the_cap_under_races)
{
	enum fdo_mem_part p = FDO_MEM_BUILDS;
	fdo_mem_set(p, 0);
	fdo_mem_cap_set(p, 50000);
	uint64_t used = 0;
	CHECK(!fdo_mem_try_take(p, 50001, &used));
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(fdo_mem_used(p), 0);
	struct racer a = {0}, b = {0};
	pthread_t ta, tb;
	REQUIRE(!pthread_create(&ta, NULL, race, &a));
	REQUIRE(!pthread_create(&tb, NULL, race, &b));
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ_INT(a.got + b.got, 50000);
	CHECK_EQ_INT(fdo_mem_used(p), 50000);
	CHECK(!fdo_mem_try_take(p, 1, &used));
	CHECK_EQ_INT(used, 50000);
	/* No cap: always taken. */
	fdo_mem_cap_set(p, 0);
	CHECK(fdo_mem_try_take(p, 1u << 30, NULL));
	fdo_mem_set(p, 0);
}
