/*
 * aggregator/emit_llvm.c — a profile as LLVM's sample profile, the file
 * `clang -fprofile-sample-use=FILE` reads (and `llvm-profdata show|merge
 * --sample` reads and writes), in its extbinary form with the profile
 * symbol list (encoding=extbinary, the default; see write_ext) or its
 * text form (encoding=text). Both write the same counts.
 *
 * Text grammar (one space of indentation per nesting level, nothing else):
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
#include "common/map.h"
#include "symbolizer/symbolizer.h"

#define NONE UINT32_MAX

/* What the writer keeps of the model: rounded counts and totals. */
struct llvm_w {
	const struct prof *p;
	const struct prof_model *m;
	int zeros;	      /* write known 0 lines */
	uint64_t *line_count; /* per model line, rounded */
	uint8_t *line_keep;
	uint64_t *target_count; /* per model target, rounded */
	uint64_t *total;	/* per node */
	uint8_t *keep;		/* per node */
	uint32_t *order;	/* scratch: targets of one line */
	/* Names kept out of the symbol list (sorted), besides those named. */
	const char *const *unlisted;
	size_t nunlisted;
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

/* The targets of line l that are written, in their order, in w->order;
 * returns how many. */
static uint32_t line_targets(const struct llvm_w *w, const struct prof_mline *l)
{
	uint32_t nt = 0;
	for (uint32_t t = l->first_target; t < l->first_target + l->ntargets;
	     t++)
		if (w->target_count[t])
			w->order[nt++] = t;
	qsort_r(w->order, nt, sizeof *w->order, cmp_target, (void *)w);
	return nt;
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
		uint32_t nt = line_targets(w, l);
		for (uint32_t k = 0; k < nt; k++)
			fdo_buf_printf(b, " %s:%llu",
				       prof_str(w->p,
						m->targets[w->order[k]].name),
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

/*
 * keep_model rounds the counts, decides what is kept from the leaves up and
 * lists the functions written, in writing order, in *fns_out (free()).
 */
static int keep_model(struct llvm_w *w, double min_share, uint32_t **fns_out,
		      size_t *nf_out)
{
	const struct prof_model *m = w->m;
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
	uint32_t *fns =
		malloc((m->nfunctions ? m->nfunctions : 1) * sizeof *fns);
	if (!fns)
		return FDO_ENOMEM;
	size_t nf = 0;
	for (size_t i = 0; i < m->nfunctions; i++) {
		uint32_t f = m->functions[i];
		if (w->keep[f] && !((double)w->total[f] < min_share * grand))
			fns[nf++] = f;
	}
	qsort_r(fns, nf, sizeof *fns, cmp_function, w);
	*fns_out = fns;
	*nf_out = nf;
	return FDO_OK;
}

static int write_text(struct llvm_w *w, const uint32_t *fns, size_t nf,
		      struct fdo_buf *out)
{
	for (size_t i = 0; i < nf; i++) {
		const struct prof_mnode *n = &w->m->nodes[fns[i]];
		fdo_buf_printf(out, "%s:%llu:%llu\n", prof_str(w->p, n->name),
			       (unsigned long long)w->total[fns[i]],
			       (unsigned long long)llround(n->head));
		put_node(w, fns[i], 1, out);
	}
	return out->oom ? FDO_ENOMEM : FDO_OK;
}

/* ------------------------------------------------------- extbinary -- */

/*
 * LLVM's extbinary sample profile (SampleProfileFormat SPF_Ext_Binary, as
 * LLVM 16's SampleProfileWriterExtBinary writes it; the byte layout is in
 * docs/formats.md): a header, a table of sections and the sections. It is
 * written exactly as `llvm-profdata-16 merge --sample --extbinary
 * --prof-sym-list` writes the text form of the same profile (the tests
 * compare the bytes), because only this form carries the profile symbol
 * list: the functions of the binary, of which clang builds those the
 * profile does not name as cold (entry count 0, .text.unlikely) instead
 * of unknown, as instrumented PGO does with functions that never ran.
 * Functions that are not in the list (new code) stay unknown.
 */
enum {
	SEC_SUMMARY = 1,
	SEC_NAMES = 2,
	SEC_SYMBOLS = 3,
	SEC_OFFSETS = 4,
	SEC_META = 5,
	SEC_CSNAMES = 6,
	SEC_LBR = 32,
};
#define SEC_FLAG_PROBES (1ull << 32) /* on SEC_META: probe-based */

/* ProfileSummaryBuilder::DefaultCutoffs (parts per million): clang's hot
 * threshold is the count at 990000, its cold one at 999999. */
static const uint32_t cutoffs[] = {10000,  100000, 200000, 300000,
				   400000, 500000, 600000, 700000,
				   800000, 900000, 950000, 990000,
				   999000, 999900, 999990, 999999};

struct ext_w {
	struct llvm_w *w;
	struct fdo_map64 idx; /* string index + 1 -> name table position */
	uint32_t *names;      /* string indexes, by bytes */
	size_t nnames, cap;
	uint64_t *counts; /* every body record's count (the summary) */
	size_t ncounts, cap_counts;
};

static int ext_name(struct ext_w *e, uint32_t str)
{
	uint32_t pos;
	int found;
	if (fdo_map64_put(&e->idx, (uint64_t)str + 1, 0, &pos, &found))
		return FDO_ENOMEM;
	if (found)
		return FDO_OK;
	if (fdo_grow(e->names, e->cap, e->nnames + 1))
		return FDO_ENOMEM;
	e->names[e->nnames++] = str;
	return FDO_OK;
}

/* Every name a kept node under node (itself included) writes. */
static int ext_names(struct ext_w *e, uint32_t node)
{
	const struct llvm_w *w = e->w;
	const struct prof_mnode *n = &w->m->nodes[node];
	int rc = ext_name(e, n->name);
	for (uint32_t i = n->first_line; i < n->first_line + n->nlines && !rc;
	     i++) {
		const struct prof_mline *l = &w->m->lines[i];
		if (!w->line_keep[i])
			continue;
		for (uint32_t t = l->first_target;
		     t < l->first_target + l->ntargets && !rc; t++)
			if (w->target_count[t])
				rc = ext_name(e, w->m->targets[t].name);
	}
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids && !rc; i++)
		if (w->keep[w->m->kids[i]])
			rc = ext_names(e, w->m->kids[i]);
	return rc;
}

static int cmp_name(const void *x, const void *y, void *arg)
{
	const struct prof *p = arg;
	return strcmp(prof_str(p, *(const uint32_t *)x),
		      prof_str(p, *(const uint32_t *)y));
}

static uint32_t ext_pos(const struct ext_w *e, uint32_t str)
{
	uint32_t pos = 0;
	int ok = fdo_map64_get(&e->idx, (uint64_t)str + 1, &pos);
	assert(ok);
	(void)ok;
	return pos;
}

/* A node's body (SampleProfileWriterBinary::writeBody). */
static int ext_body(struct ext_w *e, uint32_t node, struct fdo_buf *b)
{
	const struct llvm_w *w = e->w;
	const struct prof_model *m = w->m;
	const struct prof_mnode *n = &m->nodes[node];
	fdo_buf_uleb(b, ext_pos(e, n->name));
	fdo_buf_uleb(b, w->total[node]);
	uint32_t nl = 0, nk = 0;
	for (uint32_t i = n->first_line; i < n->first_line + n->nlines; i++)
		nl += w->line_keep[i];
	fdo_buf_uleb(b, nl);
	for (uint32_t i = n->first_line; i < n->first_line + n->nlines; i++) {
		const struct prof_mline *l = &m->lines[i];
		if (!w->line_keep[i])
			continue;
		if (fdo_grow(e->counts, e->cap_counts, e->ncounts + 1))
			return FDO_ENOMEM;
		e->counts[e->ncounts++] = w->line_count[i];
		fdo_buf_uleb(b, l->off);
		fdo_buf_uleb(b, l->disc);
		fdo_buf_uleb(b, w->line_count[i]);
		uint32_t nt = line_targets(w, l);
		fdo_buf_uleb(b, nt);
		for (uint32_t k = 0; k < nt; k++) {
			fdo_buf_uleb(b,
				     ext_pos(e, m->targets[w->order[k]].name));
			fdo_buf_uleb(b, w->target_count[w->order[k]]);
		}
	}
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids; i++)
		nk += w->keep[m->kids[i]];
	fdo_buf_uleb(b, nk);
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids; i++) {
		uint32_t k = m->kids[i];
		if (!w->keep[k])
			continue;
		fdo_buf_uleb(b, m->nodes[k].off);
		fdo_buf_uleb(b, m->nodes[k].disc);
		int rc = ext_body(e, k, b);
		if (rc)
			return rc;
	}
	return b->oom ? FDO_ENOMEM : FDO_OK;
}

/* A node's probe checksums (the function metadata section). */
static void ext_meta(struct ext_w *e, uint32_t node, struct fdo_buf *b)
{
	const struct prof_model *m = e->w->m;
	const struct prof_mnode *n = &m->nodes[node];
	fdo_buf_uleb(b, n->checksum);
	uint32_t nk = 0;
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids; i++)
		nk += e->w->keep[m->kids[i]];
	fdo_buf_uleb(b, nk);
	for (uint32_t i = n->first_kid; i < n->first_kid + n->nkids; i++) {
		uint32_t k = m->kids[i];
		if (!e->w->keep[k])
			continue;
		fdo_buf_uleb(b, m->nodes[k].off);
		fdo_buf_uleb(b, m->nodes[k].disc);
		fdo_buf_uleb(b, ext_pos(e, m->nodes[k].name));
		ext_meta(e, k, b);
	}
}

static int cmp_u64_desc(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
	return a < c ? 1 : a > c ? -1 : 0;
}

/* The summary (ProfileSummaryBuilder::computeDetailedSummary over every
 * body record, inlined ones included). */
static void ext_summary(struct ext_w *e, const uint32_t *fns, size_t nf,
			struct fdo_buf *b)
{
	qsort(e->counts, e->ncounts, sizeof *e->counts, cmp_u64_desc);
	unsigned __int128 total = 0;
	for (size_t i = 0; i < e->ncounts; i++)
		total += e->counts[i];
	uint64_t maxfn = 0;
	for (size_t i = 0; i < nf; i++) {
		uint64_t h = (uint64_t)llround(e->w->m->nodes[fns[i]].head);
		maxfn = h > maxfn ? h : maxfn;
	}
	fdo_buf_uleb(b, (uint64_t)total);
	fdo_buf_uleb(b, e->ncounts ? e->counts[0] : 0);
	fdo_buf_uleb(b, maxfn);
	fdo_buf_uleb(b, e->ncounts);
	fdo_buf_uleb(b, nf);
	fdo_buf_uleb(b, sizeof cutoffs / sizeof *cutoffs);
	/* Walk the counts from the largest, one bucket (equal counts) at a
	 * time, across the cutoffs. */
	unsigned __int128 sum = 0;
	uint64_t count = 0;
	size_t seen = 0;
	for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
		unsigned __int128 want = total * cutoffs[c] / 1000000;
		while (sum < want && seen < e->ncounts) {
			count = e->counts[seen];
			while (seen < e->ncounts && e->counts[seen] == count) {
				sum += count;
				seen++;
			}
		}
		fdo_buf_uleb(b, cutoffs[c]);
		fdo_buf_uleb(b, count);
		fdo_buf_uleb(b, seen);
	}
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The names of the functions of the profile's executables that the name
 * table does not hold, by bytes, once each, NUL-terminated. */
static int ext_symbols(struct ext_w *e, struct fdo_buf *b)
{
	const struct prof *p = e->w->p;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct sym_func **lists = calloc(p->nbuild_ids + 1, sizeof *lists);
	int rc = lists ? FDO_OK : FDO_ENOMEM;
	for (size_t i = 0; i < p->nbuild_ids && !rc; i++) {
		size_t nfn = 0;
		if (!p->build_ids[i].elf_path ||
		    sym_elf_functions(p->build_ids[i].elf_path, &lists[i],
				      &nfn))
			continue; /* no list from a file that cannot be read */
		for (size_t k = 0; k < nfn && !rc; k++) {
			const char *s = lists[i][k].name;
			if (!*s)
				continue;
			if (fdo_grow(names, cap, n + 1))
				rc = FDO_ENOMEM;
			else
				names[n++] = (char *)s;
		}
	}
	if (!rc) {
		if (n) /* names is NULL when no file gave a name */
			qsort(names, n, sizeof *names, cmp_cstr);
		/* Names the profile holds stay out: clang would keep them
		 * unknown anyway, and a list without them is shorter. */
		char **have =
			malloc((e->nnames ? e->nnames : 1) * sizeof *have);
		if (!have) {
			rc = FDO_ENOMEM;
		} else {
			for (size_t i = 0; i < e->nnames; i++)
				have[i] = (char *)prof_str(p, e->names[i]);
			for (size_t i = 0; i < n; i++) {
				if (i && !strcmp(names[i], names[i - 1]))
					continue;
				if (bsearch(&names[i], have, e->nnames,
					    sizeof *have, cmp_cstr))
					continue;
				if (e->w->nunlisted &&
				    bsearch(&names[i], e->w->unlisted,
					    e->w->nunlisted, sizeof *have,
					    cmp_cstr))
					continue;
				fdo_buf_append(b, names[i],
					       strlen(names[i]) + 1);
			}
			free(have);
		}
	}
	for (size_t i = 0; lists && i < p->nbuild_ids; i++)
		sym_elf_functions_free(lists[i]);
	free(lists);
	free(names);
	return rc ? rc : b->oom ? FDO_ENOMEM : FDO_OK;
}

static int write_ext(struct llvm_w *w, const uint32_t *fns, size_t nf,
		     int symbol_list, struct fdo_buf *out)
{
	struct ext_w e = {.w = w};
	struct fdo_buf sec[7]; /* in the order of the table below */
	for (int i = 0; i < 7; i++)
		fdo_buf_init(&sec[i]);
	int rc = FDO_OK;
	for (size_t i = 0; i < nf && !rc; i++)
		rc = ext_names(&e, fns[i]);
	if (!rc) {
		qsort_r(e.names, e.nnames, sizeof *e.names, cmp_name,
			(void *)w->p);
		fdo_map64_clear(&e.idx);
		for (size_t i = 0; i < e.nnames && !rc; i++) {
			uint32_t pos;
			int found;
			rc = fdo_map64_put(&e.idx, (uint64_t)e.names[i] + 1,
					   (uint32_t)i, &pos, &found);
		}
	}
	/* The profiles, their offsets, names, checksums, symbols. */
	struct fdo_buf *summary = &sec[0], *names = &sec[1], *csnames = &sec[2],
		       *offsets = &sec[3], *lbr = &sec[4], *symbols = &sec[5],
		       *meta = &sec[6];
	fdo_buf_uleb(offsets, nf);
	for (size_t i = 0; i < nf && !rc; i++) {
		const struct prof_mnode *n = &w->m->nodes[fns[i]];
		fdo_buf_uleb(offsets, ext_pos(&e, n->name));
		fdo_buf_uleb(offsets, lbr->len);
		fdo_buf_uleb(lbr, (uint64_t)llround(n->head));
		rc = ext_body(&e, fns[i], lbr);
		if (w->m->probes) {
			fdo_buf_uleb(meta, ext_pos(&e, n->name));
			ext_meta(&e, fns[i], meta);
		}
	}
	if (!rc) {
		ext_summary(&e, fns, nf, summary);
		fdo_buf_uleb(names, e.nnames);
		for (size_t i = 0; i < e.nnames; i++) {
			const char *s = prof_str(w->p, e.names[i]);
			fdo_buf_append(names, s, strlen(s) + 1);
		}
		fdo_buf_uleb(csnames, 0);
		if (symbol_list)
			rc = ext_symbols(&e, symbols);
	}
	if (!rc) {
		/* Table order (what the reader follows: the offsets before
		 * the profiles, or clang applies none) and the order of the
		 * bytes (llvm-profdata's, the offsets once known) differ. */
		static const uint64_t type[7] = {SEC_SUMMARY, SEC_NAMES,
						 SEC_CSNAMES, SEC_OFFSETS,
						 SEC_LBR,     SEC_SYMBOLS,
						 SEC_META};
		static const int placed[7] = {0, 1, 2, 4, 5, 3, 6};
		uint64_t off[7];
		uint64_t at = 10 + 8 + 7 * 32;
		for (int k = 0; k < 7; k++) {
			off[placed[k]] = at;
			at += sec[placed[k]].len;
		}
		static const uint8_t magic[] = {0x84, 0xe4, 0xd0, 0xb1, 0xf4,
						0xc9, 0x94, 0xa8, 0x53, 103};
		fdo_buf_append(out, magic, sizeof magic);
		fdo_buf_le64(out, 7);
		for (int i = 0; i < 7; i++) {
			fdo_buf_le64(out, type[i]);
			fdo_buf_le64(out, i == 6 && w->m->probes
						  ? SEC_FLAG_PROBES
						  : 0);
			fdo_buf_le64(out, off[i]);
			fdo_buf_le64(out, sec[i].len);
		}
		for (int k = 0; k < 7; k++)
			fdo_buf_append(out, sec[placed[k]].data,
				       sec[placed[k]].len);
		for (int i = 0; i < 7; i++)
			if (sec[i].oom)
				rc = FDO_ENOMEM;
	}
	for (int i = 0; i < 7; i++)
		fdo_buf_fini(&sec[i]);
	fdo_map64_fini(&e.idx);
	free(e.names);
	free(e.counts);
	return rc ? rc : out->oom ? FDO_ENOMEM : FDO_OK;
}

int emit_llvm(const struct prof *p, const struct prof_opts *o,
	      struct fdo_buf *out)
{
	struct prof_model m;
	int rc = prof_model_build(p, o, PROF_MODEL_DECODE | PROF_MODEL_PROBES,
				  &m);
	if (rc)
		return rc;
	rc = emit_llvm_model(p, o, &m, NULL, 0, out);
	prof_model_fini(&m);
	return rc;
}

int emit_llvm_model(const struct prof *p, const struct prof_opts *o,
		    const struct prof_model *mp, const char *const *unlisted,
		    size_t nunlisted, struct fdo_buf *out)
{
	struct prof_model m = *mp; /* read only: a shallow copy */
	int rc;
	fdo_debug("emit_llvm: %zu functions and inlined instances, %zu "
		  "lines; skipped %.0f unsymbolized and %.0f line-0 samples",
		  m.nnodes, m.nlines, m.skipped_unsym, m.skipped_line0);
	struct llvm_w w = {.p = p,
			   .m = &m,
			   .zeros = o->zeros,
			   .unlisted = unlisted,
			   .nunlisted = nunlisted};
	size_t nl = m.nlines ? m.nlines : 1, nn = m.nnodes ? m.nnodes : 1,
	       nt = m.ntargets ? m.ntargets : 1;
	w.line_count = calloc(nl, sizeof *w.line_count);
	w.line_keep = calloc(nl, 1);
	w.target_count = calloc(nt, sizeof *w.target_count);
	w.total = calloc(nn, sizeof *w.total);
	w.keep = calloc(nn, 1);
	w.order = malloc(nt * sizeof *w.order);
	size_t start = out->len;
	uint32_t *fns = NULL;
	size_t nf = 0;
	rc = w.line_count && w.line_keep && w.target_count && w.total &&
			     w.keep && w.order
		     ? keep_model(&w, o->min_share, &fns, &nf)
		     : FDO_ENOMEM;
	/* Nothing kept: an empty file in either form (callers refuse to
	 * publish it; clang rejects it). */
	if (!rc && nf)
		rc = o->encoding == PROF_ENC_TEXT
			     ? write_text(&w, fns, nf, out)
			     : write_ext(&w, fns, nf, o->symbol_list, out);
	free(fns);
	if (rc)
		out->len = start;
	free(w.line_count);
	free(w.line_keep);
	free(w.target_count);
	free(w.total);
	free(w.keep);
	free(w.order);
	return rc;
}
