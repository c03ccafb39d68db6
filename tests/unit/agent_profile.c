/*
 * Tests for agent/profile.c's flush: a stack none of whose frames lies in
 * a known mapping (a sample between a fork or exec and the new image's
 * mapping records) is left out of the batches and counted as unmapped,
 * since fdod could store nothing of it; a stack with one mapped frame is
 * sent, with its mapping. The process's own mappings come from
 * /proc/self/maps, as for a process whose records the agent missed.
 */
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
	struct agent_batch_meta m = {.auth_token = "", .agent_id = "a",
				     .host = "h", .binary = "agent_profile",
				     .event = "cpu-clock", .weight = 1,
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
