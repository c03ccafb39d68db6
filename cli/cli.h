/*
 * cli/cli.h — fdoctl's subcommands. Each lives in cli/cmd_<name>.c and is
 * called with argv[0] = the subcommand name. Returns the process exit code:
 * 0 success, 1 the operation failed, 2 usage error.
 */
#ifndef FDO_CLI_H
#define FDO_CLI_H

int cmd_symbolize(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_emit(int argc, char **argv);
int cmd_import(int argc, char **argv);

#include <stddef.h>

#include "common/buf.h"
#include "schemas/schemas.h"

/* cli_http_base: flag if given, else $FDOD_HTTP, else the default URL. */
const char *cli_http_base(const char *flag);

/*
 * cli_http_request sends METHOD base+path, with the file open on body_fd
 * streamed as the body (-1: no body), and reads the answer's body into
 * out. *status gets the HTTP status. Returns FDO_OK (whatever the status),
 * or FDO_ETRANSPORT / FDO_EIO / FDO_ENOMEM / FDO_EINVAL with err set.
 * Blocks (5 minute timeout per step).
 */
int cli_http_request(const char *base, const char *method, const char *path,
		     int body_fd, int *status, struct fdo_buf *out, char *err,
		     size_t errlen);

/*
 * cli_upload_http puts each of files[0..nfiles) into the symbol store of
 * the fdod at base (PUT /v1/symbols, streamed from disk; binary: the
 * binary= of the upload, may be NULL; replace: ?replace=1) and prints one
 * line per file as `fdoctl upload` does (stored/present/replaced on
 * stdout, `error: FILE: reason` on stderr). Returns 0 when every file is
 * stored or present, 1 otherwise. Blocks (cli/cmd_upload.c).
 */
int cli_upload_http(const char *base, const char *binary, int replace,
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
