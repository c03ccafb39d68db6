/*
 * agent/control.c — what the server's sampling advice (Ack.sampling,
 * schemas/fdod.proto SamplingAdvice) makes the agent do: its rate, its
 * pauses and its heartbeats. docs/sampling.md.
 *
 * The agent's own settings are upper bounds: the rate in use is
 * min(advice, --freq), so a compromised or misconfigured server can lower
 * what an agent spends but never raise it past what its host allowed.
 *
 * DESIGN
 *   The spool's sender thread applies each Ack's advice; the reader (or a
 *   simulated agent) polls what to do. One mutex over the state; both
 *   calls are a few assignments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "common/buf.h"

void agent_control_init(struct agent_control *c, const char *who,
			uint32_t own_freq)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	snprintf(c->who, sizeof c->who, "%s", who ? who : "fdo-agent");
	c->own_freq = own_freq ? own_freq : 1;
	c->freq = c->own_freq;
	snprintf(c->mode, sizeof c->mode, "own");
}

void agent_control_fini(struct agent_control *c)
{
	pthread_mutex_destroy(&c->mu);
}

void agent_control_apply(struct agent_control *c, const Fdod__SamplingAdvice *a,
			 uint64_t now)
{
	pthread_mutex_lock(&c->mu);
	c->acks++;
	if (!a) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	uint32_t freq = c->freq;
	int paused = a->paused_until != 0;
	if (!paused && a->freq_hz)
		freq = a->freq_hz < c->own_freq ? a->freq_hz : c->own_freq;
	else if (!paused)
		freq = c->own_freq;
	c->interval_s = !a->interval_s	       ? 60
			: a->interval_s > 3600 ? 3600
					       : a->interval_s;
	/* A heartbeat at most an hour away: a server that said "until
	 * next year" still hears from its paused agent. */
	uint64_t until = a->paused_until > now ? a->paused_until
					       : now + c->interval_s;
	if (until > now + 3600)
		until = now + 3600;
	c->heartbeat_at = paused ? until : 0;
	c->cpu_permille = a->cpu_permille;
	int changed = freq != c->freq || paused != c->paused ||
		      strncmp(c->mode, a->mode ? a->mode : "", sizeof c->mode);
	if (changed && !c->quiet && paused)
		fprintf(stderr, "%s: server advice (policy %llu, %s): paused\n",
			c->who, (unsigned long long)a->generation,
			a->mode ? a->mode : "?");
	else if (changed && !c->quiet)
		fprintf(stderr,
			"%s: server advice (policy %llu, %s): sampling at %u "
			"Hz%s\n",
			c->who, (unsigned long long)a->generation,
			a->mode ? a->mode : "?", freq,
			a->freq_hz > c->own_freq ? " (--freq caps the advice)"
						 : "");
	c->freq = freq;
	c->paused = paused;
	snprintf(c->mode, sizeof c->mode, "%s", a->mode ? a->mode : "");
	c->changed |= changed;
	pthread_mutex_unlock(&c->mu);
}

int agent_control_poll(struct agent_control *c, uint64_t now, uint32_t *freq,
		       int *heartbeat)
{
	pthread_mutex_lock(&c->mu);
	*freq = c->paused ? 0 : c->freq;
	*heartbeat = 0;
	if (c->paused && now >= c->heartbeat_at) {
		*heartbeat = 1;
		c->heartbeat_at = now + (c->interval_s ? c->interval_s : 60);
	}
	int changed = c->changed;
	c->changed = 0;
	pthread_mutex_unlock(&c->mu);
	return changed;
}

uint32_t agent_control_cpu(struct agent_control *c)
{
	pthread_mutex_lock(&c->mu);
	uint32_t m = c->cpu_permille;
	pthread_mutex_unlock(&c->mu);
	return m;
}

uint64_t agent_control_acks(struct agent_control *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->acks;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ---------------------------------------------------- one per binary -- */

void agent_controls_init(struct agent_controls *cs, uint32_t own_freq)
{
	memset(cs, 0, sizeof *cs);
	pthread_mutex_init(&cs->mu, NULL);
	cs->own_freq = own_freq ? own_freq : 1;
}

void agent_controls_fini(struct agent_controls *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		agent_control_fini(&cs->c[i]->ctl);
		free(cs->c[i]);
	}
	free(cs->c);
	pthread_mutex_destroy(&cs->mu);
}

/* The index of binary's control, or cs->n. Under cs->mu. */
static size_t controls_find(const struct agent_controls *cs, const char *binary,
			    size_t len)
{
	size_t i = 0;
	while (i < cs->n && !(strlen(cs->c[i]->name) == len &&
			      !memcmp(cs->c[i]->name, binary, len)))
		i++;
	return i;
}

struct agent_control *agent_controls_get(struct agent_controls *cs,
					 const char *binary, size_t len)
{
	pthread_mutex_lock(&cs->mu);
	struct agent_control *found = NULL;
	size_t i = controls_find(cs, binary, len);
	if (i < cs->n)
		found = &cs->c[i]->ctl;
	if (!found && cs->n < AGENT_CONTROLS_MAX && len < AGENT_NAME_MAX) {
		struct agent_named_control *nc = calloc(1, sizeof *nc);
		if (nc && !fdo_grow(cs->c, cs->cap, cs->n + 1)) {
			memcpy(nc->name, binary, len);
			nc->name[len] = 0;
			char who[AGENT_NAME_MAX + 16];
			snprintf(who, sizeof who, "fdo-agent: %s", nc->name);
			agent_control_init(&nc->ctl, who, cs->own_freq);
			cs->c[cs->n++] = nc;
			found = &nc->ctl;
		} else {
			free(nc);
		}
	}
	pthread_mutex_unlock(&cs->mu);
	return found;
}

void agent_controls_forget(struct agent_controls *cs, const char *binary)
{
	pthread_mutex_lock(&cs->mu);
	size_t i = controls_find(cs, binary, strlen(binary));
	if (i < cs->n) {
		struct agent_named_control *nc = cs->c[i];
		cs->c[i] = cs->c[--cs->n];
		agent_control_fini(&nc->ctl);
		free(nc);
	}
	pthread_mutex_unlock(&cs->mu);
}

void agent_controls_ack(struct agent_controls *cs, const uint8_t *msg,
			size_t len, const Fdod__Ack *ack, uint64_t now)
{
	struct wire_batch_head h;
	if (wire_batch_peek(msg, len, NULL, &h) || !h.binary.len)
		return;
	/* Under cs->mu, since the reader may forget the control; a binary
	 * forgotten since its batch was sent takes no advice (it starts
	 * over with a hello when it is sampled again). */
	pthread_mutex_lock(&cs->mu);
	size_t i = controls_find(cs, (const char *)h.binary.p, h.binary.len);
	if (i < cs->n)
		agent_control_apply(&cs->c[i]->ctl, ack->sampling, now);
	pthread_mutex_unlock(&cs->mu);
}

double agent_controls_keep(void *arg, const char *binary)
{
	struct agent_controls *cs = arg;
	struct agent_control *c =
		agent_controls_get(cs, binary, strlen(binary));
	if (!c)
		return 1;
	pthread_mutex_lock(&cs->mu);
	double rate = cs->rate ? cs->rate : cs->own_freq;
	pthread_mutex_unlock(&cs->mu);
	pthread_mutex_lock(&c->mu);
	double k = c->paused ? 0 : (double)c->freq / rate;
	pthread_mutex_unlock(&c->mu);
	return k < 1 ? k : 1;
}

void agent_controls_set_rate(struct agent_controls *cs, uint32_t rate)
{
	pthread_mutex_lock(&cs->mu);
	cs->rate = rate;
	pthread_mutex_unlock(&cs->mu);
}

uint32_t agent_controls_cpu(struct agent_controls *cs)
{
	uint32_t m = 0;
	pthread_mutex_lock(&cs->mu);
	for (size_t i = 0; i < cs->n; i++) {
		struct agent_control *c = &cs->c[i]->ctl;
		pthread_mutex_lock(&c->mu);
		if (c->cpu_permille && (!m || c->cpu_permille < m))
			m = c->cpu_permille;
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&cs->mu);
	return m;
}
