/*
 * bench/ingest/otlp_req.c — the pusher's stacks as an OTLP
 * ExportProfilesServiceRequest (opentelemetry-proto v1.10 and later, as
 * schemas/otlp_profiles.proto has it) shaped like the OpenTelemetry eBPF
 * profiler's requests: the dictionary's tables (strings, attributes, one
 * mapping, the request's distinct locations, a stack per sample), the
 * mapping in ELF virtual addresses with a process.executable.build_id.gnu
 * attribute, callers as return address - 1, a sample per stack with the
 * binary and thread as sample attributes, and either one timestamp per
 * sample counted (what the profiler sends) or values.
 *
 * Workload: one request per pusher in flight, 1,000 stacks of 20 frames
 * by default, ~17,000 distinct locations. Every array is allocated once,
 * for the largest request; a build fills them, dedupes locations in an
 * open-addressing table reset by a generation stamp (no clearing), packs
 * with protobuf-c and gzips with zlib at level 1 (the pusher shares the
 * CPUs with fdod; a sender's level costs fdod nothing).
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "bench/ingest/otlp_req.h"
#include "schemas/otlp_profiles.pb-c.h"

#define P(name) Opentelemetry__Proto__Collector__Profiles__V1development__##name
#define D(name) opentelemetry__proto__collector__profiles__v1development__##name

/* The string table; indices are fixed. */
enum {
	S_NONE,
	S_SAMPLES,
	S_COUNT,
	S_CPU,
	S_NS,
	S_PATH,
	S_BID,
	S_EXE,
	S_THREAD,
	S_N
};
/* The attribute table. */
enum { A_NONE, A_BID, A_EXE, A_THREAD, A_N };

#define MAX_LABELS 16

struct otlp_req {
	struct otlp_req_shape shape;
	/* the message and the parts that do not change */
	P(ExportProfilesServiceRequest) req;
	P(ProfilesDictionary) dict;
	P(ResourceProfiles) rp, *rpp;
	P(Resource) res;
	P(KeyValue) kv[MAX_LABELS + 1], *kvp[MAX_LABELS + 1];
	P(AnyValue) kval[MAX_LABELS + 1];
	P(ScopeProfiles) sp, *spp;
	P(InstrumentationScope) scope;
	P(Profile) prof, *profp;
	P(ValueType) stype, ptype;
	char *strings[S_N];
	P(KeyValueAndUnit) attr[A_N], *attrp[A_N];
	P(AnyValue) aval[A_N];
	int32_t sample_attrs[2];
	P(Mapping) map[2], *mapp[2];
	int32_t map_attrs[1];
	P(Function) fn0, *fnp;
	char bid_hex[2 * 64 + 1];
	/* per request, sized for shape.max_stacks x shape.depth */
	P(Location) * locs, **locp;  /* [0] is the zero element */
	P(Stack) * stacks, **stackp; /* [0] is the zero element */
	int32_t *loc_idx;	     /* the stacks' location indices */
	P(Sample) * samples, **samplep;
	int64_t *values;
	uint64_t *ts;
	size_t ts_cap;
	/* address -> location index, valid where gen == r->gen */
	uint64_t *hkey;
	int32_t *hval;
	uint32_t *hgen, gen;
	size_t hmask;
	/* output */
	uint8_t *raw, *gz;
	size_t raw_cap, raw_len, gz_cap;
	z_stream z;
	int z_ready;
};

static void string_attr(P(KeyValueAndUnit) * a, P(AnyValue) * v, int key,
			char *value)
{
	D(key_value_and_unit__init)(a);
	D(any_value__init)(v);
	a->key_strindex = key;
	v->value_case =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__ANY_VALUE__VALUE_STRING_VALUE;
	v->string_value = value;
	a->value = v;
}

static void resource_attr(struct otlp_req *r, size_t i, const char *key,
			  const char *value)
{
	D(key_value__init)(&r->kv[i]);
	D(any_value__init)(&r->kval[i]);
	r->kval[i].value_case =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__ANY_VALUE__VALUE_STRING_VALUE;
	r->kval[i].string_value = (char *)value;
	r->kv[i].key = (char *)key;
	r->kv[i].value = &r->kval[i];
	r->kvp[i] = &r->kv[i];
}

/* The parts every request shares. */
static void fixed_parts(struct otlp_req *r)
{
	const struct otlp_req_shape *s = &r->shape;
	static const char *const fixed[S_N] = {
		[S_NONE] = "",
		[S_SAMPLES] = "samples",
		[S_COUNT] = "count",
		[S_CPU] = "cpu",
		[S_NS] = "nanoseconds",
		[S_BID] = "process.executable.build_id.gnu",
		[S_EXE] = "process.executable.name",
		[S_THREAD] = "thread.name"};
	for (int i = 0; i < S_N; i++)
		r->strings[i] = (char *)fixed[i];
	r->strings[S_PATH] = (char *)s->path;

	D(key_value_and_unit__init)(&r->attr[A_NONE]);
	string_attr(&r->attr[A_BID], &r->aval[A_BID], S_BID, r->bid_hex);
	string_attr(&r->attr[A_EXE], &r->aval[A_EXE], S_EXE, (char *)s->binary);
	string_attr(&r->attr[A_THREAD], &r->aval[A_THREAD], S_THREAD,
		    (char *)s->thread);
	for (int i = 0; i < A_N; i++)
		r->attrp[i] = &r->attr[i];
	r->sample_attrs[0] = A_EXE;
	r->sample_attrs[1] = A_THREAD;

	for (int i = 0; i < 2; i++) {
		D(mapping__init)(&r->map[i]);
		r->mapp[i] = &r->map[i];
	}
	r->map[1].memory_start = s->file_offset;
	r->map[1].memory_limit = s->file_offset + (s->limit - s->start);
	r->map[1].file_offset = s->file_offset;
	r->map[1].filename_strindex = S_PATH;
	r->map_attrs[0] = A_BID;
	r->map[1].n_attribute_indices = 1;
	r->map[1].attribute_indices = r->map_attrs;
	D(function__init)(&r->fn0);
	r->fnp = &r->fn0;

	D(profiles_dictionary__init)(&r->dict);
	r->dict.n_mapping_table = 2;
	r->dict.mapping_table = r->mapp;
	r->dict.n_function_table = 1;
	r->dict.function_table = &r->fnp;
	r->dict.n_string_table = S_N;
	r->dict.string_table = r->strings;
	r->dict.n_attribute_table = A_N;
	r->dict.attribute_table = r->attrp;
	r->dict.location_table = r->locp;
	r->dict.stack_table = r->stackp;

	D(resource__init)(&r->res);
	size_t nkv = 0;
	resource_attr(r, nkv++, "host.name", s->host);
	for (size_t i = 0; i < s->n_labels && nkv <= MAX_LABELS; i++)
		resource_attr(r, nkv++, s->label_keys[i], s->label_values[i]);
	r->res.n_attributes = nkv;
	r->res.attributes = r->kvp;

	D(value_type__init)(&r->stype);
	r->stype.type_strindex = S_SAMPLES;
	r->stype.unit_strindex = S_COUNT;
	D(value_type__init)(&r->ptype);
	r->ptype.type_strindex = S_CPU;
	r->ptype.unit_strindex = S_NS;
	D(profile__init)(&r->prof);
	r->prof.sample_type = &r->stype;
	r->prof.period_type = &r->ptype;
	r->prof.period = (int64_t)s->period;
	r->prof.samples = r->samplep;
	r->profp = &r->prof;

	D(instrumentation_scope__init)(&r->scope);
	r->scope.name = "go.opentelemetry.io/ebpf-profiler";
	D(scope_profiles__init)(&r->sp);
	r->sp.scope = &r->scope;
	r->sp.n_profiles = 1;
	r->sp.profiles = &r->profp;
	r->spp = &r->sp;
	D(resource_profiles__init)(&r->rp);
	r->rp.resource = &r->res;
	r->rp.n_scope_profiles = 1;
	r->rp.scope_profiles = &r->spp;
	r->rpp = &r->rp;
	D(export_profiles_service_request__init)(&r->req);
	r->req.n_resource_profiles = 1;
	r->req.resource_profiles = &r->rpp;
	r->req.dictionary = &r->dict;
}

int otlp_req_create(const struct otlp_req_shape *shape, struct otlp_req **out)
{
	struct otlp_req *r = calloc(1, sizeof *r);
	*out = NULL;
	if (!r)
		return -1;
	r->shape = *shape;
	size_t n = shape->max_stacks, nf = n * shape->depth;
	size_t hcap = 16;
	while (hcap < 2 * nf)
		hcap *= 2;
	r->hmask = hcap - 1;
	r->locs = calloc(nf + 1, sizeof *r->locs);
	r->locp = calloc(nf + 1, sizeof *r->locp);
	r->stacks = calloc(n + 1, sizeof *r->stacks);
	r->stackp = calloc(n + 1, sizeof *r->stackp);
	r->loc_idx = calloc(nf ? nf : 1, sizeof *r->loc_idx);
	r->samples = calloc(n ? n : 1, sizeof *r->samples);
	r->samplep = calloc(n ? n : 1, sizeof *r->samplep);
	r->values = calloc(n ? n : 1, sizeof *r->values);
	r->hkey = malloc(hcap * sizeof *r->hkey);
	r->hval = malloc(hcap * sizeof *r->hval);
	r->hgen = calloc(hcap, sizeof *r->hgen);
	if (!r->locs || !r->locp || !r->stacks || !r->stackp || !r->loc_idx ||
	    !r->samples || !r->samplep || !r->values || !r->hkey || !r->hval ||
	    !r->hgen || nf > INT32_MAX) {
		otlp_req_destroy(r);
		return -1;
	}
	for (size_t i = 0; i <= nf; i++) {
		D(location__init)(&r->locs[i]);
		r->locp[i] = &r->locs[i];
	}
	for (size_t i = 0; i <= n; i++) {
		D(stack__init)(&r->stacks[i]);
		r->stackp[i] = &r->stacks[i];
	}
	for (size_t i = 0; i < n; i++) {
		D(sample__init)(&r->samples[i]);
		r->samplep[i] = &r->samples[i];
	}
	fixed_parts(r);
	if (shape->gzip) {
		if (deflateInit2(&r->z, 1, Z_DEFLATED, 16 + 15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK) {
			otlp_req_destroy(r);
			return -1;
		}
		r->z_ready = 1;
	}
	*out = r;
	return 0;
}

void otlp_req_destroy(struct otlp_req *r)
{
	if (!r)
		return;
	if (r->z_ready)
		deflateEnd(&r->z);
	free(r->locs);
	free(r->locp);
	free(r->stacks);
	free(r->stackp);
	free(r->loc_idx);
	free(r->samples);
	free(r->samplep);
	free(r->values);
	free(r->ts);
	free(r->hkey);
	free(r->hval);
	free(r->hgen);
	free(r->raw);
	free(r->gz);
	free(r);
}

/* The location of address a (mapping 1), added when new. */
static int32_t location_of(struct otlp_req *r, uint64_t a, size_t *nloc)
{
	size_t h = (size_t)((a * 0x9e3779b97f4a7c15ull) >> 20) & r->hmask;
	while (r->hgen[h] == r->gen) {
		if (r->hkey[h] == a)
			return r->hval[h];
		h = (h + 1) & r->hmask;
	}
	int32_t i = (int32_t)(*nloc)++;
	r->hgen[h] = r->gen;
	r->hkey[h] = a;
	r->hval[h] = i;
	r->locs[i].mapping_index = 1;
	r->locs[i].address = a;
	return i;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	uint8_t *nb = realloc(*buf, need);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = need;
	return 0;
}

int otlp_req_build(struct otlp_req *r, const uint8_t *bid, size_t bidlen,
		   const uint64_t *counts, const uint64_t *addrs, size_t n,
		   uint64_t t0_ns, uint64_t dur_ns, const uint8_t **body,
		   size_t *blen, size_t *raw_len)
{
	const struct otlp_req_shape *s = &r->shape;
	size_t depth = s->depth;
	if (n > s->max_stacks || bidlen > 64)
		return -1;
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < bidlen; i++) {
		r->bid_hex[2 * i] = hex[bid[i] >> 4];
		r->bid_hex[2 * i + 1] = hex[bid[i] & 15];
	}
	r->bid_hex[2 * bidlen] = 0;
	if (++r->gen == 0) { /* wrapped: every slot looks current */
		memset(r->hgen, 0, (r->hmask + 1) * sizeof *r->hgen);
		r->gen = 1;
	}
	uint64_t total = 0;
	for (size_t k = 0; k < n; k++)
		total += counts[k];
	if (!s->values && total > r->ts_cap) {
		uint64_t *nt = realloc(r->ts, total * sizeof *nt);
		if (!nt)
			return -1;
		r->ts = nt;
		r->ts_cap = total;
	}
	/* Process addresses -> ELF virtual addresses of the segment. */
	uint64_t shift = s->start - s->file_offset;
	size_t nloc = 1, nts = 0;
	uint64_t step = total ? dur_ns / total : 0;
	for (size_t k = 0; k < n; k++) {
		int32_t *li = r->loc_idx + k * depth;
		const uint64_t *a = addrs + k * depth;
		for (size_t f = 0; f < depth; f++)
			li[f] = location_of(r, a[f] - shift - (f > 0), &nloc);
		r->stacks[k + 1].n_location_indices = depth;
		r->stacks[k + 1].location_indices = li;
		P(Sample) *x = &r->samples[k];
		x->stack_index = (int32_t)(k + 1);
		x->n_attribute_indices = 2;
		x->attribute_indices = r->sample_attrs;
		if (s->values) {
			r->values[k] = (int64_t)counts[k];
			x->n_values = 1;
			x->values = &r->values[k];
		} else {
			/* One stamp per sample taken, spread over the window
			 * in the order they were taken. */
			x->n_timestamps_unix_nano = counts[k];
			x->timestamps_unix_nano = r->ts + nts;
			for (uint64_t j = 0; j < counts[k]; j++, nts++)
				r->ts[nts] = t0_ns + nts * step;
		}
	}
	r->dict.n_location_table = nloc;
	r->dict.location_table = r->locp;
	r->dict.n_stack_table = n + 1;
	r->dict.stack_table = r->stackp;
	r->prof.n_samples = n;
	r->prof.samples = r->samplep;
	r->prof.time_unix_nano = t0_ns;
	r->prof.duration_nano = dur_ns;

	size_t len =
		D(export_profiles_service_request__get_packed_size)(&r->req);
	if (grow(&r->raw, &r->raw_cap, len))
		return -1;
	r->raw_len = D(export_profiles_service_request__pack)(&r->req, r->raw);
	*raw_len = r->raw_len;
	if (!s->gzip) {
		*body = r->raw;
		*blen = r->raw_len;
		return 0;
	}
	size_t bound = deflateBound(&r->z, r->raw_len);
	if (grow(&r->gz, &r->gz_cap, bound) || deflateReset(&r->z) != Z_OK)
		return -1;
	r->z.next_in = r->raw;
	r->z.avail_in = (uInt)r->raw_len;
	r->z.next_out = r->gz;
	r->z.avail_out = (uInt)bound;
	if (deflate(&r->z, Z_FINISH) != Z_STREAM_END)
		return -1;
	*body = r->gz;
	*blen = bound - r->z.avail_out;
	return 0;
}

const uint8_t *otlp_req_raw(const struct otlp_req *r, size_t *len)
{
	*len = r->raw_len;
	return r->raw;
}
