/*
 * agent/agent.h — what the files of the sampling agent (fdo-agent) share
 * among themselves; nothing outside agent/ includes it. The agent depends
 * only on schemas/ and common/ (and on nng in agent/spool.c).
 *
 *   buildid.c   the GNU build-id of an ELF file (common/elfnote.c's reader)
 *   host.c      host-wide mode: selectors, binary names, /proc, the lock
 *   perf.c      perf_event_open per CPU, mmap'd rings, record decoding
 *   profile.c   processes and their mappings, stack aggregation, batches
 *   spool.c     bounded spool of encoded batches and the sender thread
 *   control.c   the server's sampling advice: rate, pauses, heartbeats
 *   fdo_agent.c options, target process, threads, shutdown
 */
#ifndef FDO_AGENT_H
#define FDO_AGENT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/opts.h"
#include "schemas/schemas.h"

/* The longest binary name the agent gives a batch (a sanitized basename). */
#define AGENT_NAME_MAX 64

/* ---- buildid.c ---------------------------------------------------------- */

/*
 * agent_build_id_read reads the NT_GNU_BUILD_ID note of the ELF file at
 * path (ELF32 or ELF64, either byte order) through its PT_NOTE program
 * headers (fdo_elf_build_id_path, common/elfnote.h); every offset and size
 * is checked against the file size. out receives up to FDO_BUILD_ID_MAX
 * bytes, *len their number. Returns FDO_OK, FDO_EIO (cannot open, not a
 * regular file), FDO_ENOT_ELF, FDO_ETRUNCATED, FDO_ENO_BUILD_ID,
 * FDO_EBAD_BUILD_ID, FDO_ENOMEM. Blocks on file I/O; any thread.
 */
int agent_build_id_read(const char *path, uint8_t out[FDO_BUILD_ID_MAX],
			size_t *len);

/* ---- host.c ------------------------------------------------------------- */

/* The --select selectors of host-wide mode; read-only once created. */
struct agent_select;

/*
 * agent_select_create parses --select values: exe=NAME[,NAME...],
 * cgroup=PATH, build-id=HEX[,HEX...]. A process is selected when any one
 * selector accepts it; no selectors select every process. Returns FDO_OK,
 * FDO_EINVAL (with a message in err) or FDO_ENOMEM. Main thread.
 */
int agent_select_create(const struct fdo_strlist *specs,
			struct agent_select **out, char *err, size_t errlen);
void agent_select_destroy(struct agent_select *s);
/*
 * agent_select_match says whether s (NULL: no selectors) accepts pid, and
 * writes the binary name of pid's batches (its executable's basename,
 * else comm) into name. comm: the process's comm from its last COMM
 * record, or NULL (then /proc/PID/comm is read). Reads /proc; blocks on
 * file I/O. Reader thread.
 */
int agent_select_match(const struct agent_select *s, pid_t pid,
		       const char *comm, char *name, size_t namelen);
/* agent_binary_name writes path's basename with every byte fdod refuses
 * in a binary name ([A-Za-z0-9_.+-], no leading '.') replaced by '_'. */
void agent_binary_name(const char *path, char *out, size_t outlen);
/* agent_proc_list: the numeric entries of dir ("/proc", "/proc/PID/task"),
 * at most max; 0 when dir cannot be read. */
size_t agent_proc_list(const char *dir, pid_t *out, size_t max);
/*
 * agent_host_lock takes the one-host-wide-agent lock: flock on path
 * (created, with its parent directory, when missing), holding our pid as
 * text. *fd receives the descriptor, to keep open while the agent runs.
 * Returns FDO_OK; FDO_EBUSY when another agent holds it (the message
 * printed names its pid); FDO_EIO. Main thread.
 */
int agent_host_lock(const char *path, int *fd);

/* ---- profile.c ---------------------------------------------------------- */

/* The aggregated samples, the processes and their mappings. One owner
 * thread (the reader): no locking inside. */
struct agent_profile;

struct agent_batch_meta {
	const char *auth_token; /* "" for none */
	const char *agent_id;
	const char *host;
	/* NULL (host-wide mode): each process's batches carry its binary
	 * name, with agent id "AGENT_ID/NAME" and a seq stream of their own
	 * per name (next_seq unused) */
	const char *binary;
	const char *event;
	char **label_keys, **label_values;
	size_t nlabels;
	double weight;
	uint64_t *next_seq; /* incremented for every batch built */
};

int agent_profile_create(struct agent_profile **out);
void agent_profile_destroy(struct agent_profile *p);

/*
 * agent_profile_select turns on host-wide mode: only samples of processes
 * sel accepts (NULL: every process but the agent itself) are counted,
 * decided at a process's first sample after it starts or execs, and build-
 * ids are read only for their mappings. sel must outlive p. Main thread,
 * before any record.
 */
void agent_profile_select(struct agent_profile *p,
			  const struct agent_select *sel);

/* agent_profile_load_maps reads /proc/PID/maps (executable file mappings)
 * into pid's mapping list, replacing what was there. */
void agent_profile_load_maps(struct agent_profile *p, pid_t pid);

/* One PERF_RECORD_MMAP2 of an executable mapping. */
struct agent_mmap {
	uint64_t start, len, pgoff;
	uint64_t dev, ino;	 /* of the file; 0 when build_id is given */
	const char *path;	 /* "//anon", "[vdso]"...: no file */
	const uint8_t *build_id; /* the kernel's (attr.build_id), or NULL */
	size_t build_id_len;
	uint64_t t; /* perf clock: orders records of all rings */
};
void agent_profile_mmap(struct agent_profile *p, pid_t pid,
			const struct agent_mmap *m);
/* PERF_RECORD_FORK: the child starts with the parent's mappings (those
 * not replaced by a newer mapping of the child). */
void agent_profile_fork(struct agent_profile *p, pid_t pid, pid_t ppid,
			uint64_t t);
/* PERF_RECORD_COMM of a process (pid == tid): its new comm; with exec, its
 * mappings older than t are gone and the selectors decide afresh. */
void agent_profile_comm(struct agent_profile *p, pid_t pid, const char *comm,
			int exec, uint64_t t);
/* PERF_RECORD_EXIT of a process at perf time t: forgotten after its
 * samples are sent; its older records read after it do not bring it back,
 * newer ones (the pid reused) start a new process. */
void agent_profile_exit(struct agent_profile *p, pid_t pid, uint64_t t);
/* agent_profile_wants: whether samples of pid are counted (host-wide mode
 * asks before looking at the stack); refusals are counted. */
int agent_profile_wants(struct agent_profile *p, pid_t pid);

/* agent_profile_add counts one sample: user addresses, leaf first (kernel
 * frames already removed), and the kernel's period for it. */
void agent_profile_add(struct agent_profile *p, pid_t pid,
		       const uint64_t *addrs, size_t n, uint64_t period);
/* agent_profile_add_branch counts one LBR entry of pid. */
void agent_profile_add_branch(struct agent_profile *p, pid_t pid, uint64_t from,
			      uint64_t to, int mispred);

/*
 * agent_profile_flush turns what was counted since the last flush into
 * SampleBatches, one per sampled process (split when a batch would pass
 * the wire limits), calls emit(batch, samples, arg) for each (emit takes
 * ownership: free with wire_batch_free), and empties the counts; mappings
 * are kept. time_start/time_end: the window, unix seconds.
 * Returns the number of samples flushed.
 */
uint64_t agent_profile_flush(
	struct agent_profile *p, const struct agent_batch_meta *meta,
	uint64_t time_start, uint64_t time_end,
	void (*emit)(Fdod__SampleBatch *, uint64_t, void *), void *arg);

/* agent_profile_heartbeat: a batch with no stacks at unix time t, for the
 * server's advice: a new agent's hello, a paused agent's heartbeat. Of
 * meta->binary, or (host-wide: meta->binary NULL) of binary, in its
 * stream. NULL when out of memory. */
Fdod__SampleBatch *agent_profile_heartbeat(struct agent_profile *p,
					   const struct agent_batch_meta *meta,
					   const char *binary, uint64_t t);
/* agent_profile_thin: host-wide mode keeps keep(arg, binary) of each
 * binary's samples (0 to 1; 0: a pause), each kept one standing for
 * 1/keep (its period scaled); asked again after every call of
 * agent_profile_thin. Reader thread. */
void agent_profile_thin(struct agent_profile *p,
			double (*keep)(void *arg, const char *binary),
			void *arg);
/* Samples agent_profile_thin left out. */
uint64_t agent_profile_thinned(const struct agent_profile *p);

/* agent_profile_unmapped: samples the flushes left out because none of
 * their frames lay in a known mapping with a build-id (fdod could not have
 * stored them). */
uint64_t agent_profile_unmapped(const struct agent_profile *p);
/* agent_profile_unselected: samples of processes the selectors refused. */
uint64_t agent_profile_unselected(const struct agent_profile *p);

/*
 * What the profile holds now, for the summary line and the tests that
 * check it stays bounded under process churn: an exited process is freed
 * two flushes after its EXIT record, a binary not sampled for 60 flushes
 * is forgotten, the build-id cache holds at most 4096 files and the
 * stack table shrinks back after a busy interval (agent/profile.c).
 */
struct agent_profile_counts {
	size_t procs;	    /* processes known (running, or awaiting a flush) */
	size_t maps;	    /* their mappings */
	size_t bids;	    /* build-id cache entries */
	size_t streams;	    /* host-wide: binaries' seq streams */
	size_t buckets;	    /* slots of the stack table */
	uint64_t forgotten; /* host-wide: idle binaries forgotten, in all */
};
void agent_profile_counts(const struct agent_profile *p,
			  struct agent_profile_counts *c);
/* agent_profile_on_forget: host-wide mode calls fn(arg, binary) when it
 * forgets an idle binary's stream (agent_controls_forget). Reader thread
 * (the main thread before it starts). */
void agent_profile_on_forget(struct agent_profile *p,
			     void (*fn)(void *arg, const char *binary),
			     void *arg);

/* ---- perf.c ------------------------------------------------------------- */

struct agent_perf;

struct agent_perf_cfg {
	uint64_t freq;	     /* samples per second (frequency mode) */
	int cycles;	     /* try the hardware cycles event */
	int branch_stack;    /* try PERF_SAMPLE_BRANCH_STACK */
	int enable_on_exec;  /* for a child stopped before exec */
	int kernel_build_id; /* --all: ask for build-ids in MMAP2 */
};

/*
 * agent_perf_open opens one event per (task, CPU) with inherit=1 (the
 * kernel refuses mmap of inherited per-task events, hence per CPU), one
 * ring buffer per CPU. When the cycles event or branch stacks are refused
 * it prints one line and falls back to cpu-clock without branch stacks.
 * *event receives the name of the event in use ("cpu-clock", "cycles").
 * Returns FDO_OK; FDO_EDENIED (no permission: a message naming
 * CAP_PERFMON and perf_event_paranoid is printed); FDO_ENOT_FOUND (the
 * tasks are gone); FDO_EIO. Main thread, before the reader starts.
 */
int agent_perf_open(const struct agent_perf_cfg *cfg, const pid_t *tids,
		    size_t ntids, struct agent_perf **out, const char **event);
/*
 * agent_perf_open_all opens one event per online CPU for every task of the
 * host (pid = -1; host-wide mode), with FORK/COMM/EXIT/MMAP2 records,
 * disabled until agent_perf_enable. Falls back as agent_perf_open does.
 * Returns FDO_OK, FDO_EDENIED (message printed: CAP_PERFMON,
 * perf_event_paranoid), FDO_EIO. Main thread, before the reader starts.
 */
int agent_perf_open_all(const struct agent_perf_cfg *cfg,
			struct agent_perf **out, const char **event);
/* agent_perf_enable starts counting (for --pid; a child uses enable_on_exec). */
void agent_perf_enable(struct agent_perf *pf);
/*
 * agent_perf_read waits up to timeout_ms for data, then drains every ring
 * into prof. Reader thread only. Returns the number of samples read.
 */
uint64_t agent_perf_read(struct agent_perf *pf, int timeout_ms,
			 struct agent_profile *prof);
/* agent_perf_set_freq samples at freq Hz from now on; 0 disables the
 * events (a pause), and a non-zero freq after a pause enables them again.
 * Reader thread (or the main thread before it starts). */
void agent_perf_set_freq(struct agent_perf *pf, uint64_t freq, int paused);
/* agent_perf_lost: records the kernel reported lost (ring full). */
uint64_t agent_perf_lost(const struct agent_perf *pf);
void agent_perf_close(struct agent_perf *pf);

/* ---- control.c ---------------------------------------------------------- */

/* What the server advised (Ack.sampling), within the agent's own bounds. */
struct agent_control {
	pthread_mutex_t mu;
	char who[96];	       /* prefix of log lines */
	int quiet;	       /* no log lines (a simulation) */
	uint32_t own_freq;     /* --freq: the upper bound */
	uint32_t freq;	       /* the rate in use while sampling */
	int paused;	       /* sample nothing until an Ack says so */
	uint64_t heartbeat_at; /* paused: send an empty batch then (unix s) */
	uint32_t interval_s;   /* how long an advice holds */
	uint32_t cpu_permille; /* the server's CPU budget advice (0 none) */
	char mode[16];	       /* "own" before any advice */
	int changed;	       /* since the last poll */
	uint64_t acks;	       /* Acks applied, with advice or without */
};

void agent_control_init(struct agent_control *c, const char *who,
			uint32_t own_freq);
void agent_control_fini(struct agent_control *c);
/* agent_control_apply takes an Ack's advice (NULL: none; nothing changes
 * but the count of Acks)
 * at unix time now, and prints a line when the rate or the mode changed.
 * The spool's sender thread. */
void agent_control_apply(struct agent_control *c, const Fdod__SamplingAdvice *a,
			 uint64_t now);
/* agent_control_poll: the rate to sample at now (*freq; 0 = paused);
 * *heartbeat = 1 when a paused agent should send an empty batch now.
 * Returns 1 when the rate or pause changed since the last poll. */
int agent_control_poll(struct agent_control *c, uint64_t now, uint32_t *freq,
		       int *heartbeat);
/* agent_control_cpu: the server's CPU budget advice (thousandths of a
 * CPU; 0 none). */
uint32_t agent_control_cpu(struct agent_control *c);
/* agent_control_acks: Acks seen so far, with advice or not. An agent
 * starts with an empty batch and waits a little for its first Ack, so
 * that joining a fleet does not start at its full own rate. */
uint64_t agent_control_acks(struct agent_control *c);

/*
 * Host-wide mode: one control per binary (the Acks of a binary's batches
 * advise that binary). The events sample at the agent's own --freq, and
 * each binary keeps freq / own of its samples (agent_profile_thin). A
 * binary not sampled for 60 flushes loses its control
 * (agent_controls_forget); at most AGENT_CONTROLS_MAX binaries sampled
 * within that window have one (~300 bytes each), the others keep all of
 * their samples and take no advice.
 */
#define AGENT_CONTROLS_MAX 4096
struct agent_named_control {
	char name[AGENT_NAME_MAX];
	struct agent_control ctl;
	int hello; /* the reader has said hello for it (reader thread) */
};
struct agent_controls {
	pthread_mutex_t mu;
	uint32_t own_freq;
	uint32_t rate; /* the events' rate now (the CPU budget), 0: own */
	struct agent_named_control **c;
	size_t n, cap;
};
void agent_controls_init(struct agent_controls *cs, uint32_t own_freq);
void agent_controls_fini(struct agent_controls *cs);
/* The control of binary (len bytes), created on first use; NULL past
 * AGENT_CONTROLS_MAX binaries sampled at once or a name too long. Only
 * the reader thread forgets controls, so only the reader may use the
 * pointer returned after cs->mu is released. Reader thread. */
struct agent_control *agent_controls_get(struct agent_controls *cs,
					 const char *binary, size_t len);
/* agent_controls_forget drops binary's control, when its stream is
 * forgotten (agent_profile_on_forget: not sampled for 60 flushes); it
 * gets a new one, with a hello, if it is sampled again. Reader thread. */
void agent_controls_forget(struct agent_controls *cs, const char *binary);
/* agent_controls_ack applies ack to the control of the binary of the
 * encoded batch msg, if it still has one (the spool's sender). */
void agent_controls_ack(struct agent_controls *cs, const uint8_t *msg,
			size_t len, const Fdod__Ack *ack, uint64_t now);
/* What share of binary's samples to keep now (agent_profile_thin's keep;
 * arg: the agent_controls). */
double agent_controls_keep(void *arg, const char *binary);
/* The events' rate now (below --freq when over the CPU budget). */
void agent_controls_set_rate(struct agent_controls *cs, uint32_t rate);
/* The least CPU budget any binary's advice gives (thousandths of a CPU),
 * 0 for none. */
uint32_t agent_controls_cpu(struct agent_controls *cs);

/* ---- spool.c ------------------------------------------------------------ */

struct agent_spool;

struct agent_spool_stats {
	uint64_t batches_sent, samples_sent;
	uint64_t batches_dropped, samples_dropped; /* spool full or refused */
	uint64_t batches_unsent, samples_unsent;   /* left at exit */
	uint64_t samples_accepted;    /* what the Acks said fdod stored */
	uint64_t redirects;	      /* streams an Ack moved to another node */
	uint64_t batches_failed_over; /* moved off a lost node (--failover) */
};

/* The longest node list (--url A,B,...) and node URL the agent takes. */
#define AGENT_NODES_MAX	   64
#define AGENT_NODE_URL_MAX 256

/*
 * agent_nodes_parse splits list (one nng URL, or several separated by
 * commas, blanks around them ignored) into urls[0..*n). Refuses with a
 * message in err (FDO_EINVAL): an empty element, a URL without "://" or
 * of AGENT_NODE_URL_MAX bytes or more, one listed twice, more than
 * AGENT_NODES_MAX. urls has room for AGENT_NODES_MAX.
 */
int agent_nodes_parse(const char *list, char (*urls)[AGENT_NODE_URL_MAX],
		      size_t *n, char *err, size_t errlen);
/*
 * agent_node_score: the rendezvous (highest random weight) hash of a
 * stream (agent id) on a node URL; agent_node_pick: the index of the
 * urls[0..n) the stream goes to, the highest score among those skip
 * (NULL: none) does not mark, -1 when all are skipped. Removing a node
 * moves only its own streams; adding one takes only the streams it now
 * tops. The function is fixed (docs/ingest.md#many-nodes): a change would
 * move every stream.
 */
uint64_t agent_node_score(const char *stream, const char *url);
int agent_node_pick(const char *stream, const char *const *urls, size_t n,
		    const unsigned char *skip);

/*
 * agent_spool_start creates the spool (at most cap batches over all nodes)
 * and one sender thread per node of url (one nng URL or a comma-separated
 * list, agent_nodes_parse), which sends its node's batches over nng REQ
 * with timeout_ms per attempt and backs off up to retry_max_ms between
 * failed attempts (0: 30 s). Each batch goes to its stream's node
 * (agent_node_pick, or where an Ack redirected the stream) and stays
 * there until delivered. Returns FDO_OK, FDO_ENOMEM or FDO_ETRANSPORT
 * (bad URL or list, with a message).
 */
int agent_spool_start(const char *url, size_t cap, int timeout_ms,
		      uint64_t retry_max_ms, struct agent_spool **out);
/*
 * agent_backoff: how long to wait after a failed attempt, drawn between
 * half of *cur_ms and all of it (xorshift state *rng), or retry_after_ms
 * when that is longer, never more than max_ms; *cur_ms then doubles, up to
 * max_ms. The spool's sender; a function of its own for its unit test.
 */
uint64_t agent_backoff(uint64_t *cur_ms, uint64_t max_ms,
		       uint64_t retry_after_ms, uint64_t *rng);
/* agent_spool_put queues an encoded batch (takes msg, free()d later).
 * When full the oldest batch is dropped and counted. Never blocks long;
 * any thread. */
void agent_spool_put(struct agent_spool *s, uint64_t seq, uint8_t *msg,
		     size_t len, uint64_t samples);
/* agent_spool_put_stream: the same for the batch of stream (its agent id;
 * NULL: ""), which picks its node. */
void agent_spool_put_stream(struct agent_spool *s, const char *stream,
			    uint64_t seq, uint8_t *msg, size_t len,
			    uint64_t samples);
/* agent_spool_failover: a node unreachable for ms (0: never, the default)
 * hands its batches to the next node of each stream's hash order and gets
 * no new ones for ms; at-least-once for the batch it was trying. */
void agent_spool_failover(struct agent_spool *s, uint64_t ms);
/* agent_spool_limit_bytes bounds the encoded bytes held too (0: count
 * only); the oldest batches behind the one in flight go first. */
void agent_spool_limit_bytes(struct agent_spool *s, uint64_t bytes);
/* agent_spool_control makes the sender apply every Ack's sampling advice
 * to c (NULL: ignore advice). Before the first put. */
void agent_spool_control(struct agent_spool *s, struct agent_control *c);
/* agent_spool_controls: the same for host-wide mode, by each acknowledged
 * batch's binary. */
void agent_spool_controls(struct agent_spool *s, struct agent_controls *cs);
/* agent_spool_snapshot: the counts so far and what the spool holds now
 * (batches, encoded bytes); any thread. */
void agent_spool_snapshot(struct agent_spool *s, struct agent_spool_stats *st,
			  size_t *batches, uint64_t *bytes);

/* agent_spool_stop gives the sender until drain_ms to empty the spool,
 * stops it, fills *st and frees everything. Main thread. */
void agent_spool_stop(struct agent_spool *s, int drain_ms,
		      struct agent_spool_stats *st);

#endif
