/*
 * server/otlp.c — POST /v1development/profiles: OTLP/HTTP profiles (an
 * ExportProfilesServiceRequest, application/x-protobuf, gzipped or not),
 * as the OpenTelemetry eBPF profiler and the OpenTelemetry Collector
 * send them, into the ingest pipeline as SampleBatches (decoded by
 * schemas/otlp.c), and its figures for /metrics. docs/ingest.md
 * "OpenTelemetry profiles" is the user's side.
 *
 * Bounds, in the order they apply, as for POST /v1/pprof
 * (server/pprof.c): the route's body limit (SRV_PPROF_MAX_BODY, 413
 * before the body is read) and the HTTP front's body budget (503), the
 * token (scope ingest, before the body is read), the content type (415),
 * the inflated size (SRV_PPROF_MAX_INFLATED: a gzip bomb stops there,
 * 413), the decode's memory, the batches' bounds; then the token's
 * agents=, hosts= and binaries= for every batch, before any is stored;
 * then agg_ingest_batch (validation, time window, rates, WAL, weights).
 *
 * Identity. OTLP has no (agent, seq): at-least-once. Each batch gets
 * agent otlp/<hash of binary, host, labels> and seq <hash of the
 * inflated body and the batch's number in the request>
 * (srv_import_agent, srv_import_seq): a retried identical request is
 * the same batches, duplicates counted once (--dedup-ttl); a request
 * resent after it was re-encoded differently is counted again.
 * Batches are stored one by one: a failure after the first leaves the
 * earlier ones stored (the answer says how many); a retry of the whole
 * request then stores only the rest.
 *
 * Answer: 200 with an ExportProfilesServiceResponse (protobuf), its
 * partial_success saying how many samples had no frame fdod can
 * symbolize, and why; with Accept: application/json, the figures as
 * JSON instead. Errors: the usual JSON {"error": ...} with the status
 * OTLP clients act on (4xx: do not retry; 503 with Retry-After).
 *
 * Workload: one request every 5-60 s per host, ~10 KiB-1 MiB. Runs on
 * an HTTP worker thread and blocks until the batches are durable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "schemas/otlp_profiles.pb-c.h"
#include "server/app.h"
#include "server/auth.h"

#define LABELS_MAX 64 /* a batch's labels hashed into its agent */

static void count_answer(struct srv_app *app, int status)
{
	srv_import_count(app->otlp.requests, status);
}

/* Refuse with status and why (logged once, here). */
static void refuse(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, int status, const char *why,
		   uint32_t retry_ms)
{
	fdo_warn("OTLP profiles from %s refused (%s): %s",
		 req->peer ? req->peer : "?", srv_token_name(req->principal),
		 why);
	if (status == 503 || status == 507)
		srv_resp_header(resp, "Retry-After", "%u",
				retry_ms ? (retry_ms + 999) / 1000 : 1);
	srv_resp_error(resp, status, "%s", why);
	count_answer(app, status);
}

/* Content-Type and -Encoding; 0, or -1 after answering 415. */
static int check_type(struct srv_app *app, struct srv_req *req,
		      struct srv_resp *resp, int *gzip)
{
	const char *ct = srv_req_header(req, "Content-Type");
	const char *ce = srv_req_header(req, "Content-Encoding");
	char why[400];
	size_t n = ct ? strcspn(ct, "; \t") : 0;
	if (!ct ||
	    !((n == 22 && !strncasecmp(ct, "application/x-protobuf", n)) ||
	      (n == 20 && !strncasecmp(ct, "application/protobuf", n)))) {
		snprintf(why, sizeof why,
			 "Content-Type %.100s: OTLP/HTTP profiles are "
			 "application/x-protobuf (OTLP/JSON is not accepted)",
			 ct ? ct : "(none)");
		refuse(app, req, resp, 415, why, 0);
		return -1;
	}
	*gzip = ce && !strcasecmp(ce, "gzip");
	if (ce && !*gzip && strcasecmp(ce, "identity")) {
		snprintf(why, sizeof why,
			 "Content-Encoding %.100s: only gzip (or none)", ce);
		refuse(app, req, resp, 415, why, 0);
		return -1;
	}
	return 0;
}

/* agent_id, seq of batch i of a request whose body's SHA-256 is h. */
static void identify(Fdod__SampleBatch *b, size_t i, const uint8_t h[32])
{
	char kv[LABELS_MAX][600];
	const char *lp[LABELS_MAX];
	size_t n = 0;
	for (size_t k = 0; k < b->n_labels && n < LABELS_MAX; k++) {
		snprintf(kv[n], sizeof kv[n], "%s=%s", b->labels[k]->key,
			 b->labels[k]->value);
		lp[n] = kv[n];
		n++;
	}
	char agent[64], nr[32];
	srv_import_agent("otlp", b->binary, b->host, lp, n, agent);
	snprintf(nr, sizeof nr, "%zu", i);
	char *a = strdup(agent);
	if (a) {
		free(b->agent_id);
		b->agent_id = a;
	}
	b->seq = srv_import_seq("otlp", h, nr);
}

/* May tok send every batch? 0, or -1 with the reason in why. */
static int token_allows(const struct srv_token *tok,
			const struct wire_otlp_result *r, char *why,
			size_t whylen)
{
	for (size_t i = 0; i < r->n; i++) {
		const Fdod__SampleBatch *b = r->batches[i];
		if (!srv_token_allows_agent(tok, b->agent_id))
			snprintf(why, whylen,
				 "this token may not send as agent '%s' (OTLP "
				 "profiles come as agent otlp/...: see its "
				 "agents= in the token file)",
				 b->agent_id);
		else if (!srv_token_allows_host(tok, b->host))
			snprintf(why, whylen,
				 "this token may not send for host '%.256s' "
				 "(see its hosts=)",
				 b->host);
		else if (!srv_token_allows_binary(tok, b->binary))
			snprintf(why, whylen,
				 "this token may not send samples of binary "
				 "'%.256s' (see its binaries=)",
				 b->binary);
		else
			continue;
		return -1;
	}
	return 0;
}

static void count_samples(struct srv_app *app, const struct wire_otlp_stats *st)
{
	struct srv_otlp_counters *c = &app->otlp;
	atomic_fetch_add(&c->samples_accepted, st->count - st->count_unmapped);
	atomic_fetch_add(&c->samples_unmapped, st->count_unmapped);
	for (int r = 0; r < WIRE_OTLP_REASONS; r++) {
		atomic_fetch_add(&c->unmapped_by[r], st->count_unmapped_by[r]);
		atomic_fetch_add(&c->frames_unmapped_by[r],
				 st->frames_unmapped_by[r]);
	}
}

/* "N samples unmapped: reason N, ..." into b (nothing when none). */
static void unmapped_text(struct fdo_buf *b, const struct wire_otlp_stats *st)
{
	if (!st->count_unmapped)
		return;
	fdo_buf_printf(b,
		       "%llu of %llu samples have no frame fdod can "
		       "symbolize, by their leaf:",
		       (unsigned long long)st->count_unmapped,
		       (unsigned long long)st->count);
	for (int r = 0; r < WIRE_OTLP_REASONS; r++)
		if (st->count_unmapped_by[r])
			fdo_buf_printf(
				b, " %s %llu", wire_otlp_reason_name(r),
				(unsigned long long)st->count_unmapped_by[r]);
}

static void json_answer(struct fdo_buf *out, const struct wire_otlp_stats *st,
			const struct wire_otlp_result *r, size_t dups)
{
	fdo_buf_printf(out,
		       "{\"shape\":\"%s\",\"profiles\":%llu,"
		       "\"samples\":{\"read\":%llu,\"accepted\":%llu,"
		       "\"unmapped\":%llu,\"empty\":%llu},"
		       "\"frames\":{\"read\":%llu,\"dropped\":%llu},"
		       "\"file_ids\":{\"mappings\":%llu,\"resolved\":%llu},"
		       "\"unmapped\":{",
		       st->shape ? st->shape : "",
		       (unsigned long long)st->profiles,
		       (unsigned long long)st->samples,
		       (unsigned long long)(st->count - st->count_unmapped),
		       (unsigned long long)st->count_unmapped,
		       (unsigned long long)st->samples_empty,
		       (unsigned long long)st->frames,
		       (unsigned long long)st->frames_dropped,
		       (unsigned long long)st->file_id_mappings,
		       (unsigned long long)st->file_id_resolved);
	srv_import_json_reasons(out, st->count_unmapped_by,
				st->frames_unmapped_by, WIRE_OTLP_REASONS,
				wire_otlp_reason_name, wire_otlp_reason_text);
	fdo_buf_printf(out, "},\"duplicates\":%zu,\"batches\":[", dups);
	for (size_t i = 0; i < r->n; i++) {
		const Fdod__SampleBatch *b = r->batches[i];
		fdo_buf_puts(out, i ? ",{\"agent\":" : "{\"agent\":");
		fdo_buf_json_str(out, b->agent_id);
		fdo_buf_printf(out, ",\"seq\":%llu,\"binary\":",
			       (unsigned long long)b->seq);
		fdo_buf_json_str(out, b->binary);
		fdo_buf_puts(out, ",\"host\":");
		fdo_buf_json_str(out, b->host);
		fdo_buf_puts(out, ",\"event\":");
		fdo_buf_json_str(out, b->event);
		fdo_buf_printf(out,
			       ",\"period\":%llu,\"time\":[%llu,%llu],"
			       "\"stacks\":%zu,\"mappings\":%zu}",
			       (unsigned long long)b->period,
			       (unsigned long long)b->time_start,
			       (unsigned long long)b->time_end, b->n_stacks,
			       b->n_mappings);
	}
	fdo_buf_puts(out, "]}\n");
}

void srv_otlp_response(const struct wire_otlp_stats *st, struct fdo_buf *out)
{
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse
		m = OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesPartialSuccess
		ps = OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
	struct fdo_buf text;
	fdo_buf_init(&text);
	unmapped_text(&text, st);
	if (text.len && !text.oom) {
		ps.error_message = (char *)fdo_buf_cstr(&text);
		m.partial_success = &ps;
	}
	size_t n =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__get_packed_size(
			&m);
	if (!fdo_buf_reserve(out, n)) {
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__pack(
			&m, (uint8_t *)out->data);
		out->len = n;
	}
	fdo_buf_fini(&text);
}

/* The file id resolver of a decode (wire_otlp_opts.file_id): one read
 * transaction, begun at the first file id, ended after the decode. */
struct file_ids {
	store *st;
	store_txn *t;
};

static int file_id_of(void *arg, const uint8_t *fid, uint8_t *bid, size_t *len)
{
	struct file_ids *f = arg;
	if (!f->t && store_txn_begin(f->st, 0, &f->t))
		return -1;
	return store_fileid_get(f->t, fid, bid, len) == FDO_OK ? 0 : -1;
}

/* Set o's refusal: status, and why from fmt. */
static void fail(struct srv_otlp_outcome *o, int status, uint32_t retry_ms,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(struct srv_otlp_outcome *o, int status, uint32_t retry_ms,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof o->why, fmt, ap);
	va_end(ap);
	o->status = status;
	o->retry_ms = retry_ms;
}

void srv_otlp_ingest(struct srv_app *app, const struct srv_token *tok,
		     const char *peer, const uint8_t *body, size_t len,
		     struct srv_otlp_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->status = 200;
	struct wire_otlp_attrs attrs;
	char err[512] = "";
	if (wire_otlp_attrs_parse(app->cfg.otlp_attributes, &attrs, err,
				  sizeof err)) {
		/* Checked at start-up: only memory fails here. */
		wire_otlp_attrs_fini(&attrs);
		fail(o, 503, 0, "out of memory");
		return;
	}
	struct file_ids fids = {app->st, NULL};
	struct wire_otlp_opts opts = {
		.attrs = &attrs,
		.host = peer ? peer : "unknown",
		.file_id = file_id_of,
		.file_id_arg = &fids,
	};
	struct wire_otlp_result *r = &o->result;
	int rc = wire_otlp_decode(body, len, &opts, r, &o->st, err, sizeof err);
	if (fids.t)
		store_txn_abort(fids.t);
	wire_otlp_attrs_fini(&attrs);
	if (rc) {
		fail(o, srv_import_status(rc), 0, "OTLP profiles refused: %s",
		     err[0] ? err : fdo_strerror(rc));
		return;
	}
	/* Hashed once: a request of n batches is n seqs of one digest. */
	uint8_t h[32];
	if (r->n)
		fdo_sha256(body, len, h);
	for (size_t i = 0; i < r->n; i++)
		identify(r->batches[i], i, h);
	if (token_allows(tok, r, o->why, sizeof o->why)) {
		o->status = 403;
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		struct agg_result res;
		agg_ingest_batch(app->ingest, r->batches[i], &res);
		if (res.status) {
			fail(o, srv_import_status(res.status),
			     res.retry_after_ms,
			     "%s: %s (batch %zu of %zu; %zu stored before "
			     "it)",
			     fdo_errname(res.status), res.message, i + 1, r->n,
			     i);
			return;
		}
		o->dups += res.duplicate != 0;
	}
	atomic_fetch_add(&app->otlp.batches, r->n - o->dups);
	atomic_fetch_add(&app->otlp.duplicates, o->dups);
	/* A request whose batches were all stored before counts once. */
	if (!r->n || o->dups < r->n)
		count_samples(app, &o->st);
}

/* Decode, check and store the request body[0..len); answers. */
static void ingest(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, const uint8_t *body, size_t len)
{
	struct srv_otlp_outcome o;
	srv_otlp_ingest(app, req->principal, req->peer, body, len, &o);
	if (o.status != 200) {
		refuse(app, req, resp, o.status, o.why, o.retry_ms);
	} else {
		count_answer(app, 200);
		const char *acc = srv_req_header(req, "Accept");
		if (acc && strstr(acc, "application/json")) {
			json_answer(&resp->body, &o.st, &o.result, o.dups);
		} else {
			srv_otlp_response(&o.st, &resp->body);
			resp->content_type = "application/x-protobuf";
		}
	}
	wire_otlp_result_fini(&o.result);
}

void srv_h_otlp(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	int gz;
	if (check_type(app, req, resp, &gz))
		return;
	const uint8_t *body = (const uint8_t *)req->body;
	size_t len = req->body ? req->body_len : 0;
	if (gz && !wire_is_gzip(body, len)) {
		refuse(app, req, resp, 400,
		       "Content-Encoding: gzip, but the body is not gzip (no "
		       "1f 8b magic)",
		       0);
		return;
	}
	if (!gz) {
		ingest(app, req, resp, body ? body : (const uint8_t *)"", len);
		return;
	}
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	char why[320];
	int rc = srv_import_gunzip(body, len, "a request", &raw, &rawlen, why,
				   sizeof why);
	if (rc) {
		refuse(app, req, resp, srv_import_status(rc), why, 0);
		return;
	}
	ingest(app, req, resp, raw, rawlen);
	free(raw);
}

void srv_otlp_metrics(struct srv_app *app, struct fdo_buf *b)
{
	struct srv_otlp_counters *c = &app->otlp;
	srv_import_metrics_requests(
		b, "fdod_otlp_requests_total",
		"POST /v1development/profiles requests, by HTTP status.",
		c->requests);
	fdo_buf_printf(b,
		       "# HELP fdod_otlp_batches_total Batches made of OTLP "
		       "profiles and stored, and those that were duplicates "
		       "(a retried identical request).\n"
		       "# TYPE fdod_otlp_batches_total counter\n"
		       "fdod_otlp_batches_total{result=\"stored\"} %llu\n"
		       "fdod_otlp_batches_total{result=\"duplicate\"} %llu\n",
		       (unsigned long long)atomic_load(&c->batches),
		       (unsigned long long)atomic_load(&c->duplicates));
	fdo_buf_printf(b,
		       "# HELP fdod_otlp_samples_total Samples of OTLP "
		       "profiles (requests stored again as duplicates not "
		       "counted), by result (unmapped: no frame in a file "
		       "with a GNU build-id).\n"
		       "# TYPE fdod_otlp_samples_total counter\n"
		       "fdod_otlp_samples_total{result=\"accepted\"} %llu\n"
		       "fdod_otlp_samples_total{result=\"unmapped\"} %llu\n",
		       (unsigned long long)atomic_load(&c->samples_accepted),
		       (unsigned long long)atomic_load(&c->samples_unmapped));
	srv_import_metrics_reasons(
		b, "fdod_otlp_unmapped_samples_total",
		"Unmapped samples of OTLP profiles, by the reason of their "
		"leaf frame.",
		c->unmapped_by, WIRE_OTLP_REASONS, wire_otlp_reason_name);
	srv_import_metrics_reasons(
		b, "fdod_otlp_unmapped_frames_total",
		"Unmapped frames of OTLP profiles, by reason.",
		c->frames_unmapped_by, WIRE_OTLP_REASONS,
		wire_otlp_reason_name);
}
