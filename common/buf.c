/* common/buf.c — growable arrays and byte buffer (see buf.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/common.h"

int fdo_grow_array(void *arrp, size_t *cap, size_t need, size_t elem, int zero)
{
	if (need <= *cap)
		return FDO_OK;
	size_t c = *cap ? *cap : 16;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return FDO_ENOMEM;
		c *= 2;
	}
	if (c > SIZE_MAX / elem)
		return FDO_ENOMEM;
	/*
	 * The array's pointer is read and written through memcpy: arrp is the
	 * address of a T *, which a void * lvalue may not alias.
	 */
	void *old, *a;
	memcpy(&old, arrp, sizeof old);
	if (!(a = realloc(old, c * elem)))
		return FDO_ENOMEM;
	if (zero)
		memset((char *)a + *cap * elem, 0, (c - *cap) * elem);
	memcpy(arrp, &a, sizeof a);
	*cap = c;
	return FDO_OK;
}

void fdo_buf_init(struct fdo_buf *b)
{
	memset(b, 0, sizeof *b);
}

void fdo_buf_fini(struct fdo_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void fdo_buf_reset(struct fdo_buf *b)
{
	b->len = 0;
}

int fdo_buf_reserve(struct fdo_buf *b, size_t n)
{
	if (b->oom)
		return FDO_ENOMEM;
	if (b->len + n + 1 <= b->cap)
		return FDO_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return FDO_ENOMEM;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p) {
		b->oom = 1;
		return FDO_ENOMEM;
	}
	b->data = p;
	b->cap = cap;
	return FDO_OK;
}

void fdo_buf_append(struct fdo_buf *b, const void *p, size_t n)
{
	if (!n)
		return; /* p may be NULL then: memcpy must not see it */
	if (fdo_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void fdo_buf_puts(struct fdo_buf *b, const char *s)
{
	fdo_buf_append(b, s, strlen(s));
}

void fdo_buf_putc(struct fdo_buf *b, char c)
{
	if (fdo_buf_reserve(b, 1))
		return;
	b->data[b->len++] = c;
}

void fdo_buf_uleb(struct fdo_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	fdo_buf_append(b, tmp, n);
}

void fdo_buf_le64(struct fdo_buf *b, uint64_t v)
{
	uint8_t tmp[8];
	for (int i = 0; i < 8; i++)
		tmp[i] = (uint8_t)(v >> 8 * i);
	fdo_buf_append(b, tmp, 8);
}

void fdo_buf_printf(struct fdo_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || fdo_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void fdo_buf_json_str(struct fdo_buf *b, const char *s)
{
	fdo_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		switch (*p) {
		case '"':
			fdo_buf_puts(b, "\\\"");
			break;
		case '\\':
			fdo_buf_puts(b, "\\\\");
			break;
		case '\n':
			fdo_buf_puts(b, "\\n");
			break;
		case '\t':
			fdo_buf_puts(b, "\\t");
			break;
		case '\r':
			fdo_buf_puts(b, "\\r");
			break;
		default:
			if (*p < 0x20)
				fdo_buf_printf(b, "\\u%04x", *p);
			else
				fdo_buf_putc(b, (char)*p);
		}
	}
	fdo_buf_putc(b, '"');
}

const char *fdo_buf_cstr(struct fdo_buf *b)
{
	if (fdo_buf_reserve(b, 0))
		return "";
	b->data[b->len] = 0;
	return b->data;
}

char *fdo_buf_steal(struct fdo_buf *b, size_t *len)
{
	char *p = b->data;
	if (len)
		*len = b->len;
	memset(b, 0, sizeof *b);
	return p;
}

char *fdo_read_small_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct fdo_buf b;
	fdo_buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= max)
		fdo_buf_append(&b, chunk, n);
	int bad = ferror(f) || b.len > max;
	fclose(f);
	fdo_buf_cstr(&b);
	if (bad || b.oom) {
		fdo_buf_fini(&b);
		return NULL;
	}
	return fdo_buf_steal(&b, NULL);
}

int fdo_header_value(const char *hdrs, size_t len, const char *name, char *out,
		     size_t cap)
{
	size_t nl = strlen(name);
	const char *p = hdrs, *end = hdrs + len;
	out[0] = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' &&
		    !strncasecmp(p, name, nl)) {
			size_t n = 0;
			for (p += nl + 1; p < eol && n + 1 < cap; p++)
				if (isalnum((unsigned char)*p) ||
				    (*p && strchr(".=,_-", *p)))
					out[n++] = *p;
			out[n] = 0;
			return 1;
		}
		if (eol == end)
			break;
		p = eol + 1;
	}
	return 0;
}
