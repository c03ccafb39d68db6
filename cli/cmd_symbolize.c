/*
 * cli/cmd_symbolize.c — `fdoctl symbolize`: addresses of one ELF file to
 * functions, files and lines, printed exactly as `llvm-symbolizer-16
 * --inlining` prints them (LLVM style) or as its --output-style=JSON.
 *
 * llvm-symbolizer rules reproduced here: input parsing (optional CODE
 * prefix, first token of the line, radix by prefix: 0x hex, 0b binary, 0o
 * or leading 0 octal, else decimal; bad input is echoed, or reported as a
 * JSON error), at least one frame per address, the outermost frame named
 * from the symbol table, demangling only of _Z names.
 * Workload: up to millions of addresses per run; output goes through one
 * big buffer with hand-formatted numbers, and demangled names are cached.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"

/* libstdc++'s demangler (cxxabi.h is C++; declare the C ABI symbol). */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/*
 * llvm-symbolizer prints names through LLVM's own Itanium demangler, whose
 * output differs from libstdc++'s ('lambda'(int) vs {lambda(int)#1}, ">>"
 * vs "> >"). When libLLVM-16 is installed (it is wherever llvm-symbolizer-16
 * is) we call the very same function, loaded on the first mangled name;
 * otherwise __cxa_demangle.
 */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);
static demangle_fn demangler;

static demangle_fn demangler_load(void)
{
	if (demangler)
		return demangler;
	void *h = dlopen("libLLVM-16.so.1", RTLD_LAZY | RTLD_LOCAL);
	if (h)
		demangler = (demangle_fn)dlsym(
			h, "_ZN4llvm15itaniumDemangleEPKcPcPmPi");
	if (!demangler)
		demangler = __cxa_demangle;
	return demangler;
}

#define MAX_FRAMES 256

/* --- output buffer --------------------------------------------------- */

static char obuf[1 << 20];
static size_t olen;

static void out_flush(void)
{
	size_t off = 0;
	while (off < olen) {
		ssize_t w = write(STDOUT_FILENO, obuf + off, olen - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	olen = 0;
}

static void out_mem(const char *s, size_t n)
{
	if (olen + n > sizeof obuf) {
		out_flush();
		if (n > sizeof obuf) {
			ssize_t w = write(STDOUT_FILENO, s, n);
			(void)w;
			return;
		}
	}
	memcpy(obuf + olen, s, n);
	olen += n;
}

static void out_str(const char *s)
{
	out_mem(s, strlen(s));
}

static void out_ch(char c)
{
	if (olen == sizeof obuf)
		out_flush();
	obuf[olen++] = c;
}

static void out_u64(uint64_t v)
{
	char b[24];
	int i = 24;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(b + i, (size_t)(24 - i));
}

static void out_hex(uint64_t v)
{
	char b[24];
	int i = 24;
	do {
		b[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	b[--i] = 'x';
	b[--i] = '0';
	out_mem(b + i, (size_t)(24 - i));
}

/* A JSON string as llvm::json writes it. */
static void out_json_str(const char *s)
{
	out_ch('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			out_ch('\\');
			out_ch((char)c);
		} else if (c < 0x20 || c == 0x7f) {
			static const char *const hex = "0123456789abcdef";
			out_ch('\\');
			switch (c) {
			case '\b':
				out_ch('b');
				break;
			case '\f':
				out_ch('f');
				break;
			case '\n':
				out_ch('n');
				break;
			case '\r':
				out_ch('r');
				break;
			case '\t':
				out_ch('t');
				break;
			default:
				out_str("u00");
				out_ch(hex[c >> 4]);
				out_ch(hex[c & 15]);
			}
		} else {
			out_ch((char)c);
		}
	}
	out_ch('"');
}

/* --- demangling, cached by name pointer (names live in the index) ---- */

struct dm_slot {
	const char *key;
	char *val; /* NULL: not demangled, print key */
};
static struct dm_slot *dm_tab;
static size_t dm_cap, dm_used;

static const char *demangle(const char *name)
{
	if (strncmp(name, "_Z", 2) && strncmp(name, "___Z", 4))
		return name;
	if ((dm_used + 1) * 2 > dm_cap) {
		size_t ncap = dm_cap ? dm_cap * 2 : 4096;
		struct dm_slot *t = calloc(ncap, sizeof *t);
		if (!t)
			return name;
		for (size_t i = 0; i < dm_cap; i++) {
			if (!dm_tab[i].key)
				continue;
			size_t j = ((uintptr_t)dm_tab[i].key >> 3) & (ncap - 1);
			while (t[j].key)
				j = (j + 1) & (ncap - 1);
			t[j] = dm_tab[i];
		}
		free(dm_tab);
		dm_tab = t;
		dm_cap = ncap;
	}
	size_t j = ((uintptr_t)name >> 3) & (dm_cap - 1);
	while (dm_tab[j].key && dm_tab[j].key != name)
		j = (j + 1) & (dm_cap - 1);
	if (!dm_tab[j].key) {
		int status = 0;
		dm_tab[j].key = name;
		dm_tab[j].val = demangler_load()(name, NULL, NULL, &status);
		if (status != 0) {
			free(dm_tab[j].val);
			dm_tab[j].val = NULL;
		}
		dm_used++;
	}
	return dm_tab[j].val ? dm_tab[j].val : name;
}

/* --- options --------------------------------------------------------- */

struct opts {
	char *elf, *debug, *cache_dir, *style;
	int json, file_offsets, demangle, no_cache, inlining;
};

/* llvm-symbolizer's spellings (--obj, --exe, -C, -i, --inlines) are
 * aliases, so that its command lines work here. */
static const struct fdo_opt opts[] = {
	{"elf", FDO_OPT_STRING, offsetof(struct opts, elf), NULL, "FILE",
	 "the executable or shared object"},
	{"obj", FDO_OPT_STRING, offsetof(struct opts, elf), NULL, "FILE", NULL},
	{"exe", FDO_OPT_STRING, offsetof(struct opts, elf), NULL, "FILE", NULL},
	{"debug-file", FDO_OPT_STRING, offsetof(struct opts, debug), NULL,
	 "FILE",
	 "read DWARF from FILE (default: the build-id tree under "
	 "/usr/lib/debug, .gnu_debuglink, FILE)"},
	{"output-style", FDO_OPT_STRING, offsetof(struct opts, style), "LLVM",
	 "S", "LLVM or JSON, as llvm-symbolizer"},
	{"file-offsets", FDO_OPT_BOOL, offsetof(struct opts, file_offsets),
	 "false", NULL,
	 "addresses are file offsets, mapped through the PT_LOAD headers"},
	{"demangle", FDO_OPT_BOOL, offsetof(struct opts, demangle), "true",
	 NULL, "demangle C++ names (--no-demangle: print linkage names)"},
	{"C", FDO_OPT_BOOL, offsetof(struct opts, demangle), NULL, NULL, NULL},
	{"inlining", FDO_OPT_BOOL, offsetof(struct opts, inlining), "true",
	 NULL, "print inlined frames (always on)"},
	{"inlines", FDO_OPT_BOOL, offsetof(struct opts, inlining), NULL, NULL,
	 NULL},
	{"i", FDO_OPT_BOOL, offsetof(struct opts, inlining), NULL, NULL, NULL},
	{"cache-dir", FDO_OPT_STRING, offsetof(struct opts, cache_dir), NULL,
	 "DIR",
	 "where the address index is kept (default $FDOD_CACHE_DIR, "
	 "$XDG_CACHE_HOME/fdod, ~/.cache/fdod)"},
	{"no-cache", FDO_OPT_BOOL, offsetof(struct opts, no_cache), "false",
	 NULL, "build the index in memory only"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_symbolize = {
	.name = "symbolize",
	.usage = "--elf FILE [OPTIONS] [ADDR...]",
	.summary = "addresses to functions, files, lines and inline chains",
	.about =
		"Prints, for each address, its inline chain innermost first, "
		"exactly\nas `llvm-symbolizer --inlining --obj=FILE` does: per "
		"frame a line\nwith the function and a line FILE:LINE:COLUMN, "
		"then an empty line.\nAddresses come from the arguments, else "
		"from stdin, one per line,\nread as llvm-symbolizer-16 reads "
		"them: 0x... is hex, 0b... binary,\n0o... or a leading 0 octal, "
		"anything else decimal; there is no bare\nhex (1000 is 0x3e8, "
		"01750 too). A line that is not such a number\n(2ce5, 0x, -1) is "
		"echoed back unanswered (in JSON, an Error object).\nAn optional "
		"CODE prefix is skipped. Options end at the first address.\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_DASH_OPERAND,
	.max_operands = -1,
	.run = run,
};

/* --- requests -------------------------------------------------------- */

/* llvm's StringRef::getAsInteger(0, uint64_t). Returns 0 on success. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	unsigned radix = 10;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		radix = 16, s += 2, n -= 2;
	else if (n >= 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		radix = 2, s += 2, n -= 2;
	else if (n >= 2 && s[0] == '0' && s[1] == 'o')
		radix = 8, s += 2, n -= 2;
	else if (n >= 2 && s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		radix = 8, s += 1, n -= 1;
	if (n == 0)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'Z')
			d = c - 'A' + 10;
		else
			return -1;
		if (d >= radix)
			return -1;
		uint64_t nv = v * radix + d;
		if (nv / radix < v)
			return -1;
		v = nv;
	}
	*out = v;
	return 0;
}

static int parse_request(const char *line, uint64_t *addr)
{
	if (!strncmp(line, "CODE ", 5))
		line += 5;
	else if (!strncmp(line, "DATA ", 5))
		line += 5;
	else if (!strncmp(line, "FRAME ", 6))
		line += 6;
	line += strspn(line, " \n\r");
	size_t n = strcspn(line, " \n\r");
	return parse_u64(line, n, addr);
}

struct ctx {
	const struct opts *o;
	sym_index *idx;
	int list_mode; /* JSON: one array for argv addresses */
	int first;
	struct sym_frame fr[MAX_FRAMES];
};

static void print_invalid(struct ctx *c, const char *input)
{
	if (!c->o->json) {
		out_str(input);
		out_ch('\n');
		return;
	}
	if (c->list_mode && !c->first)
		out_ch(',');
	c->first = 0;
	out_str("{\"Error\":{\"Message\":");
	char *msg = malloc(strlen(input) + 32);
	if (msg) {
		sprintf(msg, "unable to parse arguments: %s", input);
		out_json_str(msg);
		free(msg);
	}
	out_str("},\"ModuleName\":");
	out_json_str(c->o->elf);
	out_ch('}');
	if (!c->list_mode)
		out_ch('\n');
}

static void symbolize(struct ctx *c, uint64_t req)
{
	struct sym_frame *fr = c->fr;
	struct sym_symbol sym;
	size_t n = 0;
	uint64_t vaddr = req;
	int ok = 1;
	if (c->o->file_offsets &&
	    sym_index_offset_to_vaddr(c->idx, req, &vaddr) != FDO_OK)
		ok = 0;
	if (ok)
		sym_index_lookup(c->idx, vaddr, fr, MAX_FRAMES, &n, &sym);
	if (n > MAX_FRAMES)
		n = MAX_FRAMES;
	if (n == 0) {
		memset(&fr[0], 0, sizeof fr[0]);
		fr[0].start_file = "";
		n = 1;
	}
	/* llvm: the outermost frame is named from the symbol table. */
	if (ok && sym.found) {
		fr[n - 1].function = sym.name;
		fr[n - 1].start_address = sym.addr;
		fr[n - 1].has_start_address = 1;
		if (sym.file && sym.file[0] && !fr[0].file)
			fr[n - 1].file = sym.file;
	}
	if (!c->o->json) {
		for (size_t i = 0; i < n; i++) {
			const char *f = fr[i].function;
			out_str(!f ? "??" : c->o->demangle ? demangle(f) : f);
			out_ch('\n');
			out_str(fr[i].file ? fr[i].file : "??");
			out_ch(':');
			out_u64(fr[i].line);
			out_ch(':');
			out_u64(fr[i].column);
			out_ch('\n');
		}
		out_ch('\n');
		return;
	}
	if (c->list_mode && !c->first)
		out_ch(',');
	c->first = 0;
	out_str("{\"Address\":\"");
	out_hex(req);
	out_str("\",\"ModuleName\":");
	out_json_str(c->o->elf);
	out_str(",\"Symbol\":[");
	for (size_t i = 0; i < n; i++) {
		const char *f = fr[i].function;
		if (i)
			out_ch(',');
		out_str("{\"Column\":");
		out_u64(fr[i].column);
		out_str(",\"Discriminator\":");
		out_u64(fr[i].discriminator);
		out_str(",\"FileName\":");
		out_json_str(fr[i].file ? fr[i].file : "");
		out_str(",\"FunctionName\":");
		out_json_str(!f ? "" : c->o->demangle ? demangle(f) : f);
		out_str(",\"Line\":");
		out_u64(fr[i].line);
		out_str(",\"StartAddress\":");
		if (fr[i].has_start_address) {
			out_ch('"');
			out_hex(fr[i].start_address);
			out_ch('"');
		} else {
			out_str("\"\"");
		}
		out_str(",\"StartFileName\":");
		out_json_str(fr[i].start_file ? fr[i].start_file : "");
		out_str(",\"StartLine\":");
		out_u64(fr[i].start_line);
		out_ch('}');
	}
	out_str("]}");
	if (!c->list_mode)
		out_ch('\n');
}

static void handle(struct ctx *c, const char *input)
{
	uint64_t a;
	if (parse_request(input, &a) != 0)
		print_invalid(c, input);
	else
		symbolize(c, a);
}

/* Symbolize the n addresses of addrs, or stdin's lines when n is 0. */
static int run_addresses(struct opts *o, int n, char **addrs)
{
	char defdir[4096];
	const char *cache_dir = o->cache_dir;
	if (o->no_cache)
		cache_dir = NULL;
	else if (!cache_dir)
		cache_dir = sym_cache_dir_default(defdir, sizeof defdir);
	o->json = !strcmp(o->style, "JSON");
	struct ctx *c = calloc(1, sizeof *c);
	if (!c)
		return 1;
	c->o = o;
	c->first = 1;
	int err = sym_index_open(o->elf, o->debug, cache_dir, &c->idx);
	if (err) {
		fprintf(stderr, "fdoctl symbolize: %s: %s\n", o->elf,
			fdo_strerror(err));
		free(c);
		return 1;
	}
	if (n) {
		c->list_mode = o->json;
		if (c->list_mode)
			out_ch('[');
		for (int i = 0; i < n; i++)
			if (addrs[i][0]) /* llvm drops empty arguments */
				handle(c, addrs[i]);
		if (c->list_mode)
			out_str("]\n");
	} else {
		/* Lines as llvm reads them: CR and LF removed. */
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		while ((len = getline(&line, &cap, stdin)) >= 0) {
			size_t o2 = 0;
			for (ssize_t k = 0; k < len; k++)
				if (line[k] != '\r' && line[k] != '\n')
					line[o2++] = line[k];
			line[o2] = 0;
			handle(c, line);
		}
		free(line);
	}
	out_flush();
	sym_index_close(c->idx);
	free(c);
	return 0;
}

static int run(int argc, char **argv)
{
	struct opts o = {0};
	int n, rc = cli_args_parse(&cli_cmd_symbolize, opts, &o, argc, argv,
				   &n);
	if (rc != CLI_RUN)
		return rc;
	if (!o.elf)
		rc = cli_usage_error(&cli_cmd_symbolize, "give --elf FILE");
	else if (strcmp(o.style, "LLVM") && strcmp(o.style, "JSON"))
		rc = cli_usage_error(&cli_cmd_symbolize,
				     "--output-style is LLVM or JSON");
	else
		rc = run_addresses(&o, n, argv + 1);
	fdo_opts_fini(opts, &o);
	return rc;
}
