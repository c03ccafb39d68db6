/*
 * aggregator/stale.h — a compile-time profile matched onto another
 * release of its binary (a pull's for_build_id=; aggregator/stale.c owns
 * the concept and says how).
 */
#ifndef FDO_AGGREGATOR_STALE_H
#define FDO_AGGREGATOR_STALE_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "symbolizer/symbolizer.h"

/* The release the profile is for: its build-id and its uploaded files
 * (the executable, for its code; DWARF in it or in debug_path). */
struct agg_stale_release {
	const uint8_t *id;
	size_t len;
	const char *elf_path;	/* required */
	const char *debug_path; /* NULL: the DWARF is in elf_path */
	/* What the pull holds of the memory budget's builds part already
	 * (its profile): matching grows past the part's cap only when no one
	 * else holds any of it (aggregator/stale.c mem_take). */
	uint64_t held;
};

/*
 * What became of the profile, in the profile's counts (the model's line
 * counts, nested instances included: samples, or samples' worth of block
 * counts) and in functions. Every count lands in exactly one of the four.
 */
struct agg_stale_stats {
	double fresh, matched, renamed, dropped;
	size_t nfresh, nmatched, nrenamed, ndropped;
};

/*
 * agg_stale_emit writes p in format em (llvm or gcc) as it would be
 * written for the release target: p's inline tree (prof_model_build) is
 * matched function by function onto target (aggregator/stale.c), then
 * written. is_release[i] (per p->build_ids) is 1 for a build-id of the
 * same binary as target (an older release: compared), 0 for another
 * file of the stacks (a shared library: kept as it is, counted fresh);
 * NULL: every build-id is a release. cache: where the build-ids' indexes
 * are opened (NULL: opened for the call alone).
 * Returns FDO_OK (st filled), FDO_EUNSUPPORTED (a probe-based profile or
 * a format other than llvm and gcc), FDO_EDWARF (the target has no
 * line table) and the errors of opening target's files, FDO_EBUSY (the
 * memory budget's builds part, held by others too, has no room for the
 * matching now) or FDO_ELIMIT (it has none even with the pull alone in
 * it), or FDO_ENOMEM;
 * err says which in words fit for an answer. p gains strings (the new
 * names of renamed functions); otherwise it is only read.
 */
int agg_stale_emit(struct prof *p, const struct prof_opts *o,
		   const struct prof_emitter *em, sym_cache *cache,
		   const struct agg_stale_release *target,
		   const uint8_t *is_release, struct agg_stale_stats *st,
		   struct fdo_buf *out, char *err, size_t errlen);

#endif
