/*
 * symbolizer/symbolizer.h — addresses of one ELF file to functions, source
 * lines and inline chains. The only header of symbolizer/ that other parts
 * may include; elfutils stays behind it.
 *
 * A sym_index is an immutable, per-build-id address index built once from
 * an ELF file and its DWARF (libdw is used only while building) and then
 * persisted as a checksummed, mmap-able file in a cache directory, so later
 * opens skip DWARF entirely. Lookups are binary searches over flat arrays:
 * any number of threads may look up in one index at once.
 *
 * A sym_cache keeps open indexes in an LRU under a memory budget, keyed by
 * build-id and refcounted, so worker threads share one index.
 */
#ifndef FDO_SYMBOLIZER_H
#define FDO_SYMBOLIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sym_index sym_index;
typedef struct sym_cache sym_cache;

/*
 * One frame of an inline chain, as DWARF describes it. Strings point into
 * the index and stay valid until the index is closed (or released to its
 * cache). NULL means "unknown" (llvm-symbolizer prints "??"); "" is an empty
 * but present value.
 */
struct sym_frame {
	const char *function;	/* linkage name, else DW_AT_name; NULL unknown */
	const char *file;	/* source file, joined as llvm does; NULL unknown */
	const char *start_file; /* file of the function's declaration, or "" */
	uint32_t line;		/* 0 when unknown */
	uint32_t column;	/* 0 when unknown */
	uint32_t discriminator;
	uint32_t start_line;	/* DW_AT_decl_line of the function, or 0 */
	uint64_t start_address; /* DW_AT_low_pc, valid if has_start_address */
	int has_start_address;
};

/*
 * The ELF symbol-table entry covering an address (llvm-symbolizer's rules:
 * .symtab, else .dynsym; function, object and untyped symbols; a size-0
 * symbol covers up to the next one). found = 0 when none covers it.
 * The table is the binary's own, never the separate debug file's: like
 * llvm-symbolizer-16, a stripped binary answers from its .dynsym and takes
 * only DWARF from the debug file (measured on stripped gcc/clang builds and
 * libc + libc6-dbg: identical output on every address).
 */
struct sym_symbol {
	int found;
	const char *name; /* never NULL when found */
	const char *file; /* STT_FILE of a local symbol, or NULL */
	uint64_t addr;
	uint64_t size;
};

/*
 * sym_index_open opens the index of the ELF file elf_path.
 * debug_path: a separate debug file to read DWARF from, or NULL to search
 *   the usual places (/usr/lib/debug/.build-id/xx/rest.debug, then
 *   .gnu_debuglink beside the file and under /usr/lib/debug, then the file
 *   itself).
 * cache_dir: where persisted indexes live (created if missing), or NULL to
 *   build in memory only. A cached file that is corrupt, of another format
 *   version or built from other input files is rebuilt.
 * Returns FDO_OK and *out (close with sym_index_close), or FDO_ENOT_ELF,
 * FDO_ETRUNCATED, FDO_EIO, FDO_EDWARF, FDO_ENOMEM... A file without DWARF is
 * not an error: its index answers from the symbol table only.
 * Blocks on file I/O and, on a cache miss, on building the index (a large
 * binary takes seconds). Any thread.
 */
int sym_index_open(const char *elf_path, const char *debug_path,
		   const char *cache_dir, sym_index **out);

/* sym_index_close releases idx (NULL is fine). Not for cached indexes. */
void sym_index_close(sym_index *idx);

/*
 * sym_index_lookup resolves the ELF virtual address vaddr.
 * frames: filled innermost first with up to cap frames; *n gets the depth
 *   of the chain (0 when no DWARF describes vaddr; may exceed cap, in which
 *   case only cap frames are written).
 * symbol: if not NULL, gets the symbol-table entry covering vaddr.
 * Returns FDO_OK (also when nothing is known). Never blocks; any number of
 * threads at once.
 */
int sym_index_lookup(const sym_index *idx, uint64_t vaddr,
		     struct sym_frame *frames, size_t cap, size_t *n,
		     struct sym_symbol *symbol);

/*
 * sym_index_offset_to_vaddr maps a file offset to an ELF virtual address
 * through the PT_LOAD headers (vaddr = off - p_offset + p_vaddr).
 * Returns FDO_OK, or FDO_ENOT_FOUND when no PT_LOAD maps the offset.
 * Never blocks; any thread.
 */
int sym_index_offset_to_vaddr(const sym_index *idx, uint64_t file_off,
			      uint64_t *vaddr);

/*
 * sym_index_build_id gives the GNU build-id of the indexed file; *len = 0
 * when it has none. The bytes live as long as idx. Any thread.
 */
void sym_index_build_id(const sym_index *idx, const uint8_t **id,
			size_t *len);

/* sym_index_memory returns the bytes idx keeps in memory (mapped or not). */
size_t sym_index_memory(const sym_index *idx);

/* sym_cache_dir_default: $FDOD_CACHE_DIR, else $XDG_CACHE_HOME/fdod, else
 * ~/.cache/fdod, written into buf; returns buf, or NULL if none applies. */
const char *sym_cache_dir_default(char *buf, size_t cap);

/*
 * sym_cache_create makes an LRU of open indexes holding at most
 * budget_bytes of index memory (indexes in use are never evicted, so the
 * budget can be exceeded while they are). cache_dir as for sym_index_open.
 * Returns FDO_OK and *out (free with sym_cache_destroy) or FDO_ENOMEM.
 */
int sym_cache_create(size_t budget_bytes, const char *cache_dir,
		     sym_cache **out);

/* sym_cache_destroy closes every index; none may still be held. */
void sym_cache_destroy(sym_cache *c);

/*
 * sym_cache_get returns the index of build-id (id, len), opening it from
 * elf_path / debug_path (as sym_index_open) on a miss. The caller holds a
 * reference until sym_cache_release. If the file at elf_path has another
 * build-id, returns FDO_EINVAL. Concurrent misses on one build-id open it
 * once; others wait. Blocks while opening. Any thread.
 */
int sym_cache_get(sym_cache *c, const uint8_t *id, size_t len,
		  const char *elf_path, const char *debug_path,
		  sym_index **out);

/* sym_cache_release drops a reference taken by sym_cache_get. Any thread. */
void sym_cache_release(sym_cache *c, sym_index *idx);

/* sym_cache_stats: indexes resident, their bytes, and hits/misses so far. */
void sym_cache_stats(sym_cache *c, size_t *count, size_t *bytes,
		     uint64_t *hits, uint64_t *misses);

/* ------------------------------------------------------ function symbols -- */

/* Binding of a function symbol. */
enum sym_bind { SYM_BIND_LOCAL, SYM_BIND_GLOBAL, SYM_BIND_WEAK };

/*
 * One FUNC (or GNU_IFUNC) symbol of an ELF file's symbol table.
 * ordinal: for locals, llvm-bolt's N in "name/N": the 1-based rank of the
 *   symbol among the allocated local symbols of the same name (any type)
 *   in llvm-bolt's order (by address; at one address FUNC first, then
 *   symbol-table order). For the common case, distinct static functions of
 *   one name in several files, this is also their symbol-table order.
 *   0 for global and weak symbols (llvm-bolt spells them plainly).
 */
struct sym_func {
	uint64_t addr;	  /* st_value: the ELF virtual address */
	uint64_t size;	  /* st_size, or for st_size 0 up to the end of its
			     section; still 0 = up to the next function */
	const char *name; /* symbol name, never NULL; see sym_elf_functions */
	uint32_t ordinal;
	uint32_t bind; /* enum sym_bind */
};

/*
 * sym_elf_functions lists the function symbols of elf_path's .symtab (or,
 * when it has none, its .dynsym), sorted by address; at one address
 * globals first, then weak, then locals, each in symbol-table order.
 * *out is one allocation holding the array and its names: free it with
 * sym_elf_functions_free; *n may be 0 (a stripped file without .dynsym).
 * Returns FDO_OK, FDO_EIO, FDO_ENOT_ELF, FDO_ETRUNCATED, FDO_EUNSUPPORTED
 * (big-endian), FDO_ELIMIT (absurd sizes) or FDO_ENOMEM. The file is
 * untrusted: a damaged one gives an error or fewer symbols, never a crash.
 * Blocks on file I/O; any thread.
 */
int sym_elf_functions(const char *elf_path, struct sym_func **out,
		      size_t *n);

/* sym_elf_functions_free frees a listing (NULL is fine). */
void sym_elf_functions_free(struct sym_func *funcs);

/*
 * sym_func_find returns the function of funcs (as sym_elf_functions
 * sorted them) containing vaddr, or NULL. Of aliases (symbols at one
 * address) it returns the first. A size-0 symbol covers up to the next
 * function's address. Never blocks; any thread.
 */
const struct sym_func *sym_func_find(const struct sym_func *funcs, size_t n,
				     uint64_t vaddr);

#endif
