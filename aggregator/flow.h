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

#endif
