/*
 * tests/unit/symbolizer_index.c — the symbolizer's index: build and lookup
 * on programs compiled here, persistence, corrupt cache files, hostile
 * ELF input, the LRU cache, and a lookup-rate figure (printed, not
 * asserted).
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "symbolizer/symbolizer.h"
#include "test.h"

static char prog_a[512], prog_b[512], cache_dir[512];

static int compile(const char *name, const char *src, char *out, size_t cap)
{
	char path[600], cmd[2000];
	snprintf(path, sizeof path, "%s/%s.c", test_tmpdir(), name);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(src, f);
	fclose(f);
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
	snprintf(cmd, sizeof cmd, "cc -O2 -g -o '%s' '%s'", out, path);
	return system(cmd);
}

static const char src_a[] =
	"#include <stdio.h>\n"
	"static inline int sq(int x) { return x * x; }\n"
	"__attribute__((noinline)) int work(int n) {\n"
	"  int s = 0;\n"
	"  for (int i = 0; i < n; i++)\n"
	"    s += sq(i);\n"
	"  return s;\n"
	"}\n"
	"int main(int argc, char **argv) { printf(\"%d\\n\", work(argc)); return 0; }\n";

static const char src_b[] = "int main(void) { return 7; }\n";

static int setup(void)
{
	static int done, ok;
	if (done)
		return ok;
	done = 1;
	snprintf(cache_dir, sizeof cache_dir, "%s/cache", test_tmpdir());
	ok = compile("a", src_a, prog_a, sizeof prog_a) == 0 &&
	     compile("b", src_b, prog_b, sizeof prog_b) == 0;
	return ok;
}

/* The address of symbol name, from nm. */
static uint64_t sym_addr(const char *prog, const char *name)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "nm '%s'", prog);
	FILE *p = popen(cmd, "r");
	char line[512];
	uint64_t a = 0;
	while (p && fgets(line, sizeof line, p)) {
		unsigned long long v;
		char t, n[400];
		if (sscanf(line, "%llx %c %399s", &v, &t, n) == 3 &&
		    !strcmp(n, name))
			a = v;
	}
	if (p)
		pclose(p);
	return a;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static void check_work(sym_index *idx)
{
	uint64_t a = sym_addr(prog_a, "work");
	REQUIRE(a != 0);
	struct sym_frame fr[8];
	struct sym_symbol sym;
	size_t n = 0;
	CHECK_EQ_INT(sym_index_lookup(idx, a, fr, 8, &n, &sym), FDO_OK);
	REQUIRE(n >= 1);
	CHECK_EQ_STR(fr[n - 1].function, "work");
	CHECK(fr[0].file && ends_with(fr[0].file, "/a.c"));
	CHECK(fr[0].line >= 3 && fr[0].line <= 7);
	CHECK_EQ_INT(fr[n - 1].start_line, 3);
	CHECK(sym.found && !strcmp(sym.name, "work") && sym.addr == a);
}

TEST(build_and_lookup)
{
	REQUIRE(setup());
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(prog_a, NULL, NULL, &idx) == FDO_OK);
	check_work(idx);
	/* An address in no function: no frames, no symbol, no crash. */
	struct sym_frame fr[4];
	struct sym_symbol sym;
	size_t n = 9;
	CHECK_EQ_INT(sym_index_lookup(idx, 0x10, fr, 4, &n, &sym), FDO_OK);
	CHECK_EQ_INT(n, 0);
	CHECK(!sym.found);
	const uint8_t *id;
	size_t len;
	sym_index_build_id(idx, &id, &len);
	CHECK(len == 20);
	sym_index_close(idx);
}

TEST(inline_chain)
{
	REQUIRE(setup());
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(prog_a, NULL, NULL, &idx) == FDO_OK);
	/* Some address of work() must show sq() inlined into work(). */
	uint64_t a = sym_addr(prog_a, "work");
	int found = 0;
	for (uint64_t x = a; x < a + 256 && !found; x++) {
		struct sym_frame fr[8];
		size_t n = 0;
		sym_index_lookup(idx, x, fr, 8, &n, NULL);
		if (n == 2 && fr[0].function && !strcmp(fr[0].function, "sq") &&
		    !strcmp(fr[1].function, "work") && fr[1].line == 6)
			found = 1;
	}
	CHECK(found);
	sym_index_close(idx);
}

TEST(offset_to_vaddr)
{
	REQUIRE(setup());
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(prog_a, NULL, NULL, &idx) == FDO_OK);
	uint64_t v = 0;
	/* PIE: the first PT_LOAD maps offset 0 to vaddr 0. */
	CHECK_EQ_INT(sym_index_offset_to_vaddr(idx, 0x40, &v), FDO_OK);
	CHECK_EQ_INT(v, 0x40);
	CHECK_EQ_INT(sym_index_offset_to_vaddr(idx, 1ull << 40, &v),
		     FDO_ENOT_FOUND);
	sym_index_close(idx);
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(*buf, 1, (size_t)n, f);
	fclose(f);
	return 0;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fwrite(buf, 1, len, f);
	fclose(f);
	return 0;
}

static void cache_file_of(sym_index *idx, char *out, size_t cap)
{
	const uint8_t *id;
	size_t len;
	char hex[129];
	sym_index_build_id(idx, &id, &len);
	fdo_hex_encode(id, len, hex);
	snprintf(out, cap, "%s/%.2s/%s.symidx", cache_dir, hex, hex + 2);
}

TEST(persistence_round_trip)
{
	REQUIRE(setup());
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) == FDO_OK);
	char path[1024];
	cache_file_of(idx, path, sizeof path);
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size > 256);
	sym_index_close(idx);
	/* Second open reads the file: same answers. */
	REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) == FDO_OK);
	check_work(idx);
	sym_index_close(idx);
}

TEST(corrupt_cache_is_rebuilt)
{
	REQUIRE(setup());
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) == FDO_OK);
	char path[1024];
	cache_file_of(idx, path, sizeof path);
	sym_index_close(idx);
	uint8_t *good;
	size_t len;
	REQUIRE(read_file(path, &good, &len) == 0 && len > 300);
	size_t spots[] = {0, 9, 30, 120, 300, len / 2, len - 1};
	for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
		uint8_t *bad = malloc(len);
		memcpy(bad, good, len);
		bad[spots[i]] ^= 0x40;
		write_file(path, bad, len);
		free(bad);
		REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) ==
			FDO_OK);
		check_work(idx);
		sym_index_close(idx);
		uint8_t *now;
		size_t nlen;
		REQUIRE(read_file(path, &now, &nlen) == 0);
		CHECK(nlen == len && !memcmp(now, good, len));
		free(now);
	}
	/* Truncated and empty cache files too. */
	write_file(path, good, len / 3);
	REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) == FDO_OK);
	check_work(idx);
	sym_index_close(idx);
	write_file(path, good, 0);
	REQUIRE(sym_index_open(prog_a, NULL, cache_dir, &idx) == FDO_OK);
	check_work(idx);
	sym_index_close(idx);
	free(good);
}

/* Open a damaged copy of prog_a: an error or an index, never a crash. */
static int open_damaged(const uint8_t *buf, size_t len, const char *name)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
	write_file(path, buf, len);
	sym_index *idx = NULL;
	int err = sym_index_open(path, NULL, NULL, &idx);
	if (!err) {
		struct sym_frame fr[16];
		struct sym_symbol sym;
		size_t n;
		for (uint64_t a = 0; a < 0x3000; a += 7)
			sym_index_lookup(idx, a, fr, 16, &n, &sym);
		sym_index_close(idx);
	}
	return err;
}

TEST(hostile_elf)
{
	REQUIRE(setup());
	fdo_log_set_level(FDO_LOG_ERROR);
	uint8_t *good;
	size_t len;
	REQUIRE(read_file(prog_a, &good, &len) == 0);
	CHECK(open_damaged(good, 0, "empty") != FDO_OK);
	CHECK(open_damaged((const uint8_t *)"\177ELF", 4, "magic") != FDO_OK);
	CHECK(open_damaged(good, 40, "hdr") != FDO_OK);
	size_t cuts[] = {64, 200, 1000, 4096, len / 3, len / 2, len - 100};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
		open_damaged(good, cuts[i], "cut");
	uint8_t *bad = malloc(len);
	srand(42);
	for (int round = 0; round < 150; round++) {
		memcpy(bad, good, len);
		for (int k = 0; k < 1 + round % 16; k++) {
			size_t at = (size_t)rand() % len;
			bad[at] ^= (uint8_t)(1u << (rand() % 8));
		}
		open_damaged(bad, len, "flip");
	}
	/* Damage concentrated on the ELF header and section headers. */
	for (int round = 0; round < 100; round++) {
		memcpy(bad, good, len);
		size_t at = round % 2 ? (size_t)rand() % 64
				      : len - 1 - (size_t)rand() % 2048;
		bad[at] = (uint8_t)rand();
		open_damaged(bad, len, "hdrflip");
	}
	free(bad);
	free(good);
	CHECK_EQ_INT(sym_index_open("/nonexistent/x", NULL, NULL,
				    &(sym_index *){NULL}),
		     FDO_EIO);
	fdo_log_set_level(FDO_LOG_INFO);
}

/* Runs a shell command built from fmt; returns its exit status. */
static int shell(const char *fmt, const char *a, const char *b, const char *c)
{
	char cmd[2400];
	snprintf(cmd, sizeof cmd, fmt, a, b, c);
	return system(cmd);
}

/*
 * A stripped binary with its debug file: DWARF comes from the debug file,
 * the symbol table from the binary only (here .dynsym, which has no `work`),
 * as llvm-symbolizer-16 does; so the outermost name is the DWARF one. The
 * debug file's .symtab is not used (llvm-symbolizer-16 ignores it too).
 */
TEST(stripped_with_debug_file)
{
	REQUIRE(setup());
	char stripped[600], dbg[600];
	snprintf(stripped, sizeof stripped, "%s/a.stripped", test_tmpdir());
	snprintf(dbg, sizeof dbg, "%s/a.debug", test_tmpdir());
	REQUIRE(shell("objcopy --only-keep-debug '%s' '%s'%s", prog_a, dbg,
		      "") == 0);
	REQUIRE(shell("objcopy --strip-all '%s' '%s'%s", prog_a, stripped,
		      "") == 0);
	uint64_t a = sym_addr(prog_a, "work");
	REQUIRE(a != 0);
	sym_index *idx = NULL;
	REQUIRE(sym_index_open(stripped, dbg, NULL, &idx) == FDO_OK);
	struct sym_frame fr[8];
	struct sym_symbol sym;
	size_t n = 0;
	CHECK_EQ_INT(sym_index_lookup(idx, a, fr, 8, &n, &sym), FDO_OK);
	CHECK(n >= 1);
	if (n >= 1) {
		CHECK_EQ_STR(fr[n - 1].function, "work");
		CHECK(fr[0].file && ends_with(fr[0].file, "/a.c"));
	}
	CHECK(!sym.found);
	sym_index_close(idx);
}

/* An empty .debug_line under intact units: no line rows at all, so the
 * builder's zero-length paths run (under the sanitizers in the san build);
 * the subroutine DIEs and the symbol table still answer. */
TEST(empty_sections)
{
	REQUIRE(setup());
	char out[600];
	snprintf(out, sizeof out, "%s/a.empty", test_tmpdir());
	REQUIRE(shell("objcopy --update-section .debug_line=/dev/null%s "
		      "'%s' '%s'",
		      "", prog_a, out) == 0);
	fdo_log_set_level(FDO_LOG_ERROR);
	sym_index *idx = NULL;
	CHECK_EQ_INT(sym_index_open(out, NULL, NULL, &idx), FDO_OK);
	if (idx) {
		struct sym_frame fr[8];
		struct sym_symbol sym;
		size_t n = 0;
		uint64_t a = sym_addr(prog_a, "work");
		CHECK_EQ_INT(sym_index_lookup(idx, a, fr, 8, &n, &sym), FDO_OK);
		CHECK(sym.found && !strcmp(sym.name, "work"));
		CHECK(n >= 1 && fr[n - 1].function &&
		      !strcmp(fr[n - 1].function, "work") && !fr[0].file);
		sym_index_close(idx);
	}
	fdo_log_set_level(FDO_LOG_INFO);
}

TEST(cache_lru_eviction)
{
	REQUIRE(setup());
	sym_cache *c = NULL;
	REQUIRE(sym_cache_create(1, NULL, &c) == FDO_OK);
	sym_index *a = NULL, *a2 = NULL, *b = NULL, *tmp = NULL;
	uint8_t ida[64], idb[64];
	size_t la, lb;
	REQUIRE(sym_index_open(prog_a, NULL, NULL, &tmp) == FDO_OK);
	const uint8_t *p;
	sym_index_build_id(tmp, &p, &la);
	memcpy(ida, p, la);
	sym_index_close(tmp);
	REQUIRE(sym_index_open(prog_b, NULL, NULL, &tmp) == FDO_OK);
	sym_index_build_id(tmp, &p, &lb);
	memcpy(idb, p, lb);
	sym_index_close(tmp);

	REQUIRE(sym_cache_get(c, ida, la, prog_a, NULL, &a) == FDO_OK);
	REQUIRE(sym_cache_get(c, ida, la, prog_a, NULL, &a2) == FDO_OK);
	CHECK(a == a2); /* shared */
	REQUIRE(sym_cache_get(c, idb, lb, prog_b, NULL, &b) == FDO_OK);
	size_t count, bytes;
	uint64_t hits, misses;
	sym_cache_stats(c, &count, &bytes, &hits, &misses);
	CHECK_EQ_INT(count, 2); /* over budget, but both in use */
	CHECK_EQ_INT(hits, 1);
	CHECK_EQ_INT(misses, 2);
	check_work(a);
	sym_cache_release(c, a);
	sym_cache_stats(c, &count, NULL, NULL, NULL);
	CHECK_EQ_INT(count, 2); /* a2 still holds it */
	sym_cache_release(c, a2);
	sym_cache_stats(c, &count, NULL, NULL, NULL);
	CHECK_EQ_INT(count, 1); /* a evicted */
	sym_cache_release(c, b);
	sym_cache_stats(c, &count, &bytes, NULL, NULL);
	CHECK_EQ_INT(count, 0);
	CHECK_EQ_INT(bytes, 0);
	/* Wrong build-id for the file. */
	CHECK_EQ_INT(sym_cache_get(c, idb, lb, prog_a, NULL, &tmp), FDO_EINVAL);
	sym_cache_destroy(c);

	/* A budget that fits both keeps both. */
	REQUIRE(sym_cache_create(1 << 30, NULL, &c) == FDO_OK);
	REQUIRE(sym_cache_get(c, ida, la, prog_a, NULL, &a) == FDO_OK);
	sym_cache_release(c, a);
	REQUIRE(sym_cache_get(c, idb, lb, prog_b, NULL, &b) == FDO_OK);
	sym_cache_release(c, b);
	sym_cache_stats(c, &count, NULL, NULL, NULL);
	CHECK_EQ_INT(count, 2);
	sym_cache_destroy(c);
}

TEST(lookup_rate)
{
	/* libc with its debug file when installed, else prog_a. */
	REQUIRE(setup());
	const char *elf = "/lib/x86_64-linux-gnu/libc.so.6";
	sym_index *idx = NULL;
	if (access(elf, R_OK) != 0 ||
	    sym_index_open(elf, NULL, cache_dir, &idx) != FDO_OK) {
		elf = prog_a;
		REQUIRE(sym_index_open(elf, NULL, cache_dir, &idx) == FDO_OK);
	}
	struct sym_frame fr[64];
	struct sym_symbol sym;
	size_t n;
	uint64_t x = 88172645463325252ull, sink = 0;
	const int N = 2000000;
	uint64_t t0 = fdo_now_ns();
	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t a = 0x28000 + x % 0x170000;
		sym_index_lookup(idx, a, fr, 64, &n, &sym);
		sink += n;
	}
	uint64_t dt = fdo_now_ns() - t0;
	printf("  lookup rate on %s: %.2f M lookups/s (one thread, %d random "
	       "addresses, %.2f frames avg)\n",
	       elf, N / (dt / 1e9) / 1e6, N, (double)sink / N);
	sym_index_close(idx);
}
