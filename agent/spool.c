/*
 * agent/spool.c — the bounded spool of encoded SampleBatches and the
 * sender thread that delivers them to fdod over nng REQ.
 *
 * DESIGN
 *   Threads: producers (the reader thread, at every interval and at exit)
 *   call agent_spool_put; one sender thread owns the nng socket.
 *   Queue: a FIFO of at most cap batches under s->mu; when full, the
 *   oldest is dropped and counted (the sampled process never waits).
 *   Ordering: the sender sends the oldest batch, waits for its Ack (with a
 *   timeout), and only then removes it; on a transport failure it keeps
 *   the batch and resends the SAME bytes (same seq) after a back-off, so
 *   fdod, which deduplicates (agent_id, seq), counts it once. An Ack with
 *   an error status other than BUSY means the batch is refused for good:
 *   it is dropped and counted.
 *   Shutdown: agent_spool_stop sets a deadline; the sender keeps trying
 *   until the spool is empty or the deadline passes, then exits; what is
 *   left is counted as unsent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "agent/agent.h"

struct item {
	struct item *next;
	uint64_t seq, samples;
	uint8_t *msg;
	size_t len;
};

struct agent_spool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* guarded by mu: */
	struct item *head, *tail;
	size_t n, cap;
	uint64_t bytes, max_bytes; /* encoded batches held; 0: no byte cap */
	int stopping;
	uint64_t deadline_ms; /* when stopping: give up after this */
	struct agent_spool_stats st;
	struct agent_control *control;	 /* set before the first put */
	struct agent_controls *controls; /* (host-wide: by binary) */
	uint64_t retry_max_ms;		 /* set before the first put */
	uint64_t drops_quiet;		 /* drops not yet reported */
	uint64_t drop_note_ms;		 /* last drop line */
	/* sender thread only: */
	nng_socket sock;
	int timeout_ms;
	uint64_t rng;		/* the back-off's jitter */
	uint64_t down_since_ms; /* first failure of this outage; 0: up */
	uint64_t down_note_ms;	/* last "still unreachable" line */
	uint64_t down_fails;	/* failed attempts in this outage */
	pthread_t thread;
};

/* At most one line of each kind of trouble a minute. */
#define NOTE_MS 60000u

uint64_t agent_backoff(uint64_t *cur_ms, uint64_t max_ms,
		       uint64_t retry_after_ms, uint64_t *rng)
{
	if (max_ms == 0)
		max_ms = 1;
	uint64_t cur = *cur_ms ? *cur_ms : 1;
	if (cur > max_ms)
		cur = max_ms;
	/* xorshift64: the jitter needs spread, not secrecy */
	uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	uint64_t wait = cur - cur / 2 + x % (cur / 2 + 1);
	if (retry_after_ms > wait)
		wait = retry_after_ms < max_ms ? retry_after_ms : max_ms;
	*cur_ms = cur > max_ms / 2 ? max_ms : cur * 2;
	return wait;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agent_spool_put(struct agent_spool *s, uint64_t seq, uint8_t *msg,
		     size_t len, uint64_t samples)
{
	struct item *it = malloc(sizeof *it);
	pthread_mutex_lock(&s->mu);
	if (!it) {
		s->st.batches_dropped++;
		s->st.samples_dropped += samples;
		free(msg);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	*it = (struct item){
		.seq = seq, .samples = samples, .msg = msg, .len = len};
	/* The head may be in flight: drop the oldest ones behind it. */
	while ((s->n >= s->cap ||
		(s->max_bytes && s->bytes + len > s->max_bytes)) &&
	       s->head && s->head->next) {
		struct item **pp = &s->head->next;
		struct item *old = *pp;
		*pp = old->next;
		if (s->tail == old) {
			s->tail = NULL;
			for (struct item *x = s->head; x; x = x->next)
				s->tail = x;
		}
		s->n--;
		s->bytes -= old->len;
		s->st.batches_dropped++;
		s->st.samples_dropped += old->samples;
		uint64_t now = now_ms();
		if (!s->drop_note_ms || now - s->drop_note_ms >= NOTE_MS) {
			fprintf(stderr,
				"fdo-agent: spool full (%zu batches, %llu "
				"bytes): dropped batch seq %llu (%llu "
				"samples)",
				s->cap, (unsigned long long)s->max_bytes,
				(unsigned long long)old->seq,
				(unsigned long long)old->samples);
			if (s->drops_quiet)
				fprintf(stderr,
					" and %llu more since the last "
					"such line",
					(unsigned long long)s->drops_quiet);
			fputc('\n', stderr);
			s->drop_note_ms = now;
			s->drops_quiet = 0;
		} else {
			s->drops_quiet++;
		}
		free(old->msg);
		free(old);
	}
	if (s->tail)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	s->n++;
	s->bytes += len;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* One attempt: 0 delivered, 1 retry later, -1 refused for good. On 1,
 * why says what failed (empty: fdod was busy and said so) and
 * *retry_after_ms what a BUSY Ack asked for. */
static int send_one(struct agent_spool *s, const struct item *it, char *why,
		    size_t whylen, uint64_t *retry_after_ms)
{
	why[0] = 0;
	*retry_after_ms = 0;
	int rv = nng_send(s->sock, it->msg, it->len, 0);
	if (rv) {
		snprintf(why, whylen, "cannot send batch seq %llu (%s)",
			 (unsigned long long)it->seq, nng_strerror(rv));
		return 1;
	}
	void *reply;
	size_t rlen;
	if ((rv = nng_recv(s->sock, &reply, &rlen, NNG_FLAG_ALLOC)) != 0) {
		snprintf(why, whylen, "no answer for batch seq %llu (%s)",
			 (unsigned long long)it->seq, nng_strerror(rv));
		return 1;
	}
	Fdod__Ack *ack = NULL;
	int rc = wire_ack_decode(reply, rlen, 0, &ack);
	nng_free(reply, rlen);
	if (rc) {
		snprintf(why, whylen, "malformed Ack for batch seq %llu",
			 (unsigned long long)it->seq);
		return 1;
	}
	int res = 0;
	if (s->control)
		agent_control_apply(s->control, ack->sampling,
				    (uint64_t)time(NULL));
	if (s->controls)
		agent_controls_ack(s->controls, it->msg, it->len, ack,
				   (uint64_t)time(NULL));
	pthread_mutex_lock(&s->mu);
	s->st.samples_accepted += ack->samples_accepted;
	pthread_mutex_unlock(&s->mu);
	if (ack->status == FDO_EBUSY || ack->status == FDO_ESTORE_FULL ||
	    ack->status == FDO_ENOSPACE || ack->status == FDO_EIO) {
		*retry_after_ms = ack->retry_after_ms;
		res = 1;
	} else if (ack->status) {
		fprintf(stderr, "fdo-agent: batch seq %llu refused: %s: %s\n",
			(unsigned long long)it->seq,
			fdo_errname((int)ack->status), ack->message);
		res = -1;
	}
	wire_ack_free(ack);
	return res;
}

/* A duration for a log line: 42s, 5m3s, 2h7m. */
static void fmt_dur(char *out, size_t len, uint64_t ms)
{
	uint64_t sec = ms / 1000;
	if (sec < 60)
		snprintf(out, len, "%llus", (unsigned long long)sec);
	else if (sec < 3600)
		snprintf(out, len, "%llum%llus", (unsigned long long)sec / 60,
			 (unsigned long long)sec % 60);
	else
		snprintf(out, len, "%lluh%llum", (unsigned long long)sec / 3600,
			 (unsigned long long)sec / 60 % 60);
}

/* A failed attempt while fdod is unreachable: the outage's first line,
 * then one a minute. s->mu held. */
static void note_down(struct agent_spool *s, const char *why, uint64_t now)
{
	s->down_fails++;
	if (!s->down_since_ms) {
		s->down_since_ms = now;
		s->down_note_ms = now;
		s->down_fails = 1;
		fprintf(stderr,
			"fdo-agent: %s; kept for retry (back-off up to %llus, "
			"one line a minute while it lasts)\n",
			why, (unsigned long long)(s->retry_max_ms / 1000));
		return;
	}
	if (now - s->down_note_ms < NOTE_MS)
		return;
	s->down_note_ms = now;
	char d[32];
	fmt_dur(d, sizeof d, now - s->down_since_ms);
	fprintf(stderr,
		"fdo-agent: fdod unreachable for %s (%llu attempts; last: %s): "
		"%zu batches (%llu bytes) kept, %llu dropped so far\n",
		d, (unsigned long long)s->down_fails, why, s->n,
		(unsigned long long)s->bytes,
		(unsigned long long)s->st.batches_dropped);
}

static void note_up(struct agent_spool *s, uint64_t now)
{
	if (!s->down_since_ms)
		return;
	char d[32];
	fmt_dur(d, sizeof d, now - s->down_since_ms);
	fprintf(stderr,
		"fdo-agent: fdod answers again after %s; %zu batches kept to "
		"send\n",
		d, s->n);
	s->down_since_ms = 0;
}

void agent_spool_limit_bytes(struct agent_spool *s, uint64_t bytes)
{
	pthread_mutex_lock(&s->mu);
	s->max_bytes = bytes;
	pthread_mutex_unlock(&s->mu);
}

void agent_spool_control(struct agent_spool *s, struct agent_control *c)
{
	s->control = c;
}

void agent_spool_controls(struct agent_spool *s, struct agent_controls *cs)
{
	s->controls = cs;
}

static void *sender_main(void *arg)
{
	struct agent_spool *s = arg;
	uint64_t backoff = 200;
	char why[160];
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->head || (s->stopping && now_ms() >= s->deadline_ms))
			break;
		struct item *it = s->head;
		pthread_mutex_unlock(&s->mu);
		uint64_t retry_after;
		int r = send_one(s, it, why, sizeof why, &retry_after);
		pthread_mutex_lock(&s->mu);
		if (r == 1) {
			if (why[0])
				note_down(s, why, now_ms());
			uint64_t wait = agent_backoff(&backoff, s->retry_max_ms,
						      retry_after, &s->rng);
			/* back off without holding the lock, but wake for
			 * stop */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			continue;
		}
		note_up(s, now_ms());
		backoff = 200;
		/* it is still the head: put never removes the head */
		s->head = it->next;
		if (!s->head)
			s->tail = NULL;
		s->n--;
		s->bytes -= it->len;
		if (r == 0) {
			s->st.batches_sent++;
			s->st.samples_sent += it->samples;
		} else {
			s->st.batches_dropped++;
			s->st.samples_dropped += it->samples;
		}
		free(it->msg);
		free(it);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int agent_spool_start(const char *url, size_t cap, int timeout_ms,
		      uint64_t retry_max_ms, struct agent_spool **out)
{
	struct agent_spool *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	s->cap = cap ? cap : 1;
	s->timeout_ms = timeout_ms;
	s->retry_max_ms = retry_max_ms ? retry_max_ms : 30000;
	s->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ now_ms();
	int rv = nng_req0_open(&s->sock);
	if (rv) {
		fprintf(stderr, "fdo-agent: nng: %s\n", nng_strerror(rv));
		free(s);
		return FDO_ETRANSPORT;
	}
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	/* our loop resends on timeout; nng also resends on reconnect */
	nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, timeout_ms);
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 100);
	/* nng redials on its own: no faster than the agent's own back-off
	 * once fdod has been away a while */
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT,
			  (nng_duration)(s->retry_max_ms < 1000
						 ? 1000
						 : s->retry_max_ms));
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, WIRE_ACK_MAX_BYTES);
	if ((rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "fdo-agent: cannot dial %s: %s\n", url,
			nng_strerror(rv));
		nng_close(s->sock);
		free(s);
		return FDO_ETRANSPORT;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&s->thread, NULL, sender_main, s)) {
		nng_close(s->sock);
		free(s);
		return FDO_ENOMEM;
	}
	*out = s;
	return FDO_OK;
}

void agent_spool_snapshot(struct agent_spool *s, struct agent_spool_stats *st,
			  size_t *batches, uint64_t *bytes)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	*batches = s->n;
	*bytes = s->bytes;
	pthread_mutex_unlock(&s->mu);
}

void agent_spool_stop(struct agent_spool *s, int drain_ms,
		      struct agent_spool_stats *st)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	s->deadline_ms = now_ms() + (uint64_t)(drain_ms > 0 ? drain_ms : 0);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* A send or receive in flight ends at its own timeout. */
	pthread_join(s->thread, NULL);
	if (s->drops_quiet)
		fprintf(stderr,
			"fdo-agent: spool full: %llu more batches dropped since "
			"the last such line\n",
			(unsigned long long)s->drops_quiet);
	nng_close(s->sock);
	for (struct item *it = s->head, *next; it; it = next) {
		next = it->next;
		s->st.batches_unsent++;
		s->st.samples_unsent += it->samples;
		free(it->msg);
		free(it);
	}
	*st = s->st;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
