/*
 * server/debuginfod.c — fdod as a debuginfod server, from its symbol store:
 *   GET /buildid/{build-id}/debuginfo
 *   GET /buildid/{build-id}/executable
 * with the protocol's X-DEBUGINFOD-SIZE and X-DEBUGINFOD-FILE headers, so
 * debuginfod-find, gdb and eu-* tools can use fdod as DEBUGINFOD_URLS.
 * Unknown build-ids are 404; so is /buildid/.../source/... (fdod keeps no
 * sources). Files are streamed, never read into memory.
 *
 * With --debuginfod-forward-hops N (and --debuginfod-urls), a file the
 * store lacks is fetched from upstream on the worker that serves the
 * request (srv_upstream_forward), stored, then served: nodes that are each
 * other's upstream serve what any of them holds. The loop guard follows
 * elfutils' debuginfod (--forwarded-ttl-limit): a request whose
 * X-Forwarded-For lists N hops or more is not forwarded; and, as a node
 * cannot tell its own address from another's, each fdod appends its node
 * id to X-Fdod-Via and does not forward a request that already lists it.
 * Either way the miss is a quick 404, so a loop of fdod nodes ends at its
 * first repeat and a loop through other servers after N hops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "server/app.h"

/*
 * A miss: fetch it from upstream when forwards are on and the loop guard
 * allows. Returns 0 when the file may now be in the store (look again),
 * else the answer is written into resp.
 */
static int forward(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, const uint8_t *id, size_t len,
		   unsigned kind, const char *what)
{
	const char *why = "";
	char nxff[SRV_LOOP_HEADER_CAP], nvia[SRV_LOOP_HEADER_CAP];
	if (app->upstream && app->cfg.debuginfod_forward_hops)
		why = srv_upstream_loop_guard(
			srv_req_header(req, "X-Forwarded-For"),
			srv_req_header(req, "X-Fdod-Via"),
			req->peer ? req->peer : "unknown",
			srv_upstream_node(app->upstream),
			(unsigned)app->cfg.debuginfod_forward_hops, nxff, nvia);
	if (why) {
		srv_resp_error(resp, 404, "no %s for %s%s%s%s", what,
			       req->param[0], *why ? " (not forwarded: " : "",
			       why, *why ? ")" : "");
		return -1;
	}
	int rc = srv_upstream_forward(app->upstream, id, len, kind, nxff, nvia);
	if (rc == FDO_OK)
		return 0;
	if (rc == FDO_EBUSY) {
		srv_resp_error(resp, 503,
			       "%s of %s: upstream fetches busy; retry later",
			       what, req->param[0]);
		srv_resp_header(resp, "Retry-After", "1");
	} else {
		srv_resp_error(resp, 404, "no %s for %s (%s upstream)", what,
			       req->param[0],
			       rc == FDO_ENOT_FOUND ? "not found"
						    : "fetch failed");
	}
	return -1;
}

/* The open file of kind for build-id id, or -1 (errno ENOENT: none). */
static int open_symbols(struct srv_app *app, const uint8_t *id, size_t len,
			unsigned kind)
{
	char path[4096];
	if (store_symbols_path(app->cfg.data, id, len, kind, path,
			       sizeof path)) {
		errno = ENOENT;
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		fdo_warn("debuginfod: %s: %s", path, strerror(errno));
	return fd;
}

static void serve(struct srv_app *app, struct srv_req *req,
		  struct srv_resp *resp, unsigned kind, const char *what)
{
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	if (fdo_build_id_parse(req->param[0], id, &len)) {
		srv_resp_error(resp, 404, "'%s' is not a build-id",
			       req->param[0]);
		return;
	}
	int fd = open_symbols(app, id, len, kind);
	if (fd < 0 && errno == ENOENT) {
		if (forward(app, req, resp, id, len, kind, what))
			return; /* answered */
		fd = open_symbols(app, id, len, kind);
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		srv_resp_error(resp, 404, "no %s for %s", what, req->param[0]);
		return;
	}
	resp->content_type = "application/octet-stream";
	resp->body_fd = fd;
	resp->body_size = (uint64_t)st.st_size;
	srv_resp_header(resp, "X-DEBUGINFOD-SIZE", "%llu",
			(unsigned long long)st.st_size);
	srv_resp_header(resp, "X-DEBUGINFOD-FILE", "/%s/%s", req->param[0],
			what);
	srv_resp_header(resp, "Cache-Control",
			"public, max-age=31536000, "
			"immutable");
}

void srv_h_debuginfo(void *a, struct srv_req *req, struct srv_resp *resp)
{
	serve(a, req, resp, STORE_SYM_DEBUGINFO, "debuginfo");
}

void srv_h_executable(void *a, struct srv_req *req, struct srv_resp *resp)
{
	serve(a, req, resp, STORE_SYM_EXECUTABLE, "executable");
}
