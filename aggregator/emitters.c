/*
 * aggregator/emitters.c — the table of profile formats: one ops entry per
 * emitter (aggregator/emit_<name>.c), looked up by the name a request
 * gives in format=.
 */
#include <string.h>

#include "aggregator/profile.h"

const struct prof_emitter prof_emitters[] = {
	{"llvm", "text/plain; charset=utf-8", emit_llvm},
	{"gcc", "application/octet-stream", emit_gcc},
	{"bolt", "text/plain; charset=utf-8", emit_bolt},
	{"folded", "text/plain; charset=utf-8", emit_folded},
	{"pprof", "application/octet-stream", emit_pprof},
	{NULL, NULL, NULL},
};

const struct prof_emitter *prof_emitter_find(const char *name)
{
	for (const struct prof_emitter *e = prof_emitters; e->name; e++)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}
