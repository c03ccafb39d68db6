/*
 * bench/ingest/pusher.c — load generator of the ingest benchmark: P
 * concurrent agents push realistic SampleBatches to fdod for a fixed time
 * and measure, per batch, the latency from send to Ack.
 *
 * Workload (per batch, defaults): 1,000 Stack messages of 20 frames each;
 * 5% of them are stacks this pusher never sent, the other 95% repeat
 * distinct stacks it sent before (older stacks are hotter: the pick is
 * skewed towards low stack ids); counts vary from 1 to 50. One mapping of
 * a fake 20-byte build-id per pusher covers every address; addresses come
 * from a universe of --addrs distinct instruction addresses per build-id,
 * so the pending-address table saturates as a real binary's would. Labels
 * mode=serving, region=bench, shard=<pusher % 4>; period 1000000, weight
 * 1.0, time window = the last 10 seconds.
 *
 * With --otlp URL the same batches go out as OTLP/HTTP profiles instead:
 * each an ExportProfilesServiceRequest shaped like the OpenTelemetry
 * eBPF profiler's (bench/ingest/otlp_req.c), POSTed with libcurl to
 * URL/v1development/profiles; acknowledged = answered 200 with every
 * sample accepted. bench/ingest/run.sh runs the pusher once per path.
 *
 * DESIGN
 *   Threads: one per pusher, each with its own nng REQ socket, agent id
 *   "bench-<i>" and seq 1, 2, 3, ...; one batch in flight per pusher
 *   (REQ semantics), so fdod sees up to P batches at once. Stack ids are
 *   generated, never stored: stack k of pusher i is a pure function of
 *   (i, k), so "a stack sent before" is just an id below the number sent.
 *   Encoding: the header (every field but the stacks) goes through
 *   wire_batch_encode per batch (seq and time change); the 1,000 stacks,
 *   which are field 13 and follow every other set field in protobuf-c's
 *   field-number order, are appended by a hand-written varint encoder.
 *   At start-up each pusher's first batch is also built as a full
 *   Fdod__SampleBatch, encoded with wire_batch_encode and compared byte for
 *   byte, and decoded and validated with wire_batch_decode and
 *   wire_batch_validate, so the fast path sends exactly what the schema
 *   code would. The CPU time spent building batches is measured per thread
 *   and the whole process's CPU time is reported, to show the pusher is not
 *   the bottleneck.
 *   Timing: all pushers dial, then wait on a barrier; the clock starts when
 *   they are released and each stops sending at start + --seconds; the
 *   window ends at the last Ack. Throughput = acknowledged / window.
 *   OTLP: the same threads, one curl handle and one request encoder
 *   each, one request in flight; the first request is decoded by
 *   wire_otlp_decode and compared frame by frame with the native batch of
 *   the same stack ids (check_otlp).
 *   Shutdown: threads end after their last Ack (or an Ack timeout); main
 *   joins them, merges and sorts the latencies and prints the report.
 *
 * Output: a readable report, then one line
 *   RESULT key=value ...
 * that bench/ingest/run.sh parses. Exit status: 0 if every batch got an
 * Ack with status 0, 1 if any error happened, 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <gelf.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/buf.h"
#include "common/common.h"
#include "bench/ingest/otlp_req.h"
#include "common/opts.h"
#include "schemas/schemas.h"

#define MAP_START	 0x555555554000ull /* a typical PIE load address */
#define MAP_FILE_OFFSET	 0x1000ull
#define BUILD_ID_LEN	 20
#define MAX_ERRORS_SHOWN 10
#define MAX_RESENDS	 50   /* of one batch after closed connections */
#define MAX_BUSY	 1000 /* ... after BUSY Acks with a retry-after */

struct cfg {
	char *url;
	uint64_t pushers;
	uint64_t seconds;
	uint64_t stacks;
	uint64_t depth;
	double new_pct;
	uint64_t addrs;
	char *binary;
	uint64_t pid;
	uint64_t timeout_ms;
	uint64_t warmup;
	double steady_new_pct;
	uint64_t release_every;
	uint64_t release_stacks;
	uint64_t window;
	char *elf;
	uint64_t callgraph;
	char *agent_prefix;
	char *otlp;
	int otlp_values;
	int otlp_gzip;
	char *token;
};

#define F(field) offsetof(struct cfg, field)
static const struct fdo_opt opts[] = {
	{"url", FDO_OPT_STRING, F(url), "tcp://127.0.0.1:7470", "URL",
	 "fdod's agent listener (nng REP)"},
	{"pushers", FDO_OPT_UINT, F(pushers), "8", "N",
	 "concurrent pushers (threads, one REQ socket each)"},
	{"seconds", FDO_OPT_UINT, F(seconds), "20", "S", "how long to send"},
	{"stacks", FDO_OPT_UINT, F(stacks), "1000", "N",
	 "Stack messages per batch"},
	{"depth", FDO_OPT_UINT, F(depth), "20", "N", "frames per stack"},
	{"new-pct", FDO_OPT_DOUBLE, F(new_pct), "5", "PCT",
	 "share of stacks per batch the pusher never sent before"},
	{"addrs", FDO_OPT_UINT, F(addrs), "65536", "N",
	 "distinct instruction addresses per build-id"},
	{"binary", FDO_OPT_STRING, F(binary), "bench-svc", "NAME",
	 "binary name of every batch"},
	{"agent-prefix", FDO_OPT_STRING, F(agent_prefix), "bench", "P",
	 "agents are P-0, P-1, ... on hosts P-host-0, ... (another prefix "
	 "pushes to a store that has the default's as new agents)"},
	{"pid", FDO_OPT_UINT, F(pid), "0", "PID",
	 "fdod's pid: report its CPU time over the window and its peak RSS"},
	{"timeout-ms", FDO_OPT_UINT, F(timeout_ms), "30000", "MS",
	 "give up on an Ack after this long (counted as an error)"},
	{"warmup", FDO_OPT_UINT, F(warmup), "0", "S",
	 "after S seconds new stacks fall to --steady-new-pct (0: never)"},
	{"steady-new-pct", FDO_OPT_DOUBLE, F(steady_new_pct), "0.1", "PCT",
	 "share of new stacks per batch after the warm-up"},
	{"release-every", FDO_OPT_UINT, F(release_every), "0", "S",
	 "every S seconds a release: every agent moves to a new build-id "
	 "(0: never)"},
	{"release-stacks", FDO_OPT_UINT, F(release_stacks), "200000", "N",
	 "new stacks a release brings, shared by the agents"},
	{"window", FDO_OPT_UINT, F(window), "300", "S",
	 "report throughput, Ack p99 and fdod's RssAnon per window of S s"},
	{"callgraph", FDO_OPT_UINT, F(callgraph), "0", "K",
	 "callers follow a call graph: each address has K call sites that "
	 "call it (0: every frame drawn at random)"},
	{"elf", FDO_OPT_STRING, F(elf), "", "PATH",
	 "sample a real ELF file: its build-id (every agent's, before the "
	 "first release) and addresses spread over its executable segment"},
	{"otlp", FDO_OPT_STRING, F(otlp), "", "URL",
	 "push OTLP/HTTP profiles to fdod's HTTP server at URL "
	 "(POST URL/v1development/profiles) instead of batches to --url"},
	{"otlp-values", FDO_OPT_BOOL, F(otlp_values), "false", "BOOL",
	 "OTLP samples carry values, not one timestamp per sample (the "
	 "eBPF profiler's)"},
	{"otlp-gzip", FDO_OPT_BOOL, F(otlp_gzip), "true", "BOOL",
	 "gzip OTLP request bodies (Content-Encoding: gzip)"},
	{"token", FDO_OPT_STRING, F(token), "", "TOKEN",
	 "an ingest token (for a fdod with --tokens): batches carry it as "
	 "auth_token, OTLP requests as Authorization: Bearer (at most 255 "
	 "bytes)"},
	{0},
};
#undef F

static struct cfg cfg;

/* Shared between the threads; the error list is guarded by err_lock. */
static pthread_barrier_t ready_barrier, start_barrier;
static uint64_t t_start, t_deadline; /* written by main before the barrier */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char err_shown[MAX_ERRORS_SHOWN][320];
static atomic_uint nerr_shown;
static atomic_uint ndone; /* pushers that have stopped */
static unsigned npushers;

struct pusher {
	unsigned id;
	pthread_t thread;
	nng_socket sock;
	uint64_t rng;
	uint64_t seed;
	uint8_t build_id[64];
	size_t build_id_len;
	char agent[64], host[64], shard[8];
	uint64_t next_stack; /* stack ids below this were sent (this
			      * release) */
	uint64_t release;    /* releases since the start */
	uint64_t quota;	     /* new stacks of the release still to send */
	double new_credit;   /* fraction of a new stack carried over */
	uint8_t *picked;     /* bitmap of ids in the current batch */
	size_t picked_cap;   /* bytes */
	uint64_t *ids;	     /* ids of the current batch */
	uint8_t *sbuf;	     /* encoded stacks of the current batch */
	size_t sbuf_cap;
	/* --otlp: the HTTP client and the request's stacks as arrays */
	CURL *curl;
	struct curl_slist *headers;
	struct otlp_req *enc;
	uint64_t *counts, *addrs; /* [stacks], [stacks x depth] */
	struct fdo_buf answer;	  /* the body of the last answer */
	char thread_name[32];
	const char *label_values[3];
	uint64_t raw_bytes; /* request bytes before gzip */
	/* results */
	uint64_t batches, stacks, samples, frames, bytes, errors;
	uint64_t resends;  /* batches sent again after a closed connection */
	uint64_t busy;	   /* ... after a BUSY Ack (fdod's memory budget) */
	uint64_t build_ns; /* thread CPU time spent building batches */
	uint64_t last_ack; /* monotonic ns of the last Ack */
	uint64_t *lat;	   /* per-batch latency, ns */
	uint64_t *ackt;	   /* per-batch Ack time, ns since t_start */
	size_t nlat, lat_cap;
};

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return splitmix(*s);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record_error(struct pusher *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void record_error(struct pusher *p, const char *fmt, ...)
{
	p->errors++;
	pthread_mutex_lock(&err_lock);
	unsigned n = atomic_load(&nerr_shown);
	if (n < MAX_ERRORS_SHOWN) {
		int k = snprintf(err_shown[n], sizeof err_shown[n],
				 "%s: ", p->agent);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err_shown[n] + k, sizeof err_shown[n] - k, fmt, ap);
		va_end(ap);
		atomic_store(&nerr_shown, n + 1);
	}
	pthread_mutex_unlock(&err_lock);
}

/* --- the stacks: pure functions of (pusher, stack id) ------------------ */

static uint64_t stack_seed(const struct pusher *p, uint64_t id)
{
	return splitmix(p->seed ^ (id * 0x2545f4914f6cdd1dull));
}

static uint64_t stack_count(uint64_t sseed)
{
	uint64_t h = sseed >> 8;
	/* Mostly small counts, a tail of hot stacks. */
	return (sseed & 7) == 0 ? 1 + h % 50 : 1 + h % 3;
}

/* Frame f of a stack: an index into the address universe (and, for the
 * leaf, an offset into the instruction). A cheap mix, no division. */
static uint64_t frame_hash(uint64_t sseed, unsigned f)
{
	uint64_t x = sseed + (uint64_t)(f + 1) * 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

static uint64_t frame_index(uint64_t h)
{
	return ((h & 0xffffffffull) * cfg.addrs) >> 32;
}

/* The address universe: --addrs addresses idx * stride from base, in one
 * mapping [MAP_START, map_end) of file offset map_off. Without --elf a
 * made-up 16-byte-aligned text; with it, the ELF's executable segment. */
static uint64_t addr_base = MAP_START + MAP_FILE_OFFSET, addr_stride = 16;
static uint64_t map_off = MAP_FILE_OFFSET, map_end;
static uint8_t elf_build_id[64];
static size_t elf_build_id_len;

/* Instruction addresses; the leaf may sit anywhere in an instruction (of
 * at most a stride), the callers are return addresses. */
static uint64_t frame_addr(uint64_t idx, unsigned f, uint64_t h)
{
	uint64_t in = f == 0 ? (h >> 60) % addr_stride : 5 % addr_stride;
	return addr_base + idx * addr_stride + in;
}

/*
 * The address index of frame f, given frame f-1's (prev). Random frames
 * (--callgraph 0) make almost every caller->callee pair of a stack new, which
 * no program does; with K > 0 the caller of an address is one of K call
 * sites that are a fixed function of that address, so the stacks follow a
 * call graph of at most K x --addrs edges, as a real program's do.
 */
static uint64_t next_index(uint64_t sseed, unsigned f, uint64_t prev)
{
	uint64_t h = frame_hash(sseed, f);
	if (!cfg.callgraph)
		return frame_index(h);
	uint64_t c = (h >> 32) % cfg.callgraph;
	return frame_index(splitmix(prev * cfg.callgraph + c + 0x63616c6cull));
}

/* The reference definition; the encoder below computes the same in a
 * loop and uses a table for the varints. */
static uint64_t stack_addr(const struct pusher *p, uint64_t id, unsigned f)
{
	uint64_t sseed = stack_seed(p, id);
	uint64_t h = frame_hash(sseed, 0), idx = frame_index(h);
	for (unsigned g = 1; g <= f; g++)
		idx = next_index(sseed, g, idx);
	return frame_addr(idx, f, h);
}

/* Varint encodings of every return address (frames 1..depth-1). */
static uint8_t (*ret_enc)[11]; /* [0] = length, then the bytes */

static uint64_t map_limit(void)
{
	return map_end ? map_end : addr_base + cfg.addrs * addr_stride + 0x1000;
}

/*
 * --elf: the build-id note and the first executable PT_LOAD of path. The
 * addresses are spread evenly over that segment, so a profile built from
 * them names the file's real functions once its symbols are uploaded.
 * Returns 0, or prints why not and returns -1.
 */
static int elf_setup(const char *path)
{
	int rc = -1, fd = open(path, O_RDONLY);
	Elf *e = NULL;
	if (fd < 0 || elf_version(EV_CURRENT) == EV_NONE ||
	    !(e = elf_begin(fd, ELF_C_READ, NULL)) ||
	    elf_kind(e) != ELF_K_ELF) {
		fprintf(stderr, "pusher: %s: not a readable ELF file\n", path);
		goto out;
	}
	size_t nph;
	if (elf_getphdrnum(e, &nph))
		goto bad;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph))
			goto bad;
		if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) && !map_end) {
			map_off = ph.p_offset & ~0xfffull;
			addr_base = MAP_START + (ph.p_offset - map_off);
			map_end = MAP_START + (ph.p_offset - map_off) +
				  ph.p_filesz;
			addr_stride = ph.p_filesz / cfg.addrs;
			if (addr_stride < 1) {
				fprintf(stderr,
					"pusher: %s: executable segment "
					"of %" PRIu64 " bytes is smaller than "
					"--addrs\n",
					path, (uint64_t)ph.p_filesz);
				goto out;
			}
		}
		if (ph.p_type != PT_NOTE || elf_build_id_len)
			continue;
		Elf_Data *d = elf_getdata_rawchunk(e, (int64_t)ph.p_offset,
						   ph.p_filesz, ELF_T_NHDR);
		GElf_Nhdr nh;
		size_t off = 0, no, doff;
		while (d && (off = gelf_getnote(d, off, &nh, &no, &doff)) > 0)
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((char *)d->d_buf + no, "GNU", 4) &&
			    nh.n_descsz >= 1 && nh.n_descsz <= 64) {
				memcpy(elf_build_id, (char *)d->d_buf + doff,
				       nh.n_descsz);
				elf_build_id_len = nh.n_descsz;
				break;
			}
	}
	if (!map_end || !elf_build_id_len) {
		fprintf(stderr,
			"pusher: %s: no executable segment or no GNU "
			"build-id note\n",
			path);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	fprintf(stderr, "pusher: %s: %s\n", path, elf_errmsg(-1));
out:
	if (e)
		elf_end(e);
	if (fd >= 0)
		close(fd);
	return rc;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Release r's build-id of pusher p (release 0: the one it starts with). */
static void release_build_id(struct pusher *p, uint64_t r)
{
	if (r == 0 && elf_build_id_len) {
		memcpy(p->build_id, elf_build_id, elf_build_id_len);
		p->build_id_len = elf_build_id_len;
		return;
	}
	p->build_id_len = BUILD_ID_LEN;
	for (int j = 0; j < BUILD_ID_LEN; j++)
		p->build_id[j] =
			(uint8_t)splitmix(p->seed + (uint64_t)j + (r << 32));
}

/*
 * A release: the agent's binary is a new build, so every stack it sends
 * from now on is new to fdod (the same addresses in another build-id),
 * and its share of --release-stacks goes out first. The mapping of the
 * batch header points at p->build_id, so the next batch carries it.
 */
static void release_to(struct pusher *p, uint64_t r, unsigned np,
		       Fdod__Mapping *map)
{
	p->release = r;
	release_build_id(p, r);
	map->build_id.len = p->build_id_len;
	p->next_stack = 0;
	p->quota = cfg.release_stacks / np +
		   (p->id < cfg.release_stacks % np ? 1 : 0);
}

/*
 * Choose the stack ids of the next batch into p->ids: the new ones, then
 * distinct repeats. The first batch has nothing to repeat, so it is all new.
 * new_pct may be fractional: the share is carried over from batch to batch
 * (0.1% of 1,000 stacks is one new stack a batch). After a release the
 * release's quota of new stacks goes first, as many per batch as fit.
 */
static void pick_ids(struct pusher *p, double new_pct)
{
	uint64_t n = cfg.stacks;
	p->new_credit += (double)n * new_pct / 100.0;
	uint64_t nnew = (uint64_t)p->new_credit;
	p->new_credit -= (double)nnew;
	if (p->quota > nnew)
		nnew = p->quota;
	uint64_t sent = p->next_stack;
	if (nnew > n || sent < n - nnew)
		nnew = n; /* not enough distinct old stacks yet */
	p->quota -= nnew < p->quota ? nnew : p->quota;
	uint64_t k = 0;
	for (; k < nnew; k++)
		p->ids[k] = p->next_stack++;
	if (k == n)
		return;
	size_t need = (size_t)(sent / 8 + 1);
	if (need > p->picked_cap) {
		size_t cap = need * 2;
		uint8_t *nb = realloc(p->picked, cap);
		if (!nb) {
			fprintf(stderr, "pusher: out of memory\n");
			exit(1);
		}
		memset(nb + p->picked_cap, 0, cap - p->picked_cap);
		p->picked = nb;
		p->picked_cap = cap;
	}
	for (; k < n; k++) {
		uint64_t id = 0;
		for (int tries = 0;; tries++) {
			/* u^2 skew: low (old) ids are picked more often. */
			double u = (double)(rng_next(&p->rng) >> 11) /
				   9007199254740992.0;
			id = (uint64_t)(u * u * (double)sent);
			if (id >= sent)
				id = sent - 1;
			if (!(p->picked[id / 8] & (1u << (id % 8))))
				break;
			if (tries >= 8) {
				/* Dense region: take the next free id. */
				while (p->picked[id / 8] & (1u << (id % 8)))
					id = (id + 1) % sent;
				break;
			}
		}
		p->picked[id / 8] |= (uint8_t)(1u << (id % 8));
		p->ids[k] = id;
	}
	for (k = 0; k < n; k++)
		if (p->ids[k] < sent)
			p->picked[p->ids[k] / 8] = 0;
}

/* Encode the stacks of p->ids as repeated field 13 into p->sbuf. */
static size_t encode_stacks(struct pusher *p, uint64_t *samples)
{
	size_t len = 0;
	uint8_t inner[32];
	uint64_t sum = 0;
	for (uint64_t k = 0; k < cfg.stacks; k++) {
		uint64_t sseed = stack_seed(p, p->ids[k]);
		uint64_t count = stack_count(sseed);
		sum += count;
		uint8_t addrs[11 * 1024];
		uint64_t h = frame_hash(sseed, 0), idx = frame_index(h);
		size_t alen = put_varint(addrs, frame_addr(idx, 0, h));
		for (unsigned f = 1; f < cfg.depth; f++) {
			idx = next_index(sseed, f, idx);
			const uint8_t *e = ret_enc[idx];
			memcpy(addrs + alen, e + 1, 10);
			alen += e[0];
		}
		size_t ilen = 0;
		inner[ilen++] = 0x08; /* field 1 count, varint */
		ilen += put_varint(inner + ilen, count);
		inner[ilen++] = 0x12; /* field 2 addrs, packed */
		ilen += put_varint(inner + ilen, alen);
		if (len + 32 + ilen + alen > p->sbuf_cap) {
			size_t cap = (p->sbuf_cap + ilen + alen + 32) * 2;
			uint8_t *nb = realloc(p->sbuf, cap);
			if (!nb) {
				fprintf(stderr, "pusher: out of memory\n");
				exit(1);
			}
			p->sbuf = nb;
			p->sbuf_cap = cap;
		}
		p->sbuf[len++] = 0x6a; /* field 13 stacks, length-delimited */
		len += put_varint(p->sbuf + len, ilen + alen);
		memcpy(p->sbuf + len, inner, ilen);
		len += ilen;
		memcpy(p->sbuf + len, addrs, alen);
		len += alen;
	}
	*samples = sum;
	return len;
}

/* The labels of every batch (values in p->label_values); an OTLP request
 * carries them as resource attributes, which run.sh maps to labels
 * (fdod --otlp-attributes OTLP_ATTRS). */
static const char *const label_keys[] = {"mode", "region", "shard"};
#define OTLP_ATTRS                                                             \
	"process.executable.name=binary,host.name=host,mode=label:mode,"       \
	"region=label:region,shard=label:shard"

/* Fill the header fields of b (every field but stacks). */
static void header_init(struct pusher *p, Fdod__SampleBatch *b,
			Fdod__Label *lab, Fdod__Label **labp,
			Fdod__Mapping *map, Fdod__Mapping **mapp)
{
	fdod__sample_batch__init(b);
	for (int i = 0; i < 3; i++) {
		fdod__label__init(&lab[i]);
		lab[i].key = (char *)label_keys[i];
		lab[i].value = (char *)p->label_values[i];
		labp[i] = &lab[i];
	}
	fdod__mapping__init(map);
	map->index = 0;
	map->build_id.data = p->build_id;
	map->build_id.len = p->build_id_len;
	map->start = MAP_START;
	map->limit = map_limit();
	map->file_offset = map_off;
	map->path = "/usr/bin/bench-svc";
	*mapp = map;
	b->schema_version = WIRE_SCHEMA_VERSION;
	b->agent_id = p->agent;
	b->host = p->host;
	b->binary = cfg.binary;
	b->n_labels = 3;
	b->labels = labp;
	b->event = "cpu-clock";
	b->period = 1000000;
	b->weight = 1.0;
	b->n_mappings = 1;
	b->mappings = mapp;
}

static void header_stamp(Fdod__SampleBatch *b, uint64_t seq)
{
	uint64_t now = (uint64_t)time(NULL);
	b->seq = seq;
	b->time_start = now - 10;
	b->time_end = now;
}

/*
 * The start-up check: the batch the fast path builds (hdr + stacks) must
 * equal wire_batch_encode of the same batch built as structs, and must
 * decode and validate. Returns 0 or prints why not and returns -1.
 */
static int check_encoding(struct pusher *p, Fdod__SampleBatch *b,
			  const uint8_t *msg, size_t len)
{
	size_t n = cfg.stacks;
	Fdod__Stack *st = calloc(n, sizeof *st);
	Fdod__Stack **stp = calloc(n, sizeof *stp);
	uint64_t *addrs = calloc(n * cfg.depth, sizeof *addrs);
	int rc = -1;
	uint8_t *ref = NULL;
	size_t rlen = 0;
	Fdod__SampleBatch *dec = NULL;
	char why[256] = "";
	if (!st || !stp || !addrs)
		goto out;
	for (size_t k = 0; k < n; k++) {
		fdod__stack__init(&st[k]);
		st[k].count = stack_count(stack_seed(p, p->ids[k]));
		st[k].n_addrs = cfg.depth;
		st[k].addrs = addrs + k * cfg.depth;
		for (unsigned f = 0; f < cfg.depth; f++)
			st[k].addrs[f] = stack_addr(p, p->ids[k], f);
		stp[k] = &st[k];
	}
	b->n_stacks = n;
	b->stacks = stp;
	if (cfg.token[0])
		b->auth_token = cfg.token;
	int e = wire_batch_encode(b, NULL, &ref, &rlen);
	b->n_stacks = 0;
	b->stacks = NULL;
	b->auth_token = (char *)protobuf_c_empty_string;
	if (e) {
		fprintf(stderr, "pusher: wire_batch_encode: %s\n",
			fdo_strerror(e));
		goto out;
	}
	if (rlen != len || memcmp(ref, msg, len)) {
		fprintf(stderr,
			"pusher: fast encoding differs from wire_batch_encode "
			"(%zu vs %zu bytes)\n",
			len, rlen);
		goto out;
	}
	if ((e = wire_batch_decode(msg, len, NULL, &dec))) {
		fprintf(stderr, "pusher: wire_batch_decode: %s\n",
			fdo_strerror(e));
		goto out;
	}
	if ((e = wire_batch_validate(dec, NULL, why, sizeof why))) {
		fprintf(stderr, "pusher: batch does not validate: %s: %s\n",
			fdo_strerror(e), why);
		goto out;
	}
	rc = 0;
out:
	wire_batch_free(dec);
	free(ref);
	free(addrs);
	free(stp);
	free(st);
	return rc;
}

static void lat_push(struct pusher *p, uint64_t ns, uint64_t at)
{
	if (p->nlat == p->lat_cap) {
		size_t cap = p->lat_cap ? p->lat_cap * 2 : 4096;
		uint64_t *nl = realloc(p->lat, cap * sizeof *nl);
		uint64_t *na = nl ? realloc(p->ackt, cap * sizeof *na) : NULL;
		if (!nl || !na) {
			fprintf(stderr, "pusher: out of memory\n");
			exit(1);
		}
		p->lat = nl;
		p->ackt = na;
		p->lat_cap = cap;
	}
	p->ackt[p->nlat] = at;
	p->lat[p->nlat++] = ns;
}

/*
 * Before each batch: 0 once the time is up; else moves p to the release
 * of now (map: the batch header's mapping), sets *pct to the share of
 * new stacks for now and returns 1.
 */
static int round_begin(struct pusher *p, Fdod__Mapping *map, double *pct)
{
	uint64_t now = fdo_now_ns();
	if (now >= t_deadline)
		return 0;
	uint64_t el = now - t_start;
	if (cfg.release_every) {
		uint64_t r = el / (cfg.release_every * 1000000000ull);
		if (r != p->release)
			release_to(p, r, npushers, map);
	}
	*pct = cfg.warmup && el >= cfg.warmup * 1000000000ull
		       ? cfg.steady_new_pct
		       : cfg.new_pct;
	return 1;
}

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	Fdod__SampleBatch b;
	Fdod__Label lab[3], *labp[3];
	Fdod__Mapping map, *mapp;
	header_init(p, &b, lab, labp, &map, &mapp);
	p->ids = calloc(cfg.stacks, sizeof *p->ids);
	if (!p->ids) {
		fprintf(stderr, "pusher: out of memory\n");
		exit(1);
	}

	/* --token: auth_token (field 16) follows the stacks (13) in
	 * wire_batch_encode's field order, so the header is encoded without
	 * it and the field appended to every batch. */
	uint8_t tok[8 + 256];
	size_t tlen = 0, toklen = strlen(cfg.token);
	if (toklen) {
		tok[tlen++] = 0x82; /* field 16, length-delimited */
		tok[tlen++] = 0x01;
		tlen += put_varint(tok + tlen, toklen);
		memcpy(tok + tlen, cfg.token, toklen);
		tlen += toklen;
	}

	/* Prove the fast path right on this pusher's first batch. */
	uint64_t seq = 1, samples;
	pick_ids(p, cfg.new_pct);
	p->next_stack = 0;
	p->new_credit = 0;
	size_t slen = encode_stacks(p, &samples);
	header_stamp(&b, seq);
	uint8_t *hdr;
	size_t hlen;
	if (wire_batch_encode(&b, NULL, &hdr, &hlen)) {
		fprintf(stderr, "pusher: cannot encode a header\n");
		exit(1);
	}
	uint8_t *full = malloc(hlen + slen + tlen);
	if (!full) {
		fprintf(stderr, "pusher: out of memory\n");
		exit(1);
	}
	memcpy(full, hdr, hlen);
	memcpy(full + hlen, p->sbuf, slen);
	memcpy(full + hlen + slen, tok, tlen);
	free(hdr);
	if (check_encoding(p, &b, full, hlen + slen + tlen))
		exit(1);
	free(full);
	p->next_stack = 0;

	pthread_barrier_wait(&ready_barrier);
	pthread_barrier_wait(&start_barrier);
	double pct;
	while (round_begin(p, &map, &pct)) {
		uint64_t c0 = thread_cpu_ns();
		pick_ids(p, pct);
		slen = encode_stacks(p, &samples);
		header_stamp(&b, seq);
		if (wire_batch_encode(&b, NULL, &hdr, &hlen)) {
			fprintf(stderr, "pusher: cannot encode a header\n");
			exit(1);
		}
		nng_msg *m;
		if (nng_msg_alloc(&m, hlen + slen + tlen) != 0) {
			fprintf(stderr, "pusher: out of memory\n");
			exit(1);
		}
		memcpy(nng_msg_body(m), hdr, hlen);
		memcpy((uint8_t *)nng_msg_body(m) + hlen, p->sbuf, slen);
		memcpy((uint8_t *)nng_msg_body(m) + hlen + slen, tok, tlen);
		free(hdr);
		p->build_ns += thread_cpu_ns() - c0;

		/* A connection fdod closes before the Ack (a connection cap
		 * refuses it as it arrives: 8 pushers from one address start
		 * at once) loses nothing: resend the same batch, as fdo-agent
		 * does (same seq, exactly-once), and count it. A BUSY Ack
		 * with a retry-after (fdod's memory budget) is waited out and
		 * the batch sent again, as fdo-agent does, and counted. The
		 * latency includes the resends and the waits. */
		uint64_t t0 = fdo_now_ns();
		nng_msg *r = NULL;
		int rv, tries = 0, busy = 0;
		Fdod__Ack *ack = NULL;
		int e;
	send:
		for (;;) {
			nng_msg *copy = NULL;
			if (nng_msg_dup(&copy, m) != 0) {
				fprintf(stderr, "pusher: out of memory\n");
				exit(1);
			}
			rv = nng_sendmsg(p->sock, copy, 0);
			if (rv)
				nng_msg_free(copy);
			else
				rv = nng_recvmsg(p->sock, &r, 0);
			if ((rv != NNG_ECONNRESET && rv != NNG_ECLOSED &&
			     rv != NNG_ECONNSHUT) ||
			    ++tries > MAX_RESENDS)
				break;
			p->resends++;
			usleep(100000);
		}
		if (rv) {
			nng_msg_free(m);
			record_error(p, "seq %" PRIu64 ": no Ack: %s", seq,
				     nng_strerror(rv));
			break; /* the daemon is stuck or gone: stop this pusher
			        */
		}
		p->bytes += hlen + slen + tlen;
		e = wire_ack_decode(nng_msg_body(r), nng_msg_len(r), 0, &ack);
		nng_msg_free(r);
		if (!e && ack->status == FDO_EBUSY && ack->retry_after_ms &&
		    ++busy <= MAX_BUSY) {
			p->busy++;
			usleep(ack->retry_after_ms * 1000u);
			wire_ack_free(ack);
			ack = NULL;
			goto send;
		}
		nng_msg_free(m);
		uint64_t t1 = fdo_now_ns();
		if (e) {
			record_error(p, "seq %" PRIu64 ": malformed Ack: %s",
				     seq, fdo_strerror(e));
		} else if (ack->status != 0) {
			record_error(p, "seq %" PRIu64 ": Ack status %u %s: %s",
				     seq, ack->status,
				     fdo_errname((int)ack->status),
				     ack->message);
		} else if (ack->seq != seq || (ack->duplicate && !tries) ||
			   ack->samples_accepted != samples) {
			record_error(p,
				     "seq %" PRIu64 ": Ack seq %" PRIu64
				     " duplicate %d accepted %" PRIu64
				     " of %" PRIu64 " samples",
				     seq, ack->seq, (int)ack->duplicate,
				     ack->samples_accepted, samples);
		} else {
			p->batches++;
			p->stacks += cfg.stacks;
			p->samples += samples;
			p->frames += cfg.stacks * cfg.depth;
			lat_push(p, t1 - t0, t1 - t_start);
			p->last_ack = t1;
		}
		wire_ack_free(ack);
		seq++;
	}
	free(p->ids);
	free(p->picked);
	free(p->sbuf);
	atomic_fetch_add(&ndone, 1);
	return NULL;
}

/* --- OTLP/HTTP (--otlp) --------------------------------------------------- */

/* The stacks of p->ids into p->counts and p->addrs as a batch carries
 * them (leaf first, callers as return addresses); the sum of counts. */
static uint64_t fill_stacks(struct pusher *p)
{
	uint64_t sum = 0;
	for (uint64_t k = 0; k < cfg.stacks; k++) {
		uint64_t sseed = stack_seed(p, p->ids[k]);
		uint64_t *a = p->addrs + k * cfg.depth;
		uint64_t h = frame_hash(sseed, 0), idx = frame_index(h);
		a[0] = frame_addr(idx, 0, h);
		for (unsigned f = 1; f < cfg.depth; f++) {
			idx = next_index(sseed, f, idx);
			a[f] = frame_addr(idx, f, h);
		}
		p->counts[k] = stack_count(sseed);
		sum += p->counts[k];
	}
	return sum;
}

/* A file offset of the stacks: addr in mapping m. */
static uint64_t file_off(const Fdod__Mapping *m, uint64_t addr)
{
	return addr - m->start + m->file_offset;
}

/*
 * The start-up check of the OTLP path: the request just built must
 * decode with fdod's own decoder (wire_otlp_decode) into one batch of
 * binary, host and labels as sent, every sample accepted, and the same
 * stacks as the native batch of these ids: the same counts, build-id
 * and file offsets frame by frame (callers sent as return address - 1
 * come back as the return address). Returns 0 or prints why not and
 * returns -1.
 */
static int check_otlp(struct pusher *p, uint64_t samples)
{
	size_t len;
	const uint8_t *raw = otlp_req_raw(p->enc, &len);
	struct wire_otlp_attrs attrs;
	struct wire_otlp_result r = {0};
	struct wire_otlp_stats st;
	char err[512] = "";
	int rc = wire_otlp_attrs_parse(OTLP_ATTRS, &attrs, err, sizeof err);
	if (!rc) {
		struct wire_otlp_opts o = {.attrs = &attrs, .host = "?"};
		rc = wire_otlp_decode(raw, len, &o, &r, &st, err, sizeof err);
	}
	wire_otlp_attrs_fini(&attrs);
	if (rc) {
		fprintf(stderr,
			"pusher: the OTLP request does not decode: "
			"%s: %s\n",
			fdo_strerror(rc), err);
		return -1;
	}
	const char *why = NULL;
	const Fdod__SampleBatch *b = r.n == 1 ? r.batches[0] : NULL;
	if (!b)
		why = "not one batch";
	else if (st.count != samples || st.count_unmapped)
		why = "samples counted or unmapped";
	else if (strcmp(b->binary, cfg.binary) || strcmp(b->host, p->host) ||
		 b->n_labels != 3 || strcmp(b->event, "cpu-clock") ||
		 b->period != 1000000)
		why = "binary, host, labels, event or period";
	else if (b->n_stacks != cfg.stacks || b->n_mappings != 1 ||
		 b->mappings[0]->build_id.len != p->build_id_len ||
		 memcmp(b->mappings[0]->build_id.data, p->build_id,
			p->build_id_len))
		why = "stacks or build-id";
	for (size_t k = 0; !why && k < cfg.stacks; k++) {
		const Fdod__Stack *s = b->stacks[k];
		if (s->count != p->counts[k] || s->n_addrs != cfg.depth)
			why = "a stack's count or depth";
		for (size_t f = 0; !why && f < cfg.depth; f++)
			if (file_off(b->mappings[0], s->addrs[f]) !=
			    p->addrs[k * cfg.depth + f] - MAP_START + map_off)
				why = "a frame's file offset";
	}
	wire_otlp_result_fini(&r);
	if (why) {
		fprintf(stderr,
			"pusher: the OTLP request decodes to other "
			"samples than the native batch: %s differ\n",
			why);
		return -1;
	}
	return 0;
}

static size_t on_answer(char *data, size_t size, size_t n, void *arg)
{
	struct fdo_buf *b = arg;
	fdo_buf_append(b, data, size * n);
	return b->oom ? 0 : size * n;
}

/* The number after the first key (with its quotes and colon) in a JSON
 * answer, or -1. */
static int64_t json_number(const char *json, const char *key)
{
	const char *at = strstr(json, key);
	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static int otlp_open(struct pusher *p)
{
	static const char route[] = "/v1development/profiles";
	char url[512], auth[300];
	struct otlp_req_shape shape = {.max_stacks = cfg.stacks,
				       .depth = cfg.depth,
				       .binary = cfg.binary,
				       .host = p->host,
				       .thread = p->thread_name,
				       .path = "/usr/bin/bench-svc",
				       .label_keys = label_keys,
				       .label_values = p->label_values,
				       .n_labels = 3,
				       .start = MAP_START,
				       .limit = map_limit(),
				       .file_offset = map_off,
				       .period = 1000000,
				       .values = cfg.otlp_values,
				       .gzip = cfg.otlp_gzip};
	snprintf(url, sizeof url, "%s%s", cfg.otlp, route);
	snprintf(auth, sizeof auth, "Authorization: Bearer %.256s", cfg.token);
	p->counts = calloc(cfg.stacks, sizeof *p->counts);
	p->addrs = calloc(cfg.stacks * cfg.depth, sizeof *p->addrs);
	fdo_buf_init(&p->answer);
	/* The answer as JSON: it says how many samples were accepted. */
	const char *hs[] = {"Content-Type: application/x-protobuf",
			    "Accept: application/json", "Expect:",
			    cfg.otlp_gzip ? "Content-Encoding: gzip" : NULL,
			    cfg.token[0] ? auth : NULL};
	for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
		struct curl_slist *h =
			hs[i] ? curl_slist_append(p->headers, hs[i])
			      : p->headers;
		if (!h) {
			fprintf(stderr, "pusher: out of memory\n");
			return -1;
		}
		p->headers = h;
	}
	if (!p->counts || !p->addrs || !(p->curl = curl_easy_init()) ||
	    otlp_req_create(&shape, &p->enc)) {
		fprintf(stderr, "pusher: out of memory\n");
		return -1;
	}
	CURL *c = p->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &p->answer);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return 0;
}

static void otlp_close(struct pusher *p)
{
	curl_easy_cleanup(p->curl);
	curl_slist_free_all(p->headers);
	otlp_req_destroy(p->enc);
	fdo_buf_fini(&p->answer);
	free(p->counts);
	free(p->addrs);
}

/* The request of p->ids, stamped with the last 10 s: 0 or -1. */
static int otlp_build(struct pusher *p, const uint8_t **body, size_t *blen,
		      size_t *rawlen)
{
	uint64_t now = (uint64_t)time(NULL);
	return otlp_req_build(p->enc, p->build_id, p->build_id_len, p->counts,
			      p->addrs, cfg.stacks, (now - 10) * 1000000000ull,
			      10000000000ull, body, blen, rawlen);
}

/*
 * POST body until an answer: a connection fdod closed or refused (its
 * per-address cap) or a 503 (busy: Retry-After) is sent again after
 * 100 ms, up to MAX_RESENDS times, and counted. Returns the curl result;
 * *status is the HTTP status, p->answer its body.
 */
static CURLcode otlp_post(struct pusher *p, const uint8_t *body, size_t blen,
			  long *status, int *tries)
{
	CURLcode rc;
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)blen);
	for (*tries = 0;; ++*tries) {
		fdo_buf_reset(&p->answer);
		*status = 0;
		rc = curl_easy_perform(p->curl);
		if (!rc)
			curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE,
					  status);
		int again = rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
			    rc == CURLE_GOT_NOTHING ||
			    rc == CURLE_COULDNT_CONNECT || *status == 503;
		if (!again || *tries >= MAX_RESENDS)
			return rc;
		p->resends++;
		usleep(100000);
	}
}

static void *otlp_main(void *arg)
{
	struct pusher *p = arg;
	Fdod__Mapping map; /* release_to's; the request has its own */
	fdod__mapping__init(&map);
	p->ids = calloc(cfg.stacks, sizeof *p->ids);
	if (!p->ids) {
		fprintf(stderr, "pusher: out of memory\n");
		exit(1);
	}
	/* Prove the request right on this pusher's first one. */
	const uint8_t *body;
	size_t blen, rawlen;
	pick_ids(p, cfg.new_pct);
	uint64_t samples = fill_stacks(p);
	if (otlp_build(p, &body, &blen, &rawlen) || check_otlp(p, samples))
		exit(1);
	p->next_stack = 0;
	p->new_credit = 0;

	pthread_barrier_wait(&ready_barrier);
	pthread_barrier_wait(&start_barrier);
	double pct;
	for (uint64_t nr = 1; round_begin(p, &map, &pct); nr++) {
		uint64_t c0 = thread_cpu_ns();
		pick_ids(p, pct);
		samples = fill_stacks(p);
		if (otlp_build(p, &body, &blen, &rawlen)) {
			fprintf(stderr, "pusher: cannot encode a request\n");
			exit(1);
		}
		p->build_ns += thread_cpu_ns() - c0;

		uint64_t t0 = fdo_now_ns();
		long status;
		int tries;
		CURLcode rc = otlp_post(p, body, blen, &status, &tries);
		uint64_t t1 = fdo_now_ns();
		if (rc) {
			record_error(p, "request %" PRIu64 ": no answer: %s",
				     nr, curl_easy_strerror(rc));
			break; /* fdod is stuck or gone: stop this pusher */
		}
		p->bytes += blen;
		const char *ans = fdo_buf_cstr(&p->answer);
		int64_t acc = json_number(ans, "\"accepted\":");
		int64_t dups = json_number(ans, "\"duplicates\":");
		if (status != 200)
			record_error(p, "request %" PRIu64 ": HTTP %ld: %.200s",
				     nr, status, ans);
		else if (acc != (int64_t)samples || dups < 0 ||
			 (dups && !tries))
			record_error(p,
				     "request %" PRIu64 ": accepted %" PRId64
				     " of %" PRIu64 " samples, %" PRId64
				     " duplicate batches",
				     nr, acc, samples, dups);
		else {
			p->batches++;
			p->stacks += cfg.stacks;
			p->samples += samples;
			p->frames += cfg.stacks * cfg.depth;
			p->raw_bytes += rawlen;
			lat_push(p, t1 - t0, t1 - t_start);
			p->last_ack = t1;
		}
	}
	free(p->ids);
	free(p->picked);
	atomic_fetch_add(&ndone, 1);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* utime + stime of pid in ns (from /proc/PID/stat); -1 if unreadable. */
static int64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')'); /* comm may contain spaces */
	if (!s)
		return -1;
	unsigned long ut, st;
	/* fields after comm: state(3) ... utime(14) stime(15) */
	if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return (int64_t)((ut + st) * (1000000000ull / (uint64_t)hz));
}

/* A "Vm...:" line of /proc/PID/status in KiB; -1 if unreadable. */
static long proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Machine-wide busy and iowait jiffies from /proc/stat. */
static void machine_cpu(uint64_t *busy, uint64_t *iowait, uint64_t *total)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	*busy = *iowait = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
		*iowait = v[4];
		*total = *busy + v[3] + v[4];
	}
	fclose(f);
}

static uint64_t rusage_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
		       1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static int pusher_open(struct pusher *p)
{
	int rv;
	if ((rv = nng_req0_open(&p->sock)) != 0)
		goto fail;
	nng_socket_set_ms(p->sock, NNG_OPT_RECVTIMEO, (int)cfg.timeout_ms);
	nng_socket_set_ms(p->sock, NNG_OPT_SENDTIMEO, (int)cfg.timeout_ms);
	/* Never resend behind our back: a resend would be timed as one. */
	if (nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME,
			      NNG_DURATION_INFINITE) != 0)
		nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, 3600000);
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, WIRE_ACK_MAX_BYTES);
	if ((rv = nng_dial(p->sock, cfg.url, NULL, 0)) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "pusher: cannot connect to %s: %s\n", cfg.url,
		nng_strerror(rv));
	return -1;
}

struct rss_at {
	uint64_t t; /* ns since t_start */
	long anon;  /* KiB, -1 unreadable */
};

/*
 * Per window of --window seconds (by Ack time; the last window also takes
 * the Acks after the deadline and ends at the last one): acknowledged
 * Stack messages/s, Ack p99 and fdod's largest RssAnon. Prints a table
 * when there is more than one window and sets the summary figures: the
 * slowest window, the worst p99, and how much RssAnon grew from the
 * first window that starts after the warm-up to the last.
 */
struct win_summary {
	size_t n;
	double min_rate, max_p99_ms;
	long anon_max, anon_growth;
};

static void windows_report(const struct pusher *ps, unsigned np, uint64_t t_end,
			   const struct rss_at *rss, size_t nrss,
			   struct win_summary *ws)
{
	uint64_t W = cfg.window * 1000000000ull;
	uint64_t span = cfg.seconds * 1000000000ull;
	size_t nwin = (size_t)((span + W - 1) / W);
	uint64_t end = t_end - t_start;
	memset(ws, 0, sizeof *ws);
	ws->n = nwin;
	ws->min_rate = -1;
	ws->anon_max = -1;
	size_t nall = 0;
	for (unsigned i = 0; i < np; i++)
		nall += ps[i].nlat;
	uint64_t *lat = malloc((nall ? nall : 1) * sizeof *lat);
	if (!lat)
		return;
	long first_anon = -1, last_anon = -1;
	if (nwin > 1)
		printf("  per window of %" PRIu64
		       " s: start s, Stack messages/s,"
		       " Ack p99 ms, fdod RssAnon max MiB\n",
		       cfg.window);
	for (size_t w = 0; w < nwin; w++) {
		uint64_t lo = w * W, hi = w + 1 == nwin ? UINT64_MAX : lo + W;
		size_t n = 0;
		for (unsigned i = 0; i < np; i++)
			for (size_t k = 0; k < ps[i].nlat; k++)
				if (ps[i].ackt[k] >= lo && ps[i].ackt[k] < hi)
					lat[n++] = ps[i].lat[k];
		qsort(lat, n, sizeof *lat, cmp_u64);
		double dur =
			(double)((w + 1 == nwin ? end : lo + W) - lo) / 1e9;
		double rate = dur > 0 ? (double)n * (double)cfg.stacks / dur
				      : 0;
		double p99 = n ? lat[(size_t)((n - 1) * 0.99)] / 1e6 : 0;
		long amax = -1;
		for (size_t k = 0; k < nrss; k++)
			if (rss[k].t >= lo && rss[k].t < hi &&
			    rss[k].anon > amax)
				amax = rss[k].anon;
		if (ws->min_rate < 0 || rate < ws->min_rate)
			ws->min_rate = rate;
		if (p99 > ws->max_p99_ms)
			ws->max_p99_ms = p99;
		if (amax > ws->anon_max)
			ws->anon_max = amax;
		if (first_anon < 0 && lo >= cfg.warmup * 1000000000ull)
			first_anon = amax;
		last_anon = amax;
		if (nwin > 1)
			printf("    %6" PRIu64 "  %12.0f  %8.1f  %8.1f\n",
			       (uint64_t)(lo / 1000000000ull), rate, p99,
			       amax < 0 ? -1.0 : amax / 1024.0);
	}
	ws->anon_growth =
		first_anon >= 0 && last_anon >= 0 ? last_anon - first_anon : 0;
	free(lat);
}

int main(int argc, char **argv)
{
	char err[256];
	int optind;
	if (fdo_opts_wants_help(argc, argv)) {
		printf("usage: pusher [options]\n\n"
		       "Pushes SampleBatches to fdod from concurrent agents "
		       "for a fixed time and\nreports throughput and Ack "
		       "latency (bench/ingest/README.md).\n\n");
		fdo_opts_print_help(opts, stdout);
		return 0;
	}
	if (fdo_opts_defaults(opts, &cfg, err, sizeof err) ||
	    fdo_opts_parse_args(opts, &cfg, argc, argv, &optind, err,
				sizeof err)) {
		fprintf(stderr, "pusher: %s\n", err);
		return 2;
	}
	if (optind != argc || cfg.pushers < 1 || cfg.pushers > 1024 ||
	    cfg.stacks < 1 || cfg.depth < 1 || cfg.depth > 1024 ||
	    cfg.addrs < 1 || cfg.addrs > (1u << 28) || cfg.seconds < 1 ||
	    cfg.callgraph > 1024 || cfg.new_pct < 0 || cfg.new_pct > 100 ||
	    cfg.steady_new_pct < 0 || cfg.steady_new_pct > 100 ||
	    cfg.window < 1 || cfg.release_stacks > (1ull << 32) ||
	    strlen(cfg.token) > 255) {
		fprintf(stderr, "pusher: bad arguments (see --help)\n");
		return 2;
	}

	if (cfg.elf[0] && elf_setup(cfg.elf))
		return 2;
	if (cfg.otlp[0] && curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "pusher: curl_global_init failed\n");
		return 1;
	}
	ret_enc = malloc(cfg.addrs * sizeof *ret_enc);
	if (!ret_enc)
		return 1;
	for (uint64_t i = 0; i < cfg.addrs; i++)
		ret_enc[i][0] = (uint8_t)put_varint(ret_enc[i] + 1,
						    frame_addr(i, 1, 0));
	unsigned np = (unsigned)cfg.pushers;
	npushers = np;
	struct pusher *ps = calloc(np, sizeof *ps);
	if (!ps)
		return 1;
	for (unsigned i = 0; i < np; i++) {
		struct pusher *p = &ps[i];
		p->id = i;
		/* The OTLP phase sends other stacks and build-ids than the
		 * native one before it on the same fdod. */
		p->seed = splitmix(0x66646f64ull + i +
				   (cfg.otlp[0] ? 1ull << 32 : 0));
		p->rng = splitmix(p->seed ^ 0x5eed);
		release_build_id(p, 0);
		snprintf(p->agent, sizeof p->agent, "%.32s-%u",
			 cfg.agent_prefix, i);
		snprintf(p->host, sizeof p->host, "%.32s-host-%u",
			 cfg.agent_prefix, i);
		snprintf(p->shard, sizeof p->shard, "%u", i % 4);
		snprintf(p->thread_name, sizeof p->thread_name, "worker-%u", i);
		p->label_values[0] = "serving";
		p->label_values[1] = "bench";
		p->label_values[2] = p->shard;
		if (cfg.otlp[0] ? otlp_open(p) : pusher_open(p))
			return 1;
	}
	pthread_barrier_init(&ready_barrier, NULL, np + 1);
	pthread_barrier_init(&start_barrier, NULL, np + 1);
	for (unsigned i = 0; i < np; i++)
		if (pthread_create(&ps[i].thread, NULL,
				   cfg.otlp[0] ? otlp_main : pusher_main,
				   &ps[i])) {
			fprintf(stderr, "pusher: cannot start a thread\n");
			return 1;
		}

	pid_t pid = (pid_t)cfg.pid;
	uint64_t mb0, mi0, mt0, mb1, mi1, mt1;
	/* Start-up work (connects, checks) is done once all are ready. */
	pthread_barrier_wait(&ready_barrier);
	int64_t fcpu0 = pid ? proc_cpu_ns(pid) : -1;
	uint64_t cpu0 = rusage_ns();
	machine_cpu(&mb0, &mi0, &mt0);
	t_start = fdo_now_ns();
	t_deadline = t_start + cfg.seconds * 1000000000ull;
	pthread_barrier_wait(&start_barrier);

	/* fdod's RssAnon once a second while the pushers run. */
	struct rss_at *rss_v = NULL;
	size_t rss_n = 0, rss_cap = 0;
	while (atomic_load(&ndone) < np) {
		usleep(200000);
		static uint64_t last;
		uint64_t t = fdo_now_ns();
		if (!pid || t - last < 1000000000ull)
			continue;
		last = t;
		if (fdo_grow(rss_v, rss_cap, rss_n + 1))
			break;
		rss_v[rss_n++] = (struct rss_at){
			t - t_start, proc_status_kb(pid, "RssAnon")};
	}
	for (unsigned i = 0; i < np; i++)
		pthread_join(ps[i].thread, NULL);
	uint64_t t_end = t_start;
	for (unsigned i = 0; i < np; i++)
		if (ps[i].last_ack > t_end)
			t_end = ps[i].last_ack;
	uint64_t cpu1 = rusage_ns();
	machine_cpu(&mb1, &mi1, &mt1);
	int64_t fcpu1 = pid ? proc_cpu_ns(pid) : -1;
	long hwm = pid ? proc_status_kb(pid, "VmHWM") : -1;
	long rss = pid ? proc_status_kb(pid, "VmRSS") : -1;
	long anon = pid ? proc_status_kb(pid, "RssAnon") : -1;
	long file = pid ? proc_status_kb(pid, "RssFile") : -1;

	uint64_t batches = 0, stacks = 0, samples = 0, frames = 0, bytes = 0,
		 errors = 0, build_ns = 0, resends = 0, raw_bytes = 0, busy = 0;
	size_t nlat = 0;
	for (unsigned i = 0; i < np; i++) {
		batches += ps[i].batches;
		resends += ps[i].resends;
		busy += ps[i].busy;
		stacks += ps[i].stacks;
		samples += ps[i].samples;
		frames += ps[i].frames;
		bytes += ps[i].bytes;
		raw_bytes += ps[i].raw_bytes;
		errors += ps[i].errors;
		build_ns += ps[i].build_ns;
		nlat += ps[i].nlat;
	}
	uint64_t *lat = calloc(nlat ? nlat : 1, sizeof *lat);
	if (!lat)
		return 1;
	size_t k = 0;
	for (unsigned i = 0; i < np; i++) {
		memcpy(lat + k, ps[i].lat, ps[i].nlat * sizeof *lat);
		k += ps[i].nlat;
	}
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	double p50 = nlat ? lat[(nlat - 1) / 2] / 1e6 : 0;
	double p99 = nlat ? lat[(size_t)((nlat - 1) * 0.99)] / 1e6 : 0;
	double pmax = nlat ? lat[nlat - 1] / 1e6 : 0;
	double win = (double)(t_end - t_start) / 1e9;
	if (win <= 0)
		win = 1e-9;
	double pcpu = (double)(cpu1 - cpu0) / 1e9;
	double fcpu = fcpu0 >= 0 && fcpu1 >= 0 ? (double)(fcpu1 - fcpu0) / 1e9
					       : -1;
	double mt = (double)(mt1 - mt0);
	double mbusy = mt > 0 ? (double)(mb1 - mb0) / mt : 0;
	double mio = mt > 0 ? (double)(mi1 - mi0) / mt : 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	char otlp_what[200] = "";
	if (cfg.otlp[0])
		snprintf(otlp_what, sizeof otlp_what,
			 " as OTLP/HTTP profiles (%s, %s)",
			 cfg.otlp_values ? "values" : "timestamps",
			 cfg.otlp_gzip ? "gzip" : "not compressed");
	double kib = batches ? bytes / 1024.0 / batches : 0.0;
	double raw_kib = batches && cfg.otlp[0] ? raw_bytes / 1024.0 / batches
						: kib;
	printf("ingest pusher: %u pushers x batches of %" PRIu64
	       " stacks x %" PRIu64 " frames, %.1f%% new stacks per batch,"
	       " %s%s\n",
	       np, cfg.stacks, cfg.depth, cfg.new_pct,
	       cfg.otlp[0] ? cfg.otlp : cfg.url, otlp_what);
	printf("  window                      %.2f s (send for %" PRIu64
	       " s, then wait for the last Acks)\n",
	       win, cfg.seconds);
	printf("  acknowledged batches        %" PRIu64 " (%.1f/s), %.1f KiB"
	       " average",
	       batches, batches / win, kib);
	if (cfg.otlp[0] && cfg.otlp_gzip)
		printf(" (%.1f KiB before gzip; one request each, answered "
		       "200 with every sample accepted)",
		       raw_kib);
	else if (cfg.otlp[0])
		printf(" (one request each, answered 200 with every sample "
		       "accepted)");
	printf("\n");
	printf("  Stack messages/s            %.0f\n", stacks / win);
	printf("  samples (sum of counts)/s   %.0f\n", samples / win);
	printf("  frames/s                    %.0f\n", frames / win);
	printf("  Ack latency                 p50 %.1f ms, p99 %.1f ms, max "
	       "%.1f ms (%zu batches)\n",
	       p50, p99, pmax, nlat);
	printf("  errors                      %" PRIu64 "\n", errors);
	printf("  resends                     %" PRIu64
	       " (a batch sent again after fdod closed its connection)\n",
	       resends);
	printf("  busy                        %" PRIu64
	       " (a batch sent again after a BUSY Ack's retry-after)\n",
	       busy);
	for (unsigned i = 0; i < atomic_load(&nerr_shown); i++)
		printf("    %s\n", err_shown[i]);
	printf("  pusher CPU                  %.2f s (%.0f%% of one core);"
	       " building batches %.2f s = %.0f us/batch\n",
	       pcpu, 100 * pcpu / win, build_ns / 1e9,
	       batches ? build_ns / 1e3 / batches : 0.0);
	if (pid) {
		printf("  fdod CPU                    %.2f s (%.0f%% of one "
		       "core), %.0f us/batch\n",
		       fcpu, 100 * fcpu / win,
		       batches ? fcpu * 1e6 / batches : 0.0);
		printf("  fdod RSS                    peak (VmHWM) %.1f MiB, "
		       "now %.1f MiB (heap and stacks %.1f, mapped files "
		       "%.1f)\n",
		       hwm / 1024.0, rss / 1024.0, anon / 1024.0,
		       file / 1024.0);
	}
	printf("  machine                     %ld CPUs, busy %.0f%%, iowait "
	       "%.0f%% over the window\n",
	       ncpu, 100 * mbusy, 100 * mio);
	uint64_t releases = 0;
	for (unsigned i = 0; i < np; i++)
		if (ps[i].release > releases)
			releases = ps[i].release;
	if (cfg.warmup || cfg.release_every)
		printf("  fleet                       new stacks %.1f%% for %" PRIu64
		       " s, then %.2f%%; %" PRIu64 " releases of %" PRIu64
		       " new stacks\n",
		       cfg.new_pct, cfg.warmup ? cfg.warmup : cfg.seconds,
		       cfg.warmup ? cfg.steady_new_pct : cfg.new_pct, releases,
		       cfg.release_stacks);
	struct win_summary ws;
	windows_report(ps, np, t_end, rss_v, rss_n, &ws);
	printf("RESULT window_s=%.3f batches=%" PRIu64 " stacks=%" PRIu64
	       " samples=%" PRIu64 " frames=%" PRIu64 " errors=%" PRIu64
	       " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f pusher_cpu_s=%.2f"
	       " build_cpu_s=%.2f fdod_cpu_s=%.2f fdod_hwm_kb=%ld"
	       " fdod_anon_kb=%ld fdod_file_kb=%ld machine_busy_pct=%.0f"
	       " iowait_pct=%.0f ncpu=%ld windows=%zu win_min_stacks_s=%.0f"
	       " win_max_p99_ms=%.2f anon_max_kb=%ld anon_growth_kb=%ld"
	       " releases=%" PRIu64 " resends=%" PRIu64 " busy=%" PRIu64
	       " kib=%.1f raw_kib=%.1f\n",
	       win, batches, stacks, samples, frames, errors, p50, p99, pmax,
	       pcpu, build_ns / 1e9, fcpu, hwm, anon, file, 100 * mbusy,
	       100 * mio, ncpu, ws.n, ws.min_rate, ws.max_p99_ms, ws.anon_max,
	       ws.anon_growth, releases, resends, busy, kib, raw_kib);
	fflush(stdout);
	for (unsigned i = 0; i < np; i++) {
		if (cfg.otlp[0])
			otlp_close(&ps[i]);
		else
			nng_close(ps[i].sock);
		free(ps[i].lat);
		free(ps[i].ackt);
	}
	free(lat);
	free(rss_v);
	free(ps);
	free(ret_enc);
	fdo_opts_fini(opts, &cfg);
	return errors ? 1 : 0;
}
