/*
 * aggregator/flow.h — block execution counts from IP samples on one
 * function's control-flow graph (aggregator/flow.c): private to
 * aggregator/, shared by blocks.c and the unit test.
 */
#ifndef FDO_AGGREGATOR_FLOW_H
#define FDO_AGGREGATOR_FLOW_H

#include <stddef.h>
#include <stdint.h>

#define FLOW_ENTRY	  1u /* the function's entry */
#define FLOW_EXIT	  2u /* leaves the function (ret, tail call...) */
#define FLOW_UNKNOWN_SUCC 4u /* ends in a jump whose targets are unknown */
#define FLOW_NO_PRED	  8u /* reached in ways the graph does not show */

struct flow_block {
	double samples; /* IP samples that fell in the block */
	double size;	/* its cost per execution in sample units: the
			   instructions an execution retires */
	uint32_t flags;
	double count; /* out: inferred executions, in samples per unit of
			   size (a block of size 1 run count times gets
			   count samples on average) */
};

struct flow_edge {
	uint32_t from, to; /* block indexes */
	double count;	   /* out */
};

/*
 * flow_infer fills every block's and edge's count: the flow (entry to
 * exits, conserved at every block) that best explains the samples, as a
 * likelihood with mean count x size per block (Poisson, or with r > 0 a
 * negative binomial of size r for blocks with samples: variance mean +
 * mean^2 / r), maximised over flows by a min-cost flow on a
 * piecewise-linear approximation of it.
 * Blocks flagged NO_PRED or UNKNOWN_SUCC may take flow from, or give it to,
 * outside the graph. Returns FDO_OK, FDO_ENOMEM, FDO_EINVAL (an edge names
 * a block out of range), FDO_ELIMIT (the search gave up: work over a bound
 * proportional to the graph; counts are then the samples' density). Blocks
 * the entry cannot reach and no NO_PRED block feeds get 0. Deterministic;
 * any thread (nothing shared).
 */
int flow_infer(struct flow_block *blocks, size_t nblocks,
	       struct flow_edge *edges, size_t nedges, double r);

/*
 * flow_infer_shared is flow_infer through a process-wide memo of its
 * results, keyed by the whole input (sizes, flags, samples, edges, r;
 * compared bit for bit): the same input gives the same counts and status
 * without solving again. The memo keeps FLOW_MEMO_BYTES at most (an
 * eighth of the memory budget's builds part when that is less), least
 * recently used entries dropped first; a failed allocation only means no
 * entry. Any thread (one mutex, not held while solving).
 */
#define FLOW_MEMO_BYTES (16u << 20)
int flow_infer_shared(struct flow_block *blocks, size_t nblocks,
		      struct flow_edge *edges, size_t nedges, double r);

struct flow_memo_stats {
	size_t bytes, entries;
	uint64_t hits, misses;
};
void flow_memo_stats(struct flow_memo_stats *s);
/* flow_memo_clear empties the memo and its counters (tests). */
void flow_memo_clear(void);

#endif
