/*
 * cli/cmd_import.c — `fdoctl import`: a perf recording into fdod.
 *
 * perf.data is read by Debian's perf (linux-perf): `perf report
 * --header-only` for the host name and whether samples carry branch
 * stacks, `perf buildid-list` for the build-id table, and `perf script`
 * for mmap, task and sample records, streamed into the decoder of
 * schemas/perf.c, which makes the SampleBatches. --script reads text
 * `perf script` printed elsewhere (with --build-ids, the build-id table).
 * Everything is decoded before the first batch is sent, so a file perf
 * cannot read, or text that is garbled or cut short, stores nothing.
 *
 * Exactly once: every batch carries agent "perf-import/<hash>", the hash
 * (SHA-256, 128 bits shown) of the input's bytes and of what changes what
 * is sent (the binary name used, the labels sorted, --host when given),
 * and seq = its index + 1, so importing the same file again with the same
 * options sends the same (agent, seq) pairs, which fdod acknowledges as
 * duplicates. The time stamp (the file's mtime, or --time; printed on the
 * read: line) is not part of the hash: the same recording stamped
 * differently is refused as a CONFLICT while fdod remembers the pair
 * (--dedup-ttl, 7 days by default).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/opts.h"
#include "schemas/schemas.h"
#include "storage/storage.h"

#define WHO	   "fdoctl import"
#define BUSY_TRIES 30

struct cfg {
	char *url;
	struct cli_http http;
	char *binary;
	struct fdo_strlist label;
	char *host;
	uint64_t time;
	char *perf;
	char *script;
	char *build_ids;
	uint64_t timeout_ms;
	int print;
};

static const struct fdo_opt opts[] = {
	{"url", FDO_OPT_STRING, offsetof(struct cfg, url), NULL, "URL",
	 "fdod ingest address (default $FDOD_URL, else " CLI_BATCH_DEFAULT_URL
	 ")"},
	{"http", FDO_OPT_STRING, offsetof(struct cfg, http.url), NULL, "URL",
	 "also upload to fdod's HTTP server at URL (PUT /v1/symbols) each "
	 "file of the recording that is on this host with the build-id the "
	 "recording names, once the samples are stored"},
	CLI_HTTP_TIMEOUT_OPTS(struct cfg, http),
	{"binary", FDO_OPT_STRING, offsetof(struct cfg, binary), NULL, "NAME",
	 "binary name of the batches (default: the name of the program with "
	 "the most samples)"},
	{"label", FDO_OPT_LIST, offsetof(struct cfg, label), NULL, "K=V",
	 "label on every batch"},
	{"host", FDO_OPT_STRING, offsetof(struct cfg, host), NULL, "NAME",
	 "host of the batches (default: the recording's, with --script this "
	 "machine's)"},
	{"time", FDO_OPT_UINT, offsetof(struct cfg, time), "0", "UNIX",
	 "unix time of the last sample (default: the input file's mtime)"},
	{"perf", FDO_OPT_STRING, offsetof(struct cfg, perf), "perf", "PATH",
	 "the perf program that reads perf.data"},
	{"script", FDO_OPT_STRING, offsetof(struct cfg, script), NULL, "FILE",
	 "read perf script text instead of perf.data (fields in --help)"},
	{"build-ids", FDO_OPT_STRING, offsetof(struct cfg, build_ids), NULL,
	 "FILE", "with --script: perf buildid-list output of the recording"},
	{"timeout-ms", FDO_OPT_UINT, offsetof(struct cfg, timeout_ms), "30000",
	 "MS", "wait this long for each Ack before sending again"},
	{"print", FDO_OPT_BOOL, offsetof(struct cfg, print), "false", NULL,
	 "print the batches in the text form instead of sending them"},
	{0},
};

#define SCRIPT_FIELDS "pid,tid,time,period,event,ip,dso"

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_import = {
	.name = "import",
	.usage =
		"[OPTIONS] perf.data\n"
		"       fdoctl import [OPTIONS] --script FILE [--build-ids FILE]",
	.summary = "send a perf recording (callchains, LBR branch stacks)",
	.about =
		"Sends a perf recording (perf record -g or --call-graph dwarf, "
		"with\n-b / --branch-any for LBR branch records; --call-graph "
		"lbr is\nrefused) to fdod as SampleBatches: callchains as "
		"(build-id, file\noffset) frames, brstack entries as branch "
		"records (BOLT profiles).\nKernel frames over a user stack are "
		"left out; files without a\nbuild-id are sent as unmapped. "
		"perf.data is read with `perf\nscript`; --script takes the text "
		"of a recording read elsewhere:\n  perf script --header "
		"-F " SCRIPT_FIELDS "[,brstack] \\\n      --no-inline "
		"--show-mmap-events --show-task-events > FILE\n  perf "
		"buildid-list > IDS     (then --build-ids IDS)\nImporting the "
		"same input with the same options again is counted\nonce (agent "
		"perf-import/HASH, seq = batch number). Exit status:\n0 stored "
		"(or already stored), 1 refused by or unreachable fdod,\n2 usage "
		"error or an input perf or the decoder cannot read (then\n"
		"nothing is sent).\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.max_operands = 1,
	.run = run,
};

/* A whole file, mapped read-only (len 0: nothing mapped). */
struct mapped {
	const uint8_t *p;
	size_t len;
	time_t mtime;
};

static int map_file(const char *path, struct mapped *m)
{
	memset(m, 0, sizeof *m);
	/* O_NONBLOCK: a FIFO would wait for a writer before the check. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, WHO ": %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return FDO_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr,
			WHO ": %s: not a regular file (the input is hashed "
			    "before it is read, so a pipe or FIFO cannot be "
			    "read): save the text to a file\n",
			path);
		close(fd);
		return FDO_EINVAL;
	}
	m->mtime = st.st_mtime;
	m->len = (size_t)st.st_size;
	if (m->len) {
		void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			fprintf(stderr, WHO ": %s: %s\n", path,
				strerror(errno));
			close(fd);
			return FDO_EIO;
		}
		m->p = p;
	}
	close(fd);
	return FDO_OK;
}

static void unmap_file(struct mapped *m)
{
	if (m->len)
		munmap((void *)m->p, m->len);
	memset(m, 0, sizeof *m);
}

/* A child perf: stdout on a pipe, stderr in a temporary file. */
struct child {
	pid_t pid;
	int out;
	FILE *errf;
};

static int child_start(char *const argv[], struct child *c)
{
	int p[2];
	c->errf = tmpfile();
	if (!c->errf || pipe2(p, O_CLOEXEC)) {
		fprintf(stderr, WHO ": %s\n", strerror(errno));
		if (c->errf)
			fclose(c->errf);
		return FDO_EIO;
	}
	c->pid = fork();
	if (c->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 ||
		    dup2(fileno(c->errf), 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (c->pid < 0) {
		fprintf(stderr, WHO ": fork: %s\n", strerror(errno));
		close(p[0]);
		fclose(c->errf);
		return FDO_EIO;
	}
	c->out = p[0];
	return FDO_OK;
}

/* Close its stdout, wait for it; FDO_OK when it exited with status 0,
 * else FDO_EIO with what it said on stderr printed. */
static int child_finish(struct child *c, const char *what)
{
	if (c->out >= 0)
		close(c->out);
	c->out = -1;
	int status;
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok) {
		fprintf(stderr, WHO ": %s failed (%s %d)", what,
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status)
					  : WTERMSIG(status));
		char line[512];
		int n = 0;
		rewind(c->errf);
		while (n < 8 && fgets(line, sizeof line, c->errf)) {
			fprintf(stderr, "%s%s", n ? "  " : ":\n  ", line);
			n++;
		}
		if (!n)
			fputc('\n', stderr);
	}
	fclose(c->errf);
	return ok ? FDO_OK : FDO_EIO;
}

/* Run argv to the end, its stdout into out. */
static int run_capture(char *const argv[], const char *what,
		       struct fdo_buf *out)
{
	struct child c;
	if (child_start(argv, &c))
		return FDO_EIO;
	char chunk[65536];
	ssize_t n;
	while ((n = read(c.out, chunk, sizeof chunk)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		fdo_buf_append(out, chunk, (size_t)n);
	}
	int rc = child_finish(&c, what);
	return rc ? rc : out->oom ? FDO_ENOMEM : FDO_OK;
}

/* From `perf report --header-only`: the host and whether any event
 * samples branch stacks. */
static void header_facts(const char *text, char *host, size_t hostcap,
			 int *branches)
{
	const char *key = "# hostname : ";
	const char *h = strstr(text, key);
	if (h && !host[0]) {
		h += strlen(key);
		size_t n = strcspn(h, "\n");
		if (n >= hostcap)
			n = hostcap - 1;
		memcpy(host, h, n);
		host[n] = '\0';
	}
	for (const char *l = text; l && *l;
	     l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		size_t n = strcspn(l, "\n");
		if (n > 9 && !strncmp(l, "# event :", 9) &&
		    memmem(l, n, "BRANCH_STACK", 12))
			*branches = 1;
	}
}

/* Decode perf.data through perf. */
static int decode_perf_data(const struct cfg *c, const char *path, int branches,
			    struct wire_perf *d, char *err, size_t errlen)
{
	char *perf = c->perf;
	struct fdo_buf ids;
	fdo_buf_init(&ids);
	char *bargv[] = {perf, "buildid-list", "-f", "-i", (char *)path, NULL};
	int rc = run_capture(bargv, "perf buildid-list", &ids);
	if (!rc && (rc = wire_perf_buildids(d, ids.data ? ids.data : "",
					    ids.len, err, errlen)))
		fprintf(stderr, WHO ": %s\n", err);
	fdo_buf_fini(&ids);
	if (rc)
		return rc;
	/* brstack only when the samples have it (some perf versions refuse
	 * a field the samples lack). */
	char *sargv[] = {perf,
			 "script",
			 "-f",
			 "-i",
			 (char *)path,
			 "-F",
			 branches ? SCRIPT_FIELDS ",brstack" : SCRIPT_FIELDS,
			 "--no-inline",
			 "--show-mmap-events",
			 "--show-task-events",
			 NULL};
	struct child ch;
	if (child_start(sargv, &ch))
		return FDO_EIO;
	static char chunk[1 << 16];
	ssize_t n;
	rc = FDO_OK;
	while ((n = read(ch.out, chunk, sizeof chunk)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, WHO ": reading perf script: %s\n",
				strerror(errno));
			rc = FDO_EIO;
			break;
		}
		if ((rc = wire_perf_feed(d, chunk, (size_t)n, err, errlen))) {
			fprintf(stderr, WHO ": perf script output: %s\n", err);
			break;
		}
	}
	/* On a decode error perf dies of SIGPIPE: its status does not
	 * matter then. */
	int prc = child_finish(&ch, "perf script");
	return rc ? rc : prc;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The agent id: perf-import/ and 32 hex digits of SHA-256 over what
 * identifies the import: the input's digest, the binary name the batches
 * carry (given or picked), --host when given (the recording's own host is
 * in its bytes; this machine's name must not make one text two imports),
 * and the labels in sorted order. */
static int agent_id(const struct cfg *c, const uint8_t digest_in[32],
		    const char *binary, char out[64])
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, "fdoctl import v2");
	fdo_buf_putc(&b, '\0');
	fdo_buf_append(&b, digest_in, 32);
	fdo_buf_puts(&b, binary);
	fdo_buf_putc(&b, '\0');
	fdo_buf_puts(&b, c->host ? c->host : "");
	fdo_buf_putc(&b, '\0');
	char **sorted = malloc((c->label.n + 1) * sizeof *sorted);
	if (sorted) {
		memcpy(sorted, c->label.items, c->label.n * sizeof *sorted);
		qsort(sorted, c->label.n, sizeof *sorted, label_cmp);
		for (size_t i = 0; i < c->label.n; i++) {
			fdo_buf_puts(&b, sorted[i]);
			fdo_buf_putc(&b, '\0');
		}
		free(sorted);
	}
	if (b.oom || !sorted) {
		fdo_buf_fini(&b);
		return FDO_ENOMEM;
	}
	uint8_t h[32];
	fdo_sha256(b.data, b.len, h);
	fdo_buf_fini(&b);
	memcpy(out, "perf-import/", 12);
	fdo_hex_encode(h, 16, out + 12);
	return FDO_OK;
}

/* Every batch of r gets agent id. */
static int set_agent(struct wire_perf_result *r, const char *id)
{
	for (size_t i = 0; i < r->n_batches; i++) {
		char *a = strdup(id);
		if (!a)
			return FDO_ENOMEM;
		if (r->batches[i]->agent_id != protobuf_c_empty_string)
			free(r->batches[i]->agent_id);
		r->batches[i]->agent_id = a;
	}
	return FDO_OK;
}

static void print_stats(const struct wire_perf_stats *s, size_t nbatches,
			uint64_t time)
{
	printf("read: samples=%llu frames=%llu kernel_frames_left_out=%llu "
	       "unmapped_frames=%llu "
	       "(vdso/unknown=%llu no_build_id=%llu ambiguous=%llu "
	       "outside_mappings=%llu) dropped_frames=%llu branches=%llu "
	       "unmapped_branches=%llu batches=%zu time=%llu\n",
	       (unsigned long long)s->samples, (unsigned long long)s->frames,
	       (unsigned long long)s->frames_kernel,
	       (unsigned long long)s->frames_unmapped,
	       (unsigned long long)s->frames_no_file,
	       (unsigned long long)s->frames_no_build_id,
	       (unsigned long long)s->frames_ambiguous,
	       (unsigned long long)s->frames_unknown,
	       (unsigned long long)s->frames_dropped,
	       (unsigned long long)s->branches,
	       (unsigned long long)s->branches_unmapped, nbatches,
	       (unsigned long long)time);
}

/* Send every batch; stop at the first refusal. */
static int send_all(const struct cfg *c, struct wire_perf_result *r)
{
	const char *url = cli_batch_url(c->url);
	struct cli_sender *s;
	int rc = cli_sender_open(url, (int)c->timeout_ms, WHO, &s);
	if (rc)
		return rc == FDO_EIO ? 2 : 1;
	uint64_t acc = 0, unm = 0, funm = 0, br = 0, brunm = 0, dup = 0;
	int exit_code = 0;
	for (size_t i = 0; i < r->n_batches && !exit_code; i++) {
		Fdod__SampleBatch *b = r->batches[i];
		Fdod__Ack *ack = NULL;
		for (int tries = 0;; tries++) {
			int src = cli_sender_send(s, b, &ack);
			if (src) {
				exit_code = src == FDO_ETRANSPORT ? 1 : 2;
				break;
			}
			if (ack->status != FDO_EBUSY || tries == BUSY_TRIES)
				break;
			/* fdod's rate limits: wait as long as it asks. */
			uint32_t ms = ack->retry_after_ms;
			ms = ms < 100 ? 100 : ms > 10000 ? 10000 : ms;
			wire_ack_free(ack);
			ack = NULL;
			struct timespec ts = {ms / 1000,
					      (long)(ms % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
		if (!ack)
			break;
		if (ack->status) {
			fprintf(stderr,
				WHO
				": batch seq %llu of %zu refused: %s: %s%s\n",
				(unsigned long long)b->seq, r->n_batches,
				fdo_errname((int)ack->status), ack->message,
				ack->status == FDO_ECONFLICT
					? " (this recording was imported "
					  "before with a different time "
					  "stamp; nothing more is counted)"
					: "");
			exit_code = 1;
		}
		acc += ack->samples_accepted;
		unm += ack->samples_unmapped;
		funm += ack->frames_unmapped;
		br += ack->branches_accepted;
		brunm += ack->branches_unmapped;
		dup += ack->duplicate;
		wire_ack_free(ack);
	}
	cli_sender_close(s);
	printf("sent: agent=%s batches=%zu accepted=%llu unmapped=%llu "
	       "frames_unmapped=%llu branches=%llu branches_unmapped=%llu "
	       "duplicate=%llu\n",
	       r->n_batches ? r->batches[0]->agent_id : "-", r->n_batches,
	       (unsigned long long)acc, (unsigned long long)unm,
	       (unsigned long long)funm, (unsigned long long)br,
	       (unsigned long long)brunm, (unsigned long long)dup);
	return exit_code;
}

/*
 * upload_files: --http. The files the batches' mappings name that are on
 * this host with the recording's build-id go to fdod's symbol store, as
 * `fdoctl upload --http URL --binary NAME` would send them; a file that
 * is missing or has another build-id (rebuilt since the recording) is
 * named on stderr and left out. 0 when every file found is stored or
 * present, 1 otherwise.
 */
static int upload_files(const struct cfg *c, const struct wire_perf_result *r)
{
	char **files = NULL;
	size_t n = 0, cap = 0;
	int failed = 0;
	for (size_t b = 0; b < r->n_batches; b++) {
		const Fdod__SampleBatch *bt = r->batches[b];
		for (size_t i = 0; i < bt->n_mappings; i++) {
			const Fdod__Mapping *m = bt->mappings[i];
			const char *path = m->path;
			if (!path || path[0] != '/')
				continue;
			int seen = 0;
			for (size_t k = 0; k < n && !seen; k++)
				seen = !strcmp(files[k], path);
			if (seen)
				continue;
			struct store_elf_info info;
			char why[256] = "";
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			int rc = fd < 0 ? FDO_EIO
					: store_elf_inspect(fd, &info, why,
							    sizeof why);
			if (fd >= 0)
				close(fd);
			if (rc || info.build_id_len != m->build_id.len ||
			    memcmp(info.build_id, m->build_id.data,
				   m->build_id.len)) {
				fprintf(stderr, WHO ": not uploaded: %s: %s\n",
					path,
					fd < 0 ? strerror(errno)
					: rc ? (why[0] ? why : fdo_strerror(rc))
					     : "not the build-id the recording "
					       "names (rebuilt since?)");
				continue;
			}
			if (fdo_grow(files, cap, n + 1) ||
			    !(files[n] = strdup(path))) {
				fprintf(stderr, WHO ": out of memory\n");
				failed = 1;
				goto out;
			}
			n++;
		}
	}
	if (n)
		failed = cli_upload_http(&c->http, r->batches[0]->binary, 0,
					 (int)n, files);
out:
	for (size_t k = 0; k < n; k++)
		free(files[k]);
	free(files);
	return failed;
}

static int run(int argc, char **argv)
{
	struct cfg c;
	char err[512];
	int n, exit_code = 2;
	struct mapped in = {0}, ids = {0};
	struct wire_perf *d = NULL;
	struct wire_perf_result res = {0};
	struct fdo_buf hdr; /* perf report --header-only */
	memset(&c, 0, sizeof c);
	int rc = cli_args_parse(&cli_cmd_import, opts, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	fdo_buf_init(&hdr);
	const char *path = n ? argv[1] : NULL;
	if (n != (c.script ? 0 : 1) || (c.build_ids && !c.script)) {
		cli_usage_error(&cli_cmd_import,
				"give one perf.data file, or --script FILE "
				"[--build-ids FILE]");
		goto out;
	}
	/* The input's bytes: checked, hashed, and their mtime. */
	if (map_file(path ? path : c.script, &in) ||
	    (c.build_ids && map_file(c.build_ids, &ids)))
		goto out;
	if (path && wire_perf_data_check(in.p, in.len, err, sizeof err)) {
		fprintf(stderr, WHO ": %s: %s\n", path, err);
		goto out;
	}
	uint8_t digest[32], part[32];
	struct fdo_buf idb;
	fdo_buf_init(&idb);
	fdo_buf_puts(&idb, path ? "perf.data" : "script");
	fdo_sha256(in.p, in.len, part);
	fdo_buf_append(&idb, part, 32);
	fdo_sha256(ids.p, ids.len, part);
	fdo_buf_append(&idb, part, 32);
	fdo_sha256(idb.data, idb.len, digest);
	fdo_buf_fini(&idb);

	char host[257] = "";
	int branches = 0;
	if (c.host)
		snprintf(host, sizeof host, "%s", c.host);
	if (path) {
		char *hargv[] = {c.perf, "report",     "-f", "--header-only",
				 "-i",	 (char *)path, NULL};
		if (run_capture(hargv, "perf report --header-only", &hdr))
			goto out;
		header_facts(fdo_buf_cstr(&hdr), host, sizeof host, &branches);
	}
	if (!host[0] && gethostname(host, sizeof host - 1))
		snprintf(host, sizeof host, "localhost");
	/* The agent id needs the binary name the decode picks: a placeholder
	 * of the same shape until then. */
	char agent[64] = "perf-import/00000000000000000000000000000000";
	struct wire_perf_opts o = {
		.agent_id = agent,
		.host = host,
		.binary = c.binary,
		.labels = (const char *const *)c.label.items,
		.n_labels = c.label.n,
		.time_end = c.time ? c.time : (uint64_t)in.mtime,
	};
	if (wire_perf_create(&o, &d)) {
		fprintf(stderr, WHO ": out of memory\n");
		goto out;
	}
	if (wire_perf_header(d, fdo_buf_cstr(&hdr), hdr.len, err, sizeof err)) {
		fprintf(stderr, WHO ": %s: %s\n", path, err);
		goto out;
	}
	if (c.script) {
		if (ids.len && wire_perf_buildids(d, (const char *)ids.p,
						  ids.len, err, sizeof err)) {
			fprintf(stderr, WHO ": %s: %s\n", c.build_ids, err);
			goto out;
		}
		if (wire_perf_feed(d, (const char *)in.p, in.len, err,
				   sizeof err)) {
			fprintf(stderr, WHO ": %s: %s\n", c.script, err);
			goto out;
		}
	} else if (decode_perf_data(&c, path, branches, d, err, sizeof err)) {
		goto out;
	}
	if (wire_perf_finish(d, &res, err, sizeof err)) {
		fprintf(stderr, WHO ": %s: %s\n", path ? path : c.script, err);
		goto out;
	}
	if (agent_id(&c, digest, res.batches[0]->binary, agent) ||
	    set_agent(&res, agent)) {
		fprintf(stderr, WHO ": out of memory\n");
		goto out;
	}
	print_stats(&res.stats, res.n_batches, o.time_end);
	if (c.print) {
		for (size_t i = 0; i < res.n_batches; i++) {
			char *text;
			if (wire_batch_print_text(res.batches[i], &text,
						  NULL)) {
				fprintf(stderr, WHO ": out of memory\n");
				goto out;
			}
			printf("%s%s", i ? "\n" : "", text);
			free(text);
		}
		exit_code = 0;
		goto out;
	}
	exit_code = send_all(&c, &res);
	if (!exit_code && c.http.url)
		exit_code = upload_files(&c, &res);
out:
	fdo_buf_fini(&hdr);
	wire_perf_result_fini(&res);
	wire_perf_destroy(d);
	unmap_file(&in);
	unmap_file(&ids);
	fdo_opts_fini(opts, &c);
	return exit_code;
}
