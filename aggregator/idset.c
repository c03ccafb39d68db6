/*
 * aggregator/idset.c — the lossy id set (idset.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "aggregator/idset.h"
#include "common/common.h"

/*
 * Slots of this many bytes or more are mapped on their own and asked to
 * be backed by huge pages (transparent huge pages are often "madvise"
 * only): every lookup is a random slot of tens of MiB, so with 4-KiB
 * pages nearly every one also missed the TLB and walked the page tables,
 * which a prefetch does not hide. Without huge pages it is the same
 * memory, zeroed by the kernel as calloc's would be.
 */
#define HUGE_BYTES (2u << 20)

static uint64_t *slots_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(uint64_t);
	if (bytes < HUGE_BYTES)
		return calloc(cap, sizeof(uint64_t));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
	return p;
}

static void slots_free(uint64_t *slots, size_t cap)
{
	if (!slots)
		return;
	if (cap * sizeof(uint64_t) < HUGE_BYTES)
		free(slots);
	else
		munmap(slots, cap * sizeof(uint64_t));
}

int idset_init(struct idset *s, size_t cap)
{
	*s = (struct idset){slots_alloc(cap), cap, 0};
	return s->slots ? FDO_OK : FDO_ENOMEM;
}

void idset_add(struct idset *s, uint64_t v)
{
	if (!v)
		return;
	if (!s->slots && !(s->slots = slots_alloc(s->cap)))
		return;
	if ((s->n + 1) * 4 > s->cap * 3) {
		memset(s->slots, 0, s->cap * sizeof *s->slots);
		s->n = 0;
	}
	size_t j = idset_slot(s, v);
	for (; s->slots[j]; j = (j + 1) & (s->cap - 1))
		if (s->slots[j] == v)
			return;
	s->slots[j] = v;
	s->n++;
}

void idset_fini(struct idset *s)
{
	slots_free(s->slots, s->cap);
	*s = (struct idset){0};
}
