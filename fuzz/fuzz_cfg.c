/*
 * fuzz/fuzz_cfg.c — control-flow graphs (symbolizer/cfg.c, code.c) of
 * hostile machine code and hostile ELF files.
 *
 * Input, two shapes:
 *   - an ELF file ("\177ELF..."): sym_code_open on an in-memory file,
 *     then the CFGs of its first 64 function symbols (sym_elf_functions,
 *     each cut at the next one) and sym_code_noreturn on their starts;
 *   - anything else: raw code for sym_cfg_build_bytes. Byte 0: flags
 *     (bit 0: the data segment follows the code, as .rodata follows
 *     .text, else it sits at 0x600000; bits 1-3: that many bytes are cut
 *     from the function's end), bytes 1-2: the code length (little-endian,
 *     clamped), then the code at 0x401000, then the data (jump tables).
 *
 * Properties checked beyond "no crash, no leak, no UB, no hang":
 *   - blocks tile [addr, addr+size) and instructions tile the blocks;
 *     blocks[0] is the entry; edges are grouped by their block, point at
 *     blocks, and npred counts them; PAD and UNKNOWN blocks have no
 *     successors; nunresolved counts the UNKNOWN blocks;
 *     sym_cfg_block_at finds each block from its first and last byte;
 *   - only the documented errors come back;
 *   - building twice gives the same graph (deterministic).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "symbolizer/sym_int.h"

#define CODE_AT	 0x401000u
#define DATA_FAR 0x600000u

static int input_fd = -1;

static void check_cfg(const struct sym_cfg *g, uint64_t addr, uint64_t size)
{
	FUZZ_CHECK(g->addr == addr && g->size == size);
	FUZZ_CHECK(g->nblocks > 0 && g->ninsns > 0);
	FUZZ_CHECK(g->blocks[0].start == addr);
	FUZZ_CHECK(g->blocks[0].flags & SYM_BLOCK_ENTRY);
	FUZZ_CHECK(g->blocks[g->nblocks - 1].end == addr + size);
	uint64_t a = addr;
	for (size_t i = 0; i < g->ninsns; i++) {
		FUZZ_CHECK(g->insns[i].addr == a && g->insns[i].len > 0);
		FUZZ_CHECK(g->insns[i].kind <= SYM_INSN_STOP);
		a += g->insns[i].len;
	}
	uint32_t *npred = calloc(g->nblocks, sizeof *npred);
	FUZZ_CHECK(npred);
	for (size_t i = 0; i < g->nedges; i++) {
		FUZZ_CHECK(g->edges[i].from < g->nblocks);
		FUZZ_CHECK(g->edges[i].to < g->nblocks);
		FUZZ_CHECK(g->edges[i].kind <= SYM_EDGE_TABLE);
		npred[g->edges[i].to]++;
	}
	size_t e = 0, insns = 0, unknown = 0;
	for (size_t i = 0; i < g->nblocks; i++) {
		const struct sym_block *b = &g->blocks[i];
		FUZZ_CHECK(b->start < b->end);
		if (i + 1 < g->nblocks)
			FUZZ_CHECK(b->end == g->blocks[i + 1].start);
		FUZZ_CHECK(b->first_insn == insns && b->ninsns > 0);
		FUZZ_CHECK(g->insns[b->first_insn].addr == b->start);
		insns += b->ninsns;
		FUZZ_CHECK(b->first_succ == e);
		for (uint32_t k = 0; k < b->nsucc; k++)
			FUZZ_CHECK(g->edges[e + k].from == i);
		e += b->nsucc;
		FUZZ_CHECK(b->npred == npred[i]);
		if (b->flags & SYM_BLOCK_PAD)
			FUZZ_CHECK(!b->npred && !b->nsucc && i);
		if (b->flags & SYM_BLOCK_UNKNOWN) {
			FUZZ_CHECK(!b->nsucc);
			unknown++;
		}
		FUZZ_CHECK(sym_cfg_block_at(g, b->start) == i);
		FUZZ_CHECK(sym_cfg_block_at(g, b->end - 1) == i);
	}
	free(npred);
	FUZZ_CHECK(insns == g->ninsns && e == g->nedges);
	FUZZ_CHECK(unknown == g->nunresolved);
	FUZZ_CHECK(sym_cfg_block_at(g, addr - 1) == UINT32_MAX);
	FUZZ_CHECK(sym_cfg_block_at(g, addr + size) == UINT32_MAX);
}

/* same_bytes: memcmp that allows the NULL of an empty array. */
static int same_bytes(const void *a, const void *b, size_t n)
{
	return !n || !memcmp(a, b, n);
}

static int same_cfg(const struct sym_cfg *x, const struct sym_cfg *y)
{
	return x->ninsns == y->ninsns && x->nblocks == y->nblocks &&
	       x->nedges == y->nedges && x->ntables == y->ntables &&
	       x->nunresolved == y->nunresolved &&
	       same_bytes(x->insns, y->insns, x->ninsns * sizeof *x->insns) &&
	       same_bytes(x->blocks, y->blocks,
			  x->nblocks * sizeof *x->blocks) &&
	       same_bytes(x->edges, y->edges, x->nedges * sizeof *x->edges);
}

static void check_rc(int rc)
{
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ENOT_FOUND || rc == FDO_EPARSE ||
		   rc == FDO_ELIMIT);
}

static void raw_code(const uint8_t *data, size_t size)
{
	if (size < 3)
		return;
	uint8_t flags = data[0];
	size_t len = (size_t)data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	if (len > size)
		len = size;
	const uint8_t *tab = data + len;
	size_t tlen = size - len;
	uint64_t taddr = (flags & 1) ? CODE_AT + len : DATA_FAR;
	size_t cut = (flags >> 1) & 7;
	size_t flen = len > cut ? len - cut : len;
	struct sym_cfg *g = NULL, *h = NULL;
	int rc = sym_cfg_build_bytes(data, len, CODE_AT, tab, tlen, taddr, &g);
	check_rc(rc);
	if (rc == FDO_OK) {
		check_cfg(g, CODE_AT, len);
		FUZZ_CHECK(sym_cfg_build_bytes(data, len, CODE_AT, tab, tlen,
					       taddr, &h) == FDO_OK);
		FUZZ_CHECK(same_cfg(g, h));
		sym_cfg_free(h);
	} else {
		FUZZ_CHECK(!g);
	}
	sym_cfg_free(g);
	if (flen == len || !flen)
		return;
	/* The same code as a shorter function (cut inside it). */
	g = NULL;
	rc = sym_cfg_build_bytes(data, flen, CODE_AT, tab, tlen, taddr, &g);
	check_rc(rc);
	if (rc == FDO_OK)
		check_cfg(g, CODE_AT, flen);
	sym_cfg_free(g);
}

static void elf_file(const uint8_t *data, size_t size)
{
	char path[64];
	fuzz_memfd_set(&input_fd, data, size, path);
	sym_code *c = NULL;
	int rc = sym_code_open(path, &c);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_EIO || rc == FDO_ENOT_ELF ||
		   rc == FDO_ETRUNCATED || rc == FDO_EUNSUPPORTED ||
		   rc == FDO_ENOMEM);
	if (rc != FDO_OK) {
		FUZZ_CHECK(!c);
		return;
	}
	struct sym_func *f = NULL;
	size_t n = 0;
	if (sym_elf_functions(path, &f, &n) == FDO_OK) {
		for (size_t i = 0; i < n && i < 64; i++) {
			uint64_t size = f[i].size;
			if (i + 1 < n && f[i + 1].addr > f[i].addr &&
			    (!size || f[i + 1].addr - f[i].addr < size))
				size = f[i + 1].addr - f[i].addr;
			if (size > (1u << 16))
				size = 1u << 16; /* keep each input fast */
			struct sym_cfg *g = NULL;
			rc = sym_cfg_build(c, f[i].addr, size, &g);
			check_rc(rc);
			if (rc == FDO_OK)
				check_cfg(g, f[i].addr, size);
			sym_cfg_free(g);
			(void)sym_code_noreturn(c, f[i].addr);
			(void)sym_code_noreturn_slot(c, f[i].addr);
			size_t avail;
			const uint8_t *p = sym_code_text(c, f[i].addr, &avail);
			if (p && avail) {
				volatile uint8_t x = p[avail - 1];
				(void)x;
			}
			uint8_t buf[16];
			(void)sym_code_read(c, f[i].addr, buf, sizeof buf);
		}
		sym_elf_functions_free(f);
	}
	sym_code_close(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdo_log_set_level(FDO_LOG_ERROR); /* "not ELF" is expected */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 4 && !memcmp(data, "\177ELF", 4))
		elf_file(data, size);
	else
		raw_code(data, size);
	return 0;
}
