/*
 * server/auth.h — API tokens with scopes (server/auth.c has the file
 * format). Loaded once at start; read-only afterwards, so any thread may
 * check.
 */
#ifndef FDO_SERVER_AUTH_H
#define FDO_SERVER_AUTH_H

#include <stddef.h>

#define SRV_SCOPE_INGEST 0x1
#define SRV_SCOPE_UPLOAD 0x2
#define SRV_SCOPE_READ 0x4
#define SRV_SCOPE_ALL 0x7 /* admin */

struct srv_auth;

/* srv_auth_load reads the token file. FDO_OK, or FDO_EIO / FDO_EINVAL /
 * FDO_ENOMEM with err naming the file and line. */
int srv_auth_load(const char *path, struct srv_auth **out, char *err,
		  size_t errlen);
void srv_auth_destroy(struct srv_auth *a);

/*
 * srv_auth_check: may the holder of token (len bytes) act in scope? a NULL
 * (no token file: loopback-only) allows everything. Returns FDO_OK,
 * FDO_EINVAL (no or unknown token: 401) or FDO_EDENIED (known token
 * without the scope: 403). *who names the token for the log.
 */
int srv_auth_check(const struct srv_auth *a, const char *token, size_t len,
		   unsigned scope, const char **who);

const char *srv_scope_name(unsigned scope);

#endif
