/*
 * storage/wal.c — the write-ahead log of ingest: durable, append-only
 * records in numbered segment files beside the LMDB environment.
 *
 * Workload: one appender thread writes a group of records and syncs once
 * per group (group commit: one fdatasync acknowledges every batch of the
 * group); one reader replays the tail after a restart; records are
 * deleted a segment at a time once the store has absorbed them.
 *
 * Files: DIR/wal/<segment number, 16 hex digits>.wal
 *
 * Segment layout:
 *   OFFSET SIZE DESCRIPTION
 *   0      8    magic "FDOWAL01"
 *   8      8    segment number, big-endian
 *   16     ...  records, back to back
 * Record layout:
 *   0      4    payload length N, big-endian (1 .. STORE_WAL_RECORD_MAX)
 *   4      4    CRC-32C of the payload, big-endian
 *   8      N    payload (opaque to this file)
 *
 * A record is acknowledged only after the fdatasync that follows it, so a
 * crash can leave at most a torn tail in the last segment: at open, the
 * last segment is scanned and cut after its last whole, checksummed
 * record. A bad record anywhere else is corruption and is reported.
 * A new segment is created, fsynced, and its directory fsynced before any
 * record in it is acknowledged.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "storage/storage.h"

#define WAL_MAGIC   "FDOWAL01"
#define WAL_HDR	    16
#define WAL_REC_HDR 8

struct store_wal {
	char dir[4096];
	uint64_t segment_bytes;
	uint64_t first; /* oldest segment on disk */
	uint64_t cur;	/* segment being appended to */
	int fd;		/* open on cur */
	uint64_t size;	/* bytes in cur */
	int dir_dirty;	/* a segment was created since the last sync */
};

static void seg_path(const struct store_wal *w, uint64_t seg, char *buf,
		     size_t cap)
{
	snprintf(buf, cap, "%s/%016llx.wal", w->dir, (unsigned long long)seg);
}

int store_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return FDO_EIO;
	int rc = fsync(fd) ? FDO_EIO : FDO_OK;
	close(fd);
	return rc;
}

int store_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == ENOSPC ? FDO_ENOSPACE : FDO_EIO;
		if (w == 0) /* nothing written, no error: never spin */
			return FDO_EIO;
		c += w;
		n -= (size_t)w;
	}
	return FDO_OK;
}

static int seg_create(struct store_wal *w, uint64_t seg)
{
	char path[4200];
	seg_path(w, seg, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fdo_error("wal: cannot create %s: %s", path, strerror(errno));
		return errno == ENOSPC ? FDO_ENOSPACE : FDO_EIO;
	}
	uint8_t hdr[WAL_HDR];
	memcpy(hdr, WAL_MAGIC, 8);
	fdo_put_be64(hdr + 8, seg);
	int rc = store_write_all(fd, hdr, sizeof hdr);
	if (rc) {
		fdo_error("wal: writing %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return rc;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->cur = seg;
	w->size = WAL_HDR;
	w->dir_dirty = 1;
	return FDO_OK;
}

/* Read a segment's records from offset `from`, calling fn for each; on a
 * bad or partial record stop and report its offset in *end. */
static int seg_scan(int fd, uint64_t seg, uint64_t from, uint64_t *end,
		    int (*fn)(void *arg, const void *rec, size_t len,
			      struct store_wal_pos pos),
		    void *arg, int *torn)
{
	struct stat st;
	if (fstat(fd, &st))
		return FDO_EIO;
	uint64_t size = (uint64_t)st.st_size;
	uint8_t hdr[WAL_HDR];
	if (size < WAL_HDR || pread(fd, hdr, WAL_HDR, 0) != WAL_HDR ||
	    memcmp(hdr, WAL_MAGIC, 8) || fdo_get_be64(hdr + 8) != seg) {
		*end = 0;
		*torn = 1;
		return FDO_OK;
	}
	uint64_t off = from < WAL_HDR ? WAL_HDR : from;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc = FDO_OK;
	*torn = 0;
	while (off < size) {
		uint8_t rh[WAL_REC_HDR];
		if (size - off < WAL_REC_HDR ||
		    pread(fd, rh, WAL_REC_HDR, (off_t)off) != WAL_REC_HDR) {
			*torn = 1;
			break;
		}
		uint32_t len = fdo_get_be32(rh), crc = fdo_get_be32(rh + 4);
		if (len == 0 || len > STORE_WAL_RECORD_MAX ||
		    size - off - WAL_REC_HDR < len) {
			*torn = 1;
			break;
		}
		if (len > cap) {
			uint8_t *nb = realloc(buf, len);
			if (!nb) {
				rc = FDO_ENOMEM;
				break;
			}
			buf = nb;
			cap = len;
		}
		if (pread(fd, buf, len, (off_t)(off + WAL_REC_HDR)) !=
			    (ssize_t)len ||
		    fdo_crc32c(0, buf, len) != crc) {
			*torn = 1;
			break;
		}
		off += WAL_REC_HDR + len;
		if (fn &&
		    (rc = fn(arg, buf, len, (struct store_wal_pos){seg, off})))
			break;
	}
	free(buf);
	*end = off;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Segment numbers on disk, sorted. */
static int list_segments(const char *dir, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return FDO_EIO;
	uint64_t *segs = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned long long seg;
		char tail[8];
		if (strlen(e->d_name) != 20 ||
		    sscanf(e->d_name, "%16llx.%3s", &seg, tail) != 2 ||
		    strcmp(tail, "wal"))
			continue;
		if (fdo_grow(segs, cap, cnt + 1)) {
			free(segs);
			closedir(d);
			return FDO_ENOMEM;
		}
		segs[cnt++] = seg;
	}
	closedir(d);
	if (cnt)
		qsort(segs, cnt, sizeof *segs, cmp_u64);
	*out = segs;
	*n = cnt;
	return FDO_OK;
}

int store_wal_open(const char *datadir, uint64_t segment_bytes, store_wal **out)
{
	struct store_wal *w = calloc(1, sizeof *w);
	if (!w)
		return FDO_ENOMEM;
	w->fd = -1;
	w->segment_bytes = segment_bytes ? segment_bytes : (64u << 20);
	snprintf(w->dir, sizeof w->dir, "%s/wal", datadir);
	if (mkdir(w->dir, 0755) && errno != EEXIST) {
		fdo_error("wal: cannot create %s: %s", w->dir, strerror(errno));
		free(w);
		return FDO_EIO;
	}
	uint64_t *segs;
	size_t n;
	int rc = list_segments(w->dir, &segs, &n);
	if (rc) {
		free(w);
		return rc;
	}
	if (n == 0) {
		w->first = 1;
		rc = seg_create(w, 1);
	} else {
		/* Reopen the last segment; cut a torn tail. */
		char path[4200];
		w->first = segs[0];
		w->cur = segs[n - 1];
		seg_path(w, w->cur, path, sizeof path);
		w->fd = open(path, O_RDWR | O_CLOEXEC);
		if (w->fd < 0) {
			fdo_error("wal: cannot open %s: %s", path,
				  strerror(errno));
			rc = FDO_EIO;
		} else {
			uint64_t end;
			int torn;
			rc = seg_scan(w->fd, w->cur, WAL_HDR, &end, NULL, NULL,
				      &torn);
			if (!rc && end == 0) {
				/* Not even a header: remake the segment. */
				close(w->fd);
				w->fd = -1;
				unlink(path);
				rc = seg_create(w, w->cur);
			} else if (!rc) {
				if (torn) {
					fdo_warn("wal: %s: cutting a torn tail "
						 "at offset %llu",
						 path, (unsigned long long)end);
					if (ftruncate(w->fd, (off_t)end) ||
					    fdatasync(w->fd))
						rc = FDO_EIO;
				}
				w->size = end;
				if (lseek(w->fd, (off_t)end, SEEK_SET) < 0)
					rc = FDO_EIO;
			}
		}
	}
	free(segs);
	if (!rc && w->dir_dirty && !(rc = store_fsync_dir(w->dir)))
		w->dir_dirty = 0;
	if (rc) {
		if (w->fd >= 0)
			close(w->fd);
		free(w);
		return rc;
	}
	*out = w;
	return FDO_OK;
}

void store_wal_close(store_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

int store_wal_append(store_wal *w, const void *rec, size_t len,
		     struct store_wal_pos *end)
{
	if (len == 0 || len > STORE_WAL_RECORD_MAX)
		return FDO_EINVAL;
	int rc;
	if (w->size + WAL_REC_HDR + len > w->segment_bytes &&
	    w->size > WAL_HDR) {
		/* The old segment must be durable before it stops being the
		 * one store_wal_sync syncs. */
		if (fdatasync(w->fd))
			return FDO_EIO;
		if ((rc = seg_create(w, w->cur + 1)))
			return rc;
	}
	uint8_t hdr[WAL_REC_HDR];
	fdo_put_be32(hdr, (uint32_t)len);
	fdo_put_be32(hdr + 4, fdo_crc32c(0, rec, len));
	if ((rc = store_write_all(w->fd, hdr, sizeof hdr)) ||
	    (rc = store_write_all(w->fd, rec, len))) {
		/* Leave no partial record behind: cut back to the last one. */
		if (ftruncate(w->fd, (off_t)w->size) == 0)
			lseek(w->fd, (off_t)w->size, SEEK_SET);
		return rc;
	}
	w->size += WAL_REC_HDR + len;
	if (end)
		*end = (struct store_wal_pos){w->cur, w->size};
	return FDO_OK;
}

int store_wal_sync(store_wal *w)
{
	if (fdatasync(w->fd)) {
		fdo_error("wal: fdatasync: %s", strerror(errno));
		return FDO_EIO;
	}
	if (w->dir_dirty) {
		if (store_fsync_dir(w->dir))
			return FDO_EIO;
		w->dir_dirty = 0;
	}
	return FDO_OK;
}

int store_wal_replay(store_wal *w, struct store_wal_pos from,
		     int (*fn)(void *arg, const void *rec, size_t len,
			       struct store_wal_pos end),
		     void *arg)
{
	uint64_t *segs;
	size_t n;
	int rc = list_segments(w->dir, &segs, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		if (segs[i] < from.segment)
			continue;
		char path[4200];
		seg_path(w, segs[i], path, sizeof path);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = FDO_EIO;
			break;
		}
		uint64_t end;
		int torn;
		rc = seg_scan(fd, segs[i],
			      segs[i] == from.segment ? from.offset : WAL_HDR,
			      &end, fn, arg, &torn);
		close(fd);
		if (!rc && torn && segs[i] != w->cur) {
			fdo_error("wal: %s is corrupt at offset %llu", path,
				  (unsigned long long)end);
			rc = FDO_ECORRUPT;
		}
	}
	free(segs);
	return rc;
}

int store_wal_start_after(store_wal *w, struct store_wal_pos pos)
{
	if (w->cur > pos.segment ||
	    (w->cur == pos.segment && w->size >= pos.offset))
		return FDO_OK;
	if (w->size > WAL_HDR && fdatasync(w->fd))
		return FDO_EIO;
	int rc = seg_create(w,
			    (w->cur > pos.segment ? w->cur : pos.segment) + 1);
	if (!rc)
		rc = store_wal_sync(w);
	return rc;
}

int store_wal_trim(store_wal *w, struct store_wal_pos applied)
{
	/* Segments before the one holding `applied` are fully absorbed. */
	while (w->first < applied.segment && w->first < w->cur) {
		char path[4200];
		seg_path(w, w->first, path, sizeof path);
		if (unlink(path) && errno != ENOENT) {
			fdo_warn("wal: cannot remove %s: %s", path,
				 strerror(errno));
			return FDO_EIO;
		}
		w->first++;
	}
	return FDO_OK;
}

void store_wal_stats(store_wal *w, uint64_t *segments, uint64_t *bytes)
{
	*segments = w->cur - w->first + 1;
	*bytes = (w->cur - w->first) * w->segment_bytes + w->size;
}

/* The applied position lives in the meta table, written in the same
 * transaction as the data it covers. */
#define WAL_META_KEY "wal.applied"

int store_wal_applied_get(store_txn *t, struct store_wal_pos *pos)
{
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_META, WAL_META_KEY, strlen(WAL_META_KEY),
			   &v, &vl);
	if (rc == FDO_ENOT_FOUND) {
		*pos = (struct store_wal_pos){0, 0};
		return FDO_OK;
	}
	if (rc)
		return rc;
	if (vl != 16)
		return FDO_ECORRUPT;
	pos->segment = fdo_get_be64(v);
	pos->offset = fdo_get_be64((const uint8_t *)v + 8);
	return FDO_OK;
}

int store_wal_applied_put(store_txn *t, struct store_wal_pos pos)
{
	uint8_t v[16];
	fdo_put_be64(v, pos.segment);
	fdo_put_be64(v + 8, pos.offset);
	return store_put(t, STORE_META, WAL_META_KEY, strlen(WAL_META_KEY), v,
			 sizeof v, 0);
}
