/*
 * cli/cmd_pull.c — `fdoctl pull BINARY [--http URL] [--format F]
 * [--build-id ID] [--labels k=v,...] [--mix SPEC] [--window 7d]
 * [--half-life 3d] [--min-samples N] [--min-hosts N] [--min-span D]
 * [--<emitter option> V]... [-o FILE]`: fetch a profile for a build. The
 * emitter options (--counts, --line-count, --head, --min-share, ...) and
 * their help come from the one table the server checks them against
 * (aggregator/emit_opts.c).
 *
 * The file is written to a temporary name and renamed, so a build never
 * sees half a profile. When the profile is not ready the reason goes to
 * stderr and the exit status is 3, so a pipeline can tell "no profile
 * yet" (3) from a failure (1) and usage errors (2).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/profile.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"

/* "--line-count" for the option line_count. */
static void opt_flag(const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "--%s", name);
	for (char *c = buf + 2; *c; c++)
		if (*c == '_')
			*c = '-';
}

static void pull_usage(FILE *out)
{
	fprintf(out,
		"usage: fdoctl pull BINARY [--http URL] [--format llvm|gcc|bolt|"
		"folded|pprof]\n"
		"                   [--build-id ID] [--labels k=v,...] [--mix "
		"k=v*3,k=v*1]\n"
		"                   [--window 7d] [--half-life 3d] "
		"[--min-samples N]\n"
		"                   [--min-hosts N] [--min-span D]\n"
		"                   [--counts blocks|samples] [--line-count "
		"mean|sum|max]\n"
		"                   [--head entry|stacks] [--min-share F] "
		"[...] [-o FILE]\n\n"
		"Fetches BINARY's profile from fdod (GET /v1/profiles/BINARY).\n"
		"URL defaults to $FDOD_HTTP, else http://127.0.0.1:7471. Without\n"
		"-o the profile goes to stdout. Exit status: 0 written, 3 not\n"
		"ready yet (the rule that failed is printed), 1 error, 2 usage.\n"
		"\n"
		"Each option is the query parameter of the same name (docs/http.md,\n"
		"GET /v1/profiles/{binary}):\n"
		"  --format F        llvm (the default), gcc, bolt, folded, pprof\n"
		"  --build-id ID     only the stacks of that exact build (BOLT)\n"
		"  --labels k=v,...  the label sets holding every pair; --mix:\n"
		"                    each selector its weight's share, whatever\n"
		"                    its traffic\n"
		"  --window D        the last D (7d, 12h, ...); --half-life D:\n"
		"                    older samples count half every D\n"
		"  --min-samples N, --min-hosts N, --min-span D\n"
		"                    readiness rules instead of fdod's defaults\n"
		"\n"
		"What the emitters write (formats that read each one in [ ]):\n");
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		char flag[64], vals[96] = "";
		opt_flag(d->name, flag, sizeof flag);
		for (int i = 0; i < PROF_OPT_MAX_VALUES && d->values[i]; i++) {
			size_t n = strlen(vals);
			snprintf(vals + n, sizeof vals - n, "%s%s", i ? "|" : "",
				 d->values[i]);
		}
		fprintf(out, "  %s %s (default %s) [%s]\n      %s\n", flag,
			vals[0] ? vals
			: d->type == PROF_OPT_BOOL ? "0|1"
			: d->type == PROF_OPT_DOUBLE ? "F"
						      : "N",
			d->def, d->formats, d->help);
	}
}

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

int cmd_pull(int argc, char **argv)
{
	/* The selectors, then one flag per emitter option. */
	static const struct {
		const char *flag, *key;
	} selectors[] = {
		{"--format", "format"},       {"--build-id", "build_id"},
		{"--labels", "labels"},       {"--mix", "mix"},
		{"--window", "window"},       {"--half-life", "half_life"},
		{"--min-samples", "min_samples"}, {"--min-hosts", "min_hosts"},
		{"--min-span", "min_span"},
	};
	enum { NSEL = sizeof selectors / sizeof selectors[0], MAXP = 64 };
	struct {
		char flag[64];
		const char *key;
	} params[MAXP];
	size_t np = 0;
	for (size_t k = 0; k < NSEL; k++, np++) {
		snprintf(params[np].flag, sizeof params[np].flag, "%s",
			 selectors[k].flag);
		params[np].key = selectors[k].key;
	}
	for (const struct prof_opt_def *d = prof_opt_defs; d->name && np < MAXP;
	     d++, np++) {
		opt_flag(d->name, params[np].flag, sizeof params[np].flag);
		params[np].key = d->name;
	}
	const char *vals[MAXP] = {0};
	const char *http = NULL, *out_path = NULL, *binary = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			pull_usage(stdout);
			return 0;
		}
		const char *eq = strchr(a, '=');
		size_t fl = eq && a[0] == '-' ? (size_t)(eq - a) : strlen(a);
		const char *val = NULL;
		if (a[0] == '-') {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				fprintf(stderr, "fdoctl pull: %s needs a value\n", a);
				return 2;
			}
		}
		if (a[0] != '-') {
			if (binary) {
				pull_usage(stderr);
				return 2;
			}
			binary = a;
		} else if (fl == 6 && !strncmp(a, "--http", 6)) {
			http = val;
		} else if (fl == 2 && !strncmp(a, "-o", 2)) {
			out_path = val;
		} else {
			size_t k = 0;
			while (k < np && (strlen(params[k].flag) != fl ||
					  strncmp(a, params[k].flag, fl)))
				k++;
			if (k == np) {
				fprintf(stderr, "fdoctl pull: unknown option %.*s\n",
					(int)fl, a);
				pull_usage(stderr);
				return 2;
			}
			vals[k] = val;
		}
	}
	if (!binary) {
		pull_usage(stderr);
		return 2;
	}
	struct fdo_buf path, body;
	fdo_buf_init(&path);
	fdo_buf_init(&body);
	fdo_buf_puts(&path, "/v1/profiles/");
	url_escape(&path, binary);
	int first = 1;
	for (size_t k = 0; k < np; k++) {
		if (!vals[k])
			continue;
		fdo_buf_printf(&path, "%c%s=", first ? '?' : '&', params[k].key);
		url_escape(&path, vals[k]);
		first = 0;
	}
	char err[512];
	int status = 0, ret = 1;
	int rc = cli_http_request(cli_http_base(http), "GET",
				  fdo_buf_cstr(&path), -1, &status, &body, err,
				  sizeof err);
	if (rc) {
		fprintf(stderr, "fdoctl pull: %s\n", err);
		goto out;
	}
	if (status != 200) {
		fprintf(stderr, "fdoctl pull: %s: HTTP %d: %s", binary, status,
			fdo_buf_cstr(&body));
		ret = status == 409 ? 3 : 1;
		goto out;
	}
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
	if (!f || fwrite(body.data, 1, body.len, f) != body.len ||
	    fflush(f) || fsync(fileno(f)) || fclose(f)) {
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
	return ret;
}
