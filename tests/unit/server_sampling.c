/*
 * Tests for server/sampling.c: the policy file's rules and errors (with
 * their line), the rule a binary gets, and the advice of each mode. The
 * controller's rate against a changing fleet is tested end to end by
 * tests/agent/test_sampling.py (bench/agent/fleetsim.c).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/sampling.h"
#include "tests/unit/test.h"

static int parse(const char *text, struct srv_sampling_policy *p, char *err,
		 size_t errlen)
{
	return srv_sampling_policy_parse(text, strlen(text), p, err, errlen);
}

TEST(policy_rules_and_defaults)
{
	struct srv_sampling_policy p;
	char err[300];
	REQUIRE(parse("# fleet\n"
		      "webserver samples=5000000/1d agent_cpu=1.5%\n"
		      "\n"
		      "*   samples=1000/1h   # everyone else\n"
		      "batch mode=paused\n"
		      "new mode=triggered trigger_freq=4999 max_freq=499\n",
		      &p, err, sizeof err) == FDO_OK);
	REQUIRE(p.n == 4);
	const struct srv_sampling_rule *r =
		srv_sampling_policy_find(&p, "webserver");
	REQUIRE(r);
	CHECK(r->samples == 5000000 && r->window == 86400);
	CHECK(r->max_freq == 997 && r->min_freq == 1);
	CHECK(r->cpu_permille == 15 && r->line == 2);
	r = srv_sampling_policy_find(&p, "other");
	REQUIRE(r);
	CHECK_EQ_STR(r->binary, "*");
	CHECK(r->samples == 1000 && r->window == 3600 && r->line == 4);
	r = srv_sampling_policy_find(&p, "batch");
	CHECK(r && r->mode == SRV_SAMPLING_PAUSED);
	r = srv_sampling_policy_find(&p, "new");
	CHECK(r && r->mode == SRV_SAMPLING_TRIGGERED &&
	      r->trigger_freq == 4999 && r->max_freq == 499 &&
	      r->trigger_samples == 1000);
	srv_sampling_policy_fini(&p);

	/* Without "*", other binaries get nothing. */
	REQUIRE(parse("a mode=paused", &p, err, sizeof err) == FDO_OK);
	CHECK(srv_sampling_policy_find(&p, "b") == NULL);
	CHECK(srv_sampling_policy_find(&p, "a") != NULL);
	srv_sampling_policy_fini(&p);
	REQUIRE(parse("", &p, err, sizeof err) == FDO_OK);
	CHECK(p.n == 0 && srv_sampling_policy_find(&p, "a") == NULL);
}

TEST(policy_errors_name_the_line)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"a samples=10", "line 1: samples=10: want N/DURATION"},
		{"a\nb samples=0/1d", "line 2: samples=0/1d"},
		{"a samples=5/0s", "line 1: samples=5/0s"},
		{"a mode=fast", "line 1: mode=fast: want continuous"},
		{"a mode=on-demand", "line 1: mode=on-demand"},
		{"a max_freq=0", "line 1: max_freq=0: want a frequency"},
		{"a max_freq=100001", "line 1: max_freq=100001"},
		{"a min_freq=10 max_freq=5", "line 1: min_freq 10 is above"},
		{"a agent_cpu=2", "line 1: agent_cpu=2: want a share"},
		{"a agent_cpu=200%", "line 1: agent_cpu=200%"},
		{"a colour=red", "line 1: unknown key colour"},
		{"a mode", "line 1: mode: want key=value"},
		{"a mode=paused mode=paused", "line 1: mode given twice"},
		{"bad/name mode=paused", "line 1: binary bad/name"},
		{"a mode=paused\n\nb mode=paused\na samples=1/1s",
		 "line 4: binary a already has a rule (line 1)"},
		{"a labels=zone", "line 1: labels=zone: want k=v"},
		{"a labels==eu", "line 1: labels==eu: want k=v"},
		{"a labels=zone=", "line 1: labels=zone=: want k=v"},
		{"a labels=zone=eu,", "line 1: labels=zone=eu,: want k=v"},
		{"a labels=z=1,z=2", "line 1: labels=: key z given twice"},
		{"a labels=a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1",
		 "line 1: labels=: more than 8 pairs"},
		{"a labels=z=1,y=2\na labels=y=2,z=1 mode=paused",
		 "line 2: binary a already has a rule for labels=y=2,z=1 "
		 "(line 1)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct srv_sampling_policy p;
		char err[300] = "";
		CHECK_EQ_INT(parse(cases[i].text, &p, err, sizeof err),
			     FDO_EINVAL);
		CHECK(p.n == 0 && p.rules == NULL);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "case %zu: got \"%s\"\n", i, err);
		CHECK(strstr(err, cases[i].want) != NULL);
	}
	/* A NUL byte and a line that does not end. */
	struct srv_sampling_policy p;
	char err[300];
	CHECK_EQ_INT(srv_sampling_policy_parse("a mode=paused\0x", 15, &p, err,
					       sizeof err),
		     FDO_EINVAL);
	CHECK(strstr(err, "line 1: a NUL byte") != NULL);
	char big[2000];
	memset(big, 'a', sizeof big);
	CHECK_EQ_INT(srv_sampling_policy_parse(big, sizeof big, &p, err,
					       sizeof err),
		     FDO_EINVAL);
	CHECK(strstr(err, "line 1: line longer than") != NULL);
}

static srv_sampling *with_policy(const char *text)
{
	char path[600], err[300];
	snprintf(path, sizeof path, "%s/policy", test_tmpdir());
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	srv_sampling *s;
	return srv_sampling_create(path, 60, NULL, &s, err, sizeof err) ? NULL
									: s;
}

static int advise(srv_sampling *s, const char *binary, const char *agent,
		  uint64_t samples, Fdod__SamplingAdvice *a)
{
	Fdod__SampleBatch b = FDOD__SAMPLE_BATCH__INIT;
	b.binary = (char *)binary;
	b.agent_id = (char *)agent;
	b.event = "cpu-clock";
	b.period = 10000000;
	b.time_start = 100;
	b.time_end = 110;
	struct agg_result res = {0};
	res.samples_accepted = samples;
	Fdod__SamplingAdvice init = FDOD__SAMPLING_ADVICE__INIT;
	*a = init;
	return srv_sampling_advise(s, &b, &res, a);
}

TEST(advice_by_mode_and_override)
{
	srv_sampling *s = with_policy("web max_freq=499 agent_cpu=1%\n"
				      "batch mode=paused\n");
	REQUIRE(s);
	Fdod__SamplingAdvice a;
	REQUIRE(advise(s, "web", "h1", 100, &a) == 1);
	CHECK(a.freq_hz == 499 && a.paused_until == 0);
	CHECK_EQ_STR(a.mode, "continuous");
	CHECK(a.interval_s == 60 && a.cpu_permille == 10 && a.generation == 1);
	REQUIRE(advise(s, "batch", "h1", 0, &a) == 1);
	CHECK(a.freq_hz == 0 && a.paused_until > 0);
	CHECK_EQ_STR(a.mode, "paused");
	/* No rule, no override: no advice. */
	CHECK(advise(s, "other", "h1", 100, &a) == 0);

	char err[200];
	REQUIRE(srv_sampling_override(s, "web", SRV_SAMPLING_ON_DEMAND, 2999,
				      60, err, sizeof err) == FDO_OK);
	REQUIRE(advise(s, "web", "h1", 100, &a) == 1);
	CHECK(a.freq_hz == 2999 && a.generation == 2);
	CHECK_EQ_STR(a.mode, "on-demand");
	/* The escape hatch: everything paused, rules or not. */
	REQUIRE(srv_sampling_override(s, "*", SRV_SAMPLING_PAUSED, 0, 60, err,
				      sizeof err) == FDO_OK);
	REQUIRE(advise(s, "other", "h1", 100, &a) == 1);
	CHECK_EQ_STR(a.mode, "paused");
	/* A binary's own window wins over "*". */
	REQUIRE(advise(s, "web", "h1", 100, &a) == 1);
	CHECK_EQ_STR(a.mode, "on-demand");
	/* Back to the policy. */
	REQUIRE(srv_sampling_override(s, "*", SRV_SAMPLING_CONTINUOUS, 0, 0,
				      err, sizeof err) == FDO_OK);
	REQUIRE(srv_sampling_override(s, "web", SRV_SAMPLING_CONTINUOUS, 0, 0,
				      err, sizeof err) == FDO_OK);
	REQUIRE(advise(s, "web", "h1", 100, &a) == 1);
	CHECK(a.freq_hz == 499);
	CHECK(advise(s, "other", "h1", 100, &a) == 0);
	CHECK_EQ_INT(srv_sampling_override(s, "web", SRV_SAMPLING_ON_DEMAND, 0,
					   60, err, sizeof err),
		     FDO_EINVAL);
	struct fdo_buf j;
	fdo_buf_init(&j);
	srv_sampling_json(s, &j);
	CHECK(strstr(fdo_buf_cstr(&j), "\"binary\":\"web\"") != NULL);
	fdo_buf_fini(&j);
	srv_sampling_destroy(s);
}

TEST(triggered_samples_a_new_build_id_fast_until_ready)
{
	srv_sampling *s = with_policy("new mode=triggered trigger_freq=3000 "
				      "trigger_samples=500\n");
	REQUIRE(s);
	uint8_t id[20] = {1, 2, 3};
	Fdod__Mapping m = FDOD__MAPPING__INIT, *mp = &m;
	m.build_id.data = id;
	m.build_id.len = sizeof id;
	Fdod__SampleBatch b = FDOD__SAMPLE_BATCH__INIT;
	b.binary = "new";
	b.agent_id = "h1";
	b.event = "cpu-clock";
	b.period = 1000000;
	b.mappings = &mp;
	b.n_mappings = 1;
	struct agg_result res = {0};
	res.samples_accepted = 300;
	Fdod__SamplingAdvice a = FDOD__SAMPLING_ADVICE__INIT;
	/* No store: every build-id is new the first time it is seen. */
	REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1);
	CHECK(a.freq_hz == 3000);
	CHECK_EQ_STR(a.mode, "triggered");
	REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1); /* 500 - 300 */
	CHECK(a.freq_hz == 3000);
	REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1); /* ready */
	CHECK(a.freq_hz == 997);
	CHECK_EQ_STR(a.mode, "continuous");
	srv_sampling_destroy(s);
}

/* Labels of a batch, from "k=v" strings. */
struct lbls {
	Fdod__Label l[4], *p[4];
	size_t n;
};

/* x holds (k1, v1) and (k2, v2), each left out when its key is NULL. */
static void lbls_set(struct lbls *x, const char *k1, const char *v1,
		     const char *k2, const char *v2)
{
	const char *kv[2][2] = {{k1, v1}, {k2, v2}};
	Fdod__Label init = FDOD__LABEL__INIT;
	x->n = 0;
	for (int i = 0; i < 2; i++) {
		if (!kv[i][0])
			continue;
		x->l[x->n] = init;
		x->l[x->n].key = (char *)kv[i][0];
		x->l[x->n].value = (char *)kv[i][1];
		x->p[x->n] = &x->l[x->n];
		x->n++;
	}
}

TEST(policy_labels_most_pairs_win)
{
	struct srv_sampling_policy p;
	char err[300];
	REQUIRE(parse("web max_freq=100\n"
		      "web labels=zone=eu max_freq=200\n"
		      "web labels=mode=batch,zone=eu max_freq=300\n"
		      "web labels=tier=gold max_freq=400\n"
		      "* labels=zone=us max_freq=500\n"
		      "* max_freq=600\n"
		      "api labels=zone=eu max_freq=700\n",
		      &p, err, sizeof err) == FDO_OK);
	struct lbls x;
	const struct srv_sampling_rule *r;
	lbls_set(&x, "zone", "eu", NULL, NULL);
	r = srv_sampling_policy_match(&p, "web", x.p, x.n);
	REQUIRE(r);
	CHECK(r->max_freq == 200 && r->nlabels == 1);
	CHECK_EQ_STR(r->labels, "zone=eu");
	lbls_set(&x, "zone", "eu", "mode", "batch");
	r = srv_sampling_policy_match(&p, "web", x.p, x.n);
	CHECK(r && r->max_freq == 300);
	CHECK_EQ_STR(r->labels, "mode=batch,zone=eu"); /* sorted by key */
	/* Both one-pair rules cover it: the earlier line wins. */
	lbls_set(&x, "zone", "eu", "tier", "gold");
	r = srv_sampling_policy_match(&p, "web", x.p, x.n);
	CHECK(r && r->max_freq == 200);
	lbls_set(&x, "zone", "us", NULL, NULL);
	r = srv_sampling_policy_match(&p, "web", x.p, x.n);
	CHECK(r && r->max_freq == 100); /* web's own rule before any "*" */
	CHECK(srv_sampling_policy_find(&p, "web")->max_freq == 100);
	/* api has only a labelled rule: other batches of it go to "*". */
	r = srv_sampling_policy_match(&p, "api", x.p, x.n);
	CHECK(r && r->max_freq == 500);
	lbls_set(&x, "zone", "eu", NULL, NULL);
	r = srv_sampling_policy_match(&p, "api", x.p, x.n);
	CHECK(r && r->max_freq == 700);
	CHECK(srv_sampling_policy_find(&p, "api")->max_freq == 600);
	/* A value is matched whole. */
	lbls_set(&x, "zone", "eu2", NULL, NULL);
	r = srv_sampling_policy_match(&p, "web", x.p, x.n);
	CHECK(r && r->max_freq == 100);
	srv_sampling_policy_fini(&p);
}

TEST(label_sets_have_their_own_controller)
{
	/* 10 samples/s wanted per label set. Agents of zone=eu run 4 CPUs'
	 * worth, those of zone=us one: each label set's advice follows its
	 * own agents, and an operator's window on the binary covers both. */
	srv_sampling *s = with_policy("web labels=zone=eu samples=600/1m\n"
				      "web labels=zone=us samples=600/1m\n");
	REQUIRE(s);
	struct lbls eu, us;
	lbls_set(&eu, "zone", "eu", NULL, NULL);
	lbls_set(&us, "zone", "us", NULL, NULL);
	Fdod__SampleBatch b = FDOD__SAMPLE_BATCH__INIT;
	b.binary = "web";
	b.event = "cpu-clock";
	b.period = 10000000; /* 100 Hz */
	b.time_start = 100;
	b.time_end = 110;
	struct agg_result res = {0};
	Fdod__SamplingAdvice a = FDOD__SAMPLING_ADVICE__INIT;
	char agent[32];
	/* First batches: 10 s of 4 CPUs (eu: 4000 samples at 100 Hz), and
	 * of one CPU (us: 1000). */
	for (int i = 0; i < 4; i++) {
		snprintf(agent, sizeof agent, "eu%d", i);
		b.agent_id = agent;
		b.labels = eu.p;
		b.n_labels = eu.n;
		res.samples_accepted = 1000;
		REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1);
	}
	/* 10 per s over 4 CPU-s per s: 2.5 Hz, rounded. */
	CHECK_EQ_INT(a.freq_hz, 3);
	b.agent_id = "us0";
	b.labels = us.p;
	b.n_labels = us.n;
	REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1);
	CHECK_EQ_INT(a.freq_hz, 10);
	/* No rule covers a batch without labels. */
	b.labels = NULL;
	b.n_labels = 0;
	CHECK(srv_sampling_advise(s, &b, &res, &a) == 0);
	char err[200];
	REQUIRE(srv_sampling_override(s, "web", SRV_SAMPLING_PAUSED, 0, 60, err,
				      sizeof err) == FDO_OK);
	b.labels = eu.p;
	b.n_labels = eu.n;
	REQUIRE(srv_sampling_advise(s, &b, &res, &a) == 1);
	CHECK_EQ_STR(a.mode, "paused");
	struct fdo_buf j;
	fdo_buf_init(&j);
	srv_sampling_json(s, &j);
	CHECK(strstr(fdo_buf_cstr(&j),
		     "\"binary\":\"web\",\"labels\":\"zone=eu\"") != NULL);
	CHECK(strstr(fdo_buf_cstr(&j),
		     "\"binary\":\"web\",\"labels\":\"zone=us\"") != NULL);
	fdo_buf_fini(&j);
	fdo_buf_init(&j);
	srv_sampling_metrics(s, &j);
	CHECK(strstr(fdo_buf_cstr(&j), "fdod_sampling_freq_hz{binary=\"web\","
				       "labels=\"zone=us\"} 10") != NULL);
	fdo_buf_fini(&j);
	srv_sampling_destroy(s);
}

TEST(reload_keeps_the_old_policy_on_error)
{
	srv_sampling *s = with_policy("web max_freq=499\n");
	REQUIRE(s);
	char path[600], err[300];
	snprintf(path, sizeof path, "%s/policy", test_tmpdir());
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fputs("web max_freq=99\nweb2 max_freq=oops\n", f);
	fclose(f);
	CHECK_EQ_INT(srv_sampling_reload(s, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "line 2: max_freq=oops") != NULL);
	Fdod__SamplingAdvice a;
	REQUIRE(advise(s, "web", "h1", 10, &a) == 1);
	CHECK(a.freq_hz == 499 && a.generation == 1);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs("web max_freq=99\n", f);
	fclose(f);
	CHECK_EQ_INT(srv_sampling_reload(s, err, sizeof err), FDO_OK);
	REQUIRE(advise(s, "web", "h1", 10, &a) == 1);
	CHECK(a.generation == 2);
	srv_sampling_destroy(s);
}
