/*
 * symbolizer/builder.c — the index under construction: growable record
 * arrays and a deduplicating string table. Workload: one builder per index
 * build, millions of appends, a few hundred thousand distinct strings (most
 * names repeat across inlined copies, so interning pays).
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "symbolizer/sym_int.h"

void sym_vec_init(struct sym_vec *v, size_t elem)
{
	v->p = NULL;
	v->n = v->cap = 0;
	v->elem = elem;
}

void sym_vec_fini(struct sym_vec *v)
{
	free(v->p);
	v->p = NULL;
	v->n = v->cap = 0;
}

void *sym_vec_push(struct sym_vec *v, size_t n)
{
	if (n == 0)
		return NULL; /* callers check n && !ptr */
	if (fdo_grow_array(&v->p, &v->cap, v->n + n, v->elem, 0))
		return NULL;
	void *r = (char *)v->p + v->n * v->elem;
	memset(r, 0, n * v->elem);
	v->n += n;
	return r;
}

static uint64_t str_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

int sym_strtab_init(struct sym_strtab *t)
{
	memset(t, 0, sizeof *t);
	t->nslots = 1024;
	t->slots = calloc(t->nslots, sizeof *t->slots);
	return t->slots ? FDO_OK : FDO_ENOMEM;
}

void sym_strtab_fini(struct sym_strtab *t)
{
	free(t->buf);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

static int strtab_grow(struct sym_strtab *t)
{
	size_t n = t->nslots * 2;
	uint32_t *s = calloc(n, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	for (size_t i = 0; i < t->nslots; i++) {
		uint32_t v = t->slots[i];
		if (!v)
			continue;
		const char *str = t->buf + v - 1;
		size_t j = str_hash(str, strlen(str)) & (n - 1);
		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = v;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return FDO_OK;
}

uint32_t sym_strtab_add(struct sym_strtab *t, const char *s, size_t len)
{
	/* Strings with an embedded NUL are cut there: they are C strings. */
	const char *z = memchr(s, 0, len);
	if (z)
		len = (size_t)(z - s);
	if ((t->used + 1) * 2 > t->nslots && strtab_grow(t))
		return SYM_NONE;
	size_t mask = t->nslots - 1;
	size_t j = str_hash(s, len) & mask;
	while (t->slots[j]) {
		const char *c = t->buf + t->slots[j] - 1;
		if (!strncmp(c, s, len) && c[len] == 0)
			return t->slots[j] - 1;
		j = (j + 1) & mask;
	}
	if (t->len + len + 1 >= 0xfffffff0u ||
	    fdo_grow(t->buf, t->cap, t->len + len + 1))
		return SYM_NONE; /* offsets are uint32_t, SYM_NONE excluded */
	uint32_t off = (uint32_t)t->len;
	memcpy(t->buf + off, s, len);
	t->buf[off + len] = 0;
	t->len += len + 1;
	t->slots[j] = off + 1;
	t->used++;
	return off;
}

int sym_builder_init(struct sym_builder *b)
{
	memset(b, 0, sizeof *b);
	sym_vec_init(&b->loads, sizeof(struct sym_load));
	sym_vec_init(&b->cusegs, sizeof(struct sym_cuseg));
	sym_vec_init(&b->cus, sizeof(struct sym_cu));
	sym_vec_init(&b->seqs, sizeof(struct sym_seq));
	sym_vec_init(&b->rows, sizeof(struct sym_row));
	sym_vec_init(&b->dmap, sizeof(struct sym_dmap));
	sym_vec_init(&b->nodes, sizeof(struct sym_node));
	sym_vec_init(&b->syms, sizeof(struct sym_sym));
	sym_vec_init(&b->rkeys, sizeof(uint32_t));
	return sym_strtab_init(&b->strs);
}

void sym_builder_fini(struct sym_builder *b)
{
	sym_vec_fini(&b->loads);
	sym_vec_fini(&b->cusegs);
	sym_vec_fini(&b->cus);
	sym_vec_fini(&b->seqs);
	sym_vec_fini(&b->rows);
	sym_vec_fini(&b->dmap);
	sym_vec_fini(&b->nodes);
	sym_vec_fini(&b->syms);
	sym_vec_fini(&b->rkeys);
	sym_strtab_fini(&b->strs);
}
