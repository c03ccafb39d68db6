/*
 * cli/fdoctl.c — fdoctl, the command-line client of fdod: a table of
 * subcommands, each in its own cli/cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{"upload", cmd_upload,
	 "upload    [--http URL | --data DIR] [--binary NAME] FILE...\n"
	 "          store ELF executables and debug files by build-id"},
	{"push", cmd_push,
	 "push      [--url URL] FILE|-\n"
	 "          send one batch in the text form and print its Ack"},
	{"import", cmd_import,
	 "import    [--url URL] [--binary NAME] [--label k=v]... [--perf PATH]\n"
	 "          (perf.data | --script FILE [--build-ids FILE])\n"
	 "          send a perf recording (callchains, LBR branch stacks)"},
	{"pull", cmd_pull,
	 "pull      BINARY [--http URL] [--format llvm|gcc|bolt|folded|pprof]\n"
	 "          [--build-id ID] [--labels k=v,...] [--window 7d]\n"
	 "          [--half-life 3d] [-o FILE]\n"
	 "          fetch a profile for a build (exit 3: not ready yet)"},
	{"backup", cmd_backup,
	 "backup    [--http URL | --data DIR] DEST\n"
	 "          consistent, compacted copy of the store while fdod runs"},
	{"status", cmd_status,
	 "status    [--http URL] [--json]\n"
	 "          fdod's health, ingest counters and pending backlog"},
	{"emit", cmd_emit,
	 "emit      --elf FILE --fdata FILE [--format llvm|gcc|bolt] [-o FILE]\n"
	 "          a profile from exact branch counts (llvm-bolt -instrument)"},
	{"symbolize", cmd_symbolize,
	 "symbolize --elf FILE [--debug-file FILE] [--output-style=LLVM|JSON]\n"
	 "          [--file-offsets] [--no-demangle] [ADDR...]\n"
	 "          addresses to functions, files, lines and inline chains"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
	fprintf(out, "usage: fdoctl COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "\n`fdoctl COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "fdoctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
