/*
 * aggregator/ratelimit.c — token buckets for --rate-agent (batches per
 * second per agent) and --rate-binary (samples per second per binary).
 *
 * Workload: one or two takes per batch, from any submitter thread. Keys
 * (name hashes) go to a fixed table of RATE_SLOTS buckets; a collision
 * shares a bucket (stricter, never looser), and no memory grows with the
 * number of agents or binaries.
 *
 * Not thread-safe: the ingest lock (mu) guards the table (ingest.c).
 */
#include <stdlib.h>

#include "aggregator/ingest_int.h"
#include "common/common.h"

#define RATE_SLOTS 4096

struct rate_slot {
	uint64_t key;
	double tokens;
	uint64_t last_ns;
};

int ratelimit_init(struct ratelimit *r)
{
	r->slots = calloc(RATE_SLOTS, sizeof *r->slots);
	return r->slots ? FDO_OK : FDO_ENOMEM;
}

void ratelimit_fini(struct ratelimit *r)
{
	free(r->slots);
	r->slots = NULL;
}

uint32_t ratelimit_take(struct ratelimit *rl, uint64_t key, double rate,
			double cost, uint64_t now)
{
	struct rate_slot *r = &rl->slots[fdo_mix64(key) & (RATE_SLOTS - 1)];
	if (r->key != key) {
		r->key = key;
		r->tokens = rate;
		r->last_ns = now;
	}
	r->tokens += rate * (double)(now - r->last_ns) / 1e9;
	if (r->tokens > rate)
		r->tokens = rate;
	r->last_ns = now;
	if (r->tokens >= cost || (cost > rate && r->tokens >= rate)) {
		r->tokens -= cost;
		return 0;
	}
	double wait = (cost - r->tokens) / rate * 1000.0;
	return wait < 1 ? 1 : wait > 60000 ? 60000 : (uint32_t)wait;
}
