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
 * libelf: storage/ does not depend on elfutils).
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

#include "storage/storage.h"

#define MAX_SECTIONS    (1u << 18)
#define MAX_SEGMENTS    (1u << 16)
#define MAX_NOTE_BYTES  (64u * 1024)
#define MAX_DYN_ENTRIES (1u << 14)
#define NAME_MAX_READ   32

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
	uint32_t type;
	uint64_t offset, filesz, align;
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
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(e->fd, (char *)buf + got, n - got,
		                  (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(e, FDO_EIO, "read error: %s",
			            strerror(errno));
		if (r == 0)
			return fail(e, FDO_ETRUNCATED,
			            "file shrank while being read");
		got += (size_t)r;
	}
	return FDO_OK;
}

static uint16_t g16(const struct elf *e, const uint8_t *p)
{
	return e->be ? (uint16_t)(p[0] << 8 | p[1])
	             : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t g32(const struct elf *e, const uint8_t *p)
{
	if (e->be)
		return fdo_get_be32(p);
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

static uint64_t g64(const struct elf *e, const uint8_t *p)
{
	if (e->be)
		return fdo_get_be64(p);
	return (uint64_t)g32(e, p + 4) << 32 | g32(e, p);
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
	return FDO_OK;
}

/*
 * scan_notes looks for NT_GNU_BUILD_ID in the notes at [off, off+size),
 * already checked to be in the file. Malformed notes end the scan quietly
 * (other notes are not our business); a GNU build-id note with a bad length
 * is an error.
 */
static int scan_notes(struct elf *e, uint64_t off, uint64_t size,
                      uint64_t align, struct store_elf_info *info)
{
	uint64_t a = align == 8 ? 8 : 4;
	size_t len = size > MAX_NOTE_BYTES ? MAX_NOTE_BYTES : (size_t)size;
	if (len < 12)
		return FDO_OK;
	uint8_t *buf = malloc(len);
	if (!buf)
		return FDO_ENOMEM;
	int rc = rd(e, off, buf, len);
	uint64_t pos = 0;
	/* pos may pass len: the padding of the last note's descriptor is
	 * not required to be in the section. */
	while (!rc && pos <= len && len - pos >= 12) {
		uint64_t namesz = g32(e, buf + pos);
		uint64_t descsz = g32(e, buf + pos + 4);
		uint32_t type = g32(e, buf + pos + 8);
		uint64_t desc_off = pos + 12 + ((namesz + a - 1) & ~(a - 1));
		if (desc_off > len || descsz > len - desc_off)
			break;
		if (type == NT_GNU_BUILD_ID && namesz == 4 &&
		    !memcmp(buf + pos + 12, "GNU", 4)) {
			if (descsz < 1 || descsz > FDO_BUILD_ID_MAX) {
				rc = fail(e, FDO_EBAD_BUILD_ID,
				          "GNU build-id note holds %llu bytes "
				          "(1-64 allowed)",
				          (unsigned long long)descsz);
				break;
			}
			memcpy(info->build_id, buf + desc_off, descsz);
			info->build_id_len = (size_t)descsz;
			break;
		}
		pos = desc_off + ((descsz + a - 1) & ~(a - 1));
	}
	free(buf);
	return rc;
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
				return fail(
				    e, FDO_ETRUNCATED,
				    "truncated: segment %llu ends at "
				    "%llu, the file has %llu bytes",
				    (unsigned long long)i,
				    (unsigned long long)(p.offset + p.filesz),
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
