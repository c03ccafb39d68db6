/*
 * common/mem.h — fdod's memory budget (--memory-budget): the parts that
 * hold memory in proportion to load, what each holds now and its cap.
 *
 * Workload: the counters move on every batch (ingest), merge and build;
 * /metrics reads them a few times a minute. So they are process-wide
 * relaxed atomics updated where memory is taken and given back, never a
 * scan, and reading one is a load.
 *
 * Two halves: the plan (fdo_mem_plan: which cap each part gets from the
 * budget and the caps given explicitly), pure and called once at start;
 * and the accounting (fdo_mem_take/give/set, fdo_mem_used, fdo_mem_cap),
 * any thread, never blocking. A part that keeps its own count (the DWARF
 * cache, the inflate budget, HTTP bodies, the profile cache) is read
 * from its owner by /metrics; its cap here is the one planned for it.
 */
#ifndef FDO_MEM_H
#define FDO_MEM_H

#include <stddef.h>
#include <stdint.h>

enum fdo_mem_part {
	FDO_MEM_INGEST,	  /* batches in the pipeline: prepared, queued
			     for the log, acknowledged but not merged */
	FDO_MEM_MERGE,	  /* the merger's buffers (kept from merge to
			     merge) and its sets of known stacks */
	FDO_MEM_LMDB,	  /* dirty pages of a merge's write transaction
			     (estimated; LMDB keeps them for reuse) */
	FDO_MEM_DWARF,	  /* the DWARF index cache (--dwarf-cache-size) */
	FDO_MEM_INFLATE,  /* inflated debug sections (--debug-inflate-total) */
	FDO_MEM_HTTP,	  /* request bodies (--http-body-memory) */
	FDO_MEM_PROFILES, /* built profiles kept (--profile-cache-size) */
	FDO_MEM_BUILDS,	  /* profiles being made for a pull or a publish
			     (measured once built) */
	FDO_MEM_PARTS
};

/* The part's name in /metrics and in messages ("ingest", "lmdb", ...). */
const char *fdo_mem_name(enum fdo_mem_part part);

/*
 * fdo_mem_plan divides budget bytes among the parts. explicit_caps[p] is
 * the cap given for part p (0: none, derive it); caps[p] receives every
 * part's cap: an explicit one as given, the others the rest of the budget
 * (budget less the explicit caps) shared in proportion to their weights
 * (fdo_mem_weight), and never less than min_caps[p] (min_caps may be NULL).
 * Returns 0 when the caps fit the budget; otherwise -1 with err saying
 * which caps exceed it and by how much (the caps are filled all the same:
 * the derived ones get their share of the whole budget). Pure.
 */
int fdo_mem_plan(uint64_t budget, const uint64_t explicit_caps[FDO_MEM_PARTS],
		 const uint64_t *min_caps, uint64_t caps[FDO_MEM_PARTS],
		 char *err, size_t errlen);

/* A part's weight in the plan, in sixteenths of the budget. */
unsigned fdo_mem_weight(enum fdo_mem_part part);

/*
 * fdo_mem_default_budget: what --memory-budget 0 means, 1 GiB or a quarter
 * of mem_total (the host's MemTotal, bytes; 0: unknown) when smaller.
 */
uint64_t fdo_mem_default_budget(uint64_t mem_total);

/* The host's MemTotal from /proc/meminfo, bytes; 0 when unknown. */
uint64_t fdo_mem_host_total(void);

/* Set (at start, before threads) or read a part's cap. 0: no cap. */
void fdo_mem_cap_set(enum fdo_mem_part part, uint64_t bytes);
uint64_t fdo_mem_cap(enum fdo_mem_part part);

/* fdo_mem_take / fdo_mem_give: bytes taken from and given back to part;
 * fdo_mem_set: what part holds now (for parts measured whole);
 * fdo_mem_raise: the larger of what part holds and bytes (a high-water
 * mark). Any thread; never block. */
void fdo_mem_take(enum fdo_mem_part part, uint64_t bytes);
void fdo_mem_give(enum fdo_mem_part part, uint64_t bytes);
void fdo_mem_set(enum fdo_mem_part part, uint64_t bytes);
void fdo_mem_raise(enum fdo_mem_part part, uint64_t bytes);
uint64_t fdo_mem_used(enum fdo_mem_part part);

/* fdo_mem_try_take: take bytes from part unless that passes its cap.
 * Atomic: two callers cannot both pass the check and together pass the
 * cap. 1 taken; 0 not (*used: what the part held then; may be NULL). */
int fdo_mem_try_take(enum fdo_mem_part part, uint64_t bytes, uint64_t *used);

/* fdo_mem_full: does part hold its cap or more (never, without a cap)? */
int fdo_mem_full(enum fdo_mem_part part);

#endif
