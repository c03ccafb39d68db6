/*
 * fuzz/fuzz_policy.c — the sampling policy file (server/sampling.c,
 * --sampling-policy), read at start and on every SIGHUP.
 *
 * Properties checked beyond "no crash, no leak, no UB": a policy the
 * parser accepts has rules sorted by binary with no name twice, each with
 * min_freq <= max_freq and a window when it has a sample target, and
 * finding each rule's binary gives that rule; a refused one says why with
 * its line and leaves nothing behind.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "server/sampling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_sampling_policy p;
	char err[300];
	int rc = srv_sampling_policy_parse((const char *)data, size, &p, err,
					   sizeof err);
	if (rc) {
		FUZZ_CHECK(p.n == 0 && p.rules == NULL);
		FUZZ_CHECK(rc == FDO_ENOMEM || !strncmp(err, "line ", 5));
		return 0;
	}
	for (size_t i = 0; i < p.n; i++) {
		const struct srv_sampling_rule *r = &p.rules[i];
		FUZZ_CHECK(r->min_freq >= 1 && r->min_freq <= r->max_freq);
		FUZZ_CHECK(!r->samples || r->window > 0);
		FUZZ_CHECK(i == 0 ||
			   strcmp(p.rules[i - 1].binary, r->binary) < 0);
		FUZZ_CHECK(srv_sampling_policy_find(&p, r->binary) == r);
	}
	srv_sampling_policy_fini(&p);
	return 0;
}
