/*
 * Tests for agent/control.c's per-binary controls of host-wide mode: a
 * control is made at a binary's first sample and forgotten with its
 * stream (agent_controls_forget, when the binary was not sampled for 60
 * flushes), so binaries with unique names that come and go leave nothing
 * behind, and a binary seen after AGENT_CONTROLS_MAX others still gets a
 * control once they are forgotten. An Ack for a forgotten binary makes no
 * control.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/common.h"
#include "tests/unit/test.h"

/* The encoded empty batch of binary, as the spool holds it. */
static uint8_t *batch_of(const char *binary, size_t *len)
{
	Fdod__SampleBatch b;
	fdod__sample_batch__init(&b);
	b.schema_version = WIRE_SCHEMA_VERSION;
	b.agent_id = "h/a";
	b.host = "h";
	b.binary = (char *)binary;
	b.event = "cpu-clock";
	b.seq = 1;
	b.period = 1;
	b.weight = 1;
	b.time_start = 1;
	b.time_end = 2;
	uint8_t *msg = NULL;
	if (wire_batch_encode(&b, NULL, &msg, len))
		return NULL;
	return msg;
}

static void ack_paused(struct agent_controls *cs, const char *binary)
{
	size_t len;
	uint8_t *msg = batch_of(binary, &len);
	if (!msg)
		return;
	Fdod__SamplingAdvice a;
	fdod__sampling_advice__init(&a);
	a.mode = "paused";
	a.paused_until = 2000;
	a.interval_s = 60;
	Fdod__Ack ack;
	fdod__ack__init(&ack);
	ack.sampling = &a;
	agent_controls_ack(cs, msg, len, &ack, 1000);
	free(msg);
}

TEST(controls_of_forgotten_binaries_go)
{
	struct agent_controls cs;
	agent_controls_init(&cs, 1000);
	char name[64];
	/* one binary more than the cap: the last gets none */
	for (int i = 0; i <= AGENT_CONTROLS_MAX; i++) {
		snprintf(name, sizeof name, "unique_%d", i);
		struct agent_control *c =
			agent_controls_get(&cs, name, strlen(name));
		CHECK(i < AGENT_CONTROLS_MAX ? c != NULL : c == NULL);
		(void)c;
	}
	CHECK_EQ_INT((int)cs.n, AGENT_CONTROLS_MAX);
	/* the server pauses unique_1: its control says so */
	ack_paused(&cs, "unique_1");
	CHECK(agent_controls_keep(&cs, "unique_1") == 0);
	CHECK(agent_controls_keep(&cs, "unique_2") == 1);
	for (int i = 0; i < AGENT_CONTROLS_MAX; i++) {
		snprintf(name, sizeof name, "unique_%d", i);
		agent_controls_forget(&cs, name);
	}
	CHECK_EQ_INT((int)cs.n, 0);
	agent_controls_forget(&cs, "never_seen"); /* nothing to do */
	/* an Ack for a forgotten binary makes no control */
	ack_paused(&cs, "unique_1");
	CHECK_EQ_INT((int)cs.n, 0);
	/* a binary seen again starts over: its own rate until advised */
	CHECK(agent_controls_keep(&cs, "unique_1") == 1);
	snprintf(name, sizeof name, "unique_%d", AGENT_CONTROLS_MAX);
	CHECK(agent_controls_get(&cs, name, strlen(name)) != NULL);
	CHECK_EQ_INT((int)cs.n, 2);
	agent_controls_fini(&cs);
}
