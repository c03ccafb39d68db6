/*
 * server/otlp_grpc.h — OTLP/gRPC profiles: the ProfilesService/Export
 * listener (--otlp-grpc ADDR:PORT). gRPC stays behind this header: only
 * server/otlp_grpc.c includes <grpc/grpc.h>.
 */
#ifndef FDO_SERVER_OTLP_GRPC_H
#define FDO_SERVER_OTLP_GRPC_H

#include <stdint.h>

#include "common/buf.h"

struct srv_app;
struct srv_grpc;

/* The gRPC method served; every other method is answered UNIMPLEMENTED. */
#define SRV_GRPC_EXPORT                                                        \
	"/opentelemetry.proto.collector.profiles.v1development."               \
	"ProfilesService/Export"

struct srv_grpc_opts {
	const char *addr;	    /* HOST:PORT, [V6]:PORT (port 0: any) */
	unsigned max_connections;   /* connections at once, in all (>= 1) */
	unsigned max_per_peer;	    /* ... from one address (0: no cap) */
	unsigned max_calls;	    /* calls at once, from any client */
	unsigned recv_timeout;	    /* seconds a call's message may take */
	unsigned idle_timeout;	    /* seconds a connection without calls */
	unsigned handshake_timeout; /* seconds for a connection's preface */
	uint32_t max_message;	    /* bytes of a message as sent */
	uint32_t max_inflated;	    /* bytes it may inflate to (gzip) */
};

/*
 * srv_grpc_start serves ProfilesService/Export on o->addr (plaintext
 * HTTP/2; fdod accepts the connections, gRPC serves them) and hands each
 * request to srv_otlp_ingest with app's token file and counters.
 * Returns FDO_OK or FDO_ETRANSPORT (address in use, bad address) with a
 * log line. Call from one thread, after app's ingest pipeline runs;
 * serves until srv_grpc_stop.
 */
int srv_grpc_start(struct srv_app *app, const struct srv_grpc_opts *o,
		   struct srv_grpc **out);

/* srv_grpc_port returns the bound TCP port. Any thread. */
int srv_grpc_port(const struct srv_grpc *g);

/*
 * srv_grpc_stop answers calls still waiting for their message and new ones
 * UNAVAILABLE, lets calls being stored finish (then cancels what is left
 * after 5 s), closes the listener and frees everything. Blocks. NULL is a
 * no-op.
 */
void srv_grpc_stop(struct srv_grpc *g);

/* srv_grpc_metrics appends the listener's lines of /metrics (nothing when
 * g is NULL). Any thread. */
void srv_grpc_metrics(struct srv_grpc *g, struct fdo_buf *b);

#endif
