/*
 * tests/unit/storage_fixtures.h — ELF fixtures for the storage tests, built
 * by the test itself with the system compiler and binutils into
 * test_tmpdir()/fx/, once per test binary. Include after test.h.
 *
 *   exe       PIE executable with DWARF (-g)
 *   exe_nopie ET_EXEC executable with DWARF
 *   stripped  exe after `strip -g` (same build-id, no DWARF)
 *   debug     `objcopy --only-keep-debug exe` (same build-id, DWARF)
 *   dbg_nodw  `objcopy --only-keep-debug stripped` (same build-id, symtab
 *             only)
 *   lib.so    shared object with DWARF
 *   nobid     executable linked with --build-id=none
 *   gz        PIE executable with compressed DWARF (-gz), if supported
 */
#ifndef FDO_STORAGE_FIXTURES_H
#define FDO_STORAGE_FIXTURES_H

#include <sys/stat.h>

static const char *fx_dir(void)
{
	static char dir[512];
	if (!dir[0])
		snprintf(dir, sizeof dir, "%s/fx", test_tmpdir());
	return dir;
}

/* fx returns the path of fixture name, building all fixtures on first use;
 * NULL if the toolchain failed. */
static const char *fx(const char *name)
{
	static int built = -1;
	static char path[16][600];
	static int next;
	if (built < 0) {
		char cmd[4096];
		snprintf(
		    cmd, sizeof cmd,
		    "set -e; mkdir -p '%s'; cd '%s';"
		    "printf 'int work(int x){return x*3+1;}\\n"
		    "int main(int c,char**v){(void)v;return work(c)&1;}\\n'"
		    " > prog.c;"
		    "printf 'int lib_fn(int x){return x+42;}\\n' > lib.c;"
		    "cc -g -O1 -fPIE -pie -Wl,--build-id=sha1 -o exe prog.c;"
		    "cc -g -O1 -fno-pie -no-pie -Wl,--build-id=sha1 "
		    "-o exe_nopie prog.c;"
		    "strip -g -o stripped exe;"
		    "objcopy --only-keep-debug exe debug;"
		    "objcopy --only-keep-debug stripped dbg_nodw;"
		    "cc -g -O1 -fPIC -shared -Wl,--build-id=sha1 "
		    "-o lib.so lib.c;"
		    "cc -O1 -Wl,--build-id=none -o nobid prog.c;"
		    "cc -g -gz=zlib -O1 -Wl,--build-id=sha1 -o gz prog.c "
		    "2>/dev/null || cp exe gz",
		    fx_dir(), fx_dir());
		built = system(cmd) == 0;
		if (!built)
			fprintf(stderr, "  building ELF fixtures failed\n");
	}
	if (!built)
		return NULL;
	char *p = path[next++ % 16];
	snprintf(p, 600, "%s/%s", fx_dir(), name);
	return p;
}

/* fx_write writes len bytes of data into a new file fx_dir()/name. */
static const char *fx_write(const char *name, const void *data, size_t len)
{
	static char path[8][600];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, 600, "%s/%s", fx_dir(), name);
	mkdir(fx_dir(), 0755);
	FILE *f = fopen(p, "wb");
	if (!f)
		return NULL;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	return p;
}

/* fx_read reads a whole (small) file; caller frees. */
static uint8_t *fx_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

#endif
