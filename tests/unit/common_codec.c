/* Tests for common/: errors, hex build-ids, big-endian codecs, CRC-32C. */
#include "common/common.h"
#include "tests/unit/test.h"

TEST(error_messages_are_named)
{
	CHECK_EQ_STR(fdo_errname(FDO_ENOT_ELF), "NOT_ELF");
	CHECK_EQ_STR(fdo_strerror(FDO_OK), "success");
	CHECK_EQ_STR(fdo_strerror(9999), "unknown error");
	CHECK_EQ_STR(fdo_strerror(-1), "unknown error");
}

TEST(build_id_round_trip)
{
	uint8_t b[FDO_BUILD_ID_MAX];
	size_t n = 0;
	REQUIRE(fdo_build_id_parse("00ff7a", b, &n) == FDO_OK);
	CHECK_EQ_INT(n, 3);
	char text[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(b, n, text);
	CHECK_EQ_STR(text, "00ff7a");
}

TEST(build_id_rejects_everything_else)
{
	uint8_t b[FDO_BUILD_ID_MAX];
	size_t n;
	const char *bad[] = {"",   "a",	  "ABCD", "../x",
			     "0g", "abc", "00 1", "/etc/passwd"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(fdo_build_id_parse(bad[i], b, &n) == FDO_EBAD_BUILD_ID);
	char longid[2 * FDO_BUILD_ID_MAX + 3];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	CHECK(fdo_build_id_parse(longid, b, &n) == FDO_EBAD_BUILD_ID);
	longid[2 * FDO_BUILD_ID_MAX] = 0;
	CHECK(fdo_build_id_parse(longid, b, &n) == FDO_OK);
	CHECK_EQ_INT(n, FDO_BUILD_ID_MAX);
}

TEST(big_endian_orders_numerically)
{
	uint8_t a[8], b[8];
	fdo_put_be64(a, 0x00000000000000ffull);
	fdo_put_be64(b, 0x0000000000000100ull);
	CHECK(memcmp(a, b, 8) < 0);
	CHECK(fdo_get_be64(b) == 0x100);
	fdo_put_be32(a, 0xdeadbeef);
	CHECK(fdo_get_be32(a) == 0xdeadbeef);
}

TEST(crc32c_known_vector)
{
	/* RFC 3720 B.4: CRC-32C of "123456789" is 0xe3069283. */
	CHECK(fdo_crc32c(0, "123456789", 9) == 0xe3069283u);
	CHECK(fdo_crc32c(fdo_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);
	CHECK(fdo_crc32c_portable(0, "123456789", 9) == 0xe3069283u);
	/* Hardware and table agree on every length and alignment. */
	unsigned char buf[300];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof buf; len += 13)
			CHECK(fdo_crc32c(5, buf + off, len) ==
			      fdo_crc32c_portable(5, buf + off, len));
}

#include "common/buf.h"

TEST(buf_grows_and_escapes_json)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		fdo_buf_printf(&b, "%d,", i);
	CHECK(b.len > 3000);
	CHECK(!b.oom);
	fdo_buf_reset(&b);
	fdo_buf_json_str(&b, "a\"b\\c\n\x01");
	CHECK_EQ_STR(fdo_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\"");
	size_t n;
	char *p = fdo_buf_steal(&b, &n);
	CHECK_EQ_INT(n, strlen(p));
	free(p);
	CHECK(b.data == NULL);
	fdo_buf_fini(&b);
}

TEST(sha256_known_vectors)
{
	uint8_t d[32];
	char hex[65];
	fdo_sha256("", 0, d);
	fdo_hex_encode(d, 32, hex);
	CHECK_EQ_STR(
		hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	fdo_sha256("abc", 3, d);
	fdo_hex_encode(d, 32, hex);
	CHECK_EQ_STR(
		hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	fdo_sha256(m, strlen(m), d);
	fdo_hex_encode(d, 32, hex);
	CHECK_EQ_STR(
		hex,
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* A million 'a's: many blocks. */
	static char big[1000000];
	memset(big, 'a', sizeof big);
	fdo_sha256(big, sizeof big, d);
	fdo_hex_encode(d, 32, hex);
	CHECK_EQ_STR(
		hex,
		"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
