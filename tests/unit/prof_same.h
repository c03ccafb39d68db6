/*
 * tests/unit/prof_same.h — do two profiles built for the compile-time
 * formats (leaves and pairs) hold the same locations, leaves and pairs,
 * to the bit? Include after test.h.
 */
#ifndef FDO_PROF_SAME_H
#define FDO_PROF_SAME_H

#include <string.h>

#include "aggregator/profile.h"

static inline int prof_same_reduced(const struct prof *a, const struct prof *b)
{
	if (a->count != b->count || a->samples != b->samples ||
	    a->hosts != b->hosts || a->nlocs != b->nlocs ||
	    a->nleaves != b->nleaves || a->npairs != b->npairs ||
	    a->nbuild_ids != b->nbuild_ids)
		return 0;
	for (size_t i = 0; i < a->nlocs; i++)
		if (a->locs[i].build_id != b->locs[i].build_id ||
		    a->locs[i].offset != b->locs[i].offset ||
		    a->locs[i].nframes != b->locs[i].nframes)
			return 0;
	for (size_t i = 0; i < a->nleaves; i++)
		if (a->leaves[i].loc != b->leaves[i].loc ||
		    a->leaves[i].count != b->leaves[i].count ||
		    a->leaves[i].samples != b->leaves[i].samples)
			return 0;
	return !a->npairs ||
	       !memcmp(a->pairs, b->pairs, a->npairs * sizeof *a->pairs);
}

#endif
