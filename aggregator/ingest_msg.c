/*
 * aggregator/ingest_msg.c — the wire edge of ingest: from an encoded
 * SampleBatch (and the peer it came from) to an encoded Ack.
 *
 * The token is checked first, on the message's top-level fields, before
 * the rest is decoded: memory spent on a batch without a valid token stays
 * the message itself. The batch is then decoded into the receiving
 * thread's arena, handed to agg_ingest_batch (ingest.c), and its result,
 * refusal or sampling advice becomes the Ack.
 *
 * Threads: any number of receiving threads at once (the agent listener's,
 * one per request in flight). Each decodes into an arena of its own, kept
 * from message to message (a thread-specific key) and freed when the
 * thread ends. The ingest lock (mu) is taken only to count refusals and
 * the latency histogram.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"

const double agg_latency_bounds[AGG_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

/* Each receiving thread decodes into an arena of its own, kept from
 * message to message and freed when the thread ends; without one (no
 * memory, no key) it decodes with malloc. */
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_key_ok;

static void arena_drop(void *a)
{
	wire_arena_free(a);
}

static void arena_key_init(void)
{
	arena_key_ok = pthread_key_create(&arena_key, arena_drop) == 0;
}

static struct wire_arena *thread_arena(void)
{
	pthread_once(&arena_once, arena_key_init);
	if (!arena_key_ok)
		return NULL;
	struct wire_arena *a = pthread_getspecific(arena_key);
	if (!a && (a = wire_arena_new()) && pthread_setspecific(arena_key, a)) {
		wire_arena_free(a);
		a = NULL;
	}
	return a;
}

void agg_ingest_message(agg_ingest *ing, const uint8_t *msg, size_t len,
			struct fdo_buf *reply)
{
	agg_ingest_message_from(ing, msg, len, NULL, reply, NULL);
}

/*
 * The authorize hook on the identity fields of an encoded batch (peeked,
 * not decoded). *checked = 1 when the hook ran and allowed it; 0 when the
 * top level does not parse (decoding then reports why). Returns the
 * hook's refusal, or FDO_OK.
 */
static int authorize_head(agg_ingest *ing, const uint8_t *msg, size_t len,
			  const char *peer, struct agg_result *res,
			  int *checked)
{
	struct wire_batch_head h;
	*checked = 0;
	if (wire_batch_peek(msg, len, ing->limits, &h))
		return FDO_OK;
	/* NUL-terminated copies; longer fields than these are refused by
	 * validation anyway, and a token never is that long. */
	char agent[260], host[260], binary[260], token[1024];
	const struct {
		struct wire_str *in;
		char *out;
		size_t cap;
	} f[] = {{&h.agent_id, agent, sizeof agent},
		 {&h.host, host, sizeof host},
		 {&h.binary, binary, sizeof binary},
		 {&h.auth_token, token, sizeof token}};
	for (size_t i = 0; i < 4; i++) {
		size_t n = f[i].in->len < f[i].cap - 1 ? f[i].in->len
						       : f[i].cap - 1;
		memcpy(f[i].out, f[i].in->p ? f[i].in->p : "", n);
		f[i].out[n] = 0;
	}
	Fdod__SampleBatch stub = FDOD__SAMPLE_BATCH__INIT;
	stub.agent_id = agent;
	stub.host = host;
	stub.binary = binary;
	stub.auth_token = token;
	int rc = ing->o.authorize(ing->o.authorize_arg, &stub, peer,
				  res->message, sizeof res->message);
	if (!rc)
		*checked = 1;
	volatile char *t = token; /* no copy of a token outlives the check */
	for (size_t i = 0; i < sizeof token; i++)
		t[i] = 0;
	return rc;
}

void agg_ingest_message_from(agg_ingest *ing, const uint8_t *msg, size_t len,
			     const char *peer, struct fdo_buf *reply,
			     int *authorized)
{
	if (authorized)
		*authorized = 0;
	struct agg_result res = {0};
	Fdod__SampleBatch *b = NULL;
	uint64_t t0 = fdo_now_ns();
	Fdod__Ack ack = FDOD__ACK__INIT;
	Fdod__SamplingAdvice advice = FDOD__SAMPLING_ADVICE__INIT;
	/* The token first, from the message's top-level fields, before the
	 * rest is decoded (and copied): memory spent on a batch without a
	 * valid token stays the message itself. */
	int rc = FDO_OK, checked = 0;
	struct wire_arena *arena = NULL;
	if (ing->o.authorize) {
		rc = authorize_head(ing, msg, len, peer, &res, &checked);
		if (rc) {
			res.status = rc;
			pthread_mutex_lock(&ing->mu);
			ingest_count_refusal(ing, rc);
			pthread_mutex_unlock(&ing->mu);
			goto reply;
		}
	}
	arena = thread_arena();
	rc = arena ? wire_batch_decode_in(arena, msg, len, ing->limits, &b)
		   : wire_batch_decode(msg, len, ing->limits, &b);
	if (rc) {
		res.status = rc;
		if (rc == FDO_ELIMIT)
			snprintf(
				res.message, sizeof res.message,
				"batch too large: %zu bytes (limits: %zu bytes "
				"encoded, %zu bytes decoded); split it",
				len, ing->limits->max_message_bytes,
				ing->limits->max_decoded_bytes);
		else if (rc == FDO_EINVAL)
			snprintf(res.message, sizeof res.message,
				 "SampleBatch refused: a string (agent, host, "
				 "binary, event, label or path) holds a NUL "
				 "byte");
		else
			snprintf(res.message, sizeof res.message,
				 "malformed SampleBatch (%zu bytes): %s", len,
				 fdo_strerror(rc));
		pthread_mutex_lock(&ing->mu);
		ingest_count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
	} else if (ing->o.authorize && !checked &&
		   (rc = ing->o.authorize(ing->o.authorize_arg, b, peer,
					  res.message, sizeof res.message))) {
		res.status = rc;
		ack.seq = b->seq;
		pthread_mutex_lock(&ing->mu);
		ingest_count_refusal(ing, rc);
		pthread_mutex_unlock(&ing->mu);
	} else {
		if (authorized)
			*authorized = 1;
		agg_ingest_batch(ing, b, &res);
		ack.seq = b->seq;
		if (ing->o.advise &&
		    ing->o.advise(ing->o.advise_arg, b, &res, &advice))
			ack.sampling = &advice;
	}
reply:
	ack.status = (uint32_t)res.status;
	ack.message = res.message;
	ack.duplicate = res.duplicate;
	ack.samples_accepted = res.samples_accepted;
	ack.samples_unmapped = res.samples_unmapped;
	ack.frames_unmapped = res.frames_unmapped;
	ack.branches_accepted = res.branches_accepted;
	ack.branches_unmapped = res.branches_unmapped;
	ack.schema_version = WIRE_SCHEMA_VERSION;
	if (res.retry_after_ms)
		ack.retry_after_ms = res.retry_after_ms;
	else if (res.status == FDO_EBUSY || res.status == FDO_ESTORE_FULL ||
		 res.status == FDO_ENOSPACE || res.status == FDO_EIO)
		ack.retry_after_ms = 1000;
	uint8_t *out;
	size_t olen;
	if (wire_ack_encode(&ack, &out, &olen) == FDO_OK) {
		fdo_buf_append(reply, out, olen);
		free(out);
	}
	if (arena)
		wire_arena_reset(arena);
	else
		wire_batch_free(b);
	double secs = (double)(fdo_now_ns() - t0) / 1e9;
	pthread_mutex_lock(&ing->mu);
	for (int i = 0; i < AGG_LATENCY_BUCKETS; i++)
		if (secs <= agg_latency_bounds[i])
			ing->stats.latency_le[i]++;
	ing->stats.latency_count++;
	ing->stats.latency_sum += secs;
	pthread_mutex_unlock(&ing->mu);
}
