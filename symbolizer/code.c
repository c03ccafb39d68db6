/*
 * symbolizer/code.c — an ELF executable's machine code for the CFG builder
 * (cfg.c): its PT_LOAD segments, mapped through libelf, and the facts that
 * tell which calls never return (function symbols of abort, exit, ...; the
 * GOT slots such imports are bound to, and the PLT stubs that jump
 * through them).
 *
 * Workload: one open per binary whose basic-block profile is wanted, then
 * one sym_cfg_build per function (thousands), each reading its bytes and
 * a few jump-table entries, and asking about the targets of its calls.
 * Lookups are binary searches over small sorted arrays. Everything read
 * from the file is untrusted: libelf bounds-checks the section data, and
 * we check segment ranges against the file size.
 */
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "symbolizer/sym_int.h"

/* A PT_LOAD segment's file-backed part: [vaddr, vaddr+filesz). */
struct code_load {
	uint64_t vaddr, filesz;
	const uint8_t *bytes;
	uint32_t exec; /* PF_X */
};

/* A PLT section [lo, hi). */
struct code_range {
	uint64_t lo, hi;
};

/* An open file; immutable after sym_code_open, so any thread may read it. */
struct sym_code {
	struct sym_elf h;	 /* the open file (fd -1, elf NULL in memory) */
	Elf *elf;		 /* h.elf: keeps the mapping alive */
	struct code_load *loads; /* sorted by vaddr */
	size_t nloads;
	uint64_t *noret_funcs; /* addresses of noreturn functions, sorted */
	size_t nnoret_funcs;
	uint64_t *noret_slots; /* GOT slots bound to them, sorted */
	size_t nnoret_slots;
	struct code_range *plts; /* PLT sections */
	size_t nplts;
	struct code_range *execs; /* SHF_EXECINSTR sections, sorted */
	size_t nexecs;
};

/* Beyond this many PT_LOADs a file is not one a linker wrote. */
#define CODE_MAX_LOADS 4096

/* Functions that never return, by name (glibc, libgcc, libstdc++).
 * error() and error_at_line() are absent on purpose: they return when
 * their status is 0. */
static const char *const noreturn_names[] = {
	"abort",
	"exit",
	"_exit",
	"_Exit",
	"quick_exit",
	"__assert_fail",
	"__assert_perror_fail",
	"__assert",
	"__stack_chk_fail",
	"__stack_chk_fail_local",
	"__fortify_fail",
	"__chk_fail",
	"longjmp",
	"_longjmp",
	"siglongjmp",
	"__longjmp_chk",
	"err",
	"errx",
	"verr",
	"verrx",
	"pthread_exit",
	"__cxa_throw",
	"__cxa_rethrow",
	"_Unwind_Resume",
	"__libc_fatal",
	"__cxa_bad_cast",
	"__cxa_bad_typeid",
	"__cxa_throw_bad_array_new_length",
	"__cxa_call_terminate",
	"_ZSt9terminatev",
};

static int name_noreturn(const char *n)
{
	if (!n || !*n)
		return 0;
	for (size_t i = 0; i < sizeof noreturn_names / sizeof *noreturn_names;
	     i++)
		if (!strcmp(n, noreturn_names[i]))
			return 1;
	/* libstdc++'s std::__throw_logic_error(char const*) and kin:
	 * "_ZSt" <length> "__throw_" ... */
	if (!strncmp(n, "_ZSt", 4)) {
		const char *p = n + 4;
		while (*p >= '0' && *p <= '9')
			p++;
		return p > n + 4 && !strncmp(p, "__throw_", 8);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_load(const void *a, const void *b)
{
	const struct code_load *x = a, *y = b;
	if (x->vaddr != y->vaddr)
		return x->vaddr < y->vaddr ? -1 : 1;
	return x->filesz < y->filesz ? -1 : x->filesz > y->filesz;
}

static int cmp_range(const void *a, const void *b)
{
	const struct code_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static int has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof *v, cmp_u64) != NULL;
}

/* push_u64 appends x to the array *v of *n elements (capacity *cap). */
static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (fdo_grow(*v, *cap, *n + 1))
		return FDO_ENOMEM;
	(*v)[(*n)++] = x;
	return FDO_OK;
}

/* sort_unique sorts v and drops duplicates. */
static void sort_unique(uint64_t *v, size_t *n)
{
	if (!*n)
		return;
	qsort(v, *n, sizeof *v, cmp_u64);
	size_t k = 1;
	for (size_t i = 1; i < *n; i++)
		if (v[i] != v[k - 1])
			v[k++] = v[i];
	*n = k;
}

/* collect_loads reads the PT_LOAD headers; their file bytes must lie
 * inside the file. */
static int collect_loads(sym_code *c, const uint8_t *raw, size_t rawsize)
{
	size_t nph = 0;
	if (elf_getphdrnum(c->elf, &nph) != 0)
		return FDO_ETRUNCATED;
	size_t cap = 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(c->elf, (int)i, &ph))
			return FDO_ETRUNCATED;
		if (ph.p_type != PT_LOAD || !ph.p_filesz)
			continue;
		if (ph.p_offset > rawsize ||
		    ph.p_filesz > rawsize - ph.p_offset)
			return FDO_ETRUNCATED;
		/* A segment that wraps the address space is unusable. */
		if (ph.p_vaddr + ph.p_filesz < ph.p_vaddr)
			continue;
		if (c->nloads >= CODE_MAX_LOADS)
			return FDO_EUNSUPPORTED;
		if (fdo_grow(c->loads, cap, c->nloads + 1))
			return FDO_ENOMEM;
		c->loads[c->nloads++] = (struct code_load){
			.vaddr = ph.p_vaddr,
			.filesz = ph.p_filesz,
			.bytes = raw + ph.p_offset,
			.exec = (ph.p_flags & PF_X) != 0,
		};
	}
	if (c->nloads)
		qsort(c->loads, c->nloads, sizeof *c->loads, cmp_load);
	return FDO_OK;
}

/* collect_names fills the noreturn functions (defined FUNC symbols of
 * .symtab and .dynsym), the GOT slots bound to noreturn imports (JUMP_SLOT
 * and GLOB_DAT relocations) and the PLT sections. */
static int collect_names(sym_code *c)
{
	size_t shstrndx, nsec;
	if (elf_getshdrstrndx(c->elf, &shstrndx) != 0 ||
	    elf_getshdrnum(c->elf, &nsec) != 0)
		return FDO_OK; /* no section headers: nothing known by name */
	size_t capf = 0, caps = 0, capp = 0, capx = 0;
	for (Elf_Scn *s = elf_nextscn(c->elf, NULL); s;
	     s = elf_nextscn(c->elf, s)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh))
			continue;
		const char *sname = elf_strptr(c->elf, shstrndx, sh.sh_name);
		if ((sh.sh_flags & (SHF_EXECINSTR | SHF_ALLOC)) ==
			    (SHF_EXECINSTR | SHF_ALLOC) &&
		    sh.sh_size && sh.sh_addr + sh.sh_size > sh.sh_addr) {
			if (fdo_grow(c->execs, capx, c->nexecs + 1))
				return FDO_ENOMEM;
			c->execs[c->nexecs++] = (struct code_range){
				sh.sh_addr, sh.sh_addr + sh.sh_size};
		}
		if ((sh.sh_flags & SHF_EXECINSTR) && sname &&
		    !strncmp(sname, ".plt", 4) && sh.sh_size &&
		    sh.sh_addr + sh.sh_size > sh.sh_addr) {
			if (fdo_grow(c->plts, capp, c->nplts + 1))
				return FDO_ENOMEM;
			c->plts[c->nplts++] = (struct code_range){
				sh.sh_addr, sh.sh_addr + sh.sh_size};
		}
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) {
			Elf_Data *d = elf_getdata(s, NULL);
			if (!d || !sh.sh_entsize)
				continue;
			size_t n = d->d_size / sizeof(Elf64_Sym);
			if (n > INT32_MAX)
				n = INT32_MAX;
			for (size_t i = 1; i < n; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(d, (int)i, &sym))
					break;
				int t = GELF_ST_TYPE(sym.st_info);
				if ((t != STT_FUNC && t != STT_GNU_IFUNC) ||
				    sym.st_shndx == SHN_UNDEF || !sym.st_value)
					continue;
				const char *name = elf_strptr(
					c->elf, sh.sh_link, sym.st_name);
				if (name_noreturn(name) &&
				    push_u64(&c->noret_funcs, &c->nnoret_funcs,
					     &capf, sym.st_value))
					return FDO_ENOMEM;
			}
		}
		if (sh.sh_type == SHT_RELA && sh.sh_link < nsec) {
			Elf_Data *d = elf_getdata(s, NULL);
			Elf_Scn *ss = elf_getscn(c->elf, sh.sh_link);
			GElf_Shdr ssh;
			Elf_Data *sd = ss ? elf_getdata(ss, NULL) : NULL;
			if (!d || !sd || !gelf_getshdr(ss, &ssh) ||
			    (ssh.sh_type != SHT_DYNSYM &&
			     ssh.sh_type != SHT_SYMTAB))
				continue;
			size_t n = d->d_size / sizeof(Elf64_Rela);
			if (n > INT32_MAX)
				n = INT32_MAX;
			for (size_t i = 0; i < n; i++) {
				GElf_Rela r;
				if (!gelf_getrela(d, (int)i, &r))
					break;
				uint64_t type = GELF_R_TYPE(r.r_info);
				if (type != R_X86_64_JUMP_SLOT &&
				    type != R_X86_64_GLOB_DAT)
					continue;
				GElf_Sym sym;
				uint64_t si = GELF_R_SYM(r.r_info);
				if (!si || si > INT32_MAX ||
				    !gelf_getsym(sd, (int)si, &sym))
					continue;
				const char *name = elf_strptr(
					c->elf, ssh.sh_link, sym.st_name);
				if (name_noreturn(name) &&
				    push_u64(&c->noret_slots, &c->nnoret_slots,
					     &caps, r.r_offset))
					return FDO_ENOMEM;
			}
		}
	}
	if (c->nexecs)
		qsort(c->execs, c->nexecs, sizeof *c->execs, cmp_range);
	sort_unique(c->noret_funcs, &c->nnoret_funcs);
	sort_unique(c->noret_slots, &c->nnoret_slots);
	return FDO_OK;
}

int sym_code_open(const char *elf_path, sym_code **out)
{
	*out = NULL;
	sym_code *c = calloc(1, sizeof *c);
	if (!c)
		return FDO_ENOMEM;
	int err = sym_elf_open(elf_path, &c->h);
	if (err) {
		free(c);
		return err;
	}
	c->elf = c->h.elf;
	if (gelf_getclass(c->elf) != ELFCLASS64 ||
	    c->h.eh.e_machine != EM_X86_64) {
		fdo_warn("symbolizer: %s: only ELF64 x86-64 code is "
			 "disassembled",
			 elf_path);
		err = FDO_EUNSUPPORTED;
		goto out;
	}
	size_t rawsize = 0;
	const uint8_t *raw = (const uint8_t *)elf_rawfile(c->elf, &rawsize);
	if (!raw) {
		err = FDO_ETRUNCATED;
		goto out;
	}
	err = collect_loads(c, raw, rawsize);
	if (err) {
		fdo_warn("symbolizer: %s: bad program headers: %s", elf_path,
			 fdo_strerror(err));
		goto out;
	}
	err = collect_names(c);
out:
	if (err) {
		sym_code_close(c);
		return err;
	}
	*out = c;
	return FDO_OK;
}

void sym_code_close(sym_code *c)
{
	if (!c)
		return;
	sym_elf_close(&c->h);
	free(c->loads);
	free(c->noret_funcs);
	free(c->noret_slots);
	free(c->plts);
	free(c->execs);
	free(c);
}

/* find_load returns the segment holding vaddr: of those starting at or
 * below it, the one with the highest start (linked files have no
 * overlapping segments; for a hostile one any answer is safe). */
static const struct code_load *find_load(const sym_code *c, uint64_t vaddr)
{
	size_t lo = 0, hi = c->nloads;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->loads[mid].vaddr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct code_load *l = &c->loads[lo - 1];
	return vaddr - l->vaddr < l->filesz ? l : NULL;
}

const uint8_t *sym_code_text(const sym_code *c, uint64_t vaddr, size_t *avail)
{
	const struct code_load *l = find_load(c, vaddr);
	*avail = 0;
	if (!l || !l->exec)
		return NULL;
	*avail = l->filesz - (vaddr - l->vaddr);
	return l->bytes + (vaddr - l->vaddr);
}

int sym_code_read(const sym_code *c, uint64_t vaddr, void *buf, size_t len)
{
	const struct code_load *l = find_load(c, vaddr);
	if (!l || len > l->filesz - (vaddr - l->vaddr))
		return FDO_ENOT_FOUND;
	memcpy(buf, l->bytes + (vaddr - l->vaddr), len);
	return FDO_OK;
}

int sym_code_is_code(const sym_code *c, uint64_t vaddr)
{
	size_t avail;
	if (!sym_code_text(c, vaddr, &avail))
		return 0;
	if (!c->nexecs)
		return 1;
	/* The last section starting at or below vaddr (sections of a
	 * linked file do not overlap). */
	size_t lo = 0, hi = c->nexecs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->execs[mid].lo <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && vaddr < c->execs[lo - 1].hi;
}

int sym_code_noreturn_slot(const sym_code *c, uint64_t slot)
{
	return has_u64(c->noret_slots, c->nnoret_slots, slot);
}

/* plt_slot finds the GOT slot a PLT stub at target jumps through:
 * [endbr64] [bnd|notrack] jmp *disp32(%rip), the stub of .plt, .plt.sec
 * and .plt.got alike. Returns 1 and *slot, or 0. */
static int plt_slot(const sym_code *c, uint64_t target, uint64_t *slot)
{
	size_t avail;
	const uint8_t *p = sym_code_text(c, target, &avail);
	if (!p)
		return 0;
	size_t i = 0;
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	if (avail >= 4 && !memcmp(p, endbr64, 4))
		i = 4;
	if (i < avail && (p[i] == 0xf2 || p[i] == 0x3e))
		i++;
	if (avail < i + 6 || p[i] != 0xff || p[i + 1] != 0x25)
		return 0;
	int32_t disp;
	memcpy(&disp, p + i + 2, 4);
	*slot = target + i + 6 + (uint64_t)(int64_t)disp;
	return 1;
}

int sym_code_noreturn(const sym_code *c, uint64_t target)
{
	if (has_u64(c->noret_funcs, c->nnoret_funcs, target))
		return 1;
	if (!c->nnoret_slots)
		return 0;
	for (size_t i = 0; i < c->nplts; i++) {
		uint64_t slot;
		if (target >= c->plts[i].lo && target < c->plts[i].hi)
			return plt_slot(c, target, &slot) &&
			       sym_code_noreturn_slot(c, slot);
	}
	return 0;
}

int sym_cfg_build_bytes(const uint8_t *code, size_t len, uint64_t addr,
			const uint8_t *data, size_t dlen, uint64_t daddr,
			struct sym_cfg **out)
{
	struct code_load loads[2];
	size_t n = 0;
	if (len && addr + len >= addr)
		loads[n++] = (struct code_load){addr, len, code, 1};
	if (data && dlen && daddr + dlen >= daddr)
		loads[n++] = (struct code_load){daddr, dlen, data, 0};
	if (n == 2 && cmp_load(&loads[0], &loads[1]) > 0) {
		struct code_load t = loads[0];
		loads[0] = loads[1];
		loads[1] = t;
	}
	struct sym_code c = {.h = {.fd = -1}, .loads = loads, .nloads = n};
	return sym_cfg_build(&c, addr, len, out);
}
