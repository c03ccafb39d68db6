/* Tests for storage/walrec.c: the WAL record of one batch. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "storage/storage.h"
#include "tests/unit/test.h"

/* Two mappings, three stacks (the second with no frames: an earlier
 * record carried them), one branch. */
static void fill(struct store_walbatch *b, struct store_walmap maps[2],
		 struct store_walframe frames[3], struct store_walstack st[3],
		 struct store_walbranch *br)
{
	memset(b, 0, sizeof *b);
	memset(maps, 0, 2 * sizeof *maps);
	b->agent = "agent-1";
	b->binary = "svc";
	b->host = "h1";
	b->labels = "dc=x";
	b->seq = 0x0102030405060708ull;
	b->bucket = 7200;
	b->time_end = 7300;
	b->period = 1000;
	b->wq = 1u << 20;
	for (int i = 0; i < 2; i++) {
		maps[i].build_id_len = (uint8_t)(20 + i);
		memset(maps[i].build_id, 0xa0 + i, maps[i].build_id_len);
		maps[i].main = (uint8_t)(i == 0);
	}
	b->maps = maps;
	b->nmaps = 2;
	frames[0] = (struct store_walframe){0, 0x1000};
	frames[1] = (struct store_walframe){1, 0x2fff};
	frames[2] = (struct store_walframe){0, 0x1100};
	b->frames = frames;
	b->nframes = 3;
	st[0] = (struct store_walstack){11, 5, 0, 2};
	st[1] = (struct store_walstack){12, 6, 99, 0};
	st[2] = (struct store_walstack){13, 7, 2, 1};
	b->stacks = st;
	b->nstacks = 3;
	*br = (struct store_walbranch){1, 0x10, 0x20, 9};
	b->branches = br;
	b->nbranches = 1;
}

TEST(round_trip_and_every_truncation_is_corrupt)
{
	struct store_walbatch b, d;
	struct store_walmap maps[2];
	struct store_walframe frames[3];
	struct store_walstack st[3];
	struct store_walbranch br;
	fill(&b, maps, frames, st, &br);
	struct fdo_buf out;
	fdo_buf_init(&out);
	REQUIRE(store_walbatch_encode(&b, &out) == FDO_OK);
	REQUIRE(store_walbatch_decode(out.data, out.len, &d) == FDO_OK);
	CHECK(!strcmp(d.agent, "agent-1") && !strcmp(d.binary, "svc") &&
	      !strcmp(d.host, "h1") && !strcmp(d.labels, "dc=x"));
	CHECK(d.seq == b.seq && d.bucket == 7200 && d.time_end == 7300 &&
	      d.period == 1000 && d.wq == b.wq);
	REQUIRE(d.nmaps == 2);
	CHECK(d.maps[1].build_id_len == 21 && d.maps[1].build_id[20] == 0xa1 &&
	      d.maps[0].main == 1 && d.maps[1].main == 0);
	CHECK(d.maps[1].hash == store_buildid_hash(maps[1].build_id, 21));
	REQUIRE(d.nstacks == 3 && d.nframes == 3);
	CHECK(d.stacks[1].id == 12 && d.stacks[1].n == 0 &&
	      d.stacks[1].samples == 6);
	CHECK(d.stacks[2].first == 2 && d.frames[2].offset == 0x1100);
	CHECK(d.frames[1].map == 1 && d.frames[1].offset == 0x2fff);
	REQUIRE(d.nbranches == 1);
	CHECK(d.branches[0].to == 0x20 && d.branches[0].samples == 9);
	/* The same bytes again. */
	struct fdo_buf again;
	fdo_buf_init(&again);
	REQUIRE(store_walbatch_encode(&d, &again) == FDO_OK);
	CHECK(again.len == out.len && !memcmp(again.data, out.data, out.len));
	store_walbatch_clear(&d);
	CHECK(d.agent == NULL && d.nstacks == 0);
	for (size_t n = 0; n < out.len; n++) {
		CHECK(store_walbatch_decode(out.data, n, &d) == FDO_ECORRUPT);
		CHECK(d.agent == NULL && d.maps == NULL);
	}
	/* A byte more, another format, a mapping index out of range. */
	uint8_t *copy = malloc(out.len + 1);
	REQUIRE(copy);
	memcpy(copy, out.data, out.len);
	copy[out.len] = 0;
	CHECK(store_walbatch_decode(copy, out.len + 1, &d) == FDO_ECORRUPT);
	copy[0] = 2;
	CHECK(store_walbatch_decode(copy, out.len, &d) == FDO_ECORRUPT);
	memcpy(copy, out.data, out.len);
	/* The branch's mapping: the 34 bytes before the end begin with it. */
	copy[out.len - 26] = 0;
	copy[out.len - 25] = 2;
	CHECK(store_walbatch_decode(copy, out.len, &d) == FDO_ECORRUPT);
	free(copy);
	fdo_buf_fini(&again);
	fdo_buf_fini(&out);
}

TEST(what_does_not_fit_is_refused_before_a_byte)
{
	struct store_walbatch b;
	struct store_walmap maps[2];
	struct store_walframe frames[3];
	struct store_walstack st[3];
	struct store_walbranch br;
	struct fdo_buf out;
	fdo_buf_init(&out);

	fill(&b, maps, frames, st, &br);
	frames[1].map = 2; /* no such mapping */
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	fill(&b, maps, frames, st, &br);
	st[2].n = 2; /* frames past the end */
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	fill(&b, maps, frames, st, &br);
	br.map = 5;
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	fill(&b, maps, frames, st, &br);
	maps[0].build_id_len = 0;
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	fill(&b, maps, frames, st, &br);
	b.host = NULL;
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	fill(&b, maps, frames, st, &br);
	char *big = malloc(70000);
	REQUIRE(big);
	memset(big, 'x', 69999);
	big[69999] = 0;
	b.labels = big;
	CHECK(store_walbatch_encode(&b, &out) == FDO_EINVAL);
	free(big);
	CHECK(out.len == 0);
	fdo_buf_fini(&out);
}
