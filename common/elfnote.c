/*
 * common/elfnote.c — the GNU build-id note of an ELF file, for uploads
 * (storage/elfcheck.c walks the notes of the sections and segments it
 * validated) and the agent (agent/buildid.c reads a mapped file's PT_NOTE
 * segments through fdo_elf_build_id_fd).
 *
 * Workload: once per mapped file on the agent (its caller caches), once
 * per note region of an upload; files come from outside, may be
 * truncated, replaced while read, or hostile. So: pread into small
 * buffers, nothing mapped, every offset and size checked against the file
 * or buffer size with overflow-safe arithmetic, counts capped. Fuzzed by
 * fuzz/fuzz_elf.c.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/elfnote.h"

#define NOTE_HDR       12	  /* namesz, descsz, type: 4 bytes each */
#define NOTE_MAX_BYTES (1u << 20) /* PT_NOTE segments are small */
#define PHNUM_MAX      4096

int fdo_elf_pread(int fd, uint64_t off, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (off + got > (uint64_t)INT64_MAX)
			return FDO_ETRUNCATED;
		ssize_t r = pread(fd, (char *)buf + got, n - got,
				  (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return FDO_EIO;
		if (r == 0)
			return FDO_ETRUNCATED;
		got += (size_t)r;
	}
	return FDO_OK;
}

int fdo_elf_note_build_id(const uint8_t *notes, size_t len, int big_endian,
			  uint64_t align, uint8_t out[FDO_BUILD_ID_MAX],
			  size_t *id_len)
{
	uint64_t a = align == 8 ? 8 : 4;
	uint64_t pos = 0; /* <= len */
	while (len - pos >= NOTE_HDR) {
		const uint8_t *n = notes + pos;
		uint64_t namesz = fdo_elf_get(n, 4, big_endian);
		uint64_t descsz = fdo_elf_get(n + 4, 4, big_endian);
		uint64_t type = fdo_elf_get(n + 8, 4, big_endian);
		if (namesz > len - pos - NOTE_HDR)
			return FDO_ETRUNCATED;
		/* The descriptor starts at the next multiple of the alignment
		 * after the name: align(12 + namesz) from the note's start,
		 * which for 8-byte aligned notes is not 12 + align(namesz)
		 * (issue 21). */
		uint64_t desc = (pos + NOTE_HDR + namesz + a - 1) & ~(a - 1);
		if (desc > len || descsz > len - desc)
			return FDO_ETRUNCATED;
		if (type == NT_GNU_BUILD_ID && namesz == 4 &&
		    !memcmp(n + NOTE_HDR, "GNU", 4)) {
			*id_len = (size_t)descsz;
			if (descsz < 1 || descsz > FDO_BUILD_ID_MAX)
				return FDO_EBAD_BUILD_ID;
			memcpy(out, notes + desc, (size_t)descsz);
			return FDO_OK;
		}
		uint64_t pad = (descsz + a - 1) & ~(a - 1);
		if (pad > len - desc)
			break; /* the last note: its padding may be outside */
		pos = desc + pad;
	}
	return FDO_ENO_BUILD_ID;
}

/* The file on fd, as far as its notes go. */
struct elf_rd {
	int fd;
	uint64_t size;
	int is64, be;
};

/* at reads [off, off+len), which must lie in the file; any failure reads
 * as a truncated file (FDO_EIO is kept for "cannot open the file"). */
static int at(const struct elf_rd *r, uint64_t off, void *buf, size_t len)
{
	if (off > r->size || len > r->size - off)
		return FDO_ETRUNCATED;
	return fdo_elf_pread(r->fd, off, buf, len) ? FDO_ETRUNCATED : FDO_OK;
}

#define FIELD(T32, T64, f, p)                                                  \
	fdo_elf_get((p) + (r.is64 ? offsetof(T64, f) : offsetof(T32, f)),      \
		    r.is64 ? sizeof(((T64 *)0)->f) : sizeof(((T32 *)0)->f),    \
		    r.be)

int fdo_elf_build_id_fd(int fd, uint8_t out[FDO_BUILD_ID_MAX], size_t *len)
{
	struct elf_rd r = {.fd = fd};
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return FDO_EIO;
	r.size = (uint64_t)st.st_size;
	uint8_t eh[sizeof(Elf64_Ehdr)];
	if (at(&r, 0, eh, sizeof(Elf32_Ehdr)) || memcmp(eh, ELFMAG, SELFMAG))
		return FDO_ENOT_ELF;
	if ((eh[EI_CLASS] != ELFCLASS32 && eh[EI_CLASS] != ELFCLASS64) ||
	    (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB))
		return FDO_ENOT_ELF;
	r.is64 = eh[EI_CLASS] == ELFCLASS64;
	r.be = eh[EI_DATA] == ELFDATA2MSB;
	if (r.is64 && at(&r, 0, eh, sizeof(Elf64_Ehdr)))
		return FDO_ETRUNCATED;
	uint64_t phoff = FIELD(Elf32_Ehdr, Elf64_Ehdr, e_phoff, eh);
	uint64_t phentsize = FIELD(Elf32_Ehdr, Elf64_Ehdr, e_phentsize, eh);
	uint64_t phnum = FIELD(Elf32_Ehdr, Elf64_Ehdr, e_phnum, eh);
	size_t phsize = r.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phentsize < phsize || phnum > PHNUM_MAX)
		return FDO_ENOT_ELF;
	int rc = FDO_ENO_BUILD_ID;
	for (uint64_t i = 0; i < phnum; i++) {
		uint8_t ph[sizeof(Elf64_Phdr)];
		if (phoff > UINT64_MAX - i * phentsize ||
		    at(&r, phoff + i * phentsize, ph, phsize))
			return FDO_ETRUNCATED;
		if (FIELD(Elf32_Phdr, Elf64_Phdr, p_type, ph) != PT_NOTE)
			continue;
		uint64_t off = FIELD(Elf32_Phdr, Elf64_Phdr, p_offset, ph);
		uint64_t size = FIELD(Elf32_Phdr, Elf64_Phdr, p_filesz, ph);
		uint64_t align = FIELD(Elf32_Phdr, Elf64_Phdr, p_align, ph);
		if (size == 0 || size > NOTE_MAX_BYTES)
			continue;
		uint8_t *notes = malloc((size_t)size);
		if (!notes)
			return FDO_ENOMEM;
		size_t n = 0;
		int nrc = at(&r, off, notes, (size_t)size);
		if (!nrc)
			nrc = fdo_elf_note_build_id(notes, (size_t)size, r.be,
						    align, out, &n);
		free(notes);
		if (nrc == FDO_OK) {
			*len = n;
			return FDO_OK;
		}
		if (nrc != FDO_ENO_BUILD_ID)
			rc = nrc;
	}
	return rc;
}

int fdo_elf_build_id_path(const char *path, uint8_t out[FDO_BUILD_ID_MAX],
			  size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return FDO_EIO;
	int rc = fdo_elf_build_id_fd(fd, out, len);
	close(fd);
	return rc;
}
