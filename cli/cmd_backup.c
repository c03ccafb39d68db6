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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "storage/storage.h"

static void backup_usage(FILE *out)
{
	fprintf(out,
		"usage: fdoctl backup [--http URL | --data DIR] DEST\n\n"
		"Writes a consistent, compacted copy of the store to DEST/store\n"
		"while fdod runs. Through fdod (default; URL from $FDOD_HTTP or\n"
		"http://127.0.0.1:7471) acknowledged batches are merged first;\n"
		"DEST is a path on fdod's host, under one of its --backup-dir\n"
		"directories and outside its --data. --data DIR copies the store in\n"
		"DIR directly. The symbols/ tree is plain immutable files: copy\n"
		"it with cp -al or rsync.\n");
}

int cmd_backup(int argc, char **argv)
{
	const char *http = NULL, *data = NULL, *dest = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			backup_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--http") && i + 1 < argc) {
			http = argv[++i];
		} else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
			data = argv[++i];
		} else if (argv[i][0] == '-' || dest) {
			backup_usage(stderr);
			return 2;
		} else {
			dest = argv[i];
		}
	}
	if (!dest || (http && data)) {
		backup_usage(stderr);
		return 2;
	}
	char abs[PATH_MAX];
	if (dest[0] != '/') {
		if (!realpath(".", abs) ||
		    strlen(abs) + strlen(dest) + 2 > sizeof abs) {
			fprintf(stderr, "fdoctl backup: cannot resolve %s\n", dest);
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
			fprintf(stderr, "fdoctl backup: %s\n", fdo_strerror(rc));
			return 1;
		}
		printf("backup written to %s/store\n", dest);
		return 0;
	}
	struct fdo_buf path, body;
	fdo_buf_init(&path);
	fdo_buf_init(&body);
	fdo_buf_puts(&path, "/v1/backup?dir=");
	for (const unsigned char *c = (const unsigned char *)dest; *c; c++)
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("/-_.~", *c))
			fdo_buf_putc(&path, (char)*c);
		else
			fdo_buf_printf(&path, "%%%02X", *c);
	char err[512];
	int status = 0, ret = 1;
	int rc = cli_http_request(cli_http_base(http), "POST",
				  fdo_buf_cstr(&path), -1, &status, &body, err,
				  sizeof err);
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
