/*
 * fuzz/fuzz_loopguard.c — the debuginfod loop guard (server/upstream.c,
 * srv_upstream_loop_guard): the X-Forwarded-For and X-Fdod-Via headers of
 * a request fdod may forward upstream (--debuginfod-forward-hops).
 *
 * Input: a hop limit byte, then NUL-separated fields xff, via, self
 * ("-" alone: the header is absent). Properties checked beyond "no
 * crash, no UB": a request whose X-Fdod-Via lists this node, or whose
 * X-Forwarded-For lists the hop limit or more, is never forwarded; a
 * forwarded one gets headers that are printable, one hop longer, list
 * this node, and start with what came.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "server/upstream.h"

static unsigned count_items(const char *s)
{
	if (!s || !s[strspn(s, " \t")])
		return 0;
	unsigned n = 1;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	unsigned limit = data[0] % 65 + 1;
	char buf[4097];
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = 0;
	/* Three fields split at NULs; missing ones are absent. */
	const char *f[3] = {NULL, NULL, NULL};
	size_t at = 0;
	for (int i = 0; i < 3 && at < size - 1 + (i == 0); i++) {
		f[i] = buf + at;
		at += strlen(buf + at) + 1;
	}
	const char *xff = f[0] && strcmp(f[0], "-") ? f[0] : NULL;
	const char *via = f[1] && strcmp(f[1], "-") ? f[1] : NULL;
	/* self is what --node-url allows (or the random name). */
	char self[256] = "fdod-0123456789abcdef";
	if (f[2] && *f[2] && strlen(f[2]) < 200 && printable(f[2]) &&
	    !strpbrk(f[2], ", "))
		strcpy(self, f[2]);
	char nxff[SRV_LOOP_HEADER_CAP], nvia[SRV_LOOP_HEADER_CAP];
	const char *why = srv_upstream_loop_guard(xff, via, "127.0.0.1", self,
						  limit, nxff, nvia);
	if (count_items(xff) >= limit)
		FUZZ_CHECK(why != NULL);
	if (why)
		return 0;
	FUZZ_CHECK(printable(nxff) && printable(nvia));
	FUZZ_CHECK(count_items(nxff) == count_items(xff) + 1);
	FUZZ_CHECK(count_items(nxff) <= limit);
	FUZZ_CHECK(strlen(nxff) < SRV_LOOP_HEADER_CAP);
	if (xff && count_items(xff))
		FUZZ_CHECK(!strncmp(nxff, xff, strlen(xff)));
	if (via && count_items(via))
		FUZZ_CHECK(!strncmp(nvia, via, strlen(via)));
	size_t nl = strlen(nvia), sl = strlen(self);
	FUZZ_CHECK(nl >= sl && !strcmp(nvia + nl - sl, self));
	/* Forwarded once, this node is now in the list: never again. */
	char x2[SRV_LOOP_HEADER_CAP], v2[SRV_LOOP_HEADER_CAP];
	if (strlen(nvia) <= SRV_LOOP_HEADER_MAX &&
	    strlen(nxff) <= SRV_LOOP_HEADER_MAX)
		FUZZ_CHECK(srv_upstream_loop_guard(nxff, nvia, "127.0.0.1",
						   self, 65, x2, v2) != NULL);
	return 0;
}
