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

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	if (size > b->left) {
		b->over = 1;
		return NULL;
	}
	void *p = malloc(size ? size : 1);
	if (!p) {
		b->nomem = 1;
		return NULL;
	}
	/* Frees are not credited back: the budget bounds the peak from above.
	 */
	b->left -= size;
	return p;
}

static void budget_free(void *data, void *p)
{
	free(p);
}

static int decode(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                  size_t len, size_t max_bytes, size_t max_alloc,
                  ProtobufCMessage **out)
{
	if (len > max_bytes)
		return FDO_ELIMIT;
	struct budget b = {.left = max_alloc};
	ProtobufCAllocator a = {
	    .alloc = budget_alloc, .free = budget_free, .allocator_data = &b};
	static const uint8_t empty[1];
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(desc, &a, len, buf ? buf : empty);
	if (!m)
		return b.over ? FDO_ELIMIT : b.nomem ? FDO_ENOMEM : FDO_EPARSE;
	*out = m;
	return FDO_OK;
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
	return decode(&fdod__sample_batch__descriptor, buf, len,
	              limits->max_message_bytes, limits->max_decoded_bytes,
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
	return decode(&fdod__ack__descriptor, buf, len, max_bytes, alloc,
	              (ProtobufCMessage **)out);
}

void wire_ack_free(Fdod__Ack *ack)
{
	if (ack)
		fdod__ack__free_unpacked(ack, NULL);
}
