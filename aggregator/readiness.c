/*
 * aggregator/readiness.c — the readiness rules: whether what a pull would
 * serve has enough behind it (curation minimums on raw samples, distinct
 * hosts and seconds collected; declared in aggregator/aggregator.h).
 *
 * Why here: the rules are checked in two places, and were written twice
 * before. A pull (GET /v1/profiles/{b}, POST .../publish) checks the
 * figures of the profile the builder made: pass 1 of agg_profile_build
 * folds each selected counts entry into them with agg_figures_add. GET
 * /v1/binaries/{b}/readiness checks, without building, the figures of each
 * label set, which server/readiness.c folds the same way from the totals
 * rows (one per label set and bucket; the counts are millions). Both come
 * here for the figures' arithmetic and the rules; the server only maps the
 * answer to JSON and HTTP.
 *
 * Workload: a few additions per row folded; the rules once per pull, once
 * per label set for the readiness route.
 */
#include "aggregator/aggregator.h"

void agg_figures_add(struct agg_figures *f, uint64_t bucket, uint64_t width,
		     uint64_t samples)
{
	struct agg_figures row = {.samples = samples,
				  .first_time = bucket,
				  .last_time = bucket + width};
	agg_figures_merge(f, &row);
}

void agg_figures_merge(struct agg_figures *into, const struct agg_figures *from)
{
	into->samples += from->samples;
	if (!into->first_time || from->first_time < into->first_time)
		into->first_time = from->first_time;
	if (from->last_time > into->last_time)
		into->last_time = from->last_time;
}

uint64_t agg_figures_span(const struct agg_figures *f)
{
	return f->last_time > f->first_time ? f->last_time - f->first_time : 0;
}

int agg_readiness_check(const struct agg_figures *f,
			const struct agg_minimums *min,
			struct agg_rule rules[AGG_RULES])
{
	rules[0] = (struct agg_rule){"min_samples", f->samples, min->samples};
	rules[1] = (struct agg_rule){"min_hosts", f->hosts, min->hosts};
	rules[2] =
		(struct agg_rule){"min_span", agg_figures_span(f), min->span};
	int failed = 0;
	for (size_t i = 0; i < AGG_RULES; i++)
		failed |= rules[i].have < rules[i].need;
	return failed;
}

void agg_profile_figures(const struct prof *p, struct agg_figures *f)
{
	*f = (struct agg_figures){.samples = p->samples,
				  .hosts = p->hosts,
				  .first_time = p->first_time,
				  .last_time = p->last_time};
}
