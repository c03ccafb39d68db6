/*
 * agent/profile.c — what the agent knows between two batches: the
 * executable file mappings of every sampled process (kept current from
 * /proc/PID/maps and PERF_RECORD_MMAP2/FORK/COMM), identical stacks
 * pre-aggregated in a hash table, and the conversion of both into
 * SampleBatches.
 *
 * Workload: ~1000 samples per second per CPU, a few hundred distinct
 * stacks per interval, a few dozen mappings per process, mmap records
 * rare. A sample costs one hash and one probe; build-ids are read once
 * per mapped file (cached by device and inode).
 *
 * Threads: every function is called by the reader thread only (the main
 * thread before the reader starts); no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "common/buf.h"

#define BATCH_MAX_STACKS 65536
#define BATCH_MAX_FRAMES 1500000 /* keeps a batch well under 16 MiB */
#define BATCH_MAX_MAPPINGS 8192
#define STACK_MAX_DEPTH 1024

struct bid_cache {
	struct bid_cache *next;
	dev_t dev;
	ino_t ino;
	int ok;
	size_t len;
	uint8_t id[FDO_BUILD_ID_MAX];
};

struct map_ent {
	uint64_t start, limit, off;
	char *path;
	const struct bid_cache *bid;
	uint64_t t; /* perf time of the record that mapped it (0: /proc) */
	int used; /* by a stack of the batch being built */
};

/* Mappings and per-interval tallies of one process. */
struct proc {
	struct proc *next;
	pid_t pid;
	struct map_ent *maps; /* sorted by start, disjoint */
	size_t n, cap;
	uint64_t samples, period_sum; /* since the last flush */
};

/* A distinct stack (kind 0) or LBR branch (kind 1: addrs = from, to). */
struct entry {
	struct entry *next;
	uint64_t hash;
	pid_t pid;
	int kind;
	uint64_t count, mispred;
	uint32_t n;
	uint64_t addrs[];
};

struct agent_profile {
	struct proc *procs;
	struct bid_cache *bids;
	struct entry **buckets;
	size_t nbuckets, nentries;
	uint64_t unmapped; /* samples left out: no frame in a known mapping */
};

int agent_profile_create(struct agent_profile **out)
{
	struct agent_profile *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	p->nbuckets = 4096;
	p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
	if (!p->buckets) {
		free(p);
		return FDO_ENOMEM;
	}
	*out = p;
	return FDO_OK;
}

static void maps_clear(struct proc *pr)
{
	for (size_t i = 0; i < pr->n; i++)
		free(pr->maps[i].path);
	pr->n = 0;
}

static void entries_clear(struct agent_profile *p)
{
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct entry *e = p->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
		p->buckets[i] = NULL;
	}
	p->nentries = 0;
}

void agent_profile_destroy(struct agent_profile *p)
{
	if (!p)
		return;
	entries_clear(p);
	free(p->buckets);
	for (struct proc *pr = p->procs, *next; pr; pr = next) {
		next = pr->next;
		maps_clear(pr);
		free(pr->maps);
		free(pr);
	}
	for (struct bid_cache *b = p->bids, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p);
}

static struct proc *proc_get(struct agent_profile *p, pid_t pid, int *created)
{
	for (struct proc *pr = p->procs; pr; pr = pr->next)
		if (pr->pid == pid)
			return pr;
	struct proc *pr = calloc(1, sizeof *pr);
	if (!pr)
		return NULL;
	pr->pid = pid;
	pr->next = p->procs;
	p->procs = pr;
	if (created)
		*created = 1;
	return pr;
}

static const struct bid_cache *bid_lookup(struct agent_profile *p,
					  const char *path)
{
	struct stat st;
	if (stat(path, &st))
		return NULL;
	for (struct bid_cache *b = p->bids; b; b = b->next)
		if (b->dev == st.st_dev && b->ino == st.st_ino)
			return b->ok ? b : NULL;
	struct bid_cache *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	int rc = agent_build_id_read(path, b->id, &b->len);
	b->ok = rc == FDO_OK;
	if (!b->ok)
		fdo_debug("fdo-agent: %s: no build-id (%s), mapping skipped",
			  path, fdo_strerror(rc));
	b->next = p->bids;
	p->bids = b;
	return b->ok ? b : NULL;
}

/* Insert [start, limit) into pr, cutting whatever it overlaps; path NULL
 * only removes (an anonymous or build-id-less executable mapping). */
static void maps_insert(struct agent_profile *p, struct proc *pr,
			uint64_t start, uint64_t limit, uint64_t off,
			const char *path, uint64_t t)
{
	if (limit <= start)
		return;
	const struct bid_cache *bid = path ? bid_lookup(p, path) : NULL;
	if (fdo_grow(pr->maps, pr->cap, pr->n + 3))
		return;
	size_t w = 0, n = pr->n;
	struct map_ent right = {0};
	int have_right = 0;
	for (size_t i = 0; i < n; i++) {
		struct map_ent e = pr->maps[i];
		if (e.limit <= start || e.start >= limit) {
			pr->maps[w++] = e;
			continue;
		}
		if (e.limit > limit) {
			right = e;
			right.off += limit - e.start;
			right.start = limit;
			right.path = strdup(e.path);
			have_right = right.path != NULL;
		}
		if (e.start < start) {
			e.limit = start;
			pr->maps[w++] = e;
		} else {
			free(e.path);
		}
	}
	pr->n = w;
	if (have_right)
		pr->maps[pr->n++] = right;
	if (bid) {
		struct map_ent e = {.start = start, .limit = limit, .off = off,
				    .path = strdup(path), .bid = bid, .t = t};
		if (e.path)
			pr->maps[pr->n++] = e;
	}
	/* insertion sort: n is small and nearly sorted */
	for (size_t i = 1; i < pr->n; i++) {
		struct map_ent e = pr->maps[i];
		size_t j = i;
		for (; j > 0 && pr->maps[j - 1].start > e.start; j--)
			pr->maps[j] = pr->maps[j - 1];
		pr->maps[j] = e;
	}
}

static void load_maps(struct agent_profile *p, struct proc *pr)
{
	char name[64], line[4096 + 256];
	snprintf(name, sizeof name, "/proc/%d/maps", (int)pr->pid);
	FILE *f = fopen(name, "re");
	if (!f)
		return;
	maps_clear(pr);
	while (fgets(line, sizeof line, f)) {
		unsigned long long start, limit, off, ino;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &start,
			   &limit, perms, &off, &ino, &pos) < 5 || !pos)
			continue;
		char *path = line + pos;
		path[strcspn(path, "\n")] = 0;
		if (perms[2] != 'x' || path[0] != '/')
			continue;
		maps_insert(p, pr, start, limit, off, path, 0);
	}
	fclose(f);
}

void agent_profile_load_maps(struct agent_profile *p, pid_t pid)
{
	struct proc *pr = proc_get(p, pid, NULL);
	if (pr)
		load_maps(p, pr);
}

void agent_profile_mmap(struct agent_profile *p, pid_t pid, uint64_t start,
			uint64_t len, uint64_t pgoff, const char *path,
			uint64_t t)
{
	struct proc *pr = proc_get(p, pid, NULL);
	if (pr)
		maps_insert(p, pr, start, start + len, pgoff,
			    path[0] == '/' ? path : NULL, t);
}

/*
 * Records of one process come from every CPU's ring, and the rings are
 * drained one after the other, so a child's MMAP2 records may be handled
 * before the FORK or COMM that precede them in time: both use the record
 * times and never undo a newer mapping.
 */
void agent_profile_fork(struct agent_profile *p, pid_t pid, pid_t ppid,
			uint64_t t)
{
	if (pid == ppid)
		return; /* a new thread */
	struct proc *parent = proc_get(p, ppid, NULL);
	struct proc *child = proc_get(p, pid, NULL);
	if (!parent || !child)
		return;
	for (size_t i = 0; i < parent->n; i++) {
		const struct map_ent e = parent->maps[i];
		int newer = 0;
		for (size_t k = 0; k < child->n && !newer; k++)
			newer = child->maps[k].t > t &&
				child->maps[k].start < e.limit &&
				child->maps[k].limit > e.start;
		if (!newer && e.t <= t)
			maps_insert(p, child, e.start, e.limit, e.off, e.path,
				    e.t);
	}
}

uint64_t agent_profile_unmapped(const struct agent_profile *p)
{
	return p->unmapped;
}

void agent_profile_exec(struct agent_profile *p, pid_t pid, uint64_t t)
{
	struct proc *pr = proc_get(p, pid, NULL);
	if (!pr)
		return;
	size_t w = 0;
	for (size_t i = 0; i < pr->n; i++) {
		if (pr->maps[i].t < t)
			free(pr->maps[i].path);
		else
			pr->maps[w++] = pr->maps[i];
	}
	pr->n = w;
}

static struct entry *entry_get(struct agent_profile *p, pid_t pid, int kind,
			       const uint64_t *addrs, size_t n)
{
	uint64_t h = fdo_hash_words(addrs, n * sizeof *addrs) ^
		     fdo_mix64((uint64_t)pid << 1 | (uint64_t)kind);
	size_t b = h & (p->nbuckets - 1);
	for (struct entry *e = p->buckets[b]; e; e = e->next)
		if (e->hash == h && e->pid == pid && e->kind == kind &&
		    e->n == n && !memcmp(e->addrs, addrs, n * sizeof *addrs))
			return e;
	if (p->nentries >= p->nbuckets) {
		size_t nb = p->nbuckets * 2;
		struct entry **nbk = calloc(nb, sizeof *nbk);
		if (nbk) {
			for (size_t i = 0; i < p->nbuckets; i++) {
				struct entry *e = p->buckets[i], *next;
				for (; e; e = next) {
					next = e->next;
					e->next = nbk[e->hash & (nb - 1)];
					nbk[e->hash & (nb - 1)] = e;
				}
			}
			free(p->buckets);
			p->buckets = nbk;
			p->nbuckets = nb;
			b = h & (nb - 1);
		}
	}
	struct entry *e = calloc(1, sizeof *e + n * sizeof *addrs);
	if (!e)
		return NULL;
	e->hash = h;
	e->pid = pid;
	e->kind = kind;
	e->n = (uint32_t)n;
	memcpy(e->addrs, addrs, n * sizeof *addrs);
	e->next = p->buckets[b];
	p->buckets[b] = e;
	p->nentries++;
	return e;
}

void agent_profile_add(struct agent_profile *p, pid_t pid,
		       const uint64_t *addrs, size_t n, uint64_t period)
{
	if (n == 0)
		return;
	if (n > STACK_MAX_DEPTH)
		n = STACK_MAX_DEPTH;
	int created = 0;
	struct proc *pr = proc_get(p, pid, &created);
	if (!pr)
		return;
	if (created)
		load_maps(p, pr); /* a process whose mmap records we missed */
	struct entry *e = entry_get(p, pid, 0, addrs, n);
	if (!e)
		return;
	e->count++;
	pr->samples++;
	pr->period_sum += period;
}

void agent_profile_add_branch(struct agent_profile *p, pid_t pid,
			      uint64_t from, uint64_t to, int mispred)
{
	uint64_t a[2] = {from, to};
	struct entry *e = entry_get(p, pid, 1, a, 2);
	if (e) {
		e->count++;
		e->mispred += mispred != 0;
	}
}

static struct map_ent *map_find(struct proc *pr, uint64_t addr)
{
	size_t lo = 0, hi = pr->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pr->maps[mid].limit <= addr)
			lo = mid + 1;
		else if (pr->maps[mid].start > addr)
			hi = mid;
		else
			return &pr->maps[mid];
	}
	return NULL;
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

/* A batch with the meta fields set and room for nst stacks, nbr branches. */
static Fdod__SampleBatch *batch_new(const struct agent_batch_meta *m,
				    const struct proc *pr, uint64_t t0,
				    uint64_t t1, size_t nst, size_t nbr)
{
	Fdod__SampleBatch *b = malloc(sizeof *b);
	if (!b)
		return NULL;
	fdod__sample_batch__init(b);
	b->schema_version = WIRE_SCHEMA_VERSION;
	b->agent_id = xstrdup(m->agent_id);
	if (m->auth_token && *m->auth_token)
		b->auth_token = xstrdup(m->auth_token);
	b->seq = (*m->next_seq)++;
	b->host = xstrdup(m->host);
	b->binary = xstrdup(m->binary);
	b->event = xstrdup(m->event);
	b->period = pr->samples ? (pr->period_sum + pr->samples / 2) /
					  pr->samples
				: 1;
	if (b->period < 1)
		b->period = 1;
	b->weight = m->weight;
	b->time_start = t0;
	b->time_end = t1 > t0 ? t1 : t0 + 1;
	b->labels = calloc(m->nlabels + 1, sizeof *b->labels);
	for (size_t i = 0; b->labels && i < m->nlabels; i++) {
		Fdod__Label *l = malloc(sizeof *l);
		if (!l)
			break;
		fdod__label__init(l);
		l->key = xstrdup(m->label_keys[i]);
		l->value = xstrdup(m->label_values[i]);
		b->labels[b->n_labels++] = l;
	}
	b->stacks = calloc(nst + 1, sizeof *b->stacks);
	b->branches = calloc(nbr + 1, sizeof *b->branches);
	b->mappings = calloc(1, sizeof *b->mappings);
	if (!b->agent_id || !b->host || !b->binary || !b->event ||
	    !b->labels || !b->stacks || !b->branches || !b->mappings) {
		wire_batch_free(b);
		return NULL;
	}
	return b;
}

/* Attach the mappings the batch's stacks used (marked in pr). */
static void batch_mappings(Fdod__SampleBatch *b, struct proc *pr)
{
	size_t n = 0;
	for (size_t i = 0; i < pr->n; i++)
		n += pr->maps[i].used != 0;
	if (n > BATCH_MAX_MAPPINGS)
		n = BATCH_MAX_MAPPINGS;
	Fdod__Mapping **ms = calloc(n + 1, sizeof *ms);
	if (!ms)
		return;
	free(b->mappings);
	b->mappings = ms;
	for (size_t i = 0; i < pr->n && b->n_mappings < n; i++) {
		struct map_ent *e = &pr->maps[i];
		if (!e->used)
			continue;
		e->used = 0;
		Fdod__Mapping *m = malloc(sizeof *m);
		if (!m)
			continue;
		fdod__mapping__init(m);
		m->index = (uint32_t)b->n_mappings;
		m->start = e->start;
		m->limit = e->limit;
		m->file_offset = e->off;
		m->path = xstrdup(e->path);
		m->build_id.data = malloc(e->bid->len);
		if (!m->path || !m->build_id.data) {
			free(m->path);
			free(m->build_id.data);
			free(m);
			continue;
		}
		memcpy(m->build_id.data, e->bid->id, e->bid->len);
		m->build_id.len = e->bid->len;
		ms[b->n_mappings++] = m;
	}
	for (size_t i = 0; i < pr->n; i++)
		pr->maps[i].used = 0;
}

uint64_t agent_profile_flush(struct agent_profile *p,
			     const struct agent_batch_meta *meta,
			     uint64_t time_start, uint64_t time_end,
			     void (*emit)(Fdod__SampleBatch *, uint64_t,
					  void *),
			     void *arg)
{
	uint64_t total = 0;
	for (struct proc *pr = p->procs; pr; pr = pr->next) {
		/* gather this process's entries */
		size_t nst = 0, nbr = 0;
		for (size_t i = 0; i < p->nbuckets; i++)
			for (struct entry *e = p->buckets[i]; e; e = e->next)
				if (e->pid == pr->pid && e->kind)
					nbr++;
				else if (e->pid == pr->pid)
					nst++;
		if (nst == 0)
			continue;
		Fdod__SampleBatch *b = NULL;
		uint64_t samples = 0, frames = 0;
		size_t cap_st = nst < BATCH_MAX_STACKS ? nst : BATCH_MAX_STACKS;
		for (size_t i = 0; i < p->nbuckets; i++) {
			for (struct entry *e = p->buckets[i]; e; e = e->next) {
				if (e->pid != pr->pid)
					continue;
				if (b && (e->kind == 0 &&
					  (b->n_stacks >= cap_st ||
					   frames + e->n > BATCH_MAX_FRAMES))) {
					batch_mappings(b, pr);
					emit(b, samples, arg);
					total += samples;
					b = NULL;
				}
				if (!b) {
					b = batch_new(meta, pr, time_start,
						      time_end, cap_st, nbr);
					samples = frames = 0;
					if (!b)
						goto next_proc;
				}
				if (e->kind == 1) {
					Fdod__Branch *br = malloc(sizeof *br);
					if (!br)
						continue;
					fdod__branch__init(br);
					br->from = e->addrs[0];
					br->to = e->addrs[1];
					br->count = e->count;
					br->mispredicts = e->mispred;
					b->branches[b->n_branches++] = br;
					continue;
				}
				/* Mark the mappings the stack uses. A stack none
				 * of whose frames lies in a known mapping (a
				 * sample between a fork or exec and the records
				 * of the new image) names no file: fdod would
				 * count it unmapped and store nothing, so it is
				 * counted here instead and samples_sent stays
				 * what fdod stores. */
				int mapped = 0;
				for (uint32_t k = 0; k < e->n; k++) {
					struct map_ent *m =
						map_find(pr, e->addrs[k]);
					if (m)
						m->used = mapped = 1;
				}
				if (!mapped) {
					p->unmapped += e->count;
					continue;
				}
				Fdod__Stack *s = malloc(sizeof *s);
				uint64_t *a = malloc(e->n * sizeof *a);
				if (!s || !a) {
					free(s);
					free(a);
					continue;
				}
				fdod__stack__init(s);
				memcpy(a, e->addrs, e->n * sizeof *a);
				s->addrs = a;
				s->n_addrs = e->n;
				s->count = e->count;
				b->stacks[b->n_stacks++] = s;
				samples += e->count;
				frames += e->n;
			}
		}
		if (b && b->n_stacks) {
			batch_mappings(b, pr);
			emit(b, samples, arg);
			total += samples;
		} else if (b) {
			(*meta->next_seq)--; /* nothing sent under it */
			wire_batch_free(b);
		}
next_proc:
		pr->samples = pr->period_sum = 0;
	}
	entries_clear(p);
	return total;
}
