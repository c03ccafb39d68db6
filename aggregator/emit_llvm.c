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
 * Choices:
 *  - Functions are keyed by the linkage name of the OUTERMOST frame of a
 *    location's inline chain (the function the code was compiled into).
 *    For a chain f0 (innermost) .. fn (outermost), a sample lands in fn's
 *    record, under call site (Ln - Sn).dn : f(n-1) ..., down to f0's body
 *    line (L0 - S0).d0 — the path clang's loader walks for an instruction
 *    inlined at those call sites.
 *  - Body samples come from the leaf location of each stack only.
 *  - Line counts (opts line_count=mean|sum|max): several addresses on one
 *    (function instance, offset, discriminator). clang's sample loader
 *    reads a line's count as how often the line ran, and weighs a block by
 *    the largest count among its lines. An IP sample falls on an
 *    instruction in proportion to (times it ran x its latency), so `sum`
 *    (what llvm-profgen does with IP samples) multiplies each line by its
 *    number of instructions: a long line looks hotter than a short one that
 *    ran as often, and the branch weights clang derives from block counts
 *    lean towards long blocks. `mean` (default) divides each line's sum by
 *    the number of its addresses that got samples (on a hot line, about
 *    its instruction count), then rescales all lines by one factor so they
 *    keep the sum's total (heads and call targets stay in the same unit).
 *    `max` takes the largest per-address count, as AutoFDO does with
 *    per-instruction execution counts from LBR; without LBR it keeps one
 *    noisy address and throws the line's other samples away.
 *    Measured (deploy/demo/profile-choices.sh: independent ~25k-sample
 *    profiles of the demo interpreter, each built with every choice, timed
 *    in 11 paired interleaved rounds; share of the instrumented-PGO gain):
 *    sum 43, 26, 94, 80, 13, 60%; max 66, 80, 100%; mean 102, 109, 117,
 *    27, 54, 78% (head=stacks). One profile is one draw (sample noise
 *    flips some of clang's decisions), but mean wins on the median and in
 *    5 of 6 pairs.
 *    None of the three gives clang execution counts: compared with the
 *    instrumented profile of the same workload (branch weights clang
 *    attached after loading each profile, -mllvm -print-after), the demo
 *    interpreter's dispatch switch came out with a total variation
 *    distance of 0.34 (sum), 0.34 (mean) and 0.40 (max) from the true case
 *    frequencies: OP_JNZ 22% against 8% executed (the mispredicted jumps'
 *    stall samples land on its block), OP_PUSH 12% against 23%, OP_LOAD
 *    7% against 16%. Only branch records (LBR) would count executions.
 *  - Call targets: for each stack, location i+1 called the function of
 *    location i, so `callee:count` goes on location i+1's line — the line
 *    of its INNERMOST frame, nested in its inline chain like a body sample,
 *    because that is where clang looks for the targets of a call that sits
 *    in inlined code (findFunctionSamples on the call's DILocation). The
 *    callee is the outermost frame of location i (the function actually
 *    called; its inner frames were inlined into it).
 *  - Head samples (opts head=entry|stacks). `entry` (default): head(f)
 *    is the count of f's entry line (offset 0, no discriminator), in the
 *    same unit as its body lines. `stacks`: like LLVM's own converters,
 *    which add up the call target counts naming f (llvm-profgen, from LBR
 *    calls): head(f) = the count of stacks in which f is called (f is the
 *    outermost frame of a location with a caller location), also when the
 *    caller is outside the binary or not symbolized; a stack counts once
 *    per callee and once per (call site, callee), so recursion does not
 *    multiply it. But a stack edge measures time spent below the call, not
 *    calls: a function entered once that runs a long loop gets a head as
 *    large as all its samples, and clang (entry count = HEAD + 1) then sees
 *    its loop bodies run about once per entry. Measured as above, on the
 *    same samples: mean+entry 116, 100, 69, 106, 111, 120% against mean+
 *    stacks 27, 54, 78, 78, 95, 69%; sum+entry 64, 84, 68% against sum+
 *    stacks 43, 26, 94%. Call target counts stay inclusive sample counts
 *    from stack edges either way.
 *    Those 11-round tables were noisy (a shared host): 21- to 84-round tables
 *    of the demo put mean+entry at 51-58% of the instrumented-PGO gain on
 *    one host, within 2% of instrumented PGO without its select counters
 *    (the rest is a select no sample profile can weigh), and from -8% to
 *    122% on another, by the profile's sampling noise; there instrumented
 *    PGO's own gain moved from +11% to +26% with its training set (README
 *    "Where sample PGO falls short").
 *  - Unsymbolized locations (0 frames) and chains with a frame on line 0
 *    (or a name clang could not parse: empty, or containing whitespace)
 *    cannot be placed and are skipped; the skipped counts are logged at
 *    debug level. Typically 17-18% of samples sit on line 0.
 *  - Counts are summed as doubles and rounded once at the end; lines,
 *    targets and inlined instances that round to 0 are dropped; TOTALs are
 *    sums of the rounded numbers, so the file is self-consistent.
 *  - Order (the same profile gives the same bytes, and the same bytes as
 *    `llvm-profdata merge --sample --text` writes): functions by TOTAL
 *    descending then name; in a function its body lines by (offset,
 *    discriminator), then its inlined call sites by (offset,
 *    discriminator, callee name); call targets by count descending then
 *    name.
 *  - opts min_share=F (0 <= F <= 1, default 0): functions whose TOTAL is
 *    below F x the sum of all TOTALs are left out. Options of other
 *    emitters (build_id=...) are ignored; a bad value of ours is
 *    FDO_EINVAL.
 *  - An empty profile gives an empty file (clang rejects an empty file as
 *    an unknown format: callers should refuse to publish it).
 *
 * Workload: millions of stacks, thousands of distinct lines; everything is
 * hashed once per stack edge and per distinct leaf address.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/opts.h"

#define NONE UINT32_MAX

struct llvm_cfg {
	double min_share;
	char *line_count;
	char *head;
};

/* The values in enum line_rule's order; head's: "entry" or not. */
const struct emit_choice emit_llvm_choices[] = {
    {"line_count", {"sum", "max", "mean"}},
    {"head", {"stacks", "entry"}},
    {0},
};

int emit_choice_index(const struct emit_choice *c, const char *value)
{
	for (int i = 0; c->values[i]; i++)
		if (!strcmp(value, c->values[i]))
			return i;
	return -1;
}

static const struct fdo_opt llvm_opts[] = {
    {"min_share", FDO_OPT_DOUBLE, offsetof(struct llvm_cfg, min_share), "0",
     "F", "leave out functions with less than F of all samples"},
    {"line_count", FDO_OPT_STRING, offsetof(struct llvm_cfg, line_count), "mean",
     "mean|sum|max", "a line's count from its addresses' counts"},
    {"head", FDO_OPT_STRING, offsetof(struct llvm_cfg, head), "entry",
     "entry|stacks", "head samples: the entry line's, or calls in stacks"},
    {0},
};

/*
 * emit_opts_apply applies "name=value" pairs separated by ',', '&', ';' or
 * blanks to cfg through table. Names the table does not have are left to
 * the other emitters (the route passes every emitter the same text, e.g.
 * "build_id=...,min_share=..."); a value of ours that does not parse is
 * FDO_EINVAL. Returns FDO_OK, FDO_EINVAL, FDO_ENOMEM.
 */
static int emit_opts_apply(const struct fdo_opt *table, void *cfg,
                           const char *opts)
{
	if (!opts || !*opts)
		return FDO_OK;
	char *copy = strdup(opts), *save = NULL, err[128];
	if (!copy)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	for (char *t = strtok_r(copy, ",&; \t", &save); t && !rc;
	     t = strtok_r(NULL, ",&; \t", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = 0;
		const struct fdo_opt *o = table;
		while (o->name && strcmp(o->name, t))
			o++;
		if (!o->name)
			continue;
		rc = eq ? fdo_opts_set(table, cfg, t, eq + 1, err, sizeof err)
		        : FDO_EINVAL;
	}
	free(copy);
	return rc;
}

/* ------------------------------------------------ a map of 4 words -- */

/* Open addressing from a 4-word key to an index; the caller's arrays hold
 * the objects. */
struct kslot {
	uint32_t k[4];
	uint32_t v; /* NONE: empty */
};

struct kmap {
	struct kslot *s;
	size_t cap, n;
};

static size_t khash(const uint32_t k[4])
{
	return (size_t)fdo_hash_words(k, 4 * sizeof k[0]);
}

static int kmap_grow(struct kmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct kslot *s = malloc(cap * sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].v = NONE;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->s[i].v == NONE)
			continue;
		size_t j = khash(m->s[i].k) & (cap - 1);
		while (s[j].v != NONE)
			j = (j + 1) & (cap - 1);
		s[j] = m->s[i];
	}
	free(m->s);
	m->s = s;
	m->cap = cap;
	return FDO_OK;
}

/*
 * kmap_put returns the index stored under k, or stores fresh and returns
 * it (*added = 1). NONE when out of memory.
 */
static uint32_t kmap_put(struct kmap *m, const uint32_t k[4], uint32_t fresh,
                         int *added)
{
	*added = 0;
	if ((m->n + 1) * 2 > m->cap && kmap_grow(m))
		return NONE;
	size_t j = khash(k) & (m->cap - 1);
	for (; m->s[j].v != NONE; j = (j + 1) & (m->cap - 1))
		if (!memcmp(m->s[j].k, k, sizeof m->s[j].k))
			return m->s[j].v;
	memcpy(m->s[j].k, k, sizeof m->s[j].k);
	m->s[j].v = fresh;
	m->n++;
	*added = 1;
	return fresh;
}

/* ------------------------------------------------------ the model -- */

/* A function (parent NONE) or an inlined instance at a call site of its
 * parent. Created parent first, so a child's index is above its parent's. */
struct lnode {
	uint32_t parent, off, disc, name;
	uint64_t total; /* rounded, filled by finish() */
	int keep;
};

/* One (instance, offset, discriminator) line. */
struct lrec {
	uint32_t node, off, disc;
	uint32_t naddr; /* distinct sampled addresses placed on it */
	double count;
	uint64_t rounded;
	int keep;
};

/* A call target on a line. */
struct ltgt {
	uint32_t rec, name;
	double count;
	uint64_t rounded;
	size_t stamp; /* the stack that last added to it, + 1 */
};

enum line_rule { LINE_SUM, LINE_MAX, LINE_MEAN }; /* emit_llvm_choices[0] */

struct llvm_em {
	const struct prof *p;
	enum line_rule line;
	int head_entry;
	struct lnode *nodes;
	size_t nnodes, cap_nodes;
	struct lrec *recs;
	size_t nrecs, cap_recs;
	struct ltgt *tgts;
	size_t ntgts, cap_tgts;
	struct kmap node_map, rec_map, tgt_map;
	double *head;        /* per string: head samples */
	size_t *head_stamp;  /* per string: the stack that last added, + 1 */
	uint8_t *name_state; /* per string: 0 not seen, 1 usable, 2 not */
	uint32_t *loc_rec;   /* per location: its record, or LOC_* */
	double skipped_unsym, skipped_line0;
};

/* The base discriminator of an LLVM-encoded DWARF discriminator
 * (DILocation::getBaseDiscriminator, non-FS profiles). */
static uint32_t base_discriminator(uint32_t d)
{
	if (d & 1)
		return 0;
	d >>= 1;
	if (d & 0x20)
		return ((d >> 1) & 0xfe0) | (d & 0x1f);
	return d & 0x1f;
}

static uint32_t frame_off(const struct prof_frame *f)
{
	return (f->line - f->start_line) & 0xffff;
}

/* A name clang's text reader can take back: not empty, no blanks. */
static int name_ok(struct llvm_em *e, uint32_t i)
{
	if (i >= e->p->nstrings)
		return 0;
	if (!e->name_state[i]) {
		const char *s = e->p->strings[i];
		e->name_state[i] = *s && !strpbrk(s, " \t\r\n") ? 1 : 2;
	}
	return e->name_state[i] == 1;
}

static uint32_t node_get(struct llvm_em *e, uint32_t parent, uint32_t off,
                         uint32_t disc, uint32_t name)
{
	uint32_t k[4] = {parent, off, disc, name};
	int added;
	uint32_t i = kmap_put(&e->node_map, k, (uint32_t)e->nnodes, &added);
	if (i == NONE || !added)
		return i;
	if (fdo_grow(e->nodes, e->cap_nodes, e->nnodes + 1))
		return NONE; /* the map entry points past the end: we fail */
	e->nodes[e->nnodes++] = (struct lnode){parent, off, disc, name, 0, 0};
	return i;
}

static uint32_t rec_get(struct llvm_em *e, uint32_t node, uint32_t off,
                        uint32_t disc)
{
	uint32_t k[4] = {node, off, disc, 0};
	int added;
	uint32_t i = kmap_put(&e->rec_map, k, (uint32_t)e->nrecs, &added);
	if (i == NONE || !added)
		return i;
	if (fdo_grow(e->recs, e->cap_recs, e->nrecs + 1))
		return NONE;
	e->recs[e->nrecs++] = (struct lrec){node, off, disc, 0, 0, 0, 0};
	return i;
}

static uint32_t tgt_get(struct llvm_em *e, uint32_t rec, uint32_t name)
{
	uint32_t k[4] = {rec, name, 0, 0};
	int added;
	uint32_t i = kmap_put(&e->tgt_map, k, (uint32_t)e->ntgts, &added);
	if (i == NONE || !added)
		return i;
	if (fdo_grow(e->tgts, e->cap_tgts, e->ntgts + 1))
		return NONE;
	e->tgts[e->ntgts++] = (struct ltgt){rec, name, 0, 0, 0};
	return i;
}

enum { PLACE_OK, PLACE_UNSYM, PLACE_LINE0, PLACE_NOMEM };

/* loc_rec values besides record indices. */
#define LOC_UNSET NONE
#define LOC_UNSYM (NONE - 1)
#define LOC_LINE0 (NONE - 2)

/*
 * place finds the line record of location li: its inline chain walked
 * from the outermost frame in, creating instances on the way. The answer
 * is kept per location, since call sites recur in most stacks.
 */
static int place(struct llvm_em *e, uint32_t li, uint32_t *rec)
{
	uint32_t memo = e->loc_rec[li];
	if (memo == LOC_UNSYM)
		return PLACE_UNSYM;
	if (memo == LOC_LINE0)
		return PLACE_LINE0;
	if (memo != LOC_UNSET) {
		*rec = memo;
		return PLACE_OK;
	}
	const struct prof *p = e->p;
	const struct prof_loc *l = &p->locs[li];
	uint32_t n = l->nframes;
	if (!n) {
		e->loc_rec[li] = LOC_UNSYM;
		return PLACE_UNSYM;
	}
	assert((size_t)l->first_frame + n <= p->nframes);
	const struct prof_frame *f = &p->frames[l->first_frame];
	for (uint32_t k = 0; k < n; k++) {
		if (!f[k].line || !name_ok(e, f[k].function)) {
			e->loc_rec[li] = LOC_LINE0;
			return PLACE_LINE0;
		}
	}
	uint32_t node = node_get(e, NONE, 0, 0, f[n - 1].function);
	for (uint32_t k = n - 1; k >= 1 && node != NONE; k--)
		node = node_get(e, node, frame_off(&f[k]),
		                base_discriminator(f[k].discriminator),
		                f[k - 1].function);
	if (node == NONE)
		return PLACE_NOMEM;
	*rec = rec_get(e, node, frame_off(&f[0]),
	               base_discriminator(f[0].discriminator));
	if (*rec == NONE || *rec >= LOC_LINE0)
		return PLACE_NOMEM;
	e->loc_rec[li] = *rec;
	return PLACE_OK;
}

/* One call edge of stack s: site called the function of callee. */
static int add_edge(struct llvm_em *e, size_t s, const struct prof_loc *callee,
                    uint32_t site, double count)
{
	const struct prof *p = e->p;
	if (!callee->nframes)
		return FDO_OK;
	uint32_t name =
	    p->frames[callee->first_frame + callee->nframes - 1].function;
	if (!name_ok(e, name))
		return FDO_OK;
	if (e->head_stamp[name] != s + 1) {
		e->head_stamp[name] = s + 1;
		e->head[name] += count;
	}
	uint32_t rec;
	int rc = place(e, site, &rec);
	if (rc == PLACE_NOMEM)
		return FDO_ENOMEM;
	if (rc != PLACE_OK)
		return FDO_OK;
	uint32_t t = tgt_get(e, rec, name);
	if (t == NONE)
		return FDO_ENOMEM;
	if (e->tgts[t].stamp != s + 1) {
		e->tgts[t].stamp = s + 1;
		e->tgts[t].count += count;
	}
	return FDO_OK;
}

/* Leaf locations ordered by address, so one address counts once for max. */
static int cmp_loc_addr(const void *a, const void *b, void *arg)
{
	const struct prof *p = arg;
	const struct prof_loc *x = &p->locs[*(const uint32_t *)a];
	const struct prof_loc *y = &p->locs[*(const uint32_t *)b];
	if (x->build_id != y->build_id)
		return x->build_id < y->build_id ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

static int add_leaves(struct llvm_em *e, const double *leaf)
{
	const struct prof *p = e->p;
	size_t n = 0;
	uint32_t *idx = malloc((p->nlocs ? p->nlocs : 1) * sizeof *idx);
	if (!idx)
		return FDO_ENOMEM;
	for (size_t i = 0; i < p->nlocs; i++)
		if (leaf[i] > 0)
			idx[n++] = (uint32_t)i;
	qsort_r(idx, n, sizeof *idx, cmp_loc_addr, (void *)p);
	int rc = FDO_OK;
	for (size_t i = 0; i < n && !rc;) {
		double c = 0;
		size_t j = i;
		for (; j < n && !cmp_loc_addr(&idx[i], &idx[j], (void *)p); j++)
			c += leaf[idx[j]];
		uint32_t rec;
		switch (place(e, idx[i], &rec)) {
		case PLACE_OK:
			if (e->line == LINE_MAX)
				e->recs[rec].count =
				    fmax(e->recs[rec].count, c);
			else
				e->recs[rec].count += c;
			e->recs[rec].naddr++;
			break;
		case PLACE_UNSYM:
			e->skipped_unsym += c;
			break;
		case PLACE_LINE0:
			e->skipped_line0 += c;
			break;
		default:
			rc = FDO_ENOMEM;
		}
		i = j;
	}
	free(idx);
	if (rc || e->line != LINE_MEAN)
		return rc;
	/* mean: per address, rescaled so the lines keep the sum's total
	 * (heads and call targets stay in the same unit). */
	double before = 0, after = 0;
	for (size_t i = 0; i < e->nrecs; i++) {
		struct lrec *r = &e->recs[i];
		before += r->count;
		if (r->naddr)
			r->count /= r->naddr;
		after += r->count;
	}
	double scale = after > 0 ? before / after : 1;
	for (size_t i = 0; i < e->nrecs; i++)
		e->recs[i].count *= scale;
	return FDO_OK;
}

/* head=entry: a function's head samples are its entry line's (offset 0,
 * discriminator 0 of its own body), the count the line rule gave it. */
static void heads_from_entry(struct llvm_em *e)
{
	for (size_t i = 0; i < e->p->nstrings; i++)
		e->head[i] = 0;
	for (size_t i = 0; i < e->nrecs; i++) {
		const struct lrec *r = &e->recs[i];
		const struct lnode *n = &e->nodes[r->node];
		if (n->parent == NONE && r->off == 0 && r->disc == 0)
			e->head[n->name] = r->count;
	}
}

/* ------------------------------------------------------- the output -- */

static int cmp_name(const struct prof *p, uint32_t a, uint32_t b)
{
	return strcmp(prof_str(p, a), prof_str(p, b));
}

static int cmp_rec(const void *a, const void *b, void *arg)
{
	const struct llvm_em *e = arg;
	const struct lrec *x = &e->recs[*(const uint32_t *)a];
	const struct lrec *y = &e->recs[*(const uint32_t *)b];
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	if (x->disc != y->disc)
		return x->disc < y->disc ? -1 : 1;
	return 0;
}

static int cmp_tgt(const void *a, const void *b, void *arg)
{
	const struct llvm_em *e = arg;
	const struct ltgt *x = &e->tgts[*(const uint32_t *)a];
	const struct ltgt *y = &e->tgts[*(const uint32_t *)b];
	if (x->rec != y->rec)
		return x->rec < y->rec ? -1 : 1;
	if (x->rounded != y->rounded)
		return x->rounded > y->rounded ? -1 : 1;
	return cmp_name(e->p, x->name, y->name);
}

/* Children by (parent, offset, discriminator, name); functions (parent
 * NONE, last) by total descending, then name. */
static int cmp_node(const void *a, const void *b, void *arg)
{
	const struct llvm_em *e = arg;
	const struct lnode *x = &e->nodes[*(const uint32_t *)a];
	const struct lnode *y = &e->nodes[*(const uint32_t *)b];
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->parent == NONE) {
		if (x->total != y->total)
			return x->total > y->total ? -1 : 1;
	} else {
		if (x->off != y->off)
			return x->off < y->off ? -1 : 1;
		if (x->disc != y->disc)
			return x->disc < y->disc ? -1 : 1;
	}
	return cmp_name(e->p, x->name, y->name);
}

/* Sorted index arrays and, per owner, where its run starts. */
struct llvm_out {
	uint32_t *recs, *tgts, *nodes;
	uint32_t *rec_first, *tgt_first, *child_first; /* n+1 entries */
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

static void put_node(const struct llvm_em *e, const struct llvm_out *o,
                     uint32_t node, int depth, struct fdo_buf *b)
{
	const struct prof *p = e->p;
	for (uint32_t i = o->rec_first[node]; i < o->rec_first[node + 1]; i++) {
		const struct lrec *r = &e->recs[o->recs[i]];
		if (!r->keep)
			continue;
		put_loc(b, depth, r->off, r->disc);
		fdo_buf_printf(b, "%llu", (unsigned long long)r->rounded);
		uint32_t ri = o->recs[i];
		for (uint32_t j = o->tgt_first[ri]; j < o->tgt_first[ri + 1];
		     j++) {
			const struct ltgt *t = &e->tgts[o->tgts[j]];
			if (t->rounded)
				fdo_buf_printf(b, " %s:%llu",
				               prof_str(p, t->name),
				               (unsigned long long)t->rounded);
		}
		fdo_buf_putc(b, '\n');
	}
	for (uint32_t i = o->child_first[node]; i < o->child_first[node + 1];
	     i++) {
		const struct lnode *c = &e->nodes[o->nodes[i]];
		if (!c->keep)
			continue;
		put_loc(b, depth, c->off, c->disc);
		fdo_buf_printf(b, "%s:%llu\n", prof_str(p, c->name),
		               (unsigned long long)c->total);
		put_node(e, o, o->nodes[i], depth + 1, b);
	}
}

/* first[k] = the first position in sorted idx[0..n) whose owner is >= k. */
static void runs(const uint32_t *idx, size_t n, size_t nowners,
                 uint32_t (*owner)(const struct llvm_em *, uint32_t),
                 const struct llvm_em *e, uint32_t *first)
{
	size_t pos = 0;
	for (size_t k = 0; k <= nowners; k++) {
		while (pos < n && owner(e, idx[pos]) < k)
			pos++;
		first[k] = (uint32_t)pos;
	}
}

static uint32_t rec_owner(const struct llvm_em *e, uint32_t i)
{
	return e->recs[i].node;
}

static uint32_t tgt_owner(const struct llvm_em *e, uint32_t i)
{
	return e->tgts[i].rec;
}

static uint32_t node_owner(const struct llvm_em *e, uint32_t i)
{
	return e->nodes[i].parent;
}

static uint32_t *iota(size_t n)
{
	uint32_t *a = malloc((n ? n : 1) * sizeof *a);
	for (size_t i = 0; a && i < n; i++)
		a[i] = (uint32_t)i;
	return a;
}

static int finish(struct llvm_em *e, double min_share, struct fdo_buf *out)
{
	struct llvm_out o = {0};
	int rc = FDO_ENOMEM;
	o.recs = iota(e->nrecs);
	o.tgts = iota(e->ntgts);
	o.nodes = iota(e->nnodes);
	o.rec_first = malloc((e->nnodes + 1) * sizeof *o.rec_first);
	o.tgt_first = malloc((e->nrecs + 1) * sizeof *o.tgt_first);
	o.child_first = malloc((e->nnodes + 1) * sizeof *o.child_first);
	if (!o.recs || !o.tgts || !o.nodes || !o.rec_first || !o.tgt_first ||
	    !o.child_first)
		goto out;

	/* Round, then decide what is kept from the leaves up. */
	for (size_t i = 0; i < e->ntgts; i++) {
		struct ltgt *t = &e->tgts[i];
		t->rounded = (uint64_t)llround(t->count);
		if (t->rounded)
			e->recs[t->rec].keep = 1;
	}
	for (size_t i = 0; i < e->nrecs; i++) {
		struct lrec *r = &e->recs[i];
		r->rounded = (uint64_t)llround(r->count);
		if (r->rounded)
			r->keep = 1;
		if (r->keep) {
			e->nodes[r->node].total += r->rounded;
			e->nodes[r->node].keep = 1;
		}
	}
	double grand = 0;
	for (size_t i = e->nnodes; i-- > 0;) {
		struct lnode *n = &e->nodes[i];
		n->keep = n->keep || n->total;
		if (n->parent == NONE) {
			grand += (double)n->total;
		} else if (n->keep) {
			assert(n->parent < i);
			e->nodes[n->parent].total += n->total;
			e->nodes[n->parent].keep = 1;
		}
	}
	for (size_t i = 0; i < e->nnodes; i++) {
		struct lnode *n = &e->nodes[i];
		if (n->parent == NONE && n->keep &&
		    (double)n->total < min_share * grand)
			n->keep = 0;
	}

	qsort_r(o.tgts, e->ntgts, sizeof *o.tgts, cmp_tgt, e);
	qsort_r(o.recs, e->nrecs, sizeof *o.recs, cmp_rec, e);
	qsort_r(o.nodes, e->nnodes, sizeof *o.nodes, cmp_node, e);
	runs(o.tgts, e->ntgts, e->nrecs, tgt_owner, e, o.tgt_first);
	runs(o.recs, e->nrecs, e->nnodes, rec_owner, e, o.rec_first);
	/* Functions (parent NONE) sort last, after every child run. */
	runs(o.nodes, e->nnodes, e->nnodes, node_owner, e, o.child_first);

	const struct prof *p = e->p;
	for (size_t i = o.child_first[e->nnodes]; i < e->nnodes; i++) {
		const struct lnode *n = &e->nodes[o.nodes[i]];
		if (!n->keep)
			continue;
		fdo_buf_printf(out, "%s:%llu:%llu\n", prof_str(p, n->name),
		               (unsigned long long)n->total,
		               (unsigned long long)llround(e->head[n->name]));
		put_node(e, &o, o.nodes[i], 1, out);
	}
	rc = out->oom ? FDO_ENOMEM : FDO_OK;
out:
	free(o.recs);
	free(o.tgts);
	free(o.nodes);
	free(o.rec_first);
	free(o.tgt_first);
	free(o.child_first);
	return rc;
}

int emit_llvm(const struct prof *p, const char *opts, struct fdo_buf *out)
{
	struct llvm_cfg cfg = {0};
	char err[128];
	int rc = fdo_opts_defaults(llvm_opts, &cfg, err, sizeof err);
	if (!rc)
		rc = emit_opts_apply(llvm_opts, &cfg, opts);
	int line = rc ? -1 : emit_choice_index(&emit_llvm_choices[0],
	                                       cfg.line_count);
	if (!rc && (!(cfg.min_share >= 0 && cfg.min_share <= 1) || line < 0 ||
	            emit_choice_index(&emit_llvm_choices[1], cfg.head) < 0))
		rc = FDO_EINVAL;
	if (rc) {
		fdo_opts_fini(llvm_opts, &cfg);
		return rc;
	}

	struct llvm_em e = {.p = p,
	                    .line = (enum line_rule)line,
	                    .head_entry = !strcmp(cfg.head, "entry")};
	double *leaf = calloc(p->nlocs ? p->nlocs : 1, sizeof *leaf);
	e.head = calloc(p->nstrings ? p->nstrings : 1, sizeof *e.head);
	e.head_stamp =
	    calloc(p->nstrings ? p->nstrings : 1, sizeof *e.head_stamp);
	e.name_state = calloc(p->nstrings ? p->nstrings : 1, 1);
	e.loc_rec = malloc((p->nlocs ? p->nlocs : 1) * sizeof *e.loc_rec);
	rc = leaf && e.head && e.head_stamp && e.name_state && e.loc_rec
	         ? FDO_OK
	         : FDO_ENOMEM;
	for (size_t i = 0; !rc && i < p->nlocs; i++)
		e.loc_rec[i] = LOC_UNSET;
	for (size_t s = 0; s < p->nstacks && !rc; s++) {
		const struct prof_stack *st = &p->stacks[s];
		if (!st->nlocs || !(st->count > 0))
			continue;
		assert((size_t)st->first_loc + st->nlocs <= p->nstack_locs);
		const uint32_t *sl = &p->stack_locs[st->first_loc];
		leaf[sl[0]] += st->count;
		for (uint32_t i = 0; i + 1 < st->nlocs && !rc; i++)
			rc = add_edge(&e, s, &p->locs[sl[i]], sl[i + 1],
			              st->count);
	}
	if (!rc)
		rc = add_leaves(&e, leaf);
	if (!rc && e.head_entry)
		heads_from_entry(&e);
	if (!rc) {
		fdo_debug("emit_llvm: %zu functions and inlined instances, "
		          "%zu lines; skipped %.0f unsymbolized and %.0f "
		          "line-0 samples",
		          e.nnodes, e.nrecs, e.skipped_unsym, e.skipped_line0);
		rc = finish(&e, cfg.min_share, out);
	}
	free(leaf);
	free(e.head);
	free(e.head_stamp);
	free(e.name_state);
	free(e.loc_rec);
	free(e.nodes);
	free(e.recs);
	free(e.tgts);
	free(e.node_map.s);
	free(e.rec_map.s);
	free(e.tgt_map.s);
	fdo_opts_fini(llvm_opts, &cfg);
	return rc;
}
