/*
 * fuzz/fuzz_perf.c — a perf recording as `fdoctl import` reads it
 * (schemas/perf.c): the perf.data header check, the `perf buildid-list`
 * table and the `perf script` text.
 *
 * Input: byte 0 picks the split; the rest is the build-id table, a NUL,
 * then the script text (no NUL: the whole rest is the text). The whole
 * input also goes to wire_perf_data_check.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - every batch of a successful decode passes wire_batch_validate, has
 *     seq 1..n, and survives encode + decode unchanged;
 *   - feeding the text in two chunks (split at a point byte 0 picks) gives
 *     the same result as one chunk: the same error, or the same batches;
 *   - on error the message is set and no batch is handed out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_wire.h"
#include "schemas/schemas.h"

/* Decode ids + text (text fed in two chunks split at cut); the batches
 * printed into out, or the error code. */
static int run(const char *ids, size_t idlen, const char *text, size_t len,
	       size_t cut, struct fdo_buf *out)
{
	static const char *labels[] = {"src=fuzz"};
	struct wire_perf_opts o = {.agent_id = "perf-import/fuzz",
				   .host = "fuzz",
				   .labels = labels,
				   .n_labels = 1,
				   .time_end = 1700000000};
	struct wire_perf *d;
	FUZZ_CHECK(wire_perf_create(&o, &d) == FDO_OK);
	char err[512] = "";
	struct wire_perf_result r = {0};
	int rc = wire_perf_buildids(d, ids, idlen, err, sizeof err);
	if (!rc)
		rc = wire_perf_feed(d, text, cut, err, sizeof err);
	if (!rc)
		rc = wire_perf_feed(d, text + cut, len - cut, err, sizeof err);
	if (!rc)
		rc = wire_perf_finish(d, &r, err, sizeof err);
	wire_perf_destroy(d);
	if (rc) {
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(r.n_batches == 0 && r.batches == NULL);
		return rc;
	}
	FUZZ_CHECK(r.n_batches >= 1);
	for (size_t i = 0; i < r.n_batches; i++) {
		Fdod__SampleBatch *b = r.batches[i];
		FUZZ_CHECK(b->seq == i + 1);
		fuzz_batch_round_trip(b);
		char *t;
		FUZZ_CHECK(wire_batch_print_text(b, &t, NULL) == FDO_OK);
		fdo_buf_puts(out, t);
		free(t);
	}
	wire_perf_result_fini(&r);
	return FDO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	if (wire_perf_data_check(data, size, err, sizeof err) != FDO_OK)
		FUZZ_CHECK(err[0] != '\0');
	if (size < 1)
		return 0;
	const char *rest = (const char *)data + 1;
	size_t n = size - 1;
	const char *nul = memchr(rest, '\0', n);
	const char *ids = nul ? rest : "";
	size_t idlen = nul ? (size_t)(nul - rest) : 0;
	const char *text = nul ? nul + 1 : rest;
	size_t len = nul ? n - idlen - 1 : n;
	size_t cut = len ? data[0] % (len + 1) : 0;

	struct fdo_buf one, two;
	fdo_buf_init(&one);
	fdo_buf_init(&two);
	int a = run(ids, idlen, text, len, len, &one);
	int b = run(ids, idlen, text, len, cut, &two);
	FUZZ_CHECK(a == b);
	FUZZ_CHECK(!one.oom && !two.oom);
	FUZZ_CHECK(one.len == two.len &&
		   (!one.len || !memcmp(one.data, two.data, one.len)));
	fdo_buf_fini(&one);
	fdo_buf_fini(&two);
	return 0;
}
