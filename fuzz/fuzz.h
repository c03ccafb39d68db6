/*
 * fuzz/fuzz.h — what the libFuzzer targets of fuzz/ share: a check that
 * aborts (so libFuzzer records the input as a crash) when a property the
 * code promises does not hold, and an in-memory file for code that wants a
 * path or an fd.
 *
 * A target is one fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput; it is
 * built by `make fuzz-build` into build/fuzz/fuzz/fuzz_<name>, seeded by
 * fuzz/seeds.py and run by fuzz/run.sh (docs/development.md "Fuzzing"). Targets run one
 * input at a time on one thread; their static state is reused across inputs.
 */
#ifndef FDO_FUZZ_H
#define FDO_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* FUZZ_CHECK: a broken promise is a crash (libFuzzer saves the input). */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * fuzz_memfd_set makes *fd (created on first use, kept for the process) an
 * in-memory file holding exactly data[0..size), and writes its path
 * ("/proc/self/fd/N") into path (capacity 64) when path is not NULL.
 * Aborts if the kernel refuses: that is the harness's problem, not an input's.
 */
static inline void fuzz_memfd_set(int *fd, const uint8_t *data, size_t size,
				  char *path)
{
	if (*fd < 0 && (*fd = memfd_create("fuzz-input", MFD_CLOEXEC)) < 0) {
		perror("memfd_create");
		abort();
	}
	if (ftruncate(*fd, 0) != 0) {
		perror("ftruncate");
		abort();
	}
	size_t done = 0;
	while (done < size) {
		ssize_t w = pwrite(*fd, data + done, size - done, (off_t)done);
		if (w <= 0) {
			perror("pwrite");
			abort();
		}
		done += (size_t)w;
	}
	if (path)
		snprintf(path, 64, "/proc/self/fd/%d", *fd);
}

#endif
