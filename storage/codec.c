/*
 * storage/codec.c — the byte layout of every table's keys and values, and
 * their codecs. This comment is the authoritative description of the
 * tables (store layout version STORE_VERSION = 6). Integers are big-endian
 * everywhere, so LMDB's byte order is numeric order and a prefix of a key
 * selects a range (all counts of one binary, of one label set, ...).
 * Numbers on disk never change meaning; a change of layout is a new
 * STORE_VERSION.
 *
 * Workload: encode/decode run once per put/get on hot paths (every sample
 * aggregate, every symbolized address); they are branch-light and allocate
 * nothing.
 *
 * Every table's layout is here and its codec is in storage/ (this file,
 * or the file named with the table); code outside storage/ reads and
 * writes values only through those codecs. tests/fixtures/store-v6 holds
 * a store of this version, opened by tests/ingest/test_store_v6.py;
 * tests/fixtures/store-v5 one of version 5 (this layout with table counts
 * of one entry per stack, below), opened and upgraded by
 * tests/ingest/test_store_v5.py; tests/fixtures/store-v4 one of version 4 (this layout without table
 * aggs), opened and upgraded by tests/ingest/test_store_v4.py and
 * tests/unit/storage_aggs.c; tests/docs/test_stored_layouts.py fails on
 * raw-offset value coding outside storage/ and schemas/. Files beside the environment: the WAL
 * (storage/wal.c; its records' payload, a prep, is coded by
 * aggregator/prep.c), the symbol tree (storage/symstore.c) and the
 * symbolizer's index cache (symbolizer/index_file.c).
 *
 * meta — the store's own figures (storage/env.c, intern.c, wal.c)
 *   key "version"      -> value be32: layout version (STORE_VERSION)
 *   key "created"      -> value be64: unix seconds the store was created
 *   key "id.<dict>"    -> value be32: next id of a dictionary (intern.c;
 *                         dict = strings, binaries, labelsets, buildids)
 *   key "fileids"      -> value 0x01: the symbol tree's executables are
 *                         indexed by file id (since version 4)
 *   key "wal.applied"  -> value: the WAL position the tables hold
 *                         everything before (storage/wal.c)
 *                         0  8  segment number
 *                         8  8  byte offset in that segment
 *   key "ch.node"      -> 16 random bytes: this store's name in the
 *                         marker rows of fdod --store clickhouse://
 *                         (storage/backend.c, for aggregator/chsink.c;
 *                         absent without it)
 *   key "ch.staged"    -> be64: the sequence number of the last outbox
 *                         file a committed merge wrote (ditto)
 *
 * strings, binaries, labelsets — dictionaries (storage/intern.c)
 *   key 'n' + name (1 + 0..510 bytes)  -> value: id (be32)
 *   key 'i' + id   (1 + 4 bytes, be32) -> value: the name bytes
 *   label set names are canonical: "k1=v1,k2=v2", sorted by key.
 *
 * buildids — dictionary of raw build-ids plus one record per build-id
 *   key 'n' + build-id (1 + 1..64 bytes) -> value: id (be32)
 *   key 'i' + id (be32)                   -> value: record
 *   OFFSET SIZE DESCRIPTION (record)
 *   0      1    record format (1)
 *   1      1    symbol state: STORE_SYM_EXECUTABLE 0x1, _DEBUGINFO 0x2,
 *               _DWARF 0x4; other bits zero
 *   2      1    build-id length N, 1..64
 *   3      1    reserved, zero
 *   4      4    binary id (0 = not known)
 *   8      8    first seen in a sample, unix seconds (0 = never)
 *   16     8    last seen in a sample, unix seconds (0 = never)
 *   24     N    build-id bytes
 *   key 'f' + file id (1 + 16 bytes)    -> value: the build-id bytes (1..64)
 *   of an uploaded file with loadable bytes whose OpenTelemetry file id
 *   (store_file_id: SHA-256 of its first and last 4 KiB and its length,
 *   cut to 16 bytes) that is; since version 4 (storage/symstore.c). The
 *   first file with a file id keeps it.
 *
 * stacks — deduplicated call stacks
 *   key:   OFFSET SIZE DESCRIPTION
 *          0      8    stack id = store_stack_id(frames): h = 0x243f6a88
 *                      85a308d3 ^ n; per frame x = mix(offset + build-id
 *                      hash * 0x9e3779b97f4a7c15), h = (rotl(h, 23) ^ x) *
 *                      0xff51afd7ed558ccd; id = mix(h), mix = splitmix64's
 *                      finalizer, all mod 2^64; build-id hash =
 *                      mix(FNV-1a 64 of the raw build-id). Defined
 *                      over build-id bytes, not interned ids, so ingest
 *                      threads compute it before interning. 64-bit ids:
 *                      collisions are not resolved (birthday bound ~2^32
 *                      distinct stacks per store).
 *   value: N frames, leaf first, in one of two layouts. A frame is a
 *   build-id id and a file offset in that build-id's ELF file (for
 *   non-leaf frames, of the return address).
 *   compact (written since version 2 whenever every offset is below
 *   2^63):
 *          0      1    0xff (STORE_STACK_COMPACT)
 *          1      ...  per frame: varint (offset << 1 | c); when c is 1,
 *                      a varint build-id id follows, else the frame has
 *                      the previous frame's id (c is 1 in the first
 *                      frame, and only where the id changes). Varints
 *                      are LEB128 (7 bits a byte, low first).
 *   fixed (version 1, and offsets of 2^63 and up):
 *          12 bytes per frame: build-id id (be32), file offset (be64)
 *   Build-id ids stay below 0xff000000 (storage/intern.c), so no fixed
 *   value starts with 0xff. A stack of 20 frames in one object takes
 *   ~60 bytes compact against 240 fixed: a third of the pages, which is
 *   what each merge copies and writes back as new stacks land all over
 *   the table.
 *
 * counts — aggregated samples, as sorted, immutable runs (since version
 *   6; storage/counts.c; the LMDB table is named "countruns"). The counts
 *   entry of a (binary, label set, bucket, stack id) is the sum of that
 *   stack's entries over the bucket's runs: readers see entries only
 *   through store_counts_iter, which merges the runs. A merge writes one
 *   new run per (binary, label set, bucket) it touches, of its summed
 *   deltas; compaction (in the merger, between merges) merges a bucket's
 *   runs, in steps, into one new run: it writes the inputs' entries up to
 *   some stack id s into the output run, deletes their chunks wholly at or
 *   below s and rewrites the one that straddles s with the rest, in one
 *   transaction, so each stack is in the output or in the inputs, never
 *   both. A bucket whose hour is over ends as one run.
 *   key:   0      4    binary id
 *          4      4    label set id
 *          8      4    time bucket start, unix seconds
 *          12     8    run id: meta "runs.next" (be64) taken by the merge
 *                      or compaction that wrote it; ids only name runs
 *                      (their order means nothing: sums commute)
 *          20     4    chunk: 0, 1, ... in stack id order; a run's chunks
 *                      are consecutive from its first remaining one
 *   value: a chunk, at most 32752 bytes (8 pages of 4 KiB of LMDB
 *   overflow, written once and sequentially):
 *          0      1    format (1)
 *          1      3    reserved, zero
 *          4      4    N entries (be32), at least 1
 *          8      ...  N entries, by strictly increasing stack id, each
 *                      four varints (LEB128, as in stacks): the stack id
 *                      (the chunk's first: whole; then the step from the
 *                      previous id, at least 1); the weight's high 64
 *                      bits; its low 64 bits; samples. A chunk's first
 *                      id is above the last id of the run's chunk before.
 *                      Weight and samples are as in version 5's value
 *                      (weight: sum of count x period x round(fleet weight
 *                      x WIRE_WEIGHT_SCALE), unsigned 128-bit; samples:
 *                      sum of raw sample counts), summed over what the
 *                      run's merge (or compaction) summed.
 *   A chunk that does not decode, or whose ids do not increase, is
 *   refused (FDO_ECORRUPT, logged with its key). ~12-18 bytes an entry
 *   (hashed ids: a step of ~2^64/entries of the bucket), against 44 plus
 *   LMDB's node of an entry per stack in version 5.
 *   Version 5's table "counts" (key: binary, label set, bucket, stack id
 *   (be64); value: weight 16 bytes high half first, samples 8 bytes) is
 *   converted when a store of version 5 or older is opened: each bucket's
 *   entries, already in stack id order, become one run; the old table is
 *   dropped, in the same transaction as the version stamp.
 *
 * totals — per (binary, label set, bucket) sums of counts (since version
 *   3; storage/totals.c). A row exists exactly when counts holds runs
 *   with its prefix, and always equals their sums: aggregator/merge.c
 *   changes it with the counts it writes, retention with those it
 *   deletes, in the same transaction; a store of version 1 or 2 gets the
 *   table computed from counts when it is opened (storage/env.c).
 *   key:   0      4    binary id
 *          4      4    label set id
 *          8      4    time bucket start, unix seconds
 *   value: 0      16   weight: sum of the entries' weights, unsigned
 *                      128-bit, high half first
 *          16     8    samples: sum of the entries' samples
 *          24     8    entries: how many run entries the row sums, at
 *                      least 1: the distinct stacks once the bucket is one
 *                      run (a stack in k runs counts k times before;
 *                      compaction takes the difference away, changing no
 *                      sum, and so keeps the bucket's aggs rows, whose
 *                      header copy of this field it changes alike)
 *
 * aggs — per run (binary, label set, bucket of counts) and leaf build-id,
 *   what the compile-time profiles read of the run's stacks (since version
 *   5; storage/aggs.c, aggregator/reduce.c). Rows exist only for runs a
 *   profile pull computed after their bucket was over; store_totals_add
 *   deletes every row of a run whenever its totals row changes (a merge
 *   writing that bucket, retention deleting it), in the same transaction.
 *   A store of version 4 gets the table empty when it is opened.
 *   key:   0      4    binary id
 *          4      4    label set id
 *          8      4    time bucket start, unix seconds
 *          12     4    leaf build-id id (0: the run's header row)
 *          16     4    chunk: 0 the partition's header row, then 1, 2, ...
 *   run header (leaf build-id 0, chunk 0):
 *          0      1    format (1)
 *          1      3    reserved, zero
 *          4      4    partitions: leaf build-ids with rows that follow
 *          8      16   weight of the totals row the run was computed
 *                      from (unsigned 128-bit, high half first)
 *          24     8    its samples
 *          32     8    its entries; a reader whose totals row differs
 *                      ignores the rows
 *   partition header (leaf build-id L, chunk 0): the run's stacks whose
 *   leaf frame is of build-id L (stacks whose weight is 0, or that are
 *   missing or do not decode, are in no partition)
 *          0      1    format (1)
 *          1      3    reserved, zero
 *          4      4    chunks that follow (1..N)
 *          8      8    leaves: distinct leaf frames
 *          16     8    pairs: distinct caller->callee frame pairs
 *          24     16   weight: sum of the stacks' weights (128-bit)
 *          40     8    samples: sum of their raw samples
 *          48     8    stacks: how many
 *   chunk (leaf build-id L, chunk 1..N), at most 16368 bytes (four 4 KiB
 *   pages of LMDB's overflow); the leaves' chunks come before the pairs':
 *          0      1    kind: 1 leaves, 2 pairs
 *          1      2    records in this chunk (be16)
 *          3      ...  records; varints are LEB128 (as in stacks)
 *     leaf record, by increasing offset over the partition (its build-id
 *     is L): varint offset - the previous record's offset in the chunk
 *     (the first: whole); varint weight's high 64 bits, varint its low
 *     64 bits (the sum of the weights of the stacks with that leaf);
 *     varint raw samples of those stacks.
 *     pair record, by increasing (callee, caller) frame over the
 *     partition, a frame ordered by (build-id id, offset): the callee as
 *     varint build-id id - the previous callee's in the chunk (the first
 *     record: - 0), varint offset - the previous callee's when that step
 *     is 0, else the offset whole; the caller the same way from the
 *     previous record's caller when the callee is the previous record's,
 *     else from (0, 0); varint weight high, varint weight low: the sum of
 *     the weights of the stacks in which the callee frame is directly
 *     below the caller frame, each stack once however often the pair
 *     repeats in it.
 *
 * branches — LBR branch records
 *   key:   0      4    binary id
 *          4      4    label set id
 *          8      4    time bucket start, unix seconds
 *          12     4    build-id id (from and to are in this file)
 *          16     8    from: file offset of the branch
 *          24     8    to: file offset of the target
 *   value: as counts (weight, samples)
 *
 * pending — addresses seen but not yet symbolized; symcache — results
 *   key:   0      4    build-id id
 *          4      8    file offset
 *   pending value: empty.
 *   symcache value:
 *          0      1    format (1)
 *          1      1    N frames of the inline chain, 0..255 (0 = no symbol)
 *          2      2    reserved, zero
 *          4      24*N frames, innermost (the function containing the
 *                      address) first, outermost (the out-of-line function)
 *                      last, each:
 *                      +0  4 function name, string id
 *                      +4  4 source file, string id (0 = unknown)
 *                      +8  4 line (0 = unknown)
 *                      +12 4 column (0 = unknown)
 *                      +16 4 discriminator
 *                      +20 4 function start line (0 = unknown)
 *
 * batches — exactly-once bookkeeping (store_batches_encode/decode)
 *   key:   0      4    agent id (string id of the agent's name)
 *          4      8    sequence number
 *   value: 0      8    commit time, unix seconds
 *          8      8    samples accepted: the batch's stack samples, as
 *                      its first Ack said
 *          16     8    samples unmapped (written 0)
 *          24     8    content digest of the batch (aggregator/prep.c
 *                      prep_digest; never 0); absent in records written
 *                      before it (24-byte values): a resent (agent, seq)
 *                      with another digest is refused as CONFLICT
 *   Written by aggregator/merge.c with the counts of the batch; records
 *   older than the dedup TTL are deleted by aggregator/retention.c.
 *
 * hosts — distinct hosts per binary (store_hosts_encode/decode)
 *   key:   0      4    binary id
 *          4      4    host (string id)
 *   value: 0      8    first batch time, unix seconds
 *          8      8    last batch time, unix seconds (>= first; kept to
 *                      the minute)
 *
 * published — frozen profiles (store_published_encode/decode; written by
 *   server/publish.c, POST /v1/profiles/{binary}/publish)
 *   key:   0      4    binary id
 *          4      4    version, 1, 2, ... per binary
 *   value: 0      1    record format (1)
 *          1      1    profile format (the emitter's code,
 *                      aggregator/emitters.c): 1 llvm, 2 gcc, 3 bolt,
 *                      4 folded, 5 pprof
 *          2      2    reserved, zero
 *          4      4    L: length of the inputs description
 *          8      8    creation time, unix seconds
 *          16     32   SHA-256 of the profile bytes: the version's id
 *                      (GET /v1/profiles/{binary}/versions/{id})
 *          48     L    inputs description: a JSON object (format,
 *                      selectors, window, half_life, build_id, options,
 *                      samples, hosts, span, first/last time, build_ids),
 *                      as the publish answer's "inputs"
 *          48+L   ...  the profile bytes, up to the value's end
 */
#include <string.h>

#include "storage/storage_int.h"

void store_counts_key_encode(uint8_t out[STORE_COUNTS_KEY_SIZE],
			     const struct store_counts_key *k)
{
	fdo_put_be32(out, k->binary);
	fdo_put_be32(out + 4, k->labelset);
	fdo_put_be32(out + 8, k->bucket);
	fdo_put_be64(out + 12, k->stack);
}

int store_counts_key_decode(const void *p, size_t len,
			    struct store_counts_key *k)
{
	const uint8_t *b = p;
	if (len != STORE_COUNTS_KEY_SIZE)
		return FDO_ECORRUPT;
	k->binary = fdo_get_be32(b);
	k->labelset = fdo_get_be32(b + 4);
	k->bucket = fdo_get_be32(b + 8);
	k->stack = fdo_get_be64(b + 12);
	return FDO_OK;
}

void store_branches_key_encode(uint8_t out[STORE_BRANCHES_KEY_SIZE],
			       const struct store_branches_key *k)
{
	fdo_put_be32(out, k->binary);
	fdo_put_be32(out + 4, k->labelset);
	fdo_put_be32(out + 8, k->bucket);
	fdo_put_be32(out + 12, k->build_id);
	fdo_put_be64(out + 16, k->from);
	fdo_put_be64(out + 24, k->to);
}

int store_branches_key_decode(const void *p, size_t len,
			      struct store_branches_key *k)
{
	const uint8_t *b = p;
	if (len != STORE_BRANCHES_KEY_SIZE)
		return FDO_ECORRUPT;
	k->binary = fdo_get_be32(b);
	k->labelset = fdo_get_be32(b + 4);
	k->bucket = fdo_get_be32(b + 8);
	k->build_id = fdo_get_be32(b + 12);
	k->from = fdo_get_be64(b + 16);
	k->to = fdo_get_be64(b + 24);
	return FDO_OK;
}

void store_weight_encode(uint8_t out[STORE_WEIGHT_VAL_SIZE],
			 const struct store_weight *w)
{
	fdo_put_be64(out, (uint64_t)(w->weight >> 64));
	fdo_put_be64(out + 8, (uint64_t)w->weight);
	fdo_put_be64(out + 16, w->samples);
}

int store_weight_decode(const void *p, size_t len, struct store_weight *w)
{
	const uint8_t *b = p;
	if (len != STORE_WEIGHT_VAL_SIZE)
		return FDO_ECORRUPT;
	w->weight = (wire_weight_t)fdo_get_be64(b) << 64 | fdo_get_be64(b + 8);
	w->samples = fdo_get_be64(b + 16);
	return FDO_OK;
}

void store_totals_key_encode(uint8_t out[STORE_TOTALS_KEY_SIZE],
			     const struct store_totals_key *k)
{
	fdo_put_be32(out, k->binary);
	fdo_put_be32(out + 4, k->labelset);
	fdo_put_be32(out + 8, k->bucket);
}

int store_totals_key_decode(const void *p, size_t len,
			    struct store_totals_key *k)
{
	const uint8_t *b = p;
	if (len != STORE_TOTALS_KEY_SIZE)
		return FDO_ECORRUPT;
	k->binary = fdo_get_be32(b);
	k->labelset = fdo_get_be32(b + 4);
	k->bucket = fdo_get_be32(b + 8);
	return FDO_OK;
}

void store_totals_encode(uint8_t out[STORE_TOTALS_VAL_SIZE],
			 const struct store_totals *v)
{
	fdo_put_be64(out, (uint64_t)(v->weight >> 64));
	fdo_put_be64(out + 8, (uint64_t)v->weight);
	fdo_put_be64(out + 16, v->samples);
	fdo_put_be64(out + 24, v->entries);
}

int store_totals_decode(const void *p, size_t len, struct store_totals *v)
{
	const uint8_t *b = p;
	if (len != STORE_TOTALS_VAL_SIZE)
		return FDO_ECORRUPT;
	v->weight = (wire_weight_t)fdo_get_be64(b) << 64 | fdo_get_be64(b + 8);
	v->samples = fdo_get_be64(b + 16);
	v->entries = fdo_get_be64(b + 24);
	return v->entries ? FDO_OK : FDO_ECORRUPT;
}

void store_aggs_key_encode(uint8_t out[STORE_AGGS_KEY_SIZE],
			   const struct store_aggs_key *k)
{
	fdo_put_be32(out, k->binary);
	fdo_put_be32(out + 4, k->labelset);
	fdo_put_be32(out + 8, k->bucket);
	fdo_put_be32(out + 12, k->leaf_bid);
	fdo_put_be32(out + 16, k->chunk);
}

int store_aggs_key_decode(const void *p, size_t len, struct store_aggs_key *k)
{
	const uint8_t *b = p;
	if (len != STORE_AGGS_KEY_SIZE)
		return FDO_ECORRUPT;
	k->binary = fdo_get_be32(b);
	k->labelset = fdo_get_be32(b + 4);
	k->bucket = fdo_get_be32(b + 8);
	k->leaf_bid = fdo_get_be32(b + 12);
	k->chunk = fdo_get_be32(b + 16);
	return FDO_OK;
}

void store_addr_key_encode(uint8_t out[STORE_ADDR_KEY_SIZE],
			   const struct store_frame *a)
{
	fdo_put_be32(out, a->build_id);
	fdo_put_be64(out + 4, a->offset);
}

int store_addr_key_decode(const void *p, size_t len, struct store_frame *a)
{
	const uint8_t *b = p;
	if (len != STORE_ADDR_KEY_SIZE)
		return FDO_ECORRUPT;
	a->build_id = fdo_get_be32(b);
	a->offset = fdo_get_be64(b + 4);
	return FDO_OK;
}

void store_stack_key_encode(uint8_t out[STORE_STACK_KEY_SIZE], uint64_t id)
{
	fdo_put_be64(out, id);
}

/* FNV-1a 64 over bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t store_buildid_hash(const uint8_t *id, size_t len)
{
	return fdo_mix64(fnv1a(0xcbf29ce484222325ull, id, len));
}

uint64_t store_stack_id(const struct store_hframe *frames, size_t n)
{
	/* Word arithmetic only, so it is the same on every host; one strong
	 * mix per frame, chained so that order matters. */
	uint64_t h = 0x243f6a8885a308d3ull ^ n;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = fdo_mix64(frames[i].offset +
				       frames[i].build_id_hash *
					       0x9e3779b97f4a7c15ull);
		h = ((h << 23 | h >> 41) ^ x) * 0xff51afd7ed558ccdull;
	}
	return fdo_mix64(h);
}

size_t store_put_uvarint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int store_stack_encode(const struct store_frame *frames, size_t n, uint8_t *out,
		       size_t cap, size_t *len)
{
	if (n > STORE_STACK_MAX_FRAMES)
		return FDO_ELIMIT;
	int compact = 1;
	for (size_t i = 0; i < n && compact; i++)
		compact = frames[i].offset <= STORE_STACK_COMPACT_MAX_OFFSET &&
			  frames[i].build_id - 1u < STORE_BUILDID_MAX_ID - 1u;
	if (!compact) {
		if (cap / STORE_FRAME_SIZE < n)
			return FDO_ELIMIT;
		for (size_t i = 0; i < n; i++)
			store_addr_key_encode(out + i * STORE_FRAME_SIZE,
					      &frames[i]);
		*len = n * STORE_FRAME_SIZE;
		return FDO_OK;
	}
	/* Worst case per frame: a 10-byte offset varint and a 5-byte id. */
	uint8_t tmp[1 + STORE_STACK_MAX_FRAMES * 15];
	size_t at = 0;
	tmp[at++] = STORE_STACK_COMPACT;
	uint32_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		int change = frames[i].build_id != prev;
		at += store_put_uvarint(tmp + at,
					frames[i].offset << 1 | change);
		if (change)
			at += store_put_uvarint(tmp + at, frames[i].build_id);
		prev = frames[i].build_id;
	}
	if (at > cap)
		return FDO_ELIMIT;
	memcpy(out, tmp, at);
	*len = at;
	return FDO_OK;
}

static int stack_decode_compact(const uint8_t *b, size_t len,
				struct store_frame *frames, size_t cap,
				size_t *n)
{
	size_t at = 1, count = 0;
	uint64_t prev = 0;
	while (at < len) {
		uint64_t w, id = prev;
		if (!store_get_uvarint(b, len, &at, &w))
			return FDO_ECORRUPT;
		if ((w & 1) &&
		    (!store_get_uvarint(b, len, &at, &id) || id == prev ||
		     id == 0 || id >= STORE_BUILDID_MAX_ID))
			return FDO_ECORRUPT;
		if (id == 0)
			return FDO_ECORRUPT; /* the first frame names its id */
		if (count == cap)
			return count >= STORE_STACK_MAX_FRAMES ? FDO_ECORRUPT
							       : FDO_ELIMIT;
		frames[count].build_id = (uint32_t)id;
		frames[count].offset = w >> 1;
		count++;
		prev = id;
	}
	*n = count;
	return FDO_OK;
}

int store_stack_decode(const void *p, size_t len, struct store_frame *frames,
		       size_t cap, size_t *n)
{
	const uint8_t *b = p;
	if (len && b[0] == STORE_STACK_COMPACT)
		return stack_decode_compact(b, len, frames, cap, n);
	if (len % STORE_FRAME_SIZE)
		return FDO_ECORRUPT;
	size_t count = len / STORE_FRAME_SIZE;
	if (count > cap)
		return FDO_ELIMIT;
	for (size_t i = 0; i < count; i++)
		store_addr_key_decode(b + i * STORE_FRAME_SIZE,
				      STORE_FRAME_SIZE, &frames[i]);
	*n = count;
	return FDO_OK;
}

int store_symcache_encode(const struct store_sym_frame *f, size_t n,
			  uint8_t *out, size_t cap, size_t *len)
{
	if (n > STORE_SYMCACHE_MAX_FRAMES || cap < STORE_SYMCACHE_HDR_SIZE ||
	    (cap - STORE_SYMCACHE_HDR_SIZE) / STORE_SYM_FRAME_SIZE < n)
		return FDO_ELIMIT;
	out[0] = 1;
	out[1] = (uint8_t)n;
	out[2] = out[3] = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *q = out + STORE_SYMCACHE_HDR_SIZE +
			     i * STORE_SYM_FRAME_SIZE;
		fdo_put_be32(q, f[i].function);
		fdo_put_be32(q + 4, f[i].file);
		fdo_put_be32(q + 8, f[i].line);
		fdo_put_be32(q + 12, f[i].column);
		fdo_put_be32(q + 16, f[i].discriminator);
		fdo_put_be32(q + 20, f[i].start_line);
	}
	*len = STORE_SYMCACHE_HDR_SIZE + n * STORE_SYM_FRAME_SIZE;
	return FDO_OK;
}

int store_symcache_decode(const void *p, size_t len, struct store_sym_frame *f,
			  size_t cap, size_t *n)
{
	const uint8_t *b = p;
	if (len < STORE_SYMCACHE_HDR_SIZE || b[0] != 1)
		return FDO_ECORRUPT;
	size_t count = b[1];
	if (len != STORE_SYMCACHE_HDR_SIZE + count * STORE_SYM_FRAME_SIZE)
		return FDO_ECORRUPT;
	if (count > cap)
		return FDO_ELIMIT;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *q =
			b + STORE_SYMCACHE_HDR_SIZE + i * STORE_SYM_FRAME_SIZE;
		f[i].function = fdo_get_be32(q);
		f[i].file = fdo_get_be32(q + 4);
		f[i].line = fdo_get_be32(q + 8);
		f[i].column = fdo_get_be32(q + 12);
		f[i].discriminator = fdo_get_be32(q + 16);
		f[i].start_line = fdo_get_be32(q + 20);
	}
	*n = count;
	return FDO_OK;
}

void store_batches_key_encode(uint8_t out[STORE_BATCHES_KEY_SIZE],
			      uint32_t agent, uint64_t seq)
{
	fdo_put_be32(out, agent);
	fdo_put_be64(out + 4, seq);
}

int store_batches_key_decode(const void *p, size_t len, uint32_t *agent,
			     uint64_t *seq)
{
	const uint8_t *b = p;
	if (len != STORE_BATCHES_KEY_SIZE)
		return FDO_ECORRUPT;
	*agent = fdo_get_be32(b);
	*seq = fdo_get_be64(b + 4);
	return FDO_OK;
}

void store_hosts_key_encode(uint8_t out[STORE_HOSTS_KEY_SIZE], uint32_t binary,
			    uint32_t host)
{
	fdo_put_be32(out, binary);
	fdo_put_be32(out + 4, host);
}

int store_hosts_key_decode(const void *p, size_t len, uint32_t *binary,
			   uint32_t *host)
{
	const uint8_t *b = p;
	if (len != STORE_HOSTS_KEY_SIZE)
		return FDO_ECORRUPT;
	*binary = fdo_get_be32(b);
	*host = fdo_get_be32(b + 4);
	return FDO_OK;
}

void store_published_key_encode(uint8_t out[STORE_PUBLISHED_KEY_SIZE],
				uint32_t binary, uint32_t version)
{
	fdo_put_be32(out, binary);
	fdo_put_be32(out + 4, version);
}

int store_published_key_decode(const void *p, size_t len, uint32_t *binary,
			       uint32_t *version)
{
	const uint8_t *b = p;
	if (len != STORE_PUBLISHED_KEY_SIZE)
		return FDO_ECORRUPT;
	*binary = fdo_get_be32(b);
	*version = fdo_get_be32(b + 4);
	return FDO_OK;
}

void store_batches_encode(uint8_t out[STORE_BATCHES_VAL_SIZE],
			  const struct store_batch *b)
{
	fdo_put_be64(out, b->committed);
	fdo_put_be64(out + 8, b->accepted);
	fdo_put_be64(out + 16, b->unmapped);
	fdo_put_be64(out + 24, b->digest);
}

int store_batches_decode(const void *p, size_t len, struct store_batch *b)
{
	const uint8_t *q = p;
	if (len != STORE_BATCHES_VAL_SIZE && len != STORE_BATCHES_VAL_SIZE_V1)
		return FDO_ECORRUPT;
	b->committed = fdo_get_be64(q);
	b->accepted = fdo_get_be64(q + 8);
	b->unmapped = fdo_get_be64(q + 16);
	b->digest = len == STORE_BATCHES_VAL_SIZE ? fdo_get_be64(q + 24) : 0;
	/* A digest is never 0: 0 is how a 24-byte record says it has none. */
	return len == STORE_BATCHES_VAL_SIZE && !b->digest ? FDO_ECORRUPT
							   : FDO_OK;
}

void store_hosts_encode(uint8_t out[STORE_HOSTS_VAL_SIZE],
			const struct store_host *h)
{
	fdo_put_be64(out, h->first);
	fdo_put_be64(out + 8, h->last);
}

int store_hosts_decode(const void *p, size_t len, struct store_host *h)
{
	const uint8_t *q = p;
	if (len != STORE_HOSTS_VAL_SIZE)
		return FDO_ECORRUPT;
	h->first = fdo_get_be64(q);
	h->last = fdo_get_be64(q + 8);
	return h->first <= h->last ? FDO_OK : FDO_ECORRUPT;
}

#define PUBLISHED_FORMAT 1

size_t store_published_size(const struct store_published *v)
{
	if (v->inputs_len > UINT32_MAX ||
	    v->bytes_len > SIZE_MAX - STORE_PUBLISHED_HDR_SIZE - v->inputs_len)
		return 0;
	return STORE_PUBLISHED_HDR_SIZE + v->inputs_len + v->bytes_len;
}

int store_published_encode(const struct store_published *v, uint8_t *out,
			   size_t cap, size_t *len)
{
	size_t n = store_published_size(v);
	if (!n || n > cap)
		return FDO_ELIMIT;
	out[0] = PUBLISHED_FORMAT;
	out[1] = v->format;
	out[2] = out[3] = 0;
	fdo_put_be32(out + 4, (uint32_t)v->inputs_len);
	fdo_put_be64(out + 8, v->created);
	memcpy(out + 16, v->sha256, STORE_SHA256_SIZE);
	if (v->inputs_len)
		memcpy(out + STORE_PUBLISHED_HDR_SIZE, v->inputs,
		       v->inputs_len);
	if (v->bytes_len)
		memcpy(out + STORE_PUBLISHED_HDR_SIZE + v->inputs_len, v->bytes,
		       v->bytes_len);
	*len = n;
	return FDO_OK;
}

int store_published_decode(const void *p, size_t len, struct store_published *v)
{
	const uint8_t *q = p;
	if (len < STORE_PUBLISHED_HDR_SIZE || q[0] != PUBLISHED_FORMAT)
		return FDO_ECORRUPT;
	size_t il = fdo_get_be32(q + 4);
	if (il > len - STORE_PUBLISHED_HDR_SIZE)
		return FDO_ECORRUPT;
	v->format = q[1];
	v->created = fdo_get_be64(q + 8);
	memcpy(v->sha256, q + 16, STORE_SHA256_SIZE);
	v->inputs = (const char *)q + STORE_PUBLISHED_HDR_SIZE;
	v->inputs_len = il;
	v->bytes = q + STORE_PUBLISHED_HDR_SIZE + il;
	v->bytes_len = len - STORE_PUBLISHED_HDR_SIZE - il;
	return FDO_OK;
}
