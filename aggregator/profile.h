/*
 * aggregator/profile.h — a profile as the emitters see it: the selected,
 * weighted, symbolized stacks of one binary. The profile builder
 * (aggregator/profile.c) fills it from the store; each emitter
 * (aggregator/emit_<format>.c) turns it into bytes. Emitters never touch
 * the store, so they are tested on profiles built in memory.
 *
 * Ownership: a prof owns every array and string in it (prof_fini frees
 * them). Not thread safe; an emitter only reads it.
 */
#ifndef FDO_AGGREGATOR_PROFILE_H
#define FDO_AGGREGATOR_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PROF_NONE UINT32_MAX /* "no string" / "unknown" index */

/* One frame of an inline chain (as the symbolizer resolved it). */
struct prof_frame {
	uint32_t function;      /* string index: linkage name */
	uint32_t file;          /* string index, PROF_NONE unknown */
	uint32_t line;          /* 0 unknown */
	uint32_t column;
	uint32_t discriminator; /* as DWARF has it (LLVM-encoded for clang
				   -fdebug-info-for-profiling) */
	uint32_t start_line;    /* DW_AT_decl_line of the function, 0 unknown */
};

/* One address: an instruction of one build-id. */
struct prof_loc {
	uint32_t build_id;    /* index into prof.build_ids */
	uint64_t offset;      /* file offset; for caller frames the call
				 site (return address - 1), as ingest stored */
	uint64_t vaddr;       /* ELF virtual address of offset, or
				 UINT64_MAX when the symbols are unknown */
	uint32_t first_frame; /* frames[first_frame .. +nframes): the inline
				 chain, innermost first; 0 frames = not
				 symbolized (yet) */
	uint32_t nframes;
};

/* One stack: locations leaf first (locs[0] is the sampled instruction,
 * locs[i+1] called locs[i]). */
struct prof_stack {
	uint32_t first_loc; /* stack_locs[first_loc .. +nlocs) */
	uint32_t nlocs;
	double count;       /* weighted, decayed, mixed sample count */
	uint64_t samples;   /* raw samples behind it */
};

/* An LBR branch record of one build-id. */
struct prof_branch {
	uint32_t build_id;
	uint64_t from, to; /* file offsets */
	uint64_t from_vaddr, to_vaddr; /* UINT64_MAX when unknown */
	double count;
	double mispredicts;
};

struct prof_build_id {
	uint8_t id[64];
	size_t len;
	char hex[129];
	char *elf_path;   /* symbol file with loadable bytes, or NULL */
	char *debug_path; /* debug file, or NULL */
};

struct prof {
	char *binary;
	char *event;        /* e.g. "cpu-clock" */
	char **strings;     /* interned: every string once */
	size_t nstrings, cap_strings;
	struct prof_build_id *build_ids;
	size_t nbuild_ids;
	struct prof_loc *locs;
	size_t nlocs;
	struct prof_frame *frames;
	size_t nframes;
	uint32_t *stack_locs; /* location indices of all stacks */
	size_t nstack_locs;
	struct prof_stack *stacks;
	size_t nstacks;
	struct prof_branch *branches;
	size_t nbranches;
	/* What went in (for headers, readiness and publishing). */
	uint64_t samples;   /* raw samples selected */
	double count;       /* sum of stacks' count */
	uint64_t hosts;     /* distinct hosts */
	uint64_t first_time, last_time; /* unix seconds (bucket starts) */
	char selectors[512]; /* canonical text of the request's selectors */
	void *priv;          /* the builder's lookup tables */
};

void prof_init(struct prof *p);
void prof_fini(struct prof *p);
/* prof_intern returns the index of s in p->strings, adding it. */
uint32_t prof_intern(struct prof *p, const char *s);
/* prof_str returns the string of index i ("" for PROF_NONE). */
static inline const char *prof_str(const struct prof *p, uint32_t i)
{
	return i == PROF_NONE || i >= p->nstrings ? "" : p->strings[i];
}

/* ---------------------------------------------------------- emitters -- */

/*
 * An emitter writes p in its format into out. Returns FDO_OK, FDO_ENOMEM,
 * FDO_EUNSUPPORTED (e.g. bolt without an exact build-id or its symbols),
 * FDO_EIO. opts: emitter-specific text ("min_share=0.001"), may be NULL.
 */
struct prof_emitter {
	const char *name;         /* "llvm", "gcc", "bolt", "folded", "pprof" */
	const char *content_type; /* HTTP Content-Type */
	int (*emit)(const struct prof *p, const char *opts, struct fdo_buf *out);
};

/* The table of every format; terminated by a NULL name. */
extern const struct prof_emitter prof_emitters[];
const struct prof_emitter *prof_emitter_find(const char *name);

int emit_llvm(const struct prof *p, const char *opts, struct fdo_buf *out);

/* The llvm emitter's choices of one word each (line_count, head), with the
 * values each takes: the one list the emitter checks its options against
 * and the profile route checks its query against. Terminated by a NULL
 * name; values[] by NULL (so at most 3 values). */
struct emit_choice {
	const char *name;
	const char *values[4];
};
extern const struct emit_choice emit_llvm_choices[];
/* emit_choice_index: the index of value in c->values, or -1. */
int emit_choice_index(const struct emit_choice *c, const char *value);

int emit_gcc(const struct prof *p, const char *opts, struct fdo_buf *out);
int emit_bolt(const struct prof *p, const char *opts, struct fdo_buf *out);
int emit_folded(const struct prof *p, const char *opts, struct fdo_buf *out);
int emit_pprof(const struct prof *p, const char *opts, struct fdo_buf *out);

#endif
