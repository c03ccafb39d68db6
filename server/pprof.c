/*
 * server/pprof.c — POST /v1/pprof?binary=NAME&labels=k=v,...&host=&time=:
 * a pprof profile (profile.proto, gzipped or not), as runtime/pprof,
 * perf_to_profile or the Parca agent write it, into the ingest pipeline
 * as one SampleBatch (decoded by schemas/pprof.c), and its figures for
 * /metrics. docs/ingest.md "pprof profiles" is the user's side.
 *
 * Bounds, in the order they apply: the route's body limit
 * (SRV_PPROF_MAX_BODY: a larger Content-Length is answered 413 before a
 * byte of the body is read) and the HTTP front's budget of in-memory
 * bodies (503), the token (scope ingest, checked by the HTTP front before
 * the body is read; its agents= and hosts=, and binaries= when binary=
 * is given, checked here before the body is inflated or decoded), the
 * content type, the inflated size (SRV_PPROF_MAX_INFLATED, never taken
 * from the gzip trailer: a gzip bomb stops there with 413), the memory
 * the decode may take, then everything a SampleBatch must pass
 * (validation, the token's binaries= for a binary named by the profile,
 * the time window, rate and growth limits) in agg_ingest_batch, which
 * logs it to the WAL and weights it as any agent's batch.
 *
 * Identity. pprof has no (agent, seq), so both are derived:
 *   agent  pprof/<32 hex digits of SHA-256 over binary= (as given, ""
 *          when absent), the host (host=, else the client's address) and
 *          the labels sorted>: one stable agent per service, so fdod's
 *          strings table gains one agent per service (not one per post)
 *          and --rate-agent applies to it;
 *   seq    the first 64 bits of SHA-256 over SHA-256(the inflated
 *          profile) and time= (1 if they are 0).
 * The exactly-once record (aggregator/dedup.c's set, then table
 * batches) is an exact set of (agent, seq) with the content's digest,
 * kept --dedup-ttl, with no order among an agent's seqs: a resent
 * request (gzipped or not, labels in any order) is the same pair with the
 * same content, a duplicate; another profile from the same service is
 * another seq, stored. Two profiles of one service meeting on a seq
 * (a 2^-64 chance a pair) would be refused as a CONFLICT (409), not
 * merged.
 *
 * Workload: a few profiles a minute per service (continuous profilers
 * post every 10-60 s), ~10 KiB to 1 MiB gzipped. Runs on an HTTP worker
 * thread and blocks until the batch is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/opts.h"
#include "server/app.h"
#include "server/auth.h"

#define LABELS_TEXT_MAX 4096

/* The content types a profile may arrive as (before any ';'). */
static const char *const types[] = {
	"application/octet-stream", "application/x-protobuf",
	"application/protobuf",	    "application/vnd.google.protobuf",
	"application/gzip",	    "application/x-gzip",
};

struct preq {
	char binary[STORE_NAME_MAX + 1];
	char host[STORE_NAME_MAX + 1];
	char time[32];
	char labels_text[LABELS_TEXT_MAX];
	char *labels[64];
	size_t nlabels;
	uint64_t time_end;
	char agent[64]; /* "pprof/" and 32 hex digits */
};

static void count_answer(struct srv_app *app, int status)
{
	srv_import_count(app->pprof.requests, status);
}

/* Refuse with status and why (logged once, here). */
static void refuse(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, int status, const char *why)
{
	fdo_warn("pprof from %s refused (%s): %s", req->peer ? req->peer : "?",
		 srv_token_name(req->principal), why);
	srv_resp_error(resp, status, "%s", why);
	count_answer(app, status);
}

/* Query value key into out; 0, or -1 after answering 400. */
static int qval(struct srv_app *app, struct srv_req *req, struct srv_resp *resp,
		const char *key, char *out, size_t cap)
{
	int rc = srv_query_get(req->query, key, out, cap);
	if (rc == FDO_ENOT_FOUND) {
		out[0] = 0;
		return 0;
	}
	if (rc) {
		char why[128];
		snprintf(why, sizeof why,
			 "%s= is malformed (bad percent-encoding, a NUL byte, "
			 "or over %zu bytes)",
			 key, cap - 1);
		refuse(app, req, resp, 400, why);
		return -1;
	}
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* binary=, labels=, host=, time= into q; 0, or -1 after answering. */
static int parse_query(struct srv_app *app, struct srv_req *req,
		       struct srv_resp *resp, struct preq *q)
{
	if (qval(app, req, resp, "binary", q->binary, sizeof q->binary) ||
	    qval(app, req, resp, "host", q->host, sizeof q->host) ||
	    qval(app, req, resp, "time", q->time, sizeof q->time) ||
	    qval(app, req, resp, "labels", q->labels_text,
		 sizeof q->labels_text))
		return -1;
	char why[256];
	if (q->binary[0] &&
	    wire_binary_name_check(q->binary, why, sizeof why)) {
		char msg[300];
		snprintf(msg, sizeof msg, "binary=: %s", why);
		refuse(app, req, resp, 400, msg);
		return -1;
	}
	if (q->time[0] &&
	    (fdo_parse_uint(q->time, &q->time_end) || !q->time_end)) {
		refuse(app, req, resp, 400,
		       "time= must be the profile's end, in unix seconds");
		return -1;
	}
	if (!q->host[0])
		snprintf(q->host, sizeof q->host, "%s",
			 req->peer ? req->peer : "unknown");
	/* labels=k=v,k=v: each item split at its first '=' by the decoder;
	 * keys and values are checked as a batch's are. */
	for (char *p = q->labels_text, *next; p && *p; p = next) {
		next = strchr(p, ',');
		if (next)
			*next++ = 0;
		if (!strchr(p, '=') || *p == '=') {
			snprintf(why, sizeof why,
				 "labels=: '%.64s' is not key=value", p);
			refuse(app, req, resp, 400, why);
			return -1;
		}
		if (q->nlabels == sizeof q->labels / sizeof q->labels[0]) {
			refuse(app, req, resp, 400, "labels=: too many labels");
			return -1;
		}
		q->labels[q->nlabels++] = p;
	}
	qsort(q->labels, q->nlabels, sizeof q->labels[0], label_cmp);
	return 0;
}

/* The content type and encoding; 0, or -1 after answering 415. */
static int check_type(struct srv_app *app, struct srv_req *req,
		      struct srv_resp *resp, int *gzip)
{
	const char *ct = srv_req_header(req, "Content-Type");
	const char *ce = srv_req_header(req, "Content-Encoding");
	char why[512];
	if (ct) {
		size_t n = strcspn(ct, "; \t");
		int ok = 0;
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			ok |= strlen(types[i]) == n &&
			      !strncasecmp(ct, types[i], n);
		if (!ok) {
			snprintf(why, sizeof why,
				 "Content-Type %.100s is not a pprof profile: "
				 "send application/octet-stream (or "
				 "application/x-protobuf), e.g. curl "
				 "--data-binary @cpu.pprof -H 'Content-Type: "
				 "application/octet-stream'",
				 ct);
			refuse(app, req, resp, 415, why);
			return -1;
		}
	}
	*gzip = 0;
	if (ce && !strcasecmp(ce, "gzip"))
		*gzip = 1;
	else if (ce && strcasecmp(ce, "identity")) {
		snprintf(why, sizeof why,
			 "Content-Encoding %.100s: only gzip (or none)", ce);
		refuse(app, req, resp, 415, why);
		return -1;
	}
	return 0;
}

/* q->agent (see "Identity" above). */
static void agent_of(struct preq *q)
{
	srv_import_agent("pprof", q->binary, q->host,
			 (const char *const *)q->labels, q->nlabels, q->agent);
}

/* The seq of profile prof[0..len) posted with q's time= (never 0). */
static uint64_t seq_of(const uint8_t *prof, size_t len, const struct preq *q)
{
	uint8_t h[32];
	fdo_sha256(prof, len, h);
	return srv_import_seq("pprof", h, q->time);
}

/* The figures of a decode as JSON members (after a '{' and more). */
static void json_stats(struct fdo_buf *b, const struct wire_pprof_stats *st,
		       const Fdod__SampleBatch *batch)
{
	fdo_buf_puts(b, "\"sample_types\":");
	fdo_buf_json_str(b, st->value);
	fdo_buf_printf(b,
		       ",\"samples\":{\"read\":%llu,\"accepted\":%llu,"
		       "\"unmapped\":%llu,\"empty\":%llu},"
		       "\"frames\":{\"read\":%llu,\"dropped\":%llu},"
		       "\"unmapped\":{",
		       (unsigned long long)st->samples,
		       (unsigned long long)(st->count - st->count_unmapped),
		       (unsigned long long)st->count_unmapped,
		       (unsigned long long)st->samples_empty,
		       (unsigned long long)st->frames,
		       (unsigned long long)st->frames_dropped);
	srv_import_json_reasons(b, st->count_unmapped_by,
				st->frames_unmapped_by, WIRE_PPROF_REASONS,
				wire_pprof_reason_name, wire_pprof_reason_text);
	fdo_buf_puts(b, "},\"unmapped_mappings\":[");
	for (size_t i = 0; i < st->nmaps; i++) {
		const struct wire_pprof_map_shown *m = &st->maps[i];
		fdo_buf_printf(b, "%s{\"id\":%llu,\"file\":", i ? "," : "",
			       (unsigned long long)m->id);
		fdo_buf_json_str(b, m->file);
		fdo_buf_puts(b, ",\"build_id\":");
		fdo_buf_json_str(b, m->build_id);
		fdo_buf_printf(b, ",\"samples\":%llu,\"reason\":\"%s\"}",
			       (unsigned long long)m->count,
			       wire_pprof_reason_name(m->reason));
	}
	fdo_buf_putc(b, ']');
	if (!batch)
		return;
	fdo_buf_puts(b, ",\"event\":");
	fdo_buf_json_str(b, batch->event);
	fdo_buf_printf(b,
		       ",\"period\":%llu,\"time\":[%llu,%llu],"
		       "\"stacks\":%zu,\"mappings\":%zu",
		       (unsigned long long)batch->period,
		       (unsigned long long)batch->time_start,
		       (unsigned long long)batch->time_end, batch->n_stacks,
		       batch->n_mappings);
}

/* May the token send as agent, for host, samples of binary (NULL: not
 * known yet)? 0, or -1 after answering 403. */
static int token_allows(struct srv_app *app, struct srv_req *req,
			struct srv_resp *resp, const char *agent,
			const char *host, const char *binary)
{
	const struct srv_token *tok = req->principal;
	char why[400];
	if (!srv_token_allows_agent(tok, agent))
		snprintf(why, sizeof why,
			 "this token may not send as agent '%s' (pprof "
			 "profiles come as agent pprof/...: see its agents= "
			 "in the token file)",
			 agent);
	else if (!srv_token_allows_host(tok, host))
		snprintf(why, sizeof why,
			 "this token may not send for host '%.256s' (see its "
			 "hosts=; give host=)",
			 host);
	else if (binary && !srv_token_allows_binary(tok, binary))
		snprintf(why, sizeof why,
			 "this token may not send samples of binary '%.256s' "
			 "(see its binaries=; give binary=)",
			 binary);
	else
		return 0;
	refuse(app, req, resp, 403, why);
	return -1;
}

/* Refuse for error rc (an FDO_* code) with why; a 503 or 507 says when
 * to retry (retry_ms, or 1 s). */
static void refuse_rc(struct srv_app *app, struct srv_req *req,
		      struct srv_resp *resp, int rc, const char *why,
		      uint32_t retry_ms)
{
	int status = srv_import_status(rc);
	if (status == 503 || status == 507)
		srv_resp_header(resp, "Retry-After", "%u",
				retry_ms ? (retry_ms + 999) / 1000 : 1);
	refuse(app, req, resp, status, why);
}

/* The samples of a profile stored (not a duplicate), or refused with 422
 * because none maps, for /metrics. */
static void count_samples(struct srv_app *app,
			  const struct wire_pprof_stats *st)
{
	struct srv_pprof_counters *c = &app->pprof;
	atomic_fetch_add(&c->samples_accepted, st->count - st->count_unmapped);
	atomic_fetch_add(&c->samples_unmapped, st->count_unmapped);
	for (int r = 0; r < WIRE_PPROF_REASONS; r++) {
		atomic_fetch_add(&c->unmapped_by[r], st->count_unmapped_by[r]);
		atomic_fetch_add(&c->frames_unmapped_by[r],
				 st->frames_unmapped_by[r]);
	}
}

/* Decode and store the profile prof[0..len); answers. */
static void ingest(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, struct preq *q, const uint8_t *prof,
		   size_t len)
{
	struct wire_pprof_opts o = {
		.agent_id = q->agent,
		.seq = seq_of(prof, len, q),
		.host = q->host,
		.binary = q->binary[0] ? q->binary : NULL,
		.labels = (const char *const *)q->labels,
		.n_labels = q->nlabels,
		.time_end = q->time_end,
	};
	Fdod__SampleBatch *b = NULL;
	struct wire_pprof_stats *st = calloc(1, sizeof *st);
	char err[512] = "";
	if (!st) {
		refuse_rc(app, req, resp, FDO_ENOMEM, "out of memory", 0);
		return;
	}
	int rc = wire_pprof_decode(prof, len, &o, &b, st, err, sizeof err);
	if (rc) {
		char why[600];
		snprintf(why, sizeof why, "pprof profile refused: %s",
			 err[0] ? err : fdo_strerror(rc));
		refuse_rc(app, req, resp, rc, why, 0);
		goto out;
	}
	/* The binary may come from the profile: check it now. */
	if (token_allows(app, req, resp, b->agent_id, b->host, b->binary))
		goto out;
	struct fdo_buf *out = &resp->body;
	if (st->count == st->count_unmapped) {
		/* Nothing maps: nothing to store, and the reasons why,
		 * counted in /metrics too. */
		count_samples(app, st);
		fdo_warn("pprof from %s (%s): no sample in a file with a GNU "
			 "build-id (%llu unmapped); nothing stored",
			 req->peer ? req->peer : "?",
			 srv_token_name(req->principal),
			 (unsigned long long)st->count_unmapped);
		resp->status = 422;
		count_answer(app, 422);
		fdo_buf_puts(out, "{\"error\":\"no sample has a frame in a "
				  "file with a GNU build-id: nothing "
				  "stored\",");
		json_stats(out, st, b);
		fdo_buf_puts(out, "}\n");
		goto out;
	}
	struct agg_result res;
	agg_ingest_batch(app->ingest, b, &res);
	if (res.status) {
		char why[400];
		snprintf(why, sizeof why, "%s: %s", fdo_errname(res.status),
			 res.message);
		refuse_rc(app, req, resp, res.status, why, res.retry_after_ms);
		goto out;
	}
	/* Stored: its samples count once (a duplicate's counted the first
	 * time). */
	if (res.duplicate)
		atomic_fetch_add(&app->pprof.duplicates, 1);
	else
		count_samples(app, st);
	count_answer(app, 200);
	fdo_buf_puts(out, "{\"agent\":");
	fdo_buf_json_str(out, b->agent_id);
	fdo_buf_printf(out, ",\"seq\":%llu,\"duplicate\":%s,\"binary\":",
		       (unsigned long long)b->seq,
		       res.duplicate ? "true" : "false");
	fdo_buf_json_str(out, b->binary);
	fdo_buf_puts(out, ",\"host\":");
	fdo_buf_json_str(out, b->host);
	fdo_buf_putc(out, ',');
	json_stats(out, st, b);
	fdo_buf_puts(out, "}\n");
out:
	wire_batch_free(b);
	free(st);
}

void srv_h_pprof(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct preq *q = calloc(1, sizeof *q);
	if (!q) {
		refuse_rc(app, req, resp, FDO_ENOMEM, "out of memory", 0);
		return;
	}
	int gz;
	if (parse_query(app, req, resp, q))
		goto out;
	/* Before anything is inflated or decoded: what the token allows of
	 * the query (the binary a profile names is checked after). */
	agent_of(q);
	if (token_allows(app, req, resp, q->agent, q->host,
			 q->binary[0] ? q->binary : NULL) ||
	    check_type(app, req, resp, &gz))
		goto out;
	const uint8_t *body = (const uint8_t *)req->body;
	size_t len = req->body ? req->body_len : 0;
	if (!len) {
		refuse(app, req, resp, 400,
		       "empty body: send a pprof profile (profile.proto, "
		       "gzipped or not)");
		goto out;
	}
	if (gz && !wire_is_gzip(body, len)) {
		refuse(app, req, resp, 400,
		       "Content-Encoding: gzip, but the body is not gzip (no "
		       "1f 8b magic)");
		goto out;
	}
	if (!wire_is_gzip(body, len)) {
		ingest(app, req, resp, q, body, len);
		goto out;
	}
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	char why[320];
	int rc = srv_import_gunzip(body, len, "a profile", &raw, &rawlen, why,
				   sizeof why);
	if (rc) {
		refuse_rc(app, req, resp, rc, why, 0);
		goto out;
	}
	ingest(app, req, resp, q, raw, rawlen);
	free(raw);
out:
	free(q);
}

void srv_pprof_metrics(struct srv_app *app, struct fdo_buf *b)
{
	struct srv_pprof_counters *c = &app->pprof;
	srv_import_metrics_requests(b, "fdod_pprof_requests_total",
				    "POST /v1/pprof requests, by HTTP status.",
				    c->requests);
	fdo_buf_printf(b,
		       "# HELP fdod_pprof_duplicates_total Profiles posted "
		       "again (identical requests), counted once.\n"
		       "# TYPE fdod_pprof_duplicates_total counter\n"
		       "fdod_pprof_duplicates_total %llu\n",
		       (unsigned long long)atomic_load(&c->duplicates));
	fdo_buf_printf(b,
		       "# HELP fdod_pprof_samples_total Samples of the pprof "
		       "profiles stored (duplicates not counted again) or "
		       "refused because none maps, by result (unmapped: no "
		       "frame in a file with a GNU build-id).\n"
		       "# TYPE fdod_pprof_samples_total counter\n"
		       "fdod_pprof_samples_total{result=\"accepted\"} %llu\n"
		       "fdod_pprof_samples_total{result=\"unmapped\"} %llu\n",
		       (unsigned long long)atomic_load(&c->samples_accepted),
		       (unsigned long long)atomic_load(&c->samples_unmapped));
	srv_import_metrics_reasons(
		b, "fdod_pprof_unmapped_samples_total",
		"Unmapped samples of pprof profiles, by the reason of their "
		"leaf frame.",
		c->unmapped_by, WIRE_PPROF_REASONS, wire_pprof_reason_name);
	srv_import_metrics_reasons(
		b, "fdod_pprof_unmapped_frames_total",
		"Unmapped frames of pprof profiles, by reason.",
		c->frames_unmapped_by, WIRE_PPROF_REASONS,
		wire_pprof_reason_name);
}
