/*
 * symbolizer/elf_file.c — the ELF side of an index: build-id, PT_LOAD
 * headers, the symbol table (with llvm-symbolizer's selection rules), and
 * the search for a separate debug file. Everything read from the file is
 * untrusted: libelf bounds-checks sections, and we check the rest.
 */
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/sym_int.h"

void sym_elf_close(struct sym_elf *h)
{
	if (h->elf)
		elf_end(h->elf);
	if (h->fd >= 0)
		close(h->fd);
	h->elf = NULL;
	h->fd = -1;
}

int sym_elf_open(const char *path, struct sym_elf *h)
{
	h->elf = NULL;
	h->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (h->fd < 0) {
		fdo_warn("symbolizer: cannot open %s: %m", path);
		return FDO_EIO;
	}
	if (fstat(h->fd, &h->st) != 0 || !S_ISREG(h->st.st_mode)) {
		fdo_warn("symbolizer: %s is not a regular file", path);
		sym_elf_close(h);
		return FDO_EIO;
	}
	elf_version(EV_CURRENT);
	h->elf = elf_begin(h->fd, ELF_C_READ_MMAP, NULL);
	if (!h->elf || elf_kind(h->elf) != ELF_K_ELF) {
		/* ELF magic without a whole header: a truncated file. */
		char magic[4];
		int trunc = pread(h->fd, magic, 4, 0) == 4 &&
			    !memcmp(magic, ELFMAG, SELFMAG);
		fdo_warn("symbolizer: %s: not ELF%s", path,
			 trunc ? " (truncated)" : "");
		sym_elf_close(h);
		return trunc ? FDO_ETRUNCATED : FDO_ENOT_ELF;
	}
	if (!gelf_getehdr(h->elf, &h->eh)) {
		fdo_warn("symbolizer: %s: bad ELF header: %s", path,
			 elf_errmsg(-1));
		sym_elf_close(h);
		return FDO_ETRUNCATED;
	}
	if (h->eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		fdo_warn("symbolizer: %s: big-endian ELF is not supported",
			 path);
		sym_elf_close(h);
		return FDO_EUNSUPPORTED;
	}
	return FDO_OK;
}

static Elf_Scn *find_section(Elf *elf, const char *name, GElf_Shdr *sh)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s)) {
		if (!gelf_getshdr(s, sh))
			continue;
		const char *n = elf_strptr(elf, shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return s;
	}
	return NULL;
}

/* read_build_id looks in PT_NOTE segments, then in SHT_NOTE sections. */
static void read_build_id(Elf *elf, uint8_t *out, size_t *len)
{
	*len = 0;
	for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(s, NULL);
		if (!d)
			continue;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) >
		       0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((char *)d->d_buf + name_off, "GNU", 4) &&
			    nh.n_descsz > 0 &&
			    nh.n_descsz <= FDO_BUILD_ID_MAX) {
				memcpy(out, (char *)d->d_buf + desc_off,
				       nh.n_descsz);
				*len = nh.n_descsz;
				return;
			}
		}
	}
}

static uint64_t sig_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t sig_file(uint64_t h, const char *path, const struct stat *st)
{
	for (const char *p = path; *p; p++)
		h = sig_mix(h, (uint8_t)*p);
	h = sig_mix(h, (uint64_t)st->st_size);
	h = sig_mix(h, (uint64_t)st->st_mtim.tv_sec);
	return sig_mix(h, (uint64_t)st->st_mtim.tv_nsec);
}

/* A debug file candidate is taken when it is ELF and, if both carry a
 * build-id, the ids agree. */
static int try_debug(const char *cand, const uint8_t *id, size_t id_len,
		     struct sym_elf_src *src)
{
	struct stat st;
	if (stat(cand, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	int fd = open(cand, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	int ok = e && elf_kind(e) == ELF_K_ELF;
	if (ok && id_len) {
		uint8_t did[FDO_BUILD_ID_MAX];
		size_t dlen;
		read_build_id(e, did, &dlen);
		ok = !dlen || (dlen == id_len && !memcmp(did, id, dlen));
	}
	if (e)
		elf_end(e);
	close(fd);
	if (ok)
		snprintf(src->debug_path, sizeof src->debug_path, "%s", cand);
	return ok;
}

static void find_debug_file(const char *elf_path, Elf *elf,
			    struct sym_elf_src *src)
{
	char cand[4096];
	const uint8_t *id = src->build_id;
	size_t n = src->build_id_len;
	if (n >= 2) {
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		fdo_hex_encode(id, n, hex);
		snprintf(cand, sizeof cand,
			 "/usr/lib/debug/.build-id/%.2s/%s.debug", hex,
			 hex + 2);
		if (try_debug(cand, id, n, src))
			return;
	}
	GElf_Shdr sh;
	Elf_Scn *s = find_section(elf, ".gnu_debuglink", &sh);
	Elf_Data *d = s ? elf_getdata(s, NULL) : NULL;
	if (!d || !d->d_buf || d->d_size < 2)
		return;
	const char *name = d->d_buf;
	size_t nlen = strnlen(name, d->d_size);
	if (nlen == 0 || nlen == d->d_size || strchr(name, '/'))
		return;
	char real[4096];
	if (!realpath(elf_path, real))
		return;
	char *dir = dirname(real);
	const char *fmts[] = {"%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(cand, sizeof cand, fmts[i], dir, name);
		char rc[4096];
		/* Never take the binary itself as its own debug file. */
		if (realpath(cand, rc) && !strcmp(rc, real))
			continue;
		if (try_debug(cand, id, n, src))
			return;
	}
}

int sym_elf_probe(const char *elf_path, const char *debug_path,
		  struct sym_elf_src *src)
{
	struct sym_elf h;
	memset(src, 0, sizeof *src);
	int err = sym_elf_open(elf_path, &h);
	if (err)
		return err;
	read_build_id(h.elf, src->build_id, &src->build_id_len);
	/* SYM_BUILD_REV: answers of an older builder are stale too. */
	uint64_t sig = sig_file(0x5159u ^ SYM_BUILD_REV, elf_path, &h.st);
	if (debug_path) {
		struct stat st;
		if (stat(debug_path, &st) != 0) {
			fdo_warn("symbolizer: cannot open debug file %s: %m",
				 debug_path);
			sym_elf_close(&h);
			return FDO_EIO;
		}
		snprintf(src->debug_path, sizeof src->debug_path, "%s",
			 debug_path);
	} else {
		find_debug_file(elf_path, h.elf, src);
	}
	if (src->debug_path[0]) {
		struct stat st;
		if (stat(src->debug_path, &st) == 0)
			sig = sig_file(sig, src->debug_path, &st);
	}
	src->sig = sig;
	sym_elf_close(&h);
	return FDO_OK;
}

/* A symbol as llvm's SymbolizableObjectFile keeps it. */
struct raw_sym {
	uint64_t addr, size;
	uint32_t name, file;
	size_t order;
};

static int raw_sym_cmp(const void *a, const void *b)
{
	const struct raw_sym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int collect_symbols(Elf *elf, struct sym_builder *b)
{
	GElf_Shdr sh;
	Elf_Scn *s = NULL;
	/* .symtab if it has symbols, else .dynsym (llvm's computeSymbolSizes),
	 * of the binary itself: llvm-symbolizer-16 reads symbols from the
	 * object it was given and DWARF from the debug object. */
	for (int pass = 0; pass < 2 && !s; pass++) {
		GElf_Word want = pass ? SHT_DYNSYM : SHT_SYMTAB;
		for (Elf_Scn *c = elf_nextscn(elf, NULL); c;
		     c = elf_nextscn(elf, c))
			if (gelf_getshdr(c, &sh) && sh.sh_type == want &&
			    sh.sh_size >= sh.sh_entsize && sh.sh_entsize) {
				s = c;
				break;
			}
	}
	if (!s)
		return FDO_OK;
	Elf_Data *d = elf_getdata(s, NULL);
	if (!d || !sh.sh_entsize)
		return FDO_OK;
	size_t count = d->d_size / sh.sh_entsize, nsec = 0;
	if (elf_getshdrnum(elf, &nsec) != 0)
		return FDO_OK;
	struct sym_vec raw;
	sym_vec_init(&raw, sizeof(struct raw_sym));
	uint32_t cur_file = SYM_NONE;
	int err = FDO_OK;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(d, (int)i, &sym))
			break;
		const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
		int type = GELF_ST_TYPE(sym.st_info);
		if (type == STT_FILE) {
			cur_file = name ? sym_strtab_add(&b->strs, name,
							 strlen(name))
					: SYM_NONE;
			continue;
		}
		if (sym.st_shndx == SHN_UNDEF ||
		    sym.st_shndx >= SHN_LORESERVE || sym.st_shndx >= nsec)
			continue;
		if (type != STT_NOTYPE && type != STT_FUNC &&
		    type != STT_OBJECT && type != STT_GNU_IFUNC)
			continue;
		struct raw_sym *r = sym_vec_push(&raw, 1);
		if (!r) {
			err = FDO_ENOMEM;
			break;
		}
		r->addr = sym.st_value;
		r->size = sym.st_size;
		r->name = sym_strtab_add(&b->strs, name ? name : "",
					 name ? strlen(name) : 0);
		r->file = GELF_ST_BIND(sym.st_info) == STB_LOCAL ? cur_file
								 : SYM_NONE;
		r->order = i;
		if (r->name == SYM_NONE) {
			err = FDO_ENOMEM;
			break;
		}
	}
	if (!err && raw.n) {
		qsort(raw.p, raw.n, sizeof(struct raw_sym), raw_sym_cmp);
		struct raw_sym *rs = raw.p;
		/* Of the symbols at one address keep the last in that order:
		 * the largest, and the latest in the table among equals. */
		for (size_t i = 0; i < raw.n; i++) {
			if (i + 1 < raw.n && rs[i + 1].addr == rs[i].addr)
				continue;
			struct sym_sym *o = sym_vec_push(&b->syms, 1);
			if (!o) {
				err = FDO_ENOMEM;
				break;
			}
			o->addr = rs[i].addr;
			o->size = rs[i].size;
			o->name = rs[i].name;
			o->file = rs[i].file;
		}
	}
	sym_vec_fini(&raw);
	return err;
}

int sym_elf_collect(const char *elf_path, struct sym_builder *b)
{
	struct sym_elf h;
	int err = sym_elf_open(elf_path, &h);
	if (err)
		return err;
	read_build_id(h.elf, b->build_id, &b->build_id_len);
	size_t nph = 0;
	if (elf_getphdrnum(h.elf, &nph) == 0) {
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(h.elf, (int)i, &ph) ||
			    ph.p_type != PT_LOAD)
				continue;
			struct sym_load *l = sym_vec_push(&b->loads, 1);
			if (!l) {
				sym_elf_close(&h);
				return FDO_ENOMEM;
			}
			l->off = ph.p_offset;
			l->filesz = ph.p_filesz;
			l->vaddr = ph.p_vaddr;
		}
	}
	err = collect_symbols(h.elf, b);
	sym_elf_close(&h);
	return err;
}
