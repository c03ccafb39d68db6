/*
 * tests/unit/test.h — the unit-test harness: named cases registered with
 * TEST(name), run in order, each reported as "ok"/"FAIL"; the last line is
 * "N passed, N failed". Run one case with `./test_x NAME`.
 *
 *   TEST(parses_empty) { CHECK(parse("") == FDO_EPARSE); }
 *
 * CHECK records a failure and goes on; REQUIRE returns from the case.
 * Include this header in exactly one file per test binary.
 */
#ifndef FDO_TEST_H
#define FDO_TEST_H

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
	const char *name;
	test_fn fn;
};

#define TEST_MAX 512
static struct test_case test_cases[TEST_MAX];
static int test_count;
static int test_failed_now;

#define TEST(name)                                                             \
	static void test_##name(void);                                         \
	__attribute__((constructor)) static void test_reg_##name(void)         \
	{                                                                      \
		if (test_count < TEST_MAX)                                     \
			test_cases[test_count++] =                             \
				(struct test_case){#name, test_##name};        \
	}                                                                      \
	static void test_##name(void)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n",         \
				__FILE__, __LINE__, #cond);                    \
			test_failed_now = 1;                                   \
		}                                                              \
	} while (0)

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n",       \
				__FILE__, __LINE__, #cond);                    \
			test_failed_now = 1;                                   \
			return;                                                \
		}                                                              \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                     \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		if (a_ != b_) {                                                \
			fprintf(stderr,                                        \
				"  %s:%d: %s == %lld, want %s == %lld\n",      \
				__FILE__, __LINE__, #a, a_, #b, b_);           \
			test_failed_now = 1;                                   \
		}                                                              \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                     \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                       \
			fprintf(stderr,                                        \
				"  %s:%d: %s == \"%s\", want \"%s\"\n",        \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)",    \
				b_ ? b_ : "(null)");                           \
			test_failed_now = 1;                                   \
		}                                                              \
	} while (0)

/* A scratch directory under $TMPDIR, removed by the runner's cleanup. */
static inline const char *test_tmpdir(void)
{
	static char dir[256];
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/fdod-test-XXXXXX",
			 t ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return dir;
}

/* test_tmpdir()/name; the last 8 results stay valid. */
static inline const char *test_subdir(const char *name)
{
	static char buf[8][512];
	static int next;
	char *b = buf[next++ % 8];
	snprintf(b, sizeof buf[0], "%s/%s", test_tmpdir(), name);
	return b;
}

/* Send stderr (log lines) to file path until test_stderr_restore; 0 on
 * success. Not nested. */
static int test_stderr_saved = -1;
static inline int test_stderr_to(const char *path)
{
	fflush(stderr);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	test_stderr_saved = dup(2);
	if (fd < 0 || test_stderr_saved < 0 || dup2(fd, 2) < 0)
		return -1;
	close(fd);
	return 0;
}

static inline void test_stderr_restore(void)
{
	fflush(stderr);
	if (test_stderr_saved >= 0) {
		dup2(test_stderr_saved, 2);
		close(test_stderr_saved);
		test_stderr_saved = -1;
	}
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	for (int i = 0; i < test_count; i++) {
		if (argc > 1 && strcmp(argv[1], test_cases[i].name) != 0)
			continue;
		test_failed_now = 0;
		test_cases[i].fn();
		printf("%s %s\n", test_failed_now ? "FAIL" : "ok  ",
		       test_cases[i].name);
		fflush(stdout);
		if (test_failed_now)
			failed++;
		else
			passed++;
	}
	if (test_tmpdir()[0]) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", test_tmpdir());
	}
	/* A case name that matches nothing ran nothing: a failure, not a
	 * silent pass. */
	if (argc > 1 && passed + failed == 0) {
		fprintf(stderr, "no test case named '%s'\n", argv[1]);
		failed = 1;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
