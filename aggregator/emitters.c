/*
 * aggregator/emitters.c — the table of profile formats: one ops entry per
 * emitter (aggregator/emit_<name>.c), looked up by the name a request
 * gives in format= or by the code a published version stored.
 */
#include <string.h>

#include "aggregator/profile.h"

/* Codes are stored with published versions (storage/codec.c): never
 * reuse or renumber one. */
const struct prof_emitter prof_emitters[] = {
	{"llvm", "text/plain; charset=utf-8", 1, emit_llvm},
	{"gcc", "application/octet-stream", 2, emit_gcc},
	{"bolt", "text/plain; charset=utf-8", 3, emit_bolt},
	{"folded", "text/plain; charset=utf-8", 4, emit_folded},
	{"pprof", "application/octet-stream", 5, emit_pprof},
	{NULL, NULL, 0, NULL},
};

const struct prof_emitter *prof_emitter_find(const char *name)
{
	for (const struct prof_emitter *e = prof_emitters; e->name; e++)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

const struct prof_emitter *prof_emitter_by_code(unsigned code)
{
	for (const struct prof_emitter *e = prof_emitters; e->name; e++)
		if (e->code == code)
			return e;
	return NULL;
}

const char *prof_content_type(const struct prof_emitter *em, const void *data,
			      size_t len)
{
	/* llvm's extbinary form starts with its magic, never with text. */
	if (em->code == 1 && len && *(const unsigned char *)data == 0x84)
		return "application/octet-stream";
	return em->content_type;
}
