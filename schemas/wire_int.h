/*
 * schemas/wire_int.h — private to schemas/, what its files share:
 *   - the error-message helpers (wire_errf, wire_err_prefix);
 *   - the per-item checks that both whole-batch validation (validate.c)
 *     and the text parser (text.c, line by line, so that errors carry
 *     line numbers) apply; every check writes a reason without a
 *     location prefix, the caller prepends "line N: " or "stack 17: ";
 *   - the bounded protobuf decode (codec.c), which pprof.c uses too;
 *   - the importers' batch layout and builders (batchbuild.c), for
 *     perf.c, pprof.c and otlp.c.
 */
#ifndef FDO_SCHEMAS_WIRE_INT_H
#define FDO_SCHEMAS_WIRE_INT_H

#include "schemas/schemas.h"

/* wire_errf formats a reason into err (if any) and returns code. */
int wire_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* wire_err_prefix puts a formatted prefix in front of the reason in err. */
void wire_err_prefix(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * wire_check_text: s (NULL counts as "") is valid UTF-8 without control
 * characters, at most max bytes, and not empty unless allow_empty.
 * what names the field in the reason.
 */
int wire_check_text(const char *what, const char *s, size_t max,
		    int allow_empty, char *err, size_t errlen);
int wire_check_binary(const char *s, const struct wire_limits *lim, char *err,
		      size_t errlen);
int wire_check_label(const Fdod__Label *l, const struct wire_limits *lim,
		     char *err, size_t errlen);
int wire_check_period(uint64_t period, const struct wire_limits *lim, char *err,
		      size_t errlen);
int wire_check_weight(double weight, const struct wire_limits *lim, char *err,
		      size_t errlen);
int wire_check_time(uint64_t start, uint64_t end, const struct wire_limits *lim,
		    char *err, size_t errlen);
/* Build-id length, start < limit, path. Not cross-mapping rules. */
int wire_check_mapping(const Fdod__Mapping *m, const struct wire_limits *lim,
		       char *err, size_t errlen);
/* Count and depth; not the batch-wide max_frames. */
int wire_check_stack(const Fdod__Stack *s, const struct wire_limits *lim,
		     char *err, size_t errlen);
int wire_check_branch(const Fdod__Branch *b, const struct wire_limits *lim,
		      char *err, size_t errlen);

/*
 * wire_decode_bounded unpacks a message of type desc from buf with
 * protobuf-c, refusing input over max_bytes and allocations past
 * max_alloc bytes in all (a budget allocator, malloc underneath: free the
 * result with protobuf_c_message_free_unpacked(m, NULL)). Returns FDO_OK,
 * FDO_ELIMIT, FDO_EPARSE (malformed bytes) or FDO_ENOMEM.
 */
int wire_decode_bounded(const ProtobufCMessageDescriptor *desc,
			const uint8_t *buf, size_t len, size_t max_bytes,
			size_t max_alloc, ProtobufCMessage **out);

/*
 * The importers' batch layout (schemas/batchbuild.c): mapping k covers
 * [(k+1) << WIRE_FILE_SHIFT, (k+2) << WIRE_FILE_SHIFT) at file offset 0,
 * so a frame at file offset off of file k travels as wire_file_addr(k,
 * off); off must stay below 1 << WIRE_FILE_SHIFT.
 */
#define WIRE_FILE_SHIFT 40
static inline uint64_t wire_file_addr(uint32_t k, uint64_t off)
{
	return ((uint64_t)k + 1) << WIRE_FILE_SHIFT | off;
}

/*
 * wire_batch_start makes an importer's batch: schema version, weight 1,
 * event and host copied; the rest unset. *out is set even on FDO_ENOMEM
 * (a missing string), for wire_batch_free; NULL when nothing was made.
 */
int wire_batch_start(const char *event, const char *host,
		     Fdod__SampleBatch **out);

/*
 * wire_batch_add_file appends mapping number b->n_mappings in that layout
 * (b->mappings must have room for it): build-id bid[0..len), path, left
 * empty when validation would refuse it (it is informational). FDO_OK or
 * FDO_ENOMEM (the batch stays freeable with wire_batch_free).
 */
int wire_batch_add_file(Fdod__SampleBatch *b, const uint8_t *bid, size_t len,
			const char *path, const struct wire_limits *lim);

/*
 * wire_batch_add_stack appends a stack of n addresses (copied) seen count
 * times (b->stacks must have room for it). FDO_OK or FDO_ENOMEM (the
 * batch stays freeable).
 */
int wire_batch_add_stack(Fdod__SampleBatch *b, const uint64_t *addrs, size_t n,
			 uint64_t count);

/*
 * wire_batch_add_labels sets b->labels (unset before) from n "key=value"
 * strings, each split at its first '='; validation checks them later.
 * FDO_OK or FDO_ENOMEM (the batch stays freeable).
 */
int wire_batch_add_labels(Fdod__SampleBatch *b, const char *const *kv,
			  size_t n);

/*
 * wire_build_id_hex reads a GNU build-id written in hex, either case (as
 * pprof's Mapping.build_id and OTLP's process.executable.build_id.gnu
 * carry it), from s[0..n) (not NUL-terminated; a NUL inside is refused)
 * into out[0..*len). FDO_OK or FDO_EBAD_BUILD_ID.
 */
int wire_build_id_hex(const uint8_t *s, size_t n, uint8_t *out, size_t *len);

#endif
