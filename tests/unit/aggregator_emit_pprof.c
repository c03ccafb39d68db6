/*
 * tests/unit/aggregator_emit_pprof.c — the pprof emitter: gzipped
 * perftools.profiles.Profile, checked by decoding it here (gzip, string
 * table, field layout) and by the real reader, `go tool pprof` (-top, -raw,
 * -traces), on profiles built by hand and from a frame-pointer perf
 * recording of a program compiled here, symbolized with the symbolizer
 * (inline chains included).
 */
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"
#include "tests/unit/emit_real.h"

#include <zlib.h>

/* ---------------------------------------------------------- helpers -- */

static int emit(const struct prof *p, const char *opts, struct fdo_buf *b)
{
	fdo_buf_init(b);
	return emit_with(emit_pprof, p, opts, b);
}

/* gunzip inflates a gzip member; free() the result. */
static uint8_t *gunzip(const struct fdo_buf *in, size_t *len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return NULL;
	size_t cap = 1 << 16;
	uint8_t *out = malloc(cap);
	z.next_in = (Bytef *)in->data;
	z.avail_in = (uInt)in->len;
	int rc = Z_OK;
	while (out && rc == Z_OK) {
		if (z.total_out == cap) {
			uint8_t *n = realloc(out, cap *= 2);
			if (!n) {
				free(out);
				out = NULL;
				break;
			}
			out = n;
		}
		z.next_out = out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		rc = inflate(&z, Z_FINISH);
		if (rc == Z_BUF_ERROR)
			rc = Z_OK;
	}
	*len = z.total_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64 && *p < end; s += 7) {
		uint8_t c = *(*p)++;
		*v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

/* Top-level field counts and the string table of a Profile. */
struct decoded {
	int fields[16];
	char *strings[4096];
	size_t nstrings;
};

static int decode(const uint8_t *b, size_t len, struct decoded *d)
{
	memset(d, 0, sizeof *d);
	const uint8_t *p = b, *end = b + len;
	while (p < end) {
		uint64_t key, v;
		if (get_varint(&p, end, &key))
			return -1;
		uint32_t field = (uint32_t)(key >> 3);
		if (field < 16)
			d->fields[field]++;
		if ((key & 7) == 0) {
			if (get_varint(&p, end, &v))
				return -1;
		} else if ((key & 7) == 2) {
			if (get_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -1;
			if (field == 6 && d->nstrings < 4096)
				d->strings[d->nstrings++] =
					strndup((const char *)p, v);
			p += v;
		} else {
			return -1;
		}
	}
	return 0;
}

static void decoded_fini(struct decoded *d)
{
	for (size_t i = 0; i < d->nstrings; i++)
		free(d->strings[i]);
}

static int has_string(const struct decoded *d, const char *s)
{
	for (size_t i = 0; i < d->nstrings; i++)
		if (!strcmp(d->strings[i], s))
			return 1;
	return 0;
}

/* pprof runs `go tool pprof <args> FILE` and returns its stdout (free()),
 * or NULL when it failed. */
static char *pprof(const char *file, const char *args)
{
	char out[512], err[512];
	er_path(out, sizeof out, "pprof.out");
	er_path(err, sizeof err, "pprof.err");
	int rc = er_run("HOME='%s' go tool pprof %s '%s' >'%s' 2>'%s'",
			test_tmpdir(), args, file, out, err);
	char *e = er_slurp(err, NULL);
	if (rc != 0 || (e && strstr(e, "failed")))
		fprintf(stderr, "  go tool pprof %s: rc %d\n%s", args, rc,
			e ? e : "");
	free(e);
	return rc == 0 ? er_slurp(out, NULL) : NULL;
}

/* top_function: the name on the first row of `-top` output. */
static void top_function(const char *top, char *name, size_t cap)
{
	name[0] = 0;
	const char *h = top ? strstr(top, "flat  flat%") : NULL;
	const char *l = h ? strchr(h, '\n') : NULL;
	if (!l)
		return;
	l++;
	/* five numeric columns, then the name up to the end of the line */
	for (int k = 0; k < 5; k++) {
		l += strspn(l, " ");
		l += strcspn(l, " \n");
	}
	l += strspn(l, " ");
	size_t n = strcspn(l, "\n");
	/* pprof marks a function that is only ever inlined */
	if (n > 9 && !strncmp(l + n - 9, " (inline)", 9))
		n -= 9;
	snprintf(name, cap, "%.*s", (int)n, l);
}

static int write_buf(const char *name, const struct fdo_buf *b, char *path,
		     size_t cap)
{
	er_path(path, cap, name);
	return er_write(path, b->data, b->len);
}

/* ------------------------------------------------------- by hand -- */

/* hand_profile: main -> hot_outer (hot_inner inlined), main -> C++ bar. */
static void hand_profile(struct prof *p)
{
	prof_init(p);
	p->binary = strdup("prog");
	p->event = strdup("cpu-clock");
	p->first_time = 1763719200;
	p->last_time = 1763722800;
	snprintf(p->selectors, sizeof p->selectors, "binary=prog");
	uint32_t b0 = er_add_build_id(p, "5f3c00e1", "/srv/sym/prog");
	uint32_t b1 = er_add_build_id(p, "aa01", NULL);
	er_add_frame(p, "hot_inner", "a.c", 10, 8);
	er_add_frame(p, "hot_outer", "a.c", 22, 20);
	uint32_t hot = er_add_loc(p, b0, 0x401130, 2);
	er_add_frame(p, "main", "a.c", 31, 28);
	uint32_t call = er_add_loc(p, b0, 0x401050, 1);
	er_add_frame(p, "_ZN3foo3barEv", "b.cc", 5, 4);
	uint32_t bar = er_add_loc(p, b0, 0x401200, 1);
	uint32_t raw = er_add_loc(p, b1, UINT64_MAX, 0);
	er_add_stack(p, (uint32_t[]){hot, call}, 2, 70.4);
	er_add_stack(p, (uint32_t[]){bar, call}, 2, 25);
	er_add_stack(p, (uint32_t[]){raw, call}, 2, 5);
	er_add_stack(p, (uint32_t[]){bar}, 1, 0.2); /* rounds to 0 */
}

TEST(pprof_encodes_profile_proto)
{
	struct prof p;
	hand_profile(&p);
	struct fdo_buf b;
	REQUIRE(emit(&p, "period=250000", &b) == FDO_OK);
	REQUIRE(b.len > 20);
	CHECK((uint8_t)b.data[0] == 0x1f && (uint8_t)b.data[1] == 0x8b);
	size_t len;
	uint8_t *raw = gunzip(&b, &len);
	REQUIRE(raw);
	struct decoded d;
	REQUIRE(decode(raw, len, &d) == 0);
	CHECK_EQ_INT(d.fields[1], 2); /* sample_type */
	CHECK_EQ_INT(d.fields[2], 3); /* samples (one rounded away) */
	CHECK_EQ_INT(d.fields[3], 2); /* mappings */
	CHECK_EQ_INT(d.fields[4], 4); /* locations */
	CHECK_EQ_INT(d.fields[5], 4); /* functions */
	CHECK_EQ_INT(d.fields[11], 1);
	CHECK_EQ_INT(d.fields[12], 1);
	REQUIRE(d.nstrings > 0);
	CHECK_EQ_STR(d.strings[0], "");
	CHECK(has_string(&d, "foo::bar()"));
	CHECK(has_string(&d, "_ZN3foo3barEv"));
	CHECK(has_string(&d, "5f3c00e1"));
	CHECK(has_string(&d, "nanoseconds"));
	decoded_fini(&d);
	free(raw);

	/* Deterministic. */
	struct fdo_buf again;
	REQUIRE(emit(&p, "period=250000", &again) == FDO_OK);
	CHECK(again.len == b.len && !memcmp(again.data, b.data, b.len));
	fdo_buf_fini(&again);
	fdo_buf_fini(&b);

	/* Another event: its own sample type. */
	free(p.event);
	p.event = strdup("cycles");
	REQUIRE(emit(&p, NULL, &b) == FDO_OK);
	raw = gunzip(&b, &len);
	REQUIRE(raw && decode(raw, len, &d) == 0);
	CHECK(has_string(&d, "cycles") && has_string(&d, "events"));
	CHECK(!has_string(&d, "nanoseconds"));
	decoded_fini(&d);
	free(raw);
	fdo_buf_fini(&b);
	prof_fini(&p);
}

TEST(pprof_read_by_go_tool_pprof)
{
	struct prof p;
	hand_profile(&p);
	struct fdo_buf b;
	REQUIRE(emit(&p, "period=250000", &b) == FDO_OK);
	char path[512];
	REQUIRE(write_buf("hand.pb.gz", &b, path, sizeof path) == 0);
	fdo_buf_fini(&b);

	char *top = pprof(path, "-top");
	REQUIRE(top);
	char name[256];
	top_function(top, name, sizeof name);
	CHECK_EQ_STR(name, "hot_inner");
	CHECK(strstr(top, "Type: cpu") != NULL);
	/* 100 samples of 250 us: 25 ms in all. */
	CHECK(strstr(top, "of 25ms total") != NULL);
	if (test_failed_now)
		fprintf(stderr, "%s", top);
	free(top);

	char *rawtext = pprof(path, "-raw");
	REQUIRE(rawtext);
	CHECK(strstr(rawtext, "PeriodType: cpu nanoseconds") != NULL);
	CHECK(strstr(rawtext, "samples/count cpu/nanoseconds") != NULL);
	CHECK(strstr(rawtext, "5f3c00e1") != NULL);
	/* One location, two lines: hot_inner inlined into hot_outer. */
	const char *in = strstr(rawtext, "hot_inner");
	const char *out = in ? strstr(in, "hot_outer") : NULL;
	const char *nl = in ? strchr(in, '\n') : NULL;
	const char *nl2 = nl ? strchr(nl + 1, '\n') : NULL;
	CHECK(in && out && nl && nl2 && out > nl && out < nl2);
	if (test_failed_now)
		fprintf(stderr, "%s", rawtext);
	free(rawtext);

	char *traces = pprof(path, "-traces");
	REQUIRE(traces);
	const char *t = strstr(traces, "hot_inner");
	CHECK(t && strstr(t, "hot_outer") && strstr(t, "main"));
	CHECK(strstr(traces, "(inline)") != NULL);
	CHECK(strstr(traces, "foo::bar") != NULL);
	if (test_failed_now)
		fprintf(stderr, "%s", traces);
	free(traces);
	prof_fini(&p);
}

TEST(pprof_empty_profile)
{
	struct prof p;
	prof_init(&p);
	struct fdo_buf b;
	REQUIRE(emit(&p, NULL, &b) == FDO_OK);
	size_t len;
	uint8_t *raw = gunzip(&b, &len);
	struct decoded d;
	REQUIRE(raw && decode(raw, len, &d) == 0);
	CHECK_EQ_INT(d.fields[2], 0);
	CHECK(d.nstrings > 0 && !strcmp(d.strings[0], ""));
	decoded_fini(&d);
	free(raw);
	char path[512];
	REQUIRE(write_buf("empty.pb.gz", &b, path, sizeof path) == 0);
	fdo_buf_fini(&b);
	char *raw_text = pprof(path, "-raw");
	CHECK(raw_text != NULL);
	free(raw_text);
	prof_fini(&p);
}

/* --------------------------------------------------- real programs -- */

struct frame_loc {
	uint64_t vaddr;
	uint32_t loc;
};

/* loc_for symbolizes vaddr once (inline chain from the index). */
static uint32_t loc_for(struct prof *p, const sym_index *idx,
			struct frame_loc **tab, size_t *n, uint64_t vaddr)
{
	for (size_t i = 0; i < *n; i++)
		if ((*tab)[i].vaddr == vaddr)
			return (*tab)[i].loc;
	struct sym_frame fr[16];
	size_t nf = 0;
	sym_index_lookup(idx, vaddr, fr, 16, &nf, NULL);
	if (nf > 16)
		nf = 16;
	for (size_t k = 0; k < nf; k++)
		er_add_frame(p, fr[k].function ? fr[k].function : "??",
			     fr[k].file, fr[k].line, fr[k].start_line);
	uint32_t l = er_add_loc(p, 0, vaddr, (uint32_t)nf);
	struct frame_loc *t = realloc(*tab, (*n + 1) * sizeof *t);
	if (!t)
		abort();
	*tab = t;
	t[(*n)++] = (struct frame_loc){vaddr, l};
	return l;
}

TEST(pprof_from_perf_stacks)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	char data[512];
	er_path(data, sizeof data, "perf.g.data");
	REQUIRE(er_record(prog, "-g", data) == 0);
	sym_index *idx;
	REQUIRE(sym_index_open(prog, NULL, NULL, &idx) == FDO_OK);
	struct prof p;
	REQUIRE(er_prof_begin(&p, prog) == 0);

	/* perf script: one sample per block of lines, leaf first, each a
	 * map-relative address (= file offset here). Keep the frames in the
	 * program; callers' return addresses become call sites (-1). */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "perf script -i '%s' -F ip,dso 2>/dev/null",
		 data);
	FILE *f = popen(cmd, "r");
	REQUIRE(f);
	const char *base = strrchr(prog, '/') + 1;
	struct frame_loc *tab = NULL;
	size_t ntab = 0;
	uint32_t stack[128];
	uint32_t depth = 0;
	int in_prog = 1, nframes = 0;
	char line[1024];
	int eof = 0;
	while (!eof) {
		eof = !fgets(line, sizeof line, f);
		unsigned long long ip;
		char dso[800];
		if (!eof && sscanf(line, " %llx (%799[^)])", &ip, dso) == 2) {
			const char *d = strrchr(dso, '/');
			int mine = d && !strcmp(d + 1, base);
			if (nframes++ == 0)
				in_prog = mine;
			uint64_t at;
			if (in_prog && mine && depth < 128 &&
			    !sym_index_offset_to_vaddr(idx, ip, &at)) {
				at -= depth ? 1 : 0;
				stack[depth] =
					loc_for(&p, idx, &tab, &ntab, at);
				depth++;
			} else {
				in_prog = 0;
			}
			continue;
		}
		if (depth)
			er_add_stack(&p, stack, depth, 1);
		depth = 0;
		nframes = 0;
		in_prog = 1;
	}
	pclose(f);
	free(tab);
	sym_index_close(idx);
	REQUIRE(p.nstacks > 300);

	/* Our own hottest function: innermost frame of the leaf. */
	struct {
		uint32_t fn;
		double c;
	} flat[64];
	size_t nflat = 0;
	for (size_t i = 0; i < p.nstacks; i++) {
		const struct prof_loc *l =
			&p.locs[p.stack_locs[p.stacks[i].first_loc]];
		if (!l->nframes)
			continue;
		uint32_t fn = p.frames[l->first_frame].function;
		size_t k = 0;
		while (k < nflat && flat[k].fn != fn)
			k++;
		if (k == nflat && nflat < 64)
			flat[nflat++].fn = fn, flat[k].c = 0;
		if (k < nflat)
			flat[k].c += p.stacks[i].count;
	}
	REQUIRE(nflat > 0);
	size_t best = 0;
	for (size_t k = 1; k < nflat; k++)
		if (flat[k].c > flat[best].c)
			best = k;
	const char *hottest = prof_str(&p, flat[best].fn);

	struct fdo_buf b;
	REQUIRE(emit(&p, "period=200000", &b) == FDO_OK);
	char path[512];
	REQUIRE(write_buf("real.pb.gz", &b, path, sizeof path) == 0);
	fdo_buf_fini(&b);
	char *top = pprof(path, "-top");
	REQUIRE(top);
	char name[256];
	top_function(top, name, sizeof name);
	printf("  %zu stacks; hottest function %s (%.0f samples); "
	       "pprof's top: %s\n",
	       p.nstacks, hottest, flat[best].c, name);
	CHECK_EQ_STR(name, hottest);
	free(top);
	/* hot_global's loop has mix() inlined: an inline frame, and the
	 * callers up to main. */
	char *traces = pprof(path, "-traces");
	REQUIRE(traces);
	const char *m = strstr(traces, "mix");
	CHECK(m && strstr(m, "(inline)") && strstr(m, "hot_global") &&
	      strstr(m, "main"));
	free(traces);
	prof_fini(&p);
}
