/*
 * Tests for aggregator/profile.c and query.c on a real store: batches go in
 * through ingest, symbols through the symbol store, addresses through the
 * symbolizer pool; then profiles are built with each selector and checked
 * numerically.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "aggregator/ingest_int.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/prof_same.h"
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

/* The merger fills table aggs between merges (merge_fill_step) only in
 * the worlds of the test of that: the others count what pulls store. */
static int world_fill;

static int world_open(struct world *w)
{
	struct store_opts o = {.dir = datadir};
	char cache_dir[600];
	snprintf(cache_dir, sizeof cache_dir, "%s/cache", test_tmpdir());
	if (store_open(&o, &w->st) ||
	    sym_cache_create(64 << 20, cache_dir, &w->cache) ||
	    agg_symwork_create(w->st, w->cache, datadir, 1, &w->sw))
		return 0;
	struct agg_ingest_opts io = {.pending_cb = wake,
				     .pending_arg = w->sw,
				     .no_aggs_fill = !world_fill};
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

/* The location of b with a's location li (same build-id and offset). */
static size_t loc_in(const struct prof *a, uint32_t li, const struct prof *b)
{
	const struct prof_loc *l = &a->locs[li];
	for (size_t j = 0; j < b->nlocs; j++)
		if (b->locs[j].offset == l->offset &&
		    !strcmp(b->build_ids[b->locs[j].build_id].hex,
			    a->build_ids[l->build_id].hex))
			return j;
	return SIZE_MAX;
}

static int near(double x, double y)
{
	return fabs(x - y) <= 1e-12 * fmax(fabs(x), fabs(y));
}

/*
 * A profile built for the compile-time formats (q->reduced: leaves and
 * caller->callee pairs, no stacks) from the store's per-bucket sums (table
 * aggs: the first build computes and stores the buckets that are over, the
 * second reads them) is the one built from the stacks of every bucket
 * (q->full_scan), to the bit, and every compile-time emitter writes the
 * same bytes from all three. Against the full build's stacks reduced
 * (prof_reduce) the sums run in another order (per bucket first): the
 * same leaves and pairs, counts within rounding, and the same bytes on
 * this store.
 */
static void check_reduced_same(struct world *w, struct agg_profile_query *q)
{
	struct prof full, scan, red, again;
	char err[256] = "";
	q->reduced = 0;
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &full, err,
				  sizeof err) == FDO_OK);
	q->reduced = 1;
	q->full_scan = 1;
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &scan, err,
				  sizeof err) == FDO_OK);
	q->full_scan = 0;
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &red, err,
				  sizeof err) == FDO_OK);
	REQUIRE(agg_profile_build(w->st, w->cache, datadir, q, &again, err,
				  sizeof err) == FDO_OK);
	q->reduced = 0;
	CHECK_EQ_INT(red.nstacks, 0);
	CHECK(red.reduced && scan.reduced && again.reduced);
	CHECK(prof_same_reduced(&scan, &red));
	CHECK(prof_same_reduced(&scan, &again));
	REQUIRE(prof_reduce(&full) == FDO_OK);
	CHECK(near(full.count, red.count) && full.samples == red.samples &&
	      full.hosts == red.hosts && full.nlocs == red.nlocs);
	CHECK_EQ_INT(full.nleaves, red.nleaves);
	CHECK_EQ_INT(full.npairs, red.npairs);
	for (size_t i = 0; i < red.nleaves && i < full.nleaves; i++) {
		size_t li = loc_in(&red, red.leaves[i].loc, &full);
		int found = 0;
		for (size_t j = 0; j < full.nleaves; j++)
			if (full.leaves[j].loc == li) {
				found = near(full.leaves[j].count,
					     red.leaves[i].count) &&
					full.leaves[j].samples ==
						red.leaves[i].samples;
				break;
			}
		CHECK(found);
	}
	for (size_t i = 0; i < red.npairs; i++) {
		size_t ce = loc_in(&red, red.pairs[i].callee, &full),
		       cr = loc_in(&red, red.pairs[i].caller, &full);
		int found = 0;
		for (size_t j = 0; j < full.npairs; j++)
			if (full.pairs[j].callee == ce &&
			    full.pairs[j].caller == cr) {
				found = near(full.pairs[j].count,
					     red.pairs[i].count);
				break;
			}
		CHECK(found);
	}
	CHECK(q->build_id_len || (full.nleaves > 0 && full.npairs > 0));
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
		struct fdo_buf a, b, c, d;
		fdo_buf_init(&a);
		fdo_buf_init(&b);
		fdo_buf_init(&c);
		fdo_buf_init(&d);
		int ra = emit_with(ems[i].emit, &full, ems[i].opts, &a),
		    rb = emit_with(ems[i].emit, &red, ems[i].opts, &b),
		    rc = emit_with(ems[i].emit, &scan, ems[i].opts, &c),
		    rd = emit_with(ems[i].emit, &again, ems[i].opts, &d);
		CHECK(ra == rb && rb == rc && rc == rd);
		CHECK(ra != FDO_OK || q->build_id_len || a.len > 0);
		CHECK(b.len == c.len &&
		      (!b.len || !memcmp(b.data, c.data, b.len)));
		CHECK(d.len == c.len &&
		      (!d.len || !memcmp(d.data, c.data, d.len)));
		CHECK(a.len == b.len &&
		      (!a.len || !memcmp(a.data, b.data, a.len)));
		fdo_buf_fini(&a);
		fdo_buf_fini(&b);
		fdo_buf_fini(&c);
		fdo_buf_fini(&d);
	}
	prof_fini(&full);
	prof_fini(&scan);
	prof_fini(&red);
	prof_fini(&again);
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

/* Runs (binary, label set, bucket) with rows in table aggs, and rows. */
static unsigned stored_runs(store *st, uint64_t *rows)
{
	store_txn *t;
	store_cursor *c;
	unsigned runs = 0;
	*rows = 0;
	if (store_txn_begin(st, 0, &t))
		return 0;
	if (store_cursor_open(t, STORE_AGGS, &c) == FDO_OK) {
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
		for (; rc == FDO_OK;
		     rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
			struct store_aggs_key ak;
			++*rows;
			if (!store_aggs_key_decode(k, kl, &ak) &&
			    !ak.leaf_bid && !ak.chunk)
				runs++;
		}
		store_cursor_close(c);
	}
	store_txn_abort(t);
	return runs;
}

static void symbolize(struct world *w, uint32_t *bid)
{
	struct store_sym_result res;
	REQUIRE(store_symbols_add_file(w->st, datadir, prog, "prof", &res) ==
		FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(w->st, 0, &t) == FDO_OK);
	REQUIRE(store_intern_buildid(t, res.elf.build_id, res.elf.build_id_len,
				     0, bid) == FDO_OK);
	store_txn_abort(t);
	REQUIRE(agg_ingest_flush(w->ing, 10000) == FDO_OK);
	agg_symwork_wake(w->sw, bid, 1);
	for (int i = 0; i < 200 && !agg_symwork_idle(w->sw); i++)
		usleep(20000);
	usleep(50000);
	for (int i = 0; i < 200 && !agg_symwork_idle(w->sw); i++)
		usleep(20000);
}

static int put_garbage(store_txn *t, void *arg)
{
	const struct store_aggs_key *k = arg;
	uint8_t key[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(key, k);
	return store_put(t, STORE_AGGS, key, sizeof key, "\x01garbage", 8, 0);
}

/*
 * The per-bucket sums of table aggs: a pull stores the buckets that are
 * over, not the open one; a late batch into a stored bucket drops its
 * sums in the merge's transaction, retention drops those of the buckets it
 * deletes, and damaged rows are read from the stacks instead; whatever
 * the table holds, the profile is the full scan's, to the bit.
 */
TEST(profiles_from_stored_bucket_sums)
{
	REQUIRE(setup());
	snprintf(datadir, sizeof datadir, "%s/data-aggs", test_tmpdir());
	struct world w;
	REQUIRE(world_open(&w));
	unsigned long now = (unsigned long)time(NULL);
	unsigned long hour = now - now % 3600;
	push(w.ing, "a", 1, "mode=serving", hour - 7200, 90, 10);
	push(w.ing, "b", 1, "mode=batch", hour - 3 * 86400, 10, 90);
	push(w.ing, "c", 1, "mode=serving", hour, 30, 30); /* open bucket */
	uint32_t bid;
	symbolize(&w, &bid);
	uint64_t rows;
	CHECK_EQ_INT(stored_runs(w.st, &rows), 0);

	struct agg_profile_query q = {.binary = "prof", .now = now};
	check_reduced_same(&w, &q);
	/* The two buckets that are over, not the open one. */
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2);
	char err[256];
	REQUIRE(agg_query_selectors(&q, NULL, "mode:serving*3,mode:batch*1",
				    err, sizeof err) == FDO_OK);
	q.half_life = 86400;
	check_reduced_same(&w, &q);
	agg_query_fini(&q);
	q.half_life = 0;
	store_txn *t;
	struct store_buildid rec;
	REQUIRE(store_txn_begin(w.st, 0, &t) == FDO_OK);
	REQUIRE(store_buildid_get(t, bid, &rec) == FDO_OK);
	store_txn_abort(t);
	q.build_id_len = rec.build_id_len;
	memcpy(q.build_id, rec.build_id, rec.build_id_len);
	check_reduced_same(&w, &q);
	q.build_id[0] ^= 1; /* a build-id the store does not know */
	check_reduced_same(&w, &q);
	q.build_id_len = 0;

	/* A late batch into a stored bucket: its sums go with the merge. */
	push(w.ing, "a", 2, "mode=serving", hour - 7200, 5, 5);
	REQUIRE(agg_ingest_flush(w.ing, 10000) == FDO_OK);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 1);
	check_reduced_same(&w, &q);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2);

	/* Damaged rows: read from the stacks, and stored again. */
	REQUIRE(store_txn_begin(w.st, 0, &t) == FDO_OK);
	uint32_t binary, serving;
	REQUIRE(store_intern_binary(t, "prof", 4, 0, &binary) == FDO_OK);
	REQUIRE(store_intern_labelset(t, "mode=serving", 12, 0, &serving) ==
		FDO_OK);
	store_txn_abort(t);
	struct store_aggs_key bad = {binary, serving, (uint32_t)(hour - 7200),
				     0, 0};
	REQUIRE(store_write(w.st, put_garbage, &bad) == FDO_OK);
	check_reduced_same(&w, &q);
	bad.leaf_bid = bid;
	bad.chunk = 1;
	REQUIRE(store_write(w.st, put_garbage, &bad) == FDO_OK);
	check_reduced_same(&w, &q);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2);

	/* Retention deletes the bucket of three days ago and its sums. */
	uint64_t before = rows;
	size_t deleted;
	uint32_t oldest;
	REQUIRE(retention_expire(w.st, (uint32_t)(now - 86400), &deleted,
				 &oldest) == FDO_OK);
	CHECK(deleted > 0);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 1);
	CHECK(rows > 0 && rows < before);
	check_reduced_same(&w, &q);
	world_close(&w);
	snprintf(datadir, sizeof datadir, "%s/data", test_tmpdir());
}

/*
 * More partitions than the merge scans side by side (aggregator/reduce.c,
 * SCAN_MAX): 12 runs (label sets and buckets that are over), merged
 * through the heap; their keys overlap in some runs and not in others.
 * The profile is still the full scan's and prof_reduce's, to the bit, from
 * its stacks and from its stored sums.
 */
TEST(profiles_merge_many_runs)
{
	REQUIRE(setup());
	snprintf(datadir, sizeof datadir, "%s/data-many", test_tmpdir());
	struct world w;
	REQUIRE(world_open(&w));
	unsigned long now = (unsigned long)time(NULL);
	unsigned long hour = now - now % 3600;
	for (int i = 0; i < 12; i++) {
		char agent[16], label[32];
		snprintf(agent, sizeof agent, "m%d", i);
		snprintf(label, sizeof label, "shard=%d", i % 6);
		push(w.ing, agent, 1, label, hour - 3600 * (1 + i / 6),
		     1 + 7 * i, i % 3 ? 13 - i : 1);
	}
	uint32_t bid;
	symbolize(&w, &bid);
	uint64_t rows;
	struct agg_profile_query q = {.binary = "prof", .now = now};
	check_reduced_same(&w, &q); /* from the stacks, then stored */
	CHECK_EQ_INT(stored_runs(w.st, &rows), 12);
	check_reduced_same(&w, &q); /* from the stored sums */
	q.half_life = 86400;
	check_reduced_same(&w, &q);
	q.half_life = 0;
	q.blocks = 1;
	check_reduced_same(&w, &q);
	world_close(&w);
	snprintf(datadir, sizeof datadir, "%s/data", test_tmpdir());
}

/* Every leaf build-id partition of every run of binary "prof", as
 * agg_run_parts gives them (the releases route's read). */
struct parts_seen {
	struct store_totals_key k[64];
	uint32_t bid[64];
	wire_weight_t weight[64];
	uint64_t samples[64];
	size_t n;
	store_txn *t;
	int rc;
};

static int part_seen(void *arg, const struct store_totals_key *k,
		     uint32_t leaf_bid, wire_weight_t weight, uint64_t samples)
{
	struct parts_seen *ps = arg;
	if (ps->n == 64)
		return FDO_ELIMIT;
	ps->k[ps->n] = *k;
	ps->bid[ps->n] = leaf_bid;
	ps->weight[ps->n] = weight;
	ps->samples[ps->n++] = samples;
	return FDO_OK;
}

static int run_seen(void *arg, const struct store_totals_key *k,
		    const struct store_totals *v)
{
	struct parts_seen *ps = arg;
	return agg_run_parts(ps->t, k, v, part_seen, ps);
}

static void all_parts(store *st, struct parts_seen *ps)
{
	memset(ps, 0, sizeof *ps);
	uint32_t binary;
	REQUIRE(store_txn_begin(st, 0, &ps->t) == FDO_OK);
	REQUIRE(store_intern_binary(ps->t, "prof", 4, 0, &binary) == FDO_OK);
	CHECK_EQ_INT(store_totals_each(ps->t, binary, run_seen, ps), FDO_OK);
	store_txn_abort(ps->t);
}

/*
 * The releases route's partitions of a run (agg_run_parts): summed from
 * the run's counts when table aggs does not hold it, the very sums a
 * pull stores there after.
 */
TEST(release_parts_from_counts_are_the_stored_ones)
{
	REQUIRE(setup());
	snprintf(datadir, sizeof datadir, "%s/data-parts", test_tmpdir());
	struct world w;
	REQUIRE(world_open(&w));
	unsigned long now = (unsigned long)time(NULL);
	unsigned long hour = now - now % 3600;
	push(w.ing, "a", 1, "mode=serving", hour - 7200, 90, 10);
	push(w.ing, "b", 1, "mode=batch", hour - 7200, 10, 90);
	push(w.ing, "c", 1, "mode=serving", hour - 3600, 30, 30);
	uint32_t bid;
	symbolize(&w, &bid);
	uint64_t rows;
	CHECK_EQ_INT(stored_runs(w.st, &rows), 0);
	struct parts_seen *from_counts = calloc(1, sizeof *from_counts);
	struct parts_seen *stored = calloc(1, sizeof *stored);
	REQUIRE(from_counts && stored);
	all_parts(w.st, from_counts);
	CHECK_EQ_INT(from_counts->n, 3);
	struct agg_profile_query q = {.binary = "prof", .now = now};
	check_reduced_same(&w, &q); /* stores the runs' sums */
	CHECK_EQ_INT(stored_runs(w.st, &rows), 3);
	all_parts(w.st, stored);
	CHECK_EQ_INT(stored->n, from_counts->n);
	for (size_t i = 0; i < stored->n && i < from_counts->n; i++) {
		CHECK(!memcmp(&stored->k[i], &from_counts->k[i],
			      sizeof stored->k[i]));
		CHECK_EQ_INT(stored->bid[i], from_counts->bid[i]);
		CHECK_EQ_INT(stored->bid[i], bid);
		CHECK(stored->weight[i] == from_counts->weight[i]);
		CHECK_EQ_INT(stored->samples[i], from_counts->samples[i]);
	}
	/* Every sample of the three batches (100, 100 and 60). */
	CHECK_EQ_INT(from_counts->samples[0] + from_counts->samples[1] +
			     from_counts->samples[2],
		     260);
	free(from_counts);
	free(stored);
	world_close(&w);
	snprintf(datadir, sizeof datadir, "%s/data", test_tmpdir());
}

/*
 * The merger computes the sums of the buckets that are over between
 * merges, without a pull: the same rows a pull would store (a profile
 * from them is the full scan's, to the bit), none for the open bucket,
 * and again after a late batch dropped them.
 */
TEST(merger_fills_bucket_sums)
{
	REQUIRE(setup());
	snprintf(datadir, sizeof datadir, "%s/data-fill", test_tmpdir());
	struct world w;
	world_fill = 1;
	REQUIRE(world_open(&w));
	world_fill = 0;
	unsigned long now = (unsigned long)time(NULL);
	unsigned long hour = now - now % 3600;
	push(w.ing, "a", 1, "mode=serving", hour - 7200, 90, 10);
	push(w.ing, "b", 1, "mode=batch", hour - 3 * 86400, 10, 90);
	push(w.ing, "c", 1, "mode=serving", hour, 30, 30); /* open bucket */
	uint32_t bid;
	symbolize(&w, &bid);
	uint64_t rows;
	for (int i = 0; i < 500 && stored_runs(w.st, &rows) < 2; i++)
		usleep(10000);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2);
	usleep(100000);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2); /* never the open one */
	struct agg_profile_query q = {.binary = "prof", .now = now};
	check_reduced_same(&w, &q);
	/* A late batch drops a bucket's sums; the merger computes them
	 * again. */
	push(w.ing, "a", 2, "mode=serving", hour - 7200, 5, 5);
	REQUIRE(agg_ingest_flush(w.ing, 10000) == FDO_OK);
	for (int i = 0; i < 500 && stored_runs(w.st, &rows) < 2; i++)
		usleep(10000);
	CHECK_EQ_INT(stored_runs(w.st, &rows), 2);
	check_reduced_same(&w, &q);
	world_close(&w);
	snprintf(datadir, sizeof datadir, "%s/data", test_tmpdir());
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
