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
	const char *function; /* linkage name, else DW_AT_name; NULL unknown */
	const char *file; /* source file, joined as llvm does; NULL unknown */
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

/*
 * sym_inflate_budget bounds what reading DWARF may inflate: a file whose
 * compressed debug sections claim more than per_file bytes once inflated
 * (from their headers, before anything is inflated) is not read
 * (sym_index_open then fails with FDO_ELIMIT, and a log line says why);
 * all threads together hold at most total bytes of inflated sections (a
 * thread waits for its share). 0 = no limit. Defaults: 512 MiB, 1 GiB.
 * Any thread, any time.
 */
void sym_inflate_budget(uint64_t per_file, uint64_t total);
/* sym_inflate_held: bytes of inflated sections reserved now (the claims
 * of the files being read). Any thread. */
uint64_t sym_inflate_held(void);

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
void sym_index_build_id(const sym_index *idx, const uint8_t **id, size_t *len);

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

/*
 * sym_cache_forget drops build-id (id, len) from c, so that the next
 * sym_cache_get opens its files again (they were replaced). Holders of
 * the old index keep it until they release it. Any thread.
 */
void sym_cache_forget(sym_cache *c, const uint8_t *id, size_t len);

/* sym_cache_stats: indexes resident, their bytes, and hits/misses so far. */
void sym_cache_stats(sym_cache *c, size_t *count, size_t *bytes, uint64_t *hits,
		     uint64_t *misses);

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
int sym_elf_functions(const char *elf_path, struct sym_func **out, size_t *n);

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

/* ------------------------------------------------- machine code, CFGs -- */

/*
 * Control-flow graphs of x86-64 functions, from an ELF executable's own
 * machine code (code.c reads the file, cfg.c disassembles with capstone),
 * so that IP samples can be turned into basic-block counts; the flow
 * inference itself is the aggregator's.
 *
 * A sym_code is an opened ELF file: immutable once open, so any number of
 * threads may build CFGs from one sym_code at once. A sym_cfg belongs to
 * its caller alone.
 */
typedef struct sym_code sym_code;

/*
 * sym_code_open opens the ELF file elf_path (ELF64 x86-64 only) through
 * libelf (mmap) for disassembly: its PT_LOAD segments, and what tells
 * which calls never return (function symbols and PLT stubs / GOT slots of
 * abort, exit, __assert_fail, __stack_chk_fail, __cxa_throw, ...).
 * Returns FDO_OK and *out (close with sym_code_close), FDO_EIO (cannot
 * open, not a regular file), FDO_ENOT_ELF, FDO_ETRUNCATED (a header or a
 * PT_LOAD's file bytes past the end of the file), FDO_EUNSUPPORTED (not
 * ELF64 little-endian x86-64) or FDO_ENOMEM. The file is untrusted: a
 * damaged one gives an error or less information, never a crash.
 * Blocks on file I/O; any thread.
 */
int sym_code_open(const char *elf_path, sym_code **out);

/* sym_code_close unmaps and frees c (NULL is fine); no CFG build may be
 * running on it. CFGs already built stay valid (they copy what they need). */
void sym_code_close(sym_code *c);

/*
 * sym_code_text returns the bytes at vaddr inside the file-backed part of
 * an executable (PF_X) PT_LOAD segment, *avail = how many follow vaddr in
 * that segment; NULL (and *avail = 0) if none. The bytes live as long as
 * c. Any thread.
 */
const uint8_t *sym_code_text(const sym_code *c, uint64_t vaddr, size_t *avail);

/*
 * sym_code_is_code tells (1 or 0) whether vaddr is code: inside an
 * executable section (SHF_EXECINSTR) when the file has section headers,
 * else inside an executable segment's bytes. Not the same as
 * sym_code_text != NULL: linked with -z noseparate-code (libLLVM-16, for
 * one), .rodata shares the executable segment. Any thread.
 */
int sym_code_is_code(const sym_code *c, uint64_t vaddr);

/*
 * sym_code_read copies len bytes at vaddr from the file-backed part of any
 * one PT_LOAD segment (jump tables live in .rodata) into buf.
 * Returns FDO_OK or FDO_ENOT_FOUND. Any thread.
 */
int sym_code_read(const sym_code *c, uint64_t vaddr, void *buf, size_t len);

/*
 * sym_code_noreturn tells (1 or 0) whether a call to target never returns:
 * target is a function symbol, or a PLT stub (.plt, .plt.sec, .plt.got)
 * whose GOT slot is bound to, a function known never to return by its
 * name (abort, exit, _exit, _Exit, quick_exit, __assert_fail,
 * __stack_chk_fail, __fortify_fail, __chk_fail, longjmp, siglongjmp,
 * __longjmp_chk, err, errx, verr, verrx, pthread_exit, __cxa_throw,
 * __cxa_rethrow, _Unwind_Resume, __libc_fatal, std::terminate and
 * libstdc++'s std::__throw_*; not error(), which may return).
 * sym_code_noreturn_slot: the same for an indirect call through the GOT
 * slot at address slot (`call *abort@GOTPCREL(%rip)`, -fno-plt).
 * Any thread.
 */
int sym_code_noreturn(const sym_code *c, uint64_t target);
int sym_code_noreturn_slot(const sym_code *c, uint64_t slot);

/* Kinds of instruction, as far as control flow goes. */
enum sym_insn_kind {
	SYM_INSN_PLAIN,
	SYM_INSN_JUMP,	/* direct unconditional jump */
	SYM_INSN_COND,	/* direct conditional: jcc, jrcxz, loop* */
	SYM_INSN_IJUMP, /* indirect jump */
	SYM_INSN_CALL,	/* direct call */
	SYM_INSN_ICALL, /* indirect call */
	SYM_INSN_RET,	/* ret, retf, iret, sysret */
	SYM_INSN_STOP,	/* ud2, ud0, hlt, int3: no fall-through */
};
#define SYM_INSN_NOP	  1u /* flag: a nop (padding) */
#define SYM_INSN_NORETURN 2u /* flag: a call that never returns */
#define SYM_INSN_TABLE                                                         \
	4u /* flag: an indirect jump through a resolved
				jump table */
/* SYM_INSN_TAILCALL: an indirect jump taken for a tail call, so its block
 * is EXIT: through one fixed slot (`jmp *f@GOTPCREL(%rip)`), through a
 * pointer loaded without an index register (a vtable slot, a struct
 * field; not a stack slot), or right after the stack frame is torn down
 * (pop, leave, add rsp). Tried only when no jump table matched. */
#define SYM_INSN_TAILCALL 8u

/* One instruction. */
struct sym_insn {
	uint64_t addr;
	uint64_t target; /* direct jump / call target, else 0 */
	uint8_t len;
	uint8_t kind;  /* enum sym_insn_kind */
	uint8_t flags; /* SYM_INSN_* */
};

#define SYM_BLOCK_ENTRY 1u /* the function's entry (blocks[0]) */
/* SYM_BLOCK_EXIT: control leaves the function: ret, a tail call (a jump
 * out of the range, SYM_INSN_TAILCALL), a call that never returns, a
 * conditional jump out of the range (gcc's .cold parts: the taken path
 * leaves; the block may still have its fall-through edge), a jump-table
 * entry into code out of the range (the block keeps its TABLE edges),
 * falling off the end of the range, or a trap (ud2/hlt/int3) reached by
 * the flow. */
#define SYM_BLOCK_EXIT 2u
#define SYM_BLOCK_UNKNOWN                                                      \
	4u /* ends in an indirect jump whose targets are
				unknown: no successors */
#define SYM_BLOCK_PAD                                                          \
	8u /* only nops/int3 padding, no predecessor: no
				successors, not part of the flow */

/* A basic block [start, end): insns[first_insn .. first_insn+ninsns) and
 * successors edges[first_succ .. first_succ+nsucc). */
struct sym_block {
	uint64_t start, end;
	uint32_t first_insn, ninsns;
	uint32_t first_succ, nsucc;
	uint32_t npred; /* edges into this block */
	uint32_t flags; /* SYM_BLOCK_* */
};

/* FALL: to the next block (no branch taken); TAKEN: a direct branch;
 * TABLE: a jump-table entry. */
enum sym_edge_kind { SYM_EDGE_FALL, SYM_EDGE_TAKEN, SYM_EDGE_TABLE };

/* An edge between two blocks of one CFG. A conditional jump to the next
 * block gives one FALL edge; a table gives one TABLE edge per distinct
 * target, in block order. */
struct sym_edge {
	uint32_t from, to; /* block indexes */
	uint32_t kind;	   /* enum sym_edge_kind */
};

/* The CFG of one function. Blocks tile [addr, addr+size) exactly. */
struct sym_cfg {
	uint64_t addr, size;
	struct sym_insn *insns; /* in address order */
	size_t ninsns;
	struct sym_block *blocks; /* sorted by start; blocks[0] at addr */
	size_t nblocks;
	struct sym_edge *edges; /* grouped by from block, in block order */
	size_t nedges;
	uint32_t ntables;     /* indirect jumps resolved as jump tables */
	uint32_t nunresolved; /* indirect jumps left SYM_BLOCK_UNKNOWN */
};

/*
 * sym_cfg_build builds the CFG of the function [addr, addr+size) (as the
 * symbol table gives it) of c.
 * Returns FDO_OK and *out (free with sym_cfg_free); FDO_ENOT_FOUND (size
 * 0, or the range is not all inside one executable segment's bytes);
 * FDO_EPARSE (an instruction capstone cannot decode before the end of the
 * range, one that runs past it, or a direct jump into the middle of an
 * instruction: the caller should drop the function); FDO_ELIMIT (size
 * over 16 MiB or over 1M instructions); FDO_ENOMEM. Deterministic; work
 * O(n log n) in instructions. Any thread, any number at once on one c
 * (a capstone handle per call).
 */
int sym_cfg_build(const sym_code *c, uint64_t addr, uint64_t size,
		  struct sym_cfg **out);

/* sym_cfg_free frees a CFG (NULL is fine). */
void sym_cfg_free(struct sym_cfg *cfg);

/* sym_cfg_block_at returns the index of the block containing vaddr, or
 * UINT32_MAX when vaddr is outside the function. Any thread. */
uint32_t sym_cfg_block_at(const struct sym_cfg *cfg, uint64_t vaddr);

/* ------------------------------------------------------ pseudo probes -- */

/*
 * LLVM 16's pseudo probes (clang -fpseudo-probe-for-profiling), decoded
 * from an ELF file's .pseudo_probe_desc and .pseudo_probe sections
 * (probes.c; the byte layouts are written down there), so that samples
 * can be counted per probe and a probe-based sample profile written.
 * Addresses are the file's link-time virtual addresses, the answers
 * llvm-profgen-16 --show-pseudo-probe gives for the same file.
 *
 * A sym_probes is immutable once read: any number of threads may read
 * one at once. It owns all its memory.
 */

/* Probe types, as LLVM numbers them (PseudoProbeType). A file may carry
 * other values (0..15): they are kept as they are. */
enum sym_probe_type { SYM_PROBE_BLOCK, SYM_PROBE_ICALL, SYM_PROBE_DCALL };

/* A function's descriptor, from .pseudo_probe_desc: its GUID, its CFG
 * checksum (a probe profile's !CFGChecksum) and its IR name (statics
 * carry ".__uniq.<digits>"). name is never NULL and lives as long as the
 * sym_probes. */
struct sym_probe_func {
	uint64_t guid, hash;
	const char *name;
};

/*
 * An inline context: a node of one record's inline tree. A top-level
 * record is a context with parent UINT32_MAX; an inlinee's context names
 * its caller's context (parent, always a smaller index) and the caller's
 * call-probe index it was inlined at (site). The chain of a context, from
 * the top, is llvm-profgen's "caller:site @ callee:site ...".
 */
struct sym_probe_ctx {
	uint32_t parent;    /* UINT32_MAX: top level */
	uint64_t guid;	    /* the function whose probes these are */
	uint32_t site;	    /* call-probe index in the parent's function (0
			       top level) */
	uint64_t func_addr; /* top level only (else 0): the vaddr of the
			       symbol the record's addresses start from: the
			       function's own, or a split part's (sentinel) */
};

/*
 * One probe at one address. Block probes sit at the first instruction
 * after the probe point, call probes at the call instruction. One probe
 * (ctx, index) may sit at several addresses (duplicated code), and
 * several probes at one address. attr: LLVM's attribute bits (0x1
 * reserved); sentinels (0x2) are not probes and never appear here.
 */
struct sym_probe {
	uint64_t addr;
	uint32_t index; /* probe id, 1 = the function's entry block */
	uint32_t ctx;	/* into ctxs */
	uint8_t type;	/* enum sym_probe_type */
	uint8_t attr;
};

/* Everything decoded from one file. */
struct sym_probes {
	struct sym_probe_func *funcs; /* sorted by guid, one per guid (of
					 duplicates, the first in the file) */
	size_t nfuncs;
	struct sym_probe_ctx *ctxs; /* parents before children */
	size_t nctxs;
	struct sym_probe *probes; /* sorted by addr, then ctx, then index */
	size_t nprobes;
	size_t skipped; /* top-level records dropped: no symbol for the GUID
			   (a stripped file drops them all), an address that
			   overflows, inlining deeper than SYM_PROBE_MAX_DEPTH,
			   or damaged (counted once; what followed the damage
			   in its section is lost uncounted) */
};

/* Inline trees deeper than this (contexts below the top level) are
 * refused: their record is dropped. Real trees are a few levels deep. */
#define SYM_PROBE_MAX_DEPTH 256

/*
 * sym_probes_read decodes the pseudo probes of the ELF file elf_path
 * (ELF64 little-endian: x86-64 or any other). Addresses are based on the
 * file's .symtab, as llvm-profgen does: a record starts at the defined
 * symbol whose name's GUID is the record's (of several, a FUNC one, and
 * of those the last in the table). A stripped file (no .symtab; .dynsym
 * is not used) decodes to descriptors only, its records skipped; a debug
 * file (objcopy --only-keep-debug) keeps both sections and .symtab. In a
 * relocatable object addresses are offsets in the function's section.
 * Returns FDO_OK and *out (free with sym_probes_free); FDO_ENOT_FOUND (no
 * .pseudo_probe section); FDO_EIO (cannot open, not a regular file);
 * FDO_ENOT_ELF; FDO_ETRUNCATED (a header or a probe section past the end
 * of the file); FDO_EUNSUPPORTED (ELF32 or big-endian); FDO_ENOMEM.
 * Damaged sections still give *out, which the caller frees as well:
 * FDO_EPARSE: a record runs past its section (its counts need more bytes
 *   than are left, a LEB128 number never ends or is wider than 64 bits,
 *   an index or site is over 32 bits): that record and the rest of its
 *   section are dropped, what came before is kept; logged at debug level
 *   and counted in skipped.
 * FDO_ELIMIT: absurd sizes: a count over 32 bits (LLVM's width; the
 *   record and the rest of its section are dropped, as for FDO_EPARSE),
 *   an inline tree deeper than SYM_PROBE_MAX_DEPTH (that record only is
 *   dropped), a section over 1 GiB (not decoded) or a symbol table of
 *   over 64 Mi entries (records decoded without symbols, so skipped).
 * Of several problems the first met is returned. The file is untrusted:
 * work and memory are linear in the sections' sizes, and the inline tree
 * is walked without recursion. Blocks on file I/O; any thread.
 */
int sym_probes_read(const char *elf_path, struct sym_probes **out);

/* sym_probes_free frees p (NULL is fine). */
void sym_probes_free(struct sym_probes *p);

/* sym_probes_func returns the descriptor of guid, or NULL. Any thread. */
const struct sym_probe_func *sym_probes_func(const struct sym_probes *p,
					     uint64_t guid);

/*
 * sym_probe_guid returns LLVM's GUID of a function name
 * (Function::getGUID, MD5Hash): the first 8 bytes of the name's MD5
 * digest read as a little-endian integer. Pure; any thread.
 */
uint64_t sym_probe_guid(const char *name);

#endif
