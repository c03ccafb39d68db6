/*
 * bench/profiles/pull_loop.c — what the llvm, gcc and bolt builds of a
 * real store cost in one process, without HTTP: ROUNDS times each (a
 * 7-day window of BINARY, the route's default options, bolt of BUILD-ID),
 * from table aggs as a pull builds them, keeping aggregator/flow.c's memo
 * between builds as fdod does. Per build it prints the CPU, the process's
 * RSS before, its peak (VmHWM, reset before each build through
 * /proc/self/clear_refs) and what of the RSS was file pages (the store's
 * map) or anonymous at the end of the build; it writes each answer to
 * OUT-DIR/out.FORMAT, to compare bytes between two builds of the tree.
 * Opens the store itself: stop fdod first, and use a copy (a pull may
 * store rows). Meant to run under perf record. bench/profiles/README.md
 * says how to build and run it.
 *
 *   pull_loop DATA-DIR BINARY BUILD-ID ROUNDS OUT-DIR [FORMAT]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/profiles/bench_store.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
	       (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

/* A /proc/self/status field in MiB, or -1. */
static double status_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atof(line + n + 1) / 1024.0;
	if (f)
		fclose(f);
	return v;
}

/* With PULL_LOOP_SMAPS set: each file mapping's resident MiB (the
 * store's map, the DWARF index...), from /proc/self/smaps, after a build. */
static void print_file_rss(void)
{
	if (!getenv("PULL_LOOP_SMAPS"))
		return;
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[4096], name[4096] = "";
	while (f && fgets(line, sizeof line, f)) {
		unsigned long kb;
		char path[4096];
		if (sscanf(line, "%*x-%*x %*s %*s %*s %*s %4095s", path) == 1)
			snprintf(name, sizeof name, "%s", path);
		else if (sscanf(line, "Rss: %lu kB", &kb) == 1 && kb >= 1024 &&
			 name[0] == '/')
			printf("    %6.1f MiB %s\n", kb / 1024.0, name);
		if (!strchr(line, '\n')) /* a longer line: skip its rest */
			while (fgets(line, sizeof line, f) &&
			       !strchr(line, '\n'))
				;
	}
	if (f)
		fclose(f);
}

static void reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

static int one(store *st, sym_cache *cache, const char *data,
	       const char *binary, const char *bid, int f, int round,
	       const char *outdir)
{
	static const char *const fmts[] = {"llvm", "gcc", "bolt"};
	struct agg_profile_query q;
	struct prof_opts po;
	if (bench_query(f, binary, bid, 0, &q, &po))
		return FDO_EINVAL;
	struct prof p;
	struct fdo_buf out;
	char err[256] = "";
	fdo_buf_init(&out);
	reset_peak();
	double rss0 = status_mib("VmRSS"), file0 = status_mib("RssFile"),
	       anon0 = status_mib("RssAnon");
	double c0 = cpu_s(), t0 = now_s();
	int rc = agg_profile_build(st, cache, data, &q, &p, err, sizeof err);
	if (!rc)
		rc = prof_emitter_find(fmts[f])->emit(&p, &po, &out);
	double file1 = status_mib("RssFile"), anon1 = status_mib("RssAnon");
	prof_fini(&p);
	double t1 = now_s(), c1 = cpu_s(), peak = status_mib("VmHWM");
	printf("%d %-4s %s %zu bytes, %.2f s, CPU %.2f s; RSS before %.0f "
	       "MiB, peak %.0f (+%.0f); at the end +%.0f file, +%.0f anon %s\n",
	       round, fmts[f], rc ? fdo_strerror(rc) : "ok", out.len, t1 - t0,
	       c1 - c0, rss0, peak, peak - rss0, file1 - file0, anon1 - anon0,
	       err);
	print_file_rss();
	char fn[4096];
	snprintf(fn, sizeof fn, "%s/out.%s", outdir, fmts[f]);
	FILE *w = rc ? NULL : fopen(fn, "w");
	if (w) {
		fwrite(out.data, 1, out.len, w);
		fclose(w);
	}
	fdo_buf_fini(&out);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: pull_loop DATA-DIR BINARY BUILD-ID "
				"ROUNDS OUT-DIR [FORMAT]\n");
		return 2;
	}
	const char *data = argv[1], *binary = argv[2], *bid = argv[3];
	int rounds = atoi(argv[4]);
	const char *outdir = argv[5], *only = argc > 6 ? argv[6] : NULL;
	static const char *const fmts[] = {"llvm", "gcc", "bolt"};
	store *st;
	sym_cache *cache;
	if (bench_open(data, &st, &cache))
		return 2;
	int bad = 0;
	for (int r = 0; r < rounds; r++)
		for (int f = 0; f < 3; f++)
			if (!only || !strcmp(only, fmts[f]))
				bad |= !!one(st, cache, data, binary, bid, f, r,
					     outdir);
	sym_cache_destroy(cache);
	store_close(st);
	return bad;
}
