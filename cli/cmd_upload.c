/*
 * cli/cmd_upload.c — `fdoctl upload`: put ELF executables and separate debug
 * files into fdod's symbol store, keyed by their GNU build-id.
 *
 * Local mode (--data DIR, the default ./var/fdod) writes the symbol tree and
 * the store's buildids table directly; it is safe while fdod runs on the
 * same directory (LMDB locks across processes, files are placed
 * atomically). --http goes through the daemon (not built yet).
 *
 * Output: one line per file, in argument order, on stdout:
 *   stored <build-id> <slots> <file>     at least one slot written
 *   present <build-id> <slots> <file>    every slot was already there
 * and on stderr for a file that was refused or failed:
 *   error: <file>: <reason>
 * <slots> is executable, debuginfo or executable+debuginfo. Exit 0 when
 * every file is stored or present, 1 when any failed, 2 on usage errors.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"
#include "storage/storage.h"

static const char usage_text[] =
    "usage: fdoctl upload [--http URL | --data DIR] [--binary NAME] "
    "FILE...\n"
    "\n"
    "Store ELF executables, shared objects and separate debug files by\n"
    "their GNU build-id, for delayed symbolization and debuginfod.\n"
    "\n"
    "  --data DIR     write into the data directory DIR (default "
    "./var/fdod)\n"
    "  --http URL     upload through a running fdod's HTTP API\n"
    "  --binary NAME  the binary name these build-ids belong to\n"
    "  --help         this text\n"
    "\n"
    "One line per file: `stored|present <build-id> <slots> <file>`, or\n"
    "`error: <file>: <reason>` on stderr. Exit 1 if any file failed.\n";

static const char *slots_text(unsigned slots)
{
	switch (slots & (STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO)) {
	case STORE_SYM_EXECUTABLE:
		return "executable";
	case STORE_SYM_DEBUGINFO:
		return "debuginfo";
	case STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO:
		return "executable+debuginfo";
	default:
		return "-";
	}
}

/* take_value handles "--opt VALUE" and "--opt=VALUE"; returns 1 when argv[*i]
 * is opt (value in *out, NULL if missing), 0 otherwise. */
static int take_value(int argc, char **argv, int *i, const char *opt,
                      const char **out)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n))
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	*out = *i + 1 < argc ? argv[++*i] : NULL;
	return 1;
}

int cmd_upload(int argc, char **argv)
{
	const char *data = NULL, *http = NULL, *binary = NULL;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (take_value(argc, argv, &i, "--data", &v) ||
		    take_value(argc, argv, &i, "--http", &v) ||
		    take_value(argc, argv, &i, "--binary", &v)) {
			if (!v || !v[0]) {
				fprintf(stderr,
				        "fdoctl upload: %s needs a value\n", a);
				return 2;
			}
			if (!strncmp(a, "--data", 6))
				data = v;
			else if (!strncmp(a, "--http", 6))
				http = v;
			else
				binary = v;
			continue;
		}
		if (a[0] == '-' && a[1]) {
			fprintf(stderr,
			        "fdoctl upload: unknown option '%s'\n%s", a,
			        usage_text);
			return 2;
		}
		break;
	}
	if (data && http) {
		fprintf(stderr,
		        "fdoctl upload: give --http or --data, not both\n");
		return 2;
	}
	if (i >= argc) {
		fprintf(stderr, "fdoctl upload: no FILE given\n%s", usage_text);
		return 2;
	}
	if (http) {
		fprintf(stderr, "fdoctl upload: --http needs the daemon's HTTP "
		                "API (not built yet)\n");
		return 2;
	}
	if (!data)
		data = "./var/fdod";

	fdo_log_set_level(FDO_LOG_WARN);
	store *s = NULL;
	struct store_opts opts = {.dir = data};
	int rc = store_open(&opts, &s);
	if (rc) {
		fprintf(stderr,
		        "fdoctl upload: cannot open the store in %s: %s\n",
		        data, fdo_strerror(rc));
		return 1;
	}
	int failed = 0;
	for (; i < argc; i++) {
		struct store_sym_result res;
		rc = store_symbols_add_file(s, data, argv[i], binary, &res);
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		fdo_hex_encode(res.elf.build_id, res.elf.build_id_len, hex);
		if (rc == FDO_OK) {
			printf("stored %s %s %s\n", hex, slots_text(res.stored),
			       argv[i]);
		} else if (rc == FDO_EEXISTS) {
			printf("present %s %s %s\n", hex,
			       slots_text(res.present), argv[i]);
		} else {
			fflush(stdout);
			fprintf(stderr, "error: %s: %s\n", argv[i],
			        res.why[0] ? res.why : fdo_strerror(rc));
			failed = 1;
		}
	}
	fflush(stdout);
	store_close(s);
	return failed ? 1 : 0;
}
