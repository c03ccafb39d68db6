/*
 * schemas/gunzip.c — gzip bodies (RFC 1952) inflated under a hard bound,
 * for the ingest paths whose input arrives compressed (POST /v1/pprof:
 * pprof profiles are gzipped by convention).
 *
 * A gzip member's trailer states the inflated size, but modulo 2^32 and
 * from the sender: it is never used to size anything. The output buffer
 * starts small and doubles as bytes arrive, up to max_out + 1, so a
 * "gzip bomb" (a few KiB inflating to gigabytes) costs at most max_out
 * bytes of memory and the time to inflate them before FDO_ELIMIT.
 * Workload: one body per request, up to tens of MiB; zlib does the work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "schemas/wire_int.h"

#define GUNZIP_FIRST (64u << 10) /* the first output buffer, at most */

int wire_is_gzip(const uint8_t *buf, size_t len)
{
	return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

/* Grow *out (capacity *cap) towards limit; FDO_ENOMEM or FDO_OK. */
static int grow(uint8_t **out, size_t *cap, size_t limit)
{
	size_t n = *cap < limit / 2 ? *cap * 2 : limit;
	uint8_t *p = realloc(*out, n);
	if (!p)
		return FDO_ENOMEM;
	*out = p;
	*cap = n;
	return FDO_OK;
}

int wire_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
		size_t *outlen, char *err, size_t errlen)
{
	if (!wire_is_gzip(in, len))
		return wire_errf(err, errlen, FDO_EPARSE,
				 "not gzip (no 1f 8b magic)");
	if (max_out > SIZE_MAX / 2)
		max_out = SIZE_MAX / 2;
	/* One byte over the bound tells "more than max_out" apart. */
	size_t limit = max_out + 1,
	       cap = GUNZIP_FIRST < limit ? GUNZIP_FIRST : limit;
	uint8_t *buf = malloc(cap);
	z_stream z;
	memset(&z, 0, sizeof z);
	if (!buf || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(buf);
		return wire_errf(err, errlen, FDO_ENOMEM,
				 "out of memory to inflate the gzip body");
	}
	size_t used = 0, pos = 0;
	int rc = FDO_OK;
	for (;;) {
		if (used == cap) {
			if (cap == limit)
				break; /* over max_out: refused below */
			if ((rc = grow(&buf, &cap, limit))) {
				wire_errf(
					err, errlen, rc,
					"out of memory inflating the gzip body "
					"past %zu bytes",
					cap);
				break;
			}
		}
		/* zlib counts in uInt: feed and take at most 1 GiB a call. */
		size_t ain = len - pos, aout = cap - used;
		z.next_in = (Bytef *)(uintptr_t)(in + pos);
		z.avail_in = (uInt)(ain < (1u << 30) ? ain : (1u << 30));
		z.next_out = buf + used;
		z.avail_out = (uInt)(aout < (1u << 30) ? aout : (1u << 30));
		uInt before_in = z.avail_in, before_out = z.avail_out;
		int zr = inflate(&z, Z_NO_FLUSH);
		pos += before_in - z.avail_in;
		used += before_out - z.avail_out;
		if (zr == Z_STREAM_END) {
			if (pos == len)
				break;
			/* Concatenated members are one gzip file; anything
			 * else after a member is not gzip. */
			if (!wire_is_gzip(in + pos, len - pos)) {
				rc = wire_errf(err, errlen, FDO_EPARSE,
					       "%zu bytes after the end of the "
					       "gzip stream",
					       len - pos);
				break;
			}
			inflateReset(&z);
			continue;
		}
		if (zr == Z_MEM_ERROR) {
			rc = wire_errf(err, errlen, FDO_ENOMEM,
				       "out of memory inflating the gzip body");
			break;
		}
		if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT ||
		    zr == Z_STREAM_ERROR) {
			rc = wire_errf(err, errlen, FDO_EPARSE,
				       "corrupt gzip data at byte %zu: %s", pos,
				       z.msg ? z.msg : "bad deflate stream");
			break;
		}
		/* No progress with room left: the input ran out. */
		if (zr == Z_BUF_ERROR && used < cap) {
			rc = wire_errf(err, errlen, FDO_ETRUNCATED,
				       "gzip body ends inside its stream "
				       "(%zu bytes)",
				       len);
			break;
		}
		/* Z_OK: progress; the output full: it grows above. */
	}
	inflateEnd(&z);
	if (!rc && used > max_out)
		rc = wire_errf(err, errlen, FDO_ELIMIT,
			       "gzip body inflates to more than %zu bytes",
			       max_out);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = used;
	return FDO_OK;
}
