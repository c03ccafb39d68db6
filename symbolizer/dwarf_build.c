/*
 * symbolizer/dwarf_build.c — one pass over the DWARF of a file into the
 * index records: per compile unit its address ranges, its line table
 * (line_table.c) and llvm's address -> subroutine-DIE map with parent links.
 *
 * The walk reproduces llvm-symbolizer (DWARFUnit::updateAddressDieMap,
 * getInlinedChainForAddress, DWARFDebugAranges::construct) so that answers
 * agree: every subprogram / inlined_subroutine DIE with ranges is inserted
 * in DIE order into an ordered map lo -> (hi, DIE), splitting the range it
 * falls into; a chain is the DIE found plus its subroutine ancestors up to
 * the first subprogram. CUs claim address ranges from their unit DIE;
 * overlaps go to the lowest unit offset.
 *
 * libdw is used only here, on one thread, and closed before returning.
 * Memory: libdw's parsed units plus the records; the line program is
 * parsed by us and its rows compacted per sequence as they are produced.
 */
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>

#include "common/buf.h"
#include "symbolizer/line_table.h"
#include "symbolizer/sym_int.h"

#define DW_AT_GNU_discriminator_ 0x2136
#define MAX_DEPTH		 512

#define DM_CHUNK 256

struct dm_chunk {
	size_t n;
	struct sym_dmap e[DM_CHUNK];
};

struct dm_map {
	struct dm_chunk **ch;
	size_t nch, cap;
	size_t count;
};

struct foreign {
	Dwarf_CU *cu;
	struct sym_line lt;
	int ok;
};

struct walk_ent {
	Dwarf_Die die;
	int tag;
	uint32_t node;
};

struct build {
	struct sym_builder *b;
	struct sym_line_secs secs;
	Dwarf_CU *cu, *split;
	struct sym_line lt;
	int have_lt;
	struct dm_map dm;	  /* the current CU's AddrDieMap */
	struct sym_vec endpoints; /* struct endpoint, all CUs */
	struct foreign *fc;
	size_t nfc;
	struct walk_ent stack[MAX_DEPTH];
};

struct endpoint {
	uint64_t addr;
	uint32_t cu;
	uint32_t start;
};

static void get_sec(Elf *elf, const char *name, struct sym_sec *out)
{
	out->data = NULL;
	out->size = 0;
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return;
	for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!n || strcmp(n, name))
			continue;
		if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(s, 0, 0) < 0)
			return;
		Elf_Data *d = elf_getdata(s, NULL);
		if (d && d->d_buf) {
			out->data = d->d_buf;
			out->size = d->d_size;
		}
		return;
	}
}

/* llvm's DWARFDie::findRecursively: the attribute on die or, through
 * DW_AT_abstract_origin / DW_AT_specification, on the DIEs it refers to. */
static Dwarf_Attribute *find_rec(Dwarf_Die *die, const unsigned *names, int nn,
				 Dwarf_Attribute *out)
{
	Dwarf_Die work[16];
	void *seen[16];
	int nw = 0, ns = 0;
	work[nw++] = *die;
	seen[ns++] = die->addr;
	while (nw) {
		Dwarf_Die d = work[--nw];
		for (int i = 0; i < nn; i++)
			if (dwarf_attr(&d, names[i], out))
				return out;
		static const unsigned refs[] = {DW_AT_abstract_origin,
						DW_AT_specification};
		for (int i = 0; i < 2; i++) {
			Dwarf_Attribute a;
			Dwarf_Die t;
			if (!dwarf_attr(&d, refs[i], &a) ||
			    !dwarf_formref_die(&a, &t))
				continue;
			int dup = 0;
			for (int k = 0; k < ns; k++)
				dup |= seen[k] == t.addr;
			if (dup || ns == 16 || nw == 16)
				continue;
			seen[ns++] = t.addr;
			work[nw++] = t;
		}
	}
	return NULL;
}

static int is_const_form(unsigned form)
{
	switch (form) {
	case DW_FORM_data1:
	case DW_FORM_data2:
	case DW_FORM_data4:
	case DW_FORM_data8:
	case DW_FORM_udata:
	case DW_FORM_sdata:
	case DW_FORM_implicit_const:
		return 1;
	}
	return 0;
}

static uint32_t attr_u32(Dwarf_Attribute *a)
{
	Dwarf_Word w;
	if (!a || !is_const_form(a->form) || dwarf_formudata(a, &w) != 0)
		return 0;
	return (uint32_t)w;
}

static int cu_line_info(Dwarf_CU *cu, uint64_t *stmt, const char **comp_dir,
			uint8_t *asize)
{
	Dwarf_Die cudie;
	Dwarf_Attribute a;
	Dwarf_Word w;
	if (!dwarf_cu_die(cu, &cudie, NULL, NULL, asize, NULL, NULL, NULL))
		return -1;
	*comp_dir = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &a));
	if (!dwarf_attr(&cudie, DW_AT_stmt_list, &a) ||
	    dwarf_formudata(&a, &w) != 0)
		return -1;
	*stmt = w;
	return 0;
}

/* The file table a DW_AT_decl_file of unit cu indexes (llvm: the linked
 * skeleton's table for split units). */
static const struct sym_line *table_of(struct build *bd, Dwarf_CU *cu)
{
	if (cu == bd->cu || cu == bd->split)
		return bd->have_lt ? &bd->lt : NULL;
	for (size_t i = 0; i < bd->nfc; i++)
		if (bd->fc[i].cu == cu)
			return bd->fc[i].ok ? &bd->fc[i].lt : NULL;
	struct foreign *f = realloc(bd->fc, (bd->nfc + 1) * sizeof *f);
	if (!f)
		return NULL;
	bd->fc = f;
	f = &bd->fc[bd->nfc++];
	f->cu = cu;
	sym_line_init(&f->lt);
	uint64_t stmt;
	const char *cd;
	uint8_t as = 8;
	f->ok = cu_line_info(cu, &stmt, &cd, &as) == 0 &&
		sym_line_parse(&bd->secs, stmt, cd, as, &bd->b->strs, 0,
			       &f->lt) == FDO_OK;
	return f->ok ? &f->lt : NULL;
}

static uint32_t make_node(struct build *bd, Dwarf_Die *die, int tag,
			  uint32_t parent)
{
	struct sym_builder *b = bd->b;
	struct sym_node nd;
	memset(&nd, 0, sizeof nd);
	nd.parent = parent;
	nd.name = nd.decl_file = nd.call_file = SYM_NONE;
	Dwarf_Attribute a;
	static const unsigned lnk[] = {DW_AT_MIPS_linkage_name,
				       DW_AT_linkage_name};
	static const unsigned nam[] = {DW_AT_name};
	static const unsigned dline[] = {DW_AT_decl_line};
	static const unsigned dfile[] = {DW_AT_decl_file};
	const char *name = NULL;
	if (find_rec(die, lnk, 2, &a))
		name = dwarf_formstring(&a);
	if (!name && find_rec(die, nam, 1, &a))
		name = dwarf_formstring(&a);
	if (name)
		nd.name = sym_strtab_add(&b->strs, name, strlen(name));
	nd.decl_line = attr_u32(find_rec(die, dline, 1, &a));
	/* llvm builds implicit_const values without a unit, so it cannot
	 * name their file: keep that blind spot to print what it prints. */
	if (find_rec(die, dfile, 1, &a) && is_const_form(a.form) &&
	    a.form != DW_FORM_implicit_const) {
		Dwarf_Word w;
		const struct sym_line *lt = table_of(bd, a.cu);
		if (lt && dwarf_formudata(&a, &w) == 0)
			nd.decl_file = sym_line_file(lt, w);
	}
	Dwarf_Addr lo;
	if (dwarf_attr(die, DW_AT_low_pc, &a) && dwarf_formaddr(&a, &lo) == 0) {
		nd.low_pc = lo;
		nd.flags |= SYM_NODE_LOW_PC;
	}
	if (tag == DW_TAG_subprogram)
		nd.flags |= SYM_NODE_SUBPROGRAM;
	if (dwarf_attr(die, DW_AT_call_file, &a) && is_const_form(a.form)) {
		Dwarf_Word w;
		if (bd->have_lt && dwarf_formudata(&a, &w) == 0)
			nd.call_file = sym_line_file(&bd->lt, w);
	} else if (bd->have_lt) {
		nd.call_file =
			sym_line_file(&bd->lt, 0); /* llvm: 0 if absent */
	}
	nd.call_line = attr_u32(dwarf_attr(die, DW_AT_call_line, &a));
	nd.call_column = attr_u32(dwarf_attr(die, DW_AT_call_column, &a));
	nd.call_discr = attr_u32(dwarf_attr(die, DW_AT_GNU_discriminator_, &a));
	struct sym_node *o = sym_vec_push(&b->nodes, 1);
	if (!o || b->nodes.n >= SYM_NONE)
		return SYM_NONE;
	*o = nd;
	return (uint32_t)(b->nodes.n - 1);
}

static uint32_t materialize(struct build *bd, int level)
{
	struct walk_ent *e = &bd->stack[level];
	if (e->node != SYM_NONE)
		return e->node;
	uint32_t parent = SYM_NONE;
	if (e->tag == DW_TAG_inlined_subroutine) {
		for (int l = level - 1; l >= 0; l--) {
			int t = bd->stack[l].tag;
			if (t == DW_TAG_subprogram ||
			    t == DW_TAG_inlined_subroutine) {
				parent = materialize(bd, l);
				break;
			}
		}
	}
	e->node = make_node(bd, &e->die, e->tag, parent);
	return e->node;
}

/*
 * llvm's AddrDieMap (a std::map lo -> (hi, DIE)) as a list of sorted
 * chunks: gcc emits functions in no particular address order, so a flat
 * sorted array would shift most of itself on each insert.
 */

static void dm_clear(struct dm_map *m)
{
	for (size_t i = 0; i < m->nch; i++)
		free(m->ch[i]);
	m->nch = 0;
	m->count = 0;
}

static void dm_free(struct dm_map *m)
{
	dm_clear(m);
	free(m->ch);
	m->ch = NULL;
	m->cap = 0;
}

/* The last entry with lo <= key: chunk *c, position *p. 0 if none. */
static int dm_find_le(const struct dm_map *m, uint64_t key, size_t *c,
		      size_t *p)
{
	size_t lo = 0, hi = m->nch;
	while (lo < hi) { /* first chunk whose first key > key */
		size_t mid = (lo + hi) / 2;
		if (m->ch[mid]->e[0].lo <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	const struct dm_chunk *k = m->ch[lo - 1];
	size_t a = 0, b = k->n;
	while (a < b) {
		size_t mid = (a + b) / 2;
		if (k->e[mid].lo <= key)
			a = mid + 1;
		else
			b = mid;
	}
	*c = lo - 1;
	*p = a - 1;
	return 1;
}

/* Insert e at position p of chunk c (splitting a full chunk). */
static int dm_insert_at(struct dm_map *m, size_t c, size_t p,
			const struct sym_dmap *e)
{
	if (m->nch == 0) {
		if (fdo_grow(m->ch, m->cap, 1))
			return FDO_ENOMEM;
		struct dm_chunk *k = malloc(sizeof *k);
		if (!k)
			return FDO_ENOMEM;
		k->n = 0;
		m->ch[m->nch++] = k;
		c = p = 0;
	}
	struct dm_chunk *k = m->ch[c];
	if (k->n == DM_CHUNK) {
		if (fdo_grow(m->ch, m->cap, m->nch + 1))
			return FDO_ENOMEM;
		struct dm_chunk *r = malloc(sizeof *r);
		if (!r)
			return FDO_ENOMEM;
		r->n = DM_CHUNK / 2;
		memcpy(r->e, k->e + DM_CHUNK / 2, r->n * sizeof *r->e);
		k->n = DM_CHUNK / 2;
		memmove(&m->ch[c + 2], &m->ch[c + 1],
			(m->nch - c - 1) * sizeof *m->ch);
		m->ch[c + 1] = r;
		m->nch++;
		if (p > k->n) {
			p -= k->n;
			k = r;
		}
	}
	memmove(&k->e[p + 1], &k->e[p], (k->n - p) * sizeof *k->e);
	k->e[p] = *e;
	k->n++;
	m->count++;
	return FDO_OK;
}

/* map[key] = (hi, node) */
static int dm_set(struct dm_map *m, uint64_t key, uint64_t hi, uint32_t node)
{
	size_t c, p;
	struct sym_dmap e = {key, hi, node, 0};
	if (!dm_find_le(m, key, &c, &p))
		return dm_insert_at(m, 0, 0, &e);
	struct sym_dmap *x = &m->ch[c]->e[p];
	if (x->lo == key) {
		x->hi = hi;
		x->node = node;
		return FDO_OK;
	}
	return dm_insert_at(m, c, p + 1, &e);
}

/* llvm's updateAddressDieMap step for one range. */
static int dm_insert(struct dm_map *m, uint64_t lo, uint64_t hi, uint32_t node)
{
	size_t c, p;
	if (dm_find_le(m, lo, &c, &p)) {
		struct sym_dmap e = m->ch[c]->e[p];
		if (lo < e.hi) {
			if (hi < e.hi && dm_set(m, hi, e.hi, e.node))
				return FDO_ENOMEM;
			if (lo > e.lo) {
				/* the set above may have split chunks */
				dm_find_le(m, e.lo, &c, &p);
				m->ch[c]->e[p].hi = lo;
			}
		}
	}
	return dm_set(m, lo, hi, node);
}

static int walk_dies(struct build *bd, Dwarf_Die *root)
{
	int depth = 0, err = FDO_OK;
	bd->stack[0] = (struct walk_ent){*root, dwarf_tag(root), SYM_NONE};
	for (;;) {
		struct walk_ent *e = &bd->stack[depth];
		if (e->tag == DW_TAG_subprogram ||
		    e->tag == DW_TAG_inlined_subroutine) {
			Dwarf_Addr base, s, t;
			ptrdiff_t off = 0;
			while ((off = dwarf_ranges(&e->die, off, &base, &s,
						   &t)) > 0) {
				if (s >= t)
					continue;
				uint32_t node = materialize(bd, depth);
				if (node == SYM_NONE)
					return FDO_ENOMEM;
				if ((err = dm_insert(&bd->dm, s, t, node)))
					return err;
			}
		}
		/* Next DIE in preorder: child, else sibling, else up. */
		Dwarf_Die next;
		if (depth + 1 < MAX_DEPTH && dwarf_haschildren(&e->die) > 0 &&
		    dwarf_child(&e->die, &next) == 0) {
			depth++;
			bd->stack[depth] = (struct walk_ent){
				next, dwarf_tag(&next), SYM_NONE};
			continue;
		}
		for (;;) {
			if (depth == 0)
				return FDO_OK;
			if (dwarf_siblingof(&bd->stack[depth].die, &next) ==
			    0) {
				bd->stack[depth] = (struct walk_ent){
					next, dwarf_tag(&next), SYM_NONE};
				break;
			}
			depth--;
		}
	}
}

static int seq_cmp(const void *a, const void *b)
{
	const struct sym_seq *x = a, *y = b;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->row_first < y->row_first ? -1 : x->row_first > y->row_first;
}

static int do_unit(struct build *bd, Dwarf_CU *cu, Dwarf_Die *cudie,
		   Dwarf_Die *subdie, int have_sub)
{
	struct sym_builder *b = bd->b;
	uint32_t cu_index = (uint32_t)b->cus.n;
	struct sym_cu *rec = sym_vec_push(&b->cus, 1);
	if (!rec)
		return FDO_ENOMEM;
	bd->cu = cu;
	bd->split = have_sub ? subdie->cu : NULL;

	/* Address ranges of the unit. */
	Dwarf_Addr base, s, t;
	ptrdiff_t off = 0;
	while ((off = dwarf_ranges(cudie, off, &base, &s, &t)) > 0) {
		if (s >= t)
			continue;
		struct endpoint *ep = sym_vec_push(&bd->endpoints, 2);
		if (!ep)
			return FDO_ENOMEM;
		ep[0] = (struct endpoint){s, cu_index, 1};
		ep[1] = (struct endpoint){t, cu_index, 0};
	}

	/* Line table. */
	sym_line_init(&bd->lt);
	bd->have_lt = 0;
	uint64_t stmt;
	const char *comp_dir;
	uint8_t asize = 8;
	if (cu_line_info(cu, &stmt, &comp_dir, &asize) == 0) {
		int err = sym_line_parse(&bd->secs, stmt, comp_dir, asize,
					 &b->strs, 1, &bd->lt);
		if (err == FDO_ENOMEM)
			return err;
		bd->have_lt = err == FDO_OK;
	}

	/* Subroutine DIEs. */
	dm_clear(&bd->dm);
	int err = walk_dies(bd, have_sub ? subdie : cudie);
	if (err)
		return err;

	/* Append this unit's records. */
	rec = &SYM_VEC_AT(&b->cus, struct sym_cu, cu_index);
	size_t nseq = bd->lt.seqs.n, nrows = bd->lt.rows.n;
	size_t row_base = b->rows.n, seq_base = b->seqs.n;
	if (nseq)
		qsort(bd->lt.seqs.p, nseq, sizeof(struct sym_seq), seq_cmp);
	struct sym_seq *sq = sym_vec_push(&b->seqs, nseq);
	struct sym_row *rw = sym_vec_push(&b->rows, nrows);
	size_t ndm = bd->dm.count;
	struct sym_dmap *dm = sym_vec_push(&b->dmap, ndm);
	if ((nseq && !sq) || (nrows && !rw) || (ndm && !dm))
		return FDO_ENOMEM;
	if (nrows)
		memcpy(rw, bd->lt.rows.p, nrows * sizeof *rw);
	uint32_t *rk = sym_vec_push(&b->rkeys, nrows);
	if (nrows && !rk)
		return FDO_ENOMEM;
	for (size_t i = 0; i < nseq; i++) {
		sq[i] = SYM_VEC_AT(&bd->lt.seqs, struct sym_seq, i);
		for (size_t r = 0; r < sq[i].row_count; r++)
			rk[sq[i].row_first + r] =
				(uint32_t)(rw[sq[i].row_first + r].addr -
					   sq[i].lo);
		sq[i].row_first += (uint32_t)row_base;
	}
	for (size_t i = 0, o = 0; i < bd->dm.nch; i++) {
		memcpy(dm + o, bd->dm.ch[i]->e, bd->dm.ch[i]->n * sizeof *dm);
		o += bd->dm.ch[i]->n;
	}
	rec = &SYM_VEC_AT(&b->cus, struct sym_cu, cu_index);
	rec->seq_first = (uint32_t)seq_base;
	rec->seq_count = (uint32_t)nseq;
	rec->dmap_first = (uint32_t)(b->dmap.n - ndm);
	rec->dmap_count = (uint32_t)ndm;
	sym_line_fini(&bd->lt);
	bd->have_lt = 0;
	if (b->rows.n >= SYM_NONE || b->dmap.n >= SYM_NONE)
		return FDO_ELIMIT;
	return FDO_OK;
}

static int ep_cmp(const void *a, const void *b)
{
	const struct endpoint *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return 0;
}

/* llvm's DWARFDebugAranges::construct: disjoint segments, the lowest unit
 * among those covering a segment owns it, adjacent pieces merged. */
static int build_cusegs(struct build *bd)
{
	struct sym_builder *b = bd->b;
	struct endpoint *ep = bd->endpoints.p;
	size_t n = bd->endpoints.n;
	if (n)
		qsort(ep, n, sizeof *ep, ep_cmp);
	uint32_t *active = NULL;
	size_t nact = 0, capact = 0;
	uint64_t prev = ~0ull;
	int err = FDO_OK;
	for (size_t i = 0; i < n && !err; i++) {
		if (prev < ep[i].addr && nact) {
			uint32_t best = active[0];
			for (size_t k = 1; k < nact; k++)
				if (active[k] < best)
					best = active[k];
			struct sym_cuseg *last =
				b->cusegs.n ? &SYM_VEC_AT(&b->cusegs,
							  struct sym_cuseg,
							  b->cusegs.n - 1)
					    : NULL;
			int in = 0;
			for (size_t k = 0; last && k < nact; k++)
				in |= active[k] == last->cu;
			if (last && last->hi == prev && in) {
				last->hi = ep[i].addr;
			} else {
				struct sym_cuseg *sg =
					sym_vec_push(&b->cusegs, 1);
				if (!sg) {
					err = FDO_ENOMEM;
					break;
				}
				*sg = (struct sym_cuseg){prev, ep[i].addr, best,
							 0};
			}
		}
		if (ep[i].start) {
			if (fdo_grow(active, capact, nact + 1)) {
				err = FDO_ENOMEM;
				break;
			}
			active[nact++] = ep[i].cu;
		} else {
			for (size_t k = 0; k < nact; k++)
				if (active[k] == ep[i].cu) {
					active[k] = active[--nact];
					break;
				}
		}
		prev = ep[i].addr;
	}
	free(active);
	return err;
}

/*
 * The inflate budget (issue 21): libelf allocates a compressed section's
 * declared size (its Chdr.ch_size, or the size after "ZLIB" of a .zdebug_*
 * section) before inflating it, so a small file can claim gigabytes. The
 * claims of a file are summed from those headers before libdw sees it:
 * over the per-file limit the DWARF is not read (with a log line); under
 * it the claim is reserved from a total that all symbolizer threads share
 * (waiting for others to finish when it is spent) and given back after.
 * Guarded by inflate_mu.
 */
static pthread_mutex_t inflate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflate_cv = PTHREAD_COND_INITIALIZER;
static uint64_t inflate_file_max = 512ull << 20;
static uint64_t inflate_total = 1ull << 30;
static uint64_t inflate_held;

void sym_inflate_budget(uint64_t per_file, uint64_t total)
{
	pthread_mutex_lock(&inflate_mu);
	inflate_file_max = per_file ? per_file : UINT64_MAX;
	inflate_total = total ? total : UINT64_MAX;
	pthread_cond_broadcast(&inflate_cv);
	pthread_mutex_unlock(&inflate_mu);
}

uint64_t sym_inflate_held(void)
{
	pthread_mutex_lock(&inflate_mu);
	uint64_t held = inflate_held;
	pthread_mutex_unlock(&inflate_mu);
	return held;
}

static uint64_t sym_inflate_claim(Elf *elf)
{
	uint64_t sum = 0;
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		uint64_t claim = 0;
		if (sh.sh_flags & SHF_COMPRESSED) {
			GElf_Chdr ch;
			/* A header that does not read is no claim: libelf
			 * refuses to inflate it too. */
			if (gelf_getchdr(s, &ch))
				claim = ch.ch_size;
		} else {
			const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
			Elf_Data *d = n && !strncmp(n, ".zdebug", 7)
					      ? elf_rawdata(s, NULL)
					      : NULL;
			if (d && d->d_buf && d->d_size >= 12 &&
			    !memcmp(d->d_buf, "ZLIB", 4)) {
				const uint8_t *p =
					(const uint8_t *)d->d_buf + 4;
				for (int i = 0; i < 8; i++)
					claim = claim << 8 | p[i];
			}
		}
		sum = claim > UINT64_MAX - sum ? UINT64_MAX : sum + claim;
	}
	return sum;
}

/* Reserve claim bytes of the shared budget; 0, or -1 over the per-file
 * limit (logged). Blocks while other threads hold the rest. */
static int inflate_reserve(const char *path, uint64_t claim)
{
	if (!claim)
		return 0;
	pthread_mutex_lock(&inflate_mu);
	if (claim > inflate_file_max) {
		uint64_t max = inflate_file_max;
		pthread_mutex_unlock(&inflate_mu);
		fdo_warn("symbolizer: %s: compressed debug sections claim %llu "
			 "bytes once inflated, over the limit of %llu "
			 "(--debug-inflate-max): its DWARF is not read",
			 path, (unsigned long long)claim,
			 (unsigned long long)max);
		return -1;
	}
	while (inflate_held && inflate_held + claim > inflate_total)
		pthread_cond_wait(&inflate_cv, &inflate_mu);
	inflate_held += claim;
	pthread_mutex_unlock(&inflate_mu);
	return 0;
}

static void inflate_release(uint64_t claim)
{
	if (!claim)
		return;
	pthread_mutex_lock(&inflate_mu);
	inflate_held -= claim;
	pthread_cond_broadcast(&inflate_cv);
	pthread_mutex_unlock(&inflate_mu);
}

int sym_dwarf_collect(const char *path, struct sym_builder *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fdo_warn("symbolizer: cannot open %s: %m", path);
		return FDO_EIO;
	}
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		fdo_warn("symbolizer: %s: not ELF", path);
		if (elf)
			elf_end(elf);
		close(fd);
		return FDO_ENOT_ELF;
	}
	uint64_t claim = sym_inflate_claim(elf);
	if (inflate_reserve(path, claim)) {
		elf_end(elf);
		close(fd);
		return FDO_ELIMIT;
	}
	Dwarf *dbg = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
	if (!dbg) {
		int e = dwarf_errno();
		if (e != 0)
			fdo_debug("symbolizer: %s: no usable DWARF: %s", path,
				  dwarf_errmsg(e));
		elf_end(elf);
		close(fd);
		inflate_release(claim);
		return FDO_OK;
	}
	struct build *bd = calloc(1, sizeof *bd);
	if (!bd) {
		dwarf_end(dbg);
		elf_end(elf);
		close(fd);
		inflate_release(claim);
		return FDO_ENOMEM;
	}
	bd->b = b;
	get_sec(elf, ".debug_line", &bd->secs.line);
	get_sec(elf, ".debug_line_str", &bd->secs.line_str);
	get_sec(elf, ".debug_str", &bd->secs.str);
	sym_vec_init(&bd->endpoints, sizeof(struct endpoint));
	b->has_dwarf = 1;

	int err = FDO_OK, rc;
	Dwarf_CU *cu = NULL, *next;
	Dwarf_Half version;
	uint8_t utype;
	Dwarf_Die cudie, subdie;
	while (!err && (rc = dwarf_get_units(dbg, cu, &next, &version, &utype,
					     &cudie, &subdie)) == 0) {
		cu = next;
		if (utype != DW_UT_compile && utype != DW_UT_skeleton &&
		    utype != DW_UT_partial)
			continue;
		if (!cudie.addr)
			continue;
		int have_sub = 0;
		if (utype == DW_UT_skeleton) {
			Dwarf_Die sd;
			if (dwarf_cu_info(cu, NULL, NULL, NULL, &sd, NULL, NULL,
					  NULL) == 0 &&
			    sd.addr && sd.cu) {
				subdie = sd;
				have_sub = 1;
			}
		}
		err = do_unit(bd, cu, &cudie, &subdie, have_sub);
	}
	if (!err && rc < 0)
		fdo_warn("symbolizer: %s: stopped reading DWARF units: %s",
			 path, dwarf_errmsg(-1));
	if (!err)
		err = build_cusegs(bd);
	sym_line_fini(&bd->lt);
	for (size_t i = 0; i < bd->nfc; i++)
		sym_line_fini(&bd->fc[i].lt);
	free(bd->fc);
	dm_free(&bd->dm);
	sym_vec_fini(&bd->endpoints);
	free(bd);
	dwarf_end(dbg);
	elf_end(elf);
	close(fd);
	inflate_release(claim);
	return err;
}
