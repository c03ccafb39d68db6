/*
 * fuzz/fuzz_http.c — an HTTP request line as fdod's API reads it: route
 * matching over the real route table with path percent-decoding
 * (server/http.c srv_route_find), query-string decoding (srv_query_get),
 * and the values the handlers parse from it: the profile selectors
 * (aggregator/query.c agg_query_selectors, labels= and mix=), durations
 * (window=, half_life=, min_span=: common/opts.c fdo_parse_duration),
 * counts (fdo_parse_uint), build-ids (common/codec.c fdo_build_id_parse,
 * from build_id= and from {build-id} path segments), format names and
 * binary names (?binary=, {binary}).
 *
 * Input: "METHOD URI" (the first space splits them; without one, GET and
 * the whole input as the URI), read as a C string: nng hands over no NUL.
 *
 * Properties checked beyond "no crash, no leak, no UB" (each against an
 * independent reading of the documented rule):
 *   - a matched route has the request's method (HEAD served by GET) and
 *     the pattern with its "{}" replaced by the parameters is the path;
 *   - a decoded query value fits its buffer, and a value that does not
 *     fit a small buffer is FDO_ELIMIT, not truncated;
 *   - selectors: at most 16, each 1..16 "k=v" pairs, weights in (0, 1e6];
 *   - durations: digits and one optional s/m/h/d/w, value = n x unit,
 *     refused on overflow; build-ids: 2..128 lowercase hex digits, even,
 *     re-encoding gives the text back.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "common/opts.h"
#include "fuzz/fuzz.h"
#include "schemas/schemas.h"
#include "server/app.h"
#include "server/http.h"

#define CAP 2048 /* what server/profiles.c decodes query values into */

static void check_route(const char *method, const char *uri)
{
	char path[CAP];
	struct srv_req req;
	memset(&req, 0, sizeof req);
	const struct srv_route *r = NULL;
	int miss = srv_route_find(srv_routes, method, uri, path, sizeof path,
				  &req, &r);
	FUZZ_CHECK(miss == 0 || miss == 400 || miss == 404 || miss == 405);
	FUZZ_CHECK(req.query != NULL);
	if (miss)
		return;
	FUZZ_CHECK(r && r->pattern && req.path == path);
	FUZZ_CHECK(!strcmp(r->method, strcmp(method, "HEAD") ? method : "GET"));
	/* pattern with "{}" := parameters (each up to its '/') == path */
	char again[2 * CAP];
	size_t n = 0;
	int np = 0;
	for (const char *p = r->pattern; *p;) {
		if (p[0] == '{' && p[1] == '}') {
			FUZZ_CHECK(np < req.nparam && np < SRV_MAX_PARAMS);
			const char *a = req.param[np++];
			FUZZ_CHECK(a >= path && a < path + sizeof path);
			size_t len = strcspn(a, "/");
			FUZZ_CHECK(len > 0 && n + len < sizeof again);
			memcpy(again + n, a, len);
			n += len;
			p += 2;
		} else {
			FUZZ_CHECK(n + 1 < sizeof again);
			again[n++] = *p++;
		}
	}
	again[n] = '\0';
	FUZZ_CHECK(np == req.nparam);
	FUZZ_CHECK(!strcmp(again, path));

	/* What the handlers do with {build-id} and {binary} segments. */
	for (int i = 0; i < req.nparam; i++) {
		char seg[CAP];
		size_t len = strcspn(req.param[i], "/");
		memcpy(seg, req.param[i], len);
		seg[len] = '\0';
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t idlen;
		(void)fdo_build_id_parse(seg, id, &idlen);
		char err[256];
		(void)wire_binary_name_check(seg, err, sizeof err);
	}
}

/* Reference reading of a duration: digits, one optional unit. */
static int ref_duration(const char *s, uint64_t *out)
{
	static const char units[] = "smhdw";
	static const uint64_t f[] = {1, 60, 3600, 86400, 604800};
	unsigned __int128 v = 0;
	size_t i = 0;
	if (!s[0] || s[0] < '0' || s[0] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT64_MAX)
			return -1;
	}
	uint64_t m = 1;
	if (s[i]) {
		const char *u = strchr(units, s[i]);
		if (!u || s[i + 1])
			return -1;
		m = f[u - units];
	}
	v *= m;
	if (v > UINT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static void check_duration(const char *v)
{
	uint64_t got = 0, want = 0;
	int rc = fdo_parse_duration(v, &got);
	int ref = ref_duration(v, &want);
	if ((rc == FDO_OK) != (ref == 0) || (rc == FDO_OK && got != want)) {
		fprintf(stderr,
			"duration '%s': got rc %d value %llu, want %s "
			"%llu\n",
			v, rc, (unsigned long long)got, ref ? "refused" : "ok",
			(unsigned long long)want);
		abort();
	}
}

static void check_build_id(const char *v)
{
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len = 0;
	int rc = fdo_build_id_parse(v, id, &len);
	size_t n = strlen(v);
	int want = n >= 2 && n <= 2 * FDO_BUILD_ID_MAX && n % 2 == 0 &&
		   strspn(v, "0123456789abcdef") == n;
	FUZZ_CHECK((rc == FDO_OK) == want);
	if (rc == FDO_OK) {
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		FUZZ_CHECK(len == n / 2);
		fdo_hex_encode(id, len, hex);
		FUZZ_CHECK(!strcmp(hex, v));
	}
}

static void check_selectors(const char *labels, const char *mix)
{
	struct agg_profile_query q;
	memset(&q, 0, sizeof q);
	char err[256] = "";
	int rc = agg_query_selectors(&q, labels, mix, err, sizeof err);
	if (rc != FDO_OK) {
		FUZZ_CHECK(err[0] != '\0');
	} else {
		FUZZ_CHECK(q.nselectors <= AGG_MAX_SELECTORS);
		for (size_t i = 0; i < q.nselectors; i++) {
			const struct agg_selector *s = &q.selectors[i];
			FUZZ_CHECK(s->npairs >= 1 &&
				   s->npairs <= AGG_MAX_PAIRS);
			FUZZ_CHECK(isfinite(s->weight) && s->weight > 0 &&
				   s->weight <= 1e6);
			for (size_t k = 0; k < s->npairs; k++) {
				const char *eq = strchr(s->pairs[k], '=');
				FUZZ_CHECK(eq && eq != s->pairs[k]);
			}
		}
	}
	agg_query_fini(&q);
}

/* srv_query_get into a CAP buffer, checked against a small buffer. */
static int qget(const char *query, const char *key, char *out)
{
	int rc = srv_query_get(query, key, out, CAP);
	FUZZ_CHECK(rc == FDO_OK || rc == FDO_ENOT_FOUND || rc == FDO_ELIMIT ||
		   rc == FDO_EPARSE);
	if (rc == FDO_OK)
		FUZZ_CHECK(strlen(out) < CAP);
	char small[8];
	int rs = srv_query_get(query, key, small, sizeof small);
	if (rc == FDO_OK && strlen(out) < sizeof small)
		FUZZ_CHECK(rs == FDO_OK && !strcmp(small, out));
	else if (rc == FDO_OK)
		FUZZ_CHECK(rs == FDO_ELIMIT);
	if (rc != FDO_OK)
		out[0] = '\0';
	return rc == FDO_OK;
}

static void check_query(const char *query)
{
	static char v[CAP], labels[CAP], mix[CAP];
	if (qget(query, "format", v))
		(void)prof_emitter_find(v);
	qget(query, "labels", labels);
	qget(query, "mix", mix);
	check_selectors(labels, mix);
	static const char *const durations[] = {"window", "half_life",
						"min_span"};
	for (size_t i = 0; i < 3; i++)
		if (qget(query, durations[i], v))
			check_duration(v);
	static const char *const counts[] = {"min_samples", "min_hosts"};
	for (size_t i = 0; i < 2; i++) {
		uint64_t n;
		if (qget(query, counts[i], v))
			(void)fdo_parse_uint(v, &n);
	}
	if (qget(query, "build_id", v))
		check_build_id(v);
	char err[256];
	if (qget(query, "binary", v))
		(void)wire_binary_name_check(v, err, sizeof err);
	qget(query, "dir", v);
	/* The emitters' options, as the profile route sets them. */
	struct prof_opts o;
	prof_opts_init(&o);
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++)
		if (qget(query, d->name, v))
			(void)prof_opts_set(&o, d->name, v, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	const char *method = "GET", *uri = in;
	char *sp = strchr(in, ' ');
	if (sp) {
		*sp = '\0';
		method = in;
		uri = sp + 1;
	}
	check_route(method, uri);
	const char *qm = strchr(uri, '?');
	check_query(qm ? qm + 1 : "");
	/* The whole URI as a value, for the parsers' own corner cases. */
	check_duration(uri);
	check_build_id(uri);
	check_selectors(uri, NULL);
	check_selectors(NULL, uri);
	free(in);
	return 0;
}
