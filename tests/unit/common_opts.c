/* Tests for common/opts.c: defaults < config file < command line. */
#include <stddef.h>
#include <stdlib.h>

#include "common/common.h"
#include "common/opts.h"
#include "tests/unit/test.h"

struct cfg {
	char *data;
	struct fdo_strlist listen;
	uint64_t workers, max_size, window;
	double weight;
	int verbose;
};

static const struct fdo_opt table[] = {
	{"data", FDO_OPT_STRING, offsetof(struct cfg, data), "./var/fdod",
	 "DIR", "data dir"},
	{"listen", FDO_OPT_LIST, offsetof(struct cfg, listen),
	 "tcp://127.0.0.1:7470", "URL", "listen"},
	{"workers", FDO_OPT_UINT, offsetof(struct cfg, workers), "2", "N",
	 "workers"},
	{"max-size", FDO_OPT_SIZE, offsetof(struct cfg, max_size), "1G",
	 "BYTES", "max"},
	{"window", FDO_OPT_DURATION, offsetof(struct cfg, window), "7d", "DUR",
	 "window"},
	{"weight", FDO_OPT_DOUBLE, offsetof(struct cfg, weight), "1.5", "W",
	 "weight"},
	{"verbose", FDO_OPT_BOOL, offsetof(struct cfg, verbose), "false", NULL,
	 "verbose"},
	{0},
};

TEST(defaults_apply)
{
	struct cfg c = {0};
	char err[256];
	REQUIRE(fdo_opts_defaults(table, &c, err, sizeof err) == FDO_OK);
	CHECK_EQ_STR(c.data, "./var/fdod");
	CHECK_EQ_INT(c.listen.n, 1);
	CHECK_EQ_INT(c.workers, 2);
	CHECK_EQ_INT(c.max_size, 1ull << 30);
	CHECK_EQ_INT(c.window, 7 * 86400);
	CHECK(c.weight == 1.5);
	CHECK_EQ_INT(c.verbose, 0);
	fdo_opts_fini(table, &c);
}

TEST(args_override_and_lists_replace_default)
{
	struct cfg c = {0};
	char err[256];
	REQUIRE(fdo_opts_defaults(table, &c, err, sizeof err) == FDO_OK);
	char *argv[] = {"prog",		"--listen",
			"ipc:///tmp/a", "--listen=tcp://[::1]:1",
			"--verbose",	"--workers=8",
			"rest",		NULL};
	int optind = 0;
	REQUIRE(fdo_opts_parse_args(table, &c, 7, argv, &optind, err,
				    sizeof err) == FDO_OK);
	CHECK_EQ_INT(optind, 6);
	CHECK_EQ_INT(c.listen.n, 2);
	CHECK_EQ_STR(c.listen.items[0], "ipc:///tmp/a");
	CHECK_EQ_INT(c.workers, 8);
	CHECK_EQ_INT(c.verbose, 1);
	fdo_opts_fini(table, &c);
}

TEST(bad_values_are_refused_with_the_option_named)
{
	struct cfg c = {0};
	char err[256];
	REQUIRE(fdo_opts_defaults(table, &c, err, sizeof err) == FDO_OK);
	char *a1[] = {"prog", "--workers", "-3"};
	int optind;
	CHECK(fdo_opts_parse_args(table, &c, 3, a1, &optind, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, "workers") != NULL);
	char *a2[] = {"prog", "--nope"};
	CHECK(fdo_opts_parse_args(table, &c, 2, a2, &optind, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, "--nope") != NULL);
	char *a3[] = {"prog", "--window"};
	CHECK(fdo_opts_parse_args(table, &c, 2, a3, &optind, err, sizeof err) ==
	      FDO_EINVAL);
	char *a4[] = {"prog", "--window=3x"};
	CHECK(fdo_opts_parse_args(table, &c, 2, a4, &optind, err, sizeof err) ==
	      FDO_EINVAL);
	char *a5[] = {"prog", "--max-size=99999999999999999999T"};
	CHECK(fdo_opts_parse_args(table, &c, 2, a5, &optind, err, sizeof err) ==
	      FDO_EINVAL);
	fdo_opts_fini(table, &c);
}

TEST(config_file_with_comments_and_line_numbers)
{
	char path[512];
	snprintf(path, sizeof path, "%s/fdod.conf", test_tmpdir());
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fprintf(f,
		"# comment\n\ndata = /srv/fdod  # trailing\nlisten tcp://0.0.0.0:1\nlisten = tcp://0.0.0.0:2\nweight=2.25\n");
	fclose(f);
	struct cfg c = {0};
	char err[256];
	REQUIRE(fdo_opts_defaults(table, &c, err, sizeof err) == FDO_OK);
	REQUIRE(fdo_opts_parse_file(table, &c, path, err, sizeof err) ==
		FDO_OK);
	CHECK_EQ_STR(c.data, "/srv/fdod");
	CHECK_EQ_INT(c.listen.n, 2);
	CHECK(c.weight == 2.25);
	f = fopen(path, "w");
	fprintf(f, "data = x\nbogus = 1\n");
	fclose(f);
	CHECK(fdo_opts_parse_file(table, &c, path, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, ":2:") != NULL);
	fdo_opts_fini(table, &c);
}

TEST(find_arg_before_parsing)
{
	char *argv[] = {"prog", "--data", "d", "--config=/etc/x.conf"};
	CHECK_EQ_STR(fdo_opts_find_arg(4, argv, "config"), "/etc/x.conf");
	CHECK(fdo_opts_find_arg(4, argv, "listen") == NULL);
	char *h[] = {"prog", "--x", "--help"};
	CHECK(fdo_opts_wants_help(3, h));
}

/* A subcommand's table: a one-letter option, aliases, a boolean. */
struct sub {
	char *elf, *out;
	int demangle, json;
};

static const struct fdo_opt sub_table[] = {
	{"elf", FDO_OPT_STRING, offsetof(struct sub, elf), NULL, "FILE", "elf"},
	{"obj", FDO_OPT_STRING, offsetof(struct sub, elf), NULL, "FILE", NULL},
	{"o", FDO_OPT_STRING, offsetof(struct sub, out), NULL, "FILE", "out"},
	{"demangle", FDO_OPT_BOOL, offsetof(struct sub, demangle), "true", NULL,
	 "demangle"},
	{"C", FDO_OPT_BOOL, offsetof(struct sub, demangle), NULL, NULL, NULL},
	{"json", FDO_OPT_BOOL, offsetof(struct sub, json), "false", NULL,
	 "json"},
	{0},
};

TEST(argv_permutes_operands_and_takes_both_value_forms)
{
	struct sub s = {0};
	char err[256];
	REQUIRE(fdo_opts_defaults(sub_table, &s, err, sizeof err) == FDO_OK);
	char *argv[] = {"pull", "BIN",		 "--obj=a.out", "-o", "x.prof",
			"-",	"--no-demangle", "--json",	"--", "--elf",
			NULL};
	int n, help;
	REQUIRE(fdo_opts_parse_argv(sub_table, &s, 10, argv, FDO_ARGV_PERMUTE,
				    &n, &help, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(help, 0);
	CHECK_EQ_STR(s.elf, "a.out");
	CHECK_EQ_STR(s.out, "x.prof");
	CHECK_EQ_INT(s.demangle, 0);
	CHECK_EQ_INT(s.json, 1);
	REQUIRE(n == 3);
	CHECK_EQ_STR(argv[1], "BIN");
	CHECK_EQ_STR(argv[2], "-");
	CHECK_EQ_STR(argv[3], "--elf");
	char *again[] = {"pull", "-o=y", "-C", "--elf", "e", NULL};
	REQUIRE(fdo_opts_parse_argv(sub_table, &s, 5, again, FDO_ARGV_PERMUTE,
				    &n, &help, err, sizeof err) == FDO_OK);
	CHECK_EQ_STR(s.out, "y");
	CHECK_EQ_STR(s.elf, "e");
	CHECK_EQ_INT(s.demangle, 1);
	CHECK_EQ_INT(n, 0);
	fdo_opts_fini(sub_table, &s);
}

TEST(argv_without_permute_stops_at_the_first_operand)
{
	struct sub s = {0};
	char err[256];
	char *argv[] = {"symbolize", "--elf", "e", "-1",
			"--json",    "0x10",  NULL};
	int n, help;
	REQUIRE(fdo_opts_parse_argv(sub_table, &s, 6, argv,
				    FDO_ARGV_DASH_OPERAND, &n, &help, err,
				    sizeof err) == FDO_OK);
	CHECK_EQ_INT(s.json, 0);
	REQUIRE(n == 3);
	CHECK_EQ_STR(argv[1], "-1");
	CHECK_EQ_STR(argv[2], "--json");
	CHECK_EQ_STR(argv[3], "0x10");
	/* Without FDO_ARGV_DASH_OPERAND "-1" is an unknown option. */
	char *bad[] = {"push", "-1", NULL};
	CHECK(fdo_opts_parse_argv(sub_table, &s, 2, bad, 0, &n, &help, err,
				  sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "'-1'") != NULL);
	char *neg[] = {"x", "--no-elf", NULL};
	CHECK(fdo_opts_parse_argv(sub_table, &s, 2, neg, 0, &n, &help, err,
				  sizeof err) == FDO_EINVAL);
	char *novalue[] = {"x", "-o", NULL};
	CHECK(fdo_opts_parse_argv(sub_table, &s, 2, novalue, 0, &n, &help, err,
				  sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "needs a value") != NULL);
	fdo_opts_fini(sub_table, &s);
}

TEST(argv_help_stops_parsing_where_an_option_may_stand)
{
	struct sub s = {0};
	char err[256];
	int n, help;
	char *a[] = {"x", "BIN", "-h", "--bogus", NULL};
	REQUIRE(fdo_opts_parse_argv(sub_table, &s, 4, a, FDO_ARGV_PERMUTE, &n,
				    &help, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(help, 1);
	/* As an option's value, or after the options end, it is not. */
	char *b[] = {"x", "--elf", "--help", "0x1", "--help", NULL};
	REQUIRE(fdo_opts_parse_argv(sub_table, &s, 5, b, 0, &n, &help, err,
				    sizeof err) == FDO_OK);
	CHECK_EQ_INT(help, 0);
	CHECK_EQ_STR(s.elf, "--help");
	CHECK_EQ_INT(n, 2);
	fdo_opts_fini(sub_table, &s);
}

TEST(help_names_aliases_and_one_letter_flags)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	REQUIRE(f);
	fdo_opts_print_help(sub_table, f);
	fclose(f);
	CHECK(strstr(text, "--elf FILE") != NULL);
	CHECK(strstr(text, "(also --obj)") != NULL);
	CHECK(strstr(text, "  -o FILE ") != NULL);
	CHECK(strstr(text, "(also -C) (default: true)") != NULL);
	CHECK(strstr(text, "--obj FILE") == NULL); /* no line of its own */
	free(text);
}
