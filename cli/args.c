/*
 * cli/args.c — how every fdoctl subcommand reads its arguments and prints
 * its --help: from its option table (common/opts.c), so that `--flag
 * value`, `--flag=value`, the defaults and the help are the same
 * everywhere and each option is described once. Also the emitter options'
 * flags, which pull and emit both take from aggregator/emit_opts.c's
 * table.
 *
 * Workload: one subcommand per process, tens of options.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/profile.h"
#include "cli/cli.h"
#include "common/common.h"

static void usage_line(const struct cli_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: fdoctl %s %s\n", cmd->name, cmd->usage);
}

void cli_help(const struct cli_cmd *cmd, FILE *out)
{
	usage_line(cmd, out);
	fprintf(out, "\n%s\noptions:\n", cmd->about);
	fdo_opts_print_help(cmd->opts, out);
	fprintf(out, "  %-28s %s\n", "--help", "print this help (also -h)");
	if (cmd->help_more)
		cmd->help_more(out);
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fdoctl %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage_line(cmd, stderr);
	fprintf(stderr, "`fdoctl %s --help` lists the options.\n", cmd->name);
	return 2;
}

int cli_args_parse(const struct cli_cmd *cmd, const struct fdo_opt *table,
		   void *cfg, int argc, char **argv, int *noperands)
{
	char err[512];
	int help = 0, n = 0, rc;
	if (fdo_opts_defaults(table, cfg, err, sizeof err) ||
	    fdo_opts_parse_argv(table, cfg, argc, argv, cmd->argv_flags, &n,
				&help, err, sizeof err))
		rc = cli_usage_error(cmd, "%s", err);
	else if (help) {
		cli_help(cmd, stdout);
		rc = 0;
	} else if (n < cmd->min_operands)
		rc = cli_usage_error(cmd, "%s",
				     n ? "too few arguments"
				       : "no argument given");
	else if (cmd->max_operands >= 0 && n > cmd->max_operands)
		rc = cli_usage_error(cmd, "unexpected argument '%s'",
				     argv[1 + cmd->max_operands]);
	else {
		*noperands = n;
		return CLI_RUN;
	}
	fdo_opts_fini(table, cfg);
	return rc;
}

/* --- the emitter options --------------------------------------------- */

/* "--line-count" for the option line_count. */
static void emitter_flag(const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "--%s", name);
	for (char *c = buf + 2; *c; c++)
		if (*c == '_')
			*c = '-';
}

const struct fdo_opt *cli_emitter_table(const struct fdo_opt *base,
					size_t values)
{
	enum { BASE_MAX = 32 };
	static struct fdo_opt table[BASE_MAX + CLI_EMITTER_MAX + 1];
	static char names[CLI_EMITTER_MAX][48];
	size_t n = 0;
	for (; base[n].name; n++) {
		assert(n < BASE_MAX);
		table[n] = base[n];
	}
	for (size_t k = 0; prof_opt_defs[k].name; k++, n++) {
		assert(k < CLI_EMITTER_MAX);
		const struct prof_opt_def *d = &prof_opt_defs[k];
		emitter_flag(d->name, names[k], sizeof names[k]);
		table[n] = (struct fdo_opt){
			.name = names[k] + 2,
			.type = FDO_OPT_STRING,
			.offset = values + k * sizeof(char *),
			.metavar = "V",
			.help = d->help,
		};
	}
	table[n] = (struct fdo_opt){0};
	return table;
}

void cli_emitter_help(FILE *out)
{
	fprintf(out, "\nWhat the emitters write (formats that read each one in "
		     "[ ]):\n");
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		char flag[64], vals[96] = "";
		emitter_flag(d->name, flag, sizeof flag);
		for (int i = 0; i < PROF_OPT_MAX_VALUES && d->values[i]; i++) {
			size_t n = strlen(vals);
			snprintf(vals + n, sizeof vals - n, "%s%s",
				 i ? "|" : "", d->values[i]);
		}
		fprintf(out, "  %s %s (default %s) [%s]\n      %s\n", flag,
			vals[0]			     ? vals
			: d->type == PROF_OPT_BOOL   ? "0|1"
			: d->type == PROF_OPT_DOUBLE ? "F"
						     : "N",
			d->def, d->formats, d->help);
	}
}
