/*
 * bench/ingest/otlp_req.h — the OTLP/HTTP side of the ingest benchmark's
 * pusher (bench/ingest/otlp_req.c): the pusher's stacks as an OTLP
 * ExportProfilesServiceRequest shaped like the OpenTelemetry eBPF
 * profiler's, encoded by the protobuf-c code generated from
 * schemas/otlp_profiles.proto, gzipped or not.
 */
#ifndef BENCH_INGEST_OTLP_REQ_H
#define BENCH_INGEST_OTLP_REQ_H

#include <stddef.h>
#include <stdint.h>

/* What stays the same over one pusher's requests. The strings are not
 * copied: they must outlive the encoder. */
struct otlp_req_shape {
	size_t max_stacks, depth; /* the largest request: stacks x frames */
	const char *binary;	  /* sample attribute process.executable.name */
	const char *host;	  /* resource attribute host.name */
	const char *thread;	  /* sample attribute thread.name */
	const char *path;	  /* the mapping's file name */
	const char *const *label_keys, *const *label_values; /* resource */
	size_t n_labels;
	/* The mapping as the process sees it: [start, limit) of file offset
	 * file_offset. The request describes it in ELF virtual addresses,
	 * as the eBPF profiler does: memory_start = file_offset (a PIE's
	 * text segment has p_vaddr == p_offset). */
	uint64_t start, limit, file_offset;
	uint64_t period; /* ns of CPU time per sample */
	int values;	 /* 1: Sample.values; 0: timestamps, one
	                    per sample counted (the profiler's) */
	int gzip;	 /* gzip the body (level 1) */
};

struct otlp_req;

/*
 * otlp_req_create makes an encoder for shape (copied; its strings are
 * not) with room for shape->max_stacks stacks of shape->depth frames.
 * 0, or -1 when out of memory. Free with otlp_req_destroy. One thread at
 * a time per encoder.
 */
int otlp_req_create(const struct otlp_req_shape *shape, struct otlp_req **out);
void otlp_req_destroy(struct otlp_req *r);

/*
 * otlp_req_build encodes one request: one resource (host.name and the
 * labels), one profile (cpu-clock, the shape's period, times
 * [t0_ns, t0_ns + dur_ns)) of n samples; sample k has counts[k] (>= 1)
 * and the stack addrs[k * depth .. + depth), leaf first, callers as
 * return addresses, every address inside the mapping. The mapping
 * carries process.executable.build_id.gnu = bid[0..bidlen) in hex.
 * Callers are sent as return address - 1, as the eBPF profiler sends
 * them. *body (len *blen bytes, gzipped when the shape says so) stays
 * valid until the next build or destroy; *raw_len is the size before
 * gzip. 0, or -1 (out of memory, n or bidlen too large).
 */
int otlp_req_build(struct otlp_req *r, const uint8_t *bid, size_t bidlen,
		   const uint64_t *counts, const uint64_t *addrs, size_t n,
		   uint64_t t0_ns, uint64_t dur_ns, const uint8_t **body,
		   size_t *blen, size_t *raw_len);

/* otlp_req_raw: the last request before gzip (len *len); valid as the
 * body of otlp_req_build. */
const uint8_t *otlp_req_raw(const struct otlp_req *r, size_t *len);

#endif
