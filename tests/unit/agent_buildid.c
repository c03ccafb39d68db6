/*
 * Tests for agent/buildid.c: the build-id of a mapped file, as binutils
 * reads it, and (issue 21) from a note segment aligned to 8, whose
 * descriptor starts at align8(12 + namesz), not 12 + align8(namesz).
 */
#include <elf.h>
#include <stdio.h>

#include "agent/agent.h"
#include "common/common.h"
#include "tests/unit/test.h"

/* A minimal ELF64 LE file: one PT_NOTE (p_align align) holding a first
 * note of another type and then the GNU build-id 01..14. */
static const char *note_file(uint64_t align)
{
	static char path[300];
	snprintf(path, sizeof path, "%s/note%llu", test_tmpdir(),
		 (unsigned long long)align);
	uint8_t b[512] = {0};
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	memcpy(eh->e_ident, ELFMAG, 4);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_DYN;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof *eh;
	eh->e_ehsize = sizeof *eh;
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 1;
	size_t note = 128, n = note;
	/* Note 1: name "GNU", type 5 (property), 16 bytes of descriptor. */
	uint32_t h1[3] = {4, 16, 5};
	memcpy(b + n, h1, 12);
	memcpy(b + n + 12, "GNU", 4);
	n += 16 + 16;
	/* Note 2: the build-id, 20 bytes. */
	uint32_t h2[3] = {4, 20, NT_GNU_BUILD_ID};
	memcpy(b + n, h2, 12);
	memcpy(b + n + 12, "GNU", 4);
	size_t desc = (n + 12 + 4 + align - 1) & ~(size_t)(align - 1);
	for (int i = 0; i < 20; i++)
		b[desc + i] = (uint8_t)(i + 1);
	size_t end = (desc + 20 + align - 1) & ~(size_t)(align - 1);
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + sizeof *eh);
	ph->p_type = PT_NOTE;
	ph->p_offset = note;
	ph->p_filesz = ph->p_memsz = end - note;
	ph->p_align = align;
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, end, f) != end)
		return NULL;
	fclose(f);
	return path;
}

TEST(note_aligned_to_4_and_to_8)
{
	for (uint64_t align = 4; align <= 8; align += 4) {
		const char *p = note_file(align);
		REQUIRE(p);
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len = 0;
		CHECK_EQ_INT(agent_build_id_read(p, id, &len), FDO_OK);
		CHECK_EQ_INT(len, 20);
		CHECK(id[0] == 1 && id[19] == 20);
	}
}

TEST(agrees_with_binutils_on_a_real_binary)
{
	char path[300], cmd[800], want[200] = "", hex[2 * FDO_BUILD_ID_MAX + 1];
	snprintf(path, sizeof path, "%s/prog", test_tmpdir());
	snprintf(cmd, sizeof cmd,
		 "printf 'int main(void){return 0;}\\n' | cc -x c -o '%s' - "
		 "-Wl,--build-id=sha1 && readelf -n '%s' | "
		 "sed -n 's/.*Build ID: //p'",
		 path, path);
	FILE *f = popen(cmd, "r");
	REQUIRE(f);
	if (!fgets(want, sizeof want, f))
		want[0] = 0;
	pclose(f);
	want[strcspn(want, "\n")] = 0;
	REQUIRE(want[0]);
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len = 0;
	REQUIRE(agent_build_id_read(path, id, &len) == FDO_OK);
	fdo_hex_encode(id, len, hex);
	CHECK_EQ_STR(hex, want);
}
