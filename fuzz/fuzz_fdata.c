/*
 * fuzz/fuzz_fdata.c — llvm-bolt .fdata branch records read back
 * (aggregator/fdata.c agg_fdata_parse) against a fixed set of function
 * symbols, as `fdoctl emit` reads a file from outside.
 *
 * Properties checked beyond "no crash, no leak, no UB, no hang":
 *   - only the documented errors come back, with a message;
 *   - on success every record's ends lie inside a known function (or the
 *     source is 0: an entry from outside into a function's start) and its
 *     count is finite, positive and under 2^53;
 *   - parsing twice gives the same records.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/blocks.h"
#include "common/common.h"
#include "fuzz/fuzz.h"

static const struct sym_func FUNCS[] = {
	{0x1000, 0x40, "main", 0, SYM_BIND_GLOBAL},
	{0x1040, 0x20, "mix", 1, SYM_BIND_LOCAL},
	{0x1060, 0x20, "mix", 2, SYM_BIND_LOCAL},
	{0x1080, 0x10, "with space", 0, SYM_BIND_WEAK},
	{0x1090, 0x30, ".Lcold", 1, SYM_BIND_LOCAL},
};
#define NF (sizeof FUNCS / sizeof FUNCS[0])

static int inside(uint64_t v)
{
	for (size_t i = 0; i < NF; i++)
		if (v >= FUNCS[i].addr && v < FUNCS[i].addr + FUNCS[i].size)
			return 1;
	return 0;
}

static int is_start(uint64_t v)
{
	for (size_t i = 0; i < NF; i++)
		if (v == FUNCS[i].addr)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agg_branch *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	char err[256], err2[256];
	int rc = agg_fdata_parse((const char *)data, size, FUNCS, NF, &x, &nx,
				 err, sizeof err);
	int rc2 = agg_fdata_parse((const char *)data, size, FUNCS, NF, &y, &ny,
				  err2, sizeof err2);
	FUZZ_CHECK(rc == rc2);
	if (rc) {
		FUZZ_CHECK(rc == FDO_EPARSE || rc == FDO_EINVAL ||
			   rc == FDO_ELIMIT || rc == FDO_ENOMEM);
		FUZZ_CHECK(err[0] && !x && !nx);
		return 0;
	}
	FUZZ_CHECK(nx == ny && (!nx || !memcmp(x, y, nx * sizeof *x)));
	for (size_t i = 0; i < nx; i++) {
		FUZZ_CHECK(inside(x[i].to));
		FUZZ_CHECK(inside(x[i].from) ||
			   (x[i].from == 0 && is_start(x[i].to)));
		FUZZ_CHECK(isfinite(x[i].count) && x[i].count > 0 &&
			   x[i].count <= 9007199254740992.0);
	}
	free(x);
	free(y);
	return 0;
}
