/*
 * schemas/otlp.c — OpenTelemetry profiles (an OTLP
 * ExportProfilesServiceRequest: schemas/otlp_profiles.proto) become
 * SampleBatches, for POST /v1development/profiles (docs/ingest.md
 * "OpenTelemetry profiles"). What the OpenTelemetry eBPF profiler sends.
 *
 * Shapes. The request is decoded as opentelemetry-proto v1.10.0 and
 * later; when that fails (a wire type v1.10 does not have there), or
 * when a sample has attribute indices but neither values nor timestamps
 * (meaningless in v1.10, and exactly how a v1.8/v1.9 sample with values
 * and no attributes reads as v1.10), as v1.8.0/v1.9.0, whose Sample
 * numbers values 2, attribute_indices 3, link_index 4. Older shapes
 * (v1.7.0 and before: no stack_table) decode as neither: FDO_EPARSE.
 * One case stays ambiguous: a v1.8/v1.9 sample with values and
 * timestamps and no attributes reads as v1.10 (values as attribute
 * indices), so it counts its timestamps, not its values.
 *
 * Tables. Every index points into the request's dictionary; index 0 is
 * the zero element ("none"); an index past its table is an error.
 *
 * Frames. A sample's stack (stack_table) lists location indices, leaf
 * first; a location has a mapping and an address. A mapping's build-id
 * comes from its attributes: process.executable.build_id.gnu (hex, a
 * GNU build-id), else the OTel file id (.htlhash, named .profiling in
 * newer conventions; 32 hex digits, else unmapped: htlhash_unknown):
 * the GNU build-id of the uploaded file with that file id when the
 * caller knows one (opts->file_id), else the 16 bytes of the file id
 * themselves, as that frame's build-id (symbolized once such a file is
 * uploaded: aggregator/symwork.c), else .go (unmapped, go_build_id). (build-id, file offset) = address -
 * memory_start + file_offset: right for pprof-style process addresses
 * and for the eBPF profiler's ELF virtual addresses (its mappings then
 * start at the segment's vaddr). A location outside a GNU mapping's
 * [memory_start, memory_limit) is an error: a guess would put samples on
 * other code. Frames the sender symbolized (lines, and no mapping or
 * no build-id: kernel and interpreted frames) and every other frame that
 * does not map are unmapped, counted by reason (enum wire_otlp_reason);
 * a sample none of whose frames maps is left out, counted for the
 * reason of its leaf.
 *
 * Return addresses: as in pprof, a caller's address is inside its call
 * instruction (the eBPF profiler subtracts 1 from every non-leaf
 * frame); fdod's batches carry return addresses and ingest takes 1 off,
 * so a caller travels as its offset + 1 (see schemas/pprof.c).
 *
 * Count and period: a sample counts the sum of its values, else the
 * number of its timestamps (each 1); when sample_type's unit is
 * "nanoseconds" and Profile.period > 0, the sum is divided by the period
 * (rounded, at least 1). The period is Profile.period (else 1); the
 * event "cpu-clock" when period_type is cpu/nanoseconds, else
 * period_type's type, else sample_type's, else "samples". Other units
 * than "count", "nanoseconds" or none are refused (heap profiles...).
 *
 * Batches: one per (profile, binary, host, label set), from the
 * attribute mapping (wire_otlp_attrs_parse): resource attributes, then
 * the sample's. A sample without a binary is unmapped (no_binary).
 * Times: [time_unix_nano, + duration_nano] in seconds (end rounded up),
 * else the span of the profile's timestamps; neither is an error (the
 * stamp must not depend on the arrival: a retry must be a duplicate).
 *
 * Workload: one request every 5-60 s per host; ~10^4 samples, ~10^4
 * locations. Costs O(samples x frames + tables); memory: the decode
 * (bounded by max_decoded_bytes) and the batches (each bounded by
 * max_stacks, max_frames, max_mappings; at most max_batches).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/map.h"
#include "schemas/otlp_profiles.pb-c.h"
#include "schemas/wire_int.h"

#define OFF_MAX	    ((1ull << WIRE_FILE_SHIFT) - 2)
#define MAPPED	    WIRE_OTLP_REASONS
#define NO_INDEX    UINT32_MAX
#define MAX_BATCHES 64

#define P(name) Opentelemetry__Proto__Collector__Profiles__V1development__##name
#define D(name) opentelemetry__proto__collector__profiles__v1development__##name
#define V(name)                                                                \
	OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__ANY_VALUE__VALUE_##name
typedef P(ExportProfilesServiceRequest) Req;
typedef P(ExportProfilesServiceRequestV19) ReqV19;
typedef P(ProfilesDictionary) Dict;
typedef P(KeyValue) KeyValue;
typedef P(AnyValue) AnyValue;

static const struct {
	const char *name, *text;
} reasons[WIRE_OTLP_REASONS] = {
	[WIRE_OTLP_NO_LOCATION] = {"no_location",
				   "the sample's stack is empty"},
	[WIRE_OTLP_SYMBOLIZED] = {"symbolized",
				  "the frame was symbolized by the sender "
				  "(kernel or interpreted code): no build-id "
				  "and address to symbolize"},
	[WIRE_OTLP_NO_MAPPING] = {"no_mapping", "the location has no mapping"},
	[WIRE_OTLP_NO_ADDRESS] = {"no_address", "the location has no address"},
	[WIRE_OTLP_NO_BUILD_ID] = {"no_build_id",
				   "the mapping has no "
				   "process.executable.build_id.* attribute"},
	[WIRE_OTLP_HTLHASH_UNKNOWN] =
		{"htlhash_unknown",
		 "the mapping's only id, its file id "
		 "(process.executable.build_id.htlhash or .profiling), is "
		 "not 32 hex digits"},
	[WIRE_OTLP_GO_BUILD_ID] = {"go_build_id",
				   "the mapping has only a Go build ID "
				   "(link with -ldflags=-B=gobuildid or "
				   "-B=0x<hex> for a GNU one)"},
	[WIRE_OTLP_NOT_GNU] = {"not_gnu_build_id",
			       "process.executable.build_id.gnu is not a "
			       "build-id in hex"},
	[WIRE_OTLP_OFFSET_OUT_OF_RANGE] =
		{"offset_out_of_range",
		 "the location's file offset is past 2^40 - 2, more than fdod "
		 "stores"},
	[WIRE_OTLP_NO_BINARY] = {"no_binary",
				 "no attribute of the sample or its resource "
				 "names its binary (see --otlp-attributes)"},
};

const char *wire_otlp_reason_name(int r)
{
	return r >= 0 && r < WIRE_OTLP_REASONS ? reasons[r].name : "mapped";
}

const char *wire_otlp_reason_text(int r)
{
	return r >= 0 && r < WIRE_OTLP_REASONS ? reasons[r].text : "mapped";
}

/* ---------------------------------------------------- attribute map -- */

void wire_otlp_attrs_fini(struct wire_otlp_attrs *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->a[i].attr);
		free(a->a[i].label);
	}
	a->n = 0;
}

int wire_otlp_attrs_parse(const char *text, struct wire_otlp_attrs *out,
			  char *err, size_t errlen)
{
	out->n = 0;
	for (const char *p = text ? text : ""; *p;) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		if (!n) {
			p++;
			continue;
		}
		if (!eq || eq == p)
			return wire_errf(
				err, errlen, FDO_EINVAL,
				"'%.*s' is not ATTR=binary, ATTR=host or "
				"ATTR=label:KEY",
				(int)(n < 80 ? n : 80), p);
		if (out->n == WIRE_OTLP_ATTRS_MAX)
			return wire_errf(err, errlen, FDO_EINVAL,
					 "more than %d entries",
					 WIRE_OTLP_ATTRS_MAX);
		struct wire_otlp_attr *a = &out->a[out->n];
		const char *t = eq + 1;
		size_t tn = n - (size_t)(t - p);
		a->label = NULL;
		if (tn == 6 && !memcmp(t, "binary", 6))
			a->target = WIRE_OTLP_TO_BINARY;
		else if (tn == 4 && !memcmp(t, "host", 4))
			a->target = WIRE_OTLP_TO_HOST;
		else if (tn > 6 && !memcmp(t, "label:", 6))
			a->target = WIRE_OTLP_TO_LABEL;
		else
			return wire_errf(
				err, errlen, FDO_EINVAL,
				"'%.*s': the target is binary, host or "
				"label:KEY",
				(int)(n < 80 ? n : 80), p);
		if (!(a->attr = strndup(p, (size_t)(eq - p))))
			return FDO_ENOMEM;
		out->n++;
		if (a->target == WIRE_OTLP_TO_LABEL) {
			a->label = strndup(t + 6, tn - 6);
			if (!a->label)
				return FDO_ENOMEM;
			Fdod__Label l = FDOD__LABEL__INIT;
			l.key = a->label;
			l.value = (char *)"x";
			char why[200];
			if (wire_check_label(&l, &wire_limits_default, why,
					     sizeof why))
				return wire_errf(err, errlen, FDO_EINVAL,
						 "label key '%.64s': %s",
						 a->label, why);
		}
		p += n;
	}
	return FDO_OK;
}

/* --------------------------------------------------- normal form ---- */

/* A sample, whichever shape it came in. */
struct osample {
	int32_t stack;
	const int32_t *attrs;
	size_t nattrs;
	const int64_t *values;
	size_t nvalues;
	size_t nts;
	uint64_t ts_min, ts_max;
};

/* A profile, whichever shape. */
struct oprof {
	const P(Resource) * res;
	const P(ValueType) * sample_type, *period_type;
	uint64_t time, dur;
	int64_t period;
	struct osample *s;
	size_t n;
};

/* A mapping of the dictionary, resolved once. */
struct omap {
	int state; /* MAPPED, or why its frames are not */
	uint8_t bid[FDO_BUILD_ID_MAX];
	uint8_t len;
};

/* A location, resolved once. */
struct oloc {
	int state;
	int32_t map;
	uint64_t off;
};

/* One batch being made: a (profile, binary, host, label set). */
struct group {
	char *key; /* profile index, binary, host, labels: NUL-separated */
	size_t keylen;
	Fdod__SampleBatch *b;
	uint32_t *mapix; /* dictionary mapping -> batch mapping, NO_INDEX */
	int32_t *used;	 /* batch mapping -> dictionary mapping */
	size_t nused, cap_used, cap_stacks, frames;
};

/* A (profile, sample attribute list) seen before and its group: who_of
 * and group_of depend on nothing else, so samples that repeat a list
 * (most: one per thread and process) skip them and their formatting. */
struct seen {
	size_t pi;
	const int32_t *attrs; /* into the decoded request */
	size_t nattrs;
	uint32_t group; /* index into dec.groups, NO_INDEX: no binary */
};

struct dec {
	const Dict *dict;
	const struct wire_otlp_opts *o;
	const struct wire_limits *lim;
	struct wire_otlp_stats *st;
	char *err;
	size_t errlen;
	struct oprof *profs;
	size_t nprofs;
	struct osample *samples; /* every profile's, one allocation */
	struct omap *maps;
	struct oloc *locs;
	struct group *groups;
	size_t ngroups, cap_groups, max_groups;
	struct seen *seen;
	size_t nseen, cap_seen;
	struct fdo_map64 seen_at; /* hash of (pi, list) -> index in seen */
	uint64_t *scratch;
};

static size_t n_strings(const struct dec *d)
{
	return d->dict ? d->dict->n_string_table : 0;
}

/* String index i, for what: "" for 0 (and an empty table). */
static int str_at(struct dec *d, int32_t i, const char *what, const char **out)
{
	if (i == 0 && n_strings(d) == 0) {
		*out = "";
		return FDO_OK;
	}
	if (i < 0 || (size_t)i >= n_strings(d))
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "%s: string index %d out of the string table "
				 "(%zu strings)",
				 what, i, n_strings(d));
	*out = d->dict->string_table[i];
	return FDO_OK;
}

/* Attribute index i: its key and value (value may be NULL). */
static int attr_at(struct dec *d, int32_t i, const char *what, const char **key,
		   const AnyValue **val)
{
	size_t n = d->dict ? d->dict->n_attribute_table : 0;
	if (i < 0 || (size_t)i >= n) {
		if (i == 0) {
			*key = "";
			*val = NULL;
			return FDO_OK;
		}
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "%s: attribute index %d out of the attribute "
				 "table (%zu)",
				 what, i, n);
	}
	const P(KeyValueAndUnit) *kv = d->dict->attribute_table[i];
	*val = kv->value;
	return str_at(d, kv->key_strindex, what, key);
}

/* An attribute value as label text into buf; 0 when it makes none. */
static int value_text(const AnyValue *v, char *buf, size_t cap)
{
	if (!v)
		return 0;
	switch (v->value_case) {
	case V(STRING_VALUE): {
		/* snprintf's "%s" without its cost: the same truncation. */
		size_t n = strnlen(v->string_value, cap - 1);
		memcpy(buf, v->string_value, n);
		buf[n] = 0;
		return 1;
	}
	case V(INT_VALUE):
		snprintf(buf, cap, "%lld", (long long)v->int_value);
		return 1;
	case V(BOOL_VALUE):
		snprintf(buf, cap, "%s", v->bool_value ? "true" : "false");
		return 1;
	case V(DOUBLE_VALUE):
		if (!isfinite(v->double_value))
			return 0;
		snprintf(buf, cap, "%.17g", v->double_value);
		return 1;
	default:
		return 0;
	}
}

/* ------------------------------------------------------- decoding --- */

static void fill_sample(struct osample *o, int32_t stack, const int32_t *attrs,
			size_t nattrs, const int64_t *values, size_t nvalues,
			const uint64_t *ts, size_t nts)
{
	*o = (struct osample){stack,   attrs, nattrs,	  values,
			      nvalues, nts,   UINT64_MAX, 0};
	for (size_t i = 0; i < nts; i++) {
		o->ts_min = ts[i] < o->ts_min ? ts[i] : o->ts_min;
		o->ts_max = ts[i] > o->ts_max ? ts[i] : o->ts_max;
	}
}

/* The profiles and samples of a request of shape v1.10 (v19 0) or
 * v1.8/v1.9, in normal form. The two trees differ only in Sample. */
#define NORMALIZE(REQ, SAMPLE_FILL)                                            \
	do {                                                                   \
		size_t np = 0, ns = 0;                                         \
		for (size_t r = 0; r < (REQ)->n_resource_profiles; r++)        \
			for (size_t s = 0;                                     \
			     s <                                               \
			     (REQ)->resource_profiles[r]->n_scope_profiles;    \
			     s++) {                                            \
				__typeof__((REQ)->resource_profiles[r]         \
						   ->scope_profiles[s]) sp =   \
					(REQ)->resource_profiles[r]            \
						->scope_profiles[s];           \
				np += sp->n_profiles;                          \
				for (size_t p = 0; p < sp->n_profiles; p++)    \
					ns += sp->profiles[p]->n_samples;      \
			}                                                      \
		d->profs = calloc(np + 1, sizeof *d->profs);                   \
		d->samples = calloc(ns + 1, sizeof *d->samples);               \
		if (!d->profs || !d->samples)                                  \
			return FDO_ENOMEM;                                     \
		struct osample *at = d->samples;                               \
		for (size_t r = 0; r < (REQ)->n_resource_profiles; r++) {      \
			__typeof__((REQ)->resource_profiles[r]) rp =           \
				(REQ)->resource_profiles[r];                   \
			for (size_t s = 0; s < rp->n_scope_profiles; s++) {    \
				__typeof__(rp->scope_profiles[s]) sp =         \
					rp->scope_profiles[s];                 \
				for (size_t p = 0; p < sp->n_profiles; p++) {  \
					__typeof__(sp->profiles[p]) pr =       \
						sp->profiles[p];               \
					struct oprof *o =                      \
						&d->profs[d->nprofs++];        \
					*o = (struct oprof){                   \
						rp->resource,                  \
						pr->sample_type,               \
						pr->period_type,               \
						pr->time_unix_nano,            \
						pr->duration_nano,             \
						pr->period,                    \
						at,                            \
						pr->n_samples};                \
					for (size_t i = 0; i < pr->n_samples;  \
					     i++)                              \
						SAMPLE_FILL(at++,              \
							    pr->samples[i]);   \
				}                                              \
			}                                                      \
		}                                                              \
	} while (0)

#define FILL(o, x)                                                             \
	fill_sample(o, (x)->stack_index, (x)->attribute_indices,               \
		    (x)->n_attribute_indices, (x)->values, (x)->n_values,      \
		    (x)->timestamps_unix_nano, (x)->n_timestamps_unix_nano)

static int normalize(struct dec *d, const Req *q)
{
	NORMALIZE(q, FILL);
	return FDO_OK;
}

static int normalize_v19(struct dec *d, const ReqV19 *q)
{
	NORMALIZE(q, FILL);
	return FDO_OK;
}

/* Does a v1.10 reading look like a v1.8/v1.9 request (see the top)? */
static int looks_v19(const Req *q)
{
	for (size_t r = 0; r < q->n_resource_profiles; r++)
		for (size_t s = 0;
		     s < q->resource_profiles[r]->n_scope_profiles; s++) {
			const P(ScopeProfiles) *sp =
				q->resource_profiles[r]->scope_profiles[s];
			for (size_t p = 0; p < sp->n_profiles; p++)
				for (size_t i = 0;
				     i < sp->profiles[p]->n_samples; i++) {
					const P(Sample) *x =
						sp->profiles[p]->samples[i];
					if (x->n_attribute_indices &&
					    !x->n_values &&
					    !x->n_timestamps_unix_nano)
						return 1;
				}
		}
	return 0;
}

/* --------------------------------------------- mappings, locations -- */

/* A mapping whose only id is an OTel file id (hex htl): keyed by the GNU
 * build-id of the file with that file id when the caller knows it, else
 * by the file id's 16 bytes. */
static int file_id_mapping(struct dec *d, const char *htl, struct omap *om,
			   size_t *len)
{
	uint8_t fid[FDO_BUILD_ID_MAX];
	size_t n;
	if (strlen(htl) != 2 * FDO_FILE_ID_SIZE ||
	    wire_build_id_hex((const uint8_t *)htl, strlen(htl), fid, &n))
		return WIRE_OTLP_HTLHASH_UNKNOWN;
	if (d->st)
		d->st->file_id_mappings++;
	if (d->o->file_id &&
	    d->o->file_id(d->o->file_id_arg, fid, om->bid, len) == 0 &&
	    *len >= 1 && *len <= FDO_BUILD_ID_MAX) {
		if (d->st)
			d->st->file_id_resolved++;
		return MAPPED;
	}
	memcpy(om->bid, fid, FDO_FILE_ID_SIZE);
	*len = FDO_FILE_ID_SIZE;
	return MAPPED;
}

static int read_mappings(struct dec *d)
{
	size_t n = d->dict ? d->dict->n_mapping_table : 0;
	if (!(d->maps = calloc(n + 1, sizeof *d->maps)))
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const P(Mapping) *m = d->dict->mapping_table[i];
		struct omap *om = &d->maps[i];
		const char *gnu = NULL, *htl = NULL, *go = NULL, *f;
		int rc =
			str_at(d, m->filename_strindex, "mapping filename", &f);
		if (rc)
			return rc;
		for (size_t k = 0; k < m->n_attribute_indices; k++) {
			const char *key;
			const AnyValue *v;
			if ((rc = attr_at(d, m->attribute_indices[k],
					  "mapping attribute", &key, &v)))
				return rc;
			if (!v || v->value_case != V(STRING_VALUE))
				continue;
			if (!strcmp(key, "process.executable.build_id.gnu"))
				gnu = v->string_value;
			else if (!strcmp(key,
					 "process.executable.build_id.htlhash") ||
				 !strcmp(key, "process.executable.build_id."
					      "profiling"))
				htl = v->string_value;
			else if (!strcmp(key, "process.executable.build_id.go"))
				go = v->string_value;
		}
		size_t len = 0;
		if (gnu && gnu[0])
			om->state = wire_build_id_hex((const uint8_t *)gnu,
						      strlen(gnu), om->bid,
						      &len)
					    ? WIRE_OTLP_NOT_GNU
					    : MAPPED;
		else if (htl && htl[0])
			om->state = file_id_mapping(d, htl, om, &len);
		else if (go && go[0])
			om->state = WIRE_OTLP_GO_BUILD_ID;
		else
			om->state = WIRE_OTLP_NO_BUILD_ID;
		om->len = (uint8_t)len;
	}
	return FDO_OK;
}

static int read_locations(struct dec *d)
{
	size_t n = d->dict ? d->dict->n_location_table : 0;
	size_t nm = d->dict ? d->dict->n_mapping_table : 0;
	if (!(d->locs = calloc(n + 1, sizeof *d->locs)))
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const P(Location) *l = d->dict->location_table[i];
		struct oloc *ol = &d->locs[i];
		int32_t mi = l->mapping_index;
		ol->map = -1;
		if (mi < 0 || (mi > 0 && (size_t)mi >= nm))
			return wire_errf(
				d->err, d->errlen, FDO_EINVAL,
				"location %zu: mapping %d is not in the "
				"mapping table (%zu)",
				i, mi, nm);
		/* mapping_table[0] is "none", whatever it holds. */
		const struct omap *om = mi > 0 ? &d->maps[mi] : NULL;
		if (!om || om->state != MAPPED) {
			ol->state = l->n_lines ? WIRE_OTLP_SYMBOLIZED
				    : om       ? om->state
					       : WIRE_OTLP_NO_MAPPING;
			continue;
		}
		if (!l->address) {
			ol->state = WIRE_OTLP_NO_ADDRESS;
			continue;
		}
		const P(Mapping) *m = d->dict->mapping_table[mi];
		if (l->address < m->memory_start ||
		    l->address >= m->memory_limit)
			return wire_errf(
				d->err, d->errlen, FDO_EINVAL,
				"location %zu: address %#llx is outside "
				"its mapping %d [%#llx, %#llx)",
				i, (unsigned long long)l->address, mi,
				(unsigned long long)m->memory_start,
				(unsigned long long)m->memory_limit);
		uint64_t rel = l->address - m->memory_start;
		if (m->file_offset > OFF_MAX ||
		    rel > OFF_MAX - m->file_offset) {
			ol->state = WIRE_OTLP_OFFSET_OUT_OF_RANGE;
			continue;
		}
		ol->state = MAPPED;
		ol->map = mi;
		ol->off = m->file_offset + rel;
	}
	return FDO_OK;
}

/* ------------------------------------------------------- grouping --- */

/* The binary, host and labels of sample s of profile p, as a key. */
struct who {
	char binary[257], host[257];
	const char *keys[WIRE_OTLP_ATTRS_MAX];
	char vals[WIRE_OTLP_ATTRS_MAX][257];
	size_t n;
};

/* Apply the attributes idx[0..n) (or a resource's kvs) to w. */
static void apply(const struct wire_otlp_attrs *m, struct who *w,
		  const char *key, const AnyValue *v, int *bin_rank,
		  int *host_rank)
{
	char text[257];
	for (size_t k = 0; k < m->n; k++) {
		const struct wire_otlp_attr *a = &m->a[k];
		if (strcmp(a->attr, key) || !value_text(v, text, sizeof text))
			continue;
		if (a->target == WIRE_OTLP_TO_BINARY && (int)k < *bin_rank) {
			memcpy(w->binary, text, sizeof text);
			*bin_rank = (int)k;
		} else if (a->target == WIRE_OTLP_TO_HOST &&
			   (int)k < *host_rank) {
			memcpy(w->host, text, sizeof text);
			*host_rank = (int)k;
		} else if (a->target == WIRE_OTLP_TO_LABEL) {
			size_t j = 0;
			while (j < w->n && strcmp(w->keys[j], a->label))
				j++;
			if (j == w->n)
				w->keys[w->n++] = a->label;
			memcpy(w->vals[j], text, sizeof text);
		}
	}
}

static int who_of(struct dec *d, const struct oprof *p, const struct osample *s,
		  struct who *w)
{
	const struct wire_otlp_attrs *m = d->o->attrs;
	w->binary[0] = w->host[0] = 0;
	w->n = 0;
	if (!m)
		return FDO_OK;
	/* Resource first, then the sample's over it: ranks restart. */
	int br = INT32_MAX, hr = INT32_MAX;
	for (size_t i = 0; p->res && i < p->res->n_attributes; i++) {
		const KeyValue *kv = p->res->attributes[i];
		apply(m, w, kv->key ? kv->key : "", kv->value, &br, &hr);
	}
	int sbr = INT32_MAX, shr = INT32_MAX;
	struct who sw = *w;
	sw.binary[0] = sw.host[0] = 0;
	for (size_t i = 0; i < s->nattrs; i++) {
		const char *key;
		const AnyValue *v;
		int rc = attr_at(d, s->attrs[i], "sample attribute", &key, &v);
		if (rc)
			return rc;
		apply(m, &sw, key, v, &sbr, &shr);
	}
	if (sw.binary[0])
		memcpy(w->binary, sw.binary, sizeof w->binary);
	if (sw.host[0])
		memcpy(w->host, sw.host, sizeof w->host);
	w->n = sw.n;
	memcpy(w->keys, sw.keys, sizeof w->keys);
	memcpy(w->vals, sw.vals, sizeof w->vals);
	return FDO_OK;
}

/* The event of a profile (see the top). */
static int event_of(struct dec *d, const struct oprof *p, char *out, size_t cap)
{
	const char *pt = "", *pu = "", *stt = "";
	int rc;
	if (p->period_type && ((rc = str_at(d, p->period_type->type_strindex,
					    "period_type", &pt)) ||
			       (rc = str_at(d, p->period_type->unit_strindex,
					    "period_type", &pu))))
		return rc;
	if (p->sample_type && (rc = str_at(d, p->sample_type->type_strindex,
					   "sample_type", &stt)))
		return rc;
	if (!strcmp(pt, "cpu") && !strcmp(pu, "nanoseconds"))
		snprintf(out, cap, "cpu-clock");
	else
		snprintf(out, cap, "%s", pt[0] ? pt : stt[0] ? stt : "samples");
	return FDO_OK;
}

/* Time window of profile p in seconds (see the top). */
static int times_of(struct dec *d, const struct oprof *p, uint64_t *start,
		    uint64_t *end)
{
	uint64_t t0 = p->time, t1 = p->time + p->dur;
	if (!t0 || t1 < t0) {
		t0 = UINT64_MAX;
		t1 = 0;
		for (size_t i = 0; i < p->n; i++)
			if (p->s[i].nts) {
				t0 = p->s[i].ts_min < t0 ? p->s[i].ts_min : t0;
				t1 = p->s[i].ts_max > t1 ? p->s[i].ts_max : t1;
			}
		if (t0 == UINT64_MAX || !t0)
			return wire_errf(
				d->err, d->errlen, FDO_EINVAL,
				"a profile has no time_unix_nano and no "
				"sample timestamps: when was it "
				"collected?");
	}
	*start = t0 / 1000000000u;
	*end = t1 / 1000000000u + (t1 % 1000000000u != 0);
	return FDO_OK;
}

/* The group of (profile pi, w): found, or made with its batch. */
static int group_of(struct dec *d, size_t pi, struct who *w, struct group **out)
{
	/* Sort (key, value) pairs by key: a few, insertion sort. */
	for (size_t i = 1; i < w->n; i++)
		for (size_t j = i;
		     j > 0 && strcmp(w->keys[j - 1], w->keys[j]) > 0; j--) {
			const char *k = w->keys[j];
			char v[257];
			w->keys[j] = w->keys[j - 1];
			w->keys[j - 1] = k;
			memcpy(v, w->vals[j], sizeof v);
			memcpy(w->vals[j], w->vals[j - 1], sizeof v);
			memcpy(w->vals[j - 1], v, sizeof v);
		}
	const char *host = w->host[0] ? w->host : d->o->host ? d->o->host : "";
	struct fdo_buf key;
	fdo_buf_init(&key);
	fdo_buf_printf(&key, "%zu", pi);
	fdo_buf_putc(&key, 0);
	fdo_buf_puts(&key, w->binary);
	fdo_buf_putc(&key, 0);
	fdo_buf_puts(&key, host);
	fdo_buf_putc(&key, 0);
	for (size_t i = 0; i < w->n; i++) {
		fdo_buf_printf(&key, "%s=%s", w->keys[i], w->vals[i]);
		fdo_buf_putc(&key, 0);
	}
	if (key.oom) {
		fdo_buf_fini(&key);
		return FDO_ENOMEM;
	}
	for (size_t g = 0; g < d->ngroups; g++)
		if (d->groups[g].keylen == key.len &&
		    !memcmp(d->groups[g].key, key.data, key.len)) {
			fdo_buf_fini(&key);
			*out = &d->groups[g];
			return FDO_OK;
		}
	if (d->ngroups == d->max_groups) {
		fdo_buf_fini(&key);
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu (profile, binary, host, label "
				 "set) batches in one request: send fewer "
				 "profiles at once",
				 d->max_groups);
	}
	if (fdo_grow_zeroed(d->groups, d->cap_groups, d->ngroups + 1)) {
		fdo_buf_fini(&key);
		return FDO_ENOMEM;
	}
	struct group *g = &d->groups[d->ngroups++];
	g->key = fdo_buf_steal(&key, &g->keylen);
	const struct oprof *p = &d->profs[pi];
	char event[128];
	int rc = event_of(d, p, event, sizeof event);
	if (rc || (rc = wire_batch_start(event, host, &g->b)))
		return rc;
	Fdod__SampleBatch *b = g->b;
	b->seq = d->ngroups;
	b->period = p->period > 0 ? (uint64_t)p->period : 1;
	if ((rc = times_of(d, p, &b->time_start, &b->time_end)))
		return rc;
	if (!(b->agent_id = strdup("otlp")) || !(b->binary = strdup(w->binary)))
		return FDO_ENOMEM;
	char *kv[WIRE_OTLP_ATTRS_MAX];
	char buf[WIRE_OTLP_ATTRS_MAX][64 + 1 + 257];
	for (size_t i = 0; i < w->n; i++) {
		snprintf(buf[i], sizeof buf[i], "%s=%s", w->keys[i],
			 w->vals[i]);
		kv[i] = buf[i];
	}
	if ((rc = wire_batch_add_labels(b, (const char *const *)kv, w->n)))
		return rc;
	size_t nm = d->dict ? d->dict->n_mapping_table : 0;
	if (!(g->mapix = malloc((nm + 1) * sizeof *g->mapix)) ||
	    !(b->stacks = malloc(sizeof *b->stacks)))
		return FDO_ENOMEM;
	memset(g->mapix, 0xff, (nm + 1) * sizeof *g->mapix);
	g->cap_stacks = 1;
	*out = g;
	return FDO_OK;
}

/* The batch mapping of dictionary mapping mi in group g. */
static int mapping_index(struct dec *d, struct group *g, int32_t mi,
			 uint32_t *out)
{
	if (g->mapix[mi] != NO_INDEX) {
		*out = g->mapix[mi];
		return FDO_OK;
	}
	if (g->nused >= d->lim->max_mappings)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu mapped files in a batch",
				 d->lim->max_mappings);
	if (fdo_grow(g->used, g->cap_used, g->nused + 1))
		return FDO_ENOMEM;
	g->mapix[mi] = (uint32_t)g->nused;
	g->used[g->nused++] = mi;
	*out = g->mapix[mi];
	return FDO_OK;
}

/* ------------------------------------------------------- samples ---- */

/* The count of sample s of profile p (0: nothing); FDO_EINVAL for a
 * unit that is not a count. */
static int count_of(struct dec *d, const struct oprof *p,
		    const struct osample *s, uint64_t *out)
{
	const char *unit = "";
	int rc;
	if (p->sample_type && (rc = str_at(d, p->sample_type->unit_strindex,
					   "sample_type", &unit)))
		return rc;
	int ns = !strcmp(unit, "nanoseconds");
	if (!ns && unit[0] && strcmp(unit, "count"))
		return wire_errf(d->err, d->errlen, FDO_EINVAL,
				 "sample_type unit '%.64s': fdod counts "
				 "samples (count) or time (nanoseconds)",
				 unit);
	if (!s->nvalues) {
		*out = s->nts;
		return FDO_OK;
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < s->nvalues; i++)
		if (s->values[i] > 0) {
			uint64_t v = (uint64_t)s->values[i];
			sum = sum > UINT64_MAX - v ? UINT64_MAX : sum + v;
		}
	if (ns && p->period > 0 && sum) {
		uint64_t per = (uint64_t)p->period;
		uint64_t c = sum / per + (sum % per >= per - per / 2);
		sum = c ? c : 1;
	}
	*out = sum;
	return FDO_OK;
}

/* The map key of sample s of profile pi's attribute list (never 0). */
static uint64_t seen_key(size_t pi, const struct osample *s)
{
	uint64_t h = fdo_mix64(
		pi ^ fdo_hash_words(s->attrs, s->nattrs * sizeof *s->attrs));
	return h ? h : 1;
}

/* The group of sample s of profile pi when its list was seen: 1 and
 * *group (NO_INDEX: no binary), else 0. A hash shared by two lists
 * keeps the first: the other is never found, only not cached. */
static int seen_get(const struct dec *d, size_t pi, const struct osample *s,
		    uint64_t key, uint32_t *group)
{
	uint32_t i;
	if (!fdo_map64_get(&d->seen_at, key, &i))
		return 0;
	const struct seen *e = &d->seen[i];
	if (e->pi != pi || e->nattrs != s->nattrs ||
	    (s->nattrs &&
	     memcmp(e->attrs, s->attrs, s->nattrs * sizeof *s->attrs)))
		return 0;
	*group = e->group;
	return 1;
}

static int seen_put(struct dec *d, size_t pi, const struct osample *s,
		    uint64_t key, uint32_t group)
{
	uint32_t i;
	int found;
	if (fdo_grow(d->seen, d->cap_seen, d->nseen + 1) ||
	    fdo_map64_put(&d->seen_at, key, (uint32_t)d->nseen, &i, &found))
		return FDO_ENOMEM;
	if (!found)
		d->seen[d->nseen++] =
			(struct seen){pi, s->attrs, s->nattrs, group};
	return FDO_OK;
}

static void unmapped(struct dec *d, uint64_t count, int reason)
{
	d->st->count_unmapped += count;
	d->st->count_unmapped_by[reason] += count;
}

static int add_sample(struct dec *d, size_t pi, const struct osample *s)
{
	const struct oprof *p = &d->profs[pi];
	struct wire_otlp_stats *st = d->st;
	uint64_t count = 0;
	int rc = count_of(d, p, s, &count);
	if (rc)
		return rc;
	if (!count) {
		st->samples_empty++;
		return FDO_OK;
	}
	if (count > d->lim->max_count)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "a sample counts %llu, limit %llu",
				 (unsigned long long)count,
				 (unsigned long long)d->lim->max_count);
	st->count += count;
	size_t nstacks = d->dict ? d->dict->n_stack_table : 0;
	if (s->stack < 0 || (s->stack > 0 && (size_t)s->stack >= nstacks))
		return wire_errf(
			d->err, d->errlen, FDO_EINVAL,
			"a sample's stack %d is not in the stack table "
			"(%zu)",
			s->stack, nstacks);
	const P(Stack) *sk = s->stack ? d->dict->stack_table[s->stack] : NULL;
	size_t n = sk ? sk->n_location_indices : 0;
	size_t nl = d->dict ? d->dict->n_location_table : 0;
	for (size_t k = 0; k < n; k++) {
		int32_t li = sk->location_indices[k];
		if (li < 0 || (li > 0 && (size_t)li >= nl))
			return wire_errf(d->err, d->errlen, FDO_EINVAL,
					 "stack %d: location %d is not in the "
					 "location table (%zu)",
					 s->stack, li, nl);
	}
	uint64_t key = seen_key(pi, s);
	uint32_t gi = NO_INDEX;
	int known = seen_get(d, pi, s, key, &gi);
	struct who w;
	if (!known && (rc = who_of(d, p, s, &w)))
		return rc;
	size_t depth = n < d->lim->max_stack_depth ? n
						   : d->lim->max_stack_depth;
	st->frames += depth;
	st->frames_dropped += n - depth;
	if (known ? gi == NO_INDEX : !w.binary[0]) {
		if (!known && (rc = seen_put(d, pi, s, key, NO_INDEX)))
			return rc;
		st->frames_unmapped_by[WIRE_OTLP_NO_BINARY] += depth;
		unmapped(d, count, WIRE_OTLP_NO_BINARY);
		return FDO_OK;
	}
	struct group *g = NULL;
	if (known)
		g = &d->groups[gi];
	else if ((rc = group_of(d, pi, &w, &g)) ||
		 (rc = seen_put(d, pi, s, key, (uint32_t)(g - d->groups))))
		return rc;
	int mapped = 0, leaf = WIRE_OTLP_NO_LOCATION;
	for (size_t k = 0; k < depth; k++) {
		int32_t li = sk->location_indices[k];
		const struct oloc *ol = li ? &d->locs[li] : NULL;
		int state = ol ? ol->state : WIRE_OTLP_NO_LOCATION;
		if (k == 0)
			leaf = state;
		if (state != MAPPED) {
			st->frames_unmapped_by[state]++;
			d->scratch[k] = 0;
			continue;
		}
		uint32_t mi = 0;
		if ((rc = mapping_index(d, g, ol->map, &mi)))
			return rc;
		d->scratch[k] = wire_file_addr(mi, ol->off + (k > 0));
		mapped = 1;
	}
	if (!mapped) {
		unmapped(d, count, leaf);
		return FDO_OK;
	}
	Fdod__SampleBatch *b = g->b;
	if (b->n_stacks >= d->lim->max_stacks)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu stacks in one batch (the limit "
				 "of a batch): send fewer samples at once",
				 d->lim->max_stacks);
	if (g->frames + depth > d->lim->max_frames)
		return wire_errf(d->err, d->errlen, FDO_ELIMIT,
				 "more than %zu frames in one batch (the limit "
				 "of a batch): send fewer samples at once",
				 d->lim->max_frames);
	if (fdo_grow(b->stacks, g->cap_stacks, b->n_stacks + 1))
		return FDO_ENOMEM;
	g->frames += depth;
	return wire_batch_add_stack(b, d->scratch, depth, count);
}

/* The batch's mappings: the dictionary mappings its stacks use. */
static int set_mappings(struct dec *d, struct group *g)
{
	Fdod__SampleBatch *b = g->b;
	if (!(b->mappings = calloc(g->nused + 1, sizeof *b->mappings)))
		return FDO_ENOMEM;
	for (size_t k = 0; k < g->nused; k++) {
		const struct omap *om = &d->maps[g->used[k]];
		const char *path = "";
		if (str_at(d,
			   d->dict->mapping_table[g->used[k]]->filename_strindex,
			   "filename", &path))
			path = "";
		int rc = wire_batch_add_file(b, om->bid, om->len, path, d->lim);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

static int build(struct dec *d)
{
	int rc;
	if ((rc = read_mappings(d)) || (rc = read_locations(d)))
		return rc;
	size_t depth = d->lim->max_stack_depth ? d->lim->max_stack_depth : 1;
	if (!(d->scratch = malloc(depth * sizeof *d->scratch)))
		return FDO_ENOMEM;
	d->st->profiles = d->nprofs;
	for (size_t pi = 0; pi < d->nprofs; pi++) {
		d->st->samples += d->profs[pi].n;
		for (size_t i = 0; i < d->profs[pi].n; i++)
			if ((rc = add_sample(d, pi, &d->profs[pi].s[i])))
				return rc;
	}
	for (size_t g = 0; g < d->ngroups; g++) {
		if (!d->groups[g].b->n_stacks)
			continue;
		char why[400];
		if ((rc = set_mappings(d, &d->groups[g])))
			return rc;
		if ((rc = wire_batch_validate(d->groups[g].b, d->lim, why,
					      sizeof why)))
			return wire_errf(d->err, d->errlen, rc,
					 "batch of binary '%.256s': %s",
					 d->groups[g].b->binary, why);
	}
	return FDO_OK;
}

/* Decode buf as one shape; FDO_OK with *msg. */
static int decode_as(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
		     size_t len, const struct wire_limits *lim,
		     ProtobufCMessage **msg)
{
	return wire_decode_bounded(desc, buf, len, lim->max_decoded_bytes,
				   lim->max_decoded_bytes, msg);
}

int wire_otlp_decode(const uint8_t *buf, size_t len,
		     const struct wire_otlp_opts *o,
		     struct wire_otlp_result *out, struct wire_otlp_stats *st,
		     char *err, size_t errlen)
{
	struct wire_otlp_stats scratch_st;
	if (!st)
		st = &scratch_st;
	memset(st, 0, sizeof *st);
	memset(out, 0, sizeof *out);
	if (err && errlen)
		err[0] = 0;
	const struct wire_limits *lim = o->limits ? o->limits
						  : &wire_limits_default;
	ProtobufCMessage *a = NULL, *b = NULL;
	int rc = decode_as(&D(export_profiles_service_request__descriptor), buf,
			   len, lim, &a);
	if (rc == FDO_EPARSE || (!rc && looks_v19((const Req *)a))) {
		int rb = decode_as(
			&D(export_profiles_service_request_v19__descriptor),
			buf, len, lim, &b);
		if (!rb) {
			if (a)
				protobuf_c_message_free_unpacked(a, NULL);
			a = NULL;
			rc = FDO_OK;
		} else if (rc) {
			rc = rb == FDO_EPARSE ? rc : rb;
		}
	}
	if (rc == FDO_EPARSE)
		return wire_errf(err, errlen, rc,
				 "not an OTLP ExportProfilesServiceRequest of "
				 "opentelemetry-proto v1.8.0 or later "
				 "(profiles/v1development with a stack_table), "
				 "or cut short (%zu bytes that do not decode)",
				 len);
	if (rc == FDO_ELIMIT)
		return wire_errf(err, errlen, rc,
				 "the request (%zu bytes) takes more than %zu "
				 "bytes to decode: send it in parts",
				 len, lim->max_decoded_bytes);
	if (rc)
		return wire_errf(err, errlen, rc,
				 "out of memory decoding the request (%zu "
				 "bytes)",
				 len);
	struct dec d = {.o = o,
			.lim = lim,
			.st = st,
			.err = err,
			.errlen = errlen,
			.max_groups = o->max_batches ? o->max_batches
						     : MAX_BATCHES};
	if (a) {
		st->shape = "v1.10";
		d.dict = ((const Req *)a)->dictionary;
		rc = normalize(&d, (const Req *)a);
	} else {
		st->shape = "v1.8";
		d.dict = ((const ReqV19 *)b)->dictionary;
		rc = normalize_v19(&d, (const ReqV19 *)b);
	}
	if (!rc)
		rc = build(&d);
	if (!rc &&
	    !(out->batches = calloc(d.ngroups + 1, sizeof *out->batches)))
		rc = FDO_ENOMEM;
	if (rc == FDO_ENOMEM)
		wire_errf(err, errlen, rc, "out of memory");
	for (size_t g = 0; g < d.ngroups; g++) {
		struct group *x = &d.groups[g];
		if (!rc && x->b->n_stacks) {
			/* Kept in order: seq 1..n. */
			x->b->seq = out->n + 1;
			out->batches[out->n++] = x->b;
		} else {
			wire_batch_free(x->b);
		}
		free(x->key);
		free(x->mapix);
		free(x->used);
	}
	if (rc) {
		free(out->batches);
		memset(out, 0, sizeof *out);
	}
	free(d.groups);
	free(d.seen);
	fdo_map64_fini(&d.seen_at);
	free(d.profs);
	free(d.samples);
	free(d.maps);
	free(d.locs);
	free(d.scratch);
	protobuf_c_message_free_unpacked(a ? a : b, NULL);
	return rc;
}

void wire_otlp_result_fini(struct wire_otlp_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		wire_batch_free(r->batches[i]);
	free(r->batches);
	r->batches = NULL;
	r->n = 0;
}
