/*
 * aggregator/blocks.c — from IP samples to basic-block execution counts on
 * the binary's own code: for each build-id of a profile, the functions its
 * stacks' leaves fell in are disassembled (symbolizer/cfg.c), each one's
 * leaf counts are spread over its blocks and turned into the most likely
 * flow (aggregator/flow.c), and every instruction of those blocks gets its
 * inline chain from the DWARF index, so the emitters can write line counts
 * (the largest block count among a line's instructions), heads (entry
 * block counts), call counts (call blocks' counts) and edges (BOLT).
 *
 * A block's size, the instructions an execution costs, counts every
 * instruction but nops (alignment padding before a loop runs once per
 * entry, not per iteration).
 *
 * Workload: a profile pull; up to thousands of sampled functions and
 * millions of their instructions, each looked up once in the DWARF index;
 * strings are interned once per distinct pointer into the index.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/blocks.h"
#include "aggregator/flow.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define MAX_FRAMES 32

struct leaf {
	uint64_t vaddr;
	double count;
};

struct bb {
	struct prof *p;
	double spread;	   /* >= 1: one unit across functions (balance_units),
			  no scale beyond 1/spread..spread; 0: off */
	double dispersion; /* flow_infer's r (0: Poisson) */
	const sym_index *idx;
	struct fdo_map64 names; /* pointer into the index -> string index:
				   pointers stay valid while it is open */
	struct prof_func *funcs;
	size_t nfuncs, cap_funcs;
	struct prof_block *blocks;
	size_t nblocks, cap_blocks;
	struct prof_insn *insns;
	size_t ninsns, cap_insns;
	struct prof_edge *edges;
	size_t nedges, cap_edges;
	struct prof_call *calls;
	size_t ncalls;
	struct prof_pctx *pctxs;
	size_t npctxs, cap_pctxs;
	struct prof_probe *probes;
	size_t nprobes, cap_probes;
	size_t cap_frames;
	/* Scratch for one function. */
	struct flow_block *fb;
	size_t cap_fb;
	struct flow_edge *fe;
	size_t cap_fe;
	uint32_t *flow_of; /* cfg block -> flow block, or UINT32_MAX (pad) */
	size_t cap_flow_of;
	uint32_t *edge_of; /* flow edge -> cfg edge */
	size_t cap_edge_of;
};

/* The string index of s (NULL or "": PROF_NONE); PROF_NONE - 1 when out
 * of memory. */
static uint32_t intern(struct bb *b, const char *s)
{
	return prof_intern_memo(b->p, &b->names, s);
}

/* frames_of appends vaddr's inline chain to p->frames. */
static int frames_of(struct bb *b, uint64_t vaddr, uint32_t *first, uint32_t *n)
{
	struct prof *p = b->p;
	struct sym_frame sf[MAX_FRAMES];
	size_t k = 0;
	sym_index_lookup(b->idx, vaddr, sf, MAX_FRAMES, &k, NULL);
	if (k > MAX_FRAMES)
		k = MAX_FRAMES;
	if (fdo_grow(p->frames, b->cap_frames, p->nframes + k))
		return FDO_ENOMEM;
	*first = (uint32_t)p->nframes;
	*n = (uint32_t)k;
	for (size_t i = 0; i < k; i++) {
		uint32_t fn = intern(b, sf[i].function);
		uint32_t file = intern(b, sf[i].file);
		if (fn == PROF_NONE - 1 || file == PROF_NONE - 1)
			return FDO_ENOMEM;
		p->frames[p->nframes++] = (struct prof_frame){
			.function = fn,
			.file = file,
			.line = sf[i].line,
			.column = sf[i].column,
			.discriminator = sf[i].discriminator,
			.start_line = sf[i].start_line,
		};
	}
	return FDO_OK;
}

/* The linkage name of the function at vaddr (the outermost frame there). */
static uint32_t name_at(struct bb *b, uint64_t vaddr)
{
	struct sym_frame sf[MAX_FRAMES];
	size_t k = 0;
	sym_index_lookup(b->idx, vaddr, sf, MAX_FRAMES, &k, NULL);
	if (!k)
		return PROF_NONE;
	if (k > MAX_FRAMES)
		k = MAX_FRAMES;
	uint32_t id = intern(b, sf[k - 1].function);
	return id == PROF_NONE - 1 ? PROF_NONE : id;
}

static uint8_t insn_kind(const struct sym_insn *in)
{
	switch (in->kind) {
	case SYM_INSN_CALL:
		return PROF_INSN_CALL;
	case SYM_INSN_ICALL:
		return PROF_INSN_ICALL;
	case SYM_INSN_JUMP:
	case SYM_INSN_COND:
	case SYM_INSN_IJUMP:
	case SYM_INSN_RET:
		return PROF_INSN_BRANCH;
	default:
		return PROF_INSN_PLAIN;
	}
}

/* Exact counts: the records into [lo, hi), sorted by target. */
static const struct agg_branch *first_into(const struct agg_branch *x,
					   size_t nx, uint64_t lo)
{
	size_t a = 0, c = nx;
	while (a < c) {
		size_t m = a + (c - a) / 2;
		if (x[m].to < lo)
			a = m + 1;
		else
			c = m;
	}
	return x + a;
}

/* exact_counts sets the flow blocks' and edges' counts from the records
 * x[0..nx) (sorted by target): a block ran as often as records lead to
 * its start (the entry block: calls too), an edge as often as records go
 * from its source block to its target's start. */
static void exact_counts(struct bb *b, const struct sym_cfg *cfg, size_t nfe,
			 const struct agg_branch *x, size_t nx)
{
	for (size_t i = 0; i < cfg->nblocks; i++) {
		if (b->flow_of[i] == UINT32_MAX)
			continue;
		const struct sym_block *sb = &cfg->blocks[i];
		double c = 0;
		for (const struct agg_branch *r = first_into(x, nx, sb->start);
		     r < x + nx && r->to == sb->start; r++)
			c += r->count;
		b->fb[b->flow_of[i]].count = c;
	}
	for (size_t k = 0; k < nfe; k++) {
		const struct sym_edge *e = &cfg->edges[b->edge_of[k]];
		const struct sym_block *from = &cfg->blocks[e->from];
		uint64_t to = cfg->blocks[e->to].start;
		double c = 0;
		for (const struct agg_branch *r = first_into(x, nx, to);
		     r < x + nx && r->to == to; r++)
			if (r->from >= from->start && r->from < from->end)
				c += r->count;
		b->fe[k].count = c;
	}
}

/*
 * add_function: the CFG of f, its counts from the leaves l[0..nl) (sorted,
 * all inside f) or, when x is not NULL, from the exact records x[0..nx),
 * appended to the builder's arrays.
 */
static int add_function(struct bb *b, const sym_code *code, uint32_t bid,
			const struct sym_func *f, uint64_t size,
			const struct leaf *l, size_t nl,
			const struct agg_branch *x, size_t nx)
{
	double samples = 0;
	for (size_t i = 0; i < nl; i++)
		samples += l[i].count;
	if (fdo_grow(b->funcs, b->cap_funcs, b->nfuncs + 1))
		return FDO_ENOMEM;
	uint32_t fi = (uint32_t)b->nfuncs++;
	struct prof_func *pf = &b->funcs[fi];
	*pf = (struct prof_func){.build_id = bid,
				 .name = intern(b, f->name),
				 .addr = f->addr,
				 .size = size,
				 .first_block = (uint32_t)b->nblocks,
				 .samples = samples};
	if (pf->name == PROF_NONE - 1)
		return FDO_ENOMEM;
	struct sym_cfg *cfg;
	int rc = sym_cfg_build(code, f->addr, size, &cfg);
	if (rc) {
		pf->status = rc;
		fdo_debug("blocks: %s at %#llx: no graph (%s); its samples "
			  "are placed by line",
			  f->name, (unsigned long long)f->addr,
			  fdo_strerror(rc));
		return rc == FDO_ENOMEM ? rc : FDO_OK;
	}
	if (fdo_grow(b->flow_of, b->cap_flow_of, cfg->nblocks) ||
	    fdo_grow(b->fb, b->cap_fb, cfg->nblocks) ||
	    fdo_grow(b->fe, b->cap_fe, cfg->nedges + 1) ||
	    fdo_grow(b->edge_of, b->cap_edge_of, cfg->nedges + 1)) {
		sym_cfg_free(cfg);
		return FDO_ENOMEM;
	}
	/* Flow blocks: every block but padding. */
	size_t nfb = 0;
	for (size_t i = 0; i < cfg->nblocks; i++) {
		const struct sym_block *sb = &cfg->blocks[i];
		if (sb->flags & SYM_BLOCK_PAD) {
			b->flow_of[i] = UINT32_MAX;
			continue;
		}
		double n = 0;
		for (uint32_t k = 0; k < sb->ninsns; k++)
			if (!(cfg->insns[sb->first_insn + k].flags &
			      SYM_INSN_NOP))
				n += 1;
		uint32_t flags = 0;
		if (sb->flags & SYM_BLOCK_ENTRY)
			flags |= FLOW_ENTRY;
		if (sb->flags & SYM_BLOCK_EXIT)
			flags |= FLOW_EXIT;
		if (sb->flags & SYM_BLOCK_UNKNOWN)
			flags |= FLOW_UNKNOWN_SUCC;
		if (!sb->npred && !(sb->flags & SYM_BLOCK_ENTRY))
			flags |= FLOW_NO_PRED;
		b->flow_of[i] = (uint32_t)nfb;
		b->fb[nfb++] =
			(struct flow_block){0, n > 0 ? n : 0.5, flags, 0};
	}
	for (size_t i = 0; i < nl; i++) {
		uint32_t k = sym_cfg_block_at(cfg, l[i].vaddr);
		if (k != UINT32_MAX && b->flow_of[k] != UINT32_MAX)
			b->fb[b->flow_of[k]].samples += l[i].count;
	}
	size_t nfe = 0;
	for (size_t i = 0; i < cfg->nedges; i++) {
		const struct sym_edge *e = &cfg->edges[i];
		uint32_t from = b->flow_of[e->from], to = b->flow_of[e->to];
		if (from == UINT32_MAX || to == UINT32_MAX)
			continue;
		b->edge_of[nfe] = (uint32_t)i;
		b->fe[nfe++] = (struct flow_edge){from, to, 0};
	}
	if (x) {
		exact_counts(b, cfg, nfe, x, nx);
		rc = FDO_OK;
	} else {
		rc = flow_infer_shared(b->fb, nfb, b->fe, nfe, b->dispersion);
	}
	if (rc == FDO_ELIMIT) {
		fdo_info("blocks: %s (%zu blocks): flow search over its "
			 "bound; counts from sample density",
			 f->name, nfb);
		rc = FDO_OK;
	}
	if (rc) {
		sym_cfg_free(cfg);
		return rc;
	}
	/* Blocks and their instructions. */
	uint32_t first_block = (uint32_t)b->nblocks;
	for (size_t i = 0; i < cfg->nblocks && !rc; i++) {
		if (b->flow_of[i] == UINT32_MAX)
			continue;
		const struct sym_block *sb = &cfg->blocks[i];
		const struct flow_block *fl = &b->fb[b->flow_of[i]];
		if (fdo_grow(b->blocks, b->cap_blocks, b->nblocks + 1) ||
		    fdo_grow(b->insns, b->cap_insns, b->ninsns + sb->ninsns)) {
			rc = FDO_ENOMEM;
			break;
		}
		uint32_t gbi = (uint32_t)b->nblocks++;
		b->blocks[gbi] = (struct prof_block){
			.func = fi,
			.start = sb->start,
			.end = sb->end,
			.first_insn = (uint32_t)b->ninsns,
			.ninsns = sb->ninsns,
			.count = fl->count,
			.samples = fl->samples,
		};
		for (uint32_t k = 0; k < sb->ninsns && !rc; k++) {
			const struct sym_insn *si =
				&cfg->insns[sb->first_insn + k];
			struct prof_insn *in = &b->insns[b->ninsns++];
			*in = (struct prof_insn){.vaddr = si->addr,
						 .block = gbi,
						 .callee = PROF_NONE,
						 .kind = insn_kind(si)};
			rc = frames_of(b, si->addr, &in->first_frame,
				       &in->nframes);
			if (!rc && si->kind == SYM_INSN_CALL) {
				in->callee = name_at(b, si->target);
				in->target = si->target;
			}
		}
	}
	/* Edges, from the last instruction of their source block that is
	 * not a nop (llvm-bolt drops nops from its blocks). */
	for (size_t k = 0; k < nfe && !rc; k++) {
		const struct sym_edge *e = &cfg->edges[b->edge_of[k]];
		const struct sym_block *sb = &cfg->blocks[e->from];
		uint32_t last = sb->first_insn + sb->ninsns - 1;
		while (last > sb->first_insn &&
		       (cfg->insns[last].flags & SYM_INSN_NOP))
			last--;
		if (fdo_grow(b->edges, b->cap_edges, b->nedges + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		b->edges[b->nedges++] = (struct prof_edge){
			.from = first_block + b->fe[k].from,
			.to = first_block + b->fe[k].to,
			.from_vaddr = cfg->insns[last].addr,
			.count = b->fe[k].count,
			.kind = e->kind == SYM_EDGE_FALL    ? PROF_EDGE_FALL
				: e->kind == SYM_EDGE_TAKEN ? PROF_EDGE_TAKEN
							    : PROF_EDGE_TABLE,
		};
	}
	b->funcs[fi].nblocks = (uint32_t)(b->nblocks - first_block);
	sym_cfg_free(cfg);
	return rc;
}

/*
 * extent: the bytes of f, up to the next function's start at the most. A
 * symbol without a size (crt's deregister_tm_clones and the like) is
 * listed up to the end of its section and would cover every function
 * after it.
 */
static uint64_t extent(const struct sym_func *funcs, size_t nf,
		       const struct sym_func *f)
{
	uint64_t size = f->size;
	for (const struct sym_func *g = f + 1; g < funcs + nf; g++)
		if (g->addr > f->addr) {
			if (!size || g->addr - f->addr < size)
				size = g->addr - f->addr;
			break;
		}
	return size;
}

static int cmp_leaf(const void *x, const void *y)
{
	const struct leaf *a = x, *c = y;
	return a->vaddr < c->vaddr ? -1 : a->vaddr > c->vaddr;
}

/* The leaves of build-id bid, by address, one entry per address. */
static int leaves_of(const struct prof *p, uint32_t bid, struct leaf **out,
		     size_t *nout)
{
	struct leaf *l = NULL;
	size_t n = 0, cap = 0;
	for (size_t s = 0; s < p->nleaves; s++) {
		const struct prof_leaf *lf = &p->leaves[s];
		if (!(lf->count > 0) || lf->loc >= p->nlocs)
			continue;
		const struct prof_loc *loc = &p->locs[lf->loc];
		if (loc->build_id != bid || loc->vaddr == UINT64_MAX)
			continue;
		if (fdo_grow(l, cap, n + 1)) {
			free(l);
			return FDO_ENOMEM;
		}
		l[n++] = (struct leaf){loc->vaddr, lf->count};
	}
	if (n)
		qsort(l, n, sizeof *l, cmp_leaf);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && l[m - 1].vaddr == l[i].vaddr)
			l[m - 1].count += l[i].count;
		else
			l[m++] = l[i];
	}
	*out = l;
	*nout = m;
	return FDO_OK;
}

/* The counted block of b->blocks[from..] holding vaddr, or UINT32_MAX
 * (blocks are in address order: functions were added so). */
static uint32_t block_holding(const struct bb *b, size_t from, uint64_t vaddr)
{
	size_t lo = from, hi = b->nblocks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->blocks[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == from || vaddr >= b->blocks[lo - 1].end)
		return UINT32_MAX;
	return (uint32_t)(lo - 1);
}

/* The context of sp's ctx i, made with its parents on first use. */
static int probe_ctx(struct bb *b, const struct sym_probes *sp,
		     uint32_t *ctx_of, uint32_t i, uint32_t *out)
{
	/* Walk up to the first context already made (parents have smaller
	 * indexes, so the chain is at most as deep as the decoder allows),
	 * then make the rest from the top down. */
	uint32_t chain[SYM_PROBE_MAX_DEPTH + 1];
	size_t n = 0;
	for (uint32_t c = i; c != UINT32_MAX && ctx_of[c] == UINT32_MAX;
	     c = sp->ctxs[c].parent) {
		if (n == sizeof chain / sizeof *chain)
			return FDO_ELIMIT;
		chain[n++] = c;
	}
	while (n--) {
		const struct sym_probe_ctx *x = &sp->ctxs[chain[n]];
		const struct sym_probe_func *f = sym_probes_func(sp, x->guid);
		if (fdo_grow(b->pctxs, b->cap_pctxs, b->npctxs + 1))
			return FDO_ENOMEM;
		uint32_t name = f ? prof_intern(b->p, f->name) : PROF_NONE;
		b->pctxs[b->npctxs] = (struct prof_pctx){
			.parent = x->parent == UINT32_MAX ? PROF_NONE
							  : ctx_of[x->parent],
			.name = name,
			.site = x->site,
			.checksum = f ? f->hash : 0,
		};
		ctx_of[chain[n]] = (uint32_t)b->npctxs++;
	}
	*out = ctx_of[i];
	return FDO_OK;
}

/*
 * add_probes: the pseudo probes of elf_path that sit in the blocks
 * b->blocks[from..] (the functions of this build-id just added), with
 * their inline contexts. A binary built without probes has none; damaged
 * probe sections give what decoded before the damage (logged).
 */
static int add_probes(struct bb *b, const char *elf_path, const char *hex,
		      size_t from)
{
	struct sym_probes *sp = NULL;
	int rc = sym_probes_read(elf_path, &sp);
	if (rc == FDO_ENOT_FOUND || (rc && !sp)) {
		if (rc != FDO_ENOT_FOUND)
			fdo_warn("blocks: build-id %s: cannot read its pseudo "
				 "probes: %s",
				 hex, fdo_strerror(rc));
		return rc == FDO_ENOMEM ? rc : FDO_OK;
	}
	if (rc)
		fdo_warn("blocks: build-id %s: damaged pseudo probes (%s): %zu "
			 "records skipped",
			 hex, fdo_strerror(rc), sp->skipped);
	uint32_t *ctx_of = malloc((sp->nctxs ? sp->nctxs : 1) * sizeof *ctx_of);
	rc = ctx_of ? FDO_OK : FDO_ENOMEM;
	for (size_t i = 0; ctx_of && i < sp->nctxs; i++)
		ctx_of[i] = UINT32_MAX;
	for (size_t i = 0; !rc && i < sp->nprobes; i++) {
		const struct sym_probe *pr = &sp->probes[i];
		uint32_t blk = block_holding(b, from, pr->addr);
		if (blk == UINT32_MAX)
			continue; /* a function without samples */
		uint32_t ctx;
		if ((rc = probe_ctx(b, sp, ctx_of, pr->ctx, &ctx)))
			break;
		if (fdo_grow(b->probes, b->cap_probes, b->nprobes + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		b->probes[b->nprobes++] = (struct prof_probe){
			pr->addr, ctx, pr->index, blk, pr->type};
	}
	free(ctx_of);
	sym_probes_free(sp);
	if (rc == FDO_ELIMIT) {
		fdo_warn("blocks: build-id %s: an inline context too deep",
			 hex);
		rc = FDO_OK;
	}
	return rc;
}

/* ------------------------------------------------ one unit for all -- */

/* The function of b->funcs[ff..] containing vaddr, or UINT32_MAX. */
static uint32_t func_holding(const struct bb *b, size_t ff, uint64_t vaddr)
{
	size_t lo = ff, hi = b->nfuncs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->funcs[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == ff)
		return UINT32_MAX;
	const struct prof_func *f = &b->funcs[lo - 1];
	return vaddr - f->addr < f->size ? (uint32_t)(lo - 1) : UINT32_MAX;
}

/* A direct call found in the code: caller, callee, the call block's count. */
struct call {
	uint32_t from, to;
	double count;
};

/*
 * balance_units puts the functions of one build-id (b->funcs[ff..]) in one
 * unit. Each function's counts come out in samples per instruction run,
 * and what one instruction costs differs between functions (a tight loop
 * runs several per cycle, code that misses the cache one every few
 * cycles), so a callee's entry count and the count of the calls to it
 * disagree by the ratio of the two functions' costs: on the unit test's
 * workload, main's call blocks said 4,385 calls to classify where
 * classify's entry said 10,409. Per function a scale s_f is chosen so that
 * s_f x (its entry count) = the sum over its callers g of s_g x (their call
 * blocks' counts), for every function whose calls the stacks show coming
 * (mostly, at least half) from direct calls in functions with blocks:
 * least squares on the logarithms of both sides, a weak pull of every
 * scale towards 1 (so functions nothing calls keep their unit), solved by
 * Gauss-Seidel sweeps. Every block and edge count of f is then multiplied
 * by s_f.
 * A function's calls to itself stay out of both sides: they enter it in
 * its own unit, so they say nothing about its scale, and left in, its
 * equation no longer moves with its scale and the sweeps drove that one
 * scale without bound (gawk's recursive tree_clear took the whole profile,
 * every other function rounding to 0: bench/fdo run 2). Scales are also
 * kept within 1/spread..spread (the `spread` option, 3 by default): no
 * function's instructions cost that many times more than another's. A
 * bound of 100 let a heavy call block in m4 scale re_compile_internal's
 * every block to 45%; against exact counts 3 brought the inferred blocks
 * closer on all four programs measured and the functions' weights closer
 * on most programs of three sample sets, and timed no worse
 * (docs/profile-quality.md, "The balance's bound").
 */

static int balance_units(struct bb *b, size_t ff)
{
	const struct prof *p = b->p;
	size_t nf = b->nfuncs - ff;
	if (nf < 2)
		return FDO_OK;
	struct call *calls = NULL;
	size_t ncalls = 0, cap = 0;
	double *total = calloc(nf, sizeof *total); /* stacks into f */
	double *known = calloc(nf, sizeof *known); /* ... from calls we see */
	double *u = calloc(nf, sizeof *u);	   /* log s_f */
	double *logE = calloc(nf, sizeof *logE);
	double *pred = calloc(nf, sizeof *pred); /* sum s_g C_gf */
	double *self = calloc(nf, sizeof *self); /* calls to itself */
	int rc = total && known && u && logE && pred && self ? FDO_OK
							     : FDO_ENOMEM;
	/* Direct calls between functions with blocks, by their blocks. */
	for (size_t i = ff; !rc && i < b->nfuncs; i++) {
		const struct prof_func *g = &b->funcs[i];
		if (g->status || !g->nblocks)
			continue;
		for (uint32_t k = g->first_block;
		     k < g->first_block + g->nblocks && !rc; k++) {
			const struct prof_block *bl = &b->blocks[k];
			for (uint32_t j = bl->first_insn;
			     j < bl->first_insn + bl->ninsns; j++) {
				const struct prof_insn *in = &b->insns[j];
				if (in->kind != PROF_INSN_CALL || !in->target)
					continue;
				uint32_t f = func_holding(b, ff, in->target);
				if (f == UINT32_MAX ||
				    b->funcs[f].addr != in->target)
					continue;
				if (f == i) {
					self[i - ff] += bl->count;
					continue;
				}
				if (fdo_grow(calls, cap, ncalls + 1)) {
					rc = FDO_ENOMEM;
					break;
				}
				calls[ncalls++] = (struct call){(uint32_t)i, f,
								bl->count};
			}
		}
	}
	/* Which share of each function's callers the calls above cover: the
	 * caller->callee pairs into it, and those from a call we know. Each
	 * location's function is found once (a profile has a few locations
	 * per pair, and most pairs share their callee with the pair before). */
	uint32_t bid = b->funcs[ff].build_id;
	uint32_t *func_of =
		rc ? NULL : malloc((p->nlocs ? p->nlocs : 1) * sizeof *func_of);
	if (!rc && !func_of)
		rc = FDO_ENOMEM;
	for (size_t k = 0; !rc && k < p->nlocs; k++) {
		const struct prof_loc *l = &p->locs[k];
		func_of[k] = l->build_id == bid && l->vaddr != UINT64_MAX
				     ? func_holding(b, ff, l->vaddr)
				     : UINT32_MAX;
	}
	for (size_t s = 0; !rc && s < p->npairs; s++) {
		const struct prof_pair *pp = &p->pairs[s];
		if (!(pp->count > 0) || pp->callee >= p->nlocs ||
		    pp->caller >= p->nlocs)
			continue;
		uint32_t f = func_of[pp->callee];
		if (f == UINT32_MAX)
			continue;
		uint32_t g = func_of[pp->caller];
		if (g == f)
			continue; /* recursion: see above */
		total[f - ff] += pp->count;
		if (g != UINT32_MAX && !b->funcs[g].status &&
		    b->funcs[g].nblocks)
			known[f - ff] += pp->count;
	}
	for (size_t i = 0; !rc && i < nf; i++) {
		const struct prof_func *f = &b->funcs[ff + i];
		double e = !f->status && f->nblocks
				   ? b->blocks[f->first_block].count - self[i]
				   : 0;
		logE[i] = e > 0 ? log(e) : NAN;
	}
	/* The calls come by caller (appended function by function): each
	 * function's are calls[first[i] .. first[i + 1]). */
	size_t *first = rc ? NULL : malloc((nf + 1) * sizeof *first);
	if (!rc && !first)
		rc = FDO_ENOMEM;
	for (size_t i = 0, c = 0; !rc && i <= nf; i++) {
		while (c < ncalls && calls[c].from - ff < i)
			c++;
		first[i] = c;
	}
	/* Gauss-Seidel on u = log s: each function's own equation (as a
	 * callee) and its share in its callees' equations. */
	const double prior = 0.01;
	for (int sweep = 0; !rc && sweep < 50; sweep++) {
		for (size_t i = 0; i < nf; i++)
			pred[i] = 0;
		for (size_t c = 0; c < ncalls; c++)
			pred[calls[c].to - ff] +=
				exp(u[calls[c].from - ff]) * calls[c].count;
		double moved = 0;
		for (size_t i = 0; i < nf; i++) {
			double num = -prior * u[i], den = prior;
			/* as a callee */
			if (isfinite(logE[i]) && pred[i] > 0 &&
			    known[i] >= 0.5 * total[i] && total[i] > 0) {
				double share = known[i] / total[i];
				double r =
					u[i] + logE[i] - log(pred[i] / share);
				num += -r;
				den += 1;
			}
			/* as a caller: its calls' share pi of each callee's
			 * prediction moves that callee's residual by -pi */
			for (size_t c = first[i]; c < first[i + 1]; c++) {
				size_t h = calls[c].to - ff;
				if (h == i || !isfinite(logE[h]) ||
				    !(pred[h] > 0) || total[h] <= 0 ||
				    known[h] < 0.5 * total[h])
					continue;
				double pi =
					exp(u[i]) * calls[c].count / pred[h];
				double share = known[h] / total[h];
				double r =
					u[h] + logE[h] - log(pred[h] / share);
				num += pi * r;
				den += pi * pi;
			}
			double d = 0.5 * num / den, was = u[i];
			u[i] = fmin(fmax(u[i] + d, -log(b->spread)),
				    log(b->spread));
			moved = fmax(moved, fabs(u[i] - was));
		}
		if (moved < 1e-4)
			break;
	}
	for (size_t i = 0; !rc && i < nf; i++) {
		const struct prof_func *f = &b->funcs[ff + i];
		if (f->status || !f->nblocks || u[i] == 0)
			continue;
		double sc = exp(u[i]);
		for (uint32_t k = f->first_block;
		     k < f->first_block + f->nblocks; k++)
			b->blocks[k].count *= sc;
		fdo_debug("blocks: %s: unit x %.3f", prof_str(p, f->name), sc);
	}
	/* Edges of the build-id's functions, by their source block. */
	for (size_t e = 0; !rc && e < b->nedges; e++) {
		const struct prof_block *from = &b->blocks[b->edges[e].from];
		if (from->func < ff)
			continue;
		b->edges[e].count *= exp(u[from->func - ff]);
	}
	free(first);
	free(func_of);
	free(calls);
	free(total);
	free(known);
	free(u);
	free(logE);
	free(self);
	free(pred);
	return rc;
}

/* One build-id: its sampled functions, in address order. */
static int add_build_id(struct bb *b, uint32_t bid)
{
	const struct prof_build_id *pb = &b->p->build_ids[bid];
	struct leaf *l = NULL;
	size_t nl;
	int rc = leaves_of(b->p, bid, &l, &nl);
	if (rc || !nl) {
		free(l);
		return rc;
	}
	struct sym_func *funcs = NULL;
	size_t nf = 0;
	sym_code *code = NULL;
	rc = sym_elf_functions(pb->elf_path, &funcs, &nf);
	if (!rc)
		rc = sym_code_open(pb->elf_path, &code);
	if (rc) {
		fdo_warn("blocks: build-id %s: cannot read the code of %s: "
			 "%s; its samples are placed by line",
			 pb->hex, pb->elf_path, fdo_strerror(rc));
		sym_elf_functions_free(funcs);
		free(l);
		return rc == FDO_ENOMEM ? rc : FDO_OK;
	}
	uint64_t done = 0; /* end of the last function added */
	size_t from = b->nblocks, ff = b->nfuncs;
	for (size_t i = 0; i < nl && !rc;) {
		const struct sym_func *f = sym_func_find(funcs, nf, l[i].vaddr);
		if (!f) {
			i++;
			continue;
		}
		uint64_t size = extent(funcs, nf, f);
		size_t j = i;
		while (j < nl && l[j].vaddr >= f->addr &&
		       l[j].vaddr - f->addr < (size ? size : 1))
			j++;
		if (j == i) {
			i++;
			continue;
		}
		/* Functions that overlap one already added are left out:
		 * instructions stay in address order. */
		if (f->addr >= done && size)
			rc = add_function(b, code, bid, f, size, l + i, j - i,
					  NULL, 0);
		if (f->addr + size > done)
			done = f->addr + size;
		i = j;
	}
	if (!rc && b->spread >= 1)
		rc = balance_units(b, ff);
	if (!rc)
		rc = add_probes(b, pb->elf_path, pb->hex, from);
	sym_code_close(code);
	sym_elf_functions_free(funcs);
	free(l);
	return rc;
}

static void bb_finish(struct bb *b, int rc)
{
	fdo_map64_fini(&b->names);
	free(b->fb);
	free(b->fe);
	free(b->flow_of);
	free(b->edge_of);
	if (rc) {
		free(b->funcs);
		free(b->blocks);
		free(b->insns);
		free(b->edges);
		free(b->pctxs);
		free(b->probes);
		free(b->calls);
		return;
	}
	struct prof *p = b->p;
	p->funcs = b->funcs;
	p->nfuncs = b->nfuncs;
	p->blocks = b->blocks;
	p->nblocks = b->nblocks;
	p->insns = b->insns;
	p->ninsns = b->ninsns;
	p->edges = b->edges;
	p->nedges = b->nedges;
	p->calls = b->calls;
	p->ncalls = b->ncalls;
	p->pctxs = b->pctxs;
	p->npctxs = b->npctxs;
	p->probes = b->probes;
	p->nprobes = b->nprobes;
}

/* The instruction of the builder's arrays containing vaddr, or NONE. */
static uint32_t bb_insn_at(const struct bb *b, uint64_t vaddr)
{
	size_t lo = 0, hi = b->ninsns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->insns[mid].vaddr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return UINT32_MAX;
	const struct prof_insn *in = &b->insns[lo - 1];
	uint64_t end = lo < b->ninsns && b->insns[lo].block == in->block
			       ? b->insns[lo].vaddr
			       : b->blocks[in->block].end;
	return vaddr < end ? (uint32_t)(lo - 1) : UINT32_MAX;
}

/*
 * exact_calls: the records x[0..nx) that leave a call instruction of a
 * function with blocks for a function's start become exact call counts
 * (struct prof_call): indirect calls get their targets, direct ones their
 * count, as instrumented value profiles give clang.
 */
static int exact_calls(struct bb *b, const struct agg_branch *x, size_t nx)
{
	size_t cap = 0;
	for (size_t i = 0; i < nx; i++) {
		if (!x[i].from)
			continue;
		uint32_t in = bb_insn_at(b, x[i].from);
		if (in == UINT32_MAX || (b->insns[in].kind != PROF_INSN_CALL &&
					 b->insns[in].kind != PROF_INSN_ICALL))
			continue;
		uint32_t callee = name_at(b, x[i].to);
		if (callee == PROF_NONE)
			continue;
		if (fdo_grow(b->calls, cap, b->ncalls + 1))
			return FDO_ENOMEM;
		b->calls[b->ncalls++] =
			(struct prof_call){in, callee, x[i].count};
	}
	return FDO_OK;
}

static int cmp_branch_to(const void *x, const void *y)
{
	const struct agg_branch *a = x, *c = y;
	if (a->to != c->to)
		return a->to < c->to ? -1 : 1;
	return a->from < c->from ? -1 : a->from > c->from;
}

int agg_blocks_exact(struct prof *p, uint32_t bid, sym_index *idx,
		     struct agg_branch *x, size_t nx)
{
	if (bid >= p->nbuild_ids || !p->build_ids[bid].elf_path || !idx ||
	    p->nfuncs)
		return FDO_EINVAL;
	const struct prof_build_id *pb = &p->build_ids[bid];
	struct bb b = {.p = p, .idx = idx, .cap_frames = p->nframes};
	struct sym_func *funcs = NULL;
	size_t nf = 0;
	sym_code *code = NULL;
	int rc = sym_elf_functions(pb->elf_path, &funcs, &nf);
	if (!rc)
		rc = sym_code_open(pb->elf_path, &code);
	if (nx)
		qsort(x, nx, sizeof *x, cmp_branch_to);
	/* Every function some record leads into, in address order. */
	uint64_t done = 0;
	for (size_t i = 0; i < nf && !rc; i++) {
		const struct sym_func *f = &funcs[i];
		uint64_t size = extent(funcs, nf, f);
		if (!size || f->addr < done)
			continue;
		const struct agg_branch *r = first_into(x, nx, f->addr);
		if (r == x + nx || r->to >= f->addr + size)
			continue;
		done = f->addr + size;
		rc = add_function(&b, code, bid, f, size, NULL, 0, x, nx);
	}
	sym_code_close(code);
	sym_elf_functions_free(funcs);
	if (!rc)
		rc = exact_calls(&b, x, nx);
	/* A probe build's exact counts make a probe-based profile, as a pull
	 * of its samples does. */
	if (!rc)
		rc = add_probes(&b, pb->elf_path, pb->hex, 0);
	bb_finish(&b, rc);
	return rc;
}

int agg_blocks_build(struct prof *p, sym_index *const *indexes, double spread,
		     double dispersion)
{
	/* The room its builder made (aggregator/profile.c sizes the
	 * locations' frames once): appending within it copies nothing,
	 * where growing from nframes would copy the whole array. */
	struct bb b = {.p = p,
		       .cap_frames = p->frames_room > p->nframes
					     ? p->frames_room
					     : p->nframes,
		       .spread = spread,
		       .dispersion = dispersion};
	int rc = prof_reduce(p); /* its leaves and pairs are what it reads */
	for (uint32_t i = 0; i < p->nbuild_ids && !rc; i++) {
		if (!p->build_ids[i].elf_path || !indexes[i])
			continue;
		b.idx = indexes[i];
		fdo_map64_clear(&b.names); /* pointers of another index */
		rc = add_build_id(&b, i);
	}
	bb_finish(&b, rc);
	struct flow_memo_stats ms;
	flow_memo_stats(&ms);
	fdo_debug("blocks: %zu functions; flow memo %zu entries, %zu bytes, "
		  "%llu hits, %llu misses so far",
		  p->nfuncs, ms.entries, ms.bytes, (unsigned long long)ms.hits,
		  (unsigned long long)ms.misses);
	return rc;
}
