/*
 * server/debuginfod.c — fdod as a debuginfod server, from its symbol store:
 *   GET /buildid/{build-id}/debuginfo
 *   GET /buildid/{build-id}/executable
 * with the protocol's X-DEBUGINFOD-SIZE and X-DEBUGINFOD-FILE headers, so
 * debuginfod-find, gdb and eu-* tools can use fdod as DEBUGINFOD_URLS.
 * Unknown build-ids are 404; so is /buildid/.../source/... (fdod keeps no
 * sources). Files are streamed, never read into memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "server/app.h"

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
	char path[4096];
	if (store_symbols_path(app->cfg.data, id, len, kind, path,
			       sizeof path)) {
		srv_resp_error(resp, 404, "no %s for %s", what, req->param[0]);
		return;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		if (errno != ENOENT)
			fdo_warn("debuginfod: %s: %s", path, strerror(errno));
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
