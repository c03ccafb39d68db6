/*
 * cli/cmd_status.c — `fdoctl status [--http URL] [--json]`: fdod's health,
 * ingest and symbolization figures and the pending backlog, from
 * GET /v1/status; indented for people, raw with --json.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"

struct cfg {
	struct cli_http http;
	int json;
};

static const struct fdo_opt opts[] = {
	{"http", FDO_OPT_STRING, offsetof(struct cfg, http.url), NULL, "URL",
	 "fdod's HTTP API (default $FDOD_HTTP, else http://127.0.0.1:7471)"},
	CLI_HTTP_TIMEOUT_OPTS(struct cfg, http),
	{"json", FDO_OPT_BOOL, offsetof(struct cfg, json), "false", NULL,
	 "print the JSON as fdod sent it, not indented"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_status = {
	.name = "status",
	.usage = "[--http URL] [--json]",
	.summary = "fdod's health, ingest counters and pending backlog",
	.about = "Prints fdod's GET /v1/status: store size, ingest counters,\n"
		 "symbolizer and DWARF-cache figures, pending addresses per\n"
		 "build-id.\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.max_operands = 0,
	.run = run,
};

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

static int run(int argc, char **argv)
{
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_status, opts, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	int ret = 1;
	struct fdo_buf body;
	fdo_buf_init(&body);
	char err[512];
	int status = 0;
	rc = cli_http_request(&c.http, "GET", "/v1/status", -1, &status, &body,
			      err, sizeof err);
	const char *json = fdo_buf_cstr(&body);
	if (rc)
		fprintf(stderr, "fdoctl status: %s\n", err);
	else if (status != 200)
		fprintf(stderr, "fdoctl status: HTTP %d: %s\n", status, json);
	else {
		if (c.json)
			fputs(json, stdout);
		else
			json_indent(json, stdout);
		ret = 0;
	}
	fdo_buf_fini(&body);
	fdo_opts_fini(opts, &c);
	return ret;
}
