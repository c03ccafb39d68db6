/*
 * common/token.c — how clients (fdoctl, fdo-agent) find their API token:
 * the first line of a token file when one is named, else $FDOD_TOKEN,
 * else none. A token on the command line would show in `ps`: there is no
 * flag for the token itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"

int fdo_client_token(const char *file, char *out, size_t cap)
{
	out[0] = 0;
	if (file && *file) {
		char *text = fdo_read_small_file(file, 64 * 1024);
		if (!text) {
			fdo_error("cannot read token file %s: %s", file,
				  errno ? strerror(errno) : "too large");
			return FDO_EIO;
		}
		snprintf(out, cap, "%s", text);
		free(text);
	} else {
		const char *env = getenv("FDOD_TOKEN");
		if (env)
			snprintf(out, cap, "%s", env);
	}
	out[strcspn(out, " \t\r\n")] = 0;
	return FDO_OK;
}
