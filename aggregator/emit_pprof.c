/*
 * aggregator/emit_pprof.c — the `pprof` format: a gzipped
 * perftools.profiles.Profile protobuf (github.com/google/pprof
 * proto/profile.proto), read by `go tool pprof` and taken by the Go
 * compiler as default.pgo. Encoded by hand: a few varints and
 * length-delimited fields need no protobuf library.
 *
 * Fields written (number: wire type; proto3, defaults omitted):
 *   Profile   1 sample_type ValueType*   2 sample Sample*
 *             3 mapping Mapping*         4 location Location*
 *             5 function Function*       6 string_table string*
 *             9 time_nanos  10 duration_nanos  11 period_type ValueType
 *             12 period     13 comment (string index)*
 *   ValueType 1 type  2 unit                (string indexes)
 *   Sample    1 location_id (packed, leaf first)  2 value (packed)
 *   Mapping   1 id  2 memory_start  3 memory_limit  5 filename
 *             6 build_id  7 has_functions  8 has_filenames
 *             9 has_line_numbers  10 has_inline_frames
 *   Location  1 id  2 mapping_id  3 address  4 line Line*
 *   Line      1 function_id  2 line         (innermost frame first)
 *   Function  1 id  2 name  3 system_name  4 filename  5 start_line
 *
 * sample_type is [samples/count, cpu/nanoseconds] for cpu-clock and
 * task-clock, else [samples/count, <event>/events]; value[1] = count *
 * period. The profile model has no period: option period= gives it (the
 * event's units per sample), default 1 ms (1000000). Go's PGO reader takes
 * the samples/count column. Counts are the profile's weighted counts,
 * rounded; stacks that round to 0 are dropped.
 *
 * Location address: the ELF virtual address (the file offset when it is
 * unknown); one Mapping per build-id, [lowest, highest] address of its
 * locations. Function name: demangled linkage name (C++), system_name:
 * the linkage name. Ids are dense and given in order of first use.
 *
 * Workload: one pass over stacks; a map for functions (a few
 * thousand); string indexes map 1:1 from the profile's interned strings.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

/* The Itanium C++ ABI demangler of libstdc++ (linked by every binary). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
			    int *status);

enum { PB_VARINT = 0, PB_LEN = 2 };

static void pb_key(struct fdo_buf *b, uint32_t field, int wire)
{
	fdo_buf_uleb(b, (uint64_t)field << 3 | (uint64_t)wire);
}

/* pb_uint writes a varint field unless it is 0 (proto3's default). */
static void pb_uint(struct fdo_buf *b, uint32_t field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, PB_VARINT);
	fdo_buf_uleb(b, v);
}

static void pb_bytes(struct fdo_buf *b, uint32_t field, const void *p, size_t n)
{
	pb_key(b, field, PB_LEN);
	fdo_buf_uleb(b, n);
	if (n) /* an empty buffer's data may be NULL */
		fdo_buf_append(b, p, n);
}

static void buf_cat(struct fdo_buf *b, const struct fdo_buf *m)
{
	if (m->len)
		fdo_buf_append(b, m->data, m->len);
}

/* pb_msg appends the encoded message in m as field `field` of b and
 * empties m for reuse. */
static void pb_msg(struct fdo_buf *b, uint32_t field, struct fdo_buf *m)
{
	pb_bytes(b, field, m->data, m->len);
	if (m->oom)
		b->oom = 1;
	fdo_buf_reset(m);
}

/* ------------------------------------------------------ the encoder -- */

struct enc {
	const struct prof *p;
	/* string table: index 0 is ""; prof strings are mapped on first use */
	const char **strs;
	char **owned; /* demangled names, freed at the end */
	size_t nstrs, cap_strs, nowned, cap_owned;
	uint32_t *str_map;  /* prof string index -> pprof index + 1 */
	uint32_t *loc_id;   /* prof loc index -> location id (0 unused) */
	uint32_t *name_map; /* prof string index -> demangled pprof index+1 */
	struct fdo_map128 funcs; /* (function, file, start line, 0) -> id */
	size_t nfuncs;
	uint32_t nlocs_used;
	uint64_t *map_lo, *map_hi; /* per build-id address range */
	uint8_t *map_used;
	struct fdo_buf samples, locations, functions, tmp, tmp2;
	int oom;
};

static uint32_t str_add(struct enc *e, const char *s)
{
	if (fdo_grow(e->strs, e->cap_strs, e->nstrs + 1)) {
		e->oom = 1;
		return 0;
	}
	e->strs[e->nstrs] = s;
	return (uint32_t)e->nstrs++;
}

/* str_of maps a profile string index (PROF_NONE: "") to the table. */
static uint32_t str_of(struct enc *e, uint32_t i)
{
	if (i == PROF_NONE || i >= e->p->nstrings)
		return 0;
	if (!e->str_map[i])
		e->str_map[i] = str_add(e, e->p->strings[i]) + 1;
	return e->str_map[i] - 1;
}

/* name_of gives the display name of linkage name i: demangled if it is a
 * C++ name, else the linkage name itself. */
static uint32_t name_of(struct enc *e, uint32_t i)
{
	if (i == PROF_NONE || i >= e->p->nstrings)
		return str_add(e, "??");
	if (e->name_map[i])
		return e->name_map[i] - 1;
	const char *s = e->p->strings[i];
	uint32_t idx;
	int status = -1;
	char *d = !strncmp(s, "_Z", 2) ? __cxa_demangle(s, NULL, NULL, &status)
				       : NULL;
	if (d && status == 0) {
		if (fdo_grow(e->owned, e->cap_owned, e->nowned + 1)) {
			free(d);
			e->oom = 1;
			return 0;
		}
		e->owned[e->nowned++] = d;
		idx = str_add(e, d);
	} else {
		free(d);
		idx = str_of(e, i);
	}
	e->name_map[i] = idx + 1;
	return idx;
}

/* func_id returns the Function id of frame f, writing the Function on
 * first use. */
static uint64_t func_id(struct enc *e, const struct prof_frame *f)
{
	uint32_t k[4] = {f->function, f->file, f->start_line, 0};
	uint32_t id;
	int found;
	if (fdo_map128_put(&e->funcs, k, (uint32_t)e->nfuncs + 1, &id,
			   &found)) {
		e->oom = 1;
		return 0;
	}
	if (found)
		return id;
	e->nfuncs++;
	struct fdo_buf *m = &e->tmp2;
	pb_uint(m, 1, id);
	pb_uint(m, 2, name_of(e, f->function));
	pb_uint(m, 3,
		f->function == PROF_NONE ? name_of(e, f->function)
					 : str_of(e, f->function));
	pb_uint(m, 4, str_of(e, f->file));
	pb_uint(m, 5, f->start_line);
	pb_msg(&e->functions, 5, m);
	return id;
}

/* loc_of returns the Location id of profile location li, writing the
 * Location (and its Functions) on first use. */
static uint64_t loc_of(struct enc *e, uint32_t li)
{
	if (e->loc_id[li])
		return e->loc_id[li];
	const struct prof *p = e->p;
	const struct prof_loc *l = &p->locs[li];
	uint32_t id = ++e->nlocs_used;
	e->loc_id[li] = id;
	uint64_t addr = l->vaddr != UINT64_MAX ? l->vaddr : l->offset;
	struct fdo_buf *m = &e->tmp;
	pb_uint(m, 1, id);
	if (l->build_id < p->nbuild_ids) {
		pb_uint(m, 2, (uint64_t)l->build_id + 1);
		if (!e->map_used[l->build_id] || addr < e->map_lo[l->build_id])
			e->map_lo[l->build_id] = addr;
		if (!e->map_used[l->build_id] || addr > e->map_hi[l->build_id])
			e->map_hi[l->build_id] = addr;
		e->map_used[l->build_id] = 1;
	}
	pb_uint(m, 3, addr);
	if ((uint64_t)l->first_frame + l->nframes <= p->nframes) {
		for (uint32_t k = 0; k < l->nframes; k++) {
			const struct prof_frame *f =
				&p->frames[l->first_frame + k];
			uint64_t fid = func_id(e, f);
			struct fdo_buf line;
			fdo_buf_init(&line);
			pb_uint(&line, 1, fid);
			pb_uint(&line, 2, f->line);
			pb_msg(m, 4, &line);
			fdo_buf_fini(&line);
		}
	}
	pb_msg(&e->locations, 4, m);
	return id;
}

static void put_value_type(struct fdo_buf *b, uint32_t field, uint32_t type,
			   uint32_t unit)
{
	struct fdo_buf m;
	fdo_buf_init(&m);
	pb_uint(&m, 1, type);
	pb_uint(&m, 2, unit);
	pb_msg(b, field, &m);
	fdo_buf_fini(&m);
}

static void enc_fini(struct enc *e)
{
	free(e->strs);
	for (size_t i = 0; i < e->nowned; i++)
		free(e->owned[i]);
	free(e->owned);
	free(e->str_map);
	free(e->name_map);
	free(e->loc_id);
	fdo_map128_fini(&e->funcs);
	free(e->map_lo);
	free(e->map_hi);
	free(e->map_used);
	fdo_buf_fini(&e->samples);
	fdo_buf_fini(&e->locations);
	fdo_buf_fini(&e->functions);
	fdo_buf_fini(&e->tmp);
	fdo_buf_fini(&e->tmp2);
}

/* encode writes the uncompressed Profile into raw. */
static int encode(struct enc *e, uint64_t period, struct fdo_buf *raw)
{
	const struct prof *p = e->p;
	str_add(e, "");
	const char *ev = p->event && *p->event ? p->event : "cpu-clock";
	int cpu = !strcmp(ev, "cpu-clock") || !strcmp(ev, "task-clock");
	uint32_t type = str_add(e, cpu ? "cpu" : ev);
	uint32_t unit = str_add(e, cpu ? "nanoseconds" : "events");
	put_value_type(raw, 1, str_add(e, "samples"), str_add(e, "count"));
	put_value_type(raw, 1, type, unit);

	struct fdo_buf ids, vals;
	fdo_buf_init(&ids);
	fdo_buf_init(&vals);
	for (size_t i = 0; i < p->nstacks && !e->oom; i++) {
		const struct prof_stack *st = &p->stacks[i];
		double c = st->count > 0 ? st->count + 0.5 : 0;
		if (c < 1 || c >= 9.2e18 / (double)period ||
		    (uint64_t)st->first_loc + st->nlocs > p->nstack_locs)
			continue;
		fdo_buf_reset(&ids);
		for (uint32_t k = 0; k < st->nlocs; k++) {
			uint32_t li = p->stack_locs[st->first_loc + k];
			if (li < p->nlocs)
				fdo_buf_uleb(&ids, loc_of(e, li));
		}
		if (!ids.len)
			continue;
		uint64_t n = (uint64_t)c;
		fdo_buf_reset(&vals);
		fdo_buf_uleb(&vals, n);
		fdo_buf_uleb(&vals, n * period);
		pb_bytes(&e->tmp, 1, ids.data, ids.len);
		pb_bytes(&e->tmp, 2, vals.data, vals.len);
		pb_msg(&e->samples, 2, &e->tmp);
	}
	if (ids.oom || vals.oom)
		e->oom = 1;
	fdo_buf_fini(&ids);
	fdo_buf_fini(&vals);
	buf_cat(raw, &e->samples);

	for (size_t i = 0; i < p->nbuild_ids; i++) {
		if (!e->map_used[i])
			continue;
		const struct prof_build_id *b = &p->build_ids[i];
		struct fdo_buf *m = &e->tmp;
		pb_uint(m, 1, i + 1);
		pb_uint(m, 2, e->map_lo[i]);
		pb_uint(m, 3, e->map_hi[i] + 1);
		const char *file = b->elf_path ? b->elf_path
				   : p->binary ? p->binary
					       : "";
		pb_uint(m, 5, str_add(e, file));
		pb_uint(m, 6, str_add(e, b->hex));
		for (uint32_t f = 7; f <= 10; f++)
			pb_uint(m, f, 1);
		pb_msg(raw, 3, m);
	}
	buf_cat(raw, &e->locations);
	buf_cat(raw, &e->functions);
	uint32_t comment = 0;
	if (p->selectors[0])
		comment = str_add(e, p->selectors);
	for (size_t i = 0; i < e->nstrs && !e->oom; i++)
		pb_bytes(raw, 6, e->strs[i], strlen(e->strs[i]));
	pb_uint(raw, 9, p->first_time * 1000000000ull);
	if (p->last_time > p->first_time)
		pb_uint(raw, 10,
			(p->last_time - p->first_time) * 1000000000ull);
	put_value_type(raw, 11, type, unit);
	pb_uint(raw, 12, period);
	if (comment) {
		pb_key(raw, 13, PB_VARINT);
		fdo_buf_uleb(raw, comment);
	}
	if (e->oom || raw->oom || e->samples.oom || e->locations.oom ||
	    e->functions.oom || e->tmp.oom || e->tmp2.oom)
		return FDO_ENOMEM;
	return FDO_OK;
}

/* gzip_append compresses raw into out as one gzip member. */
static int gzip_append(const struct fdo_buf *raw, struct fdo_buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	/* windowBits 15 + 16: a gzip header and trailer, not zlib's. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return FDO_ENOMEM;
	uLong bound = deflateBound(&z, (uLong)raw->len) + 32;
	if (fdo_buf_reserve(out, bound)) {
		deflateEnd(&z);
		return FDO_ENOMEM;
	}
	z.next_in = (Bytef *)(raw->len ? raw->data : "");
	z.avail_in = (uInt)raw->len;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)bound;
	int rc = deflate(&z, Z_FINISH);
	size_t produced = bound - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END)
		return FDO_EIO;
	out->len += produced;
	return FDO_OK;
}

int emit_pprof(const struct prof *p, const struct prof_opts *o,
	       struct fdo_buf *out)
{
	struct enc e;
	memset(&e, 0, sizeof e);
	e.p = p;
	fdo_buf_init(&e.samples);
	fdo_buf_init(&e.locations);
	fdo_buf_init(&e.functions);
	fdo_buf_init(&e.tmp);
	fdo_buf_init(&e.tmp2);
	size_t ns = p->nstrings ? p->nstrings : 1;
	size_t nb = p->nbuild_ids ? p->nbuild_ids : 1;
	e.str_map = calloc(ns, sizeof *e.str_map);
	e.name_map = calloc(ns, sizeof *e.name_map);
	e.loc_id = calloc(p->nlocs ? p->nlocs : 1, sizeof *e.loc_id);
	e.map_lo = calloc(nb, sizeof *e.map_lo);
	e.map_hi = calloc(nb, sizeof *e.map_hi);
	e.map_used = calloc(nb, 1);
	struct fdo_buf raw;
	fdo_buf_init(&raw);
	int err = FDO_ENOMEM;
	if (e.str_map && e.name_map && e.loc_id && e.map_lo && e.map_hi &&
	    e.map_used && (p->nlocs < UINT32_MAX))
		err = encode(&e, o->period, &raw);
	if (!err && (uInt)raw.len != raw.len)
		err = FDO_ELIMIT;
	if (!err)
		err = gzip_append(&raw, out);
	fdo_buf_fini(&raw);
	enc_fini(&e);
	return err;
}
