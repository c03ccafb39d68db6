/*
 * symbolizer/index.c — opening an index (from the cache file, or by
 * building it) and looking addresses up in it.
 *
 * Workload: lookups outnumber opens by millions to one. A lookup is a few
 * binary searches over immutable arrays (symbol, CU segment, line sequence,
 * row, DIE map) plus a walk up parent links; it allocates nothing and takes
 * no lock, so any number of threads may share one index.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/sym_int.h"

const char *sym_cache_dir_default(char *buf, size_t cap)
{
	const char *e = getenv("FDOD_CACHE_DIR");
	if (e && *e) {
		snprintf(buf, cap, "%s", e);
		return buf;
	}
	e = getenv("XDG_CACHE_HOME");
	if (e && *e) {
		snprintf(buf, cap, "%s/fdod", e);
		return buf;
	}
	e = getenv("HOME");
	if (e && *e) {
		snprintf(buf, cap, "%s/.cache/fdod", e);
		return buf;
	}
	return NULL;
}

static void cache_path(const char *dir, const uint8_t *id, size_t len,
		       char *out, size_t cap)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(id, len, hex);
	snprintf(out, cap, "%s/%.2s/%s.symidx", dir, hex, hex + 2);
}

/* try_cached maps path and checks it belongs to src. */
static int try_cached(const char *path, const struct sym_elf_src *src,
		      sym_index *idx)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return FDO_ENOT_FOUND;
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		close(fd);
		return FDO_ECORRUPT;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return FDO_EIO;
	int err = sym_file_parse(m, (size_t)st.st_size, 0, &idx->v);
	if (!err &&
	    (idx->v.build_id_len != src->build_id_len ||
	     memcmp(idx->v.build_id, src->build_id, src->build_id_len) ||
	     idx->v.source_sig != src->sig))
		err = FDO_EEXISTS; /* stale: built from other input files */
	if (err) {
		munmap(m, (size_t)st.st_size);
		return err;
	}
	idx->mem = m;
	idx->len = (size_t)st.st_size;
	idx->mapped = 1;
	return FDO_OK;
}

static int build(const char *elf_path, const struct sym_elf_src *src,
		 void **buf, size_t *len)
{
	struct sym_builder b;
	int err = sym_builder_init(&b);
	if (!err)
		err = sym_elf_collect(elf_path, &b);
	if (!err)
		err = sym_dwarf_collect(
			src->debug_path[0] ? src->debug_path : elf_path, &b);
	/* A broken debug file still leaves the symbol table. */
	if (err && err != FDO_ENOMEM && b.loads.n) {
		fdo_warn("symbolizer: %s: DWARF unusable (%s), symbols only",
			 elf_path, fdo_strerror(err));
		sym_vec_fini(&b.cus);
		sym_vec_fini(&b.cusegs);
		b.has_dwarf = 0;
		err = FDO_OK;
	}
	b.source_sig = src->sig;
	if (!err && sym_strtab_add(&b.strs, "", 0) == SYM_NONE)
		err = FDO_ENOMEM;
	if (!err)
		err = sym_file_serialize(&b, buf, len);
	sym_builder_fini(&b);
	return err;
}

int sym_index_open(const char *elf_path, const char *debug_path,
		   const char *cache_dir, sym_index **out)
{
	*out = NULL;
	struct sym_elf_src *src = malloc(sizeof *src);
	sym_index *idx = calloc(1, sizeof *idx);
	if (!src || !idx) {
		free(src);
		free(idx);
		return FDO_ENOMEM;
	}
	int err = sym_elf_probe(elf_path, debug_path, src);
	if (err)
		goto fail;
	char path[4400];
	int persist = cache_dir && *cache_dir && src->build_id_len > 0;
	if (persist) {
		cache_path(cache_dir, src->build_id, src->build_id_len, path,
			   sizeof path);
		err = try_cached(path, src, idx);
		if (!err)
			goto done;
		if (err != FDO_ENOT_FOUND)
			fdo_info("symbolizer: rebuilding %s (%s)", path,
				 err == FDO_EEXISTS ? "stale"
						    : fdo_strerror(err));
	}
	void *buf;
	size_t len;
	err = build(elf_path, src, &buf, &len);
	if (err)
		goto fail;
	if (persist)
		sym_file_write(path, buf, len); /* logged; memory copy works */
	err = sym_file_parse(buf, len, 1, &idx->v);
	if (err) {
		free(buf);
		goto fail;
	}
	idx->mem = buf;
	idx->len = len;
	idx->mapped = 0;
done:
	free(src);
	*out = idx;
	return FDO_OK;
fail:
	free(src);
	free(idx);
	return err;
}

void sym_index_close(sym_index *idx)
{
	if (!idx)
		return;
	if (idx->mapped)
		munmap(idx->mem, idx->len);
	else
		free(idx->mem);
	free(idx);
}

size_t sym_index_memory(const sym_index *idx)
{
	return idx->len;
}

void sym_index_build_id(const sym_index *idx, const uint8_t **id, size_t *len)
{
	*id = idx->v.build_id;
	*len = idx->v.build_id_len;
}

int sym_index_offset_to_vaddr(const sym_index *idx, uint64_t off,
			      uint64_t *vaddr)
{
	for (uint64_t i = 0; i < idx->v.nloads; i++) {
		const struct sym_load *l = &idx->v.loads[i];
		if (off >= l->off && off - l->off < l->filesz) {
			*vaddr = off - l->off + l->vaddr;
			return FDO_OK;
		}
	}
	return FDO_ENOT_FOUND;
}

static const char *str(const struct sym_view *v, uint32_t s)
{
	return s == SYM_NONE ? NULL : v->strs + s;
}

int sym_index_lookup(const sym_index *idx, uint64_t a, struct sym_frame *fr,
		     size_t cap, size_t *n, struct sym_symbol *symbol)
{
	const struct sym_view *v = &idx->v;
	*n = 0;
	if (symbol) {
		memset(symbol, 0, sizeof *symbol);
		size_t lo = 0, hi = v->nsyms;
		while (lo < hi) { /* first symbol with addr > a */
			size_t mid = (lo + hi) / 2;
			if (v->syms[mid].addr <= a)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > 0) {
			const struct sym_sym *s = &v->syms[lo - 1];
			if (s->size == 0 || a - s->addr < s->size) {
				symbol->found = 1;
				symbol->name = v->strs + s->name;
				symbol->file = str(v, s->file);
				symbol->addr = s->addr;
				symbol->size = s->size;
			}
		}
	}

	/* The compile unit. */
	size_t lo = 0, hi = v->ncusegs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->cusegs[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || a >= v->cusegs[lo - 1].hi)
		return FDO_OK;
	const struct sym_cu *cu = &v->cus[v->cusegs[lo - 1].cu];

	/* The line row: the first sequence ending after a, if it holds a. */
	const struct sym_row *row = NULL;
	const struct sym_seq *sq = v->seqs + cu->seq_first;
	lo = 0, hi = cu->seq_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sq[mid].hi <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < cu->seq_count && sq[lo].lo <= a) {
		const struct sym_row *r = v->rows + sq[lo].row_first;
		size_t l = 1, h = sq[lo].row_count;
		if (sq[lo].hi - sq[lo].lo <= 0xffffffffu) {
			/* Dense keys: the last levels share cache lines. */
			const uint32_t *k = v->rkeys + sq[lo].row_first;
			uint32_t key = (uint32_t)(a - sq[lo].lo);
			while (l < h) {
				size_t mid = (l + h) / 2;
				if (k[mid] <= key)
					l = mid + 1;
				else
					h = mid;
			}
		} else {
			while (l < h) {
				size_t mid = (l + h) / 2;
				if (r[mid].addr <= a)
					l = mid + 1;
				else
					h = mid;
			}
		}
		row = &r[l - 1];
	}

	/* The innermost subroutine DIE. */
	uint32_t node = SYM_NONE;
	const struct sym_dmap *dm = v->dmap + cu->dmap_first;
	lo = 0, hi = cu->dmap_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (dm[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && a < dm[lo - 1].hi)
		node = dm[lo - 1].node;

	if (node == SYM_NONE) {
		if (!row)
			return FDO_OK;
		if (cap) {
			memset(&fr[0], 0, sizeof fr[0]);
			fr[0].file = str(v, row->file);
			fr[0].start_file = "";
			if (fr[0].file) {
				fr[0].line = row->line;
				fr[0].column = row->column;
				fr[0].discriminator = row->discr;
			}
		}
		*n = 1;
		return FDO_OK;
	}
	size_t k = 0;
	const struct sym_node *prev = NULL;
	while (node != SYM_NONE) {
		const struct sym_node *nd = &v->nodes[node];
		if (k < cap) {
			struct sym_frame *f = &fr[k];
			f->function = str(v, nd->name);
			f->start_file = nd->decl_file == SYM_NONE
						? ""
						: v->strs + nd->decl_file;
			f->start_line = nd->decl_line;
			f->has_start_address = !!(nd->flags & SYM_NODE_LOW_PC);
			f->start_address = nd->low_pc;
			if (!prev) {
				f->file = row ? str(v, row->file) : NULL;
				if (f->file) {
					f->line = row->line;
					f->column = row->column;
					f->discriminator = row->discr;
				} else {
					f->line = f->column = f->discriminator =
						0;
				}
			} else {
				f->file = str(v, prev->call_file);
				f->line = prev->call_line;
				f->column = prev->call_column;
				f->discriminator = prev->call_discr;
			}
		}
		k++;
		prev = nd;
		if (nd->flags & SYM_NODE_SUBPROGRAM)
			break;
		node = nd->parent;
	}
	*n = k;
	return FDO_OK;
}
