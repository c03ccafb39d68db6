/*
 * fuzz/fuzz_probes.c — LLVM pseudo-probe sections (symbolizer/probes.c)
 * of hostile bytes, through sym_probes_decode_bytes.
 *
 * Input: byte 0: the number of symbols (low 4 bits); then that many
 * symbols, 16 bytes each (GUID, address; little-endian); then 2 bytes,
 * the .pseudo_probe_desc length (little-endian, clamped); then the
 * .pseudo_probe_desc bytes; the rest is the .pseudo_probe section. A
 * short input leaves what is missing empty. Each section is copied into a
 * buffer of exactly its size, so that ASan sees any read past its end.
 *
 * Properties checked beyond "no crash, no leak, no UB, no hang":
 *   - only the documented errors come back, with *out exactly when the
 *     decode got that far (FDO_OK, FDO_EPARSE, FDO_ELIMIT);
 *   - descriptors are sorted by GUID, one per GUID, with names;
 *   - contexts: a parent comes before its children, top-level ones have
 *     site 0, inlinees func_addr 0, and no chain is deeper than
 *     SYM_PROBE_MAX_DEPTH;
 *   - probes are sorted by (addr, ctx, index), name a context, are never
 *     sentinels, and are no more than the bytes can hold (memory bound);
 *   - damage is counted: FDO_ELIMIT always drops a record (skipped > 0),
 *     and FDO_EPARSE does unless the descriptors alone give it;
 *   - decoding twice gives the same result (deterministic).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "symbolizer/sym_int.h"

#define MAX_SYMS 15

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* dup_exact: a heap copy of exactly n bytes (NULL for none). */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	if (!n)
		return NULL;
	uint8_t *b = malloc(n);
	FUZZ_CHECK(b);
	memcpy(b, p, n);
	return b;
}

static void check(const struct sym_probes *p, size_t probe_len)
{
	for (size_t i = 0; i < p->nfuncs; i++) {
		FUZZ_CHECK(p->funcs[i].name);
		if (i)
			FUZZ_CHECK(p->funcs[i - 1].guid < p->funcs[i].guid);
		FUZZ_CHECK(sym_probes_func(p, p->funcs[i].guid) ==
			   &p->funcs[i]);
	}
	FUZZ_CHECK(p->nctxs <= probe_len / 10);
	FUZZ_CHECK(p->nprobes <= probe_len / 3);
	uint32_t *depth = p->nctxs ? calloc(p->nctxs, sizeof *depth) : NULL;
	FUZZ_CHECK(!p->nctxs || depth);
	for (size_t i = 0; i < p->nctxs; i++) {
		const struct sym_probe_ctx *c = &p->ctxs[i];
		if (c->parent == UINT32_MAX) {
			FUZZ_CHECK(c->site == 0);
			depth[i] = 0;
		} else {
			FUZZ_CHECK(c->parent < i);
			FUZZ_CHECK(c->func_addr == 0);
			depth[i] = depth[c->parent] + 1;
			FUZZ_CHECK(depth[i] <= SYM_PROBE_MAX_DEPTH);
		}
	}
	free(depth);
	for (size_t i = 0; i < p->nprobes; i++) {
		const struct sym_probe *q = &p->probes[i];
		FUZZ_CHECK(q->ctx < p->nctxs);
		FUZZ_CHECK(q->type <= 15 && q->attr <= 7);
		FUZZ_CHECK(!(q->attr & 2));
		if (i) {
			const struct sym_probe *o = &p->probes[i - 1];
			int ordered = o->addr != q->addr ? o->addr < q->addr
				      : o->ctx != q->ctx ? o->ctx < q->ctx
							 : o->index <= q->index;
			FUZZ_CHECK(ordered);
		}
	}
}

static int same(const struct sym_probes *a, const struct sym_probes *b)
{
	if (a->nfuncs != b->nfuncs || a->nctxs != b->nctxs ||
	    a->nprobes != b->nprobes || a->skipped != b->skipped)
		return 0;
	for (size_t i = 0; i < a->nfuncs; i++)
		if (a->funcs[i].guid != b->funcs[i].guid ||
		    a->funcs[i].hash != b->funcs[i].hash ||
		    strcmp(a->funcs[i].name, b->funcs[i].name))
			return 0;
	for (size_t i = 0; i < a->nctxs; i++)
		if (a->ctxs[i].parent != b->ctxs[i].parent ||
		    a->ctxs[i].guid != b->ctxs[i].guid ||
		    a->ctxs[i].site != b->ctxs[i].site ||
		    a->ctxs[i].func_addr != b->ctxs[i].func_addr)
			return 0;
	for (size_t i = 0; i < a->nprobes; i++)
		if (a->probes[i].addr != b->probes[i].addr ||
		    a->probes[i].index != b->probes[i].index ||
		    a->probes[i].ctx != b->probes[i].ctx ||
		    a->probes[i].type != b->probes[i].type ||
		    a->probes[i].attr != b->probes[i].attr)
			return 0;
	return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdo_log_set_level(FDO_LOG_ERROR); /* damage is logged at debug */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t guids[MAX_SYMS], addrs[MAX_SYMS];
	size_t nsyms = 0, at = 0;
	if (size) {
		size_t want = data[0] & 15;
		at = 1;
		while (nsyms < want && size - at >= 16) {
			guids[nsyms] = get_le64(data + at);
			addrs[nsyms] = get_le64(data + at + 8);
			nsyms++;
			at += 16;
		}
	}
	size_t dlen = 0;
	if (size - at >= 2) {
		dlen = (size_t)data[at] | (size_t)data[at + 1] << 8;
		at += 2;
	}
	if (dlen > size - at)
		dlen = size - at;
	uint8_t *desc = dup_exact(data + at, dlen);
	size_t plen = size - at - dlen;
	uint8_t *probe = dup_exact(data + at + dlen, plen);

	struct sym_probes *p = NULL, *q = NULL;
	int rc = sym_probes_decode_bytes(desc, dlen, probe, plen, guids, addrs,
					 nsyms, &p);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_EPARSE || rc == FDO_ELIMIT ||
		   rc == FDO_ENOMEM);
	if (rc == FDO_ENOMEM) {
		FUZZ_CHECK(!p);
	} else {
		FUZZ_CHECK(p);
		check(p, plen);
		if (rc == FDO_ELIMIT)
			FUZZ_CHECK(p->skipped);
		if (rc == FDO_EPARSE && !p->skipped) {
			struct sym_probes *d = NULL;
			FUZZ_CHECK(sym_probes_decode_bytes(desc, dlen, NULL, 0,
							   NULL, NULL, 0,
							   &d) == FDO_EPARSE);
			sym_probes_free(d);
		}
		int rc2 = sym_probes_decode_bytes(desc, dlen, probe, plen,
						  guids, addrs, nsyms, &q);
		FUZZ_CHECK(rc2 == rc && q && same(p, q));
	}
	sym_probes_free(p);
	sym_probes_free(q);
	free(desc);
	free(probe);
	return 0;
}
