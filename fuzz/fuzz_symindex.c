/*
 * fuzz/fuzz_symindex.c — the persisted DWARF index (symbolizer/
 * index_file.c): a cache file is read back with mmap, checked (layout,
 * bounds, CRC-32C, every cross-reference) and then used in place by
 * lookups that do no checks of their own. A damaged file must be refused
 * (FDO_ECORRUPT) and rebuilt; an accepted one must be safe to look up in.
 *
 * Each input is used three ways:
 *   1. as is: sym_file_parse must refuse it unless its CRC is right (a
 *      corrupted index accepted with a bad checksum aborts);
 *   2. with its CRC recomputed, so the mutation reaches the layout and
 *      reference checks: if they accept it, lookups at every boundary it
 *      holds must stay inside it (ASan watches);
 *   3. through sym_index_open, as the cache file of a real ELF file
 *      (FUZZ_SYMINDEX_ELF, default: the seed binary fuzz/seeds.py builds),
 *      as is when its CRC is right, and with build-id, source signature
 *      and CRC patched to match that file: the open must succeed, by
 *      rebuilding whenever the file is refused (then replaced in the
 *      cache), and an accepted file must be used as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "symbolizer/sym_int.h"
#include "fuzz/fuzz_index.h"

#define HDR 272 /* SYM_HDR_SIZE of index_file.c */

static char elf_path[4096]; /* "" = step 3 skipped */
static char cache_dir[256];
static char cache_file[4600];
static struct sym_elf_src src;

static int crc_ok(const uint8_t *p, size_t len)
{
	uint32_t want;
	if (len < 32)
		return 0;
	memcpy(&want, p + 24, 4);
	return fdo_crc32c(0, p + 32, len - 32) == want;
}

static void fix_crc(uint8_t *p, size_t len)
{
	uint32_t crc = fdo_crc32c(0, p + 32, len - 32);
	memcpy(p + 24, &crc, 4);
}

/* Steps 1 and 2: the parser alone, on a heap copy (8-aligned, as mmap). */
static void parse_and_look(const uint8_t *data, size_t size, int fix)
{
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	if (fix && size >= 32)
		fix_crc(copy, size);
	sym_index idx;
	memset(&idx, 0, sizeof idx);
	int rc = sym_file_parse(copy, size, 0, &idx.v);
	if (rc == FDO_OK) {
		if (!crc_ok(copy, size)) {
			fprintf(stderr, "index with a bad checksum accepted\n");
			abort();
		}
		idx.mem = copy;
		idx.len = size;
		fuzz_index_lookups(&idx, 256);
	} else {
		FUZZ_CHECK(rc == FDO_ECORRUPT || rc == FDO_ESTORE_VERSION);
	}
	free(copy);
}

static void write_cache_file(const uint8_t *p, size_t len)
{
	int fd = open(cache_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0644);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, p, len) == (ssize_t)len);
	close(fd);
}

/* Step 3: the cache file of elf_path holds p; open through the cache. */
static void open_cached(const uint8_t *p, size_t len)
{
	write_cache_file(p, len);
	struct sym_view v;
	int accepted = sym_file_parse(p, len, 0, &v) == FDO_OK &&
		       v.build_id_len == src.build_id_len &&
		       !memcmp(v.build_id, src.build_id, src.build_id_len) &&
		       v.source_sig == src.sig;
	sym_index *idx = NULL;
	int rc = sym_index_open(elf_path, NULL, cache_dir, &idx);
	if (rc != FDO_OK) {
		fprintf(stderr, "open with a damaged cache file failed: %s\n",
			fdo_strerror(rc));
		abort();
	}
	if (accepted) {
		/* Used in place, as the parser accepted it. */
		FUZZ_CHECK(idx->len == len && !memcmp(idx->mem, p, len));
	} else {
		/* Rebuilt: never the refused bytes, and the file replaced. */
		FUZZ_CHECK(idx->len != len || memcmp(idx->mem, p, len));
		FUZZ_CHECK(crc_ok(idx->mem, idx->len));
		struct stat st;
		FUZZ_CHECK(stat(cache_file, &st) == 0);
		FUZZ_CHECK((size_t)st.st_size == idx->len);
	}
	fuzz_index_lookups(idx, 256);
	sym_index_close(idx);
}

static void remove_cache(void)
{
	if (!cache_dir[0])
		return;
	unlink(cache_file);
	char dir[sizeof cache_file];
	snprintf(dir, sizeof dir, "%s", cache_file);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		rmdir(dir);
	}
	rmdir(cache_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdo_log_set_level(FDO_LOG_ERROR); /* "rebuilding ..." every input */
	const char *e = getenv("FUZZ_SYMINDEX_ELF");
	if (e && *e) {
		snprintf(elf_path, sizeof elf_path, "%s", e);
	} else {
		/* build/fuzz/fuzz/fuzz_symindex -> build/fuzz/seeds/bin/ */
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n > 0) {
			exe[n] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash) {
				*slash = '\0';
				snprintf(elf_path, sizeof elf_path,
					 "%s/../seeds/bin/gcc-O2-dwarf5", exe);
			}
		}
	}
	if (elf_path[0] && access(elf_path, R_OK) != 0) {
		fprintf(stderr,
			"fuzz_symindex: %s missing (run fuzz/seeds.py or set "
			"FUZZ_SYMINDEX_ELF): cache-open step skipped\n",
			elf_path);
		elf_path[0] = '\0';
	}
	if (!elf_path[0])
		return 0;
	FUZZ_CHECK(sym_elf_probe(elf_path, NULL, &src) == FDO_OK);
	FUZZ_CHECK(src.build_id_len >= 2);
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(cache_dir, sizeof cache_dir, "%s/fdod-fuzz-symindex-%ld", base,
		 (long)getpid());
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(src.build_id, src.build_id_len, hex);
	/* The path index.c's cache_path gives. */
	snprintf(cache_file, sizeof cache_file, "%s/%.2s/%s.symidx", cache_dir,
		 hex, hex + 2);
	/* Build the real index once so its directory exists. */
	sym_index *idx = NULL;
	FUZZ_CHECK(sym_index_open(elf_path, NULL, cache_dir, &idx) == FDO_OK);
	sym_index_close(idx);
	atexit(remove_cache);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_and_look(data, size, 0);
	parse_and_look(data, size, 1);
	if (!elf_path[0])
		return 0;
	/* A bad checksum is refused before anything else (step 1 showed
	 * that): through the cache, only bytes that pass it are new. */
	if (crc_ok(data, size))
		open_cached(data, size);
	if (size >= HDR && src.build_id_len <= FDO_BUILD_ID_MAX) {
		/* Make it look like this binary's index, checksum included:
		 * only the layout and reference checks stand in the way. */
		uint8_t *p = malloc(size);
		memcpy(p, data, size);
		memcpy(p + 32, &src.sig, 8);
		p[44] = (uint8_t)src.build_id_len;
		memset(p + 48, 0, 64);
		memcpy(p + 48, src.build_id, src.build_id_len);
		fix_crc(p, size);
		open_cached(p, size);
		free(p);
	}
	return 0;
}
