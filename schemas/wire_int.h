/*
 * schemas/wire_int.h — private to schemas/: the per-item checks that both
 * whole-batch validation (validate.c) and the text parser (text.c, line by
 * line, so that errors carry line numbers) apply, and the error-message
 * helpers they share. Every check writes a reason without a location
 * prefix; the caller prepends "line N: " or "stack 17: ".
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

#endif
