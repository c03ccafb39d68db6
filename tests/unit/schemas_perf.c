/* Tests for schemas/perf.c: perf script text and perf.data headers. */
#include "common/buf.h"
#include "schemas/schemas.h"
#include "tests/unit/test.h"

#define EXE_ID "72bf06c6bbf1b667161c5c0086e6a979606ed1bd"
#define LIB_ID "b517523ef515b3d4c14de1aac7e9c9e33e1a02fe"

static const char ids[] = EXE_ID " /bin/prog\n" LIB_ID " /lib/libw.so\n"
				 "32a7f3bacee6bf69da94f497a8a076483baea20e "
				 "[kernel.kallsyms]\n";

/* The start of a recording of /bin/prog: exec, its mmaps. */
#define PRELUDE                                                                \
	"    0/0         0.000000: PERF_RECORD_MMAP -1/0: "                    \
	"[0xffffffff81000000(0x1259b00) @ 0xffffffff81000000]: x "             \
	"[kernel.kallsyms]_text\n"                                             \
	"  100/100   100.000000: PERF_RECORD_COMM exec: prog:100/100\n"        \
	"  100/100   100.000001: PERF_RECORD_MMAP2 100/100: "                  \
	"[0x555555555000(0x1000) @ 0x1000 fe:00 1 2]: r-xp /bin/prog\n"        \
	"  100/100   100.000002: PERF_RECORD_MMAP2 100/100: "                  \
	"[0x7f0000001000(0x2000) @ 0x1000 fe:00 3 4]: r-xp /lib/libw.so\n"     \
	"  100/100   100.000003: PERF_RECORD_MMAP2 100/100: "                  \
	"[0x7f2222200000(0x100000) @ 0x26000 fe:00 5 6]: r-xp "                \
	"/lib/libc.so.6\n"

static struct wire_perf *decoder(const char *binary)
{
	static const char *labels[] = {"mode=test"};
	struct wire_perf_opts o = {.agent_id = "perf-import/t",
				   .host = "h1",
				   .binary = binary,
				   .labels = labels,
				   .n_labels = 1,
				   .time_end = 1700000000};
	struct wire_perf *d = NULL;
	if (wire_perf_create(&o, &d))
		return NULL;
	if (wire_perf_buildids(d, ids, strlen(ids), NULL, 0)) {
		wire_perf_destroy(d);
		return NULL;
	}
	return d;
}

/* Decode text in one chunk (or in chunks of step bytes). */
static int decode(const char *text, size_t step, const char *binary,
		  struct wire_perf_result *r, char *err, size_t errlen)
{
	struct wire_perf *d = decoder(binary);
	if (!d)
		return FDO_ENOMEM;
	size_t len = strlen(text);
	int rc = FDO_OK;
	if (!step)
		step = len ? len : 1;
	for (size_t i = 0; i < len && !rc; i += step)
		rc = wire_perf_feed(d, text + i,
				    len - i < step ? len - i : step, err,
				    errlen);
	if (!rc)
		rc = wire_perf_finish(d, r, err, errlen);
	wire_perf_destroy(d);
	return rc;
}

static char *printed(const struct wire_perf_result *r)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	for (size_t i = 0; i < r->n_batches; i++) {
		char *t;
		if (wire_batch_print_text(r->batches[i], &t, NULL))
			break;
		fdo_buf_puts(&b, t);
		free(t);
	}
	fdo_buf_cstr(&b); /* steal hands out the bytes unterminated */
	return fdo_buf_steal(&b, NULL);
}

/* Perf 6.1 prints callchain frames as file offsets. */
static const char relative[] = PRELUDE
	"  100/100   100.500000:     250000 cpu-clock: \n"
	"\tffffffff8177d51a ([kernel.kallsyms])\n"
	"\t            11a6 (/bin/prog)\n"
	"\t            1165 (/bin/prog)\n"
	"\t           2724a (/lib/libc.so.6)\n"
	"\n"
	"  100/100   101.000000:     250000 cpu-clock: \n"
	"\t            1128 (/lib/libw.so)\n"
	"\t            1175 (/bin/prog)\n"
	"\n"
	"  100/100   101.500000:     250000 cpu-clock: \n"
	"\tffffffff8177d51a ([kernel.kallsyms])\n"
	"\t            11a6 (/bin/prog)\n"
	"\t            1165 (/bin/prog)\n"
	"\t           2724a (/lib/libc.so.6)\n"
	"\n";

/* Newer perf prints them as absolute addresses. */
static const char absolute[] = PRELUDE
	"  100/100   100.500000:     250000 cpu-clock: \n"
	"\tffffffff8177d51a ([kernel.kallsyms])\n"
	"\t    5555555551a6 hot (/bin/prog)\n"
	"\t    555555555165 main (/bin/prog)\n"
	"\t    7f2222227a4a __libc_start_call_main (/lib/libc.so.6)\n"
	"\n"
	"  100/100   101.000000:     250000 cpu-clock: \n"
	"\t    7f0000001128 libwork (/lib/libw.so)\n"
	"\t    555555555175 main (/bin/prog)\n"
	"\n"
	"  100/100   101.500000:     250000 cpu-clock: \n"
	"\tffffffff8177d51a ([kernel.kallsyms])\n"
	"\t    5555555551a6 hot (/bin/prog)\n"
	"\t    555555555165 main (/bin/prog)\n"
	"\t    7f2222227a4a __libc_start_call_main (/lib/libc.so.6)\n"
	"\n";

static const char expect_batch[] =
	"agent   perf-import/t\n"
	"seq     1\n"
	"host    h1\n"
	"binary  prog\n"
	"label   mode=test\n"
	"event   cpu-clock\n"
	"period  250000\n"
	"weight  1\n"
	"time    1699999999 1700000000\n"
	"mapping 0 " EXE_ID " 10000000000 20000000000 0 /bin/prog\n"
	"mapping 1 " LIB_ID " 20000000000 30000000000 0 /lib/libw.so\n"
	"stack   2 100000011a6 10000001165 0\n"
	"stack   1 20000001128 10000001175\n";

TEST(relative_frames_become_file_offsets)
{
	struct wire_perf_result r;
	char err[256] = "";
	int rc = decode(relative, 0, NULL, &r, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	char *t = printed(&r);
	CHECK_EQ_STR(t, expect_batch);
	free(t);
	CHECK_EQ_INT(r.stats.samples, 3);
	CHECK_EQ_INT(r.stats.frames, 10);
	CHECK_EQ_INT(r.stats.frames_kernel, 2); /* left out */
	CHECK_EQ_INT(r.stats.frames_no_file, 0);
	CHECK_EQ_INT(r.stats.frames_no_build_id, 2);
	wire_perf_result_fini(&r);
}

TEST(absolute_frames_give_the_same_batch)
{
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(decode(absolute, 0, NULL, &r, err, sizeof err) == FDO_OK);
	char *t = printed(&r);
	CHECK_EQ_STR(t, expect_batch);
	free(t);
	wire_perf_result_fini(&r);
}

TEST(any_chunking_gives_the_same_batch)
{
	for (size_t step = 1; step < 40; step += 7) {
		struct wire_perf_result r;
		REQUIRE(decode(relative, step, NULL, &r, NULL, 0) == FDO_OK);
		char *t = printed(&r);
		CHECK_EQ_STR(t, expect_batch);
		free(t);
		wire_perf_result_fini(&r);
	}
}

TEST(fork_inherits_and_exec_replaces_mappings)
{
	const char *text = PRELUDE
		"  100/100   100.100000: PERF_RECORD_FORK(200:200):(100:100)\n"
		"  200/200   100.200000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n"
		"  200/200   100.300000: PERF_RECORD_COMM exec: sh:200/200\n"
		"  200/200   100.400000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n"
		"  100/100   100.500000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n";
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(decode(text, 0, NULL, &r, err, sizeof err) == FDO_OK);
	REQUIRE(r.n_batches == 1);
	const Fdod__SampleBatch *b = r.batches[0];
	/* The child before exec and the parent: mapped; after exec: not. */
	REQUIRE(b->n_stacks == 2);
	CHECK_EQ_INT(b->stacks[0]->count, 2);
	CHECK_EQ_INT(b->stacks[0]->addrs[0], 0x100000011a6ull);
	CHECK_EQ_INT(b->stacks[1]->addrs[0], 0);
	CHECK_EQ_INT(r.stats.samples_unmapped, 1);
	CHECK_EQ_INT(b->period, 1000);
	wire_perf_result_fini(&r);
}

TEST(brstack_becomes_branch_records)
{
	const char *text = PRELUDE
		"  100/100   100.500000:    1000000 cycles: \n"
		"\t    5555555551a6 (/bin/prog)\n"
		"0x5555555551b2(/bin/prog)/0x5555555551a0(/bin/prog)/P/-/-/12 "
		" 0x5555555551b2/0x5555555551a0/M/-/-/3  "
		"0xffffffff81000000/0x5555555551a0/-/-/-/0/COND/- \n"
		"  100/100   100.600000:    1000000 cycles:      "
		"5555555551ab (/bin/prog)0x55555555517d/0x555555555160/P/-/-/5\n";
	struct wire_perf_result r;
	char err[256] = "";
	int rc = decode(text, 0, "prog", &r, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	const Fdod__SampleBatch *b = r.batches[0];
	REQUIRE(b->n_branches == 3);
	CHECK_EQ_INT(b->branches[0]->from, 0x100000011b2ull);
	CHECK_EQ_INT(b->branches[0]->to, 0x100000011a0ull);
	CHECK_EQ_INT(b->branches[0]->count, 2);
	CHECK_EQ_INT(b->branches[0]->mispredicts, 1);
	CHECK_EQ_INT(b->branches[1]->from, 0);
	CHECK_EQ_INT(b->branches[2]->from, 0x1000000117dull);
	CHECK_EQ_INT(r.stats.branches, 4);
	CHECK_EQ_INT(r.stats.branches_unmapped, 1);
	wire_perf_result_fini(&r);
}

TEST(mmap_build_ids_need_no_table)
{
	const char *text =
		"  7/7   5.000000: PERF_RECORD_MMAP2 7/7: [0x400000(0x1000) @ 0 "
		"<" EXE_ID ">]: r-xp /opt/app\n"
		"  7/7   5.100000:          1 cycles:u:      400010 (/opt/app)\n";
	struct wire_perf_opts o = {
		.agent_id = "a", .host = "h", .time_end = 10};
	struct wire_perf *d;
	REQUIRE(wire_perf_create(&o, &d) == FDO_OK);
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(wire_perf_feed(d, text, strlen(text), err, sizeof err) == 0);
	REQUIRE(wire_perf_finish(d, &r, err, sizeof err) == FDO_OK);
	wire_perf_destroy(d);
	REQUIRE(r.n_batches == 1);
	CHECK_EQ_STR(r.batches[0]->binary, "app");
	CHECK_EQ_STR(r.batches[0]->event, "cycles:u");
	CHECK_EQ_INT(r.batches[0]->stacks[0]->addrs[0], 0x10000000010ull);
	wire_perf_result_fini(&r);
}

TEST(batches_split_at_an_hour_and_keep_their_times)
{
	const char *text = PRELUDE
		"  100/100   200.000000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n"
		"  100/100  4000.000000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n"
		"  100/100  4000.500000:       3000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n";
	struct wire_perf_result r;
	REQUIRE(decode(text, 0, NULL, &r, NULL, 0) == FDO_OK);
	REQUIRE(r.n_batches == 2);
	CHECK_EQ_INT(r.batches[0]->seq, 1);
	CHECK_EQ_INT(r.batches[1]->seq, 2);
	CHECK_EQ_INT(r.batches[0]->time_end, 1700000000 - 3800);
	CHECK_EQ_INT(r.batches[1]->time_start, 1700000000);
	CHECK_EQ_INT(r.batches[1]->period, 2000);
	CHECK_EQ_INT(r.batches[1]->stacks[0]->count, 2);
	wire_perf_result_fini(&r);
}

/* perf report --header-only's event lines, as perf 6.1 prints them. */
#define EV_FP                                                                  \
	"# event : name = cpu-clock, , id = { 6877, 6878 }, type = 1, "        \
	"size = 128, { sample_period, sample_freq } = 4000, sample_type = "    \
	"IP|TID|TIME|CALLCHAIN|PERIOD, read_format = ID|LOST, disabled = 1, "  \
	"inherit = 1, freq = 1, enable_on_exec = 1\n"
#define EV_DWARF                                                               \
	"# event : name = cpu-clock, , id = { 6890, 6891 }, type = 1, "        \
	"size = 128, { sample_period, sample_freq } = 4000, sample_type = "    \
	"IP|TID|TIME|ADDR|CALLCHAIN|PERIOD|REGS_USER|STACK_USER|DATA_SRC, "    \
	"read_format = ID|LOST, disabled = 1, freq = 1, "                      \
	"exclude_callchain_user = 1, sample_regs_user = 0xff0fff, "            \
	"sample_stack_user = 8192\n"
#define EV_FIXED                                                               \
	"# event : name = cpu-clock, , id = { 6921, 6922 }, type = 1, "        \
	"size = 128, { sample_period, sample_freq } = 100000, sample_type = "  \
	"IP|TID|TIME|CALLCHAIN, read_format = ID|LOST, disabled = 1\n"
#define EV_LBR                                                                 \
	"# event : name = cycles:u, , id = { 7 }, type = 0, size = 128, "      \
	"{ sample_period, sample_freq } = 4000, sample_type = "                \
	"IP|TID|TIME|CALLCHAIN|PERIOD|BRANCH_STACK, freq = 1, "                \
	"branch_sample_type = USER|CALL_STACK|NO_FLAGS|NO_CYCLES\n"

/* The same stack as -g and as --call-graph dwarf prints it (perf 6.1,
 * recorded on this machine: callers are return address - 1 in dwarf). */
TEST(dwarf_callers_become_return_addresses)
{
	const char *chain = "  100/100   100.500000:     250000 cpu-clock: \n"
			    "\tffffffff8177d51a ([kernel.kallsyms])\n"
			    "\t            11a6 (/bin/prog)\n"
			    "\t            1164 (/bin/prog)\n"
			    "\t           2724a (/lib/libc.so.6)\n\n";
	const char *fp_chain =
		"  100/100   100.500000:     250000 cpu-clock: \n"
		"\tffffffff8177d51a ([kernel.kallsyms])\n"
		"\t            11a6 (/bin/prog)\n"
		"\t            1165 (/bin/prog)\n"
		"\t           2724b (/lib/libc.so.6)\n\n";
	struct fdo_buf dw, fp;
	fdo_buf_init(&dw);
	fdo_buf_init(&fp);
	fdo_buf_puts(&dw, EV_DWARF PRELUDE);
	fdo_buf_puts(&dw, chain);
	fdo_buf_puts(&fp, EV_FP PRELUDE);
	fdo_buf_puts(&fp, fp_chain);
	struct wire_perf_result a, b;
	char err[256] = "";
	REQUIRE(decode(fdo_buf_cstr(&dw), 0, "prog", &a, err, sizeof err) == 0);
	REQUIRE(decode(fdo_buf_cstr(&fp), 0, "prog", &b, err, sizeof err) == 0);
	char *ta = printed(&a), *tb = printed(&b);
	CHECK_EQ_STR(ta, tb);
	CHECK(strstr(ta, "stack   1 100000011a6 10000001165 0\n") != NULL);
	free(ta);
	free(tb);
	wire_perf_result_fini(&a);
	wire_perf_result_fini(&b);
	/* The header through wire_perf_header (perf report --header-only). */
	struct wire_perf *d = decoder("prog");
	REQUIRE(d);
	REQUIRE(wire_perf_header(d, EV_DWARF, strlen(EV_DWARF), err,
				 sizeof err) == FDO_OK);
	REQUIRE(wire_perf_feed(d, PRELUDE, strlen(PRELUDE), err, sizeof err) ==
		FDO_OK);
	REQUIRE(wire_perf_feed(d, chain, strlen(chain), err, sizeof err) ==
		FDO_OK);
	REQUIRE(wire_perf_finish(d, &a, err, sizeof err) == FDO_OK);
	wire_perf_destroy(d);
	CHECK_EQ_INT(a.batches[0]->stacks[0]->addrs[1], 0x10000001165ull);
	wire_perf_result_fini(&a);
	fdo_buf_fini(&dw);
	fdo_buf_fini(&fp);
}

TEST(a_fixed_period_comes_from_the_header)
{
	const char *text = EV_FIXED PRELUDE
		"  100/100   100.5: cpu-clock:      5555555551a6 (/bin/prog)\n"
		"  100/100   100.6: cpu-clock:      5555555551a6 (/bin/prog)\n";
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(decode(text, 0, "prog", &r, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(r.batches[0]->period, 100000);
	CHECK_EQ_INT(r.batches[0]->stacks[0]->count, 2);
	wire_perf_result_fini(&r);
}

static void refused_named(const char *text, const char *binary, int want,
			  const char *msg)
{
	struct wire_perf_result r = {0};
	char err[256] = "";
	int rc = decode(text, 0, binary, &r, err, sizeof err);
	CHECK_EQ_INT(rc, want);
	if (!strstr(err, msg)) {
		fprintf(stderr, "  error '%s' lacks '%s'\n", err, msg);
		test_failed_now = 1;
	}
	CHECK(r.n_batches == 0 && r.batches == NULL);
}

static void refused(const char *text, int want, const char *msg)
{
	refused_named(text, NULL, want, msg);
}

TEST(fork_of_an_unknown_parent_resets_a_reused_pid)
{
	/* pid 200 mapped /bin/prog, exited without a record, and its pid
	 * came back as the child of a process the text never showed. */
	const char *text = PRELUDE
		"  100/100   100.100000: PERF_RECORD_FORK(200:200):(100:100)\n"
		"  200/200   100.200000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n"
		"  999/999   100.300000: PERF_RECORD_FORK(200:200):(999:999)\n"
		"  200/200   100.400000:       1000 cpu-clock:      "
		"5555555551a6 (/bin/prog)\n";
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(decode(text, 0, "prog", &r, err, sizeof err) == FDO_OK);
	REQUIRE(r.n_batches == 1 && r.batches[0]->n_stacks == 2);
	CHECK_EQ_INT(r.batches[0]->stacks[0]->addrs[0], 0x100000011a6ull);
	CHECK_EQ_INT(r.batches[0]->stacks[1]->addrs[0], 0);
	CHECK_EQ_INT(r.stats.samples_unmapped, 1);
	wire_perf_result_fini(&r);
}

/* /bin/prog at 0x1800 from file offset 0x1000: 0x1900 fits both readings
 * (absolute: offset 0x1100; an offset: 0x1900). */
#define LOW_PRELUDE                                                            \
	"  100/100   100.000000: PERF_RECORD_COMM exec: prog:100/100\n"        \
	"  100/100   100.000001: PERF_RECORD_MMAP2 100/100: "                  \
	"[0x1800(0x1000) @ 0x1000 fe:00 1 2]: r-xp /bin/prog\n"                \
	"  100/100   100.000002: PERF_RECORD_MMAP2 100/100: "                  \
	"[0x7f0000000000(0x10000) @ 0 00:00 0 0]: r-xp //anon\n"

TEST(only_frames_in_files_with_build_ids_decide_the_reading)
{
	/* A JIT frame (//anon, absolute by nature) decides nothing: the
	 * frame that fits both readings stays unmapped. */
	const char *text = LOW_PRELUDE "  100/100   100.5:    1 cpu-clock: \n"
				       "\t    7f0000000010 (//anon)\n"
				       "\t            1900 (/bin/prog)\n\n";
	struct wire_perf_result r;
	char err[256] = "";
	int rc = decode(text, 0, "prog", &r, err, sizeof err);
	REQUIRE(rc == FDO_EINVAL); /* no frame left in a known file */
	struct wire_perf *d = decoder("prog");
	REQUIRE(d);
	REQUIRE(wire_perf_feed(d, text, strlen(text), err, sizeof err) == 0);
	/* A frame only an offset fits decides; then 0x1900 is an offset. */
	const char *more = "  100/100   100.6:    1 cpu-clock: \n"
			   "\t            1010 (/bin/prog)\n"
			   "\t            1900 (/bin/prog)\n\n";
	REQUIRE(wire_perf_feed(d, more, strlen(more), err, sizeof err) == 0);
	REQUIRE(wire_perf_finish(d, &r, err, sizeof err) == FDO_OK);
	wire_perf_destroy(d);
	REQUIRE(r.n_batches == 1 && r.batches[0]->n_stacks == 2);
	CHECK_EQ_INT(r.batches[0]->stacks[0]->addrs[1], 0);
	CHECK_EQ_INT(r.batches[0]->stacks[1]->addrs[0], 0x10000001010ull);
	CHECK_EQ_INT(r.batches[0]->stacks[1]->addrs[1], 0x10000001900ull);
	CHECK_EQ_INT(r.stats.frames_ambiguous, 1);
	wire_perf_result_fini(&r);
}

TEST(a_file_read_both_ways_stops_the_decode)
{
	/* 0x1010 fits only as an offset, 0x2780 only as an address. */
	const char *text = LOW_PRELUDE "  100/100   100.5:    1 cpu-clock: \n"
				       "\t            1010 (/bin/prog)\n\n"
				       "  100/100   100.6:    1 cpu-clock: \n"
				       "\t            2780 (/bin/prog)\n\n";
	refused_named(text, "prog", FDO_EINVAL,
		      "line 8: frames of /bin/prog read as absolute "
		      "addresses and as file offsets");
}

/* Decode generated text; the stats of a successful decode in *st. */
static int decode_buf(struct fdo_buf *b, struct wire_perf_stats *st, char *err,
		      size_t errlen)
{
	struct wire_perf_result r = {0};
	if (b->oom) {
		fdo_buf_fini(b);
		return FDO_ENOMEM;
	}
	int rc = decode(fdo_buf_cstr(b), 0, "prog", &r, err, errlen);
	if (!rc && st)
		*st = r.stats;
	wire_perf_result_fini(&r);
	fdo_buf_fini(b);
	return rc;
}

static void mmap_line(struct fdo_buf *b, int pid, uint64_t start,
		      const char *path)
{
	char l[256];
	snprintf(l, sizeof l,
		 "  %d/%d   1.0: PERF_RECORD_MMAP2 %d/%d: [%#llx(0x1000) @ "
		 "0x1000 fe:00 1 2]: r-xp %s\n",
		 pid, pid, pid, pid, (unsigned long long)start, path);
	fdo_buf_puts(b, l);
}

#define ONE_SAMPLE "  100/100   2.0:  1 ev:  5555555551a6 (/bin/prog)\n"

TEST(descending_mmaps_cost_linear_work)
{
	/* The loader maps libraries top down: each mmap lands below the
	 * last. 65530 of them (the per-process bound) move few entries. */
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE);
	for (uint64_t i = 0; i < 65530 - 3; i++)
		mmap_line(&b, 100, 0x7e0000000000ull - i * 0x2000, "/bin/prog");
	fdo_buf_puts(&b, ONE_SAMPLE);
	struct wire_perf_stats st;
	char err[256] = "";
	int rc = decode_buf(&b, &st, err, sizeof err);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(rc == FDO_OK);
	CHECK(st.map_work < 4 * 65530); /* was 65530^2 / 2 */
	/* One more is past the bound. */
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE);
	for (uint64_t i = 0; i < 65530 - 2; i++)
		mmap_line(&b, 100, 0x7e0000000000ull - i * 0x2000, "/bin/prog");
	CHECK_EQ_INT(decode_buf(&b, NULL, err, sizeof err), FDO_ELIMIT);
	CHECK(strstr(err, "line 65533: process 100: more than 65530 "
			  "mappings") != NULL);
}

/* A process with n mappings, then forks of it: with exits (the copies
 * are freed, the work is not) or without (the copies stay). */
static int forks(int n, int nforks, int exits, char *err, size_t errlen)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE);
	for (int i = 0; i < n; i++)
		mmap_line(&b, 100, 0x100000000ull + (uint64_t)i * 0x2000,
			  "/bin/prog");
	for (int i = 0; i < nforks; i++) {
		char l[160];
		snprintf(l, sizeof l,
			 "  100/100   1.5: PERF_RECORD_FORK(%d:%d):(100:100)\n",
			 1000 + i, 1000 + i);
		fdo_buf_puts(&b, l);
		if (exits) {
			snprintf(
				l, sizeof l,
				"  %d/%d   1.6: PERF_RECORD_EXIT(%d:%d):(100:100)\n",
				1000 + i, 1000 + i, 1000 + i, 1000 + i);
			fdo_buf_puts(&b, l);
		}
	}
	fdo_buf_puts(&b, ONE_SAMPLE);
	return decode_buf(&b, NULL, err, errlen);
}

TEST(forks_cannot_amplify_mappings)
{
	char err[256] = "";
	/* Each fork copies 60000 mappings; kept, 70 forks pass the total. */
	CHECK_EQ_INT(forks(60000, 100, 0, err, sizeof err), FDO_ELIMIT);
	CHECK(strstr(err, "more than 4194304 mappings in all processes"));
	/* Freed at once, the copying itself is bounded by the text's
	 * length (the old decoder did 10^9 copies here). */
	CHECK_EQ_INT(forks(60000, 20000, 1, err, sizeof err), FDO_ELIMIT);
	CHECK(strstr(err, "mapping entries, more than 67108864 + 4096 per "
			  "line"));
	/* A real recording's forks are far inside both. */
	CHECK_EQ_INT(forks(300, 2000, 1, err, sizeof err), FDO_OK);
}

TEST(files_and_paths_are_bounded)
{
	struct fdo_buf b;
	char err[256] = "", path[64];
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE);
	for (int i = 0; i < 65536; i++) {
		snprintf(path, sizeof path, "/lib/l%d.so", i);
		mmap_line(&b, 200 + i / 1000, 0x100000000ull, path);
	}
	CHECK_EQ_INT(decode_buf(&b, NULL, err, sizeof err), FDO_ELIMIT);
	CHECK(strstr(err, "line 65537: more than 65536 mapped files"));
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE);
	char *longp = malloc(5000);
	REQUIRE(longp);
	memset(longp, 'a', 4999);
	longp[0] = '/';
	longp[4999] = '\0';
	mmap_line(&b, 100, 0x100000000ull, "");
	b.len--; /* the newline: the path goes on */
	fdo_buf_puts(&b, longp);
	fdo_buf_puts(&b, "\n");
	free(longp);
	CHECK_EQ_INT(decode_buf(&b, NULL, err, sizeof err), FDO_ELIMIT);
	CHECK(strstr(err, "line 6: mmap path of 4999 bytes, limit 4096"));
}

TEST(held_batches_are_bounded)
{
	/* Samples an hour and a half apart: a batch each; the third passes
	 * a 1 MiB bound of held batches (each about 0.5 MiB here). */
	static const char *labels[] = {"mode=test"};
	struct wire_perf_opts o = {.agent_id = "a",
				   .host = "h",
				   .binary = "prog",
				   .labels = labels,
				   .n_labels = 1,
				   .time_end = 1700000000,
				   .max_held_bytes = 1u << 20};
	struct wire_perf *d;
	REQUIRE(wire_perf_create(&o, &d) == FDO_OK);
	REQUIRE(wire_perf_buildids(d, ids, strlen(ids), NULL, 0) == FDO_OK);
	char err[256] = "";
	REQUIRE(wire_perf_feed(d, PRELUDE, strlen(PRELUDE), err, sizeof err) ==
		FDO_OK);
	int rc = FDO_OK;
	for (int h = 0; h < 4 && !rc; h++)
		for (int i = 0; i < 16000 && !rc; i++) {
			char l[160];
			snprintf(l, sizeof l,
				 "  100/100   %d.%06d:  1 ev: \n"
				 "\t    %llx (/bin/prog)\n"
				 "\t    %llx (/bin/prog)\n\n",
				 100 + 5400 * h, i,
				 (unsigned long long)(0x555555555000ull +
						      i % 4096),
				 (unsigned long long)(0x555555555000ull +
						      i / 4096));
			rc = wire_perf_feed(d, l, strlen(l), err, sizeof err);
		}
	wire_perf_destroy(d);
	CHECK_EQ_INT(rc, FDO_ELIMIT);
	CHECK(strstr(err, "the batches made so far pass 1 MiB") != NULL);
}

TEST(a_long_brstack_line_is_read_once)
{
	/* ~1 MB of "0x1(/ ": every blank starts a candidate brstack whose
	 * DSO group never closes; the old search tried each to the end of
	 * the line (10^11 steps). */
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, PRELUDE "  100/100   2.0:  1 ev:  5555555551a6 "
				 "(/bin/prog) ");
	for (int i = 0; i < 170000; i++)
		fdo_buf_puts(&b, "0x1(/ ");
	fdo_buf_puts(&b, "\n");
	char err[256] = "";
	CHECK_EQ_INT(decode_buf(&b, NULL, err, sizeof err), FDO_EPARSE);
	CHECK(strstr(err, "line 6: malformed brstack entry"));
}

TEST(bad_text_is_refused_with_its_line)
{
	refused("hello world\n", FDO_EPARSE, "line 1: not a perf script line");
	refused(PRELUDE
		"  100/100   100.5:  1 cpu-clock: \n\t11a6 (/bin/prog)\n",
		FDO_ETRUNCATED, "truncated: the sample of line 6");
	refused(PRELUDE "  100/100   100.5:  1 cpu-clock:  5555555551a6\n"
			"  100/100   100.6:  1 cpu-clock:  55555555",
		FDO_ETRUNCATED, "no newline");
	refused(PRELUDE
		"  100/100   100.5:  1 cpu-clock: \n\tzz (/bin/prog)\n\n",
		FDO_EPARSE, "line 7: malformed callchain frame");
	refused(PRELUDE
		"  100/100   100.5:  1 cpu-clock: \n\t11a6 (/bin/prog)\n"
		"  100/100   100.6:  1 cpu-clock: \n",
		FDO_EPARSE, "line 8: the sample of line 6 has no end");
	refused("  1/1   1.0: PERF_RECORD_MMAP2 1/1: [0x1000(0x10) @]: r-xp /x\n",
		FDO_EPARSE, "malformed mmap record");
	refused(PRELUDE
		"  100/100   100.5:  1 cpu-clock: \n\t11a6 (/bin/prog)\n"
		"0x1/0x2/Q/-\n",
		FDO_EPARSE, "line 8: malformed brstack entry");
	refused("", FDO_EINVAL, "no samples");
	/* No period on the line and none in a header. */
	refused(PRELUDE
		"  100/100   100.5: cpu-clock:  5555555551a6 (/bin/prog)\n",
		FDO_EINVAL, "line 6: sample of cpu-clock without a period");
	refused(PRELUDE "  100/100   100.5:  1000000000001 cpu-clock:  "
			"5555555551a6 (/bin/prog)\n",
		FDO_ELIMIT, "line 6: sample period 1000000000001, limit");
	refused(EV_LBR PRELUDE, FDO_EINVAL,
		"line 1: event cycles:u was recorded with --call-graph lbr");
	/* Every distinct event keeps a batch open: 64 at most. */
	struct fdo_buf many;
	fdo_buf_init(&many);
	fdo_buf_puts(&many, PRELUDE);
	for (int i = 0; i < 65; i++) {
		char l[128];
		snprintf(
			l, sizeof l,
			"  100/100   100.5:  1 ev%d:  5555555551a6 (/bin/prog)\n",
			i);
		fdo_buf_puts(&many, l);
	}
	refused(fdo_buf_cstr(&many), FDO_ELIMIT,
		"line 70: more than 64 distinct events");
	fdo_buf_fini(&many);
	refused("  1/1   1.0:   1 cpu-clock:   400000 (/x)\n", FDO_EINVAL,
		"none of the 1 samples");
	char nul[] = "  1/1   1.0:   1 cpu-clock: \0\n";
	struct wire_perf *d = decoder(NULL);
	REQUIRE(d);
	CHECK(wire_perf_feed(d, nul, sizeof nul - 1, NULL, 0) == FDO_EPARSE);
	/* The error sticks. */
	CHECK(wire_perf_feed(d, "\n", 1, NULL, 0) == FDO_EPARSE);
	wire_perf_destroy(d);
}

TEST(bad_build_id_list_is_refused)
{
	struct wire_perf_opts o = {.agent_id = "a", .host = "h"};
	struct wire_perf *d;
	REQUIRE(wire_perf_create(&o, &d) == FDO_OK);
	char err[128] = "";
	CHECK(wire_perf_buildids(d, "ABCD /x\n", 8, err, sizeof err) ==
	      FDO_EPARSE);
	CHECK(strstr(err, "line 1") != NULL);
	CHECK(wire_perf_buildids(d, "abcd\n", 5, NULL, 0) == FDO_EPARSE);
	wire_perf_destroy(d);
}

TEST(bad_label_is_refused_by_validation)
{
	static const char *labels[] = {"no-equals-sign"};
	struct wire_perf_opts o = {.agent_id = "a",
				   .host = "h",
				   .binary = "b",
				   .labels = labels,
				   .n_labels = 1,
				   .time_end = 5};
	struct wire_perf *d;
	REQUIRE(wire_perf_create(&o, &d) == FDO_OK);
	REQUIRE(wire_perf_buildids(d, ids, strlen(ids), NULL, 0) == FDO_OK);
	struct wire_perf_result r;
	char err[256] = "";
	REQUIRE(wire_perf_feed(d, relative, strlen(relative), err,
			       sizeof err) == FDO_OK);
	CHECK(wire_perf_finish(d, &r, err, sizeof err) != FDO_OK);
	CHECK(strstr(err, "batch 1") != NULL);
	CHECK(r.n_batches == 0);
	wire_perf_destroy(d);
}

/* A minimal perf.data header: sections at the given places. */
static void header(uint8_t *buf, size_t len, uint64_t data_off,
		   uint64_t data_size, uint64_t feat_bits)
{
	memset(buf, 0, len);
	memcpy(buf, "PERFILE2", 8);
	uint64_t v[12] = {104, 136, 104,       0, data_off, data_size,
			  0,   0,   feat_bits, 0, 0,	    0};
	memcpy(buf + 8, v, sizeof v);
}

TEST(perf_data_header_checks)
{
	uint8_t buf[512];
	char err[200];
	header(buf, sizeof buf, 104, 200, 0);
	CHECK_EQ_INT(wire_perf_data_check(buf, sizeof buf, err, sizeof err),
		     FDO_OK);
	/* One feature section: its table entry at 304, pointing inside. */
	header(buf, sizeof buf, 104, 200, 1u << 2);
	uint64_t ent[2] = {400, 50};
	memcpy(buf + 304, ent, sizeof ent);
	CHECK_EQ_INT(wire_perf_data_check(buf, sizeof buf, err, sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(wire_perf_data_check(buf, 420, err, sizeof err),
		     FDO_ETRUNCATED);
	CHECK(strstr(err, "feature section 0 ends at byte 450") != NULL);
	CHECK_EQ_INT(wire_perf_data_check(buf, 250, err, sizeof err),
		     FDO_ETRUNCATED);
	CHECK(strstr(err, "data section ends at byte 304") != NULL);
	CHECK_EQ_INT(wire_perf_data_check(buf, 60, err, sizeof err),
		     FDO_ETRUNCATED);
	CHECK_EQ_INT(wire_perf_data_check((const uint8_t *)"#!/bin/sh\necho "
							   "hi\n",
					  18, err, sizeof err),
		     FDO_EPARSE);
	CHECK(strstr(err, "not a perf.data file") != NULL);
	/* Pipe mode: a 16-byte header, events to the end. */
	header(buf, sizeof buf, 0, 0, 0);
	uint64_t sixteen = 16;
	memcpy(buf + 8, &sixteen, 8);
	CHECK_EQ_INT(wire_perf_data_check(buf, 16, err, sizeof err), FDO_OK);
}
