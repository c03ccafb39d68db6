/*
 * schemas/codec.c — SampleBatch and Ack to and from protobuf bytes, around
 * protobuf-c. Bytes come from the network, so decoding bounds both the input
 * size and the memory protobuf-c may allocate for it: a budget allocator
 * (malloc underneath, so the result is freed with the system allocator)
 * refuses to go past max_decoded_bytes, which turns a memory-amplification
 * attempt (many tiny sub-messages) into FDO_ELIMIT instead of an OOM.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/wire_int.h"

struct budget {
	size_t left; /* bytes this decode may still allocate */
	int over;    /* an allocation exceeded the budget */
	int nomem;   /* malloc failed */
};

/* budget_take charges size to b: 1, or 0 (b->over set) past the budget.
 * Frees are not credited back: the budget bounds the peak from above. */
static int budget_take(struct budget *b, size_t size)
{
	if (size > b->left) {
		b->over = 1;
		return 0;
	}
	b->left -= size;
	return 1;
}

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	if (!budget_take(b, size))
		return NULL;
	void *p = malloc(size ? size : 1);
	if (!p)
		b->nomem = 1;
	return p;
}

static void budget_free(void *data, void *p)
{
	free(p);
}

/* decode unpacks with allocator al, whose allocations charge *b. */
static int decode(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
		  size_t len, size_t max_bytes, size_t max_alloc,
		  ProtobufCAllocator *al, struct budget *b,
		  ProtobufCMessage **out)
{
	if (len > max_bytes)
		return FDO_ELIMIT;
	*b = (struct budget){.left = max_alloc};
	static const uint8_t empty[1];
	ProtobufCMessage *m =
		protobuf_c_message_unpack(desc, al, len, buf ? buf : empty);
	if (!m)
		return b->over	  ? FDO_ELIMIT
		       : b->nomem ? FDO_ENOMEM
				  : FDO_EPARSE;
	*out = m;
	return FDO_OK;
}

/* decode with malloc underneath: the result is freed with free_unpacked
 * (schemas/wire_int.h; schemas/pprof.c decodes profiles with it too). */
int wire_decode_bounded(const ProtobufCMessageDescriptor *desc,
			const uint8_t *buf, size_t len, size_t max_bytes,
			size_t max_alloc, ProtobufCMessage **out)
{
	struct budget b;
	ProtobufCAllocator al = {.alloc = budget_alloc,
				 .free = budget_free,
				 .allocator_data = &b};
	return decode(desc, buf, len, max_bytes, max_alloc, &al, &b, out);
}

static int encode(const ProtobufCMessage *m, size_t max_bytes, uint8_t **out,
		  size_t *len)
{
	if (!protobuf_c_message_check(m))
		return FDO_EINVAL;
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > max_bytes)
		return FDO_ELIMIT;
	uint8_t *p = malloc(n ? n : 1);
	if (!p)
		return FDO_ENOMEM;
	size_t w = protobuf_c_message_pack(m, p);
	if (w != n) {
		free(p);
		return FDO_EINVAL;
	}
	*out = p;
	*len = n;
	return FDO_OK;
}

/* ------------------------------------------------------------ arena -- */

#define ARENA_BLOCK (256u << 10) /* the usual block: a batch of ~150 KiB */
#define ARENA_KEEP  (4u << 20)	 /* blocks kept by a reset */
#define ARENA_ALIGN 16u

struct block {
	struct block *next;
	size_t size, used; /* bytes of data[] */
	_Alignas(16) unsigned char data[];
};

struct wire_arena {
	struct block *blocks; /* the current block first */
	struct budget budget; /* the current decode's */
};

struct wire_arena *wire_arena_new(void)
{
	return calloc(1, sizeof(struct wire_arena));
}

static void *arena_alloc(void *data, size_t size)
{
	struct wire_arena *a = data;
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < size) {
		a->budget.over = 1;
		return NULL;
	}
	if (!budget_take(&a->budget, size))
		return NULL;
	struct block *b = a->blocks;
	/* The current block, or a later one with room (kept by a reset),
	 * or a new one. */
	if (b && b->size - b->used < need) {
		struct block **pp = &b->next;
		while (*pp && (*pp)->size - (*pp)->used < need)
			pp = &(*pp)->next;
		if (*pp) {
			struct block *k = *pp;
			*pp = k->next;
			k->next = b;
			a->blocks = b = k;
		} else
			b = NULL;
	}
	if (!b || b->size - b->used < need) {
		size_t bs = need > ARENA_BLOCK ? need : ARENA_BLOCK;
		if (bs > SIZE_MAX - sizeof *b ||
		    !(b = malloc(sizeof *b + bs))) {
			a->budget.nomem = 1;
			return NULL;
		}
		b->size = bs;
		b->used = 0;
		b->next = a->blocks;
		a->blocks = b;
	}
	void *p = b->data + b->used;
	b->used += need;
	return p;
}

/* --------------------------------------------- the receivers' decoder -- */

/*
 * fdod's receivers decode a SampleBatch with the code below instead of
 * protobuf_c_message_unpack: the same structures, the same results for
 * every input (tests/unit/schemas_codec.c and fuzz/fuzz_batch.c compare the
 * two on valid, mutated and random bytes), at a fraction of the cost.
 * protobuf-c is generic: it scans each message into a list of members,
 * finds fields by binary search, allocates through callbacks and reads
 * every packed address three times; it was a tenth of fdod's CPU in
 * bench/ingest. What this decoder reproduces of protobuf-c 1.4:
 *   - a tag whose first byte holds field number bits of zero, a tag or
 *     length longer than 5 bytes, a varint longer than 10, a value past
 *     the end, and wire types 3, 4, 6 and 7 fail the message;
 *   - a known field with the wrong wire type fails it (a repeated varint
 *     field takes both packed and unpacked values, in stream order);
 *   - varints are truncated to the field's width; the last value of a
 *     singular field wins; strings are copied with a NUL, empty bytes are
 *     {0, NULL};
 *   - unknown fields are kept, in order, with their raw bytes.
 * Structural errors of a message are found before any of its
 * sub-messages is decoded, as in protobuf-c; only when the budget runs
 * out may the two report ELIMIT and EPARSE in a different order.
 */
enum fkind { K_U32, K_U64, K_DOUBLE, K_STRING, K_BYTES, K_MSGS, K_U64S };

/* Fields and sub-messages come from protobuf-c's descriptors of
 * fdod.proto; the decoder handles the kinds of field fdod.proto has. */
#define PMSG_MAX_FIELDS 16 /* fields of one message (pass 1 counts them) */

/* The kind of field f as the decoder reads it, or -1 when it cannot. */
static int pkind(const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return -1;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return f->type == PROTOBUF_C_TYPE_UINT64    ? K_U64S
		       : f->type == PROTOBUF_C_TYPE_MESSAGE ? K_MSGS
							    : -1;
	if (f->label != PROTOBUF_C_LABEL_NONE) /* proto2, proto3 optional */
		return -1;
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
		return K_U32;
	case PROTOBUF_C_TYPE_UINT64:
		return K_U64;
	case PROTOBUF_C_TYPE_DOUBLE:
		return K_DOUBLE;
	case PROTOBUF_C_TYPE_STRING:
		return K_STRING;
	case PROTOBUF_C_TYPE_BYTES:
		return K_BYTES;
	default:
		return -1;
	}
}

static int pmsg_readable(const ProtobufCMessageDescriptor *d)
{
	if (d->n_fields > PMSG_MAX_FIELDS)
		return 0;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (pkind(&d->fields[i]) < 0 ||
		    (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE &&
		     !pmsg_readable(d->fields[i].descriptor)))
			return 0;
	return 1;
}

int wire_decoder_matches_schema(void)
{
	return pmsg_readable(&fdod__sample_batch__descriptor);
}

static const ProtobufCFieldDescriptor *
pfield_of(const ProtobufCMessageDescriptor *d, uint32_t id)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].id == id)
			return &d->fields[i];
	return NULL;
}

/* A field's header and the extent of its value. */
struct pfield_at {
	uint32_t tag;
	unsigned wire;
	const uint8_t *val; /* the value (after a length prefix) */
	size_t vlen;
	const uint8_t *raw; /* what protobuf-c keeps of an unknown field */
	size_t rawlen;
};

/* The length of the varint at v (its last byte the first without the top
 * bit), if it ends within min(rem, max) bytes; else 0. */
static size_t varint_extent(const uint8_t *v, size_t rem, size_t max)
{
	if (max > rem)
		max = rem;
	for (size_t k = 0; k < max; k++)
		if (!(v[k] & 0x80))
			return k + 1;
	return 0;
}

/* A varint of vlen bytes (already bounded), truncated to 64 bits. */
static uint64_t pvarint(const uint8_t *v, size_t vlen)
{
	uint64_t x = 0;
	for (size_t k = 0; k < vlen; k++)
		x |= (uint64_t)(v[k] & 0x7f) << (7 * k);
	return x;
}

/* Reads the field at *at: 0 and *at advanced, or -1 (malformed). */
static int pfield_next(const uint8_t *p, size_t len, size_t *at,
		       struct pfield_at *f)
{
	size_t i = *at, rem = len - i;
	if ((p[i] & 0xf8) == 0)
		return -1; /* field number 0 */
	uint32_t tag = (p[i] & 0x7f) >> 3;
	f->wire = p[i] & 7;
	if (p[i] & 0x80) {
		size_t max = rem > 5 ? 5 : rem, k;
		unsigned shift = 4;
		for (k = 1; k < max && (p[i + k] & 0x80); k++, shift += 7)
			tag |= (uint32_t)(p[i + k] & 0x7f) << shift;
		if (k == max)
			return -1;
		tag |= (uint32_t)p[i + k] << shift;
		i += k + 1;
	} else {
		i++;
	}
	f->tag = tag;
	rem = len - i;
	f->raw = p + i;
	switch (f->wire) {
	case 0: { /* varint */
		size_t n = varint_extent(p + i, rem, 10);
		if (!n)
			return -1;
		f->val = p + i;
		f->vlen = f->rawlen = n;
		break;
	}
	case 1:
	case 5: { /* 64-bit, 32-bit */
		size_t n = f->wire == 1 ? 8 : 4;
		if (rem < n)
			return -1;
		f->val = p + i;
		f->vlen = f->rawlen = n;
		break;
	}
	case 2: { /* length-prefixed */
		size_t h = varint_extent(p + i, rem, 5);
		if (!h)
			return -1;
		size_t n = (size_t)pvarint(p + i, h);
		if (h + n > rem || h + n < n)
			return -1;
		f->val = p + i + h;
		f->vlen = n;
		f->rawlen = h + n;
		break;
	}
	default:
		return -1;
	}
	*at = (size_t)(f->raw - p) + f->rawlen;
	return 0;
}

/* Packed varints: how many values end in v[0..n), and decoding them.
 * Both take 8 bytes at a time where 8 are left (addresses are 6-7 bytes
 * as varints): a byte without its top bit ends a value. */
#define TOPBITS 0x8080808080808080ull

static uint64_t load64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w; /* little-endian hosts only, as the rest of fdod */
}

static size_t packed_count(const uint8_t *v, size_t n)
{
	size_t c = 0, k = 0;
	for (; k + 8 <= n; k += 8)
		/* The top bits, inverted, moved to each byte's bottom and
		 * summed into the top byte by one multiplication. */
		c += (size_t)((((~load64(v + k) & TOPBITS) >> 7) *
			       0x0101010101010101ull) >>
			      56);
	for (; k < n; k++)
		c += !(v[k] & 0x80);
	return c;
}

/* The value of the first len (1..8) bytes of w, 7 bits a byte. */
static uint64_t varint_bits(uint64_t w, unsigned len)
{
	uint64_t x = w & 0x7f7f7f7f7f7f7f7full;
	if (len < 8)
		x &= (1ull << (8 * len)) - 1;
	x = (x & 0x007f007f007f007full) | ((x & 0x7f007f007f007f00ull) >> 1);
	x = (x & 0x00003fff00003fffull) | ((x & 0x3fff00003fff0000ull) >> 2);
	x = (x & 0x000000000fffffffull) | ((x & 0x0fffffff00000000ull) >> 4);
	return x;
}

static int packed_decode(const uint8_t *v, size_t n, uint64_t *out,
			 size_t *count)
{
	size_t k = 0, c = *count;
	while (k < n) {
		if (n - k >= 8) {
			uint64_t w = load64(v + k);
			uint64_t ends = ~w & TOPBITS;
			if (ends) {
				unsigned len =
					(unsigned)__builtin_ctzll(ends) / 8 + 1;
				out[c++] = varint_bits(w, len);
				k += len;
				continue;
			}
		}
		/* Longer than 8 bytes, or near the end. */
		size_t j = varint_extent(v + k, n - k, 10);
		if (!j)
			return -1;
		out[c++] = pvarint(v + k, j);
		k += j;
	}
	*count = c;
	return 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/*
 * With BMI2, a value of up to 8 bytes is one parallel bit extract of the
 * word it starts (its low 7 bits a byte) instead of varint_bits' masks
 * and shifts, which were a third of the decoder's time on addresses. Not
 * on AMD's families 15h and 17h, where the instruction is microcoded and
 * slow. Values this loop does not take (longer than 8 bytes, or within 8
 * bytes of the end) go to packed_decode, with the rest of the field.
 */
__attribute__((target("bmi2"))) static int
packed_decode_bmi2(const uint8_t *v, size_t n, uint64_t *out, size_t *count)
{
	size_t k = 0, c = *count;
	/* 32 bytes at a time while 40 are left: where values end is one mask
	 * (bytes without their top bit), so the next value's start does not
	 * wait for the load and length of the one before (a chain of ~10
	 * cycles a value). A value of up to 8 bytes ending in the block is
	 * read from one load that stays within the 40. */
	while (n - k >= 40) {
		__m128i lo =
			_mm_loadu_si128((const __m128i *)(const void *)(v + k));
		__m128i hi = _mm_loadu_si128(
			(const __m128i *)(const void *)(v + k + 16));
		uint32_t ends = ~((uint32_t)_mm_movemask_epi8(lo) |
				  (uint32_t)_mm_movemask_epi8(hi) << 16);
		unsigned at = 0;
		while (ends) {
			unsigned e = (unsigned)__builtin_ctz(ends);
			unsigned len = e - at + 1;
			if (len > 8)
				break;
			out[c++] = _pext_u64(load64(v + k + at),
					     0x7f7f7f7f7f7f7f7full >>
						     (64 - 8 * len));
			at = e + 1;
			ends &= ends - 1;
		}
		k += at;
		if (ends || !at)
			break; /* a longer value: packed_decode from here */
	}
	*count = c;
	return packed_decode(v + k, n - k, out, count);
}

static int packed_fast(void)
{
	return __builtin_cpu_supports("bmi2") &&
	       !__builtin_cpu_is("amdfam15h") && !__builtin_cpu_is("amdfam17h");
}
#else
static int packed_fast(void)
{
	return 0;
}
#define packed_decode_bmi2 packed_decode
#endif

/* packed_decode, through packed_decode_bmi2 where that is fast. */
static int packed_values(const uint8_t *v, size_t n, uint64_t *out,
			 size_t *count)
{
	return packed_fast() ? packed_decode_bmi2(v, n, out, count)
			     : packed_decode(v, n, out, count);
}

#define AT(m, T, off) ((T *)((char *)(m) + (off)))

static int pdecode(struct wire_arena *a, const ProtobufCMessageDescriptor *d,
		   const uint8_t *p, size_t len, ProtobufCMessage **out)
{
	if (d->n_fields > PMSG_MAX_FIELDS)
		return -1; /* wire_decoder_matches_schema fails too */
	ProtobufCMessage *m = arena_alloc(a, d->sizeof_message);
	if (!m)
		return -2;
	d->message_init(m);
	/* Pass 1: the message is well formed; counts of repeated fields. */
	size_t counts[PMSG_MAX_FIELDS], nunknown = 0, at = 0;
	for (unsigned i = 0; i < d->n_fields; i++)
		counts[i] = 0;
	struct pfield_at f;
	while (at < len) {
		if (pfield_next(p, len, &at, &f))
			return -1;
		const ProtobufCFieldDescriptor *pf = pfield_of(d, f.tag);
		if (!pf) {
			nunknown++;
		} else if (pf->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t *c = &counts[pf - d->fields];
			if (pf->type == PROTOBUF_C_TYPE_UINT64 && f.wire == 2)
				*c += packed_count(f.val, f.vlen);
			else
				*c += 1;
		}
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *pf = &d->fields[i];
		if (pf->label != PROTOBUF_C_LABEL_REPEATED || !counts[i])
			continue;
		size_t elt = pf->type == PROTOBUF_C_TYPE_UINT64
				     ? sizeof(uint64_t)
				     : sizeof(void *);
		if (counts[i] > SIZE_MAX / elt)
			return -2;
		void *arr = arena_alloc(a, counts[i] * elt);
		if (!arr)
			return -2;
		*AT(m, void *, pf->offset) = arr;
	}
	if (nunknown) {
		if (nunknown > SIZE_MAX / sizeof *m->unknown_fields ||
		    !(m->unknown_fields = arena_alloc(
			      a, nunknown * sizeof *m->unknown_fields)))
			return -2;
	}
	/* Pass 2: the values, in stream order. */
	at = 0;
	while (at < len) {
		pfield_next(p, len, &at, &f);
		const ProtobufCFieldDescriptor *pf = pfield_of(d, f.tag);
		if (!pf) {
			ProtobufCMessageUnknownField *u =
				&m->unknown_fields[m->n_unknown_fields++];
			u->tag = f.tag;
			u->wire_type = (ProtobufCWireType)f.wire;
			u->len = f.rawlen;
			if (!(u->data = arena_alloc(a, f.rawlen)))
				return -2;
			memcpy(u->data, f.raw, f.rawlen);
			continue;
		}
		switch (pkind(pf)) {
		case K_U32:
			if (f.wire != 0)
				return -1;
			*AT(m, uint32_t, pf->offset) =
				(uint32_t)pvarint(f.val, f.vlen);
			break;
		case K_U64:
			if (f.wire != 0)
				return -1;
			*AT(m, uint64_t, pf->offset) = pvarint(f.val, f.vlen);
			break;
		case K_DOUBLE:
			if (f.wire != 1)
				return -1;
			memcpy(AT(m, double, pf->offset), f.val, 8);
			break;
		case K_STRING: {
			if (f.wire != 2)
				return -1;
			char *s = arena_alloc(a, f.vlen + 1);
			if (!s)
				return -2;
			memcpy(s, f.val, f.vlen);
			s[f.vlen] = 0;
			*AT(m, char *, pf->offset) = s;
			break;
		}
		case K_BYTES: {
			if (f.wire != 2)
				return -1;
			ProtobufCBinaryData *b =
				AT(m, ProtobufCBinaryData, pf->offset);
			b->len = f.vlen;
			b->data = NULL;
			if (f.vlen) {
				if (!(b->data = arena_alloc(a, f.vlen)))
					return -2;
				memcpy(b->data, f.val, f.vlen);
			}
			break;
		}
		case K_MSGS: {
			if (f.wire != 2)
				return -1;
			size_t *n = AT(m, size_t, pf->quantifier_offset);
			ProtobufCMessage **arr =
				*AT(m, ProtobufCMessage **, pf->offset);
			int rc = pdecode(a, pf->descriptor, f.val, f.vlen,
					 &arr[*n]);
			if (rc)
				return rc;
			(*n)++;
			break;
		}
		case K_U64S: {
			size_t *n = AT(m, size_t, pf->quantifier_offset);
			uint64_t *arr = *AT(m, uint64_t *, pf->offset);
			if (f.wire == 0)
				arr[(*n)++] = pvarint(f.val, f.vlen);
			else if (f.wire != 2 ||
				 packed_values(f.val, f.vlen, arr, n))
				return -1;
			break;
		}
		default: /* wire_decoder_matches_schema fails too */
			return -1;
		}
	}
	*out = m;
	return 0;
}

int wire_batch_peek(const uint8_t *buf, size_t len,
		    const struct wire_limits *limits, struct wire_batch_head *h)
{
	if (!limits)
		limits = &wire_limits_default;
	memset(h, 0, sizeof *h);
	if (len > limits->max_message_bytes)
		return FDO_ELIMIT;
	/* The top level only: no sub-message is looked into, nothing is
	 * copied or allocated. Singular fields: the last one wins, as both
	 * decoders have it. */
	size_t at = 0;
	struct pfield_at f;
	while (at < len) {
		if (pfield_next(buf, len, &at, &f))
			return FDO_EPARSE;
		if (f.wire != 2)
			continue;
		struct wire_str *to = f.tag == 2    ? &h->agent_id
				      : f.tag == 4  ? &h->host
				      : f.tag == 5  ? &h->binary
				      : f.tag == 16 ? &h->auth_token
						    : NULL;
		if (to) {
			to->p = (const char *)f.val;
			to->len = f.vlen;
		}
	}
	return FDO_OK;
}

/* Does a message of type d hold string fields, itself or below? */
static int desc_has_strings(const ProtobufCMessageDescriptor *d, int depth)
{
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type == PROTOBUF_C_TYPE_STRING)
			return 1;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 8 &&
		    desc_has_strings(f->descriptor, depth + 1))
			return 1;
	}
	return 0;
}

/*
 * has_nul_string: does a string field of the (well-formed: it decoded)
 * message p of type d hold a NUL byte? A C string would end there: the
 * rest of a binary name or label value would be cut off silently, so such
 * a batch is refused instead. Run after either decoder succeeded, so both
 * refuse the same inputs.
 */
static int has_nul_string(const ProtobufCMessageDescriptor *d, const uint8_t *p,
			  size_t len, int depth)
{
	size_t at = 0;
	struct pfield_at f;
	while (at < len) {
		if (pfield_next(p, len, &at, &f))
			return 0;
		const ProtobufCFieldDescriptor *pf = pfield_of(d, f.tag);
		if (!pf || f.wire != 2)
			continue;
		if (pf->type == PROTOBUF_C_TYPE_STRING &&
		    memchr(f.val, 0, f.vlen))
			return 1;
		if (pf->type == PROTOBUF_C_TYPE_MESSAGE && depth < 8 &&
		    desc_has_strings(pf->descriptor, 0) &&
		    has_nul_string(pf->descriptor, f.val, f.vlen, depth + 1))
			return 1;
	}
	return 0;
}

int wire_batch_decode_in(struct wire_arena *a, const uint8_t *buf, size_t len,
			 const struct wire_limits *limits,
			 Fdod__SampleBatch **out)
{
	if (!limits)
		limits = &wire_limits_default;
	if (len > limits->max_message_bytes)
		return FDO_ELIMIT;
	a->budget = (struct budget){.left = limits->max_decoded_bytes};
	static const uint8_t empty[1];
	ProtobufCMessage *m;
	int rc = pdecode(a, &fdod__sample_batch__descriptor, buf ? buf : empty,
			 len, &m);
	if (rc)
		return a->budget.over	 ? FDO_ELIMIT
		       : a->budget.nomem ? FDO_ENOMEM
					 : FDO_EPARSE;
	if (has_nul_string(&fdod__sample_batch__descriptor, buf, len, 0))
		return FDO_EINVAL; /* the arena takes m back at its reset */
	*out = (Fdod__SampleBatch *)m;
	return FDO_OK;
}

void wire_arena_reset(struct wire_arena *a)
{
	size_t kept = 0;
	struct block **pp = &a->blocks;
	while (*pp) {
		struct block *b = *pp;
		if (kept + b->size <= ARENA_KEEP) {
			kept += b->size;
			b->used = 0;
			pp = &b->next;
		} else {
			*pp = b->next;
			free(b);
		}
	}
}

void wire_arena_free(struct wire_arena *a)
{
	if (!a)
		return;
	while (a->blocks) {
		struct block *b = a->blocks;
		a->blocks = b->next;
		free(b);
	}
	free(a);
}

/* ------------------------------------------------------------- batch -- */

int wire_batch_encode(const Fdod__SampleBatch *batch,
		      const struct wire_limits *limits, uint8_t **out,
		      size_t *len)
{
	if (!limits)
		limits = &wire_limits_default;
	return encode(&batch->base, limits->max_message_bytes, out, len);
}

int wire_batch_decode(const uint8_t *buf, size_t len,
		      const struct wire_limits *limits, Fdod__SampleBatch **out)
{
	if (!limits)
		limits = &wire_limits_default;
	Fdod__SampleBatch *b = NULL;
	int rc = wire_decode_bounded(&fdod__sample_batch__descriptor, buf, len,
				     limits->max_message_bytes,
				     limits->max_decoded_bytes,
				     (ProtobufCMessage **)&b);
	if (rc)
		return rc;
	if (has_nul_string(&fdod__sample_batch__descriptor, buf, len, 0)) {
		fdod__sample_batch__free_unpacked(b, NULL);
		return FDO_EINVAL;
	}
	*out = b;
	return FDO_OK;
}

void wire_batch_free(Fdod__SampleBatch *batch)
{
	if (batch)
		fdod__sample_batch__free_unpacked(batch, NULL);
}

int wire_ack_encode(const Fdod__Ack *ack, uint8_t **out, size_t *len)
{
	return encode(&ack->base, WIRE_ACK_MAX_BYTES, out, len);
}

int wire_ack_decode(const uint8_t *buf, size_t len, size_t max_bytes,
		    Fdod__Ack **out)
{
	if (max_bytes == 0)
		max_bytes = WIRE_ACK_MAX_BYTES;
	/* An Ack is a handful of scalars and one string: 4x covers it. */
	size_t alloc = max_bytes > (SIZE_MAX - 4096) / 4 ? SIZE_MAX
							 : 4 * max_bytes + 4096;
	return wire_decode_bounded(&fdod__ack__descriptor, buf, len, max_bytes,
				   alloc, (ProtobufCMessage **)out);
}

void wire_ack_free(Fdod__Ack *ack)
{
	if (ack)
		fdod__ack__free_unpacked(ack, NULL);
}
