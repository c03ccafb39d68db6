/*
 * common/mem.c — the memory budget's plan and its counters (see mem.h).
 *
 * The weights: LMDB's dirty pages are the largest single consumer of a
 * busy merger (with hashed stack ids a merge dirties about a page per
 * stack until it has touched every leaf of the counts table), so they get
 * a quarter; the merger's buffers 3/16 (half of it its sets of known
 * stacks and addresses; the rest ~280 batches of the ingest bench in one
 * merge: with hashed stack ids a merge's cost per stack falls with its
 * size, so this part sets the merger's pace when it is behind); the DWARF
 * cache, batches waiting in the pipeline (~3,000 batches of the ingest
 * bench, about 6 s of them) and profiles being made an eighth each;
 * inflated debug sections
 * (a file alone may always take more), HTTP bodies (64 MiB at 1 GiB, the
 * old default) and kept profiles a sixteenth each.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"

static const struct {
	const char *name;
	unsigned weight; /* sixteenths of the budget */
} parts[FDO_MEM_PARTS] = {
	[FDO_MEM_INGEST] = {"ingest", 2},     [FDO_MEM_MERGE] = {"merge", 3},
	[FDO_MEM_LMDB] = {"lmdb", 4},	      [FDO_MEM_DWARF] = {"dwarf", 2},
	[FDO_MEM_INFLATE] = {"inflate", 1},   [FDO_MEM_HTTP] = {"http", 1},
	[FDO_MEM_PROFILES] = {"profiles", 1}, [FDO_MEM_BUILDS] = {"builds", 2},
};

static _Atomic uint64_t used[FDO_MEM_PARTS], cap[FDO_MEM_PARTS];

const char *fdo_mem_name(enum fdo_mem_part part)
{
	return part < FDO_MEM_PARTS ? parts[part].name : "?";
}

unsigned fdo_mem_weight(enum fdo_mem_part part)
{
	return part < FDO_MEM_PARTS ? parts[part].weight : 0;
}

int fdo_mem_plan(uint64_t budget, const uint64_t explicit_caps[FDO_MEM_PARTS],
		 const uint64_t *min_caps, uint64_t caps[FDO_MEM_PARTS],
		 char *err, size_t errlen)
{
	uint64_t given = 0;
	unsigned weights = 0;
	for (int p = 0; p < FDO_MEM_PARTS; p++) {
		if (explicit_caps[p])
			given += explicit_caps[p] > UINT64_MAX - given
					 ? UINT64_MAX - given
					 : explicit_caps[p];
		else
			weights += parts[p].weight;
	}
	/* Over the budget the derived parts get their share of the whole
	 * budget, so that a caller going on anyway gets sane caps. */
	uint64_t rest = given <= budget ? budget - given : budget;
	uint64_t total = 0;
	for (int p = 0; p < FDO_MEM_PARTS; p++) {
		uint64_t c = explicit_caps[p];
		if (!c) {
			unsigned w = parts[p].weight;
			c = given <= budget
				    ? rest / weights * w +
					      rest % weights * w / weights
				    : budget / 16 * w;
			if (min_caps && c < min_caps[p])
				c = min_caps[p];
		}
		caps[p] = c;
		total += c > UINT64_MAX - total ? UINT64_MAX - total : c;
	}
	if (total <= budget)
		return 0;
	int n = snprintf(err, errlen,
			 "the memory caps add up to %llu bytes, over "
			 "--memory-budget %llu:",
			 (unsigned long long)total, (unsigned long long)budget);
	for (int p = 0; p < FDO_MEM_PARTS && n > 0 && (size_t)n < errlen; p++)
		n += snprintf(err + n, errlen - (size_t)n, " %s %llu%s",
			      parts[p].name, (unsigned long long)caps[p],
			      explicit_caps[p] ? " (given)" : "");
	return -1;
}

uint64_t fdo_mem_default_budget(uint64_t mem_total)
{
	uint64_t gib = 1ull << 30;
	return mem_total && mem_total / 4 < gib ? mem_total / 4 : gib;
}

uint64_t fdo_mem_host_total(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kib = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib > UINT64_MAX / 1024 ? 0 : (uint64_t)kib * 1024;
}

void fdo_mem_cap_set(enum fdo_mem_part part, uint64_t bytes)
{
	if (part < FDO_MEM_PARTS)
		atomic_store_explicit(&cap[part], bytes, memory_order_relaxed);
}

uint64_t fdo_mem_cap(enum fdo_mem_part part)
{
	return part < FDO_MEM_PARTS
		       ? atomic_load_explicit(&cap[part], memory_order_relaxed)
		       : 0;
}

void fdo_mem_take(enum fdo_mem_part part, uint64_t bytes)
{
	if (part < FDO_MEM_PARTS)
		atomic_fetch_add_explicit(&used[part], bytes,
					  memory_order_relaxed);
}

void fdo_mem_give(enum fdo_mem_part part, uint64_t bytes)
{
	if (part < FDO_MEM_PARTS)
		atomic_fetch_sub_explicit(&used[part], bytes,
					  memory_order_relaxed);
}

void fdo_mem_set(enum fdo_mem_part part, uint64_t bytes)
{
	if (part < FDO_MEM_PARTS)
		atomic_store_explicit(&used[part], bytes, memory_order_relaxed);
}

void fdo_mem_raise(enum fdo_mem_part part, uint64_t bytes)
{
	if (part >= FDO_MEM_PARTS)
		return;
	uint64_t cur = atomic_load_explicit(&used[part], memory_order_relaxed);
	while (cur < bytes &&
	       !atomic_compare_exchange_weak_explicit(&used[part], &cur, bytes,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

int fdo_mem_try_take(enum fdo_mem_part part, uint64_t bytes, uint64_t *used_now)
{
	if (part >= FDO_MEM_PARTS)
		return 1;
	uint64_t cap = fdo_mem_cap(part);
	uint64_t u = atomic_load_explicit(&used[part], memory_order_relaxed);
	for (;;) {
		if (cap && u + bytes > cap) {
			if (used_now)
				*used_now = u;
			return 0;
		}
		if (atomic_compare_exchange_weak_explicit(
			    &used[part], &u, u + bytes, memory_order_relaxed,
			    memory_order_relaxed))
			return 1;
	}
}

uint64_t fdo_mem_used(enum fdo_mem_part part)
{
	return part < FDO_MEM_PARTS
		       ? atomic_load_explicit(&used[part], memory_order_relaxed)
		       : 0;
}

int fdo_mem_full(enum fdo_mem_part part)
{
	uint64_t c = fdo_mem_cap(part);
	return c && fdo_mem_used(part) >= c;
}
