/*
 * aggregator/idset.c — the lossy id set (idset.h).
 */
#include <stdlib.h>
#include <string.h>

#include "aggregator/idset.h"
#include "common/common.h"

int idset_init(struct idset *s, size_t cap)
{
	*s = (struct idset){calloc(cap, sizeof *s->slots), cap, 0};
	return s->slots ? FDO_OK : FDO_ENOMEM;
}

void idset_add(struct idset *s, uint64_t v)
{
	if (!v)
		return;
	if (!s->slots && !(s->slots = calloc(s->cap, sizeof *s->slots)))
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
	free(s->slots);
	*s = (struct idset){0};
}
