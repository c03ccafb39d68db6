/*
 * fuzz/fuzz_pprof.c — a POST /v1/pprof body as server/pprof.c reads it:
 * gzip inflated under a bound when it starts with the gzip magic
 * (schemas/gunzip.c), then the profile.proto decoded into a SampleBatch
 * (schemas/pprof.c).
 *
 * Input: the body. An odd length also sets the time option (a profile
 * without time_nanos is then stamped instead of refused).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - on error (out of memory too) the message is set and no batch is
 *     handed out;
 *   - a batch passes wire_batch_validate, has seq 1, survives encode +
 *     decode unchanged, and its stacks' counts add up to the samples the
 *     stats call accepted; unmapped samples add up by reason;
 *   - a body that inflates is never larger than the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_wire.h"
#include "schemas/schemas.h"

#define INFLATE_MAX (1u << 20)

static void decode(const uint8_t *buf, size_t len, uint64_t time_end)
{
	static const char *labels[] = {"src=fuzz"};
	struct wire_pprof_opts o = {.agent_id = "pprof/fuzz",
				    .host = "fuzz",
				    .labels = labels,
				    .n_labels = 1,
				    .time_end = time_end};
	Fdod__SampleBatch *b = NULL;
	struct wire_pprof_stats st;
	char err[512] = "";
	int rc = wire_pprof_decode(buf, len, &o, &b, &st, err, sizeof err);
	if (rc) {
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(b == NULL);
		return;
	}
	FUZZ_CHECK(b != NULL && b->seq == 1);
	fuzz_batch_round_trip(b);
	uint64_t sum = 0, by = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		sum += b->stacks[i]->count;
	for (int r = 0; r < WIRE_PPROF_REASONS; r++)
		by += st.count_unmapped_by[r];
	FUZZ_CHECK(st.count_unmapped <= st.count);
	FUZZ_CHECK(sum == st.count - st.count_unmapped);
	FUZZ_CHECK(by == st.count_unmapped);
	FUZZ_CHECK(st.nmaps <= WIRE_PPROF_MAPS_SHOWN);
	wire_batch_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t time_end = size % 2 ? 1700000000u : 0;
	if (!wire_is_gzip(data, size)) {
		decode(data, size, time_end);
		return 0;
	}
	uint8_t *raw = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc = wire_gunzip(data, size, INFLATE_MAX, &raw, &len, err,
			     sizeof err);
	if (rc) {
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(len <= INFLATE_MAX);
	decode(raw, len, time_end);
	free(raw);
	return 0;
}
