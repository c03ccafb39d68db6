/*
 * schemas/perf.c — a perf recording, as `perf script` prints it, becomes
 * SampleBatches (`fdoctl import`): the decoder of that text, with the
 * recording's build-id table (`perf buildid-list`), and the header check
 * of the perf.data file itself.
 *
 * Input: the text of
 *   perf script -F pid,tid,time,period,event,ip,dso[,brstack] --no-inline
 *               --show-mmap-events --show-task-events
 * fed in chunks of any size (a recording's text can be gigabytes; the
 * text is not kept, only a line cut by a chunk's end is copied; what is
 * kept is the batches made so far). Lines it reads (perf's own formats):
 *   PID/TID TIME: PERF_RECORD_MMAP2 PID/TID: [START(LEN) @ PGOFF MAJ:MIN INO GEN]: PROT PATH
 *   PID/TID TIME: PERF_RECORD_MMAP2 PID/TID: [START(LEN) @ PGOFF <BUILDID>]: PROT PATH
 *   PID/TID TIME: PERF_RECORD_MMAP PID/TID: [START(LEN) @ PGOFF]: x|r PATH
 *   PID/TID TIME: PERF_RECORD_FORK(PID:TID):(PPID:PTID)
 *   PID/TID TIME: PERF_RECORD_COMM exec: NAME:PID/TID
 *   PID/TID TIME: PERF_RECORD_EXIT(PID:TID):(PPID:PTID)
 *   PID/TID TIME: PERF_RECORD_<anything else> ...          (ignored)
 *   PID/TID TIME: [PERIOD] EVENT: IP [SYM] [(DSO)] [BRSTACK]  one-line sample
 *   PID/TID TIME: [PERIOD] EVENT:                           a callchain follows:
 *   <TAB> ADDR [SYM] [(DSO)]                                 one per frame, leaf first
 *   <blank> | BRSTACK                                        ends the sample
 *   # ...                                                    comment (perf script --header)
 * BRSTACK is perf's brstack field: entries FROM/TO/P|M|-/... separated by
 * blanks, FROM and TO as 0xHEX, each optionally followed by (DSO).
 * Anything else is an error naming its line; a text that ends inside a
 * sample or without a final newline is truncated.
 *
 * Addresses. brstack entries and a one-line sample's IP are absolute: the
 * process's mapping (from its mmap events, inherited over fork, dropped at
 * exec) gives file offset = addr - start + pgoff. Callchain frames are
 * absolute in some perf versions and already file offsets (perf's map_ip,
 * addr - start + pgoff) in others (5.x to 6.3, e.g. Debian 12's 6.1): a
 * frame in a file with a build-id whose address fits only one reading is
 * evidence for it (JIT maps, //anon, [vdso] and files without build-ids
 * are not: perf prints absolute addresses for them in every version);
 * frames that fit both (a large non-PIE executable) follow their file's
 * evidence, else the recording's when it all points one way, else they
 * are unmapped. A file with evidence for both readings stops the decode.
 *
 * Unmapped: kernel frames, [vdso], [unknown], anonymous and JIT code, and
 * any file without a build-id in the table (or two different ones) travel
 * as address 0, which no mapping covers, so fdod counts them in the Ack
 * (frames_unmapped, samples_unmapped when no frame is left).
 *
 * Output batches: one per event until a bound is reached (a quarter of the
 * documented stack, frame and branch limits, half the message size, one
 * hour of recording, max_count samples); each file with a build-id that a
 * batch uses gets a mapping of its own, index k covering
 * [(k+1) << 40, (k+2) << 40) at file offset 0, and its frames travel as
 * start + file offset, so fdod's normalization gives back exactly the file
 * offset, whatever process or address the sample came from. Stacks and
 * branches are aggregated per batch; a batch's period is the mean of its
 * samples' periods (as fdo-agent does). Times: perf's clock is not the
 * wall clock, so the last sample is stamped opts->time_end and the others
 * keep their distance to it.
 *
 * Workload: millions of samples of ~20 frames; a handful of processes and
 * a few hundred mappings. A frame costs a binary search of its process's
 * mappings and a hash probe. Hostile text is bounded (the *_MAX and
 * MAP_WORK_* limits below): memory by counts, time by the work per line.
 * Not thread safe; one decoder per thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/map.h"
#include "schemas/wire_int.h"

#define OFF_MAX		    ((1ull << WIRE_FILE_SHIFT) - 1) /* schemas/batchbuild.c */
#define LINE_MAX_BYTES	    (1u << 20)
#define SAMPLE_BRANCHES_MAX 4096 /* brstack entries in one sample */
#define BATCH_SPAN_NS	    (3600ull * 1000000000ull)
#define NO_DSO		    UINT32_MAX
#define EVENTS_MAX	    64 /* distinct events, each a batch open */
#define KERNEL_MIN	    0xffff800000000000ull /* x86-64 and arm64 kernel half */
/* Bounds on what hostile text can make the decoder hold or do; each is
 * far above a real recording's (a system-wide one: ~10^4 processes, 10^3
 * files, a few hundred mappings per process). */
#define PROC_MAPS_MAX	65530	   /* Linux's default vm.max_map_count */
#define MAP_ENTRIES_MAX (1u << 22) /* all processes' mappings, 128 MiB */
#define PROCS_MAX	(1u << 20)
#define DSOS_MAX	(1u << 16)
#define PATH_BYTES_MAX	4096 /* PATH_MAX */
/* Mapping entries copied or moved (fork copies, inserts out of order):
 * at most this many plus MAP_WORK_PER_LINE per line read. */
#define MAP_WORK_BASE	  (1ull << 26)
#define MAP_WORK_PER_LINE 4096u
/* Finished batches are held until the end (nothing is sent before the
 * whole input decodes): at most this much of their encoded size, about
 * four times that in memory. */
#define HELD_BYTES_MAX (256u << 20)

enum { MODE_UNKNOWN, MODE_ABSOLUTE, MODE_RELATIVE };

/* A mapped file, by path. */
struct pdso {
	char *path;
	uint8_t bid[FDO_BUILD_ID_MAX];
	uint8_t bid_len;  /* 0: no usable build-id */
	uint8_t conflict; /* two build-ids for one path: never mapped */
	uint8_t special;  /* [kernel...], [vdso], //anon...: never mapped */
	uint64_t pg_lo, pg_hi;	 /* file range its mappings cover */
	uint64_t exe_samples;	 /* samples of processes it is the program of */
	uint64_t ev_abs, ev_rel; /* its frames that fit only one reading */
};

struct pmap {
	uint64_t start, end, pgoff;
	uint32_t dso;
};

/* A process: its executable mappings, sorted by start, disjoint, at
 * buf[head .. head + n) with room on both sides, so that mmaps in
 * ascending or descending order (the loader maps libraries top down)
 * each cost O(1) amortized, and one in the middle moves the shorter side. */
struct proc {
	int32_t pid;
	uint32_t exe; /* dso of its program, NO_DSO until known */
	struct pmap *buf;
	size_t head, n, cap;
};

/* A frame or branch end resolved to (file, offset); dso NO_DSO: unmapped. */
struct loc {
	uint32_t dso;
	uint64_t off;
};

struct pstack {
	uint64_t count;
	size_t first, n;
};

struct pbranch {
	uint64_t from, to, count, mispred;
};

/* The batch being filled for one event. */
struct obatch {
	struct fdo_map64 stack_ix, br_ix, slot_ix;
	struct pstack *stacks;
	size_t nstacks, cap_stacks;
	uint64_t *addrs;
	size_t naddrs, cap_addrs;
	struct pbranch *br;
	size_t nbr, cap_br;
	uint32_t *slots; /* slot -> dso */
	size_t nslots, cap_slots;
	uint64_t samples, period_sum, branch_entries;
	uint64_t t_first, t_last;
	size_t est_bytes;
};

/* An event of the recording: what the header said of it, and its batch. */
struct pevent {
	char *name;
	size_t len;
	uint64_t period; /* the header's fixed period (perf record -c); 0: none */
	uint8_t dwarf;	 /* callers unwound by perf from stack copies */
	struct obatch b;
};

/* A finished batch and its perf-clock span, stamped at the end. */
struct done {
	Fdod__SampleBatch *b;
	uint64_t t_first, t_last;
};

struct wire_perf {
	struct wire_perf_opts o;
	struct wire_limits lim;
	size_t cap_stacks, cap_frames, cap_branches, cap_bytes;
	/* files */
	struct pdso *dsos;
	size_t ndsos, cap_dsos;
	struct fdo_map64 dso_ix;
	/* processes */
	struct proc *procs;
	size_t nprocs, cap_procs;
	struct fdo_map64 proc_ix;
	size_t map_entries;	 /* all processes' n */
	uint64_t ev_abs, ev_rel; /* deciding frames, all files */
	/* events and their open batches */
	struct pevent *events;
	size_t nevents, cap_events;
	size_t last_event; /* the previous sample's, tried first */
	struct done *done;
	size_t ndone, cap_done;
	uint64_t t_max;
	int any_time;
	size_t held_bytes; /* encoded size of the finished batches, about */
	size_t held_max;
	/* the line being assembled from chunks */
	struct fdo_buf line;
	unsigned long lineno;
	/* the sample being read (callchain form) */
	int in_chain;
	unsigned long chain_line;
	int32_t s_pid;
	uint64_t s_time, s_period;
	size_t s_event;
	struct loc *frames;
	size_t nframes, cap_frames_s;
	struct loc *sbr_from, *sbr_to; /* the sample's brstack entries */
	uint8_t *sbr_mis;
	size_t nsbr, cap_sbr;
	struct wire_perf_stats st;
	int failed;
};

/* ------------------------------------------------------------ helpers -- */

static int errf(struct wire_perf *d, char *err, size_t errlen, int code,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int errf(struct wire_perf *d, char *err, size_t errlen, int code,
		const char *fmt, ...)
{
	if (err && errlen) {
		int n = d->lineno
				? snprintf(err, errlen, "line %lu: ", d->lineno)
				: 0;
		if (n < 0 || (size_t)n >= errlen)
			n = 0;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	d->failed = code;
	return code;
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *skip_tok(const char *p, const char *e)
{
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	return p;
}

/* Hex digits (optionally 0x) at *pp; at most 64 bits. Advances *pp. */
static int parse_hex(const char **pp, const char *e, uint64_t *out)
{
	const char *p = *pp;
	if (e - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	uint64_t v = 0;
	const char *s = p;
	while (p < e && fdo_hex_value((unsigned char)*p) >= 0) {
		if (v >> 60)
			return -1;
		v = v << 4 | (uint64_t)fdo_hex_value((unsigned char)*p);
		p++;
	}
	if (p == s)
		return -1;
	*out = v;
	*pp = p;
	return 0;
}

/* Decimal digits, optionally with a leading '-' when neg is allowed. */
static int parse_dec(const char **pp, const char *e, int neg, int64_t *out)
{
	const char *p = *pp;
	int minus = 0;
	if (neg && p < e && *p == '-') {
		minus = 1;
		p++;
	}
	uint64_t v = 0;
	const char *s = p;
	while (p < e && *p >= '0' && *p <= '9') {
		if (v > (uint64_t)INT64_MAX / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == s || v > (uint64_t)INT64_MAX)
		return -1;
	*out = minus ? -(int64_t)v : (int64_t)v;
	*pp = p;
	return 0;
}

static int expect(const char **pp, const char *e, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(e - *pp) < n || memcmp(*pp, lit, n))
		return -1;
	*pp += n;
	return 0;
}

/* "SECONDS.FRACTION" (perf's time field) in nanoseconds. */
static int parse_time(const char **pp, const char *e, uint64_t *ns)
{
	int64_t s;
	if (parse_dec(pp, e, 0, &s) || (uint64_t)s > UINT64_MAX / 1000000000u)
		return -1;
	uint64_t frac = 0;
	int digits = 0;
	if (*pp < e && **pp == '.') {
		(*pp)++;
		while (*pp < e && **pp >= '0' && **pp <= '9') {
			if (digits < 9) {
				frac = frac * 10 + (uint64_t)(**pp - '0');
				digits++;
			}
			(*pp)++;
		}
		if (!digits)
			return -1;
	}
	for (; digits < 9; digits++)
		frac *= 10;
	*ns = (uint64_t)s * 1000000000u + frac;
	return 0;
}

static uint64_t str_key(const char *p, size_t n, unsigned attempt)
{
	return fdo_mix64(fdo_hash_words(p, n) + attempt) | 1;
}

/* --------------------------------------------------------------- files -- */

/* The dso of path[0..n), created when create is set; NO_DSO if absent or
 * out of memory (*oom set). */
static uint32_t dso_get(struct wire_perf *d, const char *path, size_t n,
			int create, int *oom)
{
	for (unsigned attempt = 0;; attempt++) {
		uint64_t key = str_key(path, n, attempt);
		uint32_t ix;
		if (fdo_map64_get(&d->dso_ix, key, &ix)) {
			const char *q = d->dsos[ix].path;
			if (strlen(q) == n && !memcmp(q, path, n))
				return ix;
			continue;
		}
		if (!create)
			return NO_DSO;
		if (d->ndsos >= DSOS_MAX) {
			*oom = 2;
			return NO_DSO;
		}
		int found;
		char *copy = malloc(n + 1);
		if (!copy ||
		    fdo_grow_zeroed(d->dsos, d->cap_dsos, d->ndsos + 1) ||
		    fdo_map64_put(&d->dso_ix, key, (uint32_t)d->ndsos, &ix,
				  &found)) {
			free(copy);
			*oom = 1;
			return NO_DSO;
		}
		memcpy(copy, path, n);
		copy[n] = '\0';
		struct pdso *s = &d->dsos[d->ndsos];
		memset(s, 0, sizeof *s);
		s->path = copy;
		s->pg_lo = UINT64_MAX;
		/* Only regular files carry build-ids fdod can use. */
		s->special = n == 0 || path[0] != '/' ||
			     (n >= 6 && !memcmp(path, "//anon", 6)) ||
			     (n >= 5 && !memcmp(path, "/dev/", 5)) ||
			     (n >= 6 && !memcmp(path, "/memfd", 6)) ||
			     (n >= 9 && !memcmp(path, "/tmp/perf", 9) &&
			      !memcmp(path + n - 4, ".map", 4));
		return (uint32_t)d->ndsos++;
	}
}

static void dso_set_bid(struct pdso *s, const uint8_t *bid, size_t len)
{
	if (s->conflict)
		return;
	if (s->bid_len) {
		if (s->bid_len != len || memcmp(s->bid, bid, len)) {
			s->conflict = 1;
			s->bid_len = 0;
		}
		return;
	}
	memcpy(s->bid, bid, len);
	s->bid_len = (uint8_t)len;
}

static int dso_mapped(const struct pdso *s)
{
	return s->bid_len && !s->conflict && !s->special;
}

/* ----------------------------------------------------------- processes -- */

static struct proc *proc_get(struct wire_perf *d, int32_t pid, int create)
{
	uint64_t key = (uint64_t)(uint32_t)pid + 1;
	uint32_t ix;
	if (fdo_map64_get(&d->proc_ix, key, &ix))
		return &d->procs[ix];
	if (!create)
		return NULL;
	int found;
	if (fdo_grow(d->procs, d->cap_procs, d->nprocs + 1) ||
	    fdo_map64_put(&d->proc_ix, key, (uint32_t)d->nprocs, &ix, &found))
		return NULL;
	struct proc *p = &d->procs[d->nprocs++];
	memset(p, 0, sizeof *p);
	p->pid = pid;
	p->exe = NO_DSO;
	return p;
}

/* The process pid, created when absent: FDO_ELIMIT past PROCS_MAX. */
static int proc_new(struct wire_perf *d, int32_t pid, struct proc **out,
		    char *err, size_t errlen)
{
	if (!(*out = proc_get(d, pid, 0)) && d->nprocs >= PROCS_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "more than %u processes", PROCS_MAX);
	if (!*out && !(*out = proc_get(d, pid, 1)))
		return errf(d, err, errlen, FDO_ENOMEM, "out of memory");
	return FDO_OK;
}

/* The mappings of p, in address order (NULL before its first: no
 * pointer arithmetic on a NULL buffer). */
static struct pmap *proc_maps(const struct proc *p)
{
	return p->buf ? p->buf + p->head : NULL;
}

/* Index of the first mapping of p with end > addr. */
static size_t map_lower(const struct proc *p, uint64_t addr)
{
	const struct pmap *maps = proc_maps(p);
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (maps[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct pmap *map_find(const struct proc *p, uint64_t addr)
{
	if (!p)
		return NULL;
	size_t i = map_lower(p, addr);
	return i < p->n && proc_maps(p)[i].start <= addr ? &proc_maps(p)[i]
							 : NULL;
}

/* Count n entries copied or moved; FDO_ELIMIT past the work bound. */
static int map_work(struct wire_perf *d, size_t n, char *err, size_t errlen)
{
	d->st.map_work += n;
	if (d->st.map_work >
	    MAP_WORK_BASE + MAP_WORK_PER_LINE * (uint64_t)d->lineno)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "the mmap and fork records so far copy or move "
			    "%llu mapping entries, more than %llu + %u per "
			    "line: not a recording fdoctl import can read",
			    (unsigned long long)d->st.map_work,
			    (unsigned long long)MAP_WORK_BASE,
			    MAP_WORK_PER_LINE);
	return FDO_OK;
}

/* Room for n entries of p, from scratch (its old ones dropped). */
static int maps_reserve(struct wire_perf *d, struct proc *p, size_t n,
			char *err, size_t errlen)
{
	if (n > PROC_MAPS_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "process %d: more than %d mappings", (int)p->pid,
			    PROC_MAPS_MAX);
	if (d->map_entries - p->n + n > MAP_ENTRIES_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "more than %u mappings in all processes",
			    MAP_ENTRIES_MAX);
	d->map_entries -= p->n;
	p->n = 0;
	size_t cap = n + n / 4 + 8;
	if (p->cap < n || !p->buf) {
		struct pmap *nb = malloc(cap * sizeof *nb);
		if (!nb)
			return errf(d, err, errlen, FDO_ENOMEM,
				    "out of memory");
		free(p->buf);
		p->buf = nb;
		p->cap = cap;
	}
	p->head = (p->cap - n) / 2;
	return FDO_OK;
}

/* Add m to p, cutting what it overlaps out of older mappings (a new mmap
 * replaces what was there). */
static int map_add(struct wire_perf *d, struct proc *p, struct pmap m,
		   char *err, size_t errlen)
{
	struct pmap *maps = proc_maps(p);
	size_t n = p->n, i = map_lower(p, m.start);
	/* Up to one mapping may straddle the new one on each side. */
	struct pmap left = {0}, right = {0};
	int has_left = 0, has_right = 0;
	size_t j = i;
	while (j < n && maps[j].start < m.end) {
		const struct pmap *o = &maps[j];
		if (o->start < m.start) {
			left = *o;
			left.end = m.start;
			has_left = 1;
		}
		if (o->end > m.end) {
			right = *o;
			right.pgoff += m.end - o->start;
			right.start = m.end;
			has_right = 1;
		}
		j++;
	}
	size_t add = 1 + (size_t)has_left + (size_t)has_right;
	size_t newn = n - (j - i) + add, nl = i, nr = n - j;
	if (newn > PROC_MAPS_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "process %d: more than %d mappings", (int)p->pid,
			    PROC_MAPS_MAX);
	if (d->map_entries - n + newn > MAP_ENTRIES_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "more than %u mappings in all processes",
			    MAP_ENTRIES_MAX);
	if (newn > n) {
		size_t grow = newn - n;
		int rc;
		/* The shorter side moves into the room beside it; without
		 * room there, everything moves to the middle of a buffer
		 * twice the size (so prepending stays O(1) amortized). */
		if (nl <= nr && p->head >= grow) {
			if ((rc = map_work(d, nl, err, errlen)))
				return rc;
			memmove(maps - grow, maps, nl * sizeof *maps);
			p->head -= grow;
		} else if (nl > nr && p->cap - p->head - n >= grow) {
			if ((rc = map_work(d, nr, err, errlen)))
				return rc;
			memmove(maps + j + grow, maps + j, nr * sizeof *maps);
		} else {
			if ((rc = map_work(d, n, err, errlen)))
				return rc;
			size_t cap = 2 * newn + 8, head = (cap - newn) / 2;
			struct pmap *nb = malloc(cap * sizeof *nb);
			if (!nb)
				return errf(d, err, errlen, FDO_ENOMEM,
					    "out of memory");
			if (nl)
				memcpy(nb + head, maps, nl * sizeof *maps);
			if (nr)
				memcpy(nb + head + i + add, maps + j,
				       nr * sizeof *maps);
			free(p->buf);
			p->buf = nb;
			p->cap = cap;
			p->head = head;
		}
	} else if (newn < n) {
		int rc = map_work(d, nr, err, errlen);
		if (rc)
			return rc;
		memmove(maps + i + add, maps + j, nr * sizeof *maps);
	}
	maps = proc_maps(p);
	d->map_entries = d->map_entries - n + newn;
	p->n = newn;
	if (has_left)
		maps[i++] = left;
	maps[i++] = m;
	if (has_right)
		maps[i] = right;
	return FDO_OK;
}

/* ------------------------------------------------------------- batches -- */

/* The event named name[0..len), created when absent; FDO_ELIMIT past
 * EVENTS_MAX (each has a batch open until the end). */
static int event_get(struct wire_perf *d, const char *name, size_t len,
		     size_t *out)
{
	size_t i = d->last_event;
	if (i < d->nevents && d->events[i].len == len &&
	    !memcmp(d->events[i].name, name, len)) {
		*out = i;
		return FDO_OK;
	}
	for (i = 0; i < d->nevents; i++)
		if (d->events[i].len == len &&
		    !memcmp(d->events[i].name, name, len)) {
			*out = d->last_event = i;
			return FDO_OK;
		}
	if (d->nevents == EVENTS_MAX)
		return FDO_ELIMIT;
	if (fdo_grow(d->events, d->cap_events, d->nevents + 1))
		return FDO_ENOMEM;
	struct pevent *ev = &d->events[d->nevents];
	memset(ev, 0, sizeof *ev);
	if (!(ev->name = strndup(name, len)))
		return FDO_ENOMEM;
	ev->len = len;
	*out = d->last_event = d->nevents++;
	return FDO_OK;
}

static void batch_clear(struct obatch *b)
{
	fdo_map64_clear(&b->stack_ix);
	fdo_map64_clear(&b->br_ix);
	fdo_map64_clear(&b->slot_ix);
	b->nstacks = b->naddrs = b->nbr = b->nslots = 0;
	b->samples = b->period_sum = b->branch_entries = 0;
	b->est_bytes = 0;
}

static void batch_fini(struct obatch *b)
{
	fdo_map64_fini(&b->stack_ix);
	fdo_map64_fini(&b->br_ix);
	fdo_map64_fini(&b->slot_ix);
	free(b->stacks);
	free(b->addrs);
	free(b->br);
	free(b->slots);
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

/* The open batch b as a SampleBatch (agent, seq, binary, times: later). */
static int batch_close(struct wire_perf *d, struct pevent *ev)
{
	struct obatch *b = &ev->b;
	if (!b->samples)
		return FDO_OK;
	if (fdo_grow(d->done, d->cap_done, d->ndone + 1))
		return FDO_ENOMEM;
	Fdod__SampleBatch *w;
	int rc = wire_batch_start(ev->name, d->o.host, &w);
	if (w)
		d->done[d->ndone++] = (struct done){w, b->t_first, b->t_last};
	if (rc)
		return rc;
	w->period = (b->period_sum + b->samples / 2) / b->samples;
	if (w->period < 1)
		w->period = 1;
	w->mappings = calloc(b->nslots + 1, sizeof *w->mappings);
	w->stacks = calloc(b->nstacks + 1, sizeof *w->stacks);
	w->branches = calloc(b->nbr + 1, sizeof *w->branches);
	if (!w->mappings || !w->stacks || !w->branches)
		return FDO_ENOMEM;
	rc = wire_batch_add_labels(w, d->o.labels, d->o.n_labels);
	for (size_t k = 0; k < b->nslots && !rc; k++) {
		const struct pdso *s = &d->dsos[b->slots[k]];
		rc = wire_batch_add_file(w, s->bid, s->bid_len, s->path,
					 &d->lim);
	}
	for (size_t i = 0; i < b->nstacks && !rc; i++) {
		const struct pstack *ps = &b->stacks[i];
		rc = wire_batch_add_stack(w, b->addrs + ps->first, ps->n,
					  ps->count);
	}
	if (rc)
		return rc;
	for (size_t i = 0; i < b->nbr; i++) {
		Fdod__Branch *x = malloc(sizeof *x);
		if (!x)
			return FDO_ENOMEM;
		fdod__branch__init(x);
		w->branches[w->n_branches++] = x;
		x->from = b->br[i].from;
		x->to = b->br[i].to;
		x->count = b->br[i].count;
		x->mispredicts = b->br[i].mispred;
	}
	d->st.batches++;
	batch_clear(b);
	return FDO_OK;
}

/* The address a location travels as in batch b (0: unmapped). */
static int loc_addr(struct obatch *b, struct loc l, uint64_t *out)
{
	if (l.dso == NO_DSO) {
		*out = 0;
		return FDO_OK;
	}
	uint32_t slot;
	int found;
	if (fdo_map64_put(&b->slot_ix, (uint64_t)l.dso + 1, (uint32_t)b->nslots,
			  &slot, &found))
		return FDO_ENOMEM;
	if (!found) {
		if (fdo_grow(b->slots, b->cap_slots, b->nslots + 1))
			return FDO_ENOMEM;
		b->slots[b->nslots++] = l.dso;
		b->est_bytes += 160;
	}
	*out = wire_file_addr(slot, l.off);
	return FDO_OK;
}

/* Does the sample at hand fit in b, by every bound? */
static int batch_fits(const struct wire_perf *d, const struct obatch *b,
		      size_t nframes, size_t nbr, uint64_t time,
		      uint64_t period)
{
	if (!b->samples)
		return 1;
	size_t new_files = nframes + 2 * nbr; /* at most */
	return b->nstacks + 1 <= d->cap_stacks &&
	       b->naddrs + nframes <= d->cap_frames &&
	       b->nbr + nbr <= d->cap_branches &&
	       b->nslots + new_files <= d->lim.max_mappings &&
	       b->est_bytes + 16 + 10 * nframes + 48 * nbr +
			       160 * (new_files < 64 ? new_files : 64) <=
		       d->cap_bytes &&
	       b->samples < d->lim.max_count &&
	       b->branch_entries + nbr <= d->lim.max_count &&
	       b->period_sum <= UINT64_MAX - period && time >= b->t_first &&
	       time - b->t_first <= BATCH_SPAN_NS;
}

/* Count the sample read into d->frames / d->sbr_* in its event's batch. */
static int sample_add(struct wire_perf *d, int32_t pid, uint64_t time,
		      uint64_t period, size_t event)
{
	struct pevent *ev = &d->events[event];
	struct obatch *b = &ev->b;
	int rc;
	if (!batch_fits(d, b, d->nframes ? d->nframes : 1, d->nsbr, time,
			period)) {
		if (d->held_bytes + b->est_bytes > d->held_max)
			return FDO_ELIMIT;
		d->held_bytes += b->est_bytes;
		if ((rc = batch_close(d, ev)))
			return rc;
	}
	if (!b->samples)
		b->t_first = b->t_last = time;
	if (time < b->t_first)
		b->t_first = time;
	if (time > b->t_last)
		b->t_last = time;
	if (!d->any_time || time > d->t_max)
		d->t_max = time;
	d->any_time = 1;

	/* The stack, aggregated. */
	size_t n = d->nframes ? d->nframes : 1;
	if (fdo_grow(b->addrs, b->cap_addrs, b->naddrs + n))
		return FDO_ENOMEM;
	uint64_t *a = b->addrs + b->naddrs;
	int mapped = 0;
	for (size_t i = 0; i < n; i++) {
		struct loc l = d->nframes ? d->frames[i]
					  : (struct loc){NO_DSO, 0};
		mapped |= l.dso != NO_DSO;
		if ((rc = loc_addr(b, l, &a[i])))
			return rc;
	}
	if (!mapped)
		d->st.samples_unmapped++;
	uint64_t h = fdo_hash_words(a, n * sizeof *a);
	for (unsigned attempt = 0;; attempt++) {
		uint64_t key = fdo_mix64(h + attempt) | 1;
		uint32_t ix;
		int found;
		if (fdo_map64_put(&b->stack_ix, key, (uint32_t)b->nstacks, &ix,
				  &found))
			return FDO_ENOMEM;
		if (found) {
			struct pstack *s = &b->stacks[ix];
			if (s->n != n ||
			    memcmp(b->addrs + s->first, a, n * sizeof *a))
				continue;
			s->count++;
			break;
		}
		if (fdo_grow(b->stacks, b->cap_stacks, b->nstacks + 1))
			return FDO_ENOMEM;
		b->stacks[b->nstacks++] = (struct pstack){1, b->naddrs, n};
		b->naddrs += n;
		b->est_bytes += 16 + 8 * n;
		break;
	}

	/* Its branch records, aggregated by (from, to). */
	for (size_t i = 0; i < d->nsbr; i++) {
		uint64_t from, to;
		if ((rc = loc_addr(b, d->sbr_from[i], &from)) ||
		    (rc = loc_addr(b, d->sbr_to[i], &to)))
			return rc;
		uint64_t k2[2] = {from, to};
		uint64_t hb = fdo_hash_words(k2, sizeof k2);
		for (unsigned attempt = 0;; attempt++) {
			uint64_t key = fdo_mix64(hb + attempt) | 1;
			uint32_t ix;
			int found;
			if (fdo_map64_put(&b->br_ix, key, (uint32_t)b->nbr, &ix,
					  &found))
				return FDO_ENOMEM;
			if (found) {
				struct pbranch *x = &b->br[ix];
				if (x->from != from || x->to != to)
					continue;
				x->count++;
				x->mispred += d->sbr_mis[i];
				break;
			}
			if (fdo_grow(b->br, b->cap_br, b->nbr + 1))
				return FDO_ENOMEM;
			b->br[b->nbr++] =
				(struct pbranch){from, to, 1, d->sbr_mis[i]};
			b->est_bytes += 48;
			break;
		}
		b->branch_entries++;
	}
	b->samples++;
	b->period_sum += period;
	d->st.samples++;
	d->st.branches += d->nsbr;

	struct proc *p = proc_get(d, pid, 0);
	if (p && p->exe != NO_DSO)
		d->dsos[p->exe].exe_samples++;
	return FDO_OK;
}

/* ---------------------------------------------------------- resolving -- */

/* An absolute address of process pid. */
static struct loc resolve_abs(struct wire_perf *d, int32_t pid, uint64_t addr)
{
	const struct pmap *m = map_find(proc_get(d, pid, 0), addr);
	if (!m || !dso_mapped(&d->dsos[m->dso]))
		return (struct loc){NO_DSO, 0};
	uint64_t off = addr - m->start + m->pgoff;
	if (off > OFF_MAX)
		return (struct loc){NO_DSO, 0};
	return (struct loc){m->dso, off};
}

/*
 * A callchain frame: absolute or already a file offset (see the top).
 * Only a frame named in a file with a build-id (not [kernel], //anon,
 * a perf JIT map...) that fits exactly one reading is evidence; a file
 * with evidence for both readings stops the decode (*out: unmapped, and
 * FDO_EINVAL with the reason in err).
 */
static int resolve_frame(struct wire_perf *d, int32_t pid, uint64_t addr,
			 const char *dso, size_t dlen, struct loc *out,
			 char *err, size_t errlen)
{
	*out = (struct loc){NO_DSO, 0};
	int oom = 0;
	uint32_t named = dlen ? dso_get(d, dso, dlen, 0, &oom) : NO_DSO;
	if (dlen && dso[0] == '[') {
		d->st.frames_no_file++;
		return FDO_OK;
	}
	struct pdso *nd = named != NO_DSO ? &d->dsos[named] : NULL;
	const struct pmap *m = map_find(proc_get(d, pid, 0), addr);
	int abs_ok = m && (!nd || m->dso == named);
	int rel_ok = nd && nd->pg_lo <= addr && addr < nd->pg_hi;
	int use = MODE_UNKNOWN;
	if (nd && dso_mapped(nd) && abs_ok != rel_ok) {
		if (abs_ok ? nd->ev_rel : nd->ev_abs)
			return errf(
				d, err, errlen, FDO_EINVAL,
				"frames of %.200s read as absolute addresses "
				"and as file offsets (%llu and %llu frames so "
				"far): cannot tell how this perf prints "
				"callchains",
				nd->path,
				(unsigned long long)nd->ev_abs + abs_ok,
				(unsigned long long)nd->ev_rel + rel_ok);
		use = abs_ok ? MODE_ABSOLUTE : MODE_RELATIVE;
		*(abs_ok ? &nd->ev_abs : &nd->ev_rel) += 1;
		*(abs_ok ? &d->ev_abs : &d->ev_rel) += 1;
	} else if (abs_ok || rel_ok) {
		/* Undecided here: the file's own evidence, else the
		 * recording's when all of it points one way. */
		uint64_t ea = nd && (nd->ev_abs || nd->ev_rel) ? nd->ev_abs
							       : d->ev_abs;
		uint64_t er = nd && (nd->ev_abs || nd->ev_rel) ? nd->ev_rel
							       : d->ev_rel;
		if (ea && !er && abs_ok)
			use = MODE_ABSOLUTE;
		else if (er && !ea && rel_ok)
			use = MODE_RELATIVE;
	}
	if (use == MODE_UNKNOWN) {
		if (abs_ok && rel_ok)
			d->st.frames_ambiguous++;
		else
			d->st.frames_unknown++;
		return FDO_OK;
	}
	uint32_t ds = use == MODE_ABSOLUTE ? m->dso : named;
	if (!dso_mapped(&d->dsos[ds])) {
		d->st.frames_no_build_id++;
		return FDO_OK;
	}
	uint64_t off = use == MODE_ABSOLUTE ? addr - m->start + m->pgoff : addr;
	if (off > OFF_MAX) {
		d->st.frames_unknown++;
		return FDO_OK;
	}
	*out = (struct loc){ds, off};
	return FDO_OK;
}

/* ------------------------------------------------------------- records -- */

/* [START(LEN) @ PGOFF ...]: PROT PATH of an MMAP or MMAP2 record. */
static int rec_mmap(struct wire_perf *d, const char *p, const char *e, int v2,
		    char *err, size_t errlen)
{
	int64_t pid, tid;
	uint64_t start, len, pgoff;
	p = skip_ws(p, e);
	if (parse_dec(&p, e, 1, &pid) || expect(&p, e, "/") ||
	    parse_dec(&p, e, 1, &tid) || expect(&p, e, ": [") ||
	    parse_hex(&p, e, &start) || expect(&p, e, "(") ||
	    parse_hex(&p, e, &len) || expect(&p, e, ") @ ") ||
	    parse_hex(&p, e, &pgoff))
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed mmap record (want PID/TID: "
			    "[START(LEN) @ PGOFF ...]: PROT PATH)");
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t bid_len = 0;
	p = skip_ws(p, e);
	if (p < e && *p == '<') {
		const char *q = memchr(p, '>', (size_t)(e - p));
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		size_t hl = q ? (size_t)(q - p - 1) : 0;
		if (!q || hl >= sizeof hex)
			return errf(d, err, errlen, FDO_EPARSE,
				    "malformed build-id in mmap record");
		memcpy(hex, p + 1, hl);
		hex[hl] = '\0';
		if (fdo_build_id_parse(hex, bid, &bid_len))
			return errf(d, err, errlen, FDO_EPARSE,
				    "build-id '%s' in mmap record is not "
				    "lowercase hex",
				    hex);
		p = q + 1;
	}
	const char *close = NULL;
	for (const char *q = p; q + 2 < e; q++)
		if (q[0] == ']' && q[1] == ':' && q[2] == ' ') {
			close = q;
			break;
		}
	if (!close)
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed mmap record: no ']: '");
	p = close + 3;
	const char *prot = p;
	p = skip_tok(p, e);
	int exec = v2 ? (p - prot == 4 && prot[2] == 'x')
		      : (p - prot == 1 && prot[0] == 'x');
	if (!v2 && !(p - prot == 1 && (prot[0] == 'x' || prot[0] == 'r')))
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed mmap record: protection '%.*s'",
			    (int)(p - prot > 8 ? 8 : p - prot), prot);
	if (p < e)
		p++; /* the one blank before the path */
	if (!exec || len == 0 || start + len < start)
		return FDO_OK;
	if (e - p > PATH_BYTES_MAX)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "mmap path of %zu bytes, limit %d", (size_t)(e - p),
			    PATH_BYTES_MAX);
	int oom = 0;
	uint32_t ds = dso_get(d, p, (size_t)(e - p), 1, &oom);
	if (ds == NO_DSO)
		return errf(d, err, errlen, oom == 2 ? FDO_ELIMIT : FDO_ENOMEM,
			    oom == 2 ? "more than %d mapped files"
				     : "out of memory (%d files)",
			    DSOS_MAX);
	struct pdso *s = &d->dsos[ds];
	if (bid_len)
		dso_set_bid(s, bid, bid_len);
	if (pgoff < s->pg_lo)
		s->pg_lo = pgoff;
	if (pgoff + len > s->pg_hi && pgoff + len > pgoff)
		s->pg_hi = pgoff + len;
	if (pid < INT32_MIN || pid > INT32_MAX)
		return errf(d, err, errlen, FDO_EPARSE, "pid out of range");
	struct proc *pr;
	int rc;
	if ((rc = proc_new(d, (int32_t)pid, &pr, err, errlen)) ||
	    (rc = map_add(d, pr, (struct pmap){start, start + len, pgoff, ds},
			  err, errlen)))
		return rc;
	if (pr->exe == NO_DSO && !s->special)
		pr->exe = ds;
	d->st.mmaps++;
	return FDO_OK;
}

/* (PID:TID):(PPID:PTID) of the FORK and EXIT records into v. */
static int rec_task(struct wire_perf *d, const char *p, const char *e,
		    const char *what, int64_t v[4], char *err, size_t errlen)
{
	if (expect(&p, e, "(") || parse_dec(&p, e, 1, &v[0]) ||
	    expect(&p, e, ":") || parse_dec(&p, e, 1, &v[1]) ||
	    expect(&p, e, "):(") || parse_dec(&p, e, 1, &v[2]) ||
	    expect(&p, e, ":") || parse_dec(&p, e, 1, &v[3]) ||
	    expect(&p, e, ")") || v[0] < INT32_MIN || v[0] > INT32_MAX ||
	    v[2] < INT32_MIN || v[2] > INT32_MAX)
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed %s record (want (PID:TID):(PPID:PTID))",
			    what);
	return FDO_OK;
}

/* A process that exited or exec'd: a later sample of its pid starts with
 * no mappings. */
static void proc_reset(struct wire_perf *d, int64_t pid)
{
	struct proc *pr = proc_get(d, (int32_t)pid, 0);
	if (pr) {
		/* Its buffer goes too: a dead process holds no memory, so
		 * forks that exit cannot pile up copies. */
		d->map_entries -= pr->n;
		free(pr->buf);
		pr->buf = NULL;
		pr->n = pr->cap = pr->head = 0;
		pr->exe = NO_DSO;
	}
}

static int rec_fork(struct wire_perf *d, const char *p, const char *e,
		    char *err, size_t errlen)
{
	int64_t v[4];
	int rc = rec_task(d, p, e, "fork", v, err, errlen);
	if (rc || v[0] == v[2]) /* a new thread shares its process's maps */
		return rc;
	/* A reused pid: whatever its last owner mapped is gone, whether or
	 * not the parent is known. */
	proc_reset(d, v[0]);
	struct proc *parent = proc_get(d, (int32_t)v[2], 0);
	if (!parent)
		return FDO_OK;
	size_t pi = (size_t)(parent - d->procs);
	struct proc *child;
	if ((rc = proc_new(d, (int32_t)v[0], &child, err, errlen)))
		return rc;
	parent = &d->procs[pi]; /* proc_new may have moved the array */
	size_t n = parent->n;
	if ((rc = map_work(d, n, err, errlen)) ||
	    (rc = maps_reserve(d, child, n, err, errlen)))
		return rc;
	if (n)
		memcpy(child->buf + child->head, parent->buf + parent->head,
		       n * sizeof *parent->buf);
	child->n = n;
	d->map_entries += n;
	child->exe = parent->exe;
	return FDO_OK;
}

static int rec_exit(struct wire_perf *d, const char *p, const char *e,
		    char *err, size_t errlen)
{
	int64_t v[4];
	int rc = rec_task(d, p, e, "exit", v, err, errlen);
	/* The process is gone, not just one of its threads. */
	if (!rc && v[0] == v[1])
		proc_reset(d, v[0]);
	return rc;
}

/* COMM exec: NAME:PID/TID — a new program replaces the mappings. */
static int rec_comm(struct wire_perf *d, const char *p, const char *e,
		    char *err, size_t errlen)
{
	p = skip_ws(p, e);
	if (expect(&p, e, "exec:"))
		return FDO_OK;
	const char *colon = NULL;
	for (const char *q = e; q > p; q--)
		if (q[-1] == ':') {
			colon = q;
			break;
		}
	int64_t pid, tid;
	if (!colon || parse_dec(&colon, e, 1, &pid) || expect(&colon, e, "/") ||
	    parse_dec(&colon, e, 1, &tid) || pid < INT32_MIN || pid > INT32_MAX)
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed comm record (want NAME:PID/TID)");
	proc_reset(d, pid);
	return FDO_OK;
}

/* ------------------------------------------------------------- samples -- */

/* One brstack entry at *pp: 0xFROM[(DSO)]/0xTO[(DSO)]/FLAG[/...]. */
static int brentry(const char **pp, const char *e, uint64_t *from, uint64_t *to,
		   int *mis)
{
	const char *p = *pp;
	if (e - p < 2 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X') ||
	    parse_hex(&p, e, from))
		return -1;
	if (p < e && *p == '(') { /* (DSO): up to the ")/0x" that follows */
		const char *q = p;
		const char *lim =
			e - p > PATH_BYTES_MAX + 2 ? p + PATH_BYTES_MAX + 2 : e;
		while (q + 3 < lim && !(q[0] == ')' && q[1] == '/' &&
					q[2] == '0' && q[3] == 'x'))
			q++;
		if (q + 3 >= lim)
			return -1;
		p = q + 1;
	}
	if (expect(&p, e, "/") || e - p < 2 || p[0] != '0' || p[1] != 'x' ||
	    parse_hex(&p, e, to))
		return -1;
	if (p < e && *p == '(') {
		const char *q = p;
		const char *lim =
			e - p > PATH_BYTES_MAX + 2 ? p + PATH_BYTES_MAX + 2 : e;
		while (q + 2 < lim &&
		       !(q[0] == ')' && q[1] == '/' &&
			 (q[2] == 'M' || q[2] == 'P' || q[2] == '-')))
			q++;
		if (q + 2 >= lim)
			return -1;
		p = q + 1;
	}
	if (expect(&p, e, "/") || p >= e ||
	    (*p != 'M' && *p != 'P' && *p != '-'))
		return -1;
	*mis = *p == 'M';
	p++;
	if (p < e && *p != '/' && *p != ' ' && *p != '\t')
		return -1;
	*pp = skip_tok(p, e); /* the other flags: X/A/cycles/type... */
	return 0;
}

/* The brstack entries of [p, e) into d->sbr_*. */
static int brstack(struct wire_perf *d, int32_t pid, const char *p,
		   const char *e, char *err, size_t errlen)
{
	for (p = skip_ws(p, e); p < e; p = skip_ws(p, e)) {
		uint64_t from, to;
		int mis;
		if (brentry(&p, e, &from, &to, &mis))
			return errf(d, err, errlen, FDO_EPARSE,
				    "malformed brstack entry (want "
				    "0xFROM/0xTO/P|M|-/...)");
		if (d->nsbr == SAMPLE_BRANCHES_MAX)
			return errf(
				d, err, errlen, FDO_ELIMIT,
				"more than %d brstack entries in one sample",
				SAMPLE_BRANCHES_MAX);
		if (fdo_grow(d->sbr_from, d->cap_sbr, d->nsbr + 1))
			return errf(d, err, errlen, FDO_ENOMEM,
				    "out of memory");
		size_t cap = d->cap_sbr;
		struct loc *t = realloc(d->sbr_to, cap * sizeof *t);
		if (t)
			d->sbr_to = t;
		uint8_t *m = t ? realloc(d->sbr_mis, cap) : NULL;
		if (m)
			d->sbr_mis = m;
		if (!t || !m)
			return errf(d, err, errlen, FDO_ENOMEM,
				    "out of memory");
		d->sbr_from[d->nsbr] = resolve_abs(d, pid, from);
		d->sbr_to[d->nsbr] = resolve_abs(d, pid, to);
		d->sbr_mis[d->nsbr] = (uint8_t)mis;
		if (d->sbr_from[d->nsbr].dso == NO_DSO ||
		    d->sbr_to[d->nsbr].dso == NO_DSO)
			d->st.branches_unmapped++;
		d->nsbr++;
	}
	return FDO_OK;
}

static int frame_push(struct wire_perf *d, struct loc l, char *err,
		      size_t errlen)
{
	d->st.frames++;
	if (l.dso == NO_DSO)
		d->st.frames_unmapped++;
	if (d->nframes == d->lim.max_stack_depth) {
		d->st.frames_dropped++; /* callers past fdod's depth limit */
		return FDO_OK;
	}
	if (fdo_grow(d->frames, d->cap_frames_s, d->nframes + 1))
		return errf(d, err, errlen, FDO_ENOMEM, "out of memory");
	d->frames[d->nframes++] = l;
	return FDO_OK;
}

/* A callchain line: <TAB> ADDR [SYM] [(DSO)]. */
static int chain_frame(struct wire_perf *d, const char *p, const char *e,
		       char *err, size_t errlen)
{
	uint64_t addr;
	p = skip_ws(p, e);
	if (parse_hex(&p, e, &addr) || (p < e && *p != ' ' && *p != '\t'))
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed callchain frame (want ADDR [SYM] "
			    "[(DSO)])");
	/* The DSO is the last "(...)" group, after a blank. */
	const char *dso = NULL;
	size_t dlen = 0;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e > p && e[-1] == ')')
		for (const char *q = e - 1; q > p; q--)
			if (q[0] == '(' && (q[-1] == ' ' || q[-1] == '\t')) {
				dso = q + 1;
				dlen = (size_t)(e - 1 - dso);
				break;
			}
	/* Kernel frames on top of a user stack are left out, as fdo-agent
	 * (exclude_callchain_kernel) never sees them: the user frame under
	 * them is the leaf, whose address is not a return address. */
	if (!d->nframes && ((dlen >= 7 && !memcmp(dso, "[kernel", 7)) ||
			    (dlen >= 13 && !memcmp(dso, "[guest.kernel", 13)) ||
			    (addr >= KERNEL_MIN && (!dlen || dso[0] == '[')))) {
		d->st.frames++;
		d->st.frames_kernel++;
		return FDO_OK;
	}
	/* perf's DWARF unwinder gives callers as return address - 1
	 * (-g gives return addresses): fdod subtracts the 1 itself. */
	if (d->nframes && d->events[d->s_event].dwarf)
		addr++;
	struct loc l;
	int rc = resolve_frame(d, d->s_pid, addr, dso, dlen, &l, err, errlen);
	return rc ? rc : frame_push(d, l, err, errlen);
}

static int sample_end(struct wire_perf *d, char *err, size_t errlen)
{
	d->in_chain = 0;
	int rc = sample_add(d, d->s_pid, d->s_time, d->s_period, d->s_event);
	d->nframes = d->nsbr = 0;
	if (rc == FDO_ELIMIT)
		return errf(d, err, errlen, rc,
			    "the batches made so far pass %zu MiB, and all are "
			    "held until the input is read: import the "
			    "recording in parts (perf script --time START,END "
			    "into files for --script)",
			    d->held_max >> 20);
	if (rc)
		return errf(d, err, errlen, rc, "out of memory");
	return FDO_OK;
}

/* PID/TID TIME: then a record or a sample. */
static int header_line(struct wire_perf *d, const char *p, const char *e,
		       char *err, size_t errlen)
{
	int64_t pid, tid = 0;
	uint64_t time;
	p = skip_ws(p, e);
	if (parse_dec(&p, e, 1, &pid))
		return errf(d, err, errlen, FDO_EPARSE,
			    "not a perf script line (want PID/TID TIME: ...; "
			    "run perf script -F pid,tid,time,period,event,ip,"
			    "dso)");
	if (p < e && *p == '/' && (p++, parse_dec(&p, e, 1, &tid)))
		return errf(d, err, errlen, FDO_EPARSE, "malformed PID/TID");
	p = skip_ws(p, e);
	if (parse_time(&p, e, &time) || expect(&p, e, ":"))
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed time (want SECONDS.FRACTION:)");
	if (pid < INT32_MIN || pid > INT32_MAX)
		return errf(d, err, errlen, FDO_EPARSE, "pid out of range");
	p = skip_ws(p, e);
	if (!expect(&p, e, "PERF_RECORD_")) {
		const char *k = p;
		while (p < e && ((*p >= 'A' && *p <= 'Z') ||
				 (*p >= '0' && *p <= '9') || *p == '_'))
			p++;
		size_t kl = (size_t)(p - k);
		if (kl == 5 && !memcmp(k, "MMAP2", 5))
			return rec_mmap(d, p, e, 1, err, errlen);
		if (kl == 4 && !memcmp(k, "MMAP", 4))
			return rec_mmap(d, p, e, 0, err, errlen);
		if (kl == 4 && !memcmp(k, "FORK", 4))
			return rec_fork(d, p, e, err, errlen);
		if (kl == 4 && !memcmp(k, "EXIT", 4))
			return rec_exit(d, p, e, err, errlen);
		if (kl == 4 && !memcmp(k, "COMM", 4))
			return rec_comm(d, p, e, err, errlen);
		return FDO_OK;
	}
	/* A sample: [PERIOD] EVENT: ... */
	int has_period = 0;
	uint64_t period = 0;
	const char *q = p;
	int64_t v;
	if (!parse_dec(&q, e, 0, &v) && q < e && (*q == ' ' || *q == '\t')) {
		period = (uint64_t)v;
		has_period = 1;
		p = skip_ws(q, e);
	}
	const char *ev = p;
	while (p < e &&
	       !(*p == ':' && (p + 1 == e || p[1] == ' ' || p[1] == '\t')))
		p++;
	if (p == e || p == ev)
		return errf(d, err, errlen, FDO_EPARSE,
			    "sample without an event name (want [PERIOD] "
			    "EVENT: ...)");
	size_t evl = (size_t)(p - ev);
	if (evl > d->lim.max_name_len)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "event name of %zu bytes, limit %zu", evl,
			    d->lim.max_name_len);
	size_t event;
	int rc = event_get(d, ev, evl, &event);
	if (rc == FDO_ELIMIT)
		return errf(d, err, errlen, rc, "more than %d distinct events",
			    EVENTS_MAX);
	if (rc)
		return errf(d, err, errlen, rc, "out of memory");
	if (wire_check_text("event", d->events[event].name, d->lim.max_name_len,
			    0, NULL, 0))
		return errf(d, err, errlen, FDO_EINVAL,
			    "event name is not printable UTF-8");
	if (!has_period && !(period = d->events[event].period))
		return errf(d, err, errlen, FDO_EINVAL,
			    "sample of %.64s without a period, and no header "
			    "line gives the event's: print the period field "
			    "(perf script -F ...,period,...) or the header "
			    "(perf script --header)",
			    d->events[event].name);
	if (period > d->lim.max_period)
		return errf(d, err, errlen, FDO_ELIMIT,
			    "sample period %llu, limit %llu",
			    (unsigned long long)period,
			    (unsigned long long)d->lim.max_period);
	d->s_event = event;
	d->s_pid = (int32_t)pid;
	d->s_time = time;
	d->s_period = period;
	d->nframes = d->nsbr = 0;
	p = skip_ws(p + 1, e);
	if (p == e) { /* a callchain follows */
		d->in_chain = 1;
		d->chain_line = d->lineno;
		return FDO_OK;
	}
	/* One line: IP [SYM] [(DSO)] [BRSTACK]. The IP is absolute. */
	uint64_t ip;
	if (parse_hex(&p, e, &ip) || (p < e && *p != ' ' && *p != '\t'))
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed sample IP (want hex)");
	rc = frame_push(d, resolve_abs(d, d->s_pid, ip), err, errlen);
	if (rc)
		return rc;
	/* Then [SYM] [(DSO)] [BRSTACK]: brstack, when there, starts right
	 * after the IP, or after the DSO group (the first " (", closed by a
	 * ')' within PATH_BYTES_MAX that a blank, "0x" or the end follows;
	 * older perf prints no blank before brstack). One try per line. */
	const char *bs = skip_ws(p, e);
	if (!(e - bs >= 2 && bs[0] == '0' && bs[1] == 'x')) {
		const char *open = NULL;
		for (const char *q = p; q + 1 < e && !open; q++)
			if ((q[0] == ' ' || q[0] == '\t') && q[1] == '(')
				open = q + 1;
		bs = e;
		const char *lim = open && e - open > PATH_BYTES_MAX + 2
					  ? open + PATH_BYTES_MAX + 2
					  : e;
		for (const char *q = open ? open + 1 : e; q < lim; q++)
			if (*q == ')' &&
			    (q + 1 == e || q[1] == ' ' || q[1] == '\t' ||
			     (e - q >= 3 && q[1] == '0' && q[2] == 'x'))) {
				bs = skip_ws(q + 1, e);
				break;
			}
	}
	/* Anything else after the DSO (a srcline...) is not read. */
	if (e - bs >= 2 && bs[0] == '0' && bs[1] == 'x' &&
	    (rc = brstack(d, d->s_pid, bs, e, err, errlen)))
		return rc;
	return sample_end(d, err, errlen);
}

/* The value after "KEY = " in [p, e), up to the next ", "; NULL if absent. */
static const char *attr_value(const char *p, const char *e, const char *key,
			      const char **vend)
{
	size_t kl = strlen(key);
	for (const char *q = p; q + kl <= e; q++) {
		q = memchr(q, key[0], (size_t)(e - q));
		if (!q || q + kl > e)
			return NULL;
		if (memcmp(q, key, kl))
			continue;
		const char *v = q + kl;
		const char *c = v;
		while (c + 1 < e && !(c[0] == ',' && c[1] == ' '))
			c++;
		*vend = c + 1 < e ? c : e;
		return v;
	}
	return NULL;
}

/* Does the |-separated flag list [v, ve) hold flag? */
static int has_flag(const char *v, const char *ve, const char *flag)
{
	size_t fl = strlen(flag);
	for (const char *q = v; q + fl <= ve;) {
		const char *bar = memchr(q, '|', (size_t)(ve - q));
		const char *end = bar ? bar : ve;
		if ((size_t)(end - q) == fl && !memcmp(q, flag, fl))
			return 1;
		q = end + 1;
	}
	return 0;
}

/*
 * A comment line; "# event : name = NAME, ..." (perf report --header-only,
 * perf script --header) describes an event:
 *   { sample_period, sample_freq } = N   without "freq = 1": a fixed period
 *   sample_type = IP|TID|...|CALLCHAIN|REGS_USER|STACK_USER  --call-graph dwarf
 *   branch_sample_type = ...|CALL_STACK|...                  --call-graph lbr
 */
static int event_line(struct wire_perf *d, const char *p, const char *e,
		      char *err, size_t errlen)
{
	if (expect(&p, e, "# event : name = "))
		return FDO_OK;
	const char *n = p;
	while (p < e && !(*p == ',' && (p + 1 == e || p[1] == ' ')))
		p++;
	if (p == n || (size_t)(p - n) > d->lim.max_name_len)
		return errf(d, err, errlen, FDO_EPARSE,
			    "malformed event header line (want # event : "
			    "name = NAME, ...)");
	size_t ix;
	int rc = event_get(d, n, (size_t)(p - n), &ix);
	if (rc == FDO_ELIMIT)
		return errf(d, err, errlen, rc, "more than %d distinct events",
			    EVENTS_MAX);
	if (rc)
		return errf(d, err, errlen, rc, "out of memory");
	struct pevent *ev = &d->events[ix];
	const char *ve, *v;
	const char *st = attr_value(p, e, ", sample_type = ", &ve);
	const char *ste = ve;
	int callchain = st && has_flag(st, ste, "CALLCHAIN");
	if (st && has_flag(st, ste, "BRANCH_STACK") &&
	    (v = attr_value(p, e, "branch_sample_type = ", &ve)) &&
	    has_flag(v, ve, "CALL_STACK"))
		return errf(d, err, errlen, FDO_EINVAL,
			    "event %.64s was recorded with --call-graph lbr "
			    "(its callers are call instructions, its branch "
			    "stack a call stack), which fdoctl import does not "
			    "read: record with -g (frame pointers) or "
			    "--call-graph dwarf",
			    ev->name);
	ev->dwarf = callchain && has_flag(st, ste, "REGS_USER") &&
		    has_flag(st, ste, "STACK_USER");
	ev->period = 0;
	int freq = (v = attr_value(p, e, ", freq = ", &ve)) && ve - v == 1 &&
		   *v == '1';
	if (!freq && (v = attr_value(p, e, "sample_freq } = ", &ve))) {
		int64_t per;
		if (parse_dec(&v, ve, 0, &per) || v != ve)
			return errf(d, err, errlen, FDO_EPARSE,
				    "malformed sample period in the header of "
				    "event %.64s",
				    ev->name);
		if ((uint64_t)per > d->lim.max_period)
			return errf(
				d, err, errlen, FDO_ELIMIT,
				"event %.64s: sample period %lld, limit %llu",
				ev->name, (long long)per,
				(unsigned long long)d->lim.max_period);
		ev->period = (uint64_t)per;
	}
	return FDO_OK;
}

static int line(struct wire_perf *d, const char *p, const char *e, char *err,
		size_t errlen)
{
	const char *t = skip_ws(p, e);
	if (d->in_chain) {
		if (t == e)
			return sample_end(d, err, errlen);
		/* perf indents frames with a tab, and prints the brstack
		 * (0x...) after them; a sample line starts with blanks. */
		if (e - t >= 2 && t[0] == '0' && t[1] == 'x') {
			int rc = brstack(d, d->s_pid, t, e, err, errlen);
			return rc ? rc : sample_end(d, err, errlen);
		}
		if (p[0] == '\t')
			return chain_frame(d, p, e, err, errlen);
		return errf(d, err, errlen, FDO_EPARSE,
			    "the sample of line %lu has no end (a blank line "
			    "or its brstack)",
			    d->chain_line);
	}
	if (t < e && *t == '#')
		return event_line(d, t, e, err, errlen);
	if (t == e)
		return FDO_OK;
	return header_line(d, p, e, err, errlen);
}

/* ------------------------------------------------------------ the API -- */

int wire_perf_create(const struct wire_perf_opts *o, struct wire_perf **out)
{
	struct wire_perf *d = calloc(1, sizeof *d);
	if (!d)
		return FDO_ENOMEM;
	d->o = *o;
	d->lim = o->limits ? *o->limits : wire_limits_default;
	d->cap_stacks = d->lim.max_stacks / 4 ? d->lim.max_stacks / 4 : 1;
	d->cap_frames = d->lim.max_frames / 4 ? d->lim.max_frames / 4 : 1;
	d->cap_branches = d->lim.max_branches / 4;
	d->cap_bytes = d->lim.max_message_bytes / 2;
	d->held_max = o->max_held_bytes ? o->max_held_bytes : HELD_BYTES_MAX;
	if (d->cap_frames < d->lim.max_stack_depth)
		d->cap_frames = d->lim.max_stack_depth;
	fdo_buf_init(&d->line);
	*out = d;
	return FDO_OK;
}

void wire_perf_destroy(struct wire_perf *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ndsos; i++)
		free(d->dsos[i].path);
	free(d->dsos);
	fdo_map64_fini(&d->dso_ix);
	for (size_t i = 0; i < d->nprocs; i++)
		free(d->procs[i].buf);
	free(d->procs);
	fdo_map64_fini(&d->proc_ix);
	for (size_t i = 0; i < d->nevents; i++) {
		batch_fini(&d->events[i].b);
		free(d->events[i].name);
	}
	free(d->events);
	for (size_t i = 0; i < d->ndone; i++)
		wire_batch_free(d->done[i].b);
	free(d->done);
	fdo_buf_fini(&d->line);
	free(d->frames);
	free(d->sbr_from);
	free(d->sbr_to);
	free(d->sbr_mis);
	free(d);
}

int wire_perf_header(struct wire_perf *d, const char *text, size_t len,
		     char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned long saved = d->lineno;
	d->lineno = 0;
	while (p < end && !d->failed) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		event_line(d, p, e, err, errlen);
		p = e < end ? e + 1 : end;
	}
	d->lineno = saved;
	return d->failed;
}

int wire_perf_buildids(struct wire_perf *d, const char *text, size_t len,
		       char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned long n = 0;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		n++;
		const char *t = skip_ws(p, e);
		if (t < e) {
			const char *h = t;
			t = skip_tok(t, e);
			char hex[2 * FDO_BUILD_ID_MAX + 1];
			uint8_t bid[FDO_BUILD_ID_MAX];
			size_t hl = (size_t)(t - h), bl;
			const char *path = t < e ? t + 1 : e;
			if (hl >= sizeof hex ||
			    (memcpy(hex, h, hl), hex[hl] = '\0',
			     fdo_build_id_parse(hex, bid, &bl)) ||
			    path >= e) {
				d->failed = FDO_EPARSE;
				if (err && errlen)
					snprintf(
						err, errlen,
						"build-id list line %lu: want "
						"BUILDID PATH (perf buildid-list)",
						n);
				return FDO_EPARSE;
			}
			int oom = 0;
			uint32_t ds = e - path > PATH_BYTES_MAX
					      ? NO_DSO
					      : dso_get(d, path,
							(size_t)(e - path), 1,
							&oom);
			if (ds == NO_DSO) {
				d->failed = oom == 1 ? FDO_ENOMEM : FDO_ELIMIT;
				if (err && errlen)
					snprintf(
						err, errlen,
						"build-id list line %lu: %s", n,
						oom == 1 ? "out of memory"
						: oom ? "more than 65536 files"
						      : "path longer than 4096 "
							"bytes");
				return d->failed;
			}
			dso_set_bid(&d->dsos[ds], bid, bl);
			d->st.build_ids++;
		}
		p = e < end ? e + 1 : end;
	}
	return FDO_OK;
}

int wire_perf_feed(struct wire_perf *d, const char *text, size_t len, char *err,
		   size_t errlen)
{
	if (d->failed)
		return d->failed;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		if (memchr(p, '\0', (size_t)(e - p)))
			return errf(d, err, errlen, FDO_EPARSE,
				    "NUL byte: not perf script text");
		if (d->line.len + (size_t)(e - p) > LINE_MAX_BYTES)
			return errf(d, err, errlen, FDO_ELIMIT,
				    "line longer than %u bytes",
				    LINE_MAX_BYTES);
		if (!nl) {
			fdo_buf_append(&d->line, p, (size_t)(e - p));
			if (d->line.oom)
				return errf(d, err, errlen, FDO_ENOMEM,
					    "out of memory");
			break;
		}
		d->lineno++;
		int rc;
		if (d->line.len) {
			fdo_buf_append(&d->line, p, (size_t)(e - p));
			if (d->line.oom)
				return errf(d, err, errlen, FDO_ENOMEM,
					    "out of memory");
			rc = line(d, d->line.data, d->line.data + d->line.len,
				  err, errlen);
			fdo_buf_reset(&d->line);
		} else {
			rc = line(d, p, e, err, errlen);
		}
		if (rc)
			return d->failed = rc;
		p = nl + 1;
	}
	return FDO_OK;
}

/* The default binary name: the program with the most samples. */
static int pick_binary(struct wire_perf *d, const char **out, char *err,
		       size_t errlen)
{
	const struct pdso *best = NULL;
	for (size_t i = 0; i < d->ndsos; i++)
		if (d->dsos[i].exe_samples &&
		    (!best || d->dsos[i].exe_samples > best->exe_samples))
			best = &d->dsos[i];
	if (!best)
		return errf(d, err, errlen, FDO_EINVAL,
			    "cannot tell the recording's program (no sample "
			    "in a process with a known executable): give "
			    "--binary");
	const char *base = strrchr(best->path, '/');
	*out = base ? base + 1 : best->path;
	char why[200];
	if (wire_binary_name_check(*out, why, sizeof why))
		return errf(d, err, errlen, FDO_EINVAL,
			    "the program's name '%.64s' is not a binary name "
			    "(%s): give --binary",
			    *out, why);
	return FDO_OK;
}

int wire_perf_finish(struct wire_perf *d, struct wire_perf_result *out,
		     char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (d->failed)
		return d->failed;
	d->lineno = 0;
	if (d->line.len)
		return errf(d, err, errlen, FDO_ETRUNCATED,
			    "truncated: the last line has no newline");
	if (d->in_chain)
		return errf(d, err, errlen, FDO_ETRUNCATED,
			    "truncated: the sample of line %lu has no end",
			    d->chain_line);
	int rc;
	for (size_t i = 0; i < d->nevents; i++)
		if ((rc = batch_close(d, &d->events[i])))
			return errf(d, err, errlen, rc, "out of memory");
	if (!d->st.samples)
		return errf(d, err, errlen, FDO_EINVAL,
			    "no samples in the recording");
	if (d->st.samples == d->st.samples_unmapped)
		return errf(d, err, errlen, FDO_EINVAL,
			    "none of the %llu samples has a frame in a file "
			    "with a build-id (kernel-only recording, files "
			    "without build-ids, or no mmap events)",
			    (unsigned long long)d->st.samples);
	const char *binary = d->o.binary;
	if (!binary && (rc = pick_binary(d, &binary, err, errlen)))
		return rc;
	uint64_t end = d->o.time_end ? d->o.time_end : 1;
	for (size_t i = 0; i < d->ndone; i++) {
		Fdod__SampleBatch *b = d->done[i].b;
		uint64_t back0 = (d->t_max - d->done[i].t_first) / 1000000000u;
		uint64_t back1 = (d->t_max - d->done[i].t_last) / 1000000000u;
		b->time_start = end > back0 ? end - back0 : 1;
		b->time_end = end > back1 ? end - back1 : 1;
		b->seq = i + 1;
		free(b->agent_id != protobuf_c_empty_string ? b->agent_id
							    : NULL);
		free(b->binary != protobuf_c_empty_string ? b->binary : NULL);
		b->agent_id = xstrdup(d->o.agent_id);
		b->binary = xstrdup(binary);
		if (!b->agent_id || !b->binary)
			return errf(d, err, errlen, FDO_ENOMEM,
				    "out of memory");
		char why[256];
		if ((rc = wire_batch_validate(b, &d->lim, why, sizeof why)))
			return errf(d, err, errlen, rc, "batch %zu: %s", i + 1,
				    why);
	}
	out->batches = malloc((d->ndone ? d->ndone : 1) * sizeof *out->batches);
	if (!out->batches)
		return errf(d, err, errlen, FDO_ENOMEM, "out of memory");
	for (size_t i = 0; i < d->ndone; i++)
		out->batches[i] = d->done[i].b;
	out->n_batches = d->ndone;
	d->ndone = 0;
	out->stats = d->st;
	return FDO_OK;
}

void wire_perf_result_fini(struct wire_perf_result *r)
{
	for (size_t i = 0; i < r->n_batches; i++)
		wire_batch_free(r->batches[i]);
	free(r->batches);
	memset(r, 0, sizeof *r);
}

/* -------------------------------------------------- the perf.data file -- */

/*
 * perf.data header (tools/perf/util/header.h, perf_file_header), in the
 * byte order its magic shows:
 *   OFFSET SIZE DESCRIPTION
 *   0      8    magic "PERFILE2" (byte-swapped: the other byte order)
 *   8      8    size of this header (104; 16: pipe mode, no sections)
 *   16     8    attr_size
 *   24     16   attrs: offset, size
 *   40     16   data: offset, size
 *   56     16   event_types: offset, size
 *   72     32   feature bitmap; the feature sections' table of
 *               (offset, size) pairs, one per set bit, starts at
 *               data.offset + data.size
 */
static uint64_t rd64(const uint8_t *p, int swap)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return swap ? __builtin_bswap64(v) : v;
}

int wire_perf_data_check(const uint8_t *buf, size_t len, char *err,
			 size_t errlen)
{
	static const char magic[8] = {'P', 'E', 'R', 'F', 'I', 'L', 'E', '2'};
	if (len < 16)
		return wire_errf(err, errlen,
				 len >= 8 && !memcmp(buf, magic, 8)
					 ? FDO_ETRUNCATED
					 : FDO_EPARSE,
				 "%zu bytes: not a perf.data file", len);
	int swap;
	if (!memcmp(buf, magic, 8))
		swap = 0;
	else {
		uint8_t rev[8];
		for (int i = 0; i < 8; i++)
			rev[i] = (uint8_t)magic[7 - i];
		if (memcmp(buf, rev, 8))
			return wire_errf(err, errlen, FDO_EPARSE,
					 "not a perf.data file (no PERFILE2 "
					 "magic)");
		swap = 1;
	}
#define RD(off) rd64(buf + (off), swap)
	uint64_t hsize = RD(8);
	if (hsize == 16)
		return FDO_OK; /* pipe mode: the events run to the end */
	if (hsize < 104 || len < 104)
		return wire_errf(err, errlen,
				 len < 104 ? FDO_ETRUNCATED : FDO_EPARSE,
				 "perf.data header: %s",
				 len < 104 ? "truncated" : "bad size");
	for (int s = 0; s < 3; s++) {
		uint64_t off = RD(24 + 16 * s), size = RD(32 + 16 * s);
		if (off + size < off || off + size > len)
			return wire_errf(err, errlen, FDO_ETRUNCATED,
					 "truncated perf.data: its %s section "
					 "ends at byte %llu, the file has %zu",
					 s == 0	  ? "attrs"
					 : s == 1 ? "data"
						  : "event types",
					 (unsigned long long)(off + size), len);
	}
	uint64_t nfeat = 0;
	for (int w = 0; w < 4; w++)
		nfeat += (uint64_t)__builtin_popcountll(RD(72 + 8 * w));
	uint64_t table = RD(40) + RD(48);
	if (nfeat > (len - table) / 16)
		return wire_errf(err, errlen, FDO_ETRUNCATED,
				 "truncated perf.data: its feature table of "
				 "%llu entries does not fit",
				 (unsigned long long)nfeat);
	for (uint64_t i = 0; i < nfeat; i++) {
		uint64_t off = RD(table + 16 * i),
			 size = RD(table + 16 * i + 8);
		if (off + size < off || off + size > len)
			return wire_errf(err, errlen, FDO_ETRUNCATED,
					 "truncated perf.data: feature section "
					 "%llu ends at byte %llu, the file has "
					 "%zu",
					 (unsigned long long)i,
					 (unsigned long long)(off + size), len);
	}
#undef RD
	return FDO_OK;
}
