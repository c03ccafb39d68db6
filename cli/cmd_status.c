/*
 * cli/cmd_status.c — `fdoctl status [--http URL] [--json]`: fdod's health,
 * ingest and symbolization figures and the pending backlog, from
 * GET /v1/status; indented for people, raw with --json.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"

static void status_usage(FILE *out)
{
	fprintf(out,
		"usage: fdoctl status [--http URL] [--json]\n\n"
		"Prints fdod's GET /v1/status: store size, ingest counters,\n"
		"symbolizer and DWARF-cache figures, pending addresses per\n"
		"build-id. URL defaults to $FDOD_HTTP, else "
		"http://127.0.0.1:7471.\n");
}

/* Re-indent compact JSON (strings copied verbatim, escapes kept). */
static void json_indent(const char *s, FILE *out)
{
	int depth = 0, in_str = 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (in_str) {
			fputc(c, out);
			if (c == '\\' && p[1])
				fputc(*++p, out);
			else if (c == '"')
				in_str = 0;
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			fputc(c, out);
			break;
		case '{':
		case '[':
			if ((p[1] == '}' || p[1] == ']')) {
				fputc(c, out);
				fputc(*++p, out);
				break;
			}
			fprintf(out, "%c\n%*s", c, 2 * ++depth, "");
			break;
		case '}':
		case ']':
			fprintf(out, "\n%*s%c", 2 * --depth, "", c);
			break;
		case ',':
			fprintf(out, ",\n%*s", 2 * depth, "");
			break;
		case ':':
			fputs(": ", out);
			break;
		case '\n':
			break;
		default:
			fputc(c, out);
		}
	}
	fputc('\n', out);
}

int cmd_status(int argc, char **argv)
{
	const char *http = NULL;
	int raw = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			status_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			raw = 1;
		} else if (!strcmp(argv[i], "--http") && i + 1 < argc) {
			http = argv[++i];
		} else if (!strncmp(argv[i], "--http=", 7)) {
			http = argv[i] + 7;
		} else {
			fprintf(stderr, "fdoctl status: unknown argument %s\n",
				argv[i]);
			status_usage(stderr);
			return 2;
		}
	}
	const char *base = cli_http_base(http);
	struct fdo_buf body;
	fdo_buf_init(&body);
	char err[512];
	int status = 0;
	int rc = cli_http_request(base, "GET", "/v1/status", -1, &status, &body,
				  err, sizeof err);
	if (rc) {
		fprintf(stderr, "fdoctl status: %s\n", err);
		fdo_buf_fini(&body);
		return 1;
	}
	const char *json = fdo_buf_cstr(&body);
	if (status != 200) {
		fprintf(stderr, "fdoctl status: HTTP %d: %s\n", status, json);
		fdo_buf_fini(&body);
		return 1;
	}
	if (raw)
		fputs(json, stdout);
	else
		json_indent(json, stdout);
	fdo_buf_fini(&body);
	return 0;
}
