/*
 * tests/unit/emit_with.h — run an emitter with options written as text
 * ("line_count=sum,head=stacks"), as the profile route would set them.
 * A text that does not parse is returned as its error (FDO_EINVAL), the
 * way a request with a bad option is refused before any emitter runs.
 */
#ifndef FDO_TEST_EMIT_WITH_H
#define FDO_TEST_EMIT_WITH_H

#include "aggregator/profile.h"

static inline int
emit_with(int (*emit)(const struct prof *, const struct prof_opts *,
		      struct fdo_buf *),
	  const struct prof *p, const char *text, struct fdo_buf *out)
{
	struct prof_opts o;
	char err[256];
	int rc = prof_opts_parse(&o, text, err, sizeof err);
	return rc ? rc : emit(p, &o, out);
}

#endif
