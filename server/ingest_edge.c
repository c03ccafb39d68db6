/*
 * server/ingest_edge.c — the agent listener's wire edge: from an encoded
 * SampleBatch (and the peer it came from) to an encoded Ack. The
 * aggregator takes the decoded, authorized batch (agg_ingest_batch).
 *
 * The token is checked first, on the message's top-level fields, before
 * the rest is decoded: memory spent on a batch without a valid token stays
 * the message itself. The batch is then decoded into the receiving
 * thread's arena, stored, and its result, refusal or sampling advice
 * becomes the Ack.
 *
 * Threads: any number of receiving threads at once (the agent listener's,
 * one per request in flight). Each decodes into an arena of its own, kept
 * from message to message (a thread-specific key) and freed when the
 * thread ends.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/ingest_edge.h"
#include "server/sampling.h"

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

/*
 * An agent batch: the token must have scope ingest, and the identity the
 * batch claims (agent id, host, binary) must be within the token's
 * restrictions, so one team's token cannot write as another team's agents.
 */
static int batch_auth(struct srv_app *app, const Fdod__SampleBatch *b,
		      const char *peer, char *why, size_t len)
{
	const struct srv_token *tok;
	const char *token = b->auth_token;
	int rc = srv_auth_check(app->auth, token, token ? strlen(token) : 0,
				SRV_SCOPE_INGEST, &tok);
	if (rc)
		snprintf(why, len, "%s",
			 rc == FDO_EDENIED
				 ? "unauthorized: the token lacks scope ingest"
				 : "unauthorized: missing or unknown token");
	else if (!srv_token_allows_agent(tok, b->agent_id ? b->agent_id : ""))
		snprintf(why, len,
			 "unauthorized: this token may not send as "
			 "agent '%s' (see its agents= in the token "
			 "file)",
			 b->agent_id ? b->agent_id : "");
	else if (!srv_token_allows_host(tok, b->host ? b->host : ""))
		snprintf(why, len,
			 "unauthorized: this token may not send for "
			 "host '%s' (see its hosts=)",
			 b->host ? b->host : "");
	else if (!srv_token_allows_binary(tok, b->binary ? b->binary : ""))
		snprintf(why, len,
			 "unauthorized: this token may not send "
			 "samples of binary '%s' (see its binaries=)",
			 b->binary ? b->binary : "");
	else
		return FDO_OK;
	fdo_warn("ingest: batch from %s refused (%s): %s", peer ? peer : "?",
		 srv_token_name(tok), why);
	return FDO_EDENIED;
}

/*
 * batch_auth on the identity fields of an encoded batch (peeked, not
 * decoded). *checked = 1 when it ran and allowed it; 0 when the top level
 * does not parse (decoding then reports why). Returns the refusal, or
 * FDO_OK.
 */
static int authorize_head(struct srv_app *app, const uint8_t *msg, size_t len,
			  const char *peer, struct agg_result *res,
			  int *checked)
{
	struct wire_batch_head h;
	*checked = 0;
	if (wire_batch_peek(msg, len, agg_ingest_limits(app->ingest), &h))
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
	int rc =
		batch_auth(app, &stub, peer, res->message, sizeof res->message);
	if (!rc)
		*checked = 1;
	volatile char *t = token; /* no copy of a token outlives the check */
	for (size_t i = 0; i < sizeof token; i++)
		t[i] = 0;
	return rc;
}

void srv_ingest_message(struct srv_app *app, const uint8_t *msg, size_t len,
			const char *peer, struct fdo_buf *reply,
			int *authorized)
{
	agg_ingest *ing = app->ingest;
	const struct wire_limits *limits = agg_ingest_limits(ing);
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
	if (app->auth) {
		rc = authorize_head(app, msg, len, peer, &res, &checked);
		if (rc) {
			res.status = rc;
			agg_ingest_count_refusal(ing, rc);
			goto reply;
		}
	}
	arena = thread_arena();
	rc = arena ? wire_batch_decode_in(arena, msg, len, limits, &b)
		   : wire_batch_decode(msg, len, limits, &b);
	if (rc) {
		res.status = rc;
		if (rc == FDO_ELIMIT)
			snprintf(
				res.message, sizeof res.message,
				"batch too large: %zu bytes (limits: %zu bytes "
				"encoded, %zu bytes decoded); split it",
				len, limits->max_message_bytes,
				limits->max_decoded_bytes);
		else if (rc == FDO_EINVAL)
			snprintf(res.message, sizeof res.message,
				 "SampleBatch refused: a string (agent, host, "
				 "binary, event, label or path) holds a NUL "
				 "byte");
		else
			snprintf(res.message, sizeof res.message,
				 "malformed SampleBatch (%zu bytes): %s", len,
				 fdo_strerror(rc));
		agg_ingest_count_refusal(ing, rc);
	} else if (app->auth && !checked &&
		   (rc = batch_auth(app, b, peer, res.message,
				    sizeof res.message))) {
		res.status = rc;
		ack.seq = b->seq;
		agg_ingest_count_refusal(ing, rc);
	} else {
		if (authorized)
			*authorized = 1;
		agg_ingest_batch(ing, b, &res);
		ack.seq = b->seq;
		/* Draining: the batch is stored here as usual, and the Ack
		 * names the agent id's next node. Storing it (rather than
		 * refusing it with the redirect) keeps exactly-once: a
		 * retried batch this node stored is answered as a
		 * duplicate here, never stored again on the next node, and
		 * an agent that ignores the field loses nothing. */
		if (app->cfg.drain_to)
			ack.redirect = app->cfg.drain_to;
		if (app->sampling &&
		    srv_sampling_advise(app->sampling, b, &res, &advice))
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
	agg_ingest_note_latency(ing, (double)(fdo_now_ns() - t0) / 1e9);
}
