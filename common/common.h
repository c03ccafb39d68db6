/*
 * common/common.h — the helpers every part of fdod may use: the project's
 * one error list, logging, hex codecs for build-ids, and big-endian
 * integer codecs for keys. Depends on nothing but libc.
 */
#ifndef FDO_COMMON_H
#define FDO_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The project's error list, 0 = OK. Written once; yields the enum and the
 * messages. Numbers are never reused (they travel in Ack.status).
 * Errors from LMDB, nng and libdw are translated at the edge of their folder,
 * with the library's own text kept in the log line.
 */
#define FDO_ERRORS(X)                                                          \
	X(OK, 0, "success")                                                    \
	X(NOMEM, 1, "out of memory")                                           \
	X(IO, 2, "I/O error")                                                  \
	X(INVAL, 3, "invalid argument")                                        \
	X(PARSE, 4, "malformed input")                                         \
	X(LIMIT, 5, "input exceeds a limit")                                   \
	X(NOT_FOUND, 6, "not found")                                           \
	X(EXISTS, 7, "already present")                                        \
	X(NOT_ELF, 8, "not an ELF file")                                       \
	X(TRUNCATED, 9, "truncated file")                                      \
	X(NO_BUILD_ID, 10, "ELF file has no GNU build-id note")                \
	X(BAD_BUILD_ID, 11, "build-id must be 1-64 bytes (2-128 hex digits)")  \
	X(STORE, 12, "storage error")                                          \
	X(STORE_FULL, 13, "store reached its maximum size")                    \
	X(STORE_VERSION, 14, "store has a version this fdod does not know")    \
	X(DWARF, 15, "cannot read DWARF")                                      \
	X(CORRUPT, 16, "corrupt data (checksum or layout mismatch)")           \
	X(UNSUPPORTED, 17, "unsupported")                                      \
	X(BUSY, 18, "busy, retry later")                                       \
	X(TRANSPORT, 19, "transport error")                                    \
	X(DENIED, 20, "permission denied")                                     \
	X(NOSPACE, 21, "no space left on the disk")                            \
	X(CONFLICT, 22, "conflicts with what is already stored")               \
	X(TIME_RANGE, 23, "time outside the range fdod accepts")

enum fdo_err {
#define FDO_ERR_ENUM(name, num, msg) FDO_E##name = num,
	FDO_ERRORS(FDO_ERR_ENUM)
#undef FDO_ERR_ENUM
		FDO_OK = FDO_EOK,
};

/* fdo_strerror returns a static message for err; never NULL. */
const char *fdo_strerror(int err);
/* fdo_errname returns the symbolic name ("NOT_ELF") for err; never NULL. */
const char *fdo_errname(int err);

/* Logging: one line per event on stderr, with time and level. Thread safe. */
enum fdo_log_level { FDO_LOG_DEBUG, FDO_LOG_INFO, FDO_LOG_WARN, FDO_LOG_ERROR };
void fdo_log_set_level(enum fdo_log_level level);
void fdo_log(enum fdo_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * fdo_log_escape copies n bytes of in to out (capacity cap, not
 * NUL-terminated) as fdo_log writes them: control bytes and backslashes
 * escaped (\n \t \r \\ \xNN); stops before an escape that would not fit.
 * Returns the bytes written.
 */
size_t fdo_log_escape(const char *in, size_t n, char *out, size_t cap);
#define fdo_debug(...) fdo_log(FDO_LOG_DEBUG, __VA_ARGS__)
#define fdo_info(...)  fdo_log(FDO_LOG_INFO, __VA_ARGS__)
#define fdo_warn(...)  fdo_log(FDO_LOG_WARN, __VA_ARGS__)
#define fdo_error(...) fdo_log(FDO_LOG_ERROR, __VA_ARGS__)

/* Build-ids: 1..64 bytes; text form is lowercase hex. A build-id is a
 * file's GNU build-id note, or, for frames an OpenTelemetry sender sent
 * with no GNU build-id, the file's OTel file id (16 bytes: storage.h,
 * store_file_id; docs/ingest.md) until an upload tells which GNU
 * build-id that file has. */
#define FDO_BUILD_ID_MAX 64
#define FDO_FILE_ID_SIZE 16
/*
 * fdo_hex_encode writes 2*len lowercase hex digits and a NUL into out
 * (capacity 2*len+1).
 */
void fdo_hex_encode(const uint8_t *bytes, size_t len, char *out);
/*
 * fdo_build_id_parse decodes a build-id in text form: 2..128 lowercase hex
 * digits, even count. Returns FDO_OK with *len set, or FDO_EBAD_BUILD_ID.
 * Nothing else is accepted, so the text is safe to put in a path.
 */
int fdo_build_id_parse(const char *text, uint8_t out[FDO_BUILD_ID_MAX],
		       size_t *len);

/* fdo_hex_value: the value of one hex digit (either case), or -1. */
static inline int fdo_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Big-endian codecs: keys sort numerically in LMDB's byte order. */
static inline void fdo_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}
static inline void fdo_put_be64(uint8_t *p, uint64_t v)
{
	fdo_put_be32(p, (uint32_t)(v >> 32));
	fdo_put_be32(p + 4, (uint32_t)v);
}
static inline uint32_t fdo_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t fdo_get_be64(const uint8_t *p)
{
	return (uint64_t)fdo_get_be32(p) << 32 | fdo_get_be32(p + 4);
}

/* fdo_mix64: the splitmix64 finalizer, a strong 64-bit mixer. */
static inline uint64_t fdo_mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

/*
 * fdo_hash_words hashes len bytes a word at a time (fast for the short
 * fixed-size keys of in-memory tables). Not for anything stored on disk.
 */
static inline uint64_t fdo_hash_words(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint64_t h = 0x243f6a8885a308d3ull ^ len;
	while (len >= 8) {
		uint64_t w;
		__builtin_memcpy(&w, c, 8);
		h = fdo_mix64(h ^ w);
		c += 8;
		len -= 8;
	}
	uint64_t w = 0;
	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)c[i] << (8 * i);
	return fdo_mix64(h ^ w);
}

/* fdo_crc32c: CRC-32C (Castagnoli) of buf, continuing from crc (start 0);
 * the SSE4.2 instruction where the CPU has it. */
uint32_t fdo_crc32c(uint32_t crc, const void *buf, size_t len);
/* fdo_crc32c_portable: the same, table-driven (tests compare the two). */
uint32_t fdo_crc32c_portable(uint32_t crc, const void *buf, size_t len);

/*
 * fdo_client_token writes the API token a client sends into out: the first
 * line of file when file is given, else $FDOD_TOKEN, else "" (no token).
 * Returns FDO_OK or FDO_EIO (file unreadable, logged).
 */
int fdo_client_token(const char *file, char *out, size_t cap);

/* fdo_sha256: the SHA-256 digest of data (content addressing). */
void fdo_sha256(const void *data, size_t len, uint8_t out[32]);

/* fdo_now_ns: CLOCK_MONOTONIC in nanoseconds. */
uint64_t fdo_now_ns(void);

#endif
