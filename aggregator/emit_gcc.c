/*
 * aggregator/emit_gcc.c — the `gcc` profile: GCC's AutoFDO gcov file, as
 * gcc 12's auto-profile.cc reads it (`gcc -fauto-profile=FILE`). Same
 * content as the `llvm` profile: per function (keyed by the outermost
 * frame's linkage name) body counts at line offsets from the function's
 * start line, inlined call sites nested, call targets, head counts.
 * Workload: one call per profile request; the model has thousands of
 * instances and lines, so every merge goes through one hash table and
 * every ordering is one sort.
 *
 * Layout. Every word is a 32-bit little-endian unsigned (gcov_write_unsigned
 * on x86: gcc reads host order, and reads the file on the host that
 * compiles); a counter is 64 bits as two words, low word first
 * (gcov_write_counter); a string is its length in bytes *including* the NUL,
 * then the bytes and the NUL, no padding (gcc 12's gcov_write_string:
 * `gcc-12 -ftest-coverage` writes its .gcno strings that way; the older
 * length-in-words + padded form, which create_gcov writes, crashes gcc 12 in
 * strlen). Section lengths are bytes of the section after the length word;
 * gcc skips them.
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    magic 0x67636461 ("gcda", GCOV_DATA_MAGIC; bytes "adcg").
 *               0x67636f76 "gcov" is rejected: "AutoFDO profile magic
 *               number does not match"
 *   4      4    version 2 (AUTO_PROFILE_VERSION; anything else: "AutoFDO
 *               profile version N does not match 2")
 *   8      4    stamp, 0 (read and ignored)
 *   12     4    0xaa000000 GCOV_TAG_AFDO_FILE_NAMES
 *   16     4    section length in bytes
 *   20     4    N names
 *   24     ..   N strings (u32 byte length incl. NUL, bytes, NUL); the
 *               index of a name in this list is its "name index".
 *               Sorted by strcmp, each once.
 *   ..     4    0xac000000 GCOV_TAG_AFDO_FUNCTION
 *   ..     4    section length in bytes
 *   ..     4    F functions, then F times (sorted by name):
 *   ..     8      head count (counter; top-level functions only)
 *   ..     ..     function instance:
 *                   4  name index
 *                   4  P positions
 *                   4  C call sites
 *                   P times (sorted by offset):
 *                     4  offset: (line - start line) << 16 | discriminator
 *                     4  T targets
 *                     8  count (counter)
 *                     T times (sorted by name): 4 type (3,
 *                        HIST_TYPE_INDIR_CALL; ignored), 8 name index
 *                        (counter), 8 count (counter)
 *                   C times (sorted by offset, then callee name):
 *                     4  offset of the call site, as a position's
 *                     ..  the callee's function instance (no head count)
 *   ..     4    0xae000000 module grouping (LIPO; gcc reads and skips)
 *   ..     4    4 (section length)
 *   ..     4    0 modules (gcc asserts it: 1 is an internal compiler
 *               error in fake_read_autofdo_module_profile)
 *
 * There is no total count in the file: gcc sums an instance's total from
 * the positions of it and of every instance inlined in it. gcc 12 reads
 * nothing after the module section (measured: trailing bytes are ignored),
 * so no GCOV_TAG_AFDO_WORKING_SET is written.
 *
 * Discriminators. gcc 12 masks a position's offset with 0xffff0000 when it
 * reads it and keeps the *last* count read for each line (measured: line
 * L with d1 = 500 then d2 = 7 annotates the block with 7), and finds call
 * sites by (line << 16) alone. So by default every offset is written with
 * discriminator 0, the counts of one line's discriminators are folded into
 * their maximum (the hottest block of the line, as gcc takes a block's count
 * as the maximum of its statements'), and call sites of one line and callee
 * are merged. Option `discriminators=1` keeps them (for readers that honour
 * them); `llvm_discriminators=1` then decodes clang's
 * -fdebug-info-for-profiling encoding to the base discriminator.
 *
 * Names are cut at the first '.', as gcc's get_original_name does when it
 * reads the table ("f.cold", "f.part.0", "f.constprop.0" are all "f"), so
 * a function's pieces merge into one instance instead of hiding each other.
 *
 * Counts come from the shared inline tree (aggregator/model.c: block
 * counts inferred on the binary's code by default, else samples per line;
 * head counts; call targets), rounded to the nearest integer. Functions
 * without a body count are left out (a head count alone tells gcc nothing
 * it can place).
 *
 * Options (prof_opts; besides the model's counts, line_count, head):
 *   min_share=F             drop functions with less than F (0..1) of the
 *                           sum of the functions' totals
 *   discriminators=0|1      see above; default 0
 *   llvm_discriminators=0|1 decode clang's encoding; default 0
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define AFDO_MAGIC	     0x67636461u
#define AFDO_VERSION	     2u
#define AFDO_TAG_NAMES	     0xaa000000u
#define AFDO_TAG_FUNCTION    0xac000000u
#define AFDO_TAG_MODULE	     0xae000000u
#define AFDO_HIST_INDIR_CALL 3u

#define NONE UINT32_MAX

/* A function instance: top level (parent NONE) or inlined at a call site. */
struct node {
	uint32_t parent, offset, name;
	double head;
};

struct pos {
	uint32_t node, offset;
	double count;
};

struct target {
	uint32_t pos, name;
	double count;
};

/* The written forms, after folding discriminators and rounding. */
struct opos {
	uint32_t node, offset;
	uint64_t count;
	uint32_t first_target, ntargets;
};

struct otarget {
	uint32_t opos, name;
	uint64_t count;
};

struct emit {
	const struct prof *p;
	const struct prof_opts *o;
	int err;
	/* Names after the '.' cut, each once; name_of maps a prof string. */
	char **names;
	size_t nnames, cap_names;
	struct fdo_idset name_set;
	uint32_t *name_of; /* [p->nstrings], NONE until seen */
	/* The tree. */
	struct node *nodes;
	size_t nnodes, cap_nodes;
	struct pos *pos;
	size_t npos, cap_pos;
	struct target *tgts;
	size_t ntgts, cap_tgts;
	/* The one table, (kind, a, b, c) -> index: kind 1 node (parent,
	 * offset, name), 2 position (node, offset), 3 target (position,
	 * name). */
	struct fdo_map128 keys;
	/* The output. */
	struct opos *opos;
	size_t nopos;
	struct otarget *otgts;
	size_t notgts;
	uint32_t *node_first_pos, *node_npos;  /* into opos */
	uint32_t *kids;			       /* node ids sorted */
	uint32_t *node_first_kid, *node_nkids; /* into kids */
	uint64_t *total;
	uint8_t *live;
	uint32_t *out_index; /* name id -> written index, NONE unused */
};

/* failed records rc (an FDO_* code) in e->err unless it is FDO_OK. */
static int failed(struct emit *e, int rc)
{
	if (rc)
		e->err = rc;
	return rc;
}

/* ------------------------------------------------------------ names -- */

static const void *name_key(const void *ctx, uint32_t id, size_t *len)
{
	const struct emit *e = ctx;
	*len = strlen(e->names[id]);
	return e->names[id];
}

/* name_id returns the id of prof string s cut at its first '.', NONE for
 * no name (e->err set on allocation failure). */
static uint32_t name_id(struct emit *e, uint32_t s)
{
	if (s >= e->p->nstrings)
		return NONE;
	if (e->name_of[s] != NONE)
		return e->name_of[s];
	const char *str = e->p->strings[s];
	size_t n = strcspn(str, ".");
	uint32_t id;
	if (!n)
		return NONE;
	if (fdo_idset_get(&e->name_set, str, n, &id))
		return e->name_of[s] = id;
	if (failed(e, fdo_grow(e->names, e->cap_names, e->nnames + 1)))
		return NONE;
	char *copy = strndup(str, n);
	if (!copy) {
		e->err = FDO_ENOMEM;
		return NONE;
	}
	e->names[e->nnames] = copy;
	if (failed(e,
		   fdo_idset_add(&e->name_set, str, n, (uint32_t)e->nnames))) {
		free(copy);
		return NONE;
	}
	return e->name_of[s] = (uint32_t)e->nnames++;
}

/* ------------------------------------------------------------ table -- */

/* The index stored under key (kind, a, b, c), or fresh stored there
 * (*found 0); NONE on allocation failure (e->err set). */
static uint32_t key_put(struct emit *e, uint32_t kind, uint32_t a, uint32_t b,
			uint32_t c, uint32_t fresh, int *found)
{
	uint32_t k[4] = {kind, a, b, c}, v;
	if (failed(e, fdo_map128_put(&e->keys, k, fresh, &v, found)))
		return NONE;
	return v;
}

static uint32_t node_get(struct emit *e, uint32_t parent, uint32_t offset,
			 uint32_t name)
{
	int found;
	if (failed(e, fdo_grow(e->nodes, e->cap_nodes, e->nnodes + 1)))
		return NONE;
	uint32_t i = key_put(e, 1, parent, offset, name, (uint32_t)e->nnodes,
			     &found);
	if (i != NONE && !found)
		e->nodes[e->nnodes++] = (struct node){parent, offset, name, 0};
	return i;
}

static uint32_t pos_get(struct emit *e, uint32_t node, uint32_t offset)
{
	int found;
	if (failed(e, fdo_grow(e->pos, e->cap_pos, e->npos + 1)))
		return NONE;
	uint32_t i = key_put(e, 2, node, offset, 0, (uint32_t)e->npos, &found);
	if (i != NONE && !found)
		e->pos[e->npos++] = (struct pos){node, offset, 0};
	return i;
}

static void target_add(struct emit *e, uint32_t pos, uint32_t name,
		       double count)
{
	int found;
	if (failed(e, fdo_grow(e->tgts, e->cap_tgts, e->ntgts + 1)))
		return;
	uint32_t i = key_put(e, 3, pos, name, 0, (uint32_t)e->ntgts, &found);
	if (i == NONE)
		return;
	if (found)
		e->tgts[i].count += count;
	else
		e->tgts[e->ntgts++] = (struct target){pos, name, count};
}

/* -------------------------------------------------------- the model -- */

/*
 * add_model copies the shared inline tree (aggregator/model.c) into this
 * file's tree, whose keys differ: names cut at the first '.', offsets
 * (line offset << 16 | discriminator, the discriminator only with
 * discriminators=1), so several model instances may land on one.
 */
static int add_model(struct emit *e, const struct prof_model *m)
{
	uint32_t *gnode = malloc((m->nnodes ? m->nnodes : 1) * sizeof *gnode);
	if (!gnode)
		return FDO_ENOMEM;
	/* A parent's index is below its kids': one pass in order. */
	for (size_t i = 0; i < m->nnodes && !e->err; i++) {
		const struct prof_mnode *n = &m->nodes[i];
		uint32_t name = name_id(e, n->name);
		uint32_t parent = n->parent == NONE ? NONE : gnode[n->parent];
		if (name == NONE || (n->parent != NONE && parent == NONE)) {
			gnode[i] = NONE;
			continue;
		}
		uint32_t off = n->parent == NONE
				       ? 0
				       : n->off << 16 |
						 (e->o->discriminators
							  ? n->disc & 0xffff
							  : 0);
		gnode[i] = node_get(e, parent, off, name);
		if (gnode[i] != NONE && n->parent == NONE)
			e->nodes[gnode[i]].head += n->head;
	}
	for (size_t i = 0; i < m->nlines && !e->err; i++) {
		const struct prof_mline *l = &m->lines[i];
		if (gnode[l->node] == NONE)
			continue;
		uint32_t pi = pos_get(e, gnode[l->node],
				      l->off << 16 | (l->disc & 0xffff));
		if (pi == NONE)
			break;
		e->pos[pi].count += l->count;
		for (uint32_t t = l->first_target;
		     t < l->first_target + l->ntargets && !e->err; t++) {
			uint32_t callee = name_id(e, m->targets[t].name);
			if (callee != NONE)
				target_add(e, pi, callee, m->targets[t].count);
		}
	}
	free(gnode);
	return e->err;
}

/* --------------------------------------------------------- ordering -- */

static uint64_t round_count(double c)
{
	if (!(c > 0.5))
		return 0;
	if (c >= 9.2e18)
		return INT64_MAX; /* gcov_type is signed */
	return (uint64_t)llround(c);
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return (a > b) - (a < b);
}

static int cmp_pos(const void *x, const void *y, void *ctx)
{
	const struct emit *e = ctx;
	const struct pos *a = &e->pos[*(const uint32_t *)x];
	const struct pos *b = &e->pos[*(const uint32_t *)y];
	int c = cmp_u32(a->node, b->node);
	return c ? c : cmp_u32(a->offset, b->offset);
}

static int cmp_otarget(const void *x, const void *y, void *ctx)
{
	const struct emit *e = ctx;
	const struct otarget *a = x, *b = y;
	int c = cmp_u32(a->opos, b->opos);
	return c ? c : strcmp(e->names[a->name], e->names[b->name]);
}

static int cmp_kid(const void *x, const void *y, void *ctx)
{
	const struct emit *e = ctx;
	const struct node *a = &e->nodes[*(const uint32_t *)x];
	const struct node *b = &e->nodes[*(const uint32_t *)y];
	/* Top-level nodes (parent NONE) sort last, by name. */
	int c = cmp_u32(a->parent, b->parent);
	if (!c)
		c = cmp_u32(a->offset, b->offset);
	return c ? c : strcmp(e->names[a->name], e->names[b->name]);
}

static int cmp_name(const void *x, const void *y, void *ctx)
{
	const struct emit *e = ctx;
	return strcmp(e->names[*(const uint32_t *)x],
		      e->names[*(const uint32_t *)y]);
}

/* fold turns positions into written positions (discriminators folded,
 * counts rounded) with their targets, indexed by node. */
static int fold(struct emit *e)
{
	uint32_t *order = malloc((e->npos + 1) * sizeof *order);
	uint32_t *opos_of = malloc((e->npos + 1) * sizeof *opos_of);
	e->opos = malloc((e->npos + 1) * sizeof *e->opos);
	e->otgts = malloc((e->ntgts + 1) * sizeof *e->otgts);
	e->node_first_pos = calloc(e->nnodes + 1, sizeof *e->node_first_pos);
	e->node_npos = calloc(e->nnodes + 1, sizeof *e->node_npos);
	if (!order || !opos_of || !e->opos || !e->otgts || !e->node_first_pos ||
	    !e->node_npos) {
		free(order);
		free(opos_of);
		return FDO_ENOMEM;
	}
	uint32_t mask = e->o->discriminators ? 0xffffffffu : 0xffff0000u;
	for (size_t i = 0; i < e->npos; i++) {
		order[i] = (uint32_t)i;
		e->pos[i].offset &= mask;
	}
	qsort_r(order, e->npos, sizeof *order, cmp_pos, e);
	for (size_t i = 0; i < e->npos; i++) {
		const struct pos *ps = &e->pos[order[i]];
		uint64_t c = round_count(ps->count);
		struct opos *last = e->nopos ? &e->opos[e->nopos - 1] : NULL;
		if (!last || last->node != ps->node ||
		    last->offset != ps->offset) {
			last = &e->opos[e->nopos++];
			*last = (struct opos){ps->node, ps->offset, 0, 0, 0};
		}
		if (c > last->count)
			last->count = c;
		opos_of[order[i]] = (uint32_t)(e->nopos - 1);
	}
	free(order);
	for (size_t i = 0; i < e->ntgts; i++)
		e->otgts[i] = (struct otarget){opos_of[e->tgts[i].pos],
					       e->tgts[i].name,
					       round_count(e->tgts[i].count)};
	free(opos_of);
	qsort_r(e->otgts, e->ntgts, sizeof *e->otgts, cmp_otarget, e);
	/* Sum the targets that folded together; drop zeros. */
	size_t n = 0;
	for (size_t i = 0; i < e->ntgts; i++) {
		const struct otarget *t = &e->otgts[i];
		if (n && e->otgts[n - 1].opos == t->opos &&
		    e->otgts[n - 1].name == t->name) {
			uint64_t s = e->otgts[n - 1].count + t->count;
			e->otgts[n - 1].count = s > INT64_MAX ? INT64_MAX : s;
		} else {
			e->otgts[n++] = *t;
		}
	}
	e->notgts = 0;
	for (size_t i = 0; i < n; i++) {
		if (!e->otgts[i].count)
			continue;
		struct opos *op = &e->opos[e->otgts[i].opos];
		if (!op->ntargets)
			op->first_target = (uint32_t)e->notgts;
		op->ntargets++;
		e->otgts[e->notgts++] = e->otgts[i];
	}
	/* Drop empty positions; index the rest by node. */
	n = 0;
	for (size_t i = 0; i < e->nopos; i++) {
		struct opos *op = &e->opos[i];
		if (!op->count && !op->ntargets)
			continue;
		if (!e->node_npos[op->node])
			e->node_first_pos[op->node] = (uint32_t)n;
		e->node_npos[op->node]++;
		e->opos[n++] = *op;
	}
	e->nopos = n;
	return FDO_OK;
}

/* tree sorts every node's call sites and sums totals bottom-up. */
static int tree(struct emit *e)
{
	size_t n = e->nnodes;
	e->kids = malloc((n + 1) * sizeof *e->kids);
	e->node_first_kid = calloc(n + 1, sizeof *e->node_first_kid);
	e->node_nkids = calloc(n + 1, sizeof *e->node_nkids);
	e->total = calloc(n + 1, sizeof *e->total);
	e->live = calloc(n + 1, 1);
	if (!e->kids || !e->node_first_kid || !e->node_nkids || !e->total ||
	    !e->live)
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++)
		e->kids[i] = (uint32_t)i;
	qsort_r(e->kids, n, sizeof *e->kids, cmp_kid, e);
	for (size_t i = 0; i < n; i++) {
		uint32_t par = e->nodes[e->kids[i]].parent;
		if (par == NONE)
			continue;
		if (!e->node_nkids[par])
			e->node_first_kid[par] = (uint32_t)i;
		e->node_nkids[par]++;
	}
	/* A child is created after its parent: children have larger ids. */
	for (size_t i = n; i-- > 0;) {
		const struct opos *op = e->opos + e->node_first_pos[i];
		for (uint32_t j = 0; j < e->node_npos[i]; j++) {
			uint64_t s = e->total[i] + op[j].count;
			e->total[i] = s > INT64_MAX ? INT64_MAX : s;
		}
		if (e->node_npos[i])
			e->live[i] = 1;
		uint32_t par = e->nodes[i].parent;
		if (par != NONE && e->live[i]) {
			uint64_t s = e->total[par] + e->total[i];
			e->total[par] = s > INT64_MAX ? INT64_MAX : s;
			e->live[par] = 1;
		}
	}
	return FDO_OK;
}

/* ----------------------------------------------------------- output -- */

static void put_u32(struct fdo_buf *b, uint32_t v)
{
	uint8_t w[4] = {v, v >> 8, v >> 16, v >> 24};
	fdo_buf_append(b, w, 4);
}

static void put_counter(struct fdo_buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void put_string(struct fdo_buf *b, const char *s)
{
	size_t n = strlen(s) + 1;
	put_u32(b, (uint32_t)n);
	fdo_buf_append(b, s, n);
}

/* section_begin writes tag and a length placeholder; returns where the
 * length goes. */
static size_t section_begin(struct fdo_buf *b, uint32_t tag)
{
	put_u32(b, tag);
	size_t at = b->len;
	put_u32(b, 0);
	return at;
}

static void section_end(struct fdo_buf *b, size_t at)
{
	if (b->oom)
		return;
	uint32_t v = (uint32_t)(b->len - at - 4);
	uint8_t w[4] = {v, v >> 8, v >> 16, v >> 24};
	memcpy(b->data + at, w, 4);
}

/* mark records the names that node's subtree writes. */
static void mark(struct emit *e, uint32_t node)
{
	e->out_index[e->nodes[node].name] = 0;
	const struct opos *op = e->opos + e->node_first_pos[node];
	for (uint32_t i = 0; i < e->node_npos[node]; i++)
		for (uint32_t j = 0; j < op[i].ntargets; j++)
			e->out_index[e->otgts[op[i].first_target + j].name] = 0;
	for (uint32_t i = 0; i < e->node_nkids[node]; i++) {
		uint32_t kid = e->kids[e->node_first_kid[node] + i];
		if (e->live[kid])
			mark(e, kid);
	}
}

static void write_instance(struct emit *e, uint32_t node, struct fdo_buf *b)
{
	uint32_t nkids = 0;
	for (uint32_t i = 0; i < e->node_nkids[node]; i++)
		nkids += e->live[e->kids[e->node_first_kid[node] + i]];
	put_u32(b, e->out_index[e->nodes[node].name]);
	put_u32(b, e->node_npos[node]);
	put_u32(b, nkids);
	const struct opos *op = e->opos + e->node_first_pos[node];
	for (uint32_t i = 0; i < e->node_npos[node]; i++) {
		put_u32(b, op[i].offset);
		put_u32(b, op[i].ntargets);
		put_counter(b, op[i].count);
		for (uint32_t j = 0; j < op[i].ntargets; j++) {
			const struct otarget *t =
				&e->otgts[op[i].first_target + j];
			put_u32(b, AFDO_HIST_INDIR_CALL);
			put_counter(b, e->out_index[t->name]);
			put_counter(b, t->count);
		}
	}
	for (uint32_t i = 0; i < e->node_nkids[node]; i++) {
		uint32_t kid = e->kids[e->node_first_kid[node] + i];
		if (!e->live[kid])
			continue;
		put_u32(b, e->nodes[kid].offset);
		write_instance(e, kid, b);
	}
}

static int write_file(struct emit *e, struct fdo_buf *b)
{
	/* Top-level nodes sorted last in kids, by name. */
	size_t first_top = e->nnodes;
	while (first_top > 0 && e->nodes[e->kids[first_top - 1]].parent == NONE)
		first_top--;
	uint64_t grand = 0;
	for (size_t i = first_top; i < e->nnodes; i++)
		grand += e->total[e->kids[i]];
	double floor_ = e->o->min_share * (double)grand;
	e->out_index = malloc((e->nnames + 1) * sizeof *e->out_index);
	uint32_t *used = malloc((e->nnames + 1) * sizeof *used);
	if (!e->out_index || !used) {
		free(used);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < e->nnames; i++)
		e->out_index[i] = NONE;
	uint32_t nfun = 0;
	for (size_t i = first_top; i < e->nnodes; i++) {
		uint32_t n = e->kids[i];
		if (!e->total[n] || (double)e->total[n] < floor_) {
			e->live[n] = 0;
			continue;
		}
		nfun++;
		mark(e, n);
	}
	size_t nused = 0;
	for (size_t i = 0; i < e->nnames; i++)
		if (e->out_index[i] != NONE)
			used[nused++] = (uint32_t)i;
	qsort_r(used, nused, sizeof *used, cmp_name, e);
	for (size_t i = 0; i < nused; i++)
		e->out_index[used[i]] = (uint32_t)i;

	put_u32(b, AFDO_MAGIC);
	put_u32(b, AFDO_VERSION);
	put_u32(b, 0);
	size_t at = section_begin(b, AFDO_TAG_NAMES);
	put_u32(b, (uint32_t)nused);
	for (size_t i = 0; i < nused; i++)
		put_string(b, e->names[used[i]]);
	section_end(b, at);
	free(used);

	at = section_begin(b, AFDO_TAG_FUNCTION);
	put_u32(b, nfun);
	for (size_t i = first_top; i < e->nnodes; i++) {
		uint32_t n = e->kids[i];
		if (!e->live[n])
			continue;
		put_counter(b, round_count(e->nodes[n].head));
		write_instance(e, n, b);
	}
	section_end(b, at);

	at = section_begin(b, AFDO_TAG_MODULE);
	put_u32(b, 0);
	section_end(b, at);
	return b->oom ? FDO_ENOMEM : FDO_OK;
}

static void emit_fini(struct emit *e)
{
	for (size_t i = 0; i < e->nnames; i++)
		free(e->names[i]);
	free(e->names);
	fdo_idset_fini(&e->name_set);
	free(e->name_of);
	free(e->nodes);
	free(e->pos);
	free(e->tgts);
	fdo_map128_fini(&e->keys);
	free(e->opos);
	free(e->otgts);
	free(e->node_first_pos);
	free(e->node_npos);
	free(e->kids);
	free(e->node_first_kid);
	free(e->node_nkids);
	free(e->total);
	free(e->live);
	free(e->out_index);
}

int emit_gcc(const struct prof *p, const struct prof_opts *o,
	     struct fdo_buf *out)
{
	struct prof_model m;
	int err = prof_model_build(
		p, o, o->llvm_discriminators ? PROF_MODEL_DECODE : 0, &m);
	if (err)
		return err;
	err = emit_gcc_model(p, o, &m, out);
	prof_model_fini(&m);
	return err;
}

int emit_gcc_model(const struct prof *p, const struct prof_opts *o,
		   const struct prof_model *m, struct fdo_buf *out)
{
	struct emit e;
	memset(&e, 0, sizeof e);
	e.p = p;
	e.o = o;
	fdo_idset_init(&e.name_set, name_key, &e);
	int err;
	size_t start = out->len;
	e.name_of = malloc((p->nstrings + 1) * sizeof *e.name_of);
	if (!e.name_of)
		return FDO_ENOMEM;
	for (size_t i = 0; i < p->nstrings; i++)
		e.name_of[i] = NONE;
	err = add_model(&e, m);
	if (!err)
		err = fold(&e);
	if (!err)
		err = tree(&e);
	if (!err)
		err = write_file(&e, out);
	emit_fini(&e);
	if (err && !out->oom)
		out->len = start;
	return err;
}
