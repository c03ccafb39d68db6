/* Tests for schemas/pprof.c (pprof profiles) and schemas/gunzip.c. */
#include <zlib.h>

#include "common/buf.h"
#include "schemas/pprof.pb-c.h"
#include "schemas/schemas.h"
#include "tests/unit/test.h"

#define BID  "0123456789abcdef0123456789abcdef01234567"
#define MAXN 16

/* String table indexes of the profiles below. */
enum {
	S_EMPTY,
	S_SAMPLES,
	S_COUNT,
	S_CPU,
	S_NS,
	S_PROG,
	S_BID,
	S_LIBC,
	S_VDSO,
	S_GOBID,
	S_BID_UPPER,
	S_CYC_SAMPLE,
	S_CYC_EVENT,
	S_ALLOC,
	S_BYTES,
	S_NSTR
};
static const char *const strs[S_NSTR] = {
	"",
	"samples",
	"count",
	"cpu",
	"nanoseconds",
	"/usr/bin/prog",
	BID,
	"/lib/libc.so.6",
	"[vdso]",
	"Xh3kQz7Lp0aT/8f9sY1cG2vN_4rW5eB6/uM7iO8pA9sD0fG1hJ2k",
	"0123456789ABCDEF0123456789ABCDEF01234567",
	"cycles_sample",
	"cycles_event",
	"alloc_space",
	"bytes"};

/* A profile under construction, in protobuf-c's structs. */
struct prof {
	Perftools__Profiles__Profile p;
	Perftools__Profiles__ValueType st[4], *stp[4], pt;
	Perftools__Profiles__Mapping m[MAXN], *mp[MAXN];
	Perftools__Profiles__Location l[MAXN], *lp[MAXN];
	Perftools__Profiles__Sample s[MAXN], *sp[MAXN];
	uint64_t ids[MAXN][MAXN];
	int64_t vals[MAXN][4];
	ProtobufCBinaryData str[S_NSTR];
};

static void sample_type(struct prof *x, int64_t type, int64_t unit)
{
	size_t i = x->p.n_sample_type++;
	perftools__profiles__value_type__init(&x->st[i]);
	x->st[i].type = type;
	x->st[i].unit = unit;
	x->stp[i] = &x->st[i];
}

/* A Go CPU profile's header: samples/count, cpu/nanoseconds, 10 ms. */
static void prof_init(struct prof *x)
{
	memset(x, 0, sizeof *x);
	perftools__profiles__profile__init(&x->p);
	for (int i = 0; i < S_NSTR; i++)
		x->str[i] = (ProtobufCBinaryData){strlen(strs[i]),
						  (uint8_t *)strs[i]};
	x->p.string_table = x->str;
	x->p.n_string_table = S_NSTR;
	x->p.sample_type = x->stp;
	sample_type(x, S_SAMPLES, S_COUNT);
	sample_type(x, S_CPU, S_NS);
	perftools__profiles__value_type__init(&x->pt);
	x->pt.type = S_CPU;
	x->pt.unit = S_NS;
	x->p.period_type = &x->pt;
	x->p.period = 10000000;
	x->p.time_nanos = 1700000000ll * 1000000000ll;
	x->p.duration_nanos = 1500000000;
	x->p.mapping = x->mp;
	x->p.location = x->lp;
	x->p.sample = x->sp;
}

static void add_map(struct prof *x, uint64_t id, uint64_t start, uint64_t limit,
		    uint64_t off, int64_t file, int64_t bid)
{
	size_t i = x->p.n_mapping++;
	Perftools__Profiles__Mapping *m = &x->m[i];
	perftools__profiles__mapping__init(m);
	m->id = id;
	m->memory_start = start;
	m->memory_limit = limit;
	m->file_offset = off;
	m->filename = file;
	m->build_id = bid;
	x->mp[i] = m;
}

static void add_loc(struct prof *x, uint64_t id, uint64_t map, uint64_t addr)
{
	Perftools__Profiles__Location *l = &x->l[x->p.n_location];
	*l = (Perftools__Profiles__Location)PERFTOOLS__PROFILES__LOCATION__INIT;
	l->id = id, l->mapping_id = map, l->address = addr;
	x->lp[x->p.n_location++] = l;
}

/* A sample of count samples (count x 10 ms), n location ids, leaf first. */
static void add_sample(struct prof *x, int64_t count, size_t n,
		       const uint64_t *ids)
{
	size_t i = x->p.n_sample++;
	Perftools__Profiles__Sample *s = &x->s[i];
	perftools__profiles__sample__init(s);
	if (n)
		memcpy(x->ids[i], ids, n * sizeof *ids);
	s->location_id = x->ids[i];
	s->n_location_id = n;
	x->vals[i][0] = count;
	x->vals[i][1] = count * 10000000;
	s->value = x->vals[i];
	s->n_value = x->p.n_sample_type;
	x->sp[i] = s;
}

static uint8_t *pack(const struct prof *x, size_t *len)
{
	*len = perftools__profiles__profile__get_packed_size(&x->p);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf)
		perftools__profiles__profile__pack(&x->p, buf);
	return buf;
}

/* prog at 0x400000 with a build-id, libc without, [vdso] without. */
static void go_like(struct prof *x)
{
	prof_init(x);
	add_map(x, 1, 0x400000, 0x500000, 0, S_PROG, S_BID);
	add_map(x, 2, 0x7f0000001000, 0x7f0000101000, 0x1000, S_LIBC, 0);
	add_map(x, 3, 0x7ffd00000000, 0x7ffd00002000, 0, S_VDSO, 0);
	add_loc(x, 10, 1, 0x401234);	   /* hot, the leaf */
	add_loc(x, 11, 1, 0x401100);	   /* its caller: return address - 1 */
	add_loc(x, 12, 1, 0x400800);	   /* main */
	add_loc(x, 20, 2, 0x7f0000002345); /* libc */
	add_loc(x, 30, 3, 0x7ffd00000100); /* vdso */
}

static const struct wire_pprof_opts opts = {.agent_id = "pprof/t",
					    .host = "h1"};

static int decode(const struct prof *x, const struct wire_pprof_opts *o,
		  Fdod__SampleBatch **b, struct wire_pprof_stats *st, char *err,
		  size_t errlen)
{
	size_t len;
	uint8_t *buf = pack(x, &len);
	if (!buf)
		return FDO_ENOMEM;
	*b = NULL;
	int rc = wire_pprof_decode(buf, len, o, b, st, err, errlen);
	free(buf);
	return rc;
}

/* decode, saying why when it fails. */
static int decode_ok(const struct prof *x, const struct wire_pprof_opts *o,
		     Fdod__SampleBatch **b, struct wire_pprof_stats *st)
{
	char err[512] = "";
	int rc = decode(x, o, b, st, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	return rc;
}

static char *printed(const Fdod__SampleBatch *b)
{
	char *t = NULL;
	if (wire_batch_print_text(b, &t, NULL))
		return NULL;
	return t;
}

TEST(go_profile_frames_become_file_offsets)
{
	struct prof x;
	go_like(&x);
	add_sample(&x, 3, 3, (uint64_t[]){10, 11, 12});
	add_sample(&x, 1, 2, (uint64_t[]){12, 20});
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	char err[256] = "";
	static const char *labels[] = {"mode=test"};
	struct wire_pprof_opts o = opts;
	o.labels = labels;
	o.n_labels = 1;
	int rc = decode(&x, &o, &b, &st, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	char *t = printed(b);
	/* Callers travel as their pprof address + 1 (ingest takes 1 off);
	 * libc (no build-id) as 0. */
	CHECK_EQ_STR(t, "agent   pprof/t\n"
			"seq     1\n"
			"host    h1\n"
			"binary  prog\n"
			"label   mode=test\n"
			"event   cpu-clock\n"
			"period  10000000\n"
			"weight  1\n"
			"time    1700000000 1700000002\n"
			"mapping 0 " BID " 10000000000 20000000000 0 "
			"/usr/bin/prog\n"
			"stack   3 10000001234 10000001101 10000000801\n"
			"stack   1 10000000800 0\n");
	free(t);
	CHECK_EQ_STR(st.value, "samples/count");
	CHECK_EQ_INT(st.samples, 2);
	CHECK_EQ_INT(st.count, 4);
	CHECK_EQ_INT(st.count_unmapped, 0);
	CHECK_EQ_INT(st.frames, 5);
	CHECK_EQ_INT(st.frames_unmapped_by[WIRE_PPROF_NO_BUILD_ID], 1);
	CHECK(wire_batch_validate(b, NULL, err, sizeof err) == FDO_OK);
	wire_batch_free(b);
}

TEST(unmapped_samples_are_counted_by_reason_and_mapping)
{
	struct prof x;
	go_like(&x);
	add_map(&x, 4, 0x10000000, 0x10100000, 0, S_PROG, S_GOBID);
	add_loc(&x, 40, 4, 0x10000010);		    /* a Go build ID: not GNU */
	add_loc(&x, 50, 0, 0x12345);		    /* no mapping */
	add_loc(&x, 60, 1, 0);			    /* no address */
	add_sample(&x, 2, 1, (uint64_t[]){20});	    /* libc */
	add_sample(&x, 5, 2, (uint64_t[]){20, 20}); /* libc */
	add_sample(&x, 1, 1, (uint64_t[]){30});	    /* vdso */
	add_sample(&x, 7, 1, (uint64_t[]){40});
	add_sample(&x, 1, 1, (uint64_t[]){50});
	add_sample(&x, 1, 1, (uint64_t[]){60});
	add_sample(&x, 4, 0, NULL);
	add_sample(&x, 0, 1, (uint64_t[]){10});	    /* nothing to count */
	add_sample(&x, 6, 2, (uint64_t[]){20, 12}); /* kept: main maps */
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	char err[256] = "";
	REQUIRE(decode(&x, &opts, &b, &st, err, sizeof err) == FDO_OK);
	REQUIRE(b->n_stacks == 1);
	CHECK_EQ_INT(b->stacks[0]->count, 6);
	CHECK_EQ_INT(b->stacks[0]->addrs[0], 0);
	CHECK_EQ_INT(b->stacks[0]->addrs[1], (1ull << 40) + 0x801);
	CHECK_EQ_INT(st.samples, 9);
	CHECK_EQ_INT(st.samples_empty, 1);
	CHECK_EQ_INT(st.count, 27);
	CHECK_EQ_INT(st.count_unmapped, 21);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NO_BUILD_ID], 8);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NOT_GNU], 7);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NO_MAPPING], 1);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NO_ADDRESS], 1);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NO_LOCATION], 4);
	/* The mappings named in the answer, most samples first. */
	REQUIRE(st.nmaps == 3);
	CHECK_EQ_INT(st.maps[0].id, 2);
	CHECK_EQ_STR(st.maps[0].file, "/lib/libc.so.6");
	CHECK_EQ_INT(st.maps[0].count, 7);
	CHECK_EQ_INT(st.maps[0].reason, WIRE_PPROF_NO_BUILD_ID);
	CHECK_EQ_INT(st.maps[1].id, 4);
	CHECK_EQ_INT(st.maps[1].reason, WIRE_PPROF_NOT_GNU);
	CHECK_EQ_STR(st.maps[1].build_id, strs[S_GOBID]);
	CHECK_EQ_INT(st.maps[2].id, 3);
	CHECK_EQ_STR(wire_pprof_reason_name(WIRE_PPROF_NOT_GNU),
		     "not_gnu_build_id");
	wire_batch_free(b);
}

TEST(a_profile_with_no_build_id_gives_an_empty_batch)
{
	struct prof x;
	go_like(&x);
	x.m[0].build_id = 0;
	add_sample(&x, 3, 2, (uint64_t[]){10, 11});
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->n_stacks, 0);
	CHECK_EQ_INT(b->n_mappings, 0);
	CHECK_EQ_INT(st.count_unmapped, 3);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_NO_BUILD_ID], 3);
	CHECK_EQ_INT(st.frames_unmapped_by[WIRE_PPROF_NO_BUILD_ID], 2);
	wire_batch_free(b);
}

TEST(uppercase_build_ids_and_the_binary_option)
{
	struct prof x;
	go_like(&x);
	x.m[0].build_id = S_BID_UPPER;
	add_sample(&x, 1, 1, (uint64_t[]){10});
	struct wire_pprof_opts o = opts;
	o.binary = "server";
	Fdod__SampleBatch *b;
	REQUIRE(decode(&x, &o, &b, NULL, NULL, 0) == FDO_OK);
	CHECK_EQ_STR(b->binary, "server");
	REQUIRE(b->n_mappings == 1);
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(b->mappings[0]->build_id.data,
		       b->mappings[0]->build_id.len, hex);
	CHECK_EQ_STR(hex, BID);
	wire_batch_free(b);
}

/* Decode x and expect code with msg in the error. */
static void refused(const struct prof *x, const struct wire_pprof_opts *o,
		    int code, const char *msg)
{
	Fdod__SampleBatch *b = NULL;
	char err[512] = "";
	int rc = decode(x, o, &b, NULL, err, sizeof err);
	CHECK_EQ_INT(rc, code);
	CHECK(b == NULL);
	if (!strstr(err, msg)) {
		fprintf(stderr, "  error \"%s\", want \"%s\"\n", err, msg);
		test_failed_now = 1;
	}
}

TEST(bad_profiles_are_refused_with_the_reason)
{
	struct prof x;
	go_like(&x);
	add_loc(&x, 13, 1, 0x500000); /* at the limit: outside */
	add_sample(&x, 1, 1, (uint64_t[]){13});
	refused(&x, &opts, FDO_EINVAL,
		"location 13: address 0x500000 is outside its mapping 1 "
		"[0x400000, 0x500000)");
	go_like(&x);
	add_sample(&x, 1, 2, (uint64_t[]){10, 99});
	refused(&x, &opts, FDO_EINVAL, "sample 0: location 99 does not exist");
	go_like(&x);
	add_loc(&x, 14, 9, 0x401000);
	refused(&x, &opts, FDO_EINVAL, "location 14: mapping 9 does not exist");
	go_like(&x);
	add_loc(&x, 10, 1, 0x401000);
	refused(&x, &opts, FDO_EINVAL, "location id 10 appears twice");
	go_like(&x);
	add_map(&x, 1, 0, 1, 0, 0, 0);
	refused(&x, &opts, FDO_EINVAL, "mapping id 1 appears twice");
	go_like(&x);
	x.m[0].build_id = 99;
	refused(&x, &opts, FDO_EINVAL, "string index 99 out of the string");
	go_like(&x);
	add_sample(&x, 1, 1, (uint64_t[]){10});
	x.s[0].n_value = 1;
	refused(&x, &opts, FDO_EINVAL, "sample 0: 1 values, but 2 sample");
	go_like(&x);
	x.p.time_nanos = 0;
	add_sample(&x, 1, 1, (uint64_t[]){10});
	refused(&x, &opts, FDO_EINVAL, "no time_nanos");
	go_like(&x);
	x.m[0].filename = 0;
	add_sample(&x, 1, 1, (uint64_t[]){10});
	refused(&x, &opts, FDO_EINVAL, "no binary name");
	go_like(&x);
	add_sample(&x, 2000000000, 1, (uint64_t[]){10});
	refused(&x, &opts, FDO_ELIMIT, "sample 0: count 2000000000, limit");
	go_like(&x);
	add_sample(&x, 1, 1, (uint64_t[]){10});
	static const char *bad[] = {"bad key=v"};
	struct wire_pprof_opts o = opts;
	o.labels = bad;
	o.n_labels = 1;
	refused(&x, &o, FDO_EINVAL, "label");
	/* A heap profile: nothing fdod can count. */
	go_like(&x);
	x.st[0].type = S_ALLOC;
	x.st[0].unit = S_BYTES;
	x.st[1].type = S_ALLOC;
	x.st[1].unit = S_COUNT;
	refused(&x, &opts, FDO_EINVAL,
		"no sample type fdod can count (samples/count, "
		"cpu/nanoseconds, or perf_to_profile's EVENT_sample/count); "
		"this profile has [alloc_space/bytes, alloc_space/count]");
}

TEST(truncated_and_garbage_bytes_are_refused)
{
	struct prof x;
	go_like(&x);
	add_sample(&x, 3, 3, (uint64_t[]){10, 11, 12});
	size_t len;
	uint8_t *buf = pack(&x, &len);
	REQUIRE(buf != NULL);
	char err[256];
	Fdod__SampleBatch *b = NULL;
	int cut = 0;
	for (size_t n = 1; n < len; n++) {
		int rc = wire_pprof_decode(buf, n, &opts, &b, NULL, err,
					   sizeof err);
		if (rc == FDO_OK)
			wire_batch_free(b);
		cut += rc == FDO_EPARSE;
	}
	CHECK(cut > 0);
	CHECK_EQ_INT(wire_pprof_decode(buf, len / 2, &opts, &b, NULL, err,
				       sizeof err),
		     FDO_EPARSE);
	CHECK(strstr(err, "not a profile.proto, or cut short") != NULL);
	free(buf);
	static const uint8_t junk[] = "#!/bin/sh\necho hi\n";
	CHECK_EQ_INT(wire_pprof_decode(junk, sizeof junk - 1, &opts, &b, NULL,
				       err, sizeof err),
		     FDO_EPARSE);
}

/* perf_to_profile's shape: cycles_sample and cycles_event columns, 4
 * samples of 5000 events in all, Profile.period period. */
static void perf_like(struct prof *x, int64_t period)
{
	go_like(x);
	x->st[0].type = S_CYC_SAMPLE;
	x->st[0].unit = S_COUNT;
	x->st[1].type = S_CYC_EVENT;
	x->st[1].unit = S_COUNT;
	x->p.period_type = NULL;
	x->p.period = period;
	add_sample(x, 1, 1, (uint64_t[]){10});
	add_sample(x, 3, 1, (uint64_t[]){11});
	x->vals[0][1] = 1000;
	x->vals[1][1] = 4000;
}

TEST(perf_to_profile_types_give_the_mean_period)
{
	struct prof x;
	perf_like(&x, 0);
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_STR(b->event, "cycles");
	CHECK_EQ_INT(b->period, 1250); /* 5000 events / 4 samples */
	CHECK_EQ_STR(st.value, "cycles_sample/count, cycles_event/count");
	wire_batch_free(b);
}

/* A profile of cpu/nanoseconds alone, n samples (on locations 10, 11,
 * 12...) whose values the caller sets in x->vals[i][0]. */
static void ns_like(struct prof *x, size_t n)
{
	go_like(x);
	x->p.n_sample_type = 1;
	x->st[0].type = S_CPU;
	x->st[0].unit = S_NS;
	for (size_t i = 0; i < n; i++)
		add_sample(x, 1, 1, (uint64_t[]){10 + i});
}

TEST(nanoseconds_alone_keep_their_exact_sum)
{
	struct prof x;
	ns_like(&x, 2);
	x.vals[0][0] = 30000000; /* 3 samples of 10 ms */
	x.vals[1][0] = 15000000; /* not a multiple: the period becomes 5 ms */
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_STR(b->event, "cpu-clock");
	CHECK_EQ_INT(b->period, 5000000);
	REQUIRE(b->n_stacks == 2);
	CHECK_EQ_INT(b->stacks[0]->count, 6);
	CHECK_EQ_INT(b->stacks[1]->count, 3);
	CHECK_EQ_STR(st.value, "cpu/nanoseconds");
	wire_batch_free(b);
	/* Without a period_type the count column needs no period: 1. */
	go_like(&x);
	x.p.period = 0;
	x.p.n_sample_type = 1;
	add_sample(&x, 4, 1, (uint64_t[]){10});
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->period, 1);
	CHECK_EQ_INT(b->stacks[0]->count, 4);
	wire_batch_free(b);
}

TEST(time_option_stamps_a_profile_without_time)
{
	struct prof x;
	go_like(&x);
	x.p.time_nanos = 0;
	x.p.duration_nanos = 30000000000ll;
	add_sample(&x, 1, 1, (uint64_t[]){10});
	struct wire_pprof_opts o = opts;
	o.time_end = 1800000000;
	Fdod__SampleBatch *b;
	REQUIRE(decode(&x, &o, &b, NULL, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->time_start, 1800000000 - 30);
	CHECK_EQ_INT(b->time_end, 1800000000);
	wire_batch_free(b);
}

TEST(limits_of_a_batch_apply)
{
	struct wire_limits lim = wire_limits_default;
	lim.max_stack_depth = 2;
	lim.max_stacks = 2;
	struct wire_pprof_opts o = opts;
	o.limits = &lim;
	struct prof x;
	go_like(&x);
	add_sample(&x, 1, 3, (uint64_t[]){10, 11, 12});
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode(&x, &o, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->stacks[0]->n_addrs, 2);
	CHECK_EQ_INT(st.frames_dropped, 1);
	wire_batch_free(b);
	add_sample(&x, 1, 1, (uint64_t[]){11});
	add_sample(&x, 1, 1, (uint64_t[]){12});
	refused(&x, &o, FDO_ELIMIT, "more than 2 distinct stacks");
	/* Memory for the decode itself is bounded too. */
	lim = wire_limits_default;
	lim.max_decoded_bytes = 2000;
	refused(&x, &o, FDO_ELIMIT, "takes more than 2000 bytes to decode");
}

TEST(perf_to_profile_mean_period_overrides_profile_period)
{
	/* perf_to_profile writes one event's period in Profile.period; the
	 * EVENT_event column gives the mean, which must win. */
	struct prof x;
	perf_like(&x, 100003);
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->period, 1250);
	CHECK_EQ_STR(st.value, "cycles_sample/count, cycles_event/count");
	wire_batch_free(b);
	/* Without an EVENT_event column, Profile.period is the period. */
	x.p.n_sample_type = 1;
	x.s[0].n_value = x.s[1].n_value = 1;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->period, 100003);
	wire_batch_free(b);
}

TEST(jittery_nanoseconds_are_rounded_to_the_period)
{
	/* Measured times: their gcd is 1 ns, so exact counts would be
	 * ~3e9, over max_count (1e9). */
	struct prof x;
	ns_like(&x, 3);
	x.vals[0][0] = 3000000007;
	x.vals[1][0] = 14999999; /* 1.4999999 periods: 1 */
	x.vals[2][0] = 3000;	 /* under half a period: still 1 */
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode_ok(&x, &opts, &b, &st) == FDO_OK);
	CHECK_EQ_INT(b->period, 10000000);
	REQUIRE(b->n_stacks == 3);
	CHECK_EQ_INT(b->stacks[0]->count, 300);
	CHECK_EQ_INT(b->stacks[1]->count, 1);
	CHECK_EQ_INT(b->stacks[2]->count, 1);
	wire_batch_free(b);
	/* Values that are multiples of a common period stay exact. */
	x.vals[1][0] = 15000000;
	x.vals[0][0] = 3000000000;
	x.vals[2][0] = 5000000;
	REQUIRE(decode(&x, &opts, &b, &st, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(b->period, 5000000);
	CHECK_EQ_INT(b->stacks[0]->count, 600);
	wire_batch_free(b);
	/* Without Profile.period there is nothing to round to. */
	x.vals[0][0] = 3000000007;
	x.p.period = 0;
	refused(&x, &opts, FDO_ELIMIT,
		"cpu/nanoseconds values have no common period (their gcd is "
		"1 ns");
}

TEST(an_offset_past_the_layout_unmaps_its_frames_only)
{
	struct prof x;
	go_like(&x);
	/* A file offset near 2^40: its first page fits, the next does not
	 * (a caller travels as offset + 1, so 2^40 - 2 is the last). */
	add_map(&x, 5, 0x20000000, 0x20002000, (1ull << 40) - 0x1001, S_PROG,
		S_BID);
	add_loc(&x, 70, 5, 0x20000fff); /* offset 2^40 - 2: kept */
	add_loc(&x, 71, 5, 0x20001000); /* 2^40 - 1: out of range */
	add_sample(&x, 2, 2, (uint64_t[]){71, 12});
	add_sample(&x, 5, 1, (uint64_t[]){71});
	add_sample(&x, 1, 2, (uint64_t[]){10, 70});
	Fdod__SampleBatch *b;
	struct wire_pprof_stats st;
	REQUIRE(decode_ok(&x, &opts, &b, &st) == FDO_OK);
	REQUIRE(b->n_stacks == 2);
	CHECK_EQ_INT(b->stacks[0]->count, 2);
	CHECK_EQ_INT(b->stacks[0]->addrs[0], 0);
	CHECK_EQ_INT(b->stacks[0]->addrs[1], (1ull << 40) + 0x801);
	CHECK_EQ_INT(b->stacks[1]->addrs[1], (2ull << 40) + (1ull << 40) - 1);
	CHECK_EQ_INT(st.count_unmapped, 5);
	CHECK_EQ_INT(st.count_unmapped_by[WIRE_PPROF_OFFSET_OUT_OF_RANGE], 5);
	CHECK_EQ_INT(st.frames_unmapped_by[WIRE_PPROF_OFFSET_OUT_OF_RANGE], 2);
	CHECK_EQ_STR(wire_pprof_reason_name(WIRE_PPROF_OFFSET_OUT_OF_RANGE),
		     "offset_out_of_range");
	CHECK(wire_batch_validate(b, NULL, NULL, 0) == FDO_OK);
	wire_batch_free(b);
}

/* splitmix64's finalizer (fdo_mix64) undone: unmix(fdo_mix64(k)) == k. */
static uint64_t inv_mul(uint64_t c)
{
	uint64_t x = c; /* Newton: each step doubles the correct bits */
	for (int i = 0; i < 6; i++)
		x *= 2 - c * x;
	return x;
}

static uint64_t unmix(uint64_t h)
{
	h ^= h >> 31 ^ h >> 62;
	h *= inv_mul(0x94d049bb133111ebull);
	h ^= h >> 27 ^ h >> 54;
	h *= inv_mul(0xbf58476d1ce4e5b9ull);
	h ^= h >> 30 ^ h >> 60;
	return h;
}

/* A profile of n locations in one mapping, one sample on each, with the
 * location ids id(i); packed. */
static uint8_t *many_locations(size_t n, uint64_t (*id)(size_t), size_t *len)
{
	struct prof *x = malloc(sizeof *x);
	Perftools__Profiles__Location *l = calloc(n, sizeof *l);
	Perftools__Profiles__Location **lp = calloc(n, sizeof *lp);
	Perftools__Profiles__Sample *s = calloc(n, sizeof *s);
	Perftools__Profiles__Sample **sp = calloc(n, sizeof *sp);
	uint64_t *ids = calloc(n, sizeof *ids);
	int64_t *vals = calloc(2 * n, sizeof *vals);
	uint8_t *buf = NULL;
	if (!x || !l || !lp || !s || !sp || !ids || !vals)
		goto out;
	prof_init(x);
	add_map(x, id(n), 0x400000, 0x400000 + 16 * n, 0, S_PROG, S_BID);
	for (size_t i = 0; i < n; i++) {
		l[i] = (Perftools__Profiles__Location)
			PERFTOOLS__PROFILES__LOCATION__INIT;
		l[i].id = id(i);
		l[i].mapping_id = id(n);
		l[i].address = 0x400000 + 16 * i;
		lp[i] = &l[i];
		perftools__profiles__sample__init(&s[i]);
		ids[i] = id(n - 1 - i);
		s[i].location_id = &ids[i];
		s[i].n_location_id = 1;
		vals[2 * i] = 1;
		vals[2 * i + 1] = 10000000;
		s[i].value = &vals[2 * i];
		s[i].n_value = 2;
		sp[i] = &s[i];
	}
	x->p.location = lp;
	x->p.n_location = n;
	x->p.sample = sp;
	x->p.n_sample = n;
	buf = pack(x, len);
out:
	free(x), free(l), free(lp), free(s), free(sp), free(ids), free(vals);
	return buf;
}

/* Ids whose fdo_mix64 agree in their low 32 bits: one slot of any hash
 * table of fewer than 2^32 slots keyed by them. */
static uint64_t colliding_id(size_t i)
{
	return unmix((uint64_t)(i + 1) << 32);
}

static uint64_t dense_id(size_t i)
{
	return i + 1;
}

TEST(hostile_ids_cost_n_log_n_and_decode_as_dense_ones)
{
	/* 2^17 locations whose ids all hash alike: a hash table keyed by
	 * them took ~n^2 = 1.7e10 probes (minutes); sorted ids take
	 * n log n. The batch must be the one dense ids give. */
	size_t n = 1u << 17;
	for (size_t i = 0; i < 4; i++)
		REQUIRE((fdo_mix64(colliding_id(i)) & 0xffffffffu) == 0);
	size_t la, lb;
	uint8_t *a = many_locations(n, colliding_id, &la);
	uint8_t *d = many_locations(n, dense_id, &lb);
	REQUIRE(a && d);
	Fdod__SampleBatch *ba = NULL, *bd = NULL;
	char err[512] = "";
	int rc = wire_pprof_decode(a, la, &opts, &ba, NULL, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK(rc == FDO_OK);
	CHECK(wire_pprof_decode(d, lb, &opts, &bd, NULL, err, sizeof err) ==
	      FDO_OK);
	if (ba && bd) {
		CHECK_EQ_INT(ba->n_stacks, n);
		CHECK_EQ_INT(ba->stacks[0]->addrs[0],
			     (1ull << 40) + 16 * (n - 1));
		char *ta = printed(ba), *td = printed(bd);
		CHECK(ta && td && !strcmp(ta, td));
		free(ta);
		free(td);
	}
	wire_batch_free(ba);
	wire_batch_free(bd);
	free(a);
	free(d);
}

/* --------------------------------------------------------- gunzip -- */

static uint8_t *gzip(const void *raw, size_t n, size_t *len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
		return NULL;
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	uint8_t *out = malloc(cap);
	z.next_in = (Bytef *)(uintptr_t)raw;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*len = cap - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

TEST(gunzip_round_trips_and_members_concatenate)
{
	const char text[] = "a pprof profile, or anything else";
	size_t glen;
	uint8_t *gz = gzip(text, sizeof text, &glen);
	REQUIRE(gz != NULL);
	CHECK(wire_is_gzip(gz, glen));
	uint8_t *out;
	size_t n;
	char err[256];
	REQUIRE(wire_gunzip(gz, glen, 1 << 20, &out, &n, err, sizeof err) ==
		FDO_OK);
	CHECK(n == sizeof text && !memcmp(out, text, n));
	free(out);
	uint8_t *two = malloc(2 * glen);
	memcpy(two, gz, glen);
	memcpy(two + glen, gz, glen);
	REQUIRE(wire_gunzip(two, 2 * glen, 1 << 20, &out, &n, err,
			    sizeof err) == FDO_OK);
	CHECK_EQ_INT(n, 2 * sizeof text);
	free(out);
	/* Exactly the bound passes; one byte less does not. */
	REQUIRE(wire_gunzip(gz, glen, sizeof text, &out, &n, err, sizeof err) ==
		FDO_OK);
	free(out);
	CHECK_EQ_INT(wire_gunzip(gz, glen, sizeof text - 1, &out, &n, err,
				 sizeof err),
		     FDO_ELIMIT);
	free(two);
	free(gz);
}

TEST(gunzip_refuses_bombs_garbage_and_cut_bodies)
{
	/* 64 MiB of zeros in ~64 KiB of gzip, bound 1 MiB. */
	size_t big = 64u << 20;
	uint8_t *zeros = calloc(1, big);
	REQUIRE(zeros != NULL);
	size_t glen;
	uint8_t *gz = gzip(zeros, big, &glen);
	free(zeros);
	REQUIRE(gz != NULL);
	CHECK(glen < (1u << 20));
	uint8_t *out = NULL;
	size_t n;
	char err[256] = "";
	CHECK_EQ_INT(wire_gunzip(gz, glen, 1u << 20, &out, &n, err, sizeof err),
		     FDO_ELIMIT);
	CHECK(strstr(err, "inflates to more than 1048576 bytes") != NULL);
	CHECK_EQ_INT(wire_gunzip(gz, glen / 2, 1u << 30, &out, &n, err,
				 sizeof err),
		     FDO_ETRUNCATED);
	CHECK(strstr(err, "ends inside") != NULL);
	free(gz);
	const char text[] = "hello";
	gz = gzip(text, sizeof text, &glen);
	REQUIRE(gz != NULL);
	uint8_t *junk = malloc(glen + 3);
	memcpy(junk, gz, glen);
	memcpy(junk + glen, "xyz", 3);
	CHECK_EQ_INT(wire_gunzip(junk, glen + 3, 100, &out, &n, err,
				 sizeof err),
		     FDO_EPARSE);
	CHECK(strstr(err, "3 bytes after the end") != NULL);
	junk[12] ^= 0xff; /* inside the deflate data */
	CHECK(wire_gunzip(junk, glen, 100, &out, &n, err, sizeof err) !=
	      FDO_OK);
	CHECK_EQ_INT(wire_gunzip((const uint8_t *)text, 5, 100, &out, &n, err,
				 sizeof err),
		     FDO_EPARSE);
	CHECK(strstr(err, "not gzip") != NULL);
	free(junk);
	free(gz);
}
