/*
 * aggregator/emit_llvm.c — a profile as LLVM's sample profile *text*
 * format, the file `clang -fprofile-sample-use=FILE` reads (and
 * `llvm-profdata show|merge --sample` reads and writes).
 *
 * Grammar (one space of indentation per nesting level, nothing else):
 *
 *   profile   = { function }
 *   function  = NAME ":" TOTAL ":" HEAD NL { body(1) }
 *   body(d)   = d*" " OFFSET [ "." DISCR ] ": " COUNT { " " NAME ":" COUNT } NL
 *             | d*" " OFFSET [ "." DISCR ] ": " NAME ":" TOTAL NL { body(d+1) }
 *
 *   NAME is a linkage name; OFFSET = (line - DW_AT_decl_line of the frame's
 *   function) & 0xffff; DISCR is the *base* discriminator decoded from the
 *   DWARF value (omitted when 0); TOTAL = the body COUNTs of the function or
 *   inlined instance plus the TOTALs nested in it; HEAD = samples at entry.
 *   The second body form is an inlined call site: the callee's own lines
 *   follow, one level deeper, with offsets relative to the callee's start.
 *
 * What goes in is the shared inline tree (aggregator/model.c says where
 * the counts come from: block counts inferred on the binary's code by
 * default, else samples per line; heads; call targets). This file only
 * writes it:
 *  - Counts are rounded once; lines and call targets that round to 0 are
 *    dropped, except lines with a known count of 0 under zeros=1 (a block
 *    that ran 0 times: clang then knows it cold instead of guessing);
 *    TOTALs are sums of the rounded numbers, so the file is
 *    self-consistent; instances with nothing left are dropped.
 *  - Order (the same profile gives the same bytes, and the same bytes as
 *    `llvm-profdata merge --sample --text` writes): functions by TOTAL
 *    descending then name; in a function its body lines by (offset,
 *    discriminator), then its inlined call sites by (offset,
 *    discriminator, callee name); call targets by count descending then
 *    name.
 *  - min_share=F (0 <= F < 1, default 0): functions whose TOTAL is below
 *    F x the sum of all TOTALs are left out.
 *  - An empty profile gives an empty file (clang rejects an empty file as
 *    an unknown format: callers should refuse to publish it).
 *
 * Workload: the model's size (thousands of lines); one sort per line's
 * targets and one of the functions.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"

#define NONE UINT32_MAX

/* What the writer keeps of the model: rounded counts and totals. */
struct llvm_w {
	const struct prof *p;
	const struct prof_model *m;
	int zeros;             /* write known 0 lines */
	uint64_t *line_count;  /* per model line, rounded */
	uint8_t *line_keep;
	uint64_t *target_count; /* per model target, rounded */
	uint64_t *total;       /* per node */
	uint8_t *keep;         /* per node */
	uint32_t *order;       /* scratch: targets of one line */
};

static void put_loc(struct fdo_buf *b, int depth, uint32_t off, uint32_t disc)
{
	for (int i = 0; i < depth; i++)
		fdo_buf_putc(b, ' ');
	if (disc)
		fdo_buf_printf(b, "%u.%u: ", off, disc);
	else
		fdo_buf_printf(b, "%u: ", off);
}

/* Call targets by count descending, then name. */
static int cmp_target(const void *x, const void *y, void *arg)
{
	const struct llvm_w *w = arg;
	uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
	if (w->target_count[a] != w->target_count[c])
		return w->target_count[a] > w->target_count[c] ? -1 : 1;
	return strcmp(prof_str(w->p, w->m->targets[a].name),
		      prof_str(w->p, w->m->targets[c].name));
}

static void put_node(const struct llvm_w *w, uint32_t node, int depth,
		     struct fdo_buf *b)
{
	const struct prof_model *m = w->m;
	const struct prof_mnode *n = &m->nodes[node];
	for (uint32_t i = n->first_line; i < n->first_line + n->nlines; i++) {
		const struct prof_mline *l = &m->lines[i];
		if (!w->line_keep[i])
			continue;
		put_loc(b, depth, l->off, l->disc);
		fdo_buf_printf(b, "%llu", (unsigned long long)w->line_count[i]);
		uint32_t nt = 0;
		for (uint32_t t = l->first_target;
		     t < l->first_target + l->ntargets; t++)
			if (w->target_count[t])
				w->order[nt++] = t;
		qsort_r(w->order, nt, sizeof *w->order, cmp_target,
			(void *)w);
		for (uint32_t k = 0; k < nt; k++)
			fdo_buf_printf(
				b, " %s:%llu",
				prof_str(w->p, m->targets[w->order[k]].name),
				(unsigned long long)
					w->target_count[w->order[k]]);
		fdo_buf_putc(b, '\n');
	}
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids; i++) {
		uint32_t k = m->kids[i];
		if (!w->keep[k])
			continue;
		const struct prof_mnode *c = &m->nodes[k];
		put_loc(b, depth, c->off, c->disc);
		fdo_buf_printf(b, "%s:%llu\n", prof_str(w->p, c->name),
			       (unsigned long long)w->total[k]);
		put_node(w, k, depth + 1, b);
	}
	/* Probe-based: the checksum comes last in each function and
	 * inlined instance (what marks the profile probe-based). */
	if (m->probes) {
		for (int i = 0; i < depth; i++)
			fdo_buf_putc(b, ' ');
		fdo_buf_printf(b, "!CFGChecksum: %llu\n",
			       (unsigned long long)n->checksum);
	}
}

/* Functions by total descending, then name. */
static int cmp_function(const void *x, const void *y, void *arg)
{
	const struct llvm_w *w = arg;
	uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
	if (w->total[a] != w->total[c])
		return w->total[a] > w->total[c] ? -1 : 1;
	return strcmp(prof_str(w->p, w->m->nodes[a].name),
		      prof_str(w->p, w->m->nodes[c].name));
}

static int write_model(struct llvm_w *w, double min_share,
		       struct fdo_buf *out)
{
	const struct prof_model *m = w->m;
	/* Round, then decide what is kept from the leaves up. */
	for (size_t i = 0; i < m->nlines; i++) {
		const struct prof_mline *l = &m->lines[i];
		w->line_count[i] = (uint64_t)llround(l->count);
		for (uint32_t t = l->first_target;
		     t < l->first_target + l->ntargets; t++) {
			w->target_count[t] =
				(uint64_t)llround(m->targets[t].count);
			if (w->target_count[t])
				w->line_keep[i] = 1;
		}
		if (w->line_count[i] || (w->zeros && l->known))
			w->line_keep[i] = 1;
		if (w->line_keep[i]) {
			w->total[l->node] += w->line_count[i];
			w->keep[l->node] = 1;
		}
	}
	double grand = 0;
	for (size_t i = m->nnodes; i-- > 0;) {
		const struct prof_mnode *n = &m->nodes[i];
		w->keep[i] = w->keep[i] || w->total[i];
		if (n->parent == NONE) {
			grand += (double)w->total[i];
		} else if (w->keep[i]) {
			assert(n->parent < i);
			w->total[n->parent] += w->total[i];
			w->keep[n->parent] = 1;
		}
	}
	uint32_t *fns = malloc((m->nfunctions ? m->nfunctions : 1) *
			       sizeof *fns);
	if (!fns)
		return FDO_ENOMEM;
	size_t nf = 0;
	for (size_t i = 0; i < m->nfunctions; i++) {
		uint32_t f = m->functions[i];
		if (w->keep[f] && !((double)w->total[f] < min_share * grand))
			fns[nf++] = f;
	}
	qsort_r(fns, nf, sizeof *fns, cmp_function, w);
	for (size_t i = 0; i < nf; i++) {
		const struct prof_mnode *n = &m->nodes[fns[i]];
		fdo_buf_printf(out, "%s:%llu:%llu\n", prof_str(w->p, n->name),
			       (unsigned long long)w->total[fns[i]],
			       (unsigned long long)llround(n->head));
		put_node(w, fns[i], 1, out);
	}
	free(fns);
	return out->oom ? FDO_ENOMEM : FDO_OK;
}

int emit_llvm(const struct prof *p, const struct prof_opts *o,
	      struct fdo_buf *out)
{
	struct prof_model m;
	int rc = prof_model_build(p, o, PROF_MODEL_DECODE | PROF_MODEL_PROBES, &m);
	if (rc)
		return rc;
	fdo_debug("emit_llvm: %zu functions and inlined instances, %zu "
		  "lines; skipped %.0f unsymbolized and %.0f line-0 samples",
		  m.nnodes, m.nlines, m.skipped_unsym, m.skipped_line0);
	struct llvm_w w = {.p = p, .m = &m, .zeros = o->zeros};
	size_t nl = m.nlines ? m.nlines : 1, nn = m.nnodes ? m.nnodes : 1,
	       nt = m.ntargets ? m.ntargets : 1;
	w.line_count = calloc(nl, sizeof *w.line_count);
	w.line_keep = calloc(nl, 1);
	w.target_count = calloc(nt, sizeof *w.target_count);
	w.total = calloc(nn, sizeof *w.total);
	w.keep = calloc(nn, 1);
	w.order = malloc(nt * sizeof *w.order);
	size_t start = out->len;
	rc = w.line_count && w.line_keep && w.target_count && w.total &&
			     w.keep && w.order
		     ? write_model(&w, o->min_share, out)
		     : FDO_ENOMEM;
	if (rc)
		out->len = start;
	free(w.line_count);
	free(w.line_keep);
	free(w.target_count);
	free(w.total);
	free(w.keep);
	free(w.order);
	prof_model_fini(&m);
	return rc;
}
