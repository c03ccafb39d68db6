/*
 * cli/cmd_push.c — `fdoctl push [--url URL] FILE|-`: send one batch written
 * in the text form (schemas/README.md) to fdod and print its Ack.
 * A request that gets no answer is sent again with the same seq, which the
 * server counts once.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "schemas/schemas.h"

struct cfg {
	char *url;
	uint64_t timeout_ms;
};

static const struct fdo_opt opts[] = {
	{"url", FDO_OPT_STRING, offsetof(struct cfg, url), NULL, "URL",
	 "fdod ingest address (default $FDOD_URL, else " CLI_BATCH_DEFAULT_URL
	 ")"},
	{"timeout", FDO_OPT_UINT, offsetof(struct cfg, timeout_ms), "30000",
	 "MS",
	 "wait this long for the Ack before sending the batch again "
	 "(three tries)"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_push = {
	.name = "push",
	.usage = "[--url URL] [--timeout MS] FILE|-",
	.summary = "send one batch in the text form and print its Ack",
	.about =
		"Sends one SampleBatch written in fdod's text form (FILE, or - "
		"for\nstdin) to fdod and prints the Ack. Exit status: 0 stored "
		"(or a\nduplicate already stored), 1 refused or unreachable, 2 "
		"usage or\nparse error.\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.min_operands = 1,
	.max_operands = 1,
	.run = run,
};

static int read_all(const char *path, struct fdo_buf *b)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "fdoctl push: %s: %s\n", path, strerror(errno));
		return FDO_EIO;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fdo_buf_append(b, chunk, n);
	int err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err || b->oom) {
		fprintf(stderr, "fdoctl push: cannot read %s\n", path);
		return FDO_EIO;
	}
	return FDO_OK;
}

/* Parse the batch in path, send it to url and print its Ack. */
static int push(const char *path, const char *url, int timeout_ms)
{
	struct fdo_buf text;
	fdo_buf_init(&text);
	if (read_all(path, &text)) {
		fdo_buf_fini(&text);
		return 2;
	}
	Fdod__SampleBatch *batch = NULL;
	char err[512];
	int rc = wire_batch_parse_text(text.data ? text.data : "", text.len,
				       NULL, &batch, err, sizeof err);
	fdo_buf_fini(&text);
	if (rc) {
		fprintf(stderr, "fdoctl push: %s: %s\n", path, err);
		return 2;
	}
	struct cli_sender *snd = NULL;
	rc = cli_sender_open(url, timeout_ms, "fdoctl push", &snd);
	if (rc) {
		wire_batch_free(batch);
		return rc == FDO_EIO ? 2 : 1;
	}
	Fdod__Ack *ack = NULL;
	rc = cli_sender_send(snd, batch, &ack);
	cli_sender_close(snd);
	uint64_t seq = batch->seq;
	wire_batch_free(batch);
	if (rc) /* no Ack: 1; a batch that cannot be encoded: 2, as before */
		return rc == FDO_ETRANSPORT ? 1 : 2;
	printf("%s seq=%llu accepted=%llu unmapped=%llu frames_unmapped=%llu "
	       "branches=%llu duplicate=%s: %s\n",
	       ack->status ? fdo_errname((int)ack->status) : "ok",
	       (unsigned long long)seq,
	       (unsigned long long)ack->samples_accepted,
	       (unsigned long long)ack->samples_unmapped,
	       (unsigned long long)ack->frames_unmapped,
	       (unsigned long long)ack->branches_accepted,
	       ack->duplicate ? "yes" : "no", ack->message);
	int status = ack->status;
	wire_ack_free(ack);
	return status ? 1 : 0;
}

static int run(int argc, char **argv)
{
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_push, opts, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	const char *path = argv[1];
	int ret = push(path, cli_batch_url(c.url),
		       c.timeout_ms > INT_MAX ? INT_MAX : (int)c.timeout_ms);
	fdo_opts_fini(opts, &c);
	return ret;
}
