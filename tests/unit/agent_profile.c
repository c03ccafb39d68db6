/*
 * Tests for agent/profile.c's flush: a stack none of whose frames lies in
 * a known mapping (a sample between a fork or exec and the new image's
 * mapping records) is left out of the batches and counted as unmapped,
 * since fdod could store nothing of it; a stack with one mapped frame is
 * sent, with its mapping. The process's own mappings come from
 * /proc/self/maps, as for a process whose records the agent missed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/common.h"
#include "tests/unit/test.h"

struct got {
	uint64_t samples, stacks, mappings;
};

static void emit(Fdod__SampleBatch *b, uint64_t samples, void *arg)
{
	struct got *g = arg;
	g->samples += samples;
	g->stacks += b->n_stacks;
	g->mappings += b->n_mappings;
	wire_batch_free(b);
}

static uint64_t here(void)
{
	return (uint64_t)(uintptr_t)&here;
}

TEST(stacks_without_a_mapped_frame_are_counted_not_sent)
{
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	uint64_t seq = 1;
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "a",
				     .host = "h",
				     .binary = "agent_profile",
				     .event = "cpu-clock",
				     .weight = 1,
				     .next_seq = &seq};
	pid_t pid = getpid();
	/* Page 0 and the top of user space: no file is mapped there. */
	uint64_t nowhere[2] = {0x10, 0x7ffffffff000ull};
	uint64_t mixed[2] = {0x10, here()};
	agent_profile_add(p, pid, nowhere, 2, 1000);
	agent_profile_add(p, pid, nowhere, 2, 1000);
	agent_profile_add(p, pid, mixed, 2, 1000);

	struct got g = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 1, 2, emit, &g), 1);
	CHECK_EQ_INT((int)g.samples, 1);
	CHECK_EQ_INT((int)g.stacks, 1);
	CHECK_EQ_INT((int)g.mappings, 1); /* this test's executable */
	CHECK_EQ_INT((int)agent_profile_unmapped(p), 2);
	CHECK_EQ_INT((int)seq, 2); /* one batch */

	/* Only unmapped stacks: no batch at all, and no seq spent. */
	agent_profile_add(p, pid, nowhere, 1, 1000);
	struct got g2 = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 2, 3, emit, &g2), 0);
	CHECK_EQ_INT((int)g2.stacks, 0);
	CHECK_EQ_INT((int)agent_profile_unmapped(p), 3);
	CHECK_EQ_INT((int)seq, 2);
	agent_profile_destroy(p);
}

/* A child of this process (the same executable at the same addresses),
 * waiting until child_stop. Returns its pid, or -1. */
static pid_t child_start(int *go_fd)
{
	int go[2];
	if (pipe(go))
		return -1;
	pid_t child = fork();
	if (child < 0) {
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (child == 0) {
		char c;
		close(go[1]);
		_exit(read(go[0], &c, 1) < 0);
	}
	close(go[0]);
	*go_fd = go[1];
	return child;
}

static void child_stop(pid_t child, int go_fd)
{
	close(go_fd);
	waitpid(child, NULL, 0);
}

struct named {
	uint64_t samples, batches;
	char binary[64], agent_id[128];
	uint64_t seq;
};

static void emit_named(Fdod__SampleBatch *b, uint64_t samples, void *arg)
{
	struct named *g = arg;
	g->samples += samples;
	g->batches++;
	snprintf(g->binary, sizeof g->binary, "%s", b->binary);
	snprintf(g->agent_id, sizeof g->agent_id, "%s", b->agent_id);
	g->seq = b->seq;
	wire_batch_free(b);
}

TEST(host_wide_names_batches_per_binary_and_forgets_exited)
{
	/* A child of this process: the same executable at the same
	 * addresses, and not the agent itself (which host-wide mode never
	 * samples). */
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	/* its binary name (under valgrind, not this file's name) */
	char link[64], exe[4096], want_id[4200];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)child);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	REQUIRE(n > 0);
	exe[n] = 0;
	const char *want = strrchr(exe, '/') + 1;
	snprintf(want_id, sizeof want_id, "h/a/%s", want);
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	uint64_t unused = 1;
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "h/a",
				     .host = "h",
				     .binary = NULL,
				     .event = "cpu-clock",
				     .weight = 1,
				     .next_seq = &unused};
	uint64_t stack[1] = {here()};
	CHECK_EQ_INT(agent_profile_wants(p, getpid()), 0);
	CHECK_EQ_INT((int)agent_profile_unselected(p), 1);
	CHECK_EQ_INT(agent_profile_wants(p, child), 1);
	agent_profile_add(p, child, stack, 1, 1000);
	agent_profile_add(p, child, stack, 1, 1000);

	struct named g = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 1, 2, emit_named, &g), 2);
	CHECK_EQ_INT((int)g.batches, 1);
	CHECK_EQ_STR(g.binary, want);
	CHECK_EQ_STR(g.agent_id, want_id);
	CHECK_EQ_INT((int)unused, 1); /* the binary's own seq stream */
	uint64_t first_seq = g.seq;

	/* Exits with samples not yet flushed: they still go out, under
	 * the same stream, the next seq. */
	agent_profile_add(p, child, stack, 1, 1000);
	agent_profile_exit(p, child, 1);
	child_stop(child, go);
	struct named g2 = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 2, 3, emit_named, &g2), 1);
	CHECK_EQ_STR(g2.agent_id, want_id);
	CHECK(g2.seq == first_seq + 1);
	/* One flush later the process is forgotten: a late sample finds no
	 * mapping (its /proc entry is gone) and sends nothing. */
	struct named g3 = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 3, 4, emit_named, &g3), 0);
	agent_profile_add(p, child, stack, 1, 1000);
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 4, 5, emit_named, &g3), 0);
	CHECK_EQ_INT((int)g3.batches, 0);
	agent_profile_destroy(p);
}

TEST(exec_read_before_fork_keeps_nothing_of_the_parent)
{
	/* Host-wide mode reads the rings one after the other, so a child's
	 * exec (on one CPU) may be handled before its fork (on another).
	 * The parent here is this process, which host-wide mode refuses
	 * (it is the agent); the child must neither inherit that refusal
	 * nor the parent's mappings. */
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	agent_profile_load_maps(p, getpid());
	CHECK_EQ_INT(agent_profile_wants(p, getpid()), 0);
	agent_profile_comm(p, child, "newimage", 1, 200);
	agent_profile_fork(p, child, getpid(), 100);
	CHECK_EQ_INT(agent_profile_wants(p, child), 1);
	uint64_t stack[1] = {here()}, seq = 1;
	agent_profile_add(p, child, stack, 1, 1000);
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "h/a",
				     .host = "h",
				     .event = "cpu-clock",
				     .weight = 1,
				     .next_seq = &seq};
	struct named g = {0};
	/* no mapping of the new image was recorded: nothing to send */
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 1, 2, emit_named, &g), 0);
	CHECK_EQ_INT((int)agent_profile_unmapped(p), 1);
	child_stop(child, go);
	agent_profile_destroy(p);
}

TEST(samples_read_before_their_exec_record_go_out_named)
{
	/* Host-wide mode reads the rings one CPU after the other: samples
	 * of a new image may be counted before the exec record that clears
	 * the process's name is read. They go out under the new image's
	 * name, not in a batch without a binary (refused; bench/agent saw
	 * "binary is missing" under process churn). */
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	char link[64], exe[4096];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)child);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	REQUIRE(n > 0);
	exe[n] = 0;
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	uint64_t seq = 1, stack[1] = {here()};
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "h/a",
				     .host = "h",
				     .event = "cpu-clock",
				     .weight = 1,
				     .next_seq = &seq};
	CHECK_EQ_INT(agent_profile_wants(p, child), 1);
	agent_profile_add(p, child, stack, 1, 1000);
	agent_profile_add(p, child, stack, 1, 1000);
	agent_profile_comm(p, child, "newimage", 1, 500);
	agent_profile_load_maps(p, child); /* the new image's mappings */
	struct named g = {0};
	CHECK_EQ_INT((int)agent_profile_flush(p, &m, 1, 2, emit_named, &g), 2);
	CHECK_EQ_INT((int)g.batches, 1);
	CHECK_EQ_STR(g.binary, strrchr(exe, '/') + 1);
	child_stop(child, go);
	agent_profile_destroy(p);
}

/* pids no process has (above pid_max's ceiling, 4194304): the sweep for
 * lost EXIT records finds them gone too */
#define FAKE_PID(i) ((pid_t)(5000000 + (i)))
#define CHURN	    2000

static struct agent_profile_counts counts_of(struct agent_profile *p)
{
	struct agent_profile_counts c;
	agent_profile_counts(p, &c);
	return c;
}

TEST(exits_read_before_forks_leave_no_process_behind)
{
	/* Host-wide mode drains the rings one CPU after the other, so a
	 * short-lived child's COMM, MMAP2 and EXIT (on one CPU) are often
	 * read before its FORK (on its parent's CPU). Each churned process
	 * must be forgotten two flushes after its EXIT, whatever the order
	 * of its records; before, a FORK read after the EXIT started the
	 * child over as a live process with a copy of its parent's
	 * mappings, which only the sweep for lost EXITs (every 30 flushes)
	 * ended: under churn hundreds of them, megabytes. */
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	agent_profile_load_maps(p, getpid()); /* the parent, with mappings */
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "h/a",
				     .host = "h",
				     .event = "cpu-clock",
				     .weight = 1};
	struct named g = {0};
	agent_profile_flush(p, &m, 1, 2, emit_named, &g);
	struct agent_profile_counts base = counts_of(p);
	CHECK_EQ_INT((int)base.procs, 1);
	CHECK(base.maps > 0);
	struct agent_mmap mm = {.start = 0x400000,
				.len = 0x1000,
				.path = "/nonexistent/churned",
				.dev = 1,
				.ino = 1};
	for (int i = 0; i < CHURN; i++) {
		pid_t child = FAKE_PID(i);
		uint64_t t = 1000 + (uint64_t)i * 10;
		switch (i % 3) {
		case 0: /* exec, mmap, exit, then the fork */
			agent_profile_comm(p, child, "churned", 1, t + 2);
			mm.t = t + 3;
			agent_profile_mmap(p, child, &mm);
			agent_profile_exit(p, child, t + 5);
			agent_profile_fork(p, child, getpid(), t + 1);
			break;
		case 1: /* the exit first of all */
			agent_profile_exit(p, child, t + 5);
			agent_profile_fork(p, child, getpid(), t + 1);
			agent_profile_comm(p, child, "churned", 1, t + 2);
			mm.t = t + 3;
			agent_profile_mmap(p, child, &mm);
			break;
		default: /* in order */
			agent_profile_fork(p, child, getpid(), t + 1);
			agent_profile_comm(p, child, "churned", 1, t + 2);
			mm.t = t + 3;
			agent_profile_mmap(p, child, &mm);
			agent_profile_exit(p, child, t + 5);
		}
	}
	CHECK(counts_of(p).procs >= CHURN); /* kept for their samples */
	agent_profile_flush(p, &m, 2, 3, emit_named, &g);
	agent_profile_flush(p, &m, 3, 4, emit_named, &g);
	struct agent_profile_counts after = counts_of(p);
	CHECK_EQ_INT((int)after.procs, (int)base.procs);
	CHECK_EQ_INT((int)after.maps, (int)base.maps);

	/* A pid reused after its EXIT: a newer FORK starts a new process,
	 * which stays while it runs; an older record does not. */
	pid_t reused = FAKE_PID(0);
	agent_profile_exit(p, reused, 50);
	agent_profile_fork(p, reused, getpid(), 60);
	agent_profile_comm(p, reused, "again", 1, 40); /* older: ignored */
	agent_profile_flush(p, &m, 4, 5, emit_named, &g);
	agent_profile_flush(p, &m, 5, 6, emit_named, &g);
	CHECK_EQ_INT((int)counts_of(p).procs, (int)base.procs + 1);
	agent_profile_exit(p, reused, 70);
	agent_profile_flush(p, &m, 6, 7, emit_named, &g);
	agent_profile_flush(p, &m, 7, 8, emit_named, &g);
	CHECK_EQ_INT((int)counts_of(p).procs, (int)base.procs);
	agent_profile_destroy(p);
}

struct forgot {
	int n;
	char last[64];
};

static void on_forget(void *arg, const char *binary)
{
	struct forgot *f = arg;
	f->n++;
	snprintf(f->last, sizeof f->last, "%s", binary);
}

TEST(idle_binaries_are_forgotten_sampled_ones_kept)
{
	/* Binaries with unique names (a build's test programs) come and go:
	 * a binary none of whose processes was sampled for 60 flushes loses
	 * its stream, and its control through the callback; one sampled,
	 * even with every sample thinned (paused), stays. */
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	struct forgot f = {0};
	agent_profile_on_forget(p, on_forget, &f);
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "h/a",
				     .host = "h",
				     .event = "cpu-clock",
				     .weight = 1};
	/* a hello each: the stream of a binary sampled once */
	char name[64];
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof name, "unique_%d", i);
		Fdod__SampleBatch *b = agent_profile_heartbeat(p, &m, name, 1);
		REQUIRE(b);
		wire_batch_free(b);
	}
	CHECK_EQ_INT((int)counts_of(p).streams, 500);
	uint64_t stack[1] = {here()};
	struct named g = {0};
	for (int i = 0; i < 61; i++) {
		CHECK_EQ_INT(agent_profile_wants(p, child), 1);
		agent_profile_add(p, child, stack, 1, 1000);
		agent_profile_flush(p, &m, 2, 3, emit_named, &g);
	}
	struct agent_profile_counts c = counts_of(p);
	CHECK_EQ_INT((int)c.streams, 1); /* the child's binary */
	CHECK_EQ_INT((int)c.forgotten, 500);
	CHECK_EQ_INT(f.n, 500);
	CHECK(!strncmp(f.last, "unique_", 7));
	CHECK_EQ_INT((int)g.batches, 61);
	child_stop(child, go);
	agent_profile_destroy(p);
}

TEST(stack_table_shrinks_back_after_a_busy_interval)
{
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	uint64_t seq = 1;
	struct agent_batch_meta m = {.auth_token = "",
				     .agent_id = "a",
				     .host = "h",
				     .binary = "b",
				     .event = "cpu-clock",
				     .weight = 1,
				     .next_seq = &seq};
	size_t base = counts_of(p).buckets;
	for (uint64_t i = 0; i < 40000; i++) {
		uint64_t st[2] = {here(), 0x1000 + i};
		agent_profile_add(p, child, st, 2, 1000);
	}
	CHECK(counts_of(p).buckets >= 40000);
	struct named g = {0};
	agent_profile_flush(p, &m, 1, 2, emit_named, &g);
	CHECK(counts_of(p).buckets >= 40000); /* as busy again, maybe */
	agent_profile_flush(p, &m, 2, 3, emit_named, &g);
	CHECK_EQ_INT((int)counts_of(p).buckets, (int)base);
	child_stop(child, go);
	agent_profile_destroy(p);
}

TEST(build_id_cache_stays_bounded)
{
	/* Every new file (a new device and inode) a selected process maps
	 * costs a cache entry; past 4096 the entries not asked for since
	 * the cache was last full go. The files here are one file (this
	 * test's executable, read through /proc/PID/root) under 4,500
	 * device numbers, each a file the cache has not seen. */
	int go = -1;
	pid_t child = child_start(&go);
	REQUIRE(child > 0);
	char link[64], exe[4096];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)child);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	REQUIRE(n > 0);
	exe[n] = 0;
	struct stat st;
	REQUIRE(stat(exe, &st) == 0);
	struct agent_profile *p = NULL;
	REQUIRE(agent_profile_create(&p) == FDO_OK);
	agent_profile_select(p, NULL);
	CHECK_EQ_INT(agent_profile_wants(p, child), 1);
	/* the child's own files come first */
	int base = (int)counts_of(p).bids;
	for (int i = 0; i < 4500; i++) {
		struct agent_mmap mm = {.start = 0x10000000ull +
						 (uint64_t)i * 0x1000,
					.len = 0x1000,
					.path = exe,
					.dev = 1000 + (uint64_t)i,
					.ino = st.st_ino,
					.t = 1};
		agent_profile_mmap(p, child, &mm);
		if (i == 4095 - base) /* full */
			CHECK_EQ_INT((int)counts_of(p).bids, 4096);
		else if (i % 100 == 0)
			CHECK(counts_of(p).bids <= 4096);
	}
	CHECK(counts_of(p).bids <= 4096);
	CHECK(counts_of(p).bids > 0);
	child_stop(child, go);
	agent_profile_destroy(p);
}
