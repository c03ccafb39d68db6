/*
 * aggregator/fdata.c — llvm-bolt's .fdata branch records read back: the
 * exact edge counts `llvm-bolt -instrument` writes (or an LBR profile), as
 * (from, to, count) in ELF virtual addresses of one executable, for
 * agg_blocks_exact. Only what those profiles hold is read:
 *
 *   [no_lbr ...:]                      refused: IP samples are not edges
 *   boltedcollection                   refused: offsets of a BOLTed binary
 *   <0|1|2> NAME HEXOFF <0|1|2> NAME HEXOFF MISPREDS COUNT
 *
 * NAME is a function symbol as llvm-bolt spells it (symbolizer.h
 * sym_elf_functions: plain for globals and weak symbols, name/N for
 * locals, "PG" before a ".L" name, '\' escaping a space or a '\'), or
 * "[unknown]" (or a library) for a location outside the executable: such
 * an end is dropped, except an entry from outside into a function (a
 * record to offset 0), which counts as a call. Memory records (3, 4, 5)
 * are skipped; a line that fits none of these is an error naming it.
 *
 * The file is untrusted: lines are bounded (4 KiB), counts must be finite
 * and under 2^53, offsets inside their function.
 *
 * Workload: one file per call, up to millions of records; names are found
 * through one hash table of the executable's function symbols.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/blocks.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define LINE_MAX_BYTES 4096

/* The llvm-bolt spelling of every function symbol -> its index. */
struct names {
	char **spell;
	struct fdo_idset set;
};

static void spell(const struct sym_func *f, struct fdo_buf *b)
{
	fdo_buf_reset(b);
	if (!strncmp(f->name, ".L", 2))
		fdo_buf_puts(b, "PG");
	for (const char *c = f->name; *c; c++) {
		if (*c == ' ' || *c == '\\')
			fdo_buf_putc(b, '\\');
		fdo_buf_putc(b, *c);
	}
	if (f->bind == SYM_BIND_LOCAL)
		fdo_buf_printf(b, "/%u", f->ordinal);
	fdo_buf_cstr(b);
}

static const void *spell_key(const void *ctx, uint32_t id, size_t *len)
{
	const struct names *n = ctx;
	*len = strlen(n->spell[id]);
	return n->spell[id];
}

static int names_init(struct names *n, const struct sym_func *funcs, size_t nf)
{
	fdo_idset_init(&n->set, spell_key, n);
	n->spell = calloc(nf ? nf : 1, sizeof *n->spell);
	if (!n->spell)
		return FDO_ENOMEM;
	struct fdo_buf b;
	fdo_buf_init(&b);
	for (size_t i = 0; i < nf; i++) {
		uint32_t id;
		spell(&funcs[i], &b);
		/* Aliases (one spelling, several symbols): the first one. */
		if (b.oom || !(n->spell[i] = strdup(b.data)) ||
		    (!fdo_idset_get(&n->set, b.data, b.len, &id) &&
		     fdo_idset_add(&n->set, b.data, b.len, (uint32_t)i))) {
			fdo_buf_fini(&b);
			return FDO_ENOMEM;
		}
	}
	fdo_buf_fini(&b);
	return FDO_OK;
}

static void names_fini(struct names *n, size_t nf)
{
	for (size_t i = 0; n->spell && i < nf; i++)
		free(n->spell[i]);
	free(n->spell);
	fdo_idset_fini(&n->set);
}

static const struct sym_func *
names_find(const struct names *n, const struct sym_func *funcs, const char *s)
{
	uint32_t id;
	return fdo_idset_get(&n->set, s, strlen(s), &id) ? &funcs[id] : NULL;
}

/* One field of a line, '\' escapes kept; returns its end. */
static const char *field(const char *s, const char *end, char *out, size_t cap)
{
	while (s < end && *s == ' ')
		s++;
	size_t n = 0;
	for (; s < end && *s != ' '; s++) {
		if (*s == '\\' && s + 1 < end) {
			if (n + 2 < cap) {
				out[n++] = *s;
				out[n++] = s[1];
			}
			s++;
			continue;
		}
		if (n + 1 < cap)
			out[n++] = *s;
	}
	out[n] = 0;
	return s;
}

/* A location: its vaddr, or 0 when outside the executable (kind 0) or
 * naming nothing known. *entry: an offset 0 of a function. */
static int location(const struct names *n, const struct sym_func *funcs,
		    const char *kind, const char *name, const char *off,
		    uint64_t *vaddr, int *known)
{
	/* Hex digits only (llvm-bolt refuses "0x"), at most 64 bits. */
	size_t nd = strspn(off, "0123456789abcdefABCDEF");
	if (!nd || off[nd] || nd > 16 || strlen(kind) != 1 ||
	    !strchr("012", kind[0]))
		return FDO_EPARSE;
	unsigned long long o = strtoull(off, NULL, 16);
	*known = 0;
	*vaddr = 0;
	if (kind[0] == '0')
		return FDO_OK;
	const struct sym_func *f = names_find(n, funcs, name);
	if (!f || (f->size && o >= f->size))
		return FDO_OK; /* stale or foreign: unused, as llvm-bolt does */
	*vaddr = f->addr + o;
	*known = 1;
	return FDO_OK;
}

int agg_fdata_parse(const char *text, size_t len, const struct sym_func *funcs,
		    size_t nfuncs, struct agg_branch **out, size_t *nout,
		    char *err, size_t errlen)
{
	*out = NULL;
	*nout = 0;
	err[0] = 0;
	struct names n = {0};
	int rc = names_init(&n, funcs, nfuncs);
	struct agg_branch *x = NULL;
	size_t nx = 0, cap = 0, lineno = 0;
	for (size_t at = 0; !rc && at < len;) {
		const char *s = text + at;
		const char *nl = memchr(s, '\n', len - at);
		const char *end = nl ? nl : text + len;
		at = (size_t)(end - text) + 1;
		lineno++;
		if (end - s > LINE_MAX_BYTES) {
			snprintf(err, errlen, "line %zu is over %d bytes",
				 lineno, LINE_MAX_BYTES);
			rc = FDO_ELIMIT;
			break;
		}
		if (end == s)
			continue;
		size_t ll = (size_t)(end - s);
		if (lineno == 1 && ll >= 6 && !memcmp(s, "no_lbr", 6)) {
			snprintf(err, errlen,
				 "a no_lbr profile holds IP "
				 "samples, not branch counts");
			rc = FDO_EINVAL;
			break;
		}
		if (ll >= 16 && !memcmp(s, "boltedcollection", 16)) {
			snprintf(err, errlen,
				 "line %zu: a profile of a "
				 "BOLTed binary (boltedcollection)",
				 lineno);
			rc = FDO_EINVAL;
			break;
		}
		if (*s >= '3' && *s <= '5')
			continue; /* memory records */
		char f[8][1024];
		const char *p = s;
		for (int i = 0; i < 8; i++)
			p = field(p, end, f[i], sizeof f[i]);
		char extra[8];
		field(p, end, extra, sizeof extra);
		char *e1, *e2;
		double mis = strtod(f[6], &e1), count = strtod(f[7], &e2);
		uint64_t from, to;
		int kf = 0, kt = 0;
		if (!f[7][0] || extra[0] || *e1 || *e2 || !(mis >= 0) ||
		    !(count >= 0) || count > 9007199254740992.0 ||
		    location(&n, funcs, f[0], f[1], f[2], &from, &kf) ||
		    location(&n, funcs, f[3], f[4], f[5], &to, &kt)) {
			snprintf(err, errlen,
				 "line %zu is not a branch record "
				 "(<0|1|2> name hexoff <0|1|2> name hexoff "
				 "mispreds count)",
				 lineno);
			rc = FDO_EPARSE;
			break;
		}
		/* An entry from outside: a call with no known call site. */
		if (!kf && kt && strtoull(f[5], NULL, 16) == 0 &&
		    f[0][0] == '0')
			from = 0;
		else if (!kf || !kt)
			continue;
		if (!(count > 0))
			continue;
		if (fdo_grow(x, cap, nx + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		x[nx++] = (struct agg_branch){from, to, count};
	}
	names_fini(&n, nfuncs);
	if (rc) {
		free(x);
		if (rc == FDO_ENOMEM && !err[0])
			snprintf(err, errlen, "out of memory");
		return rc;
	}
	*out = x;
	*nout = nx;
	return FDO_OK;
}
