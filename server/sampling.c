/*
 * server/sampling.c — sampling control (issue 23): the policy file, one
 * controller per binary, and the advice in every Ack. docs/sampling.md
 * has the rules for users and the measured figures.
 *
 * Workload: one call per agent batch (every few seconds per agent, from
 * the ingest submitter threads), a handful of binaries to thousands; a
 * policy reload now and then (SIGHUP); operators' overrides rarely.
 *
 * DESIGN
 *   The controller of a binary aims at the rule's rate r = samples /
 *   window (accepted samples per second, fleet-wide). It does not chase
 *   sample counts (which depend on the rate the agents used): it measures
 *   what the fleet runs, C = CPU-seconds sampled per second, and advises
 *   freq = r / C at every batch, clamped to the rule's [min_freq,
 *   max_freq]. C is the sum over the binary's agents of each one's latest
 *   rate: count x period of its batches (cpu-clock: CPU nanoseconds,
 *   whatever rate it used) over the time between their arrivals (the
 *   last few batches, older ones weighing less, so that arrival jitter
 *   averages out); an agent not heard from for one and a half of its own
 *   gaps while others were stops counting. Per agent, not per interval:
 *   agents send every few seconds, and a count of whole batches per
 *   interval swings by one batch in several (+23% over the target with
 *   16 agents sending every 0.5 s and a 1 s interval; docs/sampling.md
 *   has the figures). So when agents come and go or load shifts, the
 *   advice is right again after one batch of each; every agent of the
 *   binary gets the same rate, and each batch carries the period it used,
 *   so weights stay unbiased (count x period is the event total). Events
 *   other than cpu-clock/task-clock get max_freq (their period is not
 *   time). The interval (--sampling-interval) is how long an advice holds
 *   (a paused agent's heartbeat) and the span of the figures GET
 *   /v1/sampling shows.
 *   Locking: one mutex over the policy, the states and the overrides; a
 *   call holds it for a hash lookup and a few additions (plus, in
 *   triggered mode, a store lookup for a build-id it has not seen).
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "common/map.h"
#include "common/opts.h"
#include "server/sampling.h"

#define DEFAULT_MAX_FREQ	997
#define DEFAULT_TRIGGER_SAMPLES 1000
/* Binaries with a state; more get no advice. */
#define BINARIES_MAX 65536
#define KNOWN_MAX    64	    /* build-ids remembered per binary */
#define AGENTS_MAX   200000 /* agents tracked per binary */
/* ... and in all: 48 MB of them at most; more get no share of C (their
 * binary's advice is then too high for them, never unbounded memory). */
#define AGENTS_TOTAL_MAX 1000000
#define MAX_FREQ_LIMIT	 100000
#define POLICY_MAX_BYTES (16u << 20)

/* ------------------------------------------------------------- policy -- */

static const char *const mode_names[] = {
	[SRV_SAMPLING_CONTINUOUS] = "continuous",
	[SRV_SAMPLING_PAUSED] = "paused",
	[SRV_SAMPLING_TRIGGERED] = "triggered",
	[SRV_SAMPLING_ON_DEMAND] = "on-demand",
};

__attribute__((format(printf, 4, 5))) static int
bad(char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %u: %s", line, why);
	return FDO_EINVAL;
}

static int parse_hz(const char *v, uint32_t *out)
{
	uint64_t n;
	if (fdo_parse_uint(v, &n) || n < 1 || n > MAX_FREQ_LIMIT)
		return FDO_EINVAL;
	*out = (uint32_t)n;
	return FDO_OK;
}

/* "N/DURATION" */
static int parse_samples(const char *v, uint64_t *n, uint64_t *window)
{
	char num[32];
	const char *slash = strchr(v, '/');
	if (!slash || (size_t)(slash - v) >= sizeof num || slash == v)
		return FDO_EINVAL;
	memcpy(num, v, (size_t)(slash - v));
	num[slash - v] = 0;
	if (fdo_parse_uint(num, n) || *n == 0 ||
	    fdo_parse_duration(slash + 1, window) || *window == 0)
		return FDO_EINVAL;
	return FDO_OK;
}

/* "PERCENT%" of one CPU, 0.1% to 100% */
static int parse_cpu(const char *v, uint32_t *permille)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || strcmp(end, "%") || !(d >= 0.1 && d <= 100))
		return FDO_EINVAL;
	*permille = (uint32_t)(d * 10 + 0.5);
	return FDO_OK;
}

struct pair {
	const char *k, *v;
	size_t kl, vl;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	size_t n = x->kl < y->kl ? x->kl : y->kl;
	int c = memcmp(x->k, y->k, n);
	return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* labels=k=v,...: at most SRV_SAMPLING_LABELS_MAX pairs, each key given
 * once, keys and values non-empty without ',' (keys without '='), into
 * r->labels sorted by key. The line is split on blanks, so none holds
 * one. */
static int parse_labels(struct srv_sampling_rule *r, const char *v, char *err,
			size_t errlen)
{
	struct pair pr[SRV_SAMPLING_LABELS_MAX];
	size_t n = 0;
	if (strlen(v) > SRV_SAMPLING_LABELS_TEXT_MAX)
		return bad(err, errlen, r->line, "labels= longer than %d bytes",
			   SRV_SAMPLING_LABELS_TEXT_MAX);
	for (const char *at = v;;) {
		size_t len = strcspn(at, ",");
		const char *eq = memchr(at, '=', len);
		if (!eq || eq == at || eq + 1 == at + len)
			return bad(err, errlen, r->line,
				   "labels=%.64s: want k=v,... (a non-empty "
				   "key and value in each pair)",
				   v);
		if (n == SRV_SAMPLING_LABELS_MAX)
			return bad(err, errlen, r->line,
				   "labels=: more than %d pairs",
				   SRV_SAMPLING_LABELS_MAX);
		pr[n++] = (struct pair){at, eq + 1, (size_t)(eq - at),
					(size_t)(at + len - eq - 1)};
		if (!at[len])
			break;
		at += len + 1;
	}
	qsort(pr, n, sizeof *pr, pair_cmp);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && !pair_cmp(&pr[i - 1], &pr[i]))
			return bad(err, errlen, r->line,
				   "labels=: key %.*s given twice",
				   (int)pr[i].kl, pr[i].k);
		o += (size_t)snprintf(r->labels + o, sizeof r->labels - o,
				      "%s%.*s=%.*s", i ? "," : "",
				      (int)pr[i].kl, pr[i].k, (int)pr[i].vl,
				      pr[i].v);
	}
	r->nlabels = (unsigned)n;
	return FDO_OK;
}

static int set_key(struct srv_sampling_rule *r, const char *k, const char *v,
		   char *err, size_t errlen)
{
	unsigned ln = r->line;
	if (!strcmp(k, "samples")) {
		if (parse_samples(v, &r->samples, &r->window))
			return bad(err, errlen, ln,
				   "samples=%s: want N/DURATION, e.g. "
				   "5000000/1d",
				   v);
	} else if (!strcmp(k, "mode")) {
		if (!strcmp(v, "continuous"))
			r->mode = SRV_SAMPLING_CONTINUOUS;
		else if (!strcmp(v, "paused"))
			r->mode = SRV_SAMPLING_PAUSED;
		else if (!strcmp(v, "triggered"))
			r->mode = SRV_SAMPLING_TRIGGERED;
		else
			return bad(err, errlen, ln,
				   "mode=%s: want continuous, paused or "
				   "triggered (on-demand windows are set with "
				   "POST /v1/sampling/BINARY)",
				   v);
	} else if (!strcmp(k, "max_freq") || !strcmp(k, "min_freq") ||
		   !strcmp(k, "trigger_freq")) {
		uint32_t *f = k[1] == 'a'   ? &r->max_freq
			      : k[1] == 'i' ? &r->min_freq
					    : &r->trigger_freq;
		if (parse_hz(v, f))
			return bad(err, errlen, ln,
				   "%s=%s: want a frequency from 1 to %d Hz", k,
				   v, MAX_FREQ_LIMIT);
	} else if (!strcmp(k, "trigger_samples")) {
		if (fdo_parse_uint(v, &r->trigger_samples) ||
		    !r->trigger_samples)
			return bad(err, errlen, ln,
				   "trigger_samples=%s: want a number >= 1", v);
	} else if (!strcmp(k, "labels")) {
		return parse_labels(r, v, err, errlen);
	} else if (!strcmp(k, "agent_cpu")) {
		if (parse_cpu(v, &r->cpu_permille))
			return bad(err, errlen, ln,
				   "agent_cpu=%s: want a share of one CPU "
				   "from 0.1%% to 100%%, e.g. 1%%",
				   v);
	} else {
		return bad(err, errlen, ln,
			   "unknown key %s (samples, mode, max_freq, "
			   "min_freq, trigger_freq, trigger_samples, "
			   "agent_cpu, labels)",
			   k);
	}
	return FDO_OK;
}

/* One line's rule into r (0 words: *empty = 1). s is the line, modified. */
static int parse_line(char *s, unsigned ln, struct srv_sampling_rule *r,
		      int *empty, char *err, size_t errlen)
{
	char *hash = strchr(s, '#');
	if (hash)
		*hash = 0;
	char *save = NULL, *w = strtok_r(s, " \t\r", &save);
	*empty = !w;
	if (!w)
		return FDO_OK;
	memset(r, 0, sizeof *r);
	r->line = ln;
	char why[128];
	if (strcmp(w, "*") && wire_binary_name_check(w, why, sizeof why))
		return bad(err, errlen, ln, "binary %.64s: %s", w, why);
	snprintf(r->binary, sizeof r->binary, "%s", w);
	int seen[8] = {0};
	static const char *const keys[8] = {"samples",	    "mode",
					    "max_freq",	    "min_freq",
					    "trigger_freq", "trigger_samples",
					    "agent_cpu",    "labels"};
	while ((w = strtok_r(NULL, " \t\r", &save))) {
		char *eq = strchr(w, '=');
		if (!eq || eq == w || !eq[1])
			return bad(err, errlen, ln, "%.64s: want key=value", w);
		*eq = 0;
		for (int i = 0; i < 8; i++)
			if (!strcmp(w, keys[i]) && seen[i]++)
				return bad(err, errlen, ln, "%s given twice",
					   w);
		int rc = set_key(r, w, eq + 1, err, errlen);
		if (rc)
			return rc;
	}
	if (!r->max_freq)
		r->max_freq = DEFAULT_MAX_FREQ;
	if (!r->min_freq)
		r->min_freq = 1;
	if (r->min_freq > r->max_freq)
		return bad(err, errlen, ln, "min_freq %u is above max_freq %u",
			   r->min_freq, r->max_freq);
	if (!r->trigger_freq)
		r->trigger_freq = r->max_freq;
	if (!r->trigger_samples)
		r->trigger_samples = DEFAULT_TRIGGER_SAMPLES;
	return FDO_OK;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct srv_sampling_rule *x = a, *y = b;
	int c = strcmp(x->binary, y->binary); /* '*' sorts before names */
	if (c)
		return c;
	if (x->nlabels != y->nlabels)
		return x->nlabels > y->nlabels ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

int srv_sampling_policy_parse(const char *text, size_t len,
			      struct srv_sampling_policy *out, char *err,
			      size_t errlen)
{
	memset(out, 0, sizeof *out);
	err[0] = 0;
	size_t cap = 0;
	struct srv_sampling_policy p = {0};
	unsigned ln = 0;
	int rc = FDO_OK;
	for (size_t at = 0; at < len && !rc;) {
		ln++;
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		char buf[1024];
		if (n >= sizeof buf) {
			rc = bad(err, errlen, ln, "line longer than %zu bytes",
				 sizeof buf - 1);
			break;
		}
		memcpy(buf, text + at, n);
		buf[n] = 0;
		at += n + 1;
		if (memchr(buf, 0, n)) {
			rc = bad(err, errlen, ln, "a NUL byte");
			break;
		}
		struct srv_sampling_rule r;
		int empty;
		if ((rc = parse_line(buf, ln, &r, &empty, err, errlen)) ||
		    empty)
			continue;
		if (p.n == SRV_SAMPLING_RULES_MAX) {
			snprintf(err, errlen, "line %u: more than %d rules", ln,
				 SRV_SAMPLING_RULES_MAX);
			rc = FDO_ELIMIT;
			break;
		}
		if (fdo_grow(p.rules, cap, p.n + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		p.rules[p.n++] = r;
	}
	if (!rc && p.n) {
		qsort(p.rules, p.n, sizeof *p.rules, rule_cmp);
		for (size_t i = 1; i < p.n && !rc; i++)
			for (size_t j = i;
			     j-- > 0 && !rc &&
			     !strcmp(p.rules[i].binary, p.rules[j].binary);) {
				if (strcmp(p.rules[i].labels,
					   p.rules[j].labels))
					continue;
				unsigned a = p.rules[j].line,
					 b = p.rules[i].line;
				rc = bad(err, errlen, a > b ? a : b,
					 "binary %s already has a rule%s%s "
					 "(line %u)",
					 p.rules[i].binary,
					 p.rules[i].nlabels ? " for labels="
							    : "",
					 p.rules[i].labels, a < b ? a : b);
			}
	}
	if (rc) {
		srv_sampling_policy_fini(&p);
		return rc;
	}
	*out = p;
	return FDO_OK;
}

void srv_sampling_policy_fini(struct srv_sampling_policy *p)
{
	free(p->rules);
	memset(p, 0, sizeof *p);
}

/* Does the batch carry every k=v of rule r's labels? */
static int labels_cover(const struct srv_sampling_rule *r,
			Fdod__Label *const *labels, size_t n)
{
	for (const char *at = r->labels; *at;) {
		size_t len = strcspn(at, ",");
		const char *eq = memchr(at, '=', len);
		size_t kl = (size_t)(eq - at), vl = len - kl - 1;
		size_t i = 0;
		while (i < n && !(labels[i]->key && labels[i]->value &&
				  strlen(labels[i]->key) == kl &&
				  !memcmp(labels[i]->key, at, kl) &&
				  strlen(labels[i]->value) == vl &&
				  !memcmp(labels[i]->value, eq + 1, vl)))
			i++;
		if (i == n)
			return 0;
		at += len + !!at[len];
	}
	return 1;
}

/* The first rule of binary's run (p->n when none). */
static size_t first_rule(const struct srv_sampling_policy *p,
			 const char *binary)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(p->rules[mid].binary, binary) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->n && !strcmp(p->rules[lo].binary, binary) ? lo : p->n;
}

/* In binary's run, the first rule (most pairs, then earliest) whose
 * labels the batch carries; with exact, the one whose labels= is exact. */
static const struct srv_sampling_rule *
run_match(const struct srv_sampling_policy *p, const char *binary,
	  Fdod__Label *const *labels, size_t n, const char *exact)
{
	for (size_t i = first_rule(p, binary);
	     i < p->n && !strcmp(p->rules[i].binary, binary); i++)
		if (exact ? !strcmp(p->rules[i].labels, exact)
			  : labels_cover(&p->rules[i], labels, n))
			return &p->rules[i];
	return NULL;
}

const struct srv_sampling_rule *
srv_sampling_policy_match(const struct srv_sampling_policy *p,
			  const char *binary, Fdod__Label *const *labels,
			  size_t n)
{
	const struct srv_sampling_rule *r =
		run_match(p, binary, labels, n, NULL);
	return r ? r : run_match(p, "*", labels, n, NULL);
}

const struct srv_sampling_rule *
srv_sampling_policy_find(const struct srv_sampling_policy *p,
			 const char *binary)
{
	return srv_sampling_policy_match(p, binary, NULL, 0);
}

/* The rule a state (binary, labels) was made for, if it is still there. */
static const struct srv_sampling_rule *
rule_of_state(const struct srv_sampling_policy *p, const char *binary,
	      const char *labels)
{
	const struct srv_sampling_rule *r =
		run_match(p, binary, NULL, 0, labels);
	return r ? r : run_match(p, "*", NULL, 0, labels);
}

/* --------------------------------------------------------- controllers -- */

struct override {
	int mode;	/* enum srv_sampling_mode */
	uint32_t freq;	/* on-demand */
	uint64_t until; /* monotonic ns; 0 = none */
};

/* One agent of a binary: its recent CPU rate. */
struct agent {
	uint64_t hash;	 /* of its agent id */
	uint64_t last;	 /* arrival of its last batch, ns */
	uint64_t gap;	 /* between its last two batches, ns */
	double ev, span; /* CPU ns and ns of its recent batches, each
	                    older batch weighing 3/4 of the next */
	double cpu;	 /* ev / span: CPU-s per s */
	int counted;	 /* cpu is in the binary's sum */
};

/* The controller of a binary's batches under one rule's labels= ("" for
 * a rule without, and for an operator's window on the binary). */
/* What a state is for, zero padded: as a whole, the key of its id in
 * by_name (every byte compared, so no two states share one by a hash). */
struct bkey {
	char name[257];
	char labels[SRV_SAMPLING_LABELS_TEXT_MAX + 1];
};

struct bstate {
	struct bkey k;
	uint32_t freq;	  /* the continuous advice */
	uint64_t t0;	  /* start of the control interval, ns */
	uint64_t samples; /* samples accepted in it */
	struct agent *agents;
	size_t nagents, capagents;
	struct fdo_map64 agent_ix; /* agent hash -> index + 1 */
	double cpu;		   /* sum of the agents' cpu */
	uint64_t expired;	   /* last expire_agents pass, ns */
	uint64_t last_any;	   /* the latest batch of any agent, ns */
	double last_cpu;	   /* CPU-s per s of the last closed interval */
	double last_rate;	   /* samples/s of the last closed interval */
	uint64_t trigger_left;	   /* triggered: samples until ready */
	uint64_t known[KNOWN_MAX]; /* build-id hashes already judged */
	size_t nknown;
	struct override ovr;
};

struct srv_sampling {
	pthread_mutex_t mu;
	char *path;
	uint64_t interval_ns;
	store *st;
	struct srv_sampling_policy policy;
	uint64_t generation;
	uint64_t reloads_ok, reloads_failed;
	struct override all; /* an override for "*" */
	struct bstate *b;
	size_t n, cap;
	struct fdo_idset by_name; /* bkey -> index */
	size_t agents_total;	  /* agents of every binary */
};

static int read_policy(const char *path, struct srv_sampling_policy *out,
		       char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!path || !path[0])
		return FDO_OK;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		return FDO_EIO;
	}
	char *text = malloc(POLICY_MAX_BYTES + 1);
	size_t n = text ? fread(text, 1, POLICY_MAX_BYTES + 1, f) : 0;
	int rerr = ferror(f);
	fclose(f);
	int rc;
	if (!text)
		rc = FDO_ENOMEM;
	else if (rerr) {
		snprintf(err, errlen, "cannot read %s", path);
		rc = FDO_EIO;
	} else if (n > POLICY_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %u bytes", path,
			 POLICY_MAX_BYTES);
		rc = FDO_ELIMIT;
	} else {
		char why[300];
		rc = srv_sampling_policy_parse(text, n, out, why, sizeof why);
		if (rc)
			snprintf(err, errlen, "%s: %s", path, why);
	}
	free(text);
	return rc;
}

static const void *state_key(const void *ctx, uint32_t id, size_t *len)
{
	const srv_sampling *s = ctx;
	*len = sizeof(struct bkey);
	return &s->b[id].k;
}

int srv_sampling_create(const char *path, unsigned interval_s, store *st,
			srv_sampling **out, char *err, size_t errlen)
{
	*out = NULL;
	err[0] = 0;
	srv_sampling *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	int rc = read_policy(path, &s->policy, err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	s->path = path && path[0] ? strdup(path) : NULL;
	s->interval_ns = (uint64_t)(interval_s ? interval_s : 1) * 1000000000u;
	s->st = st;
	s->generation = 1;
	fdo_idset_init(&s->by_name, state_key, s);
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return FDO_OK;
}

void srv_sampling_destroy(srv_sampling *s)
{
	if (!s)
		return;
	srv_sampling_policy_fini(&s->policy);
	fdo_idset_fini(&s->by_name);
	for (size_t i = 0; i < s->n; i++) {
		free(s->b[i].agents);
		fdo_map64_fini(&s->b[i].agent_ix);
	}
	free(s->b);
	free(s->path);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int srv_sampling_reload(srv_sampling *s, char *err, size_t errlen)
{
	struct srv_sampling_policy p;
	err[0] = 0;
	int rc = read_policy(s->path, &p, err, errlen);
	pthread_mutex_lock(&s->mu);
	if (rc) {
		s->reloads_failed++;
	} else {
		srv_sampling_policy_fini(&s->policy);
		s->policy = p;
		s->generation++;
		s->reloads_ok++;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static uint64_t name_hash(const char *name)
{
	return fdo_hash_words(name, strlen(name)) | 1;
}

/* The state of (binary, labels), created (with freq f0) when create; NULL
 * when absent, or past BINARIES_MAX states, or out of memory. s->mu
 * held. */
static struct bstate *state_of(srv_sampling *s, const char *binary,
			       const char *labels, int create, uint32_t f0)
{
	struct bkey k;
	size_t nl = strlen(binary), ll = strlen(labels);
	if (nl >= sizeof k.name || ll >= sizeof k.labels)
		return NULL; /* validation keeps both shorter */
	memset(&k, 0, sizeof k);
	memcpy(k.name, binary, nl);
	memcpy(k.labels, labels, ll);
	uint32_t id;
	if (fdo_idset_get(&s->by_name, &k, sizeof k, &id))
		return &s->b[id];
	if (!create || s->n == BINARIES_MAX || fdo_grow(s->b, s->cap, s->n + 1))
		return NULL;
	struct bstate *b = &s->b[s->n];
	memset(b, 0, sizeof *b);
	b->k = k;
	if (fdo_idset_add(&s->by_name, &k, sizeof k, (uint32_t)s->n))
		return NULL;
	s->n++;
	b->freq = f0;
	b->t0 = fdo_now_ns();
	return b;
}

static int time_event(const char *event)
{
	return event &&
	       (!strcmp(event, "cpu-clock") || !strcmp(event, "task-clock"));
}

static uint32_t clamp_freq(double f, const struct srv_sampling_rule *r)
{
	if (!(f >= r->min_freq))
		return r->min_freq;
	if (f > r->max_freq)
		return r->max_freq;
	return (uint32_t)(f + 0.5);
}

/* Agent `id` of b sent a batch standing for event_ns CPU nanoseconds
 * (or a heartbeat: 0) over span seconds (its own time range) at now. */
static void agent_batch(srv_sampling *s, struct bstate *b, const char *id,
			double event_ns, uint64_t span, uint64_t now)
{
	uint64_t h = name_hash(id);
	uint32_t v;
	struct agent *a;
	b->last_any = now;
	if (fdo_map64_get(&b->agent_ix, h, &v)) {
		a = &b->agents[v - 1];
		a->gap = now - a->last;
	} else {
		int found;
		if (b->nagents == AGENTS_MAX ||
		    s->agents_total == AGENTS_TOTAL_MAX ||
		    fdo_grow(b->agents, b->capagents, b->nagents + 1) ||
		    fdo_map64_put(&b->agent_ix, h, (uint32_t)b->nagents + 1, &v,
				  &found))
			return;
		a = &b->agents[b->nagents++];
		s->agents_total++;
		memset(a, 0, sizeof *a);
		a->hash = h;
		/* A first batch: its own time range says how long (an
		 * empty one, the hello of a new agent, says nothing). */
		a->gap = (span ? span : 1) * 1000000000ull;
		a->last = now;
		if (event_ns == 0)
			return;
	}
	a->last = now;
	/* Over a few batches: one arriving late and the next early (a slow
	 * commit) would each say twice and half the rate. */
	a->ev = a->ev * 0.75 + event_ns;
	a->span = a->span * 0.75 + (double)a->gap;
	double cpu = a->span > 0 ? a->ev / a->span : 0;
	b->cpu += cpu - (a->counted ? a->cpu : 0);
	a->cpu = cpu;
	a->counted = 1;
}

/* Count only b's agents heard from within one and a half of their own
 * gaps of b's latest batch (a host that left stops counting soon after
 * its next batch was due); forget those silent for ten gaps and a
 * minute. Sums anew (no drift). At most ten times a second. */
static void expire_agents(srv_sampling *s, struct bstate *b, uint64_t now)
{
	if (now - b->expired < 100000000u)
		return;
	b->expired = now;
	size_t k = 0;
	double sum = 0;
	int gone = 0;
	for (size_t i = 0; i < b->nagents; i++) {
		struct agent *a = &b->agents[i];
		uint64_t quiet = now - a->last;
		uint64_t forget = a->gap * 10;
		if (forget < 60000000000ull)
			forget = 60000000000ull;
		if (quiet > forget) {
			gone = 1;
			s->agents_total--;
			continue;
		}
		/* Measured from the binary's latest batch, not the clock:
		 * when fdod stalls (a slow fsync) every agent is late at
		 * once, and none has left. */
		uint64_t behind = b->last_any > a->last ? b->last_any - a->last
							: 0;
		a->counted = behind <= a->gap * 3 / 2;
		if (a->counted)
			sum += a->cpu;
		b->agents[k++] = *a;
	}
	b->nagents = k;
	b->cpu = sum;
	if (!gone)
		return;
	fdo_map64_clear(&b->agent_ix);
	for (size_t i = 0; i < k; i++) {
		uint32_t v;
		int found;
		if (fdo_map64_put(&b->agent_ix, b->agents[i].hash,
				  (uint32_t)i + 1, &v, &found)) {
			s->agents_total -= k - i;
			b->nagents = i; /* out of memory: forget the rest */
			break;
		}
	}
}

/* Advise anew from what b's agents run now; close the interval of its
 * figures (GET /v1/sampling) when it is over. */
static void control(srv_sampling *s, struct bstate *b,
		    const struct srv_sampling_rule *r, uint64_t now)
{
	expire_agents(s, b, now);
	if (r && r->samples && b->cpu > 0)
		b->freq = clamp_freq(
			(double)r->samples / (double)r->window / b->cpu, r);
	else if (r && !r->samples)
		b->freq = r->max_freq;
	uint64_t el = now - b->t0;
	if (el < s->interval_ns)
		return;
	b->last_cpu = b->cpu;
	b->last_rate = (double)b->samples / ((double)el / 1e9);
	b->samples = 0;
	b->t0 = now;
}

/* Triggered mode: does batch b bring a build-id the store never saw?
 * s->mu held. */
static int new_build_id(srv_sampling *s, struct bstate *st,
			const Fdod__SampleBatch *b)
{
	int fresh = 0;
	store_txn *t = NULL;
	for (size_t i = 0; i < b->n_mappings; i++) {
		const ProtobufCBinaryData *id = &b->mappings[i]->build_id;
		uint64_t h = store_buildid_hash(id->data, id->len);
		size_t k = 0;
		while (k < st->nknown && st->known[k] != h)
			k++;
		if (k < st->nknown)
			continue;
		uint32_t sid;
		if (!s->st)
			fresh = 1; /* no store: new to this controller */
		else if (!t && store_txn_begin(s->st, 0, &t))
			break;
		else if (store_intern_buildid(t, id->data, id->len, 0, &sid) ==
			 FDO_ENOT_FOUND)
			fresh = 1;
		if (st->nknown < KNOWN_MAX)
			st->known[st->nknown++] = h;
	}
	if (t)
		store_txn_abort(t);
	return fresh;
}

/* The operator's window over binary b (its state without labels), else
 * over every binary, else NULL. */
static const struct override *override_of(const srv_sampling *s,
					  const struct bstate *b, uint64_t now)
{
	if (b && b->ovr.until > now)
		return &b->ovr;
	return s->all.until > now ? &s->all : NULL;
}

int srv_sampling_advise(void *arg, const Fdod__SampleBatch *b,
			const struct agg_result *res, Fdod__SamplingAdvice *out)
{
	srv_sampling *s = arg;
	uint64_t now = fdo_now_ns();
	pthread_mutex_lock(&s->mu);
	const struct srv_sampling_rule *r = srv_sampling_policy_match(
		&s->policy, b->binary, b->labels, b->n_labels);
	struct bstate *st = state_of(s, b->binary, r ? r->labels : "",
				     r != NULL,
				     r ? r->max_freq : DEFAULT_MAX_FREQ);
	/* (no state is made here: st stays where it is) */
	const struct override *o = override_of(
		s,
		st && !st->k.labels[0] ? st : state_of(s, b->binary, "", 0, 0),
		now);
	if (!r && !o) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	if (st && res->status == FDO_OK && !res->duplicate) {
		st->samples += res->samples_accepted;
		if (time_event(b->event) || !res->samples_accepted)
			agent_batch(s, st, b->agent_id,
				    (double)res->samples_accepted *
					    (double)b->period,
				    b->time_end - b->time_start, now);
		if (r && r->mode == SRV_SAMPLING_TRIGGERED) {
			if (new_build_id(s, st, b))
				st->trigger_left = r->trigger_samples;
			else if (st->trigger_left > res->samples_accepted)
				st->trigger_left -= res->samples_accepted;
			else
				st->trigger_left = 0;
		}
	}
	if (st)
		control(s, st, r, now);
	int mode = o ? o->mode : r->mode;
	uint32_t freq = st ? st->freq : DEFAULT_MAX_FREQ;
	if (!o && r && !time_event(b->event))
		freq = r->max_freq;
	if (mode == SRV_SAMPLING_ON_DEMAND)
		freq = o->freq;
	if (mode == SRV_SAMPLING_TRIGGERED) {
		if (st && st->trigger_left)
			freq = r->trigger_freq;
		else
			mode = SRV_SAMPLING_CONTINUOUS;
	}
	out->mode = (char *)mode_names[mode];
	out->interval_s = (uint32_t)(s->interval_ns / 1000000000u);
	out->generation = s->generation;
	out->cpu_permille = r ? r->cpu_permille : 0;
	if (mode == SRV_SAMPLING_PAUSED) {
		out->freq_hz = 0;
		out->paused_until = (uint64_t)time(NULL) + out->interval_s;
	} else {
		out->freq_hz = freq;
	}
	pthread_mutex_unlock(&s->mu);
	return 1;
}

int srv_sampling_override(srv_sampling *s, const char *binary, int mode,
			  uint32_t freq, uint64_t seconds, char *err,
			  size_t errlen)
{
	err[0] = 0;
	if (mode == SRV_SAMPLING_ON_DEMAND &&
	    (freq < 1 || freq > MAX_FREQ_LIMIT)) {
		snprintf(err, errlen, "freq= must be 1 to %d Hz",
			 MAX_FREQ_LIMIT);
		return FDO_EINVAL;
	}
	if (mode == SRV_SAMPLING_TRIGGERED) {
		snprintf(err, errlen,
			 "triggered is a policy mode, not an "
			 "override");
		return FDO_EINVAL;
	}
	uint64_t now = fdo_now_ns();
	struct override o = {mode, freq,
			     seconds ? now + seconds * 1000000000u : 0};
	int rc = FDO_OK;
	pthread_mutex_lock(&s->mu);
	if (!strcmp(binary, "*")) {
		s->all = o;
	} else {
		const struct srv_sampling_rule *r =
			srv_sampling_policy_find(&s->policy, binary);
		struct bstate *st = state_of(
			s, binary, "", 1, r ? r->max_freq : DEFAULT_MAX_FREQ);
		if (st)
			st->ovr = o;
		else {
			snprintf(err, errlen, "more than %d binaries",
				 BINARIES_MAX);
			rc = FDO_ELIMIT;
		}
	}
	if (!rc)
		s->generation++;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ------------------------------------------------------------- answers -- */

static void json_override(struct fdo_buf *out, const struct override *o,
			  uint64_t now)
{
	if (o->until <= now) {
		fdo_buf_puts(out, "null");
		return;
	}
	fdo_buf_printf(out,
		       "{\"mode\":\"%s\",\"freq_hz\":%u,"
		       "\"seconds_left\":%llu}",
		       mode_names[o->mode],
		       o->mode == SRV_SAMPLING_ON_DEMAND ? o->freq : 0,
		       (unsigned long long)((o->until - now + 999999999u) /
					    1000000000u));
}

void srv_sampling_json(srv_sampling *s, struct fdo_buf *out)
{
	uint64_t now = fdo_now_ns();
	pthread_mutex_lock(&s->mu);
	fdo_buf_puts(out, "{\"policy\":");
	fdo_buf_json_str(out, s->path ? s->path : "");
	fdo_buf_printf(out,
		       ",\"generation\":%llu,\"interval_s\":%llu,"
		       "\"rules\":%zu,\"override\":",
		       (unsigned long long)s->generation,
		       (unsigned long long)(s->interval_ns / 1000000000u),
		       s->policy.n);
	json_override(out, &s->all, now);
	fdo_buf_puts(out, ",\"binaries\":[");
	for (size_t i = 0; i < s->n; i++) {
		const struct bstate *b = &s->b[i];
		const struct srv_sampling_rule *r =
			rule_of_state(&s->policy, b->k.name, b->k.labels);
		fdo_buf_puts(out, i ? ",{\"binary\":" : "{\"binary\":");
		fdo_buf_json_str(out, b->k.name);
		fdo_buf_puts(out, ",\"labels\":");
		fdo_buf_json_str(out, b->k.labels);
		fdo_buf_printf(out,
			       ",\"rule_line\":%u,\"mode\":\"%s\","
			       "\"freq_hz\":%u,\"target_per_s\":%.6g,"
			       "\"cpu_sampled\":%.6g,\"samples_per_s\":%.6g,"
			       "\"trigger_left\":%llu,\"override\":",
			       r ? r->line : 0,
			       r ? mode_names[r->mode] : "none", b->freq,
			       r && r->samples
				       ? (double)r->samples / (double)r->window
				       : 0.0,
			       b->last_cpu, b->last_rate,
			       (unsigned long long)b->trigger_left);
		json_override(out, &b->ovr, now);
		fdo_buf_puts(out, "}");
	}
	fdo_buf_puts(out, "]}");
	pthread_mutex_unlock(&s->mu);
}

void srv_sampling_metrics(srv_sampling *s, struct fdo_buf *out)
{
	pthread_mutex_lock(&s->mu);
	fdo_buf_printf(
		out,
		"# HELP fdod_sampling_generation Generation of the sampling "
		"policy (reloads and operator changes).\n"
		"# TYPE fdod_sampling_generation gauge\n"
		"fdod_sampling_generation %llu\n"
		"# HELP fdod_sampling_reloads_total Policy reloads (SIGHUP).\n"
		"# TYPE fdod_sampling_reloads_total counter\n"
		"fdod_sampling_reloads_total{result=\"ok\"} %llu\n"
		"fdod_sampling_reloads_total{result=\"error\"} %llu\n"
		"# HELP fdod_sampling_freq_hz Sampling frequency advised to the "
		"agents of a binary (continuous control).\n"
		"# TYPE fdod_sampling_freq_hz gauge\n",
		(unsigned long long)s->generation,
		(unsigned long long)s->reloads_ok,
		(unsigned long long)s->reloads_failed);
	for (size_t i = 0; i < s->n; i++) {
		fdo_buf_puts(out, "fdod_sampling_freq_hz{binary=");
		fdo_buf_json_str(out, s->b[i].k.name);
		if (s->b[i].k.labels[0]) {
			fdo_buf_puts(out, ",labels=");
			fdo_buf_json_str(out, s->b[i].k.labels);
		}
		fdo_buf_printf(out, "} %u\n", s->b[i].freq);
	}
	pthread_mutex_unlock(&s->mu);
}
