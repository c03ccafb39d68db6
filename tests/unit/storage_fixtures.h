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
 *   gnuz      exe with GNU-style compressed DWARF (.zdebug_*)
 *   real      an executable with DWARF and build-id 0123..4567 (20 bytes)
 *   fake      another program with DWARF and the same build-id as real
 *
 * fx_bomb writes a copy of a fixture whose compressed .debug_info claims
 * another inflated size (a "compression bomb": what libelf would allocate).
 */
#ifndef FDO_STORAGE_FIXTURES_H
#define FDO_STORAGE_FIXTURES_H

#include <elf.h>
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
			"2>/dev/null || cp exe gz;"
			"objcopy --compress-debug-sections=zlib-gnu exe gnuz;"
			"printf 'int other(int x){return x*7+5;}\\n"
			"int main(int c,char**v){(void)v;return other(c)&3;}\\n'"
			" > fake.c;"
			"cc -g -O1 -Wl,--build-id=0x0123456789abcdef0123456789abcdef"
			"01234567 -o real prog.c;"
			"cc -g -O1 -Wl,--build-id=0x0123456789abcdef0123456789abcdef"
			"01234567 -o fake fake.c",
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

/*
 * fx_bomb copies fixture src (ELF64 little-endian) to fx_dir()/name with
 * the inflated size its compressed .debug_info (SHF_COMPRESSED: ch_size)
 * or .zdebug_info ("ZLIB" + big-endian size) claims set to claim.
 * Returns the copy's path, or NULL.
 */
__attribute__((unused)) static const char *
fx_bomb(const char *src, const char *name, uint64_t claim)
{
	size_t len;
	uint8_t *b = src ? fx_read(src, &len) : NULL;
	if (!b || len < sizeof(Elf64_Ehdr))
		goto fail;
	Elf64_Ehdr eh;
	memcpy(&eh, b, sizeof eh);
	if (eh.e_shoff + (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > len ||
	    eh.e_shstrndx >= eh.e_shnum)
		goto fail;
	Elf64_Shdr strs;
	memcpy(&strs, b + eh.e_shoff + eh.e_shstrndx * sizeof strs,
	       sizeof strs);
	for (unsigned i = 1; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, b + eh.e_shoff + i * sizeof sh, sizeof sh);
		const char *n = (const char *)b + strs.sh_offset + sh.sh_name;
		if ((sh.sh_flags & SHF_COMPRESSED) &&
		    !strcmp(n, ".debug_info")) {
			Elf64_Chdr ch;
			memcpy(&ch, b + sh.sh_offset, sizeof ch);
			ch.ch_size = claim;
			memcpy(b + sh.sh_offset, &ch, sizeof ch);
			break;
		}
		if (!strcmp(n, ".zdebug_info") &&
		    !memcmp(b + sh.sh_offset, "ZLIB", 4)) {
			for (int k = 0; k < 8; k++)
				b[sh.sh_offset + 4 + k] =
					(uint8_t)(claim >> (56 - 8 * k));
			break;
		}
		if (i + 1 == eh.e_shnum)
			goto fail;
	}
	const char *out = fx_write(name, b, len);
	free(b);
	return out;
fail:
	free(b);
	return NULL;
}

#endif
