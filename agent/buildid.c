/*
 * agent/buildid.c — the GNU build-id of a mapped ELF file, read from its
 * PT_NOTE segments by a small reader that checks every offset and size
 * against the file before using it (the file comes from outside: it may be
 * truncated, replaced or hostile). Called once per mapped file (the caller
 * caches), so it reads with pread and allocates only the note segment.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"

#define NOTE_MAX_BYTES	     (1u << 20) /* PT_NOTE segments are small */
#define NT_GNU_BUILD_ID_TYPE 3

struct elf_rd {
	int fd;
	uint64_t size;
	int is64, big;
};

static uint64_t rd_get(const struct elf_rd *r, const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[r->big ? bytes - 1 - i : i] << (8 * i);
	return v;
}

static int rd_at(const struct elf_rd *r, uint64_t off, void *buf, size_t len)
{
	if (off > r->size || len > r->size - off)
		return FDO_ETRUNCATED;
	ssize_t got = pread(r->fd, buf, len, (off_t)off);
	return got == (ssize_t)len ? FDO_OK : FDO_ETRUNCATED;
}

/* Walk the notes of one PT_NOTE segment. */
static int scan_notes(const struct elf_rd *r, const uint8_t *n, size_t size,
		      uint64_t align, uint8_t *out, size_t *len)
{
	size_t pos = 0;
	if (align != 8)
		align = 4;
	while (size - pos >= 12) {
		uint64_t namesz = rd_get(r, n + pos, 4);
		uint64_t descsz = rd_get(r, n + pos + 4, 4);
		uint64_t type = rd_get(r, n + pos + 8, 4);
		const uint8_t *name = n + pos + 12;
		if (namesz > size - pos - 12)
			return FDO_ETRUNCATED;
		/* The descriptor starts at align(12 + namesz) from the note's
		 * start: for 8-byte aligned notes that is not 12 +
		 * align(namesz). */
		uint64_t desc_at = (pos + 12 + namesz + align - 1) &
				   ~(align - 1);
		uint64_t desc_pad = (descsz + align - 1) & ~(align - 1);
		if (desc_at > size)
			return FDO_ETRUNCATED;
		pos = desc_at;
		if (descsz > size - pos)
			return FDO_ETRUNCATED;
		const uint8_t *desc = n + pos;
		if (type == NT_GNU_BUILD_ID_TYPE && namesz == 4 &&
		    !memcmp(name, "GNU", 4)) {
			if (descsz < 1 || descsz > FDO_BUILD_ID_MAX)
				return FDO_EBAD_BUILD_ID;
			memcpy(out, desc, descsz);
			*len = descsz;
			return FDO_OK;
		}
		if (desc_pad > size - pos)
			break;
		pos += desc_pad;
	}
	return FDO_ENO_BUILD_ID;
}

int agent_build_id_read(const char *path, uint8_t out[FDO_BUILD_ID_MAX],
			size_t *len)
{
	struct elf_rd r = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
	if (r.fd < 0)
		return FDO_EIO;
	struct stat st;
	int rc = FDO_ENO_BUILD_ID;
	uint8_t eh[64];
	if (fstat(r.fd, &st) || !S_ISREG(st.st_mode)) {
		rc = FDO_EIO;
		goto out;
	}
	r.size = (uint64_t)st.st_size;
	if (rd_at(&r, 0, eh, 52) || memcmp(eh, "\177ELF", 4)) {
		rc = FDO_ENOT_ELF;
		goto out;
	}
	r.is64 = eh[4] == 2;
	r.big = eh[5] == 2;
	if ((eh[4] != 1 && eh[4] != 2) || (eh[5] != 1 && eh[5] != 2)) {
		rc = FDO_ENOT_ELF;
		goto out;
	}
	if (r.is64 && rd_at(&r, 0, eh, 64)) {
		rc = FDO_ETRUNCATED;
		goto out;
	}
	uint64_t phoff = r.is64 ? rd_get(&r, eh + 0x20, 8)
				: rd_get(&r, eh + 0x1c, 4);
	uint64_t phentsize = rd_get(&r, eh + (r.is64 ? 0x36 : 0x2a), 2);
	uint64_t phnum = rd_get(&r, eh + (r.is64 ? 0x38 : 0x2c), 2);
	if (phentsize < (r.is64 ? 56u : 32u) || phnum > 4096) {
		rc = FDO_ENOT_ELF;
		goto out;
	}
	for (uint64_t i = 0; i < phnum; i++) {
		uint8_t ph[56];
		if (rd_at(&r, phoff + i * phentsize, ph, r.is64 ? 56 : 32)) {
			rc = FDO_ETRUNCATED;
			goto out;
		}
		if (rd_get(&r, ph, 4) != 4 /* PT_NOTE */)
			continue;
		uint64_t off, size, align;
		if (r.is64) {
			off = rd_get(&r, ph + 8, 8);
			size = rd_get(&r, ph + 32, 8);
			align = rd_get(&r, ph + 48, 8);
		} else {
			off = rd_get(&r, ph + 4, 4);
			size = rd_get(&r, ph + 16, 4);
			align = rd_get(&r, ph + 28, 4);
		}
		if (size == 0 || size > NOTE_MAX_BYTES)
			continue;
		uint8_t *notes = malloc(size);
		if (!notes) {
			rc = FDO_ENOMEM;
			goto out;
		}
		int nrc = rd_at(&r, off, notes, size);
		if (!nrc)
			nrc = scan_notes(&r, notes, size, align, out, len);
		free(notes);
		if (nrc == FDO_OK) {
			rc = FDO_OK;
			goto out;
		}
		if (nrc != FDO_ENO_BUILD_ID)
			rc = nrc;
	}
out:
	close(r.fd);
	return rc;
}
