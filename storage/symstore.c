/*
 * storage/symstore.c — the symbol store: ELF files by build-id, in a
 * debuginfod-like tree beside the LMDB environment.
 *
 * Workload: a release pipeline uploads a handful of files per release, each
 * up to hundreds of MB; readers (the symbolizer, debuginfod clients) open
 * them by path at any time. Uploads are rare and may be slow; a reader must
 * never see half a file.
 *
 * Tree, under the data directory DIR:
 *   DIR/symbols/<first 2 hex>/<full build-id hex>/executable
 *   DIR/symbols/<first 2 hex>/<full build-id hex>/debuginfo
 *   DIR/symbols/<first 2 hex>/<full build-id hex>/.upload-XXXXXX  (temp)
 *   DIR/symbols/.incoming/upload-XXXXXX  (HTTP bodies being received)
 *
 * Slots: a file with loadable bytes (executable, PIE, shared object, with
 * or without DWARF) fills `executable`; a file with DWARF, or a separate
 * debug file (objcopy --only-keep-debug: no loadable bytes), fills
 * `debuginfo`. An unstripped executable fills both with ONE inode: the
 * bytes are stored once and `debuginfo` is a hard link to `executable`
 * (debuginfod clients asking for debuginfo get a file with DWARF, as
 * debuginfod itself would answer). A filled slot is kept: build-ids are
 * immutable, so any file with that build-id is as good, with two
 * exceptions: a `debuginfo` without DWARF (symbol table only) is replaced by
 * a later upload that has DWARF, and a stored file that no longer validates
 * (truncated or overwritten under the store) is replaced by the next upload.
 *
 * Writing: validate first (nothing is created for a refused file), copy
 * with a fixed buffer into a temp file in the build-id's directory, fsync,
 * re-validate the copy, link(2) it into each free slot (link never
 * replaces, so two concurrent uploads cannot clobber each other), unlink
 * the temp name, fsync the directory. A crash leaves a whole file or none
 * (and maybe a .upload-* temp file, which nothing reads). The LMDB record
 * (table buildids) is updated after the files, so it may lag them after a
 * crash; re-uploading repairs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "storage/storage_int.h"

#define COPY_BUF (1u << 20)
#define INCOMING "symbols/.incoming"

static const char *slot_name(unsigned kind)
{
	return kind == STORE_SYM_EXECUTABLE ? "executable" : "debuginfo";
}

__attribute__((format(printf, 3, 4))) static int
why(struct store_sym_result *res, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof res->why, fmt, ap);
	va_end(ap);
	return err;
}

static int errno_err(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return FDO_ENOSPACE;
	return e == EACCES || e == EPERM || e == EROFS ? FDO_EDENIED : FDO_EIO;
}

/* build_dir writes DIR/symbols/<2 hex>/<hex> into buf. */
static int build_dir(const char *datadir, const uint8_t *id, size_t len,
		     char *buf, size_t cap)
{
	if (len < 1 || len > FDO_BUILD_ID_MAX)
		return FDO_EBAD_BUILD_ID;
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(id, len, hex);
	int n = snprintf(buf, cap, "%s/symbols/%.2s/%s", datadir, hex, hex);
	return n < 0 || (size_t)n >= cap ? FDO_ELIMIT : FDO_OK;
}

int store_symbols_path(const char *datadir, const uint8_t *build_id,
		       size_t build_id_len, unsigned kind, char *buf,
		       size_t cap)
{
	if (kind != STORE_SYM_EXECUTABLE && kind != STORE_SYM_DEBUGINFO)
		return FDO_EINVAL;
	int rc = build_dir(datadir, build_id, build_id_len, buf, cap);
	if (rc)
		return rc;
	size_t n = strlen(buf);
	int m = snprintf(buf + n, cap - n, "/%s", slot_name(kind));
	return m < 0 || (size_t)m >= cap - n ? FDO_ELIMIT : FDO_OK;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return FDO_EIO;
	int rc = fsync(fd) == 0 ? FDO_OK : FDO_EIO;
	close(fd);
	return rc;
}

/*
 * slot_state: is the stored file open on fd (-1: could not be opened)
 * intact (an ELF file with the build-id of res), and does it carry DWARF?
 * *info gets what it is. A file damaged or swapped under the store
 * (truncated, overwritten) fails here and is replaced by the next upload
 * of a good file, instead of being kept forever.
 */
enum { SLOT_BROKEN, SLOT_NO_DWARF, SLOT_OK };

static int slot_state(int fd, const struct store_sym_result *res,
		      struct store_elf_info *info)
{
	if (fd < 0 || store_elf_inspect(fd, info, NULL, 0) ||
	    info->build_id_len != res->elf.build_id_len ||
	    memcmp(info->build_id, res->elf.build_id, info->build_id_len))
		return SLOT_BROKEN;
	return (info->flags & STORE_ELF_DWARF) ? SLOT_OK : SLOT_NO_DWARF;
}

/* slot_state_at: slot_state of the file at path. */
static int slot_state_at(const char *path, const struct store_sym_result *res)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct store_elf_info info;
	int state = slot_state(fd, res, &info);
	if (fd >= 0)
		close(fd);
	return state;
}

/* The slots a file qualifies for. */
static unsigned slots_of(const struct store_elf_info *info)
{
	unsigned s = 0;
	if (!(info->flags & STORE_ELF_DEBUG_ONLY))
		s |= STORE_SYM_EXECUTABLE;
	if (info->flags & (STORE_ELF_DEBUG_ONLY | STORE_ELF_DWARF))
		s |= STORE_SYM_DEBUGINFO;
	return s;
}

/*
 * plan decides, for each slot of res->slots, whether to write it (bit in
 * the result), leave it (res->present) or replace it (bit in *replace: a
 * stored file that no longer validates, a debuginfo without DWARF when
 * this file has DWARF, or, with STORE_SYM_REPLACE, a different file). A
 * slot held by a different file (store_elf_same_slot says no) is a
 * conflict: its bit goes to *conflict, and nothing is written.
 */
static unsigned plan(const char *dir, int fd, unsigned flags,
		     struct store_sym_result *res, unsigned *replace,
		     unsigned *conflict)
{
	unsigned need = 0;
	*replace = 0;
	*conflict = 0;
	for (unsigned k = STORE_SYM_EXECUTABLE; k <= STORE_SYM_DEBUGINFO;
	     k <<= 1) {
		if (!(res->slots & k))
			continue;
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, slot_name(k));
		if (lstat(path, &st) != 0) {
			need |= k;
			continue;
		}
		/* The stored file is opened and inspected once: its state
		 * and the comparison with the upload (already inspected into
		 * res->elf) both use what that one pass found. */
		int old = open(path, O_RDONLY | O_CLOEXEC);
		struct store_elf_info oi;
		int state = slot_state(old, res, &oi);
		int has_dwarf = (res->elf.flags & STORE_ELF_DWARF) != 0;
		if (state == SLOT_BROKEN) {
			fdo_warn("symbols: %s is damaged; replacing it", path);
			need |= k;
			*replace |= k;
		} else if (k == STORE_SYM_DEBUGINFO && has_dwarf &&
			   state == SLOT_NO_DWARF) {
			need |= k; /* upgrade: DWARF where there was none */
			*replace |= k;
		} else if (k == STORE_SYM_DEBUGINFO && !has_dwarf) {
			res->present |= k; /* nothing to compare, nothing new */
		} else {
			int same = 0;
			store_elf_same_slot_info(old, &oi, fd, &res->elf, k,
						 &same);
			if (same) {
				res->present |= k;
			} else if (flags & STORE_SYM_REPLACE) {
				need |= k;
				*replace |= k;
				res->replaced |= k;
			} else {
				*conflict |= k;
			}
		}
		if (old >= 0)
			close(old);
	}
	return need;
}

/*
 * place links the complete, fsynced file at tmp into the slots of need
 * under dir, then fsyncs dir. tmp stays (the caller unlinks it).
 */
static int place(const char *dir, const char *tmp, unsigned need,
		 unsigned replace, struct store_sym_result *res)
{
	for (unsigned k = STORE_SYM_EXECUTABLE; k <= STORE_SYM_DEBUGINFO;
	     k <<= 1) {
		if (!(need & k))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, slot_name(k));
		if (replace & k) {
			/* link to a second temp name, then rename over the
			 * old file: readers see one or the other. */
			char t2[PATH_MAX];
			snprintf(t2, sizeof t2, "%s.dwarf", tmp);
			unlink(t2);
			if (link(tmp, t2) != 0 || rename(t2, path) != 0) {
				int e = errno;
				unlink(t2);
				return why(res, errno_err(e),
					   "cannot replace %s: %s", path,
					   strerror(e));
			}
			res->stored |= k;
			res->present &= ~k;
			continue;
		}
		if (link(tmp, path) == 0) {
			res->stored |= k;
		} else if (errno == EEXIST) {
			res->present |= k; /* a concurrent upload won */
		} else {
			int e = errno;
			return why(res, errno_err(e), "cannot link %s: %s",
				   path, strerror(e));
		}
	}
	if (fsync_path(dir))
		return why(res, FDO_EIO, "cannot fsync %s: %s", dir,
			   strerror(errno));
	return FDO_OK;
}

/* copy_fd copies size bytes from in (offset 0, pread) to out. */
static int copy_fd(int in, int out, uint64_t size, struct store_sym_result *res)
{
	char *buf = malloc(COPY_BUF);
	if (!buf)
		return why(res, FDO_ENOMEM, "out of memory");
	int rc = FDO_OK;
	uint64_t off = 0;
	while (off < size && !rc) {
		size_t want = size - off < COPY_BUF ? (size_t)(size - off)
						    : COPY_BUF;
		ssize_t r = pread(in, buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r == 0 ? why(res, FDO_ETRUNCATED,
					  "file shrank while being copied")
				    : why(res, FDO_EIO, "read: %s",
					  strerror(errno));
			break;
		}
		for (ssize_t w = 0; w < r && !rc;) {
			ssize_t x = write(out, buf + w, (size_t)(r - w));
			if (x < 0 && errno == EINTR)
				continue;
			if (x < 0)
				rc = why(res, errno_err(errno), "write: %s",
					 strerror(errno));
			else
				w += x;
		}
		off += (uint64_t)r;
	}
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ recording -- */

struct record_ctx {
	const struct store_elf_info *elf;
	unsigned state;
	const char *binary;
	int replaced; /* a different file took a slot: results are stale */
	const uint8_t *file_id; /* NULL: not a file with loadable bytes */
};

/*
 * After a replace, what was symbolized from the old file is stale: every
 * symcache entry of build-id id goes back to pending, to be resolved again
 * from the new file.
 */
static int symcache_reset(store_txn *t, uint32_t id)
{
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_SYMCACHE, &c);
	if (rc)
		return rc;
	uint8_t(*keys)[STORE_ADDR_KEY_SIZE] = NULL;
	size_t n = 0, cap = 0;
	uint8_t start[STORE_ADDR_KEY_SIZE];
	struct store_frame f = {id, 0};
	store_addr_key_encode(start, &f);
	const void *k, *v;
	size_t kl, vl;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_addr_key_decode(k, kl, &f) &&
	       f.build_id == id) {
		if (fdo_grow(keys, cap, n + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		memcpy(keys[n++], k, STORE_ADDR_KEY_SIZE);
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (rc == FDO_ENOT_FOUND)
		rc = FDO_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		rc = store_del(t, STORE_SYMCACHE, keys[i], STORE_ADDR_KEY_SIZE);
		if (!rc)
			rc = store_put(t, STORE_PENDING, keys[i],
				       STORE_ADDR_KEY_SIZE, "", 0, 0);
	}
	free(keys);
	return rc;
}

static int record_fn(store_txn *t, void *arg)
{
	struct record_ctx *c = arg;
	uint32_t id;
	int rc = store_intern_buildid(t, c->elf->build_id, c->elf->build_id_len,
				      1, &id);
	if (rc)
		return rc;
	struct store_buildid r;
	rc = store_buildid_get(t, id, &r);
	if (rc)
		return rc;
	struct store_buildid old = r;
	if (c->replaced && (rc = symcache_reset(t, id)))
		return rc;
	if (c->file_id &&
	    (rc = store_fileid_put(t, c->file_id, c->elf->build_id,
				   c->elf->build_id_len)))
		return rc;
	/* DWARF describes the file now in the debuginfo slot. */
	r.sym_state = (r.sym_state & ~(uint32_t)STORE_SYM_DWARF) | c->state;
	if (c->binary && c->binary[0] && r.binary == 0) {
		rc = store_intern_binary(t, c->binary, strlen(c->binary), 1,
					 &r.binary);
		if (rc)
			return rc;
	}
	if (r.sym_state == old.sym_state && r.binary == old.binary)
		return FDO_OK;
	return store_buildid_put(t, id, &r);
}

/* record writes the symbol state of res into s, if s. */
static int record(store *s, const char *dir, const char *binary,
		  struct store_sym_result *res)
{
	if (!s)
		return FDO_OK;
	unsigned state = (res->stored | res->present) &
			 (STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	if (state & STORE_SYM_DEBUGINFO) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/debuginfo", dir);
		if (slot_state_at(path, res) == SLOT_OK)
			state |= STORE_SYM_DWARF;
	}
	struct record_ctx c = {&res->elf, state, binary, res->replaced != 0,
			       res->has_file_id ? res->file_id : NULL};
	int rc = store_write(s, record_fn, &c);
	if (rc)
		return why(res, rc,
			   "files in place, but recording the build-id in "
			   "the store failed: %s",
			   fdo_strerror(rc));
	return FDO_OK;
}

/* ------------------------------------------------------------- file ids -- */

#define FILE_ID_PAGE 4096

int store_file_id(int fd, uint8_t out[STORE_FILE_ID_SIZE])
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 0)
		return FDO_EIO;
	uint64_t size = (uint64_t)st.st_size;
	size_t part = size < FILE_ID_PAGE ? (size_t)size : FILE_ID_PAGE;
	uint8_t buf[2 * FILE_ID_PAGE + 8];
	if (pread(fd, buf, part, 0) != (ssize_t)part ||
	    pread(fd, buf + part, part, (off_t)(size - part)) != (ssize_t)part)
		return FDO_EIO;
	fdo_put_be64(buf + 2 * part, size);
	uint8_t d[32];
	fdo_sha256(buf, 2 * part + 8, d);
	memcpy(out, d, STORE_FILE_ID_SIZE);
	return FDO_OK;
}

struct index_ctx {
	struct indexed {
		uint8_t fid[STORE_FILE_ID_SIZE];
		struct store_buildid rec;
	} *e;
	size_t n;
};

static int index_fn(store_txn *t, void *arg)
{
	struct index_ctx *c = arg;
	for (size_t i = 0; i < c->n; i++) {
		int rc = store_fileid_put(t, c->e[i].fid, c->e[i].rec.build_id,
					  c->e[i].rec.build_id_len);
		if (rc)
			return rc;
	}
	return store_put(t, STORE_META, "fileids", 7, "\1", 1, 0);
}

int store_symbols_index_file_ids(store *s, const char *datadir,
				 uint64_t *indexed)
{
	if (indexed)
		*indexed = 0;
	store_txn *t;
	int rc = store_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	const void *v;
	size_t vl;
	rc = store_get(t, STORE_META, "fileids", 7, &v, &vl);
	if (rc != FDO_ENOT_FOUND) {
		store_txn_abort(t);
		return rc;
	}
	/* Every build-id whose executable the tree holds, id by id. */
	struct index_ctx c = {0};
	size_t cap = 0;
	for (uint32_t id = 1;; id++) {
		struct store_buildid r;
		rc = store_buildid_get(t, id, &r);
		if (rc == FDO_ENOT_FOUND) {
			rc = FDO_OK;
			break;
		}
		if (rc == FDO_ECORRUPT)
			continue; /* a bad record keeps no start from going */
		if (rc)
			break;
		if (!(r.sym_state & STORE_SYM_EXECUTABLE))
			continue;
		char path[PATH_MAX];
		if (store_symbols_path(datadir, r.build_id, r.build_id_len,
				       STORE_SYM_EXECUTABLE, path, sizeof path))
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* the record lags the tree: nothing to hash */
		if (fdo_grow(c.e, cap, c.n + 1)) {
			close(fd);
			rc = FDO_ENOMEM;
			break;
		}
		c.e[c.n].rec = r;
		if (store_file_id(fd, c.e[c.n].fid) == FDO_OK)
			c.n++;
		close(fd);
	}
	store_txn_abort(t);
	if (!rc)
		rc = store_write(s, index_fn, &c);
	if (!rc && indexed)
		*indexed = c.n;
	free(c.e);
	return rc;
}

/* ---------------------------------------------------------------- adding -- */

/* Largest inflated size of compressed sections a file may claim. */
static _Atomic uint64_t inflate_max = 512ull << 20;

void store_symbols_limit_inflated(uint64_t bytes)
{
	inflate_max = bytes ? bytes : UINT64_MAX;
}

/*
 * prepare validates fd into res and plans; *need = 0 means all present.
 * A file whose compressed sections claim more than the inflate limit is
 * refused here, before anything is written or inflated; a file whose
 * build-id slots hold different files is refused with FDO_ECONFLICT.
 */
static int prepare(const char *datadir, int fd, unsigned flags, char *dir,
		   size_t cap, unsigned *need, unsigned *replace,
		   struct store_sym_result *res)
{
	int rc = store_elf_inspect(fd, &res->elf, res->why, sizeof res->why);
	if (rc)
		return rc;
	uint64_t max = inflate_max;
	if (res->elf.inflated > max)
		return why(
			res, FDO_ELIMIT,
			"compressed sections claim %llu bytes once inflated, "
			"over the limit of %llu (--debug-inflate-max): "
			"refused before inflating",
			(unsigned long long)res->elf.inflated,
			(unsigned long long)max);
	res->slots = slots_of(&res->elf);
	/* Indexed by the file id of the file as uploaded, stored or not: a
	 * stripped copy of a stored executable is what hosts run, and what
	 * an OpenTelemetry agent hashes. */
	if ((res->slots & STORE_SYM_EXECUTABLE) &&
	    store_file_id(fd, res->file_id) == FDO_OK)
		res->has_file_id = 1;
	rc = build_dir(datadir, res->elf.build_id, res->elf.build_id_len, dir,
		       cap);
	if (rc)
		return why(res, rc, "data directory path too long");
	unsigned conflict;
	*need = plan(dir, fd, flags, res, replace, &conflict);
	if (conflict) {
		char hex[2 * FDO_BUILD_ID_MAX + 1];
		fdo_hex_encode(res->elf.build_id, res->elf.build_id_len, hex);
		res->conflict = conflict;
		return why(res, FDO_ECONFLICT,
			   "build-id %s already has a different %s%s%s; a "
			   "stored file is never silently replaced (an admin "
			   "may replace it: PUT /v1/symbols?replace=1)",
			   hex,
			   conflict & STORE_SYM_EXECUTABLE ? "executable" : "",
			   conflict == (STORE_SYM_EXECUTABLE |
					STORE_SYM_DEBUGINFO)
				   ? " and "
				   : "",
			   conflict & STORE_SYM_DEBUGINFO ? "debuginfo" : "");
	}
	return FDO_OK;
}

/* finish: unlink tmp, drop the directories made for a failed upload if
 * they stayed empty, record a success. */
static int finish(store *s, const char *dir, int made_dir, const char *tmp,
		  int rc, const char *binary, struct store_sym_result *res)
{
	if (tmp)
		unlink(tmp);
	if (rc && !made_dir)
		return rc;
	if (rc) {
		/* Fails harmlessly when the directories hold files. */
		if (rmdir(dir) == 0) {
			char parent[PATH_MAX];
			snprintf(parent, sizeof parent, "%s", dir);
			char *slash = strrchr(parent, '/');
			if (slash) {
				*slash = '\0';
				rmdir(parent);
			}
		}
		return rc;
	}
	rc = record(s, dir, binary, res);
	if (rc)
		return rc;
	return res->stored ? FDO_OK : FDO_EEXISTS;
}

int store_symbols_add_fd(store *s, const char *datadir, int fd,
			 const char *binary, struct store_sym_result *res)
{
	memset(res, 0, sizeof *res);
	char dir[PATH_MAX];
	unsigned need;
	unsigned replace;
	int rc = prepare(datadir, fd, 0, dir, sizeof dir, &need, &replace, res);
	if (rc)
		return rc;
	if (!need)
		return finish(s, dir, 0, NULL, FDO_OK, binary, res);

	rc = store_mkdir_p(dir, 1);
	if (rc)
		return why(res, rc, "cannot create %s", dir);
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s/.upload-XXXXXX", dir) >=
	    (int)sizeof tmp)
		return finish(s, dir, 1, NULL,
			      why(res, FDO_ELIMIT, "path too long"), binary,
			      res);
	int out = mkstemp(tmp);
	if (out < 0) {
		int e = errno;
		return finish(s, dir, 1, NULL,
			      why(res, errno_err(e),
				  "cannot create a file in "
				  "%s: %s",
				  dir, strerror(e)),
			      binary, res);
	}
	rc = copy_fd(fd, out, res->elf.size, res);
	if (!rc && (fchmod(out, 0644) != 0 || fsync(out) != 0))
		rc = why(res, FDO_EIO, "cannot fsync %s: %s", tmp,
			 strerror(errno));
	if (!rc) {
		/* The source may have changed under us: store what the copy
		 * is, and only if it is still the file we classified. */
		struct store_elf_info again;
		char w[sizeof res->why];
		rc = store_elf_inspect(out, &again, w, sizeof w);
		if (rc)
			rc = why(res, rc, "copy does not validate: %s", w);
		else if (again.build_id_len != res->elf.build_id_len ||
			 memcmp(again.build_id, res->elf.build_id,
				again.build_id_len) ||
			 slots_of(&again) != res->slots)
			rc = why(res, FDO_EIO, "file changed while copied");
	}
	close(out);
	if (!rc)
		rc = place(dir, tmp, need, replace, res);
	return finish(s, dir, 1, tmp, rc, binary, res);
}

int store_symbols_add_file(store *s, const char *datadir, const char *path,
			   const char *binary, struct store_sym_result *res)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		memset(res, 0, sizeof *res);
		return why(res, e == ENOENT ? FDO_ENOT_FOUND : errno_err(e),
			   "cannot open: %s", strerror(e));
	}
	int rc = store_symbols_add_fd(s, datadir, fd, binary, res);
	close(fd);
	return rc;
}

int store_symbols_tmpfile(const char *datadir, char *path, size_t cap, int *fd)
{
	*fd = -1;
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof dir, "%s/" INCOMING, datadir) >=
	    (int)sizeof dir)
		return FDO_ELIMIT;
	int rc = store_mkdir_p(dir, 1);
	if (rc)
		return rc;
	int n = snprintf(path, cap, "%s/upload-XXXXXX", dir);
	if (n < 0 || (size_t)n >= cap)
		return FDO_ELIMIT;
	int f = mkstemp(path);
	if (f < 0) {
		fdo_error("store: cannot create a file in %s: %s", dir,
			  strerror(errno));
		return errno_err(errno);
	}
	fchmod(f, 0644);
	*fd = f;
	return FDO_OK;
}

int store_symbols_adopt(store *s, const char *datadir, const char *tmp_path,
			const char *binary, unsigned flags,
			struct store_sym_result *res)
{
	memset(res, 0, sizeof *res);
	char incoming[PATH_MAX];
	snprintf(incoming, sizeof incoming, "%s/" INCOMING "/", datadir);
	if (strncmp(tmp_path, incoming, strlen(incoming)) ||
	    strchr(tmp_path + strlen(incoming), '/')) {
		return why(res, FDO_EINVAL, "%s is not under %s", tmp_path,
			   incoming);
	}
	int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return why(res, errno_err(e), "cannot open %s: %s", tmp_path,
			   strerror(e));
	}
	char dir[PATH_MAX] = "";
	unsigned need = 0;
	unsigned replace = 0;
	int made_dir = 0;
	int rc = prepare(datadir, fd, flags, dir, sizeof dir, &need, &replace,
			 res);
	if (!rc && need) {
		if (fsync(fd) != 0)
			rc = why(res, FDO_EIO, "cannot fsync %s: %s", tmp_path,
				 strerror(errno));
		if (!rc) {
			made_dir = 1;
			rc = store_mkdir_p(dir, 1);
			if (rc)
				why(res, rc, "cannot create %s", dir);
		}
		if (!rc)
			rc = place(dir, tmp_path, need, replace, res);
	}
	close(fd);
	return finish(s, dir, made_dir, tmp_path, rc, binary, res);
}
