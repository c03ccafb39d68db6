/*
 * aggregator/stale.c — a stale profile matched onto the next release: the
 * concept of a pull's for_build_id= (server/profiles.c), which builds the
 * profile from the window's samples as always (they may come from older
 * build-ids of the binary) and then writes it for the release named.
 *
 * Why: fdod's line-based profile keys body samples and call targets by
 * (function, line offset from the function's start line, discriminator),
 * which survives edits elsewhere in a file but not edits inside a hot
 * function, renames or splits; clang-16 has no -salvage-stale-profile
 * (LLVM 17+) and applies a profile that no longer fits its function
 * silently. fdod holds both releases' DWARF and code (the uploaded ELF
 * files), so it matches on the server, with the whole of both functions
 * at hand rather than only the call sites the profile happens to name.
 *
 * The shape of a function in one binary (shapes_build): every
 * instruction of every function symbol, disassembled (symbolizer/cfg.c)
 * and looked up in the DWARF (its inline chain), gives for each frame of
 * the chain a line offset of that frame's function, and a call site: an
 * inlined callee (the next frame in) or, for the innermost frame, the
 * direct call's (or tail call's) target, named by the outermost frame at
 * the target as the profile names callees. A function's shape is the set
 * of its line offsets and the sequence of its call sites (callee names by
 * offset), gathered over every copy of it (out of line and inlined), so
 * it does not depend on what the compiler inlined where.
 *
 * Per function of the profile, its old release is the build-id its
 * samples came from (the one with most, when a window spans releases);
 * then, against the function of the same name in the target release:
 *  - fresh: the same line offsets and the same call sites: kept as it is.
 *  - matched: changed. Call sites are anchors: the longest common
 *    subsequence of the two sequences of callee names pairs old anchors
 *    with new ones, each pair giving a shift (new offset - old offset).
 *    The start line (offset 0 on both sides) and the last line of code
 *    are paired too. Between two pairs of different shifts (lines were
 *    inserted or removed between them) the lines themselves are paired
 *    by the longest common subsequence of their numbers of own
 *    instructions (refine: unchanged lines compile to about the same
 *    code), which places the edit. An old offset on a pair moves to its
 *    new offset; one between two pairs that are closer in the new
 *    release than in the old (lines were removed there, or moved out to
 *    another function by a split) is dropped: the lines that stayed
 *    paired up, so it is one of those that went; any other moves by the
 *    shift of the nearer pair around it (the same shift when both
 *    agree). Nearest rather than dropped where lines were added: an
 *    edit moves only the lines after it, and a line is likelier on the
 *    same side of it as the paired line next to it; dropping every line
 *    between pairs of different shifts would throw away the loop bodies
 *    of any function edited between its calls, the commonest edit of a
 *    hot function (LLVM 17's salvage also maps every location by its
 *    anchors). A line that lands before the function's start or after
 *    its last line in the new release is dropped (it maps onto no code
 *    of it). A function without a call site on either side
 *    keeps its offsets (nothing to anchor; its lines past the new end are
 *    dropped); one with call sites of which none pair up is dropped (its
 *    body was replaced). Call targets move with their lines.
 *  - renamed: the name is gone from the target. A function of the target
 *    whose name neither the old release nor the profile has (a new name)
 *    and whose call sites are most like the old function's (the common
 *    subsequence over the longer sequence at least RENAME_MIN, at least
 *    RENAME_MIN_ANCHORS common call sites, line counts within a factor
 *    RENAME_SIZE of each other) takes its profile, matched as above, under
 *    the new name; the profile's call targets and inlined instances of the
 *    old name follow. Renamed in the profile rather than through clang's
 *    -fprofile-remapping-file: a remapping file states equivalences of
 *    mangled names (a namespace or a type renamed, matched by the
 *    Itanium mangling's structure), not that one plain function became
 *    another of an unrelated name; and every reader of the profile (gcc,
 *    llvm-profdata, a person) then sees the name the code has.
 *  - dropped: no match (gone, renamed beyond recognition, rewritten):
 *    left out rather than allowed to mislead, and kept out of the
 *    profile symbol list (emit_llvm.c) so that clang does not build a
 *    function that still exists as cold either.
 * Functions of the target that had no samples are left to the compiler
 * (the symbol list comes from the sampled releases' files, so new
 * functions are in neither). Functions of other files of the stacks
 * (shared libraries) are kept as they are and counted fresh.
 *
 * Inlined instances (nested profiles) follow their call site: its offset
 * moves by the parent's matching; their own lines (offsets from the
 * callee's start) by the callee's own matching, computed the same way
 * from the callee's shapes (inlined copies included); an instance of a
 * callee that is gone (and not renamed) is dropped. Lines mapped onto
 * one new line merge (the larger count with counts=blocks, where a line
 * counts its hottest block; the sum with counts=samples).
 *
 * Limits: the matching works on the profile's tree, where the samples of
 * several releases in one window are already merged by (function,
 * offset): each function is matched from the release most of its samples
 * came from, and the others' samples in it move with them (a pull with
 * build_id= of the old release, or a window of one release, matches one
 * release's samples alone). The shapes are those of the two builds the server has (the
 * old release as sampled, the new as uploaded), so a function whose code
 * generation alone changed (another inlining) can be "matched" with
 * every offset unchanged; discriminators are kept as they were; a
 * function body that moved to a new function (a split) keeps only the
 * samples of the part that stayed (the new function is new code);
 * probe-based profiles are refused (their checksums would need the new
 * release's optimized-build probe descriptors); anchors are direct calls
 * and inlined calls, not indirect calls or calls through the PLT.
 *
 * Workload: one disassembly and one DWARF lookup per instruction of each
 * binary compared (the target and the sampled releases: seconds for a
 * binary of tens of MiB of code), then per function one LCS of its call
 * sites (at most LCS_MAX_CELLS cells; beyond, offsets are kept) and, for
 * each function whose name is gone, one per new name of the target.
 * Memory: the shapes of every release compared, held to the end, counted
 * in the memory budget's builds part as they grow (mem_hold); a pull
 * whose shapes do not fit stops with FDO_EBUSY rather than grow past it.
 * So that a large binary fits, shapes are made only for the functions
 * the matching reads: an old release's for the profile's names (the
 * names of its tree: its functions and their inlined callees), the
 * target's for those and for the names no old release has (the rename
 * candidates); of every other function only its name is kept (shape_has:
 * a function gone, a name not new). So the old releases are scanned
 * first (their names as hashes, name_hash), then the target, then the
 * old releases' shapes are made (scan_finish). The scan merges its rows
 * as it goes (compact) rather than holding a row per instruction until
 * its end. None of this changes an answer: the matching reads exactly
 * the shapes it read before, and the target's names are numbered in the
 * order its scan meets them as before (the numbers order call sites at
 * one line); an old release's names the target lacks are numbered after
 * them, as before, and match nothing of the target whatever their
 * order. Two names of one 64-bit hash would count as one (not seen).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/stale.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"
#include "common/mem.h"

#define NONE		   UINT32_MAX
#define MAX_FRAMES	   64
#define LCS_MAX_CELLS	   (16u << 20)
#define RENAME_MIN	   0.5
#define RENAME_MIN_ANCHORS 2
#define RENAME_SIZE	   2.0
#define COMPACT_MIN	   (1u << 12)
#define OFF_WRAP                                                               \
	0x8000u /* offsets at or past this are lines before the
			    function's start (wrapped): kept as they are */

/* ------------------------------------------------------------ shapes -- */

struct sline {
	uint32_t name, off;
	uint32_t n; /* instructions whose innermost frame is this line */
};

struct sanc {
	uint32_t name, off, callee;
};

struct shape {
	uint32_t name;
	uint32_t first_off, noffs; /* offs[...], nins[...], sorted */
	uint32_t first_anc, nanc;  /* anc[...], by (off, callee) */
	uint32_t span;		   /* largest offset below OFF_WRAP */
};

struct shapes {
	int state;		  /* 0 not loaded, 1 loaded, -1 failed */
	uint64_t held;		  /* counted in the builds part (mem_hold) */
	uint64_t want;		  /* refused: what the part would have held */
	uint64_t peak;		  /* the most held (while scanning) */
	struct fdo_map64 by_name; /* name + 1 -> shape index */
	struct shape *v;
	size_t n;
	uint32_t *offs;
	uint32_t *nins; /* per line: its own instructions (a signature) */
	struct sanc *anc;
	uint8_t *has;	/* target: bit per name (string index) with a line */
	size_t cap_has; /* bytes */
	size_t nhas;	/* names with a line */
	const struct prof *p;
	struct fdo_map64 hashes; /* old release: name_hash -> 1, every name
				    with a line (its other names) */
	struct scan *pending;	 /* old release: its rows, until the target's
				    scan has numbered the names (scan_finish) */
};

/* A name of an old release's scan (numbered by the scan itself). */
struct lname {
	/* the index's string while the scan runs; after it a copy when a
	 * kept call site names it (marked & 2), else NULL */
	char *str;
	uint32_t pid;	 /* the profile's index: kept names; then callees */
	uint32_t marked; /* 1: in S->hashes; 2: a kept call site names it */
};

struct scan {
	struct shapes *S; /* whose held counts the scan's arrays too */
	struct prof *p;
	sym_index *idx;
	/* Which functions' rows are kept. An old release (local): the
	 * names of wantset (name_hash -> the profile's index); its names
	 * are numbered by the scan (ln, names: pointer -> ln index) and
	 * its call sites name callees by ln index until scan_finish. The
	 * target: names below nwant with want set, and, when olds, the
	 * names none of the olds has (tkeep: per name, 1 kept, 2 not). */
	int local;
	const struct fdo_map64 *wantset;
	struct lname *ln;
	size_t nln, cap_ln;
	const uint8_t *want;
	size_t nwant;
	struct shapes *const *olds;
	size_t nolds;
	uint8_t *tkeep;
	size_t cap_tkeep;
	struct fdo_map64 names; /* string pointer -> string index */
	int name_rc;		/* local_name's refusal */
	size_t names_cap;	/* names' slots counted in S->held */
	struct sline *lines;
	size_t nlines, cap_lines;
	struct sanc *anc;
	size_t nanc, cap_anc;
};

/*
 * The shapes are counted in the memory budget's builds part (common/
 * mem.h) as they grow, beside the profile being made: 12 bytes per row
 * while scanning (merged every time the rows double), then 8 per line
 * and 64 per function kept; an old release's names 16 bytes each while
 * it is scanned, then a slot of 12 of a hash table; the target's a bit
 * and a byte; while scanning, the memo of names' addresses (12 bytes a
 * slot); and a pull holds them for two releases or more
 * (docs/operations.md has the figures). mem_hold takes
 * bytes more for S, or refuses (FDO_EBUSY) when they would take the part
 * past its cap, before anything is allocated for them; mem_drop gives
 * some back. mem_take counts a table used for a while (lcs), *want
 * getting what the part would have held when it refuses.
 */
/* What this thread's pull holds in the builds part: its profile (the
 * caller's, agg_stale_release.held) and what matching took; one pull's
 * matching runs on one thread. A refusal when no one else holds any of
 * the part is for good (waiting frees nothing): FDO_ELIMIT, answered
 * without Retry-After; with others in it, FDO_EBUSY, retry later. */
static _Thread_local uint64_t mine;
/* The first refusal of this pull's matching came when no one else held
 * any of the part: waiting will not help (FDO_ELIMIT, not FDO_EBUSY). */
static _Thread_local int refused_alone;

static int mem_take(uint64_t bytes, uint64_t *want)
{
	uint64_t used = 0;
	if (!fdo_mem_try_take(FDO_MEM_BUILDS, bytes, &used)) {
		if (!*want) {
			*want = used + bytes;
			refused_alone = used <= mine;
		}
		return FDO_EBUSY;
	}
	mine += bytes;
	return FDO_OK;
}

static void mem_give(uint64_t bytes)
{
	fdo_mem_give(FDO_MEM_BUILDS, bytes);
	mine -= bytes < mine ? bytes : mine;
}

static int mem_hold(struct shapes *S, uint64_t bytes)
{
	int rc = mem_take(bytes, &S->want);
	if (rc)
		return rc;
	S->held += bytes;
	if (S->held > S->peak)
		S->peak = S->held;
	return FDO_OK;
}

static void mem_drop(struct shapes *S, uint64_t bytes)
{
	mem_give(bytes);
	S->held -= bytes;
}

/* What growing an array of cap elements of elem bytes to hold need takes
 * (fdo_grow's doubling from 16), counted before it grows. */
static int hold_growth(struct shapes *S, size_t cap, size_t need, size_t elem)
{
	if (need <= cap)
		return FDO_OK;
	size_t c = cap ? cap : 16;
	while (c < need && c <= SIZE_MAX / 2)
		c *= 2;
	return mem_hold(S, (uint64_t)(c - cap) * elem);
}

/* Whether the release has lines of function name (with or without its
 * shape: see shapes_build's want). */
static uint64_t name_hash(const char *str)
{
	uint64_t h = fdo_hash_words(str, strlen(str));
	return h ? h : 1; /* 0: an empty slot of fdo_map64 */
}

static int shape_has(const struct shapes *S, uint32_t name)
{
	uint32_t v;
	if (S->state != 1 || name == NONE)
		return 0;
	if (S->hashes.cap) /* an old release: by the name's hash */
		return name < S->p->nstrings &&
		       fdo_map64_get(&S->hashes,
				     name_hash(prof_str(S->p, name)), &v);
	return name / 8 < S->cap_has && (S->has[name / 8] >> (name % 8) & 1);
}

/* Marks name as seen in S (its bit, the bitmap grown and counted). */
static int mark_has(struct shapes *S, uint32_t name)
{
	size_t need = name / 8 + 1;
	if (need > S->cap_has) {
		size_t cap = S->cap_has ? S->cap_has : 64;
		while (cap < need)
			cap *= 2;
		int rc = mem_hold(S, cap - S->cap_has);
		if (rc)
			return rc;
		uint8_t *h = realloc(S->has, cap);
		if (!h) {
			mem_drop(S, cap - S->cap_has);
			return FDO_ENOMEM;
		}
		memset(h + S->cap_has, 0, cap - S->cap_has);
		S->has = h;
		S->cap_has = cap;
	}
	if (!(S->has[name / 8] >> (name % 8) & 1))
		S->nhas++;
	S->has[name / 8] |= (uint8_t)(1u << (name % 8));
	return FDO_OK;
}

/* Marks hash h as a name of old release S (counted as the map grows). */
static int mark_hash(struct shapes *S, uint64_t h)
{
	size_t cap = S->hashes.cap;
	uint32_t v;
	int found;
	if (fdo_map64_put(&S->hashes, h, 1, &v, &found))
		return FDO_ENOMEM;
	if (!found)
		S->nhas++;
	if (S->hashes.cap == cap)
		return FDO_OK;
	/* counted once grown: the map grows inside fdo_map64_put */
	return mem_hold(S, (uint64_t)(S->hashes.cap - cap) *
				   (sizeof(uint64_t) + sizeof(uint32_t)));
}

/* An old release's scan: the ln index of str, NONE for none, NONE - 1
 * out of memory or refused (rc). */
static uint32_t local_name(struct scan *s, const char *str, int *rc)
{
	uint32_t i;
	int found;
	if (!str || !*str)
		return NONE;
	uint64_t key = (uint64_t)(uintptr_t)str;
	if (fdo_map64_get(&s->names, key, &i))
		return i;
	if ((*rc = hold_growth(s->S, s->cap_ln, s->nln + 1, sizeof *s->ln)))
		return NONE - 1;
	if (fdo_grow(s->ln, s->cap_ln, s->nln + 1) ||
	    fdo_map64_put(&s->names, key, (uint32_t)s->nln, &i, &found)) {
		*rc = FDO_ENOMEM;
		return NONE - 1;
	}
	uint64_t h = name_hash(str);
	uint32_t pid = NONE;
	if (!fdo_map64_get(s->wantset, h, &pid))
		pid = NONE;
	s->ln[s->nln] = (struct lname){.str = (char *)str, .pid = pid};
	return (uint32_t)s->nln++;
}

/*
 * The target's scan: whether name's rows are kept. Those of the
 * profile's names, and, when there are old releases, of the names none
 * of them has (the candidates for a rename); the decision remembered per
 * name (tkeep). -1: out of memory.
 */
static int target_keeps(struct scan *s, uint32_t name)
{
	if (!s->want)
		return 1;
	if (name < s->nwant && s->want[name])
		return 1;
	if (!s->nolds)
		return 0;
	if (name >= s->cap_tkeep) {
		size_t cap = s->cap_tkeep ? s->cap_tkeep : 1024;
		while (cap <= name)
			cap *= 2;
		if (hold_growth(s->S, s->cap_tkeep, cap, 1))
			return -1;
		uint8_t *t = realloc(s->tkeep, cap);
		if (!t)
			return -1;
		memset(t + s->cap_tkeep, 0, cap - s->cap_tkeep);
		s->tkeep = t;
		s->cap_tkeep = cap;
	}
	if (!s->tkeep[name]) {
		uint64_t h = name_hash(prof_str(s->p, name));
		uint32_t v;
		int any = 0;
		for (size_t i = 0; i < s->nolds && !any; i++)
			any = fdo_map64_get(&s->olds[i]->hashes, h, &v);
		s->tkeep[name] = any ? 2 : 1;
	}
	return s->tkeep[name] == 1;
}

static uint32_t scan_intern(struct scan *s, const char *str)
{
	uint32_t i = s->local ? local_name(s, str, &s->name_rc)
			      : prof_intern_memo(s->p, &s->names, str);
	/* NONE is PROF_NONE. The memo (a string's address -> its number)
	 * is counted too, once grown (it grows inside the put). */
	if (s->names.cap != s->names_cap && i != NONE - 1) {
		int rc = mem_hold(
			s->S, (uint64_t)(s->names.cap - s->names_cap) *
				      (sizeof(uint64_t) + sizeof(uint32_t)));
		s->names_cap = s->names.cap;
		if (rc) {
			s->name_rc = rc;
			return NONE - 1;
		}
	}
	return i;
}

static uint32_t scan_name_at(struct scan *s, uint64_t vaddr)
{
	struct sym_frame sf[MAX_FRAMES];
	size_t k = 0;
	sym_index_lookup(s->idx, vaddr, sf, MAX_FRAMES, &k, NULL);
	if (!k)
		return NONE;
	if (k > MAX_FRAMES)
		k = MAX_FRAMES;
	return scan_intern(s, sf[k - 1].function);
}

static int push_line(struct scan *s, uint32_t name, uint32_t off, uint32_t n)
{
	int rc = hold_growth(s->S, s->cap_lines, s->nlines + 1,
			     sizeof *s->lines);
	if (rc)
		return rc;
	if (fdo_grow(s->lines, s->cap_lines, s->nlines + 1))
		return FDO_ENOMEM;
	s->lines[s->nlines++] = (struct sline){name, off, n};
	return FDO_OK;
}

static int push_anc(struct scan *s, uint32_t name, uint32_t off,
		    uint32_t callee)
{
	int rc = hold_growth(s->S, s->cap_anc, s->nanc + 1, sizeof *s->anc);
	if (rc)
		return rc;
	if (fdo_grow(s->anc, s->cap_anc, s->nanc + 1))
		return FDO_ENOMEM;
	s->anc[s->nanc++] = (struct sanc){name, off, callee};
	return FDO_OK;
}

static uint32_t frame_off(const struct sym_frame *f)
{
	return (f->line - f->start_line) & 0xffff; /* as model.c keys lines */
}

/* One function symbol's instructions into s. */
static int scan_function(struct scan *s, const sym_code *code, uint64_t addr,
			 uint64_t size)
{
	struct sym_cfg *cfg = NULL;
	if (sym_cfg_build(code, addr, size, &cfg))
		return FDO_OK; /* undecodable: its lines stay unknown */
	struct sym_frame sf[MAX_FRAMES];
	const char *prev_fn[MAX_FRAMES];
	uint32_t prev_line[MAX_FRAMES];
	size_t prev_k = 0, last0 = SIZE_MAX; /* the line of the chain's
						 innermost frame */
	int rc = FDO_OK;
	for (size_t i = 0; i < cfg->ninsns && !rc; i++) {
		const struct sym_insn *in = &cfg->insns[i];
		size_t k = 0;
		sym_index_lookup(s->idx, in->addr, sf, MAX_FRAMES, &k, NULL);
		if (k > MAX_FRAMES)
			k = MAX_FRAMES;
		int call = in->target &&
			   (in->kind == SYM_INSN_CALL ||
			    (in->kind == SYM_INSN_JUMP &&
			     (in->target < addr || in->target >= addr + size)));
		/* Consecutive instructions of one chain add nothing new. */
		int same = k == prev_k;
		for (size_t j = 0; j < k && same; j++)
			same = sf[j].function == prev_fn[j] &&
			       sf[j].line == prev_line[j];
		prev_k = k;
		for (size_t j = 0; j < k; j++) {
			prev_fn[j] = sf[j].function;
			prev_line[j] = sf[j].line;
		}
		if (same && !call) {
			if (last0 != SIZE_MAX)
				s->lines[last0].n++;
			continue;
		}
		last0 = SIZE_MAX;
		for (size_t j = 0; j < k && !rc; j++) {
			if (!sf[j].line)
				continue;
			uint32_t name = scan_intern(s, sf[j].function);
			if (name == NONE)
				continue;
			if (name == NONE - 1) {
				rc = s->name_rc ? s->name_rc : FDO_ENOMEM;
				break;
			}
			uint32_t off = frame_off(&sf[j]), row = name;
			int keep;
			if (s->local) {
				struct lname *l = &s->ln[name];
				if (!(l->marked & 1)) {
					rc = mark_hash(s->S, name_hash(l->str));
					l->marked |= 1;
				}
				row = l->pid;
				keep = row != NONE;
			} else {
				rc = mark_has(s->S, name);
				keep = target_keeps(s, name);
				if (keep < 0)
					rc = FDO_ENOMEM;
			}
			if (!rc && keep > 0)
				rc = push_line(s, row, off, j == 0);
			if (j == 0 && keep > 0)
				last0 = s->nlines - 1;
			/* The target's callees are numbered either way:
			 * names are numbered in the order they are met,
			 * and the numbers order call sites at one line. */
			uint32_t callee = NONE;
			if (j > 0)
				callee = scan_intern(s, sf[j - 1].function);
			else if (call)
				callee = scan_name_at(s, in->target);
			if (callee == NONE - 1)
				rc = s->name_rc ? s->name_rc : FDO_ENOMEM;
			else if (!rc && callee != NONE && keep > 0) {
				if (s->local)
					s->ln[callee].marked |= 2;
				rc = push_anc(s, row, off, callee);
			}
		}
	}
	sym_cfg_free(cfg);
	return rc;
}

static int cmp_sline(const void *x, const void *y)
{
	const struct sline *a = x, *c = y;
	if (a->name != c->name)
		return a->name < c->name ? -1 : 1;
	return a->off < c->off ? -1 : a->off > c->off;
}

static int cmp_sanc(const void *x, const void *y)
{
	const struct sanc *a = x, *c = y;
	if (a->name != c->name)
		return a->name < c->name ? -1 : 1;
	if (a->off != c->off)
		return a->off < c->off ? -1 : 1;
	return a->callee < c->callee ? -1 : a->callee > c->callee;
}

static uint64_t extent(const struct sym_func *funcs, size_t nf,
		       const struct sym_func *f)
{
	uint64_t size = f->size;
	for (const struct sym_func *g = f + 1; g < funcs + nf; g++)
		if (g->addr > f->addr) {
			if (!size || g->addr - f->addr < size)
				size = g->addr - f->addr;
			break;
		}
	return size;
}

static void scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->nln; i++)
		free(s->ln[i].str);
	free(s->ln);
	free(s->tkeep);
	fdo_map64_fini(&s->names);
	free(s->lines);
	free(s->anc);
}

static void shapes_fini(struct shapes *S)
{
	mem_give(S->held);
	fdo_map64_fini(&S->by_name);
	free(S->v);
	free(S->offs);
	free(S->nins);
	free(S->anc);
	free(S->has);
	fdo_map64_fini(&S->hashes);
	if (S->pending) { /* held is S's: given back above */
		scan_free(S->pending);
		free(S->pending);
	}
	memset(S, 0, sizeof *S);
}

static const struct shape *shape_of(const struct shapes *S, uint32_t name)
{
	uint32_t i;
	if (S->state != 1 || name == NONE ||
	    !fdo_map64_get(&S->by_name, (uint64_t)name + 1, &i))
		return NULL;
	return &S->v[i];
}

/*
 * compact merges the scan's rows so far (equal lines summed, equal call
 * sites once): what the end of the scan does, done early so that the
 * rows of a function's many copies (inlined in many places) and of its
 * many instructions per line are not all held until the end. Merging is
 * a sum, so merging early gives the same shapes.
 */
static void compact(struct scan *s)
{
	qsort(s->lines, s->nlines, sizeof *s->lines, cmp_sline);
	qsort(s->anc, s->nanc, sizeof *s->anc, cmp_sanc);
	size_t nl = 0, na = 0;
	for (size_t i = 0; i < s->nlines; i++)
		if (!nl || cmp_sline(&s->lines[i], &s->lines[nl - 1]))
			s->lines[nl++] = s->lines[i];
		else
			s->lines[nl - 1].n += s->lines[i].n;
	for (size_t i = 0; i < s->nanc; i++)
		if (!na || cmp_sanc(&s->anc[i], &s->anc[na - 1]))
			s->anc[na++] = s->anc[i];
	s->nlines = nl;
	s->nanc = na;
}

/*
 * scan_binary reads every function of the ELF file elf (s->idx its
 * index) into s's rows. An old release's scan (s->local) keeps the
 * strings of the callees its kept call sites name, for scan_finish.
 */
static int scan_binary(struct scan *s, const char *elf)
{
	struct sym_func *funcs = NULL;
	size_t nf = 0;
	sym_code *code = NULL;
	int rc = sym_elf_functions(elf, &funcs, &nf);
	if (!rc)
		rc = sym_code_open(elf, &code);
	uint64_t done = 0;
	size_t compact_at = COMPACT_MIN;
	for (size_t i = 0; i < nf && !rc; i++) {
		const struct sym_func *f = &funcs[i];
		uint64_t size = extent(funcs, nf, f);
		if (!size || f->addr < done)
			continue; /* an alias, or nothing to read */
		done = f->addr + size;
		if (s->nlines + s->nanc >= compact_at) {
			compact(s);
			/* again once the rows have doubled: merging costs
			 * a sort, so it stays a share of the scan */
			compact_at = 2 * (s->nlines + s->nanc);
			if (compact_at < COMPACT_MIN)
				compact_at = COMPACT_MIN;
		}
		rc = scan_function(s, code, f->addr, size);
	}
	sym_code_close(code);
	sym_elf_functions_free(funcs);
	fdo_map64_fini(&s->names);
	mem_drop(s->S, (uint64_t)s->names_cap *
			       (sizeof(uint64_t) + sizeof(uint32_t)));
	s->names_cap = 0;
	/* Every string the index's until here: from here the copies (or
	 * NULL), which scan_free frees. */
	for (size_t i = 0; i < s->nln; i++) {
		struct lname *l = &s->ln[i];
		int copy = !rc && (l->marked & 2);
		l->str = copy ? strdup(l->str) : NULL;
		if (copy && !l->str)
			rc = FDO_ENOMEM;
	}
	return rc;
}

/*
 * scan_finish makes S's shapes of s's rows (rc: the scan's error, then
 * only given back) and frees s. An old release's call sites name their
 * callees by the profile's strings from here on (interned: after the
 * target's scan, which numbered the target's names as met).
 */
static int scan_finish(struct scan *s, int rc)
{
	struct shapes *S = s->S;
	struct prof *p = s->p;
	for (size_t i = 0; s->local && i < s->nanc && !rc; i++) {
		struct lname *l = &s->ln[s->anc[i].callee];
		if (l->pid == NONE && (l->pid = prof_intern(p, l->str)) == NONE)
			rc = FDO_ENOMEM;
		s->anc[i].callee = l->pid;
	}
	if (s->ln) {
		for (size_t i = 0; i < s->nln; i++)
			free(s->ln[i].str);
		free(s->ln);
		s->ln = NULL;
		mem_drop(S, (uint64_t)s->cap_ln * sizeof *s->ln);
		s->nln = s->cap_ln = 0;
	}
	if (s->tkeep) {
		free(s->tkeep);
		s->tkeep = NULL;
		mem_drop(S, (uint64_t)s->cap_tkeep);
		s->cap_tkeep = 0;
	}
	if (!rc) {
		compact(s);
		size_t nl = s->nlines, na = s->nanc, nfn = 0;
		for (size_t i = 0; i < nl; i++)
			nfn += !i || s->lines[i].name != s->lines[i - 1].name;
		/* The call sites' array down to its size (given back), the
		 * shapes' own arrays and their index (at most a slot and a
		 * half per name at the map's load), then the scan's lines
		 * are given back. */
		if (na < s->cap_anc) {
			struct sanc *a =
				realloc(s->anc, (na ? na : 1) * sizeof *s->anc);
			if (a) {
				s->anc = a;
				mem_drop(S, (uint64_t)(s->cap_anc - na) *
						    sizeof *s->anc);
				s->cap_anc = na;
			}
		}
		uint64_t bytes =
			(uint64_t)(nl ? nl : 1) *
				(sizeof *S->offs + sizeof *S->nins) +
			(uint64_t)(nfn ? nfn : 1) *
				(sizeof *S->v +
				 3 * (sizeof(uint64_t) + sizeof(uint32_t)));
		rc = mem_hold(S, bytes);
		if (!rc) {
			S->offs = malloc((nl ? nl : 1) * sizeof *S->offs);
			S->nins = malloc((nl ? nl : 1) * sizeof *S->nins);
			S->v = malloc((nfn ? nfn : 1) * sizeof *S->v);
			if (!S->offs || !S->nins || !S->v)
				rc = FDO_ENOMEM;
		}
		/* Every anchor's (name, off) is a line too: group by the
		 * lines' names, anchors alongside. */
		size_t a = 0;
		for (size_t i = 0; i < nl && !rc;) {
			uint32_t name = s->lines[i].name;
			struct shape *sh = &S->v[S->n];
			*sh = (struct shape){.name = name,
					     .first_off = (uint32_t)i};
			for (; i < nl && s->lines[i].name == name; i++) {
				S->offs[i] = s->lines[i].off;
				S->nins[i] = s->lines[i].n;
				if (s->lines[i].off < OFF_WRAP &&
				    s->lines[i].off > sh->span)
					sh->span = s->lines[i].off;
			}
			sh->noffs = (uint32_t)i - sh->first_off;
			while (a < na && s->anc[a].name < name)
				a++;
			sh->first_anc = (uint32_t)a;
			while (a < na && s->anc[a].name == name)
				a++;
			sh->nanc = (uint32_t)a - sh->first_anc;
			uint32_t v;
			int found;
			rc = fdo_map64_put(&S->by_name, (uint64_t)name + 1,
					   (uint32_t)S->n, &v, &found);
			S->n++;
		}
		S->anc = s->anc;
		s->anc = NULL;
	}
	free(s->lines);
	s->lines = NULL;
	mem_drop(S, (uint64_t)s->cap_lines * sizeof *s->lines);
	if (s->anc) /* not taken by S: given back */
		mem_drop(S, (uint64_t)s->cap_anc * sizeof *s->anc);
	free(s->anc);
	s->anc = NULL;
	if (rc) {
		uint64_t want = S->want;
		shapes_fini(S);
		S->want = want;
	}
	S->state = rc ? -1 : 1;
	scan_free(s);
	return rc;
}

/*
 * The shapes of every function of the ELF file elf (its index idx) into
 * S, with s's kept rows (s: S, p and what is kept set). An old release's
 * wait in S->pending for scan_finish until the target's are made.
 */
static int shapes_build(struct scan *s, const char *elf)
{
	struct shapes *S = s->S;
	S->p = s->p;
	int rc = scan_binary(s, elf);
	if (!rc && s->local) {
		if ((S->pending = malloc(sizeof *S->pending))) {
			*S->pending = *s;
			return FDO_OK;
		}
		rc = FDO_ENOMEM;
	}
	return scan_finish(s, rc);
}

static int shape_same(const struct shapes *A, const struct shape *a,
		      const struct shapes *B, const struct shape *b)
{
	if (a->noffs != b->noffs || a->nanc != b->nanc)
		return 0;
	if (memcmp(A->offs + a->first_off, B->offs + b->first_off,
		   a->noffs * sizeof *A->offs))
		return 0;
	for (uint32_t i = 0; i < a->nanc; i++) {
		const struct sanc *x = &A->anc[a->first_anc + i],
				  *y = &B->anc[b->first_anc + i];
		if (x->off != y->off || x->callee != y->callee)
			return 0;
	}
	return 1;
}

/* --------------------------------------------------------- matching -- */

/*
 * lcs pairs the longest common subsequence of a[0..na) and b[0..nb):
 * ia[i], ib[i] for i < *out, its length (increasing); *out SIZE_MAX when
 * the table would exceed LCS_MAX_CELLS. Its table is counted in the
 * builds part while it lives: FDO_EBUSY (*want set, mem_take) when it
 * does not fit, FDO_ENOMEM when it cannot be had (an answer must not
 * depend on the heap's state, so that is not "too large" either).
 */
static int lcs(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
	       uint32_t *ia, uint32_t *ib, uint64_t *want, size_t *out)
{
	*out = 0;
	if (!na || !nb)
		return FDO_OK;
	if ((double)(na + 1) * (double)(nb + 1) > LCS_MAX_CELLS ||
	    na >= 0xffff || nb >= 0xffff) {
		*out = SIZE_MAX;
		return FDO_OK;
	}
	size_t w = nb + 1;
	uint64_t bytes = (uint64_t)(na + 1) * w * sizeof(uint16_t);
	int rc = mem_take(bytes, want);
	if (rc)
		return rc;
	uint16_t *t = calloc((na + 1) * w, sizeof *t);
	if (!t) {
		mem_give(bytes);
		return FDO_ENOMEM;
	}
	/* t[i][j]: the LCS of a[i..) and b[j..), so the walk goes forward. */
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			t[i * w + j] = a[i] == b[j] ? t[(i + 1) * w + j + 1] + 1
				       : t[(i + 1) * w + j] >= t[i * w + j + 1]
					       ? t[(i + 1) * w + j]
					       : t[i * w + j + 1];
	size_t k = 0, i = 0, j = 0;
	while (i < na && j < nb) {
		if (a[i] == b[j]) {
			ia[k] = (uint32_t)i++;
			ib[k++] = (uint32_t)j++;
		} else if (t[(i + 1) * w + j] >= t[i * w + j + 1]) {
			i++;
		} else {
			j++;
		}
	}
	free(t);
	mem_give(bytes);
	*out = k;
	return FDO_OK;
}

enum { FM_SAME, FM_MAP, FM_NONE };

/* How the offsets of one function move: pairs (old, new) in order. */
struct opair {
	uint32_t o, n;
};

struct fmap {
	int state;
	struct opair *pr;
	size_t k, cap;
	uint32_t span; /* FM_MAP: the new function's last offset */
	double score;  /* common anchors over the longer sequence */
	size_t common; /* common anchors */
};

static void fmap_fini(struct fmap *f)
{
	free(f->pr);
	memset(f, 0, sizeof *f);
}

/* One pair more, if it keeps both sides in order. */
static int fm_add(struct fmap *fm, uint32_t o, uint32_t n)
{
	if (o >= OFF_WRAP || n >= OFF_WRAP ||
	    (fm->k && (o < fm->pr[fm->k - 1].o || n < fm->pr[fm->k - 1].n)))
		return FDO_OK;
	if (fdo_grow(fm->pr, fm->cap, fm->k + 1))
		return FDO_ENOMEM;
	fm->pr[fm->k++] = (struct opair){o, n};
	return FDO_OK;
}

/*
 * refine: between two paired points whose shifts differ (lines were
 * inserted or removed between them), pair the lines themselves: the
 * longest common subsequence of the two runs of lines by their number of
 * own instructions (a line that did not change compiles to about the
 * same code), which places the edit instead of guessing it half-way.
 */
static int refine(const struct shapes *A, const struct shape *so,
		  const struct shapes *B, const struct shape *sn,
		  struct opair p0, struct opair p1, struct fmap *fm,
		  uint64_t *want)
{
	const uint32_t *ao = A->offs + so->first_off,
		       *ai = A->nins + so->first_off,
		       *bo = B->offs + sn->first_off,
		       *bi = B->nins + sn->first_off;
	size_t a0 = 0, a1, b0 = 0, b1;
	while (a0 < so->noffs && ao[a0] <= p0.o)
		a0++;
	for (a1 = a0; a1 < so->noffs && ao[a1] < p1.o;)
		a1++;
	while (b0 < sn->noffs && bo[b0] <= p0.n)
		b0++;
	for (b1 = b0; b1 < sn->noffs && bo[b1] < p1.n;)
		b1++;
	size_t na = a1 - a0, nb = b1 - b0, m = na < nb ? na : nb;
	if (!m)
		return FDO_OK;
	uint32_t *ia = malloc(m * sizeof *ia), *ib = malloc(m * sizeof *ib);
	int rc = ia && ib ? FDO_OK : FDO_ENOMEM;
	size_t k = 0;
	if (!rc)
		rc = lcs(ai + a0, na, bi + b0, nb, ia, ib, want, &k);
	for (size_t i = 0; i < k && k != SIZE_MAX && !rc; i++)
		rc = fm_add(fm, ao[a0 + ia[i]], bo[b0 + ib[i]]);
	free(ia);
	free(ib);
	return rc;
}

/* fmap_build: how so (in A) maps onto sn (in B). */
static int fmap_build(const struct shapes *A, const struct shape *so,
		      const struct shapes *B, const struct shape *sn,
		      struct fmap *fm, uint64_t *want)
{
	memset(fm, 0, sizeof *fm);
	if (shape_same(A, so, B, sn)) {
		fm->state = FM_SAME;
		fm->score = 1;
		return FDO_OK;
	}
	fm->state = FM_MAP;
	fm->span = sn->span;
	size_t na = so->nanc, nb = sn->nanc, m = na < nb ? na : nb;
	uint32_t *a = malloc((na ? na : 1) * sizeof *a),
		 *b = malloc((nb ? nb : 1) * sizeof *b);
	uint32_t *ia = malloc((m ? m : 1) * sizeof *ia),
		 *ib = malloc((m ? m : 1) * sizeof *ib);
	struct opair *pts = malloc((m + 2) * sizeof *pts);
	int rc = a && b && ia && ib && pts ? FDO_OK : FDO_ENOMEM;
	size_t k = 0, np = 0;
	if (!rc) {
		for (size_t i = 0; i < na; i++)
			a[i] = A->anc[so->first_anc + i].callee;
		for (size_t i = 0; i < nb; i++)
			b[i] = B->anc[sn->first_anc + i].callee;
		rc = lcs(a, na, b, nb, ia, ib, want, &k);
	}
	if (!rc) {
		if (k == SIZE_MAX)
			k = 0; /* too large to pair: offsets kept */
		else if (!k && na && nb)
			fm->state = FM_NONE; /* no call site in common */
		fm->common = k;
		fm->score = na || nb ? (double)k / (double)(na > nb ? na : nb)
				     : 0;
		/* The start line (offset 0 on both sides: offsets count
		 * from it), the paired call sites, the last lines. */
		pts[np++] = (struct opair){0, 0};
		for (size_t i = 0; i < k; i++)
			pts[np++] = (struct opair){
				A->anc[so->first_anc + ia[i]].off,
				B->anc[sn->first_anc + ib[i]].off};
		pts[np++] = (struct opair){so->span, sn->span};
	}
	for (size_t i = 0; i < np && !rc && fm->state == FM_MAP; i++) {
		size_t before = fm->k;
		rc = fm_add(fm, pts[i].o, pts[i].n);
		if (rc || fm->k == before || i + 1 == np)
			continue; /* out of order: no region from it */
		long d0 = (long)pts[i].n - (long)pts[i].o,
		     d1 = (long)pts[i + 1].n - (long)pts[i + 1].o;
		if (d0 != d1 && pts[i + 1].o >= pts[i].o &&
		    pts[i + 1].n >= pts[i].n)
			rc = refine(A, so, B, sn, pts[i], pts[i + 1], fm, want);
	}
	free(a);
	free(b);
	free(ia);
	free(ib);
	free(pts);
	if (rc)
		fmap_fini(fm);
	return rc;
}

/* fmap_off: where old offset x goes; 0 when it is dropped. */
static int fmap_off(const struct fmap *fm, uint32_t x, uint32_t *y)
{
	if (fm->state == FM_SAME || x >= OFF_WRAP) {
		*y = x;
		return 1;
	}
	if (fm->state != FM_MAP)
		return 0;
	long d = 0;
	if (fm->k) {
		/* the first pair at or after x */
		size_t lo = 0, hi = fm->k;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (fm->pr[mid].o < x)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < fm->k && fm->pr[lo].o == x) {
			*y = fm->pr[lo].n;
			return 1;
		}
		const struct opair *nx = lo < fm->k ? &fm->pr[lo] : NULL,
				   *pv = lo > 0 ? &fm->pr[lo - 1] : NULL;
		long dn = nx ? (long)nx->n - (long)nx->o : 0;
		long dp = pv ? (long)pv->n - (long)pv->o : 0;
		if (!pv)
			d = dn;
		else if (!nx)
			d = dp;
		else if (nx->n - pv->n < nx->o - pv->o)
			return 0; /* lines were removed between them, and
				     this one paired with none: removed */
		else /* between two pairs: the nearer one's shift (ties:
			the one before) */
			d = x - pv->o <= nx->o - x ? dp : dn;
	}
	long v = (long)x + d;
	if (v < 0 || v > (long)fm->span)
		return 0;
	*y = (uint32_t)v;
	return 1;
}

/* ----------------------------------------------------- the new tree -- */

struct ob {
	const struct prof *p;
	int use_max;		  /* merge lines by max (counts=blocks) */
	struct prof_mnode *nodes; /* becomes the model's */
	size_t nnodes, cap_nodes;
	struct prof_mline *lines;
	size_t nlines, cap_lines;
	struct prof_mtarget_at *tgts;
	size_t ntgts, cap_tgts;
	struct fdo_map128 node_map, line_map, tgt_map;
};

static uint32_t ob_node(struct ob *b, uint32_t parent, uint32_t off,
			uint32_t disc, uint32_t name)
{
	uint32_t k[4] = {parent, off, disc, name}, i;
	int found;
	if (fdo_grow(b->nodes, b->cap_nodes, b->nnodes + 1) ||
	    fdo_map128_put(&b->node_map, k, (uint32_t)b->nnodes, &i, &found))
		return NONE;
	if (!found)
		b->nodes[b->nnodes++] = (struct prof_mnode){.parent = parent,
							    .name = name,
							    .off = off,
							    .disc = disc};
	return i;
}

static int ob_line(struct ob *b, uint32_t node, uint32_t off, uint32_t disc,
		   double count, int known, uint32_t *out)
{
	uint32_t k[4] = {node, off, disc, 0}, i;
	int found;
	if (fdo_grow(b->lines, b->cap_lines, b->nlines + 1) ||
	    fdo_map128_put(&b->line_map, k, (uint32_t)b->nlines, &i, &found))
		return FDO_ENOMEM;
	if (!found) {
		b->lines[b->nlines++] = (struct prof_mline){.node = node,
							    .off = off,
							    .disc = disc,
							    .count = count,
							    .known = known};
	} else {
		struct prof_mline *l = &b->lines[i];
		l->count = b->use_max ? fmax(l->count, count)
				      : l->count + count;
		l->known |= known;
	}
	*out = i;
	return FDO_OK;
}

static int ob_tgt(struct ob *b, uint32_t line, uint32_t name, double count)
{
	uint32_t k[4] = {line, name, 0, 0}, i;
	int found;
	if (fdo_grow(b->tgts, b->cap_tgts, b->ntgts + 1) ||
	    fdo_map128_put(&b->tgt_map, k, (uint32_t)b->ntgts, &i, &found))
		return FDO_ENOMEM;
	if (!found)
		b->tgts[b->ntgts++] = (struct prof_mtarget_at){line, name, 0};
	b->tgts[i].count += count;
	return FDO_OK;
}

static void ob_fini(struct ob *b)
{
	free(b->nodes);
	free(b->lines);
	free(b->tgts);
	fdo_map128_fini(&b->node_map);
	fdo_map128_fini(&b->line_map);
	fdo_map128_fini(&b->tgt_map);
}

/* ob_finish makes the new tree a model (prof_model_layout, as
 * prof_model_build does). Nodes are created parents first, so a parent's
 * index is below its kids'. */
static int ob_finish(struct ob *b, struct prof_model *m)
{
	memset(m, 0, sizeof *m);
	m->nodes = b->nodes;
	m->nnodes = b->nnodes;
	b->nodes = NULL;
	b->nnodes = b->cap_nodes = 0;
	int rc = prof_model_layout(b->p, m, b->lines, b->nlines, b->tgts,
				   b->ntgts);
	if (rc)
		prof_model_fini(m);
	return rc;
}

/* ------------------------------------------------------ the matcher -- */

enum { ST_FRESH, ST_MATCHED, ST_RENAMED, ST_DROPPED };

/* What was decided for one function of the old tree. */
struct fdec {
	int status;
	uint32_t slot;	  /* shapes slot of its old release, NONE: none */
	uint32_t newname; /* its name in the target */
	struct fmap fm;
};

struct ctx {
	struct prof *p;
	const struct prof_model *m;
	sym_cache *cache;
	const struct agg_stale_release *target;
	const uint8_t *is_release;
	struct shapes *S; /* per build-id of p, then the target's last */
	uint32_t tslot;	  /* the target's slot */
	double *total;	  /* per old node: its lines and kids' lines */
	struct fdo_map64 renamed; /* old name + 1 -> new name */
	struct fdo_map64 fm_idx;  /* (slot << 32 | name) + 1 -> fmaps */
	struct fmap **fmaps; /* each its own allocation: callers hold them */
	size_t nfmaps, cap_fmaps;
	struct ob ob;
	char *err;
	size_t errlen;
	uint64_t refused; /* shapes refused by the budget: what the part
			     would have held with them (shapes.want) */
	uint8_t *want;	  /* per name: the profile's tree has it */
	size_t nwant;
	struct fdo_map64 wantset; /* their name_hash -> name */
	struct shapes **olds;	  /* the old releases loaded */
	size_t nolds;
};

/* The shapes of slot, once made; NULL when they are not. */
static struct shapes *shapes_get(struct ctx *c, uint32_t slot)
{
	struct shapes *S = &c->S[slot];
	return S->state == 1 ? S : NULL;
}

static void shapes_log(const char *elf, const struct shapes *S, int rc)
{
	if (!rc)
		fdo_debug("stale: shapes of %s: %zu functions, %llu bytes "
			  "(%llu at the scan's peak) of %zu with lines",
			  elf, S->n, (unsigned long long)S->held,
			  (unsigned long long)S->peak, S->nhas);
	else
		fdo_debug("stale: no shapes of %s: %s", elf, fdo_strerror(rc));
}

static const char *slot_elf(const struct ctx *c, uint32_t slot)
{
	return slot == c->tslot ? c->target->elf_path
				: c->p->build_ids[slot].elf_path;
}

/*
 * shapes_load scans slot's release once: an old release's rows wait
 * (state 2) for shapes_finish_old, after the target's scan; the target's
 * shapes are made at once. NULL when they cannot be (c->refused set when
 * the budget refused them).
 */
static struct shapes *shapes_load(struct ctx *c, uint32_t slot)
{
	struct shapes *S = &c->S[slot];
	if (S->state)
		return S->state > 0 ? S : NULL;
	const uint8_t *id;
	size_t len;
	const char *elf, *debug;
	if (slot == c->tslot) {
		id = c->target->id;
		len = c->target->len;
		elf = c->target->elf_path;
		debug = c->target->debug_path;
	} else {
		const struct prof_build_id *pb = &c->p->build_ids[slot];
		id = pb->id;
		len = pb->len;
		elf = pb->elf_path;
		debug = pb->debug_path;
	}
	S->state = -1;
	if (!elf)
		return NULL;
	sym_index *idx = NULL;
	int rc = c->cache ? sym_cache_get(c->cache, id, len, elf, debug, &idx)
			  : sym_index_open(elf, debug, NULL, &idx);
	if (rc) {
		fdo_debug("stale: cannot open the index of %s: %s", elf,
			  fdo_strerror(rc));
		return NULL;
	}
	/* The target: the profile's names and the names no old release
	 * has (rename candidates); an old release: the profile's names. */
	struct scan s = {.S = S, .p = c->p, .idx = idx};
	if (slot == c->tslot) {
		s.want = c->want;
		s.nwant = c->nwant;
		s.olds = c->olds;
		s.nolds = c->nolds;
	} else {
		s.local = 1;
		s.wantset = &c->wantset;
	}
	rc = shapes_build(&s, elf);
	if (c->cache)
		sym_cache_release(c->cache, idx);
	else
		sym_index_close(idx);
	if (rc == FDO_EBUSY && !c->refused)
		c->refused = S->want;
	if (!rc && S->pending) {
		S->state = 2;
		return S;
	}
	shapes_log(elf, S, rc);
	return S->state == 1 ? S : NULL;
}

/* An old release's shapes made of its rows (shapes_load). */
static void shapes_finish_old(struct ctx *c, uint32_t slot)
{
	struct shapes *S = &c->S[slot];
	struct scan *s = S->pending;
	if (S->state != 2 || !s)
		return;
	S->pending = NULL;
	int rc = scan_finish(s, FDO_OK);
	free(s);
	if (rc == FDO_EBUSY && !c->refused)
		c->refused = S->want;
	shapes_log(slot_elf(c, slot), S, rc);
}

static uint32_t renamed_to(const struct ctx *c, uint32_t name)
{
	uint32_t v;
	return fdo_map64_get(&c->renamed, (uint64_t)name + 1, &v) ? v : name;
}

/*
 * The matching of function old (as the release in slot has it) onto new
 * in the target, remembered; NULL on ENOMEM. A name either release
 * lacks keeps its offsets (FM_SAME): there is nothing to compare.
 */
static const struct fmap *fmap_for(struct ctx *c, uint32_t slot, uint32_t old,
				   uint32_t new)
{
	static const struct fmap same = {.state = FM_SAME, .score = 1};
	uint64_t key = ((uint64_t)slot << 32 | old) + 1;
	uint32_t i;
	if (fdo_map64_get(&c->fm_idx, key, &i))
		return c->fmaps[i];
	struct shapes *A = slot == NONE ? NULL : shapes_get(c, slot),
		      *B = shapes_get(c, c->tslot);
	const struct shape *so = A ? shape_of(A, old) : NULL,
			   *sn = B ? shape_of(B, new) : NULL;
	if (!so || !sn)
		return &same;
	int found;
	struct fmap *fm = calloc(1, sizeof *fm);
	if (!fm || fdo_grow(c->fmaps, c->cap_fmaps, c->nfmaps + 1) ||
	    fmap_build(A, so, B, sn, fm, &c->refused)) {
		free(fm);
		return NULL;
	}
	if (fdo_map64_put(&c->fm_idx, key, (uint32_t)c->nfmaps, &i, &found)) {
		fmap_fini(fm);
		free(fm);
		return NULL;
	}
	c->fmaps[c->nfmaps++] = fm;
	return fm;
}

/*
 * copy_node writes old node on (its lines mapped by fm, its kids by their
 * own matching) under new node nn; adds the counts it keeps to *kept and
 * those it drops to *dropped. slot NONE: everything as it is.
 */
static int copy_node(struct ctx *c, uint32_t on, const struct fmap *fm,
		     uint32_t slot, uint32_t nn, double *kept, double *dropped)
{
	const struct prof_model *m = c->m;
	const struct prof_mnode *n = &m->nodes[on];
	struct shapes *A = slot == NONE ? NULL : shapes_get(c, slot);
	struct shapes *B = slot == NONE ? NULL : shapes_get(c, c->tslot);
	for (uint32_t li = n->first_line; li < n->first_line + n->nlines;
	     li++) {
		const struct prof_mline *l = &m->lines[li];
		uint32_t y, nl;
		if (!fmap_off(fm, l->off, &y)) {
			*dropped += l->count;
			continue;
		}
		int rc = ob_line(&c->ob, nn, y, l->disc, l->count, l->known,
				 &nl);
		if (rc)
			return rc;
		*kept += l->count;
		for (uint32_t t = l->first_target;
		     t < l->first_target + l->ntargets; t++) {
			uint32_t name = m->targets[t].name,
				 to = slot == NONE ? name : renamed_to(c, name);
			/* a callee of the old release gone from the new */
			if (to == name && A && B && shape_has(A, name) &&
			    !shape_has(B, name))
				continue;
			if ((rc = ob_tgt(&c->ob, nl, to, m->targets[t].count)))
				return rc;
		}
	}
	for (uint32_t k = n->first_kid; k < n->first_kid + n->nkids; k++) {
		uint32_t kid = m->kids[k];
		const struct prof_mnode *kn = &m->nodes[kid];
		uint32_t y;
		uint32_t to = slot == NONE ? kn->name : renamed_to(c, kn->name);
		/* an instance of a callee gone from the new release */
		int gone = to == kn->name && A && B && shape_has(A, kn->name) &&
			   !shape_has(B, kn->name);
		const struct fmap *kfm = NULL;
		if (fmap_off(fm, kn->off, &y) && !gone) {
			if (slot == NONE)
				kfm = fm; /* everything as it is */
			else if (!(kfm = fmap_for(c, slot, kn->name, to)))
				return FDO_ENOMEM;
		}
		if (!kfm || kfm->state == FM_NONE) {
			*dropped += c->total[kid];
			continue;
		}
		uint32_t nk = ob_node(&c->ob, nn, y, kn->disc, to);
		if (nk == NONE)
			return FDO_ENOMEM;
		int rc = copy_node(c, kid, kfm, slot, nk, kept, dropped);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

struct cand {
	uint32_t name;
	int taken;
};

/*
 * rename_search: the best new function of the target for old function
 * name (as slot has it), or NONE. cands: the target's functions whose
 * names neither the old release nor the profile has.
 */
static int rename_search(struct ctx *c, uint32_t slot, uint32_t name,
			 struct cand *cands, size_t ncands, size_t *best,
			 struct fmap *fm_out)
{
	struct shapes *A = shapes_get(c, slot), *B = shapes_get(c, c->tslot);
	const struct shape *so = A ? shape_of(A, name) : NULL;
	*best = SIZE_MAX;
	memset(fm_out, 0, sizeof *fm_out);
	if (!so || !B || so->nanc < RENAME_MIN_ANCHORS)
		return FDO_OK;
	for (size_t i = 0; i < ncands; i++) {
		if (cands[i].taken)
			continue;
		const struct shape *sn = shape_of(B, cands[i].name);
		if (!sn || sn->nanc < RENAME_MIN_ANCHORS ||
		    (double)sn->noffs > RENAME_SIZE * so->noffs ||
		    (double)so->noffs > RENAME_SIZE * sn->noffs)
			continue;
		struct fmap fm;
		int rc = fmap_build(A, so, B, sn, &fm, &c->refused);
		if (rc)
			return rc;
		if (fm.state == FM_SAME) { /* same calls, same lines */
			fm.common = so->nanc;
		}
		if (fm.state != FM_NONE && fm.score >= RENAME_MIN &&
		    fm.common >= RENAME_MIN_ANCHORS &&
		    (*best == SIZE_MAX || fm.score > fm_out->score)) {
			fmap_fini(fm_out);
			*fm_out = fm;
			*best = i;
		} else {
			fmap_fini(&fm);
		}
	}
	return FDO_OK;
}

static int cmp_weight_desc(const void *x, const void *y, void *arg)
{
	const struct ctx *c = arg;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	double wa = c->total[a], wb = c->total[b];
	if (wa != wb)
		return wa > wb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* The build-id each top-level name's samples came from most (leaves and
 * call sites of its locations), as a build-id index of p, or NONE. */
static int dominant_build_ids(const struct prof *p, uint32_t *dom)
{
	struct prof_reduced red = {0};
	int rc = prof_reduced_get(p, &red);
	if (rc)
		return rc;
	struct fdo_map128 map = {0};
	double *w = NULL;
	size_t nw = 0, cap = 0;
	for (size_t i = 0; i < red.nleaves + red.npairs && !rc; i++) {
		uint32_t loc = i < red.nleaves
				       ? red.leaves[i].loc
				       : red.pairs[i - red.nleaves].caller;
		double cnt = i < red.nleaves ? red.leaves[i].count
					     : red.pairs[i - red.nleaves].count;
		if (loc >= p->nlocs || !(cnt > 0) || !isfinite(cnt))
			continue;
		const struct prof_loc *l = &p->locs[loc];
		if (!l->nframes ||
		    (size_t)l->first_frame + l->nframes > p->nframes)
			continue;
		uint32_t name =
			p->frames[l->first_frame + l->nframes - 1].function;
		uint32_t k[4] = {name, l->build_id, 0, 0}, v;
		int found;
		if (fdo_grow(w, cap, nw + 1) ||
		    fdo_map128_put(&map, k, (uint32_t)nw, &v, &found)) {
			rc = FDO_ENOMEM;
			break;
		}
		if (!found)
			w[nw++] = 0;
		w[v] += cnt;
	}
	double *best = calloc(p->nstrings ? p->nstrings : 1, sizeof *best);
	if (!rc && !best)
		rc = FDO_ENOMEM;
	for (size_t i = 0; i < p->nstrings; i++)
		dom[i] = NONE;
	/* Walk the map's slots: one entry per (name, build-id). */
	for (size_t s = 0; !rc && s < map.cap; s++) {
		const struct fdo_map128_slot *sl = &map.s[s];
		if (sl->v == UINT32_MAX || sl->k[0] >= p->nstrings)
			continue;
		uint32_t name = sl->k[0], bid = sl->k[1];
		double x = w[sl->v];
		if (dom[name] == NONE || x > best[name] ||
		    (x == best[name] && bid > dom[name])) {
			dom[name] = bid;
			best[name] = x;
		}
	}
	free(best);
	free(w);
	fdo_map128_fini(&map);
	prof_reduced_fini(&red);
	return rc;
}

static int stale_emit(struct prof *p, const struct prof_opts *o,
		      const struct prof_emitter *em, sym_cache *cache,
		      const struct agg_stale_release *target,
		      const uint8_t *is_release, struct agg_stale_stats *st,
		      struct fdo_buf *out, char *err, size_t errlen);

int agg_stale_emit(struct prof *p, const struct prof_opts *o,
		   const struct prof_emitter *em, sym_cache *cache,
		   const struct agg_stale_release *target,
		   const uint8_t *is_release, struct agg_stale_stats *st,
		   struct fdo_buf *out, char *err, size_t errlen)
{
	mine = target->held;
	refused_alone = 0;
	int rc = stale_emit(p, o, em, cache, target, is_release, st, out, err,
			    errlen);
	mine = 0;
	return rc;
}

static int stale_emit(struct prof *p, const struct prof_opts *o,
		      const struct prof_emitter *em, sym_cache *cache,
		      const struct agg_stale_release *target,
		      const uint8_t *is_release, struct agg_stale_stats *st,
		      struct fdo_buf *out, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	int llvm = !strcmp(em->name, "llvm"), gcc = !strcmp(em->name, "gcc");
	if (!llvm && !gcc) {
		snprintf(err, errlen,
			 "for_build_id= matches the llvm and gcc formats only");
		return FDO_EUNSUPPORTED;
	}
	struct prof_model m;
	unsigned flags = llvm ? PROF_MODEL_DECODE | PROF_MODEL_PROBES
			 : o->llvm_discriminators ? PROF_MODEL_DECODE
						  : 0;
	int rc = prof_model_build(p, o, flags, &m);
	if (rc) {
		snprintf(err, errlen, "cannot build the profile's tree: %s",
			 fdo_strerror(rc));
		return rc;
	}
	if (m.probes) {
		prof_model_fini(&m);
		/* Why, in the answer: the pipeline has to change what it
		 * asks for, not retry. */
		snprintf(err, errlen,
			 "the profile is probe-based (a build with "
			 "-fpseudo-probe-for-profiling): clang drops a "
			 "function whose probe checksum differs, and only the "
			 "release's own probed build has its checksums; pull "
			 "with counts=samples (line-based) or without "
			 "for_build_id=");
		return FDO_EUNSUPPORTED;
	}
	struct ctx c = {.p = p,
			.m = &m,
			.cache = cache,
			.target = target,
			.is_release = is_release,
			.tslot = (uint32_t)p->nbuild_ids,
			.err = err,
			.errlen = errlen};
	c.ob.p = p;
	c.ob.use_max = o->counts == PROF_COUNTS_BLOCKS;
	size_t nn = m.nnodes ? m.nnodes : 1;
	c.S = calloc(p->nbuild_ids + 1, sizeof *c.S);
	c.total = calloc(nn, sizeof *c.total);
	struct fdec *dec = calloc(nn, sizeof *dec);
	uint32_t *order = malloc(nn * sizeof *order);
	uint32_t *dom = NULL; /* per name of the profile (ndom) */
	size_t ndom = 0;
	struct cand *cands = NULL;
	size_t ncands = 0;
	const char **unlisted = NULL;
	size_t nunlisted = 0, cap_unlisted = 0;
	struct prof_model nm = {0};
	if (!c.S || !c.total || !dec || !order) {
		rc = FDO_ENOMEM;
		goto out;
	}
	for (size_t i = m.nnodes; i-- > 0;) {
		const struct prof_mnode *n = &m.nodes[i];
		for (uint32_t l = n->first_line; l < n->first_line + n->nlines;
		     l++)
			c.total[i] += m.lines[l].count;
		if (n->parent != NONE)
			c.total[n->parent] += c.total[i];
	}
	/* The sampled releases' shapes: load those the functions need,
	 * before names are counted (they intern names). */
	ndom = p->nstrings;
	if (!(dom = malloc((ndom ? ndom : 1) * sizeof *dom)) ||
	    (rc = dominant_build_ids(p, dom))) {
		rc = rc ? rc : FDO_ENOMEM;
		goto out;
	}
	/* The old releases' shapes are needed for the names of the
	 * profile's tree alone (its functions and their inlined callees):
	 * of their other functions only the names are kept. */
	c.nwant = p->nstrings;
	if (!(c.want = calloc(c.nwant ? c.nwant : 1, 1))) {
		rc = FDO_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m.nnodes && !rc; i++) {
		uint32_t name = m.nodes[i].name, v;
		int found;
		if (name >= c.nwant)
			continue;
		c.want[name] = 1;
		rc = fdo_map64_put(&c.wantset, name_hash(prof_str(p, name)),
				   name, &v, &found);
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < m.nfunctions; i++) {
		uint32_t f = m.functions[i], name = m.nodes[f].name;
		uint32_t bid = name < ndom ? dom[name] : NONE;
		dec[f].slot = NONE;
		dec[f].newname = name;
		if (bid == NONE || bid >= p->nbuild_ids ||
		    (is_release && !is_release[bid]))
			continue; /* another file: kept */
		const struct prof_build_id *pb = &p->build_ids[bid];
		if (pb->len == target->len &&
		    !memcmp(pb->id, target->id, pb->len))
			continue; /* sampled on the target itself: fresh */
		if (shapes_load(&c, bid))
			dec[f].slot = bid;
		else if (c.refused)
			goto busy;
	}
	/* Then the target (kept: what the old releases lack), then the old
	 * releases' shapes (named by what the target's scan numbered). */
	if (!(c.olds = calloc(p->nbuild_ids + 1, sizeof *c.olds))) {
		rc = FDO_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->nbuild_ids; i++)
		if (c.S[i].state == 2)
			c.olds[c.nolds++] = &c.S[i];
	if (!shapes_load(&c, c.tslot) && c.refused)
		goto busy;
	if (!c.S[c.tslot].nhas) {
		snprintf(err, errlen,
			 "the release's uploaded files give no line table "
			 "(is its DWARF uploaded?)");
		rc = FDO_EDWARF;
		goto out;
	}
	for (size_t i = 0; i < p->nbuild_ids; i++)
		shapes_finish_old(&c, (uint32_t)i);
	if (c.refused)
		goto busy;
	for (size_t i = 0; i < m.nfunctions; i++) {
		struct fdec *d = &dec[m.functions[i]];
		if (d->slot != NONE && c.S[d->slot].state != 1)
			d->slot = NONE; /* its shapes could not be made */
	}
	/* Rename candidates: the target's names no sampled release has and
	 * the profile does not name as a function. */
	{
		struct shapes *T = &c.S[c.tslot];
		uint8_t *named = calloc(p->nstrings ? p->nstrings : 1, 1);
		cands = malloc((T->n ? T->n : 1) * sizeof *cands);
		if (!named || !cands) {
			free(named);
			rc = FDO_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < m.nfunctions; i++)
			if (m.nodes[m.functions[i]].name < p->nstrings)
				named[m.nodes[m.functions[i]].name] = 1;
		for (size_t i = 0; i < T->n; i++) {
			uint32_t name = T->v[i].name;
			int old = name < p->nstrings && named[name];
			for (size_t s = 0; s < p->nbuild_ids && !old; s++)
				old = c.S[s].state == 1 &&
				      shape_has(&c.S[s], name);
			if (!old)
				cands[ncands++] = (struct cand){name, 0};
		}
		free(named);
	}
	/* Decide every function, heaviest first (they pick renames
	 * first). */
	for (size_t i = 0; i < m.nfunctions; i++)
		order[i] = m.functions[i];
	qsort_r(order, m.nfunctions, sizeof *order, cmp_weight_desc, &c);
	for (size_t i = 0; i < m.nfunctions && !rc; i++) {
		uint32_t f = order[i], name = m.nodes[f].name;
		struct fdec *d = &dec[f];
		if (d->slot == NONE) {
			d->status = ST_FRESH;
			d->fm.state = FM_SAME;
			continue;
		}
		struct shapes *A = &c.S[d->slot], *T = &c.S[c.tslot];
		const struct shape *so = shape_of(A, name),
				   *sn = shape_of(T, name);
		if (sn && !so) { /* nothing to compare: kept */
			d->status = ST_FRESH;
			d->fm.state = FM_SAME;
		} else if (sn) {
			if ((rc = fmap_build(A, so, T, sn, &d->fm, &c.refused)))
				break;
			d->status = d->fm.state == FM_SAME  ? ST_FRESH
				    : d->fm.state == FM_MAP ? ST_MATCHED
							    : ST_DROPPED;
		} else {
			size_t best;
			if ((rc = rename_search(&c, d->slot, name, cands,
						ncands, &best, &d->fm)))
				break;
			if (best == SIZE_MAX) {
				d->status = ST_DROPPED;
				d->fm.state = FM_NONE;
			} else {
				uint32_t v;
				int found;
				cands[best].taken = 1;
				d->status = ST_RENAMED;
				d->newname = cands[best].name;
				rc = fdo_map64_put(&c.renamed,
						   (uint64_t)name + 1,
						   d->newname, &v, &found);
			}
		}
	}
	/* Copy what is kept, in the old order. */
	for (size_t i = 0; i < m.nfunctions && !rc; i++) {
		uint32_t f = m.functions[i];
		struct fdec *d = &dec[f];
		double kept = 0, dropped = 0;
		if (d->status == ST_DROPPED) {
			dropped = c.total[f];
			uint32_t name = m.nodes[f].name;
			if (shape_has(&c.S[c.tslot], name)) {
				/* still there: keep it out of the symbol
				 * list too (not built as cold) */
				if (fdo_grow(unlisted, cap_unlisted,
					     nunlisted + 1)) {
					rc = FDO_ENOMEM;
					break;
				}
				unlisted[nunlisted++] = prof_str(p, name);
			}
		} else {
			uint32_t nf = ob_node(&c.ob, NONE, 0, 0, d->newname);
			if (nf == NONE) {
				rc = FDO_ENOMEM;
				break;
			}
			c.ob.nodes[nf].head = m.nodes[f].head;
			rc = copy_node(&c, f, &d->fm, d->slot, nf, &kept,
				       &dropped);
		}
		st->dropped += dropped;
		switch (d->status) {
		case ST_FRESH:
			st->fresh += kept;
			st->nfresh++;
			break;
		case ST_MATCHED:
			st->matched += kept;
			st->nmatched++;
			break;
		case ST_RENAMED:
			st->renamed += kept;
			st->nrenamed++;
			break;
		default:
			st->ndropped++;
		}
	}
	if (c.refused) /* shapes or a table refused by the budget */
		goto busy;
	if (!rc)
		rc = ob_finish(&c.ob, &nm);
	if (!rc) {
		fdo_debug("stale: %zu fresh, %zu matched, %zu renamed, %zu "
			  "dropped functions",
			  st->nfresh, st->nmatched, st->nrenamed, st->ndropped);
		if (nunlisted)
			qsort(unlisted, nunlisted, sizeof *unlisted, cmp_cstr);
		nm.skipped_unsym = m.skipped_unsym;
		nm.skipped_line0 = m.skipped_line0;
		rc = llvm ? emit_llvm_model(p, o, &nm, unlisted, nunlisted, out)
			  : emit_gcc_model(p, o, &nm, out);
		if (rc)
			snprintf(err, errlen, "cannot write the %s profile: %s",
				 em->name, fdo_strerror(rc));
	} else if (rc == FDO_ENOMEM) {
		snprintf(err, errlen, "out of memory matching the profile");
	}
	goto out;
busy:
	rc = refused_alone ? FDO_ELIMIT : FDO_EBUSY;
	snprintf(err, errlen,
		 "matching the releases' code (their shapes, then call-site "
		 "tables) would take the memory budget's builds part to %llu "
		 "bytes, over its %llu (%s; --memory-budget)",
		 (unsigned long long)c.refused,
		 (unsigned long long)fdo_mem_cap(FDO_MEM_BUILDS),
		 refused_alone ? "even with nothing else in the part: "
				 "raise it"
			       : "with the profiles being made");
out:
	prof_model_fini(&nm);
	for (size_t i = 0; c.S && i <= p->nbuild_ids; i++)
		shapes_fini(&c.S[i]);
	for (size_t i = 0; dec && i < m.nnodes; i++)
		fmap_fini(&dec[i].fm);
	for (size_t i = 0; i < c.nfmaps; i++) {
		fmap_fini(c.fmaps[i]);
		free(c.fmaps[i]);
	}
	free(c.fmaps);
	free(c.want);
	free(c.olds);
	fdo_map64_fini(&c.wantset);
	fdo_map64_fini(&c.fm_idx);
	fdo_map64_fini(&c.renamed);
	ob_fini(&c.ob);
	free(c.S);
	free(c.total);
	free(dec);
	free(order);
	free(dom);
	free(cands);
	free(unlisted);
	prof_model_fini(&m);
	return rc;
}
