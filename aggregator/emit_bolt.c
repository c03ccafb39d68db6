/*
 * aggregator/emit_bolt.c — the `bolt` format: llvm-bolt's .fdata profile
 * (`llvm-bolt BINARY -o OUT -data=FILE`) for ONE build-id, since BOLT
 * rewrites one exact binary.
 *
 * Grammar as emitted (one record per line, fields separated by one space,
 * offsets in lowercase hex without 0x, counts in decimal):
 *
 *   without branch records (IP samples):
 *     no_lbr <event>:
 *     1 <function> <offset> <count>
 *   with branch records (LBR):
 *     1 <function> <offset> 1 <function> <offset> <mispredicts> <count>
 *     0 [unknown] <vaddr> ...     a branch end outside every function
 *
 *   <function>: the symbol's name for globals and weak symbols, name/N for
 *   locals (N as llvm-bolt numbers same-named locals: symbolizer.h
 *   sym_elf_functions); a name llvm-bolt would treat as private (".L...")
 *   gets its "PG" prefix; space and backslash are escaped with a
 *   backslash. <offset>: vaddr - function start.
 *
 * no_lbr takes the leaf of each stack only (locs[0]: the sampled IP; the
 * other frames are call sites, not samples). Records are aggregated per
 * (function, offset) (per branch for LBR), counts rounded to integers and
 * zeros dropped, and written in address order, so equal profiles give
 * equal bytes.
 *
 * The build-id: the request's build_id= (prof_opts.build_id); otherwise
 * the one whose stacks' leaves carry the most samples among those with a
 * symbol file.
 * Workload: one pass over the stacks or branches, one sort.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"

#define NO_FUNC UINT32_MAX

/* One no_lbr record: function index (into the listing), offset, count. */
struct ip_rec {
	uint32_t func;
	uint64_t off;
	double count;
};

/* One branch record; an unknown end has func NO_FUNC and off = vaddr. */
struct br_rec {
	uint32_t from_func, to_func;
	uint64_t from_off, to_off;
	double count, mispredicts;
};

static int cmp_ip(const void *a, const void *b)
{
	const struct ip_rec *x = a, *y = b;
	if (x->func != y->func)
		return x->func < y->func ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_br(const void *a, const void *b)
{
	const struct br_rec *x = a, *y = b;
	if (x->from_func != y->from_func)
		return x->from_func < y->from_func ? -1 : 1;
	if (x->from_off != y->from_off)
		return x->from_off < y->from_off ? -1 : 1;
	if (x->to_func != y->to_func)
		return x->to_func < y->to_func ? -1 : 1;
	return x->to_off < y->to_off ? -1 : x->to_off > y->to_off;
}

/* pick_build_id: the requested one, else the one with a symbol file whose
 * leaves carry the most samples (ties: weighted count, then lower index). */
static int pick_build_id(const struct prof *p, const struct prof_reduced *red,
			 const struct prof_opts *o, uint32_t *sel)
{
	const uint8_t *want = o->build_id;
	size_t want_len = o->build_id_len;
	if (want_len) {
		for (size_t i = 0; i < p->nbuild_ids; i++)
			if (p->build_ids[i].len == want_len &&
			    !memcmp(p->build_ids[i].id, want, want_len)) {
				*sel = (uint32_t)i;
				return p->build_ids[i].elf_path
					       ? FDO_OK
					       : FDO_EUNSUPPORTED;
			}
		return FDO_EUNSUPPORTED;
	}
	if (!p->nbuild_ids)
		return FDO_EUNSUPPORTED;
	uint64_t *samples = calloc(p->nbuild_ids, sizeof *samples);
	double *count = calloc(p->nbuild_ids, sizeof *count);
	if (!samples || !count) {
		free(samples);
		free(count);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < red->nleaves; i++) {
		const struct prof_leaf *lf = &red->leaves[i];
		const struct prof_loc *l =
			lf->loc < p->nlocs ? &p->locs[lf->loc] : NULL;
		if (l && l->build_id < p->nbuild_ids) {
			samples[l->build_id] += lf->samples;
			count[l->build_id] += lf->count;
		}
	}
	for (size_t i = 0; i < p->nbranches; i++)
		if (p->branches[i].build_id < p->nbuild_ids)
			count[p->branches[i].build_id] += p->branches[i].count;
	int found = 0;
	for (size_t i = 0; i < p->nbuild_ids; i++) {
		if (!p->build_ids[i].elf_path)
			continue;
		if (!found || samples[i] > samples[*sel] ||
		    (samples[i] == samples[*sel] && count[i] > count[*sel])) {
			*sel = (uint32_t)i;
			found = 1;
		}
	}
	free(samples);
	free(count);
	return found ? FDO_OK : FDO_EUNSUPPORTED;
}

/* put_name writes f's name as llvm-bolt spells it. */
static void put_name(struct fdo_buf *out, const struct sym_func *f)
{
	/* llvm-bolt renames private-looking symbols (".L...") "PG.L...". */
	if (!strncmp(f->name, ".L", 2))
		fdo_buf_puts(out, "PG");
	for (const char *c = f->name; *c; c++) {
		if (*c == ' ' || *c == '\\')
			fdo_buf_putc(out, '\\');
		fdo_buf_putc(out, *c);
	}
	if (f->bind == SYM_BIND_LOCAL)
		fdo_buf_printf(out, "/%u", f->ordinal);
}

static void put_loc(struct fdo_buf *out, const struct sym_func *funcs,
		    uint32_t func, uint64_t off)
{
	if (func == NO_FUNC) {
		fdo_buf_printf(out, "0 [unknown] %llx",
			       (unsigned long long)off);
		return;
	}
	fdo_buf_puts(out, "1 ");
	put_name(out, &funcs[func]);
	fdo_buf_printf(out, " %llx", (unsigned long long)off);
}

/* put_event writes the event name so that it stays one field before the
 * header's ':' (the parser splits on spaces and stops at ':'). */
static void put_event(struct fdo_buf *out, const char *ev)
{
	if (!ev || !*ev)
		ev = "cpu-clock";
	for (const char *c = ev; *c; c++)
		fdo_buf_putc(out,
			     (unsigned char)*c <= ' ' || *c == ':' || *c == 0x7f
				     ? '_'
				     : *c);
}

/* locate maps a vaddr to (function, offset); NO_FUNC when outside. */
static uint32_t locate(const struct sym_func *funcs, size_t nfuncs,
		       uint64_t vaddr, uint64_t *off)
{
	const struct sym_func *f = sym_func_find(funcs, nfuncs, vaddr);
	if (!f) {
		*off = vaddr;
		return NO_FUNC;
	}
	*off = vaddr - f->addr;
	return (uint32_t)(f - funcs);
}

static int emit_no_lbr(const struct prof *p, const struct prof_reduced *red,
		       uint32_t sel, const struct sym_func *funcs,
		       size_t nfuncs, struct fdo_buf *out)
{
	struct ip_rec *r = red->nleaves ? malloc(red->nleaves * sizeof *r)
					: NULL;
	if (red->nleaves && !r)
		return FDO_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < red->nleaves; i++) {
		const struct prof_leaf *lf = &red->leaves[i];
		const struct prof_loc *l =
			lf->loc < p->nlocs ? &p->locs[lf->loc] : NULL;
		if (!l || l->build_id != sel || l->vaddr == UINT64_MAX ||
		    !(lf->count > 0))
			continue;
		uint64_t off;
		uint32_t f = locate(funcs, nfuncs, l->vaddr, &off);
		if (f == NO_FUNC)
			continue; /* no_lbr has no form for it */
		r[n++] = (struct ip_rec){f, off, lf->count};
	}
	if (n)
		qsort(r, n, sizeof *r, cmp_ip);
	fdo_buf_puts(out, "no_lbr ");
	put_event(out, p->event);
	fdo_buf_puts(out, ":\n");
	for (size_t i = 0; i < n;) {
		double c = 0;
		size_t j = i;
		for (; j < n && !cmp_ip(&r[i], &r[j]); j++)
			c += r[j].count;
		long long rc = llround(c);
		if (rc > 0) {
			put_loc(out, funcs, r[i].func, r[i].off);
			fdo_buf_printf(out, " %lld\n", rc);
		}
		i = j;
	}
	free(r);
	return FDO_OK;
}

/* write_branches sorts r[0..n) and writes one line per distinct branch,
 * counts summed and rounded, zeros dropped. */
static void write_branches(struct br_rec *r, size_t n,
			   const struct sym_func *funcs, struct fdo_buf *out)
{
	if (n)
		qsort(r, n, sizeof *r, cmp_br);
	for (size_t i = 0; i < n;) {
		double c = 0, m = 0;
		size_t j = i;
		for (; j < n && !cmp_br(&r[i], &r[j]); j++) {
			c += r[j].count;
			m += r[j].mispredicts;
		}
		long long rc = llround(c), rm = llround(m);
		if (rc > 0) {
			put_loc(out, funcs, r[i].from_func, r[i].from_off);
			fdo_buf_putc(out, ' ');
			put_loc(out, funcs, r[i].to_func, r[i].to_off);
			fdo_buf_printf(out, " %lld %lld\n", rm < rc ? rm : rc,
				       rc);
		}
		i = j;
	}
}

static int emit_lbr(const struct prof *p, uint32_t sel,
		    const struct sym_func *funcs, size_t nfuncs,
		    struct fdo_buf *out)
{
	struct br_rec *r = malloc(p->nbranches * sizeof *r);
	if (!r)
		return FDO_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < p->nbranches; i++) {
		const struct prof_branch *b = &p->branches[i];
		if (b->build_id != sel || b->from_vaddr == UINT64_MAX ||
		    b->to_vaddr == UINT64_MAX || !(b->count > 0))
			continue;
		struct br_rec *o = &r[n];
		o->from_func =
			locate(funcs, nfuncs, b->from_vaddr, &o->from_off);
		o->to_func = locate(funcs, nfuncs, b->to_vaddr, &o->to_off);
		if (o->from_func == NO_FUNC && o->to_func == NO_FUNC)
			continue;
		o->count = b->count;
		o->mispredicts = b->mispredicts > 0 ? b->mispredicts : 0;
		n++;
	}
	write_branches(r, n, funcs, out);
	free(r);
	return FDO_OK;
}

/*
 * emit_edges writes the edge profile inferred on the binary's code
 * (counts=blocks: aggregator/blocks.c) as branch records, the form
 * llvm-bolt reads from LBR profiles and from its own instrumentation:
 * every edge with a count, fall-throughs included (llvm-bolt takes a
 * block's count as the sum of its incoming edges), from the last
 * instruction of the source block to the first of the target; direct calls
 * as records to the callee's offset 0; and, for each function, the part of
 * its entry count no known call explains as a call from [unknown] (a
 * function's execution count is the sum of the records to its offset 0).
 * Counts are scaled so the blocks' counts times their sizes add up to 100
 * per sample: the inferred unit is small, and a count that rounds to 0
 * would tell llvm-bolt the edge is cold.
 */
static int emit_edges(const struct prof *p, uint32_t sel,
		      const struct sym_func *funcs, size_t nfuncs,
		      struct fdo_buf *out)
{
	double mass = 0, samples = 0;
	for (size_t i = 0; i < p->nblocks; i++) {
		const struct prof_block *b = &p->blocks[i];
		if (p->funcs[b->func].build_id != sel)
			continue;
		double size = (double)b->ninsns;
		mass += b->count * size;
		samples += b->samples;
	}
	/* Exact counts (no samples) stay as they are. */
	double scale = mass > 0 && samples > 0 ? 100 * samples / mass : 1;
	size_t cap = p->nedges + p->ninsns + p->nfuncs + 1, n = 0;
	struct br_rec *r = malloc(cap * sizeof *r);
	double *into = calloc(nfuncs ? nfuncs : 1, sizeof *into);
	if (!r || !into) {
		free(r);
		free(into);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < p->nedges; i++) {
		const struct prof_edge *e = &p->edges[i];
		const struct prof_block *from = &p->blocks[e->from];
		if (p->funcs[from->func].build_id != sel || !(e->count > 0))
			continue;
		struct br_rec *o = &r[n];
		o->from_func =
			locate(funcs, nfuncs, e->from_vaddr, &o->from_off);
		o->to_func = locate(funcs, nfuncs, p->blocks[e->to].start,
				    &o->to_off);
		if (o->from_func == NO_FUNC || o->to_func == NO_FUNC)
			continue;
		o->count = e->count * scale;
		o->mispredicts = 0;
		n++;
	}
	for (size_t i = 0; i < p->ninsns; i++) {
		const struct prof_insn *in = &p->insns[i];
		const struct prof_block *b = &p->blocks[in->block];
		if (in->kind != PROF_INSN_CALL || !in->target ||
		    p->funcs[b->func].build_id != sel || !(b->count > 0))
			continue;
		struct br_rec *o = &r[n];
		o->from_func = locate(funcs, nfuncs, in->vaddr, &o->from_off);
		o->to_func = locate(funcs, nfuncs, in->target, &o->to_off);
		if (o->from_func == NO_FUNC || o->to_func == NO_FUNC ||
		    o->to_off)
			continue;
		o->count = b->count * scale;
		o->mispredicts = 0;
		into[o->to_func] += o->count;
		n++;
	}
	for (size_t i = 0; i < p->nfuncs; i++) {
		const struct prof_func *f = &p->funcs[i];
		if (f->build_id != sel || f->status || !f->nblocks)
			continue;
		uint64_t off;
		uint32_t fi = locate(funcs, nfuncs, f->addr, &off);
		double entry = p->blocks[f->first_block].count * scale;
		if (fi == NO_FUNC || off || !(entry - into[fi] >= 0.5))
			continue;
		r[n++] =
			(struct br_rec){NO_FUNC, fi, 0, 0, entry - into[fi], 0};
	}
	write_branches(r, n, funcs, out);
	free(r);
	free(into);
	return FDO_OK;
}

int emit_bolt(const struct prof *p, const struct prof_opts *o,
	      struct fdo_buf *out)
{
	uint32_t sel = 0;
	struct prof_reduced red;
	int err = prof_reduced_get(p, &red);
	if (!err && (err = pick_build_id(p, &red, o, &sel)) != FDO_OK)
		fdo_info("bolt: no build-id with a symbol file to emit for "
			 "(%s)",
			 fdo_strerror(err));
	if (err) {
		prof_reduced_fini(&red);
		return err;
	}
	const struct prof_build_id *bid = &p->build_ids[sel];
	struct sym_func *funcs;
	size_t nfuncs;
	err = sym_elf_functions(bid->elf_path, &funcs, &nfuncs);
	if (err) {
		fdo_warn("bolt: cannot list the functions of %s (build-id %s): "
			 "%s",
			 bid->elf_path, bid->hex, fdo_strerror(err));
		prof_reduced_fini(&red);
		return err == FDO_ENOMEM ? err : FDO_EIO;
	}
	int lbr = 0, edges = 0;
	for (size_t i = 0; i < p->nbranches && !lbr; i++)
		lbr = p->branches[i].build_id == sel;
	for (size_t i = 0; i < p->nfuncs && !edges && !lbr; i++)
		edges = p->funcs[i].build_id == sel && !p->funcs[i].status &&
			p->funcs[i].nblocks && o->counts == PROF_COUNTS_BLOCKS;
	size_t start = out->len;
	err = lbr     ? emit_lbr(p, sel, funcs, nfuncs, out)
	      : edges ? emit_edges(p, sel, funcs, nfuncs, out)
		      : emit_no_lbr(p, &red, sel, funcs, nfuncs, out);
	sym_elf_functions_free(funcs);
	prof_reduced_fini(&red);
	if (!err && out->oom)
		err = FDO_ENOMEM;
	if (err)
		out->len = start;
	return err;
}
