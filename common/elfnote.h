/*
 * common/elfnote.h — the GNU build-id note of an ELF file: the one bounded
 * note reader that uploads (storage/elfcheck.c) and the agent
 * (agent/buildid.c) share. Hand-written rather than libelf: the agent
 * links only libc, nng and protobuf-c on every profiled host, and STYLE
 * keeps elfutils headers inside symbolizer/. Depends on libc and <elf.h>
 * constants only.
 */
#ifndef FDO_ELFNOTE_H
#define FDO_ELFNOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* fdo_elf_get reads the unsigned field of `bytes` (1-8) bytes at p in an
 * ELF file's byte order (big_endian: ELFDATA2MSB). */
static inline uint64_t fdo_elf_get(const uint8_t *p, unsigned bytes,
				   int big_endian)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[big_endian ? bytes - 1 - i : i] << (8 * i);
	return v;
}

/*
 * fdo_elf_pread reads exactly n bytes at offset off of fd (pread: fd's
 * offset is not used), retrying short reads and EINTR. Returns FDO_OK,
 * FDO_ETRUNCATED (end of file first) or FDO_EIO (errno says why). Blocks.
 */
int fdo_elf_pread(int fd, uint64_t off, void *buf, size_t n);

/*
 * fdo_elf_note_build_id walks the ELF notes in notes[0, len) (byte order
 * big_endian; align is the note segment's or section's alignment: 8 means
 * 8-byte aligned notes, anything else 4) up to the first NT_GNU_BUILD_ID
 * note named "GNU". Every size is checked against len before use; the
 * padding after the last descriptor need not be inside. Returns
 *   FDO_OK             out holds the build-id, *id_len its length (1-64);
 *   FDO_EBAD_BUILD_ID  the note's descriptor holds 0 or over
 *                      FDO_BUILD_ID_MAX bytes: *id_len is that size, out
 *                      is untouched;
 *   FDO_ETRUNCATED     a note's name or descriptor runs past len before
 *                      a build-id note was found;
 *   FDO_ENO_BUILD_ID   the notes end without one.
 * Pure; any thread.
 */
int fdo_elf_note_build_id(const uint8_t *notes, size_t len, int big_endian,
			  uint64_t align, uint8_t out[FDO_BUILD_ID_MAX],
			  size_t *id_len);

/*
 * fdo_elf_build_id_fd reads the GNU build-id of the ELF file open on fd
 * (ELF32 or ELF64, either byte order; pread, fd's offset is not used)
 * from its PT_NOTE program headers, as the loader maps it; section
 * headers are not read (a file whose build-id note has no PT_NOTE gives
 * FDO_ENO_BUILD_ID). At most 4096 program headers; note segments over
 * 1 MiB are skipped. Every offset and size is checked against the file
 * size before use. out receives up to FDO_BUILD_ID_MAX bytes, *len their
 * number (only on FDO_OK). Returns FDO_OK; FDO_EIO (fstat fails, not a
 * regular file); FDO_ENOT_ELF (no ELF header, unknown class or encoding,
 * bad program header table); FDO_ETRUNCATED (a header or note past the
 * end of the file, a read error, a malformed note); FDO_EBAD_BUILD_ID;
 * FDO_ENO_BUILD_ID; FDO_ENOMEM. When no segment holds a valid build-id,
 * the last segment's error wins over FDO_ENO_BUILD_ID. Blocks on reads;
 * any thread.
 */
int fdo_elf_build_id_fd(int fd, uint8_t out[FDO_BUILD_ID_MAX], size_t *len);

/* fdo_elf_build_id_path is fdo_elf_build_id_fd on the file at path, opened
 * for the call; FDO_EIO also when it cannot be opened. */
int fdo_elf_build_id_path(const char *path, uint8_t out[FDO_BUILD_ID_MAX],
			  size_t *len);

#endif
