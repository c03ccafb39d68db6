/*
 * symbolizer/funcs.c — the function symbols of an ELF file, named as
 * llvm-bolt names them (the BOLT emitter needs "function + offset" in
 * llvm-bolt's spelling; see symbolizer.h sym_elf_functions).
 *
 * llvm-bolt (RewriteInstance::discoverFileObjects, LLVM 16) walks the
 * symbols of .symtab that are defined, not STT_FILE, in an allocated
 * section (or absolute), at a non-zero address, sorted by address (stable;
 * at one address FUNC first, STT_SECTION last), and gives every local one
 * with a name the unique name "<name>/<N>", N counting that name's
 * locals so far (NameResolver::uniquify). Globals and weak symbols keep
 * their plain name. We count exactly those symbols (section symbols
 * excepted: llvm names them after their section, ".text/1", a name no
 * function has) and report N for the FUNC ones.
 *
 * Workload: one call per profile request that needs it; a binary has up to
 * a few hundred thousand symbols. Everything read from the file is
 * untrusted: libelf bounds-checks the section data and the string reads,
 * and we check section indexes and sizes.
 */
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/sym_int.h"

/* More symbols than this is not a binary we can be asked about. */
#define FUNCS_MAX_SYMBOLS (64u << 20)

/* A symbol that llvm-bolt numbers (local) or that we list (FUNC). */
struct cand {
	uint64_t addr, size;
	const char *name; /* into the ELF image, valid until elf_end */
	size_t order;	  /* index in the symbol table */
	uint32_t rank;	  /* llvm-bolt's order at one address: FUNC 0,
			     other 1 */
	uint32_t bind;	  /* enum sym_bind */
	uint32_t ordinal;
	int local_counted; /* takes part in the name/N count */
	int is_func;	   /* listed */
};

static int cmp_bolt_order(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a;
	const struct cand *y = *(const struct cand *const *)b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static const uint32_t bind_rank[] = {
	[SYM_BIND_GLOBAL] = 0, [SYM_BIND_WEAK] = 1, [SYM_BIND_LOCAL] = 2};

static int cmp_listing(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a;
	const struct cand *y = *(const struct cand *const *)b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->bind != y->bind)
		return bind_rank[x->bind] < bind_rank[y->bind] ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static Elf_Scn *find_symtab(Elf *elf, GElf_Shdr *sh)
{
	/* .symtab if it has symbols, else .dynsym (as elf_file.c). */
	for (int pass = 0; pass < 2; pass++) {
		GElf_Word want = pass ? SHT_DYNSYM : SHT_SYMTAB;
		for (Elf_Scn *c = elf_nextscn(elf, NULL); c;
		     c = elf_nextscn(elf, c))
			if (gelf_getshdr(c, sh) && sh->sh_type == want &&
			    sh->sh_entsize && sh->sh_size >= sh->sh_entsize)
				return c;
	}
	return NULL;
}

/* section_alloc tells whether section index shndx exists and is SHF_ALLOC
 * (llvm-bolt's isSymbolInMemory); if so, *sh is its header. */
static int section_alloc(Elf *elf, size_t shndx, size_t nsec, GElf_Shdr *sh)
{
	if (shndx == SHN_UNDEF || shndx >= nsec)
		return 0;
	Elf_Scn *s = elf_getscn(elf, shndx);
	return s && gelf_getshdr(s, sh) && (sh->sh_flags & SHF_ALLOC);
}

/* collect reads the symbol table into c (*nc entries). */
static int collect(Elf *elf, struct cand **cands, size_t *nc)
{
	*cands = NULL;
	*nc = 0;
	GElf_Shdr sh;
	Elf_Scn *s = find_symtab(elf, &sh);
	if (!s)
		return FDO_OK;
	Elf_Data *d = elf_getdata(s, NULL);
	size_t nsec = 0;
	if (!d || elf_getshdrnum(elf, &nsec) != 0)
		return FDO_OK;
	size_t count = d->d_size / sh.sh_entsize;
	if (count > FUNCS_MAX_SYMBOLS)
		return FDO_ELIMIT;
	/* Extended section indexes, if the table has them. */
	Elf_Data *xd = NULL;
	size_t xndx = elf_scnshndx(s);
	if (xndx > 0 && xndx < nsec)
		xd = elf_getdata(elf_getscn(elf, xndx), NULL);
	struct cand *c = count ? calloc(count, sizeof *c) : NULL;
	if (count && !c)
		return FDO_ENOMEM;
	size_t n = 0;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		Elf32_Word shx = 0;
		if (!gelf_getsymshndx(d, xd, (int)i, &sym, &shx))
			break;
		int type = GELF_ST_TYPE(sym.st_info);
		int bind = GELF_ST_BIND(sym.st_info);
		size_t shndx = sym.st_shndx == SHN_XINDEX ? shx : sym.st_shndx;
		if (type == STT_FILE || type == STT_SECTION ||
		    sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
			continue;
		GElf_Shdr sec = {0};
		int in_mem = sym.st_shndx == SHN_ABS ||
			     (sym.st_shndx != SHN_COMMON &&
			      section_alloc(elf, shndx, nsec, &sec));
		if (!in_mem)
			continue;
		const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
		if (!name || !*name || !strcmp(name, "__hot_start") ||
		    !strcmp(name, "__hot_end"))
			continue;
		int is_func = (type == STT_FUNC || type == STT_GNU_IFUNC) &&
			      sym.st_shndx != SHN_ABS;
		if (bind != STB_LOCAL && !is_func)
			continue;
		struct cand *o = &c[n++];
		o->addr = sym.st_value;
		o->size = sym.st_size;
		/* Size 0 (_init, hand-written assembly) reaches at most to
		 * the end of its section: else the PLT after .init would
		 * count as _init, and llvm-bolt would place a "hot" _init
		 * first, shifting main off its alignment (measured: the
		 * demo's BOLT variant 10% slower). */
		if (!o->size && sec.sh_size && sym.st_value >= sec.sh_addr &&
		    sym.st_value - sec.sh_addr < sec.sh_size)
			o->size = sec.sh_addr + sec.sh_size - sym.st_value;
		o->name = name;
		o->order = i;
		o->rank = type == STT_FUNC ? 0 : 1;
		o->bind = bind == STB_LOCAL  ? SYM_BIND_LOCAL
			  : bind == STB_WEAK ? SYM_BIND_WEAK
					     : SYM_BIND_GLOBAL;
		o->local_counted = bind == STB_LOCAL;
		o->is_func = is_func;
	}
	*cands = c;
	*nc = n;
	return FDO_OK;
}

/* number_locals sets the ordinal of every counted local. */
static int number_locals(struct cand *c, size_t n)
{
	size_t nl = 0;
	for (size_t i = 0; i < n; i++)
		nl += c[i].local_counted;
	if (!nl)
		return FDO_OK;
	struct cand **v = malloc(nl * sizeof *v);
	if (!v)
		return FDO_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].local_counted)
			v[k++] = &c[i];
	qsort(v, nl, sizeof *v, cmp_bolt_order);
	uint32_t ord = 0;
	for (size_t i = 0; i < nl; i++) {
		ord = i && !strcmp(v[i]->name, v[i - 1]->name) ? ord + 1 : 1;
		v[i]->ordinal = ord;
	}
	free(v);
	return FDO_OK;
}

/* build_listing copies the FUNC candidates, sorted, and their names into
 * one allocation. */
static int build_listing(struct cand *c, size_t n, struct sym_func **out,
			 size_t *nout)
{
	size_t nf = 0, bytes = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].is_func) {
			nf++;
			bytes += strlen(c[i].name) + 1;
		}
	*out = NULL;
	*nout = 0;
	if (!nf)
		return FDO_OK;
	struct cand **v = malloc(nf * sizeof *v);
	struct sym_func *f = malloc(nf * sizeof *f + bytes);
	if (!v || !f) {
		free(v);
		free(f);
		return FDO_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].is_func)
			v[k++] = &c[i];
	qsort(v, nf, sizeof *v, cmp_listing);
	char *names = (char *)(f + nf);
	for (size_t i = 0; i < nf; i++) {
		size_t len = strlen(v[i]->name) + 1;
		memcpy(names, v[i]->name, len);
		f[i] = (struct sym_func){
			.addr = v[i]->addr,
			.size = v[i]->size,
			.name = names,
			.ordinal = v[i]->bind == SYM_BIND_LOCAL ? v[i]->ordinal
								: 0,
			.bind = v[i]->bind,
		};
		names += len;
	}
	free(v);
	*out = f;
	*nout = nf;
	return FDO_OK;
}

int sym_elf_functions(const char *elf_path, struct sym_func **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	struct sym_elf h;
	int err = sym_elf_open(elf_path, &h);
	if (err)
		return err;
	struct cand *c = NULL;
	size_t nc = 0;
	err = collect(h.elf, &c, &nc);
	if (!err)
		err = number_locals(c, nc);
	/* Names point into the mapped image: copy them before elf_end. */
	if (!err)
		err = build_listing(c, nc, out, n);
	free(c);
	sym_elf_close(&h);
	return err;
}

void sym_elf_functions_free(struct sym_func *funcs)
{
	free(funcs);
}

/* group_start returns the first index of the alias group holding i. */
static size_t group_start(const struct sym_func *f, size_t i)
{
	while (i > 0 && f[i - 1].addr == f[i].addr)
		i--;
	return i;
}

/* covers tells whether the alias group starting at g (the widest of its
 * sizes; size 0 up to the next address) contains vaddr. */
static int covers(const struct sym_func *f, size_t n, size_t g, uint64_t v)
{
	uint64_t size = 0;
	size_t i = g;
	for (; i < n && f[i].addr == f[g].addr; i++)
		if (f[i].size > size)
			size = f[i].size;
	if (size)
		return v - f[g].addr < size;
	return i < n && v < f[i].addr;
}

const struct sym_func *sym_func_find(const struct sym_func *funcs, size_t n,
				     uint64_t vaddr)
{
	/* The last entry with addr <= vaddr. */
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (funcs[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	/* A symbol inside another function (an alternate entry, a local
	 * label typed FUNC) may not cover vaddr while the enclosing one
	 * does: look back a few groups. */
	size_t g = group_start(funcs, lo - 1);
	for (int tries = 0; tries < 8; tries++) {
		if (covers(funcs, n, g, vaddr))
			return &funcs[g];
		if (!g)
			break;
		g = group_start(funcs, g - 1);
	}
	return NULL;
}
