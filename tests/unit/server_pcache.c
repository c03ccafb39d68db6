/*
 * Tests for server/pcache.c: identical pulls of one store state share one
 * build (the others wait for it), a new generation builds again, a failed
 * build hands the work to a waiting pull, and the bounds hold.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "server/pcache.h"
#include "tests/unit/test.h"

static void answer_of(struct pcache_answer *a, const char *text)
{
	memset(a, 0, sizeof *a);
	a->content_type = "text/plain";
	a->len = strlen(text);
	a->body = malloc(a->len + 1);
	memcpy(a->body, text, a->len + 1);
	snprintf(a->hash_hex, sizeof a->hash_hex, "h-%s", text);
}

struct puller {
	struct pcache *c;
	const char *key;
	uint64_t gen;
	int fail_first; /* the first builder fails */
	atomic_int *builds, *failed;
	char got[64];
};

static void *pull(void *arg)
{
	struct puller *p = arg;
	struct pcache_entry *e;
	if (pcache_get(p->c, p->key, p->gen, fdo_now_ns(), &e)) {
		const struct pcache_answer *a = pcache_answer_of(e);
		snprintf(p->got, sizeof p->got, "%.*s", (int)a->len,
			 (const char *)a->body);
		pcache_release(p->c, e);
		return NULL;
	}
	atomic_fetch_add(p->builds, 1);
	/* A build takes a while: the others arrive and wait. Until one does
	 * (at most 20 s: under valgrind on a loaded host a fixed 100 ms was
	 * not always enough for another thread to start), then 50 ms more. */
	for (int i = 0; i < 2000; i++) {
		struct pcache_stats st;
		pcache_stats(p->c, &st);
		if (st.waits >= 1)
			break;
		usleep(10000);
	}
	usleep(50000);
	if (p->fail_first && atomic_fetch_add(p->failed, 1) == 0) {
		pcache_fail(p->c, e);
		snprintf(p->got, sizeof p->got, "error");
		return NULL;
	}
	struct pcache_answer a;
	answer_of(&a, "profile");
	snprintf(p->got, sizeof p->got, "%s", (const char *)a.body);
	pcache_publish(p->c, e, &a);
	free(a.body); /* NULL: taken over */
	return NULL;
}

static int run_pulls(struct pcache *c, int n, int fail_first, int *builds)
{
	pthread_t t[16];
	struct puller p[16];
	atomic_int nb = 0, nf = 0;
	for (int i = 0; i < n; i++) {
		p[i] = (struct puller){
			c, "bin?format=llvm", 7, fail_first, &nb, &nf, ""};
		pthread_create(&t[i], NULL, pull, &p[i]);
	}
	int ok = 1;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (strcmp(p[i].got, "profile") && strcmp(p[i].got, "error"))
			ok = 0;
	}
	*builds = atomic_load(&nb);
	return ok;
}

TEST(sixteen_identical_pulls_build_once)
{
	struct pcache *c;
	REQUIRE(pcache_create(16, 1 << 20, 60, &c) == FDO_OK);
	int builds;
	CHECK(run_pulls(c, 16, 0, &builds));
	CHECK_EQ_INT(builds, 1);
	struct pcache_stats st;
	pcache_stats(c, &st);
	CHECK_EQ_INT(st.builds, 1);
	CHECK_EQ_INT(st.hits, 15);
	CHECK(st.waits >= 1);
	CHECK_EQ_INT(st.entries, 1);
	CHECK_EQ_INT(st.bytes, 7);
	/* Later, the same state: a hit without building. */
	struct pcache_entry *e;
	CHECK_EQ_INT(pcache_get(c, "bin?format=llvm", 7, fdo_now_ns(), &e), 1);
	pcache_release(c, e);
	/* A new store state builds again and the old answer goes. */
	CHECK_EQ_INT(pcache_get(c, "bin?format=llvm", 8, fdo_now_ns(), &e), 0);
	REQUIRE(e != NULL);
	pcache_stats(c, &st);
	CHECK_EQ_INT(st.entries, 1);
	CHECK_EQ_INT(st.bytes, 0);
	pcache_fail(c, e);
	/* Another request text is another profile. */
	CHECK_EQ_INT(pcache_get(c, "bin?format=gcc", 7, fdo_now_ns(), &e), 0);
	pcache_fail(c, e);
	pcache_destroy(c);
}

/* Under live ingest the store changes while a profile is built: pulls
 * that arrive meanwhile (a newer generation each) join that build; once it
 * is built, a pull of a newer generation builds again. */
struct joiner {
	struct pcache *c;
	uint64_t gen;
	int hit;
	char got[64];
};

static void *join_pull(void *arg)
{
	struct joiner *j = arg;
	struct pcache_entry *e;
	j->hit = pcache_get(j->c, "bin?format=llvm", j->gen, fdo_now_ns(), &e);
	if (j->hit) {
		const struct pcache_answer *a = pcache_answer_of(e);
		snprintf(j->got, sizeof j->got, "%.*s", (int)a->len,
			 (const char *)a->body);
		pcache_release(j->c, e);
	} else {
		pcache_fail(j->c, e);
	}
	return NULL;
}

TEST(pulls_during_a_build_join_it_whatever_the_store_did_meanwhile)
{
	struct pcache *c;
	REQUIRE(pcache_create(16, 1 << 20, 60, &c) == FDO_OK);
	struct pcache_entry *e;
	uint64_t arrived = fdo_now_ns();
	usleep(1000);
	REQUIRE(pcache_get(c, "bin?format=llvm", 10, fdo_now_ns(), &e) == 0 &&
		e);
	pthread_t t[4];
	struct joiner j[4];
	for (int i = 0; i < 4; i++) {
		j[i] = (struct joiner){c, 11 + (uint64_t)i, -1, ""};
		pthread_create(&t[i], NULL, join_pull, &j[i]);
	}
	struct pcache_stats st;
	for (int i = 0; i < 500; i++) { /* until all four wait */
		pcache_stats(c, &st);
		if (st.waits == 4)
			break;
		usleep(2000);
	}
	CHECK_EQ_INT(st.waits, 4);
	struct pcache_answer a;
	answer_of(&a, "gen10");
	pcache_publish(c, e, &a);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(j[i].hit, 1);
		CHECK(!strcmp(j[i].got, "gen10"));
	}
	pcache_stats(c, &st);
	CHECK_EQ_INT(st.builds, 1);
	/* Built: the same generation shares it; so does a newer one that
	 * arrived before the build began (it was still flushing); a newer
	 * one that arrived after it began builds. */
	CHECK_EQ_INT(pcache_get(c, "bin?format=llvm", 10, fdo_now_ns(), &e), 1);
	pcache_release(c, e);
	CHECK_EQ_INT(pcache_get(c, "bin?format=llvm", 12, arrived, &e), 1);
	pcache_release(c, e);
	CHECK_EQ_INT(pcache_get(c, "bin?format=llvm", 12, fdo_now_ns(), &e), 0);
	pcache_fail(c, e);
	pcache_destroy(c);
}

TEST(a_failed_build_passes_to_a_waiting_pull)
{
	struct pcache *c;
	REQUIRE(pcache_create(16, 1 << 20, 60, &c) == FDO_OK);
	int builds;
	CHECK(run_pulls(c, 8, 1, &builds));
	CHECK_EQ_INT(builds, 2); /* the first failed, one waiter built */
	struct pcache_stats st;
	pcache_stats(c, &st);
	CHECK_EQ_INT(st.entries, 1);
	pcache_destroy(c);
}

TEST(bounds_and_a_cache_of_nothing)
{
	struct pcache *c;
	REQUIRE(pcache_create(2, 10, 60, &c) == FDO_OK);
	const char *keys[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++) {
		struct pcache_entry *e;
		REQUIRE(pcache_get(c, keys[i], 1, fdo_now_ns(), &e) == 0 && e);
		struct pcache_answer a;
		answer_of(&a, "1234");
		pcache_publish(c, e, &a);
	}
	struct pcache_stats st;
	pcache_stats(c, &st);
	CHECK_EQ_INT(st.entries, 2); /* "a" was the least recently used */
	CHECK_EQ_INT(st.bytes, 8);
	struct pcache_entry *e;
	CHECK_EQ_INT(pcache_get(c, "a", 1, fdo_now_ns(), &e), 0);
	/* An answer larger than the whole budget reaches its waiters (here:
	 * its builder holds it) and is not kept. */
	struct pcache_answer big;
	answer_of(&big, "0123456789abcdef");
	pcache_publish(c, e, &big);
	pcache_stats(c, &st);
	CHECK(st.bytes <= 10);
	CHECK_EQ_INT(pcache_get(c, "a", 1, fdo_now_ns(), &e), 0);
	pcache_fail(c, e);
	pcache_destroy(c);

	/* max age 0: a built answer is not reused after its build. */
	REQUIRE(pcache_create(4, 1 << 20, 0, &c) == FDO_OK);
	REQUIRE(pcache_get(c, "k", 1, fdo_now_ns(), &e) == 0 && e);
	struct pcache_answer a;
	answer_of(&a, "x");
	pcache_publish(c, e, &a);
	usleep(1000);
	CHECK_EQ_INT(pcache_get(c, "k", 1, fdo_now_ns(), &e), 0);
	pcache_fail(c, e);
	pcache_destroy(c);

	/* 0 entries: every pull builds, nobody waits. */
	REQUIRE(pcache_create(0, 1 << 20, 60, &c) == FDO_OK);
	CHECK_EQ_INT(pcache_get(c, "k", 1, fdo_now_ns(), &e), 0);
	CHECK(e == NULL);
	pcache_fail(c, e);
	pcache_release(c, e);
	pcache_destroy(c);
}
