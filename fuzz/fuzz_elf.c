/*
 * fuzz/fuzz_elf.c — an uploaded symbol file (PUT /v1/symbols, fdoctl
 * upload): storage/elfcheck.c store_elf_inspect validates it and reads its
 * build-id, then storage/symstore.c store_symbols_add_fd copies it into a
 * symbol tree (on tmpfs, removed after each input).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - an accepted file has a 1..64-byte build-id, class 32 or 64, its real
 *     size, a kind name, and qualifies for at least one slot;
 *   - adding it stores it; adding it again stores nothing (FDO_EEXISTS);
 *   - it is the same file as itself for both slots (store_elf_same_slot);
 *   - one whose compressed sections claim over the inflate limit is
 *     refused (FDO_ELIMIT) and nothing is written;
 *   - a refused file gets a reason.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "storage/storage.h"

static int input_fd = -1;
static char datadir[256];

/* At exit: the tree is empty again but for its own directories. */
static void remove_datadir(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/symbols/.incoming", datadir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/symbols", datadir);
	rmdir(path);
	rmdir(datadir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(datadir, sizeof datadir, "%s/fdod-fuzz-elf-%ld", base,
		 (long)getpid());
	atexit(remove_datadir);
	return 0;
}

static void remove_slots(const uint8_t *id, size_t len)
{
	char path[512];
	for (unsigned kind = STORE_SYM_EXECUTABLE; kind <= STORE_SYM_DEBUGINFO;
	     kind <<= 1) {
		FUZZ_CHECK(store_symbols_path(datadir, id, len, kind, path,
					      sizeof path) == FDO_OK);
		if (unlink(path) != 0)
			FUZZ_CHECK(errno == ENOENT);
	}
	/* .../symbols/<2 hex>/<hex>/<kind>: drop the two directories. */
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(path, '/');
		*slash = '\0';
		FUZZ_CHECK(rmdir(path) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_memfd_set(&input_fd, data, size, NULL);
	struct store_elf_info info;
	char why[256] = "";
	int rc = store_elf_inspect(input_fd, &info, why, sizeof why);
	if (rc != FDO_OK) {
		FUZZ_CHECK(why[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(info.build_id_len >= 1 &&
		   info.build_id_len <= FDO_BUILD_ID_MAX);
	FUZZ_CHECK(info.elf_class == 32 || info.elf_class == 64);
	FUZZ_CHECK(info.size == size);
	FUZZ_CHECK(store_elf_kind_name(&info) != NULL);

	/* A file is the same as itself for both slots. */
	for (unsigned kind = STORE_SYM_EXECUTABLE; kind <= STORE_SYM_DEBUGINFO;
	     kind <<= 1) {
		int same = 0;
		FUZZ_CHECK(store_elf_same_slot(input_fd, input_fd, kind,
					       &same) == FDO_OK &&
			   same == 1);
	}
	struct store_sym_result res;
	rc = store_symbols_add_fd(NULL, datadir, input_fd, "fuzz", &res);
	if (info.inflated > (512ull << 20)) {
		/* A compression bomb: refused before anything is written. */
		FUZZ_CHECK(rc == FDO_ELIMIT && strstr(res.why, "inflate"));
		return 0;
	}
	if (rc != FDO_OK) {
		fprintf(stderr, "inspected file not stored: %s: %s\n",
			fdo_strerror(rc), res.why);
		abort();
	}
	FUZZ_CHECK(res.slots != 0 && res.stored == res.slots);
	FUZZ_CHECK(res.elf.build_id_len == info.build_id_len &&
		   !memcmp(res.elf.build_id, info.build_id, info.build_id_len));
	rc = store_symbols_add_fd(NULL, datadir, input_fd, "fuzz", &res);
	FUZZ_CHECK(rc == FDO_EEXISTS && res.stored == 0);
	remove_slots(info.build_id, info.build_id_len);
	return 0;
}
