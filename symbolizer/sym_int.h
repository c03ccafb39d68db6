/*
 * symbolizer/sym_int.h — what the files of symbolizer/ share: the record
 * types of the index (identical in memory and on disk), the builder that
 * collects them, and the ELF facts (build-id, loads, symbols) read from the
 * binary. Private to symbolizer/.
 *
 * Records are fixed-width little-endian structs (this code runs on x86-64
 * and aarch64 little-endian only; the file header checks it). References
 * between records are 32-bit array indexes; strings are 32-bit offsets into
 * one string table, SYM_NONE meaning absent.
 */
#ifndef FDO_SYM_INT_H
#define FDO_SYM_INT_H

#include <gelf.h>
#include <stddef.h>
#include <sys/stat.h>
#include <stdint.h>

#include "common/common.h"
#include "symbolizer/symbolizer.h"

#define SYM_NONE 0xffffffffu

/* An ELF file open for reading through libelf (mmap). */
struct sym_elf {
	int fd;
	Elf *elf;
	struct stat st;
	GElf_Ehdr eh;
};

/*
 * sym_elf_open opens path: a regular file holding a whole little-endian
 * ELF header. Returns FDO_OK (close with sym_elf_close), FDO_EIO (cannot
 * open, not a regular file), FDO_ENOT_ELF, FDO_ETRUNCATED,
 * FDO_EUNSUPPORTED (big-endian); logs the reason once. The file is
 * untrusted: callers check the class and machine they need.
 */
int sym_elf_open(const char *path, struct sym_elf *h);
void sym_elf_close(struct sym_elf *h);

/* Revision of what the builder extracts; bump it when answers change, so
 * that cached indexes of older builders are rebuilt. */
#define SYM_BUILD_REV 1u

/* A PT_LOAD header: file offsets [off, off+filesz) map to vaddr. */
struct sym_load {
	uint64_t off;
	uint64_t filesz;
	uint64_t vaddr;
};

/* Disjoint, sorted address ranges [lo, hi) owned by compile unit cu. */
struct sym_cuseg {
	uint64_t lo, hi;
	uint32_t cu;
	uint32_t pad;
};

/* A compile unit: its line sequences and its address -> DIE map. */
struct sym_cu {
	uint32_t seq_first, seq_count;	 /* into seqs, sorted by hi */
	uint32_t dmap_first, dmap_count; /* into dmap, sorted by lo */
};

/* A line-table sequence [lo, hi) and its rows (end row dropped). */
struct sym_seq {
	uint64_t lo, hi;
	uint32_t row_first, row_count;
};

/* A line-table row: from addr up to the next row of its sequence. */
struct sym_row {
	uint64_t addr;
	uint32_t file; /* string, SYM_NONE = invalid file index */
	uint32_t line;
	uint32_t column;
	uint32_t discr;
};

/*
 * One entry of llvm's AddrDieMap: lo -> (hi, node). Entries are sorted by
 * unique lo; a lookup takes the last entry with lo <= addr and checks
 * addr < hi (entries may overlap, exactly as in llvm's map).
 */
struct sym_dmap {
	uint64_t lo, hi;
	uint32_t node;
	uint32_t pad;
};

#define SYM_NODE_SUBPROGRAM 1u /* the chain stops here */
#define SYM_NODE_LOW_PC	    2u /* low_pc is DW_AT_low_pc */

/* A subprogram or inlined_subroutine DIE. */
struct sym_node {
	uint32_t name;	    /* linkage name else name, via origin/spec */
	uint32_t decl_file; /* string or SYM_NONE */
	uint32_t decl_line;
	uint32_t call_file; /* string or SYM_NONE (bad index / absent) */
	uint32_t call_line;
	uint32_t call_column;
	uint32_t call_discr;
	uint32_t parent; /* enclosing node (index < own), or SYM_NONE */
	uint64_t low_pc;
	uint32_t flags;
	uint32_t pad;
};

/* A symbol-table entry, sorted by addr, one per address (llvm's rule). */
struct sym_sym {
	uint64_t addr;
	uint64_t size;
	uint32_t name; /* string */
	uint32_t file; /* STT_FILE name for local symbols, or SYM_NONE */
};

/* Growable array. */
struct sym_vec {
	void *p;
	size_t n, cap, elem;
};
void sym_vec_init(struct sym_vec *v, size_t elem);
void sym_vec_fini(struct sym_vec *v);
/* sym_vec_push returns a pointer to n new zeroed elements, or NULL (on
 * ENOMEM, and always for n == 0). */
void *sym_vec_push(struct sym_vec *v, size_t n);
#define SYM_VEC_AT(v, type, i) (((type *)(v)->p)[i])

/* Interned strings: one blob, offsets, deduplicated by hash. */
struct sym_strtab {
	char *buf;
	size_t len, cap;
	uint32_t *slots; /* offset+1, 0 = empty */
	size_t nslots, used;
};
int sym_strtab_init(struct sym_strtab *t);
void sym_strtab_fini(struct sym_strtab *t);
/* sym_strtab_add returns the offset of s[0..len) or SYM_NONE on ENOMEM. */
uint32_t sym_strtab_add(struct sym_strtab *t, const char *s, size_t len);

/* Everything an index holds, while being built. */
struct sym_builder {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	size_t build_id_len;
	uint64_t source_sig; /* identity of the input files */
	uint32_t has_dwarf;
	struct sym_vec loads, cusegs, cus, seqs, rows, dmap, nodes, syms;
	struct sym_vec rkeys; /* uint32_t per row: addr - its sequence's lo */
	struct sym_strtab strs;
};
int sym_builder_init(struct sym_builder *b);
void sym_builder_fini(struct sym_builder *b);

/* elf_file.c: the binary and where its DWARF is. */
struct sym_elf_src {
	char debug_path[4096]; /* "" = DWARF from the binary itself */
	uint64_t sig;	       /* hash of paths, sizes, mtimes */
	uint8_t build_id[FDO_BUILD_ID_MAX];
	size_t build_id_len;
};
/*
 * sym_elf_probe opens elf_path, reads its build-id and finds its debug file
 * (explicit debug_path, build-id tree, debuglink, or itself). Cheap: reads
 * headers and notes only.
 */
int sym_elf_probe(const char *elf_path, const char *debug_path,
		  struct sym_elf_src *src);
/* sym_elf_collect fills b->loads, b->syms and the build-id from elf_path. */
int sym_elf_collect(const char *elf_path, struct sym_builder *b);

/* dwarf_build.c: fills cus, cusegs, seqs, rows, dmap, nodes from the DWARF
 * of path. A file without DWARF leaves them empty and returns FDO_OK. */
int sym_dwarf_collect(const char *path, struct sym_builder *b);

/* index_file.c: serialize a builder; load and verify a serialized index. */
struct sym_view {
	const struct sym_load *loads;
	const struct sym_cuseg *cusegs;
	const struct sym_cu *cus;
	const struct sym_seq *seqs;
	const struct sym_row *rows;
	const struct sym_dmap *dmap;
	const struct sym_node *nodes;
	const struct sym_sym *syms;
	const char *strs;
	const uint32_t *rkeys;
	uint64_t nrkeys;
	uint64_t nloads, ncusegs, ncus, nseqs, nrows, ndmap, nnodes, nsyms,
		nstrs;
	const uint8_t *build_id;
	size_t build_id_len;
	uint64_t source_sig;
};
/* An open index: a view over a mapped file or a heap image. Immutable
 * once opened, except centry, which only cache.c touches (under its lock). */
struct sym_index {
	struct sym_view v;
	void *mem;
	size_t len;
	int mapped;
	void *centry; /* the cache entry holding this index, or NULL */
};

/* sym_file_serialize builds the file image in *buf (free()), *len bytes. */
int sym_file_serialize(const struct sym_builder *b, void **buf, size_t *len);
/* sym_file_parse checks an image (layout, bounds, and the checksum unless
 * trusted: an image we just serialized ourselves) and fills v. */
int sym_file_parse(const void *buf, size_t len, int trusted,
		   struct sym_view *v);
/* sym_file_write writes an image to path atomically (tmp, fsync, rename). */
int sym_file_write(const char *path, const void *buf, size_t len);

/*
 * code.c: sym_cfg_build over bytes in memory instead of a file (the fuzz
 * target and tests): code[0..len) is the only executable segment, at addr,
 * and data[0..dlen) (NULL/0 for none) a data segment at daddr where jump
 * tables may be read; no call is known not to return by name. The CFG is
 * that of [addr, addr+len); returns as sym_cfg_build.
 */
int sym_cfg_build_bytes(const uint8_t *code, size_t len, uint64_t addr,
			const uint8_t *data, size_t dlen, uint64_t daddr,
			struct sym_cfg **out);

/*
 * probes.c: sym_probes_read over sections in memory (the fuzz target and
 * tests): desc[0..desc_len) is the one .pseudo_probe_desc section and
 * probe[0..probe_len) the one .pseudo_probe section (NULL with length 0
 * for none); the symbol table is nsyms pairs (sym_guids[i], sym_addrs[i])
 * in table order (of one GUID the last wins; address 0 means no symbol).
 * Returns as sym_probes_read, never FDO_ENOT_FOUND, FDO_EIO, FDO_ENOT_ELF,
 * FDO_ETRUNCATED nor FDO_EUNSUPPORTED.
 */
int sym_probes_decode_bytes(const uint8_t *desc, size_t desc_len,
			    const uint8_t *probe, size_t probe_len,
			    const uint64_t *sym_guids,
			    const uint64_t *sym_addrs, size_t nsyms,
			    struct sym_probes **out);

#endif
