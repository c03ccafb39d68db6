/*
 * aggregator/query.c — the selector language of profile requests:
 *   labels=k:v,k:v          one selector; every pair must be present
 *   mix=k:v+k:v*3,k:v*1     weighted selectors, one per comma-separated
 *                           item; '+' joins the pairs of one item
 * ':' and '=' are both accepted between key and value (':' needs no
 * escaping in a URL). Input comes from outside: every piece is bounded.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "common/common.h"

/* One "k:v" pair into canonical "k=v" (as stored label sets spell it). */
static int add_pair(struct agg_selector *s, const char *p, size_t n, char *err,
		    size_t errlen)
{
	if (s->npairs == AGG_MAX_PAIRS) {
		snprintf(err, errlen, "more than %d labels in a selector",
			 AGG_MAX_PAIRS);
		return FDO_EINVAL;
	}
	size_t k = 0;
	while (k < n && p[k] != ':' && p[k] != '=')
		k++;
	const char *bad = NULL;
	if (k == 0 || k == n || n > 320)
		bad = "is not key:value";
	else if (k + 1 == n) /* stored labels never have an empty value */
		bad = "has an empty value";
	if (bad) {
		snprintf(err, errlen, "label '%.*s' %s", (int)(n > 64 ? 64 : n),
			 p, bad);
		return FDO_EINVAL;
	}
	char *pair = malloc(n + 1);
	if (!pair)
		return FDO_ENOMEM;
	memcpy(pair, p, n);
	pair[k] = '=';
	pair[n] = 0;
	s->pairs[s->npairs++] = pair;
	return FDO_OK;
}

static int parse_pairs(struct agg_selector *s, const char *p, size_t n,
		       char sep, char *err, size_t errlen)
{
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e < n && p[e] != sep)
			e++;
		int rc = add_pair(s, p + i, e - i, err, errlen);
		if (rc)
			return rc;
		i = e + 1;
	}
	return FDO_OK;
}

int agg_query_selectors(struct agg_profile_query *q, const char *labels,
			const char *mix, char *err, size_t errlen)
{
	if (labels && *labels && mix && *mix) {
		snprintf(err, errlen, "give labels= or mix=, not both");
		return FDO_EINVAL;
	}
	if (labels && *labels) {
		q->nselectors = 1;
		q->selectors[0].weight = 1;
		return parse_pairs(&q->selectors[0], labels, strlen(labels),
				   ',', err, errlen);
	}
	if (!mix || !*mix)
		return FDO_OK;
	size_t n = strlen(mix);
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e < n && mix[e] != ',')
			e++;
		if (q->nselectors == AGG_MAX_SELECTORS) {
			snprintf(err, errlen, "more than %d items in mix=",
				 AGG_MAX_SELECTORS);
			return FDO_EINVAL;
		}
		struct agg_selector *s = &q->selectors[q->nselectors++];
		const char *star = memchr(mix + i, '*', e - i);
		s->weight = 1;
		size_t plen = (star ? (size_t)(star - (mix + i)) : e - i);
		if (star) {
			char num[32];
			size_t wl = (size_t)(mix + e - star - 1);
			if (wl == 0 || wl >= sizeof num) {
				snprintf(err, errlen,
					 "bad weight in mix item "
					 "'%.*s'",
					 (int)(e - i), mix + i);
				return FDO_EINVAL;
			}
			memcpy(num, star + 1, wl);
			num[wl] = 0;
			char *end;
			errno = 0;
			s->weight = strtod(num, &end);
			if (errno || *end || !isfinite(s->weight) ||
			    s->weight <= 0 || s->weight > 1e6) {
				snprintf(err, errlen, "bad weight '%s' in mix",
					 num);
				return FDO_EINVAL;
			}
		}
		if (plen == 0) {
			snprintf(err, errlen, "empty selector in mix");
			return FDO_EINVAL;
		}
		int rc = parse_pairs(s, mix + i, plen, '+', err, errlen);
		if (rc)
			return rc;
		i = e + 1;
	}
	return FDO_OK;
}

void agg_query_fini(struct agg_profile_query *q)
{
	for (size_t i = 0; i < AGG_MAX_SELECTORS; i++) {
		for (size_t k = 0; k < q->selectors[i].npairs; k++)
			free(q->selectors[i].pairs[k]);
		memset(&q->selectors[i], 0, sizeof q->selectors[i]);
	}
	q->nselectors = 0;
}
