/*
 * storage/walrec.c — the write-ahead log's record of one batch: its only
 * codec. storage/wal.c frames records; this file owns what is inside one.
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
 *   .      2    M mappings, then each: u8 length (1..64) + build-id bytes,
 *               u8 1 when the mapped file's name is the binary's name
 *   .      4    S stacks, then each:
 *               8 stack id, 8 samples, 2 frame count F (0 = an earlier
 *               record holds this stack's frames), F x (2 mapping, 8 offset)
 *   .      4    B branches, then each: 2 mapping, 8 from, 8 to, 8 samples
 *
 * A mapping index must be below M; the record must end with the last
 * branch. The store-v4 fixture (tests/fixtures/store-v4) holds a record
 * of this format that fdod replays on open, so a change here that is
 * not a new format number fails its test.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "storage/storage.h"

#define WALREC_FORMAT 1

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

/* Every count and index fits its field; prep_build's limits keep batches
 * far inside them, so a miss is a caller's bug, refused before a byte. */
static int fits(const struct store_walbatch *b)
{
	const char *str[] = {b->agent, b->binary, b->host, b->labels};
	for (size_t i = 0; i < 4; i++)
		if (!str[i] || strlen(str[i]) > UINT16_MAX)
			return 0;
	if (b->nmaps > UINT16_MAX || b->nstacks > UINT32_MAX ||
	    b->nbranches > UINT32_MAX)
		return 0;
	for (size_t i = 0; i < b->nmaps; i++)
		if (b->maps[i].build_id_len == 0 ||
		    b->maps[i].build_id_len > FDO_BUILD_ID_MAX)
			return 0;
	for (size_t i = 0; i < b->nstacks; i++) {
		const struct store_walstack *s = &b->stacks[i];
		if (s->n == 0) /* first means nothing then */
			continue;
		if (s->n > UINT16_MAX || s->first > b->nframes ||
		    s->n > b->nframes - s->first)
			return 0;
		for (uint32_t k = 0; k < s->n; k++)
			if (b->frames[s->first + k].map >= b->nmaps)
				return 0;
	}
	for (size_t i = 0; i < b->nbranches; i++)
		if (b->branches[i].map >= b->nmaps)
			return 0;
	return 1;
}

/* Bytes of the record's stacks (fits(b) holds). */
static size_t walstacks_size(const struct store_walbatch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nstacks; i++)
		n += 8 + 8 + 2 + (size_t)b->stacks[i].n * (2 + 8);
	return n;
}

/* The writers of the stacks' part: into room made beforehand (a
 * record is ~1,000 stacks, most without frames; appending field by field
 * through fdo_buf was most of the WAL writer's own CPU). */
static uint8_t *w16(uint8_t *o, uint16_t v)
{
	o[0] = (uint8_t)(v >> 8);
	o[1] = (uint8_t)v;
	return o + 2;
}
static uint8_t *w64(uint8_t *o, uint64_t v)
{
	fdo_put_be64(o, v);
	return o + 8;
}

int store_walbatch_encode(const struct store_walbatch *b, struct fdo_buf *out)
{
	if (!fits(b))
		return FDO_EINVAL;
	put8(out, WALREC_FORMAT);
	putstr(out, b->agent);
	putstr(out, b->binary);
	putstr(out, b->host);
	putstr(out, b->labels);
	put64(out, b->seq);
	put32(out, b->bucket);
	put64(out, b->time_end);
	put64(out, b->period);
	put64(out, b->wq);
	put16(out, (uint16_t)b->nmaps);
	for (size_t i = 0; i < b->nmaps; i++) {
		put8(out, b->maps[i].build_id_len);
		fdo_buf_append(out, b->maps[i].build_id,
			       b->maps[i].build_id_len);
		put8(out, b->maps[i].main);
	}
	put32(out, (uint32_t)b->nstacks);
	if (fdo_buf_reserve(out, walstacks_size(b)))
		return FDO_ENOMEM;
	uint8_t *o = (uint8_t *)out->data + out->len;
	for (size_t i = 0; i < b->nstacks; i++) {
		const struct store_walstack *s = &b->stacks[i];
		o = w64(o, s->id);
		o = w64(o, s->samples);
		o = w16(o, (uint16_t)s->n);
		for (uint32_t k = 0; k < s->n; k++) {
			o = w16(o, (uint16_t)b->frames[s->first + k].map);
			o = w64(o, b->frames[s->first + k].offset);
		}
	}
	out->len = (size_t)(o - (uint8_t *)out->data);
	put32(out, (uint32_t)b->nbranches);
	for (size_t i = 0; i < b->nbranches; i++) {
		put16(out, (uint16_t)b->branches[i].map);
		put64(out, b->branches[i].from);
		put64(out, b->branches[i].to);
		put64(out, b->branches[i].samples);
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

void store_walbatch_clear(struct store_walbatch *b)
{
	free(b->agent);
	free(b->binary);
	free(b->host);
	free(b->labels);
	free(b->maps);
	free(b->frames);
	free(b->stacks);
	free(b->branches);
	memset(b, 0, sizeof *b);
}

int store_walbatch_decode(const void *rec, size_t len, struct store_walbatch *b)
{
	struct rd r = {rec, (const uint8_t *)rec + len, 0, 0};
	memset(b, 0, sizeof *b);
	if (rd_n(&r, 1) != WALREC_FORMAT)
		return FDO_ECORRUPT;
	b->agent = rd_str(&r);
	b->binary = rd_str(&r);
	b->host = rd_str(&r);
	b->labels = rd_str(&r);
	b->seq = rd_n(&r, 8);
	b->bucket = (uint32_t)rd_n(&r, 4);
	b->time_end = rd_n(&r, 8);
	b->period = rd_n(&r, 8);
	b->wq = rd_n(&r, 8);
	b->nmaps = (size_t)rd_n(&r, 2);
	if (r.bad)
		goto bad;
	b->maps = calloc(b->nmaps ? b->nmaps : 1, sizeof *b->maps);
	if (!b->maps)
		goto oom;
	for (size_t i = 0; i < b->nmaps && !r.bad; i++) {
		size_t n = (size_t)rd_n(&r, 1);
		if (n == 0 || n > FDO_BUILD_ID_MAX ||
		    (size_t)(r.end - r.p) < n) {
			r.bad = 1;
			break;
		}
		memcpy(b->maps[i].build_id, r.p, n);
		b->maps[i].build_id_len = (uint8_t)n;
		b->maps[i].hash = store_buildid_hash(r.p, n);
		r.p += n;
		b->maps[i].main = (uint8_t)rd_n(&r, 1);
	}
	b->nstacks = (size_t)rd_n(&r, 4);
	/* Every stack takes at least 18 bytes: bound before allocating. */
	if (r.bad || b->nstacks > (size_t)(r.end - r.p) / 18)
		goto bad;
	b->stacks = malloc((b->nstacks ? b->nstacks : 1) * sizeof *b->stacks);
	size_t capf = 64;
	b->frames = malloc(capf * sizeof *b->frames);
	if (!b->stacks || !b->frames)
		goto oom;
	for (size_t i = 0; i < b->nstacks && !r.bad; i++) {
		struct store_walstack *s = &b->stacks[i];
		s->id = rd_n(&r, 8);
		s->samples = rd_n(&r, 8);
		s->n = (uint32_t)rd_n(&r, 2);
		s->first = (uint32_t)b->nframes;
		if (r.bad || (size_t)(r.end - r.p) / 10 < s->n) {
			r.bad = 1;
			break;
		}
		if (fdo_grow(b->frames, capf, b->nframes + s->n))
			goto oom;
		for (uint32_t k = 0; k < s->n; k++) {
			uint32_t map = (uint32_t)rd_n(&r, 2);
			uint64_t off = rd_n(&r, 8);
			if (map >= b->nmaps)
				r.bad = 1;
			b->frames[b->nframes++] =
				(struct store_walframe){map, off};
		}
	}
	b->nbranches = (size_t)rd_n(&r, 4);
	if (r.bad || b->nbranches > (size_t)(r.end - r.p) / 26)
		goto bad;
	b->branches =
		malloc((b->nbranches ? b->nbranches : 1) * sizeof *b->branches);
	if (!b->branches)
		goto oom;
	for (size_t i = 0; i < b->nbranches && !r.bad; i++) {
		struct store_walbranch *br = &b->branches[i];
		br->map = (uint32_t)rd_n(&r, 2);
		br->from = rd_n(&r, 8);
		br->to = rd_n(&r, 8);
		br->samples = rd_n(&r, 8);
		if (br->map >= b->nmaps)
			r.bad = 1;
	}
	if (r.bad || r.p != r.end || !b->agent || !b->binary || !b->host ||
	    !b->labels)
		goto bad;
	return FDO_OK;
oom:
	r.oom = 1;
bad:
	store_walbatch_clear(b);
	return r.oom ? FDO_ENOMEM : FDO_ECORRUPT;
}
