/*
 * agent/spool.c — the bounded spool of encoded SampleBatches and the
 * sender threads that deliver them to fdod nodes over nng REQ.
 *
 * DESIGN
 *   Nodes: --url is one nng URL or a comma-separated list of at most
 *   AGENT_NODES_MAX nodes. Each stream (an agent id: AGENT_ID, or
 *   AGENT_ID/BINARY with --all) goes to one node, chosen by rendezvous
 *   (highest random weight) hashing of (agent id, node URL): adding or
 *   removing a node moves only the streams whose top node changed, and
 *   each stream's exactly-once state, fdod's (agent_id, seq) set, lives
 *   on one node. An Ack's redirect moves a stream to another listed node.
 *   Threads: producers (the reader thread, at every interval and at exit)
 *   call agent_spool_put; one sender thread per node owns that node's nng
 *   socket and its queue (a lane).
 *   Queue: one FIFO per lane, all of them together at most cap batches
 *   (and max_bytes) under s->mu; when full, the oldest batch not in flight
 *   is dropped and counted (the sampled process never waits).
 *   Ordering: a sender sends its lane's oldest batch, waits for its Ack
 *   (with a timeout), and only then removes it; on a transport failure it
 *   keeps the batch and resends the SAME bytes (same seq) to the SAME node
 *   after a back-off, so that node, which deduplicates (agent_id, seq),
 *   counts it once. An Ack with an error status other than BUSY means the
 *   batch is refused for good: it is dropped and counted.
 *   Failover (off unless agent_spool_failover): a node unreachable for
 *   that long hands its lane's batches to the next node of each stream's
 *   hash order and gets no new ones for as long again. This is where
 *   exactly-once becomes at-least-once: the batch in flight may have been
 *   stored by the lost node with its Ack lost, and the next node, which
 *   never saw its seq, stores it again.
 *   Shutdown: agent_spool_stop sets a deadline; the senders keep trying
 *   until their lanes are empty or the deadline passes, then exit; what
 *   is left is counted as unsent.
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
#include "common/common.h"

struct item {
	struct item *next;
	uint64_t seq, samples;
	uint64_t order; /* put order, over all lanes: the oldest drops first */
	char *stream;	/* the agent id; its node is chosen by it */
	uint8_t *msg;
	size_t len;
	int tried; /* sent at least once (its node may have stored it) */
};

struct agent_spool;

/* One node: its queue and its sender. */
struct lane {
	struct agent_spool *s;
	size_t idx;
	char url[AGENT_NODE_URL_MAX];
	/* guarded by s->mu: */
	struct item *head, *tail;
	size_t n;
	pthread_cond_t cv;	  /* wakes this lane's sender */
	uint64_t down_since_ms;	  /* first failure of this outage; 0: up */
	uint64_t down_note_ms;	  /* last "still unreachable" line */
	uint64_t down_fails;	  /* failed attempts in this outage */
	uint64_t failed_until_ms; /* failed over: no new batches until */
	/* sender thread only: */
	nng_socket sock;
	uint64_t rng; /* the back-off's jitter */
	pthread_t thread;
	int started;
};

/* A stream an Ack redirected: its node until the agent forgets it. */
struct redirect {
	char *stream;
	size_t lane;
};

struct agent_spool {
	pthread_mutex_t mu;
	/* guarded by mu: */
	struct lane *lanes;
	size_t nlanes;
	size_t n, cap;
	uint64_t bytes, max_bytes; /* encoded batches held; 0: no byte cap */
	uint64_t order;
	int stopping;
	uint64_t deadline_ms; /* when stopping: give up after this */
	struct agent_spool_stats st;
	struct agent_control *control;	 /* set before the first put */
	struct agent_controls *controls; /* (host-wide: by binary) */
	uint64_t retry_max_ms;		 /* set before the first put */
	uint64_t failover_ms;		 /* 0: a stream never leaves its node */
	uint64_t drops_quiet;		 /* drops not yet reported */
	uint64_t drop_note_ms;		 /* last drop line */
	uint64_t redirect_note_ms;	 /* last ignored-redirect line */
	uint64_t redirect_quiet;	 /* ignored redirects not reported */
	uint64_t moved_note_ms;		 /* last redirect line */
	uint64_t moved_quiet;		 /* redirects not yet reported */
	struct redirect *redir;
	size_t nredir;
	int timeout_ms;
};

/* At most one line of each kind of trouble a minute. */
#define NOTE_MS 60000u
/* Redirected streams remembered; past it the oldest goes back to its
 * hash's node (which redirects it again if it still drains). */
#define REDIRECTS_MAX 4096

uint64_t agent_node_score(const char *stream, const char *url)
{
	/* FNV-1a over stream, a 0 byte and url, then the splitmix64
	 * finalizer: fixed here, because changing it moves every stream
	 * (and its exactly-once state) to another node. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)stream; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	h *= 0x100000001b3ull;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return fdo_mix64(h);
}

int agent_node_pick(const char *stream, const char *const *urls, size_t n,
		    const unsigned char *skip)
{
	int best = -1;
	uint64_t top = 0;
	for (size_t i = 0; i < n; i++) {
		if (skip && skip[i])
			continue;
		uint64_t w = agent_node_score(stream, urls[i]);
		/* ties (never seen in practice) go to the first listed */
		if (best < 0 || w > top) {
			best = (int)i;
			top = w;
		}
	}
	return best;
}

int agent_nodes_parse(const char *list, char (*urls)[AGENT_NODE_URL_MAX],
		      size_t *n, char *err, size_t errlen)
{
	*n = 0;
	const char *p = list;
	for (;;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!len) {
			snprintf(err, errlen,
				 "--url: an empty node in the list '%.200s'",
				 list);
			return FDO_EINVAL;
		}
		if (len >= AGENT_NODE_URL_MAX) {
			snprintf(err, errlen,
				 "--url: node '%.40s...' is longer than %d "
				 "bytes",
				 p, AGENT_NODE_URL_MAX - 1);
			return FDO_EINVAL;
		}
		if (*n == AGENT_NODES_MAX) {
			snprintf(err, errlen,
				 "--url: more than %d nodes in the list",
				 AGENT_NODES_MAX);
			return FDO_EINVAL;
		}
		memcpy(urls[*n], p, len);
		urls[*n][len] = 0;
		if (!strstr(urls[*n], "://")) {
			snprintf(err, errlen,
				 "--url: node '%s' is not an nng URL "
				 "(tcp://HOST:PORT, ipc://PATH, tls+tcp://...)",
				 urls[*n]);
			return FDO_EINVAL;
		}
		for (size_t i = 0; i < *n; i++)
			if (!strcmp(urls[i], urls[*n])) {
				snprintf(err, errlen,
					 "--url: node '%s' is listed twice",
					 urls[*n]);
				return FDO_EINVAL;
			}
		(*n)++;
		if (!c)
			return FDO_OK;
		p = c + 1;
	}
}

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

/* Whether lane i takes no new batches now (failed over). s->mu held. */
static int lane_failed(const struct agent_spool *s, size_t i, uint64_t now)
{
	return s->lanes[i].failed_until_ms && now < s->lanes[i].failed_until_ms;
}

static int redirect_find(const struct agent_spool *s, const char *stream)
{
	for (size_t i = 0; i < s->nredir; i++)
		if (!strcmp(s->redir[i].stream, stream))
			return (int)i;
	return -1;
}

/* The lane of stream: its redirect, else the top of its hash order
 * among the lanes not failed over (all failed: the top of all). s->mu
 * held. */
static struct lane *route(struct agent_spool *s, const char *stream)
{
	uint64_t now = now_ms();
	int r = redirect_find(s, stream);
	if (r >= 0 && !lane_failed(s, s->redir[r].lane, now))
		return &s->lanes[s->redir[r].lane];
	const char *urls[AGENT_NODES_MAX];
	unsigned char skip[AGENT_NODES_MAX];
	for (size_t i = 0; i < s->nlanes; i++) {
		urls[i] = s->lanes[i].url;
		skip[i] = (unsigned char)lane_failed(s, i, now);
	}
	int k = agent_node_pick(stream, urls, s->nlanes, skip);
	if (k < 0)
		k = agent_node_pick(stream, urls, s->nlanes, NULL);
	return &s->lanes[k];
}

static void lane_append(struct lane *l, struct item *it)
{
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	l->n++;
	pthread_cond_signal(&l->cv);
}

/* A kind of line printed at most once a minute: whether it is due now
 * (else it is counted in *quiet). */
static int note_due(uint64_t *note_ms, uint64_t *quiet)
{
	uint64_t now = now_ms();
	if (*note_ms && now - *note_ms < NOTE_MS) {
		(*quiet)++;
		return 0;
	}
	*note_ms = now;
	return 1;
}

/* Ends a line note_due let through: how many were left out since. */
static void note_end(uint64_t *quiet)
{
	if (*quiet)
		fprintf(stderr, " and %llu more since the last such line",
			(unsigned long long)*quiet);
	fputc('\n', stderr);
	*quiet = 0;
}

/* The oldest batch not in flight (a lane's head may be), of all lanes,
 * leaves; false when there is none. s->mu held. */
static int drop_oldest(struct agent_spool *s)
{
	struct lane *from = NULL;
	for (size_t i = 0; i < s->nlanes; i++) {
		struct lane *l = &s->lanes[i];
		if (l->head && l->head->next &&
		    (!from || l->head->next->order < from->head->next->order))
			from = l;
	}
	if (!from)
		return 0;
	struct item *old = from->head->next;
	from->head->next = old->next;
	if (from->tail == old)
		from->tail = from->head;
	from->n--;
	s->n--;
	s->bytes -= old->len;
	s->st.batches_dropped++;
	s->st.samples_dropped += old->samples;
	if (note_due(&s->drop_note_ms, &s->drops_quiet)) {
		fprintf(stderr,
			"fdo-agent: spool full (%zu batches, %llu "
			"bytes): dropped batch seq %llu (%llu "
			"samples)",
			s->cap, (unsigned long long)s->max_bytes,
			(unsigned long long)old->seq,
			(unsigned long long)old->samples);
		note_end(&s->drops_quiet);
	}
	free(old->stream);
	free(old->msg);
	free(old);
	return 1;
}

void agent_spool_put_stream(struct agent_spool *s, const char *stream,
			    uint64_t seq, uint8_t *msg, size_t len,
			    uint64_t samples)
{
	struct item *it = malloc(sizeof *it);
	char *st = strdup(stream ? stream : "");
	pthread_mutex_lock(&s->mu);
	if (!it || !st) {
		s->st.batches_dropped++;
		s->st.samples_dropped += samples;
		free(msg);
		free(it);
		free(st);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	*it = (struct item){.seq = seq,
			    .samples = samples,
			    .order = ++s->order,
			    .stream = st,
			    .msg = msg,
			    .len = len};
	/* The heads may be in flight: drop the oldest ones behind them. */
	while ((s->n >= s->cap ||
		(s->max_bytes && s->bytes + len > s->max_bytes)) &&
	       drop_oldest(s))
		;
	lane_append(route(s, st), it);
	s->n++;
	s->bytes += len;
	pthread_mutex_unlock(&s->mu);
}

void agent_spool_put(struct agent_spool *s, uint64_t seq, uint8_t *msg,
		     size_t len, uint64_t samples)
{
	agent_spool_put_stream(s, NULL, seq, msg, len, samples);
}

/* One attempt: 0 delivered, 1 retry later, -1 refused for good. On 1,
 * why says what failed (empty: fdod was busy and said so) and
 * *retry_after_ms what a BUSY Ack asked for. redirect receives the Ack's
 * redirect (empty: none). */
static int send_one(struct lane *l, const struct item *it, char *why,
		    size_t whylen, uint64_t *retry_after_ms,
		    char redirect[AGENT_NODE_URL_MAX])
{
	struct agent_spool *s = l->s;
	why[0] = 0;
	redirect[0] = 0;
	*retry_after_ms = 0;
	int rv = nng_send(l->sock, it->msg, it->len, 0);
	if (rv) {
		snprintf(why, whylen, "cannot send batch seq %llu (%s)",
			 (unsigned long long)it->seq, nng_strerror(rv));
		return 1;
	}
	void *reply;
	size_t rlen;
	if ((rv = nng_recv(l->sock, &reply, &rlen, NNG_FLAG_ALLOC)) != 0) {
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
	if (ack->redirect && strlen(ack->redirect) < AGENT_NODE_URL_MAX)
		strcpy(redirect, ack->redirect);
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

/* "fdod", or with several nodes "fdod URL", for log lines. */
static const char *node_name(const struct lane *l, char *buf, size_t len)
{
	if (l->s->nlanes == 1)
		return "fdod";
	snprintf(buf, len, "fdod %s", l->url);
	return buf;
}

/* A failed attempt while fdod is unreachable: the outage's first line,
 * then one a minute. s->mu held. */
static void note_down(struct lane *l, const char *why, uint64_t now)
{
	struct agent_spool *s = l->s;
	char nb[AGENT_NODE_URL_MAX + 8];
	l->down_fails++;
	if (!l->down_since_ms) {
		l->down_since_ms = now;
		l->down_note_ms = now;
		l->down_fails = 1;
		fprintf(stderr,
			"fdo-agent: %s%s%s; kept for retry (back-off up to "
			"%llus, one line a minute while it lasts)\n",
			s->nlanes > 1 ? l->url : "", s->nlanes > 1 ? ": " : "",
			why, (unsigned long long)(s->retry_max_ms / 1000));
		return;
	}
	if (now - l->down_note_ms < NOTE_MS)
		return;
	l->down_note_ms = now;
	char d[32];
	fmt_dur(d, sizeof d, now - l->down_since_ms);
	fprintf(stderr,
		"fdo-agent: %s unreachable for %s (%llu attempts; last: %s): "
		"%zu batches (%llu bytes) kept, %llu dropped so far\n",
		node_name(l, nb, sizeof nb), d,
		(unsigned long long)l->down_fails, why, s->n,
		(unsigned long long)s->bytes,
		(unsigned long long)s->st.batches_dropped);
}

static void note_up(struct lane *l, uint64_t now)
{
	if (!l->down_since_ms)
		return;
	char d[32], nb[AGENT_NODE_URL_MAX + 8];
	fmt_dur(d, sizeof d, now - l->down_since_ms);
	fprintf(stderr,
		"fdo-agent: %s answers again after %s; %zu batches kept to "
		"send\n",
		node_name(l, nb, sizeof nb), d, l->n);
	l->down_since_ms = 0;
}

/* l's node has been unreachable for the failover bound: no new batches
 * for as long again, and its batches go to the next node of their
 * streams' hash order (at-least-once: the one tried may have been stored
 * there). s->mu held; l's sender, between attempts. */
static void fail_over(struct lane *l, uint64_t now)
{
	struct agent_spool *s = l->s;
	char d[32];
	fmt_dur(d, sizeof d, now - l->down_since_ms);
	l->failed_until_ms = now + s->failover_ms;
	l->down_since_ms = 0;
	struct item *it = l->head;
	size_t moved = 0, tried = 0;
	l->head = l->tail = NULL;
	l->n = 0;
	while (it) {
		struct item *next = it->next;
		struct lane *to = route(s, it->stream);
		if (to != l) {
			moved++;
			tried += it->tried;
			s->st.batches_failed_over++;
		}
		it->tried = 0; /* a new node: it has not seen the seq */
		lane_append(to, it);
		it = next;
	}
	fprintf(stderr,
		"fdo-agent: fdod %s unreachable for %s (--failover): %zu "
		"batches go to the next nodes (%zu of them tried there, which "
		"may count them twice); no new batches to it for %s\n",
		l->url, d, moved, tried, d);
}

/* An Ack of l's node redirected stream to url: its later batches, and
 * those l still holds, go there. s->mu held; l's sender. */
static void redirect(struct lane *l, const char *stream, const char *url)
{
	struct agent_spool *s = l->s;
	size_t to = 0;
	while (to < s->nlanes && strcmp(s->lanes[to].url, url))
		to++;
	if (to == s->nlanes) {
		if (note_due(&s->redirect_note_ms, &s->redirect_quiet)) {
			fprintf(stderr,
				"fdo-agent: fdod %s redirects '%s' to %s, "
				"which is not in --url: ignored (add it to "
				"the node list)",
				l->url, stream, url);
			note_end(&s->redirect_quiet);
		}
		return;
	}
	if (to == l->idx)
		return;
	int r = redirect_find(s, stream);
	if (r < 0) {
		char *copy = strdup(stream);
		if (!copy)
			return;
		if (s->nredir == REDIRECTS_MAX) {
			free(s->redir[0].stream);
			memmove(s->redir, s->redir + 1,
				(REDIRECTS_MAX - 1) * sizeof *s->redir);
			s->nredir--;
		}
		r = (int)s->nredir++;
		s->redir[r].stream = copy;
	}
	s->redir[r].lane = to;
	s->st.redirects++;
	/* a drained node redirects each of its streams: one line a minute */
	if (note_due(&s->moved_note_ms, &s->moved_quiet)) {
		fprintf(stderr, "fdo-agent: fdod %s redirects '%s' to %s",
			l->url, stream, url);
		note_end(&s->moved_quiet);
	}
	/* Called between two sends of l's own sender: nothing of l is in
	 * flight, so the head may follow too. */
	struct item **pp = &l->head;
	while (*pp) {
		struct item *it = *pp;
		if (strcmp(it->stream, stream)) {
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		l->n--;
		lane_append(&s->lanes[to], it);
	}
	l->tail = NULL;
	for (struct item *x = l->head; x; x = x->next)
		l->tail = x;
}

void agent_spool_limit_bytes(struct agent_spool *s, uint64_t bytes)
{
	pthread_mutex_lock(&s->mu);
	s->max_bytes = bytes;
	pthread_mutex_unlock(&s->mu);
}

void agent_spool_failover(struct agent_spool *s, uint64_t ms)
{
	pthread_mutex_lock(&s->mu);
	s->failover_ms = ms;
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
	struct lane *l = arg;
	struct agent_spool *s = l->s;
	uint64_t backoff = 200;
	char why[160], to[AGENT_NODE_URL_MAX];
	pthread_mutex_lock(&s->mu);
	for (;;) {
		/* Stopping, an empty lane waits for the others to empty:
		 * a failover may still hand it their batches. */
		while (!l->head &&
		       !(s->stopping &&
			 (s->n == 0 || now_ms() >= s->deadline_ms))) {
			if (!s->stopping) {
				pthread_cond_wait(&l->cv, &s->mu);
				continue;
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&l->cv, &s->mu, &ts);
		}
		if (!l->head || (s->stopping && now_ms() >= s->deadline_ms))
			break;
		struct item *it = l->head;
		it->tried = 1;
		pthread_mutex_unlock(&s->mu);
		uint64_t retry_after;
		int r = send_one(l, it, why, sizeof why, &retry_after, to);
		pthread_mutex_lock(&s->mu);
		if (r == 1) {
			uint64_t now = now_ms();
			if (why[0])
				note_down(l, why, now);
			if (why[0] && s->failover_ms && s->nlanes > 1 &&
			    now - l->down_since_ms >= s->failover_ms) {
				fail_over(l, now);
				backoff = 200;
				continue;
			}
			uint64_t wait = agent_backoff(&backoff, s->retry_max_ms,
						      retry_after, &l->rng);
			/* back off without holding the lock, but wake for
			 * stop */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait / 1000);
			ts.tv_nsec += (long)(wait % 1000) * 1000000;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&l->cv, &s->mu, &ts);
			continue;
		}
		note_up(l, now_ms());
		backoff = 200;
		/* it is still the head: only this thread removes heads */
		l->head = it->next;
		if (!l->head)
			l->tail = NULL;
		l->n--;
		s->n--;
		s->bytes -= it->len;
		if (r == 0) {
			s->st.batches_sent++;
			s->st.samples_sent += it->samples;
		} else {
			s->st.batches_dropped++;
			s->st.samples_dropped += it->samples;
		}
		if (to[0])
			redirect(l, it->stream, to);
		free(it->stream);
		free(it->msg);
		free(it);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int lane_open(struct lane *l)
{
	struct agent_spool *s = l->s;
	int rv = nng_req0_open(&l->sock);
	if (rv) {
		fprintf(stderr, "fdo-agent: nng: %s\n", nng_strerror(rv));
		return FDO_ETRANSPORT;
	}
	int timeout_ms = s->timeout_ms;
	nng_socket_set_ms(l->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(l->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	/* our loop resends on timeout; nng also resends on reconnect */
	nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME, timeout_ms);
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 100);
	/* nng redials on its own: no faster than the agent's own back-off
	 * once fdod has been away a while */
	nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT,
			  (nng_duration)(s->retry_max_ms < 1000
						 ? 1000
						 : s->retry_max_ms));
	nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, WIRE_ACK_MAX_BYTES);
	if ((rv = nng_dial(l->sock, l->url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "fdo-agent: cannot dial %s: %s\n", l->url,
			nng_strerror(rv));
		nng_close(l->sock);
		return FDO_ETRANSPORT;
	}
	return FDO_OK;
}

/* Stops and joins the senders started, closes the sockets opened; what
 * the lanes still hold is counted unsent and freed. */
static void spool_free(struct agent_spool *s, size_t opened)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	for (size_t i = 0; i < s->nlanes; i++)
		pthread_cond_broadcast(&s->lanes[i].cv);
	pthread_mutex_unlock(&s->mu);
	/* A send or receive in flight ends at its own timeout. */
	for (size_t i = 0; i < s->nlanes; i++)
		if (s->lanes[i].started)
			pthread_join(s->lanes[i].thread, NULL);
	for (size_t i = 0; i < opened; i++)
		nng_close(s->lanes[i].sock);
	for (size_t i = 0; i < s->nlanes; i++) {
		for (struct item *it = s->lanes[i].head, *next; it; it = next) {
			next = it->next;
			s->st.batches_unsent++;
			s->st.samples_unsent += it->samples;
			free(it->stream);
			free(it->msg);
			free(it);
		}
		pthread_cond_destroy(&s->lanes[i].cv);
	}
	for (size_t i = 0; i < s->nredir; i++)
		free(s->redir[i].stream);
	free(s->redir);
	free(s->lanes);
	pthread_mutex_destroy(&s->mu);
}

int agent_spool_start(const char *url, size_t cap, int timeout_ms,
		      uint64_t retry_max_ms, struct agent_spool **out)
{
	char err[512];
	size_t n;
	char(*urls)[AGENT_NODE_URL_MAX] =
		malloc(AGENT_NODES_MAX * sizeof *urls);
	struct agent_spool *s = calloc(1, sizeof *s);
	if (!s || !urls) {
		free(s);
		free(urls);
		return FDO_ENOMEM;
	}
	int rc = agent_nodes_parse(url, urls, &n, err, sizeof err);
	if (rc) {
		fprintf(stderr, "fdo-agent: %s\n", err);
		free(urls);
		free(s);
		return FDO_ETRANSPORT;
	}
	s->cap = cap ? cap : 1;
	s->timeout_ms = timeout_ms;
	s->retry_max_ms = retry_max_ms ? retry_max_ms : 30000;
	s->lanes = calloc(n, sizeof *s->lanes);
	s->redir = malloc(REDIRECTS_MAX * sizeof *s->redir);
	if (!s->lanes || !s->redir) {
		free(urls);
		free(s->lanes);
		free(s->redir);
		free(s);
		return FDO_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->nlanes = n;
	for (size_t i = 0; i < n; i++) {
		struct lane *l = &s->lanes[i];
		l->s = s;
		l->idx = i;
		strcpy(l->url, urls[i]);
		l->rng = ((uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^
			  now_ms()) +
			 i;
		pthread_cond_init(&l->cv, NULL);
	}
	free(urls);
	size_t opened = 0;
	rc = FDO_OK;
	for (; opened < n && !rc; opened++)
		if ((rc = lane_open(&s->lanes[opened])) != 0)
			break;
	for (size_t i = 0; i < n && !rc; i++) {
		if (pthread_create(&s->lanes[i].thread, NULL, sender_main,
				   &s->lanes[i]))
			rc = FDO_ENOMEM;
		else
			s->lanes[i].started = 1;
	}
	if (rc) {
		spool_free(s, opened);
		free(s);
		return rc;
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
	s->deadline_ms = now_ms() + (uint64_t)(drain_ms > 0 ? drain_ms : 0);
	pthread_mutex_unlock(&s->mu);
	spool_free(s, s->nlanes);
	if (s->drops_quiet)
		fprintf(stderr,
			"fdo-agent: spool full: %llu more batches dropped since "
			"the last such line\n",
			(unsigned long long)s->drops_quiet);
	*st = s->st;
	free(s);
}
