/*
 * schemas/pprof.c — a pprof profile (profile.proto: schemas/pprof.proto)
 * becomes one SampleBatch, for POST /v1/pprof (docs/ingest.md "pprof").
 *
 * Input: the uncompressed bytes, as runtime/pprof (Go), perf_to_profile
 * and the Parca agent write them (server/pprof.c inflates a gzipped body
 * with wire_gunzip first).
 *
 * Frames. A sample's location ids (leaf first) lead to locations, each
 * location to its mapping. A mapping whose build_id is a GNU build-id
 * (2..128 hex digits, either case) maps its locations: (build-id, file
 * offset) = address - memory_start + file_offset. A location with an
 * address outside its mapping's [memory_start, memory_limit) is an error:
 * the profile is wrong, and a guess would put samples on other code.
 * Other frames are unmapped, counted by reason (enum wire_pprof_reason):
 * a sample without locations, a location without a mapping or an
 * address, a mapping without a build-id or with one that is not a GNU
 * build-id (a Go build ID), a file offset past what the batch layout
 * carries (2^40 - 2: one such location costs its frames, not the whole
 * profile). A sample none of whose frames maps is left
 * out of the batch and counted for the reason of its leaf, and for the
 * leaf's mapping (st->maps).
 *
 * Return addresses. pprof addresses are instruction addresses: the leaf
 * is the sampled PC and a caller lies inside its call instruction
 * (runtime/pprof and perf_to_profile write the return address - 1;
 * perf_to_profile's LBR call stacks the call's own address). fdod's
 * batches carry callers as return addresses and ingest takes 1 off them
 * (aggregator/prep.c), so a caller travels as its address + 1 and is
 * stored as the pprof address: the file offset fdo-agent's batch of the
 * same stack gives.
 *
 * Count and period (fdod weights a sample count x period x weight; the
 * weight is 1 here), from sample_type:
 *   - "samples"/"count" (runtime/pprof, Parca) is the count; the period
 *     is Profile.period (Go: 10000000 ns at 100 Hz) when it is > 0, else
 *     the mean of "cpu"/"nanoseconds" per sample when that is there,
 *     else 1;
 *   - else "<event>_sample"/"count" (perf_to_profile) is the count, and
 *     with "<event>_event"/"count" (its periods summed) the period is
 *     their mean over the profile, as fdo-agent's batches carry it,
 *     whatever Profile.period says (perf_to_profile writes the period
 *     of one event there, not the mean); without an "_event" column,
 *     Profile.period when > 0, else 1;
 *   - else "cpu"/"nanoseconds" alone: the period is the gcd g of
 *     Profile.period and every value, each count value / g, so count x
 *     period is exactly the nanoseconds (and the count the number of
 *     samples when every value is a multiple of Profile.period). When
 *     the values jitter (measured times: the gcd is a few ns) a count
 *     would pass max_count: then, with Profile.period > 0, the period is
 *     Profile.period and each count value / period rounded to nearest
 *     (at least 1), so count x period is each value within half a
 *     period; without Profile.period that profile is refused;
 *   - anything else (heap, contention profiles) is refused.
 * The event is "cpu-clock" (fdo-agent's) when the unit is cpu/nanoseconds,
 * else perf_to_profile's event name, else period_type's type.
 *
 * Output: one mapping per GNU build-id a sent frame uses, frames as its
 * start + file offset (the importers' layout, schemas/batchbuild.c), so
 * fdod's normalization gives back the file offset whatever the process's
 * layout was; unmapped frames travel as 0, which no mapping covers. One
 * stack per sample: runtime/pprof writes each (stack, label set) once.
 *
 * Times: [time_nanos, time_nanos + duration_nanos] in seconds (the end
 * rounded up), or o->time_end and duration_nanos back from it. A profile
 * without time_nanos needs o->time_end: the stamp must not depend on
 * when a request arrives, or a retried request would not be a duplicate.
 *
 * Ids. Location and mapping ids come from the client. Go writes them
 * 1..n in order, so id - 1 is the index (no table); other ids are
 * sorted once as (id, index) pairs and found by binary search, which
 * costs O(log n) a lookup whatever ids are chosen (a hash table keyed
 * by them could be made to collide: O(n^2) on ~10^6 locations) and puts
 * duplicates side by side. Functions are never looked up.
 *
 * Workload: one profile per request, up to ~10^5 samples of ~30 frames,
 * ~10^4 locations, a few hundred mappings; at most O(n log n) in the
 * profile. Memory: the decoded profile (bounded by max_decoded_bytes),
 * the id tables (16 bytes an id, when ids are not 1..n) and the batch
 * (bounded by max_stacks and max_frames, checked before each stack is
 * added).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "schemas/pprof.pb-c.h"
#include "schemas/wire_int.h"

/* Largest file offset: a caller's offset + 1 must stay in its file's
 * range (schemas/batchbuild.c). */
#define OFF_MAX	 ((1ull << WIRE_FILE_SHIFT) - 2)
#define MAPPED	 WIRE_PPROF_REASONS /* a state that is no reason */
#define NO_MAP	 UINT32_MAX
#define NO_INDEX UINT32_MAX

typedef Perftools__Profiles__Profile Profile;
typedef ProtobufCBinaryData Bytes;

/* A pprof mapping. Two with one build-id (a file mapped twice) get a
 * batch mapping each: validation allows it, and each gives its offsets. */
struct pmap {
	int state; /* MAPPED, or why its frames are not */
	uint8_t bid[FDO_BUILD_ID_MAX];
	uint8_t len;	   /* of bid, when MAPPED */
	uint32_t index;	   /* its batch mapping, NO_INDEX until used */
	uint64_t unmapped; /* unmapped samples whose leaf is in it */
};

/* A pprof location, resolved once. */
struct ploc {
	int state;    /* MAPPED, or why it is not */
	uint32_t map; /* its pprof mapping, or NO_MAP */
	uint64_t off; /* file offset, when MAPPED */
};

/* Ids of one kind of message (see "Ids" above). */
struct idpair {
	uint64_t id;
	uint32_t ix;
};
struct ids {
	size_t n;
	int dense;	      /* id i + 1 is message i */
	struct idpair *by_id; /* else every (id, index), by id */
};

struct dec {
	const Profile *p;
	const struct wire_pprof_opts *o;
	const struct wire_limits *lim;
	struct wire_pprof_stats *st;
	char *err;
	size_t errlen;
	struct ids map_ids, loc_ids;
	struct pmap *maps;
	struct ploc *locs;
	uint32_t *used; /* batch mapping index -> pprof mapping */
	size_t nused, cap_used;
	int cidx, widx;	    /* count and weight columns, -1: none */
	int perf;	    /* the count column is perf_to_profile's */
	int round;	    /* weight column / g rounded, not exact */
	uint64_t period, g; /* g: the divisor of the weight column */
	char event[128];
	Fdod__SampleBatch *b;
	size_t cap_stacks, frames;
	uint64_t *scratch;
};

static const struct {
	const char *name, *text;
} reasons[WIRE_PPROF_REASONS] = {
	[WIRE_PPROF_NO_LOCATION] = {"no_location",
				    "the sample has no location"},
	[WIRE_PPROF_NO_MAPPING] = {"no_mapping", "the location has no mapping"},
	[WIRE_PPROF_NO_ADDRESS] = {"no_address",
				   "the location has no address (only "
				   "symbolized: kernel or interpreted code)"},
	[WIRE_PPROF_NO_BUILD_ID] = {"no_build_id",
				    "the mapping has no build-id (a Go binary "
				    "has a GNU build-id only when linked with "
				    "-ldflags=-B=0x<hex>)"},
	[WIRE_PPROF_NOT_GNU] = {"not_gnu_build_id",
				"the mapping's build-id is not a GNU "
				"build-id in hex (a Go build ID?)"},
	[WIRE_PPROF_OFFSET_OUT_OF_RANGE] =
		{"offset_out_of_range",
		 "the location's file offset (address - memory_start + "
		 "file_offset) is past 2^40 - 2, more than fdod stores"},
};

const char *wire_pprof_reason_name(int r)
{
	return r >= 0 && r < WIRE_PPROF_REASONS ? reasons[r].name : "mapped";
}

const char *wire_pprof_reason_text(int r)
{
	return r >= 0 && r < WIRE_PPROF_REASONS ? reasons[r].text : "mapped";
}

/* ------------------------------------------------------------ helpers -- */

/* String index i of the table, for what; an index past it is an error. */
static int str_at(struct dec *d, int64_t i, const char *what, Bytes *out)
{
	const Profile *p = d->p;
	if (i == 0 && p->n_string_table == 0) {
		*out = (Bytes){0, NULL};
		return FDO_OK;
	}
	if (i < 0 || (uint64_t)i >= p->n_string_table)
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "%s: string index %lld out of the string "
				 "table (%zu strings)",
				 what, (long long)i, p->n_string_table);
	*out = p->string_table[i];
	return FDO_OK;
}

static int bytes_is(Bytes s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && (!n || !memcmp(s.data, lit, n));
}

/* A printable copy of s for the answer (cut to cap - 1 bytes; bytes that
 * are not printable ASCII become '?'). */
static void shown(char *dst, size_t cap, Bytes s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = s.data[i] >= 0x20 && s.data[i] < 0x7f ? (char)s.data[i]
							       : '?';
	dst[n] = 0;
}

/* s as a new C string; NULL (and *bad 1) when it holds a NUL byte. */
static char *text_dup(Bytes s, int *bad)
{
	*bad = s.len && memchr(s.data, 0, s.len) != NULL;
	if (*bad)
		return NULL;
	char *t = malloc(s.len + 1);
	if (t) {
		if (s.len)
			memcpy(t, s.data, s.len);
		t[s.len] = 0;
	}
	return t;
}

/* A GNU build-id in hex, either case: FDO_OK with the bytes. */
static int gnu_build_id(Bytes s, uint8_t *out, size_t *len)
{
	return wire_build_id_hex(s.data, s.len, out, len);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* ------------------------------------------------------ sample types -- */

struct vt {
	Bytes type, unit;
};

static int vt_of(struct dec *d, const Perftools__Profiles__ValueType *v,
		 const char *what, struct vt *out)
{
	*out = (struct vt){{0, NULL}, {0, NULL}};
	if (!v)
		return FDO_OK;
	int rc = str_at(d, v->type, what, &out->type);
	return rc ? rc : str_at(d, v->unit, what, &out->unit);
}

static int is_cpu_ns(struct vt t)
{
	return bytes_is(t.type, "cpu") && bytes_is(t.unit, "nanoseconds");
}

/* "type/unit, ..." of every sample type, for a refusal. */
static void list_types(struct dec *d, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = 0;
	for (size_t i = 0; i < d->p->n_sample_type && at + 1 < cap; i++) {
		struct vt t;
		char a[48], b[48];
		if (vt_of(d, d->p->sample_type[i], "sample_type", &t))
			return;
		shown(a, sizeof a, t.type);
		shown(b, sizeof b, t.unit);
		int n = snprintf(out + at, cap - at, "%s%s/%s", i ? ", " : "",
				 a, b);
		if (n < 0)
			return;
		at += (size_t)n;
	}
}

/* Choose the count and weight columns and name the event. */
static int pick_columns(struct dec *d)
{
	const Profile *p = d->p;
	size_t n = p->n_sample_type;
	struct vt *t = calloc(n ? n : 1, sizeof *t);
	if (!t)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	for (size_t i = 0; i < n && !rc; i++)
		rc = vt_of(d, p->sample_type[i], "sample_type", &t[i]);
	d->cidx = d->widx = -1;
	Bytes prefix = {0, NULL};
	for (size_t i = 0; i < n && !rc && d->cidx < 0; i++)
		if (bytes_is(t[i].type, "samples") &&
		    bytes_is(t[i].unit, "count"))
			d->cidx = (int)i;
	for (size_t i = 0; i < n && !rc && d->cidx < 0; i++) {
		size_t len = t[i].type.len;
		if (len > 7 && bytes_is(t[i].unit, "count") &&
		    !memcmp(t[i].type.data + len - 7, "_sample", 7)) {
			d->cidx = (int)i;
			prefix = (Bytes){len - 7, t[i].type.data};
		}
	}
	for (size_t i = 0; i < n && !rc && d->widx < 0; i++) {
		if (prefix.len) {
			size_t len = t[i].type.len;
			if (len == prefix.len + 6 &&
			    !memcmp(t[i].type.data, prefix.data, prefix.len) &&
			    !memcmp(t[i].type.data + prefix.len, "_event", 6) &&
			    bytes_is(t[i].unit, "count"))
				d->widx = (int)i;
		} else if (is_cpu_ns(t[i])) {
			d->widx = (int)i;
		}
	}
	struct vt pt;
	if (!rc)
		rc = vt_of(d, p->period_type, "period_type", &pt);
	if (rc)
		goto out;
	if (d->cidx < 0 && d->widx < 0) {
		char have[512];
		list_types(d, have, sizeof have);
		rc = wire_errf(d->err, d->errlen, FDO_EINVAL,
			       "no sample type fdod can count (samples/count, "
			       "cpu/nanoseconds, or perf_to_profile's "
			       "EVENT_sample/count); this profile has [%s]",
			       have);
		goto out;
	}
	/* The value columns used, for the answer. */
	char a[48], b[48], c[48] = "", e[48] = "";
	shown(a, sizeof a, t[d->cidx >= 0 ? d->cidx : d->widx].type);
	shown(b, sizeof b, t[d->cidx >= 0 ? d->cidx : d->widx].unit);
	/* Profile.period is the period of a samples/count column only:
	 * perf_to_profile's EVENT_event column gives the mean. */
	d->perf = prefix.len > 0;
	int by_period = d->cidx >= 0 && !(d->perf && d->widx >= 0) &&
			p->period > 0;
	if (d->cidx >= 0 && d->widx >= 0 && !by_period) {
		shown(c, sizeof c, t[d->widx].type);
		shown(e, sizeof e, t[d->widx].unit);
	}
	snprintf(d->st->value, sizeof d->st->value, "%s/%s%s%s%s%s", a, b,
		 c[0] ? ", " : "", c, c[0] ? "/" : "", e);
	if (d->widx >= 0 && !by_period && is_cpu_ns(t[d->widx]))
		snprintf(d->event, sizeof d->event, "cpu-clock");
	else if (is_cpu_ns(pt))
		snprintf(d->event, sizeof d->event, "cpu-clock");
	else if (prefix.len)
		shown(d->event, sizeof d->event, prefix);
	else if (pt.type.len)
		shown(d->event, sizeof d->event, pt.type);
	else
		snprintf(d->event, sizeof d->event, "samples");
out:
	free(t);
	return rc;
}

/*
 * The period from the count and weight columns (see the top comment):
 * one pass over the samples, which also checks their value counts.
 */
static int pick_period(struct dec *d)
{
	const Profile *p = d->p;
	wire_weight_t csum = 0, wsum = 0;
	uint64_t g = p->period > 0 ? (uint64_t)p->period : 0, wmax = 0;
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		if (s->n_value != p->n_sample_type)
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "sample %zu: %zu values, but %zu "
					 "sample types",
					 i, s->n_value, p->n_sample_type);
		int64_t c = d->cidx >= 0 ? s->value[d->cidx] : 0;
		int64_t w = d->widx >= 0 ? s->value[d->widx] : 0;
		if (d->cidx >= 0 && c > 0 && w > 0) {
			csum += (uint64_t)c;
			wsum += (uint64_t)w;
		}
		if (d->cidx < 0 && w > 0) {
			g = gcd64(g, (uint64_t)w);
			wmax = (uint64_t)w > wmax ? (uint64_t)w : wmax;
		}
	}
	d->g = 1;
	if (d->cidx < 0) {
		d->g = g ? g : 1;
		d->period = d->g;
		if (wmax / d->g <= d->lim->max_count)
			return FDO_OK;
		/* Jittery values: exact counts would be too large. */
		if (p->period <= 0)
			return wire_errf(
				d->err, d->errlen, FDO_ELIMIT,
				"cpu/nanoseconds values have no common "
				"period (their gcd is %llu ns, so a "
				"value of %llu ns would count %llu "
				"samples, over the limit of %llu), and "
				"the profile has no period to round "
				"them to: set Profile.period, or send "
				"samples/count",
				(unsigned long long)d->g,
				(unsigned long long)wmax,
				(unsigned long long)(wmax / d->g),
				(unsigned long long)d->lim->max_count);
		d->round = 1;
		d->g = d->period = (uint64_t)p->period;
	} else if (csum && (d->perf || p->period <= 0)) {
		wire_weight_t m = (wsum + csum / 2) / csum;
		d->period = m < 1	     ? 1
			    : m > UINT64_MAX ? UINT64_MAX
					     : (uint64_t)m;
	} else if (p->period > 0) {
		d->period = (uint64_t)p->period;
	} else {
		d->period = 1;
	}
	return FDO_OK;
}

/* --------------------------------------------- mappings and locations -- */

static int idpair_cmp(const void *a, const void *b)
{
	const struct idpair *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static uint64_t mapping_id(const Profile *p, size_t i)
{
	return p->mapping[i]->id;
}

static uint64_t location_id(const Profile *p, size_t i)
{
	return p->location[i]->id;
}

/* Index n messages of kind what by their ids (nonzero, unique). */
static int ids_index(struct dec *d, struct ids *x, const char *what, size_t n,
		     uint64_t (*id_of)(const Profile *, size_t))
{
	x->n = n;
	x->dense = 1;
	for (size_t i = 0; i < n && x->dense; i++)
		x->dense = id_of(d->p, i) == i + 1;
	if (x->dense)
		return FDO_OK;
	for (size_t i = 0; i < n; i++)
		if (!id_of(d->p, i))
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "%s %zu has id 0 (ids are nonzero)",
					 what, i);
	if (!(x->by_id = malloc((n ? n : 1) * sizeof *x->by_id)))
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++)
		x->by_id[i] = (struct idpair){id_of(d->p, i), (uint32_t)i};
	qsort(x->by_id, n, sizeof *x->by_id, idpair_cmp);
	for (size_t i = 1; i < n; i++)
		if (x->by_id[i].id == x->by_id[i - 1].id)
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "%s id %llu appears twice", what,
					 (unsigned long long)x->by_id[i].id);
	return FDO_OK;
}

/* The index of the message with this id: 1 and *out, or 0 if none. */
static int ids_find(const struct ids *x, uint64_t id, uint32_t *out)
{
	if (x->dense) {
		if (!id || id > x->n)
			return 0;
		*out = (uint32_t)(id - 1);
		return 1;
	}
	/* Ids are unique once indexed: any match is the one. */
	struct idpair key = {id, 0};
	const struct idpair *hit =
		bsearch(&key, x->by_id, x->n, sizeof key, idpair_cmp);
	if (!hit)
		return 0;
	*out = hit->ix;
	return 1;
}

/* Every mapping and location by id, and their states' arrays. */
static int index_all(struct dec *d)
{
	const Profile *p = d->p;
	d->maps = calloc(p->n_mapping + 1, sizeof *d->maps);
	d->locs = calloc(p->n_location + 1, sizeof *d->locs);
	if (!d->maps || !d->locs)
		return FDO_ENOMEM;
	int rc = ids_index(d, &d->map_ids, "mapping", p->n_mapping, mapping_id);
	return rc ? rc
		  : ids_index(d, &d->loc_ids, "location", p->n_location,
			      location_id);
}

static int read_mappings(struct dec *d)
{
	for (size_t i = 0; i < d->p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = d->p->mapping[i];
		struct pmap *pm = &d->maps[i];
		Bytes s, f;
		size_t len = 0;
		/* The file name is read later; its index is checked now. */
		int rc = str_at(d, m->build_id, "mapping build_id", &s);
		if (rc || (rc = str_at(d, m->filename, "mapping filename", &f)))
			return rc;
		pm->index = NO_INDEX;
		if (!s.len)
			pm->state = WIRE_PPROF_NO_BUILD_ID;
		else if (gnu_build_id(s, pm->bid, &len))
			pm->state = WIRE_PPROF_NOT_GNU;
		else
			pm->state = MAPPED;
		pm->len = (uint8_t)len;
	}
	return FDO_OK;
}

static int read_locations(struct dec *d)
{
	const Profile *p = d->p;
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];
		struct ploc *pl = &d->locs[i];
		pl->map = NO_MAP;
		if (!l->mapping_id) {
			pl->state = WIRE_PPROF_NO_MAPPING;
			continue;
		}
		if (!ids_find(&d->map_ids, l->mapping_id, &pl->map))
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "location %llu: mapping %llu does not "
					 "exist",
					 (unsigned long long)l->id,
					 (unsigned long long)l->mapping_id);
		const struct pmap *pm = &d->maps[pl->map];
		const Perftools__Profiles__Mapping *m = p->mapping[pl->map];
		if (pm->state != MAPPED) {
			pl->state = pm->state;
			continue;
		}
		if (!l->address) {
			pl->state = WIRE_PPROF_NO_ADDRESS;
			continue;
		}
		if (l->address < m->memory_start ||
		    l->address >= m->memory_limit)
			return wire_errf(
				d->err, d->errlen, FDO_EINVAL,
				"location %llu: address %#llx is outside "
				"its mapping %llu [%#llx, %#llx)",
				(unsigned long long)l->id,
				(unsigned long long)l->address,
				(unsigned long long)m->id,
				(unsigned long long)m->memory_start,
				(unsigned long long)m->memory_limit);
		uint64_t rel = l->address - m->memory_start;
		if (m->file_offset > OFF_MAX ||
		    rel > OFF_MAX - m->file_offset) {
			pl->state = WIRE_PPROF_OFFSET_OUT_OF_RANGE;
			continue;
		}
		pl->state = MAPPED;
		pl->off = m->file_offset + rel;
	}
	return FDO_OK;
}

/* ----------------------------------------------------------- samples -- */

/* The batch mapping of pprof mapping mi, made on first use. */
static int mapping_index(struct dec *d, uint32_t mi, uint32_t *out)
{
	struct pmap *sl = &d->maps[mi];
	if (sl->index != NO_INDEX) {
		*out = sl->index;
		return FDO_OK;
	}
	if (d->nused >= d->lim->max_mappings)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu mapped files in the samples",
				 d->lim->max_mappings);
	if (fdo_grow(d->used, d->cap_used, d->nused + 1))
		return FDO_ENOMEM;
	sl->index = (uint32_t)d->nused;
	d->used[d->nused++] = mi;
	*out = sl->index;
	return FDO_OK;
}

/* The count of sample s: 0 when it has nothing to count. */
static uint64_t count_of(const struct dec *d,
			 const Perftools__Profiles__Sample *s)
{
	int64_t v = s->value[d->cidx >= 0 ? d->cidx : d->widx];
	if (v <= 0)
		return 0;
	if (d->cidx >= 0)
		return (uint64_t)v;
	if (!d->round)
		return (uint64_t)v / d->g;
	/* To the nearest, halves up; a sample counts at least once. */
	uint64_t c = (uint64_t)v / d->g, r = (uint64_t)v % d->g;
	c += r >= d->g - d->g / 2;
	return c ? c : 1;
}

/* Sample i into the batch, or into the unmapped counts. */
static int add_sample(struct dec *d, size_t i)
{
	const Perftools__Profiles__Sample *s = d->p->sample[i];
	struct wire_pprof_stats *st = d->st;
	uint64_t count = count_of(d, s);
	if (!count) {
		st->samples_empty++;
		return FDO_OK;
	}
	if (count > d->lim->max_count)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "sample %zu: count %llu, limit %llu", i,
				 (unsigned long long)count,
				 (unsigned long long)d->lim->max_count);
	st->count += count;
	size_t n = s->n_location_id;
	size_t depth = n < d->lim->max_stack_depth ? n
						   : d->lim->max_stack_depth;
	int mapped = 0, leaf = WIRE_PPROF_NO_LOCATION;
	uint32_t leaf_map = NO_MAP;
	for (size_t k = 0; k < n; k++) {
		uint32_t ix;
		if (!ids_find(&d->loc_ids, s->location_id[k], &ix))
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "sample %zu: location %llu does not "
					 "exist",
					 i,
					 (unsigned long long)s->location_id[k]);
		if (k >= depth)
			continue;
		const struct ploc *pl = &d->locs[ix];
		if (k == 0) {
			leaf = pl->state;
			leaf_map = pl->map;
		}
		if (pl->state != MAPPED) {
			st->frames_unmapped_by[pl->state]++;
			d->scratch[k] = 0;
			continue;
		}
		uint32_t mi = 0;
		int rc = mapping_index(d, pl->map, &mi);
		if (rc)
			return rc;
		d->scratch[k] = wire_file_addr(mi, pl->off + (k > 0));
		mapped = 1;
	}
	st->frames += depth;
	st->frames_dropped += n - depth;
	if (!mapped) {
		/* No frame mapped, so neither did the leaf: its state is
		 * a reason. */
		st->count_unmapped += count;
		st->count_unmapped_by[leaf] += count;
		if (leaf_map != NO_MAP)
			d->maps[leaf_map].unmapped += count;
		return FDO_OK;
	}
	Fdod__SampleBatch *b = d->b;
	if (b->n_stacks >= d->lim->max_stacks)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu distinct stacks (the limit of "
				 "a batch): send the profile in parts",
				 d->lim->max_stacks);
	if (d->frames + depth > d->lim->max_frames)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu frames in all (the limit of a "
				 "batch): send the profile in parts",
				 d->lim->max_frames);
	if (fdo_grow(b->stacks, d->cap_stacks, b->n_stacks + 1))
		return FDO_ENOMEM;
	d->frames += depth;
	return wire_batch_add_stack(b, d->scratch, depth, count);
}

/* ------------------------------------------------------------- batch -- */

static int set_times(struct dec *d)
{
	const Profile *p = d->p;
	uint64_t dur = p->duration_nanos > 0 ? (uint64_t)p->duration_nanos : 0;
	uint64_t dur_s = dur / 1000000000u + (dur % 1000000000u != 0);
	Fdod__SampleBatch *b = d->b;
	if (d->o->time_end) {
		b->time_end = d->o->time_end;
		b->time_start = b->time_end > dur_s ? b->time_end - dur_s : 0;
		return FDO_OK;
	}
	if (p->time_nanos <= 0)
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "the profile has no time_nanos (when it was "
				 "collected): give the time (POST /v1/pprof: "
				 "time=UNIX_SECONDS of its end)");
	uint64_t t = (uint64_t)p->time_nanos, end = t + dur;
	b->time_start = t / 1000000000u;
	b->time_end = end / 1000000000u + (end % 1000000000u != 0);
	return FDO_OK;
}

/* The binary name: o->binary, else the first mapping's file name. */
static int set_binary(struct dec *d)
{
	const char *name = d->o->binary;
	if (name && name[0])
		return (d->b->binary = strdup(name)) ? FDO_OK : FDO_ENOMEM;
	Bytes f = {0, NULL};
	if (d->p->n_mapping) {
		int rc = str_at(d, d->p->mapping[0]->filename,
				"mapping filename", &f);
		if (rc)
			return rc;
	}
	size_t at = f.len;
	while (at && f.data[at - 1] != '/')
		at--;
	Bytes base = {f.len - at, f.data ? f.data + at : NULL};
	int bad;
	if (!base.len)
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "no binary name: the profile's first mapping "
				 "names no file; give one (POST /v1/pprof: "
				 "binary=NAME)");
	if (!(d->b->binary = text_dup(base, &bad)))
		return bad ? wire_errf(d->err, d->errlen, FDO_EINVAL,
				       "the first mapping's file name holds a "
				       "NUL byte; give binary=NAME")
			   : FDO_ENOMEM;
	return FDO_OK;
}

/* The batch's mappings: the pprof mappings the stacks use, in order. */
static int set_mappings(struct dec *d)
{
	Fdod__SampleBatch *b = d->b;
	if (!(b->mappings = calloc(d->nused + 1, sizeof *b->mappings)))
		return FDO_ENOMEM;
	for (size_t k = 0; k < d->nused; k++) {
		const struct pmap *s = &d->maps[d->used[k]];
		Bytes f;
		int bad;
		if (str_at(d, d->p->mapping[d->used[k]]->filename, "filename",
			   &f))
			f = (Bytes){0, NULL};
		char *path = text_dup(f, &bad);
		if (!path && !bad)
			return FDO_ENOMEM;
		int rc = wire_batch_add_file(b, s->bid, s->len, path, d->lim);
		free(path);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

/* The unmapped mappings with the most samples, for the answer. */
static void show_maps(struct dec *d)
{
	struct wire_pprof_stats *st = d->st;
	for (size_t i = 0; i < d->p->n_mapping; i++) {
		const struct pmap *pm = &d->maps[i];
		if (pm->state == MAPPED || !pm->unmapped)
			continue;
		size_t at = st->nmaps;
		if (at == WIRE_PPROF_MAPS_SHOWN) {
			if (st->maps[at - 1].count >= pm->unmapped)
				continue;
			at--;
		} else {
			st->nmaps++;
		}
		while (at && st->maps[at - 1].count < pm->unmapped) {
			st->maps[at] = st->maps[at - 1];
			at--;
		}
		const Perftools__Profiles__Mapping *m = d->p->mapping[i];
		struct wire_pprof_map_shown *x = &st->maps[at];
		Bytes f, bid;
		if (str_at(d, m->filename, "filename", &f))
			f = (Bytes){0, NULL};
		if (str_at(d, m->build_id, "build_id", &bid))
			bid = (Bytes){0, NULL};
		x->id = m->id;
		x->reason = pm->state;
		x->count = pm->unmapped;
		shown(x->file, sizeof x->file, f);
		shown(x->build_id, sizeof x->build_id, bid);
	}
}

static int build(struct dec *d)
{
	int rc;
	if ((rc = pick_columns(d)) || (rc = pick_period(d)) ||
	    (rc = index_all(d)) || (rc = read_mappings(d)) ||
	    (rc = read_locations(d)))
		return rc;
	if ((rc = wire_batch_start(d->event, d->o->host, &d->b)))
		return rc;
	Fdod__SampleBatch *b = d->b;
	b->seq = d->o->seq ? d->o->seq : 1;
	b->period = d->period;
	if (!(b->agent_id = strdup(d->o->agent_id ? d->o->agent_id : "")))
		return FDO_ENOMEM;
	if ((rc = set_times(d)) || (rc = set_binary(d)) ||
	    (rc = wire_batch_add_labels(b, d->o->labels, d->o->n_labels)))
		return rc;
	size_t depth = d->lim->max_stack_depth ? d->lim->max_stack_depth : 1;
	if (!(d->scratch = malloc(depth * sizeof *d->scratch)) ||
	    !(b->stacks = malloc(sizeof *b->stacks)))
		return FDO_ENOMEM;
	d->cap_stacks = 1;
	d->st->samples = d->p->n_sample;
	for (size_t i = 0; i < d->p->n_sample; i++)
		if ((rc = add_sample(d, i)))
			return rc;
	show_maps(d);
	if ((rc = set_mappings(d)))
		return rc;
	return wire_batch_validate(b, d->lim, d->err, d->errlen);
}

int wire_pprof_decode(const uint8_t *buf, size_t len,
		      const struct wire_pprof_opts *o, Fdod__SampleBatch **out,
		      struct wire_pprof_stats *st, char *err, size_t errlen)
{
	struct wire_pprof_stats scratch_st;
	if (!st)
		st = &scratch_st;
	memset(st, 0, sizeof *st);
	if (err && errlen)
		err[0] = 0;
	const struct wire_limits *lim = o->limits ? o->limits
						  : &wire_limits_default;
	Profile *p = NULL;
	int rc = wire_decode_bounded(&perftools__profiles__profile__descriptor,
				     buf, len, lim->max_decoded_bytes,
				     lim->max_decoded_bytes,
				     (ProtobufCMessage **)&p);
	if (rc == FDO_EPARSE)
		return wire_errf(err, errlen, rc,
				 "not a profile.proto, or cut short (%zu bytes "
				 "that do not decode)",
				 len);
	if (rc == FDO_ELIMIT)
		return wire_errf(err, errlen, rc,
				 "the profile (%zu bytes) takes more than %zu "
				 "bytes to decode: send it in parts",
				 len, lim->max_decoded_bytes);
	if (rc)
		return wire_errf(err, errlen, rc,
				 "out of memory decoding the "
				 "profile (%zu bytes)",
				 len);
	struct dec d = {.p = p,
			.o = o,
			.lim = lim,
			.st = st,
			.err = err,
			.errlen = errlen};
	rc = build(&d);
	if (rc == FDO_ENOMEM)
		wire_errf(err, errlen, rc, "out of memory");
	if (rc)
		wire_batch_free(d.b);
	else
		*out = d.b;
	free(d.map_ids.by_id);
	free(d.loc_ids.by_id);
	free(d.maps);
	free(d.locs);
	free(d.used);
	free(d.scratch);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	return rc;
}
