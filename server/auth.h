/*
 * server/auth.h — API tokens with scopes and restrictions (server/auth.c
 * has the file format). Loaded once at start; read-only afterwards, so any
 * thread may check.
 */
#ifndef FDO_SERVER_AUTH_H
#define FDO_SERVER_AUTH_H

#include <stddef.h>

/* Scopes are independent bits: no combination of the first three is admin. */
#define SRV_SCOPE_INGEST 0x1
#define SRV_SCOPE_UPLOAD 0x2
#define SRV_SCOPE_READ	 0x4
#define SRV_SCOPE_ADMIN	 0x8
#define SRV_SCOPE_ALL	 0xf /* what an admin token holds */

struct srv_auth;
struct srv_token;

/*
 * srv_auth_load reads the token file. FDO_OK, or FDO_EIO / FDO_EINVAL /
 * FDO_ENOMEM with err naming the file and line. Logs a warning for a
 * world-readable file and for every token that holds each scope but admin
 * (before admin was a scope of its own, such a token acted as admin).
 */
int srv_auth_load(const char *path, struct srv_auth **out, char *err,
		  size_t errlen);
void srv_auth_destroy(struct srv_auth *a);

/*
 * srv_auth_check: may the holder of token (len bytes) act in scope? a NULL
 * (no token file: loopback-only) allows everything. Returns FDO_OK,
 * FDO_EINVAL (no or unknown token: 401) or FDO_EDENIED (known token
 * without the scope: 403). *tok is the token found (NULL when none, or
 * when a is NULL); it lives as long as a.
 */
int srv_auth_check(const struct srv_auth *a, const char *token, size_t len,
		   unsigned scope, const struct srv_token **tok);

/* srv_token_name names tok for logs ("anonymous" for NULL). */
const char *srv_token_name(const struct srv_token *tok);

/*
 * Restrictions of a token (file options binaries=, agents=, hosts=), so
 * that one team's token cannot write another team's data. Each returns 1
 * when tok may write under that name: tok is NULL (no token file), the
 * token has no such restriction, or the name is listed (binaries: exact
 * names; agents, hosts: prefixes). Admin tokens have no restrictions.
 */
int srv_token_allows_binary(const struct srv_token *tok, const char *binary);
int srv_token_allows_agent(const struct srv_token *tok, const char *agent);
int srv_token_allows_host(const struct srv_token *tok, const char *host);
/* srv_token_has_scope: may tok act in scope? (NULL: no token file: yes) */
int srv_token_has_scope(const struct srv_token *tok, unsigned scope);
/* srv_token_restricted: 1 when tok has a binaries= list. */
int srv_token_restricted_binaries(const struct srv_token *tok);

#endif
