/* Tests for storage/symstore.c: files land in the right slots with the
 * right bytes, unstripped executables share one inode between executable
 * and debuginfo, re-uploads are no-ops, refusals write nothing, the HTTP
 * path (tmpfile + adopt) works, and the buildids record follows. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/unit/test.h"
#include "tests/unit/storage_fixtures.h"

static const char *datadir(const char *name)
{
	static char buf[4][512];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, 512, "%s/%s", test_tmpdir(), name);
	return b;
}

static store *open_store(const char *dir)
{
	struct store_opts o = {.dir = dir};
	store *s = NULL;
	return store_open(&o, &s) ? NULL : s;
}

static int same_bytes(const char *a, const char *b)
{
	size_t la, lb;
	uint8_t *x = fx_read(a, &la), *y = fx_read(b, &lb);
	int same = x && y && la == lb && !memcmp(x, y, la);
	free(x);
	free(y);
	return same;
}

/* count_entries counts directory entries other than . and ..; names that
 * start with '.' are counted in *hidden. -1 if dir does not exist. */
static int count_entries(const char *dir, int *hidden)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	if (hidden)
		*hidden = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (e->d_name[0] == '.' && hidden)
			(*hidden)++;
	}
	closedir(d);
	return n;
}

static void slot_path(const char *dd, const struct store_sym_result *r,
		      unsigned kind, char *buf)
{
	store_symbols_path(dd, r->elf.build_id, r->elf.build_id_len, kind, buf,
			   600);
}

static void build_dir_of(const char *dd, const struct store_sym_result *r,
			 char *buf)
{
	slot_path(dd, r, STORE_SYM_EXECUTABLE, buf);
	*strrchr(buf, '/') = '\0';
}

static int record_of(store *s, const struct store_sym_result *r,
		     struct store_buildid *rec)
{
	store_txn *t;
	if (store_txn_begin(s, 0, &t))
		return -1;
	uint32_t id;
	int rc = store_intern_buildid(t, r->elf.build_id, r->elf.build_id_len,
				      0, &id);
	if (!rc)
		rc = store_buildid_get(t, id, rec);
	store_txn_abort(t);
	return rc;
}

TEST(symbols_path_layout)
{
	uint8_t id[3] = {0xab, 0xcd, 0xef};
	char buf[128];
	REQUIRE(store_symbols_path("/d", id, 3, STORE_SYM_DEBUGINFO, buf,
				   sizeof buf) == FDO_OK);
	CHECK_EQ_STR(buf, "/d/symbols/ab/abcdef/debuginfo");
	REQUIRE(store_symbols_path("/d", id, 1, STORE_SYM_EXECUTABLE, buf,
				   sizeof buf) == FDO_OK);
	CHECK_EQ_STR(buf, "/d/symbols/ab/ab/executable");
	CHECK_EQ_INT(store_symbols_path("/d", id, 0, STORE_SYM_EXECUTABLE, buf,
					sizeof buf),
		     FDO_EBAD_BUILD_ID);
	CHECK_EQ_INT(store_symbols_path("/d", id, 3, 4, buf, sizeof buf),
		     FDO_EINVAL);
	CHECK_EQ_INT(store_symbols_path("/d", id, 3, STORE_SYM_DEBUGINFO, buf,
					29),
		     FDO_ELIMIT);
	CHECK_EQ_INT(store_symbols_path("/d", id, 3, STORE_SYM_DEBUGINFO, buf,
					31),
		     FDO_OK);
}

TEST(unstripped_executable_fills_both_slots_once)
{
	const char *dd = datadir("unstripped");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	struct store_sym_result r;
	REQUIRE(store_symbols_add_file(s, dd, fx("exe"), "prog", &r) == FDO_OK);
	CHECK_EQ_INT(r.slots, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK_EQ_INT(r.stored, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK_EQ_INT(r.present, 0);
	char exe[600], dbg[600], dir[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	slot_path(dd, &r, STORE_SYM_DEBUGINFO, dbg);
	build_dir_of(dd, &r, dir);
	CHECK(same_bytes(exe, fx("exe")));
	struct stat a, b;
	REQUIRE(stat(exe, &a) == 0 && stat(dbg, &b) == 0);
	CHECK(a.st_ino == b.st_ino); /* one copy on disk */
	CHECK_EQ_INT(a.st_mode & 0777, 0644);
	int hidden;
	CHECK_EQ_INT(count_entries(dir, &hidden), 2);
	CHECK_EQ_INT(hidden, 0);

	struct store_buildid rec;
	REQUIRE(record_of(s, &r, &rec) == FDO_OK);
	CHECK_EQ_INT(rec.sym_state, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO |
					    STORE_SYM_DWARF);
	CHECK(rec.binary != 0);

	/* Same file again: a no-op. */
	struct store_sym_result r2;
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("exe"), "prog", &r2),
		     FDO_EEXISTS);
	CHECK_EQ_INT(r2.stored, 0);
	CHECK_EQ_INT(r2.present, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK_EQ_INT(count_entries(dir, &hidden), 2);
	CHECK_EQ_INT(hidden, 0);
	struct stat a2;
	REQUIRE(stat(exe, &a2) == 0);
	CHECK(a2.st_ino == a.st_ino && a2.st_mtime == a.st_mtime);
	/* The stripped one has nothing new to give. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("stripped"), NULL, &r2),
		     FDO_EEXISTS);
	CHECK_EQ_INT(r2.present, STORE_SYM_EXECUTABLE);
	store_close(s);
}

TEST(stripped_then_debug_file)
{
	const char *dd = datadir("split");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	struct store_sym_result r;
	REQUIRE(store_symbols_add_file(s, dd, fx("stripped"), NULL, &r) ==
		FDO_OK);
	CHECK_EQ_INT(r.stored, STORE_SYM_EXECUTABLE);
	struct store_buildid rec;
	REQUIRE(record_of(s, &r, &rec) == FDO_OK);
	CHECK_EQ_INT(rec.sym_state, STORE_SYM_EXECUTABLE);
	CHECK_EQ_INT(rec.binary, 0);

	REQUIRE(store_symbols_add_file(s, dd, fx("debug"), "prog", &r) ==
		FDO_OK);
	CHECK_EQ_INT(r.slots, STORE_SYM_DEBUGINFO);
	CHECK_EQ_INT(r.stored, STORE_SYM_DEBUGINFO);
	char exe[600], dbg[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	slot_path(dd, &r, STORE_SYM_DEBUGINFO, dbg);
	CHECK(same_bytes(exe, fx("stripped")));
	CHECK(same_bytes(dbg, fx("debug")));
	REQUIRE(record_of(s, &r, &rec) == FDO_OK);
	CHECK_EQ_INT(rec.sym_state, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO |
					    STORE_SYM_DWARF);
	CHECK(rec.binary != 0);

	/* The unstripped executable adds nothing now. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("exe"), NULL, &r),
		     FDO_EEXISTS);
	CHECK(same_bytes(exe, fx("stripped")));
	store_close(s);
}

TEST(debuginfo_without_dwarf_is_upgraded)
{
	const char *dd = datadir("upgrade");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	struct store_sym_result r;
	REQUIRE(store_symbols_add_file(s, dd, fx("dbg_nodw"), NULL, &r) ==
		FDO_OK);
	CHECK_EQ_INT(r.stored, STORE_SYM_DEBUGINFO);
	struct store_buildid rec;
	REQUIRE(record_of(s, &r, &rec) == FDO_OK);
	CHECK_EQ_INT(rec.sym_state, STORE_SYM_DEBUGINFO);
	REQUIRE(store_symbols_add_file(s, dd, fx("debug"), NULL, &r) == FDO_OK);
	CHECK_EQ_INT(r.stored, STORE_SYM_DEBUGINFO);
	char dbg[600], dir[600];
	slot_path(dd, &r, STORE_SYM_DEBUGINFO, dbg);
	build_dir_of(dd, &r, dir);
	CHECK(same_bytes(dbg, fx("debug")));
	REQUIRE(record_of(s, &r, &rec) == FDO_OK);
	CHECK_EQ_INT(rec.sym_state, STORE_SYM_DEBUGINFO | STORE_SYM_DWARF);
	int hidden;
	CHECK_EQ_INT(count_entries(dir, &hidden), 1);
	CHECK_EQ_INT(hidden, 0);
	/* A DWARF-less one does not downgrade it. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("dbg_nodw"), NULL, &r),
		     FDO_EEXISTS);
	CHECK(same_bytes(dbg, fx("debug")));
	store_close(s);
}

TEST(shared_object_and_no_store_handle)
{
	const char *dd = datadir("shared");
	REQUIRE(fx("lib.so"));
	struct store_sym_result r;
	REQUIRE(store_symbols_add_file(NULL, dd, fx("lib.so"), NULL, &r) ==
		FDO_OK);
	CHECK(r.elf.flags & STORE_ELF_SHARED);
	CHECK_EQ_INT(r.stored, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	char exe[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	CHECK(same_bytes(exe, fx("lib.so")));
}

TEST(refused_files_write_nothing)
{
	const char *dd = datadir("refused");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	size_t len;
	uint8_t *b = fx_read(fx("exe"), &len);
	REQUIRE(b);
	struct {
		const char *name;
		const void *data;
		size_t len;
		int want;
	} cases[] = {
		{"empty", "", 0, FDO_ENOT_ELF},
		{"text", "hello world\n", 12, FDO_ENOT_ELF},
		{"cut100", b, 100, FDO_ETRUNCATED},
		{"cuthalf", b, len / 2, FDO_ETRUNCATED},
		{"cutlast", b, len - 1, FDO_ETRUNCATED},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const char *p =
			fx_write(cases[k].name, cases[k].data, cases[k].len);
		REQUIRE(p);
		struct store_sym_result r;
		CHECK_EQ_INT(store_symbols_add_file(s, dd, p, NULL, &r),
			     cases[k].want);
		CHECK(r.why[0] != 0);
		CHECK_EQ_INT(r.stored, 0);
	}
	free(b);
	struct store_sym_result r;
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("nobid"), NULL, &r),
		     FDO_ENO_BUILD_ID);
	CHECK(strstr(r.why, "build-id") != NULL);
	CHECK_EQ_INT(store_symbols_add_file(s, dd, "/nonexistent/file", NULL,
					    &r),
		     FDO_ENOT_FOUND);
	/* Not even the symbols directory was created. */
	char sym[600];
	snprintf(sym, sizeof sym, "%s/symbols", dd);
	CHECK_EQ_INT(count_entries(sym, NULL), -1);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	uint64_t n;
	REQUIRE(store_count(t, STORE_BUILDIDS, &n) == FDO_OK);
	CHECK_EQ_INT(n, 0);
	store_txn_abort(t);
	store_close(s);
}

TEST(http_path_tmpfile_then_adopt)
{
	const char *dd = datadir("adopt");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	size_t len;
	uint8_t *b = fx_read(fx("exe"), &len);
	REQUIRE(b);
	char tmp[600];
	int fd;
	REQUIRE(store_symbols_tmpfile(dd, tmp, sizeof tmp, &fd) == FDO_OK);
	REQUIRE(write(fd, b, len) == (ssize_t)len);
	close(fd);
	struct store_sym_result r;
	CHECK_EQ_INT(store_symbols_adopt(s, dd, tmp, "web", 0, &r), FDO_OK);
	CHECK_EQ_INT(r.stored, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK(access(tmp, F_OK) != 0);
	char exe[600], incoming[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	CHECK(same_bytes(exe, fx("exe")));
	snprintf(incoming, sizeof incoming, "%s/symbols/.incoming", dd);
	CHECK_EQ_INT(count_entries(incoming, NULL), 0);

	/* Again: present, and the temp file is consumed. */
	REQUIRE(store_symbols_tmpfile(dd, tmp, sizeof tmp, &fd) == FDO_OK);
	REQUIRE(write(fd, b, len) == (ssize_t)len);
	close(fd);
	CHECK_EQ_INT(store_symbols_adopt(s, dd, tmp, "web", 0, &r),
		     FDO_EEXISTS);
	CHECK_EQ_INT(count_entries(incoming, NULL), 0);

	/* A truncated body: refused, consumed, nothing else written. */
	REQUIRE(store_symbols_tmpfile(dd, tmp, sizeof tmp, &fd) == FDO_OK);
	REQUIRE(write(fd, b, len / 2) == (ssize_t)(len / 2));
	close(fd);
	CHECK_EQ_INT(store_symbols_adopt(s, dd, tmp, "web", 0, &r),
		     FDO_ETRUNCATED);
	CHECK_EQ_INT(count_entries(incoming, NULL), 0);
	char sym[600];
	snprintf(sym, sizeof sym, "%s/symbols", dd);
	CHECK_EQ_INT(count_entries(sym, NULL), 2); /* .incoming + one id */

	/* Only files under .incoming are adopted. */
	CHECK_EQ_INT(store_symbols_adopt(s, dd, fx("exe"), NULL, 0, &r),
		     FDO_EINVAL);
	CHECK(access(fx("exe"), F_OK) == 0);
	free(b);
	store_close(s);
}

TEST(add_fd_reads_from_offset_zero)
{
	const char *dd = datadir("fd");
	REQUIRE(fx("stripped"));
	int fd = open(fx("stripped"), O_RDONLY);
	REQUIRE(fd >= 0);
	REQUIRE(lseek(fd, 100, SEEK_SET) == 100);
	struct store_sym_result r;
	CHECK_EQ_INT(store_symbols_add_fd(NULL, dd, fd, NULL, &r), FDO_OK);
	close(fd);
	char exe[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	CHECK(same_bytes(exe, fx("stripped")));
}

/* Finding 2 of issue 21: a later, different file for a build-id is refused
 * (the first upload cannot decide for good what the real one is); nothing
 * stored changes; an admin replace swaps it and sends what was symbolized
 * from the old file back to pending. */
static int put_symcache(store_txn *t, void *arg)
{
	const struct store_frame *f = arg;
	uint8_t key[STORE_ADDR_KEY_SIZE], val[64];
	size_t len;
	store_addr_key_encode(key, f);
	int rc = store_symcache_encode(NULL, 0, val, sizeof val, &len);
	return rc ? rc
		  : store_put(t, STORE_SYMCACHE, key, sizeof key, val, len, 0);
}

static int has_key(store *s, enum store_table table,
		   const struct store_frame *f)
{
	store_txn *t;
	if (store_txn_begin(s, 0, &t))
		return -1;
	uint8_t key[STORE_ADDR_KEY_SIZE];
	store_addr_key_encode(key, f);
	const void *v;
	size_t vl;
	int rc = store_get(t, table, key, sizeof key, &v, &vl);
	store_txn_abort(t);
	return rc == FDO_OK;
}

TEST(different_file_for_a_build_id_is_a_conflict)
{
	const char *dd = datadir("poison");
	store *s = open_store(dd);
	REQUIRE(s && fx("real") && fx("fake"));
	struct store_sym_result r;
	/* The attacker's file comes first. */
	REQUIRE(store_symbols_add_file(s, dd, fx("fake"), "evil", &r) ==
		FDO_OK);
	char exe[600], dir[600];
	slot_path(dd, &r, STORE_SYM_EXECUTABLE, exe);
	build_dir_of(dd, &r, dir);
	struct store_buildid before;
	REQUIRE(record_of(s, &r, &before) == FDO_OK);
	/* The real one: 409-worthy, with the reason; nothing changes. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("real"), "web", &r),
		     FDO_ECONFLICT);
	CHECK_EQ_INT(r.conflict, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK_EQ_INT(r.stored, 0);
	CHECK(strstr(r.why, "already has a different executable and "
			    "debuginfo") != NULL);
	CHECK(strstr(r.why, "replace=1") != NULL);
	CHECK(same_bytes(exe, fx("fake")));
	int hidden;
	CHECK_EQ_INT(count_entries(dir, &hidden), 2);
	CHECK_EQ_INT(hidden, 0);
	struct store_buildid after;
	REQUIRE(record_of(s, &r, &after) == FDO_OK);
	CHECK(!memcmp(&before, &after, sizeof before));

	/* An admin replace: the real file in place, symbolized addresses of
	 * the build-id back to pending. */
	uint32_t id;
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	REQUIRE(store_intern_buildid(t, r.elf.build_id, r.elf.build_id_len, 0,
				     &id) == FDO_OK);
	store_txn_abort(t);
	struct store_frame f = {id, 0x1234};
	REQUIRE(store_write(s, put_symcache, &f) == FDO_OK);
	size_t len;
	uint8_t *b = fx_read(fx("real"), &len);
	REQUIRE(b);
	char tmp[600];
	int fd;
	REQUIRE(store_symbols_tmpfile(dd, tmp, sizeof tmp, &fd) == FDO_OK);
	REQUIRE(write(fd, b, len) == (ssize_t)len);
	close(fd);
	free(b);
	CHECK_EQ_INT(store_symbols_adopt(s, dd, tmp, "web", STORE_SYM_REPLACE,
					 &r),
		     FDO_OK);
	CHECK_EQ_INT(r.replaced, STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK(same_bytes(exe, fx("real")));
	CHECK_EQ_INT(has_key(s, STORE_SYMCACHE, &f), 0);
	CHECK_EQ_INT(has_key(s, STORE_PENDING, &f), 1);
	/* The same file again: present, as always. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("real"), NULL, &r),
		     FDO_EEXISTS);
	store_close(s);
}

/* Finding 3 of issue 21: a small file whose compressed sections claim a
 * gigabyte is refused before anything is written or inflated. */
TEST(compression_bomb_is_refused_before_inflating)
{
	const char *dd = datadir("bomb");
	store *s = open_store(dd);
	REQUIRE(s && fx("gnuz"));
	const char *bombs[] = {fx_bomb(fx("gnuz"), "gnu-bomb", 1ull << 30),
			       fx_bomb(fx("gz"), "bomb", 1ull << 30)};
	REQUIRE(bombs[0]);
	for (int k = 0; k < 2; k++) {
		if (!bombs[k])
			continue; /* the compiler could not compress */
		struct store_sym_result r;
		CHECK_EQ_INT(store_symbols_add_file(s, dd, bombs[k], NULL, &r),
			     FDO_ELIMIT);
		CHECK(strstr(r.why, "claim 1073") != NULL);
		CHECK(strstr(r.why, "--debug-inflate-max") != NULL);
		char sym[600];
		snprintf(sym, sizeof sym, "%s/symbols", dd);
		CHECK_EQ_INT(count_entries(sym, NULL), -1);
	}
	/* Without a limit it is just a file. */
	store_symbols_limit_inflated(0);
	struct store_sym_result r;
	CHECK_EQ_INT(store_symbols_add_file(s, dd, bombs[0], NULL, &r), FDO_OK);
	store_symbols_limit_inflated(512ull << 20);
	store_close(s);
}

/* The OTel file id of a file of n bytes ((i * 7) % 251 each): expected
 * values from Python's hashlib over the spec's input (first and last
 * min(n, 4096) bytes, then n as a big-endian u64; SHA-256 cut to 16). */
static int file_id_of_pattern(size_t n, uint8_t out[STORE_FILE_ID_SIZE])
{
	char path[600];
	snprintf(path, sizeof path, "%s/pattern-%zu", test_tmpdir(), n);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return FDO_EIO;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)((i * 7) % 251);
		if (write(fd, &c, 1) != 1)
			break;
	}
	int rc = store_file_id(fd, out);
	close(fd);
	return rc;
}

TEST(file_id_is_the_opentelemetry_hash)
{
	uint8_t id[STORE_FILE_ID_SIZE];
	char hex[2 * STORE_FILE_ID_SIZE + 1];
	REQUIRE(file_id_of_pattern(10000, id) == FDO_OK);
	fdo_hex_encode(id, sizeof id, hex);
	CHECK_EQ_STR(hex, "371b5a7020f97fd0a7de174436c348bf");
	/* Smaller than a page: head and tail are the whole file. */
	REQUIRE(file_id_of_pattern(100, id) == FDO_OK);
	fdo_hex_encode(id, sizeof id, hex);
	CHECK_EQ_STR(hex, "3c932dd8308cc86ea03192c38c28c383");
}

static int has_file_id(store *s, const char *path, const uint8_t *bid,
		       size_t bid_len)
{
	int fd = open(path, O_RDONLY);
	uint8_t fid[STORE_FILE_ID_SIZE], got[FDO_BUILD_ID_MAX];
	size_t len = 0;
	if (fd < 0 || store_file_id(fd, fid))
		return 0;
	close(fd);
	store_txn *t;
	if (store_txn_begin(s, 0, &t))
		return 0;
	int rc = store_fileid_get(t, fid, got, &len);
	store_txn_abort(t);
	return rc == FDO_OK && len == bid_len && !memcmp(got, bid, len);
}

TEST(uploads_are_indexed_by_file_id)
{
	const char *dd = datadir("fileids");
	store *s = open_store(dd);
	REQUIRE(s && fx("exe"));
	struct store_sym_result r;
	REQUIRE(store_symbols_add_file(s, dd, fx("exe"), NULL, &r) == FDO_OK);
	CHECK(r.has_file_id);
	CHECK(has_file_id(s, fx("exe"), r.elf.build_id, r.elf.build_id_len));
	/* The stripped copy hosts run: present already, indexed all the
	 * same, to the same build-id. */
	CHECK_EQ_INT(store_symbols_add_file(s, dd, fx("stripped"), NULL, &r),
		     FDO_EEXISTS);
	CHECK(has_file_id(s, fx("stripped"), r.elf.build_id,
			  r.elf.build_id_len));
	/* A separate debug file is never mapped: no file id. */
	store_symbols_add_file(s, dd, fx("debug"), NULL, &r);
	CHECK(!r.has_file_id);
	CHECK(!has_file_id(s, fx("debug"), r.elf.build_id, r.elf.build_id_len));
	/* Indexing the tree at start finds the stored executable (done
	 * once: the second call does nothing). */
	uint64_t n = 99;
	REQUIRE(store_symbols_index_file_ids(s, dd, &n) == FDO_OK);
	CHECK_EQ_INT(n, 1);
	REQUIRE(store_symbols_index_file_ids(s, dd, &n) == FDO_OK);
	CHECK_EQ_INT(n, 0);
	store_close(s);
}
