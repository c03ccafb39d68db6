/*
 * agent/profile.c — what the agent knows between two batches: the
 * processes it has seen and their executable file mappings (kept current
 * from /proc/PID/maps and PERF_RECORD_MMAP2/FORK/COMM/EXIT), whether
 * host-wide mode's selectors accept each one, identical stacks
 * pre-aggregated in a hash table, and the conversion of both into
 * SampleBatches.
 *
 * Workload: ~1000 samples per second per CPU, a few hundred distinct
 * stacks per interval, a few dozen mappings per process, a few hundred
 * processes on a host, mmap records rare. A sample costs a process
 * lookup, one hash and one probe. A process is matched against the
 * selectors once per image; build-ids are read only for the mappings of
 * selected processes, once per mapped file (cached by device and inode),
 * through /proc/PID/map_files or /proc/PID/root so that files of other
 * mount namespaces resolve; a build-id the kernel put in the MMAP2
 * record costs no read at all.
 *
 * Threads: every function is called by the reader thread only (the main
 * thread before the reader starts); no locks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/buf.h"

#define BATCH_MAX_STACKS   65536
#define BATCH_MAX_FRAMES   1500000 /* keeps a batch well under 16 MiB */
#define BATCH_MAX_MAPPINGS 8192
#define STACK_MAX_DEPTH	   1024
#define PROC_BUCKETS	   4096
#define BID_BUCKETS	   1024
/*
 * Distinct files whose build-ids are cached (~100 bytes each with the
 * allocator's overhead: at most ~400 KiB). Every new executable or library
 * file (a new inode: each build of a program, each upgrade) adds one, and
 * the files of exited processes are rarely asked again; when the cache is
 * full, the entries no mapping asked for since the last time it was full
 * go (a deleted file's entry is never asked again), and all of them if
 * that frees less than a quarter. A file read again costs one open and a
 * read of its notes.
 */
#define BID_CACHE_MAX 4096
/*
 * A binary none of whose processes was sampled (counted or thinned) for
 * this many flushes (10 min at the default --interval) is forgotten: its
 * seq stream, and through agent_profile_on_forget its control (the
 * server's advice). Binaries with unique names (a build's test programs,
 * scripts run from temporary directories) would otherwise pile up, ~500
 * bytes each. A binary that comes back starts a new stream (seqs above
 * the old one's) with a hello, as a new binary does.
 */
#define STREAM_IDLE_FLUSHES 60
#define SWEEP_FLUSHES	    30 /* look for processes whose EXIT record was lost */
/* The stack table starts with (and shrinks back to) this many slots; it
 * doubles while an interval's distinct stacks outnumber its slots. */
#define STACK_BUCKETS_MIN 4096

enum { BID_UNKNOWN, BID_OK, BID_NONE };
enum { SEL_UNKNOWN, SEL_YES, SEL_NO };

/* The build-id of one file, by the (device, inode) its mappings name. */
struct bid_cache {
	struct bid_cache *next;
	uint64_t dev, ino;
	int ok;
	int hit; /* asked for since the cache was last full */
	size_t len;
	uint8_t id[FDO_BUILD_ID_MAX];
};

struct map_ent {
	uint64_t start, limit, off;
	char *path;
	uint64_t dev, ino; /* 0, 0: the record carried the build-id instead */
	uint64_t t; /* perf time of the record that mapped it (0: /proc) */
	int bid_state;
	int used; /* by a stack of the batch being built */
	size_t bid_len;
	uint8_t bid[FDO_BUILD_ID_MAX];
};

/* One process: its mappings, identity and per-interval tallies. */
struct proc {
	struct proc *next; /* hash chain */
	pid_t pid;
	int sel;  /* SEL_*: decided at its first sample after start or exec */
	int dead; /* 1: EXIT seen; 2: and one flush since (freed at the next) */
	int seen; /* mappings known from /proc or its own records */
	uint64_t exec_t; /* perf time of its last exec record, 0: none seen */
	uint64_t exit_t; /* dead: perf time of its EXIT (0: found gone) */
	int active;	 /* sampled since the last flush, counted or thinned */
	char comm[16];
	char name[AGENT_NAME_MAX]; /* its batches' binary (host-wide) */
	struct map_ent *maps;	   /* sorted by start, disjoint */
	size_t n, cap;
	struct entry *entries;	      /* since the last flush, through pnext */
	uint64_t samples, period_sum; /* since the last flush */
	double keep;	   /* host-wide: share of its samples kept (thinning) */
	uint64_t keep_gen; /* the agent_profile keep_gen keep is of */
	double credit;	   /* kept samples owed */
};

/* A distinct stack (kind 0) or LBR branch (kind 1: addrs = from, to). */
struct entry {
	struct entry *next;  /* hash chain */
	struct entry *pnext; /* the process's list */
	struct proc *proc;
	uint64_t hash;
	int kind;
	uint64_t count, mispred;
	uint32_t n;
	uint64_t addrs[];
};

/* Host-wide mode: the agent id and seqs of one binary's batches. */
struct stream {
	struct stream *next;
	char name[AGENT_NAME_MAX];
	char *agent_id; /* "AGENT_ID/NAME" */
	uint64_t next_seq;
	uint64_t last_flush; /* the last flush that saw the binary sampled */
};

struct agent_profile {
	struct proc *procs[PROC_BUCKETS];
	struct bid_cache *bids[BID_BUCKETS];
	size_t nbids;
	struct entry **buckets;
	size_t nbuckets, nentries;
	int host_wide;
	const struct agent_select *sel;
	pid_t self;
	struct stream *streams;
	uint64_t seq_floor; /* above every seq of a forgotten stream */
	uint64_t flushes;
	uint64_t unmapped;   /* samples left out: no frame in a known mapping */
	uint64_t unselected; /* samples of processes the selectors refuse */
	uint64_t thinned;    /* samples left out by the server's advice */
	double (*keep_fn)(void *arg, const char *binary);
	void *keep_arg;
	uint64_t keep_gen; /* bumped when a binary's keep changes */
	void (*forget_fn)(void *arg, const char *binary);
	void *forget_arg;
	uint64_t forgotten; /* streams forgotten, in all */
};

int agent_profile_create(struct agent_profile **out)
{
	struct agent_profile *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	p->nbuckets = STACK_BUCKETS_MIN;
	p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
	if (!p->buckets) {
		free(p);
		return FDO_ENOMEM;
	}
	*out = p;
	return FDO_OK;
}

void agent_profile_select(struct agent_profile *p,
			  const struct agent_select *sel)
{
	p->host_wide = 1;
	p->sel = sel;
	p->self = getpid();
}

/*
 * A process that dropped most of its mappings (an exec: a forked child
 * held a copy of its parent's, often dozens) gives their room back:
 * under churn hundreds of exec'd children await their last flush, and a
 * child of a 33-mapping parent kept 6 KiB of room for its 3 mappings.
 */
static void maps_shrink(struct proc *pr)
{
	size_t cap = pr->cap;
	while (cap > 16 && pr->n * 4 <= cap)
		cap /= 2;
	if (cap == pr->cap)
		return;
	struct map_ent *m = realloc(pr->maps, cap * sizeof *m);
	if (m) {
		pr->maps = m;
		pr->cap = cap;
	}
}

static void maps_clear(struct proc *pr)
{
	for (size_t i = 0; i < pr->n; i++)
		free(pr->maps[i].path);
	pr->n = 0;
	maps_shrink(pr);
}

static void entries_clear(struct agent_profile *p)
{
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct entry *e = p->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->proc->entries = NULL;
			free(e);
		}
		p->buckets[i] = NULL;
	}
	p->nentries = 0;
}

static void bids_clear(struct agent_profile *p)
{
	for (size_t i = 0; i < BID_BUCKETS; i++) {
		for (struct bid_cache *b = p->bids[i], *next; b; b = next) {
			next = b->next;
			free(b);
		}
		p->bids[i] = NULL;
	}
	p->nbids = 0;
}

static void proc_free(struct proc *pr)
{
	for (size_t i = 0; i < pr->n; i++)
		free(pr->maps[i].path);
	free(pr->maps);
	free(pr);
}

void agent_profile_destroy(struct agent_profile *p)
{
	if (!p)
		return;
	entries_clear(p);
	free(p->buckets);
	for (size_t i = 0; i < PROC_BUCKETS; i++)
		for (struct proc *pr = p->procs[i], *next; pr; pr = next) {
			next = pr->next;
			proc_free(pr);
		}
	bids_clear(p);
	for (struct stream *s = p->streams, *next; s; s = next) {
		next = s->next;
		free(s->agent_id);
		free(s);
	}
	free(p);
}

static struct proc *proc_find(struct agent_profile *p, pid_t pid)
{
	for (struct proc *pr = p->procs[(uint32_t)pid % PROC_BUCKETS]; pr;
	     pr = pr->next)
		if (pr->pid == pid)
			return pr;
	return NULL;
}

/* A process that starts over (a new one under a reused pid): nothing of
 * the old one's identity or mappings holds. */
static void proc_reset(struct agent_profile *p, struct proc *pr)
{
	maps_clear(pr);
	pr->dead = pr->seen = 0;
	pr->exec_t = pr->exit_t = 0;
	pr->sel = p->host_wide ? SEL_UNKNOWN : SEL_YES;
	pr->comm[0] = pr->name[0] = 0;
}

static struct proc *proc_get(struct agent_profile *p, pid_t pid)
{
	struct proc *pr = proc_find(p, pid);
	if (pr)
		return pr;
	pr = calloc(1, sizeof *pr);
	if (!pr)
		return NULL;
	pr->pid = pid;
	proc_reset(p, pr);
	struct proc **b = &p->procs[(uint32_t)pid % PROC_BUCKETS];
	pr->next = *b;
	*b = pr;
	return pr;
}

/*
 * pid's process as of a record at perf time t. Records of one process
 * come from every CPU's ring and the rings are drained one after the
 * other, so a process's EXIT may be read before its FORK, COMM or MMAP2:
 * an exited process stays dead (and is freed two flushes on) whatever of
 * its older records comes after, and only a record newer than its EXIT
 * (the pid reused) starts it over. Before this, such a late FORK reset the
 * exited child to a live process that nothing would end but the sweep for
 * lost EXITs (SWEEP_FLUSHES): under process churn hundreds of them, each
 * with a copy of its parent's mappings, held megabytes.
 */
static struct proc *proc_at(struct agent_profile *p, pid_t pid, uint64_t t)
{
	struct proc *pr = proc_get(p, pid);
	if (pr && pr->dead && t > pr->exit_t)
		proc_reset(p, pr); /* the pid was reused */
	return pr;
}

static struct bid_cache *bid_find(struct agent_profile *p, uint64_t dev,
				  uint64_t ino)
{
	size_t b = fdo_mix64(dev * 31 + ino) % BID_BUCKETS;
	for (struct bid_cache *c = p->bids[b]; c; c = c->next)
		if (c->dev == dev && c->ino == ino) {
			c->hit = 1;
			return c;
		}
	return NULL;
}

/* A full cache: the entries not asked for since it was last full go (all
 * of them when that would free less than a quarter). */
static void bids_evict(struct agent_profile *p)
{
	size_t idle = 0;
	for (size_t i = 0; i < BID_BUCKETS; i++)
		for (struct bid_cache *c = p->bids[i]; c; c = c->next)
			idle += !c->hit;
	if (idle < BID_CACHE_MAX / 4) {
		bids_clear(p);
		return;
	}
	for (size_t i = 0; i < BID_BUCKETS; i++)
		for (struct bid_cache **cp = &p->bids[i]; *cp;) {
			struct bid_cache *c = *cp;
			if (c->hit) {
				c->hit = 0;
				cp = &c->next;
				continue;
			}
			*cp = c->next;
			free(c);
			p->nbids--;
		}
}

static void bid_put(struct agent_profile *p, const struct map_ent *e)
{
	if (p->nbids >= BID_CACHE_MAX)
		bids_evict(p);
	struct bid_cache *c = calloc(1, sizeof *c);
	if (!c)
		return;
	*c = (struct bid_cache){.dev = e->dev,
				.ino = e->ino,
				.ok = e->bid_state == BID_OK,
				.hit = 1,
				.len = e->bid_len};
	memcpy(c->id, e->bid, e->bid_len);
	size_t b = fdo_mix64(e->dev * 31 + e->ino) % BID_BUCKETS;
	c->next = p->bids[b];
	p->bids[b] = c;
	p->nbids++;
}

/*
 * Read e's build-id where pid sees the file: its map_files entry (the
 * mapped file itself, even deleted or in another mount namespace; needs
 * CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), else the path under its root
 * (its mount namespace), else the path here, but only when it is the
 * same file, since a container's /usr/lib/x is not the host's. "Same"
 * compares inode numbers only: the device stat reports is not the one
 * the mapping names on btrfs subvolumes and overlayfs.
 */
static int bid_read(pid_t pid, const struct map_ent *e, uint8_t *id,
		    size_t *len)
{
	char path[4096 + 64];
	snprintf(path, sizeof path, "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)e->start, (unsigned long long)e->limit);
	struct stat st;
	int rc = FDO_EIO;
	/* the range may hold another file by now */
	if (!e->ino || (!stat(path, &st) && st.st_ino == e->ino))
		rc = agent_build_id_read(path, id, len);
	if (rc != FDO_EIO)
		return rc;
	snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, e->path);
	rc = agent_build_id_read(path, id, len);
	if (rc != FDO_EIO)
		return rc;
	if (!e->ino || stat(e->path, &st) || st.st_ino != e->ino)
		return FDO_EIO;
	return agent_build_id_read(e->path, id, len);
}

/* Fill e's build-id: from the cache, else read (selected processes only). */
static void map_resolve(struct agent_profile *p, const struct proc *pr,
			struct map_ent *e)
{
	if (e->bid_state != BID_UNKNOWN || !e->path)
		return;
	const struct bid_cache *c = e->ino ? bid_find(p, e->dev, e->ino) : NULL;
	if (c) {
		e->bid_state = c->ok ? BID_OK : BID_NONE;
		e->bid_len = c->len;
		memcpy(e->bid, c->id, c->len);
		return;
	}
	int rc = bid_read(pr->pid, e, e->bid, &e->bid_len);
	e->bid_state = rc == FDO_OK ? BID_OK : BID_NONE;
	if (rc != FDO_OK)
		fdo_debug("fdo-agent: %s (pid %d): no build-id (%s), mapping "
			  "skipped",
			  e->path, (int)pr->pid, fdo_strerror(rc));
	/* a file we could not open may open for the next process */
	if (e->ino && rc != FDO_EIO)
		bid_put(p, e);
}

/* Insert a copy of *in (path NULL: only remove) into pr, cutting whatever
 * it overlaps. */
static void maps_insert(struct agent_profile *p, struct proc *pr,
			const struct map_ent *in)
{
	uint64_t start = in->start, limit = in->limit;
	if (limit <= start)
		return;
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
	if (in->path) {
		struct map_ent e = *in;
		e.used = 0;
		e.path = strdup(in->path);
		if (e.path && pr->sel == SEL_YES)
			map_resolve(p, pr, &e);
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
	pr->seen = 1;
	while (fgets(line, sizeof line, f)) {
		unsigned long long start, limit, off, ino;
		unsigned maj, min;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start,
			   &limit, perms, &off, &maj, &min, &ino, &pos) < 7 ||
		    !pos)
			continue;
		char *path = line + pos;
		path[strcspn(path, "\n")] = 0;
		if (perms[2] != 'x' || path[0] != '/')
			continue;
		struct map_ent e = {.start = start,
				    .limit = limit,
				    .off = off,
				    .path = path,
				    .dev = makedev(maj, min),
				    .ino = ino};
		maps_insert(p, pr, &e);
	}
	fclose(f);
}

void agent_profile_load_maps(struct agent_profile *p, pid_t pid)
{
	struct proc *pr = proc_get(p, pid);
	if (pr)
		load_maps(p, pr);
}

void agent_profile_mmap(struct agent_profile *p, pid_t pid,
			const struct agent_mmap *m)
{
	struct proc *pr = proc_at(p, pid, m->t);
	if (!pr)
		return;
	pr->seen = 1;
	/* "//anon" and "[vdso]" (anonymous or JIT code) name no file, and
	 * a "/memfd:..." JIT area reads as no ELF: their frames stay
	 * unmapped */
	int file = m->path[0] == '/' && m->path[1] != '/';
	struct map_ent e = {.start = m->start,
			    .limit = m->start + m->len,
			    .off = m->pgoff,
			    /* borrowed: maps_insert copies it */
			    .path = file ? (char *)m->path : NULL,
			    .dev = m->dev,
			    .ino = m->ino,
			    .t = m->t};
	if (file && m->build_id_len && m->build_id_len <= FDO_BUILD_ID_MAX) {
		e.bid_state = BID_OK;
		e.bid_len = m->build_id_len;
		memcpy(e.bid, m->build_id, m->build_id_len);
	}
	maps_insert(p, pr, &e);
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
	struct proc *parent = proc_get(p, ppid);
	struct proc *child = proc_at(p, pid, t);
	if (!parent || !child)
		return;
	child->seen = 1;
	/* The child's exec, read first from another ring: nothing of the
	 * parent's image is the child's any more. */
	if (child->exec_t > t)
		return;
	if (child->sel == SEL_UNKNOWN) {
		/* the same image as the parent until it execs */
		child->sel = parent->sel;
		memcpy(child->name, parent->name, sizeof child->name);
	}
	if (!child->comm[0])
		memcpy(child->comm, parent->comm, sizeof child->comm);
	for (size_t i = 0; i < parent->n; i++) {
		const struct map_ent e = parent->maps[i];
		int newer = 0;
		for (size_t k = 0; k < child->n && !newer; k++)
			newer = child->maps[k].t > t &&
				child->maps[k].start < e.limit &&
				child->maps[k].limit > e.start;
		if (!newer && e.t <= t)
			maps_insert(p, child, &e);
	}
}

uint64_t agent_profile_unmapped(const struct agent_profile *p)
{
	return p->unmapped;
}

uint64_t agent_profile_unselected(const struct agent_profile *p)
{
	return p->unselected;
}

void agent_profile_on_forget(struct agent_profile *p,
			     void (*fn)(void *arg, const char *binary),
			     void *arg)
{
	p->forget_fn = fn;
	p->forget_arg = arg;
}

void agent_profile_counts(const struct agent_profile *p,
			  struct agent_profile_counts *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < PROC_BUCKETS; i++)
		for (const struct proc *pr = p->procs[i]; pr; pr = pr->next) {
			c->procs++;
			c->maps += pr->n;
		}
	c->bids = p->nbids;
	for (const struct stream *s = p->streams; s; s = s->next)
		c->streams++;
	c->forgotten = p->forgotten;
	c->buckets = p->nbuckets;
}

void agent_profile_comm(struct agent_profile *p, pid_t pid, const char *comm,
			int exec, uint64_t t)
{
	struct proc *pr = exec ? proc_at(p, pid, t) : proc_find(p, pid);
	if (!pr)
		return;
	snprintf(pr->comm, sizeof pr->comm, "%s", comm);
	if (!exec)
		return;
	/* a new image: its mappings follow in MMAP2 records, and the
	 * selectors look at it afresh */
	pr->seen = 1;
	if (t > pr->exec_t)
		pr->exec_t = t;
	if (p->host_wide) {
		pr->sel = SEL_UNKNOWN;
		pr->name[0] = 0;
	}
	size_t w = 0;
	for (size_t i = 0; i < pr->n; i++) {
		if (pr->maps[i].t < t)
			free(pr->maps[i].path);
		else
			pr->maps[w++] = pr->maps[i];
	}
	pr->n = w;
	maps_shrink(pr);
}

void agent_profile_exit(struct agent_profile *p, pid_t pid, uint64_t t)
{
	/* kept until its samples are flushed; one not seen yet is kept as
	 * dead too, for its records still to be read from other rings */
	struct proc *pr = proc_at(p, pid, t);
	if (!pr)
		return;
	if (!pr->dead)
		pr->dead = 1;
	if (t > pr->exit_t)
		pr->exit_t = t;
}

/* pr, if its samples are to be counted: the selectors are asked once per
 * image, and only then are its build-ids read. */
static struct proc *proc_selected(struct agent_profile *p, pid_t pid)
{
	struct proc *pr = proc_get(p, pid);
	if (!pr)
		return NULL;
	if (pr->sel == SEL_UNKNOWN) {
		int ok = pid != p->self &&
			 agent_select_match(p->sel, pid,
					    pr->comm[0] ? pr->comm : NULL,
					    pr->name, sizeof pr->name);
		pr->sel = ok ? SEL_YES : SEL_NO;
		for (size_t i = 0; ok && pr->seen && i < pr->n; i++)
			map_resolve(p, pr, &pr->maps[i]);
	}
	if (pr->sel != SEL_YES)
		return NULL;
	if (!pr->seen)
		load_maps(p, pr); /* a process whose records we missed */
	return pr;
}

int agent_profile_wants(struct agent_profile *p, pid_t pid)
{
	if (proc_selected(p, pid))
		return 1;
	p->unselected++;
	return 0;
}

static struct entry *entry_get(struct agent_profile *p, struct proc *pr,
			       int kind, const uint64_t *addrs, size_t n)
{
	uint64_t h = fdo_hash_words(addrs, n * sizeof *addrs) ^
		     fdo_mix64((uint64_t)pr->pid << 1 | (uint64_t)kind);
	size_t b = h & (p->nbuckets - 1);
	for (struct entry *e = p->buckets[b]; e; e = e->next)
		if (e->hash == h && e->proc == pr && e->kind == kind &&
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
	e->proc = pr;
	e->kind = kind;
	e->n = (uint32_t)n;
	memcpy(e->addrs, addrs, n * sizeof *addrs);
	e->next = p->buckets[b];
	p->buckets[b] = e;
	e->pnext = pr->entries;
	pr->entries = e;
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
	struct proc *pr = proc_selected(p, pid);
	if (!pr)
		return;
	pr->active = 1;
	if (p->keep_fn) {
		/* The server's advice for its binary: keep that share of its
		 * samples, each standing for 1/keep of them. */
		if (pr->keep_gen != p->keep_gen) {
			pr->keep = p->keep_fn(p->keep_arg, pr->name);
			pr->keep_gen = p->keep_gen;
		}
		if (pr->keep < 1) {
			pr->credit += pr->keep;
			if (pr->credit < 1) {
				p->thinned++;
				return;
			}
			pr->credit -= 1;
			period = (uint64_t)((double)period / pr->keep + 0.5);
		}
	}
	struct entry *e = entry_get(p, pr, 0, addrs, n);
	if (!e)
		return;
	e->count++;
	pr->samples++;
	pr->period_sum += period;
}

void agent_profile_add_branch(struct agent_profile *p, pid_t pid, uint64_t from,
			      uint64_t to, int mispred)
{
	uint64_t a[2] = {from, to};
	struct proc *pr = proc_selected(p, pid);
	struct entry *e = pr ? entry_get(p, pr, 1, a, 2) : NULL;
	if (e) {
		e->count++;
		e->mispred += mispred != 0;
	}
}

/* The mapping of addr with a build-id, or NULL. */
static struct map_ent *map_find(struct agent_profile *p, struct proc *pr,
				uint64_t addr)
{
	size_t lo = 0, hi = pr->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pr->maps[mid].limit <= addr)
			lo = mid + 1;
		else if (pr->maps[mid].start > addr)
			hi = mid;
		else {
			map_resolve(p, pr, &pr->maps[mid]);
			return pr->maps[mid].bid_state == BID_OK
				       ? &pr->maps[mid]
				       : NULL;
		}
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
	b->period = pr->samples
			    ? (pr->period_sum + pr->samples / 2) / pr->samples
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
	if (!b->agent_id || !b->host || !b->binary || !b->event || !b->labels ||
	    !b->stacks || !b->branches || !b->mappings) {
		wire_batch_free(b);
		return NULL;
	}
	return b;
}

static struct stream *stream_get(struct agent_profile *p,
				 const struct agent_batch_meta *meta,
				 const char *name);

void agent_profile_thin(struct agent_profile *p,
			double (*keep)(void *arg, const char *binary),
			void *arg)
{
	p->keep_fn = keep;
	p->keep_arg = arg;
	p->keep_gen++;
}

uint64_t agent_profile_thinned(const struct agent_profile *p)
{
	return p->thinned;
}

Fdod__SampleBatch *agent_profile_heartbeat(struct agent_profile *p,
					   const struct agent_batch_meta *meta,
					   const char *binary, uint64_t t)
{
	struct proc none;
	memset(&none, 0, sizeof none);
	struct agent_batch_meta m = *meta;
	if (!meta->binary) {
		/* a heartbeat keeps no binary: only its samples do */
		struct stream *st = stream_get(p, meta, binary);
		if (!st)
			return NULL;
		m.binary = st->name;
		m.agent_id = st->agent_id;
		m.next_seq = &st->next_seq;
	}
	return batch_new(&m, &none, t, t + 1, 0, 0);
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
		m->build_id.data = malloc(e->bid_len);
		if (!m->path || !m->build_id.data) {
			free(m->path);
			free(m->build_id.data);
			free(m);
			continue;
		}
		memcpy(m->build_id.data, e->bid, e->bid_len);
		m->build_id.len = e->bid_len;
		ms[b->n_mappings++] = m;
	}
	for (size_t i = 0; i < pr->n; i++)
		pr->maps[i].used = 0;
}

/* Host-wide mode: the stream of binary name (created on first use). */
static struct stream *stream_get(struct agent_profile *p,
				 const struct agent_batch_meta *meta,
				 const char *name)
{
	for (struct stream *s = p->streams; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	struct stream *s = calloc(1, sizeof *s);
	size_t len = strlen(meta->agent_id) + strlen(name) + 2;
	if (!s || !(s->agent_id = malloc(len))) {
		free(s);
		return NULL;
	}
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->agent_id, len, "%s/%s", meta->agent_id, name);
	/* seqs start at the unix time in ms, as the agent's own do, and
	 * above those of a forgotten stream of the same name */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	s->next_seq =
		(uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	if (s->next_seq < p->seq_floor)
		s->next_seq = p->seq_floor;
	s->last_flush = p->flushes;
	s->next = p->streams;
	p->streams = s;
	return s;
}

/* The batches of one process's entries (pr->samples > 0). */
static uint64_t flush_proc(struct agent_profile *p, struct proc *pr,
			   const struct agent_batch_meta *meta,
			   uint64_t time_start, uint64_t time_end,
			   void (*emit)(Fdod__SampleBatch *, uint64_t, void *),
			   void *arg)
{
	uint64_t total = 0;
	size_t nst = 0, nbr = 0;
	for (struct entry *e = pr->entries; e; e = e->pnext)
		if (e->kind)
			nbr++;
		else
			nst++;
	if (nst == 0)
		return 0;
	struct agent_batch_meta m = *meta;
	if (!meta->binary && !pr->name[0]) {
		/* Samples read before the exec record that cleared its name
		 * (rings are read one CPU after the other): the new image is
		 * named and judged now; a batch without a binary would be
		 * refused (bench/agent saw it under process churn). */
		if (pr->sel == SEL_UNKNOWN)
			proc_selected(p, pr->pid);
		if (!pr->name[0] || pr->sel != SEL_YES) {
			p->unmapped += pr->samples;
			return 0;
		}
	}
	if (!meta->binary) {
		struct stream *st = stream_get(p, meta, pr->name);
		if (!st)
			return 0;
		m.binary = st->name;
		m.agent_id = st->agent_id;
		m.next_seq = &st->next_seq;
	}
	Fdod__SampleBatch *b = NULL;
	uint64_t samples = 0, frames = 0;
	size_t cap_st = nst < BATCH_MAX_STACKS ? nst : BATCH_MAX_STACKS;
	for (struct entry *e = pr->entries; e; e = e->pnext) {
		if (b && (e->kind == 0 && (b->n_stacks >= cap_st ||
					   frames + e->n > BATCH_MAX_FRAMES))) {
			batch_mappings(b, pr);
			emit(b, samples, arg);
			total += samples;
			b = NULL;
		}
		if (!b) {
			b = batch_new(&m, pr, time_start, time_end, cap_st,
				      nbr);
			samples = frames = 0;
			if (!b)
				return total;
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
		/* Mark the mappings the stack uses. A stack none of whose
		 * frames lies in a known mapping with a build-id (a sample
		 * between a fork or exec and the records of the new image,
		 * or in JIT or anonymous code) names no file: fdod would
		 * count it unmapped and store nothing, so it is counted here
		 * instead and samples_sent stays what fdod stores. */
		int mapped = 0;
		for (uint32_t k = 0; k < e->n; k++) {
			struct map_ent *me = map_find(p, pr, e->addrs[k]);
			if (me)
				me->used = mapped = 1;
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
	if (b && b->n_stacks) {
		batch_mappings(b, pr);
		emit(b, samples, arg);
		total += samples;
	} else if (b) {
		(*m.next_seq)--; /* nothing sent under it */
		wire_batch_free(b);
	}
	return total;
}

/* After a flush: free the processes that exited before the previous one
 * (their last samples are out), mark those whose EXIT record was lost,
 * forget idle streams. */
static void flush_forget(struct agent_profile *p)
{
	int sweep = p->flushes % SWEEP_FLUSHES == 0;
	for (size_t i = 0; i < PROC_BUCKETS; i++) {
		struct proc **pp = &p->procs[i];
		while (*pp) {
			struct proc *pr = *pp;
			if (pr->dead == 2) {
				*pp = pr->next;
				proc_free(pr);
				continue;
			}
			if (pr->dead)
				pr->dead = 2;
			else if (sweep && kill(pr->pid, 0) && errno == ESRCH)
				pr->dead = 1;
			pp = &pr->next;
		}
	}
	for (struct stream **sp = &p->streams; *sp;) {
		struct stream *s = *sp;
		if (p->flushes - s->last_flush < STREAM_IDLE_FLUSHES) {
			sp = &s->next;
			continue;
		}
		if (s->next_seq > p->seq_floor)
			p->seq_floor = s->next_seq;
		*sp = s->next;
		if (p->forget_fn)
			p->forget_fn(p->forget_arg, s->name);
		/* its processes, if any come back, ask for their keep again */
		p->keep_gen++;
		p->forgotten++;
		free(s->agent_id);
		free(s);
	}
}

/* After a busy interval: back to a table the size of the last one's
 * stacks (a quarter full at most), not less than STACK_BUCKETS_MIN. */
static void buckets_shrink(struct agent_profile *p, size_t used)
{
	size_t nb = p->nbuckets;
	while (nb > STACK_BUCKETS_MIN && used * 4 <= nb / 2)
		nb /= 2;
	if (nb == p->nbuckets)
		return;
	struct entry **b = calloc(nb, sizeof *b);
	if (!b)
		return;
	free(p->buckets); /* empty: entries_clear ran */
	p->buckets = b;
	p->nbuckets = nb;
}

uint64_t agent_profile_flush(
	struct agent_profile *p, const struct agent_batch_meta *meta,
	uint64_t time_start, uint64_t time_end,
	void (*emit)(Fdod__SampleBatch *, uint64_t, void *), void *arg)
{
	uint64_t total = 0;
	p->flushes++;
	for (size_t i = 0; i < PROC_BUCKETS; i++)
		for (struct proc *pr = p->procs[i]; pr; pr = pr->next) {
			if (pr->entries)
				total += flush_proc(p, pr, meta, time_start,
						    time_end, emit, arg);
			/* host-wide: a binary sampled, even if every sample
			 * was thinned (paused), is kept */
			if (pr->active && !meta->binary && pr->name[0] &&
			    pr->sel == SEL_YES) {
				struct stream *st =
					stream_get(p, meta, pr->name);
				if (st)
					st->last_flush = p->flushes;
			}
			pr->active = 0;
			pr->samples = pr->period_sum = 0;
		}
	size_t used = p->nentries;
	entries_clear(p);
	buckets_shrink(p, used);
	flush_forget(p);
	return total;
}
