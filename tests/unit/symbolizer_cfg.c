/*
 * tests/unit/symbolizer_cfg.c — control-flow graphs (symbolizer/cfg.c,
 * symbolizer/code.c): fixture programs compiled here with gcc-12 and
 * clang-16 (-O2 -g, PIE and non-PIE, and gcc -fno-plt), whose functions'
 * shapes were checked by hand against `objdump -d`: an if/else and a
 * loop, a dense switch (jump table), noreturn calls (abort, exit, a local
 * noreturn function), a tail call, padding; a cross-check of every
 * function against objdump's instruction boundaries and direct branch
 * targets; hand-assembled code for jump-table bounds, traps, padding and
 * broken code; hostile ELF files; threads; and a throughput figure
 * (printed, not asserted).
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "symbolizer/sym_int.h"
#include "symbolizer/symbolizer.h"
#include "test.h"

/* The fixture. noinline and calls to distinct functions keep the shapes
 * simple and stop the compilers from merging cases or if-converting. */
static const char fx_src[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"volatile int sink;\n"
	"#define C(n) __attribute__((noinline)) void c##n(int x) "
	"{ sink = x + n; }\n"
	"C(0) C(1) C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9)\n"
	"__attribute__((noinline)) int ifloop(int n)\n"
	"{\n"
	"\tif (n > 10)\n"
	"\t\tc1(n);\n"
	"\telse\n"
	"\t\tc2(n);\n"
	"\tfor (int i = 0; i < n; i++)\n"
	"\t\tc0(i);\n"
	"\treturn 0;\n"
	"}\n"
	"__attribute__((noinline)) int sw(int x, int y)\n"
	"{\n"
	"\tswitch (x) {\n"
	"\tcase 0: c0(y); break;\n"
	"\tcase 1: c1(y); break;\n"
	"\tcase 2: c2(y); break;\n"
	"\tcase 3: c3(y); break;\n"
	"\tcase 4: c4(y); break;\n"
	"\tcase 5: c5(y); break;\n"
	"\tcase 6: c6(y); break;\n"
	"\tcase 7: c7(y); break;\n"
	"\tcase 8: c8(y); break;\n"
	"\tcase 9: c9(y); break;\n"
	"\tdefault: return -1;\n"
	"\t}\n"
	"\treturn sink;\n"
	"}\n"
	"__attribute__((noinline)) int checked(int n)\n"
	"{\n"
	"\tif (n < 0)\n"
	"\t\tabort();\n"
	"\tif (n > 100000)\n"
	"\t\texit(2);\n"
	"\tsink = n;\n"
	"\treturn n * 2;\n"
	"}\n"
	"int other(int x);\n"
	"__attribute__((noinline)) int tail(int x)\n"
	"{\n"
	"\tsink = x;\n"
	"\treturn other(x + 1);\n"
	"}\n"
	"__attribute__((noinline)) int other(int x) { sink = x; return x; }\n"
	"__attribute__((noreturn, noinline)) void die(int code)\n"
	"{\n"
	"\tsink = code;\n"
	"\texit(code);\n"
	"}\n"
	"__attribute__((noinline)) void must(int ok)\n"
	"{\n"
	"\tif (!ok)\n"
	"\t\tdie(3);\n"
	"\tsink = 1;\n"
	"}\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\t(void)argv;\n"
	"\tifloop(argc);\n"
	"\tprintf(\"%d\\n\", sw(argc, 2));\n"
	"\tchecked(argc);\n"
	"\ttail(argc);\n"
	"\tmust(argc);\n"
	"\treturn 0;\n"
	"}\n";

/* The builds: each compiler, PIE and not; gcc with -fno-plt (noreturn
 * imports called through their GOT slot). */
enum { V_GCC_PIE, V_GCC_NOPIE, V_CLANG_PIE, V_CLANG_NOPIE, V_GCC_NOPLT, NV };
static const struct variant {
	const char *name, *cc, *flags;
	int clang;
} variants[NV] = {
	{"gcc-pie", "gcc-12", "-fpie -pie", 0},
	{"gcc-nopie", "gcc-12", "-fno-pie -no-pie", 0},
	{"clang-pie", "clang-16", "-fpie -pie", 1},
	{"clang-nopie", "clang-16", "-fno-pie -no-pie", 1},
	{"gcc-noplt", "gcc-12", "-fpie -pie -fno-plt", 0},
};

/* What objdump -d says about one build. */
struct jmp {
	uint64_t addr, target;
};
struct fixture {
	char path[512];
	struct sym_func *funcs;
	size_t nfuncs;
	uint64_t *insns; /* every instruction address objdump shows */
	size_t ninsns;
	struct jmp *jumps; /* direct jumps and their targets */
	size_t njumps;
	uint64_t abort_plt, exit_plt, printf_plt; /* 0 = none */
};
static struct fixture fx[NV];

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void push_u64(uint64_t **v, size_t *n, uint64_t x)
{
	uint64_t *p = realloc(*v, (*n + 1) * sizeof *p);
	if (!p)
		abort();
	p[(*n)++] = x;
	*v = p;
}

/* read_objdump fills f->insns, f->jumps and the PLT stubs from
 * `objdump -d --no-show-raw-insn`. */
static int read_objdump(struct fixture *f)
{
	char cmd[4096], line[1024];
	snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s'",
		 f->path);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof line, p)) {
		unsigned long long a, t;
		char name[256], mn[64];
		if (sscanf(line, "%llx <%255[^>]>:", &a, name) == 2) {
			if (!strcmp(name, "abort@plt"))
				f->abort_plt = a;
			else if (!strcmp(name, "exit@plt"))
				f->exit_plt = a;
			else if (!strcmp(name, "printf@plt"))
				f->printf_plt = a;
			continue;
		}
		if (sscanf(line, " %llx:\t%63s", &a, mn) != 2)
			continue;
		push_u64(&f->insns, &f->ninsns, a);
		/* "jle    1278 <ifloop+0x28>": a direct jump. */
		const char *ops = strchr(line, '\t');
		ops = ops ? strchr(ops + 1, ' ') : NULL;
		if ((mn[0] == 'j' || !strncmp(mn, "loop", 4)) && ops &&
		    sscanf(ops, " %llx <", &t) == 1) {
			struct jmp *j =
				realloc(f->jumps, (f->njumps + 1) * sizeof *j);
			if (!j)
				abort();
			j[f->njumps++] = (struct jmp){a, t};
			f->jumps = j;
		}
	}
	return pclose(p) == 0 ? 0 : -1;
}

/* teardown frees what setup kept (at exit: valgrind counts it). */
static void teardown(void)
{
	for (int v = 0; v < NV; v++) {
		sym_elf_functions_free(fx[v].funcs);
		free(fx[v].insns);
		free(fx[v].jumps);
	}
}

/* setup builds the fixtures once. A missing compiler is a failure: both
 * are dependencies of the project (deploy/install-deps.sh). */
static int setup(void)
{
	static int done, ok;
	if (done)
		return ok;
	done = 1;
	atexit(teardown);
	char src[512], cmd[4096];
	snprintf(src, sizeof src, "%s/fx.c", test_tmpdir());
	FILE *s = fopen(src, "w");
	if (!s)
		return 0;
	fputs(fx_src, s);
	fclose(s);
	for (int v = 0; v < NV; v++) {
		struct fixture *f = &fx[v];
		snprintf(cmd, sizeof cmd, "command -v %s >/dev/null",
			 variants[v].cc);
		if (run(cmd) != 0) {
			fprintf(stderr,
				"  %s is missing: install it "
				"(deploy/install-deps.sh)\n",
				variants[v].cc);
			return 0;
		}
		snprintf(f->path, sizeof f->path, "%s/%s", test_tmpdir(),
			 variants[v].name);
		snprintf(cmd, sizeof cmd, "%s -O2 -g %s -o '%s' '%s'",
			 variants[v].cc, variants[v].flags, f->path, src);
		if (run(cmd) != 0 || read_objdump(f) != 0 ||
		    sym_elf_functions(f->path, &f->funcs, &f->nfuncs) !=
			    FDO_OK) {
			fprintf(stderr, "  cannot build or read %s\n", f->path);
			return 0;
		}
	}
	ok = 1;
	return ok;
}

static const struct sym_func *func(const struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->nfuncs; i++)
		if (!strcmp(f->funcs[i].name, name))
			return &f->funcs[i];
	return NULL;
}

/* span: a function's size, cut at the next function (size-0 symbols
 * reach to their section's end in sym_elf_functions). */
static uint64_t span(const struct fixture *f, size_t i)
{
	uint64_t size = f->funcs[i].size;
	for (size_t j = i + 1; j < f->nfuncs; j++)
		if (f->funcs[j].addr > f->funcs[i].addr) {
			uint64_t gap = f->funcs[j].addr - f->funcs[i].addr;
			if (!size || size > gap)
				size = gap;
			break;
		}
	return size;
}

/* padded_size: the size of function name up to the next function when
 * only alignment padding (under 64 bytes) lies between them, else its
 * symbol's size (the last function of .text is followed by .fini, with
 * zeros between). */
static uint64_t padded_size(const struct fixture *f, const char *name)
{
	const struct sym_func *g = func(f, name);
	for (size_t j = 0; g && j < f->nfuncs; j++)
		if (f->funcs[j].addr > g->addr) {
			uint64_t gap = f->funcs[j].addr - g->addr;
			/* .text functions are 16-byte aligned at -O2. */
			return gap >= g->size && gap - g->size < 64 &&
					       f->funcs[j].addr % 16 == 0
				       ? gap
				       : g->size;
		}
	return g ? g->size : 0;
}

/* check_cfg: the promises of symbolizer.h hold for cfg. */
static int check_cfg(const struct sym_cfg *g)
{
	int ok = 1;
#define EXPECT(c)                                                              \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "  cfg %#" PRIx64 ": %s\n", g->addr,   \
				#c);                                           \
			ok = 0;                                                \
		}                                                              \
	} while (0)
	EXPECT(g->nblocks > 0 && g->ninsns > 0);
	if (!ok)
		return 0;
	EXPECT(g->blocks[0].start == g->addr);
	EXPECT(g->blocks[0].flags & SYM_BLOCK_ENTRY);
	EXPECT(g->blocks[g->nblocks - 1].end == g->addr + g->size);
	uint64_t a = g->addr;
	for (size_t i = 0; i < g->ninsns; i++) {
		EXPECT(g->insns[i].addr == a && g->insns[i].len > 0);
		a += g->insns[i].len;
	}
	size_t e = 0, unknown = 0, ninsns = 0;
	uint32_t *npred = calloc(g->nblocks, sizeof *npred);
	for (size_t i = 0; i < g->nedges; i++) {
		EXPECT(g->edges[i].to < g->nblocks &&
		       g->edges[i].from < g->nblocks &&
		       g->edges[i].kind <= SYM_EDGE_TABLE);
		if (g->edges[i].to < g->nblocks)
			npred[g->edges[i].to]++;
	}
	for (size_t i = 0; i < g->nblocks; i++) {
		const struct sym_block *b = &g->blocks[i];
		EXPECT(b->start < b->end);
		if (i + 1 < g->nblocks)
			EXPECT(b->end == g->blocks[i + 1].start);
		EXPECT(b->first_insn == ninsns && b->ninsns > 0);
		ninsns += b->ninsns;
		EXPECT(b->first_insn < g->ninsns &&
		       g->insns[b->first_insn].addr == b->start);
		EXPECT(b->first_succ == e);
		for (uint32_t k = 0; k < b->nsucc; k++)
			EXPECT(g->edges[e + k].from == i);
		e += b->nsucc;
		EXPECT(b->npred == npred[i]);
		if (b->flags & SYM_BLOCK_PAD)
			EXPECT(b->npred == 0 && b->nsucc == 0 && i > 0);
		if (b->flags & SYM_BLOCK_UNKNOWN) {
			EXPECT(b->nsucc == 0);
			unknown++;
		}
		EXPECT(sym_cfg_block_at(g, b->start) == i);
		EXPECT(sym_cfg_block_at(g, b->end - 1) == i);
	}
	free(npred);
	EXPECT(ninsns == g->ninsns);
	EXPECT(e == g->nedges);
	EXPECT(unknown == g->nunresolved);
	EXPECT(sym_cfg_block_at(g, g->addr - 1) == UINT32_MAX);
	EXPECT(sym_cfg_block_at(g, g->addr + g->size) == UINT32_MAX);
#undef EXPECT
	return ok;
}

/* build: the CFG of function name in fixture v, checked; size 0 = the
 * symbol's size. */
static struct sym_cfg *build(sym_code *c, int v, const char *name,
			     uint64_t size)
{
	const struct sym_func *f = func(&fx[v], name);
	if (!f) {
		fprintf(stderr, "  %s: no function %s\n", variants[v].name,
			name);
		return NULL;
	}
	struct sym_cfg *g = NULL;
	int rc = sym_cfg_build(c, f->addr, size ? size : f->size, &g);
	if (rc != FDO_OK) {
		fprintf(stderr, "  %s %s: %s\n", variants[v].name, name,
			fdo_errname(rc));
		return NULL;
	}
	if (!check_cfg(g)) {
		sym_cfg_free(g);
		return NULL;
	}
	return g;
}

static const struct sym_insn *last_insn(const struct sym_cfg *g, size_t b)
{
	return &g->insns[g->blocks[b].first_insn + g->blocks[b].ninsns - 1];
}

/* count_edges: edges of a kind (-1: any) from block from (-1: any). */
static size_t count_edges(const struct sym_cfg *g, int kind, long from)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nedges; i++)
		if ((kind < 0 || g->edges[i].kind == (uint32_t)kind) &&
		    (from < 0 || g->edges[i].from == (uint32_t)from))
			n++;
	return n;
}

static size_t count_flag(const struct sym_cfg *g, uint32_t flag)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nblocks; i++)
		n += (g->blocks[i].flags & flag) != 0;
	return n;
}

/* The block whose call targets the function callee, or SIZE_MAX. */
static size_t block_calling(const struct sym_cfg *g, uint64_t callee)
{
	for (size_t i = 0; i < g->ninsns; i++)
		if (g->insns[i].kind == SYM_INSN_CALL &&
		    g->insns[i].target == callee)
			return sym_cfg_block_at(g, g->insns[i].addr);
	return SIZE_MAX;
}

static sym_code *open_fx(int v)
{
	sym_code *c = NULL;
	int rc = sym_code_open(fx[v].path, &c);
	if (rc != FDO_OK)
		fprintf(stderr, "  sym_code_open(%s): %s\n", fx[v].path,
			fdo_errname(rc));
	return c;
}

/*
 * ifloop, as objdump -d shows it (PIE; non-PIE is the same shape):
 *
 * gcc-12 (8 blocks, 8 edges: 5 FALL, 3 TAKEN, one PAD, two exits):
 *   B0 1250 mov; cmp $0xa; jle 1278    FALL B1, TAKEN B6
 *   B1 1257 call c1                    FALL B2
 *   B2 125c xor; xchg %ax,%ax          FALL B3     (the loop's preheader)
 *   B3 1260 mov; add; call c0; cmp; jg 1260   FALL B4, TAKEN B3 (the loop)
 *   B4 126e xor; ret                   EXIT
 *   B5 1271 nopl                       PAD
 *   B6 1278 call c2; test; jg 125c     FALL B7, TAKEN B2
 *   B7 1281 xor; ret                   EXIT
 *
 * clang-16 (6 blocks, 8 edges: 4 FALL, 4 TAKEN, no PAD, one exit):
 *   B0 1200 push x3; mov; cmp $0xb; jl 1213   FALL B1, TAKEN B2
 *   B1 120a mov; call c1; jmp 121e     TAKEN B3
 *   B2 1213 mov; call c2; test; jle 122d      FALL B3, TAKEN B5
 *   B3 121e xor %ebp,%ebp              FALL B4
 *   B4 1220 mov; call c0; inc; cmp; jne 1220  FALL B5, TAKEN B4 (the loop)
 *   B5 122d xor; add; pop; pop; ret    EXIT
 *
 * Both: the calls to c1 and c2 sit in two blocks, the call to c0 in a
 * block with a TAKEN edge to itself, the entry ends in a conditional.
 */
TEST(if_else_and_loop)
{
	REQUIRE(setup());
	for (int v = 0; v < V_GCC_NOPLT; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		struct sym_cfg *g = build(c, v, "ifloop", 0);
		REQUIRE(g);
		int clang = variants[v].clang;
		CHECK_EQ_INT(g->nblocks, clang ? 6 : 8);
		CHECK_EQ_INT(g->nedges, 8);
		CHECK_EQ_INT(count_edges(g, SYM_EDGE_FALL, -1), clang ? 4 : 5);
		CHECK_EQ_INT(count_edges(g, SYM_EDGE_TAKEN, -1), clang ? 4 : 3);
		CHECK_EQ_INT(count_edges(g, SYM_EDGE_TABLE, -1), 0);
		CHECK_EQ_INT(count_flag(g, SYM_BLOCK_PAD), clang ? 0 : 1);
		CHECK_EQ_INT(count_flag(g, SYM_BLOCK_EXIT), clang ? 1 : 2);
		CHECK_EQ_INT(count_flag(g, SYM_BLOCK_UNKNOWN), 0);
		CHECK(last_insn(g, 0)->kind == SYM_INSN_COND);
		CHECK_EQ_INT(g->blocks[0].nsucc, 2);
		size_t b0 = block_calling(g, func(&fx[v], "c0")->addr);
		size_t b1 = block_calling(g, func(&fx[v], "c1")->addr);
		size_t b2 = block_calling(g, func(&fx[v], "c2")->addr);
		REQUIRE(b0 != SIZE_MAX && b1 != SIZE_MAX && b2 != SIZE_MAX);
		CHECK(b1 != b2 && b0 != b1 && b0 != b2);
		/* The loop: one self edge, on the block calling c0. */
		size_t self = 0;
		for (size_t i = 0; i < g->nedges; i++)
			if (g->edges[i].from == g->edges[i].to) {
				self++;
				CHECK_EQ_INT(g->edges[i].from, b0);
				CHECK_EQ_INT(g->edges[i].kind, SYM_EDGE_TAKEN);
			}
		CHECK_EQ_INT(self, 1);
		CHECK_EQ_INT(g->blocks[b0].nsucc, 2);
		CHECK_EQ_INT(g->blocks[b0].npred, 2);
		if (!clang) {
			/* B5 is the nopl after the first ret. */
			CHECK(g->blocks[5].flags & SYM_BLOCK_PAD);
			CHECK(g->blocks[4].flags & SYM_BLOCK_EXIT);
			CHECK(last_insn(g, 4)->kind == SYM_INSN_RET);
		} else {
			CHECK(last_insn(g, 1)->kind == SYM_INSN_JUMP);
			CHECK_EQ_INT(count_edges(g, SYM_EDGE_TAKEN, 1), 1);
		}
		CHECK_EQ_INT(g->ntables, 0);
		CHECK_EQ_INT(g->nunresolved, 0);
		sym_cfg_free(g);
		sym_code_close(c);
	}
}

/*
 * sw: `cmp $0x9; ja default` then a table of ten 32-bit offsets (PIE:
 * lea; movslq (%rdx,%rax,4); add; jmp *%rax) or ten addresses (non-PIE:
 * jmp *T(,%rax,8)). Every case calls its own cN, so the table's targets
 * are exactly the ten blocks holding those calls. gcc puts the default
 * in sw.cold: its `ja` leaves the range (EXIT, with the fall-through
 * edge kept).
 */
TEST(switch_jump_table)
{
	REQUIRE(setup());
	for (int v = 0; v < V_GCC_NOPLT; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		struct sym_cfg *g = build(c, v, "sw", 0);
		REQUIRE(g);
		CHECK_EQ_INT(g->ntables, 1);
		CHECK_EQ_INT(g->nunresolved, 0);
		size_t ij = SIZE_MAX;
		for (size_t i = 0; i < g->nblocks; i++)
			if (last_insn(g, i)->kind == SYM_INSN_IJUMP) {
				CHECK(ij == SIZE_MAX);
				ij = i;
			}
		REQUIRE(ij != SIZE_MAX);
		CHECK(last_insn(g, ij)->flags & SYM_INSN_TABLE);
		CHECK_EQ_INT(g->blocks[ij].nsucc, 10);
		CHECK_EQ_INT(count_edges(g, SYM_EDGE_TABLE, -1), 10);
		CHECK_EQ_INT(count_edges(g, SYM_EDGE_TABLE, (long)ij), 10);
		int want[64] = {0};
		for (int k = 0; k < 10; k++) {
			char name[8];
			snprintf(name, sizeof name, "c%d", k);
			size_t b = block_calling(g, func(&fx[v], name)->addr);
			REQUIRE(b < 64);
			want[b] = 1;
		}
		int got[64] = {0};
		for (uint32_t k = 0; k < g->blocks[ij].nsucc; k++) {
			const struct sym_edge *e =
				&g->edges[g->blocks[ij].first_succ + k];
			REQUIRE(e->to < 64);
			CHECK_EQ_INT(e->kind, SYM_EDGE_TABLE);
			got[e->to] = 1;
			CHECK_EQ_INT(g->blocks[e->to].npred, 1);
		}
		CHECK(!memcmp(want, got, sizeof want));
		if (!variants[v].clang) {
			/* ja sw.cold: out of the range. */
			CHECK(g->blocks[0].flags & SYM_BLOCK_EXIT);
			CHECK(last_insn(g, 0)->kind == SYM_INSN_COND);
			CHECK_EQ_INT(g->blocks[0].nsucc, 1);
			CHECK_EQ_INT(count_edges(g, SYM_EDGE_FALL, 0), 1);
			/* The nops after `jmp *%rax` and after each case. */
			CHECK(count_flag(g, SYM_BLOCK_PAD) >= 9);
		} else {
			CHECK_EQ_INT(g->blocks[0].nsucc, 2);
			CHECK_EQ_INT(count_flag(g, SYM_BLOCK_PAD), 0);
		}
		sym_cfg_free(g);
		sym_code_close(c);
	}
}

/* The call instruction at addr in g, or NULL. */
static const struct sym_insn *insn_at_addr(const struct sym_cfg *g,
					   uint64_t addr)
{
	for (size_t i = 0; i < g->ninsns; i++)
		if (g->insns[i].addr == addr)
			return &g->insns[i];
	return NULL;
}

/* check_noreturn_call: the call at index i ends its block, which leaves
 * the function and has no successor. */
static void check_noreturn_call(const struct sym_cfg *g, size_t i)
{
	const struct sym_insn *in = &g->insns[i];
	CHECK(in->flags & SYM_INSN_NORETURN);
	uint32_t b = sym_cfg_block_at(g, in->addr);
	REQUIRE(b != UINT32_MAX);
	CHECK(g->blocks[b].end == in->addr + in->len);
	CHECK(g->blocks[b].flags & SYM_BLOCK_EXIT);
	CHECK_EQ_INT(g->blocks[b].nsucc, 0);
}

/*
 * checked: `if (n < 0) abort(); if (n > 100000) exit(2);`. clang keeps
 * both calls at the end of the function, `call abort@plt` followed by the
 * exit block: only the name says abort does not return. gcc moves abort
 * to checked.cold and ends checked with `call exit@plt`. With -fno-plt
 * gcc calls through the GOT slot (`call *abort@GOTPCREL(%rip)`).
 */
TEST(noreturn_calls)
{
	REQUIRE(setup());
	for (int v = 0; v < NV; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		const struct fixture *f = &fx[v];
		if (v != V_GCC_NOPLT) {
			REQUIRE(f->abort_plt && f->exit_plt && f->printf_plt);
			CHECK(sym_code_noreturn(c, f->abort_plt));
			CHECK(sym_code_noreturn(c, f->exit_plt));
			CHECK(!sym_code_noreturn(c, f->printf_plt));
		}
		CHECK(!sym_code_noreturn(c, func(f, "c0")->addr));
		CHECK(!sym_code_noreturn(c, func(f, "die")->addr));
		/* Calls that never return in checked and checked.cold. */
		size_t nabort = 0, nexit = 0, nslot = 0;
		for (size_t fi = 0; fi < f->nfuncs; fi++) {
			if (strncmp(f->funcs[fi].name, "checked", 7))
				continue;
			struct sym_cfg *g = build(c, v, f->funcs[fi].name, 0);
			REQUIRE(g);
			for (size_t i = 0; i < g->ninsns; i++) {
				const struct sym_insn *in = &g->insns[i];
				int ab = in->kind == SYM_INSN_CALL &&
					 in->target == f->abort_plt;
				int ex = in->kind == SYM_INSN_CALL &&
					 in->target == f->exit_plt;
				int sl = in->kind == SYM_INSN_ICALL;
				if (!ab && !ex && !sl)
					continue;
				nabort += ab;
				nexit += ex;
				nslot += sl;
				check_noreturn_call(g, i);
				/* clang: code follows the abort call, so
				 * only its name tells. */
				if (ab && variants[v].clang)
					CHECK(i + 1 < g->ninsns &&
					      !(g->insns[i + 1].flags &
						SYM_INSN_NOP));
			}
			sym_cfg_free(g);
		}
		if (v == V_GCC_NOPLT) {
			CHECK_EQ_INT(nslot, 2);
			nabort = nexit = 1;
		}
		CHECK_EQ_INT(nabort, 1);
		CHECK_EQ_INT(nexit, 1);
		CHECK_EQ_INT(nslot, v == V_GCC_NOPLT ? 2 : 0);
		sym_code_close(c);
	}
}

/*
 * must: `if (!ok) die(3);` with die a local noreturn function (no name
 * we know): gcc and clang end must with `call die`, so the end of the
 * range (or, up to the next function, the padding after it) says it does
 * not return.
 */
TEST(noreturn_local_call_before_padding)
{
	REQUIRE(setup());
	for (int v = 0; v < NV; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		uint64_t die = func(&fx[v], "die")->addr;
		const struct sym_func *m = func(&fx[v], "must");
		uint64_t sizes[2] = {m->size, padded_size(&fx[v], "must")};
		for (int s = 0; s < 2; s++) {
			struct sym_cfg *g = build(c, v, "must", sizes[s]);
			REQUIRE(g);
			size_t b = block_calling(g, die);
			REQUIRE(b != SIZE_MAX);
			const struct sym_insn *in = last_insn(g, b);
			CHECK(in->kind == SYM_INSN_CALL && in->target == die);
			check_noreturn_call(g, (size_t)(in - g->insns));
			CHECK_EQ_INT(g->nunresolved, 0);
			sym_cfg_free(g);
		}
		sym_code_close(c);
	}
}

/* tail: `sink = x; return other(x + 1);` is `...; jmp other`. */
TEST(tail_call_is_exit)
{
	REQUIRE(setup());
	for (int v = 0; v < NV; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		struct sym_cfg *g = build(c, v, "tail", 0);
		REQUIRE(g);
		CHECK_EQ_INT(g->nblocks, 1);
		CHECK_EQ_INT(g->nedges, 0);
		const struct sym_insn *in = last_insn(g, 0);
		CHECK(in->kind == SYM_INSN_JUMP);
		CHECK(in->target == func(&fx[v], "other")->addr);
		CHECK(g->blocks[0].flags & SYM_BLOCK_EXIT);
		CHECK(g->blocks[0].flags & SYM_BLOCK_ENTRY);
		sym_cfg_free(g);
		sym_code_close(c);
	}
}

/* Up to the next function, ifloop and sw end in nops: a PAD block that
 * takes no part in the flow; the rest of the graph is unchanged. */
TEST(padding_blocks)
{
	REQUIRE(setup());
	const char *names[] = {"ifloop", "sw", "tail", "checked"};
	for (int v = 0; v < NV; v++) {
		sym_code *c = open_fx(v);
		REQUIRE(c);
		size_t padded = 0;
		for (size_t k = 0; k < 4; k++) {
			const struct sym_func *f = func(&fx[v], names[k]);
			REQUIRE(f);
			uint64_t big = padded_size(&fx[v], names[k]);
			if (big <= f->size)
				continue; /* no padding after it */
			struct sym_cfg *g = build(c, v, names[k], 0);
			struct sym_cfg *p = build(c, v, names[k], big);
			REQUIRE(g && p);
			padded++;
			const struct sym_block *last =
				&p->blocks[p->nblocks - 1];
			CHECK(last->flags & SYM_BLOCK_PAD);
			CHECK(last->start == f->addr + f->size);
			CHECK(last->npred == 0 && last->nsucc == 0);
			CHECK_EQ_INT(p->nblocks, g->nblocks + 1);
			CHECK_EQ_INT(p->nedges, g->nedges);
			for (size_t i = 0; i < p->ninsns; i++)
				if (p->insns[i].addr >= last->start)
					CHECK(p->insns[i].flags & SYM_INSN_NOP);
			sym_cfg_free(g);
			sym_cfg_free(p);
		}
		CHECK(padded >= 2);
		sym_code_close(c);
	}
}

/*
 * Every function of every fixture against objdump: the same instruction
 * boundaries, every direct jump target inside the function and every
 * instruction after a jump start a block.
 */
TEST(objdump_cross_check)
{
	REQUIRE(setup());
	for (int v = 0; v < NV; v++) {
		const struct fixture *f = &fx[v];
		sym_code *c = open_fx(v);
		REQUIRE(c);
		size_t built = 0, targets = 0, j = 0, k = 0;
		for (size_t i = 0; i < f->nfuncs; i++) {
			uint64_t lo = f->funcs[i].addr, size = span(f, i);
			if (i + 1 < f->nfuncs && f->funcs[i + 1].addr == lo)
				continue; /* an alias */
			struct sym_cfg *g = NULL;
			int rc = sym_cfg_build(c, lo, size, &g);
			if (rc == FDO_ENOT_FOUND)
				continue; /* not in an executable segment */
			CHECK_EQ_INT(rc, FDO_OK);
			if (rc)
				continue;
			CHECK(check_cfg(g));
			built++;
			/* objdump's instructions inside [lo, lo+size). */
			while (k < f->ninsns && f->insns[k] < lo)
				k++;
			size_t n = 0;
			for (size_t q = k;
			     q < f->ninsns && f->insns[q] < lo + size; q++, n++)
				if (!insn_at_addr(g, f->insns[q]))
					fprintf(stderr,
						"  %s: %#" PRIx64
						" not an instruction\n",
						variants[v].name, f->insns[q]);
			CHECK_EQ_INT(n, g->ninsns);
			while (j < f->njumps && f->jumps[j].addr < lo)
				j++;
			for (; j < f->njumps && f->jumps[j].addr < lo + size;
			     j++) {
				uint64_t t = f->jumps[j].target;
				if (t >= lo && t < lo + size) {
					uint32_t b = sym_cfg_block_at(g, t);
					CHECK(b != UINT32_MAX &&
					      g->blocks[b].start == t);
					targets++;
				}
				const struct sym_insn *in =
					insn_at_addr(g, f->jumps[j].addr);
				REQUIRE(in);
				uint64_t after = in->addr + in->len;
				if (after < lo + size) {
					uint32_t b = sym_cfg_block_at(g, after);
					CHECK(b != UINT32_MAX &&
					      g->blocks[b].start == after);
				}
			}
			sym_cfg_free(g);
		}
		CHECK(built >= 20);
		CHECK(targets >= 20);
		sym_code_close(c);
	}
}

TEST(block_at)
{
	REQUIRE(setup());
	sym_code *c = open_fx(V_GCC_PIE);
	REQUIRE(c);
	struct sym_cfg *g = build(c, V_GCC_PIE, "ifloop", 0);
	REQUIRE(g);
	for (size_t i = 0; i < g->nblocks; i++)
		for (uint64_t a = g->blocks[i].start; a < g->blocks[i].end; a++)
			CHECK_EQ_INT(sym_cfg_block_at(g, a), i);
	CHECK_EQ_INT(sym_cfg_block_at(g, 0), UINT32_MAX);
	CHECK_EQ_INT(sym_cfg_block_at(g, UINT64_MAX), UINT32_MAX);
	CHECK_EQ_INT(sym_cfg_block_at(g, g->addr + g->size), UINT32_MAX);
	sym_cfg_free(g);
	sym_code_close(c);
}

/* ------------------------------------------- hand-assembled code -- */

#define CODE 0x1000u
#define DATA 0x2000u

static struct sym_cfg *build_bytes(const uint8_t *code, size_t len,
				   const uint8_t *data, size_t dlen, int *rc)
{
	struct sym_cfg *g = NULL;
	*rc = sym_cfg_build_bytes(code, len, CODE, data, dlen, DATA, &g);
	if (*rc == FDO_OK && !check_cfg(g)) {
		sym_cfg_free(g);
		*rc = -1;
		return NULL;
	}
	return g;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The targets of the indirect jump's table edges, as addresses. */
static size_t table_targets(const struct sym_cfg *g, uint64_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nedges; i++)
		if (g->edges[i].kind == SYM_EDGE_TABLE)
			out[n++] = g->blocks[g->edges[i].to].start;
	return n;
}

/*
 *  1000 cmp edi, 2                 83 ff 02     (bounds-check: 3 entries)
 *  1003 ja 101b                    77 16
 *  1005 mov eax, edi               89 f8
 *  1007 lea rcx, [rip + 0xff2]     48 8d 0d f2 0f 00 00   (= 2000)
 *  100e movsxd rax, [rcx + rax*4]  48 63 04 81
 *  1012 add rax, rcx               48 01 c8
 *  1015 jmp rax                    ff e0
 *  1017..101b ret x5               (cases 0-3, default)
 * The table at 2000 has four good entries, then garbage: the cmp bounds
 * it to three; without the cmp, entries are read while they are good.
 */
TEST(table_bound_from_cmp)
{
	uint8_t code[] = {0x83, 0xff, 0x02, 0x77, 0x16, 0x89, 0xf8,
			  0x48, 0x8d, 0x0d, 0xf2, 0x0f, 0x00, 0x00,
			  0x48, 0x63, 0x04, 0x81, 0x48, 0x01, 0xc8,
			  0xff, 0xe0, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3};
	uint8_t data[24];
	for (int i = 0; i < 4; i++)
		put32(data + 4 * i, (uint32_t)(0x1017 + i - DATA));
	put32(data + 16, 0x7fffffffu);
	put32(data + 20, (uint32_t)(0x1017 - DATA));
	int rc;
	struct sym_cfg *g =
		build_bytes(code, sizeof code, data, sizeof data, &rc);
	REQUIRE(rc == FDO_OK);
	uint64_t t[16];
	CHECK_EQ_INT(table_targets(g, t), 3);
	CHECK(t[0] == 0x1017 && t[1] == 0x1018 && t[2] == 0x1019);
	CHECK_EQ_INT(g->ntables, 1);
	/* The default (101b) is reached by the ja; 101a by nothing. */
	uint32_t dflt = sym_cfg_block_at(g, 0x101b);
	CHECK(dflt != UINT32_MAX && g->blocks[dflt].npred == 1);
	uint32_t hole = sym_cfg_block_at(g, 0x101a);
	CHECK(hole != UINT32_MAX && g->blocks[hole].npred == 0);
	sym_cfg_free(g);

	/* No bounds check (a 5-byte nop instead): four entries. */
	static const uint8_t nop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
	memcpy(code, nop5, 5);
	g = build_bytes(code, sizeof code, data, sizeof data, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(table_targets(g, t), 4);
	CHECK_EQ_INT(g->ntables, 1);
	sym_cfg_free(g);

	/* No data: the table cannot be read; the jump stays unknown. */
	g = build_bytes(code, sizeof code, NULL, 0, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(g->ntables, 0);
	CHECK_EQ_INT(g->nunresolved, 1);
	CHECK(g->blocks[sym_cfg_block_at(g, 0x1015)].flags & SYM_BLOCK_UNKNOWN);
	sym_cfg_free(g);
}

/*
 *  1000 cmp eax, 1                   83 f8 01
 *  1003 jbe 1008                     76 03       (taken edge to the table)
 *  1005 ret                          c3          (default)
 *  1006 ud2                          0f 0b
 *  1008 jmp [rax*8 + 0x2000]         ff 24 c5 00 20 00 00
 *  100f ret; 1010 ret
 * An absolute table of two entries (jbe reached by its taken edge).
 */
TEST(absolute_table)
{
	uint8_t code[] = {0x83, 0xf8, 0x01, 0x76, 0x03, 0xc3, 0x0f, 0x0b, 0xff,
			  0x24, 0xc5, 0x00, 0x20, 0x00, 0x00, 0xc3, 0xc3};
	uint64_t data[3] = {0x100f, 0x1010, 0x1000};
	int rc;
	struct sym_cfg *g = build_bytes(
		code, sizeof code, (const uint8_t *)data, sizeof data, &rc);
	REQUIRE(rc == FDO_OK);
	uint64_t t[8];
	CHECK_EQ_INT(table_targets(g, t), 2);
	CHECK(t[0] == 0x100f && t[1] == 0x1010);
	/* ud2 reached by nothing: its own block, not padding, no flow. */
	uint32_t u = sym_cfg_block_at(g, 0x1006);
	REQUIRE(u != UINT32_MAX);
	CHECK(g->blocks[u].start == 0x1006 && g->blocks[u].end == 0x1008);
	CHECK(!(g->blocks[u].flags & SYM_BLOCK_PAD));
	CHECK_EQ_INT(g->blocks[u].nsucc, 0);
	sym_cfg_free(g);
}

/* Indirect jumps that are no table: through a fixed slot, through a
 * pointer loaded without an index, or after `pop` are tail calls (EXIT);
 * through a stack slot is unknown. */
TEST(indirect_jumps)
{
	/* 1000 jmp [rip+0]; 1006 mov rax,[rdi]; 1009 jmp rax;
	 * 100b mov rax,[rsp+8]; 1010 jmp rax; 1012 pop rbx; 1013 jmp rcx */
	const uint8_t code[] = {0xff, 0x25, 0x00, 0x00, 0x00, 0x00, 0x48,
				0x8b, 0x07, 0xff, 0xe0, 0x48, 0x8b, 0x44,
				0x24, 0x08, 0xff, 0xe0, 0x5b, 0xff, 0xe1};
	int rc;
	struct sym_cfg *g = build_bytes(code, sizeof code, NULL, 0, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(g->nblocks, 4);
	CHECK_EQ_INT(g->nedges, 0);
	const uint32_t tail[] = {0, 1, 3};
	for (size_t i = 0; i < 3; i++) {
		const struct sym_block *b = &g->blocks[tail[i]];
		CHECK(last_insn(g, tail[i])->flags & SYM_INSN_TAILCALL);
		CHECK((b->flags & (SYM_BLOCK_EXIT | SYM_BLOCK_UNKNOWN)) ==
		      SYM_BLOCK_EXIT);
	}
	CHECK(g->blocks[2].flags & SYM_BLOCK_UNKNOWN);
	CHECK(!(last_insn(g, 2)->flags & SYM_INSN_TAILCALL));
	CHECK_EQ_INT(g->nunresolved, 1);
	CHECK_EQ_INT(g->ntables, 0);
	sym_cfg_free(g);
}

/*
 * A dispatch reached only through another table (a switch in a loop):
 *  1000 cmp edi, 1; 1003 ja 101f
 *  1005 lea rcx, [rip + 0xff4]       (= 2000)
 *  100c movsxd rax, [rcx + rdi*4]; 1010 add rax, rcx; 1013 jmp rax
 *  1015 movsxd rax, [rcx + rsi*4]; 1019 add rax, rcx; 101c jmp rax
 *  101e ret; 101f ret
 * Table 2000: 1015, 101e, then garbage. The second jump's base (rcx)
 * is found once the first table makes 1015's predecessor known.
 */
TEST(table_reached_through_table)
{
	const uint8_t code[] = {0x83, 0xff, 0x01, 0x77, 0x1a, 0x48, 0x8d, 0x0d,
				0xf4, 0x0f, 0x00, 0x00, 0x48, 0x63, 0x04, 0xb9,
				0x48, 0x01, 0xc8, 0xff, 0xe0, 0x48, 0x63, 0x04,
				0xb1, 0x48, 0x01, 0xc8, 0xff, 0xe0, 0xc3, 0xc3};
	uint8_t data[12];
	put32(data, (uint32_t)(0x1015 - DATA));
	put32(data + 4, (uint32_t)(0x101e - DATA));
	put32(data + 8, 0x7fffffffu);
	int rc;
	struct sym_cfg *g =
		build_bytes(code, sizeof code, data, sizeof data, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(g->ntables, 2);
	CHECK_EQ_INT(g->nunresolved, 0);
	uint32_t second = sym_cfg_block_at(g, 0x1015);
	REQUIRE(second != UINT32_MAX);
	CHECK_EQ_INT(g->blocks[second].nsucc, 2); /* itself and 101e */
	CHECK_EQ_INT(g->blocks[second].npred, 2); /* both tables */
	CHECK_EQ_INT(count_edges(g, SYM_EDGE_TABLE, -1), 4);
	sym_cfg_free(g);
}

/*
 * A computed-goto dispatch without a bounds check (CPython's): the index
 * is zero-extended from a byte, so the table has at most 256 entries.
 *  1000 movzx eax, dil; 1004 jmp [rax*8 + 0x2000]
 *  100b ret; 100c ret; 100d ret
 * Entries 0-255 go to 100b/100c, entries 256-299 to 100d.
 */
TEST(table_capped_by_byte_index)
{
	const uint8_t code[] = {0x40, 0x0f, 0xb6, 0xc7, 0xff, 0x24, 0xc5,
				0x00, 0x20, 0x00, 0x00, 0xc3, 0xc3, 0xc3};
	uint64_t data[300];
	for (int i = 0; i < 300; i++)
		data[i] = i < 256 ? 0x100b + (uint64_t)(i & 1) : 0x100d;
	int rc;
	struct sym_cfg *g = build_bytes(
		code, sizeof code, (const uint8_t *)data, sizeof data, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK_EQ_INT(g->ntables, 1);
	uint64_t t[8];
	CHECK_EQ_INT(table_targets(g, t), 2);
	CHECK(t[0] == 0x100b && t[1] == 0x100c);
	uint32_t b = sym_cfg_block_at(g, 0x100d);
	CHECK(b != UINT32_MAX && g->blocks[b].npred == 0);
	sym_cfg_free(g);
}

/* Traps and padding: `call; ud2` does not return; `ret; nop; nop; int3;
 * int3` ends in one PAD block. */
TEST(traps_and_padding)
{
	/* 1000 call 1000; 1005 ud2; 1007 ret; 1008 nop; 1009 nop;
	 * 100a int3; 100b int3 */
	const uint8_t code[] = {0xe8, 0xfb, 0xff, 0xff, 0xff, 0x0f,
				0x0b, 0xc3, 0x90, 0x90, 0xcc, 0xcc};
	int rc;
	struct sym_cfg *g = build_bytes(code, sizeof code, NULL, 0, &rc);
	REQUIRE(rc == FDO_OK);
	CHECK(g->insns[0].flags & SYM_INSN_NORETURN);
	CHECK_EQ_INT(g->nblocks, 4);
	CHECK_EQ_INT(g->nedges, 0);
	CHECK(g->blocks[0].flags & SYM_BLOCK_EXIT);
	CHECK(g->blocks[1].flags & SYM_BLOCK_EXIT); /* ud2 */
	CHECK(!(g->blocks[1].flags & SYM_BLOCK_PAD));
	CHECK(g->blocks[3].flags & SYM_BLOCK_PAD);
	CHECK(g->blocks[3].start == 0x1008 && g->blocks[3].end == 0x100c);
	sym_cfg_free(g);
}

/* Code that is not code: a jump into the middle of an instruction, a
 * range that cuts an instruction, undecodable bytes; random bytes give
 * a clean CFG or FDO_EPARSE. */
TEST(broken_code)
{
	/* 1000 jmp 1003 (inside the mov at 1002) */
	const uint8_t mid[] = {0xeb, 0x01, 0xb8, 0, 0, 0, 0, 0xc3};
	int rc;
	struct sym_cfg *g = build_bytes(mid, sizeof mid, NULL, 0, &rc);
	CHECK_EQ_INT(rc, FDO_EPARSE);
	CHECK(!g);
	g = build_bytes(mid, 4, NULL, 0, &rc); /* the mov cut short */
	CHECK_EQ_INT(rc, FDO_EPARSE);
	const uint8_t bad[] = {0x90, 0x0f, 0x04, 0xc3}; /* 0f 04: invalid */
	g = build_bytes(bad, sizeof bad, NULL, 0, &rc);
	CHECK_EQ_INT(rc, FDO_EPARSE);
	CHECK_EQ_INT(sym_cfg_build_bytes(mid, 0, CODE, NULL, 0, 0, &g),
		     FDO_ENOT_FOUND);
	srand(7);
	uint8_t buf[512];
	size_t ok = 0;
	for (int round = 0; round < 400; round++) {
		size_t len = 1 + (size_t)rand() % sizeof buf;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		/* Mostly one-byte instructions, so some rounds decode. */
		if (round % 2)
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t[]){0x90, 0xc3, 0x74, 0xeb,
						     0x50, 0xcc, 0xff, 0xe0,
						     0x58, 0x31}[buf[i] % 10];
		g = build_bytes(buf, len, buf, len, &rc);
		CHECK(rc == FDO_OK || rc == FDO_EPARSE);
		ok += rc == FDO_OK;
		sym_cfg_free(g);
	}
	CHECK(ok > 0);
}

/* A function cut short inside an instruction, through the file. */
TEST(function_cut_short)
{
	REQUIRE(setup());
	sym_code *c = open_fx(V_CLANG_PIE);
	REQUIRE(c);
	struct sym_cfg *g = build(c, V_CLANG_PIE, "sw", 0);
	REQUIRE(g);
	size_t cut = 0;
	for (size_t i = 0; i < g->ninsns && !cut; i++)
		if (g->insns[i].len > 1)
			cut = g->insns[i].addr + 1 - g->addr;
	struct sym_cfg *h = NULL;
	CHECK_EQ_INT(sym_cfg_build(c, g->addr, cut, &h), FDO_EPARSE);
	CHECK(!h);
	/* Outside any executable segment, and absurd sizes. */
	CHECK_EQ_INT(sym_cfg_build(c, 0x10, 16, &h), FDO_ENOT_FOUND);
	CHECK_EQ_INT(sym_cfg_build(c, g->addr, 0, &h), FDO_ENOT_FOUND);
	CHECK_EQ_INT(sym_cfg_build(c, g->addr, 1ull << 40, &h), FDO_ELIMIT);
	CHECK_EQ_INT(sym_cfg_build(c, g->addr, 15u << 20, &h), FDO_ENOT_FOUND);
	sym_cfg_free(g);
	sym_code_close(c);
}

/* ----------------------------------------------------- hostile ELF -- */

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(p, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	*len = b ? fread(b, 1, (size_t)n, f) : 0;
	fclose(f);
	return b;
}

/* open_bytes writes buf as a file and opens it; on success builds the
 * CFG of every function the good fixture has. */
static int open_bytes(const uint8_t *buf, size_t len, const char *name)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	if (write_file(path, buf, len))
		return -1;
	sym_code *c = NULL;
	int rc = sym_code_open(path, &c);
	if (rc == FDO_OK) {
		const struct fixture *f = &fx[V_GCC_PIE];
		for (size_t i = 0; i < f->nfuncs; i++) {
			struct sym_cfg *g = NULL;
			if (sym_cfg_build(c, f->funcs[i].addr, span(f, i),
					  &g) == FDO_OK)
				check_cfg(g);
			sym_cfg_free(g);
			(void)sym_code_noreturn(c, f->funcs[i].addr);
		}
		sym_code_close(c);
	}
	return rc;
}

TEST(code_open_errors)
{
	REQUIRE(setup());
	fdo_log_set_level(FDO_LOG_ERROR);
	sym_code *c = NULL;
	CHECK_EQ_INT(sym_code_open("/nonexistent/x", &c), FDO_EIO);
	CHECK_EQ_INT(sym_code_open(test_tmpdir(), &c), FDO_EIO);
	CHECK(!c);
	size_t len;
	uint8_t *good = read_whole(fx[V_GCC_PIE].path, &len);
	REQUIRE(good && len > 4096);
	CHECK_EQ_INT(open_bytes((const uint8_t *)"hello, world\n", 13, "txt"),
		     FDO_ENOT_ELF);
	CHECK_EQ_INT(open_bytes(good, 0, "empty"), FDO_ENOT_ELF);
	CHECK_EQ_INT(open_bytes(good, 4, "magic"), FDO_ETRUNCATED);
	CHECK_EQ_INT(open_bytes(good, 40, "hdr"), FDO_ETRUNCATED);
	/* Cut inside the first executable segment's bytes. */
	CHECK_EQ_INT(open_bytes(good, 0x1100, "cut"), FDO_ETRUNCATED);
	uint8_t *bad = malloc(len);
	REQUIRE(bad);
	memcpy(bad, good, len);
	bad[18] = 0xb7; /* e_machine = EM_AARCH64 */
	CHECK_EQ_INT(open_bytes(bad, len, "arm"), FDO_EUNSUPPORTED);
	memcpy(bad, good, len);
	bad[4] = 1; /* EI_CLASS = ELFCLASS32 */
	CHECK(open_bytes(bad, len, "class32") != FDO_OK);
	memcpy(bad, good, len);
	bad[5] = 2; /* big-endian */
	CHECK(open_bytes(bad, len, "msb") != FDO_OK);
	/* Random damage: an error or a working sym_code, never a crash. */
	srand(42);
	for (int round = 0; round < 120; round++) {
		memcpy(bad, good, len);
		for (int k = 0; k < 1 + round % 12; k++) {
			size_t at = round % 3 ? (size_t)rand() % len
					      : (size_t)rand() % 4096;
			bad[at] ^= (uint8_t)(1u << (rand() % 8));
		}
		open_bytes(bad, len, "flip");
	}
	for (size_t cut = 64; cut < len; cut += len / 9)
		open_bytes(good, cut, "cuts");
	free(bad);
	free(good);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* ---------------------------------------------- threads, throughput -- */

struct thr {
	sym_code *c;
	const struct fixture *f;
	uint64_t sig; /* a digest of every CFG built */
	int errors;
};

static uint64_t digest(const struct sym_cfg *g)
{
	uint64_t h = fdo_hash_words(g->insns, g->ninsns * sizeof *g->insns);
	h ^= fdo_hash_words(g->blocks, g->nblocks * sizeof *g->blocks);
	return fdo_mix64(
		h ^ fdo_hash_words(g->edges, g->nedges * sizeof *g->edges));
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	for (int rep = 0; rep < 20; rep++)
		for (size_t i = 0; i < t->f->nfuncs; i++) {
			struct sym_cfg *g = NULL;
			int rc = sym_cfg_build(t->c, t->f->funcs[i].addr,
					       span(t->f, i), &g);
			if (rc == FDO_OK)
				t->sig += digest(g) * (i + 1);
			else if (rc != FDO_ENOT_FOUND)
				t->errors++;
			sym_cfg_free(g);
		}
	return NULL;
}

/* Four threads on one sym_code give what one thread gives. */
TEST(threads_share_code)
{
	REQUIRE(setup());
	sym_code *c = open_fx(V_CLANG_PIE);
	REQUIRE(c);
	struct thr one = {c, &fx[V_CLANG_PIE], 0, 0}, t[4];
	thr_main(&one);
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){c, &fx[V_CLANG_PIE], 0, 0};
		REQUIRE(pthread_create(&th[i], NULL, thr_main, &t[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(t[i].errors, 0);
		CHECK(t[i].sig == one.sig);
	}
	CHECK_EQ_INT(one.errors, 0);
	sym_code_close(c);
}

/* Every function of the fixtures and of this test program: counts and
 * time, printed. No function of the fixtures may fail to decode. */
TEST(whole_binaries)
{
	REQUIRE(setup());
	const char *paths[NV + 1];
	for (int v = 0; v < NV; v++)
		paths[v] = fx[v].path;
	paths[NV] = "/proc/self/exe";
	for (int v = 0; v <= NV; v++) {
		struct fixture self;
		memset(&self, 0, sizeof self);
		const struct fixture *f = v < NV ? &fx[v] : &self;
		if (v == NV) {
			snprintf(self.path, sizeof self.path, "%s", paths[v]);
			REQUIRE(sym_elf_functions(self.path, &self.funcs,
						  &self.nfuncs) == FDO_OK);
		}
		sym_code *c = NULL;
		REQUIRE(sym_code_open(paths[v], &c) == FDO_OK);
		size_t nf = 0, nb = 0, ne = 0, ni = 0, nt = 0, nu = 0;
		size_t nparse = 0;
		uint64_t t0 = fdo_now_ns();
		for (size_t i = 0; i < f->nfuncs; i++) {
			struct sym_cfg *g = NULL;
			int rc = sym_cfg_build(c, f->funcs[i].addr, span(f, i),
					       &g);
			nparse += rc == FDO_EPARSE;
			if (rc)
				continue;
			nf++;
			nb += g->nblocks;
			ne += g->nedges;
			ni += g->ninsns;
			nt += g->ntables;
			nu += g->nunresolved;
			sym_cfg_free(g);
		}
		double ms = (double)(fdo_now_ns() - t0) / 1e6;
		printf("  %-12s %4zu functions %6zu insns %5zu blocks %5zu "
		       "edges %3zu tables %2zu unresolved %zu undecodable "
		       "%.1f ms\n",
		       v < NV ? variants[v].name : "this test", nf, ni, nb, ne,
		       nt, nu, nparse, ms);
		if (v < NV) {
			CHECK_EQ_INT(nparse, 0);
			CHECK(nt >= 1);
		}
		sym_code_close(c);
		sym_elf_functions_free(self.funcs);
	}
}
