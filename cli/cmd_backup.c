/*
 * cli/cmd_backup.c — `fdoctl backup [--http URL | --data DIR] DEST`: a
 * consistent, compacted copy of fdod's store into DEST/store, while fdod
 * runs. Through the daemon (the default: --http, $FDOD_HTTP) everything
 * acknowledged is merged first and DEST is a path on fdod's host, under
 * one of its --backup-dir directories and outside its --data; with
 * --data the store is copied directly (batches still in its write-ahead
 * log are not in the copy). Restore: start fdod with --data DEST, and
 * copy the symbols/ tree beside it (files are immutable: cp -al or rsync).
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "storage/storage.h"

struct cfg {
	struct cli_http http;
	char *data;
};

static const struct fdo_opt opts[] = {
	{"http", FDO_OPT_STRING, offsetof(struct cfg, http.url), NULL, "URL",
	 "through the fdod at URL, the default (default $FDOD_HTTP, else "
	 "http://127.0.0.1:7471)"},
	CLI_HTTP_TIMEOUT_OPTS(struct cfg, http),
	{"data", FDO_OPT_STRING, offsetof(struct cfg, data), NULL, "DIR",
	 "copy the store in DIR directly instead"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_backup = {
	.name = "backup",
	.usage = "[--http URL | --data DIR] DEST",
	.summary = "consistent, compacted copy of the store while fdod runs",
	.about =
		"Writes a consistent, compacted copy of the store to DEST/store\n"
		"while fdod runs. Through fdod (the default) acknowledged "
		"batches\nare merged first; DEST is a path on fdod's host, "
		"under one of its\n--backup-dir directories and outside its "
		"--data. --data DIR copies\nthe store in DIR directly. The "
		"symbols/ tree is plain immutable\nfiles: copy it with cp -al "
		"or rsync.\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.min_operands = 1,
	.max_operands = 1,
	.run = run,
};

static int backup(const struct cfg *c, const char *dest);

static int run(int argc, char **argv)
{
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_backup, opts, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	rc = c.http.url && c.data
		     ? cli_usage_error(&cli_cmd_backup,
				       "give --http or --data, not both")
		     : backup(&c, argv[1]);
	fdo_opts_fini(opts, &c);
	return rc;
}

static int backup(const struct cfg *c, const char *dest)
{
	const char *data = c->data;
	char abs[PATH_MAX];
	if (dest[0] != '/') {
		if (!realpath(".", abs) ||
		    strlen(abs) + strlen(dest) + 2 > sizeof abs) {
			fprintf(stderr, "fdoctl backup: cannot resolve %s\n",
				dest);
			return 1;
		}
		strcat(abs, "/");
		strcat(abs, dest);
		dest = abs;
	}
	if (data) {
		fdo_log_set_level(FDO_LOG_WARN);
		store *s;
		struct store_opts o = {.dir = data};
		int rc = store_open(&o, &s);
		if (rc) {
			fprintf(stderr, "fdoctl backup: cannot open %s: %s\n",
				data, fdo_strerror(rc));
			return 1;
		}
		rc = store_backup(s, dest);
		store_close(s);
		if (rc) {
			fprintf(stderr, "fdoctl backup: %s\n",
				fdo_strerror(rc));
			return 1;
		}
		printf("backup written to %s/store\n", dest);
		return 0;
	}
	struct fdo_buf path, body;
	fdo_buf_init(&path);
	fdo_buf_init(&body);
	fdo_buf_puts(&path, "/v1/backup?dir=");
	for (const unsigned char *p = (const unsigned char *)dest; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-_.~", *p))
			fdo_buf_putc(&path, (char)*p);
		else
			fdo_buf_printf(&path, "%%%02X", *p);
	char err[512];
	int status = 0, ret = 1;
	int rc = cli_http_request(&c->http, "POST", fdo_buf_cstr(&path), -1,
				  &status, &body, err, sizeof err);
	if (rc)
		fprintf(stderr, "fdoctl backup: %s\n", err);
	else if (status != 201)
		fprintf(stderr, "fdoctl backup: HTTP %d: %s", status,
			fdo_buf_cstr(&body));
	else {
		printf("backup written to %s/store\n", dest);
		ret = 0;
	}
	fdo_buf_fini(&path);
	fdo_buf_fini(&body);
	return ret;
}
