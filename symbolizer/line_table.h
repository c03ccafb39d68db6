/*
 * symbolizer/line_table.h — parser of one DWARF line program (private to
 * symbolizer/; see line_table.c).
 */
#ifndef FDO_SYM_LINE_TABLE_H
#define FDO_SYM_LINE_TABLE_H

#include "symbolizer/sym_int.h"

/* Raw bytes of one (decompressed) section; data NULL when absent. */
struct sym_sec {
	const uint8_t *data;
	size_t size;
};

struct sym_line_secs {
	struct sym_sec line, line_str, str;
};

/* One parsed line table. */
struct sym_line {
	unsigned version;
	uint32_t *files; /* joined file names (strings), in table order */
	size_t nfiles;
	struct sym_vec seqs; /* struct sym_seq, row_first into rows */
	struct sym_vec rows; /* struct sym_row, file already a string */
};

void sym_line_init(struct sym_line *lt);
void sym_line_fini(struct sym_line *lt);

/*
 * sym_line_parse reads the line table at offset of secs->line. File names
 * are interned into strs. With want_rows = 0 only the file table is read.
 * Returns FDO_OK (also for a program cut short: what was complete is kept),
 * FDO_EPARSE for an unreadable header, FDO_ENOMEM.
 */
int sym_line_parse(const struct sym_line_secs *secs, uint64_t offset,
		   const char *comp_dir, unsigned cu_addr_size,
		   struct sym_strtab *strs, int want_rows, struct sym_line *lt);

/* sym_line_file maps a DWARF file index to its string, SYM_NONE if the
 * index is invalid for the table's version (v5: 0-based, else 1-based). */
uint32_t sym_line_file(const struct sym_line *lt, uint64_t idx);

#endif
