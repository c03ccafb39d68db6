/* Tests for agent/spool.c's node list and rendezvous hash
 * (agent_nodes_parse, agent_node_score, agent_node_pick). */
#include "agent/agent.h"
#include "tests/unit/test.h"

#define IDS 10000

static const char *const four[] = {"tcp://10.0.0.1:7470", "tcp://10.0.0.2:7470",
				   "tcp://10.0.0.3:7470",
				   "tcp://10.0.0.4:7470"};

static void id_of(int i, char *buf, size_t len)
{
	/* host-wide streams: AGENT_ID/BINARY */
	snprintf(buf, len, "host%04d.example/fdo-agent/%d/bin%d", i / 7,
		 1000 + i % 97, i % 7);
}

TEST(streams_spread_roughly_evenly_over_four_nodes)
{
	int per[4] = {0};
	char id[128];
	for (int i = 0; i < IDS; i++) {
		id_of(i, id, sizeof id);
		int k = agent_node_pick(id, four, 4, NULL);
		REQUIRE(k >= 0 && k < 4);
		per[k]++;
	}
	/* 2,500 expected each; a binomial sd is ~43: +-250 is ~6 sd */
	for (int k = 0; k < 4; k++)
		CHECK(per[k] > 2250 && per[k] < 2750);
}

TEST(removing_one_node_of_four_moves_only_its_streams)
{
	char id[128];
	const char *three[] = {four[0], four[1], four[3]}; /* 2 removed */
	unsigned char skip[4] = {0, 0, 1, 0};
	int moved = 0, of_removed = 0, per[4] = {0};
	for (int i = 0; i < IDS; i++) {
		id_of(i, id, sizeof id);
		int before = agent_node_pick(id, four, 4, NULL);
		int after3 = agent_node_pick(id, three, 3, NULL);
		int after = after3 == 2 ? 3 : after3; /* back to four's index */
		/* skipping a node (failover) gives the same as removing it */
		CHECK(agent_node_pick(id, four, 4, skip) == after);
		if (before == 2) {
			of_removed++;
			CHECK(after != 2);
			per[after]++;
		} else {
			CHECK(after == before);
		}
		moved += after != before;
	}
	CHECK(moved == of_removed);
	CHECK(of_removed > 2250 && of_removed < 2750);
	/* the removed node's streams spread over the other three */
	for (int k = 0; k < 4; k++)
		if (k != 2)
			CHECK(per[k] > of_removed / 3 - 250 &&
			      per[k] < of_removed / 3 + 250);
}

TEST(adding_a_node_takes_only_streams_it_now_tops)
{
	char id[128];
	const char *five[] = {four[0], four[1], four[2], four[3],
			      "tcp://10.0.0.5:7470"};
	int to_new = 0;
	for (int i = 0; i < IDS; i++) {
		id_of(i, id, sizeof id);
		int before = agent_node_pick(id, four, 4, NULL);
		int after = agent_node_pick(id, five, 5, NULL);
		if (after == 4)
			to_new++;
		else
			CHECK(after == before);
	}
	CHECK(to_new > 1800 && to_new < 2200); /* 2,000 expected */
}

TEST(the_hash_is_stable_and_depends_on_both_halves)
{
	/* fixed values: a change of the function moves every stream and its
	 * exactly-once state (docs/ingest.md#many-nodes) */
	CHECK(agent_node_score("a", "tcp://x:1") ==
	      agent_node_score("a", "tcp://x:1"));
	CHECK(agent_node_score("a", "tcp://x:1") !=
	      agent_node_score("a", "tcp://x:2"));
	CHECK(agent_node_score("ab", "c") != agent_node_score("a", "bc"));
	CHECK(agent_node_score("", "") != 0);
	/* the documented function (FNV-1a 64 over id, 0, URL; splitmix64's
	 * finalizer), as tests/agent/test_nodes.py computes it */
	CHECK(agent_node_score("host/fdo-agent/1", "tcp://n1:7470") ==
	      0x44317fb5b5dca9dfull);
	CHECK(agent_node_score("", "") == 0x25fc6dd36ce04b20ull);
	CHECK(agent_node_pick("x", four, 0, NULL) == -1);
	unsigned char all[4] = {1, 1, 1, 1};
	CHECK(agent_node_pick("x", four, 4, all) == -1);
	CHECK(agent_node_pick("x", four, 1, NULL) == 0);
}

TEST(node_lists_parse_with_clear_refusals)
{
	static char urls[AGENT_NODES_MAX][AGENT_NODE_URL_MAX];
	char err[512];
	size_t n = 99;
	CHECK(agent_nodes_parse("tcp://127.0.0.1:7470", urls, &n, err,
				sizeof err) == FDO_OK);
	CHECK(n == 1);
	CHECK_EQ_STR(urls[0], "tcp://127.0.0.1:7470");
	CHECK(agent_nodes_parse("tcp://a:1, ipc:///tmp/x ,tls+tcp://b:2", urls,
				&n, err, sizeof err) == FDO_OK);
	CHECK(n == 3);
	CHECK_EQ_STR(urls[1], "ipc:///tmp/x");
	CHECK_EQ_STR(urls[2], "tls+tcp://b:2");
	CHECK(agent_nodes_parse("tcp://a:1,,tcp://b:1", urls, &n, err,
				sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "empty node") != NULL);
	CHECK(agent_nodes_parse("", urls, &n, err, sizeof err) == FDO_EINVAL);
	CHECK(agent_nodes_parse("tcp://a:1,", urls, &n, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(agent_nodes_parse("tcp://a:1,tcp://a:1", urls, &n, err,
				sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "listed twice") != NULL);
	CHECK(agent_nodes_parse("localhost:7470", urls, &n, err, sizeof err) ==
	      FDO_EINVAL);
	CHECK(strstr(err, "not an nng URL") != NULL);
	/* the cap: 64 nodes pass, 65 do not */
	char list[65 * 32];
	size_t off = 0;
	for (int i = 0; i < 65; i++)
		off += (size_t)snprintf(list + off, sizeof list - off,
					"%stcp://n%d:7470", i ? "," : "", i);
	CHECK(agent_nodes_parse(list, urls, &n, err, sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "more than 64") != NULL);
	*strrchr(list, ',') = 0;
	CHECK(agent_nodes_parse(list, urls, &n, err, sizeof err) == FDO_OK);
	CHECK(n == 64);
	/* a URL too long */
	char big[400];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	memcpy(big, "tcp://", 6);
	CHECK(agent_nodes_parse(big, urls, &n, err, sizeof err) == FDO_EINVAL);
	CHECK(strstr(err, "longer than") != NULL);
}
