/*
 * fuzz/fuzz_wire.h — the check the importers' fuzz targets (fuzz_perf,
 * fuzz_pprof) make on every SampleBatch they get: it passes validation
 * and survives encode + decode unchanged. Include after fuzz/fuzz.h.
 */
#ifndef FDO_FUZZ_WIRE_H
#define FDO_FUZZ_WIRE_H

#include <stdlib.h>
#include <string.h>

#include "schemas/schemas.h"

static inline void fuzz_batch_round_trip(const Fdod__SampleBatch *b)
{
	char err[512];
	FUZZ_CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_OK);
	uint8_t *x, *y;
	size_t xl, yl;
	FUZZ_CHECK(wire_batch_encode(b, NULL, &x, &xl) == FDO_OK);
	Fdod__SampleBatch *back = NULL;
	FUZZ_CHECK(wire_batch_decode(x, xl, NULL, &back) == FDO_OK);
	FUZZ_CHECK(wire_batch_encode(back, NULL, &y, &yl) == FDO_OK);
	FUZZ_CHECK(xl == yl && !memcmp(x, y, xl));
	wire_batch_free(back);
	free(x);
	free(y);
}

#endif
