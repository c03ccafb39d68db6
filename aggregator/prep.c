/*
 * aggregator/prep.c — a SampleBatch becomes a `prep`: validated,
 * every address normalized to (mapping, file offset), every stack hashed to
 * its stack id.
 *
 * Runs on the submitter threads, in parallel, with no store access: this is
 * where per-frame work happens, so the single WAL writer and the merger only
 * see stack ids. Non-leaf frames are return addresses: they are stored as
 * offset - 1, the last byte of the call instruction, so symbolization never
 * needs to know a frame's position in its stack.
 *
 * A prep's stored part is a store_walbatch: its WAL record and the
 * record's layout belong to storage/walrec.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"

void prep_free(struct prep *p)
{
	if (!p)
		return;
	store_walbatch_clear(&p->b);
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
	p->b.seq = b->seq;
	p->b.time_end = b->time_end;
	p->b.period = b->period;
	uint64_t t = b->time_start ? b->time_start : b->time_end;
	p->b.bucket = (uint32_t)(t / bucket_seconds * bucket_seconds);
	p->b.agent = strdup(b->agent_id);
	p->b.binary = strdup(b->binary);
	p->b.host = strdup(b->host);
	p->b.labels = strdup(labels);
	p->b.nmaps = b->n_mappings;
	p->b.maps = calloc(p->b.nmaps ? p->b.nmaps : 1, sizeof *p->b.maps);
	struct map_ref *refs =
		calloc(p->b.nmaps ? p->b.nmaps : 1, sizeof *refs);
	size_t total = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		total += b->stacks[i]->n_addrs;
	p->b.frames = malloc((total ? total : 1) * sizeof *p->b.frames);
	p->b.stacks =
		malloc((b->n_stacks ? b->n_stacks : 1) * sizeof *p->b.stacks);
	p->b.branches = malloc((b->n_branches ? b->n_branches : 1) *
			       sizeof *p->b.branches);
	struct store_hframe *hf =
		malloc((limits->max_stack_depth ? limits->max_stack_depth : 1) *
		       sizeof *hf);
	rc = FDO_ENOMEM;
	if (!p->b.agent || !p->b.binary || !p->b.host || !p->b.labels ||
	    !p->b.maps || !refs || !p->b.frames || !p->b.stacks ||
	    !p->b.branches || !hf)
		goto fail;
	if ((rc = wire_weight_quantize(b->weight, &p->b.wq)))
		goto fail;
	for (size_t i = 0; i < p->b.nmaps; i++) {
		const Fdod__Mapping *m = b->mappings[i];
		memcpy(p->b.maps[i].build_id, m->build_id.data,
		       m->build_id.len);
		p->b.maps[i].build_id_len = (uint8_t)m->build_id.len;
		const char *base = strrchr(m->path, '/');
		p->b.maps[i].main =
			!strcmp(base ? base + 1 : m->path, b->binary);
		p->b.maps[i].hash =
			store_buildid_hash(m->build_id.data, m->build_id.len);
		refs[i] = (struct map_ref){m->start, m->limit, m->file_offset,
					   (uint32_t)i};
	}
	qsort(refs, p->b.nmaps, sizeof *refs, map_ref_cmp);
	for (size_t i = 0; i < b->n_stacks; i++) {
		const Fdod__Stack *s = b->stacks[i];
		struct store_walstack *ps = &p->b.stacks[p->b.nstacks];
		ps->first = (uint32_t)p->b.nframes;
		ps->n = 0;
		for (size_t k = 0; k < s->n_addrs; k++) {
			const struct map_ref *m =
				map_find(refs, p->b.nmaps, s->addrs[k]);
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
				p->b.maps[m->index].hash, off};
			p->b.frames[p->b.nframes++] =
				(struct store_walframe){m->index, off};
			ps->n++;
		}
		if (ps->n == 0) {
			res->samples_unmapped += s->count;
			continue;
		}
		ps->id = store_stack_id(hf, ps->n);
		ps->samples = s->count;
		res->samples_accepted += s->count;
		p->b.nstacks++;
	}
	for (size_t i = 0; i < b->n_branches; i++) {
		const Fdod__Branch *br = b->branches[i];
		const struct map_ref *mf = map_find(refs, p->b.nmaps, br->from);
		const struct map_ref *mt = map_find(refs, p->b.nmaps, br->to);
		if (!mf || mf != mt) {
			res->branches_unmapped += br->count;
			continue;
		}
		p->b.branches[p->b.nbranches++] = (struct store_walbranch){
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

int prep_compact(struct prep *p, int (*keep)(void *arg, uint64_t id), void *arg)
{
	size_t kept = 0;
	for (size_t i = 0; i < p->b.nstacks; i++) {
		struct store_walstack *s = &p->b.stacks[i];
		if (!s->n || !keep(arg, s->id)) {
			s->n = 0;
			continue;
		}
		memmove(&p->b.frames[kept], &p->b.frames[s->first],
			s->n * sizeof *p->b.frames);
		s->first = (uint32_t)kept;
		kept += s->n;
	}
	p->b.nframes = kept;
	/* Most stacks were logged before: give the memory back. */
	struct store_walframe *f =
		realloc(p->b.frames, (kept ? kept : 1) * sizeof *f);
	if (f)
		p->b.frames = f;
	return FDO_OK;
}

int prep_decode(const uint8_t *rec, size_t len, struct prep **out)
{
	struct prep *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	int rc = store_walbatch_decode(rec, len, &p->b);
	if (rc != FDO_OK) {
		free(p);
		return rc;
	}
	p->digest = prep_digest(p);
	*out = p;
	return FDO_OK;
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
	uint64_t fields[] = {str_hash(p->b.binary), str_hash(p->b.host),
			     str_hash(p->b.labels), p->b.time_end,
			     p->b.period,	    p->b.wq,
			     p->b.nstacks,	    p->b.nbranches};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		h = fdo_mix64(h ^ fields[i]);
	uint64_t stacks = 0, branches = 0;
	for (size_t i = 0; i < p->b.nstacks; i++)
		stacks += fdo_mix64(p->b.stacks[i].id ^
				    fdo_mix64(p->b.stacks[i].samples + 1));
	for (size_t i = 0; i < p->b.nbranches; i++) {
		const struct store_walbranch *b = &p->b.branches[i];
		uint64_t m = b->map < p->b.nmaps ? p->b.maps[b->map].hash : 0;
		branches += fdo_mix64(
			m ^
			fdo_mix64(b->from ^
				  fdo_mix64(b->to ^ fdo_mix64(b->samples))));
	}
	h = fdo_mix64(h ^ stacks);
	h = fdo_mix64(h ^ branches);
	return h ? h : 1;
}
