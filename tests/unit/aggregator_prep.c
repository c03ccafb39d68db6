/*
 * Tests for aggregator/prep.c: normalization of a batch, and the WAL record
 * codec (round trip; every truncation and random damage refused cleanly).
 */
#include <stdlib.h>

#include "aggregator/ingest_int.h"
#include "tests/unit/test.h"

static const char *BATCH =
	"agent a1\nseq 7\nhost h\nbinary web\nlabel mode=serving\n"
	"event cpu-clock\nperiod 1000\nweight 2.5\ntime 7200 7260\n"
	"mapping 0 aabbccdd 1000 2000 100 /bin/web\n"
	"mapping 1 eeff 5000 6000 0 /lib/libc\n"
	"stack 3 1010 5020 1800\n"
	"stack 4 9999\n"
	"stack 5 1010 9999\n"
	"branch 1010 1020 6\n"
	"branch 1010 5020 2\n";

static struct prep *build(struct agg_result *res)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	if (wire_batch_parse_text(BATCH, strlen(BATCH), NULL, &b, err,
				  sizeof err)) {
		fprintf(stderr, "  parse: %s\n", err);
		return NULL;
	}
	struct prep *p = NULL;
	memset(res, 0, sizeof *res);
	int rc = prep_build(b, &wire_limits_default, 3600, &p, res);
	wire_batch_free(b);
	return rc ? NULL : p;
}

static int keep_all(void *arg, uint64_t id)
{
	return 1;
}

static int keep_none(void *arg, uint64_t id)
{
	return 0;
}

TEST(normalizes_offsets_and_counts_unmapped)
{
	struct agg_result res;
	struct prep *p = build(&res);
	REQUIRE(p);
	CHECK_EQ_INT(p->b.nstacks, 2);
	CHECK_EQ_INT(res.samples_accepted, 8);
	CHECK_EQ_INT(res.samples_unmapped, 4);
	CHECK_EQ_INT(res.frames_unmapped, 2);
	CHECK_EQ_INT(res.branches_accepted, 6);
	CHECK_EQ_INT(res.branches_unmapped, 2);
	/* Leaf: addr - start + offset; callers one byte earlier. */
	CHECK_EQ_INT(p->b.frames[0].offset, 0x1010 - 0x1000 + 0x100);
	CHECK_EQ_INT(p->b.frames[1].offset, 0x5020 - 0x5000 - 1);
	CHECK_EQ_INT(p->b.frames[1].map, 1);
	CHECK_EQ_INT(p->b.frames[2].offset, 0x1800 - 0x1000 + 0x100 - 1);
	CHECK_EQ_STR(p->b.labels, "mode=serving");
	CHECK_EQ_INT(p->b.bucket, 7200);
	CHECK_EQ_INT(p->b.wq, 2500000);
	/* Same frames, same id; the stack ids differ between stacks. */
	CHECK(p->b.stacks[0].id != p->b.stacks[1].id);
	prep_free(p);
}

TEST(wal_record_round_trip)
{
	struct agg_result res;
	struct prep *p = build(&res);
	REQUIRE(p);
	REQUIRE(prep_compact(p, keep_all, NULL) == FDO_OK);
	struct fdo_buf b;
	fdo_buf_init(&b);
	REQUIRE(store_walbatch_encode(&p->b, &b) == FDO_OK);
	struct prep *q;
	REQUIRE(prep_decode((const uint8_t *)b.data, b.len, &q) == FDO_OK);
	CHECK_EQ_STR(q->b.agent, "a1");
	CHECK_EQ_STR(q->b.binary, "web");
	CHECK_EQ_INT(q->b.seq, 7);
	CHECK_EQ_INT(q->b.period, 1000);
	CHECK_EQ_INT(q->b.wq, p->b.wq);
	CHECK_EQ_INT(q->b.nmaps, 2);
	CHECK_EQ_INT(q->b.maps[1].hash, p->b.maps[1].hash);
	CHECK_EQ_INT(q->b.nstacks, p->b.nstacks);
	CHECK_EQ_INT(q->b.nframes, p->b.nframes);
	for (size_t i = 0; i < p->b.nstacks; i++) {
		CHECK(q->b.stacks[i].id == p->b.stacks[i].id);
		CHECK_EQ_INT(q->b.stacks[i].samples, p->b.stacks[i].samples);
		CHECK_EQ_INT(q->b.stacks[i].n, p->b.stacks[i].n);
	}
	for (size_t i = 0; i < p->b.nframes; i++)
		CHECK(q->b.frames[i].offset == p->b.frames[i].offset &&
		      q->b.frames[i].map == p->b.frames[i].map);
	CHECK_EQ_INT(q->b.nbranches, 1);
	CHECK_EQ_INT(q->b.branches[0].to, 0x1020 - 0x1000 + 0x100);
	prep_free(q);
	/* Compacted: stacks keep ids and counts, frames are gone. */
	REQUIRE(prep_compact(p, keep_none, NULL) == FDO_OK);
	CHECK_EQ_INT(p->b.nframes, 0);
	fdo_buf_reset(&b);
	REQUIRE(store_walbatch_encode(&p->b, &b) == FDO_OK);
	REQUIRE(prep_decode((const uint8_t *)b.data, b.len, &q) == FDO_OK);
	CHECK_EQ_INT(q->b.stacks[0].n, 0);
	CHECK_EQ_INT(q->b.stacks[1].samples, 5);
	prep_free(q);
	prep_free(p);
	fdo_buf_fini(&b);
}

TEST(damaged_records_are_refused_never_crash)
{
	struct agg_result res;
	struct prep *p = build(&res);
	REQUIRE(p);
	struct fdo_buf b;
	fdo_buf_init(&b);
	REQUIRE(store_walbatch_encode(&p->b, &b) == FDO_OK);
	prep_free(p);
	struct prep *q;
	for (size_t n = 0; n < b.len; n++)
		CHECK(prep_decode((const uint8_t *)b.data, n, &q) ==
		      FDO_ECORRUPT);
	uint8_t *copy = malloc(b.len);
	srand(42);
	int refused = 0;
	for (int round = 0; round < 5000; round++) {
		memcpy(copy, b.data, b.len);
		for (int k = 0; k < 1 + round % 4; k++)
			copy[rand() % b.len] ^= (uint8_t)(1 + rand() % 255);
		if (prep_decode(copy, b.len, &q) == FDO_OK)
			prep_free(q);
		else
			refused++;
	}
	CHECK(refused > 0);
	free(copy);
	fdo_buf_fini(&b);
}
