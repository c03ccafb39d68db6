/*
 * cli/fdoctl.c — fdoctl, the command-line client of fdod: a table of
 * subcommands, each a struct cli_cmd in its own cli/cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_cmd *const commands[] = {
	&cli_cmd_upload, &cli_cmd_push,	  &cli_cmd_import, &cli_cmd_pull,
	&cli_cmd_backup, &cli_cmd_status, &cli_cmd_emit,   &cli_cmd_symbolize,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct cli_cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i]->name))
			return commands[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fdoctl COMMAND [OPTIONS] [ARGUMENTS]\n\n"
		     "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i]->name,
			commands[i]->summary);
	fprintf(out, "\n`fdoctl COMMAND --help` (or `fdoctl help COMMAND`) "
		     "describes a command and its options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const struct cli_cmd *cmd;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		if (argc > 2 && (cmd = find(argv[2])))
			cli_help(cmd, stdout);
		else
			usage(stdout);
		return 0;
	}
	if ((cmd = find(argv[1])))
		return cmd->run(argc - 1, argv + 1);
	fprintf(stderr, "fdoctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
