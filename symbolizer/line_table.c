/*
 * symbolizer/line_table.c — one DWARF 2-5 line program (.debug_line) to
 * sequences and rows, with llvm-symbolizer's semantics, and file names
 * joined with the directory table and the comp dir exactly as llvm's
 * Prologue::getFileNameByIndex (AbsoluteFilePath) does.
 *
 * We parse the line program ourselves instead of using dwarf_getsrclines:
 * libdw sorts rows across sequences and joins paths its own way, and both
 * differ from llvm in corner cases that a differential test sees.
 *
 * llvm semantics kept here: a sequence is kept only if it has rows and
 * lo < hi; rows under a tombstone address (all ones) are dropped; a lookup
 * takes the last row whose address is <= the address, so of several rows
 * at one address only the last matters (we drop the others), and
 * consecutive rows that answer the same are merged. Input is untrusted:
 * every read is bounds-checked, and a malformed program ends the table.
 */
#include <stdlib.h>
#include <string.h>

#include <dwarf.h>

#include "symbolizer/line_table.h"

struct rd {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t rd_u(struct rd *r, unsigned n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	while (r->p < r->end) {
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return v;
}

static int64_t rd_sleb(struct rd *r)
{
	int64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;
	while (r->p < r->end) {
		b = *r->p++;
		if (shift < 64)
			v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80)) {
			/* Sign-extend in unsigned arithmetic: at shift 63,
			 * (int64_t)1 << shift would overflow. */
			if (shift < 64 && (b & 0x40))
				v = (int64_t)((uint64_t)v |
					      (~(uint64_t)0 << shift));
			return v;
		}
	}
	r->bad = 1;
	return v;
}

static const char *rd_cstr(struct rd *r)
{
	const uint8_t *z = memchr(r->p, 0, (size_t)(r->end - r->p));
	if (!z) {
		r->bad = 1;
		r->p = r->end;
		return NULL;
	}
	const char *s = (const char *)r->p;
	r->p = z + 1;
	return s;
}

static const char *sec_str(const struct sym_sec *s, uint64_t off)
{
	if (!s->data || off >= s->size)
		return NULL;
	if (!memchr(s->data + off, 0, s->size - off))
		return NULL;
	return (const char *)s->data + off;
}

/*
 * Reads one attribute of a v5 entry. Returns a string for string forms
 * (NULL if unreadable), sets *num for constant forms.
 */
static const char *rd_form(struct rd *r, uint64_t form, unsigned off_size,
			   const struct sym_line_secs *secs, uint64_t *num)
{
	*num = 0;
	switch (form) {
	case DW_FORM_string:
		return rd_cstr(r);
	case DW_FORM_line_strp:
		return sec_str(&secs->line_str, rd_u(r, off_size));
	case DW_FORM_strp:
		return sec_str(&secs->str, rd_u(r, off_size));
	case DW_FORM_strp_sup:
	case DW_FORM_GNU_strp_alt:
		rd_u(r, off_size);
		return NULL;
	case DW_FORM_udata:
		*num = rd_uleb(r);
		return NULL;
	case DW_FORM_sdata:
		*num = (uint64_t)rd_sleb(r);
		return NULL;
	case DW_FORM_data1:
	case DW_FORM_strx1:
		*num = rd_u(r, 1);
		return NULL;
	case DW_FORM_data2:
	case DW_FORM_strx2:
		*num = rd_u(r, 2);
		return NULL;
	case DW_FORM_strx3:
		*num = rd_u(r, 3);
		return NULL;
	case DW_FORM_data4:
	case DW_FORM_strx4:
		*num = rd_u(r, 4);
		return NULL;
	case DW_FORM_data8:
		*num = rd_u(r, 8);
		return NULL;
	case DW_FORM_strx:
		*num = rd_uleb(r);
		return NULL;
	case DW_FORM_data16:
		rd_u(r, 8);
		rd_u(r, 8);
		return NULL;
	case DW_FORM_block: {
		uint64_t n = rd_uleb(r);
		if (n > (uint64_t)(r->end - r->p))
			r->bad = 1, r->p = r->end;
		else
			r->p += n;
		return NULL;
	}
	case DW_FORM_block1: {
		uint64_t n = rd_u(r, 1);
		if (n > (uint64_t)(r->end - r->p))
			r->bad = 1, r->p = r->end;
		else
			r->p += n;
		return NULL;
	}
	default:
		r->bad = 1; /* cannot skip an unknown form */
		return NULL;
	}
}

/* llvm's sys::path::append (POSIX style) of one component. */
static void path_append(char *buf, size_t *len, size_t cap, const char *c)
{
	size_t n = *len;
	if (n > 0 && buf[n - 1] == '/') {
		while (*c == '/')
			c++;
	} else if (*c != '/' && n > 0) {
		if (n + 1 < cap)
			buf[n++] = '/';
	}
	size_t cl = strlen(c);
	if (n + cl >= cap)
		cl = cap - 1 - n;
	memcpy(buf + n, c, cl);
	n += cl;
	buf[n] = 0;
	*len = n;
}

static int is_abs_path(const char *p)
{
	if (p[0] == '/')
		return 1;
	/* Windows style, which llvm also treats as absolute. */
	if (p[0] == '\\' && p[1] == '\\')
		return 1;
	if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':' &&
	    (p[2] == '\\' || p[2] == '/'))
		return 1;
	return 0;
}

struct entry {
	const char *name;
	uint64_t dir;
};

static uint32_t join_file(struct sym_strtab *strs, unsigned version,
			  const char *comp_dir, const char **dirs, size_t ndirs,
			  const struct entry *e)
{
	if (!e->name)
		return SYM_NONE;
	if (is_abs_path(e->name))
		return sym_strtab_add(strs, e->name, strlen(e->name));
	const char *inc = "";
	if (version >= 5) {
		if (e->dir < ndirs && dirs[e->dir])
			inc = dirs[e->dir];
	} else if (e->dir > 0 && e->dir <= ndirs && dirs[e->dir - 1]) {
		inc = dirs[e->dir - 1];
	}
	char buf[8192];
	size_t len = 0;
	buf[0] = 0;
	if ((version < 5 || e->dir != 0) && comp_dir && comp_dir[0] &&
	    !is_abs_path(inc))
		path_append(buf, &len, sizeof buf, comp_dir);
	path_append(buf, &len, sizeof buf, inc);
	path_append(buf, &len, sizeof buf, e->name);
	return sym_strtab_add(strs, buf, len);
}

void sym_line_init(struct sym_line *lt)
{
	memset(lt, 0, sizeof *lt);
	sym_vec_init(&lt->seqs, sizeof(struct sym_seq));
	sym_vec_init(&lt->rows, sizeof(struct sym_row));
}

void sym_line_fini(struct sym_line *lt)
{
	free(lt->files);
	sym_vec_fini(&lt->seqs);
	sym_vec_fini(&lt->rows);
	memset(lt, 0, sizeof *lt);
}

uint32_t sym_line_file(const struct sym_line *lt, uint64_t idx)
{
	if (lt->version >= 5)
		return idx < lt->nfiles ? lt->files[idx] : SYM_NONE;
	return idx >= 1 && idx <= lt->nfiles ? lt->files[idx - 1] : SYM_NONE;
}

struct state {
	uint64_t addr;
	uint64_t file, line, column, discr;
	int tomb;
};

/*
 * Rows of the current sequence are appended to lt->rows as they come
 * (file still a raw index in .file); end_sequence closes them.
 */
static int seq_close(struct sym_line *lt, size_t first, uint64_t hi)
{
	struct sym_row *rows = lt->rows.p;
	size_t n = lt->rows.n - first;
	if (n == 0 || rows[first].addr >= hi) {
		lt->rows.n = first; /* llvm drops sequences with lo >= hi */
		return FDO_OK;
	}
	/* Keep the last of equal addresses, then merge equal answers. */
	size_t o = first;
	for (size_t i = first; i < first + n; i++) {
		if (i + 1 < first + n && rows[i + 1].addr == rows[i].addr)
			continue;
		struct sym_row r = rows[i];
		r.file = sym_line_file(lt, r.file);
		if (o > first) {
			struct sym_row *p = &rows[o - 1];
			if (p->file == r.file && p->line == r.line &&
			    p->column == r.column && p->discr == r.discr)
				continue;
		}
		rows[o++] = r;
	}
	lt->rows.n = o;
	struct sym_seq *s = sym_vec_push(&lt->seqs, 1);
	if (!s)
		return FDO_ENOMEM;
	s->lo = rows[first].addr;
	s->hi = hi;
	s->row_first = (uint32_t)first;
	s->row_count = (uint32_t)(o - first);
	return FDO_OK;
}

static void state_reset(struct state *st)
{
	memset(st, 0, sizeof *st);
	st->file = 1;
	st->line = 1;
}

int sym_line_parse(const struct sym_line_secs *secs, uint64_t offset,
		   const char *comp_dir, unsigned cu_addr_size,
		   struct sym_strtab *strs, int want_rows, struct sym_line *lt)
{
	const struct sym_sec *sec = &secs->line;
	if (!sec->data || offset >= sec->size)
		return FDO_EPARSE;
	struct rd r = {sec->data + offset, sec->data + sec->size, 0};
	unsigned off_size = 4;
	uint64_t unit_len = rd_u(&r, 4);
	if (unit_len == 0xffffffffu) {
		off_size = 8;
		unit_len = rd_u(&r, 8);
	} else if (unit_len >= 0xfffffff0u) {
		return FDO_EPARSE;
	}
	if (r.bad || unit_len > (uint64_t)(r.end - r.p))
		return FDO_EPARSE;
	r.end = r.p + unit_len;
	unsigned version = (unsigned)rd_u(&r, 2);
	if (version < 2 || version > 5)
		return FDO_EPARSE;
	lt->version = version;
	unsigned addr_size = cu_addr_size;
	if (version >= 5) {
		addr_size = (unsigned)rd_u(&r, 1);
		rd_u(&r, 1); /* segment selector size */
	}
	uint64_t hdr_len = rd_u(&r, off_size);
	if (r.bad || hdr_len > (uint64_t)(r.end - r.p))
		return FDO_EPARSE;
	const uint8_t *prog = r.p + hdr_len;
	unsigned min_inst = (unsigned)rd_u(&r, 1);
	if (version >= 4)
		rd_u(&r, 1); /* maximum_operations_per_instruction */
	rd_u(&r, 1);	     /* default_is_stmt */
	int line_base = (int8_t)rd_u(&r, 1);
	unsigned line_range = (unsigned)rd_u(&r, 1);
	unsigned opcode_base = (unsigned)rd_u(&r, 1);
	uint8_t std_len[256] = {0};
	for (unsigned i = 1; i < opcode_base; i++)
		std_len[i] = (uint8_t)rd_u(&r, 1);
	if (r.bad)
		return FDO_EPARSE;

	/* Directory and file tables. */
	const char **dirs = NULL;
	size_t ndirs = 0;
	struct entry *ents = NULL;
	size_t nents = 0;
	int err = FDO_OK;
	if (version >= 5) {
		for (int tab = 0; tab < 2 && !r.bad; tab++) {
			unsigned nfmt = (unsigned)rd_u(&r, 1);
			uint64_t fmt[2 * 255];
			for (unsigned i = 0; i < nfmt; i++) {
				fmt[2 * i] = rd_uleb(&r);
				fmt[2 * i + 1] = rd_uleb(&r);
			}
			uint64_t count = rd_uleb(&r);
			if (r.bad || count > (uint64_t)(r.end - r.p))
				break;
			struct entry *e = calloc(count ? count : 1, sizeof *e);
			if (!e) {
				err = FDO_ENOMEM;
				break;
			}
			for (uint64_t k = 0; k < count && !r.bad; k++) {
				for (unsigned i = 0; i < nfmt; i++) {
					uint64_t num;
					const char *s =
						rd_form(&r, fmt[2 * i + 1],
							off_size, secs, &num);
					if (fmt[2 * i] == DW_LNCT_path)
						e[k].name = s;
					else if (fmt[2 * i] ==
						 DW_LNCT_directory_index)
						e[k].dir = num;
				}
			}
			if (tab == 0) {
				dirs = calloc(count ? count : 1, sizeof *dirs);
				if (!dirs) {
					free(e);
					err = FDO_ENOMEM;
					break;
				}
				for (uint64_t k = 0; k < count; k++)
					dirs[k] = e[k].name;
				ndirs = count;
				free(e);
			} else {
				ents = e;
				nents = count;
			}
		}
	} else {
		struct sym_vec dv, fv;
		sym_vec_init(&dv, sizeof(const char *));
		sym_vec_init(&fv, sizeof(struct entry));
		while (!r.bad) {
			const char *s = rd_cstr(&r);
			if (!s || !*s)
				break;
			const char **d = sym_vec_push(&dv, 1);
			if (!d) {
				err = FDO_ENOMEM;
				break;
			}
			*d = s;
		}
		while (!r.bad && !err) {
			const char *s = rd_cstr(&r);
			if (!s || !*s)
				break;
			struct entry *e = sym_vec_push(&fv, 1);
			if (!e) {
				err = FDO_ENOMEM;
				break;
			}
			e->name = s;
			e->dir = rd_uleb(&r);
			rd_uleb(&r);
			rd_uleb(&r);
		}
		dirs = dv.p;
		ndirs = dv.n;
		ents = fv.p;
		nents = fv.n;
	}
	if (!err && nents) {
		lt->files = malloc(nents * sizeof *lt->files);
		if (!lt->files)
			err = FDO_ENOMEM;
		for (size_t i = 0; !err && i < nents; i++)
			lt->files[i] = join_file(strs, version, comp_dir, dirs,
						 ndirs, &ents[i]);
		lt->nfiles = err ? 0 : nents;
	}
	free(dirs);
	free(ents);
	if (err || !want_rows)
		return err;

	/* The line program. */
	if (prog > r.end)
		return FDO_EPARSE;
	r.p = prog;
	r.bad = 0;
	struct state st;
	state_reset(&st);
	size_t seq_first = lt->rows.n;
	uint64_t tomb = addr_size == 4 ? 0xffffffffull : ~0ull;
	while (r.p < r.end && !r.bad && !err) {
		unsigned op = *r.p++;
		int emit = 0;
		if (op >= opcode_base) {
			if (!line_range)
				break;
			unsigned adj = op - opcode_base;
			st.addr += (uint64_t)(adj / line_range) * min_inst;
			st.line += (uint64_t)(int64_t)(line_base +
						       (int)(adj % line_range));
			emit = 1;
		} else if (op == 0) {
			uint64_t len = rd_uleb(&r);
			if (r.bad || len == 0 || len > (uint64_t)(r.end - r.p))
				break;
			const uint8_t *next = r.p + len;
			unsigned sub = *r.p++;
			switch (sub) {
			case DW_LNE_end_sequence:
				if (!st.tomb)
					err = seq_close(lt, seq_first, st.addr);
				else
					lt->rows.n = seq_first;
				seq_first = lt->rows.n;
				state_reset(&st);
				break;
			case DW_LNE_set_address: {
				unsigned n = (unsigned)(len - 1);
				if (n == 0 || n > 8)
					break;
				st.addr = rd_u(&r, n);
				st.tomb = st.addr == (n == 4   ? 0xffffffffull
						      : n == 8 ? ~0ull
							       : tomb);
				break;
			}
			case DW_LNE_set_discriminator:
				st.discr = rd_uleb(&r);
				break;
			default:
				break;
			}
			r.p = next;
		} else {
			switch (op) {
			case DW_LNS_copy:
				emit = 1;
				break;
			case DW_LNS_advance_pc:
				st.addr += rd_uleb(&r) * min_inst;
				break;
			case DW_LNS_advance_line:
				st.line += (uint64_t)rd_sleb(&r);
				break;
			case DW_LNS_set_file:
				st.file = rd_uleb(&r);
				break;
			case DW_LNS_set_column:
				st.column = rd_uleb(&r);
				break;
			case DW_LNS_const_add_pc:
				if (line_range)
					st.addr +=
						(uint64_t)((255 - opcode_base) /
							   line_range) *
						min_inst;
				break;
			case DW_LNS_fixed_advance_pc:
				st.addr += rd_u(&r, 2);
				break;
			case DW_LNS_set_isa:
				rd_uleb(&r);
				break;
			case DW_LNS_negate_stmt:
			case DW_LNS_set_basic_block:
			case DW_LNS_set_prologue_end:
			case DW_LNS_set_epilogue_begin:
				break;
			default:
				for (unsigned i = 0; i < std_len[op]; i++)
					rd_uleb(&r);
				break;
			}
		}
		if (emit) {
			if (!st.tomb) {
				struct sym_row *row =
					sym_vec_push(&lt->rows, 1);
				if (!row) {
					err = FDO_ENOMEM;
					break;
				}
				row->addr = st.addr;
				row->file = (uint32_t)(st.file > 0xfffffffeu
							       ? 0xfffffffeu
							       : st.file);
				row->line = (uint32_t)st.line;
				row->column = (uint32_t)st.column;
				row->discr = (uint32_t)st.discr;
			}
			st.discr = 0;
		}
	}
	/* A sequence without end_sequence is not a sequence (llvm). */
	lt->rows.n = seq_first;
	return err;
}
