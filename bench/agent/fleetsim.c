/*
 * bench/agent/fleetsim.c — a fleet of simulated agents in one process,
 * for the sampling-control test (tests/agent/test_sampling.py) and by
 * hand: each agent sends fdod a batch every --batch-ms through the agent's
 * own sender (agent/spool.c) and obeys the advice of every Ack through the
 * agent's own control (agent/control.c), sampling a workload that keeps
 * --load CPUs busy. The number of agents follows --schedule, linear
 * between points. It prints, per --window seconds, the agents and the
 * samples they sent, and at the end what fdod acknowledged.
 *
 *   fleetsim --url URL --binary NAME --seconds S --schedule T:N,T:N,...
 *            [--window S] [--batch-ms MS] [--freq HZ] [--load CPUS]
 *            [--token T]
 *
 * Output lines: "window I agents A..B sent N freq F..G paused P" and
 * "total sent N accepted M".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "schemas/schemas.h"

#define MAX_AGENTS 512
#define MAX_POINTS 32

struct sim_agent {
	struct agent_control ctl;
	struct agent_spool *spool;
	char id[32];
	uint64_t seq;
	double carry; /* fractional samples not yet sent */
	int started;
	double born; /* when it started, s into the run */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int agents_at(const double *t, const double *n, int np, double x)
{
	if (x <= t[0])
		return (int)n[0];
	for (int i = 1; i < np; i++)
		if (x <= t[i])
			return (int)lround(n[i - 1] +
					   (n[i] - n[i - 1]) * (x - t[i - 1]) /
						   (t[i] - t[i - 1]));
	return (int)n[np - 1];
}

/* One batch of agent a: samples over one stack pair, or none (a
 * heartbeat). */
static int send_batch(struct sim_agent *a, const char *binary,
		      const char *token, uint64_t samples, uint32_t freq)
{
	static uint8_t bid[20] = {0xf1, 0xee, 0x75, 0x13};
	Fdod__Mapping m = FDOD__MAPPING__INIT, *mp = &m;
	m.index = 0;
	m.build_id.data = bid;
	m.build_id.len = sizeof bid;
	m.start = 0x400000;
	m.limit = 0x500000;
	m.path = "/usr/bin/sim";
	uint64_t addrs[2][2] = {{0x401000, 0x402005}, {0x401100, 0x402005}};
	Fdod__Stack st[2] = {FDOD__STACK__INIT, FDOD__STACK__INIT};
	Fdod__Stack *sp[2] = {&st[0], &st[1]};
	st[0].count = samples - samples / 4;
	st[1].count = samples / 4;
	for (int i = 0; i < 2; i++) {
		st[i].addrs = addrs[i];
		st[i].n_addrs = 2;
	}
	Fdod__SampleBatch b = FDOD__SAMPLE_BATCH__INIT;
	b.schema_version = WIRE_SCHEMA_VERSION;
	b.agent_id = a->id;
	b.seq = ++a->seq;
	b.host = a->id;
	b.binary = (char *)binary;
	b.event = "cpu-clock";
	b.period = 1000000000u / (freq ? freq : 1);
	b.weight = 1;
	uint64_t t = (uint64_t)time(NULL);
	b.time_start = t - 1;
	b.time_end = t;
	b.auth_token = (char *)token;
	b.n_mappings = 1;
	b.mappings = &mp;
	b.stacks = sp;
	b.n_stacks = samples ? (st[1].count ? 2 : 1) : 0;
	uint8_t *msg;
	size_t len;
	char err[256];
	int rc = wire_batch_validate(&b, NULL, err, sizeof err);
	if (!rc)
		rc = wire_batch_encode(&b, NULL, &msg, &len);
	if (rc) {
		fprintf(stderr, "fleetsim: batch: %s\n", err);
		return rc;
	}
	agent_spool_put(a->spool, b.seq, msg, len, samples);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fleetsim --url URL --binary NAME --seconds S "
		"--schedule T:N,...\n"
		"                [--window S] [--batch-ms MS] [--freq HZ] "
		"[--load CPUS] [--token T]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *binary = "sim", *schedule = NULL, *token = "";
	double seconds = 0, window = 10, load = 1.0;
	int batch_ms = 500;
	unsigned freq = 997;
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (!strcmp(k, "--url"))
			url = v;
		else if (!strcmp(k, "--binary"))
			binary = v;
		else if (!strcmp(k, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(k, "--schedule"))
			schedule = v;
		else if (!strcmp(k, "--window"))
			window = atof(v);
		else if (!strcmp(k, "--batch-ms"))
			batch_ms = atoi(v);
		else if (!strcmp(k, "--freq"))
			freq = (unsigned)atoi(v);
		else if (!strcmp(k, "--load"))
			load = atof(v);
		else if (!strcmp(k, "--token"))
			token = v;
		else
			usage();
		i++;
	}
	double pt[MAX_POINTS], pn[MAX_POINTS];
	int np = 0;
	for (const char *p = schedule; p && *p && np < MAX_POINTS;) {
		char *end;
		pt[np] = strtod(p, &end);
		if (*end != ':')
			usage();
		pn[np] = strtod(end + 1, &end);
		if (pn[np] < 0 || pn[np] > MAX_AGENTS)
			usage();
		np++;
		p = *end == ',' ? end + 1 : end;
	}
	if (!url || !(seconds > 0) || !np || !(window > 0) || batch_ms < 10 ||
	    !freq || !(load > 0))
		usage();

	static struct sim_agent ag[MAX_AGENTS];
	double t0 = now_s(), next = t0;
	int win = -1, amin = MAX_AGENTS, amax = 0, paused = 0;
	unsigned fmin = UINT32_MAX, fmax = 0;
	uint64_t sent = 0, total = 0;
	for (;;) {
		double x = now_s() - t0;
		if (x >= seconds)
			break;
		int w = (int)(x / window);
		if (w != win) {
			if (win >= 0)
				printf("window %d agents %d..%d sent %llu "
				       "freq %u..%u paused %d\n",
				       win, amin, amax,
				       (unsigned long long)sent, fmin, fmax,
				       paused);
			fflush(stdout);
			win = w;
			sent = 0;
			amin = MAX_AGENTS;
			amax = 0;
			fmin = UINT32_MAX;
			fmax = 0;
			paused = 0;
		}
		int n = agents_at(pt, pn, np, x);
		amin = n < amin ? n : amin;
		amax = n > amax ? n : amax;
		for (int i = 0; i < n; i++) {
			struct sim_agent *a = &ag[i];
			if (!a->started) {
				snprintf(a->id, sizeof a->id, "sim-%03d", i);
				agent_control_init(&a->ctl, a->id, freq);
				a->ctl.quiet = 1;
				if (agent_spool_start(url, 64, 10000, 0,
						      &a->spool)) {
					fprintf(stderr,
						"fleetsim: cannot connect\n");
					return 1;
				}
				agent_spool_control(a->spool, &a->ctl);
				a->started = 1;
				a->born = x;
				/* Ask first, as fdo-agent does. */
				send_batch(a, binary, token, 0, 1);
			}
			if (!agent_control_acks(&a->ctl) && x - a->born < 2.0)
				continue; /* no advice yet */
			uint32_t f;
			int hb;
			agent_control_poll(&a->ctl, (uint64_t)time(NULL), &f,
					   &hb);
			if (!f) {
				paused++;
				a->carry = 0;
				if (hb)
					send_batch(a, binary, token, 0, 1);
				continue;
			}
			fmin = f < fmin ? f : fmin;
			fmax = f > fmax ? f : fmax;
			a->carry += f * load * batch_ms / 1000.0;
			uint64_t k = (uint64_t)a->carry;
			a->carry -= (double)k;
			if (k && !send_batch(a, binary, token, k, f)) {
				sent += k;
				total += k;
			}
		}
		next += batch_ms / 1000.0;
		double d = next - now_s();
		if (d > 0)
			usleep((useconds_t)(d * 1e6));
	}
	uint64_t accepted = 0;
	for (int i = 0; i < MAX_AGENTS; i++) {
		if (!ag[i].started)
			continue;
		struct agent_spool_stats st;
		agent_spool_stop(ag[i].spool, 10000, &st);
		accepted += st.samples_accepted;
		agent_control_fini(&ag[i].ctl);
	}
	printf("total sent %llu accepted %llu\n", (unsigned long long)total,
	       (unsigned long long)accepted);
	return 0;
}
