/*
 * cli/cli.h — fdoctl's subcommands and what they share. Each subcommand
 * lives in cli/cmd_<name>.c as a struct cli_cmd: its option table (a
 * common/opts.c table, from which its flags and its --help both come) and
 * its run function, called with argv[0] = the subcommand name. Exit codes:
 * 0 success, 1 the operation failed, 2 usage error (pull: 3 not ready).
 * Single-threaded: one subcommand per process.
 */
#ifndef FDO_CLI_H
#define FDO_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/opts.h"
#include "schemas/schemas.h"

struct cli_cmd {
	const char *name;
	const char *usage;	    /* what follows "usage: fdoctl NAME " */
	const char *summary;	    /* its line in `fdoctl --help` */
	const char *about;	    /* the help between the usage line and the
			      * options */
	const struct fdo_opt *opts; /* the options --help lists */
	unsigned argv_flags;	    /* FDO_ARGV_* */
	int min_operands, max_operands; /* max -1: any number */
	void (*help_more)(FILE *out);	/* after the options, or NULL */
	int (*run)(int argc, char **argv);
};

extern const struct cli_cmd cli_cmd_upload, cli_cmd_push, cli_cmd_import,
	cli_cmd_pull, cli_cmd_backup, cli_cmd_status, cli_cmd_emit,
	cli_cmd_symbolize;

/* What cli_args_parse returns when the subcommand should go on. */
#define CLI_RUN (-1)

/*
 * cli_args_parse sets cfg (zeroed by the caller) to table's defaults and
 * applies argv (cli/args.c; table is cmd->opts, or a larger table built
 * from it). On success it returns CLI_RUN with the operands in
 * argv[1..*noperands] (their number checked against cmd's bounds); the
 * caller releases cfg with fdo_opts_fini(table, cfg). Otherwise cfg is
 * released and it returns the exit code: 0 after printing the help on
 * stdout (--help, -h), 2 after printing a usage error on stderr.
 */
int cli_args_parse(const struct cli_cmd *cmd, const struct fdo_opt *table,
		   void *cfg, int argc, char **argv, int *noperands);

/* cli_usage_error prints "fdoctl NAME: message" and cmd's usage line on
 * stderr; returns 2. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cli_help prints cmd's --help: usage, about, options, help_more. */
void cli_help(const struct cli_cmd *cmd, FILE *out);

/*
 * The emitter options (aggregator/emit_opts.c's prof_opt_defs) as flags
 * of pull and emit: --line-count for line_count, a string each.
 * cli_emitter_table returns base's entries followed by one entry per
 * emitter option, whose value goes to ((char **)(cfg + values))[k] for
 * prof_opt_defs[k] (NULL when not given); the config struct has room for
 * CLI_EMITTER_MAX of them. The table is static, built on the first call.
 * cli_emitter_help prints them with their values, defaults, the formats
 * that read them and their help.
 */
#define CLI_EMITTER_MAX 32
const struct fdo_opt *cli_emitter_table(const struct fdo_opt *base,
					size_t values);
void cli_emitter_help(FILE *out);

/* --- HTTP (cli/http_client.c, on libcurl) --- */

/* The HTTP client's settings, as options of the subcommands that use it. */
struct cli_http {
	char *url; /* --http; NULL/"": $FDOD_HTTP, else the default */
	uint64_t connect_timeout; /* seconds */
	uint64_t max_time;	  /* seconds per request; 0: no limit */
	/* The final answer's header lines ("Name: value\r\n" each, the
	 * status line first; a proxy's or redirect's answer before it and
	 * trailers after are not kept), up to the first line that would
	 * pass CLI_HTTP_MAX_HEADERS bytes; NULL: not kept. */
	struct fdo_buf *headers;
};
#define CLI_HTTP_MAX_HEADERS (64u << 10)

/* An option table's rows, one entry a row (tests/ingest/test_fdoctl.py
 * reads them). */
/* clang-format off */
#define CLI_HTTP_TIMEOUT_OPTS(type, field)                                     \
	{"connect-timeout", FDO_OPT_DURATION,                                  \
	 offsetof(type, field.connect_timeout), "30s", "DURATION",             \
	 "give up connecting to fdod's HTTP API after this long"},             \
	{"max-time", FDO_OPT_DURATION, offsetof(type, field.max_time), "0",    \
	 "DURATION",                                                           \
	 "give up an HTTP request after this long (0: no limit; one that "     \
	 "stalls for 5 minutes fails)"}
/* clang-format on */

/* cli_http_base: url if given, else $FDOD_HTTP, else the default URL. */
const char *cli_http_base(const char *url);

/*
 * cli_http_request sends METHOD base+path to the fdod of h (base:
 * cli_http_base(h->url)), with $FDOD_TOKEN_FILE's or $FDOD_TOKEN's token
 * and the file open on body_fd streamed as the body (-1: no body; a
 * regular file goes with its Content-Length, anything else chunked), and
 * reads the answer's body into out (at most 1 GiB) and, when h->headers
 * is set, its header lines there. *status gets the HTTP
 * status. https:// is verified against $FDOD_CA_FILE, else the system's
 * CA store; proxies come from the environment (http_proxy, https_proxy,
 * no_proxy). Returns FDO_OK (whatever the status), or FDO_ETRANSPORT /
 * FDO_EIO / FDO_ENOMEM with err set (libcurl's own message included).
 * Blocks up to h's timeouts.
 */
int cli_http_request(const struct cli_http *h, const char *method,
		     const char *path, int body_fd, int *status,
		     struct fdo_buf *out, char *err, size_t errlen);

/*
 * cli_upload_http puts each of files[0..nfiles) into the symbol store of
 * the fdod of h (PUT /v1/symbols, streamed from disk; binary: the
 * binary= of the upload, may be NULL; replace: ?replace=1) and prints one
 * line per file as `fdoctl upload` does (stored/present/replaced on
 * stdout, `error: FILE: reason` on stderr). Returns 0 when every file is
 * stored or present, 1 otherwise. Blocks (cli/cmd_upload.c).
 */
int cli_upload_http(const struct cli_http *h, const char *binary, int replace,
		    int nfiles, char **files);

/* Sending SampleBatches to fdod (cli/batch_send.c). */
#define CLI_BATCH_DEFAULT_URL "tcp://127.0.0.1:7470"

/* cli_batch_url: flag if given, else $FDOD_URL, else the default. */
const char *cli_batch_url(const char *flag);

/* An nng REQ socket dialed to fdod's ingest address, with the API token of
 * $FDOD_TOKEN_FILE or $FDOD_TOKEN. */
struct cli_sender;

/*
 * cli_sender_open dials url (nonblocking: a refused connection shows as a
 * timeout of the first send). timeout_ms bounds each wait for an Ack. who
 * prefixes the messages printed on stderr ("fdoctl push"); url and who
 * must outlive the sender. Returns FDO_OK, FDO_EIO (token file unreadable),
 * FDO_ETRANSPORT (printed) or FDO_ENOMEM.
 */
int cli_sender_open(const char *url, int timeout_ms, const char *who,
		    struct cli_sender **out);

/*
 * cli_sender_send encodes batch with the token and sends it; without an
 * answer within timeout_ms it sends the same bytes again, three times in
 * all. *ack: fdod's answer, freed by the caller with wire_ack_free (its
 * status may be an error). Returns FDO_OK (an Ack came), FDO_ETRANSPORT,
 * or an error of wire_batch_encode; each printed on stderr. Blocks.
 */
int cli_sender_send(struct cli_sender *s, Fdod__SampleBatch *batch,
		    Fdod__Ack **ack);

/* cli_sender_close closes the socket; NULL is a no-op. */
void cli_sender_close(struct cli_sender *s);

#endif
