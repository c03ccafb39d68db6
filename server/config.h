/*
 * server/config.h — fdod's configuration: one option table (server/config.c)
 * yields the flags, the config-file parser and --help.
 */
#ifndef FDO_SERVER_CONFIG_H
#define FDO_SERVER_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/mem.h"
#include "common/opts.h"

struct srv_config {
	char *config; /* the config file read, if any */
	char *data;   /* data directory: store/, symbols/, cache/ */
	struct fdo_strlist listen; /* nng URLs for agents */
	char *http;		   /* HTTP base URL */
	uint64_t workers;	   /* symbolizer threads; 0 = one per core */
	uint64_t max_store_size;   /* LMDB map limit, bytes */
	uint64_t memory_budget;	   /* --memory-budget as given; 0: default */
	/* Planned from it by srv_config_load: the budget in force, each
	 * part's cap, and a warning to log when caps given exceed the
	 * default budget (empty: none). */
	uint64_t mem_budget;
	uint64_t mem_caps[FDO_MEM_PARTS];
	char mem_warning[512];
	uint64_t dwarf_cache_size; /* memory budget of open DWARF indexes */
	uint64_t bucket;	   /* time bucket width, seconds */
	uint64_t dedup_ttl;	   /* seconds a (agent, seq) is remembered */
	uint64_t ingest_contexts;  /* batches received at once */
	uint64_t http_threads;	   /* HTTP worker threads */
	uint64_t max_uploads;	   /* uploads received at once */
	uint64_t retention;	   /* seconds of buckets kept; 0 forever */
	uint64_t store_budget;	   /* live bytes before the oldest go; 0 none */
	uint64_t housekeeping;	   /* seconds between retention passes */
	double rate_agent;	   /* batches/s per agent; 0 unlimited */
	double rate_binary;	   /* samples/s per binary; 0 unlimited */
	uint64_t min_samples;	   /* profile readiness: total samples */
	uint64_t min_hosts;	   /* profile readiness: distinct hosts */
	uint64_t min_span;	   /* profile readiness: seconds collected */
	double min_fresh_share;	   /* profile readiness: staleness score */
	uint64_t profile_cache;	   /* built profiles kept; 0: none shared */
	uint64_t profile_cache_size;   /* bytes of their bodies */
	char *tokens;		       /* API token file; none: loopback only */
	struct fdo_strlist backup_dir; /* where POST /v1/backup may write */
	char *tls_cert, *tls_key;
	char *log_level;
	char *debuginfod_urls; /* upstream debuginfod servers; none: off */
	uint64_t debuginfod_timeout; /* seconds to start answering / stall */
	uint64_t debuginfod_fetches; /* fetches at once */
	uint64_t debuginfod_retry;   /* seconds before asking again */
	uint64_t debuginfod_forward_hops; /* forward misses; 0: never */
	char *node_url; /* this node, as others reach it; NULL: random id */
	char *cluster_nodes; /* every node's URL, comma separated; NULL: one */
	char *store; /* clickhouse://...: counts copied there too; NULL: none */
	/* Bounds on what clients may hold (issue 21). */
	uint64_t http_connections, http_per_peer;
	uint64_t http_header_timeout, http_idle_timeout, http_body_timeout;
	uint64_t http_body_memory; /* in-memory request bodies, bytes */
	uint64_t agent_connections, agent_per_peer;
	uint64_t agent_unauth, agent_unauth_per_peer;
	uint64_t agent_auth_timeout, agent_idle_timeout;
	uint64_t debug_inflate_max;   /* per file, bytes */
	uint64_t debug_inflate_total; /* all symbolizer threads, bytes */
	uint64_t clock_skew;	      /* seconds a batch may be in the future */
	uint64_t new_stacks;	      /* new stacks per binary per hour */
	uint64_t pending_max;	      /* pending addresses per build-id */
	char *otlp_attributes;	      /* OTLP attribute -> binary/host/label */
	char *sampling_policy;	      /* the sampling policy file, or NULL */
	uint64_t sampling_interval;   /* seconds: control interval */
	char *otlp_grpc; /* OTLP/gRPC listener ADDR:PORT; NULL off */
	uint64_t otlp_grpc_connections, otlp_grpc_per_peer;
	char *drain_to; /* Ack.redirect for every agent batch; NULL off */
};

/* --drain-to's longest URL (the agents' AGENT_NODE_URL_MAX). */
#define SRV_DRAIN_TO_MAX 256

/* The least --http-body-memory: one body of the largest in-memory route
 * (POST /v1/pprof, server/app.h SRV_PPROF_MAX_BODY) must fit. */
#define SRV_HTTP_BODY_MEMORY_MIN (16u << 20)

extern const struct fdo_opt srv_config_options[];

/*
 * srv_config_load fills cfg from defaults, then --config FILE, then argv.
 * Returns 0 when the daemon should run, 1 when it printed --help and
 * should exit 0, 2 on a usage error (message already printed).
 */
int srv_config_load(struct srv_config *cfg, int argc, char **argv);
void srv_config_fini(struct srv_config *cfg);

#endif
