/*
 * fuzz/fuzz_wire.h — the check the importers' fuzz targets (fuzz_perf,
 * fuzz_pprof, fuzz_otlp) make on every SampleBatch they get: it passes
 * validation and survives encode + decode unchanged; and an HTTP body
 * inflated as the server does (fuzz_http_body). Include after
 * fuzz/fuzz.h.
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

/* The bound a fuzzed body inflates to. */
#define FUZZ_INFLATE_MAX (1u << 20)

/*
 * fuzz_http_body hands a request body to decode(body, len, arg) as the
 * server does: inflated (under FUZZ_INFLATE_MAX) when it starts with the
 * gzip magic, else as is; checks that a refused inflate says why and an
 * accepted one stays under the bound.
 */
static inline void fuzz_http_body(const uint8_t *data, size_t size,
				  void (*decode)(const uint8_t *, size_t, int),
				  int arg)
{
	if (!wire_is_gzip(data, size)) {
		decode(data, size, arg);
		return;
	}
	uint8_t *raw = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc = wire_gunzip(data, size, FUZZ_INFLATE_MAX, &raw, &len, err,
			     sizeof err);
	if (rc) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	FUZZ_CHECK(len <= FUZZ_INFLATE_MAX);
	decode(raw, len, arg);
	free(raw);
}

#endif
