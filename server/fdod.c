/*
 * server/fdod.c — the fdod daemon: every role over one embedded store.
 *
 * DESIGN
 *   main blocks SIGTERM/SIGINT in every thread, starts the parts in order
 *   (store, DWARF cache, symbolizer pool, upstream fetches when
 *   --debuginfod-urls is set, ingest writer, agent listener, the OTLP/gRPC
 *   listener when --otlp-grpc is set, HTTP: once /v1/status answers,
 *   every listener is bound), then
 *   waits for a signal with sigwait. Stopping first tells upstream fetches
 *   to give up (they end within a second, while the rest stops), then runs
 *   the list backwards: HTTP first (no new uploads), OTLP/gRPC (calls
 *   being stored finish, the rest get UNAVAILABLE), then the agent
 *   listener, which lets every batch it has received be committed and
 *   acknowledged, then the ingest writer (drains its queue), the symbolizer
 *   pool's hook into upstream fetches, the fetch threads, the symbolizer
 *   pool (finishes its chunk) and the store. Nothing is half-done: each
 *   part's stop waits for the work it accepted; a fetch given up is asked
 *   again after a restart.
 *   libdebuginfod reads its settings from the environment: fdod sets them
 *   from its options before any thread starts (srv_upstream_env).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/chsink.h"
#include "common/common.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/ingest_edge.h"
#include "server/listen.h"
#include "server/otlp_grpc.h"
#include "server/cluster.h"
#include "server/upstream.h"

static void on_batch(void *arg, const uint8_t *msg, size_t len,
		     const char *peer, struct fdo_buf *reply, int *authorized)
{
	struct srv_app *app = arg;
	srv_ingest_message(app, msg, len, peer, reply, authorized);
}

static void on_pending(void *arg, const uint32_t *ids, size_t n)
{
	struct srv_app *app = arg;
	agg_symwork_wake(app->symwork, ids, n);
}

static void on_fetched(void *arg, uint32_t id)
{
	struct srv_app *app = arg;
	agg_symwork_wake(app->symwork, &id, 1);
}

/* Is --debuginfod-urls set to something other than spaces? */
static int upstream_on(const struct srv_config *cfg)
{
	const char *u = cfg->debuginfod_urls;
	return u && u[strspn(u, " ")];
}

static int http_auth(void *arg, struct srv_req *req, unsigned scope,
		     struct srv_resp *resp)
{
	struct srv_app *app = arg;
	const char *h = srv_req_header(req, "Authorization");
	const char *token = NULL;
	if (h && !strncasecmp(h, "Bearer ", 7))
		token = h + 7;
	const struct srv_token *tok;
	int rc = srv_auth_check(app->auth, token, token ? strlen(token) : 0,
				scope, &tok);
	req->principal = tok;
	if (rc == FDO_OK)
		return 0;
	int status = rc == FDO_EDENIED ? 403 : 401;
	fdo_warn("http: %s %s from %s refused (%s): %s", req->method, req->path,
		 req->peer ? req->peer : "?", srv_token_name(tok),
		 status == 403 ? "token lacks the scope" : "no valid token");
	srv_resp_error(resp, status, "%s",
		       status == 403 ? "this token lacks the needed scope"
				     : "a valid token is needed: "
				       "Authorization: Bearer TOKEN");
	if (status == 401)
		srv_resp_header(resp, "WWW-Authenticate", "Bearer");
	return status;
}

/*
 * Is url on this host only (a loopback address or a local socket)? The
 * host part must be a loopback literal (127.0.0.0/8, ::1) or "localhost";
 * "127.example.com" is not.
 */
static int loopback_url(const char *url)
{
	if (!strncmp(url, "ipc://", 6) || !strncmp(url, "inproc://", 9))
		return 1;
	static const char *const schemes[] = {"tcp://", "tls+tcp://", "http://",
					      "https://"};
	const char *host = NULL;
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (!strncmp(url, schemes[i], strlen(schemes[i])))
			host = url + strlen(schemes[i]);
	if (!host)
		return 0;
	char h[256];
	size_t n;
	if (*host == '[') {
		n = strcspn(host + 1, "]");
		if (host[1 + n] != ']' || n >= sizeof h)
			return 0;
		memcpy(h, host + 1, n);
		h[n] = 0;
		struct in6_addr a6;
		return inet_pton(AF_INET6, h, &a6) == 1 &&
		       IN6_IS_ADDR_LOOPBACK(&a6);
	}
	n = strcspn(host, ":/");
	if (n >= sizeof h)
		return 0;
	memcpy(h, host, n);
	h[n] = 0;
	if (!strcmp(h, "localhost"))
		return 1;
	struct in_addr a4;
	return inet_pton(AF_INET, h, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) == 127;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/*
 * Every agent connection, HTTP client, upload and symbol file open costs a
 * descriptor: take the hard limit (systemd's default soft limit is 1024),
 * and say so when it is low. Running out is survived (connections wait in
 * the kernel's backlog) but slows everyone; /metrics has process_open_fds.
 */
static uint64_t raise_nofile(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return 1024;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
		getrlimit(RLIMIT_NOFILE, &r);
	}
	if (r.rlim_cur < 1024)
		fdo_warn("fdod: only %llu file descriptors allowed "
			 "(RLIMIT_NOFILE)",
			 (unsigned long long)r.rlim_cur);
	return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : r.rlim_cur;
}

/*
 * The connection caps must fit the descriptors, with room for the store,
 * the log, symbol files and uploads (FD_RESERVE): when they do not, both
 * are scaled down, so that clients over a cap are refused at once instead
 * of starving everyone of descriptors.
 */
#define FD_RESERVE 96

static void fit_caps(struct srv_config *cfg, uint64_t nofile)
{
	/* A gRPC connection holds two descriptors (fdod's and gRPC's copy:
	 * server/otlp_grpc.c). */
	uint64_t grpc = cfg->otlp_grpc ? 2 * cfg->otlp_grpc_connections : 0;
	uint64_t want = cfg->http_connections + cfg->agent_connections + grpc;
	uint64_t room = nofile > 2 * FD_RESERVE ? nofile - FD_RESERVE
						: nofile / 2;
	if (want <= room)
		return;
	uint64_t http = room * cfg->http_connections / want;
	uint64_t g = room * grpc / want / 2;
	uint64_t agent = room - http - 2 * g;
	fdo_warn("fdod: %llu file descriptors allowed: at most %llu HTTP, "
		 "%llu agent and %llu OTLP/gRPC connections "
		 "(--http-connections %llu, --agent-connections %llu, "
		 "--otlp-grpc-connections %llu)",
		 (unsigned long long)nofile, (unsigned long long)http,
		 (unsigned long long)agent, (unsigned long long)g,
		 (unsigned long long)cfg->http_connections,
		 (unsigned long long)cfg->agent_connections,
		 (unsigned long long)cfg->otlp_grpc_connections);
	cfg->http_connections = http ? http : 1;
	cfg->agent_connections = agent ? agent : 1;
	if (cfg->otlp_grpc)
		cfg->otlp_grpc_connections = g ? g : 1;
	if (cfg->agent_unauth > cfg->agent_connections)
		cfg->agent_unauth = cfg->agent_connections;
	if (cfg->otlp_grpc_per_peer > cfg->otlp_grpc_connections)
		cfg->otlp_grpc_per_peer = cfg->otlp_grpc_connections;
}

/* How old a batch may be: the shorter of the retention age and the
 * exactly-once lifetime, the latter less the clock skew a batch may have
 * (its record counts from its commit, which may precede its end). */
static uint64_t batch_max_age(const struct srv_config *cfg)
{
	uint64_t ttl = cfg->dedup_ttl > cfg->clock_skew
			       ? cfg->dedup_ttl - cfg->clock_skew
			       : cfg->dedup_ttl;
	if (cfg->retention && cfg->retention < ttl)
		return cfg->retention;
	return ttl;
}

/* The memory budget's caps (server/config.c planned them) into force,
 * and into the log. */
static void plan_log(const struct srv_config *cfg)
{
	char parts[400];
	int n = 0;
	for (int p = 0; p < FDO_MEM_PARTS; p++) {
		fdo_mem_cap_set((enum fdo_mem_part)p, cfg->mem_caps[p]);
		if (n >= 0 && (size_t)n < sizeof parts)
			n += snprintf(parts + n, sizeof parts - (size_t)n,
				      "%s%s %lluM", p ? ", " : "",
				      fdo_mem_name((enum fdo_mem_part)p),
				      (unsigned long long)(cfg->mem_caps[p] >>
							   20));
	}
	fdo_info("fdod: memory budget %lluM%s: %s",
		 (unsigned long long)(cfg->mem_budget >> 20),
		 cfg->memory_budget ? "" : " (the default)", parts);
	if (cfg->mem_warning[0])
		fdo_warn("fdod: %s", cfg->mem_warning);
}

int main(int argc, char **argv)
{
	struct srv_app app = {0};
	int rc = srv_config_load(&app.cfg, argc, argv);
	if (rc) {
		srv_config_fini(&app.cfg);
		return rc == 1 ? 0 : 2;
	}
	struct srv_config *cfg = &app.cfg;
	app.started = time(NULL);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	fit_caps(cfg, raise_nofile());
	plan_log(cfg);
	store_symbols_limit_inflated(cfg->debug_inflate_max);
	sym_inflate_budget(cfg->debug_inflate_max, cfg->debug_inflate_total);

	int exit_code = 1;
	struct srv_upstream_opts uo = {
		.urls = cfg->debuginfod_urls,
		.datadir = cfg->data,
		.timeout = (unsigned)cfg->debuginfod_timeout,
		.fetches = (unsigned)cfg->debuginfod_fetches,
		.retry = cfg->debuginfod_retry,
		.node_id = cfg->node_url,
		.fetched_cb = on_fetched,
		.fetched_arg = &app,
	};
	/* Before any thread: setenv is not thread safe. */
	if (upstream_on(cfg) && srv_upstream_env(&uo)) {
		fdo_error("fdod: out of memory");
		srv_config_fini(&app.cfg);
		return 1;
	}
	struct srv_listen *listen = NULL;
	struct srv_cluster *cluster = NULL;
	chsink *sink = NULL;
	struct srv_http *http = NULL;
	struct srv_grpc *grpc = NULL;
	char cache_dir[4096];
	snprintf(cache_dir, sizeof cache_dir, "%s/cache", cfg->data);
	snprintf(app.incoming, sizeof app.incoming, "%s/symbols/.incoming",
		 cfg->data);
	if (mkdir_p(cfg->data) || mkdir_p(cache_dir) || mkdir_p(app.incoming)) {
		fdo_error("fdod: cannot create %s: %s", cfg->data,
			  strerror(errno));
		goto out;
	}
	if (cfg->tokens) {
		char err[512];
		if (srv_auth_load(cfg->tokens, &app.auth, err, sizeof err)) {
			fdo_error("fdod: %s", err);
			goto out;
		}
		fdo_info("fdod: API tokens from %s", cfg->tokens);
	} else {
		for (size_t i = 0; i < cfg->listen.n; i++)
			if (!loopback_url(cfg->listen.items[i])) {
				fdo_error("fdod: --listen %s is not loopback: "
					  "give --tokens FILE to serve other "
					  "hosts",
					  cfg->listen.items[i]);
				goto out;
			}
		char grpc_url[300];
		snprintf(grpc_url, sizeof grpc_url, "tcp://%s",
			 cfg->otlp_grpc ? cfg->otlp_grpc : "127.0.0.1:0");
		if (!loopback_url(grpc_url)) {
			fdo_error("fdod: --otlp-grpc %s is not loopback: give "
				  "--tokens FILE to serve other hosts",
				  cfg->otlp_grpc);
			goto out;
		}
		if (!loopback_url(cfg->http)) {
			fdo_error("fdod: --http %s is not loopback: give "
				  "--tokens FILE to serve other hosts",
				  cfg->http);
			goto out;
		}
		fdo_info("fdod: no --tokens: serving loopback only, every "
			 "local client may do everything");
	}
	struct store_opts so = {.dir = cfg->data,
				.max_size = cfg->max_store_size};
	if ((rc = store_open(&so, &app.st))) {
		fdo_error("fdod: cannot open the store in %s: %s", cfg->data,
			  fdo_strerror(rc));
		goto out;
	}
	uint64_t indexed;
	if ((rc = store_symbols_index_file_ids(app.st, cfg->data, &indexed))) {
		fdo_error("fdod: indexing the symbol store by file id: %s",
			  fdo_strerror(rc));
		goto out;
	}
	if (indexed)
		fdo_info(
			"fdod: indexed %llu executables of the symbol store by "
			"their OpenTelemetry file id",
			(unsigned long long)indexed);
	if ((rc = sym_cache_create(cfg->dwarf_cache_size, cache_dir,
				   &app.cache))) {
		fdo_error("fdod: DWARF cache: %s", fdo_strerror(rc));
		goto out;
	}
	if ((rc = pcache_create((unsigned)cfg->profile_cache,
				(size_t)cfg->profile_cache_size, 60,
				&app.pcache))) {
		fdo_error("fdod: profile cache: %s", fdo_strerror(rc));
		goto out;
	}
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned workers = cfg->workers ? (unsigned)cfg->workers
					: (unsigned)(cores > 0 ? cores : 1);
	if ((rc = agg_symwork_create(app.st, app.cache, cfg->data, workers,
				     &app.symwork))) {
		fdo_error("fdod: symbolizer pool: %s", fdo_strerror(rc));
		goto out;
	}
	if (cfg->cluster_nodes) {
		if ((rc = srv_cluster_create(cfg->cluster_nodes, cfg->node_url,
					     &cluster))) {
			fdo_error("fdod: --cluster-nodes: %s",
				  fdo_strerror(rc));
			goto out;
		}
		agg_symwork_on_owner(app.symwork, srv_cluster_symbolize_here,
				     cluster);
		fdo_info("fdod: node %s of %zu: symbolizes the build-ids it "
			 "owns, and those whose owner does not answer",
			 cfg->node_url, srv_cluster_size(cluster));
	}
	if (upstream_on(cfg)) {
		uo.st = app.st;
		if ((rc = srv_upstream_create(&uo, &app.upstream))) {
			fdo_error("fdod: upstream debuginfod: %s",
				  fdo_strerror(rc));
			goto out;
		}
		agg_symwork_on_missing(app.symwork, srv_upstream_want,
				       app.upstream);
		fdo_info("fdod: symbols missing for sampled build-ids are "
			 "fetched from %s (%u at once, timeout %llus, asked "
			 "again after %llus)",
			 cfg->debuginfod_urls,
			 (unsigned)cfg->debuginfod_fetches,
			 (unsigned long long)cfg->debuginfod_timeout,
			 (unsigned long long)cfg->debuginfod_retry);
	}
	char why[512];
	if (cfg->sampling_interval < 1) {
		fdo_error("fdod: --sampling-interval must be at least 1s");
		goto out;
	}
	if ((rc = srv_sampling_create(cfg->sampling_policy,
				      (unsigned)cfg->sampling_interval, app.st,
				      &app.sampling, why, sizeof why))) {
		fdo_error("fdod: sampling policy: %s",
			  why[0] ? why : fdo_strerror(rc));
		goto out;
	}
	struct agg_ingest_opts io = {
		.bucket_seconds = (uint32_t)cfg->bucket,
		.dedup_ttl = cfg->dedup_ttl,
		.pending_cb = on_pending,
		.pending_arg = &app,
		.retention = cfg->retention,
		.store_budget = cfg->store_budget,
		.housekeeping = cfg->housekeeping,
		.max_new_stacks = cfg->new_stacks,
		.max_pending = cfg->pending_max,
		.max_future = cfg->clock_skew,
		.max_age = batch_max_age(cfg),
		.rate_agent = cfg->rate_agent,
		.rate_binary = cfg->rate_binary,
	};
	if (cfg->store) {
		char why2[600];
		if ((rc = chsink_open(cfg->store, app.st, cfg->data, &sink,
				      why2, sizeof why2))) {
			fdo_error("fdod: --store %s: %s", cfg->store, why2);
			goto out;
		}
		chsink_set_retention(sink, cfg->retention, cfg->housekeeping);
		chsink_set_global(sink);
		fdo_info("fdod: every merge's counts also go to %s",
			 cfg->store);
	}
	if ((rc = agg_ingest_create(app.st, &io, &app.ingest))) {
		fdo_error("fdod: ingest: %s", fdo_strerror(rc));
		goto out;
	}
	struct srv_listen_opts lo = {
		.urls = cfg->listen.items,
		.nurls = cfg->listen.n,
		.tls_cert = cfg->tls_cert,
		.tls_key = cfg->tls_key,
		.max_msg = wire_limits_default.max_message_bytes,
		.contexts = (unsigned)cfg->ingest_contexts,
		.max_connections = (unsigned)cfg->agent_connections,
		.max_per_peer = (unsigned)cfg->agent_per_peer,
		.max_unauth = (unsigned)cfg->agent_unauth,
		.max_unauth_per_peer = (unsigned)cfg->agent_unauth_per_peer,
		.auth_timeout = (unsigned)cfg->agent_auth_timeout,
		.idle_timeout = (unsigned)cfg->agent_idle_timeout,
	};
	if (srv_listen_start(&lo, on_batch, &app, &listen))
		goto out;
	atomic_store(&app.listen, listen);
	if (cfg->otlp_grpc) {
		/* The HTTP bounds: messages held at once fit in
		 * --http-body-memory, one as large as a POST body. */
		uint64_t calls = cfg->http_body_memory / SRV_PPROF_MAX_BODY;
		struct srv_grpc_opts go = {
			.addr = cfg->otlp_grpc,
			.max_connections = (unsigned)cfg->otlp_grpc_connections,
			.max_per_peer = (unsigned)cfg->otlp_grpc_per_peer,
			.max_calls = calls > 4096 ? 4096 : (unsigned)calls,
			.recv_timeout = (unsigned)cfg->http_body_timeout,
			.idle_timeout = (unsigned)cfg->http_idle_timeout,
			.handshake_timeout = (unsigned)cfg->http_header_timeout,
			.max_message = SRV_PPROF_MAX_BODY,
			.max_inflated = SRV_PPROF_MAX_INFLATED,
		};
		if (srv_grpc_start(&app, &go, &grpc))
			goto out;
		atomic_store(&app.grpc, grpc);
	}
	struct srv_http_limits hl = {
		.max_connections = (unsigned)cfg->http_connections,
		.max_per_peer = (unsigned)cfg->http_per_peer,
		.header_timeout = (unsigned)cfg->http_header_timeout,
		.idle_timeout = (unsigned)cfg->http_idle_timeout,
		.body_timeout = (unsigned)cfg->http_body_timeout,
		.body_memory = cfg->http_body_memory,
	};
	struct srv_http_opts ho = {
		.url = cfg->http,
		.cert = cfg->tls_cert,
		.key = cfg->tls_key,
		.routes = srv_routes,
		.app = &app,
		.tmpdir = app.incoming,
		.threads = (unsigned)cfg->http_threads,
		.auth = app.auth ? http_auth : NULL,
		.limits = &hl,
	};
	if (srv_http_open(&ho, &http))
		goto out;
	atomic_store(&app.http, http);
	srv_http_limit_streams(http, (unsigned)cfg->max_uploads);
	fdo_info("fdod: serving HTTP on %s, data in %s, %u symbolizer "
		 "threads",
		 cfg->http, cfg->data, workers);

	int sig;
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
		if (srv_sampling_reload(app.sampling, why, sizeof why))
			fdo_error("fdod: SIGHUP: sampling policy kept as it "
				  "was: %s",
				  why);
		else
			fdo_info("fdod: SIGHUP: sampling policy %s reloaded",
				 cfg->sampling_policy ? cfg->sampling_policy
						      : "(none)");
	}
	fdo_info("fdod: %s received, stopping", strsignal(sig));
	exit_code = 0;
out:
	srv_upstream_cancel(app.upstream);
	srv_http_stop(http);
	atomic_store(&app.grpc, NULL);
	srv_grpc_stop(grpc);
	srv_listen_stop(listen);
	agg_ingest_destroy(app.ingest);
	chsink_close(sink);
	if (app.upstream)
		agg_symwork_on_missing(app.symwork, NULL, NULL);
	srv_upstream_destroy(app.upstream);
	agg_symwork_destroy(app.symwork);
	srv_cluster_destroy(cluster);
	if (app.cache)
		sym_cache_destroy(app.cache);
	pcache_destroy(app.pcache);
	srv_sampling_destroy(app.sampling);
	store_close(app.st);
	srv_auth_destroy(app.auth);
	if (!exit_code)
		fdo_info("fdod: stopped");
	srv_config_fini(&app.cfg);
	return exit_code;
}
