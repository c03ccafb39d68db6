/*
 * Tests for aggregator/profile.c and query.c on a real store: batches go in
 * through ingest, symbols through the symbol store, addresses through the
 * symbolizer pool; then profiles are built with each selector and checked
 * numerically.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"

static char prog[512], datadir[512], bid_hex[129];
static unsigned long long hot_off, cold_off, main_off;

/* Build a program and find file offsets of its functions (PIE: the text
 * segment's offsets equal its virtual addresses for gcc's layout). */
static int setup(void)
{
	if (prog[0])
		return 1;
	snprintf(prog, sizeof prog, "%s/prof", test_tmpdir());
	snprintf(datadir, sizeof datadir, "%s/data", test_tmpdir());
	char cmd[4096];
	snprintf(
		cmd, sizeof cmd,
		"printf '__attribute__((noinline)) int hot(int x){int s=0;"
		"for(int i=0;i<x;i++)s+=i*i;return s;}\\n"
		"__attribute__((noinline)) int cold(int x){return x*3;}\\n"
		"int main(int c,char**v){return hot(c)+cold(c);}\\n' > %s.c && "
		"gcc -O1 -g -o %s %s.c",
		prog, prog, prog);
	if (system(cmd))
		return 0;
	snprintf(
		cmd, sizeof cmd,
		"nm %s | awk '$3==\"hot\"||$3==\"cold\"||$3==\"main\"{print $3, $1}' > %s.syms; "
		"readelf -n %s | awk '/Build ID/{print $3}' > %s.bid",
		prog, prog, prog, prog);
	if (system(cmd))
		return 0;
	char path[600];
	snprintf(path, sizeof path, "%s.syms", prog);
	FILE *f = fopen(path, "r");
	char name[64];
	unsigned long long a;
	while (f && fscanf(f, "%63s %llx", name, &a) == 2) {
		if (!strcmp(name, "hot"))
			hot_off = a + 4;
		else if (!strcmp(name, "cold"))
			cold_off = a + 2;
		else
			main_off = a + 8;
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "%s.bid", prog);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%128s", bid_hex) != 1)
		return 0;
	fclose(f);
	return hot_off && cold_off && main_off;
}

static void push(agg_ingest *ing, const char *agent, int seq, const char *label,
		 unsigned long t0, int hot, int cold)
{
	char text[2048];
	unsigned long long base = 0x555555554000ull;
	snprintf(text, sizeof text,
		 "agent %s\nseq %d\nhost %s-host\nbinary prof\nlabel %s\n"
		 "event cpu-clock\nperiod 1000\nweight 1\ntime %lu %lu\n"
		 "mapping 0 %s 555555554000 555555654000 0 /x\n"
		 "stack %d %llx %llx\nstack %d %llx %llx\n"
		 "branch %llx %llx %d\n",
		 agent, seq, agent, label, t0, t0 + 60, bid_hex, hot,
		 base + hot_off, base + main_off + 1, cold, base + cold_off,
		 base + main_off + 1, base + main_off, base + hot_off, hot);
	Fdod__SampleBatch *b;
	char err[256];
	if (wire_batch_parse_text(text, strlen(text), NULL, &b, err,
				  sizeof err)) {
		fprintf(stderr, "  parse: %s\n", err);
		return;
	}
	struct agg_result res;
	agg_ingest_batch(ing, b, &res);
	if (res.status)
		fprintf(stderr, "  ingest: %s\n", res.message);
	wire_batch_free(b);
}

struct world {
	store *st;
	sym_cache *cache;
	agg_ingest *ing;
	agg_symwork *sw;
};

static void wake(void *arg, const uint32_t *ids, size_t n)
{
	agg_symwork_wake(arg, ids, n);
}

static int world_open(struct world *w)
{
	struct store_opts o = {.dir = datadir};
	char cache_dir[600];
	snprintf(cache_dir, sizeof cache_dir, "%s/cache", test_tmpdir());
	if (store_open(&o, &w->st) ||
	    sym_cache_create(64 << 20, cache_dir, &w->cache) ||
	    agg_symwork_create(w->st, w->cache, datadir, 1, &w->sw))
		return 0;
	struct agg_ingest_opts io = {.pending_cb = wake, .pending_arg = w->sw};
	return agg_ingest_create(w->st, &io, &w->ing) == FDO_OK;
}

static void world_close(struct world *w)
{
	agg_ingest_destroy(w->ing);
	agg_symwork_destroy(w->sw);
	sym_cache_destroy(w->cache);
	store_close(w->st);
}

static double count_of(const struct prof *p, const char *fn)
{
	double c = 0;
	for (size_t i = 0; i < p->nstacks; i++) {
		const struct prof_loc *l =
			&p->locs[p->stack_locs[p->stacks[i].first_loc]];
		if (l->nframes &&
		    !strcmp(prof_str(p,
				     p->frames[l->first_frame + l->nframes - 1]
					     .function),
			    fn))
			c += p->stacks[i].count;
	}
	return c;
}

/*
 * A profile built for the compile-time formats (q->reduced: leaves and
 * caller->callee pairs, no stacks) is the full build reduced, to the bit,
 * and every compile-time emitter writes the same bytes from both.
 */
static void check_reduced_same(struct world *w, struct agg_profile_query *q)
{
	struct prof full, red;
	char err[256] = "";
	q->reduced = 0;
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &full, err,
				  sizeof err) == FDO_OK);
	q->reduced = 1;
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &red, err,
				  sizeof err) == FDO_OK);
	q->reduced = 0;
	CHECK_EQ_INT(red.nstacks, 0);
	CHECK(red.reduced);
	CHECK(full.count == red.count && full.samples == red.samples &&
	      full.hosts == red.hosts && full.nlocs == red.nlocs);
	REQUIRE(prof_reduce(&full) == FDO_OK);
	CHECK_EQ_INT(full.nleaves, red.nleaves);
	CHECK_EQ_INT(full.npairs, red.npairs);
	for (size_t i = 0; i < full.nleaves && i < red.nleaves; i++)
		CHECK(full.leaves[i].loc == red.leaves[i].loc &&
		      full.leaves[i].count == red.leaves[i].count &&
		      full.leaves[i].samples == red.leaves[i].samples);
	CHECK(full.npairs == red.npairs &&
	      !memcmp(full.pairs, red.pairs, full.npairs * sizeof *full.pairs));
	CHECK(full.nleaves > 0 && full.npairs > 0);
	static const struct {
		int (*emit)(const struct prof *, const struct prof_opts *,
			    struct fdo_buf *);
		const char *opts;
	} ems[] = {{emit_llvm, "encoding=text"},
		   {emit_llvm, ""},
		   {emit_gcc, ""},
		   {emit_bolt, ""},
		   {emit_llvm, "encoding=text,counts=samples,head=stacks"}};
	for (size_t i = 0; i < sizeof ems / sizeof ems[0]; i++) {
		struct fdo_buf a, b;
		fdo_buf_init(&a);
		fdo_buf_init(&b);
		CHECK_EQ_INT(emit_with(ems[i].emit, &full, ems[i].opts, &a),
			     FDO_OK);
		CHECK_EQ_INT(emit_with(ems[i].emit, &red, ems[i].opts, &b),
			     FDO_OK);
		CHECK(a.len > 0 && a.len == b.len &&
		      !memcmp(a.data, b.data, a.len));
		fdo_buf_fini(&a);
		fdo_buf_fini(&b);
	}
	prof_fini(&full);
	prof_fini(&red);
}

TEST(profiles_select_weight_and_symbolize)
{
	REQUIRE(setup());
	struct world w;
	REQUIRE(world_open(&w));
	unsigned long now = 1763719200;
	/* serving: hot 90 / cold 10, now; batch: hot 10 / cold 90, 2 days ago */
	push(w.ing, "a", 1, "mode=serving", now - 3600, 90, 10);
	push(w.ing, "b", 1, "mode=batch", now - 2 * 86400, 10, 90);
	struct store_sym_result res;
	REQUIRE(store_symbols_add_file(w.st, datadir, prog, "prof", &res) ==
		FDO_OK);
	store_txn *t;
	uint32_t id;
	REQUIRE(store_txn_begin(w.st, 0, &t) == FDO_OK);
	REQUIRE(store_intern_buildid(t, res.elf.build_id, res.elf.build_id_len,
				     0, &id) == FDO_OK);
	store_txn_abort(t);
	REQUIRE(agg_ingest_flush(w.ing, 10000) == FDO_OK);
	agg_symwork_wake(w.sw, &id, 1);
	for (int i = 0; i < 200 && !agg_symwork_idle(w.sw); i++)
		usleep(20000);
	usleep(50000);
	for (int i = 0; i < 200 && !agg_symwork_idle(w.sw); i++)
		usleep(20000);

	struct agg_profile_query q = {.binary = "prof", .now = now};
	struct prof p;
	char err[256] = "";
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.samples, 200);
	CHECK(fabs(p.count - 200) < 1e-6);
	CHECK(fabs(count_of(&p, "hot") - 100) < 1e-6);
	CHECK_EQ_INT(p.hosts, 2);
	CHECK_EQ_INT(p.nbuild_ids, 1);
	CHECK(p.build_ids[0].elf_path != NULL);
	CHECK(p.locs[0].vaddr != UINT64_MAX);
	prof_fini(&p);
	check_reduced_same(&w, &q);
	q.blocks = 1;
	check_reduced_same(&w, &q);
	q.blocks = 0;

	/* Branch records (LBR): only when asked, in the stacks' unit. */
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nbranches, 0);
	prof_fini(&p);
	q.branches = 1;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nbranches, 2); /* one per (label set, bucket) */
	double bsum = 0;
	for (size_t i = 0; i < p.nbranches; i++) {
		bsum += p.branches[i].count;
		CHECK_EQ_INT(p.branches[i].from, main_off);
		CHECK_EQ_INT(p.branches[i].to, hot_off);
		CHECK(p.branches[i].to_vaddr != UINT64_MAX);
	}
	CHECK(fabs(bsum - 100) < 1e-6); /* 90 + 10, as the hot stacks */
	prof_fini(&p);

	/* labels= selects one mode. */
	REQUIRE(agg_query_selectors(&q, "mode:serving", NULL, err,
				    sizeof err) == FDO_OK);
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.samples, 100);
	CHECK(fabs(count_of(&p, "hot") - 90) < 1e-6);
	CHECK(fabs(count_of(&p, "cold") - 10) < 1e-6);
	CHECK_EQ_INT(p.nbranches, 1);
	CHECK(p.nbranches == 1 && fabs(p.branches[0].count - 90) < 1e-6);
	prof_fini(&p);
	q.branches = 0;
	/* Trimming (folded, pprof): the heaviest stack; a share over what
	 * any stack has leaves none; the total samples stay. */
	q.max_stacks = 1;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nstacks, 1);
	CHECK(fabs(count_of(&p, "hot") - 90) < 1e-6);
	CHECK_EQ_INT(p.samples, 100);
	prof_fini(&p);
	q.max_stacks = 0;
	q.min_share = 0.5;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nstacks, 1);
	CHECK(fabs(count_of(&p, "hot") - 90) < 1e-6);
	prof_fini(&p);
	q.min_share = 0.95;
	q.max_stacks = 5;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nstacks, 0);
	CHECK_EQ_INT(p.samples, 100);
	prof_fini(&p);
	q.min_share = 0;
	q.max_stacks = 0;
	agg_query_fini(&q);

	/* mix=3:1 gives serving 75% of the profile whatever its volume. */
	REQUIRE(agg_query_selectors(&q, NULL, "mode:serving*3,mode:batch*1",
				    err, sizeof err) == FDO_OK);
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK(fabs(count_of(&p, "hot") - (0.75 * 0.9 + 0.25 * 0.1) * 200) <
	      1e-6);
	prof_fini(&p);
	check_reduced_same(&w, &q);
	agg_query_fini(&q);

	/* window=1d drops the batch of two days ago. */
	q.window = 86400;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.samples, 100);
	prof_fini(&p);
	q.window = 0;

	/* half_life=1d: the old bucket (2 days + 30 min older) weighs less. */
	q.half_life = 86400;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	double wn = pow(0.5, 1800.0 / 86400),
	       wo = pow(0.5, (2 * 86400 - 1800.0) / 86400);
	double want_hot = (90 * wn + 10 * wo) / (100 * wn + 100 * wo) * 200;
	CHECK(fabs(count_of(&p, "hot") - want_hot) < 1e-6);
	prof_fini(&p);
	check_reduced_same(&w, &q);
	q.half_life = 0;

	/* An exact build-id that has no samples selects nothing. */
	q.build_id_len = 2;
	q.build_id[0] = 0xab;
	q.branches = 1;
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nstacks, 0);
	CHECK_EQ_INT(p.nbranches, 0);
	prof_fini(&p);
	q.branches = 0;
	q.build_id_len = res.elf.build_id_len;
	memcpy(q.build_id, res.elf.build_id, q.build_id_len);
	REQUIRE(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(p.nstacks, 2); /* both modes ran the same two stacks */
	CHECK(fabs(p.count - 200) < 1e-6);
	prof_fini(&p);

	q.binary = "nope";
	CHECK(agg_profile_build(w.st, w.cache, datadir, &q, &p, err,
				sizeof err) == FDO_ENOT_FOUND);
	CHECK(strstr(err, "nope") != NULL);
	prof_fini(&p);
	world_close(&w);
}

TEST(selector_syntax)
{
	struct agg_profile_query q = {0};
	char err[256];
	CHECK(agg_query_selectors(&q, "mode:serving,region=eu", NULL, err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(q.nselectors, 1);
	CHECK_EQ_INT(q.selectors[0].npairs, 2);
	CHECK_EQ_STR(q.selectors[0].pairs[1], "region=eu");
	agg_query_fini(&q);
	CHECK(agg_query_selectors(&q, NULL, "a:1+b:2*2.5,c:3", err,
				  sizeof err) == FDO_OK);
	CHECK_EQ_INT(q.nselectors, 2);
	CHECK(q.selectors[0].weight == 2.5 && q.selectors[1].weight == 1);
	CHECK_EQ_INT(q.selectors[0].npairs, 2);
	agg_query_fini(&q);
	const char *bad[] = {"novalue", ":x",	  "a:",	   "a=", "a:1+b:",
			     "a:1*0",	"a:1*-1", "a:1*x", "*3", "a:1*nan"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(agg_query_selectors(&q, NULL, bad[i], err, sizeof err) ==
		      FDO_EINVAL);
		agg_query_fini(&q);
	}
	CHECK(agg_query_selectors(&q, "a:1", "b:2", err, sizeof err) ==
	      FDO_EINVAL);
	agg_query_fini(&q);
	CHECK(agg_query_selectors(&q, "mode:serving,region:", NULL, err,
				  sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "'region:' has an empty value") != NULL);
	agg_query_fini(&q);
	CHECK(agg_query_selectors(&q, "novalue", NULL, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, "label 'novalue' is not key:value") != NULL);
	agg_query_fini(&q);
}
