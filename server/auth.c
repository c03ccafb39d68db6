/*
 * server/auth.c — API tokens, their scopes and their restrictions.
 *
 * Token file (named by --tokens), one token per line:
 *   TOKEN SCOPE[,SCOPE...] [NAME] [binaries=A,B] [agents=P,Q] [hosts=P,Q]
 * SCOPE is ingest (agent batches), upload (symbol files), read (profiles,
 * status, symbols for debuginfod, metrics) or admin (publish, backup,
 * replacing a stored symbol file; admin implies every other scope). Scopes
 * are independent bits: ingest,upload,read together is not admin. NAME
 * labels the token in logs. The options restrict what the token may write:
 *   binaries=  exact binary names its uploads and batches may name
 *   agents=    prefixes of the agent ids its batches may carry
 *   hosts=     prefixes of the host names its batches may carry
 * (an admin token is never restricted). Tokens are compared in constant
 * time. With no token file, fdod serves loopback only and every local
 * client has every scope.
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

#define LINE_MAX_BYTES 8192
#define LIST_MAX       256 /* names in one restriction */

/* A comma-separated list, split in place into items (NULL: no list). */
struct namelist {
	char *text;
	char **items;
	size_t n;
};

struct srv_token {
	char *secret;
	char *name;
	unsigned scopes;
	struct namelist binaries, agents, hosts;
};

struct srv_auth {
	struct srv_token *tokens;
	size_t n;
};

static const struct {
	const char *name;
	unsigned bit;
} scope_names[] = {{"ingest", SRV_SCOPE_INGEST},
		   {"upload", SRV_SCOPE_UPLOAD},
		   {"read", SRV_SCOPE_READ},
		   {"admin", SRV_SCOPE_ALL}};
#define NSCOPES (sizeof scope_names / sizeof scope_names[0])

static int parse_scopes(char *text, unsigned *out)
{
	*out = 0;
	char *save = NULL;
	for (char *s = strtok_r(text, ",", &save); s;
	     s = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < NSCOPES && strcmp(s, scope_names[i].name))
			i++;
		if (i == NSCOPES)
			return -1;
		*out |= scope_names[i].bit;
	}
	return *out ? 0 : -1;
}

static void list_fini(struct namelist *l)
{
	free(l->text);
	free(l->items);
	memset(l, 0, sizeof *l);
}

/* A list of non-empty names of printable ASCII without spaces. */
static int list_parse(const char *value, struct namelist *l)
{
	if (l->text)
		return -1; /* given twice */
	l->text = strdup(value);
	if (!l->text)
		return -1;
	size_t cap = 1;
	for (const char *p = value; *p; p++)
		cap += *p == ',';
	if (cap > LIST_MAX || !(l->items = calloc(cap, sizeof *l->items)))
		return -1;
	char *p = l->text;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = 0;
		if (!*p)
			return -1;
		for (char *c = p; *c; c++)
			if ((unsigned char)*c <= ' ' ||
			    (unsigned char)*c >= 0x7f)
				return -1;
		l->items[l->n++] = p;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int list_has(const struct namelist *l, const char *name, int prefix)
{
	if (!l->text)
		return 1;
	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->items[i]);
		if (prefix ? !strncmp(name, l->items[i], n)
			   : !strcmp(name, l->items[i]))
			return 1;
	}
	return 0;
}

static void token_fini(struct srv_token *t)
{
	if (t->secret) {
		/* Scrub secrets before the memory goes back. */
		volatile char *p = t->secret;
		while (*p)
			*p++ = 0;
	}
	free(t->secret);
	free(t->name);
	list_fini(&t->binaries);
	list_fini(&t->agents);
	list_fini(&t->hosts);
}

void srv_auth_destroy(struct srv_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		token_fini(&a->tokens[i]);
	free(a->tokens);
	free(a);
}

/* The fields after the scopes: NAME and key=value restrictions. */
static int parse_extras(char **save, struct srv_token *t, char *err,
			size_t errlen, const char *path, int lineno)
{
	for (char *f = strtok_r(NULL, " \t\r\n", save); f;
	     f = strtok_r(NULL, " \t\r\n", save)) {
		char *eq = strchr(f, '=');
		if (!eq) {
			if (t->name) {
				snprintf(err, errlen,
					 "%s:%d: unexpected '%s' (one NAME, "
					 "then binaries=, agents=, hosts=)",
					 path, lineno, f);
				return FDO_EINVAL;
			}
			if (!(t->name = strdup(f)))
				return FDO_ENOMEM;
			continue;
		}
		*eq = 0;
		struct namelist *l = !strcmp(f, "binaries") ? &t->binaries
				     : !strcmp(f, "agents") ? &t->agents
				     : !strcmp(f, "hosts")  ? &t->hosts
							    : NULL;
		if (!l || list_parse(eq + 1, l)) {
			snprintf(err, errlen,
				 "%s:%d: %s= must be binaries=, agents= or "
				 "hosts=, given once, with a comma-separated "
				 "list of at most %d non-empty names",
				 path, lineno, f, LIST_MAX);
			return FDO_EINVAL;
		}
	}
	return FDO_OK;
}

static int parse_line(char *line, const char *path, int lineno,
		      struct srv_token *t, char *err, size_t errlen)
{
	char *save = NULL;
	char *secret = strtok_r(line, " \t\r\n", &save);
	char *scopes = strtok_r(NULL, " \t\r\n", &save);
	if (strlen(secret) < 16) {
		snprintf(err, errlen,
			 "%s:%d: a token needs at least 16 characters", path,
			 lineno);
		return FDO_EINVAL;
	}
	if (!scopes || parse_scopes(scopes, &t->scopes)) {
		snprintf(err, errlen,
			 "%s:%d: scopes must be ingest, upload, read or admin, "
			 "comma-separated",
			 path, lineno);
		return FDO_EINVAL;
	}
	if (!(t->secret = strdup(secret)))
		return FDO_ENOMEM;
	int rc = parse_extras(&save, t, err, errlen, path, lineno);
	if (rc)
		return rc;
	if (!t->name && !(t->name = strdup("token")))
		return FDO_ENOMEM;
	if ((t->scopes & SRV_SCOPE_ADMIN) &&
	    (t->binaries.text || t->agents.text || t->hosts.text)) {
		snprintf(err, errlen,
			 "%s:%d: an admin token cannot be restricted "
			 "(binaries=, agents=, hosts=)",
			 path, lineno);
		return FDO_EINVAL;
	}
	return FDO_OK;
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
	char *line = malloc(LINE_MAX_BYTES);
	int lineno = 0, rc = a && line ? FDO_OK : FDO_ENOMEM;
	while (!rc && fgets(line, LINE_MAX_BYTES, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen,
				 "%s:%d: line longer than %d bytes", path,
				 lineno, LINE_MAX_BYTES - 2);
			rc = FDO_EINVAL;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		if (!line[strspn(line, " \t\r\n")])
			continue;
		struct srv_token *t =
			realloc(a->tokens, (a->n + 1) * sizeof *t);
		if (!t) {
			rc = FDO_ENOMEM;
			break;
		}
		a->tokens = t;
		memset(&t[a->n], 0, sizeof t[a->n]);
		rc = parse_line(line, path, lineno, &t[a->n], err, errlen);
		if (rc) {
			token_fini(&t[a->n]);
			break;
		}
		const unsigned all_but_admin =
			SRV_SCOPE_INGEST | SRV_SCOPE_UPLOAD | SRV_SCOPE_READ;
		if ((t[a->n].scopes & SRV_SCOPE_ALL) == all_but_admin)
			fdo_warn(
				"auth: %s:%d: token %s has every scope but "
				"admin; it may not publish, back up or replace "
				"symbol files (add admin if it should)",
				path, lineno, t[a->n].name);
		a->n++;
	}
	fclose(f);
	free(line);
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
		diff |= (unsigned char)a[i] ^
			(unsigned char)b[i % (blen ? blen : 1)];
	return diff == 0;
}

int srv_auth_check(const struct srv_auth *a, const char *token, size_t len,
		   unsigned scope, const struct srv_token **tok)
{
	*tok = NULL;
	if (!a)
		return FDO_OK; /* loopback-only mode: every scope */
	if (!token || !len)
		return FDO_EINVAL;
	for (size_t i = 0; i < a->n; i++)
		if (same(token, len, a->tokens[i].secret)) {
			*tok = &a->tokens[i];
			return (a->tokens[i].scopes & scope) == scope
				       ? FDO_OK
				       : FDO_EDENIED;
		}
	return FDO_EINVAL;
}

const char *srv_token_name(const struct srv_token *tok)
{
	return tok ? tok->name : "anonymous";
}

int srv_token_allows_binary(const struct srv_token *tok, const char *binary)
{
	return !tok || list_has(&tok->binaries, binary, 0);
}

int srv_token_allows_agent(const struct srv_token *tok, const char *agent)
{
	return !tok || list_has(&tok->agents, agent, 1);
}

int srv_token_allows_host(const struct srv_token *tok, const char *host)
{
	return !tok || list_has(&tok->hosts, host, 1);
}

int srv_token_restricted_binaries(const struct srv_token *tok)
{
	return tok && tok->binaries.text;
}

int srv_token_has_scope(const struct srv_token *tok, unsigned scope)
{
	return !tok || (tok->scopes & scope) == scope;
}
