/* common/codec.c — hex build-ids, CRC-32C, monotonic time. */
#include <pthread.h>
#include <time.h>

#include "common/common.h"

void fdo_hex_encode(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int fdo_build_id_parse(const char *text, uint8_t out[FDO_BUILD_ID_MAX],
		       size_t *len)
{
	size_t n = 0;
	while (text[n] && n <= 2 * FDO_BUILD_ID_MAX)
		n++;
	if (n == 0 || n % 2 || n > 2 * FDO_BUILD_ID_MAX)
		return FDO_EBAD_BUILD_ID;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
		if (hi < 0 || lo < 0)
			return FDO_EBAD_BUILD_ID;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return FDO_OK;
}

/* Table-driven CRC-32C (polynomial 0x82f63b78, reflected). */
static uint32_t crc_table[256];
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

uint32_t fdo_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint64_t fdo_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
