/*
 * symbolizer/crc.c — CRC-32C of index files at memory speed. Bit for bit
 * the checksum of common's fdo_crc32c (which it falls back to), computed
 * with the SSE4.2 crc32 instruction when the CPU has it: an index of tens
 * of MiB is checked on every open, and the table-driven loop would cost
 * more than the rest of the open.
 */
#include "symbolizer/sym_int.h"

#if defined(__x86_64__)
#include <string.h>

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
							 const uint8_t *p,
							 size_t len)
{
	uint64_t c = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t sym_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc_hw(crc, buf, len);
#endif
	return fdo_crc32c(crc, buf, len);
}
