/*
 * server/import.c — what the importers over HTTP share: POST /v1/pprof
 * (server/pprof.c), POST /v1development/profiles (server/otlp.c) and, for
 * the status of an error, OTLP/gRPC (server/otlp_grpc.c). An importer's
 * identity for the exactly-once record (a derived agent and seq), the HTTP
 * status of an FDO_* error, the answer statuses counted for /metrics and
 * their printers, and the bounded gunzip of a request body. Pure or
 * atomic; any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "server/app.h"

/* Answer statuses counted one by one in /metrics (then "other"). */
static const int codes[SRV_PPROF_CODES] = {200, 400, 403, 409, 413,
					   415, 422, 503, 507, 0};

void srv_import_count(atomic_uint_fast64_t requests[SRV_PPROF_CODES],
		      int status)
{
	int c = SRV_PPROF_CODES - 1;
	for (int i = 0; i < SRV_PPROF_CODES - 1; i++)
		if (codes[i] == status)
			c = i;
	atomic_fetch_add(&requests[c], 1);
}

void srv_import_metrics_requests(struct fdo_buf *b, const char *metric,
				 const char *help,
				 atomic_uint_fast64_t requests[SRV_PPROF_CODES])
{
	fdo_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", metric, help,
		       metric);
	for (int i = 0; i < SRV_PPROF_CODES; i++) {
		uint64_t n = atomic_load(&requests[i]);
		if (!n && codes[i] != 200)
			continue;
		char code[16];
		snprintf(code, sizeof code, "%d", codes[i]);
		fdo_buf_printf(b, "%s{code=\"%s\"} %llu\n", metric,
			       codes[i] ? code : "other",
			       (unsigned long long)n);
	}
}

void srv_import_metrics_reasons(struct fdo_buf *b, const char *metric,
				const char *help,
				atomic_uint_fast64_t *by_reason, int n,
				const char *(*name)(int reason))
{
	fdo_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", metric, help,
		       metric);
	for (int r = 0; r < n; r++)
		fdo_buf_printf(b, "%s{reason=\"%s\"} %llu\n", metric, name(r),
			       (unsigned long long)atomic_load(&by_reason[r]));
}

void srv_import_json_reasons(struct fdo_buf *b, const uint64_t *samples_by,
			     const uint64_t *frames_by, int n,
			     const char *(*name)(int reason),
			     const char *(*text)(int reason))
{
	int first = 1;
	for (int r = 0; r < n; r++) {
		if (!samples_by[r] && !frames_by[r])
			continue;
		fdo_buf_printf(b,
			       "%s\"%s\":{\"samples\":%llu,\"frames\":%llu,"
			       "\"why\":",
			       first ? "" : ",", name(r),
			       (unsigned long long)samples_by[r],
			       (unsigned long long)frames_by[r]);
		fdo_buf_json_str(b, text(r));
		fdo_buf_putc(b, '}');
		first = 0;
	}
}

int srv_import_gunzip(const uint8_t *body, size_t len, const char *what,
		      uint8_t **raw, size_t *rawlen, char *why, size_t whylen)
{
	char err[256] = "";
	int rc = wire_gunzip(body, len, SRV_PPROF_MAX_INFLATED, raw, rawlen,
			     err, sizeof err);
	if (rc)
		snprintf(why, whylen, "%s%s%s%s",
			 err[0] ? err : fdo_strerror(rc),
			 rc == FDO_ELIMIT ? " (the limit of " : "",
			 rc == FDO_ELIMIT ? what : "",
			 rc == FDO_ELIMIT ? ")" : "");
	return rc;
}

/* Append s and its NUL to b. */
static void put_str(struct fdo_buf *b, const char *s)
{
	fdo_buf_append(b, s, strlen(s) + 1);
}

void srv_import_agent(const char *kind, const char *binary, const char *host,
		      const char *const *labels, size_t n, char out[64])
{
	char tag[64];
	snprintf(tag, sizeof tag, "fdod %s agent v2", kind);
	struct fdo_buf b;
	fdo_buf_init(&b);
	put_str(&b, tag);
	put_str(&b, binary);
	put_str(&b, host);
	for (size_t i = 0; i < n; i++)
		put_str(&b, labels[i]);
	uint8_t h[32] = {0};
	/* Out of memory: an agent that is still stable for the request,
	 * only shared by every such request (rare, and only a rate key). */
	fdo_sha256((const uint8_t *)(b.oom ? tag : b.data),
		   b.oom ? strlen(tag) : b.len, h);
	fdo_buf_fini(&b);
	size_t k = strlen(kind);
	memcpy(out, kind, k);
	out[k] = '/';
	fdo_hex_encode(h, 16, out + k + 1);
}

uint64_t srv_import_seq(const char *kind, const uint8_t body_sha256[32],
			const char *extra)
{
	char tag[64];
	snprintf(tag, sizeof tag, "fdod %s seq v1", kind);
	uint8_t buf[64 + 32 + 256];
	size_t t = strlen(tag) + 1, e = strnlen(extra, 255);
	memcpy(buf, tag, t);
	memcpy(buf + t, body_sha256, 32);
	memcpy(buf + t + 32, extra, e);
	buf[t + 32 + e] = 0;
	uint8_t h[32];
	fdo_sha256(buf, t + 32 + e + 1, h);
	uint64_t seq = fdo_get_be64(h);
	return seq ? seq : 1;
}

int srv_import_status(int rc)
{
	switch (rc) {
	case FDO_ELIMIT:
		return 413;
	case FDO_EDENIED:
		return 403;
	case FDO_ECONFLICT:
		return 409;
	case FDO_ETIME_RANGE:
		return 422;
	case FDO_EBUSY:
		return 503;
	case FDO_ESTORE_FULL:
	case FDO_ENOSPACE:
		return 507;
	case FDO_ENOMEM:
		return 503; /* retry later, as for BUSY */
	case FDO_EIO:
	case FDO_ESTORE:
		return 500;
	default:
		return 400;
	}
}
