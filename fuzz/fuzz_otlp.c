/*
 * fuzz/fuzz_otlp.c — a POST /v1development/profiles body as
 * server/otlp.c reads it: gzip inflated under a bound when it starts with
 * the gzip magic (schemas/gunzip.c), then the ExportProfilesServiceRequest
 * decoded into SampleBatches (schemas/otlp.c), either shape.
 *
 * Input: the body. An odd length maps thread.name to a label too (more
 * batches per request).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - on error (out of memory too) the message is set and no batch is
 *     handed out;
 *   - every batch passes wire_batch_validate, has seq 1..n, survives
 *     encode + decode unchanged; their stacks' counts add up to the
 *     samples the stats call accepted; unmapped samples add up by reason;
 *   - a body that inflates is never larger than the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_wire.h"
#include "schemas/schemas.h"

static void decode(const uint8_t *buf, size_t len, int labels)
{
	struct wire_otlp_attrs attrs;
	char err[512] = "";
	int rc = wire_otlp_attrs_parse(
		labels ? "service.name=binary,process.executable.name=binary,"
			 "host.name=host,thread.name=label:thread"
		       : "service.name=binary,process.executable.name=binary",
		&attrs, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ENOMEM);
	struct wire_otlp_opts o = {.attrs = &attrs, .host = "fuzz"};
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	if (!rc)
		rc = wire_otlp_decode(buf, len, &o, &r, &st, err, sizeof err);
	wire_otlp_attrs_fini(&attrs);
	if (rc) {
		FUZZ_CHECK(err[0] != '\0' || rc == FDO_ENOMEM);
		return;
	}
	uint64_t sum = 0, by = 0;
	for (size_t i = 0; i < r.n; i++) {
		const Fdod__SampleBatch *b = r.batches[i];
		FUZZ_CHECK(b->seq == i + 1 && b->n_stacks > 0);
		fuzz_batch_round_trip(b);
		for (size_t k = 0; k < b->n_stacks; k++)
			sum += b->stacks[k]->count;
	}
	for (int k = 0; k < WIRE_OTLP_REASONS; k++)
		by += st.count_unmapped_by[k];
	FUZZ_CHECK(st.count_unmapped <= st.count);
	FUZZ_CHECK(sum == st.count - st.count_unmapped);
	FUZZ_CHECK(by == st.count_unmapped);
	wire_otlp_result_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_http_body(data, size, decode, (int)(size % 2));
	return 0;
}
