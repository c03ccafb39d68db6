/*
 * aggregator/model.c — the inline tree of a compile-time sample profile
 * (struct prof_model, aggregator/profile.h), built once from a prof; the
 * llvm and gcc emitters only write it.
 *
 * Where body counts come from (prof_opts.counts):
 *  - blocks: the inferred execution count of each instruction's
 *    block (aggregator/blocks.c), for every instruction of a function whose
 *    control-flow graph was built. A line's count is the largest count
 *    among its instructions, each multiplied by the duplication factor
 *    clang encoded in its discriminator (an unrolled copy runs 1/factor as
 *    often), as AutoFDO does with counts from branch records: clang's
 *    sample loader then takes a block's weight as the largest count of its
 *    lines. Lines whose instructions ran 0 times are kept with count 0 (a
 *    known cold line), and instructions on line 0 still count, through
 *    their block. Functions without a graph (undecodable code, no
 *    executable) fall back to the samples rule below.
 *  - samples: the leaf samples on each line (line_count=sum|max|mean;
 *    docs/profile-quality.md has the measurements; mean divides a line's
 *    samples by its sampled addresses, then rescales every line by one
 *    factor so the lines keep the samples' total).
 * In both, every line count is finally scaled so that the lines add up to
 * the leaf samples they stand for (heads and call targets from blocks
 * likewise), so a profile mixing the two rules has one unit.
 *
 * Call targets: a call instruction with a block count gets that count,
 * shared among its callees as the stacks saw them (an indirect call), or
 * given to its direct callee when no stack passed there; in functions
 * without blocks, a call site gets the count of the stacks through it
 * (time spent below the call, not calls). The callee is the outermost
 * frame of the called location. All of it comes from the profile's
 * caller->callee pairs of locations (prof_reduce), where a stack counts
 * once per pair, so recursion through one call site does not multiply it;
 * a stack that reaches one callee function through two different pairs
 * (a recursive function's own call site and the leaf inside it, two call
 * addresses on one line) counts once per pair: docs/scale.md.
 *
 * Heads (head=entry|stacks): entry (default) is the count of the
 * function's entry block when it has blocks, else the count of its entry
 * line (offset 0, no discriminator); stacks adds up the pairs into the
 * function's locations (llvm-profgen's way from LBR calls; it counts time
 * below the call, so a function entered once that loops long gets a head
 * as large as its body).
 *
 * Locations whose chain has a frame on line 0 or a name clang cannot read
 * back (empty, or with blanks) are skipped (samples mode) and counted in
 * skipped_line0; unsymbolized ones in skipped_unsym.
 *
 * Workload: leaves and pairs (not stacks: a pull costs what the profile
 * holds), up to millions of instructions of sampled
 * functions, thousands of distinct lines; one hash table maps (parent,
 * offset, discriminator, name) to nodes, (node, offset, discriminator) to
 * lines and (line, name) to targets.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define NONE UINT32_MAX

/* ---------------------------------------------------- discriminators -- */

/* LLVM's prefix encoding of one component (getUnsignedFromPrefixEncoding). */
static uint32_t prefix_decode(uint32_t u)
{
	if (u & 1)
		return 0;
	u >>= 1;
	if (u & 0x20)
		return ((u >> 1) & 0xfe0) | (u & 0x1f);
	return u & 0x1f;
}

uint32_t prof_base_discriminator(uint32_t d)
{
	return prefix_decode(d);
}

uint32_t prof_duplication_factor(uint32_t d)
{
	/* getNextComponentInDiscriminator, then the prefix encoding. */
	uint32_t next = (d & 1) ? d >> 1 : d >> ((d & 0x40) ? 14 : 7);
	uint32_t f = prefix_decode(next);
	return f ? f : 1;
}

/* ---------------------------------------------------------- builder -- */

struct node {
	uint32_t parent, off, disc, name;
	uint64_t checksum; /* probe-based */
};

struct rec {
	uint32_t node, off, disc;
	uint32_t naddr;	     /* distinct sampled addresses placed on it */
	uint32_t last_block; /* the block that last added (blocks mode) */
	double count;
	double samples; /* leaf samples placed on it (samples mode) */
	int known;
};

struct tgt {
	uint32_t rec, name;
	double count;
	int blocks; /* counted from block counts (the lines' unit) */
};

/* Caller->callee pairs through a call instruction (blocks mode). */
struct site {
	uint32_t insn, name;
	double count;
};

#define MEMO_SLOTS 64

struct mb {
	const struct prof *p;
	const struct prof_opts *o;
	int decode;
	int probes; /* probe-based (PROF_MODEL_PROBES and probes) */
	struct fdo_map64 call_rec; /* probe-based: call insn + 1 -> record */
	struct node *nodes;
	size_t nnodes, cap_nodes;
	struct rec *recs;
	size_t nrecs, cap_recs;
	struct tgt *tgts;
	size_t ntgts, cap_tgts;
	struct site *sites;
	size_t nsites, cap_sites;
	struct fdo_map128 node_map, rec_map;
	/* two words as one ((a << 32 | b) + 1: pair_key): 12 bytes a slot,
	 * not a 4-word key's 20 (131-262 k entries on a big profile) */
	struct fdo_map64 tgt_map, site_map;
	double *head;	      /* per string: head from the pairs */
	double *entry;	      /* per string: entry block count, or -1 */
	uint8_t *name_state;  /* per string: 0 not seen, 1 usable, 2 not */
	uint32_t *loc_rec;    /* per location: its record, or LOC_* */
	uint32_t *loc_insn;   /* per location: its instruction in a function
				 with blocks, or NONE */
	double placed_blocks; /* leaf samples in functions with blocks */
	double skipped_unsym, skipped_line0;
	/* add_edge's last entries for the callee function it is on (pairs
	 * come by callee location, and the locations of one function by
	 * address, so its few call sites recur pair after pair): site or
	 * line record -> site or target, direct-mapped */
	uint32_t memo_name;
	struct memo {
		uint32_t key, val;
	} memo_site[MEMO_SLOTS], memo_tgt[MEMO_SLOTS];
};

static uint32_t frame_off(const struct prof_frame *f)
{
	return (f->line - f->start_line) & 0xffff;
}

static uint32_t frame_disc(const struct mb *b, const struct prof_frame *f)
{
	return b->decode ? prof_base_discriminator(f->discriminator)
			 : f->discriminator;
}

/* A name clang's text reader can take back: not empty, no blanks. */
static int name_ok(struct mb *b, uint32_t i)
{
	if (i >= b->p->nstrings)
		return 0;
	if (!b->name_state[i]) {
		const char *s = b->p->strings[i];
		b->name_state[i] = *s && !strpbrk(s, " \t\r\n") ? 1 : 2;
	}
	return b->name_state[i] == 1;
}

static uint32_t node_get(struct mb *b, uint32_t parent, uint32_t off,
			 uint32_t disc, uint32_t name)
{
	uint32_t k[4] = {parent, off, disc, name}, i;
	int found;
	/* Room first, so the map never holds an index past the end. */
	if (fdo_grow(b->nodes, b->cap_nodes, b->nnodes + 1) ||
	    fdo_map128_put(&b->node_map, k, (uint32_t)b->nnodes, &i, &found))
		return NONE;
	if (!found)
		b->nodes[b->nnodes++] =
			(struct node){parent, off, disc, name, 0};
	return i;
}

static uint32_t rec_get(struct mb *b, uint32_t node, uint32_t off,
			uint32_t disc)
{
	uint32_t k[4] = {node, off, disc, 0}, i;
	int found;
	if (fdo_grow(b->recs, b->cap_recs, b->nrecs + 1) ||
	    fdo_map128_put(&b->rec_map, k, (uint32_t)b->nrecs, &i, &found))
		return NONE;
	if (!found)
		b->recs[b->nrecs++] =
			(struct rec){node, off, disc, 0, NONE, 0, 0, 0};
	return i;
}

/* (a, b) as a key of a fdo_map64; 0 (not a key) only for two NONEs. */
static uint64_t pair_key(uint32_t a, uint32_t b)
{
	return ((uint64_t)a << 32 | b) + 1;
}

static uint32_t tgt_get(struct mb *b, uint32_t rec, uint32_t name)
{
	uint64_t k = pair_key(rec, name);
	uint32_t i;
	int found;
	if (!k || fdo_grow(b->tgts, b->cap_tgts, b->ntgts + 1) ||
	    fdo_map64_put(&b->tgt_map, k, (uint32_t)b->ntgts, &i, &found))
		return NONE;
	if (!found)
		b->tgts[b->ntgts++] = (struct tgt){rec, name, 0, 0};
	return i;
}

static uint32_t site_get(struct mb *b, uint32_t insn, uint32_t name)
{
	uint64_t k = pair_key(insn, name);
	uint32_t i;
	int found;
	if (!k || fdo_grow(b->sites, b->cap_sites, b->nsites + 1) ||
	    fdo_map64_put(&b->site_map, k, (uint32_t)b->nsites, &i, &found))
		return NONE;
	if (!found)
		b->sites[b->nsites++] = (struct site){insn, name, 0};
	return i;
}

enum { PLACE_OK, PLACE_UNSYM, PLACE_LINE0, PLACE_NOMEM };

/* loc_rec values besides record indices. */
#define LOC_UNSET NONE
#define LOC_UNSYM (NONE - 1)
#define LOC_LINE0 (NONE - 2)

/*
 * place_chain finds the line record of the inline chain f[0..n) (innermost
 * first), walked from the outermost frame in, creating instances on the
 * way.
 */
static int place_chain(struct mb *b, const struct prof_frame *f, uint32_t n,
		       uint32_t *rec)
{
	if (!n)
		return PLACE_UNSYM;
	for (uint32_t k = 0; k < n; k++)
		if (!f[k].line || !name_ok(b, f[k].function))
			return PLACE_LINE0;
	uint32_t node = node_get(b, NONE, 0, 0, f[n - 1].function);
	for (uint32_t k = n - 1; k >= 1 && node != NONE; k--)
		node = node_get(b, node, frame_off(&f[k]), frame_disc(b, &f[k]),
				f[k - 1].function);
	if (node == NONE)
		return PLACE_NOMEM;
	*rec = rec_get(b, node, frame_off(&f[0]), frame_disc(b, &f[0]));
	if (*rec == NONE || *rec >= LOC_LINE0)
		return PLACE_NOMEM;
	return PLACE_OK;
}

/* place: place_chain of location li, remembered per location (call sites
 * recur in most stacks). */
static int place(struct mb *b, uint32_t li, uint32_t *rec)
{
	uint32_t memo = b->loc_rec[li];
	if (memo == LOC_UNSYM)
		return PLACE_UNSYM;
	if (memo == LOC_LINE0)
		return PLACE_LINE0;
	if (memo != LOC_UNSET) {
		*rec = memo;
		return PLACE_OK;
	}
	const struct prof_loc *l = &b->p->locs[li];
	int rc = place_chain(b, &b->p->frames[l->first_frame], l->nframes, rec);
	if (rc == PLACE_OK)
		b->loc_rec[li] = *rec;
	else if (rc != PLACE_NOMEM)
		b->loc_rec[li] = rc == PLACE_UNSYM ? LOC_UNSYM : LOC_LINE0;
	return rc;
}

/* The outermost frame's name of location l, or NONE. */
static uint32_t callee_name(struct mb *b, const struct prof_loc *l)
{
	if (!l->nframes)
		return NONE;
	uint32_t name = b->p->frames[l->first_frame + l->nframes - 1].function;
	return name_ok(b, name) ? name : NONE;
}

/* The memo's value for key (NONE: not there). */
static uint32_t memo_get(const struct memo *m, uint32_t key)
{
	const struct memo *e = &m[key % MEMO_SLOTS];
	return e->key == key ? e->val : NONE;
}

static void memo_put(struct memo *m, uint32_t key, uint32_t val)
{
	m[key % MEMO_SLOTS] = (struct memo){key, val};
}

/* One caller->callee pair: site called the function of callee. */
static int add_edge(struct mb *b, const struct prof_loc *callee, uint32_t site,
		    double count)
{
	uint32_t name = callee_name(b, callee);
	if (name == NONE)
		return FDO_OK;
	if (name != b->memo_name) {
		b->memo_name = name;
		for (size_t k = 0; k < MEMO_SLOTS; k++)
			b->memo_site[k] = b->memo_tgt[k] =
				(struct memo){NONE, NONE};
	}
	b->head[name] += count;
	if (b->loc_insn[site] != NONE) {
		/* A call instruction with a block count: the pairs only
		 * say how its count splits among callees. */
		uint32_t insn = b->loc_insn[site];
		uint32_t i = memo_get(b->memo_site, insn);
		if (i == NONE) {
			if ((i = site_get(b, insn, name)) == NONE)
				return FDO_ENOMEM;
			memo_put(b->memo_site, insn, i);
		}
		b->sites[i].count += count;
		return FDO_OK;
	}
	if (b->probes)
		return FDO_OK; /* a call site without a probe has no place */
	uint32_t rec;
	int rc = place(b, site, &rec);
	if (rc == PLACE_NOMEM)
		return FDO_ENOMEM;
	if (rc != PLACE_OK)
		return FDO_OK;
	uint32_t t = memo_get(b->memo_tgt, rec);
	if (t == NONE) {
		if ((t = tgt_get(b, rec, name)) == NONE)
			return FDO_ENOMEM;
		memo_put(b->memo_tgt, rec, t);
	}
	b->tgts[t].count += count;
	return FDO_OK;
}

/* Leaf locations ordered by address, so one address counts once. */
static int cmp_loc_addr(const void *x, const void *y, void *arg)
{
	const struct prof *p = arg;
	const struct prof_loc *a = &p->locs[*(const uint32_t *)x];
	const struct prof_loc *c = &p->locs[*(const uint32_t *)y];
	if (a->build_id != c->build_id)
		return a->build_id < c->build_id ? -1 : 1;
	if (a->offset != c->offset)
		return a->offset < c->offset ? -1 : 1;
	return 0;
}

/* Leaf samples of locations without blocks, by the line rule. */
static int add_leaves(struct mb *b, const double *leaf)
{
	const struct prof *p = b->p;
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
		if (b->loc_insn[idx[i]] != NONE) {
			b->placed_blocks += c; /* its blocks stand for it */
			i = j;
			continue;
		}
		if (b->probes) {
			/* no probe counts for it: it cannot be placed */
			b->skipped_unsym += c;
			i = j;
			continue;
		}
		switch (place(b, idx[i], &rec)) {
		case PLACE_OK: {
			struct rec *r = &b->recs[rec];
			r->count = b->o->line_count == PROF_LINE_MAX
					   ? fmax(r->count, c)
					   : r->count + c;
			r->samples += c;
			r->naddr++;
			r->known = 1;

			break;
		}
		case PLACE_UNSYM:
			b->skipped_unsym += c;
			break;
		case PLACE_LINE0:
			b->skipped_line0 += c;
			break;
		default:
			rc = FDO_ENOMEM;
		}
		i = j;
	}
	free(idx);
	if (rc || b->o->line_count != PROF_LINE_MEAN)
		return rc;
	/* mean: per address, rescaled so the lines keep the sum's total. */
	double before = 0, after = 0;
	for (size_t i = 0; i < b->nrecs; i++) {
		struct rec *r = &b->recs[i];
		if (!r->naddr)
			continue;
		before += r->count;
		r->count /= r->naddr;
		after += r->count;
	}
	double scale = after > 0 ? before / after : 1;
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].naddr)
			b->recs[i].count *= scale;
	return FDO_OK;
}

/* ----------------------------------------------------- blocks mode -- */

/* The instruction of p->insns containing (build_id, vaddr), or NONE; for
 * a caller frame vaddr is inside the call (return address - 1). */
static uint32_t insn_at(const struct prof *p, uint32_t bid, uint64_t vaddr)
{
	size_t lo = 0, hi = p->ninsns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct prof_insn *in = &p->insns[mid];
		uint32_t mb =
			p->blocks[in->block].func < p->nfuncs
				? p->funcs[p->blocks[in->block].func].build_id
				: NONE;
		if (mb < bid || (mb == bid && in->vaddr <= vaddr))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NONE;
	const struct prof_insn *in = &p->insns[lo - 1];
	const struct prof_block *bl = &p->blocks[in->block];
	const struct prof_func *fn = &p->funcs[bl->func];
	if (fn->build_id != bid || fn->status != FDO_OK)
		return NONE;
	/* Inside this instruction: below the next one, or its block's end. */
	uint64_t end = lo < p->ninsns && p->insns[lo].block == in->block
			       ? p->insns[lo].vaddr
			       : bl->end;
	return vaddr < end ? (uint32_t)(lo - 1) : NONE;
}

/* Which locations fall in a function with blocks. */
static void map_locations(struct mb *b)
{
	const struct prof *p = b->p;
	for (size_t i = 0; i < p->nlocs; i++) {
		const struct prof_loc *l = &p->locs[i];
		b->loc_insn[i] = p->ninsns && l->vaddr != UINT64_MAX
					 ? insn_at(p, l->build_id, l->vaddr)
					 : NONE;
	}
}

/* Line counts from block counts; entry counts per function name. */
static int add_blocks(struct mb *b)
{
	const struct prof *p = b->p;
	for (size_t i = 0; i < p->ninsns; i++) {
		const struct prof_insn *in = &p->insns[i];
		if (in->block >= p->nblocks ||
		    (size_t)in->first_frame + in->nframes > p->nframes)
			return FDO_EINVAL;
		const struct prof_block *bl = &p->blocks[in->block];
		if (bl->func >= p->nfuncs || p->funcs[bl->func].status)
			continue;
		const struct prof_frame *f = &p->frames[in->first_frame];
		/* The function's entry: its head. */
		if (in->vaddr == p->funcs[bl->func].addr && in->nframes) {
			uint32_t name = f[in->nframes - 1].function;
			if (name < p->nstrings && name_ok(b, name))
				b->entry[name] =
					fmax(b->entry[name], 0) + bl->count;
		}
		uint32_t rec;
		int rc = place_chain(b, f, in->nframes, &rec);
		if (rc == PLACE_NOMEM)
			return FDO_ENOMEM;
		if (rc != PLACE_OK)
			continue;
		struct rec *r = &b->recs[rec];
		double c = bl->count * (b->decode ? prof_duplication_factor(
							    f[0].discriminator)
						  : 1);
		r->count = fmax(r->count, c);
		r->known = 1;
		r->last_block = in->block;
	}
	return FDO_OK;
}

/*
 * Probe-based: each probe's count is its block's, summed over the copies
 * of one probe in distinct blocks (code duplicated after the probes were
 * placed runs its copies' counts in total), keyed by its inline context
 * and index. Call probes remember their record for the call targets.
 */
static int add_probes(struct mb *b)
{
	const struct prof *p = b->p;
	uint32_t *node_of =
		malloc((p->npctxs ? p->npctxs : 1) * sizeof *node_of);
	if (!node_of)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	/* Contexts come parents first: one pass makes the nodes. */
	for (size_t i = 0; i < p->npctxs && !rc; i++) {
		const struct prof_pctx *c = &p->pctxs[i];
		uint32_t parent = c->parent == PROF_NONE ? NONE
				  : c->parent < i	 ? node_of[c->parent]
							 : NONE - 1;
		node_of[i] = NONE;
		if (parent == NONE - 1 || !name_ok(b, c->name) ||
		    (c->parent != PROF_NONE && parent == NONE))
			continue;
		uint32_t n = node_get(b, parent, parent == NONE ? 0 : c->site,
				      0, c->name);
		if (n == NONE) {
			rc = FDO_ENOMEM;
			break;
		}
		b->nodes[n].checksum = c->checksum;
		node_of[i] = n;
	}
	for (size_t i = 0; i < p->nprobes && !rc; i++) {
		const struct prof_probe *pr = &p->probes[i];
		if (pr->ctx >= p->npctxs || pr->block >= p->nblocks) {
			rc = FDO_EINVAL;
			break;
		}
		uint32_t n = node_of[pr->ctx];
		if (n == NONE)
			continue;
		uint32_t rec = rec_get(b, n, pr->index, 0);
		if (rec == NONE) {
			rc = FDO_ENOMEM;
			break;
		}
		struct rec *r = &b->recs[rec];
		if (r->last_block != pr->block)
			r->count += p->blocks[pr->block].count;
		r->last_block = pr->block;
		r->known = 1;
		if (pr->type == PROF_PROBE_DCALL ||
		    pr->type == PROF_PROBE_ICALL) {
			uint32_t in = insn_at(
				p, p->funcs[p->blocks[pr->block].func].build_id,
				pr->vaddr);
			uint32_t old;
			int found;
			if (in != NONE &&
			    fdo_map64_put(&b->call_rec, (uint64_t)in + 1, rec,
					  &old, &found))
				rc = FDO_ENOMEM;
		}
	}
	free(node_of);
	return rc;
}

/* The record a call's targets go on: its call probe's (probe-based), or
 * its line's. NONE when it has none; PLACE_NOMEM as NONE - 1. */
static uint32_t call_record(struct mb *b, uint32_t insn)
{
	const struct prof_insn *in = &b->p->insns[insn];
	uint32_t rec;
	if (b->probes)
		return fdo_map64_get(&b->call_rec, (uint64_t)insn + 1, &rec)
			       ? rec
			       : NONE;
	int pr = place_chain(b, &b->p->frames[in->first_frame], in->nframes,
			     &rec);
	return pr == PLACE_OK ? rec : pr == PLACE_NOMEM ? NONE - 1 : NONE;
}

/* call_record, remembered per instruction in memo (0: not asked yet,
 * else the answer + 1): a call instruction recurs once per callee the
 * stacks saw, and a repeated place_chain only finds what its first call
 * made, so the answers and the records made are the same. */
static uint32_t call_record_memo(struct mb *b, uint32_t *memo, uint32_t insn)
{
	if (memo[insn])
		return memo[insn] - 1;
	uint32_t rec = call_record(b, insn);
	if (rec != NONE - 1)
		memo[insn] = rec + 1;
	return rec;
}

/* Call targets of call instructions with block counts. */
static int add_block_calls(struct mb *b)
{
	const struct prof *p = b->p;
	/* Per instruction: the stacks' total through it. */
	double *through = calloc(p->ninsns ? p->ninsns : 1, sizeof *through);
	uint32_t *memo = calloc(p->ninsns ? p->ninsns : 1, sizeof *memo);
	if (!through || !memo) {
		free(through);
		free(memo);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < b->nsites; i++)
		through[b->sites[i].insn] += b->sites[i].count;
	int rc = FDO_OK;
	/* Exact call counts (branch records) go on as they are. */
	for (size_t i = 0; i < p->ncalls && !rc; i++) {
		const struct prof_call *c = &p->calls[i];
		if (c->insn >= p->ninsns || !name_ok(b, c->callee))
			continue;
		through[c->insn] += c->count;
		uint32_t rec = call_record_memo(b, memo, c->insn);
		if (rec == NONE - 1)
			rc = FDO_ENOMEM;
		if (rec >= NONE - 1 || !(c->count > 0))
			continue;
		uint32_t t = tgt_get(b, rec, c->callee);
		if (t == NONE) {
			rc = FDO_ENOMEM;
		} else {
			b->tgts[t].count += c->count;
			b->tgts[t].blocks = 1;
		}
	}
	/* Shared among the callees the stacks saw... */
	for (size_t i = 0; i < b->nsites && !rc; i++) {
		const struct site *s = &b->sites[i];
		const struct prof_insn *in = &p->insns[s->insn];
		double c = p->blocks[in->block].count * s->count /
			   through[s->insn];
		uint32_t rec = call_record_memo(b, memo, s->insn);
		if (rec == NONE - 1)
			rc = FDO_ENOMEM;
		if (rec >= NONE - 1 || !(c > 0))
			continue;
		uint32_t t = tgt_get(b, rec, s->name);
		if (t == NONE) {
			rc = FDO_ENOMEM;
		} else {
			b->tgts[t].count += c;
			b->tgts[t].blocks = 1;
		}
	}
	/* ... or given to the direct callee when no stack passed there. */
	for (size_t i = 0; i < p->ninsns && !rc; i++) {
		const struct prof_insn *in = &p->insns[i];
		const struct prof_block *bl = &p->blocks[in->block];
		if (in->kind != PROF_INSN_CALL || through[i] > 0 ||
		    in->callee == PROF_NONE || !name_ok(b, in->callee) ||
		    !(bl->count > 0) || p->funcs[bl->func].status)
			continue;
		uint32_t rec = call_record_memo(b, memo, (uint32_t)i);
		if (rec == NONE - 1)
			rc = FDO_ENOMEM;
		if (rec >= NONE - 1)
			continue;
		uint32_t t = tgt_get(b, rec, in->callee);
		if (t == NONE) {
			rc = FDO_ENOMEM;
		} else {
			b->tgts[t].count += bl->count;
			b->tgts[t].blocks = 1;
		}
	}
	free(through);
	free(memo);
	return rc;
}

/* ------------------------------------------------------- the output -- */

/* One layout for every builder of a model (this file's and
 * aggregator/stale.c's matched tree), so that both sort alike. */
struct lay {
	const struct prof *p;
	const struct prof_mnode *nodes;
	const struct prof_mline *lines;
	const struct prof_mtarget_at *tgts;
	const uint32_t *line_of;
};

static int cmp_name(const struct prof *p, uint32_t a, uint32_t c)
{
	return strcmp(prof_str(p, a), prof_str(p, c));
}

static int cmp_line(const void *x, const void *y, void *arg)
{
	const struct lay *l = arg;
	const struct prof_mline *a = &l->lines[*(const uint32_t *)x];
	const struct prof_mline *c = &l->lines[*(const uint32_t *)y];
	if (a->node != c->node)
		return a->node < c->node ? -1 : 1;
	if (a->off != c->off)
		return a->off < c->off ? -1 : 1;
	if (a->disc != c->disc)
		return a->disc < c->disc ? -1 : 1;
	return 0;
}

/* Kids by (parent, offset, discriminator, name); functions (parent NONE)
 * last, by name. */
static int cmp_node(const void *x, const void *y, void *arg)
{
	const struct lay *l = arg;
	const struct prof_mnode *a = &l->nodes[*(const uint32_t *)x];
	const struct prof_mnode *c = &l->nodes[*(const uint32_t *)y];
	if (a->parent != c->parent)
		return a->parent < c->parent ? -1 : 1;
	if (a->off != c->off)
		return a->off < c->off ? -1 : 1;
	if (a->disc != c->disc)
		return a->disc < c->disc ? -1 : 1;
	return cmp_name(l->p, a->name, c->name);
}

/* Each string's rank in strcmp order, equal strings ranked alike; rank[ns]
 * is ""'s (prof_str's string for PROF_NONE and indices past the end).
 * Comparing ranks gives strcmp's sign for every pair of names. */
static int cmp_str_at(const void *x, const void *y, void *arg)
{
	const char *const *s = arg;
	return strcmp(s[*(const uint32_t *)x], s[*(const uint32_t *)y]);
}

static uint32_t *name_ranks(const struct prof *p)
{
	size_t ns = p->nstrings;
	const char **s = malloc((ns + 1) * sizeof *s);
	uint32_t *ord = malloc((ns + 1) * sizeof *ord);
	uint32_t *rank = malloc((ns + 1) * sizeof *rank);
	if (s && ord && rank) {
		for (size_t i = 0; i <= ns; i++) {
			s[i] = prof_str(p, i < ns ? (uint32_t)i : PROF_NONE);
			ord[i] = (uint32_t)i;
		}
		qsort_r(ord, ns + 1, sizeof *ord, cmp_str_at, s);
		uint32_t r = 0;
		for (size_t i = 0; i <= ns; i++) {
			if (i && strcmp(s[ord[i - 1]], s[ord[i]]))
				r++;
			rank[ord[i]] = r;
		}
	} else {
		free(rank);
		rank = NULL;
	}
	free(s);
	free(ord);
	return rank;
}

/*
 * The targets by their line's position in the model, then by name:
 * keys (position, name rank) sorted least significant digit first,
 * which keeps equal keys (none while each string is interned once) in
 * index order, as glibc's merge sort of them over iota did. A qsort_r
 * through a comparator loading each target, its line and its name was
 * a visible part of an llvm or gcc pull; this reads each key once per
 * pass.
 */
static int order_targets(const struct prof *p,
			 const struct prof_mtarget_at *tgts, size_t n,
			 const uint32_t *line_of, uint32_t *order)
{
	uint32_t *rank = name_ranks(p);
	uint64_t *key = malloc((n ? n : 1) * sizeof *key);
	uint64_t *k2 = malloc((n ? n : 1) * sizeof *k2);
	uint32_t *o2 = malloc((n ? n : 1) * sizeof *o2);
	size_t *cnt = calloc((size_t)1 << 16, sizeof *cnt);
	int rc = rank && key && k2 && o2 && cnt ? FDO_OK : FDO_ENOMEM;
	uint64_t all = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		uint32_t name = tgts[i].name;
		uint32_t r = rank[name < p->nstrings ? name : p->nstrings];
		key[i] = (uint64_t)line_of[tgts[i].line] << 32 | r;
		order[i] = (uint32_t)i;
		all |= key[i];
	}
	for (unsigned sh = 0; !rc && sh < 64; sh += 16) {
		if (!(all >> sh & 0xffff))
			continue; /* every key's digit is 0: in order */
		memset(cnt, 0, ((size_t)1 << 16) * sizeof *cnt);
		for (size_t i = 0; i < n; i++)
			cnt[key[i] >> sh & 0xffff]++;
		size_t at = 0;
		for (size_t d = 0; d < ((size_t)1 << 16); d++) {
			size_t c = cnt[d];
			cnt[d] = at;
			at += c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t j = cnt[key[i] >> sh & 0xffff]++;
			k2[j] = key[i];
			o2[j] = order[i];
		}
		memcpy(key, k2, n * sizeof *key);
		memcpy(order, o2, n * sizeof *order);
	}
	free(rank);
	free(key);
	free(k2);
	free(o2);
	free(cnt);
	return rc;
}

static uint32_t *iota(size_t n)
{
	uint32_t *a = malloc((n ? n : 1) * sizeof *a);
	for (size_t i = 0; a && i < n; i++)
		a[i] = (uint32_t)i;
	return a;
}

int prof_model_layout(const struct prof *p, struct prof_model *m,
		      const struct prof_mline *lines, size_t nlines,
		      const struct prof_mtarget_at *tgts, size_t ntgts)
{
	uint32_t *recs = iota(nlines), *torder = iota(ntgts),
		 *nodes = iota(m->nnodes);
	uint32_t *line_of = malloc((nlines ? nlines : 1) * sizeof *line_of);
	m->lines = calloc(nlines ? nlines : 1, sizeof *m->lines);
	m->targets = calloc(ntgts ? ntgts : 1, sizeof *m->targets);
	m->kids = malloc((m->nnodes ? m->nnodes : 1) * sizeof *m->kids);
	m->functions =
		malloc((m->nnodes ? m->nnodes : 1) * sizeof *m->functions);
	struct lay l = {p, m->nodes, lines, tgts, line_of};
	int rc = FDO_ENOMEM;
	if (!recs || !torder || !nodes || !line_of || !m->lines ||
	    !m->targets || !m->kids || !m->functions)
		goto out;
	qsort_r(recs, nlines, sizeof *recs, cmp_line, &l);
	qsort_r(nodes, m->nnodes, sizeof *nodes, cmp_node, &l);
	/* Lines, grouped by node. */
	for (size_t i = 0; i < nlines; i++) {
		const struct prof_mline *r = &lines[recs[i]];
		line_of[recs[i]] = (uint32_t)i;
		m->lines[i] = (struct prof_mline){.node = r->node,
						  .off = r->off,
						  .disc = r->disc,
						  .count = r->count,
						  .known = r->known};
		struct prof_mnode *n = &m->nodes[r->node];
		if (!n->nlines)
			n->first_line = (uint32_t)i;
		n->nlines++;
	}
	m->nlines = nlines;
	/* Targets, grouped by line. */
	if ((rc = order_targets(p, tgts, ntgts, line_of, torder)))
		goto out;
	rc = FDO_ENOMEM;
	for (size_t i = 0; i < ntgts; i++) {
		const struct prof_mtarget_at *t = &tgts[torder[i]];
		m->targets[i] = (struct prof_mtarget){t->name, t->count};
		struct prof_mline *ml = &m->lines[line_of[t->line]];
		if (!ml->ntargets)
			ml->first_target = (uint32_t)i;
		ml->ntargets++;
	}
	m->ntargets = ntgts;
	/* Kids, grouped by parent; functions after them. */
	size_t nk = 0;
	for (size_t i = 0; i < m->nnodes; i++) {
		uint32_t ni = nodes[i];
		uint32_t parent = m->nodes[ni].parent;
		if (parent == NONE) {
			m->functions[m->nfunctions++] = ni;
			continue;
		}
		struct prof_mnode *pn = &m->nodes[parent];
		if (!pn->nkids)
			pn->first_kid = (uint32_t)nk;
		pn->nkids++;
		m->kids[nk++] = ni;
	}
	rc = FDO_OK;
out:
	free(recs);
	free(torder);
	free(nodes);
	free(line_of);
	return rc;
}

/* finish moves the builder's records into m (prof_model_layout). */
static int finish(struct mb *b, struct prof_model *m)
{
	const struct prof *p = b->p;
	m->nodes = calloc(b->nnodes ? b->nnodes : 1, sizeof *m->nodes);
	struct prof_mline *lines =
		malloc((b->nrecs ? b->nrecs : 1) * sizeof *lines);
	struct prof_mtarget_at *tgts =
		malloc((b->ntgts ? b->ntgts : 1) * sizeof *tgts);
	int rc = FDO_ENOMEM;
	if (!m->nodes || !lines || !tgts)
		goto out;
	m->nnodes = b->nnodes;
	for (size_t i = 0; i < b->nnodes; i++) {
		const struct node *n = &b->nodes[i];
		m->nodes[i] = (struct prof_mnode){.parent = n->parent,
						  .name = n->name,
						  .off = n->off,
						  .disc = n->disc,
						  .checksum = n->checksum};
		if (n->parent == NONE && n->name < p->nstrings) {
			int entry = b->o->head == PROF_HEAD_ENTRY;
			m->nodes[i].head = !entry ? b->head[n->name]
					   : b->entry[n->name] >= 0
						   ? b->entry[n->name]
						   : 0;
		}
	}
	for (size_t i = 0; i < b->nrecs; i++) {
		const struct rec *r = &b->recs[i];
		lines[i] = (struct prof_mline){.node = r->node,
					       .off = r->off,
					       .disc = r->disc,
					       .count = r->count,
					       .known = r->known};
	}
	for (size_t i = 0; i < b->ntgts; i++)
		tgts[i] = (struct prof_mtarget_at){
			b->tgts[i].rec, b->tgts[i].name, b->tgts[i].count};
	if ((rc = prof_model_layout(p, m, lines, b->nrecs, tgts, b->ntgts)))
		goto out;
	m->probes = b->probes;
	m->skipped_unsym = b->skipped_unsym;
	m->skipped_line0 = b->skipped_line0;
out:
	free(lines);
	free(tgts);
	return rc;
}

/*
 * With block counts, one unit for every count: the lines from blocks add
 * up to the samples that fell in those blocks (the lines placed by the
 * samples rule already count samples), and block-derived entries and call
 * targets move with them (stack-derived ones stay inclusive sample
 * counts).
 */
static void rescale(struct mb *b)
{
	double lines = 0;
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].last_block != NONE)
			lines += b->recs[i].count;
	if (!(lines > 0) || !(b->placed_blocks > 0))
		return;
	double f = b->placed_blocks / lines;
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].last_block != NONE)
			b->recs[i].count *= f;
	for (size_t i = 0; i < b->ntgts; i++)
		if (b->tgts[i].blocks)
			b->tgts[i].count *= f;
	for (size_t i = 0; i < b->p->nstrings; i++)
		if (b->entry[i] > 0)
			b->entry[i] *= f;
}

int prof_model_build(const struct prof *p, const struct prof_opts *o,
		     unsigned flags, struct prof_model *m)
{
	memset(m, 0, sizeof *m);
	struct mb b = {.p = p,
		       .o = o,
		       .decode = !!(flags & PROF_MODEL_DECODE),
		       .memo_name = NONE};
	size_t ns = p->nstrings ? p->nstrings : 1;
	size_t nl = p->nlocs ? p->nlocs : 1;
	double *leaf = calloc(nl, sizeof *leaf);
	b.head = calloc(ns, sizeof *b.head);
	b.entry = malloc(ns * sizeof *b.entry);
	b.name_state = calloc(ns, 1);
	b.loc_rec = malloc(nl * sizeof *b.loc_rec);
	b.loc_insn = malloc(nl * sizeof *b.loc_insn);
	int rc = leaf && b.head && b.entry && b.name_state && b.loc_rec &&
				 b.loc_insn
			 ? FDO_OK
			 : FDO_ENOMEM;
	for (size_t i = 0; !rc && i < ns; i++)
		b.entry[i] = -1;
	for (size_t i = 0; !rc && i < p->nlocs; i++) {
		const struct prof_loc *l = &p->locs[i];
		if ((size_t)l->first_frame + l->nframes > p->nframes)
			rc = FDO_EINVAL;
		b.loc_rec[i] = LOC_UNSET;
	}
	int blocks = o->counts == PROF_COUNTS_BLOCKS && p->ninsns;
	b.probes = blocks && p->nprobes && (flags & PROF_MODEL_PROBES);
	if (!rc) {
		if (blocks)
			map_locations(&b);
		else
			for (size_t i = 0; i < p->nlocs; i++)
				b.loc_insn[i] = NONE;
	}
	struct prof_reduced red = {0};
	if (!rc)
		rc = prof_reduced_get(p, &red);
	for (size_t i = 0; !rc && i < red.nleaves; i++) {
		if (red.leaves[i].loc >= p->nlocs)
			rc = FDO_EINVAL;
		else if (red.leaves[i].count > 0 &&
			 isfinite(red.leaves[i].count))
			leaf[red.leaves[i].loc] += red.leaves[i].count;
	}
	for (size_t i = 0; !rc && i < red.npairs; i++) {
		const struct prof_pair *pp = &red.pairs[i];
		if (pp->callee >= p->nlocs || pp->caller >= p->nlocs)
			rc = FDO_EINVAL;
		else if (pp->count > 0 && isfinite(pp->count))
			rc = add_edge(&b, &p->locs[pp->callee], pp->caller,
				      pp->count);
	}
	prof_reduced_fini(&red);
	if (!rc && blocks)
		rc = b.probes ? add_probes(&b) : add_blocks(&b);
	if (!rc)
		rc = add_leaves(&b, leaf);
	if (!rc && blocks)
		rc = add_block_calls(&b);
	if (!rc && blocks)
		rescale(&b);
	/* A function without an entry block: its entry line's count (one
	 * record per function has offset 0 and no discriminator); with
	 * probes, its entry probe's (index 1). */
	for (size_t i = 0; !rc && i < b.nrecs; i++) {
		const struct rec *r = &b.recs[i];
		const struct node *n = &b.nodes[r->node];
		if (n->parent == NONE && r->off == (b.probes ? 1u : 0u) &&
		    r->disc == 0 && b.entry[n->name] < 0)
			b.entry[n->name] = r->count;
	}
	if (!rc)
		rc = finish(&b, m);
	free(leaf);
	free(b.head);
	free(b.entry);
	free(b.name_state);
	free(b.loc_rec);
	free(b.loc_insn);
	free(b.nodes);
	free(b.recs);
	free(b.tgts);
	free(b.sites);
	fdo_map128_fini(&b.node_map);
	fdo_map128_fini(&b.rec_map);
	fdo_map64_fini(&b.tgt_map);
	fdo_map64_fini(&b.site_map);
	fdo_map64_fini(&b.call_rec);
	if (rc)
		prof_model_fini(m);
	return rc;
}

void prof_model_fini(struct prof_model *m)
{
	free(m->nodes);
	free(m->lines);
	free(m->targets);
	free(m->kids);
	free(m->functions);
	memset(m, 0, sizeof *m);
}
