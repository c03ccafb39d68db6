/*
 * server/cluster.h — the fdod nodes of a cluster (--cluster-nodes,
 * --node-url) and which of them owns a build-id's symbolization:
 * rendezvous hashing of build-id x node URL, so removing a node moves only
 * the build-ids it owned, and every node computes the same owner without
 * talking to the others.
 */
#ifndef FDO_SERVER_CLUSTER_H
#define FDO_SERVER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define SRV_CLUSTER_MAX 64 /* nodes */

struct srv_cluster;

/*
 * srv_cluster_parse checks a --cluster-nodes list (comma separated
 * http:// or https:// URLs, spaces around them allowed, no duplicate, at
 * most SRV_CLUSTER_MAX) against self (--node-url, which must be one of
 * them). FDO_OK, or FDO_EINVAL with the reason in err.
 */
int srv_cluster_parse(const char *nodes, const char *self, char *err,
		      size_t errlen);

/* srv_cluster_url_ok: is u[0..n) a node URL (http:// or https://,
 * printable, no space or comma, at most 200 characters)? */
int srv_cluster_url_ok(const char *u, size_t n);

/* srv_cluster_create: nodes and self as srv_cluster_parse accepts them.
 * FDO_OK, FDO_EINVAL, FDO_ENOMEM. */
int srv_cluster_create(const char *nodes, const char *self,
		       struct srv_cluster **out);
void srv_cluster_destroy(struct srv_cluster *c);

size_t srv_cluster_size(const struct srv_cluster *c);
const char *srv_cluster_node(const struct srv_cluster *c, size_t i);
/* srv_cluster_self: this node's index. */
size_t srv_cluster_self(const struct srv_cluster *c);

/* srv_cluster_owner: the index of the node that owns build-id bid. */
size_t srv_cluster_owner(const struct srv_cluster *c, const uint8_t *bid,
			 size_t len);

/*
 * srv_cluster_symbolize_here: should this node symbolize build-id bid
 * now? 1 when it is the owner, or when the owner does not answer HTTP
 * (failover: any answer, even 401, is "up"; asked with a 2 s timeout,
 * remembered 5 s); else 0, and *owner (may be NULL) gets the owner's URL.
 * May block on the probe; any thread. Fits agg_symwork_on_owner.
 */
int srv_cluster_symbolize_here(void *c, const uint8_t *bid, size_t len,
			       const char **owner);

#endif
