/*
 * common/buf.h — growable arrays (fdo_grow) and a growable byte buffer for
 * building responses, JSON and text profiles. The buffer owns its bytes;
 * fdo_buf_fini frees them. On allocation failure the buffer records it
 * (b->oom) and further appends are ignored, so a builder checks once at the
 * end. Not thread safe.
 */
#ifndef FDO_BUF_H
#define FDO_BUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * fdo_grow(arr, cap, need) makes room for at least need elements in the
 * array arr (any object pointer lvalue, NULL when empty) whose capacity in
 * elements is the size_t lvalue cap: the capacity doubles, from 16, until
 * need fits, and the elements kept are unchanged. fdo_grow_zeroed also
 * zeroes the new slots. FDO_OK, or FDO_ENOMEM with arr and cap untouched
 * when realloc fails or the size in bytes would overflow.
 */
#define fdo_grow(arr, cap, need)                                               \
	fdo_grow_array(&(arr), &(cap), (need), sizeof *(arr), 0)
#define fdo_grow_zeroed(arr, cap, need)                                        \
	fdo_grow_array(&(arr), &(cap), (need), sizeof *(arr), 1)
/* arrp points at the array's pointer; elem is one element's size. */
int fdo_grow_array(void *arrp, size_t *cap, size_t need, size_t elem, int zero);

struct fdo_buf {
	char *data;
	size_t len, cap;
	int oom;
};

void fdo_buf_init(struct fdo_buf *b);
void fdo_buf_fini(struct fdo_buf *b);
void fdo_buf_reset(struct fdo_buf *b);
/* fdo_buf_reserve makes room for n more bytes; returns FDO_ENOMEM or FDO_OK. */
int fdo_buf_reserve(struct fdo_buf *b, size_t n);
void fdo_buf_append(struct fdo_buf *b, const void *p, size_t n);
void fdo_buf_puts(struct fdo_buf *b, const char *s);
void fdo_buf_putc(struct fdo_buf *b, char c);
/* fdo_buf_uleb appends v as unsigned LEB128 (a protobuf varint, LLVM's
 * ULEB128); fdo_buf_le64 as 8 little-endian bytes. */
void fdo_buf_uleb(struct fdo_buf *b, uint64_t v);
void fdo_buf_le64(struct fdo_buf *b, uint64_t v);
void fdo_buf_printf(struct fdo_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* fdo_buf_json_str appends s as a quoted JSON string (control chars escaped). */
void fdo_buf_json_str(struct fdo_buf *b, const char *s);
/* fdo_buf_cstr NUL-terminates (not counted in len) and returns data. */
const char *fdo_buf_cstr(struct fdo_buf *b);
/*
 * fdo_read_small_file reads a file of at most max bytes (a PEM, a token
 * file) into a NUL-terminated heap string the caller frees; NULL when it
 * cannot be read, is larger, or memory runs out.
 */
char *fdo_read_small_file(const char *path, size_t max);

/* fdo_buf_steal hands the bytes to the caller (free() them); resets b. */
char *fdo_buf_steal(struct fdo_buf *b, size_t *len);

/*
 * fdo_header_value finds header name (case-insensitive) in hdrs[0..len),
 * the header block of an HTTP answer as received ("Name: value" lines
 * ending in "\n" or "\r\n", the status line first; any bytes): the first
 * line that is name and a colon. Its value goes to out (cap bytes, cap
 * at least 1, always NUL-terminated): only its characters of fdod's own
 * headers (letters, digits and ".=,_-"), the others (spaces, CR, anything
 * a hostile server sends) left out, at most cap - 1 of them. Returns 1
 * when the header is there, 0 when not (out is then "").
 */
int fdo_header_value(const char *hdrs, size_t len, const char *name, char *out,
		     size_t cap);

#endif
