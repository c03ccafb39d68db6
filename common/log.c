/*
 * common/log.c — one line per event on stderr: UTC time, level, message.
 * A line is formatted into a local buffer and written with one write(2), so
 * lines from different threads never interleave. Messages carry text from
 * outside (decoded paths, names, reasons): every control byte (below 0x20,
 * and 0x7f) and every backslash is written escaped (\n, \t, \xNN, \\), so a
 * client can neither forge a log line nor send escape sequences to a
 * terminal, and an escaped line still reads back unambiguously.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

static enum fdo_log_level log_min = FDO_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void fdo_log_set_level(enum fdo_log_level level)
{
	log_min = level;
}

size_t fdo_log_escape(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		char e[4];
		size_t k = 0;
		if (c == '\n' || c == '\t' || c == '\r' || c == '\\') {
			e[k++] = '\\';
			e[k++] = c == '\n'   ? 'n'
				 : c == '\t' ? 't'
				 : c == '\r' ? 'r'
					     : '\\';
		} else if (c < 0x20 || c == 0x7f) {
			e[k++] = '\\';
			e[k++] = 'x';
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		} else {
			e[k++] = (char)c;
		}
		if (o + k > cap)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	return o;
}

void fdo_log(enum fdo_log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 level_names[level]);
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t mlen = m < 0		       ? 0
		      : (size_t)m < sizeof msg ? (size_t)m
					       : sizeof msg - 1;
	size_t len = fdo_log_escape(msg, mlen, line + n, sizeof line - n - 1);
	len += (size_t)n;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
