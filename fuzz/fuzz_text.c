/*
 * fuzz/fuzz_text.c — the text form of a SampleBatch (schemas/text.c), what
 * `fdoctl push` reads from a file or stdin before encoding and sending it.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - a batch the parser returns passes wire_batch_validate (its contract);
 *   - parse(print(b)) == b, compared as protobuf bytes;
 *   - the batch survives encode + decode (what fdod receives) unchanged,
 *     and ingest's prep_build accepts or refuses it without crashing;
 *   - on error the message is set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest_int.h"
#include "fuzz/fuzz.h"
#include "schemas/schemas.h"

static void encoded(const Fdod__SampleBatch *b, uint8_t **out, size_t *len)
{
	FUZZ_CHECK(wire_batch_encode(b, NULL, out, len) == FDO_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	int rc = wire_batch_parse_text((const char *)data, size, NULL, &b, err,
				       sizeof err);
	if (rc != FDO_OK) {
		FUZZ_CHECK(b == NULL && err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_OK);

	uint8_t *x, *y;
	size_t xl, yl;
	encoded(b, &x, &xl);

	/* parse(print(b)) == b */
	char *text = NULL;
	size_t tlen = 0;
	FUZZ_CHECK(wire_batch_print_text(b, &text, &tlen) == FDO_OK);
	Fdod__SampleBatch *back = NULL;
	rc = wire_batch_parse_text(text, tlen, NULL, &back, err, sizeof err);
	if (rc != FDO_OK) {
		fprintf(stderr, "printed batch does not read back: %s\n%s\n",
			err, text);
		abort();
	}
	encoded(back, &y, &yl);
	if (xl != yl || memcmp(x, y, xl)) {
		fprintf(stderr, "parse(print(b)) != b\n%s\n", text);
		abort();
	}
	free(y);
	wire_batch_free(back);
	free(text);

	/* What fdod receives from fdoctl push. */
	Fdod__SampleBatch *wire = NULL;
	FUZZ_CHECK(wire_batch_decode(x, xl, NULL, &wire) == FDO_OK);
	encoded(wire, &y, &yl);
	FUZZ_CHECK(xl == yl && !memcmp(x, y, xl));
	FUZZ_CHECK(wire_batch_validate(wire, NULL, err, sizeof err) == FDO_OK);
	struct agg_result res;
	memset(&res, 0, sizeof res);
	struct prep *p = NULL;
	if (prep_build(wire, &wire_limits_default, 3600, &p, &res) == FDO_OK)
		prep_free(p);
	free(y);
	wire_batch_free(wire);

	free(x);
	wire_batch_free(b);
	return 0;
}
