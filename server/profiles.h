/*
 * server/profiles.h — private to the profile API's files: the parsed
 * request and the build shared by server/profiles.c (the request, the
 * pull), server/publish.c (publish, versions) and server/readiness.c (the
 * readiness answers).
 */
#ifndef FDO_SERVER_PROFILES_H
#define FDO_SERVER_PROFILES_H

#include <stdint.h>

#include "aggregator/aggregator.h"
#include "aggregator/stale.h"
#include "common/buf.h"
#include "server/app.h"

/* A pull's for_build_id= (server/profiles.c, aggregator/stale.c): the
 * release the profile is matched onto, resolved and checked. */
struct srv_stale {
	int on;
	uint32_t binary; /* the binary's id in the store */
	uint8_t id[64];
	size_t len;
	char hex[129];
	char elf_path[4096], debug_path[4096];
	struct agg_stale_stats st; /* what the matching did */
};

/* Everything a request selects, parsed and checked. */
struct srv_preq {
	struct agg_profile_query q;
	const struct prof_emitter *em;
	struct prof_opts opts;
	struct agg_minimums min; /* the readiness rules' minimums */
	double min_fresh;	 /* min_fresh_share: 0 none (readiness.c) */
	char build_id_hex[129];
	struct srv_stale stale; /* set by the pull alone (not publish) */
};

/*
 * srv_preq_parse fills pr from req's binary and query (format, labels,
 * mix, window, half_life, build_id, min_samples, min_hosts, min_span,
 * min_fresh_share and every emitter option), the minimums defaulting to
 * app's config. Returns
 * 0, or -1 with resp a 400 saying what is wrong. Either way pr->q is the
 * caller's to agg_query_fini.
 */
int srv_preq_parse(struct srv_app *app, struct srv_req *req,
		   struct srv_resp *resp, struct srv_preq *pr);

/*
 * srv_profile_make builds the profile pr asks for into *p (the caller's
 * to prof_fini, also on failure), checks its readiness and emits it into
 * out. Returns 0, or -1 with resp filled (404 unknown binary, 409 not
 * ready, 422 no symbols for the format, 500/503; 503 with Retry-After,
 * before building, when the memory budget's builds part is full).
 * While it runs, the profile counts in that part once built.
 */
int srv_profile_make(struct srv_app *app, struct srv_preq *pr,
		     struct srv_resp *resp, struct prof *p,
		     struct fdo_buf *out);

/* srv_each_version walks the published versions of a binary in version
 * order (server/publish.c); fn gets each decoded record (one that does
 * not decode is skipped) and ends the walk by returning nonzero. FDO_OK
 * or the error of opening the table. */
int srv_each_version(store_txn *t, uint32_t binary,
		     int (*fn)(void *arg, uint32_t ver,
			       const struct store_published *v),
		     void *arg);

/*
 * srv_readiness_refuse answers 409 with the rules that failed
 * (server/readiness.c): {"ready":false,"failed":[...],"error":"..."}.
 */
void srv_readiness_refuse(struct srv_resp *resp,
			  const struct agg_rule rules[AGG_RULES]);

/*
 * The staleness score of a binary (server/readiness.c owns the concept):
 * the answer of its default pull for the newest release,
 * GET /v1/profiles/{binary}?for_build_id=newest, taken through the
 * profile cache under that pull's own key (server/profiles.c).
 */
struct srv_score {
	int status;	  /* the pull's: 200, or why there is no score */
	double share[4];  /* 200: fresh, matched, renamed, dropped */
	size_t nfunc[4];  /* 200: functions of each */
	uint64_t samples; /* 200: the profile's */
	char build_ids[8 * 129 + 8]; /* 200: the profile's build-ids */
	char why[512];		     /* else: the refusal's body (JSON) */
};

/* srv_profile_score builds (or finds in the cache) that pull, matched
 * onto the release for_hex (NULL: the newest); returns s->status. */
int srv_profile_score(struct srv_app *app, const char *binary,
		      const char *for_hex, struct srv_score *s);

/* min_fresh_share= (server/readiness.c): 0 and *out, or -1 (not a share
 * from 0 to 1). */
int srv_fresh_parse(const char *v, double *out);

/* The rule min_fresh_share of pr: 0 (none, or met), or -1 with resp the
 * 409 saying why (the score, or why there is none). */
int srv_fresh_refuse(struct srv_app *app, const struct srv_preq *pr,
		     struct srv_resp *resp);

#endif
