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

#include "schemas/schemas.h"

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
		return b->over ? FDO_ELIMIT : b->nomem ? FDO_ENOMEM : FDO_EPARSE;
	*out = m;
	return FDO_OK;
}

/* decode with malloc underneath: the result is freed with free_unpacked. */
static int decode_malloc(const ProtobufCMessageDescriptor *desc,
                         const uint8_t *buf, size_t len, size_t max_bytes,
                         size_t max_alloc, ProtobufCMessage **out)
{
	struct budget b;
	ProtobufCAllocator al = {
	    .alloc = budget_alloc, .free = budget_free, .allocator_data = &b};
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
#define ARENA_KEEP (4u << 20)    /* blocks kept by a reset */
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

/* protobuf-c frees its scratch and, on error, what it built: all of it
 * goes back with the next reset. */
static void arena_nofree(void *data, void *p)
{
}

int wire_batch_decode_in(struct wire_arena *a, const uint8_t *buf,
                         size_t len, const struct wire_limits *limits,
                         Fdod__SampleBatch **out)
{
	if (!limits)
		limits = &wire_limits_default;
	ProtobufCAllocator al = {
	    .alloc = arena_alloc, .free = arena_nofree, .allocator_data = a};
	return decode(&fdod__sample_batch__descriptor, buf, len,
	              limits->max_message_bytes, limits->max_decoded_bytes, &al,
	              &a->budget, (ProtobufCMessage **)out);
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
	return decode_malloc(&fdod__sample_batch__descriptor, buf, len,
	                     limits->max_message_bytes,
	                     limits->max_decoded_bytes,
	                     (ProtobufCMessage **)out);
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
	size_t alloc =
	    max_bytes > (SIZE_MAX - 4096) / 4 ? SIZE_MAX : 4 * max_bytes + 4096;
	return decode_malloc(&fdod__ack__descriptor, buf, len, max_bytes, alloc,
	                     (ProtobufCMessage **)out);
}

void wire_ack_free(Fdod__Ack *ack)
{
	if (ack)
		fdod__ack__free_unpacked(ack, NULL);
}
