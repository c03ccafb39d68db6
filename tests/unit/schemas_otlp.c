/* Tests for schemas/otlp.c (OTLP profiles into SampleBatches). */
#include "schemas/otlp_profiles.pb-c.h"
#include "schemas/schemas.h"
#include "tests/unit/test.h"

#define P(name) Opentelemetry__Proto__Collector__Profiles__V1development__##name
#define F(name) opentelemetry__proto__collector__profiles__v1development__##name
#define BID	"0123456789abcdef0123456789abcdef01234567"
#define T0	1700000000ull

enum {
	S_EMPTY,
	S_SAMPLES,
	S_COUNT,
	S_CPU,
	S_NS,
	S_PROG,
	S_GNU,
	S_HTL,
	S_EXE,
	S_THREAD,
	S_NSTR
};
static char *strs[S_NSTR] = {"",
			     "samples",
			     "count",
			     "cpu",
			     "nanoseconds",
			     "/usr/bin/prog",
			     "process.executable.build_id.gnu",
			     "process.executable.build_id.htlhash",
			     "process.executable.name",
			     "thread.name"};

/*
 * A request like the eBPF profiler's: mapping 1 /usr/bin/prog at vaddr
 * 0x400000 (file offset 0), GNU build-id; mapping 2 htlhash only.
 * Locations: 1 leaf 0x401000, 2 caller 0x402000 (return address - 1),
 * 3 in mapping 2, 4 a kernel frame (lines, no mapping). Stacks: 1 [1 2],
 * 2 [4 1 2], 3 [3 2], 4 [4]. Samples: stack k with k+1 timestamps, the
 * binary "prog" and thread k as attributes.
 */
struct req {
	P(ExportProfilesServiceRequest) r;
	P(ProfilesDictionary) d;
	P(Mapping) m[3], *mp[3];
	int32_t mattr[3][1];
	P(Location) l[5], *lp[5];
	P(Line) line, *linep;
	P(Stack) s[5], *sp[5];
	int32_t sidx[5][3];
	P(KeyValueAndUnit) a[6], *ap[6];
	P(AnyValue) v[6];
	P(ResourceProfiles) rp, *rpp;
	P(ScopeProfiles) sc, *scp;
	P(Profile) p, *pp;
	P(ValueType) st, pt;
	P(Sample) x[4], *xp[4];
	int32_t xattr[4][2];
	uint64_t ts[4][5];
};

static int attr(struct req *q, size_t i, int key, const char *val)
{
	F(key_value_and_unit__init)(&q->a[i]);
	F(any_value__init)(&q->v[i]);
	q->a[i].key_strindex = key;
	q->v[i].value_case =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__ANY_VALUE__VALUE_STRING_VALUE;
	q->v[i].string_value = (char *)val;
	q->a[i].value = &q->v[i];
	q->ap[i] = &q->a[i];
	return (int)i;
}

static void req_init(struct req *q, uint64_t outside)
{
	memset(q, 0, sizeof *q);
	F(export_profiles_service_request__init)(&q->r);
	F(profiles_dictionary__init)(&q->d);
	q->d.string_table = strs;
	q->d.n_string_table = S_NSTR;
	F(key_value_and_unit__init)(&q->a[0]);
	q->ap[0] = &q->a[0];
	attr(q, 1, S_GNU, BID);
	attr(q, 2, S_HTL, "00112233445566778899aabbccddeeff");
	attr(q, 3, S_EXE, "prog");
	attr(q, 4, S_THREAD, "t1");
	attr(q, 5, S_THREAD, "t2");
	q->d.attribute_table = q->ap;
	q->d.n_attribute_table = 6;
	for (int i = 0; i < 3; i++) {
		F(mapping__init)(&q->m[i]);
		q->mp[i] = &q->m[i];
	}
	q->m[1] = q->m[0];
	q->m[1].memory_start = 0x400000;
	q->m[1].memory_limit = 0x500000;
	q->m[1].filename_strindex = S_PROG;
	q->mattr[1][0] = 1;
	q->m[1].attribute_indices = q->mattr[1];
	q->m[1].n_attribute_indices = 1;
	q->m[2].memory_start = 0x1000;
	q->m[2].memory_limit = 0x9000;
	q->mattr[2][0] = 2;
	q->m[2].attribute_indices = q->mattr[2];
	q->m[2].n_attribute_indices = 1;
	q->d.mapping_table = q->mp;
	q->d.n_mapping_table = 3;
	for (int i = 0; i < 5; i++) {
		F(location__init)(&q->l[i]);
		q->lp[i] = &q->l[i];
	}
	q->l[1].mapping_index = 1;
	q->l[1].address = outside ? outside : 0x401000;
	q->l[2].mapping_index = 1;
	q->l[2].address = 0x402000;
	q->l[3].mapping_index = 2;
	q->l[3].address = 0x2000;
	F(line__init)(&q->line);
	q->linep = &q->line;
	q->l[4].address = 0xffffffff81000000ull;
	q->l[4].lines = &q->linep;
	q->l[4].n_lines = 1;
	q->d.location_table = q->lp;
	q->d.n_location_table = 5;
	static const int32_t stacks[5][3] = {
		{0}, {1, 2}, {4, 1, 2}, {3, 2}, {4}};
	static const size_t depth[5] = {0, 2, 3, 2, 1};
	for (int i = 0; i < 5; i++) {
		F(stack__init)(&q->s[i]);
		memcpy(q->sidx[i], stacks[i], sizeof stacks[i]);
		q->s[i].location_indices = q->sidx[i];
		q->s[i].n_location_indices = depth[i];
		q->sp[i] = &q->s[i];
	}
	q->d.stack_table = q->sp;
	q->d.n_stack_table = 5;
	q->r.dictionary = &q->d;
	F(resource_profiles__init)(&q->rp);
	F(scope_profiles__init)(&q->sc);
	F(profile__init)(&q->p);
	F(value_type__init)(&q->st);
	F(value_type__init)(&q->pt);
	q->st.type_strindex = S_SAMPLES;
	q->st.unit_strindex = S_COUNT;
	q->pt.type_strindex = S_CPU;
	q->pt.unit_strindex = S_NS;
	q->p.sample_type = &q->st;
	q->p.period_type = &q->pt;
	q->p.period = 10000000;
	q->p.time_unix_nano = T0 * 1000000000ull;
	q->p.duration_nano = 2000000000ull;
	for (int i = 0; i < 4; i++) {
		F(sample__init)(&q->x[i]);
		q->x[i].stack_index = i + 1;
		q->xattr[i][0] = 3;
		q->xattr[i][1] = 4;
		q->x[i].attribute_indices = q->xattr[i];
		q->x[i].n_attribute_indices = 2;
		for (int k = 0; k <= i + 1 && k < 5; k++)
			q->ts[i][k] = q->p.time_unix_nano + (uint64_t)k;
		q->x[i].timestamps_unix_nano = q->ts[i];
		q->x[i].n_timestamps_unix_nano = (size_t)(i + 2);
		q->xp[i] = &q->x[i];
	}
	q->p.samples = q->xp;
	q->p.n_samples = 4;
	q->pp = &q->p;
	q->sc.profiles = &q->pp;
	q->sc.n_profiles = 1;
	q->scp = &q->sc;
	q->rp.scope_profiles = &q->scp;
	q->rp.n_scope_profiles = 1;
	q->rpp = &q->rp;
	q->r.resource_profiles = &q->rpp;
	q->r.n_resource_profiles = 1;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len + 1);
	protobuf_c_message_pack(m, buf);
	return buf;
}

static int decode(const struct req *q, const char *map,
		  struct wire_otlp_result *r, struct wire_otlp_stats *st,
		  char *err, size_t errlen)
{
	struct wire_otlp_attrs a;
	int rc = wire_otlp_attrs_parse(map, &a, err, errlen);
	if (rc)
		return rc;
	struct wire_otlp_opts o = {.attrs = &a, .host = "h"};
	size_t len;
	uint8_t *buf = pack(&q->r.base, &len);
	rc = wire_otlp_decode(buf, len, &o, r, st, err, errlen);
	free(buf);
	wire_otlp_attrs_fini(&a);
	return rc;
}

#define MAP "process.executable.name=binary"

TEST(ebpf_like_request_becomes_one_batch)
{
	struct req q;
	req_init(&q, 0);
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	char err[512] = "";
	REQUIRE(decode(&q, MAP, &r, &st, err, sizeof err) == FDO_OK);
	CHECK_EQ_STR(st.shape, "v1.10");
	REQUIRE(r.n == 1);
	const Fdod__SampleBatch *b = r.batches[0];
	CHECK_EQ_STR(b->binary, "prog");
	CHECK_EQ_STR(b->host, "h");
	CHECK_EQ_STR(b->event, "cpu-clock");
	CHECK(b->period == 10000000 && b->seq == 1);
	CHECK(b->time_start == T0 && b->time_end == T0 + 2);
	/* Mapping 2 has a file id alone and no one knows it: keyed by it. */
	REQUIRE(b->n_mappings == 2 && b->n_stacks == 3);
	CHECK(b->mappings[0]->build_id.len == 20);
	REQUIRE(b->mappings[1]->build_id.len == 16);
	CHECK(b->mappings[1]->build_id.data[0] == 0x00 &&
	      b->mappings[1]->build_id.data[15] == 0xff);
	CHECK(st.file_id_mappings == 1 && st.file_id_resolved == 0);
	/* Timestamps count: 2, 3, 4 (the kernel-only sample: 5, unmapped). */
	CHECK(b->stacks[0]->count == 2 && b->stacks[1]->count == 3 &&
	      b->stacks[2]->count == 4);
	uint64_t base = b->mappings[0]->start;
	/* Leaf as is, caller + 1 (a return address again). */
	REQUIRE(b->stacks[0]->n_addrs == 2);
	CHECK(b->stacks[0]->addrs[0] == base + 0x1000);
	CHECK(b->stacks[0]->addrs[1] == base + 0x2001);
	/* The kernel frame travels as 0; hot is a caller there. */
	REQUIRE(b->stacks[1]->n_addrs == 3);
	CHECK(b->stacks[1]->addrs[0] == 0 &&
	      b->stacks[1]->addrs[1] == base + 0x1001);
	CHECK(st.count == 14 && st.count_unmapped == 5);
	CHECK(st.count_unmapped_by[WIRE_OTLP_SYMBOLIZED] == 5);
	CHECK(st.frames_unmapped_by[WIRE_OTLP_HTLHASH_UNKNOWN] == 0);
	CHECK(st.frames_unmapped_by[WIRE_OTLP_SYMBOLIZED] == 2);
	/* Stack 3: the file id's frame, then hot's caller. */
	REQUIRE(b->stacks[2]->n_addrs == 2);
	CHECK(b->stacks[2]->addrs[0] == b->mappings[1]->start + 0x1000);
	wire_otlp_result_fini(&r);
}

/* A resolver that knows file id 00112233...eeff: GNU build-id 0xaa x 20. */
static int known_file_id(void *arg, const uint8_t *fid, uint8_t *bid,
			 size_t *len)
{
	static const uint8_t want[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
					 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
					 0xcc, 0xdd, 0xee, 0xff};
	(*(int *)arg)++;
	if (memcmp(fid, want, 16))
		return -1;
	memset(bid, 0xaa, 20);
	*len = 20;
	return 0;
}

/* decode with known_file_id as the resolver, counting its calls. */
static int decode_with(const struct req *q, int *calls,
		       struct wire_otlp_result *r, struct wire_otlp_stats *st)
{
	struct wire_otlp_opts opts = {.file_id = known_file_id,
				      .file_id_arg = calls},
			      *o = &opts;
	*calls = 0;
	char err[512] = "";
	struct wire_otlp_attrs a;
	int rc = wire_otlp_attrs_parse(MAP, &a, err, sizeof err);
	if (rc)
		return rc;
	o->attrs = &a;
	o->host = "h";
	size_t len;
	uint8_t *buf = pack(&q->r.base, &len);
	rc = wire_otlp_decode(buf, len, o, r, st, err, sizeof err);
	free(buf);
	wire_otlp_attrs_fini(&a);
	return rc;
}

TEST(file_id_resolves_to_the_uploaded_gnu_build_id)
{
	struct req q;
	req_init(&q, 0);
	int calls;
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	REQUIRE(decode_with(&q, &calls, &r, &st) == FDO_OK);
	CHECK(calls == 1);
	REQUIRE(r.n == 1 && r.batches[0]->n_mappings == 2);
	const Fdod__SampleBatch *b = r.batches[0];
	REQUIRE(b->mappings[1]->build_id.len == 20);
	CHECK(b->mappings[1]->build_id.data[0] == 0xaa &&
	      b->mappings[1]->build_id.data[19] == 0xaa);
	CHECK(st.file_id_mappings == 1 && st.file_id_resolved == 1);
	wire_otlp_result_fini(&r);

	/* The newer attribute name is the same id. */
	strs[S_HTL] = "process.executable.build_id.profiling";
	REQUIRE(decode_with(&q, &calls, &r, &st) == FDO_OK);
	CHECK(calls == 1 && st.file_id_resolved == 1);
	wire_otlp_result_fini(&r);
	strs[S_HTL] = "process.executable.build_id.htlhash";
}

TEST(file_id_not_32_hex_digits_is_unmapped)
{
	static const char *bad[] = {"00112233445566778899aabbccddeef",
				    "00112233445566778899aabbccddeeff00",
				    "0011223344556677889xaabbccddeeff"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct req q;
		req_init(&q, 0);
		q.v[2].string_value = (char *)bad[i];
		int calls;
		struct wire_otlp_result r;
		struct wire_otlp_stats st;
		REQUIRE(decode_with(&q, &calls, &r, &st) == FDO_OK);
		CHECK(calls == 0);
		CHECK(st.frames_unmapped_by[WIRE_OTLP_HTLHASH_UNKNOWN] == 1);
		CHECK(st.file_id_mappings == 0);
		REQUIRE(r.n == 1);
		CHECK(r.batches[0]->n_mappings == 1);
		wire_otlp_result_fini(&r);
	}
}

TEST(sample_attributes_split_batches_by_label)
{
	struct req q;
	req_init(&q, 0);
	q.xattr[1][1] = 5; /* sample 2 on thread t2 */
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	char err[512] = "";
	REQUIRE(decode(&q, MAP ",thread.name=label:thread", &r, &st, err,
		       sizeof err) == FDO_OK);
	REQUIRE(r.n == 2);
	REQUIRE(r.batches[0]->n_labels == 1 && r.batches[1]->n_labels == 1);
	CHECK_EQ_STR(r.batches[0]->labels[0]->value, "t1");
	CHECK_EQ_STR(r.batches[1]->labels[0]->value, "t2");
	CHECK(r.batches[1]->seq == 2);
	wire_otlp_result_fini(&r);
	/* No attribute names the binary: every sample unmapped. */
	REQUIRE(decode(&q, "service.name=binary", &r, &st, err, sizeof err) ==
		FDO_OK);
	CHECK(r.n == 0 && st.count_unmapped == st.count);
	CHECK(st.count_unmapped_by[WIRE_OTLP_NO_BINARY] == st.count);
	wire_otlp_result_fini(&r);
}

/* The sum of the counts of batch b's stacks. */
static uint64_t batch_count(const Fdod__SampleBatch *b)
{
	uint64_t n = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		n += b->stacks[i]->count;
	return n;
}

/* Samples repeating an attribute list, in another order, without a
 * binary, and in another profile: each lands where its own attributes
 * say, whatever came before it (the decoder remembers lists). */
TEST(repeated_attribute_lists_keep_their_batches)
{
	struct req q;
	req_init(&q, 0);
	/* Counts (timestamps): 2, 3, 4, 5. Sample 3 on stack 1 again. */
	q.xattr[1][1] = 5;		      /* prog, t2 */
	q.xattr[2][0] = 4, q.xattr[2][1] = 3; /* t1, prog: sample 0's set */
	q.x[3].stack_index = 1;		      /* prog, t1: sample 0's list */
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	char err[512] = "";
	const char *map = MAP ",thread.name=label:thread";
	REQUIRE(decode(&q, map, &r, &st, err, sizeof err) == FDO_OK);
	REQUIRE(r.n == 2);
	CHECK_EQ_STR(r.batches[0]->labels[0]->value, "t1");
	CHECK_EQ_STR(r.batches[1]->labels[0]->value, "t2");
	CHECK(batch_count(r.batches[0]) == 2 + 4 + 5);
	CHECK(batch_count(r.batches[1]) == 3);
	CHECK(st.count_unmapped == 0);
	wire_otlp_result_fini(&r);
	/* Samples 1 and 3 name no binary (thread t2 alone). */
	q.x[1].n_attribute_indices = 1, q.xattr[1][0] = 5;
	q.x[3].n_attribute_indices = 1, q.xattr[3][0] = 5;
	REQUIRE(decode(&q, map, &r, &st, err, sizeof err) == FDO_OK);
	REQUIRE(r.n == 1);
	CHECK(batch_count(r.batches[0]) == 2 + 4);
	CHECK(st.count_unmapped_by[WIRE_OTLP_NO_BINARY] == 3 + 5);
	CHECK(st.frames_unmapped_by[WIRE_OTLP_NO_BINARY] == 3 + 2);
	wire_otlp_result_fini(&r);
	/* The same profile twice: the same lists, a batch each. */
	P(Profile) * two[2] = {&q.p, &q.p};
	q.sc.profiles = two;
	q.sc.n_profiles = 2;
	REQUIRE(decode(&q, map, &r, &st, err, sizeof err) == FDO_OK);
	REQUIRE(r.n == 2);
	CHECK(r.batches[0]->seq == 1 && r.batches[1]->seq == 2);
	CHECK(batch_count(r.batches[0]) == 2 + 4 &&
	      batch_count(r.batches[1]) == 2 + 4);
	CHECK(st.count_unmapped_by[WIRE_OTLP_NO_BINARY] == 2 * (3 + 5));
	wire_otlp_result_fini(&r);
	/* A list seen before with a bad index after it: still refused. */
	q.sc.n_profiles = 1;
	q.x[3].n_attribute_indices = 2, q.xattr[3][1] = 99;
	CHECK_EQ_INT(decode(&q, map, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "attribute index 99") != NULL);
}

TEST(v19_shape_is_read)
{
	struct req q;
	req_init(&q, 0);
	P(ExportProfilesServiceRequestV19) o;
	P(ResourceProfilesV19) rp, *rpp = &rp;
	P(ScopeProfilesV19) sc, *scp = &sc;
	P(ProfileV19) p, *pp = &p;
	P(SampleV19) x[4], *xp[4];
	int64_t vals[4];
	F(export_profiles_service_request_v19__init)(&o);
	F(resource_profiles_v19__init)(&rp);
	F(scope_profiles_v19__init)(&sc);
	F(profile_v19__init)(&p);
	o.dictionary = &q.d;
	o.resource_profiles = &rpp;
	o.n_resource_profiles = 1;
	rp.scope_profiles = &scp;
	rp.n_scope_profiles = 1;
	sc.profiles = &pp;
	sc.n_profiles = 1;
	p.sample_type = q.p.sample_type;
	p.period_type = q.p.period_type;
	p.period = q.p.period;
	p.time_unix_nano = q.p.time_unix_nano;
	p.duration_nano = q.p.duration_nano;
	for (int i = 0; i < 4; i++) {
		F(sample_v19__init)(&x[i]);
		x[i].stack_index = i + 1;
		x[i].attribute_indices = q.xattr[i];
		x[i].n_attribute_indices = 1;
		vals[i] = 10 * (i + 1);
		x[i].values = &vals[i];
		x[i].n_values = 1;
		xp[i] = &x[i];
	}
	p.samples = xp;
	p.n_samples = 4;
	size_t len;
	uint8_t *buf = pack(&o.base, &len);
	struct wire_otlp_attrs a;
	char err[512] = "";
	REQUIRE(wire_otlp_attrs_parse(MAP, &a, err, sizeof err) == FDO_OK);
	struct wire_otlp_opts opts = {.attrs = &a, .host = "h"};
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	CHECK_EQ_INT(wire_otlp_decode(buf, len, &opts, &r, &st, err,
				      sizeof err),
		     FDO_OK);
	CHECK_EQ_STR(st.shape, "v1.8");
	CHECK(r.n == 1 && r.batches[0]->stacks[0]->count == 10);
	wire_otlp_result_fini(&r);
	/* Cut short: neither shape. */
	CHECK_EQ_INT(wire_otlp_decode(buf, len - 1, &opts, &r, &st, err,
				      sizeof err),
		     FDO_EPARSE);
	CHECK(strstr(err, "v1.8.0 or later") != NULL);
	wire_otlp_attrs_fini(&a);
	free(buf);
}

TEST(bad_requests_are_refused_with_the_reason)
{
	struct req q;
	struct wire_otlp_result r;
	struct wire_otlp_stats st;
	char err[512] = "";
	req_init(&q, 0x600000);
	CHECK_EQ_INT(decode(&q, MAP, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "address 0x600000 is outside its mapping 1") != NULL);
	req_init(&q, 0);
	q.x[0].stack_index = 9;
	CHECK_EQ_INT(decode(&q, MAP, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "stack 9 is not in the stack table") != NULL);
	req_init(&q, 0);
	q.l[1].mapping_index = 7;
	CHECK_EQ_INT(decode(&q, MAP, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "mapping 7 is not in the mapping table") != NULL);
	req_init(&q, 0);
	q.p.time_unix_nano = 0;
	for (int i = 0; i < 4; i++)
		q.x[i].n_timestamps_unix_nano = 0, q.x[i].n_values = 0;
	q.x[0].values = (int64_t[]){1};
	q.x[0].n_values = 1;
	CHECK_EQ_INT(decode(&q, MAP, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "no time_unix_nano") != NULL);
	req_init(&q, 0);
	q.st.unit_strindex = S_PROG;
	CHECK_EQ_INT(decode(&q, MAP, &r, &st, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "sample_type unit") != NULL);
	struct wire_otlp_attrs a;
	CHECK_EQ_INT(wire_otlp_attrs_parse("x=nowhere", &a, err, sizeof err),
		     FDO_EINVAL);
	wire_otlp_attrs_fini(&a);
	CHECK_EQ_INT(wire_otlp_attrs_parse("x=label:bad key", &a, err,
					   sizeof err),
		     FDO_EINVAL);
	wire_otlp_attrs_fini(&a);
}
