/*
 * Tests for server/cluster.c: the node list is checked, every node computes
 * the same owner of a build-id, owners spread over the nodes, and removing
 * a node moves only the build-ids it owned (rendezvous hashing); a node
 * that does not answer HTTP is not waited for.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "server/cluster.h"
#include "tests/unit/test.h"

#define IDS 20000

static void random_id(uint8_t *b, unsigned seed)
{
	/* Deterministic pseudo-random 20-byte build-ids. */
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < 20; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

static const char *four = "http://10.0.0.1:7471, http://10.0.0.2:7471,"
			  "http://10.0.0.3:7471 ,https://node-4:7471";
static const char *three = "http://10.0.0.1:7471,http://10.0.0.2:7471,"
			   "https://node-4:7471";

TEST(list_is_checked)
{
	char err[300];
	CHECK(srv_cluster_parse(four, "http://10.0.0.3:7471", err,
				sizeof err) == FDO_OK);
	CHECK(srv_cluster_parse(four, "http://10.0.0.9:7471", err,
				sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "not one of --cluster-nodes") != NULL);
	CHECK(srv_cluster_parse(four, NULL, err, sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "--node-url") != NULL);
	CHECK(srv_cluster_parse("http://a:1,http://a:1", "http://a:1", err,
				sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	CHECK(srv_cluster_parse("http://a:1,,http://b:1", "http://a:1", err,
				sizeof err) == FDO_EINVAL);
	CHECK(srv_cluster_parse("http://a:1,ftp://b", "http://a:1", err,
				sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "ftp://b") != NULL);
	CHECK(srv_cluster_parse("http://a b:1", "http://a b:1", err,
				sizeof err) == FDO_EINVAL);
	char many[80 * 70] = "";
	for (int i = 0; i < 65; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many),
			 "%shttp://n%d:1", i ? "," : "", i);
	CHECK(srv_cluster_parse(many, "http://n0:1", err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, "more than") != NULL);
}

TEST(every_node_agrees_and_owners_spread)
{
	struct srv_cluster *a, *b;
	REQUIRE(srv_cluster_create(four, "http://10.0.0.1:7471", &a) == FDO_OK);
	REQUIRE(srv_cluster_create(four, "https://node-4:7471", &b) == FDO_OK);
	CHECK(srv_cluster_size(a) == 4);
	CHECK(srv_cluster_self(a) == 0 && srv_cluster_self(b) == 3);
	CHECK(!strcmp(srv_cluster_node(a, 2), "http://10.0.0.3:7471"));
	unsigned owned[4] = {0};
	for (unsigned i = 0; i < IDS; i++) {
		uint8_t id[20];
		random_id(id, i);
		size_t o = srv_cluster_owner(a, id, sizeof id);
		CHECK(o < 4);
		CHECK(o == srv_cluster_owner(b, id, sizeof id));
		owned[o < 4 ? o : 0]++;
	}
	/* Each node owns about a quarter: within 20-30 %. */
	for (int n = 0; n < 4; n++)
		CHECK(owned[n] > IDS / 5 && owned[n] < IDS * 3 / 10);
	srv_cluster_destroy(a);
	srv_cluster_destroy(b);
}

TEST(removing_a_node_moves_only_its_build_ids)
{
	struct srv_cluster *before, *after;
	REQUIRE(srv_cluster_create(four, "http://10.0.0.1:7471", &before) ==
		FDO_OK);
	REQUIRE(srv_cluster_create(three, "http://10.0.0.1:7471", &after) ==
		FDO_OK);
	unsigned moved = 0;
	for (unsigned i = 0; i < IDS; i++) {
		uint8_t id[20];
		random_id(id, i);
		const char *was = srv_cluster_node(
			before, srv_cluster_owner(before, id, sizeof id));
		const char *is = srv_cluster_node(
			after, srv_cluster_owner(after, id, sizeof id));
		if (strcmp(was, "http://10.0.0.3:7471"))
			CHECK(!strcmp(was, is));
		else
			moved++;
	}
	CHECK(moved > 0);
	srv_cluster_destroy(before);
	srv_cluster_destroy(after);
}

TEST(owner_that_does_not_answer_is_taken_over)
{
	/* Port 9 on loopback: nothing listens (discard is not run). */
	struct srv_cluster *c;
	REQUIRE(srv_cluster_create("http://127.0.0.1:9,http://127.0.0.1:1",
				   "http://127.0.0.1:1", &c) == FDO_OK);
	unsigned mine = 0, other = 0;
	for (unsigned i = 0; i < 64; i++) {
		uint8_t id[20];
		random_id(id, i);
		const char *owner = NULL;
		int here = srv_cluster_symbolize_here(c, id, sizeof id, &owner);
		REQUIRE(owner != NULL);
		CHECK(here == 1); /* owner, or the owner is down */
		if (!strcmp(owner, "http://127.0.0.1:1"))
			mine++;
		else
			other++;
	}
	CHECK(mine > 0 && other > 0);
	srv_cluster_destroy(c);
}
