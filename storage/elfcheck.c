/*
 * storage/elfcheck.c — what an uploaded file is: validate that it is an ELF
 * executable, shared object or separate debug file, read its GNU build-id
 * and tell whether it carries loadable bytes and DWARF.
 *
 * Workload: once per upload, on files from outside (release pipelines, HTTP
 * bodies), possibly hostile or truncated, possibly hundreds of MB. So:
 * nothing is mapped or read whole; headers are read with pread into small
 * buffers; every offset and size is checked against the file size with
 * overflow-safe arithmetic before it is used; counts are capped. Both
 * classes (32/64) and both byte orders are read through one unified header
 * view. Uses glibc's <elf.h> for constants and struct layouts only (no
 * libelf: storage/ does not depend on elfutils); notes are walked by the
 * reader the agent uses too (common/elfnote.c).
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/elfnote.h"
#include "storage/storage_int.h"

#define MAX_SECTIONS	(1u << 18)
#define MAX_SEGMENTS	(1u << 16)
#define MAX_NOTE_BYTES	(64u * 1024)
#define MAX_DYN_ENTRIES (1u << 14)
#define NAME_MAX_READ	32

struct elf {
	int fd;
	uint64_t size;
	int is64, be;
	char *why;
	size_t why_cap;
};

/* Unified views of the 32- and 64-bit headers. */
struct ehdr {
	uint16_t type, machine;
	uint32_t version;
	uint64_t phoff, shoff;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct shdr {
	uint32_t name, type, link, info;
	uint64_t flags, offset, size, addralign;
};
struct phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, filesz, memsz, align;
};

__attribute__((format(printf, 3, 4))) static int fail(struct elf *e, int err,
						      const char *fmt, ...)
{
	if (e->why && e->why_cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->why, e->why_cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* in_file: [off, off+len) lies within the file. */
static int in_file(const struct elf *e, uint64_t off, uint64_t len)
{
	return off <= e->size && len <= e->size - off;
}

/* rd reads exactly n bytes at off, which the caller checked with in_file. */
static int rd(struct elf *e, uint64_t off, void *buf, size_t n)
{
	int rc = fdo_elf_pread(e->fd, off, buf, n);
	if (rc == FDO_EIO)
		return fail(e, FDO_EIO, "read error: %s", strerror(errno));
	if (rc)
		return fail(e, FDO_ETRUNCATED, "file shrank while being read");
	return FDO_OK;
}

static uint16_t g16(const struct elf *e, const uint8_t *p)
{
	return (uint16_t)fdo_elf_get(p, 2, e->be);
}

static uint32_t g32(const struct elf *e, const uint8_t *p)
{
	return (uint32_t)fdo_elf_get(p, 4, e->be);
}

static uint64_t g64(const struct elf *e, const uint8_t *p)
{
	return fdo_elf_get(p, 8, e->be);
}

/* gw reads an address-sized word (Elf32_Word/Elf64_Xword fields). */
static uint64_t gw(const struct elf *e, const uint8_t *p)
{
	return e->is64 ? g64(e, p) : g32(e, p);
}

#define F(T32, T64, field)                                                     \
	(e->is64 ? offsetof(T64, field) : offsetof(T32, field))

static void parse_ehdr(const struct elf *e, const uint8_t *b, struct ehdr *h)
{
	h->type = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_type));
	h->machine = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_machine));
	h->version = g32(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_version));
	h->phoff = gw(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_phoff));
	h->shoff = gw(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_shoff));
	h->ehsize = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_ehsize));
	h->phentsize = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_phentsize));
	h->phnum = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_phnum));
	h->shentsize = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_shentsize));
	h->shnum = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_shnum));
	h->shstrndx = g16(e, b + F(Elf32_Ehdr, Elf64_Ehdr, e_shstrndx));
}

static size_t shdr_size(const struct elf *e)
{
	return e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
}

static size_t phdr_size(const struct elf *e)
{
	return e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
}

/* read_shdr reads section header i; the table was checked to be in the
 * file. */
static int read_shdr(struct elf *e, const struct ehdr *h, uint64_t i,
		     struct shdr *s)
{
	uint8_t b[sizeof(Elf64_Shdr)];
	int rc = rd(e, h->shoff + i * shdr_size(e), b, shdr_size(e));
	if (rc)
		return rc;
	s->name = g32(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_name));
	s->type = g32(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_type));
	s->flags = gw(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_flags));
	s->offset = gw(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_offset));
	s->size = gw(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_size));
	s->link = g32(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_link));
	s->info = g32(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_info));
	s->addralign = gw(e, b + F(Elf32_Shdr, Elf64_Shdr, sh_addralign));
	return FDO_OK;
}

static int read_phdr(struct elf *e, uint64_t phoff, uint64_t i, struct phdr *p)
{
	uint8_t b[sizeof(Elf64_Phdr)];
	int rc = rd(e, phoff + i * phdr_size(e), b, phdr_size(e));
	if (rc)
		return rc;
	p->type = g32(e, b + F(Elf32_Phdr, Elf64_Phdr, p_type));
	p->offset = gw(e, b + F(Elf32_Phdr, Elf64_Phdr, p_offset));
	p->filesz = gw(e, b + F(Elf32_Phdr, Elf64_Phdr, p_filesz));
	p->align = gw(e, b + F(Elf32_Phdr, Elf64_Phdr, p_align));
	p->vaddr = gw(e, b + F(Elf32_Phdr, Elf64_Phdr, p_vaddr));
	p->memsz = gw(e, b + F(Elf32_Phdr, Elf64_Phdr, p_memsz));
	p->flags = g32(e, b + F(Elf32_Phdr, Elf64_Phdr, p_flags));
	return FDO_OK;
}

/*
 * scan_notes looks for NT_GNU_BUILD_ID in the notes at [off, off+size),
 * already checked to be in the file; only the first MAX_NOTE_BYTES are
 * read. Malformed notes end the scan quietly (other notes are not our
 * business); a GNU build-id note with a bad length is an error.
 */
static int scan_notes(struct elf *e, uint64_t off, uint64_t size,
		      uint64_t align, struct store_elf_info *info)
{
	size_t len = size > MAX_NOTE_BYTES ? MAX_NOTE_BYTES : (size_t)size;
	if (len < 12)
		return FDO_OK;
	uint8_t *buf = malloc(len);
	if (!buf)
		return FDO_ENOMEM;
	int rc = rd(e, off, buf, len);
	if (rc) {
		free(buf);
		return rc;
	}
	size_t n = 0;
	rc = fdo_elf_note_build_id(buf, len, e->be, align, info->build_id, &n);
	free(buf);
	if (rc == FDO_OK)
		info->build_id_len = n;
	if (rc == FDO_EBAD_BUILD_ID)
		return fail(e, FDO_EBAD_BUILD_ID,
			    "GNU build-id note holds %zu bytes (1-64 allowed)",
			    n);
	return FDO_OK; /* FDO_ETRUNCATED, FDO_ENO_BUILD_ID: quietly none */
}

/*
 * inflated_size: the bytes section s claims it holds once decompressed,
 * from its compression header (SHF_COMPRESSED: Elf32/64_Chdr.ch_size; the
 * GNU form .zdebug_*: "ZLIB" and a big-endian 64-bit size), which is what
 * libelf allocates before inflating; 0 for a section stored plain. Read
 * before anything is inflated, so a small file cannot claim gigabytes
 * unnoticed.
 */
static int inflated_size(struct elf *e, const struct shdr *s, const char *name,
			 uint64_t *out)
{
	*out = 0;
	uint8_t b[sizeof(Elf64_Chdr)];
	if (s->flags & SHF_COMPRESSED) {
		size_t n = e->is64 ? sizeof(Elf64_Chdr) : sizeof(Elf32_Chdr);
		if (s->size < n)
			return fail(e, FDO_EPARSE,
				    "section %s is compressed but smaller than "
				    "its compression header",
				    name);
		int rc = rd(e, s->offset, b, n);
		if (rc)
			return rc;
		*out = e->is64 ? g64(e, b + offsetof(Elf64_Chdr, ch_size))
			       : g32(e, b + offsetof(Elf32_Chdr, ch_size));
		return FDO_OK;
	}
	if (!strncmp(name, ".zdebug", 7) && s->size >= 12) {
		int rc = rd(e, s->offset, b, 12);
		if (rc)
			return rc;
		if (!memcmp(b, "ZLIB", 4))
			*out = fdo_get_be64(b + 4);
	}
	return FDO_OK;
}

/* section_name reads up to NAME_MAX_READ-1 bytes of a name from the
 * section name table; "" when unavailable or malformed. */
static void section_name(struct elf *e, const struct shdr *strtab,
			 uint32_t name, char out[NAME_MAX_READ])
{
	out[0] = '\0';
	if (!strtab || name >= strtab->size)
		return;
	uint64_t n = strtab->size - name;
	if (n > NAME_MAX_READ - 1)
		n = NAME_MAX_READ - 1;
	if (rd(e, strtab->offset + name, out, (size_t)n)) {
		out[0] = '\0';
		return;
	}
	out[n] = '\0';
}

/* dyn_is_pie scans dynamic entries at [off, off+size) (in the file) for
 * DT_FLAGS_1 & DF_1_PIE. */
static int dyn_is_pie(struct elf *e, uint64_t off, uint64_t size)
{
	size_t ent = e->is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
	uint64_t n = size / ent;
	if (n > MAX_DYN_ENTRIES)
		n = MAX_DYN_ENTRIES;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t b[sizeof(Elf64_Dyn)];
		if (rd(e, off + i * ent, b, ent))
			return 0;
		uint64_t tag = gw(e, b);
		uint64_t val = gw(e, b + ent / 2);
		if (tag == DT_NULL)
			return 0;
		if (tag == DT_FLAGS_1)
			return (val & DF_1_PIE) != 0;
	}
	return 0;
}

static const char *type_name(uint16_t type)
{
	switch (type) {
	case ET_REL:
		return "a relocatable object (.o)";
	case ET_CORE:
		return "a core file";
	case ET_NONE:
		return "of type ET_NONE";
	default:
		return "of an unknown type";
	}
}

int store_elf_inspect(int fd, struct store_elf_info *info, char *why,
		      size_t why_cap)
{
	struct elf ee = {.fd = fd, .why = why, .why_cap = why_cap}, *e = &ee;
	memset(info, 0, sizeof *info);
	if (why && why_cap)
		why[0] = '\0';

	struct stat st;
	if (fstat(fd, &st) != 0)
		return fail(e, FDO_EIO, "stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(e, FDO_EINVAL, "not a regular file");
	e->size = (uint64_t)st.st_size;
	info->size = e->size;
	if (e->size == 0)
		return fail(e, FDO_ENOT_ELF, "empty file");

	/* Identification. */
	uint8_t b[sizeof(Elf64_Ehdr)];
	size_t n = e->size < EI_NIDENT ? (size_t)e->size : EI_NIDENT;
	int rc = rd(e, 0, b, n);
	if (rc)
		return rc;
	if (memcmp(b, ELFMAG, n < SELFMAG ? n : SELFMAG))
		return fail(e, FDO_ENOT_ELF, "no ELF magic");
	if (n < EI_NIDENT)
		return fail(e, FDO_ETRUNCATED,
			    "truncated: %zu bytes, an ELF header needs more",
			    n);
	if (b[EI_CLASS] != ELFCLASS32 && b[EI_CLASS] != ELFCLASS64)
		return fail(e, FDO_ENOT_ELF, "unknown ELF class %u",
			    b[EI_CLASS]);
	if (b[EI_DATA] != ELFDATA2LSB && b[EI_DATA] != ELFDATA2MSB)
		return fail(e, FDO_ENOT_ELF, "unknown ELF data encoding %u",
			    b[EI_DATA]);
	if (b[EI_VERSION] != EV_CURRENT)
		return fail(e, FDO_ENOT_ELF, "unknown ELF version %u",
			    b[EI_VERSION]);
	e->is64 = b[EI_CLASS] == ELFCLASS64;
	e->be = b[EI_DATA] == ELFDATA2MSB;
	info->elf_class = e->is64 ? 64 : 32;
	info->big_endian = e->be;

	/* File header. */
	size_t ehsize = e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (!in_file(e, 0, ehsize))
		return fail(e, FDO_ETRUNCATED,
			    "truncated: %llu bytes, the ELF header needs %zu",
			    (unsigned long long)e->size, ehsize);
	rc = rd(e, 0, b, ehsize);
	if (rc)
		return rc;
	struct ehdr h;
	parse_ehdr(e, b, &h);
	info->type = h.type;
	info->machine = h.machine;
	if (h.version != EV_CURRENT)
		return fail(e, FDO_EPARSE, "ELF header: e_version is %u",
			    h.version);
	if (h.ehsize < ehsize)
		return fail(e, FDO_EPARSE, "ELF header: e_ehsize is %u",
			    h.ehsize);
	if (h.type != ET_EXEC && h.type != ET_DYN)
		return fail(e, FDO_EUNSUPPORTED,
			    "ELF file is %s, not an executable, shared "
			    "object or debug file",
			    type_name(h.type));

	/* Section header table; extended numbering lives in section 0. */
	uint64_t shnum = h.shnum, phnum = h.phnum, shstrndx = h.shstrndx;
	struct shdr s0 = {0};
	if (h.shoff == 0) {
		if (h.shnum != 0)
			return fail(e, FDO_EPARSE,
				    "ELF header: %u sections but no section "
				    "header table",
				    h.shnum);
	} else {
		if (h.shentsize != shdr_size(e))
			return fail(e, FDO_EPARSE,
				    "ELF header: e_shentsize is %u, want %zu",
				    h.shentsize, shdr_size(e));
		if (!in_file(e, h.shoff, shdr_size(e)))
			return fail(e, FDO_ETRUNCATED,
				    "truncated: the section header table "
				    "starts at %llu, the file has %llu bytes",
				    (unsigned long long)h.shoff,
				    (unsigned long long)e->size);
		rc = read_shdr(e, &h, 0, &s0);
		if (rc)
			return rc;
		if (shnum == 0)
			shnum = s0.size;
		if (shstrndx == SHN_XINDEX)
			shstrndx = s0.link;
		if (phnum == PN_XNUM)
			phnum = s0.info;
		if (shnum > MAX_SECTIONS)
			return fail(e, FDO_ELIMIT,
				    "%llu sections (at most %u supported)",
				    (unsigned long long)shnum, MAX_SECTIONS);
		if (!in_file(e, h.shoff, shnum * shdr_size(e)))
			return fail(e, FDO_ETRUNCATED,
				    "truncated: the section header table "
				    "ends at %llu, the file has %llu bytes",
				    (unsigned long long)(h.shoff +
							 shnum * shdr_size(e)),
				    (unsigned long long)e->size);
	}

	/* Program header table. */
	if (phnum > MAX_SEGMENTS)
		return fail(e, FDO_ELIMIT, "%llu segments (at most %u)",
			    (unsigned long long)phnum, MAX_SEGMENTS);
	if (phnum) {
		if (h.phentsize != phdr_size(e))
			return fail(e, FDO_EPARSE,
				    "ELF header: e_phentsize is %u, want %zu",
				    h.phentsize, phdr_size(e));
		if (!in_file(e, h.phoff, phnum * phdr_size(e)))
			return fail(e, FDO_ETRUNCATED,
				    "truncated: the program header table ends "
				    "past the end of the file (%llu bytes)",
				    (unsigned long long)e->size);
	}

	/* Sections: extents, names, notes, DWARF, loadable bytes. */
	struct shdr strtab, *names = NULL;
	if (shnum && shstrndx != SHN_UNDEF && shstrndx < shnum) {
		rc = read_shdr(e, &h, shstrndx, &strtab);
		if (rc)
			return rc;
		if (strtab.type != SHT_NOBITS &&
		    in_file(e, strtab.offset, strtab.size))
			names = &strtab;
	}
	int has_alloc_bytes = 0, have_dyn = 0;
	uint64_t dyn_off = 0, dyn_size = 0;
	for (uint64_t i = 1; i < shnum; i++) {
		struct shdr s;
		rc = read_shdr(e, &h, i, &s);
		if (rc)
			return rc;
		if (s.type == SHT_NOBITS || s.size == 0)
			continue;
		char name[NAME_MAX_READ];
		section_name(e, names, s.name, name);
		if (!in_file(e, s.offset, s.size))
			return fail(e, FDO_ETRUNCATED,
				    "truncated: section %llu (%s) ends at "
				    "%llu, the file has %llu bytes",
				    (unsigned long long)i, name,
				    (unsigned long long)(s.offset + s.size),
				    (unsigned long long)e->size);
		if ((s.flags & SHF_ALLOC) && s.type != SHT_NOTE)
			has_alloc_bytes = 1;
		if (s.type == SHT_SYMTAB)
			info->flags |= STORE_ELF_SYMTAB;
		if (!strcmp(name, ".debug_info") ||
		    !strcmp(name, ".zdebug_info"))
			info->flags |= STORE_ELF_DWARF;
		uint64_t claim = 0;
		rc = inflated_size(e, &s, name, &claim);
		if (rc)
			return rc;
		info->inflated = claim > UINT64_MAX - info->inflated
					 ? UINT64_MAX
					 : info->inflated + claim;
		if (s.type == SHT_NOTE && !info->build_id_len) {
			rc = scan_notes(e, s.offset, s.size, s.addralign, info);
			if (rc)
				return rc;
		}
		if (s.type == SHT_DYNAMIC && !have_dyn) {
			have_dyn = 1;
			dyn_off = s.offset;
			dyn_size = s.size;
		}
	}
	int debug_only = shnum > 0 && !has_alloc_bytes;

	/* Segments: loadable extents, interpreter, notes without sections. */
	int has_interp = 0, has_load_bytes = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		struct phdr p;
		rc = read_phdr(e, h.phoff, i, &p);
		if (rc)
			return rc;
		int inside = in_file(e, p.offset, p.filesz);
		switch (p.type) {
		case PT_LOAD:
			if (p.filesz)
				has_load_bytes = 1;
			/* A debug file keeps the segments of its executable,
			 * whose bytes it does not carry. */
			if (!inside && !debug_only)
				return fail(e, FDO_ETRUNCATED,
					    "truncated: segment %llu ends at "
					    "%llu, the file has %llu bytes",
					    (unsigned long long)i,
					    (unsigned long long)(p.offset +
								 p.filesz),
					    (unsigned long long)e->size);
			break;
		case PT_INTERP:
			has_interp = 1;
			break;
		case PT_DYNAMIC:
			if (!have_dyn && inside && !debug_only) {
				have_dyn = 1;
				dyn_off = p.offset;
				dyn_size = p.filesz;
			}
			break;
		case PT_NOTE:
			if (!info->build_id_len && inside && !debug_only) {
				rc = scan_notes(e, p.offset, p.filesz, p.align,
						info);
				if (rc)
					return rc;
			}
			break;
		}
	}
	if (shnum == 0 && !has_load_bytes)
		return fail(e, FDO_EUNSUPPORTED,
			    "ELF file has neither sections nor loadable "
			    "segments");
	if (!info->build_id_len)
		return fail(e, FDO_ENO_BUILD_ID,
			    "no GNU build-id note (link with "
			    "-Wl,--build-id)");

	if (debug_only)
		info->flags |= STORE_ELF_DEBUG_ONLY;
	if (h.type == ET_DYN) {
		if (has_interp ||
		    (have_dyn && dyn_is_pie(e, dyn_off, dyn_size)))
			info->flags |= STORE_ELF_PIE;
		else
			info->flags |= STORE_ELF_SHARED;
	}
	return FDO_OK;
}

const char *store_elf_kind_name(const struct store_elf_info *info)
{
	if (info->flags & STORE_ELF_DEBUG_ONLY)
		return "debug-file";
	if (info->flags & STORE_ELF_PIE)
		return "pie";
	if (info->flags & STORE_ELF_SHARED)
		return "shared-object";
	return "executable";
}

/* ------------------------------------------------------ same content -- */

/*
 * What fills a slot, for telling whether two files with one build-id are
 * the same as far as that slot goes: for `executable`, every PT_LOAD
 * header and its bytes (what sampled offsets map through and what code
 * analysis reads), and the function symbols (name, value, size) of the
 * symbol table when both files have one (a stripped and an unstripped
 * build are the same executable; the table a profile's names come from
 * is not swapped unnoticed);
 * for `debuginfo`, every .debug_* / .zdebug_* section by name with its
 * bytes.
 */
struct region {
	char name[NAME_MAX_READ];
	uint64_t key[4]; /* header fields that must agree */
	uint64_t off, size;
};

struct regions {
	struct region *r;
	size_t n, cap;
};

static int region_add(struct regions *rs, const char *name,
		      const uint64_t key[4], uint64_t off, uint64_t size)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 16;
		if (cap > MAX_SECTIONS + MAX_SEGMENTS)
			return FDO_ELIMIT;
		struct region *r = realloc(rs->r, cap * sizeof *r);
		if (!r)
			return FDO_ENOMEM;
		rs->r = r;
		rs->cap = cap;
	}
	struct region *g = &rs->r[rs->n++];
	snprintf(g->name, sizeof g->name, "%s", name);
	memcpy(g->key, key, sizeof g->key);
	g->off = off;
	g->size = size;
	return FDO_OK;
}

static int region_cmp(const void *a, const void *b)
{
	return strcmp(((const struct region *)a)->name,
		      ((const struct region *)b)->name);
}

/*
 * collect the regions of slot kind of the file on e (which passed
 * store_elf_inspect): loadable segments into *main, the symbol table into
 * *sym (executable), or the DWARF sections into *main (debuginfo).
 */
static int collect(struct elf *e, unsigned kind, struct regions *main,
		   struct regions *sym)
{
	uint8_t b[sizeof(Elf64_Ehdr)];
	size_t ehsize = e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	int rc = rd(e, 0, b, ehsize);
	if (rc)
		return rc;
	struct ehdr h;
	parse_ehdr(e, b, &h);
	uint64_t shnum = h.shnum, phnum = h.phnum, shstrndx = h.shstrndx;
	if (h.shoff) {
		struct shdr s0;
		if ((rc = read_shdr(e, &h, 0, &s0)))
			return rc;
		if (!shnum)
			shnum = s0.size;
		if (shstrndx == SHN_XINDEX)
			shstrndx = s0.link;
		if (phnum == PN_XNUM)
			phnum = s0.info;
	}
	if (shnum > MAX_SECTIONS || phnum > MAX_SEGMENTS)
		return FDO_ELIMIT;
	if (kind == STORE_SYM_EXECUTABLE)
		for (uint64_t i = 0; i < phnum; i++) {
			struct phdr p;
			if ((rc = read_phdr(e, h.phoff, i, &p)))
				return rc;
			if (p.type != PT_LOAD)
				continue;
			uint64_t key[4] = {p.vaddr, p.memsz, p.flags, p.offset};
			/* A debug file keeps segments whose bytes it lacks:
			 * their headers still count. */
			int inside = in_file(e, p.offset, p.filesz);
			key[3] ^= inside ? 0 : p.filesz;
			if ((rc = region_add(main, "load", key, p.offset,
					     inside ? p.filesz : 0)))
				return rc;
		}
	struct shdr strtab, *names = NULL;
	if (shnum && shstrndx != SHN_UNDEF && shstrndx < shnum) {
		if ((rc = read_shdr(e, &h, shstrndx, &strtab)))
			return rc;
		if (strtab.type != SHT_NOBITS &&
		    in_file(e, strtab.offset, strtab.size))
			names = &strtab;
	}
	for (uint64_t i = 1; i < shnum; i++) {
		struct shdr s;
		if ((rc = read_shdr(e, &h, i, &s)))
			return rc;
		if (s.type == SHT_NOBITS || !in_file(e, s.offset, s.size))
			continue;
		char name[NAME_MAX_READ];
		section_name(e, names, s.name, name);
		uint64_t key[4] = {s.type, s.flags, s.size, 0};
		if (kind == STORE_SYM_EXECUTABLE && s.type == SHT_SYMTAB &&
		    s.link < shnum) {
			struct shdr str;
			if ((rc = read_shdr(e, &h, s.link, &str)))
				return rc;
			if (str.type == SHT_NOBITS ||
			    !in_file(e, str.offset, str.size))
				continue;
			uint64_t skey[4] = {str.type, str.size, 0, 0};
			if ((rc = region_add(sym, "symtab", key, s.offset,
					     s.size)) ||
			    (rc = region_add(sym, "symstr", skey, str.offset,
					     str.size)))
				return rc;
		} else if (kind == STORE_SYM_DEBUGINFO &&
			   (!strncmp(name, ".debug_", 7) ||
			    !strncmp(name, ".zdebug_", 8))) {
			if ((rc = region_add(main, name, key, s.offset,
					     s.size)))
				return rc;
		}
	}
	if (kind == STORE_SYM_DEBUGINFO && main->n)
		qsort(main->r, main->n, sizeof *main->r, region_cmp);
	return FDO_OK;
}

/*
 * The first PT_LOAD usually maps the ELF header, whose section-table
 * fields (e_shoff, e_shentsize, e_shnum, e_shstrndx) stripping changes:
 * blank them in a chunk read at file offset off before comparing.
 */
static void mask_section_fields(const struct elf *e, uint64_t off, uint8_t *buf,
				size_t n)
{
	size_t fields[2][2] = {{F(Elf32_Ehdr, Elf64_Ehdr, e_shoff),
				e->is64 ? 8 : 4},
			       {F(Elf32_Ehdr, Elf64_Ehdr, e_shentsize), 6}};
	for (int i = 0; i < 2; i++)
		for (size_t k = 0; k < fields[i][1]; k++) {
			uint64_t at = fields[i][0] + k;
			if (at >= off && at - off < n)
				buf[at - off] = 0;
		}
}

/* Same headers and bytes, region by region. */
static int regions_same(struct elf *a, const struct regions *ra, struct elf *b,
			const struct regions *rb, int *same)
{
	*same = 0;
	if (ra->n != rb->n)
		return FDO_OK;
	for (size_t i = 0; i < ra->n; i++)
		if (strcmp(ra->r[i].name, rb->r[i].name) ||
		    memcmp(ra->r[i].key, rb->r[i].key, sizeof ra->r[i].key) ||
		    ra->r[i].size != rb->r[i].size)
			return FDO_OK;
	enum { CHUNK = 1 << 16 };
	uint8_t *x = malloc(2 * CHUNK);
	if (!x)
		return FDO_ENOMEM;
	int rc = FDO_OK, diff = 0;
	for (size_t i = 0; i < ra->n && !rc && !diff; i++)
		for (uint64_t done = 0; done < ra->r[i].size && !rc && !diff;) {
			uint64_t left = ra->r[i].size - done;
			size_t n = left < CHUNK ? (size_t)left : CHUNK;
			uint64_t at = ra->r[i].off + done;
			if (!(rc = rd(a, at, x, n)) &&
			    !(rc = rd(b, rb->r[i].off + done, x + CHUNK, n))) {
				if (!strcmp(ra->r[i].name, "load") &&
				    at < sizeof(Elf64_Ehdr)) {
					mask_section_fields(a, at, x, n);
					mask_section_fields(b, at, x + CHUNK,
							    n);
				}
				diff = memcmp(x, x + CHUNK, n) != 0;
			}
			done += n;
		}
	free(x);
	*same = !rc && !diff;
	return rc;
}

/* One function symbol, for comparing symbol tables. */
struct fsym {
	const char *name;
	uint64_t value, size;
};

static int fsym_cmp(const void *a, const void *b)
{
	const struct fsym *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return strcmp(x->name, y->name);
}

#define SYMTAB_COMPARE_MAX (64u << 20) /* larger tables are not compared */

/*
 * The function symbols (name, value, size) of the symbol table in sym
 * (regions "symtab", "symstr"), sorted; *strs holds the names. `strip -g`
 * renumbers sections and drops section symbols, so the tables of a
 * stripped and an unstripped copy differ in bytes but not in functions.
 * FDO_ELIMIT when the table is too large to compare.
 */
static int func_symbols(struct elf *e, const struct regions *sym,
			struct fsym **out, size_t *n, char **strs)
{
	*out = NULL;
	*n = 0;
	*strs = NULL;
	const struct region *tab = &sym->r[0], *str = &sym->r[1];
	if (tab->size > SYMTAB_COMPARE_MAX || str->size > SYMTAB_COMPARE_MAX)
		return FDO_ELIMIT;
	size_t ent = e->is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
	uint8_t *t = malloc(tab->size ? tab->size : 1);
	char *st = malloc(str->size + 1);
	struct fsym *f = malloc((tab->size / ent + 1) * sizeof *f);
	int rc = t && st && f ? FDO_OK : FDO_ENOMEM;
	if (!rc)
		rc = rd(e, tab->off, t, tab->size);
	if (!rc)
		rc = rd(e, str->off, st, str->size);
	size_t k = 0;
	for (size_t i = 0; !rc && i < tab->size / ent; i++) {
		const uint8_t *p = t + i * ent;
		uint32_t name = g32(e, p);
		uint8_t info = p[e->is64 ? offsetof(Elf64_Sym, st_info)
					 : offsetof(Elf32_Sym, st_info)];
		unsigned type = info & 0xf;
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    name >= str->size)
			continue;
		st[str->size] = 0;
		f[k].name = st + name;
		f[k].value =
			e->is64 ? g64(e, p + offsetof(Elf64_Sym, st_value))
				: g32(e, p + offsetof(Elf32_Sym, st_value));
		f[k].size = e->is64 ? g64(e, p + offsetof(Elf64_Sym, st_size))
				    : g32(e, p + offsetof(Elf32_Sym, st_size));
		k++;
	}
	free(t);
	if (rc) {
		free(st);
		free(f);
		return rc;
	}
	qsort(f, k, sizeof *f, fsym_cmp);
	*out = f;
	*n = k;
	*strs = st;
	return FDO_OK;
}

/* Do the symbol tables of a and b hold the same functions? */
static int symtabs_same(struct elf *a, const struct regions *sa, struct elf *b,
			const struct regions *sb, int *same)
{
	struct fsym *fa, *fb;
	size_t na, nb;
	char *xa, *xb;
	*same = 1;
	int rc = func_symbols(a, sa, &fa, &na, &xa);
	if (rc)
		return rc == FDO_ELIMIT ? FDO_OK : rc;
	rc = func_symbols(b, sb, &fb, &nb, &xb);
	if (!rc) {
		*same = na == nb;
		for (size_t i = 0; *same && i < na; i++)
			*same = !fsym_cmp(&fa[i], &fb[i]);
		free(fb);
		free(xb);
	} else if (rc == FDO_ELIMIT) {
		rc = FDO_OK;
	}
	free(fa);
	free(xa);
	return rc;
}

int store_elf_same_slot(int fd_a, int fd_b, unsigned kind, int *same)
{
	*same = 0;
	if (kind != STORE_SYM_EXECUTABLE && kind != STORE_SYM_DEBUGINFO)
		return FDO_EINVAL;
	struct store_elf_info ia, ib;
	int rc = store_elf_inspect(fd_a, &ia, NULL, 0);
	if (!rc)
		rc = store_elf_inspect(fd_b, &ib, NULL, 0);
	if (rc)
		return rc;
	return store_elf_same_slot_info(fd_a, &ia, fd_b, &ib, kind, same);
}

int store_elf_same_slot_info(int fd_a, const struct store_elf_info *ia,
			     int fd_b, const struct store_elf_info *ib,
			     unsigned kind, int *same)
{
	*same = 0;
	if (kind != STORE_SYM_EXECUTABLE && kind != STORE_SYM_DEBUGINFO)
		return FDO_EINVAL;
	if (ia->elf_class != ib->elf_class ||
	    ia->big_endian != ib->big_endian ||
	    ia->build_id_len != ib->build_id_len ||
	    memcmp(ia->build_id, ib->build_id, ia->build_id_len))
		return FDO_OK;
	struct elf ea = {.fd = fd_a,
			 .size = ia->size,
			 .is64 = ia->elf_class == 64,
			 .be = ia->big_endian};
	struct elf eb = {.fd = fd_b,
			 .size = ib->size,
			 .is64 = ib->elf_class == 64,
			 .be = ib->big_endian};
	struct regions ma = {0}, sa = {0}, mb = {0}, sb = {0};
	int rc;
	if (!(rc = collect(&ea, kind, &ma, &sa)) &&
	    !(rc = collect(&eb, kind, &mb, &sb)) &&
	    !(rc = regions_same(&ea, &ma, &eb, &mb, same)) && *same &&
	    sa.n == 2 && sb.n == 2)
		rc = symtabs_same(&ea, &sa, &eb, &sb, same);
	free(ma.r);
	free(sa.r);
	free(mb.r);
	free(sb.r);
	if (rc)
		*same = 0;
	return rc;
}
