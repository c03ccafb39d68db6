/*
 * fuzz/fuzz_dwarf.c — an uploaded binary or debug file as the symbolizer
 * reads it: sym_elf_probe (build-id, .gnu_debuglink), sym_index_open building
 * the address index from the ELF symbol table, PT_LOADs and DWARF
 * (elf_file.c, dwarf_build.c, line_table.c; no cache directory), lookups
 * in the index, and sym_elf_functions (funcs.c, for BOLT profiles).
 * The input is an in-memory file named by its /proc/self/fd path.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *   - the builder never produces an index its own validator refuses
 *     (sym_index_open's FDO_ECORRUPT);
 *   - lookups stay inside the index and report depths they filled;
 *   - sym_elf_functions returns its functions sorted by address and
 *     sym_func_find finds each one's address (sized, or followed by
 *     another function).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "symbolizer/sym_int.h"
#include "fuzz/fuzz_index.h"

static int input_fd = -1;

static void functions(const char *path)
{
	struct sym_func *f = NULL;
	size_t n = 0;
	if (sym_elf_functions(path, &f, &n) != FDO_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(f[i].name != NULL);
		(void)strlen(f[i].name);
		if (i)
			FUZZ_CHECK(f[i - 1].addr <= f[i].addr);
		/* Its own address is covered, unless it is a size-0 symbol
		 * with no function after it (it then covers nothing). */
		if (i < 64) {
			const struct sym_func *hit =
				sym_func_find(f, n, f[i].addr);
			if (f[i].size || f[n - 1].addr > f[i].addr)
				FUZZ_CHECK(hit && hit->addr == f[i].addr);
		}
	}
	sym_elf_functions_free(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdo_log_set_level(FDO_LOG_ERROR); /* "DWARF unusable" is expected */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	fuzz_memfd_set(&input_fd, data, size, path);

	/* Where its DWARF would come from (build-id tree, debuglink). */
	struct sym_elf_src src;
	(void)sym_elf_probe(path, NULL, &src);

	/* The input is its own debug file: never search the system. */
	sym_index *idx = NULL;
	int rc = sym_index_open(path, path, NULL, &idx);
	FUZZ_CHECK(rc != FDO_ECORRUPT);
	if (rc == FDO_OK) {
		fuzz_index_lookups(idx, 512);
		sym_index_close(idx);
	}
	functions(path);
	return 0;
}
