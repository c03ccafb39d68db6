/*
 * fuzz/fuzz_elf.c — an uploaded symbol file (PUT /v1/symbols, fdoctl
 * upload): storage/elfcheck.c store_elf_inspect validates it and reads its
 * build-id, then storage/symstore.c store_symbols_add_fd copies it into a
 * symbol tree (on tmpfs, removed after each input). The same bytes go to
 * the note reader uploads and the agent share (common/elfnote.c): as a
 * mapped file (fdo_elf_build_id_fd, what fdo-agent reads) and as a raw
 * note area in both byte orders and alignments (fdo_elf_note_build_id).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - a build-id either reader returns is 1..64 bytes found in the input;
 *     the note walk's other results are its documented errors;
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

#include "common/elfnote.h"
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

/* A build-id a reader returned: 1..64 bytes that are in the input. */
static int id_from_input(const uint8_t *data, size_t size, const uint8_t *id,
			 size_t len)
{
	return len >= 1 && len <= FDO_BUILD_ID_MAX &&
	       memmem(data, size, id, len) != NULL;
}

/* The shared note reader on the input: as a file, and as notes. */
static void note_reader(const uint8_t *data, size_t size)
{
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len = 0;
	int rc = fdo_elf_build_id_fd(input_fd, id, &len);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ENOT_ELF || rc == FDO_ETRUNCATED ||
		   rc == FDO_ENO_BUILD_ID || rc == FDO_EBAD_BUILD_ID);
	if (rc == FDO_OK)
		FUZZ_CHECK(id_from_input(data, size, id, len));
	for (int be = 0; be <= 1; be++)
		for (uint64_t align = 4; align <= 8; align += 4) {
			len = 0;
			rc = fdo_elf_note_build_id(data, size, be, align, id,
						   &len);
			FUZZ_CHECK(rc == FDO_OK || rc == FDO_ETRUNCATED ||
				   rc == FDO_ENO_BUILD_ID ||
				   (rc == FDO_EBAD_BUILD_ID &&
				    (len == 0 || len > FDO_BUILD_ID_MAX)));
			if (rc == FDO_OK)
				FUZZ_CHECK(id_from_input(data, size, id, len));
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_memfd_set(&input_fd, data, size, NULL);
	note_reader(data, size);
	struct store_elf_info info;
	char why[256] = "";
	int rc = store_elf_inspect(input_fd, &info, why, sizeof why);
	if (rc != FDO_OK) {
		FUZZ_CHECK(why[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(id_from_input(data, size, info.build_id, info.build_id_len));
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
