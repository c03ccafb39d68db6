/*
 * schemas/batchbuild.c — building an importer's SampleBatch, one piece
 * at a time, for the importers whose frames are already (build-id, file
 * offset): perf.c (fdoctl import), pprof.c (POST /v1/pprof) and otlp.c
 * (POST /v1development/profiles).
 *
 * The one layout they share: each file a batch uses gets a mapping of its
 * own, index k covering [(k+1) << WIRE_FILE_SHIFT, (k+2) <<
 * WIRE_FILE_SHIFT) at file offset 0, and a frame travels as that start +
 * its file offset (wire_file_addr), so fdod's usual normalization (addr -
 * start + file_offset) gives the offset back, whatever process or address
 * the sample came from. The pieces: the batch itself (wire_batch_start),
 * its labels from "key=value" strings as both importers take them, a
 * mapping per file, a stack; and a build-id as importers' sources write
 * it (hex, either case).
 *
 * Workload: once per batch made, a call per file and per stack; linear in
 * what it copies. Errors are FDO_ENOMEM only (the batch stays freeable);
 * the rules are wire_batch_validate's, applied by the caller.
 */
#include <stdlib.h>
#include <string.h>

#include "schemas/wire_int.h"

int wire_batch_start(const char *event, const char *host,
		     Fdod__SampleBatch **out)
{
	Fdod__SampleBatch *b = *out = malloc(sizeof *b);
	if (!b)
		return FDO_ENOMEM;
	fdod__sample_batch__init(b);
	b->schema_version = WIRE_SCHEMA_VERSION;
	b->weight = 1.0;
	b->event = strdup(event ? event : "");
	b->host = strdup(host ? host : "");
	return b->event && b->host ? FDO_OK : FDO_ENOMEM;
}

int wire_batch_add_labels(Fdod__SampleBatch *b, const char *const *kv, size_t n)
{
	if (!(b->labels = calloc(n + 1, sizeof *b->labels)))
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		Fdod__Label *l = malloc(sizeof *l);
		if (!l)
			return FDO_ENOMEM;
		fdod__label__init(l);
		b->labels[b->n_labels++] = l;
		l->key = eq ? strndup(kv[i], (size_t)(eq - kv[i]))
			    : strdup(kv[i]);
		l->value = strdup(eq ? eq + 1 : "");
		if (!l->key || !l->value)
			return FDO_ENOMEM;
	}
	return FDO_OK;
}

int wire_batch_add_file(Fdod__SampleBatch *b, const uint8_t *bid, size_t len,
			const char *path, const struct wire_limits *lim)
{
	Fdod__Mapping *m = malloc(sizeof *m);
	if (!m)
		return FDO_ENOMEM;
	fdod__mapping__init(m);
	uint64_t k = b->n_mappings;
	b->mappings[b->n_mappings++] = m;
	m->index = (uint32_t)k;
	m->start = (k + 1) << WIRE_FILE_SHIFT;
	m->limit = (k + 2) << WIRE_FILE_SHIFT;
	m->file_offset = 0;
	/* The path is informational: one fdod would refuse is left out
	 * rather than failing the batch. */
	int ok = path &&
		 !wire_check_text("path", path, lim->max_path_len, 1, NULL, 0);
	m->path = strdup(ok ? path : "");
	if (!m->path || !(m->build_id.data = malloc(len ? len : 1)))
		return FDO_ENOMEM;
	memcpy(m->build_id.data, bid, len);
	m->build_id.len = len;
	return FDO_OK;
}

int wire_batch_add_stack(Fdod__SampleBatch *b, const uint64_t *addrs, size_t n,
			 uint64_t count)
{
	Fdod__Stack *s = malloc(sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	fdod__stack__init(s);
	b->stacks[b->n_stacks++] = s;
	s->count = count;
	if (!(s->addrs = malloc((n ? n : 1) * sizeof *s->addrs)))
		return FDO_ENOMEM;
	memcpy(s->addrs, addrs, n * sizeof *s->addrs);
	s->n_addrs = n;
	return FDO_OK;
}

int wire_build_id_hex(const uint8_t *s, size_t n, uint8_t *out, size_t *len)
{
	char low[2 * FDO_BUILD_ID_MAX + 1];
	if (n > 2 * FDO_BUILD_ID_MAX || (n && memchr(s, 0, n)))
		return FDO_EBAD_BUILD_ID;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		low[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	low[n] = 0;
	return fdo_build_id_parse(low, out, len);
}
