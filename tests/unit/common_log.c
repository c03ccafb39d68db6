/*
 * Tests for common/log.c: one line per event, and (issue 21, finding 5)
 * text from outside cannot forge a log line or reach a terminal raw.
 */
#include <fcntl.h>
#include <unistd.h>

#include "common/common.h"
#include "tests/unit/test.h"

/* Run fdo_log with stderr captured; the output goes to out. */
static size_t capture(char *out, size_t cap, const char *fmt, const char *arg)
{
	int p[2];
	if (pipe(p))
		return 0;
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	fdo_log(FDO_LOG_WARN, fmt, arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	ssize_t n = read(p[0], out, cap - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

TEST(escape_rules)
{
	char out[64];
	const char in[] = "a\nb\tc\\d\x1b[31m\x7f\r";
	size_t n = fdo_log_escape(in, sizeof in - 1, out, sizeof out);
	out[n] = 0;
	CHECK_EQ_STR(out, "a\\nb\\tc\\\\d\\x1b[31m\\x7f\\r");
	/* An escape that does not fit is left out whole. */
	n = fdo_log_escape("ab\n", 3, out, 3);
	CHECK_EQ_INT(n, 2);
	/* UTF-8 and printable bytes pass unchanged. */
	n = fdo_log_escape("caf\xc3\xa9", 5, out, sizeof out);
	out[n] = 0;
	CHECK_EQ_STR(out, "caf\xc3\xa9");
}

TEST(a_decoded_newline_cannot_forge_a_line)
{
	char out[4096];
	size_t n = capture(out, sizeof out, "http: GET %s refused",
			   "/v1/binaries/x\n2026-01-01T00:00:00.000Z info  "
			   "fdod: forged\x1b]0;title\x07");
	REQUIRE(n > 0);
	int lines = 0;
	for (size_t i = 0; i < n; i++) {
		lines += out[i] == '\n';
		CHECK((unsigned char)out[i] >= 0x20 || out[i] == '\n');
	}
	CHECK_EQ_INT(lines, 1);
	CHECK(out[n - 1] == '\n');
	CHECK(strstr(out, "x\\n2026-01-01") != NULL);
	CHECK(strstr(out, "\\x1b]0;title\\x07") != NULL);
}

TEST(long_messages_are_cut_to_one_line)
{
	char big[5000], out[8192];
	memset(big, '\n', sizeof big - 1);
	big[sizeof big - 1] = 0;
	size_t n = capture(out, sizeof out, "%s", big);
	REQUIRE(n > 0);
	int lines = 0;
	for (size_t i = 0; i < n; i++)
		lines += out[i] == '\n';
	CHECK_EQ_INT(lines, 1);
}
