/*
 * server/app.h — the running daemon: every part fdod starts, shared by the
 * route handlers. Fields are set at start and read-only afterwards (each
 * part guards its own state).
 */
#ifndef FDO_SERVER_APP_H
#define FDO_SERVER_APP_H

#include <stdint.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "server/config.h"
#include "server/http.h"
#include "storage/storage.h"
#include "symbolizer/symbolizer.h"

struct srv_app {
	struct srv_config cfg;
	store *st;
	sym_cache *cache;
	agg_ingest *ingest;
	agg_symwork *symwork;
	time_t started;
	char incoming[4096]; /* where uploads are streamed */
};

/* The HTTP route table (server/routes.c). */
extern const struct srv_route srv_routes[];

/* The profile API (server/profiles.c). */
void srv_h_profile(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_publish(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_versions(void *app, struct srv_req *req, struct srv_resp *resp);
void srv_h_version(void *app, struct srv_req *req, struct srv_resp *resp);

#endif
