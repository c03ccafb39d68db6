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
#include "common/map.h"

#define PROF_NONE UINT32_MAX /* "no string" / "unknown" index */

struct prof_opts; /* below */

/* One frame of an inline chain (as the symbolizer resolved it). */
struct prof_frame {
	uint32_t function; /* string index: linkage name */
	uint32_t file;	   /* string index, PROF_NONE unknown */
	uint32_t line;	   /* 0 unknown */
	uint32_t column;
	uint32_t discriminator; /* as DWARF has it (LLVM-encoded for clang
				   -fdebug-info-for-profiling) */
	uint32_t start_line;	/* DW_AT_decl_line of the function, 0 unknown */
};

/* One address: an instruction of one build-id. */
struct prof_loc {
	uint32_t build_id;    /* index into prof.build_ids */
	uint64_t offset;      /* file offset; for caller frames the call
				 site (return address - 1), as ingest stored */
	uint64_t vaddr;	      /* ELF virtual address of offset, or
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
	double count;	  /* weighted, decayed, mixed sample count */
	uint64_t samples; /* raw samples behind it */
};

/*
 * What the compile-time formats (llvm, gcc, bolt) read of the stacks: the
 * count of each leaf location, and of each caller->callee pair of adjacent
 * locations (callee = locs[i], caller = locs[i+1] of some stack), a stack
 * adding its count once per distinct pair, so recursion does not multiply
 * it. They cost what the profile contains, not how many stacks there are:
 * see prof_reduce.
 */
struct prof_leaf {
	uint32_t loc; /* location index */
	double count;
	uint64_t samples; /* raw samples behind it */
};

struct prof_pair {
	uint32_t callee, caller; /* location indexes */
	double count;
};

/* An LBR branch record of one build-id. */
struct prof_branch {
	uint32_t build_id;
	uint64_t from, to;	       /* file offsets */
	uint64_t from_vaddr, to_vaddr; /* UINT64_MAX when unknown */
	double count;
	double mispredicts;
};

struct prof_build_id {
	uint8_t id[64];
	size_t len;
	char hex[129];
	char *elf_path;	  /* symbol file with loadable bytes, or NULL */
	char *debug_path; /* debug file, or NULL */
};

/*
 * Block execution counts inferred on the binary's own code
 * (aggregator/blocks.c, when a request wants counts=blocks): the sampled
 * functions of each build-id with their basic blocks, the blocks'
 * instructions with their inline chains, and the control-flow edges with
 * their counts. Counts are in the unit of the stacks' counts per
 * instruction executed (see blocks.c); only their ratios matter.
 */
struct prof_func {
	uint32_t build_id;    /* index into prof.build_ids */
	uint32_t name;	      /* symbol-table name (string index) */
	uint64_t addr, size;  /* ELF virtual addresses */
	uint32_t first_block; /* blocks[first_block .. +nblocks), by address */
	uint32_t nblocks;
	double samples; /* leaf counts that fell in it */
	int status;	/* FDO_OK, or why it has no blocks (FDO_EPARSE:
				 undecodable code, FDO_ELIMIT: too large...):
				 its samples are then placed by line */
};

struct prof_block {
	uint32_t func;		     /* index into funcs */
	uint64_t start, end;	     /* [start, end) ELF virtual addresses */
	uint32_t first_insn, ninsns; /* into insns */
	double count;		     /* inferred executions */
	double samples;		     /* leaf counts that fell in it */
};

enum prof_insn_kind {
	PROF_INSN_PLAIN,
	PROF_INSN_CALL,
	PROF_INSN_ICALL,
	PROF_INSN_BRANCH
};

struct prof_insn {
	uint64_t vaddr;
	uint32_t block;	      /* index into blocks */
	uint32_t first_frame; /* frames[first_frame .. +nframes): inline
				 chain, innermost first; 0: no line known */
	uint32_t nframes;
	uint32_t callee; /* direct calls: the callee's linkage name (the
			    outermost frame at the target), else PROF_NONE */
	uint64_t target; /* direct calls: the target's vaddr, else 0 */
	uint8_t kind;	 /* enum prof_insn_kind */
};

enum prof_edge_kind { PROF_EDGE_FALL, PROF_EDGE_TAKEN, PROF_EDGE_TABLE };

/* An exact call count (from branch records: fdoctl emit): how often the
 * call instruction insn went to callee. */
struct prof_call {
	uint32_t insn;	 /* index into insns */
	uint32_t callee; /* linkage name (string index) */
	double count;
};

/*
 * Pseudo probes of a build-id built with clang -fpseudo-probe-for-profiling
 * (symbolizer/probes.c), on the blocks above: a probe-based profile keys
 * counts by (inline context, probe index) instead of lines. A context is a
 * function, or a function inlined at a call probe of its parent's.
 */
struct prof_pctx {
	uint32_t parent;   /* PROF_NONE: a top-level function */
	uint32_t name;	   /* the function's IR name (string index) */
	uint32_t site;	   /* call-probe index in the parent (0 top level) */
	uint64_t checksum; /* its CFG checksum (.pseudo_probe_desc) */
};

enum prof_probe_type { PROF_PROBE_BLOCK, PROF_PROBE_ICALL, PROF_PROBE_DCALL };

struct prof_probe {
	uint64_t vaddr;
	uint32_t ctx;	/* into pctxs */
	uint32_t index; /* 1: the function's entry */
	uint32_t block; /* the counted block holding it */
	uint8_t type;	/* enum prof_probe_type (others as the file has them) */
};

struct prof_edge {
	uint32_t from, to;   /* blocks of one function */
	uint64_t from_vaddr; /* the last instruction of the source block
				that is not a nop (its branch, if any):
				where llvm-bolt looks for an edge */
	double count;
	uint8_t kind; /* enum prof_edge_kind */
};

struct prof {
	char *binary;
	char *event;	/* e.g. "cpu-clock" */
	char **strings; /* interned: every string once */
	size_t nstrings, cap_strings;
	struct prof_build_id *build_ids;
	size_t nbuild_ids;
	struct prof_loc *locs;
	size_t nlocs;
	struct prof_frame *frames;
	size_t nframes;
	/* frames the array has room for, as its builder sized it (at least
	 * nframes; 0: nframes): agg_blocks_build appends there first */
	size_t frames_room;
	uint32_t *stack_locs; /* location indices of all stacks */
	size_t nstack_locs;
	struct prof_stack *stacks;
	size_t nstacks;
	struct prof_branch *branches;
	size_t nbranches;
	/* Leaves by location, pairs by (callee, caller): set by prof_reduce
	 * (from the stacks). */
	struct prof_leaf *leaves;
	size_t nleaves;
	struct prof_pair *pairs;
	size_t npairs;
	int reduced; /* leaves and pairs are set */
	/* Inferred block counts (empty unless asked for): */
	struct prof_func *funcs;
	size_t nfuncs;
	struct prof_block *blocks;
	size_t nblocks;
	struct prof_insn *insns; /* by (build_id, vaddr) */
	size_t ninsns;
	struct prof_edge *edges; /* grouped by function, then from block */
	size_t nedges;
	struct prof_call *calls; /* exact call counts, if any */
	size_t ncalls;
	struct prof_pctx *pctxs; /* parents before children */
	size_t npctxs;
	struct prof_probe *probes; /* by vaddr */
	size_t nprobes;
	/* What went in (for headers, readiness and publishing). */
	uint64_t samples;		/* raw samples selected */
	double count;			/* sum of stacks' count */
	uint64_t hosts;			/* distinct hosts */
	uint64_t first_time, last_time; /* unix seconds (bucket starts) */
	char selectors[512]; /* canonical text of the request's selectors */
	void *priv;	     /* the builder's lookup tables */
};

void prof_init(struct prof *p);
void prof_fini(struct prof *p);
/* prof_intern returns the index of s in p->strings, adding it. */
uint32_t prof_intern(struct prof *p, const char *s);
/* prof_intern_memo is prof_intern for strings that stay where they are
 * (a symbolizer index's names) looked up through memo, a map from the
 * string's address to its index, so each is hashed once per build. NULL
 * and "" give PROF_NONE; out of memory gives PROF_NONE - 1. */
uint32_t prof_intern_memo(struct prof *p, struct fdo_map64 *memo,
			  const char *s);
/*
 * prof_reduce sets p->leaves and p->pairs from p->stacks (stacks whose
 * count is not positive and finite add nothing) and p->reduced; nothing
 * when p->reduced is set already. Returns FDO_OK, FDO_ENOMEM, FDO_EINVAL
 * (a stack's locations out of range); on error p is unchanged.
 */
int prof_reduce(struct prof *p);

/*
 * The same reduction one stack at a time, for a builder that never keeps
 * the stacks (aggregator/profile.c): prof_reducer_add each stack's
 * location indexes (leaf first), count and raw samples (a count that is
 * not positive and finite adds nothing), then prof_reducer_finish hands
 * over the sorted arrays (the caller frees them) and frees the rest, or
 * prof_reducer_fini drops everything. Adding the stacks in prof_reduce's
 * order gives its exact result. FDO_OK or FDO_ENOMEM (the reducer is then
 * only fit for fini).
 */
struct prof_reducer {
	struct fdo_map64 lmap, pmap; /* location / pair + 1 -> index */
	struct prof_leaf *leaves;
	size_t nleaves, cap_leaves;
	struct prof_pair *pairs;
	size_t npairs, cap_pairs;
};
int prof_reducer_add(struct prof_reducer *r, const uint32_t *locs, uint32_t n,
		     double count, uint64_t samples);
void prof_reducer_finish(struct prof_reducer *r, struct prof_leaf **leaves,
			 size_t *nleaves, struct prof_pair **pairs,
			 size_t *npairs);
void prof_reducer_fini(struct prof_reducer *r);

/*
 * prof_pair_seen: is the pair (ids[i], ids[i+1]) of one stack (location
 * indexes or interned frames, leaf first) one of its earlier pairs? A
 * stack adds its count once per distinct pair, in prof_reducer_add and in
 * the per-bucket sums (aggregator/reduce.c) alike. A stack has tens of
 * frames: a quadratic check beats anything with setup.
 */
static inline int prof_pair_seen(const uint32_t *ids, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (ids[j] == ids[i] && ids[j + 1] == ids[i + 1])
			return 1;
	return 0;
}

/*
 * prof_reduced_get: p's leaves and pairs for a reader that may not change
 * p: p's own arrays when p->reduced, else computed from the stacks into r
 * (freed by prof_reduced_fini). Returns as prof_reduce.
 */
struct prof_reduced {
	const struct prof_leaf *leaves;
	size_t nleaves;
	const struct prof_pair *pairs;
	size_t npairs;
	struct prof_leaf *own_leaves;
	struct prof_pair *own_pairs;
};
int prof_reduced_get(const struct prof *p, struct prof_reduced *r);
void prof_reduced_fini(struct prof_reduced *r);

/* prof_str returns the string of index i ("" for PROF_NONE). */
static inline const char *prof_str(const struct prof *p, uint32_t i)
{
	return i == PROF_NONE || i >= p->nstrings ? "" : p->strings[i];
}

/* ---------------------------------------------------- the inline tree -- */

/*
 * What a compile-time sample profile says, built once from a prof by
 * prof_model_build and written by the llvm and gcc emitters: per function
 * (the linkage name of the outermost frame of an inline chain) counts at
 * (line offset from the function's start line, discriminator), the
 * instances inlined at its call sites nested the same way, the call
 * targets of its lines, and its head (entry) count. Counts are doubles;
 * writers round them.
 */
struct prof_mnode {
	uint32_t parent;	     /* PROF_NONE: a function */
	uint32_t name;		     /* string index: linkage name */
	uint32_t off, disc;	     /* call site in the parent; 0 for functions
				(probe-based: off is the call probe) */
	uint64_t checksum;	     /* probe-based: the CFG checksum, else 0 */
	double head;		     /* functions: entry count */
	uint32_t first_line, nlines; /* lines[...], by (off, disc) */
	uint32_t first_kid, nkids;   /* kids[...], by (off, disc, name) */
};

struct prof_mline {
	uint32_t node, off, disc;
	double count;
	int known;			 /* a count was given (it may be 0) */
	uint32_t first_target, ntargets; /* targets[...], by name */
};

struct prof_mtarget {
	uint32_t name; /* callee linkage name */
	double count;
};

struct prof_model {
	int probes;		  /* probe-based: lines are probe indexes */
	struct prof_mnode *nodes; /* a parent's index is below its kids' */
	size_t nnodes;
	struct prof_mline *lines; /* by (node, off, disc) */
	size_t nlines;
	struct prof_mtarget *targets;
	size_t ntargets;
	uint32_t *kids;	     /* node indexes, grouped by parent */
	uint32_t *functions; /* top-level node indexes, by name */
	size_t nfunctions;
	double skipped_unsym, skipped_line0; /* samples not placed */
};

/*
 * prof_model_build fills m (which it initializes) from p under o
 * (counts, line_count, head). flags: PROF_MODEL_DECODE keeps clang's base
 * discriminator of a -fdebug-info-for-profiling encoding (what LLVM's
 * sample loader looks up; without it, the DWARF value as it is);
 * PROF_MODEL_PROBES builds a probe-based tree when p has probes (every
 * function then comes from its probes: functions without are left out).
 * Returns FDO_OK, FDO_ENOMEM, FDO_EINVAL (p's indexes out of range); on
 * error m is empty. Only reads p; any thread.
 */
#define PROF_MODEL_DECODE 1u
#define PROF_MODEL_PROBES 2u
int prof_model_build(const struct prof *p, const struct prof_opts *o,
		     unsigned flags, struct prof_model *m);
void prof_model_fini(struct prof_model *m);

/*
 * prof_model_layout completes m, whose nodes a builder has set (m->nodes,
 * m->nnodes: parent, name, off, disc, checksum, head; a parent's index
 * below its kids'), from its lines and call targets in any order
 * (tgts[i].line: an index of lines; each (node, off, disc) and each
 * (line, name) once): lines sorted by (node, off, disc), targets by name
 * within their line, kids by (off, disc, name), functions by name. The
 * one layout of prof_model_build and of aggregator/stale.c's matched
 * tree. Returns FDO_OK or FDO_ENOMEM (m then for prof_model_fini).
 */
struct prof_mtarget_at {
	uint32_t line, name;
	double count;
};
int prof_model_layout(const struct prof *p, struct prof_model *m,
		      const struct prof_mline *lines, size_t nlines,
		      const struct prof_mtarget_at *tgts, size_t ntgts);

/* The parts of clang's discriminator encoding (DILocation, non-FS). */
uint32_t prof_base_discriminator(uint32_t d);
uint32_t prof_duplication_factor(uint32_t d);

/* ----------------------------------------------------------- options -- */

/* What a request asks of the emitters, typed. prof_opts_init gives the
 * defaults of prof_opt_defs; the profile route sets each query key it
 * finds through prof_opts_set. */
enum prof_counts { PROF_COUNTS_SAMPLES, PROF_COUNTS_BLOCKS };
enum prof_line_count { PROF_LINE_SUM, PROF_LINE_MAX, PROF_LINE_MEAN };
enum prof_head { PROF_HEAD_STACKS, PROF_HEAD_ENTRY };
enum prof_encoding { PROF_ENC_EXTBINARY, PROF_ENC_TEXT };

struct prof_opts {
	int counts;	     /* enum prof_counts (llvm, gcc, bolt) */
	int line_count;	     /* enum prof_line_count (counts=samples) */
	int head;	     /* enum prof_head */
	int zeros;	     /* counts=blocks: write lines that ran 0 times */
	int balance;	     /* counts=blocks: one unit across functions */
	uint64_t spread;     /* ... no scale beyond 1/spread..spread */
	uint64_t dispersion; /* counts=blocks: flow_infer r (0: Poisson) */
	double min_share;    /* drop functions (llvm, gcc) or stacks (folded,
			     pprof: applied by the profile builder) under
			     this share */
	uint64_t max_stacks; /* folded, pprof: the heaviest N stacks */
	int encoding;	     /* enum prof_encoding (llvm) */
	int symbol_list;     /* llvm extbinary: list the binary's functions */
	int discriminators, llvm_discriminators; /* gcc */
	uint64_t period; /* pprof: event units per sample */
	/* Set by the route from build_id= (a selector, not in the table):
	 * bolt writes this build-id; 0 length: the one with most samples. */
	uint8_t build_id[64];
	size_t build_id_len;
};

/* UINT: a whole number above 0; COUNT: a whole number, 0 allowed. */
enum prof_opt_type {
	PROF_OPT_ENUM,
	PROF_OPT_BOOL,
	PROF_OPT_DOUBLE,
	PROF_OPT_UINT,
	PROF_OPT_COUNT
};
#define PROF_OPT_MAX_VALUES 4

/* One option: its query key (also `fdoctl pull --key-with-dashes`), its
 * type, the field it sets, the values of an enum (in the enum's order),
 * its default, the formats that read it and a line of help. */
struct prof_opt_def {
	const char *name;
	enum prof_opt_type type;
	size_t offset; /* offsetof(struct prof_opts, field) */
	const char *values[PROF_OPT_MAX_VALUES + 1];
	const char *def;
	const char *formats;
	const char *help;
};

/* Every option, terminated by a NULL name. */
extern const struct prof_opt_def prof_opt_defs[];
const struct prof_opt_def *prof_opt_find(const char *name);
/* prof_opt_value_index: the index of value in d->values, or -1. */
int prof_opt_value_index(const struct prof_opt_def *d, const char *value);

/* prof_opts_init sets every option to its default. */
void prof_opts_init(struct prof_opts *o);

/*
 * prof_opts_set sets option name from its text value. Returns FDO_OK,
 * FDO_ENOT_FOUND (no such option) or FDO_EINVAL (a bad value); err says
 * which in words fit for a 400 answer. Any thread (o is the caller's).
 */
int prof_opts_set(struct prof_opts *o, const char *name, const char *value,
		  char *err, size_t errlen);

/* prof_opts_parse: defaults, then "name=value" items separated by ',',
 * ';', '&' or blanks (tests and offline tools); build_id=HEX sets the
 * build-id. FDO_OK or FDO_EINVAL (also for an unknown name) with err set. */
int prof_opts_parse(struct prof_opts *o, const char *text, char *err,
		    size_t errlen);

/* ---------------------------------------------------------- emitters -- */

/*
 * An emitter writes p in its format into out. Returns FDO_OK, FDO_ENOMEM,
 * FDO_EUNSUPPORTED (e.g. bolt without an exact build-id or its symbols),
 * FDO_EIO. o: the request's options (prof_opts_init for the defaults).
 */
struct prof_emitter {
	const char *name;	  /* "llvm", "gcc", "bolt", "folded", "pprof" */
	const char *content_type; /* HTTP Content-Type */
	uint8_t code;		  /* stored in published versions: never
				     reuse or change a number */
	int (*emit)(const struct prof *p, const struct prof_opts *o,
		    struct fdo_buf *out);
};

/* The table of every format; terminated by a NULL name. */
extern const struct prof_emitter prof_emitters[];
const struct prof_emitter *prof_emitter_find(const char *name);
const struct prof_emitter *prof_emitter_by_code(unsigned code);

/* prof_content_type: the HTTP Content-Type of data that em wrote (llvm:
 * text/plain for encoding=text, application/octet-stream for
 * extbinary). */
const char *prof_content_type(const struct prof_emitter *em, const void *data,
			      size_t len);

int emit_llvm(const struct prof *p, const struct prof_opts *o,
	      struct fdo_buf *out);
int emit_gcc(const struct prof *p, const struct prof_opts *o,
	     struct fdo_buf *out);
/* The same two writing a tree already built (aggregator/stale.c's,
 * matched onto another release); unlisted: names kept out of the llvm
 * symbol list besides those the tree has (sorted by strcmp). */
int emit_llvm_model(const struct prof *p, const struct prof_opts *o,
		    const struct prof_model *m, const char *const *unlisted,
		    size_t nunlisted, struct fdo_buf *out);
int emit_gcc_model(const struct prof *p, const struct prof_opts *o,
		   const struct prof_model *m, struct fdo_buf *out);
int emit_bolt(const struct prof *p, const struct prof_opts *o,
	      struct fdo_buf *out);
int emit_folded(const struct prof *p, const struct prof_opts *o,
		struct fdo_buf *out);
int emit_pprof(const struct prof *p, const struct prof_opts *o,
	       struct fdo_buf *out);

#endif
