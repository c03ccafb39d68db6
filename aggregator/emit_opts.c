/*
 * aggregator/emit_opts.c — the emitters' options: one table (name, values,
 * default, which formats read it, help) from which the profile route's
 * query parsing, `fdoctl pull`'s flags and the emitters' typed struct all
 * come. A request is parsed once into struct prof_opts; emitters read its
 * fields and never parse text.
 *
 * Workload: a handful of options per profile request.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "common/opts.h"

#define OFF(f) offsetof(struct prof_opts, f)

/* One option a row (tests/ingest/test_fdoctl.py reads them). */
/* clang-format off */
const struct prof_opt_def prof_opt_defs[] = {
    {"counts", PROF_OPT_ENUM, OFF(counts), {"samples", "blocks"}, "blocks",
     "llvm,gcc,bolt",
     "body counts from block execution counts inferred on the binary's "
     "control-flow graph (blocks), or from the samples on each line "
     "(samples: no disassembly)"},
    {"line_count", PROF_OPT_ENUM, OFF(line_count), {"sum", "max", "mean"},
     "mean", "llvm,gcc",
     "counts=samples: a line's count from its addresses' samples"},
    {"head", PROF_OPT_ENUM, OFF(head), {"stacks", "entry"}, "entry",
     "llvm,gcc",
     "head samples: the function entry's count, or the calls seen in "
     "stacks"},
    {"balance", PROF_OPT_BOOL, OFF(balance), {0}, "1", "llvm,gcc,bolt",
     "counts=blocks: put every function in one unit, so that calls and "
     "entries agree (a function's instructions cost more or less time "
     "than another's)"},
    {"spread", PROF_OPT_UINT, OFF(spread), {0}, "3", "llvm,gcc,bolt",
     "balance=1: no function's unit scaled by more than this factor (or "
     "its inverse)"},
    {"dispersion", PROF_OPT_COUNT, OFF(dispersion), {0}, "0",
     "llvm,gcc,bolt",
     "counts=blocks: how far a block's samples stray from its executions "
     "beyond chance (the size r of a negative binomial: lower trusts a "
     "block's sample density less; 0: Poisson)"},
    {"zeros", PROF_OPT_BOOL, OFF(zeros), {0}, "1", "llvm,gcc",
     "counts=blocks: also write the lines of sampled functions that ran 0 "
     "times"},
    {"min_share", PROF_OPT_DOUBLE, OFF(min_share), {0}, "0",
     "llvm,gcc,folded,pprof",
     "leave out functions (llvm, gcc) or stacks (folded, pprof) with less "
     "than this share (0..1) of the profile"},
    {"max_stacks", PROF_OPT_COUNT, OFF(max_stacks), {0}, "20000",
     "folded,pprof",
     "keep only the heaviest N stacks (0: every stack); the rest are "
     "counted in the X-Fdod-Samples total but not written"},
    {"encoding", PROF_OPT_ENUM, OFF(encoding), {"extbinary", "text"},
     "extbinary", "llvm",
     "LLVM's binary form (which can carry the profile symbol list) or its "
     "text form; clang and llvm-profdata read both"},
    {"symbol_list", PROF_OPT_BOOL, OFF(symbol_list), {0}, "1", "llvm",
     "encoding=extbinary: list the binary's functions, so that clang "
     "builds those without samples as cold (new functions are left alone)"},
    {"discriminators", PROF_OPT_BOOL, OFF(discriminators), {0}, "0", "gcc",
     "keep discriminators in gcc positions (gcc 12 ignores them)"},
    {"llvm_discriminators", PROF_OPT_BOOL, OFF(llvm_discriminators), {0},
     "0", "gcc",
     "with discriminators=1: decode clang's -fdebug-info-for-profiling "
     "encoding"},
    {"period", PROF_OPT_UINT, OFF(period), {0}, "1000000", "pprof",
     "the event's units per sample (cpu-clock: nanoseconds)"},
    {0},
};
/* clang-format on */

const struct prof_opt_def *prof_opt_find(const char *name)
{
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

int prof_opt_value_index(const struct prof_opt_def *d, const char *value)
{
	for (int i = 0; i < PROF_OPT_MAX_VALUES && d->values[i]; i++)
		if (!strcmp(value, d->values[i]))
			return i;
	return -1;
}

/* "a, b or c" into buf. */
static void value_list(const struct prof_opt_def *d, char *buf, size_t cap)
{
	buf[0] = 0;
	for (int i = 0; i < PROF_OPT_MAX_VALUES && d->values[i]; i++) {
		size_t n = strlen(buf);
		int last = i + 1 == PROF_OPT_MAX_VALUES || !d->values[i + 1];
		snprintf(buf + n, cap - n, "%s%s",
			 !i	? ""
			 : last ? " or "
				: ", ",
			 d->values[i]);
	}
}

int prof_opts_set(struct prof_opts *o, const char *name, const char *value,
		  char *err, size_t errlen)
{
	const struct prof_opt_def *d = prof_opt_find(name);
	if (!d) {
		snprintf(err, errlen, "unknown option '%.64s'", name);
		return FDO_ENOT_FOUND;
	}
	char *base = (char *)o + d->offset;
	char *end;
	switch (d->type) {
	case PROF_OPT_ENUM: {
		int i = prof_opt_value_index(d, value);
		if (i < 0) {
			char list[128];
			value_list(d, list, sizeof list);
			snprintf(err, errlen, "%s is %s", d->name, list);
			return FDO_EINVAL;
		}
		*(int *)base = i;
		return FDO_OK;
	}
	case PROF_OPT_BOOL:
		if (strcmp(value, "0") && strcmp(value, "1")) {
			snprintf(err, errlen, "%s is 0 or 1", d->name);
			return FDO_EINVAL;
		}
		*(int *)base = value[0] == '1';
		return FDO_OK;
	case PROF_OPT_DOUBLE: {
		double v = strtod(value, &end);
		/* A share: 0 <= v <= 1. */
		if (end == value || *end || !(v >= 0 && v <= 1)) {
			snprintf(err, errlen, "bad %s '%.64s' (0..1)", d->name,
				 value);
			return FDO_EINVAL;
		}
		*(double *)base = v;
		return FDO_OK;
	}
	case PROF_OPT_UINT:
	case PROF_OPT_COUNT: {
		uint64_t v;
		if (fdo_parse_uint(value, &v) ||
		    (v == 0 && d->type == PROF_OPT_UINT)) {
			snprintf(err, errlen,
				 "bad %s '%.64s' (a whole number%s)", d->name,
				 value,
				 d->type == PROF_OPT_UINT ? " above 0" : "");
			return FDO_EINVAL;
		}
		*(uint64_t *)base = v;
		return FDO_OK;
	}
	}
	snprintf(err, errlen, "%s: unknown option type", d->name);
	return FDO_EINVAL;
}

void prof_opts_init(struct prof_opts *o)
{
	char err[128];
	memset(o, 0, sizeof *o);
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		int rc = prof_opts_set(o, d->name, d->def, err, sizeof err);
		(void)rc;
		assert(rc == FDO_OK); /* the table's own defaults parse */
	}
}

int prof_opts_parse(struct prof_opts *o, const char *text, char *err,
		    size_t errlen)
{
	prof_opts_init(o);
	err[0] = 0;
	if (!text)
		return FDO_OK;
	for (const char *s = text; *s;) {
		size_t n = strcspn(s, ",;& \t\n");
		if (n) {
			char item[256];
			if (n >= sizeof item) {
				snprintf(err, errlen,
					 "option '%.32s...' is too "
					 "long",
					 s);
				return FDO_EINVAL;
			}
			memcpy(item, s, n);
			item[n] = 0;
			char *eq = strchr(item, '=');
			if (!eq) {
				snprintf(err, errlen,
					 "option '%s' has no "
					 "value (name=value)",
					 item);
				return FDO_EINVAL;
			}
			*eq = 0;
			if (!strcmp(item, "build_id")) {
				/* A selector the route takes apart; here the
				 * bolt emitter's build-id ("" for none). */
				o->build_id_len = 0;
				if (eq[1] &&
				    fdo_build_id_parse(eq + 1, o->build_id,
						       &o->build_id_len)) {
					snprintf(err, errlen,
						 "build_id '%.32s'"
						 " is not lowercase hex",
						 eq + 1);
					return FDO_EINVAL;
				}
				s += n;
				if (*s)
					s++;
				continue;
			}
			int rc = prof_opts_set(o, item, eq + 1, err, errlen);
			if (rc)
				return rc == FDO_ENOT_FOUND ? FDO_EINVAL : rc;
		}
		s += n;
		if (*s)
			s++;
	}
	return FDO_OK;
}
