/*
 * aggregator/emit_folded.c — a profile as collapsed ("folded") stacks, the
 * input of flamegraph.pl, inferno and speedscope.
 *
 * Grammar:
 *
 *   profile = { line }
 *   line    = frame { ";" frame } " " COUNT NL
 *   frame   = NAME | "[" BUILDID12 "+0x" HEXOFFSET "]"
 *
 * Choices:
 *  - Frames go outermost first (the root of the flame graph on the left).
 *    Each location expands to its inline chain, the function it was
 *    compiled into first, then the functions inlined into it.
 *  - NAME is the linkage name (no demangling: the tools demangle, and a
 *    mangled name has no ';' or blank to escape). A ';' or a line break in
 *    a name would split a frame, so they become '_'.
 *  - A location without frames (not symbolized, or outside the binary's
 *    symbols) is `[<first 12 hex digits of its build-id>+0x<file offset>]`,
 *    so one unknown address stays one frame and tells where to look. A
 *    frame without a function name is the same.
 *  - Stacks that print the same are merged; counts are summed as doubles
 *    and rounded once; lines that round to 0 are dropped. Lines are sorted
 *    bytewise, so the same profile gives the same bytes.
 *  - No options of its own (prof_opts is not read).
 *
 * Workload: millions of stacks of tens of frames, far fewer distinct
 * printed stacks; each stack is printed once into a scratch buffer and
 * hashed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

/* A distinct printed stack: bytes [off, off+len) of the text arena. */
struct fstack {
	size_t off, len;
	double count;
};

struct folded {
	struct fdo_buf text; /* every distinct stack, back to back */
	struct fstack *v;
	size_t n, cap;
	struct fdo_idset set; /* printed stack -> index into v */
};

static const void *stack_key(const void *ctx, uint32_t id, size_t *len)
{
	const struct folded *f = ctx;
	*len = f->v[id].len;
	return f->text.data + f->v[id].off;
}

/* add merges the stack printed in line[0..len) with count. */
static int add(struct folded *f, const char *line, size_t len, double count)
{
	uint32_t id;
	if (fdo_idset_get(&f->set, line, len, &id)) {
		f->v[id].count += count;
		return FDO_OK;
	}
	if (fdo_grow(f->v, f->cap, f->n + 1))
		return FDO_ENOMEM;
	size_t off = f->text.len;
	fdo_buf_append(&f->text, line, len);
	if (f->text.oom)
		return FDO_ENOMEM;
	f->v[f->n] = (struct fstack){off, len, count};
	if (fdo_idset_add(&f->set, line, len, (uint32_t)f->n))
		return FDO_ENOMEM;
	f->n++;
	return FDO_OK;
}

static void put_unknown(const struct prof *p, const struct prof_loc *l,
			struct fdo_buf *b)
{
	const char *hex = l->build_id < p->nbuild_ids
				  ? p->build_ids[l->build_id].hex
				  : "";
	fdo_buf_printf(b, "[%.12s+0x%llx]", hex, (unsigned long long)l->offset);
}

static void put_name(const char *s, struct fdo_buf *b)
{
	for (; *s; s++)
		fdo_buf_putc(b,
			     *s == ';' || *s == '\n' || *s == '\r' ? '_' : *s);
}

/* print_stack writes the frames of stack st, outermost first, into b. */
static void print_stack(const struct prof *p, const struct prof_stack *st,
			struct fdo_buf *b)
{
	const uint32_t *sl = &p->stack_locs[st->first_loc];
	int first = 1;
	for (uint32_t i = st->nlocs; i-- > 0;) {
		const struct prof_loc *l = &p->locs[sl[i]];
		if (!l->nframes) {
			if (!first)
				fdo_buf_putc(b, ';');
			first = 0;
			put_unknown(p, l, b);
			continue;
		}
		for (uint32_t k = l->nframes; k-- > 0;) {
			const char *name = prof_str(
				p, p->frames[l->first_frame + k].function);
			if (!first)
				fdo_buf_putc(b, ';');
			first = 0;
			if (*name)
				put_name(name, b);
			else
				put_unknown(p, l, b);
		}
	}
}

static int cmp_line(const void *a, const void *b, void *arg)
{
	const struct folded *f = arg;
	const struct fstack *x = &f->v[*(const uint32_t *)a];
	const struct fstack *y = &f->v[*(const uint32_t *)b];
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(f->text.data + x->off, f->text.data + y->off, n);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

int emit_folded(const struct prof *p, const struct prof_opts *o,
		struct fdo_buf *out)
{
	struct folded f = {0};
	struct fdo_buf line;
	fdo_buf_init(&f.text);
	fdo_idset_init(&f.set, stack_key, &f);
	fdo_buf_init(&line);
	int rc = FDO_OK;
	for (size_t s = 0; s < p->nstacks && !rc; s++) {
		const struct prof_stack *st = &p->stacks[s];
		if (!st->nlocs || !(st->count > 0))
			continue;
		fdo_buf_reset(&line);
		print_stack(p, st, &line);
		rc = line.oom ? FDO_ENOMEM
			      : add(&f, line.data, line.len, st->count);
	}
	uint32_t *order = NULL;
	if (!rc && !(order = malloc((f.n ? f.n : 1) * sizeof *order)))
		rc = FDO_ENOMEM;
	if (!rc) {
		for (size_t i = 0; i < f.n; i++)
			order[i] = (uint32_t)i;
		qsort_r(order, f.n, sizeof *order, cmp_line, &f);
		for (size_t i = 0; i < f.n; i++) {
			const struct fstack *s = &f.v[order[i]];
			unsigned long long c =
				(unsigned long long)llround(s->count);
			if (!c)
				continue;
			fdo_buf_append(out, f.text.data + s->off, s->len);
			fdo_buf_printf(out, " %llu\n", c);
		}
		rc = out->oom ? FDO_ENOMEM : FDO_OK;
	}
	free(order);
	free(f.v);
	fdo_idset_fini(&f.set);
	fdo_buf_fini(&f.text);
	fdo_buf_fini(&line);
	return rc;
}
