/*
 * common/opts.h — one option table per program, from which the command-line
 * parser, the config-file parser and --help all come (no option is described
 * twice). Precedence: default < config file < command line.
 *
 * A table entry names a field of the program's config struct by offset:
 *
 *   static const struct fdo_opt opts[] = {
 *     {"data", FDO_OPT_STRING, offsetof(struct cfg, data), "./var/fdod",
 *      "DIR", "directory of the store and the symbol files"},
 *     ...
 *     {0}
 *   };
 *
 * Config file syntax: one `name = value` (or `name value`) per line, `#`
 * starts a comment, blank lines ignored; a list option may repeat.
 *
 * On the command line a one-letter name is spelled -X (`-o FILE`), a
 * boolean NAME may also be cleared with --no-NAME, and an entry whose help
 * is NULL is an alias: it sets the field of the entry with the same
 * offset and type, and --help names it there ("(also --obj)").
 * Not thread safe: call from main before threads start.
 */
#ifndef FDO_OPTS_H
#define FDO_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum fdo_opt_type {
	FDO_OPT_STRING, /* char *, owned by the config (free with fdo_opts_fini) */
	FDO_OPT_LIST, /* struct fdo_strlist, repeatable */
	FDO_OPT_UINT, /* uint64_t, decimal */
	FDO_OPT_SIZE, /* uint64_t bytes; suffixes K M G T (powers of 1024) */
	FDO_OPT_DURATION, /* uint64_t seconds; suffixes s m h d w */
	FDO_OPT_DOUBLE,	  /* double */
	FDO_OPT_BOOL, /* int 0/1; flag form --name sets 1, value true/false */
};

struct fdo_strlist {
	char **items;
	size_t n;
};

struct fdo_opt {
	const char *name; /* long flag without "--", and config key */
	enum fdo_opt_type type;
	size_t offset;	     /* offsetof(config struct, field) */
	const char *def;     /* default in text form, NULL for none */
	const char *metavar; /* shown in --help ("DIR", "URL") */
	const char *help;
};

/* fdo_opts_defaults sets every field of cfg to its table default. */
int fdo_opts_defaults(const struct fdo_opt *table, void *cfg, char *err,
		      size_t errlen);

/*
 * fdo_opts_parse_args applies `--name value`, `--name=value` and bare
 * `--flag` for booleans. Stops at the first non-option argument or `--`;
 * *optind receives its index. Returns FDO_OK or FDO_EINVAL with a message.
 * `--help` is not handled here: look for it with fdo_opts_wants_help.
 */
int fdo_opts_parse_args(const struct fdo_opt *table, void *cfg, int argc,
			char **argv, int *optind, char *err, size_t errlen);

/* How fdo_opts_parse_argv reads what is not an option (an operand). */
#define FDO_ARGV_PERMUTE 1u /* options may follow operands */
#define FDO_ARGV_DASH_OPERAND                                                  \
	2u /* an unknown "-x" is an operand, not an
				  * unknown option ("-1" to symbolize) */

/*
 * fdo_opts_parse_argv parses a subcommand's arguments (argv[0] is its
 * name) as fdo_opts_parse_args does, and: "-" alone and everything after
 * `--` are operands; without FDO_ARGV_PERMUTE the first operand ends the
 * options, with it options and operands may mix (`pull BINARY --http
 * URL`). The operands are moved, in order, to argv[1..*noperands]. --help
 * or -h in an option's place sets *help and ends parsing (unless the
 * table has such an entry). Returns FDO_OK or FDO_EINVAL with a message.
 */
int fdo_opts_parse_argv(const struct fdo_opt *table, void *cfg, int argc,
			char **argv, unsigned flags, int *noperands, int *help,
			char *err, size_t errlen);

/* fdo_opts_parse_file applies a config file; errors name the line. */
int fdo_opts_parse_file(const struct fdo_opt *table, void *cfg,
			const char *path, char *err, size_t errlen);

/* fdo_opts_set applies one name=value (from a flag or a config line). */
int fdo_opts_set(const struct fdo_opt *table, void *cfg, const char *name,
		 const char *value, char *err, size_t errlen);

/* fdo_opts_find_arg returns the value of `--name V`/`--name=V` in argv,
 * or NULL. Used to find --config before the rest is parsed. */
const char *fdo_opts_find_arg(int argc, char **argv, const char *name);
int fdo_opts_wants_help(int argc, char **argv);

/* fdo_opts_print_help writes one entry per option with its aliases and
 * its default. */
void fdo_opts_print_help(const struct fdo_opt *table, FILE *out);
/* fdo_opts_print_config writes the effective values in config-file form. */
void fdo_opts_print_config(const struct fdo_opt *table, const void *cfg,
			   FILE *out);

/* fdo_opts_fini frees the strings and lists the table's fields own. */
void fdo_opts_fini(const struct fdo_opt *table, void *cfg);

/* Parse helpers shared with query strings ("7d", "64M"). */
int fdo_parse_duration(const char *text, uint64_t *seconds);
int fdo_parse_size(const char *text, uint64_t *bytes);
int fdo_parse_uint(const char *text, uint64_t *out);

#endif
