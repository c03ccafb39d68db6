/*
 * symbolizer/probes.c — LLVM 16's pseudo probes of an ELF file: the
 * function descriptors of .pseudo_probe_desc and the probe forest of
 * .pseudo_probe, with every probe's address made absolute through the
 * symbol table, as llvm-profgen-16 decodes them (MCPseudoProbeDecoder,
 * llvm/lib/MC/MCPseudoProbe.cpp of 16.0.6; the writer is
 * MCPseudoProbeInlineTree::emit in the same file).
 *
 * .pseudo_probe_desc: records back to back, no header, no alignment.
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       8     GUID of the function (MD5 of its IR name), little-endian
 *   8       8     CFG checksum, little-endian
 *   16      U     name length N, ULEB128 (LLVM reads it as 32 bits)
 *   16+U    N     IR name, not NUL-terminated
 *
 * .pseudo_probe: top-level records back to back, one per function symbol
 * with probes; a record is a node of an inline tree:
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       8     GUID of the function whose probes follow, little-endian
 *   8       U     NPROBES, ULEB128 (32 bits; sentinels included)
 *   .       U     NINLINEES, ULEB128 (32 bits)
 *   .       ...   NPROBES probes:
 *                   U  index, ULEB128 (32 bits)
 *                   1  flag << 7 | attr << 4 | type (attr 0x2: sentinel)
 *                   flag 1: S  address delta, SLEB128
 *                   flag 0: 8  sentinel: the GUID of the symbol of a split
 *                              part (its address is the next base);
 *                              otherwise an absolute address (pre-16)
 *   .       ...   NINLINEES children, each:
 *                   U  the call-probe index, in this node's function, the
 *                      callee was inlined at, ULEB128 (32 bits)
 *                   ...  a node (GUID, counts, probes, children), as above
 *
 * A delta is from the previous probe in emission order (a node's probes,
 * then its children's subtrees, depth first), across nodes; the first
 * probe of a record is from the start of the symbol whose GUID (MD5 of
 * its name) is the record's GUID. LLVM pads LEB128 numbers (relaxed
 * fragments): padding is accepted as LLVM's decodeULEB128/decodeSLEB128
 * accept it.
 *
 * Where we differ from llvm-profgen-16 on purpose: a record whose GUID
 * has no symbol is dropped (profgen keeps the previous record's base and
 * prints wrong addresses), and so is one whose addresses overflow or
 * whose inline tree is deeper than SYM_PROBE_MAX_DEPTH; a record that
 * runs past its section drops the rest of that section, where profgen
 * reads past the end of its buffer. Sibling inlinees with one (GUID,
 * site), which LLVM's writer never emits, stay two contexts.
 *
 * Workload: one read per binary whose samples are turned into a probe
 * profile; a large binary has hundreds of thousands of probes and as many
 * symbols (one MD5 each): perl's miniperl, 484 KiB of .pseudo_probe,
 * 123,580 probes and 7,651 symbols, reads in 12 ms. The sections are
 * untrusted: every read is bounds-checked, the inline tree is walked
 * with an explicit stack, and work and memory are linear in the
 * sections' sizes (a probe takes at least 3 bytes there and 24 here).
 */
#include <gelf.h>
#include <mbedtls/md5.h>
#include <mbedtls/version.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "symbolizer/sym_int.h"

/* Larger probe sections are not what a compiler wrote; the bound keeps
 * every count and index in 32 bits. */
#define PROBES_MAX_SECTION (1ull << 30)
/* More symbols than this is not a binary we can be asked about. */
#define PROBES_MAX_SYMBOLS (64u << 20)
/* The fewest bytes a probe (index, type byte, 1-byte delta) and an
 * inlinee (site, GUID, two counts) take: a record whose counts need more
 * bytes than the section has left runs past it, known before reading
 * on. */
#define PROBE_MIN_BYTES	  3u
#define INLINEE_MIN_BYTES 11u

#define ATTR_SENTINEL 0x2u

/* A symbol-table entry: GUID of its name -> its address. */
struct gsym {
	uint64_t guid, addr;
	size_t order; /* in the table; only while building the map */
};

/* A descriptor while decoding. */
struct pdesc {
	uint64_t guid, hash;
	size_t name_off; /* into dec.names */
	size_t order;	 /* the first of one GUID wins */
};

/* An inline-tree node whose children are still being read. */
struct frame {
	uint32_t ctx;
	uint32_t left; /* children not read yet */
};

/* Why a record that parsed is dropped. */
enum drop { DROP_NONE, DROP_NOSYM, DROP_OVERFLOW, DROP_DEEP };

/* Decoder state across the sections of one file. */
struct dec {
	const char *what;  /* the file, for logs */
	struct gsym *syms; /* sorted by guid, unique */
	size_t nsyms;
	struct pdesc *descs;
	size_t ndescs, capd;
	char *names; /* NUL-terminated names back to back */
	size_t nnames, capn;
	struct sym_probe_ctx *ctxs;
	size_t nctxs, capc;
	struct sym_probe *probes;
	size_t nprobes, capp;
	struct frame *stack;
	size_t capst;
	size_t skipped, drops[4]; /* drops[enum drop] */
	int err;		  /* the first damage met, or FDO_OK */
};

/* The result and what its pointers point into. */
struct probes_own {
	struct sym_probes pub; /* first: sym_probes_free casts back */
	char *names;
};

/* ------------------------------------------------------------ reading -- */

/* A cursor over one section's bytes. */
struct rd {
	const uint8_t *p;
	size_t len, pos;
};

static int rd_u8(struct rd *r, uint8_t *v)
{
	if (r->pos >= r->len)
		return FDO_EPARSE;
	*v = r->p[r->pos++];
	return FDO_OK;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
	if (r->len - r->pos < 8)
		return FDO_EPARSE;
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | r->p[r->pos + (size_t)i];
	r->pos += 8;
	*v = x;
	return FDO_OK;
}

/* rd_uleb: LLVM's decodeULEB128 with an end: padding (continuation bytes
 * of zero bits) is fine, bits beyond 64 are not. */
static int rd_uleb(struct rd *r, uint64_t *v)
{
	uint64_t val = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		if (r->pos >= r->len)
			return FDO_EPARSE;
		b = r->p[r->pos++];
		uint64_t slice = b & 0x7f;
		if (shift >= 64) {
			if (slice)
				return FDO_EPARSE;
		} else {
			if ((slice << shift) >> shift != slice)
				return FDO_EPARSE;
			val |= slice << shift;
			shift += 7;
		}
	} while (b & 0x80);
	*v = val;
	return FDO_OK;
}

/* rd_sleb: LLVM's decodeSLEB128 with an end: padding must repeat the
 * sign. */
static int rd_sleb(struct rd *r, int64_t *v)
{
	uint64_t val = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		if (r->pos >= r->len)
			return FDO_EPARSE;
		b = r->p[r->pos++];
		uint64_t slice = b & 0x7f;
		if (shift >= 64) {
			if (slice != ((val >> 63) ? 0x7fu : 0u))
				return FDO_EPARSE;
		} else {
			if (shift == 63 && slice != 0 && slice != 0x7f)
				return FDO_EPARSE;
			val |= slice << shift;
			shift += 7;
		}
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		val |= ~0ull << shift;
	memcpy(v, &val, sizeof *v);
	return FDO_OK;
}

/* ---------------------------------------------------------- symbols -- */

static int cmp_gsym(const void *a, const void *b)
{
	const struct gsym *x = a, *y = b;
	if (x->guid != y->guid)
		return x->guid < y->guid ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* map_build sorts the n entries of s by GUID and keeps, of one GUID, the
 * last in table order (llvm-profgen overwrites its map entry); entries at
 * address 0 were left out already (profgen's lookup treats 0 as absent).
 * Returns the new count. */
static size_t map_build(struct gsym *s, size_t n)
{
	if (!n)
		return 0;
	qsort(s, n, sizeof *s, cmp_gsym);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && s[k - 1].guid == s[i].guid)
			s[k - 1] = s[i];
		else
			s[k++] = s[i];
	}
	return k;
}

/* map_find: 1 and *addr, the address of the symbol of guid; 0 if none. */
static int map_find(const struct dec *d, uint64_t guid, uint64_t *addr)
{
	size_t lo = 0, hi = d->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->syms[mid].guid < guid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->nsyms && d->syms[lo].guid == guid) {
		*addr = d->syms[lo].addr;
		return 1;
	}
	return 0;
}

static uint64_t guid_of(const void *name, size_t len)
{
	unsigned char md[16];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	mbedtls_md5(name, len, md);
#else
	mbedtls_md5_ret(name, len, md);
#endif
	/* MD5Result::low(): the first 8 bytes, little-endian. */
	uint64_t g = 0;
	for (int i = 7; i >= 0; i--)
		g = g << 8 | md[i];
	return g;
}

uint64_t sym_probe_guid(const char *name)
{
	return guid_of(name, strlen(name));
}

/* ---------------------------------------------------------- decoding -- */

/* damage records the first problem and logs where it is. */
static void damage(struct dec *d, int err, const char *sec, size_t at,
		   size_t len, const char *why)
{
	if (!d->err)
		d->err = err;
	fdo_debug("symbolizer: %s: %s: record at offset %zu %s; it and the "
		  "%zu bytes after it are dropped",
		  d->what, sec, at, why, len - at);
}

static int decode_desc(struct dec *d, const uint8_t *p, size_t len)
{
	struct rd r = {p, len, 0};
	while (r.pos < len) {
		size_t at = r.pos;
		uint64_t guid, hash, n;
		int rc = rd_u64(&r, &guid);
		if (!rc)
			rc = rd_u64(&r, &hash);
		if (!rc)
			rc = rd_uleb(&r, &n);
		if (!rc && (n > UINT32_MAX || n > len - r.pos))
			rc = FDO_EPARSE;
		if (rc) {
			damage(d, rc, ".pseudo_probe_desc", at, len,
			       "runs past its section");
			return FDO_OK;
		}
		if (fdo_grow(d->names, d->capn, d->nnames + n + 1) ||
		    fdo_grow(d->descs, d->capd, d->ndescs + 1))
			return FDO_ENOMEM;
		memcpy(d->names + d->nnames, p + r.pos, n);
		d->names[d->nnames + n] = 0;
		d->descs[d->ndescs] =
			(struct pdesc){guid, hash, d->nnames, d->ndescs};
		d->ndescs++;
		d->nnames += n + 1;
		r.pos += n;
	}
	return FDO_OK;
}

/* add_delta: base + delta, or 0 when that leaves [0, 2^64). */
static int add_delta(uint64_t base, int64_t delta, uint64_t *out)
{
	if (delta >= 0) {
		*out = base + (uint64_t)delta;
		return *out >= base;
	}
	/* |delta|, INT64_MIN included */
	uint64_t m = (uint64_t)0 - (uint64_t)delta;
	if (m > base)
		return 0;
	*out = base - m;
	return 1;
}

/*
 * decode_record reads one top-level record at r's position into d's
 * contexts and probes, walking its tree depth first with d->stack.
 * Returns FDO_OK (*drop tells whether the caller must discard what was
 * appended), FDO_EPARSE / FDO_ELIMIT (the record cannot be read to its
 * end) or FDO_ENOMEM.
 */
static int decode_record(struct dec *d, struct rd *r, enum drop *drop)
{
	uint64_t last = 0;
	int have_base = 0;
	size_t depth = 0; /* frames open: the ancestors of the next node */
	uint32_t parent = UINT32_MAX, site = 0;
	*drop = DROP_NONE;
	for (;;) {
		uint64_t guid, np, ni;
		int rc = rd_u64(r, &guid);
		if (!rc)
			rc = rd_uleb(r, &np);
		if (!rc)
			rc = rd_uleb(r, &ni);
		if (rc)
			return rc;
		if (np > UINT32_MAX || ni > UINT32_MAX ||
		    d->nctxs >= UINT32_MAX)
			return FDO_ELIMIT;
		/* Counts the rest of the section cannot hold: the record
		 * runs past it (a truncated section, most likely). */
		if (np * PROBE_MIN_BYTES + ni * INLINEE_MIN_BYTES >
		    r->len - r->pos)
			return FDO_EPARSE;
		uint64_t func_addr = 0;
		if (parent == UINT32_MAX) {
			have_base = map_find(d, guid, &last);
			if (have_base)
				func_addr = last;
		}
		if (depth > SYM_PROBE_MAX_DEPTH)
			*drop = DROP_DEEP;
		uint32_t ctx = (uint32_t)d->nctxs;
		if (fdo_grow(d->ctxs, d->capc, d->nctxs + 1))
			return FDO_ENOMEM;
		d->ctxs[d->nctxs++] = (struct sym_probe_ctx){
			.parent = parent,
			.guid = guid,
			.site = site,
			.func_addr = func_addr,
		};
		for (uint64_t i = 0; i < np; i++) {
			uint64_t index, v = 0;
			int64_t delta = 0;
			uint8_t tb;
			rc = rd_uleb(r, &index);
			if (!rc)
				rc = rd_u8(r, &tb);
			if (!rc && index > UINT32_MAX)
				rc = FDO_EPARSE;
			if (!rc)
				rc = tb & 0x80 ? rd_sleb(r, &delta)
					       : rd_u64(r, &v);
			if (rc)
				return rc;
			if (*drop)
				continue; /* read to the end, keep nothing */
			uint8_t attr = (tb >> 4) & 7;
			uint64_t addr;
			if (tb & 0x80) {
				if (!have_base) {
					*drop = DROP_NOSYM;
					continue;
				}
				if (!add_delta(last, delta, &addr)) {
					*drop = DROP_OVERFLOW;
					continue;
				}
			} else if (attr & ATTR_SENTINEL) {
				/* The split part's symbol is the next base. */
				have_base = map_find(d, v, &addr);
				if (have_base && parent == UINT32_MAX)
					d->ctxs[ctx].func_addr = addr;
			} else {
				addr = v; /* an absolute address (pre-16) */
				have_base = 1;
			}
			last = addr;
			if (attr & ATTR_SENTINEL)
				continue;
			if (fdo_grow(d->probes, d->capp, d->nprobes + 1))
				return FDO_ENOMEM;
			d->probes[d->nprobes++] = (struct sym_probe){
				.addr = addr,
				.index = (uint32_t)index,
				.ctx = ctx,
				.type = tb & 0xf,
				.attr = attr,
			};
		}
		if (ni) {
			if (fdo_grow(d->stack, d->capst, depth + 1))
				return FDO_ENOMEM;
			d->stack[depth++] = (struct frame){ctx, (uint32_t)ni};
		}
		while (depth && !d->stack[depth - 1].left)
			depth--;
		if (!depth)
			return FDO_OK;
		d->stack[depth - 1].left--;
		uint64_t s;
		rc = rd_uleb(r, &s);
		if (!rc && s > UINT32_MAX)
			rc = FDO_EPARSE;
		if (rc)
			return rc;
		parent = d->stack[depth - 1].ctx;
		site = (uint32_t)s;
	}
}

static int decode_probes(struct dec *d, const uint8_t *p, size_t len)
{
	if (len > PROBES_MAX_SECTION) {
		d->skipped++;
		damage(d, FDO_ELIMIT, ".pseudo_probe", 0, len,
		       "is in a section over 1 GiB");
		return FDO_OK;
	}
	struct rd r = {p, len, 0};
	while (r.pos < len) {
		size_t at = r.pos, c0 = d->nctxs, p0 = d->nprobes;
		enum drop drop;
		int rc = decode_record(d, &r, &drop);
		if (rc == FDO_ENOMEM)
			return rc;
		if (rc || drop) {
			d->nctxs = c0;
			d->nprobes = p0;
			d->skipped++;
		}
		if (rc) {
			damage(d, rc, ".pseudo_probe", at, len,
			       rc == FDO_ELIMIT ? "has counts over 2^32"
						: "runs past its section");
			return FDO_OK;
		}
		d->drops[drop]++;
		if (drop == DROP_DEEP && !d->err)
			d->err = FDO_ELIMIT;
	}
	return FDO_OK;
}

static int cmp_desc(const void *a, const void *b)
{
	const struct pdesc *x = a, *y = b;
	if (x->guid != y->guid)
		return x->guid < y->guid ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_probe(const void *a, const void *b)
{
	const struct sym_probe *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->ctx != y->ctx)
		return x->ctx < y->ctx ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->attr < y->attr ? -1 : x->attr > y->attr;
}

static void dec_fini(struct dec *d)
{
	free(d->syms);
	free(d->descs);
	free(d->names);
	free(d->ctxs);
	free(d->probes);
	free(d->stack);
}

/* finish hands the decoded arrays over to a new sym_probes. */
static int finish(struct dec *d, struct sym_probes **out)
{
	struct probes_own *o = calloc(1, sizeof *o);
	if (!o)
		return FDO_ENOMEM;
	size_t k = 0;
	if (d->ndescs) {
		qsort(d->descs, d->ndescs, sizeof *d->descs, cmp_desc);
		for (size_t i = 0; i < d->ndescs; i++)
			if (!k || d->descs[k - 1].guid != d->descs[i].guid)
				d->descs[k++] = d->descs[i];
		o->pub.funcs = malloc(k * sizeof *o->pub.funcs);
		if (!o->pub.funcs) {
			free(o);
			return FDO_ENOMEM;
		}
		for (size_t i = 0; i < k; i++)
			o->pub.funcs[i] = (struct sym_probe_func){
				d->descs[i].guid, d->descs[i].hash,
				d->names + d->descs[i].name_off};
	}
	o->pub.nfuncs = k;
	o->names = d->names;
	d->names = NULL;
	if (d->nprobes)
		qsort(d->probes, d->nprobes, sizeof *d->probes, cmp_probe);
	/* Give back the doubling's slack: the result may live long. */
	if (d->nctxs < d->capc) {
		void *p = realloc(d->ctxs,
				  (d->nctxs ? d->nctxs : 1) * sizeof *d->ctxs);
		if (p)
			d->ctxs = p;
	}
	if (d->nprobes < d->capp) {
		void *p = realloc(d->probes, (d->nprobes ? d->nprobes : 1) *
						     sizeof *d->probes);
		if (p)
			d->probes = p;
	}
	o->pub.ctxs = d->nctxs ? d->ctxs : NULL;
	o->pub.nctxs = d->nctxs;
	if (!d->nctxs)
		free(d->ctxs);
	d->ctxs = NULL;
	o->pub.probes = d->nprobes ? d->probes : NULL;
	o->pub.nprobes = d->nprobes;
	if (!d->nprobes)
		free(d->probes);
	d->probes = NULL;
	o->pub.skipped = d->skipped;
	if (d->drops[DROP_NOSYM] || d->drops[DROP_OVERFLOW] ||
	    d->drops[DROP_DEEP])
		fdo_debug("symbolizer: %s: pseudo-probe records dropped: %zu "
			  "without a symbol, %zu with overflowing addresses, "
			  "%zu inlined deeper than %d",
			  d->what, d->drops[DROP_NOSYM],
			  d->drops[DROP_OVERFLOW], d->drops[DROP_DEEP],
			  SYM_PROBE_MAX_DEPTH);
	*out = &o->pub;
	return d->err;
}

void sym_probes_free(struct sym_probes *p)
{
	if (!p)
		return;
	struct probes_own *o = (struct probes_own *)p;
	free(p->funcs);
	free(p->ctxs);
	free(p->probes);
	free(o->names);
	free(o);
}

const struct sym_probe_func *sym_probes_func(const struct sym_probes *p,
					     uint64_t guid)
{
	size_t lo = 0, hi = p->nfuncs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->funcs[mid].guid < guid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->nfuncs && p->funcs[lo].guid == guid ? &p->funcs[lo]
							   : NULL;
}

int sym_probes_decode_bytes(const uint8_t *desc, size_t desc_len,
			    const uint8_t *probe, size_t probe_len,
			    const uint64_t *sym_guids,
			    const uint64_t *sym_addrs, size_t nsyms,
			    struct sym_probes **out)
{
	*out = NULL;
	struct dec d = {.what = "(memory)"};
	int err = FDO_OK;
	if (nsyms) {
		d.syms = malloc(nsyms * sizeof *d.syms);
		if (!d.syms)
			return FDO_ENOMEM;
		for (size_t i = 0; i < nsyms; i++)
			if (sym_addrs[i])
				d.syms[d.nsyms++] = (struct gsym){
					sym_guids[i], sym_addrs[i], i};
		d.nsyms = map_build(d.syms, d.nsyms);
	}
	if (desc_len)
		err = decode_desc(&d, desc, desc_len);
	if (!err && probe_len)
		err = decode_probes(&d, probe, probe_len);
	if (!err)
		err = finish(&d, out);
	dec_fini(&d);
	return err;
}

/* ------------------------------------------------------------ ELF file -- */

/*
 * collect_symbols fills d->syms from the .symtab (never .dynsym, as
 * llvm-profgen): defined symbols at a non-zero address with a name, the
 * FUNC ones after the others so that of one GUID a function wins.
 */
static int collect_symbols(Elf *elf, struct dec *d)
{
	Elf_Scn *s = NULL;
	GElf_Shdr sh;
	for (Elf_Scn *c = elf_nextscn(elf, NULL); c; c = elf_nextscn(elf, c))
		if (gelf_getshdr(c, &sh) && sh.sh_type == SHT_SYMTAB &&
		    sh.sh_entsize && sh.sh_size >= sh.sh_entsize) {
			s = c;
			break;
		}
	Elf_Data *data = s ? elf_getdata(s, NULL) : NULL;
	if (!data)
		return FDO_OK;
	size_t count = data->d_size / sizeof(Elf64_Sym);
	if (count > PROBES_MAX_SYMBOLS) {
		/* Decode without symbols: every record is skipped. */
		fdo_debug("symbolizer: %s: %zu symbols, too many", d->what,
			  count);
		d->err = FDO_ELIMIT;
		return FDO_OK;
	}
	if (!count)
		return FDO_OK;
	d->syms = malloc(count * sizeof *d->syms);
	if (!d->syms)
		return FDO_ENOMEM;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 1; i < count; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(data, (int)i, &sym))
				break;
			int t = GELF_ST_TYPE(sym.st_info);
			int func = t == STT_FUNC || t == STT_GNU_IFUNC;
			if (func != pass || sym.st_shndx == SHN_UNDEF ||
			    !sym.st_value || t == STT_SECTION || t == STT_FILE)
				continue;
			const char *name =
				elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || !*name)
				continue;
			d->syms[d->nsyms] =
				(struct gsym){guid_of(name, strlen(name)),
					      sym.st_value, d->nsyms};
			d->nsyms++;
		}
	d->nsyms = map_build(d->syms, d->nsyms);
	return FDO_OK;
}

/* section_named returns the next section after s (NULL: the first) named
 * name, or NULL. */
static Elf_Scn *section_named(Elf *elf, size_t shstrndx, Elf_Scn *s,
			      const char *name, GElf_Shdr *sh)
{
	while ((s = elf_nextscn(elf, s))) {
		const char *n = gelf_getshdr(s, sh)
					? elf_strptr(elf, shstrndx, sh->sh_name)
					: NULL;
		if (n && !strcmp(n, name))
			return s;
	}
	return NULL;
}

/* decode_sections decodes every .pseudo_probe_desc, then every
 * .pseudo_probe section, each on its own (a linked file has one of each;
 * an object file one per COMDAT group). */
static int decode_sections(Elf *elf, size_t shstrndx, struct dec *d)
{
	for (int pass = 0; pass < 2; pass++) {
		const char *want = pass ? ".pseudo_probe"
					: ".pseudo_probe_desc";
		GElf_Shdr sh;
		for (Elf_Scn *s = section_named(elf, shstrndx, NULL, want, &sh);
		     s; s = section_named(elf, shstrndx, s, want, &sh)) {
			if (sh.sh_type == SHT_NOBITS || !sh.sh_size)
				continue;
			Elf_Data *data = elf_getdata(s, NULL);
			if (!data) {
				fdo_warn("symbolizer: %s: %s: %s", d->what,
					 want, elf_errmsg(-1));
				return FDO_ETRUNCATED;
			}
			int rc = pass ? decode_probes(d, data->d_buf,
						      data->d_size)
				      : decode_desc(d, data->d_buf,
						    data->d_size);
			if (rc)
				return rc;
		}
	}
	return FDO_OK;
}

int sym_probes_read(const char *elf_path, struct sym_probes **out)
{
	*out = NULL;
	struct sym_elf h;
	int err = sym_elf_open(elf_path, &h);
	if (err)
		return err;
	Elf *elf = h.elf;
	if (gelf_getclass(elf) != ELFCLASS64) {
		fdo_warn("symbolizer: %s: pseudo probes are read from ELF64 "
			 "little-endian files only",
			 elf_path);
		err = FDO_EUNSUPPORTED;
	}
	/* Without a .pseudo_probe section there is nothing to do: look
	 * before hashing every symbol. */
	size_t shstrndx = 0;
	GElf_Shdr sh;
	if (!err && (elf_getshdrstrndx(elf, &shstrndx) != 0 ||
		     !section_named(elf, shstrndx, NULL, ".pseudo_probe", &sh)))
		err = FDO_ENOT_FOUND;
	struct dec d = {.what = elf_path};
	if (!err)
		err = collect_symbols(elf, &d);
	if (!err)
		err = decode_sections(elf, shstrndx, &d);
	/* Descriptor names are copies: the image may go after this. */
	if (!err)
		err = finish(&d, out);
	dec_fini(&d);
	sym_elf_close(&h);
	return err;
}
