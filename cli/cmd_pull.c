/*
 * cli/cmd_pull.c — `fdoctl pull BINARY [--http URL] [--format F]
 * [--build-id ID] [--for-build-id HEX|newest] [--labels k=v,...] [--mix SPEC] [--window 7d]
 * [--half-life 3d] [--min-samples N] [--min-hosts N] [--min-span D]
 * [--min-fresh-share S] [--<emitter option> V]... [-o FILE]`: fetch a profile for a build. Its
 * flags and --help come from its option table below, followed by the
 * emitter options (--counts, --line-count, --head, --min-share, ...) of
 * the one table the server checks them against (aggregator/emit_opts.c,
 * through cli_emitter_table).
 *
 * The file is written to a temporary name and renamed, so a build never
 * sees half a profile. When the profile is not ready the reason goes to
 * stderr and the exit status is 3, so a pipeline can tell "no profile
 * yet" (3) from a failure (1) and usage errors (2).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/profile.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"

/* The selectors, then the emitter options: each a query parameter, sent
 * when given (fdod has the defaults). */
#define PULL_NSEL 11
struct cfg {
	struct cli_http http;
	char *out;
	char *param[PULL_NSEL + CLI_EMITTER_MAX];
};

#define PARAM(k) (offsetof(struct cfg, param) + (k) * sizeof(char *))

static const struct fdo_opt opts[] = {
	{"http", FDO_OPT_STRING, offsetof(struct cfg, http.url), NULL, "URL",
	 "fdod's HTTP API (default $FDOD_HTTP, else http://127.0.0.1:7471)"},
	CLI_HTTP_TIMEOUT_OPTS(struct cfg, http),
	{"o", FDO_OPT_STRING, offsetof(struct cfg, out), NULL, "FILE",
	 "write the profile to FILE (default: stdout)"},
	{"format", FDO_OPT_STRING, PARAM(0), NULL, "F",
	 "llvm (fdod's default), gcc, bolt, folded, pprof"},
	{"build-id", FDO_OPT_STRING, PARAM(1), NULL, "ID",
	 "only the stacks of that exact build (BOLT)"},
	{"for-build-id", FDO_OPT_STRING, PARAM(2), NULL, "HEX|newest",
	 "llvm, gcc: the profile matched onto that release (its executable "
	 "and DWARF uploaded; newest: the build-id fdod learnt of last); "
	 "what was fresh, matched, renamed and dropped goes to stderr"},
	{"labels", FDO_OPT_STRING, PARAM(3), NULL, "k=v,...",
	 "the label sets holding every pair"},
	{"mix", FDO_OPT_STRING, PARAM(4), NULL, "k=v*3,k=v*1",
	 "each selector its weight's share, whatever its traffic"},
	{"window", FDO_OPT_STRING, PARAM(5), NULL, "D",
	 "the last D (7d, 12h, ...)"},
	{"half-life", FDO_OPT_STRING, PARAM(6), NULL, "D",
	 "older samples count half every D"},
	{"min-samples", FDO_OPT_STRING, PARAM(7), NULL, "N",
	 "readiness rule instead of fdod's default"},
	{"min-hosts", FDO_OPT_STRING, PARAM(8), NULL, "N",
	 "readiness rule instead of fdod's default"},
	{"min-span", FDO_OPT_STRING, PARAM(9), NULL, "D",
	 "readiness rule instead of fdod's default"},
	{"min-fresh-share", FDO_OPT_STRING, PARAM(10), NULL, "S",
	 "readiness rule on the binary's staleness score (0 to 1) instead "
	 "of fdod's default"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_pull = {
	.name = "pull",
	.usage = "[OPTIONS] BINARY",
	.summary = "fetch a profile for a build (exit 3: not ready yet)",
	.about =
		"Fetches BINARY's profile from fdod (GET /v1/profiles/BINARY)."
		"\nWithout -o the profile goes to stdout. Exit status: 0 "
		"written,\n3 not ready yet (the rule that failed is printed), 1 "
		"error,\n2 usage. Each option from --format on is the query "
		"parameter of\nthe same name (--line-count is line_count=; "
		"docs/http.md,\nGET /v1/profiles/{binary}).\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.min_operands = 1,
	.max_operands = 1,
	.help_more = cli_emitter_help,
	.run = run,
};

static void url_escape(struct fdo_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-_.~:*", c))
			fdo_buf_putc(b, (char)c);
		else
			fdo_buf_printf(b, "%%%02X", c);
	}
}

static int pull(struct cfg *c, const struct fdo_opt *table, const char *binary);

/* header: fdo_header_value over the answer's header lines. */
static int header(const struct fdo_buf *h, const char *name, char *out,
		  size_t cap)
{
	return fdo_header_value(h->len ? h->data : "", h->len, name, out, cap);
}

/* With --for-build-id: what the matching did, from the answer's
 * X-Fdod-Stale-* headers (docs/http.md), on stderr. */
static void report_stale(const struct fdo_buf *h)
{
	static const char *const cls[] = {"Fresh", "Matched", "Renamed",
					  "Dropped"};
	char id[160], v[64], fns[160] = "";
	if (!header(h, "X-Fdod-For-Build-Id", id, sizeof id))
		return;
	fprintf(stderr, "fdoctl pull: matched onto %s:", id);
	for (size_t i = 0; i < sizeof cls / sizeof *cls; i++) {
		char name[32];
		snprintf(name, sizeof name, "X-Fdod-Stale-%s", cls[i]);
		if (header(h, name, v, sizeof v))
			fprintf(stderr, " %c%s %s", cls[i][0] + 'a' - 'A',
				cls[i] + 1, v);
	}
	header(h, "X-Fdod-Stale-Functions", fns, sizeof fns);
	fprintf(stderr, " of the profile's counts; functions %s\n", fns);
}

static int run(int argc, char **argv)
{
	const struct fdo_opt *table = cli_emitter_table(opts, PARAM(PULL_NSEL));
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_pull, table, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	rc = pull(&c, table, argv[1]);
	fdo_opts_fini(table, &c);
	return rc;
}

static int pull(struct cfg *c, const struct fdo_opt *table, const char *binary)
{
	struct fdo_buf path, body, hdr;
	fdo_buf_init(&path);
	fdo_buf_init(&body);
	fdo_buf_init(&hdr);
	c->http.headers = &hdr;
	fdo_buf_puts(&path, "/v1/profiles/");
	url_escape(&path, binary);
	/* The query: each parameter given, in the table's order, named as
	 * its flag with '_' for '-'. */
	int first = 1;
	for (const struct fdo_opt *o = table; o->name; o++) {
		if (o->offset < PARAM(0))
			continue;
		const char *v = *(char *const *)((const char *)c + o->offset);
		if (!v)
			continue;
		fdo_buf_putc(&path, first ? '?' : '&');
		for (const char *k = o->name; *k; k++)
			fdo_buf_putc(&path, *k == '-' ? '_' : *k);
		fdo_buf_putc(&path, '=');
		url_escape(&path, v);
		first = 0;
	}
	char err[512];
	int status = 0, ret = 1;
	int rc = cli_http_request(&c->http, "GET", fdo_buf_cstr(&path), -1,
				  &status, &body, err, sizeof err);
	if (rc) {
		fprintf(stderr, "fdoctl pull: %s\n", err);
		goto out;
	}
	if (status != 200) {
		fprintf(stderr, "fdoctl pull: %s: HTTP %d: %s", binary, status,
			fdo_buf_cstr(&body));
		/* 3 is "not ready yet" only: a readiness refusal's body
		 * starts {"ready":false. Another 409 (a for_build_id of
		 * another binary) will not change by waiting. */
		static const char not_ready[] = "{\"ready\":false";
		ret = status == 409 && !strncmp(fdo_buf_cstr(&body), not_ready,
						sizeof not_ready - 1)
			      ? 3
			      : 1;
		goto out;
	}
	report_stale(&hdr);
	const char *out_path = c->out;
	if (!out_path) {
		ret = fwrite(body.data, 1, body.len, stdout) == body.len &&
				      fflush(stdout) == 0
			      ? 0
			      : 1;
		goto out;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", out_path, (int)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f || fwrite(body.data, 1, body.len, f) != body.len || fflush(f) ||
	    fsync(fileno(f)) || fclose(f)) {
		fprintf(stderr, "fdoctl pull: cannot write %s: %s\n", tmp,
			strerror(errno));
		if (f)
			unlink(tmp);
		goto out;
	}
	if (rename(tmp, out_path)) {
		fprintf(stderr, "fdoctl pull: cannot rename to %s: %s\n",
			out_path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	fprintf(stderr, "fdoctl pull: wrote %s (%zu bytes)\n", out_path,
		body.len);
	ret = 0;
out:
	fdo_buf_fini(&path);
	fdo_buf_fini(&body);
	fdo_buf_fini(&hdr);
	return ret;
}
