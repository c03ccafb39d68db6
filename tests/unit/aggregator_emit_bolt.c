/*
 * tests/unit/aggregator_emit_bolt.c — the BOLT .fdata emitter and the
 * symbolizer's function listing behind it (symbolizer/funcs.c).
 *
 * Profiles are built in memory, by hand and from perf recordings of a
 * program compiled here; the output is checked byte for byte and then
 * given to the real tools: llvm-bolt-16 must take it without a stale or
 * invalid-profile complaint, with every function of the file matched, and
 * the BOLTed binary must print what the original prints. The acceptance
 * check compares per-function sample shares with perf2bolt's own .fdata
 * from the same perf.data (within 1 percentage point).
 */
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"
#include "tests/unit/emit_real.h"

#include <math.h>

/* ---------------------------------------------------------- helpers -- */

struct listing {
	struct sym_func *f;
	size_t n;
};

static int list_funcs(const char *elf, struct listing *l)
{
	return sym_elf_functions(elf, &l->f, &l->n);
}

/* nth_named returns the k-th (0-based, address order) function named
 * name, or NULL. */
static const struct sym_func *nth_named(const struct listing *l,
					const char *name, int k)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->f[i].name, name) && k-- == 0)
			return &l->f[i];
	return NULL;
}

static int emit(const struct prof *p, const char *opts, char **text)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	int rc = emit_with(emit_bolt, p, opts, &b);
	*text = rc ? NULL : strdup(fdo_buf_cstr(&b));
	fdo_buf_fini(&b);
	return rc;
}

/* Per-function totals of an .fdata file (no_lbr form). */
struct share {
	char name[128];
	double ours, ref;
};

static size_t add_share(struct share *s, size_t n, size_t cap, const char *name,
			double v, int ref)
{
	size_t i = 0;
	while (i < n && strcmp(s[i].name, name))
		i++;
	if (i == n) {
		if (n == cap)
			return n;
		memset(&s[n], 0, sizeof s[n]);
		snprintf(s[n].name, sizeof s[n].name, "%s", name);
		n++;
	}
	if (ref)
		s[i].ref += v;
	else
		s[i].ours += v;
	return n;
}

static size_t read_fdata(const char *text, struct share *s, size_t n,
			 size_t cap, int ref, double *total)
{
	*total = 0;
	for (const char *l = text; l && *l;) {
		char name[128];
		unsigned long long off, count;
		if (sscanf(l, "1 %127s %llx %llu", name, &off, &count) == 3) {
			n = add_share(s, n, cap, name, (double)count, ref);
			*total += (double)count;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return n;
}

/* bolt_accepts runs llvm-bolt on prog with the profile and checks that
 * it complains of nothing, matches `want_funcs` functions, and that the
 * result prints what prog prints. */
static void bolt_accepts(const char *prog, const char *fdata, int want_funcs,
			 const char *tag)
{
	char out[512], log[512], o1[512], o2[512], name[64];
	snprintf(name, sizeof name, "prog.%s.bolt", tag);
	er_path(out, sizeof out, name);
	snprintf(name, sizeof name, "bolt.%s.log", tag);
	er_path(log, sizeof log, name);
	int rc = er_run("llvm-bolt-16 '%s' -o '%s' -data='%s' "
			"-reorder-blocks=ext-tsp -reorder-functions=hfsort "
			">'%s' 2>&1",
			prog, out, fdata, log);
	CHECK_EQ_INT(rc, 0);
	char *text = er_slurp(log, NULL);
	REQUIRE(text);
	CHECK(!strstr(text, "stale"));
	CHECK(!strstr(text, "invalid profile"));
	CHECK(!strstr(text, "no valid profile"));
	CHECK(!strstr(text, "BOLT-ERROR"));
	const char *m = strstr(text, "functions in the binary");
	int matched = -1;
	if (m) {
		const char *l = m;
		while (l > text && l[-1] != '\n')
			l--;
		sscanf(l, "BOLT-INFO: %d out of", &matched);
	}
	if (matched != want_funcs)
		fprintf(stderr,
			"  llvm-bolt matched %d functions, want %d:\n%s",
			matched, want_funcs, text);
	CHECK_EQ_INT(matched, want_funcs);
	free(text);
	er_path(o1, sizeof o1, "out.orig");
	er_path(o2, sizeof o2, "out.bolt");
	CHECK_EQ_INT(er_run("'%s' " ER_PROG_ARG " >'%s'", prog, o1), 0);
	CHECK_EQ_INT(er_run("'%s' " ER_PROG_ARG " >'%s'", out, o2), 0);
	char *a = er_slurp(o1, NULL), *b = er_slurp(o2, NULL);
	CHECK(a && b && a[0] && !strcmp(a, b));
	free(a);
	free(b);
}

static int count_lines(const char *s, const char *prefix)
{
	int n = 0;
	for (const char *l = s; l && *l;) {
		if (!strncmp(l, prefix, strlen(prefix)))
			n++;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return n;
}

/* distinct_funcs counts the functions named in an .fdata text. */
static int distinct_funcs(const char *text)
{
	struct share s[64];
	double total;
	return (int)read_fdata(text, s, 0, 64, 0, &total);
}

/* ----------------------------------------------- function listing -- */

TEST(funcs_lists_locals_with_bolt_ordinals)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	struct listing l;
	REQUIRE(list_funcs(prog, &l) == FDO_OK);
	REQUIRE(l.n > 4);
	for (size_t i = 1; i < l.n; i++)
		CHECK(l.f[i - 1].addr <= l.f[i].addr);
	const struct sym_func *s1 = nth_named(&l, "spin", 0);
	const struct sym_func *s2 = nth_named(&l, "spin", 1);
	const struct sym_func *hg = nth_named(&l, "hot_global", 0);
	const struct sym_func *mn = nth_named(&l, "main", 0);
	REQUIRE(s1 && s2 && hg && mn);
	CHECK(!nth_named(&l, "spin", 2));
	CHECK_EQ_INT(s1->bind, SYM_BIND_LOCAL);
	CHECK_EQ_INT(s1->ordinal, 1);
	CHECK_EQ_INT(s2->ordinal, 2);
	CHECK_EQ_INT(hg->bind, SYM_BIND_GLOBAL);
	CHECK_EQ_INT(hg->ordinal, 0);
	CHECK(hg->size > 0);
	CHECK(sym_func_find(l.f, l.n, hg->addr) == hg);
	CHECK(sym_func_find(l.f, l.n, hg->addr + hg->size - 1) == hg);
	CHECK(sym_func_find(l.f, l.n, s2->addr + 1) == s2);
	CHECK(sym_func_find(l.f, l.n, 0) == NULL);
	CHECK(sym_func_find(l.f, l.n, UINT64_MAX) == NULL);
	CHECK(sym_func_find(NULL, 0, 0x401000) == NULL);
	/* _init has st_size 0; the PLT follows .init and is not _init's
	 * (a "hot _init" made llvm-bolt slow the demo down). */
	const struct sym_func *in = nth_named(&l, "_init", 0);
	REQUIRE(in);
	CHECK(in->size > 0 && in->size < 0x100);
	CHECK(sym_func_find(l.f, l.n, in->addr + in->size) != in);
	sym_elf_functions_free(l.f);
}

TEST(funcs_aliases_and_size_zero)
{
	/* A hand-made listing: an alias group, a size-0 symbol, a symbol
	 * inside another function. */
	char names[] = "a\0a_alias\0z\0inner\0outer";
	struct sym_func f[] = {
		{0x100, 0x10, names + 0, 0, SYM_BIND_GLOBAL},
		{0x100, 0x10, names + 2, 1, SYM_BIND_LOCAL},
		{0x200, 0, names + 10, 0, SYM_BIND_GLOBAL},
		{0x300, 0x100, names + 22, 0, SYM_BIND_GLOBAL},
		{0x310, 0x8, names + 12, 1, SYM_BIND_LOCAL},
	};
	size_t n = sizeof f / sizeof f[0];
	CHECK(sym_func_find(f, n, 0x105) == &f[0]);
	CHECK(sym_func_find(f, n, 0x110) == NULL);
	CHECK(sym_func_find(f, n, 0x2ff) == &f[2]);
	CHECK(sym_func_find(f, n, 0x314) == &f[4]);
	CHECK(sym_func_find(f, n, 0x320) == &f[3]);
	CHECK(sym_func_find(f, n, 0x400) == NULL);
}

TEST(funcs_hostile_files)
{
	struct listing l;
	char path[512];
	CHECK_EQ_INT(list_funcs("/nonexistent/prog", &l), FDO_EIO);
	er_path(path, sizeof path, "notelf");
	REQUIRE(er_write(path, "hello, world\n", 13) == 0);
	CHECK_EQ_INT(list_funcs(path, &l), FDO_ENOT_ELF);
	CHECK(l.f == NULL && l.n == 0);
	CHECK_EQ_INT(list_funcs(test_tmpdir(), &l), FDO_EIO);

	const char *prog = er_prog();
	REQUIRE(prog);
	size_t len;
	char *img = er_slurp(prog, &len);
	REQUIRE(img && len > 4096);
	er_path(path, sizeof path, "mangled");
	/* Truncations: every length class, never a crash. */
	fdo_log_set_level(FDO_LOG_ERROR);
	REQUIRE(er_write(path, img, 40) == 0);
	CHECK_EQ_INT(list_funcs(path, &l), FDO_ETRUNCATED);
	for (size_t cut = 0; cut < len; cut += len / 97 + 1) {
		REQUIRE(er_write(path, img, cut) == 0);
		if (list_funcs(path, &l) == FDO_OK)
			sym_elf_functions_free(l.f);
	}
	/* Corruptions: overwrite bytes of the ELF and section headers and of
	 * the symbol and string tables (the tail of the file). */
	srand(12345);
	char *copy = malloc(len);
	REQUIRE(copy);
	for (int round = 0; round < 300; round++) {
		memcpy(copy, img, len);
		for (int k = 0; k < 8; k++) {
			size_t at =
				round % 2
					? (size_t)rand() % 64
					: len - 1 - (size_t)rand() % (len / 3);
			copy[at] = (char)rand();
		}
		REQUIRE(er_write(path, copy, len) == 0);
		if (list_funcs(path, &l) == FDO_OK) {
			for (size_t i = 0; i < l.n; i++)
				CHECK(l.f[i].name != NULL);
			sym_elf_functions_free(l.f);
		}
	}
	free(copy);
	free(img);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* ------------------------------------------------------- by hand -- */

TEST(bolt_no_lbr_by_hand)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	struct listing l;
	REQUIRE(list_funcs(prog, &l) == FDO_OK);
	const struct sym_func *s1 = nth_named(&l, "spin", 0);
	const struct sym_func *s2 = nth_named(&l, "spin", 1);
	const struct sym_func *hg = nth_named(&l, "hot_global", 0);
	const struct sym_func *mn = nth_named(&l, "main", 0);
	REQUIRE(s1 && s2 && hg && mn);
	struct prof p;
	REQUIRE(er_prof_begin(&p, prog) == 0);
	uint32_t other = er_add_build_id(&p, "abcdef01", NULL);
	uint32_t caller = er_add_loc(&p, 0, mn->addr + 0x20, 0);
	uint32_t a = er_add_loc(&p, 0, hg->addr + 0x10, 0);
	uint32_t b = er_add_loc(&p, 0, s2->addr + 0x4, 0);
	uint32_t c = er_add_loc(&p, 0, s1->addr + 0x1a, 0);
	uint32_t unk = er_add_loc(&p, 0, UINT64_MAX, 0);
	uint32_t oth = er_add_loc(&p, other, 0x1234, 0);
	uint32_t outside = er_add_loc(&p, 0, 0x10, 0);
	er_add_stack(&p, (uint32_t[]){a, caller}, 2, 3.4);
	er_add_stack(&p, (uint32_t[]){a}, 1, 1.2); /* same place: 5 */
	er_add_stack(&p, (uint32_t[]){b, caller}, 2, 2);
	er_add_stack(&p, (uint32_t[]){caller}, 1, 7); /* main's own IP */
	er_add_stack(&p, (uint32_t[]){c}, 1, 0.3);    /* rounds to 0 */
	er_add_stack(&p, (uint32_t[]){unk}, 1, 4);
	er_add_stack(&p, (uint32_t[]){oth}, 1, 1000);
	er_add_stack(&p, (uint32_t[]){outside}, 1, 9);
	char *text;
	REQUIRE(emit(&p, NULL, &text) == FDO_OK);
	char want[1024];
	/* Address order: main, then a.c's spin, hot_global, b.c's spin. */
	snprintf(want, sizeof want,
		 "no_lbr cpu-clock:\n"
		 "1 main 20 7\n"
		 "1 hot_global 10 5\n"
		 "1 spin/2 4 2\n");
	CHECK(mn->addr < hg->addr && hg->addr < s2->addr);
	CHECK_EQ_STR(text, want);
	free(text);

	/* The same bytes again: deterministic. */
	char *again;
	REQUIRE(emit(&p, "build_id=", &again) == FDO_OK);
	CHECK_EQ_STR(again, want);
	free(again);

	/* The event name goes into the header, kept one field. */
	free(p.event);
	p.event = strdup("my event:x");
	REQUIRE(emit(&p, NULL, &text) == FDO_OK);
	CHECK(!strncmp(text, "no_lbr my_event_x:\n", 19));
	free(text);
	prof_fini(&p);
	sym_elf_functions_free(l.f);
}

TEST(bolt_picks_build_id)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	struct prof p;
	REQUIRE(er_prof_begin(&p, prog) == 0);
	char hex[129];
	snprintf(hex, sizeof hex, "%s", p.build_ids[0].hex);
	uint32_t other = er_add_build_id(&p, "abcdef01", NULL);
	uint32_t sym2 = er_add_build_id(&p, "abcdef02", "/nonexistent/x");
	er_add_stack(&p, (uint32_t[]){er_add_loc(&p, other, 0x10, 0)}, 1, 500);
	er_add_stack(&p, (uint32_t[]){er_add_loc(&p, 0, 0x401000, 0)}, 1, 5);
	char *text = NULL, opts[256];
	/* The one with samples and symbols, though another has more. */
	CHECK_EQ_INT(emit(&p, NULL, &text), FDO_OK);
	free(text);
	snprintf(opts, sizeof opts, "min_share=0.1,build_id=%s", hex);
	CHECK_EQ_INT(emit(&p, opts, &text), FDO_OK);
	free(text);
	CHECK_EQ_INT(emit(&p, "build_id=abcdef01", &text), FDO_EUNSUPPORTED);
	CHECK_EQ_INT(emit(&p, "build_id=0011", &text), FDO_EUNSUPPORTED);
	CHECK_EQ_INT(emit(&p, "build_id=xyz", &text), FDO_EINVAL);
	/* A symbol file that cannot be read. */
	CHECK_EQ_INT(emit(&p, "build_id=abcdef02", &text), FDO_EIO);
	(void)sym2;
	/* No build-id with symbols at all. */
	free(p.build_ids[0].elf_path);
	p.build_ids[0].elf_path = NULL;
	free(p.build_ids[2].elf_path);
	p.build_ids[2].elf_path = NULL;
	CHECK_EQ_INT(emit(&p, NULL, &text), FDO_EUNSUPPORTED);
	prof_fini(&p);

	struct prof empty;
	prof_init(&empty);
	CHECK_EQ_INT(emit(&empty, NULL, &text), FDO_EUNSUPPORTED);
	prof_fini(&empty);
}

/* --------------------------------------------------- real programs -- */

/* objdump_branches finds, in the disassembly of prog, the conditional
 * back edge of each hot loop (jcc to a lower address inside the function)
 * and the calls main makes, and adds them as branch records. Returns how
 * many it added. */
static int objdump_branches(struct prof *p, const char *prog,
			    const struct listing *l)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s'", prog);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 0;
	char line[512];
	int added = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long long at, to;
		char op[32];
		if (sscanf(line, " %llx: %31s %llx", &at, op, &to) != 3)
			continue;
		const struct sym_func *fa = sym_func_find(l->f, l->n, at);
		const struct sym_func *ft = sym_func_find(l->f, l->n, to);
		if (!fa || !ft)
			continue;
		int hot = !strcmp(fa->name, "spin") ||
			  !strcmp(fa->name, "hot_global");
		if (hot && op[0] == 'j' && strcmp(op, "jmp") && fa == ft &&
		    to < at) {
			er_add_branch(p, 0, at, to, 100000, 700);
			added++;
		} else if (!strcmp(fa->name, "main") && !strcmp(op, "call") &&
			   ft->addr == to && strcmp(ft->name, "main")) {
			er_add_branch(p, 0, at, to, 4, 0);
			added++;
		}
	}
	pclose(f);
	return added;
}

TEST(bolt_lbr_by_hand_and_llvm_bolt)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	struct listing l;
	REQUIRE(list_funcs(prog, &l) == FDO_OK);
	const struct sym_func *hg = nth_named(&l, "hot_global", 0);
	const struct sym_func *s2 = nth_named(&l, "spin", 1);
	REQUIRE(hg && s2);
	struct prof p;
	REQUIRE(er_prof_begin(&p, prog) == 0);
	/* IP samples are ignored once there are branch records. */
	er_add_stack(&p, (uint32_t[]){er_add_loc(&p, 0, hg->addr, 0)}, 1, 9);
	er_add_branch(&p, 0, hg->addr + 0x20, hg->addr + 0x8, 10.4, 1.2);
	er_add_branch(&p, 0, hg->addr + 0x20, hg->addr + 0x8, 5, 0);
	er_add_branch(&p, 0, s2->addr + 0x6, 0x7f0000001000ull, 3, 9);
	er_add_branch(&p, 0, 0x10, 0x20, 50, 0);	      /* both unknown */
	er_add_branch(&p, 0, UINT64_MAX, hg->addr, 50, 0);    /* unmapped */
	er_add_branch(&p, 0, hg->addr, hg->addr + 1, 0.2, 0); /* rounds 0 */
	char *text;
	REQUIRE(emit(&p, NULL, &text) == FDO_OK);
	CHECK_EQ_STR(text, "1 hot_global 20 1 hot_global 8 1 15\n"
			   "1 spin/2 6 0 [unknown] 7f0000001000 3 3\n");
	free(text);
	prof_fini(&p);

	/* Branches that exist in the binary: llvm-bolt must take them. */
	REQUIRE(er_prof_begin(&p, prog) == 0);
	int n = objdump_branches(&p, prog, &l);
	CHECK(n >= 5);
	REQUIRE(emit(&p, NULL, &text) == FDO_OK);
	CHECK(strncmp(text, "no_lbr", 6) != 0);
	CHECK_EQ_INT(count_lines(text, "1 "), n);
	char fdata[512];
	er_path(fdata, sizeof fdata, "lbr.fdata");
	REQUIRE(er_write(fdata, text, strlen(text)) == 0);
	/* main, hot_global, spin/1, spin/2, spin_b */
	bolt_accepts(prog, fdata, 5, "lbr");
	free(text);
	prof_fini(&p);
	sym_elf_functions_free(l.f);
}

TEST(bolt_from_perf_matches_perf2bolt)
{
	const char *prog = er_prog();
	REQUIRE(prog);
	char data[512], ref[512], mine[512];
	er_path(data, sizeof data, "perf.data");
	er_path(ref, sizeof ref, "ref.fdata");
	er_path(mine, sizeof mine, "mine.fdata");
	REQUIRE(er_record(prog, "", data) == 0);
	REQUIRE(er_run("/usr/lib/llvm-16/bin/perf2bolt -nl -p '%s' -o '%s' "
		       "'%s' >/dev/null 2>&1",
		       data, ref, prog) == 0);

	/* Our profile from the same samples: one stack per sampled IP of
	 * the program (non-PIE: the IP is the ELF virtual address). */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "perf script -i '%s' -F ip,dso 2>/dev/null",
		 data);
	FILE *f = popen(cmd, "r");
	REQUIRE(f);
	struct prof p;
	REQUIRE(er_prof_begin(&p, prog) == 0);
	const char *base = strrchr(prog, '/') + 1;
	char line[1024];
	uint64_t *ips = NULL;
	double *cnt = NULL;
	size_t nips = 0, total = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long long ip;
		char dso[800];
		if (sscanf(line, " %llx (%799[^)])", &ip, dso) != 2)
			continue;
		const char *d = strrchr(dso, '/');
		if (!d || strcmp(d + 1, base))
			continue;
		total++;
		size_t i = 0;
		while (i < nips && ips[i] != ip)
			i++;
		if (i == nips) {
			ips = realloc(ips, (nips + 1) * sizeof *ips);
			cnt = realloc(cnt, (nips + 1) * sizeof *cnt);
			REQUIRE(ips && cnt);
			ips[nips] = ip;
			cnt[nips++] = 0;
		}
		cnt[i]++;
	}
	pclose(f);
	REQUIRE(total > 500);
	for (size_t i = 0; i < nips; i++)
		er_add_stack(&p, (uint32_t[]){er_add_loc(&p, 0, ips[i], 0)}, 1,
			     cnt[i]);
	free(ips);
	free(cnt);
	char *text;
	REQUIRE(emit(&p, NULL, &text) == FDO_OK);
	REQUIRE(er_write(mine, text, strlen(text)) == 0);
	CHECK(!strncmp(text, "no_lbr cpu-clock:\n", 18));
	CHECK(strstr(text, "1 spin/2 ") != NULL);

	/* Per-function shares against perf2bolt's. */
	char *reftext = er_slurp(ref, NULL);
	REQUIRE(reftext);
	struct share s[64];
	double tot_ours, tot_ref;
	size_t ns = read_fdata(text, s, 0, 64, 0, &tot_ours);
	ns = read_fdata(reftext, s, ns, 64, 1, &tot_ref);
	REQUIRE(tot_ours > 0 && tot_ref > 0);
	double worst = 0;
	printf("  %zu samples in the program; per function: ours%% / "
	       "perf2bolt%%\n",
	       total);
	for (size_t i = 0; i < ns; i++) {
		double a = 100 * s[i].ours / tot_ours;
		double b = 100 * s[i].ref / tot_ref;
		printf("    %-14s %6.2f %6.2f\n", s[i].name, a, b);
		if (fabs(a - b) > worst)
			worst = fabs(a - b);
	}
	printf("  largest difference %.2f points (%.0f vs %.0f samples)\n",
	       worst, tot_ours, tot_ref);
	CHECK(worst <= 1.0);
	free(reftext);
	/* In fact every (function, offset) record is perf2bolt's. */
	int same = er_run("cd '%s' && tail -n +2 '%s' | sort >a.sorted && "
			  "tail -n +2 '%s' | sort >b.sorted && "
			  "cmp -s a.sorted b.sorted",
			  test_tmpdir(), mine, ref);
	printf("  records %s perf2bolt's\n",
	       same == 0 ? "identical to" : "differ from");

	bolt_accepts(prog, mine, distinct_funcs(text), "nolbr");
	free(text);
	prof_fini(&p);
}
