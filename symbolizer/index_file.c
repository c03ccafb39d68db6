/*
 * symbolizer/index_file.c — the persisted index: one file per build-id,
 * flat record arrays and a string table, mmap-able and used in place.
 * Written once (temp name, fsync, rename, directory fsync), read many
 * times; a file that fails any check is reported as FDO_ECORRUPT (or
 * FDO_ESTORE_VERSION) and the caller rebuilds it.
 *
 * File layout (all integers little-endian):
 *
 * OFFSET SIZE DESCRIPTION
 * 0      8    magic "FDOSYMX\n"
 * 8      4    format version (SYM_FILE_VERSION)
 * 12     4    header size (272)
 * 16     8    file size in bytes
 * 24     4    CRC-32C (fdo_crc32c) of bytes [32, file size)
 * 28     4    byte-order mark 0x01020304
 * 32     8    source signature (paths, sizes, mtimes of the input files)
 * 40     4    flags: bit 0 = built from DWARF
 * 44     1    build-id length (0..64)
 * 45     3    zero
 * 48     64   build-id bytes, zero padded
 * 112    160  10 section descriptors of 16 bytes: u64 offset, u64 count,
 *             in this order: loads, cusegs, cus, seqs, rows, dmap, nodes,
 *             syms, strs (count in bytes for strs), rkeys
 * 272    ...  the sections, each at an 8-aligned offset
 *
 * Records (see sym_int.h):
 *   sym_load   24 bytes  off, filesz, vaddr
 *   sym_cuseg  24 bytes  lo, hi, cu, pad     sorted, disjoint
 *   sym_cu     16 bytes  seq_first, seq_count, dmap_first, dmap_count
 *   sym_seq    24 bytes  lo, hi, row_first, row_count   per CU by hi
 *   sym_row    24 bytes  addr, file, line, column, discr
 *   sym_dmap   24 bytes  lo, hi, node, pad   per CU by unique lo
 *   sym_node   48 bytes  name, decl_file, decl_line, call_file, call_line,
 *                        call_column, call_discr, parent, low_pc, flags, pad
 *   sym_sym    24 bytes  addr, size, name, file   sorted by unique addr
 *   rkeys      4 bytes   per row: addr - lo of its sequence (a dense
 *              search key; sequences of 4 GiB or more search rows)
 *   strs       NUL-terminated strings; references are byte offsets,
 *              0xffffffff = absent
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/sym_int.h"

#define SYM_FILE_MAGIC	 "FDOSYMX\n"
#define SYM_FILE_VERSION 2u
#define SYM_HDR_SIZE	 272u
#define SYM_BOM		 0x01020304u
#define NSECT		 10

_Static_assert(sizeof(struct sym_load) == 24, "layout");
_Static_assert(sizeof(struct sym_cuseg) == 24, "layout");
_Static_assert(sizeof(struct sym_cu) == 16, "layout");
_Static_assert(sizeof(struct sym_seq) == 24, "layout");
_Static_assert(sizeof(struct sym_row) == 24, "layout");
_Static_assert(sizeof(struct sym_dmap) == 24, "layout");
_Static_assert(sizeof(struct sym_node) == 48, "layout");
_Static_assert(sizeof(struct sym_sym) == 24, "layout");

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

int sym_file_serialize(const struct sym_builder *b, void **bufp, size_t *lenp)
{
	const void *src[NSECT] = {b->loads.p, b->cusegs.p, b->cus.p,
				  b->seqs.p,  b->rows.p,   b->dmap.p,
				  b->nodes.p, b->syms.p,   b->strs.buf,
				  b->rkeys.p};
	uint64_t count[NSECT] = {b->loads.n, b->cusegs.n, b->cus.n,
				 b->seqs.n,  b->rows.n,	  b->dmap.n,
				 b->nodes.n, b->syms.n,	  b->strs.len,
				 b->rkeys.n};
	size_t esz[NSECT] = {b->loads.elem,
			     b->cusegs.elem,
			     b->cus.elem,
			     b->seqs.elem,
			     b->rows.elem,
			     b->dmap.elem,
			     b->nodes.elem,
			     b->syms.elem,
			     1,
			     4};
	uint64_t off[NSECT], pos = SYM_HDR_SIZE;
	for (int i = 0; i < NSECT; i++) {
		off[i] = pos;
		pos += (count[i] * esz[i] + 7) & ~7ull;
	}
	uint8_t *buf = calloc(1, pos);
	if (!buf)
		return FDO_ENOMEM;
	memcpy(buf, SYM_FILE_MAGIC, 8);
	put32(buf + 8, SYM_FILE_VERSION);
	put32(buf + 12, SYM_HDR_SIZE);
	put64(buf + 16, pos);
	put32(buf + 28, SYM_BOM);
	put64(buf + 32, b->source_sig);
	put32(buf + 40, b->has_dwarf ? 1u : 0u);
	buf[44] = (uint8_t)b->build_id_len;
	memcpy(buf + 48, b->build_id, b->build_id_len);
	for (int i = 0; i < NSECT; i++) {
		put64(buf + 112 + 16 * i, off[i]);
		put64(buf + 112 + 16 * i + 8, count[i]);
		if (count[i])
			memcpy(buf + off[i], src[i], count[i] * esz[i]);
	}
	put32(buf + 24, fdo_crc32c(0, buf + 32, pos - 32));
	*bufp = buf;
	*lenp = pos;
	return FDO_OK;
}

static int str_ok(const struct sym_view *v, uint32_t s, int may_be_none)
{
	return s < v->nstrs || (may_be_none && s == SYM_NONE);
}

/* Every reference is checked once here, so lookups need no checks. */
static int validate(const struct sym_view *v)
{
	if (v->nstrs == 0 || v->strs[v->nstrs - 1] != 0 ||
	    v->nrkeys != v->nrows)
		return 0;
	for (uint64_t i = 0; i < v->ncusegs; i++) {
		const struct sym_cuseg *s = &v->cusegs[i];
		if (s->cu >= v->ncus || s->lo >= s->hi ||
		    (i && v->cusegs[i - 1].hi > s->lo))
			return 0;
	}
	for (uint64_t i = 0; i < v->ncus; i++) {
		const struct sym_cu *c = &v->cus[i];
		if ((uint64_t)c->seq_first + c->seq_count > v->nseqs ||
		    (uint64_t)c->dmap_first + c->dmap_count > v->ndmap)
			return 0;
	}
	for (uint64_t i = 0; i < v->nseqs; i++) {
		const struct sym_seq *s = &v->seqs[i];
		if (!s->row_count ||
		    (uint64_t)s->row_first + s->row_count > v->nrows)
			return 0;
	}
	for (uint64_t i = 0; i < v->nrows; i++)
		if (!str_ok(v, v->rows[i].file, 1))
			return 0;
	for (uint64_t i = 0; i < v->ndmap; i++)
		if (v->dmap[i].node >= v->nnodes)
			return 0;
	for (uint64_t i = 0; i < v->nnodes; i++) {
		const struct sym_node *n = &v->nodes[i];
		if (!str_ok(v, n->name, 1) || !str_ok(v, n->decl_file, 1) ||
		    !str_ok(v, n->call_file, 1) ||
		    (n->parent != SYM_NONE && n->parent >= i))
			return 0;
	}
	for (uint64_t i = 0; i < v->nsyms; i++) {
		const struct sym_sym *s = &v->syms[i];
		if (!str_ok(v, s->name, 0) || !str_ok(v, s->file, 1) ||
		    (i && v->syms[i - 1].addr >= s->addr))
			return 0;
	}
	return 1;
}

int sym_file_parse(const void *buf, size_t len, int trusted, struct sym_view *v)
{
	const uint8_t *p = buf;
	memset(v, 0, sizeof *v);
	if (len < SYM_HDR_SIZE || memcmp(p, SYM_FILE_MAGIC, 8))
		return FDO_ECORRUPT;
	if (get32(p + 8) != SYM_FILE_VERSION)
		return FDO_ESTORE_VERSION;
	if (get32(p + 12) != SYM_HDR_SIZE || get64(p + 16) != len ||
	    get32(p + 28) != SYM_BOM || p[44] > FDO_BUILD_ID_MAX)
		return FDO_ECORRUPT;
	if (!trusted && fdo_crc32c(0, p + 32, len - 32) != get32(p + 24))
		return FDO_ECORRUPT;
	static const size_t esz[NSECT] = {sizeof(struct sym_load),
					  sizeof(struct sym_cuseg),
					  sizeof(struct sym_cu),
					  sizeof(struct sym_seq),
					  sizeof(struct sym_row),
					  sizeof(struct sym_dmap),
					  sizeof(struct sym_node),
					  sizeof(struct sym_sym),
					  1,
					  4};
	const void *sec[NSECT];
	uint64_t cnt[NSECT];
	for (int i = 0; i < NSECT; i++) {
		uint64_t off = get64(p + 112 + 16 * i);
		uint64_t n = get64(p + 112 + 16 * i + 8);
		if (off < SYM_HDR_SIZE || off > len || (off & 7) ||
		    n > (len - off) / esz[i])
			return FDO_ECORRUPT;
		sec[i] = p + off;
		cnt[i] = n;
	}
	v->loads = sec[0], v->nloads = cnt[0];
	v->cusegs = sec[1], v->ncusegs = cnt[1];
	v->cus = sec[2], v->ncus = cnt[2];
	v->seqs = sec[3], v->nseqs = cnt[3];
	v->rows = sec[4], v->nrows = cnt[4];
	v->dmap = sec[5], v->ndmap = cnt[5];
	v->nodes = sec[6], v->nnodes = cnt[6];
	v->syms = sec[7], v->nsyms = cnt[7];
	v->strs = sec[8], v->nstrs = cnt[8];
	v->rkeys = sec[9], v->nrkeys = cnt[9];
	v->build_id = p + 48;
	v->build_id_len = p[44];
	v->source_sig = get64(p + 32);
	return validate(v) ? FDO_OK : FDO_ECORRUPT;
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int sym_file_write(const char *path, const void *buf, size_t len)
{
	char dir[4096], tmp[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *d = dirname(dir);
	if (mkdir_p(d) != 0) {
		fdo_warn("symbolizer: cannot create %s: %m", d);
		return FDO_EIO;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fdo_warn("symbolizer: cannot create %s: %m", tmp);
		return FDO_EIO;
	}
	const uint8_t *p = buf;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fdo_warn("symbolizer: cannot write %s: %m", tmp);
			close(fd);
			unlink(tmp);
			return FDO_EIO;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fdo_warn("symbolizer: cannot sync %s: %m", tmp);
		unlink(tmp);
		return FDO_EIO;
	}
	if (rename(tmp, path) != 0) {
		fdo_warn("symbolizer: cannot rename %s: %m", tmp);
		unlink(tmp);
		return FDO_EIO;
	}
	int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return FDO_OK;
}
