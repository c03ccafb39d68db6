/*
 * server/sampling.h — sampling control (issue 23): the policy file
 * (--sampling-policy), one controller per binary, and the advice each
 * agent's Ack carries (schemas/fdod.proto SamplingAdvice). Rules and
 * figures: docs/sampling.md.
 */
#ifndef FDO_SERVER_SAMPLING_H
#define FDO_SERVER_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/aggregator.h"
#include "common/buf.h"
#include "schemas/schemas.h"
#include "storage/storage.h"

enum srv_sampling_mode {
	SRV_SAMPLING_CONTINUOUS,
	SRV_SAMPLING_PAUSED,
	SRV_SAMPLING_TRIGGERED,
	SRV_SAMPLING_ON_DEMAND, /* an operator's window (admin API only) */
};

#define SRV_SAMPLING_LABELS_MAX	     8	 /* labels= pairs of one rule */
#define SRV_SAMPLING_LABELS_TEXT_MAX 256 /* labels= text, bytes */

/* One line of a policy file. */
struct srv_sampling_rule {
	char binary[257]; /* a binary name, or "*" for the others */
	/* labels=: "k=v,..." sorted by key ("" = any label set); the rule
	 * covers the batches that carry every pair. */
	char labels[SRV_SAMPLING_LABELS_TEXT_MAX + 1];
	unsigned nlabels;
	int mode;		  /* enum srv_sampling_mode (not on-demand) */
	uint64_t samples;	  /* desired accepted samples per window; 0 =
	                             none: sample at max_freq */
	uint64_t window;	  /* seconds */
	uint32_t max_freq;	  /* Hz; default 997 */
	uint32_t min_freq;	  /* Hz; default 1 */
	uint32_t trigger_freq;	  /* Hz, triggered mode; default max_freq */
	uint64_t trigger_samples; /* triggered mode: samples of a new
	                             build-id before it is ready; default
	                             1000 */
	uint32_t cpu_permille;	  /* agent CPU budget, thousandths of a CPU;
	                             0 = the agent's own */
	unsigned line;
};

#define SRV_SAMPLING_RULES_MAX 4096

struct srv_sampling_policy {
	/* sorted by binary ("*" first), then the most labels= pairs
	 * first, then by line */
	struct srv_sampling_rule *rules;
	size_t n;
};

/*
 * srv_sampling_policy_parse reads a policy file's text (len bytes; need not
 * be NUL-terminated): one rule per line, `BINARY key=value...`, '#' to the
 * end of a line a comment. Keys: samples=N/DURATION, mode=continuous|
 * paused|triggered, max_freq=HZ, min_freq=HZ, trigger_freq=HZ,
 * trigger_samples=N, agent_cpu=PERCENT% (of one CPU), labels=k=v,...
 * (a binary may have several rules with different labels=). FDO_OK, or
 * FDO_EINVAL with "line N: reason" in err (nothing in *out), FDO_ELIMIT
 * (over SRV_SAMPLING_RULES_MAX rules), FDO_ENOMEM. Pure; any thread.
 * Free with srv_sampling_policy_fini.
 */
int srv_sampling_policy_parse(const char *text, size_t len,
			      struct srv_sampling_policy *out, char *err,
			      size_t errlen);
void srv_sampling_policy_fini(struct srv_sampling_policy *p);
/*
 * srv_sampling_policy_match: the rule of a batch of binary carrying labels
 * (n pairs): among binary's own rules those whose labels= the batch
 * carries, the one with the most pairs (the earlier line on a tie); when
 * none, the same among the "*" rules; else NULL. srv_sampling_policy_find
 * is the match of a batch without labels.
 */
const struct srv_sampling_rule *
srv_sampling_policy_match(const struct srv_sampling_policy *p,
			  const char *binary, Fdod__Label *const *labels,
			  size_t n);
const struct srv_sampling_rule *
srv_sampling_policy_find(const struct srv_sampling_policy *p,
			 const char *binary);

typedef struct srv_sampling srv_sampling;

/*
 * srv_sampling_create reads the policy file at path (NULL or "": no policy,
 * no advice until an operator sets one) with control interval interval_s
 * (seconds, >= 1). st (may be NULL) tells which build-ids are new.
 * FDO_OK, or an error with the reason in err (the file cannot be read, or
 * srv_sampling_policy_parse's).
 */
int srv_sampling_create(const char *path, unsigned interval_s, store *st,
			srv_sampling **out, char *err, size_t errlen);
void srv_sampling_destroy(srv_sampling *s);

/* srv_sampling_reload reads the policy file again (SIGHUP). On error the
 * old policy stays and err says why. */
int srv_sampling_reload(srv_sampling *s, char *err, size_t errlen);

/*
 * srv_sampling_advise accounts batch b (res: what ingest stored of it) to
 * its binary's controller and fills *out with what the agent should do
 * now (mode points to a static string): 1, or 0 when no rule covers the
 * binary. Any thread (the agent listener's, from srv_ingest_message).
 */
int srv_sampling_advise(void *s, const Fdod__SampleBatch *b,
			const struct agg_result *res,
			Fdod__SamplingAdvice *out);

/*
 * srv_sampling_override sets an operator's window for binary ("*": every
 * binary) lasting seconds: on-demand at freq Hz (mode SRV_SAMPLING_ON_DEMAND),
 * or SRV_SAMPLING_PAUSED / SRV_SAMPLING_CONTINUOUS (policy rules apply
 * again when seconds is 0). FDO_OK, FDO_EINVAL (err), FDO_ELIMIT (too
 * many binaries).
 */
int srv_sampling_override(srv_sampling *s, const char *binary, int mode,
			  uint32_t freq, uint64_t seconds, char *err,
			  size_t errlen);

/* JSON of the policy and every binary's state (GET /v1/sampling), and
 * Prometheus lines (/metrics). */
void srv_sampling_json(srv_sampling *s, struct fdo_buf *out);
void srv_sampling_metrics(srv_sampling *s, struct fdo_buf *out);

#endif
