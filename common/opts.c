/*
 * common/opts.c — the option-table engine behind every program's flags,
 * config file and --help. Tables are small (tens of entries): linear scans.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/opts.h"

#define FIELD(cfg, o, T) ((T *)((char *)(cfg) + (o)->offset))

static const struct fdo_opt *opt_find(const struct fdo_opt *t, const char *name,
				      size_t len)
{
	for (; t->name; t++)
		if (strlen(t->name) == len && !strncmp(t->name, name, len))
			return t;
	return NULL;
}

int fdo_parse_uint(const char *text, uint64_t *out)
{
	if (!*text || !isdigit((unsigned char)*text))
		return FDO_EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end)
		return FDO_EINVAL;
	*out = v;
	return FDO_OK;
}

/* A number with one optional suffix from units[] (each with its factor). */
static int parse_scaled(const char *text, const char *suffixes,
			const uint64_t *factors, uint64_t *out)
{
	if (!*text || !isdigit((unsigned char)*text))
		return FDO_EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno)
		return FDO_EINVAL;
	uint64_t f = 1;
	if (*end) {
		const char *s = strchr(suffixes, *end);
		if (!s || end[1])
			return FDO_EINVAL;
		f = factors[s - suffixes];
	}
	if (v && f > UINT64_MAX / v)
		return FDO_EINVAL;
	*out = v * f;
	return FDO_OK;
}

int fdo_parse_duration(const char *text, uint64_t *seconds)
{
	static const uint64_t f[] = {1, 60, 3600, 86400, 604800};
	return parse_scaled(text, "smhdw", f, seconds);
}

int fdo_parse_size(const char *text, uint64_t *bytes)
{
	static const uint64_t f[] = {1ull << 10, 1ull << 20, 1ull << 30,
				     1ull << 40, 1ull << 10, 1ull << 20,
				     1ull << 30, 1ull << 40};
	return parse_scaled(text, "KMGTkmgt", f, bytes);
}

static int opt_apply(const struct fdo_opt *o, void *cfg, const char *value,
		     char *err, size_t errlen)
{
	int rc = FDO_OK;
	switch (o->type) {
	case FDO_OPT_STRING: {
		char *copy = strdup(value);
		if (!copy)
			return FDO_ENOMEM;
		free(*FIELD(cfg, o, char *));
		*FIELD(cfg, o, char *) = copy;
		break;
	}
	case FDO_OPT_LIST: {
		struct fdo_strlist *l = FIELD(cfg, o, struct fdo_strlist);
		char **items = realloc(l->items, (l->n + 1) * sizeof *items);
		if (!items)
			return FDO_ENOMEM;
		l->items = items;
		if (!(items[l->n] = strdup(value)))
			return FDO_ENOMEM;
		l->n++;
		break;
	}
	case FDO_OPT_UINT:
		rc = fdo_parse_uint(value, FIELD(cfg, o, uint64_t));
		break;
	case FDO_OPT_SIZE:
		rc = fdo_parse_size(value, FIELD(cfg, o, uint64_t));
		break;
	case FDO_OPT_DURATION:
		rc = fdo_parse_duration(value, FIELD(cfg, o, uint64_t));
		break;
	case FDO_OPT_DOUBLE: {
		char *end;
		errno = 0;
		double d = strtod(value, &end);
		if (errno || end == value || *end || !isfinite(d))
			rc = FDO_EINVAL;
		else
			*FIELD(cfg, o, double) = d;
		break;
	}
	case FDO_OPT_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "1") ||
		    !strcmp(value, "yes"))
			*FIELD(cfg, o, int) = 1;
		else if (!strcmp(value, "false") || !strcmp(value, "0") ||
			 !strcmp(value, "no"))
			*FIELD(cfg, o, int) = 0;
		else
			rc = FDO_EINVAL;
		break;
	}
	if (rc)
		snprintf(err, errlen, "bad value '%s' for %s", value, o->name);
	return rc;
}

/*
 * Within one source (the command line, or one config file), the first value
 * of a list option replaces what an earlier source (the defaults) gave it;
 * later values append.
 */
static int opt_apply_once(const struct fdo_opt *table, const struct fdo_opt *o,
			  void *cfg, const char *value, unsigned char *seen,
			  char *err, size_t errlen)
{
	size_t idx = (size_t)(o - table);
	if (o->type == FDO_OPT_LIST && idx < 64 && !seen[idx]) {
		struct fdo_strlist *l = FIELD(cfg, o, struct fdo_strlist);
		for (size_t k = 0; k < l->n; k++)
			free(l->items[k]);
		l->n = 0;
		seen[idx] = 1;
	}
	return opt_apply(o, cfg, value, err, errlen);
}

int fdo_opts_set(const struct fdo_opt *table, void *cfg, const char *name,
		 const char *value, char *err, size_t errlen)
{
	const struct fdo_opt *o = opt_find(table, name, strlen(name));
	if (!o) {
		snprintf(err, errlen, "unknown option '%s'", name);
		return FDO_EINVAL;
	}
	return opt_apply(o, cfg, value, err, errlen);
}

int fdo_opts_defaults(const struct fdo_opt *table, void *cfg, char *err,
		      size_t errlen)
{
	for (const struct fdo_opt *o = table; o->name; o++) {
		if (!o->def)
			continue;
		int rc = opt_apply(o, cfg, o->def, err, errlen);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

/*
 * The one argv loop. Options are matched by name (--name, and -X for a
 * one-letter name), boolean NAME also as --no-NAME. What is not an option
 * is an operand: with FDO_ARGV_PERMUTE it is moved to argv[1 + *nmoved]
 * and parsing goes on, else parsing stops there. *stop: the index of the
 * first argument left unparsed (all of them operands). help, when not
 * NULL: --help or -h in an option's place sets it and stops.
 */
static int parse_loop(const struct fdo_opt *table, void *cfg, int argc,
		      char **argv, unsigned flags, int *nmoved, int *stop,
		      int *help, char *err, size_t errlen)
{
	unsigned char seen[64] = {0};
	int i = 1, n = 0;
	for (; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		const struct fdo_opt *o = NULL;
		const char *eq = NULL;
		int negate = 0;
		if (a[0] == '-' && a[1] == '-') {
			const char *name = a + 2;
			eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			if (len > 1)
				o = opt_find(table, name, len);
			if (!o && !eq && len > 4 && !strncmp(name, "no-", 3)) {
				o = opt_find(table, name + 3, len - 3);
				negate = 1;
				if (o && o->type != FDO_OPT_BOOL)
					o = NULL;
			}
			if (!o && help && !strcmp(name, "help")) {
				*help = 1;
				break;
			}
		} else if (a[0] == '-' && a[1] && (!a[2] || a[2] == '=')) {
			o = opt_find(table, a + 1, 1);
			eq = a[2] ? a + 2 : NULL;
			if (!o && help && !strcmp(a, "-h")) {
				*help = 1;
				break;
			}
		}
		if (!o) {
			/* "-" alone is an operand (stdin); "-1" one where
			 * operands may start with a dash. */
			if (a[0] == '-' && a[1] &&
			    (a[1] == '-' || !(flags & FDO_ARGV_DASH_OPERAND))) {
				snprintf(err, errlen, "unknown option '%s'", a);
				return FDO_EINVAL;
			}
			if (!(flags & FDO_ARGV_PERMUTE))
				break;
			argv[1 + n++] = a;
			continue;
		}
		const char *value;
		if (eq)
			value = eq + 1;
		else if (o->type == FDO_OPT_BOOL)
			value = negate ? "false" : "true";
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			snprintf(err, errlen, "option '%s' needs a value", a);
			return FDO_EINVAL;
		}
		int rc =
			opt_apply_once(table, o, cfg, value, seen, err, errlen);
		if (rc)
			return rc;
	}
	*nmoved = n;
	*stop = i;
	return FDO_OK;
}

int fdo_opts_parse_args(const struct fdo_opt *table, void *cfg, int argc,
			char **argv, int *optind, char *err, size_t errlen)
{
	int nmoved;
	return parse_loop(table, cfg, argc, argv, FDO_ARGV_DASH_OPERAND,
			  &nmoved, optind, NULL, err, errlen);
}

int fdo_opts_parse_argv(const struct fdo_opt *table, void *cfg, int argc,
			char **argv, unsigned flags, int *noperands, int *help,
			char *err, size_t errlen)
{
	int n, stop;
	*help = 0;
	int rc = parse_loop(table, cfg, argc, argv, flags, &n, &stop, help, err,
			    errlen);
	if (rc)
		return rc;
	if (*help)
		stop = argc;
	for (int i = stop; i < argc; i++)
		argv[1 + n++] = argv[i];
	*noperands = n;
	return FDO_OK;
}

int fdo_opts_parse_file(const struct fdo_opt *table, void *cfg,
			const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open config %s: %s", path,
			 strerror(errno));
		return FDO_EIO;
	}
	char line[4096];
	unsigned char seen[64] = {0};
	int lineno = 0, rc = FDO_OK;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		char *end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = 0;
		if (!*p)
			continue;
		char *name = p;
		while (*p && !isspace((unsigned char)*p) && *p != '=')
			p++;
		char *name_end = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '=')
			p++;
		while (isspace((unsigned char)*p))
			p++;
		*name_end = 0;
		char msg[256];
		const struct fdo_opt *o = opt_find(table, name, strlen(name));
		if (!o) {
			snprintf(err, errlen, "%s:%d: unknown option '%s'",
				 path, lineno, name);
			rc = FDO_EINVAL;
			break;
		}
		rc = opt_apply_once(table, o, cfg, p, seen, msg, sizeof msg);
		if (rc) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			break;
		}
	}
	fclose(f);
	return rc;
}

const char *fdo_opts_find_arg(int argc, char **argv, const char *name)
{
	size_t len = strlen(name);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (strncmp(a, "--", 2) || strncmp(a + 2, name, len))
			continue;
		if (a[2 + len] == '=')
			return a + 3 + len;
		if (!a[2 + len] && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

int fdo_opts_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

/* "--name" or, for a one-letter name, "-n". */
static void opt_flag(const struct fdo_opt *o, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s", o->name[1] ? "--" : "-", o->name);
}

void fdo_opts_print_help(const struct fdo_opt *table, FILE *out)
{
	for (const struct fdo_opt *o = table; o->name; o++) {
		if (!o->help)
			continue;
		char flag[96], name[80];
		opt_flag(o, name, sizeof name);
		snprintf(flag, sizeof flag, "%s%s%s", name,
			 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		fprintf(out, "  %-28s %s", flag, o->help);
		int aliases = 0;
		for (const struct fdo_opt *a = table; a->name; a++) {
			if (a->help || a->offset != o->offset ||
			    a->type != o->type)
				continue;
			opt_flag(a, name, sizeof name);
			fprintf(out, "%s%s", aliases++ ? ", " : " (also ",
				name);
		}
		if (aliases)
			fputc(')', out);
		if (o->def && *o->def)
			fprintf(out, " (default: %s)", o->def);
		if (o->type == FDO_OPT_LIST)
			fprintf(out, " [repeatable]");
		fputc('\n', out);
	}
}

void fdo_opts_print_config(const struct fdo_opt *table, const void *cfg,
			   FILE *out)
{
	for (const struct fdo_opt *o = table; o->name; o++) {
		const void *f = (const char *)cfg + o->offset;
		if (!o->help)
			continue; /* an alias */
		fprintf(out, "# %s\n", o->help);
		switch (o->type) {
		case FDO_OPT_STRING:
			if (*(char *const *)f)
				fprintf(out, "%s = %s\n", o->name,
					*(char *const *)f);
			else
				fprintf(out, "# %s =\n", o->name);
			break;
		case FDO_OPT_LIST: {
			const struct fdo_strlist *l = f;
			for (size_t k = 0; k < l->n; k++)
				fprintf(out, "%s = %s\n", o->name, l->items[k]);
			if (!l->n)
				fprintf(out, "# %s =\n", o->name);
			break;
		}
		case FDO_OPT_UINT:
		case FDO_OPT_SIZE:
		case FDO_OPT_DURATION:
			fprintf(out, "%s = %llu\n", o->name,
				(unsigned long long)*(const uint64_t *)f);
			break;
		case FDO_OPT_DOUBLE:
			fprintf(out, "%s = %g\n", o->name, *(const double *)f);
			break;
		case FDO_OPT_BOOL:
			fprintf(out, "%s = %s\n", o->name,
				*(const int *)f ? "true" : "false");
			break;
		}
	}
}

void fdo_opts_fini(const struct fdo_opt *table, void *cfg)
{
	for (const struct fdo_opt *o = table; o->name; o++) {
		if (o->type == FDO_OPT_STRING) {
			free(*FIELD(cfg, o, char *));
			*FIELD(cfg, o, char *) = NULL;
		} else if (o->type == FDO_OPT_LIST) {
			struct fdo_strlist *l =
				FIELD(cfg, o, struct fdo_strlist);
			for (size_t k = 0; k < l->n; k++)
				free(l->items[k]);
			free(l->items);
			l->items = NULL;
			l->n = 0;
		}
	}
}
