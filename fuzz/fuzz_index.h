/*
 * fuzz/fuzz_index.h — lookups in a symbolizer index at every boundary it
 * holds, for the targets that get an index (fuzz_dwarf: one the builder
 * made; fuzz_symindex: one read back from a mutated cache file). Every
 * string a lookup returns is read through, so ASan sees any reference
 * outside the index. Include after fuzz/fuzz.h and symbolizer/sym_int.h.
 */
#ifndef FDO_FUZZ_INDEX_H
#define FDO_FUZZ_INDEX_H

static void fuzz_index_lookup(const sym_index *idx, uint64_t a)
{
	struct sym_frame fr[8];
	struct sym_symbol sym;
	size_t n = 0;
	FUZZ_CHECK(sym_index_lookup(idx, a, fr, 8, &n, &sym) == FDO_OK);
	for (size_t i = 0; i < n && i < 8; i++) {
		if (fr[i].function)
			(void)strlen(fr[i].function);
		if (fr[i].file)
			(void)strlen(fr[i].file);
		FUZZ_CHECK(fr[i].start_file != NULL);
		(void)strlen(fr[i].start_file);
	}
	if (sym.found) {
		FUZZ_CHECK(sym.name != NULL);
		(void)strlen(sym.name);
		if (sym.file)
			(void)strlen(sym.file);
	}
	uint64_t va;
	(void)sym_index_offset_to_vaddr(idx, a, &va);
}

/* At most `budget` lookups at the edges of every table, then 0, ~0. */
static void fuzz_index_lookups(const sym_index *idx, size_t budget)
{
	const struct sym_view *v = &idx->v;
	for (uint64_t i = 0; i < v->ncusegs && budget >= 2; i++, budget -= 2) {
		fuzz_index_lookup(idx, v->cusegs[i].lo);
		fuzz_index_lookup(idx, v->cusegs[i].hi - 1);
	}
	for (uint64_t i = 0; i < v->nseqs && budget; i++, budget--)
		fuzz_index_lookup(idx, v->seqs[i].lo);
	for (uint64_t i = 0; i < v->nrows && budget; i++, budget--)
		fuzz_index_lookup(idx, v->rows[i].addr);
	for (uint64_t i = 0; i < v->ndmap && budget; i++, budget--)
		fuzz_index_lookup(idx, v->dmap[i].lo);
	for (uint64_t i = 0; i < v->nsyms && budget; i++, budget--)
		fuzz_index_lookup(idx, v->syms[i].addr);
	for (uint64_t i = 0; i < v->nloads && budget; i++, budget--)
		fuzz_index_lookup(idx, v->loads[i].off);
	fuzz_index_lookup(idx, 0);
	fuzz_index_lookup(idx, UINT64_MAX);
	const uint8_t *id;
	size_t len;
	sym_index_build_id(idx, &id, &len);
	FUZZ_CHECK(len <= FDO_BUILD_ID_MAX);
}

#endif
