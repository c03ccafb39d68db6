/*
 * tests/unit/emit_real.h — fixtures the emitter tests share: a real
 * program compiled in the test (two translation units, a hot global
 * function, two hot static functions named `spin`, one per file, so that
 * llvm-bolt's `spin/2` arises, and an always-inline helper for inline
 * frames), perf recordings of it, and helpers that build a struct prof in
 * memory. Include after test.h; everything is static inline.
 */
#ifndef FDO_TEST_EMIT_REAL_H
#define FDO_TEST_EMIT_REAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"

/* The program runs ~0.5 s with this argument. */
#define ER_PROG_ARG "150000000"

static const char er_src_a[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"unsigned long spin_b(unsigned long n);\n"
	"volatile unsigned long er_sink;\n"
	"static __attribute__((noinline)) unsigned long spin(unsigned long n)\n"
	"{\n"
	"\tunsigned long x = n + er_sink;\n"
	"\tfor (unsigned long i = 0; i < n; i++)\n"
	"\t\tx = x * 6364136223846793005ul + (i ^ (x >> 17));\n"
	"\treturn x;\n"
	"}\n"
	"static inline __attribute__((always_inline)) unsigned long\n"
	"mix(unsigned long x, unsigned long i)\n"
	"{\n"
	"\treturn (x % i) ^ (i << 3);\n"
	"}\n"
	"__attribute__((noinline)) unsigned long hot_global(unsigned long n)\n"
	"{\n"
	"\tunsigned long x = 1 + er_sink;\n"
	"\tfor (unsigned long i = 1; i < n; i++)\n"
	"\t\tx += mix(x, i);\n"
	"\treturn x;\n"
	"}\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tunsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;\n"
	"\tunsigned long r = 0;\n"
	"\tfor (int k = 0; k < 4; k++) {\n"
	"\t\ter_sink = k;\n"
	"\t\tr += spin(n / 4);\n"
	"\t\tr ^= hot_global(n / 32);\n"
	"\t\tr += spin_b(n / 8);\n"
	"\t}\n"
	"\tprintf(\"%lu\\n\", r);\n"
	"\treturn 0;\n"
	"}\n";

static const char er_src_b[] =
	"extern volatile unsigned long er_sink;\n"
	"static __attribute__((noinline)) unsigned long spin(unsigned long n)\n"
	"{\n"
	"\tunsigned long x = 7 + er_sink;\n"
	"\tfor (unsigned long i = 0; i < n; i++)\n"
	"\t\tx = (x ^ (x << 13)) + i * 3;\n"
	"\treturn x;\n"
	"}\n"
	"__attribute__((noinline)) unsigned long spin_b(unsigned long n)\n"
	"{\n"
	"\treturn spin(n) + 1;\n"
	"}\n";

static inline int er_run(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline int er_run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}

/* er_slurp reads a whole file (NUL-terminated); free() it. */
static inline char *er_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	while (b) {
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, cap - n - 1, f);
		if (!r)
			break;
		n += r;
	}
	fclose(f);
	if (b)
		b[n] = 0;
	if (len)
		*len = n;
	return b;
}

static inline int er_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(p, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

/* er_path: a file in the test's scratch directory. */
static inline const char *er_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", test_tmpdir(), name);
	return buf;
}

/* er_prog compiles the program once (non-PIE: sampled IPs are ELF
 * virtual addresses) and returns its path, or NULL. */
static inline const char *er_prog(void)
{
	static char prog[512];
	static int tried;
	if (tried)
		return prog[0] ? prog : NULL;
	tried = 1;
	char a[512], b[512], out[512];
	er_path(a, sizeof a, "er_a.c");
	er_path(b, sizeof b, "er_b.c");
	er_path(out, sizeof out, "prog");
	if (er_write(a, er_src_a, sizeof er_src_a - 1) ||
	    er_write(b, er_src_b, sizeof er_src_b - 1))
		return NULL;
	if (er_run("cc -O2 -g -fno-omit-frame-pointer -no-pie "
		   "-Wl,--emit-relocs -Wl,--build-id -o '%s' '%s' '%s'",
		   out, a, b) != 0)
		return NULL;
	snprintf(prog, sizeof prog, "%s", out);
	return prog;
}

/* er_record runs `perf record` on the program (extra: e.g. "-g") into
 * data. Returns 0 on success. */
static inline int er_record(const char *prog, const char *extra,
			    const char *data)
{
	return er_run("perf record -q -e cpu-clock -F 5000 %s -o '%s' -- "
		      "'%s' " ER_PROG_ARG " >/dev/null 2>&1",
		      extra, data, prog);
}

/* ------------------------------------------------- building a prof -- */

/* er_prof_begin initialises p with one build-id: that of elf (read with
 * the symbolizer), elf_path = elf. Returns 0 on success. */
static inline int er_prof_begin(struct prof *p, const char *elf)
{
	prof_init(p);
	p->binary = strdup("prog");
	p->event = strdup("cpu-clock");
	p->build_ids = calloc(1, sizeof *p->build_ids);
	if (!p->binary || !p->event || !p->build_ids)
		return -1;
	p->nbuild_ids = 1;
	struct prof_build_id *b = &p->build_ids[0];
	sym_index *idx;
	if (sym_index_open(elf, NULL, NULL, &idx))
		return -1;
	const uint8_t *id;
	size_t len;
	sym_index_build_id(idx, &id, &len);
	memcpy(b->id, id, len);
	b->len = len;
	fdo_hex_encode(id, len, b->hex);
	sym_index_close(idx);
	b->elf_path = strdup(elf);
	return len ? 0 : -1;
}

/* er_add_build_id adds a build-id without symbols (hex given). */
static inline uint32_t er_add_build_id(struct prof *p, const char *hex,
				       const char *elf)
{
	struct prof_build_id *a =
		realloc(p->build_ids, (p->nbuild_ids + 1) * sizeof *a);
	if (!a)
		abort();
	p->build_ids = a;
	struct prof_build_id *b = &a[p->nbuild_ids];
	memset(b, 0, sizeof *b);
	if (fdo_build_id_parse(hex, b->id, &b->len))
		abort();
	snprintf(b->hex, sizeof b->hex, "%s", hex);
	b->elf_path = elf ? strdup(elf) : NULL;
	return (uint32_t)p->nbuild_ids++;
}

static inline uint32_t er_add_frame(struct prof *p, const char *fn,
				    const char *file, uint32_t line,
				    uint32_t start_line)
{
	struct prof_frame *a = realloc(p->frames, (p->nframes + 1) * sizeof *a);
	if (!a)
		abort();
	p->frames = a;
	a[p->nframes] = (struct prof_frame){
		.function = prof_intern(p, fn),
		.file = file ? prof_intern(p, file) : PROF_NONE,
		.line = line,
		.start_line = start_line,
	};
	return (uint32_t)p->nframes++;
}

/* er_add_loc adds a location; its frames are the nframes last added. */
static inline uint32_t er_add_loc(struct prof *p, uint32_t bid, uint64_t vaddr,
				  uint32_t nframes)
{
	struct prof_loc *a = realloc(p->locs, (p->nlocs + 1) * sizeof *a);
	if (!a)
		abort();
	p->locs = a;
	a[p->nlocs] = (struct prof_loc){
		.build_id = bid,
		.offset = vaddr == UINT64_MAX ? 0 : vaddr & 0xfffff,
		.vaddr = vaddr,
		.first_frame = (uint32_t)(p->nframes - nframes),
		.nframes = nframes,
	};
	return (uint32_t)p->nlocs++;
}

static inline void er_add_stack(struct prof *p, const uint32_t *locs,
				uint32_t n, double count)
{
	uint32_t *sl =
		realloc(p->stack_locs, (p->nstack_locs + n) * sizeof *sl);
	struct prof_stack *st =
		realloc(p->stacks, (p->nstacks + 1) * sizeof *st);
	if (!sl || !st)
		abort();
	p->stack_locs = sl;
	p->stacks = st;
	memcpy(sl + p->nstack_locs, locs, n * sizeof *locs);
	st[p->nstacks++] = (struct prof_stack){
		.first_loc = (uint32_t)p->nstack_locs,
		.nlocs = n,
		.count = count,
		.samples = (uint64_t)(count + 0.5),
	};
	p->nstack_locs += n;
	p->count += count;
	p->samples += (uint64_t)(count + 0.5);
}

static inline void er_add_branch(struct prof *p, uint32_t bid, uint64_t from,
				 uint64_t to, double count, double mis)
{
	struct prof_branch *a =
		realloc(p->branches, (p->nbranches + 1) * sizeof *a);
	if (!a)
		abort();
	p->branches = a;
	a[p->nbranches++] = (struct prof_branch){
		.build_id = bid,
		.from = from & 0xfffff,
		.to = to & 0xfffff,
		.from_vaddr = from,
		.to_vaddr = to,
		.count = count,
		.mispredicts = mis,
	};
}

#endif
