/* Tests for agent/spool.c's back-off (agent_backoff). */
#include "agent/agent.h"
#include "tests/unit/test.h"

TEST(backoff_doubles_to_its_bound_with_jitter_inside_each_step)
{
	uint64_t cur = 200, rng = 1;
	uint64_t lo = 200, hi = 0;
	for (int i = 0; i < 12; i++) {
		uint64_t step = cur;
		uint64_t w = agent_backoff(&cur, 30000, 0, &rng);
		CHECK(w >= step - step / 2 && w <= step);
		CHECK(cur == (step * 2 > 30000 ? 30000 : step * 2));
		if (w < lo)
			lo = w;
		if (w > hi)
			hi = w;
	}
	CHECK(cur == 30000);
	CHECK(hi <= 30000 && hi >= 15000);
	/* The draws spread: 1,000 waits at the bound are not all one value,
	 * and they fill the half-open range's both halves. */
	int low_half = 0, high_half = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t w = agent_backoff(&cur, 30000, 0, &rng);
		CHECK(w >= 15000 && w <= 30000);
		low_half += w < 22500;
		high_half += w >= 22500;
	}
	CHECK(low_half > 300 && high_half > 300);
}

TEST(a_servers_retry_after_is_waited_out_up_to_the_bound)
{
	uint64_t cur = 200, rng = 7;
	CHECK(agent_backoff(&cur, 30000, 5000, &rng) == 5000);
	CHECK(cur == 400);
	/* A server asking for an hour gets the agent's bound. */
	CHECK(agent_backoff(&cur, 30000, 3600000, &rng) == 30000);
	/* A short retry-after does not shorten the back-off. */
	cur = 8000;
	uint64_t w = agent_backoff(&cur, 30000, 10, &rng);
	CHECK(w >= 4000 && w <= 8000);
	/* Degenerate bounds stay sane. */
	cur = 0;
	CHECK(agent_backoff(&cur, 0, 0, &rng) <= 1);
	CHECK(cur == 1);
}
