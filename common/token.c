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

#include "common/common.h"

int fdo_client_token(const char *file, char *out, size_t cap)
{
	out[0] = 0;
	if (file && *file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			fdo_error("cannot read token file %s: %s", file,
				  strerror(errno));
			return FDO_EIO;
		}
		if (!fgets(out, (int)cap, f))
			out[0] = 0;
		fclose(f);
	} else {
		const char *env = getenv("FDOD_TOKEN");
		if (env)
			snprintf(out, cap, "%s", env);
	}
	out[strcspn(out, " \t\r\n")] = 0;
	return FDO_OK;
}
