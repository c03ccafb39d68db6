/*
 * fuzz/fuzz_chsink.c — an outbox file of fdod --store clickhouse://
 * (aggregator/chsink.c chsink_file_decode): bytes read back from disk,
 * written by an earlier fdod, perhaps torn or damaged. The first 8 input
 * bytes are the sequence number the file's name gives; the rest is the
 * file, copied to a buffer of exactly its length so a read past the end
 * is caught.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - the only error is FDO_ECORRUPT, and then no piece was handed out
 *     (the file is checked whole before anything is sent);
 *   - an accepted file's pieces, encoded again with chsink_file_begin and
 *     chsink_file_piece, give back the file's bytes;
 *   - a callback's nonzero return stops the decoder and is returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chsink.h"
#include "common/common.h"
#include "fuzz/fuzz.h"

struct seen {
	struct fdo_buf again;
	size_t n, stop_at;
	int bad_kind;
};

static int piece(void *arg, int kind, uint32_t day, const uint8_t *body,
		 size_t len)
{
	struct seen *x = arg;
	if (x->n == x->stop_at)
		return FDO_EEXISTS; /* any code the decoder never returns */
	if (kind != CHSINK_STACKS && kind != CHSINK_COUNTS)
		x->bad_kind = 1;
	if (kind == CHSINK_STACKS && day)
		x->bad_kind = 1;
	chsink_file_piece(&x->again, kind, day, body, len);
	x->n++;
	return FDO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	uint64_t seq = 0;
	memcpy(&seq, data, 8);
	size_t len = size - 8;
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		return 0;
	memcpy(p, data + 8, len);
	char err[256];
	struct seen x = {.stop_at = SIZE_MAX};
	fdo_buf_init(&x.again);
	chsink_file_begin(&x.again, seq);
	int rc = chsink_file_decode(p, len, seq, piece, &x, err, sizeof err);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ECORRUPT);
	FUZZ_CHECK(!x.bad_kind);
	if (rc == FDO_ECORRUPT)
		FUZZ_CHECK(x.n == 0);
	if (rc == FDO_OK && !x.again.oom) {
		FUZZ_CHECK(x.again.len == len);
		FUZZ_CHECK(memcmp(x.again.data, p, len) == 0);
		if (x.n > 0) {
			struct seen y = {.stop_at = x.n - 1};
			fdo_buf_init(&y.again);
			chsink_file_begin(&y.again, seq);
			FUZZ_CHECK(chsink_file_decode(p, len, seq, piece, &y,
						      err, sizeof err) ==
				   FDO_EEXISTS);
			FUZZ_CHECK(y.n == x.n - 1);
			fdo_buf_fini(&y.again);
		}
	}
	fdo_buf_fini(&x.again);
	free(p);
	return 0;
}
