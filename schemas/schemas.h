/*
 * schemas/schemas.h — the wire contracts of fdod, the only header other parts
 * include from schemas/ (besides the generated "schemas/fdod.pb-c.h" it
 * pulls in): the SampleBatch and Ack messages of schemas/fdod.proto, their
 * byte codecs, the text form of one SampleBatch (fdoctl push, tests,
 * hand-made data), the validation every ingest path applies, with its
 * documented limits, and the fixed-point weight arithmetic of aggregation.
 *
 * Memory: every batch or ack handed out by this part is one protobuf-c
 * object graph whose every pointer (strings, bytes, arrays, sub-messages)
 * comes from malloc, so wire_batch_free / wire_ack_free (protobuf-c's
 * free_unpacked with the system allocator) releases any of them, whether it
 * came from wire_batch_decode or wire_batch_parse_text. A caller building a
 * batch by hand and handing it to wire_batch_free must follow the same rule
 * (unset strings may stay at protobuf_c_empty_string, as the generated
 * fdod__sample_batch__init leaves them). The one exception is a batch
 * decoded into a wire_arena (wire_batch_decode_in): the arena owns it.
 *
 * Threads: no function here has hidden state; any thread may call any of
 * them, concurrently, on distinct objects (and on the same object when all
 * calls only read it: validate, print, encode).
 *
 * The full contract (fields, grammar, limits, weight scale) is written down
 * in schemas/README.md.
 */
#ifndef FDO_SCHEMAS_H
#define FDO_SCHEMAS_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "schemas/fdod.pb-c.h"

/* The SampleBatch.schema_version this code writes and the highest it reads. */
#define WIRE_SCHEMA_VERSION 1u

/* Largest Ack wire_ack_encode writes and wire_ack_decode accepts by default. */
#define WIRE_ACK_MAX_BYTES 65536u

/*
 * Documented bounds of one SampleBatch. A batch that exceeds one is refused
 * whole (FDO_ELIMIT); the agent splits it and resends. wire_limits_default
 * holds the values fdod uses unless configured otherwise (also listed in
 * schemas/README.md, which must be kept in step).
 */
struct wire_limits {
	size_t max_message_bytes;    /* encoded SampleBatch: 16 MiB */
	size_t max_decoded_bytes;    /* memory one decode may take: 64 MiB */
	size_t max_text_bytes;	     /* text form of one batch: 64 MiB */
	size_t max_stacks;	     /* Stack messages: 262144 */
	size_t max_stack_depth;	     /* addresses in one stack: 1024 */
	size_t max_frames;	     /* addresses in all stacks: 4194304 */
	size_t max_mappings;	     /* 8192 */
	size_t max_branches;	     /* 1048576 */
	size_t max_labels;	     /* 32 */
	size_t max_label_key_len;    /* bytes: 64 */
	size_t max_label_value_len;  /* bytes: 256 */
	size_t max_labels_bytes;     /* all labels, key=value joined: 2000 */
	size_t max_name_len;	     /* agent, host, binary, event: 256 */
	size_t max_path_len;	     /* mapping path, bytes: 4096 */
	uint64_t max_count;	     /* Stack.count, Branch.count: 1e9 */
	uint64_t max_period;	     /* 1e12 (1000 s in ns) */
	double max_weight;	     /* 1e6 */
	uint64_t max_window_seconds; /* time_end - time_start: 86400 */
};

extern const struct wire_limits wire_limits_default;

/*
 * wire_batch_validate checks batch against every documented bound and rule
 * of schemas/README.md: required fields present (agent_id, seq >= 1, host,
 * binary, event, period >= 1, time_end >= 1), names well formed, label keys
 * unique, build-ids 1..64 bytes, start < limit, mapping indices unique and
 * mappings disjoint, stacks of 1..max_stack_depth addresses with count >= 1,
 * mispredicts <= count, weight finite, at most max_weight and not
 * rounding to 0 (see wire_weight_quantize), time_start <= time_end within
 * max_window_seconds,
 * schema_version <= WIRE_SCHEMA_VERSION.
 * limits: NULL means &wire_limits_default.
 * err/errlen: receives a one-line reason naming the offending item
 * ("stack 17: 2000 addresses, limit 1024"); may be NULL/0.
 * Returns FDO_OK; FDO_EINVAL (missing or malformed value), FDO_ELIMIT (a
 * bound exceeded), FDO_EBAD_BUILD_ID, FDO_EUNSUPPORTED (schema_version), or
 * FDO_ENOMEM. Reads batch only; allocates nothing that outlives the call.
 * Cost: linear in the batch plus a sort of the mappings.
 */
int wire_batch_validate(const Fdod__SampleBatch *batch,
			const struct wire_limits *limits, char *err,
			size_t errlen);

/*
 * wire_batch_parse_text parses the text form of one batch (grammar in
 * schemas/README.md; example in DESIGN.md "Interfaces").
 * text/len: the input, not necessarily NUL-terminated; a NUL byte in it is
 * an error. limits: NULL means &wire_limits_default.
 * out: on FDO_OK receives a new batch that passes wire_batch_validate(limits);
 * the caller owns it and frees it with wire_batch_free. Untouched on error.
 * err/errlen: on error receives "line N: reason" (or "end of input: ..."
 * for a missing keyword); may be NULL/0.
 * Returns FDO_OK; FDO_EPARSE (syntax: unknown keyword, wrong number of
 * fields, bad number or hex, bad escape, duplicate keyword), or the code
 * wire_batch_validate gives for a value it refuses (FDO_EINVAL, FDO_ELIMIT,
 * FDO_EBAD_BUILD_ID), or FDO_ENOMEM.
 */
int wire_batch_parse_text(const char *text, size_t len,
			  const struct wire_limits *limits,
			  Fdod__SampleBatch **out, char *err, size_t errlen);

/*
 * wire_batch_print_text writes the canonical text form of batch (which
 * must be structurally sound, as protobuf_c_message_check sees it): keywords
 * in the order agent seq host binary label* event period weight time
 * mapping* stack* branch*, one space between fields, addresses lowercase hex
 * without 0x, strings %XX-escaped where needed, no comments. Unset fields
 * (0, "") are left out; auth_token is never printed. For every batch that
 * passes validation, parse(print(b)) equals b.
 * out/len: on FDO_OK *out is a NUL-terminated malloc'd string of *len bytes
 * (len may be NULL), freed by the caller with free(3).
 * Returns FDO_OK or FDO_ENOMEM.
 */
int wire_batch_print_text(const Fdod__SampleBatch *batch, char **out,
			  size_t *len);

/*
 * wire_batch_encode serializes batch to protobuf bytes.
 * limits: NULL means defaults; only max_message_bytes is used.
 * out/len: on FDO_OK *out is a malloc'd buffer of *len bytes, freed by the
 * caller with free(3).
 * Returns FDO_OK, FDO_EINVAL (batch structurally broken: a NULL string or
 * array where protobuf-c needs one), FDO_ELIMIT (larger than
 * max_message_bytes: split the batch), or FDO_ENOMEM.
 */
int wire_batch_encode(const Fdod__SampleBatch *batch,
		      const struct wire_limits *limits, uint8_t **out,
		      size_t *len);

/*
 * wire_batch_decode parses protobuf bytes into a batch. It does not run
 * wire_batch_validate; ingest calls both.
 * buf/len: the bytes; only read during the call.
 * limits: NULL means defaults; uses max_message_bytes (checked before any
 * parsing) and max_decoded_bytes (a cap on what decoding may allocate, so a
 * small message of many empty sub-messages cannot blow up memory).
 * out: on FDO_OK a new batch owned by the caller, freed with wire_batch_free.
 * Returns FDO_OK, FDO_ELIMIT (too large, or would take more memory than
 * allowed), FDO_EPARSE (malformed bytes), FDO_EINVAL (a string field holds
 * a NUL byte: a name would be cut short), or FDO_ENOMEM.
 */
int wire_batch_decode(const uint8_t *buf, size_t len,
		      const struct wire_limits *limits,
		      Fdod__SampleBatch **out);

/*
 * The identity fields of an encoded batch, read without decoding it:
 * pointers into the message (not NUL-terminated; len 0 when absent).
 */
struct wire_str {
	const char *p;
	size_t len;
};
struct wire_batch_head {
	struct wire_str agent_id, host, binary, auth_token;
};

/*
 * wire_batch_peek finds agent_id, host, binary and auth_token among the
 * top-level fields of buf (the last of each wins, as in decoding), so that
 * a receiver can check the token before it decodes (and copies) the rest.
 * Allocates nothing; reads only the field headers and those values.
 * Returns FDO_OK, FDO_ELIMIT (over max_message_bytes) or FDO_EPARSE (the
 * top level is malformed; decoding would fail too).
 */
int wire_batch_peek(const uint8_t *buf, size_t len,
		    const struct wire_limits *limits,
		    struct wire_batch_head *h);

/* wire_batch_free releases a batch from this part; NULL is a no-op. */
void wire_batch_free(Fdod__SampleBatch *batch);

/*
 * A wire_arena holds decoded batches for a receiver that decodes one batch
 * after another on one thread: every allocation of a decode is carved from
 * the arena's blocks, and wire_arena_reset takes them all back at once
 * (the blocks stay mapped for the next decode). Against malloc per field
 * and free_unpacked per batch this saved about a tenth of fdod's ingest
 * CPU (bench/ingest). One arena serves one thread at a time.
 */
struct wire_arena;

/* wire_arena_new returns an empty arena, or NULL when out of memory. */
struct wire_arena *wire_arena_new(void);

/*
 * wire_batch_decode_in is wire_batch_decode into arena a (same limits,
 * same results), with a decoder of its own that is ~1.6x as fast as
 * protobuf-c's generic one (schemas/codec.c). The batch stays valid until
 * the next wire_arena_reset or wire_arena_free of a; never hand it to
 * wire_batch_free. A failed decode leaves nothing behind that a reset
 * would not take back.
 */
int wire_batch_decode_in(struct wire_arena *a, const uint8_t *buf, size_t len,
			 const struct wire_limits *limits,
			 Fdod__SampleBatch **out);

/* wire_decoder_matches_schema is 1 when that decoder can read every field
 * of fdod.proto as protobuf-c compiled it (it walks protobuf-c's
 * descriptors; a unit test checks it, so a field of a kind the decoder
 * does not read fails the build's tests), else 0. */
int wire_decoder_matches_schema(void);

/* wire_arena_reset frees every batch decoded into a, keeping up to 4 MiB
 * of blocks for reuse. */
void wire_arena_reset(struct wire_arena *a);

/* wire_arena_free releases a and everything in it; NULL is a no-op. */
void wire_arena_free(struct wire_arena *a);

/*
 * wire_ack_encode serializes ack (status = an FDO_E* number).
 * out/len: malloc'd buffer, freed by the caller with free(3).
 * Returns FDO_OK, FDO_EINVAL (NULL message string), FDO_ELIMIT (larger than
 * WIRE_ACK_MAX_BYTES: shorten the message), or FDO_ENOMEM.
 */
int wire_ack_encode(const Fdod__Ack *ack, uint8_t **out, size_t *len);

/*
 * wire_ack_decode parses an Ack of at most max_bytes bytes (0 means
 * WIRE_ACK_MAX_BYTES). out: new Ack owned by the caller, freed with
 * wire_ack_free. Returns FDO_OK, FDO_ELIMIT, FDO_EPARSE or FDO_ENOMEM.
 */
int wire_ack_decode(const uint8_t *buf, size_t len, size_t max_bytes,
		    Fdod__Ack **out);

/* wire_ack_free releases an Ack from wire_ack_decode; NULL is a no-op. */
void wire_ack_free(Fdod__Ack *ack);

/*
 * wire_binary_name_check applies the binary-name rule of batches
 * ([A-Za-z0-9_.+-], not starting with '.', at most max_name_len bytes) to
 * a name that arrives another way (an upload's ?binary=). Returns FDO_OK
 * or FDO_EINVAL / FDO_ELIMIT with err set. Pure; any thread.
 */
int wire_binary_name_check(const char *name, char *err, size_t errlen);

/*
 * Fixed-point weights. A sample's contribution count × period × weight is
 * stored as the exact integer count × period × wq, where
 *   wq = round(weight × WIRE_WEIGHT_SCALE), halves away from zero,
 * computed once per batch; the unit of a stored value is 1e-6 event unit
 * (e.g. 1e-6 ns for cpu-clock). Only this one rounding happens, so sums are
 * exact and independent of arrival order. Realistic values (period 1e9,
 * weight 1e6, counts 1e9 summed over years) reach 1e9 × 1e9 × 1e12 = 1e30,
 * which no 64-bit integer can hold (2^64 ≈ 1.8e19) at any useful scale:
 * accumulators are unsigned 128-bit (≈ 3.4e38, headroom 3e8 over that
 * worst case). See schemas/README.md for the full reasoning.
 */
#define WIRE_WEIGHT_SCALE 1000000u

__extension__ typedef unsigned __int128 wire_weight_t;

/*
 * wire_weight_quantize: wq = round(weight × WIRE_WEIGHT_SCALE).
 * Returns FDO_OK; FDO_EINVAL if weight is not finite or <= 0; FDO_ELIMIT if
 * wq would be 0 (weight < 5e-7) or above 2^53 (no longer exact).
 */
int wire_weight_quantize(double weight, uint64_t *out);

/*
 * wire_weight_fixed_wide: *out = count × period × wq (wq as above), exact.
 * Returns FDO_OK, the errors of wire_weight_quantize, or FDO_ELIMIT if the
 * product exceeds 128 bits (impossible within wire_limits_default).
 */
int wire_weight_fixed_wide(uint64_t count, uint64_t period, double weight,
			   wire_weight_t *out);

/*
 * wire_weight_fixed: the same product when it fits 64 bits; FDO_ELIMIT when
 * it does not (which real batches reach: count 2e7 at period 1e6 and weight
 * 1 already does). For small tallies and tests; accumulators use _wide.
 */
int wire_weight_fixed(uint64_t count, uint64_t period, double weight,
		      uint64_t *out);

/*
 * wire_weight_add: *acc += v, exactly. Returns FDO_OK, or FDO_ELIMIT and
 * leaves *acc unchanged on 128-bit overflow.
 */
int wire_weight_add(wire_weight_t *acc, wire_weight_t v);

/*
 * Perf recordings (`fdoctl import`; schemas/perf.c): the text `perf script`
 * prints for a recording, with the recording's build-id table, becomes
 * SampleBatches. Every frame travels as (build-id, file offset); kernel
 * frames and files without a build-id as unmapped (address 0). The exact
 * perf script fields, the line formats read and the batching rules are
 * written at the top of schemas/perf.c and in docs/ingest.md.
 */
struct wire_perf_opts {
	const char *agent_id;	   /* every batch's agent id (required) */
	const char *host;	   /* every batch's host (required) */
	const char *binary;	   /* NULL: the program with the most samples */
	const char *const *labels; /* "key=value" each */
	size_t n_labels;
	uint64_t time_end;		  /* unix seconds of the last sample */
	const struct wire_limits *limits; /* NULL: wire_limits_default */
	size_t max_held_bytes; /* finished batches held until the end, by
	                          encoded size; past it FDO_ELIMIT; 0: 256 MiB */
};

/* What a decode read, for the summary `fdoctl import` prints. */
struct wire_perf_stats {
	uint64_t samples;	   /* samples read */
	uint64_t samples_unmapped; /* of them: no frame left in a known file */
	uint64_t frames;	   /* callchain frames read */
	uint64_t frames_kernel;	   /* of them: kernel frames over the user
	                              stack, left out (as fdo-agent does) */
	uint64_t frames_unmapped; /* of them: travel as address 0, because... */
	uint64_t frames_no_file;  /* ...[vdso], [unknown], other kernel */
	uint64_t frames_no_build_id; /* ...file without (one) build-id */
	uint64_t frames_ambiguous;   /* ...absolute or file offset: undecided */
	uint64_t frames_unknown;     /* ...in no mapping of its process */
	uint64_t frames_dropped;    /* callers past max_stack_depth, left out */
	uint64_t branches;	    /* brstack entries read */
	uint64_t branches_unmapped; /* of them: an end in no known file */
	uint64_t mmaps;		    /* executable mmap records */
	uint64_t build_ids;	    /* lines of the build-id table */
	uint64_t map_work;	    /* mapping entries copied or moved (fork,
	                              mmaps out of order); bounded by the
	                              lines read */
	uint64_t batches;	    /* batches made */
};

struct wire_perf_result {
	Fdod__SampleBatch **batches; /* each passes wire_batch_validate */
	size_t n_batches;
	struct wire_perf_stats stats;
};

/* The decoder; not thread safe, one per thread. */
struct wire_perf;

/*
 * wire_perf_create makes a decoder for one recording. o is copied; the
 * strings it points to must outlive the decoder. Returns FDO_OK or
 * FDO_ENOMEM. Free with wire_perf_destroy.
 */
int wire_perf_create(const struct wire_perf_opts *o, struct wire_perf **out);

/*
 * wire_perf_header reads the "# event : name = ..." lines of `perf report
 * --header-only` (the same lines in the text, from perf script --header,
 * are read as they come): an event's fixed period (perf record -c N),
 * used for its samples printed without one, and its callchain mode:
 * --call-graph dwarf callers are taken back to return addresses,
 * --call-graph lbr is refused. Other lines are ignored. Call it before
 * feeding the text. Returns FDO_OK, FDO_EINVAL (lbr call graph),
 * FDO_ELIMIT (more than 64 events, a period over max_period), FDO_EPARSE
 * or FDO_ENOMEM, with the reason in err.
 */
int wire_perf_header(struct wire_perf *d, const char *text, size_t len,
		     char *err, size_t errlen);

/*
 * wire_perf_buildids reads `perf buildid-list` output ("BUILDID PATH" per
 * line); call it before feeding the text. A path given two different ids
 * is never mapped. Returns FDO_OK, FDO_EPARSE (err: "build-id list line
 * N: ...") or FDO_ENOMEM.
 */
int wire_perf_buildids(struct wire_perf *d, const char *text, size_t len,
		       char *err, size_t errlen);

/*
 * wire_perf_feed reads the next len bytes of perf script text, in chunks
 * of any size (a line may span chunks). Returns FDO_OK, or FDO_EPARSE /
 * FDO_ELIMIT / FDO_EINVAL / FDO_ENOMEM with err "line N: reason"; after an
 * error every later call returns it again.
 */
int wire_perf_feed(struct wire_perf *d, const char *text, size_t len, char *err,
		   size_t errlen);

/*
 * wire_perf_finish ends the text and hands the batches to *out (seq 1..n,
 * in the order they were filled; owned by the caller, freed with
 * wire_perf_result_fini). Returns FDO_OK; FDO_ETRUNCATED (the text ends
 * inside a sample or without a final newline), FDO_EINVAL (no samples,
 * none in a file with a build-id, no binary name), an error of
 * wire_batch_validate (a label or option fdod would refuse), an earlier
 * feed error, or FDO_ENOMEM. *out is empty on error.
 */
int wire_perf_finish(struct wire_perf *d, struct wire_perf_result *out,
		     char *err, size_t errlen);

/* wire_perf_result_fini frees the batches of a result. */
void wire_perf_result_fini(struct wire_perf_result *r);

/* wire_perf_destroy frees a decoder; NULL is a no-op. */
void wire_perf_destroy(struct wire_perf *d);

/*
 * wire_perf_data_check looks at the header of a perf.data file (buf, len:
 * the whole file) before perf reads it: the PERFILE2 magic (either byte
 * order), and that the attrs, data and feature sections it declares lie
 * within the file. Returns FDO_OK, FDO_EPARSE (not a perf.data file) or
 * FDO_ETRUNCATED, with the reason in err. Pure; any thread.
 */
int wire_perf_data_check(const uint8_t *buf, size_t len, char *err,
			 size_t errlen);

/*
 * Gzip bodies (schemas/gunzip.c). wire_is_gzip: does buf start with the
 * gzip magic (1f 8b)? Pure.
 */
int wire_is_gzip(const uint8_t *buf, size_t len);

/*
 * wire_gunzip inflates in (one gzip member or several concatenated) into
 * a buffer grown as output arrives, never past max_out bytes and never
 * sized from the gzip trailer, so a small body that would inflate to
 * gigabytes costs at most max_out bytes. out/outlen: on FDO_OK a malloc'd
 * buffer, freed by the caller with free(3). Returns FDO_OK, FDO_EPARSE
 * (not gzip, corrupt, bytes after the stream), FDO_ETRUNCATED (ends
 * inside a member), FDO_ELIMIT (inflates to more than max_out bytes) or
 * FDO_ENOMEM, always with the reason in err. Any thread.
 */
int wire_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
		size_t *outlen, char *err, size_t errlen);

/*
 * pprof profiles (POST /v1/pprof; schemas/pprof.c): a profile.proto
 * (schemas/pprof.proto) whose mappings carry GNU build-ids becomes one
 * SampleBatch whose frames are (build-id, file offset), as fdoctl import
 * sends them. Which sample value is the count and what period it gets,
 * and the reasons below, are written at the top of schemas/pprof.c and in
 * docs/ingest.md.
 */

/* Why a frame (and a sample with no frame left) is unmapped. */
enum wire_pprof_reason {
	WIRE_PPROF_NO_LOCATION,		/* a sample without location ids */
	WIRE_PPROF_NO_MAPPING,		/* a location without a mapping */
	WIRE_PPROF_NO_ADDRESS,		/* a location without an address (only
	                           symbolized: interpreted code, kernel) */
	WIRE_PPROF_NO_BUILD_ID,		/* its mapping has no build-id */
	WIRE_PPROF_NOT_GNU,		/* its mapping's build-id is not a GNU
	                           build-id in hex (a Go build ID...) */
	WIRE_PPROF_OFFSET_OUT_OF_RANGE, /* its file offset is past
	                           2^40 - 2, the largest the batch layout
	                           carries (a caller travels as + 1) */
	WIRE_PPROF_REASONS
};

/* wire_pprof_reason_name: "no_build_id"...; wire_pprof_reason_text: a
 * sentence for people. Static strings. */
const char *wire_pprof_reason_name(int reason);
const char *wire_pprof_reason_text(int reason);

struct wire_pprof_opts {
	const char *agent_id;	   /* the batch's agent id (required) */
	uint64_t seq;		   /* the batch's seq; 0: 1 */
	const char *host;	   /* the batch's host (required) */
	const char *binary;	   /* NULL or "": the file name of the
	                              profile's first mapping */
	const char *const *labels; /* "key=value" each */
	size_t n_labels;
	uint64_t time_end;		  /* unix seconds; 0: the profile's
	                              time_nanos + duration_nanos */
	const struct wire_limits *limits; /* NULL: wire_limits_default */
};

#define WIRE_PPROF_MAPS_SHOWN 8

/* What a decode read, for the answer of POST /v1/pprof. */
struct wire_pprof_stats {
	char value[160];	 /* the sample types read, e.g.
	                              "samples/count" */
	uint64_t samples;	 /* Sample messages read */
	uint64_t samples_empty;	 /* of them: value 0 or negative */
	uint64_t count;		 /* their counts, summed */
	uint64_t count_unmapped; /* of them: no frame in a file with a
	                              GNU build-id */
	uint64_t count_unmapped_by[WIRE_PPROF_REASONS]; /* ... by the
	                              reason of the sample's leaf frame */
	uint64_t frames; /* location ids of the samples counted */
	uint64_t frames_unmapped_by[WIRE_PPROF_REASONS];
	uint64_t frames_dropped; /* callers past max_stack_depth */
	/* The mappings whose frames were unmapped, most samples first (a
	 * sample counts for the mapping of its leaf), at most
	 * WIRE_PPROF_MAPS_SHOWN of them. */
	struct wire_pprof_map_shown {
		uint64_t id;
		int reason;
		uint64_t count;	    /* unmapped samples whose leaf is in it */
		char file[256];	    /* cut at 255 bytes */
		char build_id[160]; /* as the profile wrote it, cut */
	} maps[WIRE_PPROF_MAPS_SHOWN];
	size_t nmaps;
};

/*
 * wire_pprof_decode reads an uncompressed profile.proto of len bytes into
 * one SampleBatch (seq o->seq) that passes wire_batch_validate(o->limits); it
 * holds only the samples with a frame in a file with a GNU build-id (the
 * others are counted in *st: a batch with no stack is not an error here).
 * The decode may allocate at most max_decoded_bytes (and the batch, at
 * most max_stacks stacks of max_frames frames in all, is checked as it is
 * built). out: on FDO_OK a new batch, freed with wire_batch_free.
 * st: always filled as far as the decode got (may be NULL).
 * Returns FDO_OK; FDO_EPARSE (not a profile.proto, or cut short),
 * FDO_EINVAL (a dangling or duplicate id, a location outside its
 * mapping, no sample type to count, no time, no binary name, a label or
 * name fdod refuses), FDO_ELIMIT (a bound of wire_limits), or
 * FDO_ENOMEM, always with the reason in err. Costs O(n log n) in the
 * profile's size whatever its ids are. Any thread; no hidden state.
 */
int wire_pprof_decode(const uint8_t *buf, size_t len,
		      const struct wire_pprof_opts *o, Fdod__SampleBatch **out,
		      struct wire_pprof_stats *st, char *err, size_t errlen);

/*
 * OpenTelemetry profiles (POST /v1development/profiles; schemas/otlp.c):
 * an OTLP ExportProfilesServiceRequest (schemas/otlp_profiles.proto,
 * opentelemetry-proto v1.8.0 and later) becomes SampleBatches whose
 * frames are (build-id, file offset), one per (profile, binary, host,
 * label set). The rules are written at the top of schemas/otlp.c and in
 * docs/ingest.md "OpenTelemetry profiles".
 */

/* Why a frame (and a sample with no frame left) is unmapped. */
enum wire_otlp_reason {
	WIRE_OTLP_NO_LOCATION,	   /* an empty stack, or location 0 */
	WIRE_OTLP_SYMBOLIZED,	   /* a frame the sender symbolized and gave
	                           no build-id for (kernel, interpreted) */
	WIRE_OTLP_NO_MAPPING,	   /* a location without a mapping */
	WIRE_OTLP_NO_ADDRESS,	   /* a location without an address */
	WIRE_OTLP_NO_BUILD_ID,	   /* its mapping has no build-id attribute */
	WIRE_OTLP_HTLHASH_UNKNOWN, /* its only id, the file id (.htlhash or
	                           .profiling), is not 32 hex digits */
	WIRE_OTLP_GO_BUILD_ID,	   /* only process.executable.build_id.go */
	WIRE_OTLP_NOT_GNU,	   /* build_id.gnu is not a build-id in hex */
	WIRE_OTLP_OFFSET_OUT_OF_RANGE, /* file offset past 2^40 - 2 */
	WIRE_OTLP_NO_BINARY, /* no attribute names the sample's binary */
	WIRE_OTLP_REASONS
};

/* wire_otlp_reason_name: "htlhash_unknown"...; wire_otlp_reason_text: a
 * sentence for people. Static strings. */
const char *wire_otlp_reason_name(int reason);
const char *wire_otlp_reason_text(int reason);

/* Where an attribute goes (--otlp-attributes): the batch's binary, its
 * host, or a label. */
enum wire_otlp_target {
	WIRE_OTLP_TO_BINARY,
	WIRE_OTLP_TO_HOST,
	WIRE_OTLP_TO_LABEL
};

#define WIRE_OTLP_ATTRS_MAX 32

struct wire_otlp_attr {
	char *attr;  /* the attribute key, e.g. "service.name" */
	int target;  /* enum wire_otlp_target */
	char *label; /* the label key, for WIRE_OTLP_TO_LABEL */
};

struct wire_otlp_attrs {
	struct wire_otlp_attr a[WIRE_OTLP_ATTRS_MAX];
	size_t n;
};

/*
 * wire_otlp_attrs_parse reads an attribute mapping, comma-separated
 * ATTR=binary | ATTR=host | ATTR=label:KEY entries ("" is none): the
 * first entry of a target that a sample's attributes (else its
 * resource's) carry wins for binary and host; each label key takes the
 * sample's value, else the resource's. FDO_OK, FDO_EINVAL (reason in
 * err) or FDO_ENOMEM; fini with wire_otlp_attrs_fini (also after an
 * error). Pure; any thread.
 */
int wire_otlp_attrs_parse(const char *text, struct wire_otlp_attrs *out,
			  char *err, size_t errlen);
void wire_otlp_attrs_fini(struct wire_otlp_attrs *a);

struct wire_otlp_opts {
	const struct wire_otlp_attrs *attrs;
	const char *host;   /* the host when no attribute names one */
	size_t max_batches; /* batches one request may make; 0: 64 */
	const struct wire_limits *limits; /* NULL: wire_limits_default */
	/* The GNU build-id of the file with OpenTelemetry file id fid (16
	 * bytes: storage's store_file_id) into bid (capacity
	 * FDO_BUILD_ID_MAX) and *len, returning 0; nonzero when unknown.
	 * A mapping with a file id and no GNU build-id is keyed by that
	 * build-id, else by the file id itself. NULL: never known. */
	int (*file_id)(void *arg, const uint8_t *fid, uint8_t *bid,
		       size_t *len);
	void *file_id_arg;
};

/* What a decode read, for the answer and /metrics. */
struct wire_otlp_stats {
	const char *shape;	 /* "v1.10" or "v1.8" (static) */
	uint64_t profiles;	 /* Profile messages read */
	uint64_t samples;	 /* Sample messages read */
	uint64_t samples_empty;	 /* of them: nothing to count */
	uint64_t count;		 /* their counts, summed */
	uint64_t count_unmapped; /* of them: no frame with a GNU build-id */
	uint64_t count_unmapped_by[WIRE_OTLP_REASONS]; /* by the reason of
	                              the sample's leaf (or no_binary) */
	uint64_t frames; /* frames of the samples counted */
	uint64_t frames_unmapped_by[WIRE_OTLP_REASONS];
	uint64_t frames_dropped;   /* callers past max_stack_depth */
	uint64_t file_id_mappings; /* mappings keyed by their file id: */
	uint64_t file_id_resolved; /* of them, to a GNU build-id */
};

/* The batches of one request. */
struct wire_otlp_result {
	Fdod__SampleBatch **batches; /* each owned; wire_otlp_result_fini */
	size_t n;
};

/*
 * wire_otlp_decode reads an uncompressed ExportProfilesServiceRequest of
 * len bytes into out->batches, each passing wire_batch_validate(limits)
 * with agent_id "otlp" and seq 1..n (the caller gives them their
 * identity); only samples with a frame in a file with a GNU build-id go
 * into them (the rest is counted in *st). The decode may allocate at
 * most max_decoded_bytes. st: filled as far as the decode got (may be
 * NULL). Returns FDO_OK; FDO_EPARSE (not a request of a shape fdod
 * reads, or cut short), FDO_EINVAL (an index out of its table, a
 * location outside its mapping, no time, a sample type that is not a
 * count or a time, a label fdod refuses), FDO_ELIMIT (a bound), or
 * FDO_ENOMEM, always with the reason in err; out is empty on error.
 * Any thread; no hidden state.
 */
int wire_otlp_decode(const uint8_t *buf, size_t len,
		     const struct wire_otlp_opts *o,
		     struct wire_otlp_result *out, struct wire_otlp_stats *st,
		     char *err, size_t errlen);

/* wire_otlp_result_fini frees the batches of a result. */
void wire_otlp_result_fini(struct wire_otlp_result *r);

#endif
