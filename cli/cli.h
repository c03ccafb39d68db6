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

#include <stddef.h>

#include "common/buf.h"

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

#endif
