/*
 * tests/unit/symbolizer_probes.c — LLVM pseudo probes (symbolizer/
 * probes.c). A fixture program compiled here with clang-16 -O2 -g
 * -fpseudo-probe-for-profiling (a loop, an if/else, direct and indirect
 * calls, a static function, and a static helper inlined into three
 * callers, once two levels deep) is decoded and compared probe for probe
 * with llvm-profgen-16 --show-pseudo-probe on the same binary (also built
 * with -ffunction-sections --gc-sections, and -O3 non-PIE), and its
 * descriptors with the bytes llvm-readobj-16 dumps; GUIDs against known
 * values; the stripped binary, its debug file and a binary without
 * probes; then hand-built hostile sections (truncation at every length,
 * random bytes and bit flips, endless and padded LEB128 numbers, absurd
 * counts, overflowing deltas, GUIDs without a symbol, sentinels, 10000
 * nested inlinees) and a throughput figure (printed, not asserted).
 */
#include <stdint.h>
#include <sys/wait.h>

#include "common/common.h"
#include "symbolizer/sym_int.h"
#include "symbolizer/symbolizer.h"
#include "test.h"

/* The fixture: helper is inlined into loop, indirect and scaled, and loop
 * into main (so helper also sits at main:6 @ loop:10); leaf is a direct
 * call, table[] an indirect one; scaled is static and not inlined. */
static const char fx_src[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"volatile int sink;\n"
	"typedef int (*fn_t)(int);\n"
	"static int helper(int x)\n"
	"{\n"
	"\tif (x % 3 == 0)\n"
	"\t\treturn x * 2;\n"
	"\treturn x + 1;\n"
	"}\n"
	"__attribute__((noinline)) int leaf(int x)\n"
	"{\n"
	"\tsink = x;\n"
	"\treturn x + 1;\n"
	"}\n"
	"static __attribute__((noinline)) int scaled(int x)\n"
	"{\n"
	"\tsink = x;\n"
	"\treturn x * 3 + helper(x);\n"
	"}\n"
	"int loop(int n)\n"
	"{\n"
	"\tint s = 0;\n"
	"\tfor (int i = 0; i < n; i++) {\n"
	"\t\tif (i & 1)\n"
	"\t\t\ts += helper(i);\n"
	"\t\telse\n"
	"\t\t\ts -= leaf(i);\n"
	"\t}\n"
	"\treturn s;\n"
	"}\n"
	"fn_t volatile table[2] = {leaf, scaled};\n"
	"__attribute__((noinline)) int indirect(int n)\n"
	"{\n"
	"\treturn table[n & 1](n) + helper(n);\n"
	"}\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tint n = argc > 1 ? atoi(argv[1]) : 100;\n"
	"\tprintf(\"%d %d\\n\", loop(n), indirect(n));\n"
	"\treturn 0;\n"
	"}\n";

static char fx_bin[512], fx_strip[512], fx_debug[512], fx_noprobe[512];
/* More builds compared with llvm-profgen-16: per-function sections (COMDAT
 * descriptors, garbage-collected sections) and -O3 non-PIE. */
static char fx_fsec[512], fx_o3[512];
static uint8_t *fx_desc, *fx_probe; /* the sections' bytes */
static size_t fx_desc_len, fx_probe_len;
static uint64_t *fx_guids, *fx_addrs; /* FUNC symbols: GUID, address */
static size_t fx_nsyms;

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	*len = b && n > 0 ? fread(b, 1, (size_t)n, f) : 0;
	fclose(f);
	return b;
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(p, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

static void teardown(void)
{
	free(fx_desc);
	free(fx_probe);
	free(fx_guids);
	free(fx_addrs);
}

/* setup builds the fixtures once. A missing tool is a failure: clang-16
 * and llvm-16 are dependencies of the project (deploy/install-deps.sh). */
static int setup(void)
{
	static int done, ok;
	if (done)
		return ok;
	done = 1;
	atexit(teardown);
	static const char *const tools[] = {"clang-16", "llvm-profgen-16",
					    "llvm-readobj-16", "objcopy",
					    "strip"};
	char cmd[8192];
	for (size_t i = 0; i < sizeof tools / sizeof *tools; i++) {
		snprintf(cmd, sizeof cmd, "command -v %s >/dev/null", tools[i]);
		if (run(cmd) != 0) {
			fprintf(stderr,
				"  %s is missing: install it "
				"(deploy/install-deps.sh)\n",
				tools[i]);
			return 0;
		}
	}
	const char *t = test_tmpdir();
	char src[512];
	snprintf(src, sizeof src, "%s/fx.c", t);
	if (write_file(src, fx_src, strlen(fx_src)))
		return 0;
	snprintf(fx_bin, sizeof fx_bin, "%s/fx", t);
	snprintf(fx_strip, sizeof fx_strip, "%s/fx.stripped", t);
	snprintf(fx_debug, sizeof fx_debug, "%s/fx.debug", t);
	snprintf(fx_noprobe, sizeof fx_noprobe, "%s/fx.noprobe", t);
	snprintf(fx_fsec, sizeof fx_fsec, "%s/fx.fsec", t);
	snprintf(fx_o3, sizeof fx_o3, "%s/fx.o3", t);
	snprintf(cmd, sizeof cmd,
		 "clang-16 -O2 -g -fpseudo-probe-for-profiling -o '%s' '%s' &&"
		 " clang-16 -O2 -g -fpseudo-probe-for-profiling"
		 " -ffunction-sections -Wl,--gc-sections -o '%s' '%s' &&"
		 " clang-16 -O3 -g -fpseudo-probe-for-profiling -fno-pie"
		 " -no-pie -o '%s' '%s' &&"
		 " clang-16 -O2 -g -o '%s' '%s' &&"
		 " strip -o '%s' '%s' &&"
		 " objcopy --only-keep-debug '%s' '%s' &&"
		 " objcopy --dump-section .pseudo_probe_desc='%s/desc.bin'"
		 " --dump-section .pseudo_probe='%s/probe.bin' '%s' '%s/x'",
		 fx_bin, src, fx_fsec, src, fx_o3, src, fx_noprobe, src,
		 fx_strip, fx_bin, fx_bin, fx_debug, t, t, fx_bin, t);
	if (run(cmd) != 0) {
		fprintf(stderr, "  cannot build the fixtures\n");
		return 0;
	}
	char path[600];
	snprintf(path, sizeof path, "%s/desc.bin", t);
	fx_desc = read_whole(path, &fx_desc_len);
	snprintf(path, sizeof path, "%s/probe.bin", t);
	fx_probe = read_whole(path, &fx_probe_len);
	struct sym_func *f = NULL;
	if (!fx_desc_len || !fx_probe_len ||
	    sym_elf_functions(fx_bin, &f, &fx_nsyms) != FDO_OK || !fx_nsyms)
		return 0;
	fx_guids = calloc(fx_nsyms, sizeof *fx_guids);
	fx_addrs = calloc(fx_nsyms, sizeof *fx_addrs);
	if (!fx_guids || !fx_addrs)
		abort();
	for (size_t i = 0; i < fx_nsyms; i++) {
		fx_guids[i] = sym_probe_guid(f[i].name);
		fx_addrs[i] = f[i].addr;
	}
	sym_elf_functions_free(f);
	ok = 1;
	return ok;
}

/* -------------------------------------------------------- invariants -- */

/* check_probes: the promises of symbolizer.h hold for p. */
static int check_probes(const struct sym_probes *p)
{
	int ok = 1;
#define EXPECT(c)                                                              \
	do {                                                                   \
		if (!(c) && ok) {                                              \
			fprintf(stderr, "  invariant: %s\n", #c);              \
			ok = 0;                                                \
		}                                                              \
	} while (0)
	for (size_t i = 0; i < p->nfuncs; i++) {
		EXPECT(p->funcs[i].name != NULL);
		if (i)
			EXPECT(p->funcs[i - 1].guid < p->funcs[i].guid);
		EXPECT(sym_probes_func(p, p->funcs[i].guid) == &p->funcs[i]);
	}
	uint32_t *depth = calloc(p->nctxs + 1, sizeof *depth);
	for (size_t i = 0; i < p->nctxs; i++) {
		const struct sym_probe_ctx *c = &p->ctxs[i];
		if (c->parent == UINT32_MAX) {
			EXPECT(c->site == 0);
			continue;
		}
		EXPECT(c->parent < i);
		EXPECT(c->func_addr == 0);
		if (c->parent < i)
			depth[i] = depth[c->parent] + 1;
		EXPECT(depth[i] <= SYM_PROBE_MAX_DEPTH);
	}
	free(depth);
	for (size_t i = 0; i < p->nprobes; i++) {
		const struct sym_probe *q = &p->probes[i];
		EXPECT(q->ctx < p->nctxs);
		EXPECT(!(q->attr & 2));
		if (i) {
			const struct sym_probe *o = &p->probes[i - 1];
			EXPECT(o->addr < q->addr ||
			       (o->addr == q->addr &&
				(o->ctx < q->ctx ||
				 (o->ctx == q->ctx && o->index <= q->index))));
		}
	}
#undef EXPECT
	return ok;
}

/* decode: sym_probes_decode_bytes on copies of exactly the given sizes,
 * so that valgrind and ASan see a read past either end. */
static int decode(const uint8_t *desc, size_t dlen, const uint8_t *probe,
		  size_t plen, const uint64_t *g, const uint64_t *a, size_t n,
		  struct sym_probes **out)
{
	uint8_t *d = dlen ? malloc(dlen) : NULL;
	uint8_t *p = plen ? malloc(plen) : NULL;
	if ((dlen && !d) || (plen && !p))
		abort();
	if (dlen)
		memcpy(d, desc, dlen);
	if (plen)
		memcpy(p, probe, plen);
	int rc = sym_probes_decode_bytes(d, dlen, p, plen, g, a, n, out);
	free(d);
	free(p);
	if ((rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT) &&
	    (!*out || !check_probes(*out)))
		return -1;
	return rc;
}

/* Field by field: the structs have padding. */
static int same_ctx(const struct sym_probe_ctx *x,
		    const struct sym_probe_ctx *y)
{
	return x->parent == y->parent && x->guid == y->guid &&
	       x->site == y->site && x->func_addr == y->func_addr;
}

static int same_probe(const struct sym_probe *x, const struct sym_probe *y)
{
	return x->addr == y->addr && x->index == y->index && x->ctx == y->ctx &&
	       x->type == y->type && x->attr == y->attr;
}

static int same_probes(const struct sym_probes *a, const struct sym_probes *b)
{
	if (a->nfuncs != b->nfuncs || a->nctxs != b->nctxs ||
	    a->nprobes != b->nprobes)
		return 0;
	for (size_t i = 0; i < a->nfuncs; i++)
		if (a->funcs[i].guid != b->funcs[i].guid ||
		    a->funcs[i].hash != b->funcs[i].hash ||
		    strcmp(a->funcs[i].name, b->funcs[i].name))
			return 0;
	for (size_t i = 0; i < a->nctxs; i++)
		if (!same_ctx(&a->ctxs[i], &b->ctxs[i]))
			return 0;
	for (size_t i = 0; i < a->nprobes; i++)
		if (!same_probe(&a->probes[i], &b->probes[i]))
			return 0;
	return 1;
}

/* ------------------------------------------------------------ GUIDs -- */

TEST(guid_known_values)
{
	/* md5("main") = fa d5 8d e7 36 64 95 db ...: the first 8 bytes
	 * little-endian, as LLVM's MD5Result::low(); and the values
	 * llvm-profgen-16 printed for the research note's t.c. */
	CHECK(sym_probe_guid("main") == 15822663052811949562ull);
	CHECK(sym_probe_guid("main") == 0xdb956436e78dd5faull);
	CHECK(sym_probe_guid("work") == 9204417991963109735ull);
	CHECK(sym_probe_guid("atoi") == 11902532553908182477ull);
	CHECK(sym_probe_guid("_ZL6helperi.__uniq."
			     "271431780710273980581993919334566759343") ==
	      7777406123784316109ull);
	/* md5("") = d41d8cd98f00b204... */
	CHECK(sym_probe_guid("") == 0x04b2008fd98c1dd4ull);
}

/* Every descriptor's GUID is the GUID of its name. */
TEST(guid_of_descriptors)
{
	REQUIRE(setup());
	struct sym_probes *p = NULL;
	REQUIRE(sym_probes_read(fx_bin, &p) == FDO_OK);
	CHECK(p->nfuncs >= 6);
	for (size_t i = 0; i < p->nfuncs; i++)
		CHECK(sym_probe_guid(p->funcs[i].name) == p->funcs[i].guid);
	sym_probes_free(p);
}

/* ------------------------------------------------ against the peers -- */

static const char *const type_names[] = {"Block", "IndirectCall", "DirectCall"};

/* A probe as a line: "addr name index type chain". */
struct lines {
	char **v;
	size_t n;
};

static void lines_add(struct lines *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v || !(v[l->n] = strdup(s)))
		abort();
	l->v = v;
	l->n++;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* read_profgen: the probes llvm-profgen-16 shows before each instruction
 * of its disassembly, and its descriptor listing. */
static int read_profgen(const char *bin, struct lines *probes,
			struct lines *descs)
{
	char cmd[1200], line[4096], pending[64][1024];
	int npend = 0;
	snprintf(cmd, sizeof cmd,
		 "llvm-profgen-16 --binary='%s' --show-pseudo-probe "
		 "--show-disassembly-only --perfscript=/dev/null "
		 "--output=/dev/null",
		 bin);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	char last_desc[3000] = "";
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		unsigned long long a, g, h;
		char name[2048];
		if (sscanf(line, "GUID: %llu Name: %2047s", &g, name) == 2) {
			snprintf(last_desc, sizeof last_desc, "%llu %s", g,
				 name);
			continue;
		}
		if (sscanf(line, "Hash: %llu", &h) == 1 && last_desc[0]) {
			char d[3100];
			snprintf(d, sizeof d, "%s %llu", last_desc, h);
			lines_add(descs, d);
			last_desc[0] = 0;
			continue;
		}
		const char *pr = strstr(line, "[Probe]:\tFUNC: ");
		if (pr) {
			/* "FUNC: f Index: 4  Type: Block  Inlined: @ a:6" */
			char fn[400], ty[32];
			unsigned idx;
			if (sscanf(pr,
				   "[Probe]:\tFUNC: %399s Index: %u Type: "
				   "%31s",
				   fn, &idx, ty) != 3 ||
			    npend == 64)
				goto bad;
			const char *in = strstr(pr, "Inlined: @ ");
			snprintf(pending[npend++], sizeof pending[0],
				 "%s %u %s %.500s", fn, idx, ty,
				 in ? in + 11 : "");
			continue;
		}
		/* An instruction: "    1164:\tcmpl ..." takes the pending
		 * probes. */
		int used = 0;
		if (npend && sscanf(line, " %llx:%n", &a, &used) == 1 && used &&
		    line[used] == '\t') {
			for (int i = 0; i < npend; i++) {
				char s[1100];
				snprintf(s, sizeof s, "%#llx %.1000s", a,
					 pending[i]);
				/* drop the trailing blanks profgen prints */
				size_t n = strlen(s);
				while (n && s[n - 1] == ' ')
					s[--n] = 0;
				lines_add(probes, s);
			}
			npend = 0;
		}
	}
	return pclose(f) == 0 && npend == 0 ? 0 : -1;
bad:
	pclose(f);
	return -1;
}

/* chain_of writes ctx's inline chain as profgen does: "main:6 @ loop:10"
 * (callers, top first, each with the site it inlined at). */
static void chain_of(const struct sym_probes *p, uint32_t ctx, char *out,
		     size_t cap)
{
	uint32_t stack[SYM_PROBE_MAX_DEPTH + 1];
	size_t n = 0;
	for (uint32_t c = ctx;
	     p->ctxs[c].parent != UINT32_MAX && n < SYM_PROBE_MAX_DEPTH + 1;
	     c = p->ctxs[c].parent)
		stack[n++] = c;
	out[0] = 0;
	size_t len = 0;
	while (n--) {
		const struct sym_probe_ctx *c = &p->ctxs[stack[n]];
		const struct sym_probe_func *f =
			sym_probes_func(p, p->ctxs[c->parent].guid);
		len += (size_t)snprintf(out + len, cap - len, "%s%s:%u",
					len ? " @ " : "", f ? f->name : "?",
					c->site);
		if (len >= cap)
			return;
	}
}

static void our_lines(const struct sym_probes *p, struct lines *l)
{
	for (size_t i = 0; i < p->nprobes; i++) {
		const struct sym_probe *q = &p->probes[i];
		const struct sym_probe_func *f =
			sym_probes_func(p, p->ctxs[q->ctx].guid);
		char chain[1024], s[2048];
		chain_of(p, q->ctx, chain, sizeof chain);
		snprintf(s, sizeof s, "%#llx %s %u %s %s",
			 (unsigned long long)q->addr, f ? f->name : "?",
			 q->index, q->type < 3 ? type_names[q->type] : "?",
			 chain);
		size_t n = strlen(s);
		while (n && s[n - 1] == ' ')
			s[--n] = 0;
		lines_add(l, s);
	}
}

/* compare_with_profgen: bin decodes to what llvm-profgen-16 shows, probe
 * for probe (address, function of the innermost context, index, type,
 * chain), and to its descriptors. Returns the decoded probes. */
static struct sym_probes *compare_with_profgen(const char *bin)
{
	struct lines theirs = {0}, descs = {0}, ours = {0};
	struct sym_probes *p = NULL;
	if (read_profgen(bin, &theirs, &descs) != 0 ||
	    sym_probes_read(bin, &p) != FDO_OK) {
		fprintf(stderr, "  %s: cannot read\n", bin);
		test_failed_now = 1;
		goto out;
	}
	CHECK_EQ_INT(p->skipped, 0);
	our_lines(p, &ours);
	qsort(theirs.v, theirs.n, sizeof *theirs.v, cmp_str);
	qsort(ours.v, ours.n, sizeof *ours.v, cmp_str);
	CHECK(theirs.n >= 30);
	CHECK_EQ_INT(ours.n, theirs.n);
	int shown = 0;
	for (size_t i = 0; i < ours.n && i < theirs.n; i++)
		if (strcmp(ours.v[i], theirs.v[i]) && shown++ < 5)
			fprintf(stderr, "  %s\n  ours   %s\n  theirs %s\n", bin,
				ours.v[i], theirs.v[i]);
	CHECK(shown == 0);
	/* The descriptors: "guid name hash" as profgen lists them. */
	CHECK_EQ_INT(descs.n, p->nfuncs);
	for (size_t i = 0; i < descs.n && i < p->nfuncs; i++) {
		char s[3100];
		snprintf(s, sizeof s, "%llu %s %llu",
			 (unsigned long long)p->funcs[i].guid, p->funcs[i].name,
			 (unsigned long long)p->funcs[i].hash);
		CHECK_EQ_STR(s, descs.v[i]);
	}
out:
	lines_free(&theirs);
	lines_free(&descs);
	lines_free(&ours);
	return p;
}

/* The fixture decodes to what llvm-profgen-16 shows; it has every kind
 * of probe, a static function, and helper inlined into several callers
 * and two levels deep. */
TEST(fixture_matches_profgen)
{
	REQUIRE(setup());
	struct sym_probes *p = compare_with_profgen(fx_bin);
	REQUIRE(p);
	struct lines ours = {0};
	our_lines(p, &ours);
	int icall = 0, dcall = 0, deep = 0, uniq = 0;
	for (size_t i = 0; i < ours.n; i++) {
		icall |= strstr(ours.v[i], " IndirectCall") != NULL;
		dcall |= strstr(ours.v[i], " DirectCall") != NULL;
		deep |= strstr(ours.v[i], "main:6 @ loop:10") != NULL;
		uniq |= strstr(ours.v[i], "_ZL6scaledi.__uniq.") != NULL;
	}
	CHECK(icall && dcall && deep && uniq);
	uint64_t helper = 0;
	for (size_t i = 0; i < p->nfuncs; i++)
		if (!strncmp(p->funcs[i].name, "_ZL6helperi.__uniq.", 19))
			helper = p->funcs[i].guid;
	CHECK(helper);
	int callers = 0;
	for (size_t i = 0; i < p->nctxs; i++)
		callers += p->ctxs[i].guid == helper &&
			   p->ctxs[i].parent != UINT32_MAX;
	CHECK(callers >= 3);
	lines_free(&ours);
	sym_probes_free(p);
}

/* Other builds of the fixture: -ffunction-sections with
 * --gc-sections, and -O3 non-PIE. */
TEST(variants_match_profgen)
{
	REQUIRE(setup());
	sym_probes_free(compare_with_profgen(fx_fsec));
	sym_probes_free(compare_with_profgen(fx_o3));
}

/* The descriptors are the records of .pseudo_probe_desc as
 * llvm-readobj-16 -x dumps its bytes (decoded here on their own). */
TEST(descriptors_match_readobj)
{
	REQUIRE(setup());
	char cmd[700], line[512];
	snprintf(cmd, sizeof cmd, "llvm-readobj-16 -x .pseudo_probe_desc '%s'",
		 fx_bin);
	FILE *f = popen(cmd, "r");
	REQUIRE(f);
	uint8_t *b = malloc(1 << 16);
	REQUIRE(b);
	size_t n = 0;
	while (fgets(line, sizeof line, f)) {
		/* "0x00000000 bab4ff04 cc14af66 ffffffff 00000000 ....": the
		 * hex groups fill columns 11 to 46. */
		if (strncmp(line, "0x", 2) || strlen(line) < 12)
			continue;
		for (size_t c = 11; c + 1 < 46 && line[c] && line[c + 1];) {
			int hi = fdo_hex_value(line[c]),
			    lo = fdo_hex_value(line[c + 1]);
			if (hi < 0 || lo < 0) {
				c++;
				continue;
			}
			if (n < (1 << 16))
				b[n++] = (uint8_t)(hi << 4 | lo);
			c += 2;
		}
	}
	CHECK(pclose(f) == 0);
	CHECK_EQ_INT(n, fx_desc_len);
	struct sym_probes *p = NULL;
	REQUIRE(sym_probes_read(fx_bin, &p) == FDO_OK);
	size_t at = 0, records = 0;
	while (at + 17 <= n) {
		uint64_t g = 0, h = 0, len = 0;
		for (int i = 7; i >= 0; i--) {
			g = g << 8 | b[at + (size_t)i];
			h = h << 8 | b[at + 8 + (size_t)i];
		}
		at += 16;
		for (int s = 0; at < n; s += 7) {
			len |= (uint64_t)(b[at] & 0x7f) << s;
			if (!(b[at++] & 0x80))
				break;
		}
		REQUIRE(at + len <= n);
		const struct sym_probe_func *d = sym_probes_func(p, g);
		CHECK(d != NULL);
		if (d) {
			CHECK(d->hash == h);
			CHECK(strlen(d->name) == len &&
			      !memcmp(d->name, b + at, len));
		}
		at += len;
		records++;
	}
	CHECK_EQ_INT(at, n);
	CHECK_EQ_INT(records, p->nfuncs); /* no duplicates here */
	free(b);
	sym_probes_free(p);
}

/* Top-level contexts start at their function's symbol; the bytes through
 * sym_probes_decode_bytes give what the file gives. */
TEST(contexts_and_symbols)
{
	REQUIRE(setup());
	struct sym_probes *p = NULL, *q = NULL;
	REQUIRE(sym_probes_read(fx_bin, &p) == FDO_OK);
	REQUIRE(check_probes(p));
	struct sym_func *f = NULL;
	size_t nf = 0;
	REQUIRE(sym_elf_functions(fx_bin, &f, &nf) == FDO_OK);
	size_t tops = 0;
	for (size_t i = 0; i < p->nctxs; i++) {
		const struct sym_probe_ctx *c = &p->ctxs[i];
		if (c->parent != UINT32_MAX)
			continue;
		tops++;
		const struct sym_probe_func *d = sym_probes_func(p, c->guid);
		REQUIRE(d);
		int found = 0;
		for (size_t k = 0; k < nf; k++)
			if (!strcmp(f[k].name, d->name)) {
				found = 1;
				CHECK(c->func_addr == f[k].addr);
			}
		CHECK(found);
	}
	CHECK(tops >= 5); /* leaf, scaled, loop, indirect, main */
	/* An entry probe (index 1) of a top-level context lies inside its
	 * function. */
	for (size_t i = 0; i < p->nprobes; i++) {
		const struct sym_probe_ctx *c = &p->ctxs[p->probes[i].ctx];
		if (c->parent == UINT32_MAX && p->probes[i].index == 1) {
			const struct sym_func *g =
				sym_func_find(f, nf, p->probes[i].addr);
			CHECK(g && g->addr == c->func_addr);
		}
	}
	CHECK_EQ_INT(decode(fx_desc, fx_desc_len, fx_probe, fx_probe_len,
			    fx_guids, fx_addrs, fx_nsyms, &q),
		     FDO_OK);
	CHECK(q && same_probes(p, q));
	sym_probes_free(q);
	sym_elf_functions_free(f);
	sym_probes_free(p);
}

/* objcopy --only-keep-debug keeps the sections and .symtab: same probes. */
TEST(debug_file)
{
	REQUIRE(setup());
	struct sym_probes *p = NULL, *q = NULL;
	REQUIRE(sym_probes_read(fx_bin, &p) == FDO_OK);
	CHECK_EQ_INT(sym_probes_read(fx_debug, &q), FDO_OK);
	CHECK(q && same_probes(p, q));
	sym_probes_free(p);
	sym_probes_free(q);
}

/* GNU strip keeps the probe sections but drops .symtab: every record is
 * skipped, the descriptors stay. */
TEST(stripped_binary)
{
	REQUIRE(setup());
	struct sym_probes *p = NULL, *q = NULL;
	REQUIRE(sym_probes_read(fx_bin, &p) == FDO_OK);
	fdo_log_set_level(FDO_LOG_ERROR);
	CHECK_EQ_INT(sym_probes_read(fx_strip, &q), FDO_OK);
	fdo_log_set_level(FDO_LOG_INFO);
	REQUIRE(q);
	size_t tops = 0;
	for (size_t i = 0; i < p->nctxs; i++)
		tops += p->ctxs[i].parent == UINT32_MAX;
	CHECK_EQ_INT(q->nprobes, 0);
	CHECK_EQ_INT(q->nctxs, 0);
	CHECK_EQ_INT(q->skipped, tops);
	CHECK_EQ_INT(q->nfuncs, p->nfuncs);
	sym_probes_free(p);
	sym_probes_free(q);
}

TEST(no_probes_and_file_errors)
{
	REQUIRE(setup());
	fdo_log_set_level(FDO_LOG_ERROR);
	struct sym_probes *p = (struct sym_probes *)1;
	CHECK_EQ_INT(sym_probes_read(fx_noprobe, &p), FDO_ENOT_FOUND);
	CHECK(!p);
	CHECK_EQ_INT(sym_probes_read("/nonexistent/x", &p), FDO_EIO);
	CHECK_EQ_INT(sym_probes_read(test_tmpdir(), &p), FDO_EIO);
	char path[600];
	snprintf(path, sizeof path, "%s/text", test_tmpdir());
	REQUIRE(write_file(path, "hello, world\n", 13) == 0);
	CHECK_EQ_INT(sym_probes_read(path, &p), FDO_ENOT_ELF);
	size_t len;
	uint8_t *good = read_whole(fx_bin, &len);
	REQUIRE(good && len > 4096);
	snprintf(path, sizeof path, "%s/cut", test_tmpdir());
	REQUIRE(write_file(path, good, 40) == 0);
	CHECK_EQ_INT(sym_probes_read(path, &p), FDO_ETRUNCATED);
	/* Cut before the section headers: no sections, no probes. */
	REQUIRE(write_file(path, good, len / 2) == 0);
	int rc = sym_probes_read(path, &p);
	CHECK(rc == FDO_ENOT_FOUND || rc == FDO_ETRUNCATED);
	CHECK(!p);
	good[5] = 2; /* big-endian */
	REQUIRE(write_file(path, good, len) == 0);
	CHECK(sym_probes_read(path, &p) != FDO_OK);
	good[5] = 1;
	good[4] = 1; /* ELFCLASS32 */
	REQUIRE(write_file(path, good, len) == 0);
	CHECK(sym_probes_read(path, &p) != FDO_OK);
	good[4] = 2;
	/* Random damage to the file: an error or a result, never a crash. */
	srand(7);
	uint8_t *bad = malloc(len);
	REQUIRE(bad);
	for (int round = 0; round < 150; round++) {
		memcpy(bad, good, len);
		for (int k = 0; k < 1 + round % 8; k++) {
			size_t at = round % 2 ? (size_t)rand() % len
					      : len - 1 - (size_t)rand() % 4096;
			bad[at] ^= (uint8_t)(1u << (rand() % 8));
		}
		REQUIRE(write_file(path, bad, len) == 0);
		p = NULL;
		rc = sym_probes_read(path, &p);
		if (rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT)
			CHECK(p && check_probes(p));
		else
			CHECK(!p);
		sym_probes_free(p);
	}
	free(bad);
	free(good);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* ---------------------------------------------------- hostile bytes -- */

/* A byte buffer for hand-built sections. */
struct bb {
	uint8_t *p;
	size_t n, cap;
};

static void bb_u8(struct bb *b, uint8_t v)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->p[b->n++] = v;
}

static void bb_u64(struct bb *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		bb_u8(b, (uint8_t)(v >> (8 * i)));
}

static void bb_uleb(struct bb *b, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		bb_u8(b, c | (v ? 0x80 : 0));
	} while (v);
}

static void bb_sleb(struct bb *b, int64_t v)
{
	for (;;) {
		uint8_t c = v & 0x7f;
		v >>= 7; /* arithmetic on gcc and clang */
		if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
			bb_u8(b, c);
			return;
		}
		bb_u8(b, c | 0x80);
	}
}

/* bb_node: a node's GUID and counts (an inlinee's site comes first). */
static void bb_node(struct bb *b, uint64_t guid, uint64_t np, uint64_t ni)
{
	bb_u64(b, guid);
	bb_uleb(b, np);
	bb_uleb(b, ni);
}

/* bb_probe: a probe with an address delta. */
static void bb_probe(struct bb *b, uint32_t index, uint8_t type, int64_t delta)
{
	bb_uleb(b, index);
	bb_u8(b, 0x80 | type);
	bb_sleb(b, delta);
}

static void bb_desc(struct bb *b, uint64_t guid, uint64_t hash,
		    const char *name)
{
	bb_u64(b, guid);
	bb_u64(b, hash);
	bb_uleb(b, strlen(name));
	for (const char *c = name; *c; c++)
		bb_u8(b, (uint8_t)*c);
}

/* Symbols of the hand-built sections: GUIDs 0xA.. at 0x1000, 0x2000... */
#define GA    0xa1u
#define GB    0xb2u
#define GC    0xc3u
#define GNONE 0xdeadu
static const uint64_t hg[] = {GA, GB, GC};
static const uint64_t ha[] = {0x1000, 0x2000, 0x3000};

/* good_record: A with probes 1 (+0) and 2 (+4), inlining B at site 5
 * with probe 1 (-2): 0x1000, 0x1004, 0x1002. */
static void good_record(struct bb *b)
{
	bb_node(b, GA, 2, 1);
	bb_probe(b, 1, SYM_PROBE_BLOCK, 0);
	bb_probe(b, 2, SYM_PROBE_DCALL, 4);
	bb_uleb(b, 5);
	bb_node(b, GB, 1, 0);
	bb_probe(b, 1, SYM_PROBE_BLOCK, -2);
}

TEST(hand_built_record)
{
	struct bb d = {0}, b = {0};
	bb_desc(&d, GA, 7, "a");
	bb_desc(&d, GB, 8, "b");
	bb_desc(&d, GA, 9, "a-again"); /* the first of one GUID wins */
	good_record(&b);
	struct sym_probes *p = NULL;
	REQUIRE(decode(d.p, d.n, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
	CHECK_EQ_INT(p->nfuncs, 2);
	CHECK_EQ_STR(sym_probes_func(p, GA)->name, "a");
	CHECK(sym_probes_func(p, GA)->hash == 7);
	CHECK(sym_probes_func(p, GNONE) == NULL);
	REQUIRE(p->nctxs == 2 && p->nprobes == 3);
	CHECK(p->ctxs[0].parent == UINT32_MAX && p->ctxs[0].guid == GA &&
	      p->ctxs[0].func_addr == 0x1000);
	CHECK(p->ctxs[1].parent == 0 && p->ctxs[1].guid == GB &&
	      p->ctxs[1].site == 5 && p->ctxs[1].func_addr == 0);
	CHECK(p->probes[0].addr == 0x1000 && p->probes[0].index == 1);
	CHECK(p->probes[1].addr == 0x1002 && p->probes[1].ctx == 1);
	CHECK(p->probes[2].addr == 0x1004 &&
	      p->probes[2].type == SYM_PROBE_DCALL);
	sym_probes_free(p);
	/* Of one GUID the last symbol wins; address 0 is no symbol. */
	const uint64_t g2[] = {GA, GA, GA}, a2[] = {0x5000, 0x1000, 0};
	REQUIRE(decode(NULL, 0, b.p, b.n, g2, a2, 3, &p) == FDO_OK);
	CHECK(p->nprobes == 3 && p->probes[0].addr == 0x1000);
	CHECK_EQ_INT(p->nfuncs, 0);
	sym_probes_free(p);
	free(d.p);
	free(b.p);
}

/* A section cut at every length: the records wholly before the cut, as
 * the whole section decodes them, and the cut one counted. */
TEST(truncated_every_length)
{
	REQUIRE(setup());
	fdo_log_set_level(FDO_LOG_ERROR);
	struct sym_probes *full = NULL, *p = NULL;
	REQUIRE(decode(fx_desc, fx_desc_len, fx_probe, fx_probe_len, fx_guids,
		       fx_addrs, fx_nsyms, &full) == FDO_OK);
	size_t last_ctxs = 0, boundaries = 0;
	for (size_t k = 0; k <= fx_probe_len; k++) {
		p = NULL;
		int rc = decode(NULL, 0, fx_probe, k, fx_guids, fx_addrs,
				fx_nsyms, &p);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE);
		if (rc != FDO_OK && rc != FDO_EPARSE) {
			fprintf(stderr, "  cut at %zu: %s\n", k,
				fdo_errname(rc));
			sym_probes_free(p);
			break;
		}
		CHECK_EQ_INT(p->skipped, rc == FDO_EPARSE);
		boundaries += rc == FDO_OK;
		CHECK(p->nctxs >= last_ctxs && p->nctxs <= full->nctxs);
		last_ctxs = p->nctxs;
		int same = p->nctxs <= full->nctxs;
		for (size_t i = 0; same && i < p->nctxs; i++)
			same = same_ctx(&p->ctxs[i], &full->ctxs[i]);
		size_t n = 0;
		for (size_t i = 0; same && i < full->nprobes; i++)
			if (full->probes[i].ctx < p->nctxs)
				same = n < p->nprobes &&
				       same_probe(&p->probes[n++],
						  &full->probes[i]);
		CHECK(same && n == p->nprobes);
		sym_probes_free(p);
	}
	/* One boundary per record, and the empty section. */
	size_t tops = 0;
	for (size_t i = 0; i < full->nctxs; i++)
		tops += full->ctxs[i].parent == UINT32_MAX;
	CHECK_EQ_INT(boundaries, tops + 1);
	/* The descriptors likewise. */
	size_t last = 0;
	for (size_t k = 0; k <= fx_desc_len; k++) {
		p = NULL;
		int rc = decode(fx_desc, k, NULL, 0, NULL, NULL, 0, &p);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE);
		if (!p)
			break;
		CHECK(p->nfuncs >= last && p->nfuncs <= full->nfuncs);
		last = p->nfuncs;
		for (size_t i = 0; i < p->nfuncs; i++) {
			const struct sym_probe_func *f =
				sym_probes_func(full, p->funcs[i].guid);
			CHECK(f && f->hash == p->funcs[i].hash &&
			      !strcmp(f->name, p->funcs[i].name));
		}
		sym_probes_free(p);
	}
	CHECK_EQ_INT(last, full->nfuncs);
	sym_probes_free(full);
	fdo_log_set_level(FDO_LOG_INFO);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng = fdo_mix64(rng + 0x9e3779b97f4a7c15ull);
	return rng;
}

/* Random bytes, and the fixture's sections with bits flipped: an error or
 * a well-formed result, never a crash or a read past the end. */
TEST(random_bytes_and_flips)
{
	REQUIRE(setup());
	fdo_log_set_level(FDO_LOG_ERROR);
	uint8_t buf[1024];
	for (int round = 0; round < 3000; round++) {
		size_t dn = next_rand() % 64, pn = next_rand() % 512;
		for (size_t i = 0; i < dn + pn; i++)
			buf[i] = (uint8_t)next_rand();
		/* Often a plausible start: a known GUID, small counts. */
		if (round % 2 && pn >= 10) {
			uint64_t g = fx_guids[next_rand() % fx_nsyms];
			memcpy(buf + dn, &g, 8);
			buf[dn + 8] &= 0x0f;
			buf[dn + 9] &= 0x03;
		}
		struct sym_probes *p = NULL;
		int rc = decode(buf, dn, buf + dn, pn, fx_guids, fx_addrs,
				fx_nsyms, &p);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT);
		sym_probes_free(p);
	}
	uint8_t *d = malloc(fx_desc_len), *b = malloc(fx_probe_len);
	REQUIRE(d && b);
	for (int round = 0; round < 3000; round++) {
		memcpy(d, fx_desc, fx_desc_len);
		memcpy(b, fx_probe, fx_probe_len);
		for (int k = 0; k < 1 + round % 4; k++) {
			if (round % 5 == 0)
				d[next_rand() % fx_desc_len] ^=
					(uint8_t)(1u << (next_rand() % 8));
			else
				b[next_rand() % fx_probe_len] ^=
					(uint8_t)(1u << (next_rand() % 8));
		}
		struct sym_probes *p = NULL;
		int rc = decode(d, fx_desc_len, b, fx_probe_len, fx_guids,
				fx_addrs, fx_nsyms, &p);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT);
		sym_probes_free(p);
	}
	free(d);
	free(b);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* A ULEB128 that never ends, in a count, an index, a site, a name
 * length: the record is dropped, what came before kept. */
TEST(endless_uleb)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	for (int where = 0; where < 4; where++) {
		struct bb b = {0};
		good_record(&b);
		bb_u64(&b, GA);
		if (where >= 1) {
			bb_uleb(&b, 1); /* NPROBES */
			bb_uleb(&b, 1); /* NINLINEES */
		}
		if (where == 2) {
			bb_uleb(&b, 1);
			bb_u8(&b, 0x80); /* the delta never ends */
		}
		if (where == 3)
			bb_probe(&b, 1, 0, 0); /* the site never ends */
		/* where 0: NPROBES never ends; 1: the index */
		for (int i = 0; i < 40; i++)
			bb_u8(&b, 0x80);
		struct sym_probes *p = NULL;
		CHECK_EQ_INT(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p),
			     FDO_EPARSE);
		CHECK(p && p->nprobes == 3 && p->skipped == 1);
		sym_probes_free(p);
		free(b.p);
	}
	struct bb d = {0};
	bb_desc(&d, GA, 1, "a");
	bb_u64(&d, GB);
	bb_u64(&d, 2);
	for (int i = 0; i < 20; i++)
		bb_u8(&d, 0x80);
	struct sym_probes *p = NULL;
	CHECK_EQ_INT(decode(d.p, d.n, NULL, 0, NULL, NULL, 0, &p), FDO_EPARSE);
	CHECK(p && p->nfuncs == 1 && !strcmp(p->funcs[0].name, "a"));
	sym_probes_free(p);
	/* A name longer than the section. */
	d.n = 0;
	bb_desc(&d, GA, 1, "a");
	bb_u64(&d, GB);
	bb_u64(&d, 2);
	bb_uleb(&d, 100);
	bb_u8(&d, 'x');
	CHECK_EQ_INT(decode(d.p, d.n, NULL, 0, NULL, NULL, 0, &p), FDO_EPARSE);
	CHECK(p && p->nfuncs == 1);
	sym_probes_free(p);
	free(d.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* LLVM pads LEB128 numbers of relaxed fragments: padding is a number;
 * bits beyond 64 are not. */
TEST(leb_padding)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	struct bb b = {0};
	bb_u64(&b, GA);
	const uint8_t one_padded[] = {0x81, 0x80, 0x80, 0x00}; /* 1 */
	for (size_t i = 0; i < sizeof one_padded; i++)
		bb_u8(&b, one_padded[i]); /* NPROBES */
	bb_uleb(&b, 0);
	bb_uleb(&b, 3);
	bb_u8(&b, 0x80);
	/* -2 padded to 12 bytes: 7e ff ff ... 7f */
	bb_u8(&b, 0xfe);
	for (int i = 0; i < 10; i++)
		bb_u8(&b, 0xff);
	bb_u8(&b, 0x7f);
	struct sym_probes *p = NULL;
	REQUIRE(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
	CHECK(p->nprobes == 1 && p->probes[0].addr == 0x1000 - 2 &&
	      p->probes[0].index == 3);
	sym_probes_free(p);
	/* A ULEB128 index over 64 bits, then one over 32. */
	for (int k = 0; k < 2; k++) {
		b.n = 0;
		good_record(&b);
		bb_node(&b, GA, 1, 0);
		if (k == 0) {
			for (int i = 0; i < 9; i++)
				bb_u8(&b, 0xff);
			bb_u8(&b, 0x02); /* bit 64 */
		} else {
			bb_uleb(&b, 1ull << 32);
		}
		bb_u8(&b, 0x80);
		bb_u8(&b, 0);
		CHECK_EQ_INT(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p),
			     FDO_EPARSE);
		CHECK(p && p->nprobes == 3 && p->skipped == 1);
		sym_probes_free(p);
	}
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* Counts of 2^60 and 2^32: FDO_ELIMIT, nothing allocated for them. */
TEST(absurd_counts)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	const uint64_t counts[] = {1ull << 60, 1ull << 32, UINT64_MAX};
	for (int which = 0; which < 2; which++)
		for (size_t c = 0; c < 3; c++) {
			struct bb b = {0};
			good_record(&b);
			bb_node(&b, GA, which ? 1 : counts[c],
				which ? counts[c] : 0);
			bb_probe(&b, 1, 0, 0);
			good_record(&b); /* lost: after the damage */
			struct sym_probes *p = NULL;
			CHECK_EQ_INT(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p),
				     FDO_ELIMIT);
			CHECK(p && p->nprobes == 3 && p->skipped == 1);
			sym_probes_free(p);
			free(b.p);
		}
	/* Counts under 2^32 that the section cannot hold: it runs past. */
	struct bb b = {0};
	bb_node(&b, GA, 1000000, 1000);
	bb_probe(&b, 1, 0, 0);
	struct sym_probes *p = NULL;
	CHECK_EQ_INT(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p), FDO_EPARSE);
	CHECK(p && p->nprobes == 0 && p->skipped == 1);
	sym_probes_free(p);
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* Deltas that leave [0, 2^64), and an SLEB128 over 64 bits. */
TEST(overflowing_deltas)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	const int64_t deltas[][2] = {
		{-0x1001, 0},		/* below 0 */
		{INT64_MAX, INT64_MAX}, /* past 2^64 */
		{INT64_MIN, 0},
		{INT64_MAX, 2},
	};
	for (size_t k = 0; k < 4; k++) {
		struct bb b = {0};
		bb_node(&b, GA, 2, 0);
		bb_probe(&b, 1, 0, deltas[k][0]);
		bb_probe(&b, 2, 0, deltas[k][1]);
		good_record(&b); /* kept: the bad one parsed */
		struct sym_probes *p = NULL;
		REQUIRE(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
		if (k == 3) {
			/* 0x1000 + INT64_MAX + 2 < 2^64: fine */
			CHECK_EQ_INT(p->skipped, 0);
			CHECK_EQ_INT(p->nprobes, 5);
		} else {
			CHECK_EQ_INT(p->skipped, 1);
			CHECK_EQ_INT(p->nprobes, 3);
			CHECK_EQ_INT(p->nctxs, 2);
		}
		sym_probes_free(p);
		free(b.p);
	}
	struct bb b = {0};
	good_record(&b);
	bb_node(&b, GA, 1, 0);
	bb_uleb(&b, 1);
	bb_u8(&b, 0x80);
	for (int i = 0; i < 9; i++)
		bb_u8(&b, 0x80);
	bb_u8(&b, 0x01); /* bit 63 alone: not a sign extension */
	struct sym_probes *p = NULL;
	CHECK_EQ_INT(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p), FDO_EPARSE);
	CHECK(p && p->nprobes == 3);
	sym_probes_free(p);
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* A record whose GUID has no symbol is skipped, the next one kept; one
 * with no probes needs no symbol. */
TEST(guid_without_symbol)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	struct bb b = {0};
	bb_node(&b, GNONE, 1, 1);
	bb_probe(&b, 1, 0, 0);
	bb_uleb(&b, 9);
	bb_node(&b, GB, 1, 0);
	bb_probe(&b, 1, 0, 4);
	good_record(&b);
	bb_node(&b, GNONE, 0, 0);
	struct sym_probes *p = NULL;
	REQUIRE(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
	CHECK_EQ_INT(p->skipped, 1);
	CHECK_EQ_INT(p->nprobes, 3);
	CHECK_EQ_INT(p->nctxs, 3);
	CHECK(p->ctxs[0].guid == GA && p->ctxs[2].guid == GNONE &&
	      p->ctxs[2].func_addr == 0);
	sym_probes_free(p);
	/* No symbols at all (a stripped file). */
	REQUIRE(decode(NULL, 0, b.p, b.n, NULL, NULL, 0, &p) == FDO_OK);
	CHECK_EQ_INT(p->skipped, 2);
	CHECK_EQ_INT(p->nprobes, 0);
	sym_probes_free(p);
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* A sentinel (attr 0x2, a GUID instead of a delta) moves the base to a
 * split part's symbol; an absolute address (pre-16) is taken as it is;
 * unknown types are kept. */
TEST(sentinel_and_absolute)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	struct bb b = {0};
	bb_node(&b, GNONE, 2, 0); /* foo has no symbol: foo.cold (C) does */
	bb_uleb(&b, 0);
	bb_u8(&b, 0x20);
	bb_u64(&b, GC);
	bb_probe(&b, 4, 0, 0x10);
	bb_node(&b, GA, 2, 0);
	bb_uleb(&b, 7);
	bb_u8(&b, 0x05); /* absolute, type 5 */
	bb_u64(&b, 0x7777);
	bb_probe(&b, 8, 1, 1);
	bb_node(&b, GA, 2, 0); /* a sentinel without a symbol */
	bb_uleb(&b, 0);
	bb_u8(&b, 0x20);
	bb_u64(&b, GNONE);
	bb_probe(&b, 4, 0, 0x10);
	struct sym_probes *p = NULL;
	REQUIRE(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
	CHECK_EQ_INT(p->skipped, 1);
	REQUIRE(p->nprobes == 3 && p->nctxs == 2);
	CHECK(p->ctxs[0].func_addr == 0x3000);
	CHECK(p->probes[0].addr == 0x3010 && p->probes[0].index == 4);
	CHECK(p->probes[1].addr == 0x7777 && p->probes[1].type == 5);
	CHECK(p->probes[2].addr == 0x7778 &&
	      p->probes[2].type == SYM_PROBE_ICALL);
	sym_probes_free(p);
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* build_chain: a record whose tree is a chain of depth inlinees (each
 * with one probe), then a good record. */
static void build_chain(struct bb *b, size_t depth)
{
	bb_node(b, GA, 1, depth ? 1 : 0);
	bb_probe(b, 1, 0, 0);
	for (size_t i = 1; i <= depth; i++) {
		bb_uleb(b, 2);
		bb_node(b, i % 2 ? GB : GA, 1, i < depth);
		bb_probe(b, 1, 0, 1);
	}
	good_record(b);
}

/* Inlinees 10000 deep: refused without recursion, the next record kept;
 * SYM_PROBE_MAX_DEPTH deep is fine. */
TEST(deep_inlinees)
{
	fdo_log_set_level(FDO_LOG_ERROR);
	const size_t depths[] = {10000, SYM_PROBE_MAX_DEPTH + 1,
				 SYM_PROBE_MAX_DEPTH};
	for (size_t k = 0; k < 3; k++) {
		struct bb b = {0};
		build_chain(&b, depths[k]);
		struct sym_probes *p = NULL;
		int rc = decode(NULL, 0, b.p, b.n, hg, ha, 3, &p);
		REQUIRE(p);
		if (depths[k] > SYM_PROBE_MAX_DEPTH) {
			CHECK_EQ_INT(rc, FDO_ELIMIT);
			CHECK_EQ_INT(p->skipped, 1);
			CHECK_EQ_INT(p->nctxs, 2);
			CHECK_EQ_INT(p->nprobes, 3);
		} else {
			CHECK_EQ_INT(rc, FDO_OK);
			CHECK_EQ_INT(p->skipped, 0);
			CHECK_EQ_INT(p->nctxs, depths[k] + 1 + 2);
			CHECK_EQ_INT(p->nprobes, depths[k] + 1 + 3);
			/* the deepest probe: 0x1000 + depth */
			int found = 0;
			for (size_t i = 0; i < p->nprobes; i++)
				found |= p->probes[i].addr ==
						 0x1000 + depths[k] &&
					 p->probes[i].ctx == depths[k];
			CHECK(found);
		}
		sym_probes_free(p);
		free(b.p);
	}
	/* Wide instead of deep: 20000 sibling inlinees. */
	struct bb b = {0};
	bb_node(&b, GA, 0, 20000);
	for (int i = 0; i < 20000; i++) {
		bb_uleb(&b, (uint64_t)i);
		bb_node(&b, GB, 1, 0);
		bb_probe(&b, 1, 0, 1);
	}
	struct sym_probes *p = NULL;
	REQUIRE(decode(NULL, 0, b.p, b.n, hg, ha, 3, &p) == FDO_OK);
	CHECK_EQ_INT(p->nctxs, 20001);
	CHECK_EQ_INT(p->nprobes, 20000);
	CHECK(p->probes[19999].addr == 0x1000 + 20000);
	sym_probes_free(p);
	free(b.p);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* ------------------------------------------------------- throughput -- */

/* The fixture's .pseudo_probe section repeated (every record is based on
 * its own symbol, so the copies decode alike): time, printed. */
TEST(throughput)
{
	REQUIRE(setup());
	const size_t reps = 4000;
	uint8_t *big = malloc(fx_probe_len * reps);
	REQUIRE(big);
	for (size_t i = 0; i < reps; i++)
		memcpy(big + i * fx_probe_len, fx_probe, fx_probe_len);
	struct sym_probes *one = NULL, *p = NULL;
	REQUIRE(decode(fx_desc, fx_desc_len, fx_probe, fx_probe_len, fx_guids,
		       fx_addrs, fx_nsyms, &one) == FDO_OK);
	uint64_t t0 = fdo_now_ns();
	int rc = sym_probes_decode_bytes(fx_desc, fx_desc_len, big,
					 fx_probe_len * reps, fx_guids,
					 fx_addrs, fx_nsyms, &p);
	double ms = (double)(fdo_now_ns() - t0) / 1e6;
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(p->nprobes, one->nprobes * reps);
	CHECK_EQ_INT(p->nctxs, one->nctxs * reps);
	printf("  %zu probes, %zu contexts from %zu KiB in %.1f ms "
	       "(%.1f M probes/s)\n",
	       p->nprobes, p->nctxs, fx_probe_len * reps / 1024, ms,
	       (double)p->nprobes / (ms > 0 ? ms : 1) / 1e3);
	sym_probes_free(p);
	sym_probes_free(one);
	free(big);
}
