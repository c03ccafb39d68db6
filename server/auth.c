/*
 * server/auth.c — API tokens and their scopes.
 *
 * Token file (named by --tokens), one token per line:
 *   TOKEN SCOPE[,SCOPE...] [NAME]      # comment
 * SCOPE is ingest (agent batches), upload (symbol files), read (profiles,
 * status, symbols for debuginfod, metrics) or admin (publish, backup; admin
 * implies every other scope). NAME labels the token in logs. Tokens are
 * compared in constant time. With no token file, fdod serves loopback only
 * and every local client has every scope.
 * Workload: a handful of tokens, checked on every request: a linear scan.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "server/auth.h"

struct token {
	char *secret;
	char *name;
	unsigned scopes;
};

struct srv_auth {
	struct token *tokens;
	size_t n;
};

static const struct {
	const char *name;
	unsigned bit;
} scope_names[] = {{"ingest", SRV_SCOPE_INGEST},
		   {"upload", SRV_SCOPE_UPLOAD},
		   {"read", SRV_SCOPE_READ},
		   {"admin", SRV_SCOPE_ALL}};

const char *srv_scope_name(unsigned scope)
{
	for (size_t i = 0; i < 3; i++)
		if (scope_names[i].bit == scope)
			return scope_names[i].name;
	return "admin";
}

static int parse_scopes(char *text, unsigned *out)
{
	*out = 0;
	for (char *s = strtok(text, ","); s; s = strtok(NULL, ",")) {
		size_t i = 0;
		while (i < 4 && strcmp(s, scope_names[i].name))
			i++;
		if (i == 4)
			return -1;
		*out |= scope_names[i].bit;
	}
	return *out ? 0 : -1;
}

void srv_auth_destroy(struct srv_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		/* Scrub secrets before the memory goes back. */
		volatile char *p = a->tokens[i].secret;
		while (*p)
			*p++ = 0;
		free(a->tokens[i].secret);
		free(a->tokens[i].name);
	}
	free(a->tokens);
	free(a);
}

int srv_auth_load(const char *path, struct srv_auth **out, char *err,
		  size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open token file %s: %s", path,
			 strerror(errno));
		return FDO_EIO;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0004))
		fdo_warn("auth: %s is readable by every user; make it 0600",
			 path);
	struct srv_auth *a = calloc(1, sizeof *a);
	char line[1024];
	int lineno = 0, rc = a ? FDO_OK : FDO_ENOMEM;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *secret = strtok(line, " \t\r\n");
		if (!secret)
			continue;
		char *scopes = strtok(NULL, " \t\r\n");
		char *name = strtok(NULL, " \t\r\n");
		unsigned bits;
		if (strlen(secret) < 16) {
			snprintf(err, errlen,
				 "%s:%d: a token needs at least 16 characters",
				 path, lineno);
			rc = FDO_EINVAL;
			break;
		}
		char scopes_copy[256];
		snprintf(scopes_copy, sizeof scopes_copy, "%s",
			 scopes ? scopes : "");
		if (!scopes || parse_scopes(scopes_copy, &bits)) {
			snprintf(err, errlen,
				 "%s:%d: scopes must be ingest, upload, read "
				 "or admin, comma-separated",
				 path, lineno);
			rc = FDO_EINVAL;
			break;
		}
		struct token *t = realloc(a->tokens, (a->n + 1) * sizeof *t);
		if (!t) {
			rc = FDO_ENOMEM;
			break;
		}
		a->tokens = t;
		t[a->n].secret = strdup(secret);
		t[a->n].name = strdup(name ? name : "token");
		t[a->n].scopes = bits;
		if (!t[a->n].secret || !t[a->n].name) {
			rc = FDO_ENOMEM;
			break;
		}
		a->n++;
	}
	fclose(f);
	if (!rc && a->n == 0) {
		snprintf(err, errlen, "%s holds no token", path);
		rc = FDO_EINVAL;
	}
	if (rc) {
		srv_auth_destroy(a);
		return rc;
	}
	*out = a;
	return FDO_OK;
}

/* Constant-time comparison: no early exit on the first different byte. */
static int same(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	unsigned diff = (unsigned)(alen ^ blen);
	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (blen ? blen : 1)];
	return diff == 0;
}

int srv_auth_check(const struct srv_auth *a, const char *token, size_t len,
		   unsigned scope, const char **who)
{
	*who = "anonymous";
	if (!a)
		return FDO_OK; /* loopback-only mode: every scope */
	if (!token || !len)
		return FDO_EINVAL;
	for (size_t i = 0; i < a->n; i++)
		if (same(token, len, a->tokens[i].secret)) {
			*who = a->tokens[i].name;
			return (a->tokens[i].scopes & scope) == scope
				       ? FDO_OK
				       : FDO_EDENIED;
		}
	return FDO_EINVAL;
}
