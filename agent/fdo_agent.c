/*
 * agent/fdo_agent.c — `fdo-agent`, the sampling agent: samples the user
 * call stacks of one process (--pid PID, or a COMMAND it starts), or of
 * every process of the host (--all, narrowed by --select), with
 * perf_event_open, pre-aggregates identical stacks, and every --interval
 * sends one SampleBatch per sampled process to fdod.
 *
 * DESIGN
 *   Threads:
 *     main    parses options, starts the target (fork; the child waits on a
 *             pipe until the events are open, then execs: enable_on_exec
 *             starts counting at the exec), opens the events, then waits
 *             for signals and for the target to end.
 *     reader  owns the perf rings and the profile: polls the rings (100 ms),
 *             drains them, and every interval builds, validates and encodes
 *             the batches and hands them to the spool. Never blocks on the
 *             network, so the rings keep draining whatever fdod does.
 *     sender  (agent/spool.c) owns the nng socket and delivers the spool.
 *   Host-wide mode (--all): main takes the host's lock (one --all agent
 *   per host), opens one event per CPU, enables it, then seeds the
 *   mappings of every running process from /proc before the reader
 *   starts; the reader follows process churn from the records. Batches
 *   are named per binary, each binary with its own agent id
 *   (AGENT_ID/BINARY) and seq stream.
 *   Ordering: batches get increasing seqs starting at the unix time in ms
 *   (nothing is persisted, and a restart never reuses a seq); a retried
 *   batch keeps its seq.
 *   Advice: every Ack may carry the server's sampling advice (spool.c
 *   feeds it to control.c); the reader applies it between reads: a rate
 *   on the open events (one target) or a share of each binary's samples
 *   (--all), pauses with heartbeats, and the agent's own CPU budget
 *   checked every --interval (docs/sampling.md).
 *   Shutdown: on SIGINT/SIGTERM (forwarded to a COMMAND, whose exit then
 *   ends the agent) or when the target ends (never, with --all), main
 *   sets `stop`; the reader drains the rings once more, flushes the final
 *   batches and exits; the sender gets --drain seconds to empty the
 *   spool. A summary line is printed; with a COMMAND the exit status is
 *   the command's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/opts.h"

#define DEFAULT_URL  "tcp://127.0.0.1:7470"
#define DEFAULT_LOCK "/run/fdo-agent/all.lock"
#define MAX_TIDS     65536
#define MAX_PIDS     4194304 /* pid_max's ceiling */
#define SPOOL_ONE    64	     /* default --spool: one process's batches */
#define SPOOL_ALL    1024    /* with --all: one batch per sampled process */

struct cfg {
	char *config;
	char *url;
	char *binary;
	struct fdo_strlist label;
	uint64_t freq;
	uint64_t interval;
	double weight;
	char *event;
	int branch_stack;
	uint64_t pid;
	int all;
	struct fdo_strlist select;
	char *lock_file;
	char *agent_id;
	char *token_file;
	uint64_t spool;
	uint64_t timeout_ms;
	uint64_t drain;
	uint64_t retry_max;
	uint64_t failover;
	double cpu_budget;
	uint64_t spool_bytes;
	int kernel_build_ids;
};

static const struct fdo_opt opts[] = {
	{"config", FDO_OPT_STRING, offsetof(struct cfg, config), NULL, "FILE",
	 "config file of `name = value` lines (same names as the flags)"},
	{"url", FDO_OPT_STRING, offsetof(struct cfg, url), NULL, "URL[,URL...]",
	 "fdod ingest address, or a list of up to 64 nodes: each agent id "
	 "goes to one of them by a stable hash (default $FDOD_URL, else " DEFAULT_URL
	 ")"},
	{"binary", FDO_OPT_STRING, offsetof(struct cfg, binary), NULL, "NAME",
	 "binary name of the batches (default: the executable's basename)"},
	{"label", FDO_OPT_LIST, offsetof(struct cfg, label), NULL, "K=V",
	 "label on every batch; repeatable"},
	{"freq", FDO_OPT_UINT, offsetof(struct cfg, freq), "997", "HZ",
	 "samples per second per thread (per CPU with --all)"},
	{"interval", FDO_OPT_DURATION, offsetof(struct cfg, interval), "10",
	 "SECONDS", "send a batch this often"},
	{"weight", FDO_OPT_DOUBLE, offsetof(struct cfg, weight), "1", "W",
	 "fleet weight of the batches"},
	{"event", FDO_OPT_STRING, offsetof(struct cfg, event), "cpu-clock",
	 "EVENT",
	 "cpu-clock or cycles (falls back to cpu-clock without a PMU)"},
	{"branch-stack", FDO_OPT_BOOL, offsetof(struct cfg, branch_stack),
	 "false", NULL,
	 "also record LBR branch stacks (falls back to none without a PMU)"},
	{"pid", FDO_OPT_UINT, offsetof(struct cfg, pid), "0", "PID",
	 "sample this running process (instead of -- COMMAND)"},
	{"all", FDO_OPT_BOOL, offsetof(struct cfg, all), "false", NULL,
	 "sample every process of the host, batches named per binary "
	 "(instead of --pid or -- COMMAND)"},
	{"select", FDO_OPT_LIST, offsetof(struct cfg, select), NULL, "SEL",
	 "with --all, only processes with exe=NAME[,NAME...] (basename or "
	 "comm), cgroup=PATH (or below) or build-id=HEX[,HEX...] of the "
	 "executable; repeatable, any one selects"},
	{"lock-file", FDO_OPT_STRING, offsetof(struct cfg, lock_file),
	 DEFAULT_LOCK, "FILE",
	 "with --all, the lock that keeps one --all agent per host"},
	{"agent-id", FDO_OPT_STRING, offsetof(struct cfg, agent_id), NULL, "ID",
	 "agent id (default HOST/fdo-agent/AGENT_PID; with --all, ID/BINARY "
	 "per binary)"},
	{"token-file", FDO_OPT_STRING, offsetof(struct cfg, token_file), NULL,
	 "FILE", "API token with scope ingest (default $FDOD_TOKEN)"},
	{"spool", FDO_OPT_UINT, offsetof(struct cfg, spool), "0", "N",
	 "batches kept for retry while fdod is unreachable (oldest dropped; "
	 "0: 64, or 1024 with --all)"},
	{"spool-bytes", FDO_OPT_SIZE, offsetof(struct cfg, spool_bytes), "64M",
	 "BYTES",
	 "... and at most this many encoded bytes of them (0: no byte cap)"},
	{"timeout-ms", FDO_OPT_UINT, offsetof(struct cfg, timeout_ms), "5000",
	 "MS", "wait this long for an Ack before sending again"},
	{"drain", FDO_OPT_DURATION, offsetof(struct cfg, drain), "10",
	 "SECONDS", "at exit, keep trying to send the spool this long"},
	{"retry-max", FDO_OPT_DURATION, offsetof(struct cfg, retry_max), "30",
	 "SECONDS",
	 "while fdod is away, wait at most this long between attempts "
	 "(and at most this long for a busy fdod's retry-after)"},
	{"failover", FDO_OPT_DURATION, offsetof(struct cfg, failover), "0",
	 "SECONDS",
	 "with several nodes in --url, a node unreachable this long hands its "
	 "batches to the next node by the hash (at-least-once for the batch "
	 "in flight; 0: never, retry the same node)"},
	{"kernel-build-ids", FDO_OPT_BOOL,
	 offsetof(struct cfg, kernel_build_ids), "false", NULL,
	 "with --all, take build-ids from the kernel's mmap records (Linux "
	 ">= 5.12; also covers processes that exit before the agent reads "
	 "their files), not from the files; off: a perf record running beside "
	 "the agent then aborts (perf 6.1)"},
	{"cpu-budget", FDO_OPT_DOUBLE, offsetof(struct cfg, cpu_budget), "2",
	 "PERCENT",
	 "the agent's own CPU, in % of one CPU, over each --interval: above "
	 "it the agent lowers its rate (and says so); the server's advice may "
	 "only lower it"},
	{0},
};

/* Shared between main and the reader thread. */
static atomic_int stop_reader;
static atomic_int status_wanted; /* SIGUSR1: a status line, by the reader */

struct reader {
	struct agent_perf *perf;
	struct agent_profile *prof;
	struct agent_spool *spool;
	struct agent_batch_meta meta;
	uint64_t interval_s;
	struct agent_control *control;	 /* one target's advice, or NULL */
	struct agent_controls *controls; /* --all: per binary, or NULL */
	/* reader thread only: */
	uint32_t own_freq;	 /* --freq */
	uint32_t cap;		 /* at most this, for the CPU budget */
	uint32_t cur;		 /* the events' rate now; 0 paused */
	double budget;		 /* --cpu-budget, a share of one CPU */
	uint64_t cpu_ns, cpu_at; /* own CPU and monotonic ns, last check */
	/* reader thread only: */
	uint64_t samples_read, batches_built, batches_invalid;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fdo-agent [options] (--pid PID | -- COMMAND [ARG...] |\n"
		"                            --all [--select SEL]...)\n\n"
		"Samples the user call stacks of a process, or of every process of\n"
		"the host, with perf_event_open and sends them to fdod as\n"
		"SampleBatches every --interval.\n\n"
		"options:\n");
	fdo_opts_print_help(opts, out);
}

static uint64_t wall_s(void)
{
	return (uint64_t)time(NULL);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void emit(Fdod__SampleBatch *b, uint64_t samples, void *arg)
{
	struct reader *r = arg;
	char err[256];
	uint8_t *msg;
	size_t len;
	int rc = wire_batch_validate(b, NULL, err, sizeof err);
	if (rc == FDO_OK)
		rc = wire_batch_encode(b, NULL, &msg, &len);
	else
		fprintf(stderr,
			"fdo-agent: batch seq %llu invalid, dropped: %s\n",
			(unsigned long long)b->seq, err);
	if (rc == FDO_OK) {
		agent_spool_put_stream(r->spool, b->agent_id, b->seq, msg, len,
				       samples);
		r->batches_built++;
	} else {
		r->batches_invalid++;
	}
	wire_batch_free(b);
}

/* An empty batch: a hello or a paused agent's heartbeat, whose Ack
 * carries the server's advice. */
static void heartbeat(struct reader *r)
{
	Fdod__SampleBatch *b =
		agent_profile_heartbeat(r->prof, &r->meta, NULL, wall_s());
	if (b)
		emit(b, 0, r);
}

/* --all: each binary's advice thins its samples (agent_profile_thin);
 * a paused binary's heartbeat. */
static void obey_all(struct reader *r)
{
	struct agent_controls *cs = r->controls;
	int changed = 0;
	for (size_t i = 0;; i++) {
		pthread_mutex_lock(&cs->mu);
		struct agent_named_control *nc = i < cs->n ? cs->c[i] : NULL;
		pthread_mutex_unlock(&cs->mu);
		if (!nc)
			break;
		uint32_t f;
		int hb;
		changed |= agent_control_poll(&nc->ctl, wall_s(), &f, &hb);
		/* A binary's first sample made its control: a hello now, so
		 * that its advice applies within a round trip, not after its
		 * first batch at the full own rate. */
		if (!nc->hello) {
			nc->hello = 1;
			hb |= !agent_control_acks(&nc->ctl);
		}
		Fdod__SampleBatch *b =
			hb ? agent_profile_heartbeat(r->prof, &r->meta,
						     nc->name, wall_s())
			   : NULL;
		if (b)
			emit(b, 0, r);
	}
	if (changed)
		agent_profile_thin(r->prof, agent_controls_keep, cs);
}

/* --all: a binary forgotten by the profile (not sampled for 60 flushes)
 * loses its control. */
static void forget_control(void *arg, const char *binary)
{
	agent_controls_forget(arg, binary);
}

/* Apply the server's advice (docs/sampling.md) and the CPU cap to the
 * events. */
static void obey(struct reader *r)
{
	uint32_t f;
	int hb;
	if (r->controls) {
		obey_all(r);
		return;
	}
	if (!r->control)
		return;
	agent_control_poll(r->control, wall_s(), &f, &hb);
	uint32_t want = f < r->cap ? f : r->cap;
	if (want != r->cur) {
		agent_perf_set_freq(r->perf, want, r->cur == 0);
		r->cur = want;
	} else if (want == 0) {
		/* again: a command's enable_on_exec enables at its exec */
		agent_perf_set_freq(r->perf, 0, 0);
	}
	if (hb)
		heartbeat(r);
}

static uint64_t own_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		       1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
		       1000u;
}

/* The agent's CPU budget (--cpu-budget, or the server's lower one):
 * over it, the rate goes down in proportion; well under it, back up. */
static void budget(struct reader *r)
{
	uint64_t now = (uint64_t)mono_ms() * 1000000u, cpu = own_cpu_ns();
	if (!r->cpu_at) {
		r->cpu_at = now;
		r->cpu_ns = cpu;
		return;
	}
	double used = (double)(cpu - r->cpu_ns) / (double)(now - r->cpu_at);
	r->cpu_at = now;
	r->cpu_ns = cpu;
	double b = r->budget;
	uint32_t adv = r->control    ? agent_control_cpu(r->control)
		       : r->controls ? agent_controls_cpu(r->controls)
				     : 0;
	if (adv && adv / 1000.0 < b)
		b = adv / 1000.0;
	uint32_t cap = r->cap;
	if (used > b && cap > 1) {
		double c = cap * (b / used) * 0.9;
		cap = c < 1 ? 1 : (uint32_t)c;
		fprintf(stderr,
			"fdo-agent: using %.2f%% of a CPU, over its budget of "
			"%.2f%%: sampling at most %u Hz\n",
			used * 100, b * 100, cap);
	} else if (used < b / 2 && cap < r->own_freq) {
		cap = cap + cap / 2 + 1;
		if (cap >= r->own_freq) {
			cap = r->own_freq;
			fprintf(stderr,
				"fdo-agent: within its CPU budget "
				"again: sampling at most %u Hz\n",
				cap);
		}
	}
	if (cap == r->cap)
		return;
	r->cap = cap;
	if (r->controls) {
		/* one rate for every process: the binaries' shares follow */
		agent_controls_set_rate(r->controls, cap);
		agent_perf_set_freq(r->perf, cap, 0);
		agent_profile_thin(r->prof, agent_controls_keep, r->controls);
	}
}

/* What the profile holds, as the summary and status lines give it. */
static void held_text(const struct reader *r, char *buf, size_t len)
{
	struct agent_profile_counts held;
	agent_profile_counts(r->prof, &held);
	size_t controls = 0;
	if (r->controls) {
		pthread_mutex_lock(&r->controls->mu);
		controls = r->controls->n;
		pthread_mutex_unlock(&r->controls->mu);
	}
	snprintf(buf, len,
		 "procs_known=%zu mappings_known=%zu build_ids_cached=%zu "
		 "binaries_known=%zu binaries_forgotten=%llu controls=%zu",
		 held.procs, held.maps, held.bids, held.streams,
		 (unsigned long long)held.forgotten, controls);
}

/* The process's VmRSS and RssAnon, KiB (0 when unreadable). */
static void own_rss(unsigned long long *vm, unsigned long long *anon)
{
	char line[128];
	*vm = *anon = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*vm = strtoull(line + 6, NULL, 10);
		else if (!strncmp(line, "RssAnon:", 8))
			*anon = strtoull(line + 8, NULL, 10);
	}
	fclose(f);
}

/* SIGUSR1: after the next flush, one line of what the agent has done and
 * holds, with its RSS then. Between flushes the RSS also holds the
 * interval's stacks (as many as the host's work makes, bounded by the
 * rate); right after a flush and its trim it is what the agent keeps,
 * which bench/agent judges for leaks. Reader thread: the profile is its
 * own. */
static void status_line(const struct reader *r)
{
	struct agent_spool_stats st;
	size_t n;
	uint64_t bytes;
	char held[256];
	unsigned long long vm, anon;
	agent_spool_snapshot(r->spool, &st, &n, &bytes);
	held_text(r, held, sizeof held);
	own_rss(&vm, &anon);
	fprintf(stderr,
		"fdo-agent: status: at_ms=%llu vmrss_kib=%llu rssanon_kib=%llu "
		"samples_read=%llu "
		"batches_sent=%llu "
		"samples_sent=%llu batches_dropped=%llu spool_batches=%zu "
		"spool_bytes=%llu samples_unmapped=%llu freq=%u %s\n",
		(unsigned long long)mono_ms(), vm, anon,
		(unsigned long long)r->samples_read,
		(unsigned long long)st.batches_sent,
		(unsigned long long)st.samples_sent,
		(unsigned long long)(st.batches_dropped + r->batches_invalid),
		n, (unsigned long long)bytes,
		(unsigned long long)agent_profile_unmapped(r->prof), r->cur,
		held);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t t0 = wall_s();
	uint64_t next = mono_ms() + r->interval_s * 1000;
	while (!atomic_load(&stop_reader)) {
		obey(r);
		r->samples_read += agent_perf_read(r->perf, 100, r->prof);
		if (mono_ms() >= next) {
			uint64_t t1 = wall_s();
			budget(r);
			agent_profile_flush(r->prof, &r->meta, t0, t1, emit, r);
			/* What the heap freed goes back to the kernel:
			 * the memory of a busy interval (its stacks and
			 * batches, a spool that filled, exited processes)
			 * otherwise stays in the agent's RSS for good
			 * (3,000 short processes under 1,000 names: 6.8
			 * MB after them against 13.2 MB without;
			 * bench/agent/README.md). 0.1-0.4 ms a call. */
			malloc_trim(0);
			if (atomic_exchange(&status_wanted, 0))
				status_line(r);
			t0 = t1;
			next += r->interval_s * 1000;
		}
	}
	r->samples_read += agent_perf_read(r->perf, 0, r->prof);
	agent_profile_flush(r->prof, &r->meta, t0, wall_s(), emit, r);
	return NULL;
}

/* Whether pid has exited (gone, or a zombie its parent has not reaped). */
static int process_gone(pid_t pid)
{
	if (kill(pid, 0) && errno == ESRCH)
		return 1;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *rp = strrchr(buf, ')'); /* comm may hold spaces */
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static int parse_labels(const struct fdo_strlist *l, char ***keys,
			char ***values)
{
	*keys = calloc(l->n + 1, sizeof **keys);
	*values = calloc(l->n + 1, sizeof **values);
	if (!*keys || !*values)
		return FDO_ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		const char *eq = strchr(l->items[i], '=');
		if (!eq || eq == l->items[i]) {
			fprintf(stderr, "fdo-agent: --label %s: expected K=V\n",
				l->items[i]);
			return FDO_EINVAL;
		}
		(*keys)[i] = strndup(l->items[i], (size_t)(eq - l->items[i]));
		(*values)[i] = strdup(eq + 1);
		if (!(*keys)[i] || !(*values)[i])
			return FDO_ENOMEM;
	}
	return FDO_OK;
}

/* fork a child that waits on a pipe before exec'ing argv. */
static pid_t spawn_stopped(char **argv, const sigset_t *orig, int *go_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		sigprocmask(SIG_SETMASK, orig, NULL);
		char c;
		if (read(p[0], &c, 1) != 1)
			_exit(127); /* the agent gave up */
		execvp(argv[0], argv);
		fprintf(stderr, "fdo-agent: cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

/* Host-wide mode's start: the lock, the selectors, one event per CPU.
 * Exits (1, or 2 for a bad selector) with a message on failure. */
static int start_all(const struct cfg *cfg, const struct agent_perf_cfg *pcfg,
		     struct reader *r, struct agent_select **sel, int *lock_fd,
		     const char **event)
{
	char err[512];
	if (agent_select_create(&cfg->select, sel, err, sizeof err)) {
		fprintf(stderr, "fdo-agent: %s\n", err);
		return 2;
	}
	if (agent_host_lock(cfg->lock_file, lock_fd))
		return 1;
	if (agent_perf_open_all(pcfg, &r->perf, event))
		return 1;
	if (agent_profile_create(&r->prof)) {
		fprintf(stderr, "fdo-agent: out of memory\n");
		return 1;
	}
	agent_profile_select(r->prof, *sel);
	return 0;
}

/* Host-wide mode, once the events count: the mappings of every process
 * already running (later ones come from the records). */
static void seed_all(struct agent_profile *prof)
{
	pid_t *pids = malloc(MAX_PIDS * sizeof *pids);
	size_t n = pids ? agent_proc_list("/proc", pids, MAX_PIDS) : 0;
	for (size_t i = 0; i < n; i++)
		agent_profile_load_maps(prof, pids[i]);
	free(pids);
}

int main(int argc, char **argv)
{
	struct cfg cfg;
	char err[512];
	int optind = 1, exit_code = 0, signals = 0, want_cycles = 0, rc;
	char **lkeys = NULL, **lvalues = NULL, **cmd = NULL;
	const char *conf, *url, *event = "cpu-clock";
	char binary[AGENT_NAME_MAX] = "";
	struct reader r = {0};
	struct agent_select *sel = NULL;
	pthread_t reader;
	static pid_t tids[MAX_TIDS];
	size_t ntids = 0;
	pid_t target = -1, child = -1;
	int go_fd = -1, lock_fd = -1;
	uint64_t next_seq;
	struct agent_spool_stats st;
	memset(&cfg, 0, sizeof cfg);
	if (fdo_opts_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (fdo_opts_defaults(opts, &cfg, err, sizeof err)) {
		fprintf(stderr, "fdo-agent: %s\n", err);
		exit_code = 2;
		goto out;
	}
	conf = fdo_opts_find_arg(argc, argv, "config");
	if ((conf && fdo_opts_parse_file(opts, &cfg, conf, err, sizeof err)) ||
	    fdo_opts_parse_args(opts, &cfg, argc, argv, &optind, err,
				sizeof err)) {
		fprintf(stderr, "fdo-agent: %s\n", err);
		usage(stderr);
		exit_code = 2;
		goto out;
	}
	cmd = optind < argc ? argv + optind : NULL;
	if ((cfg.pid != 0) + (cmd != NULL) + (cfg.all != 0) != 1) {
		fprintf(stderr, "fdo-agent: give exactly one of --pid PID, "
				"-- COMMAND or --all\n");
		usage(stderr);
		exit_code = 2;
		goto out;
	}
	if (!cfg.all && cfg.select.n) {
		fprintf(stderr, "fdo-agent: --select needs --all\n");
		exit_code = 2;
		goto out;
	}
	if (cfg.all && cfg.binary) {
		fprintf(stderr, "fdo-agent: --binary does not go with --all "
				"(batches are named per binary)\n");
		exit_code = 2;
		goto out;
	}
	if (!strcmp(cfg.event, "cpu-clock"))
		want_cycles = 0;
	else if (!strcmp(cfg.event, "cycles"))
		want_cycles = 1;
	else {
		fprintf(stderr,
			"fdo-agent: --event %s: expected cpu-clock or "
			"cycles\n",
			cfg.event);
		exit_code = 2;
		goto out;
	}
	if (cfg.freq < 1 || cfg.freq > 100000 || cfg.interval < 1 ||
	    cfg.interval > 3600 || !(cfg.weight > 0)) {
		fprintf(stderr, "fdo-agent: --freq must be 1..100000, "
				"--interval 1..3600 s, --weight > 0\n");
		exit_code = 2;
		goto out;
	}
	if (cfg.retry_max < 1 || cfg.retry_max > 86400) {
		fprintf(stderr, "fdo-agent: --retry-max must be 1 s..1 d\n");
		exit_code = 2;
		goto out;
	}
	if (cfg.failover > 7 * 86400) {
		fprintf(stderr, "fdo-agent: --failover must be 0..7 d\n");
		exit_code = 2;
		goto out;
	}
	if (parse_labels(&cfg.label, &lkeys, &lvalues)) {
		exit_code = 2;
		goto out;
	}
	url = cfg.url ? cfg.url : getenv("FDOD_URL");
	if (!url || !*url)
		url = DEFAULT_URL;
	{
		/* the node list is checked before anything starts */
		static char nodes[AGENT_NODES_MAX][AGENT_NODE_URL_MAX];
		size_t nn;
		if (agent_nodes_parse(url, nodes, &nn, err, sizeof err)) {
			fprintf(stderr, "fdo-agent: %s\n", err);
			exit_code = 2;
			goto out;
		}
	}
	if (!cfg.spool)
		cfg.spool = cfg.all ? SPOOL_ALL : SPOOL_ONE;

	/* Signals are taken by main with sigtimedwait; threads inherit the
	 * blocked mask. */
	sigset_t sigs, orig;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, &orig);
	signal(SIGPIPE, SIG_IGN);

	struct agent_perf_cfg pcfg = {.freq = cfg.freq,
				      .cycles = want_cycles,
				      .branch_stack = cfg.branch_stack,
				      .enable_on_exec = cmd != NULL,
				      .kernel_build_id = cfg.kernel_build_ids};
	r.interval_s = cfg.interval;
	if (cfg.all) {
		exit_code = start_all(&cfg, &pcfg, &r, &sel, &lock_fd, &event);
		if (exit_code)
			goto out;
	} else if (cmd) {
		child = spawn_stopped(cmd, &orig, &go_fd);
		if (child < 0) {
			fprintf(stderr, "fdo-agent: fork: %s\n",
				strerror(errno));
			exit_code = 1;
			goto out;
		}
		target = child;
		tids[0] = child;
		ntids = 1;
	} else {
		char task[64];
		target = (pid_t)cfg.pid;
		snprintf(task, sizeof task, "/proc/%d/task", (int)target);
		ntids = agent_proc_list(task, tids, MAX_TIDS);
		if (!ntids) {
			fprintf(stderr, "fdo-agent: no process %d\n",
				(int)target);
			exit_code = 1;
			goto out;
		}
	}
	rc = cfg.all ? FDO_OK
		     : agent_perf_open(&pcfg, tids, ntids, &r.perf, &event);
	if (rc) {
		if (rc == FDO_ENOT_FOUND)
			fprintf(stderr, "fdo-agent: process %d is gone\n",
				(int)target);
		if (child > 0) {
			close(go_fd); /* the child reads EOF and exits */
			waitpid(child, NULL, 0);
		}
		exit_code = 1;
		goto out;
	}
	if (!r.prof && agent_profile_create(&r.prof)) {
		fprintf(stderr, "fdo-agent: out of memory\n");
		exit_code = 1;
		goto out;
	}

	char host[256] = "localhost", exe[PATH_MAX], agent_id[400];
	gethostname(host, sizeof host - 1);
	if (cfg.binary)
		snprintf(binary, sizeof binary, "%s", cfg.binary);
	else if (cmd)
		agent_binary_name(cmd[0], binary, sizeof binary);
	else if (!cfg.all) {
		char link[64];
		snprintf(link, sizeof link, "/proc/%d/exe", (int)target);
		ssize_t n = readlink(link, exe, sizeof exe - 1);
		exe[n > 0 ? n : 0] = 0;
		agent_binary_name(n > 0 ? exe : "unknown", binary,
				  sizeof binary);
	}
	if (cfg.agent_id)
		snprintf(agent_id, sizeof agent_id, "%s", cfg.agent_id);
	else
		snprintf(agent_id, sizeof agent_id, "%s/fdo-agent/%d", host,
			 (int)getpid());
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	next_seq =
		(uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	static char token[512];
	if (fdo_client_token(cfg.token_file, token, sizeof token))
		return 1;
	r.meta = (struct agent_batch_meta){.auth_token = token,
					   .agent_id = agent_id,
					   .host = host,
					   .binary = cfg.all ? NULL : binary,
					   .event = event,
					   .label_keys = lkeys,
					   .label_values = lvalues,
					   .nlabels = cfg.label.n,
					   .weight = cfg.weight,
					   .next_seq = &next_seq};

	if (agent_spool_start(url, cfg.spool, (int)cfg.timeout_ms,
			      cfg.retry_max * 1000, &r.spool)) {
		if (child > 0) {
			close(go_fd);
			waitpid(child, NULL, 0);
		}
		exit_code = 1;
		goto out;
	}
	agent_spool_failover(r.spool, cfg.failover * 1000);
	if (cfg.all) {
		/* enabled first: what changes while we read /proc is in the
		 * rings, applied after it */
		agent_perf_enable(r.perf);
		seed_all(r.prof);
	} else if (!cmd) {
		agent_profile_load_maps(r.prof, target);
		agent_perf_enable(r.perf);
	}
	/* One target: the server's advice applies (docs/sampling.md). A
	 * hello first, so that joining a fleet does not start at the full
	 * own rate when fdod answers within a second. */
	agent_spool_limit_bytes(r.spool, cfg.spool_bytes);
	r.own_freq = r.cap = r.cur = (uint32_t)cfg.freq;
	r.budget = cfg.cpu_budget / 100;
	static struct agent_control control;
	static struct agent_controls controls;
	if (cfg.all) {
		agent_controls_init(&controls, (uint32_t)cfg.freq);
		agent_spool_controls(r.spool, &controls);
		r.controls = &controls;
		/* Each binary's keep asked at its first sample makes its
		 * control (all keep 1 until advice comes), and obey_all then
		 * says hello for it. */
		agent_profile_thin(r.prof, agent_controls_keep, &controls);
		/* a binary's stream and its control go together */
		agent_profile_on_forget(r.prof, forget_control, &controls);
	} else {
		agent_control_init(&control, "fdo-agent", (uint32_t)cfg.freq);
		agent_spool_control(r.spool, &control);
		r.control = &control;
		heartbeat(&r);
		for (int i = 0; i < 50 && !agent_control_acks(&control); i++)
			usleep(20000);
		obey(&r);
	}
	if (pthread_create(&reader, NULL, reader_main, &r)) {
		fprintf(stderr, "fdo-agent: cannot start the reader thread\n");
		return 1;
	}
	if (cmd) {
		char go = 1;
		if (write(go_fd, &go, 1) != 1)
			fprintf(stderr, "fdo-agent: cannot start %s\n", cmd[0]);
		close(go_fd);
	}
	if (cfg.all)
		fprintf(stderr,
			"fdo-agent: sampling every process%s (%s, "
			"%llu Hz), sending to %s as %s/BINARY every "
			"%llu s\n",
			cfg.select.n ? " the selectors accept" : "", event,
			(unsigned long long)cfg.freq, url, agent_id,
			(unsigned long long)cfg.interval);
	else
		fprintf(stderr,
			"fdo-agent: sampling %s %d (%s, %llu Hz), "
			"sending to %s as %s every %llu s\n",
			binary, (int)target, event,
			(unsigned long long)cfg.freq, url, agent_id,
			(unsigned long long)cfg.interval);

	for (;;) {
		struct timespec ts = {0, 200 * 1000000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGUSR1)
			atomic_store(&status_wanted, 1);
		if (sig == SIGINT || sig == SIGTERM) {
			signals++;
			if (child > 0 && signals == 1) {
				kill(child, sig); /* its exit ends us */
				continue;
			}
			if (child <= 0)
				break;
			fprintf(stderr,
				"fdo-agent: second signal: exiting "
				"without waiting for %d\n",
				(int)child);
			break;
		}
		if (child > 0) {
			int st;
			pid_t w = waitpid(child, &st, WNOHANG);
			if (w == child) {
				exit_code = WIFEXITED(st) ? WEXITSTATUS(st)
					    : WIFSIGNALED(st)
						    ? 128 + WTERMSIG(st)
						    : 1;
				break;
			}
			/* reap the command's own children we inherited? no:
			 * only our direct child is ours to wait for */
		} else if (!cfg.all && process_gone(target)) {
			fprintf(stderr, "fdo-agent: process %d exited\n",
				(int)target);
			break;
		}
	}
	atomic_store(&stop_reader, 1);
	pthread_join(reader, NULL);
	agent_spool_stop(r.spool, (int)(cfg.drain * 1000), &st);
	/* what the agent holds at exit, after its last flush: under process
	 * churn it stays near the host's running processes and binaries */
	char held[256];
	held_text(&r, held, sizeof held);
	fprintf(stderr,
		"fdo-agent: summary: batches_sent=%llu samples_sent=%llu "
		"batches_dropped=%llu samples_dropped=%llu batches_unsent=%llu "
		"samples_unsent=%llu samples_unmapped=%llu "
		"samples_unselected=%llu samples_thinned=%llu "
		"samples_read=%llu lost_records=%llu redirects=%llu "
		"batches_failed_over=%llu %s\n",
		(unsigned long long)st.batches_sent,
		(unsigned long long)st.samples_sent,
		(unsigned long long)(st.batches_dropped + r.batches_invalid),
		(unsigned long long)st.samples_dropped,
		(unsigned long long)st.batches_unsent,
		(unsigned long long)st.samples_unsent,
		(unsigned long long)agent_profile_unmapped(r.prof),
		(unsigned long long)agent_profile_unselected(r.prof),
		(unsigned long long)agent_profile_thinned(r.prof),
		(unsigned long long)r.samples_read,
		(unsigned long long)agent_perf_lost(r.perf),
		(unsigned long long)st.redirects,
		(unsigned long long)st.batches_failed_over, held);
out:
	agent_perf_close(r.perf);
	agent_profile_destroy(r.prof);
	agent_select_destroy(sel);
	if (lock_fd >= 0)
		close(lock_fd);
	for (size_t i = 0; lkeys && lvalues && i < cfg.label.n; i++) {
		free(lkeys[i]);
		free(lvalues[i]);
	}
	free(lkeys);
	free(lvalues);
	fdo_opts_fini(opts, &cfg);
	return exit_code;
}
