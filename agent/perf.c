/*
 * agent/perf.c — the kernel side of sampling: perf_event_open for every
 * (task, CPU) of the target with inherit=1 (so new threads and children
 * are followed), or for every online CPU with pid = -1 (host-wide mode),
 * user-only callchains in frequency mode, PERF_RECORD_MMAP2 / FORK / COMM
 * / EXIT to keep the processes and mappings current (MMAP2 with the
 * file's build-id where the kernel offers it, Linux >= 5.12), and one
 * mmap'd ring buffer per CPU (the other events of that CPU are redirected
 * into it with PERF_EVENT_IOC_SET_OUTPUT). The target never waits for us:
 * when a ring is full the kernel drops records and says so
 * (PERF_RECORD_LOST).
 *
 * Threads: open/enable/close on the main thread; read on the reader
 * thread only.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/agent.h"

#define RING_PAGES  128 /* data pages per CPU ring: 512 KiB */
#define KERNEL_ADDR 0x8000000000000000ull

struct ring {
	int fd;
	struct perf_event_mmap_page *meta;
	uint8_t *data;
	uint64_t mask;
};

struct agent_perf {
	int *fds;
	size_t nfds;
	struct ring *rings;
	size_t nrings;
	int branch_stack;
	int clock; /* cpu-clock: the kernel turned the frequency into a
		      fixed period (ns) at open, and takes a period since */
	uint64_t clock_period; /* ns, once agent_perf_set_freq changed it */
	int kernel_build_id;   /* attr.build_id accepted so far */
	uint64_t lost;
	uint8_t *tmp; /* a record that wraps the ring end is copied here */
	size_t tmpcap;
	uint64_t addrs[1024 + 8];
};

static long perf_open(struct perf_event_attr *a, pid_t pid, int cpu, int group,
		      unsigned long flags)
{
	return syscall(SYS_perf_event_open, a, pid, cpu, group, flags);
}

static void attr_fill(struct perf_event_attr *a, const struct agent_perf_cfg *c,
		      int cycles, int branch, int kbid, int host)
{
	memset(a, 0, sizeof *a);
	a->size = sizeof *a;
	if (cycles) {
		a->type = PERF_TYPE_HARDWARE;
		a->config = PERF_COUNT_HW_CPU_CYCLES;
	} else {
		a->type = PERF_TYPE_SOFTWARE;
		a->config = PERF_COUNT_SW_CPU_CLOCK;
	}
	a->freq = 1;
	a->sample_freq = c->freq;
	a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
			 PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN;
	if (branch) {
		a->sample_type |= PERF_SAMPLE_BRANCH_STACK;
		a->branch_sample_type = PERF_SAMPLE_BRANCH_USER |
					PERF_SAMPLE_BRANCH_ANY;
	}
	a->disabled = 1;
	a->enable_on_exec = c->enable_on_exec ? 1 : 0;
	a->inherit = host ? 0 : 1; /* a CPU-wide event sees every task */
	a->exclude_kernel = 1;
	a->exclude_hv = 1;
	a->exclude_callchain_kernel = 1;
	a->mmap = 1;
	a->mmap2 = 1;
	a->mmap_data = 0;
	a->comm = 1;
	a->comm_exec = 1;
	a->task = 1;
	a->build_id = kbid ? 1
			   : 0; /* MMAP2 carries the build-id, not dev/ino */
	a->sample_id_all = 1;	/* other records end with pid, tid, time */
	a->wakeup_watermark = RING_PAGES * 4096 / 4;
	a->watermark = 1;
}

static void perm_message(int err, int host)
{
	fprintf(stderr,
		"fdo-agent: perf_event_open: %s: no permission to sample %s; "
		"run as root or with CAP_PERFMON (CAP_SYS_ADMIN on "
		"kernels before 5.8), or lower "
		"/proc/sys/kernel/perf_event_paranoid (now ",
		strerror(err), host ? "every process (--all)" : "this process");
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	int lvl;
	if (f && fscanf(f, "%d", &lvl) == 1)
		fprintf(stderr, "%d", lvl);
	else
		fprintf(stderr, "unknown");
	if (f)
		fclose(f);
	fprintf(stderr, host ? "; --all needs at most 0)\n"
			     : "; at most 2 lets a user sample its own "
			       "processes)\n");
}

/*
 * One event for (pid, cpu). Falls back, once per agent, from the kernel's
 * build-ids (EINVAL before 5.12) and from cycles or branch stacks (no
 * PMU). Returns the fd, or -errno.
 */
static long open_event(struct agent_perf *pf, const struct agent_perf_cfg *cfg,
		       pid_t pid, int cpu, int *cycles, int *branch)
{
	struct perf_event_attr a;
	for (;;) {
		attr_fill(&a, cfg, *cycles, *branch, pf->kernel_build_id,
			  pid == -1);
		long fd = perf_open(&a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd >= 0)
			return fd;
		int e = errno;
		if (e == EINVAL && pf->kernel_build_id) {
			/* only when the build-id alone was refused: cycles or
			 * branch stacks may be why */
			attr_fill(&a, cfg, *cycles, *branch, 0, pid == -1);
			fd = perf_open(&a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
			if (fd >= 0) {
				fprintf(stderr,
					"fdo-agent: this kernel puts no "
					"build-ids in mmap records (%s; Linux "
					">= 5.12 does): reading them from the "
					"mapped files\n",
					strerror(e));
				pf->kernel_build_id = 0;
				return fd;
			}
		}
		if (!(*cycles || *branch) || (e != ENOENT && e != EOPNOTSUPP &&
					      e != EINVAL && e != ENODEV))
			return -e;
		fprintf(stderr,
			"fdo-agent: %s%s%s not available here (%s): falling "
			"back to cpu-clock without branch stacks\n",
			*cycles ? "event cycles" : "",
			*cycles && *branch ? " with " : "",
			*branch ? "branch stacks" : "", strerror(e));
		*cycles = *branch = 0;
	}
}

/* fd's records go to cpu's ring: the first event of a CPU maps it, the
 * others are redirected into it. */
static int ring_attach(struct agent_perf *pf, int cpu, int fd)
{
	struct ring *r = &pf->rings[cpu];
	if (r->fd >= 0) {
		if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, r->fd)) {
			fprintf(stderr, "fdo-agent: SET_OUTPUT: %s\n",
				strerror(errno));
			return FDO_EIO;
		}
		return FDO_OK;
	}
	size_t len = (RING_PAGES + 1) * 4096ul;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "fdo-agent: mmap of the perf ring: %s\n",
			strerror(errno));
		return errno == EPERM ? FDO_EDENIED : FDO_EIO;
	}
	r->fd = fd;
	r->meta = m;
	r->data = (uint8_t *)m + 4096;
	r->mask = RING_PAGES * 4096ul - 1;
	return FDO_OK;
}

static struct agent_perf *perf_new(size_t nfds, size_t ncpu)
{
	struct agent_perf *pf = calloc(1, sizeof *pf);
	if (!pf)
		return NULL;
	pf->fds = calloc(nfds, sizeof *pf->fds);
	pf->rings = calloc(ncpu, sizeof *pf->rings);
	if (!pf->fds || !pf->rings) {
		agent_perf_close(pf);
		return NULL;
	}
	for (size_t c = 0; c < ncpu; c++)
		pf->rings[c].fd = -1;
	pf->nrings = ncpu;
	return pf;
}

/* The end of an open: pf handed out, or closed when rc is an error. */
static int open_end(struct agent_perf *pf, int rc, int cycles, int branch,
		    struct agent_perf **out, const char **event)
{
	if (rc) {
		agent_perf_close(pf);
		return rc;
	}
	pf->branch_stack = branch;
	pf->clock = !cycles;
	*event = cycles ? "cycles" : "cpu-clock";
	*out = pf;
	return FDO_OK;
}

int agent_perf_open(const struct agent_perf_cfg *cfg, const pid_t *tids,
		    size_t ntids, struct agent_perf **out, const char **event)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	if (ncpu < 1)
		ncpu = 1;
	struct agent_perf *pf = perf_new(ntids * (size_t)ncpu, (size_t)ncpu);
	if (!pf)
		return FDO_ENOMEM;
	int cycles = cfg->cycles, branch = cfg->branch_stack;
	int rc = FDO_OK;
	size_t opened_tasks = 0;
	for (size_t t = 0; t < ntids; t++) {
		int task_ok = 0;
		for (long c = 0; c < ncpu; c++) {
			long fd = open_event(pf, cfg, tids[t], (int)c, &cycles,
					     &branch);
			if (fd < 0) {
				int e = (int)-fd;
				if (e == EACCES || e == EPERM) {
					perm_message(e, 0);
					rc = FDO_EDENIED;
					goto fail;
				}
				if (e == ESRCH)
					break; /* the thread exited */
				if (e == ENODEV || e == ENXIO)
					continue; /* CPU offline */
				fprintf(stderr,
					"fdo-agent: perf_event_open(task %d, "
					"cpu %ld): %s\n",
					(int)tids[t], c, strerror(e));
				rc = FDO_EIO;
				goto fail;
			}
			pf->fds[pf->nfds++] = (int)fd;
			task_ok = 1;
			if ((rc = ring_attach(pf, (int)c, (int)fd)))
				goto fail;
		}
		opened_tasks += task_ok;
	}
	if (!opened_tasks)
		rc = FDO_ENOT_FOUND;
fail:
	return open_end(pf, rc, cycles, branch, out, event);
}

/* The online CPUs, from /sys/devices/system/cpu/online ("0-3,6"); every
 * configured CPU when it cannot be read. */
static size_t online_cpus(int *out, size_t max)
{
	char buf[1024];
	size_t n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	if (f && fgets(buf, sizeof buf, f)) {
		for (char *s = buf; *s && *s != '\n';) {
			char *end;
			long lo = strtol(s, &end, 10), hi = lo;
			if (end == s)
				break;
			if (*end == '-')
				hi = strtol(end + 1, &end, 10);
			for (long c = lo; c <= hi && n < max; c++)
				out[n++] = (int)c;
			s = *end == ',' ? end + 1 : end;
		}
	}
	if (f)
		fclose(f);
	if (n == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_CONF);
		for (long c = 0; c < ncpu && n < max; c++)
			out[n++] = (int)c;
	}
	return n;
}

int agent_perf_open_all(const struct agent_perf_cfg *cfg,
			struct agent_perf **out, const char **event)
{
	static int cpus[4096];
	size_t ncpus = online_cpus(cpus, sizeof cpus / sizeof cpus[0]);
	int maxcpu = 0;
	for (size_t i = 0; i < ncpus; i++)
		maxcpu = cpus[i] > maxcpu ? cpus[i] : maxcpu;
	struct agent_perf *pf = perf_new(ncpus, (size_t)maxcpu + 1);
	if (!pf)
		return FDO_ENOMEM;
	/* Off by default: while any event asks for them, Debian bookworm's
	 * perf record (6.1) aborts on this host's kernel ("assertion failed
	 * at util/build-id.c:1010", stack smashing) whenever it runs beside
	 * the agent; docs/cli.md. */
	pf->kernel_build_id = cfg->kernel_build_id;
	int cycles = cfg->cycles, branch = cfg->branch_stack, rc = FDO_OK;
	for (size_t i = 0; i < ncpus; i++) {
		long fd = open_event(pf, cfg, -1, cpus[i], &cycles, &branch);
		if (fd == -ENODEV || fd == -ENXIO)
			continue; /* went offline since */
		if (fd < 0) {
			int e = (int)-fd;
			if (e == EACCES || e == EPERM) {
				perm_message(e, 1);
				rc = FDO_EDENIED;
			} else {
				fprintf(stderr,
					"fdo-agent: perf_event_open"
					"(all tasks, cpu %d): %s\n",
					cpus[i], strerror(e));
				rc = FDO_EIO;
			}
			goto fail;
		}
		pf->fds[pf->nfds++] = (int)fd;
		if ((rc = ring_attach(pf, cpus[i], (int)fd)))
			goto fail;
	}
	if (!pf->nfds)
		rc = FDO_EIO;
fail:
	return open_end(pf, rc, cycles, branch, out, event);
}

void agent_perf_enable(struct agent_perf *pf)
{
	for (size_t i = 0; i < pf->nfds; i++)
		ioctl(pf->fds[i], PERF_EVENT_IOC_ENABLE, 0);
}

void agent_perf_set_freq(struct agent_perf *pf, uint64_t freq, int paused)
{
	for (size_t i = 0; i < pf->nfds; i++) {
		if (!freq) {
			ioctl(pf->fds[i], PERF_EVENT_IOC_DISABLE, 0);
			continue;
		}
		/* A hardware event in frequency mode takes the frequency;
		 * cpu-clock a period in nanoseconds (the kernel's software
		 * clock events fix the period when opened and clear the
		 * frequency flag: 500 given as a "frequency" was 500 ns,
		 * ~55,000 samples a second here). */
		uint64_t v = pf->clock ? 1000000000u / freq : freq;
		ioctl(pf->fds[i], PERF_EVENT_IOC_PERIOD, &v);
		/* ... and goes on writing the period it was opened with
		 * into every sample (hw.last_period): the samples' weight
		 * is this period from now on. */
		if (pf->clock)
			pf->clock_period = v;
		if (paused)
			ioctl(pf->fds[i], PERF_EVENT_IOC_ENABLE, 0);
	}
}

uint64_t agent_perf_lost(const struct agent_perf *pf)
{
	return pf->lost;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* One PERF_RECORD_SAMPLE: ip, pid/tid, time, period, callchain[, branches]. */
static int parse_sample(struct agent_perf *pf, const uint8_t *p, size_t len,
			struct agent_profile *prof)
{
	size_t pos = 8;
	if (len < pos + 40)
		return 0;
	uint64_t ip = rd64(p + pos);
	pid_t pid = (pid_t)rd32(p + pos + 8);
	/* host-wide: a process the selectors refuse costs nothing more */
	if (!agent_profile_wants(prof, pid))
		return 0;
	uint64_t period = rd64(p + pos + 24);
	uint64_t nr = rd64(p + pos + 32);
	pos += 40;
	if (nr > (len - pos) / 8)
		return 0;
	size_t n = 0;
	for (uint64_t i = 0; i < nr && n < 1024; i++) {
		uint64_t a = rd64(p + pos + i * 8);
		if (a >= KERNEL_ADDR) /* PERF_CONTEXT_* markers, kernel */
			continue;
		pf->addrs[n++] = a;
	}
	pos += nr * 8;
	if (n == 0 && ip < KERNEL_ADDR && ip)
		pf->addrs[n++] = ip;
	if (pf->clock_period)
		period = pf->clock_period;
	agent_profile_add(prof, pid, pf->addrs, n, period ? period : 1);
	if (pf->branch_stack && len - pos >= 8) {
		uint64_t bnr = rd64(p + pos);
		pos += 8;
		for (uint64_t i = 0; i < bnr && len - pos >= 24;
		     i++, pos += 24) {
			uint64_t from = rd64(p + pos), to = rd64(p + pos + 8);
			uint64_t flags = rd64(p + pos + 16);
			if (from && to && from < KERNEL_ADDR &&
			    to < KERNEL_ADDR)
				agent_profile_add_branch(prof, pid, from, to,
							 (int)(flags & 1));
		}
	}
	return 1;
}

static uint64_t handle(struct agent_perf *pf, const uint8_t *p, size_t len,
		       struct agent_profile *prof)
{
	const struct perf_event_header *h = (const void *)p;
	/* sample_id_all trailer of non-sample records: pid, tid, time */
	uint64_t t = len >= 16 ? rd64(p + len - 8) : 0;
	switch (h->type) {
	case PERF_RECORD_SAMPLE:
		return (uint64_t)parse_sample(pf, p, len, prof);
	case PERF_RECORD_MMAP2:
		/* header, pid, tid, addr, len, pgoff, {maj, min, ino,
		 * ino_generation | build_id_size, 3 reserved, build_id[20]},
		 * prot, flags, filename */
		if (len > 72) {
			char path[4096];
			size_t pl = len - 72 < sizeof path - 1
					    ? len - 72
					    : sizeof path - 1;
			memcpy(path, p + 72, pl);
			path[pl] = 0;
			struct agent_mmap m = {.start = rd64(p + 16),
					       .len = rd64(p + 24),
					       .pgoff = rd64(p + 32),
					       .path = path,
					       .t = t};
			if (h->misc & PERF_RECORD_MISC_MMAP_BUILD_ID) {
				m.build_id = p + 44;
				m.build_id_len = p[40] <= 20 ? p[40] : 0;
			} else {
				m.dev = makedev(rd32(p + 40), rd32(p + 44));
				m.ino = rd64(p + 48);
			}
			agent_profile_mmap(prof, (pid_t)rd32(p + 8), &m);
		}
		break;
	case PERF_RECORD_FORK:
		/* FORK has its own time field at offset 24 */
		if (len >= 32)
			agent_profile_fork(prof, (pid_t)rd32(p + 8),
					   (pid_t)rd32(p + 12), rd64(p + 24));
		break;
	case PERF_RECORD_COMM:
		/* header, pid, tid, comm[] (NUL-terminated, padded) */
		if (len > 16 && rd32(p + 8) == rd32(p + 12)) {
			char comm[16];
			size_t cl = len - 16 < sizeof comm - 1
					    ? len - 16
					    : sizeof comm - 1;
			memcpy(comm, p + 16, cl);
			comm[cl] = 0;
			agent_profile_comm(
				prof, (pid_t)rd32(p + 8), comm,
				(h->misc & PERF_RECORD_MISC_COMM_EXEC) != 0, t);
		}
		break;
	case PERF_RECORD_EXIT:
		/* header, pid, ppid, tid, ptid, time: the process ends when
		 * its main thread does */
		if (len >= 32 && rd32(p + 8) == rd32(p + 16))
			agent_profile_exit(prof, (pid_t)rd32(p + 8),
					   rd64(p + 24));
		break;
	case PERF_RECORD_LOST:
		if (len >= 24)
			pf->lost += rd64(p + 16);
		break;
	}
	return 0;
}

static uint64_t drain(struct agent_perf *pf, struct ring *r,
		      struct agent_profile *prof)
{
	uint64_t head = __atomic_load_n(&r->meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = r->meta->data_tail, samples = 0;
	while (tail + sizeof(struct perf_event_header) <= head) {
		struct perf_event_header h;
		uint64_t off = tail & r->mask;
		if (off + sizeof h <= r->mask + 1) {
			memcpy(&h, r->data + off, sizeof h);
		} else {
			size_t first = r->mask + 1 - off;
			memcpy(&h, r->data + off, first);
			memcpy((uint8_t *)&h + first, r->data,
			       sizeof h - first);
		}
		if (h.size < sizeof h || tail + h.size > head)
			break;
		const uint8_t *rec;
		if (off + h.size <= r->mask + 1) {
			rec = r->data + off;
		} else {
			if (h.size > pf->tmpcap) {
				uint8_t *t = realloc(pf->tmp, h.size);
				if (!t) {
					tail += h.size;
					continue;
				}
				pf->tmp = t;
				pf->tmpcap = h.size;
			}
			size_t first = r->mask + 1 - off;
			memcpy(pf->tmp, r->data + off, first);
			memcpy(pf->tmp + first, r->data, h.size - first);
			rec = pf->tmp;
		}
		samples += handle(pf, rec, h.size, prof);
		tail += h.size;
	}
	__atomic_store_n(&r->meta->data_tail, tail, __ATOMIC_RELEASE);
	return samples;
}

uint64_t agent_perf_read(struct agent_perf *pf, int timeout_ms,
			 struct agent_profile *prof)
{
	struct pollfd pfd[256];
	size_t n = 0;
	for (size_t i = 0; i < pf->nrings && n < 256; i++)
		if (pf->rings[i].fd >= 0)
			pfd[n++] = (struct pollfd){.fd = pf->rings[i].fd,
						   .events = POLLIN};
	int hup = 0;
	if (timeout_ms > 0 && poll(pfd, n, timeout_ms) > 0)
		for (size_t i = 0; i < n; i++)
			hup |= (pfd[i].revents & POLLHUP) != 0;
	uint64_t samples = 0;
	for (size_t i = 0; i < pf->nrings; i++)
		if (pf->rings[i].fd >= 0)
			samples += drain(pf, &pf->rings[i], prof);
	/* POLLHUP stays set once a task is gone: do not spin on it */
	if (hup && timeout_ms > 0)
		usleep((useconds_t)timeout_ms * 1000);
	return samples;
}

void agent_perf_close(struct agent_perf *pf)
{
	if (!pf)
		return;
	for (size_t i = 0; i < pf->nrings; i++)
		if (pf->rings[i].meta)
			munmap(pf->rings[i].meta, (RING_PAGES + 1) * 4096ul);
	for (size_t i = 0; i < pf->nfds; i++)
		close(pf->fds[i]);
	free(pf->fds);
	free(pf->rings);
	free(pf->tmp);
	free(pf);
}
