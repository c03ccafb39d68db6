/*
 * server/app.h — the running daemon: every part fdod starts, shared by the
 * route handlers. Fields are set at start and read-only afterwards (each
 * part guards its own state).
 */
#ifndef FDO_SERVER_APP_H
#define FDO_SERVER_APP_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "server/config.h"
#include "server/http.h"
#include "server/pcache.h"
#include "server/sampling.h"
#include "server/upstream.h"
#include "storage/storage.h"
#include "symbolizer/symbolizer.h"

enum { SRV_UPLOAD_STORED, SRV_UPLOAD_PRESENT, SRV_UPLOAD_REFUSED };
#define SRV_FORMATS 6 /* llvm gcc bolt folded pprof, and "other" */
#define SRV_CODES   9 /* see srv_metrics_codes */
extern const int srv_metrics_codes[SRV_CODES];

/*
 * POST /v1/pprof (server/pprof.c): the largest body (as a SampleBatch
 * message), and what a gzipped one may inflate to (as the memory one
 * batch's decode may take); past either, 413.
 */
#define SRV_PPROF_MAX_BODY     (16u << 20)
#define SRV_PPROF_MAX_INFLATED (64u << 20)
#define SRV_PPROF_CODES	       10 /* answer statuses counted, "other" last */
_Static_assert(SRV_PPROF_MAX_BODY <= SRV_HTTP_BODY_MEMORY_MIN,
	       "--http-body-memory's least value must hold a pprof body");

/* Its counters for /metrics (updated by the HTTP workers). */
struct srv_pprof_counters {
	atomic_uint_fast64_t requests[SRV_PPROF_CODES]; /* by status */
	atomic_uint_fast64_t duplicates;
	atomic_uint_fast64_t samples_accepted, samples_unmapped;
	atomic_uint_fast64_t unmapped_by[WIRE_PPROF_REASONS]; /* samples */
	atomic_uint_fast64_t frames_unmapped_by[WIRE_PPROF_REASONS];
};

/* POST /v1development/profiles (server/otlp.c): the same body and
 * inflated bounds as POST /v1/pprof; its counters for /metrics. */
struct srv_otlp_counters {
	atomic_uint_fast64_t requests[SRV_PPROF_CODES]; /* by status */
	atomic_uint_fast64_t batches, duplicates;
	atomic_uint_fast64_t samples_accepted, samples_unmapped;
	atomic_uint_fast64_t unmapped_by[WIRE_OTLP_REASONS]; /* samples */
	atomic_uint_fast64_t frames_unmapped_by[WIRE_OTLP_REASONS];
};

/* A source of per-(binary, label set, bucket) totals: store_totals_each,
 * or in a test a walk that sums every counts entry instead. */
typedef int (*srv_totals_walk)(store_txn *t, uint32_t binary,
			       store_totals_fn fn, void *arg);

struct srv_grpc;

struct srv_app {
	struct srv_config cfg;
	store *st;
	sym_cache *cache;
	agg_ingest *ingest;
	agg_symwork *symwork;
	struct srv_auth *auth;	/* NULL: loopback-only, no tokens */
	srv_upstream *upstream; /* NULL: no --debuginfod-urls */
	struct pcache *pcache;	/* built profiles shared by identical pulls */
	struct srv_sampling *sampling; /* sampling control (server/sampling.c) */
	/* For /metrics; set once serving (read by HTTP workers). */
	_Atomic(struct srv_http *) http;
	_Atomic(struct srv_listen *) listen;
	_Atomic(struct srv_grpc *) grpc; /* NULL: no --otlp-grpc */
	time_t started;
	char incoming[4096]; /* where uploads are streamed */
	/* Where readiness and /v1/binaries read their figures: NULL is
	 * table totals (store_totals_each). Only tests set another (a full
	 * scan of counts), to check that the answers are the same. */
	srv_totals_walk totals_walk;
	/* Counters for /metrics (updated by the HTTP workers). */
	atomic_uint_fast64_t uploads[3]; /* SRV_UPLOAD_* */
	atomic_uint_fast64_t profile_requests[SRV_FORMATS][SRV_CODES];
	atomic_uint_fast64_t builds_refused; /* the budget's builds part */
	struct srv_pprof_counters pprof;
	struct srv_otlp_counters otlp;
};

/* The HTTP route table (server/routes.c). */
extern const struct srv_route srv_routes[];

/*
 * A handler's read transaction (server/routes.c). With flush, over everything
 * acknowledged so far: batches logged but not yet merged are merged first
 * (bounded wait). On failure the response is a 503 and the error returned.
 */
int srv_read_txn(struct srv_app *app, struct srv_resp *resp, int flush,
		 store_txn **t);
/*
 * srv_read_txn, and the id of the binary named name; an unknown name ends
 * the transaction and answers 404. FDO_OK or the error.
 */
int srv_binary_txn(struct srv_app *app, struct srv_resp *resp, int flush,
		   const char *name, store_txn **t, uint32_t *binary);

/*
 * srv_totals_each walks the totals rows of binary, in (label set, bucket)
 * order, from app's source (table totals); as store_totals_each.
 */
int srv_totals_each(struct srv_app *app, store_txn *t, uint32_t binary,
		    store_totals_fn fn, void *arg);

/* Count one profile request (format name or NULL, HTTP status). */
void srv_metrics_profile(struct srv_app *app, const char *format, int status);

/* The profile API (server/profiles.c, publish.c, readiness.c). */
void srv_h_profile(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_publish(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_versions(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_version(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_readiness(void *app, struct srv_req *req, struct srv_resp *resp);
/* The staleness score of a binary (server/readiness.c): its "staleness"
 * object for GET /v1/binaries/{binary} (computed when not kept), and the
 * gauges of the scores kept for /metrics (never computed there). */
void srv_staleness_json(struct srv_app *app, const char *binary,
			struct fdo_buf *b);
void srv_staleness_metrics(struct srv_app *app, struct fdo_buf *b);
/* GET /v1/binaries/{b}/releases (server/releases.c). */
void srv_h_releases(void *app, struct srv_req *req, struct srv_resp *resp);
/* debuginfod protocol (server/debuginfod.c). */
void srv_h_debuginfo(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_executable(void *app, struct srv_req *req, struct srv_resp *resp);

/* GET /: the operator web page (server/web.c). */
void srv_h_web(void *app, struct srv_req *req, struct srv_resp *resp);

/*
 * What the importers over HTTP (POST /v1/pprof, POST
 * /v1development/profiles) share (server/import.c). srv_import_agent
 * writes into out kind, '/' and 32 hex digits of SHA-256 over kind, the
 * binary, host and labels ("k=v", sorted by the caller): one stable
 * agent per (source, binary, host, label set). srv_import_seq is the
 * first 64 bits of SHA-256 over "fdod <kind> seq v1" and its NUL,
 * body_sha256 (the caller's SHA-256 of the body: one hash serves every
 * batch of a request) and extra (a NUL-terminated string, at most 255
 * bytes read, and its NUL), never 0: a retried identical request gives
 * the same (agent, seq), a duplicate.
 * srv_import_status maps an FDO_* error to its HTTP status. Pure; any
 * thread.
 */
void srv_import_agent(const char *kind, const char *binary, const char *host,
		      const char *const *labels, size_t n, char out[64]);
uint64_t srv_import_seq(const char *kind, const uint8_t body_sha256[32],
			const char *extra);
int srv_import_status(int rc);
/*
 * srv_import_count counts an answer of status in requests (one slot per
 * counted status, "other" last). srv_import_metrics_requests prints
 * requests as the Prometheus counter metric{code=...} with its help text
 * (statuses never answered left out, but for 200);
 * srv_import_metrics_reasons prints by_reason[0..n) as metric{reason=
 * name(r)}. srv_import_gunzip inflates body[0..len) into a heap *raw of
 * at most SRV_PPROF_MAX_INFLATED bytes (a bomb stops there): FDO_OK, or
 * the error with why saying it ("... (the limit of <what>)" when over).
 */
void srv_import_count(atomic_uint_fast64_t requests[SRV_PPROF_CODES],
		      int status);
void srv_import_metrics_requests(struct fdo_buf *b, const char *metric,
				 const char *help,
				 atomic_uint_fast64_t requests[SRV_PPROF_CODES]);
void srv_import_metrics_reasons(struct fdo_buf *b, const char *metric,
				const char *help,
				atomic_uint_fast64_t *by_reason, int n,
				const char *(*name)(int reason));
int srv_import_gunzip(const uint8_t *body, size_t len, const char *what,
		      uint8_t **raw, size_t *rawlen, char *why, size_t whylen);
/* srv_import_json_reasons appends, for each reason r < n with unmapped
 * samples or frames, "NAME":{"samples":S,"frames":F,"why":TEXT}, comma
 * separated (an answer's "unmapped" object, without its braces). */
void srv_import_json_reasons(struct fdo_buf *b, const uint64_t *samples_by,
			     const uint64_t *frames_by, int n,
			     const char *(*name)(int reason),
			     const char *(*text)(int reason));

/* POST /v1development/profiles (server/otlp.c), and its /metrics. */
void srv_h_otlp(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_otlp_metrics(struct srv_app *app, struct fdo_buf *b);

/*
 * What both OTLP transports (server/otlp.c over HTTP, server/otlp_grpc.c
 * over gRPC) do with one ExportProfilesServiceRequest, and its outcome.
 * srv_otlp_ingest decodes body[0..len) (already inflated; OTel file ids
 * resolved through the store's index, in a read transaction), names each
 * batch's (agent, seq), checks that tok (NULL: no token file) may send
 * every batch, stores them one by one (agg_ingest_batch: blocks until
 * they are durable) and counts the batches and samples in app->otlp.
 * peer is the host of batches without a host attribute. It neither
 * logs nor answers: the transport does, from o. Call o->result's
 * wire_otlp_result_fini afterwards, whatever the status. Any thread
 * that may block.
 */
struct srv_token;
struct srv_otlp_outcome {
	int status;	   /* an HTTP status: 200 stored, else refused */
	uint32_t retry_ms; /* 503, 507: when to retry (0: unknown) */
	char why[600];	   /* the refusal's reason */
	size_t dups;	   /* 200: batches that were stored before */
	struct wire_otlp_stats st;	/* the request's figures (decoded) */
	struct wire_otlp_result result; /* its batches */
};
void srv_otlp_ingest(struct srv_app *app, const struct srv_token *tok,
		     const char *peer, const uint8_t *body, size_t len,
		     struct srv_otlp_outcome *o);
/*
 * srv_otlp_response writes into out an ExportProfilesServiceResponse whose
 * partial_success says how many samples of st had no frame fdod can
 * symbolize (none when all had one); out is left as it was when memory
 * runs out. Pure; any thread.
 */
void srv_otlp_response(const struct wire_otlp_stats *st, struct fdo_buf *out);

/* POST /v1/pprof (server/pprof.c), and its lines of /metrics. */
void srv_h_pprof(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_pprof_metrics(struct srv_app *app, struct fdo_buf *b);

/* GET /metrics (server/metrics.c). */
void srv_h_metrics(void *app, struct srv_req *req, struct srv_resp *resp);

#endif
