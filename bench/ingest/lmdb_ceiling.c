/*
 * bench/ingest/lmdb_ceiling.c — the ceiling for the ingest benchmark: how
 * fast LMDB alone takes the counts-table writes fdod had to do, with
 * nothing else (no network, no decode, no normalization, no other table).
 *
 * It opens a fresh environment (default flags: durable sync, one fsync of
 * the data and of the meta page per commit, as fdod's store) with one named
 * database "counts", and puts keys of fdod's counts layout
 *
 *   OFFSET SIZE DESCRIPTION
 *        0    4 binary id, big-endian (1)
 *        4    4 label set id, big-endian (0..3, as the pusher's 4 shards)
 *        8    4 time bucket, unix seconds, big-endian (this hour)
 *       12    8 stack id: a random 64-bit hash, big-endian
 *
 * with 24-byte values (16-byte fixed-point weight + 8-byte sample count),
 * --keys-per-txn puts per write transaction, until --keys puts (or, with
 * --keys 0, for --seconds). Like the pusher's workload, --new-pct of the
 * puts create a key never written before and the others overwrite an
 * existing one (picked uniformly), so the tree grows as fdod's does.
 * --rmw reads each key before writing it (mdb_get + add + mdb_put), as an
 * aggregation must; the default is plain puts.
 *
 * Workload assumed: one writer thread, random key order (stack ids are
 * hashes), transactions of hundreds to tens of thousands of keys.
 * Output: a readable report and one "RESULT key=value ..." line.
 * Exit status 0, 1 on an LMDB error, 2 on a usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

#include "common/common.h"
#include "common/opts.h"

#define KEY_SIZE 20
#define VAL_SIZE 24

struct cfg {
	char *dir;
	uint64_t keys;
	uint64_t keys_per_txn;
	uint64_t seconds;
	uint64_t max_seconds;
	double new_pct;
	int rmw;
};

#define F(field) offsetof(struct cfg, field)
static const struct fdo_opt opts[] = {
	{"dir", FDO_OPT_STRING, F(dir), NULL, "DIR",
	 "directory for a fresh LMDB environment (created; must be empty)"},
	{"keys", FDO_OPT_UINT, F(keys), "0", "N",
	 "puts in all (0: run for --seconds)"},
	{"keys-per-txn", FDO_OPT_UINT, F(keys_per_txn), "8000", "N",
	 "puts per write transaction"},
	{"seconds", FDO_OPT_UINT, F(seconds), "20", "S",
	 "how long to run when --keys is 0"},
	{"max-seconds", FDO_OPT_UINT, F(max_seconds), "30", "S",
	 "stop after this long even if --keys are not all written"},
	{"new-pct", FDO_OPT_DOUBLE, F(new_pct), "5", "PCT",
	 "share of puts that create a new key (the rest overwrite)"},
	{"rmw", FDO_OPT_BOOL, F(rmw), "false", NULL,
	 "read each key before writing it (get + add + put)"},
	{0},
};
#undef F

static struct cfg cfg;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int lmdb_fail(const char *what, int rc)
{
	fprintf(stderr, "lmdb_ceiling: %s: %s\n", what, mdb_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	char err[256];
	int optind, rc;
	if (fdo_opts_wants_help(argc, argv)) {
		printf("usage: lmdb_ceiling --dir DIR [options]\n\nDurable "
		       "LMDB puts of fdod's counts-table key and value sizes, "
		       "the\nceiling of the ingest benchmark "
		       "(bench/ingest/README.md).\n\n");
		fdo_opts_print_help(opts, stdout);
		return 0;
	}
	if (fdo_opts_defaults(opts, &cfg, err, sizeof err) ||
	    fdo_opts_parse_args(opts, &cfg, argc, argv, &optind, err,
				sizeof err)) {
		fprintf(stderr, "lmdb_ceiling: %s\n", err);
		return 2;
	}
	if (!cfg.dir || optind != argc || cfg.keys_per_txn < 1 ||
	    cfg.new_pct < 0 || cfg.new_pct > 100) {
		fprintf(stderr, "lmdb_ceiling: bad arguments (see --help)\n");
		return 2;
	}
	if (mkdir(cfg.dir, 0755) != 0) {
		perror(cfg.dir);
		return 2;
	}

	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	if ((rc = mdb_env_create(&env)) ||
	    (rc = mdb_env_set_mapsize(env, (size_t)16 << 30)) ||
	    (rc = mdb_env_set_maxdbs(env, 4)) ||
	    (rc = mdb_env_open(env, cfg.dir, 0, 0644)))
		return lmdb_fail("open", rc);
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, "counts", MDB_CREATE, &dbi)) ||
	    (rc = mdb_txn_commit(txn)))
		return lmdb_fail("create counts", rc);

	/* Stack ids written so far, for overwrites. */
	size_t nids = 0, cap_ids = 1 << 16;
	uint64_t *ids = malloc(cap_ids * sizeof *ids);
	size_t cap_lat = 1 << 12, ntxn = 0;
	uint64_t *commit_ns = malloc(cap_lat * sizeof *commit_ns);
	if (!ids || !commit_ns)
		return 1;
	uint64_t rng = 0xce11;
	uint32_t bucket = (uint32_t)(time(NULL) / 3600 * 3600);
	uint64_t newp =
		(uint64_t)(cfg.new_pct / 100.0 * 18446744073709551615.0);
	uint64_t done = 0;
	uint64_t t0 = fdo_now_ns();
	uint64_t stop =
		t0 + (cfg.keys ? cfg.max_seconds : cfg.seconds) * 1000000000ull;
	uint64_t put_ns = 0;
	while ((cfg.keys ? done < cfg.keys : 1) && fdo_now_ns() < stop) {
		uint64_t n = cfg.keys_per_txn;
		if (cfg.keys && cfg.keys - done < n)
			n = cfg.keys - done;
		uint64_t tp = fdo_now_ns();
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
			return lmdb_fail("begin", rc);
		for (uint64_t i = 0; i < n; i++) {
			uint64_t r = rng_next(&rng);
			uint64_t id;
			if (nids == 0 || nids < cfg.keys_per_txn || r < newp) {
				id = rng_next(&rng);
				if (nids == cap_ids) {
					cap_ids *= 2;
					ids = realloc(ids,
						      cap_ids * sizeof *ids);
					if (!ids)
						return 1;
				}
				ids[nids++] = id;
			} else {
				id = ids[rng_next(&rng) % nids];
			}
			uint8_t k[KEY_SIZE], v[VAL_SIZE];
			fdo_put_be32(k, 1);
			fdo_put_be32(k + 4, (uint32_t)(id & 3));
			fdo_put_be32(k + 8, bucket);
			fdo_put_be64(k + 12, id);
			uint64_t samples = 1 + (r & 3);
			MDB_val key = {KEY_SIZE, k}, val = {VAL_SIZE, v};
			if (cfg.rmw) {
				MDB_val old;
				rc = mdb_get(txn, dbi, &key, &old);
				if (rc == 0 && old.mv_size == VAL_SIZE)
					samples += fdo_get_be64(
						(uint8_t *)old.mv_data + 16);
				else if (rc != MDB_NOTFOUND && rc != 0)
					return lmdb_fail("get", rc);
			}
			fdo_put_be64(v, 0);
			fdo_put_be64(v + 8, samples * 1000000ull * 1000000ull);
			fdo_put_be64(v + 16, samples);
			if ((rc = mdb_put(txn, dbi, &key, &val, 0)))
				return lmdb_fail("put", rc);
		}
		uint64_t tc = fdo_now_ns();
		put_ns += tc - tp;
		if ((rc = mdb_txn_commit(txn)))
			return lmdb_fail("commit", rc);
		if (ntxn == cap_lat) {
			cap_lat *= 2;
			commit_ns =
				realloc(commit_ns, cap_lat * sizeof *commit_ns);
			if (!commit_ns)
				return 1;
		}
		commit_ns[ntxn++] = fdo_now_ns() - tc;
		done += n;
	}
	double secs = (double)(fdo_now_ns() - t0) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	MDB_stat st;
	MDB_envinfo info;
	MDB_stat est;
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
	    (rc = mdb_stat(txn, dbi, &st)))
		return lmdb_fail("stat", rc);
	mdb_txn_abort(txn);
	mdb_env_info(env, &info);
	mdb_env_stat(env, &est);
	mdb_env_close(env);

	uint64_t sum_commit = 0;
	for (size_t i = 0; i < ntxn; i++)
		sum_commit += commit_ns[i];
	qsort(commit_ns, ntxn, sizeof *commit_ns, cmp_u64);
	double c50 = ntxn ? commit_ns[(ntxn - 1) / 2] / 1e6 : 0;
	double c99 = ntxn ? commit_ns[(size_t)((ntxn - 1) * 0.99)] / 1e6 : 0;
	double cmax = ntxn ? commit_ns[ntxn - 1] / 1e6 : 0;
	int partial = cfg.keys && done < cfg.keys;

	printf("lmdb ceiling: %s puts of %d-byte keys, %d-byte values, %" PRIu64
	       " per durable txn, %.1f%% new keys, %s\n",
	       cfg.rmw ? "get+put" : "plain", KEY_SIZE, VAL_SIZE,
	       cfg.keys_per_txn, cfg.new_pct, cfg.dir);
	printf("  puts                        %" PRIu64 "%s in %.2f s"
	       " (%" PRIu64 " distinct keys, tree depth %u)\n",
	       done, partial ? " (stopped at --max-seconds)" : "", secs,
	       (uint64_t)st.ms_entries, st.ms_depth);
	printf("  keys/s                      %.0f\n", done / secs);
	printf("  txn/s                       %.1f (%zu txns)\n", ntxn / secs,
	       ntxn);
	printf("  commit (write + fsync)      p50 %.2f ms, p99 %.2f ms, max "
	       "%.2f ms; %.0f%% of the time\n",
	       c50, c99, cmax, 100.0 * sum_commit / 1e9 / secs);
	printf("  puts in memory              %.0f%% of the time, %.2f us/put\n",
	       100.0 * put_ns / 1e9 / secs, done ? put_ns / 1e3 / done : 0.0);
	printf("  map used                    %.1f MiB\n",
	       (double)(info.me_last_pgno + 1) * est.ms_psize / 1048576.0);
	printf("RESULT keys=%" PRIu64 " txns=%zu seconds=%.3f keys_per_s=%.0f"
	       " txn_per_s=%.2f commit_p50_ms=%.3f commit_p99_ms=%.3f"
	       " commit_max_ms=%.3f partial=%d distinct=%" PRIu64 "\n",
	       done, ntxn, secs, done / secs, ntxn / secs, c50, c99, cmax,
	       partial, (uint64_t)st.ms_entries);
	free(ids);
	free(commit_ns);
	fdo_opts_fini(opts, &cfg);
	return 0;
}
