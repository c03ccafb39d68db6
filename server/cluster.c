/*
 * server/cluster.c — the nodes of a cluster and the owner of a build-id.
 *
 * Rendezvous (highest random weight) hashing: a build-id's owner is the
 * node with the highest hash of (node URL, build-id). Each node computes
 * it alone; removing a node moves only the build-ids it owned, adding one
 * takes about 1/N of them. The owner's liveness is an HTTP GET of its
 * /v1/status (any answer is up), remembered a few seconds per node so the
 * symbolizer's workers do not probe for every build-id.
 * Locking: mu guards the probe cache; probes run without it (two workers
 * may probe one node at once: harmless).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "server/cluster.h"

#define PROBE_TIMEOUT_MS 2000
#define PROBE_KEEP_NS	 (5ull * 1000000000ull)

struct srv_cluster {
	size_t n, self;
	char *urls[SRV_CLUSTER_MAX];
	uint64_t seed[SRV_CLUSTER_MAX]; /* hash of each URL */
	pthread_mutex_t mu;
	uint64_t probed[SRV_CLUSTER_MAX]; /* guarded by mu: mono ns, 0 never */
	int up[SRV_CLUSTER_MAX];	  /* guarded by mu */
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* splitmix64's finalizer: FNV's low bits alone mix poorly. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The items of a comma-separated list, spaces trimmed: calls fn for each
 * (even empty ones); stops at a non-zero return. */
static int each_item(const char *list, int (*fn)(void *, const char *, size_t),
		     void *arg)
{
	const char *p = list;
	for (;;) {
		p += strspn(p, " ");
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m && p[m - 1] == ' ')
			m--;
		int rc = fn(arg, p, m);
		if (rc)
			return rc;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

struct parse_ctx {
	const char *items[SRV_CLUSTER_MAX];
	size_t lens[SRV_CLUSTER_MAX];
	size_t n;
	char *err;
	size_t errlen;
};

int srv_cluster_url_ok(const char *u, size_t n)
{
	int ok = (n > 7 && !strncmp(u, "http://", 7)) ||
		 (n > 8 && !strncmp(u, "https://", 8));
	for (size_t i = 0; i < n; i++)
		ok &= u[i] > ' ' && u[i] < 0x7f && u[i] != ',';
	return ok && n <= 200;
}

static int take(void *arg, const char *item, size_t n)
{
	struct parse_ctx *x = arg;
	if (!srv_cluster_url_ok(item, n)) {
		snprintf(x->err, x->errlen,
			 "--cluster-nodes: '%.*s' is not an http:// or "
			 "https:// URL (at most 200 characters)",
			 (int)(n > 200 ? 200 : n), item);
		return FDO_EINVAL;
	}
	for (size_t i = 0; i < x->n; i++)
		if (x->lens[i] == n && !memcmp(x->items[i], item, n)) {
			snprintf(x->err, x->errlen,
				 "--cluster-nodes: '%.*s' is listed twice",
				 (int)n, item);
			return FDO_EINVAL;
		}
	if (x->n == SRV_CLUSTER_MAX) {
		snprintf(x->err, x->errlen,
			 "--cluster-nodes: more than %d nodes",
			 SRV_CLUSTER_MAX);
		return FDO_EINVAL;
	}
	x->items[x->n] = item;
	x->lens[x->n++] = n;
	return FDO_OK;
}

static int parse(const char *nodes, const char *self, struct parse_ctx *x,
		 size_t *self_at)
{
	int rc = each_item(nodes, take, x);
	if (rc)
		return rc;
	if (!self) {
		snprintf(x->err, x->errlen,
			 "--cluster-nodes needs --node-url (this node's URL, "
			 "one of the list)");
		return FDO_EINVAL;
	}
	for (size_t i = 0; i < x->n; i++)
		if (x->lens[i] == strlen(self) &&
		    !memcmp(x->items[i], self, x->lens[i])) {
			*self_at = i;
			return FDO_OK;
		}
	snprintf(x->err, x->errlen,
		 "--node-url '%.200s' is not one of --cluster-nodes", self);
	return FDO_EINVAL;
}

int srv_cluster_parse(const char *nodes, const char *self, char *err,
		      size_t errlen)
{
	struct parse_ctx x = {.err = err, .errlen = errlen};
	size_t at;
	return parse(nodes, self, &x, &at);
}

int srv_cluster_create(const char *nodes, const char *self,
		       struct srv_cluster **out)
{
	char err[300];
	struct parse_ctx x = {.err = err, .errlen = sizeof err};
	size_t at;
	if (parse(nodes, self, &x, &at))
		return FDO_EINVAL;
	struct srv_cluster *c = calloc(1, sizeof *c);
	if (!c)
		return FDO_ENOMEM;
	for (size_t i = 0; i < x.n; i++) {
		c->urls[i] = strndup(x.items[i], x.lens[i]);
		if (!c->urls[i]) {
			c->n = i;
			srv_cluster_destroy(c);
			return FDO_ENOMEM;
		}
		c->seed[i] =
			fnv1a(0xcbf29ce484222325ull, x.items[i], x.lens[i]);
	}
	c->n = x.n;
	c->self = at;
	pthread_mutex_init(&c->mu, NULL);
	/* Before the probes; libdebuginfod has done it too, when linked. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	*out = c;
	return FDO_OK;
}

void srv_cluster_destroy(struct srv_cluster *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->urls[i]);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

size_t srv_cluster_size(const struct srv_cluster *c)
{
	return c->n;
}

const char *srv_cluster_node(const struct srv_cluster *c, size_t i)
{
	return i < c->n ? c->urls[i] : NULL;
}

size_t srv_cluster_self(const struct srv_cluster *c)
{
	return c->self;
}

size_t srv_cluster_owner(const struct srv_cluster *c, const uint8_t *bid,
			 size_t len)
{
	size_t best = 0;
	uint64_t top = 0;
	for (size_t i = 0; i < c->n; i++) {
		uint64_t w = mix(fnv1a(c->seed[i], bid, len));
		if (i == 0 || w > top) {
			top = w;
			best = i;
		}
	}
	return best;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Does url answer HTTP at all? */
static int probe(const char *url)
{
	CURL *h = curl_easy_init();
	if (!h)
		return 1; /* cannot tell: assume up, as before the probe */
	char target[300];
	snprintf(target, sizeof target, "%s/v1/status", url);
	curl_easy_setopt(h, CURLOPT_URL, target);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && status > 0;
}

int srv_cluster_symbolize_here(void *arg, const uint8_t *bid, size_t len,
			       const char **owner)
{
	struct srv_cluster *c = arg;
	size_t o = srv_cluster_owner(c, bid, len);
	if (owner)
		*owner = c->urls[o];
	if (o == c->self)
		return 1;
	uint64_t now = fdo_now_ns();
	pthread_mutex_lock(&c->mu);
	int known = c->probed[o] && now - c->probed[o] < PROBE_KEEP_NS;
	int up = c->up[o];
	pthread_mutex_unlock(&c->mu);
	if (!known) {
		up = probe(c->urls[o]);
		pthread_mutex_lock(&c->mu);
		c->probed[o] = fdo_now_ns();
		c->up[o] = up;
		pthread_mutex_unlock(&c->mu);
	}
	return !up;
}
