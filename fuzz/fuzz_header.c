/*
 * fuzz/fuzz_header.c — a header's value in an HTTP answer's header block
 * (common/buf.c, fdo_header_value), as fdoctl pull reads fdod's
 * X-Fdod-Stale-* headers (cli/cmd_pull.c): bytes from the server.
 *
 * Input: a cap byte, the header name up to the first NUL, then the
 * header block (any bytes). Properties checked beyond "no crash, no UB":
 * out is NUL-terminated within cap, holds only the characters kept
 * (letters, digits, ".=,_-"), and is "" when the header is absent; a
 * header found is a line starting with the name and a colon, whose kept
 * characters out is (cut to cap - 1).
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "fuzz/fuzz.h"

static int kept(char c)
{
	return isalnum((unsigned char)c) || (c && strchr(".=,_-", c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 65536)
		return 0;
	size_t cap = data[0] % 64 + 1;
	const char *rest = (const char *)data + 1;
	size_t left = size - 1;
	const char *nul = memchr(rest, 0, left);
	if (!nul || nul == rest)
		return 0;
	char name[256];
	size_t nl = (size_t)(nul - rest);
	if (nl >= sizeof name)
		return 0;
	memcpy(name, rest, nl + 1);
	const char *hdrs = nul + 1;
	size_t len = left - nl - 1;
	/* The block in its own allocation, so ASan sees any read past it. */
	char *copy = malloc(len ? len : 1);
	FUZZ_CHECK(copy);
	memcpy(copy, hdrs, len);
	char out[65];
	memset(out, 'X', sizeof out);
	int found = fdo_header_value(copy, len, name, out, cap);
	size_t n = strnlen(out, cap);
	FUZZ_CHECK(n < cap);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(kept(out[i]));
	/* The first line that is the name and a colon, by another walk:
	 * byte by byte, a line starting at 0 and after each newline. */
	const char *want = NULL, *wend = NULL;
	for (size_t i = 0; i < len && !want; i++) {
		if (i && copy[i - 1] != '\n')
			continue;
		size_t e = i;
		while (e < len && copy[e] != '\n')
			e++;
		int same = e - i > nl && copy[i + nl] == ':';
		for (size_t j = 0; same && j < nl; j++)
			same = tolower((unsigned char)copy[i + j]) ==
			       tolower((unsigned char)name[j]);
		if (same) {
			want = copy + i + nl + 1;
			wend = copy + e;
		}
	}
	FUZZ_CHECK(found == (want != NULL));
	if (!want)
		FUZZ_CHECK(n == 0);
	size_t k = 0;
	for (const char *p = want; p && p < wend && k + 1 < cap; p++)
		if (kept(*p))
			FUZZ_CHECK(out[k++] == *p);
	FUZZ_CHECK(k == n);
	free(copy);
	return 0;
}
