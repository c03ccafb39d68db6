/*
 * fuzz/fuzz_policy.c — the sampling policy file (server/sampling.c,
 * --sampling-policy), read at start and on every SIGHUP.
 *
 * Properties checked beyond "no crash, no leak, no UB": a policy the
 * parser accepts has rules sorted by binary (then the most labels= pairs
 * first) with no (binary, labels=) twice, each with min_freq <= max_freq
 * and a window when it has a sample target; finding each binary gives
 * its rule without labels=, and a batch carrying exactly a rule's labels
 * gets a rule of that binary with at least as many pairs; a refused one
 * says why with its line and leaves nothing behind.
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
		FUZZ_CHECK(r->nlabels <= SRV_SAMPLING_LABELS_MAX);
		if (i) {
			const struct srv_sampling_rule *q = &p.rules[i - 1];
			int c = strcmp(q->binary, r->binary);
			FUZZ_CHECK(c < 0 ||
				   (c == 0 && q->nlabels >= r->nlabels &&
				    strcmp(q->labels, r->labels)));
		}
		if (!r->nlabels && strcmp(r->binary, "*"))
			FUZZ_CHECK(srv_sampling_policy_find(&p, r->binary) ==
				   r);
		/* The rule's own pairs as a batch's labels. */
		char text[SRV_SAMPLING_LABELS_TEXT_MAX + 1];
		Fdod__Label l[SRV_SAMPLING_LABELS_MAX],
			*lp[SRV_SAMPLING_LABELS_MAX];
		size_t n = 0;
		memcpy(text, r->labels, sizeof text);
		for (char *save = NULL, *w = strtok_r(text, ",", &save); w;
		     w = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(w, '=');
			FUZZ_CHECK(eq && eq != w && eq[1]);
			*eq = 0;
			FUZZ_CHECK(n < SRV_SAMPLING_LABELS_MAX);
			Fdod__Label init = FDOD__LABEL__INIT;
			l[n] = init;
			l[n].key = w;
			l[n].value = eq + 1;
			lp[n] = &l[n];
			n++;
		}
		FUZZ_CHECK(n == r->nlabels);
		const struct srv_sampling_rule *m =
			srv_sampling_policy_match(&p, r->binary, lp, n);
		FUZZ_CHECK(m && !strcmp(m->binary, r->binary) &&
			   m->nlabels >= r->nlabels);
	}
	srv_sampling_policy_fini(&p);
	return 0;
}
