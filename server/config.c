/* server/config.c — fdod's option table and its loading order. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/mem.h"
#include "schemas/schemas.h"
#include "server/cluster.h"
#include "server/config.h"
#include "storage/clickhouse.h"

#define F(field) offsetof(struct srv_config, field)

const struct fdo_opt srv_config_options[] = {
	{"config", FDO_OPT_STRING, F(config), NULL, "FILE",
	 "read options from FILE (name = value per line); flags override it"},
	{"data", FDO_OPT_STRING, F(data), "./var/fdod", "DIR",
	 "directory of the LMDB store and the symbol files"},
	{"store", FDO_OPT_STRING, F(store), NULL, "URL",
	 "clickhouse://HOST:PORT/DB[?cluster=NAME] (PORT: ClickHouse's HTTP "
	 "port): every merge's counts and new stacks are also inserted into "
	 "ClickHouse, through an outbox under --data, and folded and pprof "
	 "pulls are built from what ClickHouse holds of every node "
	 "(docs/clickhouse.md); unset: the LMDB store only"},
	{"listen", FDO_OPT_LIST, F(listen), "tcp://127.0.0.1:7470", "URL",
	 "nng address for agents (tcp://, ipc://, tls+tcp://)"},
	{"drain-to", FDO_OPT_STRING, F(drain_to), NULL, "URL",
	 "drain this node: every Ack to an agent names URL (another node's "
	 "--listen) as its node from now on; batches are still stored here "
	 "(unset: off)"},
	{"http", FDO_OPT_STRING, F(http), "http://127.0.0.1:7471", "URL",
	 "HTTP API base URL (https:// uses --tls-cert and --tls-key)"},
	{"workers", FDO_OPT_UINT, F(workers), "0", "N",
	 "symbolizer threads (0 = one per core)"},
	{"max-store-size", FDO_OPT_SIZE, F(max_store_size), "64G", "BYTES",
	 "largest size the LMDB store may grow to"},
	{"memory-budget", FDO_OPT_SIZE, F(memory_budget), "0", "BYTES",
	 "memory for ingest queues and backlog, merges, LMDB dirty pages, "
	 "the DWARF cache, inflated debug sections, HTTP bodies, kept "
	 "profiles and profiles being made; the caps not given are shares "
	 "of it; when the ingest share is full, agents get BUSY with a "
	 "retry-after (0 = 1G, or a quarter of the host's memory when "
	 "less)"},
	{"dwarf-cache-size", FDO_OPT_SIZE, F(dwarf_cache_size), "0", "BYTES",
	 "memory budget of the in-memory DWARF index cache (0 = 1/8 of "
	 "--memory-budget)"},
	{"bucket", FDO_OPT_DURATION, F(bucket), "1h", "DURATION",
	 "width of the time buckets counts are kept in"},
	{"dedup-ttl", FDO_OPT_DURATION, F(dedup_ttl), "7d", "DURATION",
	 "how long a batch's (agent, seq) is remembered for exactly-once"},
	{"ingest-contexts", FDO_OPT_UINT, F(ingest_contexts), "64", "N",
	 "agent batches received and committed at once"},
	{"http-threads", FDO_OPT_UINT, F(http_threads), "4", "N",
	 "HTTP worker threads"},
	{"max-uploads", FDO_OPT_UINT, F(max_uploads), "2", "N",
	 "symbol uploads received at once (fewer than --http-threads)"},
	{"retention", FDO_OPT_DURATION, F(retention), "30d", "DURATION",
	 "counts of older buckets are deleted (0 = keep forever)"},
	{"store-budget", FDO_OPT_SIZE, F(store_budget), "0", "BYTES",
	 "above this much live data the oldest buckets go first (0 = none)"},
	{"housekeeping", FDO_OPT_DURATION, F(housekeeping), "10m", "DURATION",
	 "how often retention and the budget are applied"},
	{"rate-agent", FDO_OPT_DOUBLE, F(rate_agent), "0", "N",
	 "batches per second one agent may send (0 = no limit)"},
	{"rate-binary", FDO_OPT_DOUBLE, F(rate_binary), "0", "N",
	 "samples per second one binary may receive (0 = no limit)"},
	{"min-samples", FDO_OPT_UINT, F(min_samples), "1000", "N",
	 "a profile is ready with at least N samples (per request: min_samples=)"},
	{"min-hosts", FDO_OPT_UINT, F(min_hosts), "1", "N",
	 "... and samples from at least N distinct hosts (min_hosts=)"},
	{"min-span", FDO_OPT_DURATION, F(min_span), "0", "DURATION",
	 "... collected over at least this span (min_span=)"},
	{"min-fresh-share", FDO_OPT_DOUBLE, F(min_fresh_share), "0", "SHARE",
	 "... and at least this share of its samples from functions unchanged "
	 "in the newest release (min_fresh_share=; 0 = no rule)"},
	{"profile-cache", FDO_OPT_UINT, F(profile_cache), "16", "N",
	 "built profiles kept and shared by identical pulls of the same "
	 "store state (0 = every pull builds its own)"},
	{"profile-cache-size", FDO_OPT_SIZE, F(profile_cache_size), "0",
	 "BYTES",
	 "memory the kept profiles may take (0 = 1/16 of --memory-budget)"},
	{"otlp-attributes", FDO_OPT_STRING, F(otlp_attributes),
	 "service.name=binary,process.executable.name=binary,host.name=host",
	 "MAP",
	 "which OTLP resource and sample attributes name a profile's binary, "
	 "host and labels: ATTR=binary|host|label:KEY,... (the first binary "
	 "and host found win; a sample's attributes over its resource's)"},
	{"sampling-policy", FDO_OPT_STRING, F(sampling_policy), NULL, "FILE",
	 "sampling policy: desired samples per binary, pauses, triggers; "
	 "agents get the advice in their Acks; reloaded on SIGHUP "
	 "(docs/sampling.md); unset: no advice"},
	{"sampling-interval", FDO_OPT_DURATION, F(sampling_interval), "1m",
	 "DURATION",
	 "how often the sampling advice is recomputed from what the fleet "
	 "sent, and how long an advice holds (at least 1s)"},
	{"otlp-grpc", FDO_OPT_STRING, F(otlp_grpc), NULL, "ADDR:PORT",
	 "serve OTLP/gRPC profiles (ProfilesService/Export) on this "
	 "address, e.g. 127.0.0.1:4317 or [::]:4317 (plaintext; unset: off)"},
	{"otlp-grpc-connections", FDO_OPT_UINT, F(otlp_grpc_connections), "256",
	 "N", "OTLP/gRPC connections at once; more are closed as they arrive"},
	{"otlp-grpc-connections-per-peer", FDO_OPT_UINT, F(otlp_grpc_per_peer),
	 "32", "N", "OTLP/gRPC connections from one address (0 = no cap)"},
	{"tokens", FDO_OPT_STRING, F(tokens), NULL, "FILE",
	 "API tokens with scopes (ingest, upload, read, admin); without it "
	 "fdod serves loopback only"},
	{"backup-dir", FDO_OPT_LIST, F(backup_dir), NULL, "DIR",
	 "a directory under which POST /v1/backup (fdoctl backup) may write "
	 "(never inside --data); unset: online backups are refused"},
	{"tls-cert", FDO_OPT_STRING, F(tls_cert), NULL, "FILE",
	 "PEM certificate for tls+tcp:// listeners and https://"},
	{"tls-key", FDO_OPT_STRING, F(tls_key), NULL, "FILE",
	 "PEM private key for tls+tcp:// listeners and https://"},
	{"log-level", FDO_OPT_STRING, F(log_level), "info", "LEVEL",
	 "debug, info, warn or error"},
	{"debuginfod-urls", FDO_OPT_STRING, F(debuginfod_urls), NULL, "URLS",
	 "debuginfod servers (space separated) asked for the symbols of "
	 "sampled build-ids that have none; unset: off ($DEBUGINFOD_URLS is "
	 "ignored)"},
	{"debuginfod-timeout", FDO_OPT_DURATION, F(debuginfod_timeout), "10s",
	 "DURATION",
	 "give up a fetch that gets no answer, or stalls (< 100 KiB/s), "
	 "this long"},
	{"debuginfod-fetches", FDO_OPT_UINT, F(debuginfod_fetches), "2", "N",
	 "upstream fetches at once"},
	{"debuginfod-retry", FDO_OPT_DURATION, F(debuginfod_retry), "10m",
	 "DURATION",
	 "ask again this long after a build-id was not found upstream (or "
	 "its fetch failed)"},
	{"debuginfod-forward-hops", FDO_OPT_UINT, F(debuginfod_forward_hops),
	 "0", "N",
	 "a debuginfod request for a file fdod lacks is fetched from "
	 "--debuginfod-urls when its X-Forwarded-For lists fewer than N hops "
	 "and its X-Fdod-Via does not list this node (0 = never: 404)"},
	{"node-url", FDO_OPT_STRING, F(node_url), NULL, "URL",
	 "this node's HTTP URL as other fdod nodes reach it: its name in "
	 "X-Fdod-Via (unset: a random name per start)"},
	{"cluster-nodes", FDO_OPT_STRING, F(cluster_nodes), NULL, "URLS",
	 "every fdod node of the cluster, --node-url included (comma "
	 "separated URLs): a build-id is symbolized by its owner node "
	 "(rendezvous hash), or here when the owner does not answer; unset: "
	 "every build-id here"},
	{"http-connections", FDO_OPT_UINT, F(http_connections), "256", "N",
	 "HTTP connections at once; more are closed as they arrive"},
	{"http-connections-per-peer", FDO_OPT_UINT, F(http_per_peer), "32", "N",
	 "HTTP connections from one client address (0 = no cap)"},
	{"http-header-timeout", FDO_OPT_DURATION, F(http_header_timeout), "10s",
	 "DURATION", "a request line and its headers must arrive within this"},
	{"http-idle-timeout", FDO_OPT_DURATION, F(http_idle_timeout), "30s",
	 "DURATION", "an HTTP connection sending nothing this long is closed"},
	{"http-body-timeout", FDO_OPT_DURATION, F(http_body_timeout), "10s",
	 "DURATION",
	 "a request body (other than an upload) must arrive within this"},
	{"http-body-memory", FDO_OPT_SIZE, F(http_body_memory), "0", "BYTES",
	 "request bodies (other than uploads) held in memory at once, in "
	 "all; a request whose body does not fit gets 503 (at least 16M; "
	 "0 = 1/16 of --memory-budget, at least 16M)"},
	{"agent-connections", FDO_OPT_UINT, F(agent_connections), "256", "N",
	 "agent connections at once; more are closed as they arrive"},
	{"agent-connections-per-peer", FDO_OPT_UINT, F(agent_per_peer), "32",
	 "N", "agent connections from one address (0 = no cap)"},
	{"agent-unauthenticated", FDO_OPT_UINT, F(agent_unauth), "4", "N",
	 "agent connections that have not yet sent an authorized batch; "
	 "memory before authentication is at most N x 16 MiB"},
	{"agent-unauthenticated-per-peer", FDO_OPT_UINT,
	 F(agent_unauth_per_peer), "2", "N",
	 "... from one address (0 = no cap)"},
	{"agent-auth-timeout", FDO_OPT_DURATION, F(agent_auth_timeout), "30s",
	 "DURATION",
	 "a new agent connection must deliver an authorized batch within this"},
	{"agent-idle-timeout", FDO_OPT_DURATION, F(agent_idle_timeout), "5m",
	 "DURATION", "an agent connection with no batch this long is closed"},
	{"debug-inflate-max", FDO_OPT_SIZE, F(debug_inflate_max), "512M",
	 "BYTES",
	 "a symbol file whose compressed sections claim more once inflated "
	 "is refused (0 = no limit)"},
	{"debug-inflate-total", FDO_OPT_SIZE, F(debug_inflate_total), "0",
	 "BYTES",
	 "inflated debug sections all symbolizer threads may hold at once "
	 "(0 = 1/16 of --memory-budget)"},
	{"max-clock-skew", FDO_OPT_DURATION, F(clock_skew), "1h", "DURATION",
	 "batches ending further in the future are refused (older than "
	 "--retention or --dedup-ttl, whichever is shorter, too)"},
	{"max-new-stacks", FDO_OPT_UINT, F(new_stacks), "10000000", "N",
	 "stacks one binary may store for the first time per hour; over it "
	 "its batches get BUSY until the next hour (0 = no limit)"},
	{"max-pending", FDO_OPT_UINT, F(pending_max), "4000000", "N",
	 "addresses of one build-id waiting for symbols; over it its new "
	 "addresses are not queued for symbolization (0 = no limit)"},
	{0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fdod [OPTIONS]\n\n"
		"fdod stores fleet samples, symbolizes them against uploaded "
		"symbols and serves\nFDO profiles. Every option may also be set "
		"in the config file.\n\noptions:\n");
	fdo_opts_print_help(srv_config_options, out);
	fprintf(out, "  %-28s %s\n", "--print-config",
		"print the effective configuration in config-file form");
	fprintf(out, "  %-28s %s\n", "--help", "print this help");
}

/* --debuginfod-*: space-separated http://, https:// or file:// URLs (as
 * libdebuginfod splits them), sane limits. */
static int check_upstream(const struct srv_config *cfg, char *err,
			  size_t errlen)
{
	static const char *const schemes[] = {"http://", "https://", "file://"};
	const char *p = cfg->debuginfod_urls;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n) {
			int ok = 1;
			for (size_t i = 0; i < n; i++)
				ok &= (unsigned char)p[i] > ' ';
			int scheme = 0;
			for (size_t i = 0; i < 3; i++)
				scheme |= n > strlen(schemes[i]) &&
					  !strncmp(p, schemes[i],
						   strlen(schemes[i]));
			if (!ok || !scheme) {
				snprintf(err, errlen,
					 "--debuginfod-urls: '%.*s' is not an "
					 "http://, https:// or file:// URL",
					 (int)n, p);
				return FDO_EINVAL;
			}
		}
		p += n;
		p += strspn(p, " ");
	}
	if (!cfg->debuginfod_timeout || cfg->debuginfod_timeout > 3600 ||
	    !cfg->debuginfod_fetches || cfg->debuginfod_fetches > 64 ||
	    !cfg->debuginfod_retry) {
		snprintf(err, errlen,
			 "--debuginfod-timeout must be 1s..1h, "
			 "--debuginfod-fetches 1..64, --debuginfod-retry > 0");
		return FDO_EINVAL;
	}
	/* A forward holds an HTTP worker while it waits for upstream. */
	if (cfg->debuginfod_forward_hops &&
	    (cfg->debuginfod_forward_hops > 64 ||
	     cfg->debuginfod_fetches >= cfg->http_threads)) {
		snprintf(err, errlen,
			 "--debuginfod-forward-hops must be 0..64, and with "
			 "forwards --debuginfod-fetches (%llu) below "
			 "--http-threads (%llu)",
			 (unsigned long long)cfg->debuginfod_fetches,
			 (unsigned long long)cfg->http_threads);
		return FDO_EINVAL;
	}
	return FDO_OK;
}

/* --node-url: one item of X-Fdod-Via's list and of --cluster-nodes. */
static int check_node_url(const char *u, char *err, size_t errlen)
{
	if (srv_cluster_url_ok(u, strlen(u)))
		return FDO_OK;
	snprintf(err, errlen,
		 "--node-url '%.200s': expected an http:// or https:// URL (no "
		 "spaces or commas, at most 200 characters)",
		 u);
	return FDO_EINVAL;
}

/* --otlp-grpc: HOST:PORT or [V6]:PORT, the port 0..65535 (what gRPC's
 * own parser takes is checked when it binds). 1 when it looks right. */
static int check_grpc_addr(const char *a)
{
	const char *colon = strrchr(a, ':');
	if (!colon || colon == a || !colon[1])
		return 0;
	if (a[0] == '[' && colon[-1] != ']')
		return 0;
	for (size_t i = 0; i < (size_t)(colon - a); i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == '/')
			return 0;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	return !*end && port <= 65535 && colon[1] >= '0' && colon[1] <= '9';
}

/*
 * --memory-budget: every part's cap (cfg->mem_caps), the options 0 left
 * to it filled in. Caps given above a budget given are an error; above
 * the default budget, a warning (cfg->mem_warning) and fdod may use up to
 * their sum.
 */
static int plan_memory(struct srv_config *cfg, char *err, size_t errlen)
{
	uint64_t budget = cfg->memory_budget;
	if (!budget)
		budget = fdo_mem_default_budget(fdo_mem_host_total());
	uint64_t given[FDO_MEM_PARTS] = {0}, mins[FDO_MEM_PARTS] = {0};
	given[FDO_MEM_DWARF] = cfg->dwarf_cache_size;
	given[FDO_MEM_INFLATE] = cfg->debug_inflate_total;
	given[FDO_MEM_HTTP] = cfg->http_body_memory;
	given[FDO_MEM_PROFILES] = cfg->profile_cache_size;
	mins[FDO_MEM_HTTP] = SRV_HTTP_BODY_MEMORY_MIN;
	char why[400];
	int over = fdo_mem_plan(budget, given, mins, cfg->mem_caps, why,
				sizeof why);
	if (over && cfg->memory_budget) {
		snprintf(err, errlen,
			 "%s; raise --memory-budget or lower the "
			 "caps given",
			 why);
		return FDO_EINVAL;
	}
	if (over)
		snprintf(cfg->mem_warning, sizeof cfg->mem_warning,
			 "%s; fdod may use up to their sum (set "
			 "--memory-budget, or lower the caps given)",
			 why);
	cfg->mem_budget = budget;
	cfg->dwarf_cache_size = cfg->mem_caps[FDO_MEM_DWARF];
	cfg->debug_inflate_total = cfg->mem_caps[FDO_MEM_INFLATE];
	cfg->http_body_memory = cfg->mem_caps[FDO_MEM_HTTP];
	cfg->profile_cache_size = cfg->mem_caps[FDO_MEM_PROFILES];
	return FDO_OK;
}

int srv_config_load(struct srv_config *cfg, int argc, char **argv)
{
	char err[512];
	memset(cfg, 0, sizeof *cfg);
	if (fdo_opts_wants_help(argc, argv)) {
		usage(stdout);
		return 1;
	}
	/* --print-config: the effective configuration in config-file form
	 * (with no other flags: every option at its default). */
	int print = 0;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--print-config")) {
			print = 1;
			for (int k = i; k + 1 < argc; k++)
				argv[k] = argv[k + 1];
			argc--;
			break;
		}
	if (fdo_opts_defaults(srv_config_options, cfg, err, sizeof err))
		goto fail;
	const char *file = fdo_opts_find_arg(argc, argv, "config");
	if (file &&
	    fdo_opts_parse_file(srv_config_options, cfg, file, err, sizeof err))
		goto fail;
	int optind;
	if (fdo_opts_parse_args(srv_config_options, cfg, argc, argv, &optind,
				err, sizeof err))
		goto fail;
	if (optind < argc) {
		snprintf(err, sizeof err, "unexpected argument '%s'",
			 argv[optind]);
		goto fail;
	}
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(cfg->log_level, levels[i])) {
			fdo_log_set_level((enum fdo_log_level)i);
			goto checks;
		}
	snprintf(err, sizeof err, "bad --log-level '%s'", cfg->log_level);
	goto fail;
checks:
	if (cfg->rate_agent < 0 || cfg->rate_binary < 0 || !cfg->housekeeping) {
		snprintf(err, sizeof err,
			 "--rate-agent and --rate-binary must be >= 0, "
			 "--housekeeping > 0");
		goto fail;
	}
	if (!(cfg->min_fresh_share >= 0 && cfg->min_fresh_share <= 1)) {
		snprintf(err, sizeof err,
			 "--min-fresh-share must be a share from 0 to 1 "
			 "(like 0.8)");
		goto fail;
	}
	if (cfg->bucket < 60 || cfg->bucket > 86400 * 7) {
		snprintf(err, sizeof err, "--bucket must be 1m..7d");
		goto fail;
	}
	if (!cfg->listen.n) {
		snprintf(err, sizeof err, "at least one --listen is needed");
		goto fail;
	}
	if (cfg->drain_to && (!strstr(cfg->drain_to, "://") ||
			      strlen(cfg->drain_to) >= SRV_DRAIN_TO_MAX)) {
		snprintf(err, sizeof err,
			 "--drain-to must be an nng URL (tcp://HOST:PORT...) "
			 "shorter than %d bytes",
			 SRV_DRAIN_TO_MAX);
		goto fail;
	}
	if (!cfg->ingest_contexts || cfg->ingest_contexts > 4096 ||
	    !cfg->http_threads || cfg->http_threads > 256) {
		snprintf(
			err, sizeof err,
			"--ingest-contexts must be 1..4096, --http-threads 1..256");
		goto fail;
	}
	if (!cfg->max_uploads || cfg->max_uploads >= cfg->http_threads) {
		snprintf(err, sizeof err,
			 "--max-uploads must be 1..%llu (fewer than "
			 "--http-threads, so reads are served during uploads)",
			 (unsigned long long)(cfg->http_threads - 1));
		goto fail;
	}
	if (cfg->profile_cache > 4096) {
		snprintf(err, sizeof err, "--profile-cache must be 0..4096");
		goto fail;
	}
	if (!cfg->http_connections || cfg->http_connections > 65536 ||
	    !cfg->agent_connections || cfg->agent_connections > 65536 ||
	    !cfg->agent_unauth || cfg->agent_unauth > cfg->agent_connections) {
		snprintf(err, sizeof err,
			 "--http-connections and --agent-connections must be "
			 "1..65536, --agent-unauthenticated 1..--agent-"
			 "connections");
		goto fail;
	}
	if (!cfg->http_header_timeout || !cfg->http_idle_timeout ||
	    !cfg->http_body_timeout || !cfg->agent_auth_timeout ||
	    !cfg->agent_idle_timeout || cfg->http_header_timeout > 86400 ||
	    cfg->http_idle_timeout > 86400 || cfg->http_body_timeout > 86400 ||
	    cfg->agent_auth_timeout > 86400 ||
	    cfg->agent_idle_timeout > 86400 * 7) {
		snprintf(err, sizeof err,
			 "the --http-*-timeout and --agent-*-timeout options "
			 "must be 1s..1d (--agent-idle-timeout ..7d)");
		goto fail;
	}
	if (cfg->http_body_memory &&
	    cfg->http_body_memory < SRV_HTTP_BODY_MEMORY_MIN) {
		snprintf(err, sizeof err,
			 "--http-body-memory must be at least %uM (a pprof "
			 "profile's body, the largest held in memory)",
			 SRV_HTTP_BODY_MEMORY_MIN >> 20);
		goto fail;
	}
	struct wire_otlp_attrs attrs;
	char why[256];
	struct ch_url chu;
	int bad = wire_otlp_attrs_parse(cfg->otlp_attributes, &attrs, why,
					sizeof why);
	wire_otlp_attrs_fini(&attrs);
	if (bad) {
		snprintf(err, sizeof err, "--otlp-attributes: %s", why);
		goto fail;
	}
	if (!cfg->otlp_grpc_connections || cfg->otlp_grpc_connections > 65536) {
		snprintf(err, sizeof err,
			 "--otlp-grpc-connections must be 1..65536");
		goto fail;
	}
	if (cfg->otlp_grpc && !check_grpc_addr(cfg->otlp_grpc)) {
		snprintf(err, sizeof err,
			 "--otlp-grpc '%.200s': expected HOST:PORT or "
			 "[IPV6]:PORT",
			 cfg->otlp_grpc);
		goto fail;
	}
	if (cfg->debuginfod_urls && cfg->debuginfod_urls[0] &&
	    check_upstream(cfg, err, sizeof err))
		goto fail;
	if (cfg->node_url && check_node_url(cfg->node_url, err, sizeof err))
		goto fail;
	if (cfg->store && ch_url_parse(cfg->store, &chu, why, sizeof why)) {
		snprintf(err, sizeof err, "--store: %s", why);
		goto fail;
	}
	if (cfg->cluster_nodes &&
	    srv_cluster_parse(cfg->cluster_nodes, cfg->node_url, err,
			      sizeof err))
		goto fail;
	if (!print && plan_memory(cfg, err, sizeof err))
		goto fail;
	if (print) {
		printf("# fdod configuration (fdod --print-config).\n"
		       "# One `name = value` per line; flags override the "
		       "file.\n\n");
		fdo_opts_print_config(srv_config_options, cfg, stdout);
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "fdod: %s\n", err);
	fprintf(stderr, "Try 'fdod --help'.\n");
	return 2;
}

void srv_config_fini(struct srv_config *cfg)
{
	fdo_opts_fini(srv_config_options, cfg);
}
