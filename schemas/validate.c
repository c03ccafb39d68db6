/*
 * schemas/validate.c — the documented bounds of a SampleBatch and the check
 * that enforces them. Every ingest path (nng, fdoctl push, tests) runs a
 * batch through wire_batch_validate before anything is stored, so the rest
 * of fdod may rely on these rules. Workload: once per batch, linear in its
 * size; the only allocation is a scratch array to sort the mappings.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/wire_int.h"

const struct wire_limits wire_limits_default = {
	.max_message_bytes = 16u << 20,
	.max_decoded_bytes = 64u << 20,
	.max_text_bytes = 64u << 20,
	.max_stacks = 262144,
	.max_stack_depth = 1024,
	.max_frames = 4194304,
	.max_mappings = 8192,
	.max_branches = 1048576,
	.max_labels = 32,
	.max_label_key_len = 64,
	.max_label_value_len = 256,
	.max_labels_bytes = 2000,
	.max_name_len = 256,
	.max_path_len = 4096,
	.max_count = 1000000000u,
	.max_period = 1000000000000u,
	.max_weight = 1e6,
	.max_window_seconds = 86400,
};

int wire_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

void wire_err_prefix(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	char prefix[128], rest[512];
	snprintf(rest, sizeof rest, "%s", err);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s%s", prefix, rest);
}

/*
 * utf8_bad returns the offset of the first byte that is not part of a
 * well-formed UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF),
 * or of the first control character; len if there is none.
 */
static size_t utf8_bad(const unsigned char *s, size_t len, int *is_control)
{
	size_t i = 0;
	*is_control = 0;
	while (i < len) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f) {
				*is_control = 1;
				return i;
			}
			i++;
			continue;
		}
		size_t n;
		unsigned lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return i;
		if (len - i <= n)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		i += n + 1;
	}
	return len;
}

int wire_check_text(const char *what, const char *s, size_t max,
		    int allow_empty, char *err, size_t errlen)
{
	size_t len = s ? strlen(s) : 0;
	if (len == 0 && !allow_empty)
		return wire_errf(err, errlen, FDO_EINVAL, "%s is missing",
				 what);
	if (len > max)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%s is %zu bytes, limit %zu", what, len, max);
	int control;
	size_t bad = utf8_bad((const unsigned char *)s, len, &control);
	if (bad < len)
		return wire_errf(
			err, errlen, FDO_EINVAL, "%s: %s at byte %zu", what,
			control ? "control character" : "invalid UTF-8", bad);
	return FDO_OK;
}

/* Characters of binary names and label keys: safe in URLs, paths, k=v. */
static int name_char(unsigned char c, int plus)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
	       (plus && c == '+');
}

int wire_check_binary(const char *s, const struct wire_limits *lim, char *err,
		      size_t errlen)
{
	int rc =
		wire_check_text("binary", s, lim->max_name_len, 0, err, errlen);
	if (rc)
		return rc;
	if (s[0] == '.')
		return wire_errf(err, errlen, FDO_EINVAL,
				 "binary must not start with '.'");
	for (size_t i = 0; s[i]; i++)
		if (!name_char((unsigned char)s[i], 1))
			return wire_errf(err, errlen, FDO_EINVAL,
					 "binary: byte %zu is not one of "
					 "[A-Za-z0-9_.+-]",
					 i);
	return FDO_OK;
}

int wire_check_label(const Fdod__Label *l, const struct wire_limits *lim,
		     char *err, size_t errlen)
{
	int rc = wire_check_text("label key", l->key, lim->max_label_key_len, 0,
				 err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; l->key[i]; i++)
		if (!name_char((unsigned char)l->key[i], 0))
			return wire_errf(err, errlen, FDO_EINVAL,
					 "label key: byte %zu is not one of "
					 "[A-Za-z0-9_.-]",
					 i);
	rc = wire_check_text("label value", l->value, lim->max_label_value_len,
			     0, err, errlen);
	if (rc)
		return rc;
	if (strchr(l->value, ','))
		return wire_errf(err, errlen, FDO_EINVAL,
				 "label value must not contain ','");
	return FDO_OK;
}

int wire_check_period(uint64_t period, const struct wire_limits *lim, char *err,
		      size_t errlen)
{
	if (period == 0)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "period is missing (must be >= 1)");
	if (period > lim->max_period)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "period %llu exceeds limit %llu",
				 (unsigned long long)period,
				 (unsigned long long)lim->max_period);
	return FDO_OK;
}

int wire_check_weight(double weight, const struct wire_limits *lim, char *err,
		      size_t errlen)
{
	uint64_t q;
	/* The limit first: a huge weight is over the limit, not "rounding
	 * to 0" (quantizing refuses it too, for another reason). */
	if (isfinite(weight) && weight > lim->max_weight)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "weight %g exceeds limit %g", weight,
				 lim->max_weight);
	int rc = wire_weight_quantize(weight, &q);
	if (rc == FDO_EINVAL)
		return wire_errf(err, errlen, rc,
				 "weight %g must be finite and > 0", weight);
	if (rc)
		return wire_errf(err, errlen, rc,
				 "weight %g rounds to 0 at scale 1e-6", weight);
	return FDO_OK;
}

int wire_check_time(uint64_t start, uint64_t end, const struct wire_limits *lim,
		    char *err, size_t errlen)
{
	if (end == 0)
		return wire_errf(err, errlen, FDO_EINVAL, "time is missing");
	if (start > end)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "time: start %llu is after end %llu",
				 (unsigned long long)start,
				 (unsigned long long)end);
	if (end - start > lim->max_window_seconds)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "time: window of %llu s exceeds limit %llu s",
				 (unsigned long long)(end - start),
				 (unsigned long long)lim->max_window_seconds);
	return FDO_OK;
}

int wire_check_mapping(const Fdod__Mapping *m, const struct wire_limits *lim,
		       char *err, size_t errlen)
{
	if (m->build_id.len < 1 || m->build_id.len > FDO_BUILD_ID_MAX ||
	    !m->build_id.data)
		return wire_errf(err, errlen, FDO_EBAD_BUILD_ID,
				 "build-id is %zu bytes, must be 1..%d",
				 m->build_id.len, FDO_BUILD_ID_MAX);
	if (m->start >= m->limit)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "start %llx is not below limit %llx",
				 (unsigned long long)m->start,
				 (unsigned long long)m->limit);
	return wire_check_text("path", m->path, lim->max_path_len, 1, err,
			       errlen);
}

int wire_check_stack(const Fdod__Stack *s, const struct wire_limits *lim,
		     char *err, size_t errlen)
{
	if (s->count == 0)
		return wire_errf(err, errlen, FDO_EINVAL, "count is 0");
	if (s->count > lim->max_count)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "count %llu exceeds limit %llu",
				 (unsigned long long)s->count,
				 (unsigned long long)lim->max_count);
	if (s->n_addrs == 0 || !s->addrs)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "stack has no address");
	if (s->n_addrs > lim->max_stack_depth)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%zu addresses, limit %zu", s->n_addrs,
				 lim->max_stack_depth);
	return FDO_OK;
}

int wire_check_branch(const Fdod__Branch *b, const struct wire_limits *lim,
		      char *err, size_t errlen)
{
	if (b->count == 0)
		return wire_errf(err, errlen, FDO_EINVAL, "count is 0");
	if (b->count > lim->max_count)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "count %llu exceeds limit %llu",
				 (unsigned long long)b->count,
				 (unsigned long long)lim->max_count);
	if (b->mispredicts > b->count)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "mispredicts %llu exceed count %llu",
				 (unsigned long long)b->mispredicts,
				 (unsigned long long)b->count);
	return FDO_OK;
}

static int cmp_mapping_start(const void *a, const void *b)
{
	const Fdod__Mapping *x = *(const Fdod__Mapping *const *)a;
	const Fdod__Mapping *y = *(const Fdod__Mapping *const *)b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_mapping_index(const void *a, const void *b)
{
	const Fdod__Mapping *x = *(const Fdod__Mapping *const *)a;
	const Fdod__Mapping *y = *(const Fdod__Mapping *const *)b;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Unique indices and disjoint ranges, in O(n log n). */
static int check_mapping_set(const Fdod__SampleBatch *b, char *err,
			     size_t errlen)
{
	size_t n = b->n_mappings;
	if (n < 2)
		return FDO_OK;
	const Fdod__Mapping **v = malloc(n * sizeof *v);
	if (!v)
		return wire_errf(err, errlen, FDO_ENOMEM, "out of memory");
	memcpy(v, b->mappings, n * sizeof *v);
	int rc = FDO_OK;
	qsort(v, n, sizeof *v, cmp_mapping_index);
	for (size_t i = 1; i < n && !rc; i++)
		if (v[i]->index == v[i - 1]->index)
			rc = wire_errf(err, errlen, FDO_EINVAL,
				       "mapping index %u appears twice",
				       v[i]->index);
	qsort(v, n, sizeof *v, cmp_mapping_start);
	for (size_t i = 1; i < n && !rc; i++)
		if (v[i]->start < v[i - 1]->limit)
			rc = wire_errf(err, errlen, FDO_EINVAL,
				       "mapping %u overlaps mapping %u",
				       v[i]->index, v[i - 1]->index);
	free(v);
	return rc;
}

int wire_batch_validate(const Fdod__SampleBatch *b,
			const struct wire_limits *lim, char *err, size_t errlen)
{
	int rc;
	if (!lim)
		lim = &wire_limits_default;
	if (b->schema_version > WIRE_SCHEMA_VERSION)
		return wire_errf(err, errlen, FDO_EUNSUPPORTED,
				 "schema_version %u is newer than %u",
				 b->schema_version, WIRE_SCHEMA_VERSION);
	if ((rc = wire_check_text("agent", b->agent_id, lim->max_name_len, 0,
				  err, errlen)))
		return rc;
	if (b->seq == 0)
		return wire_errf(err, errlen, FDO_EINVAL,
				 "seq is missing (must be >= 1)");
	if ((rc = wire_check_text("host", b->host, lim->max_name_len, 0, err,
				  errlen)) ||
	    (rc = wire_check_binary(b->binary, lim, err, errlen)) ||
	    (rc = wire_check_text("event", b->event, lim->max_name_len, 0, err,
				  errlen)) ||
	    (rc = wire_check_period(b->period, lim, err, errlen)) ||
	    (rc = wire_check_weight(b->weight, lim, err, errlen)) ||
	    (rc = wire_check_time(b->time_start, b->time_end, lim, err,
				  errlen)))
		return rc;

	if (b->n_labels > lim->max_labels)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%zu labels, limit %zu", b->n_labels,
				 lim->max_labels);
	size_t label_bytes = 0;
	for (size_t i = 0; i < b->n_labels; i++) {
		if (!b->labels || !b->labels[i])
			return wire_errf(err, errlen, FDO_EINVAL,
					 "label %zu is missing", i);
		if ((rc = wire_check_label(b->labels[i], lim, err, errlen))) {
			wire_err_prefix(err, errlen, "label %zu: ", i);
			return rc;
		}
		/* The label set is stored as "k=v,k=v": bound it whole. */
		label_bytes += strlen(b->labels[i]->key) +
			       strlen(b->labels[i]->value) + 2;
		if (label_bytes > lim->max_labels_bytes)
			return wire_errf(err, errlen, FDO_ELIMIT,
					 "labels take more than %zu bytes as "
					 "key=value pairs",
					 lim->max_labels_bytes);
		/* max_labels is small: quadratic is cheaper than a set. */
		for (size_t k = 0; k < i; k++)
			if (strcmp(b->labels[k]->key, b->labels[i]->key) == 0)
				return wire_errf(err, errlen, FDO_EINVAL,
						 "label key '%s' appears twice",
						 b->labels[i]->key);
	}

	if (b->n_mappings > lim->max_mappings)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%zu mappings, limit %zu", b->n_mappings,
				 lim->max_mappings);
	for (size_t i = 0; i < b->n_mappings; i++) {
		if (!b->mappings || !b->mappings[i])
			return wire_errf(err, errlen, FDO_EINVAL,
					 "mapping %zu is missing", i);
		if ((rc = wire_check_mapping(b->mappings[i], lim, err,
					     errlen))) {
			wire_err_prefix(err, errlen,
					"mapping %u: ", b->mappings[i]->index);
			return rc;
		}
	}
	if ((rc = check_mapping_set(b, err, errlen)))
		return rc;

	if (b->n_stacks > lim->max_stacks)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%zu stacks, limit %zu", b->n_stacks,
				 lim->max_stacks);
	size_t frames = 0;
	for (size_t i = 0; i < b->n_stacks; i++) {
		if (!b->stacks || !b->stacks[i])
			return wire_errf(err, errlen, FDO_EINVAL,
					 "stack %zu is missing", i);
		if ((rc = wire_check_stack(b->stacks[i], lim, err, errlen))) {
			wire_err_prefix(err, errlen, "stack %zu: ", i);
			return rc;
		}
		frames += b->stacks[i]->n_addrs;
		if (frames > lim->max_frames)
			return wire_errf(err, errlen, FDO_ELIMIT,
					 "stack %zu: more than %zu addresses "
					 "in all stacks",
					 i, lim->max_frames);
	}

	if (b->n_branches > lim->max_branches)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "%zu branches, limit %zu", b->n_branches,
				 lim->max_branches);
	for (size_t i = 0; i < b->n_branches; i++) {
		if (!b->branches || !b->branches[i])
			return wire_errf(err, errlen, FDO_EINVAL,
					 "branch %zu is missing", i);
		if ((rc = wire_check_branch(b->branches[i], lim, err,
					    errlen))) {
			wire_err_prefix(err, errlen, "branch %zu: ", i);
			return rc;
		}
	}
	return FDO_OK;
}

int wire_binary_name_check(const char *name, char *err, size_t errlen)
{
	return wire_check_binary(name, &wire_limits_default, err, errlen);
}
