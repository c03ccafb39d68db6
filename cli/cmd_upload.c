/*
 * cli/cmd_upload.c — `fdoctl upload`: put ELF executables and separate debug
 * files into fdod's symbol store, keyed by their GNU build-id.
 *
 * Local mode (--data DIR, the default ./var/fdod) writes the symbol tree and
 * the store's buildids table directly; it is safe while fdod runs on the
 * same directory (LMDB locks across processes, files are placed
 * atomically). --http URL (or $FDOD_HTTP) sends each file to a running
 * fdod with PUT /v1/symbols, streamed from disk.
 *
 * Output: one line per file, in argument order, on stdout:
 *   stored <build-id> <slots> <file>     at least one slot written
 *   present <build-id> <slots> <file>    every slot was already there
 *   replaced <build-id> <slots> <file>   --replace swapped a different file
 * and on stderr for a file that was refused or failed (a different file
 * already stored for the build-id is refused: HTTP 409, or CONFLICT):
 *   error: <file>: <reason>
 * <slots> is executable, debuginfo or executable+debuginfo. Exit 0 when
 * every file is stored or present, 1 when any failed, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "storage/storage.h"

struct cfg {
	struct cli_http http;
	char *data;
	char *binary;
	int replace;
};

static const struct fdo_opt opts[] = {
	{"data", FDO_OPT_STRING, offsetof(struct cfg, data), NULL, "DIR",
	 "write into the data directory DIR (default ./var/fdod)"},
	{"http", FDO_OPT_STRING, offsetof(struct cfg, http.url), NULL, "URL",
	 "upload through a running fdod's HTTP API (default $FDOD_HTTP when "
	 "set; else --data ./var/fdod)"},
	CLI_HTTP_TIMEOUT_OPTS(struct cfg, http),
	{"binary", FDO_OPT_STRING, offsetof(struct cfg, binary), NULL, "NAME",
	 "the binary name these build-ids belong to"},
	{"replace", FDO_OPT_BOOL, offsetof(struct cfg, replace), "false", NULL,
	 "replace a different file already stored for the build-id (needs a "
	 "token with scope admin); without it such a file is refused (HTTP "
	 "409)"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_upload = {
	.name = "upload",
	.usage =
		"[--http URL | --data DIR] [--binary NAME] [--replace] FILE...",
	.summary = "store ELF executables and debug files by build-id",
	.about =
		"Store ELF executables, shared objects and separate debug files "
		"by\ntheir GNU build-id, for delayed symbolization and "
		"debuginfod; files with\nloadable bytes also by their "
		"OpenTelemetry file id (upload the stripped\nfiles hosts run "
		"too, when OpenTelemetry agents send only that id).\nOne line "
		"per file: `stored|present|replaced "
		"<build-id> <slots> <file>`,\nor `error: <file>: <reason>` on "
		"stderr. Exit 1 if any file failed.\n",
	.opts = opts,
	.min_operands = 1,
	.max_operands = -1,
	.run = run,
};

static const char *slots_text(unsigned slots)
{
	switch (slots & (STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO)) {
	case STORE_SYM_EXECUTABLE:
		return "executable";
	case STORE_SYM_DEBUGINFO:
		return "debuginfo";
	case STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO:
		return "executable+debuginfo";
	default:
		return "-";
	}
}

/* The value of "key":[...] in a small JSON object, as slot words. */
static unsigned json_slots(const char *json, const char *key)
{
	const char *p = strstr(json, key);
	unsigned slots = 0;
	if (!p || !(p = strchr(p, '[')))
		return 0;
	const char *end = strchr(p, ']');
	if (!end)
		return 0;
	const char *e = strstr(p, "\"executable\"");
	const char *d = strstr(p, "\"debuginfo\"");
	if (e && e < end)
		slots |= STORE_SYM_EXECUTABLE;
	if (d && d < end)
		slots |= STORE_SYM_DEBUGINFO;
	return slots;
}

static void json_field(const char *json, const char *key, char *out, size_t cap)
{
	out[0] = 0;
	const char *p = strstr(json, key);
	if (!p || !(p = strchr(p + strlen(key), '"')))
		return;
	p++;
	size_t n = 0;
	while (p[n] && p[n] != '"' && n + 1 < cap)
		n++;
	memcpy(out, p, n);
	out[n] = 0;
}

int cli_upload_http(const struct cli_http *h, const char *binary, int replace,
		    int nfiles, char **files)
{
	char path[1024] = "/v1/symbols";
	if (binary) {
		/* Binary names are [A-Za-z0-9_.+-]: only '+' needs escaping. */
		size_t n = strlen(path);
		n += (size_t)snprintf(path + n, sizeof path - n, "?binary=");
		for (const char *c = binary; *c && n + 4 < sizeof path; c++)
			n += (size_t)(*c == '+' ? snprintf(path + n,
							   sizeof path - n,
							   "%%2B")
						: snprintf(path + n,
							   sizeof path - n,
							   "%c", *c));
	}
	if (replace)
		snprintf(path + strlen(path), sizeof path - strlen(path), "%s",
			 binary ? "&replace=1" : "?replace=1");
	int failed = 0;
	for (int k = 0; k < nfiles; k++) {
		int fd = open(files[k], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "error: %s: %s\n", files[k],
				strerror(errno));
			failed = 1;
			continue;
		}
		struct fdo_buf body;
		fdo_buf_init(&body);
		char err[512];
		int status = 0;
		int rc = cli_http_request(h, "PUT", path, fd, &status, &body,
					  err, sizeof err);
		close(fd);
		const char *json = fdo_buf_cstr(&body);
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		json_field(json, "\"build_id\"", hex, sizeof hex);
		if (rc) {
			fprintf(stderr, "error: %s: %s\n", files[k], err);
			failed = 1;
		} else if (status == 201) {
			printf("%s %s %s %s\n",
			       strstr(json, "\"replaced\":true") ? "replaced"
								 : "stored",
			       hex, slots_text(json_slots(json, "\"stored\"")),
			       files[k]);
		} else if (status == 200) {
			printf("present %s %s %s\n", hex,
			       slots_text(json_slots(json, "\"present\"")),
			       files[k]);
		} else {
			char why[512];
			json_field(json, "\"error\"", why, sizeof why);
			fflush(stdout);
			fprintf(stderr, "error: %s: HTTP %d: %s\n", files[k],
				status, why[0] ? why : "no reason given");
			failed = 1;
		}
		fdo_buf_fini(&body);
	}
	fflush(stdout);
	return failed ? 1 : 0;
}

/* --replace with --data: the file is copied into the store's incoming
 * directory and adopted with STORE_SYM_REPLACE, as fdod does. */
static int replace_local(store *s, const char *data, const char *file,
			 const char *binary, struct store_sym_result *res)
{
	memset(res, 0, sizeof *res);
	char tmp[4096];
	int out, in = open(file, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(res->why, sizeof res->why, "%s", strerror(errno));
		return FDO_EIO;
	}
	int rc = store_symbols_tmpfile(data, tmp, sizeof tmp, &out);
	char buf[1 << 16];
	ssize_t n;
	while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			snprintf(res->why, sizeof res->why, "copying: %s",
				 strerror(errno));
			rc = FDO_EIO;
		}
	}
	close(in);
	if (rc) {
		if (out >= 0) {
			close(out);
			unlink(tmp);
		}
		return rc;
	}
	close(out);
	return store_symbols_adopt(s, data, tmp, binary, STORE_SYM_REPLACE,
				   res);
}

static int upload_local(const char *data, const char *binary, int replace,
			int nfiles, char **files)
{
	fdo_log_set_level(FDO_LOG_WARN);
	store *s = NULL;
	struct store_opts so = {.dir = data};
	int rc = store_open(&so, &s);
	if (rc) {
		fprintf(stderr,
			"fdoctl upload: cannot open the store in %s: %s\n",
			data, fdo_strerror(rc));
		return 1;
	}
	int failed = 0;
	for (int i = 0; i < nfiles; i++) {
		struct store_sym_result res;
		rc = replace ? replace_local(s, data, files[i], binary, &res)
			     : store_symbols_add_file(s, data, files[i], binary,
						      &res);
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		fdo_hex_encode(res.elf.build_id, res.elf.build_id_len, hex);
		if (rc == FDO_OK) {
			printf("%s %s %s %s\n",
			       res.replaced ? "replaced" : "stored", hex,
			       slots_text(res.stored), files[i]);
		} else if (rc == FDO_EEXISTS) {
			printf("present %s %s %s\n", hex,
			       slots_text(res.present), files[i]);
		} else {
			fflush(stdout);
			fprintf(stderr, "error: %s: %s\n", files[i],
				res.why[0] ? res.why : fdo_strerror(rc));
			failed = 1;
		}
	}
	fflush(stdout);
	store_close(s);
	return failed ? 1 : 0;
}

static int run(int argc, char **argv)
{
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_upload, opts, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	const char *env = getenv("FDOD_HTTP");
	if ((c.data && !*c.data) || (c.http.url && !*c.http.url) ||
	    (c.binary && !*c.binary))
		rc = cli_usage_error(&cli_cmd_upload,
				     "an option needs a value");
	else if (c.data && c.http.url)
		rc = cli_usage_error(&cli_cmd_upload,
				     "give --http or --data, not both");
	else if (c.http.url || (!c.data && env && *env))
		rc = cli_upload_http(&c.http, c.binary, c.replace, n, argv + 1);
	else
		rc = upload_local(c.data ? c.data : "./var/fdod", c.binary,
				  c.replace, n, argv + 1);
	fdo_opts_fini(opts, &c);
	return rc;
}
