/*
 * fuzz/fuzz_runchunk.c — a chunk of a counts run (storage/counts.c, layout
 * in storage/codec.c) as the store hands it to every reader of counts:
 * store_chunk_open/next decode it, store_chunk_sums sums it. The bytes
 * are copied to a buffer of exactly their length, so a read past the end
 * is caught.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - the only error is FDO_ECORRUPT; store_chunk_sums accepts exactly
 *     what the decoder accepts, unless the weights sum past 2^128;
 *   - an accepted chunk has 1.. entries with strictly increasing ids, as
 *     many as its header says, and store_chunk_sums gives their sums;
 *   - re-encoded with store_chunk_header/put, the entries decode to the
 *     same entries (the encoder is canonical: re-encoding that again
 *     gives the same bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "storage/storage.h"

static struct store_count_entry ents[STORE_RUN_CHUNK_MAX / 4];

static size_t encode(const struct store_count_entry *e, size_t n, uint8_t *out)
{
	size_t len = 8;
	for (size_t i = 0; i < n; i++)
		len += store_chunk_put(out + len, i ? e[i - 1].stack : 0,
				       i == 0, &e[i]);
	store_chunk_header(out, (uint32_t)n);
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct store_chunk_reader r;
	size_t n = 0;
	int rc = store_chunk_open(&r, p, size);
	while (!rc && n < sizeof ents / sizeof ents[0] &&
	       !(rc = store_chunk_next(&r, &ents[n])))
		n++;
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ENOT_FOUND || rc == FDO_ECORRUPT);
	struct store_totals sum;
	int src = store_chunk_sums(p, size, &sum);
	FUZZ_CHECK(src == FDO_OK || src == FDO_ECORRUPT);
	int ovf = 0;
	wire_weight_t w = 0;
	uint64_t smp = 0;
	for (size_t i = 0; i < n; i++) {
		ovf |= wire_weight_add(&w, ents[i].weight) != FDO_OK;
		smp += ents[i].samples;
	}
	/* The sums refuse what the decoder refuses, and weights past
	 * 2^128 (no merge writes them). */
	FUZZ_CHECK((src == FDO_OK) == (rc == FDO_ENOT_FOUND && !ovf));
	if (rc == FDO_ENOT_FOUND) {
		FUZZ_CHECK(n >= 1 && n == fdo_get_be32(p + 4));
		for (size_t i = 1; i < n; i++)
			FUZZ_CHECK(ents[i].stack > ents[i - 1].stack);
		if (src == FDO_OK)
			FUZZ_CHECK(sum.entries == n && sum.samples == smp &&
				   sum.weight == w);
		static uint8_t a[STORE_RUN_CHUNK_MAX * 2], b[sizeof a];
		if (n * 40 + 8 <= sizeof a) {
			size_t la = encode(ents, n, a);
			struct store_chunk_reader r2;
			struct store_count_entry e;
			size_t i = 0;
			int rc2 = la <= STORE_RUN_CHUNK_MAX
					  ? store_chunk_open(&r2, a, la)
					  : FDO_ECORRUPT;
			while (!rc2 && !(rc2 = store_chunk_next(&r2, &e))) {
				FUZZ_CHECK(i < n && e.stack == ents[i].stack &&
					   e.weight == ents[i].weight &&
					   e.samples == ents[i].samples);
				i++;
			}
			if (la <= STORE_RUN_CHUNK_MAX)
				FUZZ_CHECK(rc2 == FDO_ENOT_FOUND && i == n);
			FUZZ_CHECK(encode(ents, n, b) == la &&
				   !memcmp(a, b, la));
		}
	}
	free(p);
	return 0;
}
