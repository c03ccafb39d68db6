/*
 * tests/unit/symbolizer_fixture.c — the symbolizer's index file of the
 * current format as fdod kept it: tests/fixtures/store-v4/cache holds the
 * index fdod wrote for src/hot. This build must accept it as it is (layout,
 * bounds, checksum) and answer from it what an index it builds itself now
 * answers, at every address of hot's code; a change of the file layout
 * without a new SYM_FILE_VERSION fails here. (fdod itself would rebuild
 * the file: its source signature names the paths and mtimes it was built
 * from.)
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/common.h"
#include "symbolizer/sym_int.h"
#include "symbolizer/symbolizer.h"
#include "test.h"

#define FIXTURE "tests/fixtures/store-v4"
#define HOT_ID	"902c87aa03aa2fc4e3ed0ab8916fcb1f88885cbb"

static void fixture_path(const char *rel, char *out, size_t cap)
{
	const char *root = getenv("FDOD_ROOT");
	snprintf(out, cap, "%s/" FIXTURE "/%s", root ? root : ".", rel);
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

TEST(index_file_of_fdod_answers_as_a_fresh_index)
{
	char path[4096], hot[4096];
	/* cache/<first 2 hex digits>/<the rest>.symidx */
	fixture_path("cache/90/2c87aa03aa2fc4e3ed0ab8916fcb1f88885cbb.symidx",
		     path, sizeof path);
	fixture_path("src/hot", hot, sizeof hot);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	struct stat st;
	REQUIRE(fstat(fd, &st) == 0 && st.st_size > 0);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	REQUIRE(m != MAP_FAILED);
	struct sym_index kept = {0};
	CHECK_EQ_INT(sym_file_parse(m, (size_t)st.st_size, 0, &kept.v), FDO_OK);
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(kept.v.build_id, kept.v.build_id_len, hex);
	CHECK_EQ_STR(hex, HOT_ID);
	CHECK(kept.v.nloads > 0 && kept.v.nrows > 0 && kept.v.nsyms > 0);

	sym_index *fresh;
	REQUIRE(sym_index_open(hot, NULL, NULL, &fresh) == FDO_OK);
	uint64_t work = 0, main_at = 0;
	CHECK_EQ_INT(sym_index_offset_to_vaddr(&kept, 0x11b0, &work), FDO_OK);
	CHECK_EQ_INT(sym_index_offset_to_vaddr(&kept, 0x1087, &main_at),
		     FDO_OK);
	size_t checked = 0, differ = 0;
	for (uint64_t a = 0x1000; a < 0x1300; a++) {
		struct sym_frame f1[8], f2[8];
		struct sym_symbol s1, s2;
		size_t n1 = 0, n2 = 0;
		CHECK_EQ_INT(sym_index_lookup(&kept, a, f1, 8, &n1, &s1),
			     FDO_OK);
		CHECK_EQ_INT(sym_index_lookup(fresh, a, f2, 8, &n2, &s2),
			     FDO_OK);
		int same = n1 == n2 && s1.found == s2.found &&
			   (!s1.found ||
			    (!strcmp(s1.name, s2.name) && s1.addr == s2.addr &&
			     s1.size == s2.size));
		for (size_t i = 0; same && i < n1 && i < 8; i++)
			same = same_str(f1[i].function, f2[i].function) &&
			       same_str(f1[i].file, f2[i].file) &&
			       f1[i].line == f2[i].line &&
			       f1[i].column == f2[i].column &&
			       f1[i].discriminator == f2[i].discriminator &&
			       f1[i].start_line == f2[i].start_line;
		differ += !same;
		checked += n1 > 0;
	}
	CHECK_EQ_INT(differ, 0);
	CHECK(checked > 0);
	/* The addresses of the fixture's samples: work, called from main. */
	struct sym_frame f[8];
	size_t n;
	CHECK_EQ_INT(sym_index_lookup(&kept, work, f, 8, &n, NULL), FDO_OK);
	CHECK(n >= 1 && f[0].function && !strcmp(f[0].function, "work"));
	CHECK_EQ_INT(sym_index_lookup(&kept, main_at, f, 8, &n, NULL), FDO_OK);
	CHECK(n >= 1 && f[n - 1].function &&
	      !strcmp(f[n - 1].function, "main"));
	sym_index_close(fresh);
	munmap(m, (size_t)st.st_size);
}
