/*
 * aggregator/blocks.h — block execution counts of a profile's functions
 * (aggregator/blocks.c: inferred from samples, or exact from branch
 * records read by aggregator/fdata.c): private to aggregator/, called by
 * the profile builder, `fdoctl emit` and the tests.
 */
#ifndef FDO_AGGREGATOR_BLOCKS_H
#define FDO_AGGREGATOR_BLOCKS_H

#include "aggregator/profile.h"
#include "symbolizer/symbolizer.h"

/*
 * agg_blocks_build fills p->funcs, blocks, insns and edges (which must be
 * empty): for every build-id i of p with an executable (elf_path) and an
 * open index indexes[i] (NULL: that build-id is skipped), the functions
 * where its stacks' leaves fell, their control-flow graphs from the
 * executable's code, the execution counts inferred from the leaf counts
 * (aggregator/flow.c), and every instruction's inline chain from the
 * index. With spread >= 1, the functions of a build-id are then put in
 * one unit by their calls (blocks.c balance_units), no function's scale
 * beyond 1/spread..spread; 0 leaves each in its own. A function whose code
 * cannot be decoded is listed with its error status and no blocks (the
 * emitters then place its samples by line).
 * Returns FDO_OK (also when nothing could be built) or FDO_ENOMEM; on
 * FDO_ENOMEM the arrays are emptied. Blocks on file I/O; any thread (p is
 * the caller's).
 */
int agg_blocks_build(struct prof *p, sym_index *const *indexes, double spread,
		     double dispersion);

/* One branch record with an exact count (llvm-bolt's instrumentation, or
 * LBR): ELF virtual addresses of the branch (or call) and its target. */
struct agg_branch {
	uint64_t from, to;
	double count;
};

/*
 * agg_blocks_exact fills p->funcs, blocks, insns and edges (which must be
 * empty) for build-id bid from exact counts instead of samples: every
 * function of its executable that a record of x[0..nx) leads into (x is
 * sorted in place), each block counted as the records leading to its
 * start (calls into the entry block included), each edge as the records
 * from its source block to its target, and the pseudo probes of its
 * blocks when the executable has them (a probe-based profile, as from
 * a pull of its samples). idx gives the inline chains.
 * Returns FDO_OK, FDO_EINVAL (no executable for bid, arrays not empty),
 * the symbolizer's errors reading the executable, FDO_ENOMEM.
 */
int agg_blocks_exact(struct prof *p, uint32_t bid, sym_index *idx,
		     struct agg_branch *x, size_t nx);

/*
 * agg_fdata_parse reads llvm-bolt branch records (aggregator/fdata.c: the
 * .fdata `llvm-bolt -instrument` writes) of the executable whose function
 * symbols are funcs[0..nfuncs) (sym_elf_functions) into *out (free()),
 * one entry per record with both ends in the executable, plus entries
 * from outside (from = 0) into a function's start. Returns FDO_OK, or
 * FDO_EPARSE / FDO_EINVAL / FDO_ELIMIT with err naming the line, or
 * FDO_ENOMEM. Untrusted text; any thread.
 */
int agg_fdata_parse(const char *text, size_t len, const struct sym_func *funcs,
		    size_t nfuncs, struct agg_branch **out, size_t *nout,
		    char *err, size_t errlen);

#endif
