/*
 * aggregator/prep.c — a SampleBatch becomes a `prep`: validated,
 * every address normalized to (mapping, file offset), every stack hashed to
 * its stack id; and the prep's write-ahead-log record codec.
 *
 * Runs on the submitter threads, in parallel, with no store access: this is
 * where per-frame work happens, so the single WAL writer and the merger only
 * see stack ids. Non-leaf frames are return addresses: they are stored as
 * offset - 1, the last byte of the call instruction, so symbolization never
 * needs to know a frame's position in its stack.
 *
 * WAL record payload (all integers big-endian):
 *   OFFSET SIZE DESCRIPTION
 *   0      1    format (1)
 *   1      ...  agent, binary, host, labels: each u16 length + bytes
 *   .      8    seq
 *   .      4    bucket (unix seconds)
 *   .      8    time_end (unix seconds)
 *   .      8    period
 *   .      8    wq = round(weight x WIRE_WEIGHT_SCALE)
 *   .      2    M mappings, then each: u8 length + build-id bytes,
 *               u8 1 when the mapped file's name is the binary's name
 *   .      4    S stacks, then each:
 *               8 stack id, 8 samples, 2 frame count F (0 = an earlier
 *               record holds this stack's frames), F x (2 mapping, 8 offset)
 *   .      4    B branches, then each: 2 mapping, 8 from, 8 to, 8 samples
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"

#define PREP_FORMAT 1

void prep_free(struct prep *p)
{
	if (!p)
		return;
	free(p->agent);
	free(p->binary);
	free(p->host);
	free(p->labels);
	free(p->maps);
	free(p->frames);
	free(p->stacks);
	free(p->branches);
	free(p);
}

/* Mapping lookup: batch mappings sorted by start. */
struct map_ref {
	uint64_t start, limit, file_offset;
	uint32_t index;
};

static int map_ref_cmp(const void *a, const void *b)
{
	const struct map_ref *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static const struct map_ref *map_find(const struct map_ref *refs, size_t n,
				      uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (refs[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct map_ref *m = &refs[lo - 1];
	return addr < m->limit ? m : NULL;
}

static int canon_labels(const Fdod__SampleBatch *b, char *out, size_t cap,
			struct agg_result *res)
{
	char **kv = calloc(b->n_labels ? b->n_labels : 1, sizeof *kv);
	if (!kv)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	for (size_t i = 0; i < b->n_labels && !rc; i++) {
		size_t kl = strlen(b->labels[i]->key),
		       vl = strlen(b->labels[i]->value);
		if (!(kv[i] = malloc(kl + vl + 2))) {
			rc = FDO_ENOMEM;
			break;
		}
		memcpy(kv[i], b->labels[i]->key, kl);
		kv[i][kl] = '=';
		memcpy(kv[i] + kl + 1, b->labels[i]->value, vl + 1);
	}
	size_t len;
	if (!rc)
		rc = store_labelset_canon((const char *const *)kv, b->n_labels,
					  out, cap, &len);
	for (size_t i = 0; i < b->n_labels; i++)
		free(kv[i]);
	free(kv);
	if (rc && rc != FDO_ENOMEM)
		snprintf(res->message, sizeof res->message, "labels: %s",
			 fdo_strerror(rc));
	return rc;
}

int prep_build(const Fdod__SampleBatch *b, const struct wire_limits *limits,
	       uint32_t bucket_seconds, struct prep **out,
	       struct agg_result *res)
{
	int rc = wire_batch_validate(b, limits, res->message,
				     sizeof res->message);
	if (rc)
		return rc;
	char labels[2048];
	if ((rc = canon_labels(b, labels, sizeof labels, res)))
		return rc;
	struct prep *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	p->seq = b->seq;
	p->time_end = b->time_end;
	p->period = b->period;
	uint64_t t = b->time_start ? b->time_start : b->time_end;
	p->bucket = (uint32_t)(t / bucket_seconds * bucket_seconds);
	p->agent = strdup(b->agent_id);
	p->binary = strdup(b->binary);
	p->host = strdup(b->host);
	p->labels = strdup(labels);
	p->nmaps = b->n_mappings;
	p->maps = calloc(p->nmaps ? p->nmaps : 1, sizeof *p->maps);
	struct map_ref *refs = calloc(p->nmaps ? p->nmaps : 1, sizeof *refs);
	size_t total = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		total += b->stacks[i]->n_addrs;
	p->frames = malloc((total ? total : 1) * sizeof *p->frames);
	p->stacks = malloc((b->n_stacks ? b->n_stacks : 1) * sizeof *p->stacks);
	p->branches = malloc((b->n_branches ? b->n_branches : 1) *
			     sizeof *p->branches);
	struct store_hframe *hf =
		malloc((limits->max_stack_depth ? limits->max_stack_depth : 1) *
		       sizeof *hf);
	rc = FDO_ENOMEM;
	if (!p->agent || !p->binary || !p->host || !p->labels || !p->maps ||
	    !refs || !p->frames || !p->stacks || !p->branches || !hf)
		goto fail;
	if ((rc = wire_weight_quantize(b->weight, &p->wq)))
		goto fail;
	for (size_t i = 0; i < p->nmaps; i++) {
		const Fdod__Mapping *m = b->mappings[i];
		memcpy(p->maps[i].build_id, m->build_id.data, m->build_id.len);
		p->maps[i].build_id_len = (uint8_t)m->build_id.len;
		const char *base = strrchr(m->path, '/');
		p->maps[i].main = !strcmp(base ? base + 1 : m->path, b->binary);
		p->maps[i].hash =
			store_buildid_hash(m->build_id.data, m->build_id.len);
		refs[i] = (struct map_ref){m->start, m->limit, m->file_offset,
					   (uint32_t)i};
	}
	qsort(refs, p->nmaps, sizeof *refs, map_ref_cmp);
	for (size_t i = 0; i < b->n_stacks; i++) {
		const Fdod__Stack *s = b->stacks[i];
		struct prep_stack *ps = &p->stacks[p->nstacks];
		ps->first = (uint32_t)p->nframes;
		ps->n = 0;
		for (size_t k = 0; k < s->n_addrs; k++) {
			const struct map_ref *m =
				map_find(refs, p->nmaps, s->addrs[k]);
			if (!m) {
				res->frames_unmapped++;
				continue;
			}
			uint64_t off = s->addrs[k] - m->start + m->file_offset;
			/* A caller frame is a return address: its call site
			 * ends one byte before it. */
			if (k > 0 && off > 0)
				off--;
			hf[ps->n] = (struct store_hframe){
				p->maps[m->index].hash, off};
			p->frames[p->nframes++] =
				(struct prep_frame){m->index, off};
			ps->n++;
		}
		if (ps->n == 0) {
			res->samples_unmapped += s->count;
			continue;
		}
		ps->id = store_stack_id(hf, ps->n);
		ps->samples = s->count;
		res->samples_accepted += s->count;
		p->nstacks++;
	}
	for (size_t i = 0; i < b->n_branches; i++) {
		const Fdod__Branch *br = b->branches[i];
		const struct map_ref *mf = map_find(refs, p->nmaps, br->from);
		const struct map_ref *mt = map_find(refs, p->nmaps, br->to);
		if (!mf || mf != mt) {
			res->branches_unmapped += br->count;
			continue;
		}
		p->branches[p->nbranches++] = (struct prep_branch){
			mf->index, br->from - mf->start + mf->file_offset,
			br->to - mf->start + mf->file_offset, br->count};
		res->branches_accepted += br->count;
	}
	free(refs);
	free(hf);
	p->digest = prep_digest(p);
	*out = p;
	return FDO_OK;
fail:
	free(refs);
	free(hf);
	prep_free(p);
	return rc;
}

/* ----------------------------------------------------------- WAL codec -- */

static void put8(struct fdo_buf *b, uint8_t v)
{
	fdo_buf_putc(b, (char)v);
}
static void put16(struct fdo_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	fdo_buf_append(b, x, 2);
}
static void put32(struct fdo_buf *b, uint32_t v)
{
	uint8_t x[4];
	fdo_put_be32(x, v);
	fdo_buf_append(b, x, 4);
}
static void put64(struct fdo_buf *b, uint64_t v)
{
	uint8_t x[8];
	fdo_put_be64(x, v);
	fdo_buf_append(b, x, 8);
}
static void putstr(struct fdo_buf *b, const char *s)
{
	size_t n = strlen(s);
	put16(b, (uint16_t)n);
	fdo_buf_append(b, s, n);
}

int prep_compact(struct prep *p, int (*keep)(void *arg, uint64_t id), void *arg)
{
	size_t kept = 0;
	for (size_t i = 0; i < p->nstacks; i++) {
		struct prep_stack *s = &p->stacks[i];
		if (!s->n || !keep(arg, s->id)) {
			s->n = 0;
			continue;
		}
		memmove(&p->frames[kept], &p->frames[s->first],
			s->n * sizeof *p->frames);
		s->first = (uint32_t)kept;
		kept += s->n;
	}
	p->nframes = kept;
	/* Most stacks were logged before: give the memory back. */
	struct prep_frame *f =
		realloc(p->frames, (kept ? kept : 1) * sizeof *f);
	if (f)
		p->frames = f;
	return FDO_OK;
}

int prep_encode(const struct prep *p, struct fdo_buf *out)
{
	put8(out, PREP_FORMAT);
	putstr(out, p->agent);
	putstr(out, p->binary);
	putstr(out, p->host);
	putstr(out, p->labels);
	put64(out, p->seq);
	put32(out, p->bucket);
	put64(out, p->time_end);
	put64(out, p->period);
	put64(out, p->wq);
	put16(out, (uint16_t)p->nmaps);
	for (size_t i = 0; i < p->nmaps; i++) {
		put8(out, p->maps[i].build_id_len);
		fdo_buf_append(out, p->maps[i].build_id,
			       p->maps[i].build_id_len);
		put8(out, p->maps[i].main);
	}
	put32(out, (uint32_t)p->nstacks);
	for (size_t i = 0; i < p->nstacks; i++) {
		const struct prep_stack *s = &p->stacks[i];
		put64(out, s->id);
		put64(out, s->samples);
		put16(out, (uint16_t)s->n);
		for (uint32_t k = 0; k < s->n; k++) {
			put16(out, (uint16_t)p->frames[s->first + k].map);
			put64(out, p->frames[s->first + k].offset);
		}
	}
	put32(out, (uint32_t)p->nbranches);
	for (size_t i = 0; i < p->nbranches; i++) {
		put16(out, (uint16_t)p->branches[i].map);
		put64(out, p->branches[i].from);
		put64(out, p->branches[i].to);
		put64(out, p->branches[i].samples);
	}
	return out->oom ? FDO_ENOMEM : FDO_OK;
}

/* A bounds-checked reader over a record. */
struct rd {
	const uint8_t *p, *end;
	int bad;
	int oom; /* bad because an allocation failed, not the bytes */
};

static uint64_t rd_n(struct rd *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->p[i];
	r->p += n;
	return v;
}

static char *rd_str(struct rd *r)
{
	size_t n = (size_t)rd_n(r, 2);
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	char *s = malloc(n + 1);
	if (!s) {
		r->bad = r->oom = 1;
		return NULL;
	}
	memcpy(s, r->p, n);
	s[n] = 0;
	r->p += n;
	return s;
}

int prep_decode(const uint8_t *rec, size_t len, struct prep **out)
{
	struct rd r = {rec, rec + len, 0, 0};
	if (rd_n(&r, 1) != PREP_FORMAT)
		return FDO_ECORRUPT;
	struct prep *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	p->agent = rd_str(&r);
	p->binary = rd_str(&r);
	p->host = rd_str(&r);
	p->labels = rd_str(&r);
	p->seq = rd_n(&r, 8);
	p->bucket = (uint32_t)rd_n(&r, 4);
	p->time_end = rd_n(&r, 8);
	p->period = rd_n(&r, 8);
	p->wq = rd_n(&r, 8);
	p->nmaps = (size_t)rd_n(&r, 2);
	if (r.bad)
		goto bad;
	p->maps = calloc(p->nmaps ? p->nmaps : 1, sizeof *p->maps);
	if (!p->maps)
		goto oom;
	for (size_t i = 0; i < p->nmaps && !r.bad; i++) {
		size_t n = (size_t)rd_n(&r, 1);
		if (n == 0 || n > FDO_BUILD_ID_MAX ||
		    (size_t)(r.end - r.p) < n) {
			r.bad = 1;
			break;
		}
		memcpy(p->maps[i].build_id, r.p, n);
		p->maps[i].build_id_len = (uint8_t)n;
		p->maps[i].hash = store_buildid_hash(r.p, n);
		r.p += n;
		p->maps[i].main = (uint8_t)rd_n(&r, 1);
	}
	p->nstacks = (size_t)rd_n(&r, 4);
	/* Every stack takes at least 18 bytes: bound before allocating. */
	if (r.bad || p->nstacks > (size_t)(r.end - r.p) / 18)
		goto bad;
	p->stacks = malloc((p->nstacks ? p->nstacks : 1) * sizeof *p->stacks);
	size_t capf = 64;
	p->frames = malloc(capf * sizeof *p->frames);
	if (!p->stacks || !p->frames)
		goto oom;
	for (size_t i = 0; i < p->nstacks && !r.bad; i++) {
		struct prep_stack *s = &p->stacks[i];
		s->id = rd_n(&r, 8);
		s->samples = rd_n(&r, 8);
		s->n = (uint32_t)rd_n(&r, 2);
		s->first = (uint32_t)p->nframes;
		if (r.bad || (size_t)(r.end - r.p) / 10 < s->n) {
			r.bad = 1;
			break;
		}
		if (fdo_grow(p->frames, capf, p->nframes + s->n))
			goto oom;
		for (uint32_t k = 0; k < s->n; k++) {
			uint32_t map = (uint32_t)rd_n(&r, 2);
			uint64_t off = rd_n(&r, 8);
			if (map >= p->nmaps)
				r.bad = 1;
			p->frames[p->nframes++] = (struct prep_frame){map, off};
		}
	}
	p->nbranches = (size_t)rd_n(&r, 4);
	if (r.bad || p->nbranches > (size_t)(r.end - r.p) / 26)
		goto bad;
	p->branches =
		malloc((p->nbranches ? p->nbranches : 1) * sizeof *p->branches);
	if (!p->branches)
		goto oom;
	for (size_t i = 0; i < p->nbranches && !r.bad; i++) {
		struct prep_branch *br = &p->branches[i];
		br->map = (uint32_t)rd_n(&r, 2);
		br->from = rd_n(&r, 8);
		br->to = rd_n(&r, 8);
		br->samples = rd_n(&r, 8);
		if (br->map >= p->nmaps)
			r.bad = 1;
	}
	if (r.bad || r.p != r.end || !p->agent || !p->binary || !p->host ||
	    !p->labels)
		goto bad;
	p->digest = prep_digest(p);
	*out = p;
	return FDO_OK;
oom:
	r.oom = 1;
bad:
	prep_free(p);
	return r.oom ? FDO_ENOMEM : FDO_ECORRUPT;
}

static uint64_t str_hash(const char *s)
{
	return fdo_hash_words(s, strlen(s));
}

uint64_t prep_digest(const struct prep *p)
{
	/* Stacks and branches are summed, each mixed first, so their order
	 * does not matter; the scalars are mixed in a fixed order. */
	uint64_t h = 0x6a09e667f3bcc908ull;
	uint64_t fields[] = {str_hash(p->binary), str_hash(p->host),
			     str_hash(p->labels), p->time_end,
			     p->period,		  p->wq,
			     p->nstacks,	  p->nbranches};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		h = fdo_mix64(h ^ fields[i]);
	uint64_t stacks = 0, branches = 0;
	for (size_t i = 0; i < p->nstacks; i++)
		stacks += fdo_mix64(p->stacks[i].id ^
				    fdo_mix64(p->stacks[i].samples + 1));
	for (size_t i = 0; i < p->nbranches; i++) {
		const struct prep_branch *b = &p->branches[i];
		uint64_t m = b->map < p->nmaps ? p->maps[b->map].hash : 0;
		branches += fdo_mix64(
			m ^
			fdo_mix64(b->from ^
				  fdo_mix64(b->to ^ fdo_mix64(b->samples))));
	}
	h = fdo_mix64(h ^ stacks);
	h = fdo_mix64(h ^ branches);
	return h ? h : 1;
}
