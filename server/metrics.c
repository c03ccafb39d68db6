/*
 * server/metrics.c — GET /metrics: fdod's figures in the Prometheus text
 * exposition format (version 0.0.4). Counters only ever grow; rates
 * (symbolization rate, ingest rate) are for Prometheus to derive.
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "aggregator/chsink.h"
#include "aggregator/flow.h"
#include "common/mem.h"
#include "server/app.h"
#include "server/listen.h"
#include "server/otlp_grpc.h"

const int srv_metrics_codes[SRV_CODES] = {200, 304, 400, 404, 409,
					  422, 500, 503, 0};
static const char *const formats[SRV_FORMATS] = {"llvm",   "gcc",   "bolt",
						 "folded", "pprof", "other"};

void srv_metrics_profile(struct srv_app *app, const char *format, int status)
{
	int f = SRV_FORMATS - 1, c = SRV_CODES - 1;
	for (int i = 0; format && i < SRV_FORMATS - 1; i++)
		if (!strcmp(format, formats[i]))
			f = i;
	for (int i = 0; i < SRV_CODES - 1; i++)
		if (srv_metrics_codes[i] == status)
			c = i;
	atomic_fetch_add(&app->profile_requests[f][c], 1);
}

static void head(struct fdo_buf *b, const char *name, const char *type,
		 const char *help)
{
	fdo_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		       type);
}

static void metric(struct fdo_buf *b, const char *name, const char *type,
		   const char *help, double v)
{
	head(b, name, type, help);
	fdo_buf_printf(b, "%s %.17g\n", name, v);
}

/* Each part of the memory budget: what it holds now and its cap
 * (common/mem.h). The parts with an owner that counts are read from it;
 * the others from their counters. */
static void memory(struct srv_app *app, struct fdo_buf *b, size_t dwarf,
		   const struct pcache_stats *pc, struct srv_http *hs)
{
	uint64_t now[FDO_MEM_PARTS];
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		now[p] = fdo_mem_used((enum fdo_mem_part)p);
	now[FDO_MEM_DWARF] = dwarf;
	now[FDO_MEM_INFLATE] = sym_inflate_held();
	now[FDO_MEM_PROFILES] = pc->bytes;
	struct srv_http_stats hst = {0};
	if (hs)
		srv_http_stats(hs, &hst);
	now[FDO_MEM_HTTP] = hst.body_bytes;
	head(b, "fdod_memory_bytes", "gauge",
	     "Memory each part of --memory-budget holds now (lmdb: an "
	     "estimate of the most dirty pages a merge held).");
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		fdo_buf_printf(b, "fdod_memory_bytes{part=\"%s\"} %llu\n",
			       fdo_mem_name((enum fdo_mem_part)p),
			       (unsigned long long)now[p]);
	head(b, "fdod_memory_budget_bytes", "gauge",
	     "The cap of each part of --memory-budget, and the budget "
	     "(part=\"total\").");
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		fdo_buf_printf(
			b, "fdod_memory_budget_bytes{part=\"%s\"} %llu\n",
			fdo_mem_name((enum fdo_mem_part)p),
			(unsigned long long)fdo_mem_cap((enum fdo_mem_part)p));
	fdo_buf_printf(b, "fdod_memory_budget_bytes{part=\"total\"} %llu\n",
		       (unsigned long long)app->cfg.mem_budget);
}

void srv_h_metrics(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct fdo_buf *b = &resp->body;
	struct agg_ingest_stats is;
	struct agg_symwork_stats ws;
	struct store_stats ss;
	size_t cidx, cbytes;
	uint64_t chits, cmiss, pending = 0, live = 0;
	uint64_t entries[STORE_NTABLES] = {0};
	agg_ingest_stats(app->ingest, &is);
	agg_symwork_stats(app->symwork, &ws);
	sym_cache_stats(app->cache, &cidx, &cbytes, &chits, &cmiss);
	store_stats(app->st, &ss);
	store_txn *t;
	if (store_txn_begin(app->st, 0, &t) == FDO_OK) {
		store_count(t, STORE_PENDING, &pending);
		store_live_bytes(t, &live);
		for (int i = 0; i < STORE_NTABLES; i++)
			store_count(t, (enum store_table)i, &entries[i]);
		store_txn_abort(t);
	}
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";

	/* The process: descriptors and memory (Prometheus' usual names). */
	size_t fds = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (dir) {
		for (struct dirent *e; (e = readdir(dir));)
			fds += e->d_name[0] != '.';
		fds -= fds > 0; /* the one opendir holds */
		closedir(dir);
	}
	struct rlimit nofile;
	getrlimit(RLIMIT_NOFILE, &nofile);
	long pages = 0, rss = 0;
	FILE *statm = fopen("/proc/self/statm", "r");
	if (statm) {
		if (fscanf(statm, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(statm);
	}
	metric(b, "process_open_fds", "gauge", "Open file descriptors.",
	       (double)fds);
	metric(b, "process_max_fds", "gauge",
	       "The limit on open file descriptors.", (double)nofile.rlim_cur);
	metric(b, "process_resident_memory_bytes", "gauge",
	       "Resident memory (includes the store's mapped pages).",
	       (double)rss * (double)sysconf(_SC_PAGESIZE));

	head(b, "fdod_batches_total", "counter",
	     "Batches received, by result.");
	fdo_buf_printf(b,
		       "fdod_batches_total{result=\"stored\"} %llu\n"
		       "fdod_batches_total{result=\"duplicate\"} %llu\n"
		       "fdod_batches_total{result=\"refused\"} %llu\n",
		       (unsigned long long)is.batches,
		       (unsigned long long)is.duplicates,
		       (unsigned long long)is.refused);
	head(b, "fdod_refused_batches_total", "counter",
	     "Refused batches, by reason (the Ack status).");
	for (int i = 0; i < AGG_REFUSAL_CODES; i++)
		if (is.refused_by[i])
			fdo_buf_printf(
				b,
				"fdod_refused_batches_total{reason=\"%s\"} "
				"%llu\n",
				fdo_errname(i),
				(unsigned long long)is.refused_by[i]);
	metric(b, "fdod_rate_limited_batches_total", "counter",
	       "Batches refused by --rate-agent or --rate-binary.",
	       (double)is.rate_limited);
	metric(b, "fdod_growth_limited_batches_total", "counter",
	       "Batches refused because their binary stored --max-new-stacks "
	       "new stacks this hour.",
	       (double)is.growth_limited);
	metric(b, "fdod_pending_dropped_total", "counter",
	       "New addresses not queued for symbolization: their build-id "
	       "had --max-pending addresses waiting.",
	       (double)is.pending_dropped);
	metric(b, "fdod_pending_full_build_ids", "gauge",
	       "Build-ids over --max-pending now.", (double)is.pending_full);
	metric(b, "fdod_retention_deleted_total", "counter",
	       "Counts entries deleted past the retention age.",
	       (double)is.expired);
	metric(b, "fdod_budget_deleted_total", "counter",
	       "Counts entries deleted to stay within the store budget.",
	       (double)is.budget_dropped);
	metric(b, "fdod_samples_total", "counter", "Samples in stored batches.",
	       (double)is.samples);
	metric(b, "fdod_group_commits_total", "counter",
	       "Write-ahead-log group commits (one fdatasync each).",
	       (double)is.commits);
	head(b, "fdod_ack_latency_seconds", "histogram",
	     "Time from receiving a batch to its Ack.");
	for (int i = 0; i < AGG_LATENCY_BUCKETS; i++)
		fdo_buf_printf(b,
			       "fdod_ack_latency_seconds_bucket{le=\"%g\"} "
			       "%llu\n",
			       agg_latency_bounds[i],
			       (unsigned long long)is.latency_le[i]);
	fdo_buf_printf(b,
		       "fdod_ack_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
		       "fdod_ack_latency_seconds_sum %.9f\n"
		       "fdod_ack_latency_seconds_count %llu\n",
		       (unsigned long long)is.latency_count, is.latency_sum,
		       (unsigned long long)is.latency_count);
	metric(b, "fdod_ingest_queue_batches", "gauge",
	       "Batches received, waiting for the write-ahead log.",
	       (double)is.queue_len);
	metric(b, "fdod_ingest_unmerged_batches", "gauge",
	       "Acknowledged batches not yet merged into the store.",
	       (double)is.unmerged);
	metric(b, "fdod_pending_addresses", "gauge",
	       "Addresses waiting for symbolization.", (double)pending);
	metric(b, "fdod_symbolized_addresses_total", "counter",
	       "Addresses resolved into the symbol cache.",
	       (double)ws.resolved);
	metric(b, "fdod_symbolizer_failures_total", "counter",
	       "Build-ids whose symbol files would not open.",
	       (double)ws.failures);
	metric(b, "fdod_symbolizer_queued_build_ids", "gauge",
	       "Build-ids waiting for a symbolizer thread.", (double)ws.queued);
	metric(b, "fdod_symbolizer_deferred_build_ids", "gauge",
	       "Build-ids left to their owner node (--cluster-nodes).",
	       (double)ws.deferred);
	metric(b, "fdod_dwarf_cache_indexes", "gauge",
	       "DWARF indexes held in memory.", (double)cidx);
	metric(b, "fdod_dwarf_cache_bytes", "gauge",
	       "Bytes of DWARF indexes held in memory.", (double)cbytes);
	metric(b, "fdod_dwarf_cache_hits_total", "counter",
	       "DWARF cache lookups that found the index open.", (double)chits);
	metric(b, "fdod_dwarf_cache_misses_total", "counter",
	       "DWARF cache lookups that opened or built the index.",
	       (double)cmiss);
	metric(b, "fdod_store_map_bytes", "gauge",
	       "Size of the LMDB map (and its preallocated file).",
	       (double)ss.map_size);
	metric(b, "fdod_store_used_bytes", "gauge",
	       "Bytes of the store in use.", (double)ss.used_size);
	metric(b, "fdod_store_live_bytes", "gauge",
	       "Bytes of pages holding data (what --store-budget limits).",
	       (double)live);
	metric(b, "fdod_store_max_bytes", "gauge",
	       "Largest size the store may grow to.", (double)ss.max_size);
	head(b, "fdod_store_entries", "gauge",
	     "Entries of each table of the store (stacks, counts...).");
	for (int i = 0; i < STORE_NTABLES; i++)
		fdo_buf_printf(b, "fdod_store_entries{table=\"%s\"} %llu\n",
			       store_table_name((enum store_table)i),
			       (unsigned long long)entries[i]);
	head(b, "fdod_uploads_total", "counter", "Symbol uploads, by result.");
	static const char *const up[3] = {"stored", "present", "refused"};
	for (int i = 0; i < 3; i++)
		fdo_buf_printf(
			b, "fdod_uploads_total{result=\"%s\"} %llu\n", up[i],
			(unsigned long long)atomic_load(&app->uploads[i]));
	struct srv_upstream_stats us;
	srv_upstream_stats(app->upstream, &us);
	head(b, "fdod_debuginfod_fetches_total", "counter",
	     "Fetches from upstream debuginfod servers (--debuginfod-urls), "
	     "by result.");
	fdo_buf_printf(
		b,
		"fdod_debuginfod_fetches_total{result=\"ok\"} %llu\n"
		"fdod_debuginfod_fetches_total{result=\"missing\"} %llu\n"
		"fdod_debuginfod_fetches_total{result=\"failed\"} %llu\n"
		"fdod_debuginfod_fetches_total{result=\"rejected\"} "
		"%llu\n",
		(unsigned long long)us.ok, (unsigned long long)us.missing,
		(unsigned long long)us.failed, (unsigned long long)us.rejected);
	head(b, "fdod_debuginfod_forwards_total", "counter",
	     "debuginfod requests fdod could not answer from its store, "
	     "fetched upstream (--debuginfod-forward-hops), by result.");
	fdo_buf_printf(
		b,
		"fdod_debuginfod_forwards_total{result=\"ok\"} %llu\n"
		"fdod_debuginfod_forwards_total{result=\"missing\"} %llu\n"
		"fdod_debuginfod_forwards_total{result=\"failed\"} %llu\n",
		(unsigned long long)us.forwarded,
		(unsigned long long)us.forward_missing,
		(unsigned long long)us.forward_failed);
	metric(b, "fdod_debuginfod_negative_cache_hits_total", "counter",
	       "Asks for symbols answered by the negative cache (not found "
	       "or failed upstream less than --debuginfod-retry ago).",
	       (double)us.negative_hits);
	metric(b, "fdod_debuginfod_fetched_bytes_total", "counter",
	       "Bytes of the symbol files fetched and stored.",
	       (double)us.bytes);
	metric(b, "fdod_debuginfod_queued_build_ids", "gauge",
	       "Build-ids waiting for an upstream fetch.", (double)us.queued);
	metric(b, "fdod_debuginfod_fetches_running", "gauge",
	       "Upstream fetches in progress.", (double)us.running);
	head(b, "fdod_profile_requests_total", "counter",
	     "Profile requests, by format and HTTP status.");
	for (int f = 0; f < SRV_FORMATS; f++)
		for (int c = 0; c < SRV_CODES; c++) {
			uint64_t n = atomic_load(&app->profile_requests[f][c]);
			if (!n)
				continue;
			char code[16];
			snprintf(code, sizeof code, "%d", srv_metrics_codes[c]);
			fdo_buf_printf(
				b,
				"fdod_profile_requests_total{format=\"%s\","
				"code=\"%s\"} %llu\n",
				formats[f],
				srv_metrics_codes[c] ? code : "other",
				(unsigned long long)n);
		}
	srv_pprof_metrics(app, b);
	srv_otlp_metrics(app, b);
	srv_sampling_metrics(app->sampling, b);
	srv_grpc_metrics(atomic_load(&app->grpc), b);
	struct pcache_stats pc;
	pcache_stats(app->pcache, &pc);
	metric(b, "fdod_profile_builds_total", "counter",
	       "Profiles built (each pull that found no shared build).",
	       (double)pc.builds);
	metric(b, "fdod_profile_cache_hits_total", "counter",
	       "Pulls answered with a profile built for an identical pull of "
	       "the same store state.",
	       (double)pc.hits);
	metric(b, "fdod_profile_cache_waits_total", "counter",
	       "... of them, those that waited for its build to finish.",
	       (double)pc.waits);
	metric(b, "fdod_profile_cache_bytes", "gauge",
	       "Bytes of the built profiles kept.", (double)pc.bytes);
	/* Block inference's results kept between pulls (aggregator/flow.c):
	 * at most FLOW_MEMO_BYTES, outside the budget's parts, which it
	 * would otherwise keep non-empty for good (the merger fills table
	 * aggs only while the builds part holds nothing). */
	struct flow_memo_stats fm;
	flow_memo_stats(&fm);
	metric(b, "fdod_flow_memo_bytes", "gauge",
	       "Bytes of block-inference results kept between pulls.",
	       (double)fm.bytes);
	metric(b, "fdod_flow_memo_hits_total", "counter",
	       "Functions whose block counts a pull took from that memo.",
	       (double)fm.hits);
	metric(b, "fdod_flow_memo_misses_total", "counter",
	       "Functions whose block counts a pull had to solve.",
	       (double)fm.misses);
	/* The copy into ClickHouse (fdod --store clickhouse://,
	 * aggregator/chsink.c): no lines without it. */
	chsink *sink = chsink_global();
	if (sink) {
		struct chsink_stats cs;
		chsink_stats(sink, &cs);
		metric(b, "fdod_clickhouse_outbox_files", "gauge",
		       "Blocks staged for ClickHouse and not yet taken by it.",
		       (double)cs.files);
		metric(b, "fdod_clickhouse_outbox_bytes", "gauge",
		       "Bytes of those blocks (on disk).", (double)cs.bytes);
		metric(b, "fdod_clickhouse_sent_total", "counter",
		       "Blocks ClickHouse has taken.", (double)cs.sent);
		metric(b, "fdod_clickhouse_found_total", "counter",
		       "Blocks of unknown fate found already in ClickHouse "
		       "by their marker, so not sent again.",
		       (double)cs.skipped);
		metric(b, "fdod_clickhouse_failures_total", "counter",
		       "Requests to ClickHouse that failed (retried).",
		       (double)cs.failures);
	}
	srv_staleness_metrics(app, b);
	struct srv_listen *ls = atomic_load(&app->listen);
	if (ls) {
		struct srv_listen_stats st;
		srv_listen_stats(ls, &st);
		metric(b, "fdod_agent_connections", "gauge",
		       "Agent connections open.", (double)st.connections);
		metric(b, "fdod_agent_connections_unauthenticated", "gauge",
		       "Agent connections that have not yet sent an "
		       "authorized batch (--agent-unauthenticated).",
		       (double)st.unauthenticated);
		metric(b, "fdod_agent_connections_refused_total", "counter",
		       "Agent connections closed as they arrived: over "
		       "--agent-connections, its per-peer or unauthenticated "
		       "caps.",
		       (double)st.refused);
		head(b, "fdod_agent_connections_closed_total", "counter",
		     "Agent connections closed by fdod, by reason "
		     "(--agent-auth-timeout, --agent-idle-timeout).");
		fdo_buf_printf(b,
			       "fdod_agent_connections_closed_total"
			       "{reason=\"timeout\"} %llu\n",
			       (unsigned long long)st.reaped);
	}
	struct srv_http *hs = atomic_load(&app->http);
	if (hs) {
		struct srv_http_stats st;
		srv_http_stats(hs, &st);
		metric(b, "fdod_http_connections", "gauge",
		       "HTTP connections open.", (double)st.connections);
		metric(b, "fdod_http_requests_queued", "gauge",
		       "HTTP requests waiting for a worker.",
		       (double)st.queued);
		metric(b, "fdod_http_body_bytes", "gauge",
		       "Bytes of request bodies held in memory "
		       "(--http-body-memory).",
		       (double)st.body_bytes);
		metric(b, "fdod_http_body_refused_total", "counter",
		       "HTTP requests answered 503 because their body did not "
		       "fit in --http-body-memory.",
		       (double)st.body_refused);
		head(b, "fdod_http_connections_closed_total", "counter",
		     "HTTP connections closed by fdod for missing the header "
		     "or body deadline, by reason.");
		fdo_buf_printf(b,
			       "fdod_http_connections_closed_total"
			       "{reason=\"timeout\"} %llu\n",
			       (unsigned long long)st.reaped);
	}
	memory(app, b, cbytes, &pc, hs);
	metric(b, "fdod_memory_refused_pulls_total", "counter",
	       "Pulls and publishes refused (503, Retry-After) because the "
	       "memory budget's builds part was full.",
	       (double)atomic_load(&app->builds_refused));
	metric(b, "fdod_memory_refused_batches_total", "counter",
	       "Batches refused (BUSY, with a retry-after) because the "
	       "memory budget's ingest part was full.",
	       (double)is.memory_refused);
	metric(b, "fdod_uptime_seconds", "gauge", "Seconds since start.",
	       (double)(time(NULL) - app->started));
}
