/* Tests for storage/elfcheck.c: classification of real executables, debug
 * files and shared objects built by the test; refusal of non-ELF,
 * truncated, header-damaged and build-id-less files; hand-made 32-bit,
 * big-endian and sectionless files; notes only in sections or only in
 * segments, and agreement with the agent's reader (common/elfnote.c); and
 * a bit-flip sweep (no crash, no out-of-bounds read under ASan). */
#include <elf.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "common/elfnote.h"
#include "storage/storage.h"
#include "tests/unit/test.h"
#include "tests/unit/storage_fixtures.h"

static int inspect_path(const char *path, struct store_elf_info *info,
			char *why, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int rc = store_elf_inspect(fd, info, why, cap);
	close(fd);
	return rc;
}

static int inspect_bytes(const void *b, size_t n, struct store_elf_info *info,
			 char *why, size_t cap)
{
	const char *p = fx_write("bytes.tmp", b, n);
	if (!p)
		return -1;
	return inspect_path(p, info, why, cap);
}

TEST(pie_executable_with_dwarf)
{
	const char *p = fx("exe");
	REQUIRE(p);
	struct store_elf_info i;
	char why[256];
	REQUIRE(inspect_path(p, &i, why, sizeof why) == FDO_OK);
	CHECK_EQ_INT(i.build_id_len, 20);
	CHECK_EQ_INT(i.elf_class, 64);
	CHECK_EQ_INT(i.type, ET_DYN);
	CHECK(i.flags & STORE_ELF_PIE);
	CHECK(i.flags & STORE_ELF_DWARF);
	CHECK(i.flags & STORE_ELF_SYMTAB);
	CHECK(!(i.flags & (STORE_ELF_SHARED | STORE_ELF_DEBUG_ONLY)));
	CHECK_EQ_STR(store_elf_kind_name(&i), "pie");

	/* The build-id agrees with binutils. */
	char cmd[800], hex[2 * FDO_BUILD_ID_MAX + 1], want[200] = {0};
	snprintf(cmd, sizeof cmd,
		 "readelf -n '%s' | sed -n 's/.*Build ID: //p'", p);
	FILE *f = popen(cmd, "r");
	REQUIRE(f);
	if (!fgets(want, sizeof want, f))
		want[0] = 0;
	pclose(f);
	want[strcspn(want, "\n")] = 0;
	fdo_hex_encode(i.build_id, i.build_id_len, hex);
	CHECK_EQ_STR(hex, want);
}

TEST(non_pie_executable)
{
	const char *p = fx("exe_nopie");
	REQUIRE(p);
	struct store_elf_info i;
	REQUIRE(inspect_path(p, &i, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(i.type, ET_EXEC);
	CHECK(i.flags & STORE_ELF_DWARF);
	CHECK(!(i.flags & (STORE_ELF_PIE | STORE_ELF_SHARED)));
	CHECK_EQ_STR(store_elf_kind_name(&i), "executable");
}

TEST(stripped_and_debug_file_share_the_build_id)
{
	struct store_elf_info e, s, d, n;
	REQUIRE(fx("exe"));
	REQUIRE(inspect_path(fx("exe"), &e, NULL, 0) == FDO_OK);
	REQUIRE(inspect_path(fx("stripped"), &s, NULL, 0) == FDO_OK);
	REQUIRE(inspect_path(fx("debug"), &d, NULL, 0) == FDO_OK);
	REQUIRE(inspect_path(fx("dbg_nodw"), &n, NULL, 0) == FDO_OK);
	CHECK(!memcmp(e.build_id, s.build_id, 20));
	CHECK(!memcmp(e.build_id, d.build_id, 20));
	CHECK(!memcmp(e.build_id, n.build_id, 20));
	CHECK(!(s.flags & STORE_ELF_DWARF));
	CHECK(!(s.flags & STORE_ELF_DEBUG_ONLY));
	CHECK(d.flags & STORE_ELF_DWARF);
	CHECK(d.flags & STORE_ELF_DEBUG_ONLY);
	CHECK_EQ_STR(store_elf_kind_name(&d), "debug-file");
	CHECK(!(n.flags & STORE_ELF_DWARF));
	CHECK(n.flags & STORE_ELF_DEBUG_ONLY);
}

TEST(shared_object)
{
	struct store_elf_info i;
	REQUIRE(fx("lib.so"));
	REQUIRE(inspect_path(fx("lib.so"), &i, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(i.type, ET_DYN);
	CHECK(i.flags & STORE_ELF_SHARED);
	CHECK(!(i.flags & STORE_ELF_PIE));
	CHECK(i.flags & STORE_ELF_DWARF);
	CHECK_EQ_STR(store_elf_kind_name(&i), "shared-object");
}

TEST(compressed_dwarf_counts_as_dwarf)
{
	struct store_elf_info i;
	REQUIRE(fx("gz"));
	REQUIRE(inspect_path(fx("gz"), &i, NULL, 0) == FDO_OK);
	CHECK(i.flags & STORE_ELF_DWARF);
}

TEST(no_build_id_is_refused)
{
	struct store_elf_info i;
	char why[256];
	REQUIRE(fx("nobid"));
	CHECK_EQ_INT(inspect_path(fx("nobid"), &i, why, sizeof why),
		     FDO_ENO_BUILD_ID);
	CHECK(strstr(why, "build-id") != NULL);
}

TEST(empty_random_and_text_are_not_elf)
{
	struct store_elf_info i;
	char why[256];
	CHECK_EQ_INT(inspect_bytes("", 0, &i, why, sizeof why), FDO_ENOT_ELF);
	CHECK_EQ_STR(why, "empty file");
	uint8_t rnd[4096];
	unsigned seed = 42;
	for (size_t k = 0; k < sizeof rnd; k++)
		rnd[k] = (uint8_t)rand_r(&seed);
	rnd[0] = 0x42;
	CHECK_EQ_INT(inspect_bytes(rnd, sizeof rnd, &i, why, sizeof why),
		     FDO_ENOT_ELF);
	CHECK_EQ_INT(inspect_bytes("#!/bin/sh\n", 10, &i, NULL, 0),
		     FDO_ENOT_ELF);
	CHECK_EQ_INT(inspect_bytes("\177EL", 3, &i, NULL, 0), FDO_ETRUNCATED);
	CHECK_EQ_INT(inspect_bytes("\177ELX", 4, &i, NULL, 0), FDO_ENOT_ELF);
	/* A directory or pipe is not a regular file. */
	int fd = open(fx_dir(), O_RDONLY);
	REQUIRE(fd >= 0);
	CHECK_EQ_INT(store_elf_inspect(fd, &i, NULL, 0), FDO_EINVAL);
	close(fd);
}

TEST(truncated_elf_is_refused_at_every_cut)
{
	size_t len;
	REQUIRE(fx("exe"));
	uint8_t *b = fx_read(fx("exe"), &len);
	REQUIRE(b && len > 4096);
	size_t cuts[] = {1,   3,    4,	  16,	   40,	    63,	      64,
			 100, 1000, 4096, len / 3, len / 2, len - 64, len - 1};
	for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
		struct store_elf_info i;
		char why[256];
		int rc = inspect_bytes(b, cuts[k], &i, why, sizeof why);
		if (rc != FDO_ETRUNCATED)
			fprintf(stderr, "  cut at %zu: %s (%s)\n", cuts[k],
				fdo_errname(rc), why);
		CHECK_EQ_INT(rc, FDO_ETRUNCATED);
	}
	free(b);
	/* The debug file too (its NOBITS sections have no bytes). */
	b = fx_read(fx("debug"), &len);
	REQUIRE(b);
	struct store_elf_info i;
	CHECK_EQ_INT(inspect_bytes(b, len - 1, &i, NULL, 0), FDO_ETRUNCATED);
	CHECK_EQ_INT(inspect_bytes(b, len / 2, &i, NULL, 0), FDO_ETRUNCATED);
	free(b);
}

TEST(damaged_headers_are_refused)
{
	size_t len;
	REQUIRE(fx("exe"));
	uint8_t *orig = fx_read(fx("exe"), &len);
	REQUIRE(orig);
	uint8_t *b = malloc(len);
	REQUIRE(b);
	struct store_elf_info i;
	char why[256];
	struct {
		size_t off;
		uint8_t val;
		int want;
	} cases[] = {
		{0, 0x7e, FDO_ENOT_ELF},
		{EI_CLASS, 0, FDO_ENOT_ELF},
		{EI_CLASS, 3, FDO_ENOT_ELF},
		{EI_DATA, 0, FDO_ENOT_ELF},
		{EI_VERSION, 2, FDO_ENOT_ELF},
		{offsetof(Elf64_Ehdr, e_type), ET_REL, FDO_EUNSUPPORTED},
		{offsetof(Elf64_Ehdr, e_type), ET_CORE, FDO_EUNSUPPORTED},
		{offsetof(Elf64_Ehdr, e_version), 7, FDO_EPARSE},
		{offsetof(Elf64_Ehdr, e_shentsize), 63, FDO_EPARSE},
		{offsetof(Elf64_Ehdr, e_phentsize), 55, FDO_EPARSE},
		{offsetof(Elf64_Ehdr, e_shoff) + 5, 0x40, FDO_ETRUNCATED},
		{offsetof(Elf64_Ehdr, e_phoff) + 6, 0x01, FDO_ETRUNCATED},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memcpy(b, orig, len);
		b[cases[k].off] = cases[k].val;
		int rc = inspect_bytes(b, len, &i, why, sizeof why);
		if (rc != cases[k].want)
			fprintf(stderr, "  byte %zu = %u: %s (%s)\n",
				cases[k].off, cases[k].val, fdo_errname(rc),
				why);
		CHECK_EQ_INT(rc, cases[k].want);
		CHECK(why[0] != 0);
	}
	free(b);
	free(orig);
}

TEST(bit_flips_never_crash)
{
	size_t len;
	REQUIRE(fx("exe"));
	uint8_t *orig = fx_read(fx("exe"), &len);
	REQUIRE(orig);
	uint8_t *b = malloc(len);
	REQUIRE(b);
	/* Every bit of the ELF header and the program headers. */
	int ok = 0, refused = 0;
	for (size_t bit = 0; bit < 8 * (64 + 13 * 56); bit++) {
		memcpy(b, orig, len);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct store_elf_info i;
		int rc = inspect_bytes(b, len, &i, NULL, 0);
		REQUIRE(rc >= 0);
		if (rc == FDO_OK) {
			ok++;
			CHECK(i.build_id_len >= 1 && i.build_id_len <= 64);
		} else {
			refused++;
		}
	}
	/* Random damage to the section header table and the notes. */
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)orig;
	unsigned seed = 7;
	for (int round = 0; round < 400; round++) {
		memcpy(b, orig, len);
		for (int k = 0; k < 4; k++) {
			size_t r = (size_t)rand_r(&seed);
			size_t at = round % 2 ? eh->e_shoff +
							r % (len - eh->e_shoff)
					      : 0x300 + r % 0x100;
			b[at] = (uint8_t)rand_r(&seed);
		}
		struct store_elf_info i;
		REQUIRE(inspect_bytes(b, len, &i, NULL, 0) >= 0);
	}
	CHECK(ok > 0 && refused > 0);
	free(b);
	free(orig);
}

/* craft builds a minimal sectionless ELF: PT_LOAD over the whole file and
 * a PT_NOTE holding an 8-byte GNU build-id 01..08. */
static size_t craft(int is64, int be, uint8_t *buf, uint32_t descsz)
{
	memset(buf, 0, 512);
#define P16(off, v)                                                            \
	do {                                                                   \
		uint16_t v_ = (v);                                             \
		buf[(off) + !be] = (uint8_t)(v_ >> 8);                         \
		buf[(off) + be] = (uint8_t)v_;                                 \
	} while (0)
#define P32(off, v)                                                            \
	do {                                                                   \
		uint32_t w_ = (v);                                             \
		for (int j_ = 0; j_ < 4; j_++)                                 \
			buf[(off) + (be ? 3 - j_ : j_)] =                      \
				(uint8_t)(w_ >> (8 * j_));                     \
	} while (0)
#define PW(off, v)                                                             \
	do {                                                                   \
		uint64_t x_ = (v);                                             \
		int n_ = is64 ? 8 : 4;                                         \
		for (int j_ = 0; j_ < n_; j_++)                                \
			buf[(off) + (be ? n_ - 1 - j_ : j_)] =                 \
				(uint8_t)(x_ >> (8 * j_));                     \
	} while (0)
	size_t eh = is64 ? 64 : 52, ph = is64 ? 56 : 32;
	size_t note = eh + 2 * ph, total = note + 12 + 4 + ((descsz + 3) & ~3u);
	memcpy(buf, ELFMAG, 4);
	buf[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	buf[EI_DATA] = be ? ELFDATA2MSB : ELFDATA2LSB;
	buf[EI_VERSION] = EV_CURRENT;
	P16(16, ET_EXEC);
	P16(18, is64 ? EM_AARCH64 : EM_PPC);
	P32(20, EV_CURRENT);
	PW(24, 0x1000);			     /* e_entry */
	PW(is64 ? 32 : 28, eh);		     /* e_phoff */
	PW(is64 ? 40 : 32, 0);		     /* e_shoff */
	P16(is64 ? 52 : 40, (uint16_t)eh);   /* e_ehsize */
	P16(is64 ? 54 : 42, (uint16_t)ph);   /* e_phentsize */
	P16(is64 ? 56 : 44, 2);		     /* e_phnum */
	P16(is64 ? 58 : 46, is64 ? 64 : 40); /* e_shentsize */
	for (int k = 0; k < 2; k++) {
		size_t p = eh + k * ph;
		uint32_t type = k ? PT_NOTE : PT_LOAD;
		uint64_t off = k ? note : 0, sz = k ? total - note : total;
		P32(p, type);
		if (is64) {
			P32(p + 4, PF_R | PF_X);
			PW(p + 8, off);
			PW(p + 16, 0x400000 + off);
			PW(p + 24, 0x400000 + off);
			PW(p + 32, sz);
			PW(p + 40, sz);
			PW(p + 48, k ? 4 : 0x1000);
		} else {
			PW(p + 4, off);
			PW(p + 8, 0x400000 + off);
			PW(p + 12, 0x400000 + off);
			PW(p + 16, sz);
			PW(p + 20, sz);
			P32(p + 24, PF_R | PF_X);
			PW(p + 28, k ? 4 : 0x1000);
		}
	}
	P32(note, 4);
	P32(note + 4, descsz);
	P32(note + 8, NT_GNU_BUILD_ID);
	memcpy(buf + note + 12, "GNU", 4);
	for (uint32_t k = 0; k < descsz && note + 16 + k < 512; k++)
		buf[note + 16 + k] = (uint8_t)(k + 1);
	return total;
}

TEST(handmade_32_64_little_big_endian)
{
	for (int is64 = 0; is64 <= 1; is64++)
		for (int be = 0; be <= 1; be++) {
			uint8_t buf[512];
			size_t n = craft(is64, be, buf, 8);
			struct store_elf_info i;
			char why[256];
			int rc = inspect_bytes(buf, n, &i, why, sizeof why);
			if (rc)
				fprintf(stderr, "  class%d be%d: %s\n",
					is64 ? 64 : 32, be, why);
			REQUIRE(rc == FDO_OK);
			CHECK_EQ_INT(i.elf_class, is64 ? 64 : 32);
			CHECK_EQ_INT(i.big_endian, be);
			CHECK_EQ_INT(i.type, ET_EXEC);
			CHECK_EQ_INT(i.build_id_len, 8);
			CHECK(i.build_id[0] == 1 && i.build_id[7] == 8);
			CHECK(!(i.flags & STORE_ELF_DEBUG_ONLY));
			/* Cut inside the note: truncated. */
			CHECK_EQ_INT(inspect_bytes(buf, n - 2, &i, NULL, 0),
				     FDO_ETRUNCATED);
		}
}

TEST(build_id_length_limits)
{
	uint8_t buf[512];
	struct store_elf_info i;
	size_t n = craft(1, 0, buf, 64);
	CHECK_EQ_INT(inspect_bytes(buf, n, &i, NULL, 0), FDO_OK);
	CHECK_EQ_INT(i.build_id_len, 64);
	n = craft(1, 0, buf, 65);
	CHECK_EQ_INT(inspect_bytes(buf, n, &i, NULL, 0), FDO_EBAD_BUILD_ID);
	n = craft(1, 0, buf, 0);
	CHECK_EQ_INT(inspect_bytes(buf, n, &i, NULL, 0), FDO_EBAD_BUILD_ID);
	n = craft(1, 1, buf, 1);
	CHECK_EQ_INT(inspect_bytes(buf, n, &i, NULL, 0), FDO_OK);
	CHECK_EQ_INT(i.build_id_len, 1);
}

/* Low finding of issue 21: in a note section aligned to 8, the descriptor
 * starts at align8(12 + namesz), not 12 + align8(namesz): a build-id read
 * 4 bytes late would store the file under a wrong id. */
TEST(note_8_byte_aligned_build_id)
{
	uint8_t buf[512];
	size_t n = craft(1, 0, buf, 20);
	size_t note_ph = 64 + 56;
	buf[note_ph + 48] = 8; /* p_align of the PT_NOTE */
	struct store_elf_info i;
	char why[256];
	REQUIRE(inspect_bytes(buf, n, &i, why, sizeof why) == FDO_OK);
	CHECK_EQ_INT(i.build_id_len, 20);
	CHECK(i.build_id[0] == 1 && i.build_id[19] == 20);
}

/* The agent's reader (PT_NOTE segments only, common/elfnote.c) and the
 * upload's check agree on every real fixture that has a build-id. */
#define agent_read fdo_elf_build_id_path

TEST(agent_reader_agrees_on_real_files)
{
	const char *names[] = {"exe",	 "exe_nopie", "stripped",
			       "lib.so", "gz",	      "real"};
	for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
		const char *p = fx(names[k]);
		if (!p && !strcmp(names[k], "gz"))
			continue; /* -gz not supported by this toolchain */
		REQUIRE(p);
		struct store_elf_info i;
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len = 0;
		REQUIRE(inspect_path(p, &i, NULL, 0) == FDO_OK);
		CHECK_EQ_INT(agent_read(p, id, &len), FDO_OK);
		CHECK_EQ_INT(len, i.build_id_len);
		CHECK(!memcmp(id, i.build_id, len));
	}
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	REQUIRE(fx("nobid"));
	CHECK_EQ_INT(agent_read(fx("nobid"), id, &len), FDO_ENO_BUILD_ID);
}

/* A build-id note only in a SHT_NOTE section (no PT_NOTE): an upload finds
 * it (a debug file's notes are read from its sections), the agent, which
 * reads what the loader maps, does not. */
TEST(sht_note_only_vs_pt_note_only)
{
	uint8_t buf[1024];
	size_t n = craft(1, 0, buf, 20);
	size_t note = 64 + 2 * 56, shoff = (n + 7) & ~(size_t)7;
	/* PT_NOTE becomes PT_NULL; sections: null, then the note. */
	buf[64 + 56] = PT_NULL;
	memset(buf + shoff, 0, 2 * sizeof(Elf64_Shdr));
	Elf64_Shdr sh = {.sh_type = SHT_NOTE,
			 .sh_flags = SHF_ALLOC,
			 .sh_offset = note,
			 .sh_size = n - note,
			 .sh_addralign = 4};
	memcpy(buf + shoff + sizeof sh, &sh, sizeof sh);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	eh->e_shoff = shoff;
	eh->e_shnum = 2;
	size_t total = shoff + 2 * sizeof sh;
	struct store_elf_info i;
	char why[256];
	REQUIRE(inspect_bytes(buf, total, &i, why, sizeof why) == FDO_OK);
	CHECK_EQ_INT(i.build_id_len, 20);
	CHECK(i.build_id[0] == 1 && i.build_id[19] == 20);
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	const char *p = fx_write("shtnote.tmp", buf, total);
	REQUIRE(p);
	CHECK_EQ_INT(agent_read(p, id, &len), FDO_ENO_BUILD_ID);
	/* PT_NOTE only (no sections): both find it. */
	n = craft(0, 1, buf, 20);
	REQUIRE(inspect_bytes(buf, n, &i, why, sizeof why) == FDO_OK);
	p = fx_write("ptnote.tmp", buf, n);
	REQUIRE(p);
	CHECK_EQ_INT(agent_read(p, id, &len), FDO_OK);
	CHECK(len == 20 && !memcmp(id, i.build_id, 20));
}

/* A malformed note (huge namesz or descsz, cut) ends the walk quietly: the
 * file has no build-id, as if the note were not there; the agent calls it
 * truncated. */
TEST(malformed_notes_mean_no_build_id)
{
	uint32_t huge[] = {0xffffffffu, 0x80000000u, 200};
	for (int field = 0; field < 2; field++)
		for (size_t k = 0; k < sizeof huge / sizeof *huge; k++) {
			uint8_t buf[512];
			size_t n = craft(1, 0, buf, 20);
			size_t note = 64 + 2 * 56;
			memcpy(buf + note + 4 * field, &huge[k], 4);
			struct store_elf_info i;
			char why[256];
			CHECK_EQ_INT(inspect_bytes(buf, n, &i, why, sizeof why),
				     FDO_ENO_BUILD_ID);
			uint8_t id[FDO_BUILD_ID_MAX];
			size_t len;
			const char *p = fx_write("bad.tmp", buf, n);
			REQUIRE(p);
			CHECK_EQ_INT(agent_read(p, id, &len), FDO_ETRUNCATED);
		}
}

/* Finding 3 of issue 21: what compressed sections claim once inflated is
 * read from their headers, both forms, before anything is inflated. */
TEST(compressed_sections_claim_is_read_from_headers)
{
	struct store_elf_info i;
	REQUIRE(fx("gz") && fx("gnuz"));
	REQUIRE(inspect_path(fx("exe"), &i, NULL, 0) == FDO_OK);
	CHECK_EQ_INT(i.inflated, 0);
	REQUIRE(inspect_path(fx("gnuz"), &i, NULL, 0) == FDO_OK);
	CHECK(i.inflated > 0 && i.inflated < (1u << 20));
	const char *bomb = fx_bomb(fx("gnuz"), "gnu-bomb", 1ull << 30);
	REQUIRE(bomb);
	REQUIRE(inspect_path(bomb, &i, NULL, 0) == FDO_OK);
	CHECK(i.inflated >= (1ull << 30));
	REQUIRE(inspect_path(fx("gz"), &i, NULL, 0) == FDO_OK);
	if (i.inflated) { /* the compiler could compress */
		bomb = fx_bomb(fx("gz"), "bomb", 1ull << 30);
		REQUIRE(bomb);
		REQUIRE(inspect_path(bomb, &i, NULL, 0) == FDO_OK);
		CHECK(i.inflated >= (1ull << 30));
	}
}

/* Finding 2 of issue 21: which files are the same for a slot. */
TEST(same_slot_content)
{
	REQUIRE(fx("exe") && fx("real") && fx("fake"));
	struct {
		const char *a, *b;
		unsigned kind;
		int same;
	} cases[] = {
		{"exe", "exe", STORE_SYM_EXECUTABLE, 1},
		{"exe", "stripped", STORE_SYM_EXECUTABLE, 1}, /* strip -g */
		{"exe", "debug", STORE_SYM_DEBUGINFO, 1}, /* only-keep-debug */
		{"real", "fake", STORE_SYM_EXECUTABLE, 0},
		{"real", "fake", STORE_SYM_DEBUGINFO, 0},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		int fa = open(fx(cases[k].a), O_RDONLY);
		int fb = open(fx(cases[k].b), O_RDONLY);
		REQUIRE(fa >= 0 && fb >= 0);
		int same = -1;
		CHECK_EQ_INT(store_elf_same_slot(fa, fb, cases[k].kind, &same),
			     FDO_OK);
		if (same != cases[k].same)
			fprintf(stderr, "  %s vs %s\n", cases[k].a, cases[k].b);
		CHECK_EQ_INT(same, cases[k].same);
		close(fa);
		close(fb);
	}
}
