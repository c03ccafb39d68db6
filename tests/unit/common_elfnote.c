/*
 * Tests for common/elfnote.c, the GNU build-id note reader uploads and the
 * agent share: the note walk over bytes (4- and 8-byte alignment, odd name
 * and descriptor sizes, truncation at every cut, huge namesz/descsz,
 * build-id length limits) and the PT_NOTE reader over hand-made ELF32 and
 * ELF64 files of either byte order (cuts, header limits, segments past the
 * end, several note segments). Buffers are allocated to their exact size,
 * so ASan catches a read past the end.
 */
#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include "common/elfnote.h"
#include "tests/unit/test.h"

static void put(uint8_t *p, uint64_t v, unsigned bytes, int be)
{
	for (unsigned i = 0; i < bytes; i++)
		p[be ? bytes - 1 - i : i] = (uint8_t)(v >> (8 * i));
}

/* A note area being built: notes laid out for alignment a. */
struct notes {
	uint8_t b[1024];
	size_t n;
	int be;
	uint64_t a;
};

static uint64_t up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* note_add appends a note named name (namesz = strlen + 1) with desclen
 * bytes of descriptor 1, 2, 3...; returns the descriptor's offset. */
static size_t note_add(struct notes *s, const char *name, uint32_t type,
		       size_t desclen)
{
	size_t at = s->n, namesz = strlen(name) + 1;
	put(s->b + at, namesz, 4, s->be);
	put(s->b + at + 4, desclen, 4, s->be);
	put(s->b + at + 8, type, 4, s->be);
	memcpy(s->b + at + 12, name, namesz);
	size_t desc = (size_t)up(at + 12 + namesz, s->a);
	for (size_t i = 0; i < desclen; i++)
		s->b[desc + i] = (uint8_t)(i + 1);
	s->n = (size_t)up(desc + desclen, s->a);
	return desc;
}

/* walk runs the note walk on a copy of b[0, n) allocated to size n. */
static int walk(const uint8_t *b, size_t n, int be, uint64_t align, uint8_t *id,
		size_t *len)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		return -1;
	memcpy(c, b, n);
	*len = 0;
	int rc = fdo_elf_note_build_id(c, n, be, align, id, len);
	free(c);
	return rc;
}

static int id_is_1_to(const uint8_t *id, size_t len, size_t want)
{
	if (len != want)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (id[i] != (uint8_t)(i + 1))
			return 0;
	return 1;
}

TEST(finds_the_build_id_after_other_notes)
{
	for (int be = 0; be <= 1; be++)
		for (uint64_t a = 4; a <= 8; a += 4) {
			struct notes s = {.be = be, .a = a};
			note_add(&s, "GNU", NT_GNU_ABI_TAG, 16);
			note_add(&s, "stapsdt", 3, 7);
			note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
			uint8_t id[FDO_BUILD_ID_MAX];
			size_t len;
			CHECK_EQ_INT(walk(s.b, s.n, be, a, id, &len), FDO_OK);
			CHECK(id_is_1_to(id, len, 20));
		}
}

/* A name of odd size (namesz 3) and a descriptor of odd size (5) are both
 * padded: the next note starts at the alignment. */
TEST(odd_name_and_descriptor_sizes_are_padded)
{
	for (uint64_t a = 4; a <= 8; a += 4) {
		struct notes s = {.a = a};
		note_add(&s, "Go", 4, 5);
		note_add(&s, "GNU", NT_GNU_BUILD_ID, 9);
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len;
		CHECK_EQ_INT(walk(s.b, s.n, 0, a, id, &len), FDO_OK);
		CHECK(id_is_1_to(id, len, 9));
	}
}

/* Issue 21: with 8-byte alignment the descriptor starts at
 * align8(12 + namesz) from the note, not 12 + align8(namesz); and a
 * first note of 4 descriptor bytes moves the next one to 24, not 20. */
TEST(eight_byte_alignment_is_not_four)
{
	struct notes s = {.a = 8};
	note_add(&s, "GNU", NT_GNU_ABI_TAG, 4);
	size_t desc = note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
	CHECK_EQ_INT(desc, 24 + 16);
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	CHECK_EQ_INT(walk(s.b, s.n, 0, 8, id, &len), FDO_OK);
	CHECK(id_is_1_to(id, len, 20));
	/* Read as 4-aligned, the second header is looked for at 20: zeros,
	 * a note with no name and no descriptor, and no build-id. */
	CHECK(walk(s.b, s.n, 0, 4, id, &len) != FDO_OK ||
	      !id_is_1_to(id, len, 20));
}

/* Alignments other than 8 (0, 1, 2, 16, a huge one) are read as 4. */
TEST(other_alignments_read_as_four)
{
	struct notes s = {.a = 4};
	note_add(&s, "GNU", NT_GNU_ABI_TAG, 4);
	note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
	uint64_t aligns[] = {0, 1, 2, 4, 16, UINT64_MAX};
	for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len;
		CHECK_EQ_INT(walk(s.b, s.n, 0, aligns[i], id, &len), FDO_OK);
		CHECK(id_is_1_to(id, len, 20));
	}
}

/* Cut anywhere before the build-id's last byte: no build-id, never bytes
 * from past the cut. Cut inside a header: no more notes; inside a name or
 * descriptor: truncated. */
TEST(truncated_notes_at_every_cut)
{
	for (uint64_t a = 4; a <= 8; a += 4) {
		struct notes s = {.a = a};
		note_add(&s, "GNU", NT_GNU_ABI_TAG, 16);
		size_t second = s.n;
		size_t desc = note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
		for (size_t cut = 0; cut <= s.n; cut++) {
			uint8_t id[FDO_BUILD_ID_MAX];
			size_t len;
			int rc = walk(s.b, cut, 0, a, id, &len);
			if (cut >= desc + 20) {
				CHECK_EQ_INT(rc, FDO_OK);
				CHECK(id_is_1_to(id, len, 20));
			} else if (cut < 12 ||
				   (cut >= second && cut < second + 12)) {
				CHECK_EQ_INT(rc, FDO_ENO_BUILD_ID);
			} else {
				CHECK_EQ_INT(rc, FDO_ETRUNCATED);
			}
		}
	}
}

/* The last note's descriptor padding may lie outside the area. */
TEST(last_padding_may_be_outside)
{
	struct notes s = {.a = 8};
	size_t desc = note_add(&s, "GNU", NT_GNU_BUILD_ID, 5);
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	CHECK_EQ_INT(walk(s.b, desc + 5, 0, 8, id, &len), FDO_OK);
	CHECK(id_is_1_to(id, len, 5));
}

TEST(huge_namesz_and_descsz)
{
	for (int be = 0; be <= 1; be++) {
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len;
		struct notes s = {.be = be, .a = 4};
		note_add(&s, "GNU", NT_GNU_ABI_TAG, 16);
		note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
		uint32_t huge[] = {0xffffffffu, 0xfffffff0u, 0x80000000u,
				   (uint32_t)s.n};
		for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
			struct notes t = s;
			put(t.b, huge[i], 4, be); /* first note's namesz */
			CHECK_EQ_INT(walk(t.b, t.n, be, 4, id, &len),
				     FDO_ETRUNCATED);
			t = s;
			put(t.b + 4, huge[i], 4, be); /* first note's descsz */
			CHECK_EQ_INT(walk(t.b, t.n, be, 4, id, &len),
				     FDO_ETRUNCATED);
			t = s;
			put(t.b + 32 + 4, huge[i], 4, be); /* the build-id's */
			CHECK_EQ_INT(walk(t.b, t.n, be, 4, id, &len),
				     FDO_ETRUNCATED);
		}
	}
}

TEST(build_id_length_limits)
{
	size_t sizes[] = {0, 1, 64, 65, 200};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		struct notes s = {.a = 4};
		note_add(&s, "GNU", NT_GNU_BUILD_ID, sizes[i]);
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len = 0;
		int ok = sizes[i] >= 1 && sizes[i] <= FDO_BUILD_ID_MAX;
		CHECK_EQ_INT(walk(s.b, s.n, 0, 4, id, &len),
			     ok ? FDO_OK : FDO_EBAD_BUILD_ID);
		CHECK_EQ_INT(len, sizes[i]);
	}
}

/* Only the name "GNU\0" with type NT_GNU_BUILD_ID counts. */
TEST(other_names_and_types_are_skipped)
{
	struct notes s = {.a = 4};
	note_add(&s, "GNUX", NT_GNU_BUILD_ID, 8);
	note_add(&s, "GN", NT_GNU_BUILD_ID, 8);
	note_add(&s, "GNU", NT_GNU_GOLD_VERSION, 8);
	size_t namesz3 = s.n;
	note_add(&s, "GNU", NT_GNU_BUILD_ID, 8);
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	CHECK_EQ_INT(walk(s.b, namesz3, 0, 4, id, &len), FDO_ENO_BUILD_ID);
	put(s.b + namesz3, 3, 4, 0); /* "GNU" without its NUL */
	CHECK_EQ_INT(walk(s.b, s.n, 0, 4, id, &len), FDO_ENO_BUILD_ID);
	put(s.b + namesz3, 4, 4, 0);
	CHECK_EQ_INT(walk(s.b, s.n, 0, 4, id, &len), FDO_OK);
	CHECK(id_is_1_to(id, len, 8));
}

/* ------------------------------------------------------ whole files -- */

/* One program header of a hand-made file. */
struct seg {
	uint32_t type;
	uint64_t off, size, align;
};

#define PH(f) (is64 ? offsetof(Elf64_Phdr, f) : offsetof(Elf32_Phdr, f))

/* elf_make writes an ELF header and program headers (at e_phoff = header
 * size) for segs into b, zeroed to 4096 bytes. */
static void elf_make(uint8_t *b, int is64, int be, const struct seg *segs,
		     int nseg)
{
	memset(b, 0, 4096);
	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	b[EI_DATA] = be ? ELFDATA2MSB : ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	unsigned w = is64 ? 8 : 4;
	size_t eh = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t ph = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	put(b + 16, ET_DYN, 2, be);
	put(b + 18, is64 ? EM_X86_64 : EM_386, 2, be);
	put(b + 20, EV_CURRENT, 4, be);
	put(b + (is64 ? 32 : 28), eh, w, be);		  /* e_phoff */
	put(b + (is64 ? 52 : 40), eh, 2, be);		  /* e_ehsize */
	put(b + (is64 ? 54 : 42), ph, 2, be);		  /* e_phentsize */
	put(b + (is64 ? 56 : 44), (uint64_t)nseg, 2, be); /* e_phnum */
	for (int i = 0; i < nseg; i++) {
		uint8_t *p = b + eh + (size_t)i * ph;
		put(p, segs[i].type, 4, be);
		put(p + PH(p_offset), segs[i].off, w, be);
		put(p + PH(p_filesz), segs[i].size, w, be);
		put(p + PH(p_align), segs[i].align, w, be);
	}
}

/* read_file writes b[0, n) to a file and reads its build-id. */
static int read_file(const uint8_t *b, size_t n, uint8_t *id, size_t *len)
{
	const char *path = test_subdir("elf");
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(b, 1, n, f);
	if (fclose(f) || w != n)
		return -1;
	*len = 0;
	return fdo_elf_build_id_path(path, id, len);
}

#define NOTE_AT 512

/* A file with one PT_NOTE at NOTE_AT holding two notes, the second the
 * build-id 1..20; returns the file's size. */
static size_t one_note_file(uint8_t *b, int is64, int be, uint64_t a)
{
	struct notes s = {.be = be, .a = a};
	note_add(&s, "GNU", NT_GNU_ABI_TAG, 16);
	note_add(&s, "GNU", NT_GNU_BUILD_ID, 20);
	struct seg segs[] = {{PT_LOAD, 0, 0, 0x1000},
			     {PT_NOTE, NOTE_AT, s.n, a}};
	elf_make(b, is64, be, segs, 2);
	memcpy(b + NOTE_AT, s.b, s.n);
	return NOTE_AT + s.n;
}

TEST(file_elf32_elf64_little_and_big_endian)
{
	for (int is64 = 0; is64 <= 1; is64++)
		for (int be = 0; be <= 1; be++)
			for (uint64_t a = 4; a <= 8; a += 4) {
				uint8_t b[4096], id[FDO_BUILD_ID_MAX];
				size_t n = one_note_file(b, is64, be, a), len;
				CHECK_EQ_INT(read_file(b, n, id, &len), FDO_OK);
				CHECK(id_is_1_to(id, len, 20));
			}
}

/* Cut anywhere: never a build-id, never a crash; a cut ELF header is
 * "not ELF" (32-bit size) or truncated (64-bit size). */
TEST(file_truncated_at_every_cut)
{
	for (int is64 = 0; is64 <= 1; is64++) {
		uint8_t b[4096], id[FDO_BUILD_ID_MAX];
		size_t n = one_note_file(b, is64, 0, 4), len;
		for (size_t cut = 0; cut < n; cut++) {
			int rc = read_file(b, cut, id, &len);
			if (cut < sizeof(Elf32_Ehdr))
				CHECK_EQ_INT(rc, FDO_ENOT_ELF);
			else
				CHECK_EQ_INT(rc, FDO_ETRUNCATED);
		}
	}
}

TEST(file_header_limits)
{
	uint8_t b[4096], id[FDO_BUILD_ID_MAX];
	size_t len, n = one_note_file(b, 1, 0, 4);
	uint8_t c[4096];
	/* More than 4096 program headers, or entries smaller than one. */
	memcpy(c, b, n);
	put(c + 56, 4097, 2, 0);
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENOT_ELF);
	memcpy(c, b, n);
	put(c + 54, sizeof(Elf64_Phdr) - 1, 2, 0);
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENOT_ELF);
	/* Larger entries are walked with their stride. */
	memcpy(c, b, n);
	put(c + 54, sizeof(Elf64_Phdr) + 8, 2, 0);
	put(c + 56, 1, 2, 0);
	memcpy(c + 64, b + 64 + sizeof(Elf64_Phdr), sizeof(Elf64_Phdr));
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_OK);
	/* A table past the end, or whose offset wraps around. */
	memcpy(c, b, n);
	put(c + 32, n, 8, 0);
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ETRUNCATED);
	memcpy(c, b, n);
	put(c + 32, UINT64_MAX - 8, 8, 0);
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ETRUNCATED);
	/* No program headers at all. */
	memcpy(c, b, n);
	put(c + 56, 0, 2, 0);
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENO_BUILD_ID);
	/* Unknown class or byte order, no magic. */
	memcpy(c, b, n);
	c[EI_CLASS] = 3;
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENOT_ELF);
	memcpy(c, b, n);
	c[EI_DATA] = 0;
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENOT_ELF);
	memcpy(c, b, n);
	c[1] = 'X';
	CHECK_EQ_INT(read_file(c, n, id, &len), FDO_ENOT_ELF);
	/* Not a regular file. */
	int fd = open(test_tmpdir(), O_RDONLY);
	REQUIRE(fd >= 0);
	CHECK_EQ_INT(fdo_elf_build_id_fd(fd, id, &len), FDO_EIO);
	close(fd);
}

TEST(file_note_segments)
{
	uint8_t b[4096], id[FDO_BUILD_ID_MAX];
	size_t len;
	struct notes good = {.a = 4}, bad = {.a = 4}, longid = {.a = 4};
	note_add(&good, "GNU", NT_GNU_BUILD_ID, 20);
	note_add(&bad, "GNU", NT_GNU_ABI_TAG, 16);
	put(bad.b, 0xffffffffu, 4, 0); /* namesz past the segment */
	note_add(&longid, "GNU", NT_GNU_BUILD_ID, 65);
	/* A malformed segment, then a good one: the good one. */
	struct seg segs[] = {{PT_NOTE, 1024, bad.n, 4},
			     {PT_NOTE, 2048, good.n, 4}};
	elf_make(b, 1, 0, segs, 2);
	memcpy(b + 1024, bad.b, bad.n);
	memcpy(b + 2048, good.b, good.n);
	CHECK_EQ_INT(read_file(b, 2048 + good.n, id, &len), FDO_OK);
	CHECK(id_is_1_to(id, len, 20));
	/* Malformed alone: truncated. */
	elf_make(b, 1, 0, segs, 1);
	memcpy(b + 1024, bad.b, bad.n);
	CHECK_EQ_INT(read_file(b, 1024 + bad.n, id, &len), FDO_ETRUNCATED);
	/* A build-id of 65 bytes: refused. */
	segs[0].size = longid.n;
	elf_make(b, 1, 0, segs, 1);
	memcpy(b + 1024, longid.b, longid.n);
	CHECK_EQ_INT(read_file(b, 1024 + longid.n, id, &len),
		     FDO_EBAD_BUILD_ID);
	/* A segment past the end of the file: truncated. */
	segs[0] = (struct seg){PT_NOTE, 4000, good.n, 4};
	elf_make(b, 1, 0, segs, 1);
	CHECK_EQ_INT(read_file(b, 1024, id, &len), FDO_ETRUNCATED);
	/* Over 1 MiB or empty: skipped, whatever they claim. */
	segs[0] = (struct seg){PT_NOTE, 1024, (1u << 20) + 1, 4};
	segs[1] = (struct seg){PT_NOTE, 1024, 0, 4};
	elf_make(b, 1, 0, segs, 2);
	memcpy(b + 1024, good.b, good.n);
	CHECK_EQ_INT(read_file(b, 1024 + good.n, id, &len), FDO_ENO_BUILD_ID);
	/* Not PT_NOTE: not read. */
	segs[0] = (struct seg){PT_LOAD, 1024, good.n, 4};
	elf_make(b, 1, 0, segs, 1);
	memcpy(b + 1024, good.b, good.n);
	CHECK_EQ_INT(read_file(b, 1024 + good.n, id, &len), FDO_ENO_BUILD_ID);
}
