/*
 * cli/cmd_emit.c — `fdoctl emit --elf FILE --fdata FILE [--format F]
 * [--debug-file FILE] [--<emitter option> V]... [-o OUT]`: a compile-time
 * (or BOLT) profile from exact branch counts, offline, through fdod's own
 * emitters: the .fdata `llvm-bolt -instrument` writes for a binary (or an
 * LBR profile of it) becomes block and edge counts on the binary's
 * control-flow graph (aggregator/blocks.c agg_blocks_exact) and then the
 * same inline tree and text as a pull with counts=blocks. With exact
 * counts in, it measures what the emitters lose apart from what inference
 * from samples loses (bench/fdo's exact-count ceiling), and it lets a team
 * that runs BOLT-instrumented canaries turn their counts into profiles.
 *
 * Workload: one binary and one profile per run.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/blocks.h"
#include "aggregator/profile.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"

#define FDATA_MAX_BYTES (1ull << 30)

struct cfg {
	char *elf, *fdata, *format, *debug, *cache_dir, *out;
	char *emitter[CLI_EMITTER_MAX]; /* prof_opt_defs' order */
};

static const struct fdo_opt opts[] = {
	{"elf", FDO_OPT_STRING, offsetof(struct cfg, elf), NULL, "FILE",
	 "the binary the counts are of"},
	{"fdata", FDO_OPT_STRING, offsetof(struct cfg, fdata), NULL, "FILE",
	 "its branch counts (.fdata)"},
	{"format", FDO_OPT_STRING, offsetof(struct cfg, format), "llvm", "F",
	 "llvm, gcc or bolt"},
	{"debug-file", FDO_OPT_STRING, offsetof(struct cfg, debug), NULL,
	 "FILE", "read DWARF from FILE (as fdoctl symbolize)"},
	{"cache-dir", FDO_OPT_STRING, offsetof(struct cfg, cache_dir), NULL,
	 "DIR", "where the address index is kept (as fdoctl symbolize)"},
	{"o", FDO_OPT_STRING, offsetof(struct cfg, out), NULL, "FILE",
	 "write the profile to FILE (default: stdout)"},
	{0},
};

static int run(int argc, char **argv);

const struct cli_cmd cli_cmd_emit = {
	.name = "emit",
	.usage = "--elf FILE --fdata FILE [--format llvm|gcc|bolt] [OPTIONS]",
	.summary = "a profile from exact branch counts (llvm-bolt -instrument)",
	.about =
		"Writes a profile of the binary FILE from exact branch counts:\n"
		"the .fdata that a run of `llvm-bolt FILE -instrument` wrote\n"
		"(merge several with merge-fdata), or an LBR profile of FILE.\n"
		"Each block of each function the records reach gets the count "
		"of\nthe records that lead to it, and the profile is written as "
		"a\npull with counts=blocks writes it (the emitter options "
		"below, as\nfor fdoctl pull, apply); a binary built with\n"
		"-fpseudo-probe-for-profiling gets a probe-based llvm profile, "
		"as\na pull of its samples does. Exit status: 0 written, 1 "
		"error,\n2 usage.\n",
	.opts = opts,
	.argv_flags = FDO_ARGV_PERMUTE,
	.max_operands = 0,
	.help_more = cli_emitter_help,
	.run = run,
};

static int read_file(const char *path, struct fdo_buf *b, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		return FDO_EIO;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b->len + n > FDATA_MAX_BYTES) {
			fclose(f);
			snprintf(err, errlen, "%s is over 1 GiB", path);
			return FDO_ELIMIT;
		}
		fdo_buf_append(b, chunk, n);
	}
	int bad = ferror(f);
	fclose(f);
	if (bad || b->oom) {
		snprintf(err, errlen, "cannot read %s", path);
		return bad ? FDO_EIO : FDO_ENOMEM;
	}
	return FDO_OK;
}

static int write_out(const char *path, const struct fdo_buf *b)
{
	if (!path)
		return fwrite(b->data, 1, b->len, stdout) == b->len &&
				       fflush(stdout) == 0
			       ? 0
			       : 1;
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f || fwrite(b->data, 1, b->len, f) != b->len || fflush(f) ||
	    fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
		fprintf(stderr, "fdoctl emit: cannot write %s: %s\n", path,
			strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

static int emit(const struct cfg *c, struct prof_opts *o);

static int run(int argc, char **argv)
{
	const struct fdo_opt *table =
		cli_emitter_table(opts, offsetof(struct cfg, emitter));
	struct cfg c = {0};
	int n, rc = cli_args_parse(&cli_cmd_emit, table, &c, argc, argv, &n);
	if (rc != CLI_RUN)
		return rc;
	struct prof_opts o;
	prof_opts_init(&o);
	o.counts = PROF_COUNTS_BLOCKS;
	char err[512];
	const char *bad = NULL;
	for (size_t k = 0; prof_opt_defs[k].name && !bad; k++)
		if (c.emitter[k] &&
		    prof_opts_set(&o, prof_opt_defs[k].name, c.emitter[k], err,
				  sizeof err))
			bad = err;
	if (!bad && (!c.elf || !c.fdata))
		bad = "give --elf and --fdata";
	if (!bad && (!prof_emitter_find(c.format) ||
		     (strcmp(c.format, "llvm") && strcmp(c.format, "gcc") &&
		      strcmp(c.format, "bolt"))))
		bad = "--format is llvm, gcc or bolt";
	rc = bad ? cli_usage_error(&cli_cmd_emit, "%s", bad) : emit(&c, &o);
	fdo_opts_fini(table, &c);
	return rc;
}

/* The profile of c->elf from the counts in c->fdata, with o. */
static int emit(const struct cfg *c, struct prof_opts *o)
{
	const char *elf = c->elf, *fdata = c->fdata, *format = c->format;
	const char *cache_dir = c->cache_dir;
	const struct prof_emitter *em = prof_emitter_find(format);
	char err[512];
	char defdir[4096];
	if (!cache_dir)
		cache_dir = sym_cache_dir_default(defdir, sizeof defdir);

	struct prof p;
	prof_init(&p);
	struct fdo_buf text, bytes;
	fdo_buf_init(&text);
	fdo_buf_init(&bytes);
	struct sym_func *funcs = NULL;
	size_t nf = 0;
	struct agg_branch *x = NULL;
	size_t nx = 0;
	sym_index *idx = NULL;
	int ret = 1;
	int rc = read_file(fdata, &text, err, sizeof err);
	if (rc)
		goto fail;
	if ((rc = sym_elf_functions(elf, &funcs, &nf))) {
		snprintf(err, sizeof err, "%s: %s", elf, fdo_strerror(rc));
		goto fail;
	}
	char why[256];
	if ((rc = agg_fdata_parse(text.data, text.len, funcs, nf, &x, &nx, why,
				  sizeof why))) {
		snprintf(err, sizeof err, "%.250s: %s", fdata, why);
		goto fail;
	}
	if ((rc = sym_index_open(elf, c->debug, cache_dir, &idx))) {
		snprintf(err, sizeof err, "%s: %s", elf, fdo_strerror(rc));
		goto fail;
	}
	p.build_ids = calloc(1, sizeof *p.build_ids);
	p.binary = strdup(elf);
	p.event = strdup("branches");
	if (!p.build_ids || !p.binary || !p.event) {
		rc = FDO_ENOMEM;
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	p.nbuild_ids = 1;
	const uint8_t *id;
	size_t idlen;
	sym_index_build_id(idx, &id, &idlen);
	memcpy(p.build_ids[0].id, id, idlen < 64 ? idlen : 64);
	p.build_ids[0].len = idlen < 64 ? idlen : 64;
	fdo_hex_encode(p.build_ids[0].id, p.build_ids[0].len,
		       p.build_ids[0].hex);
	p.build_ids[0].elf_path = strdup(elf);
	if (!p.build_ids[0].elf_path ||
	    (rc = agg_blocks_exact(&p, 0, idx, x, nx))) {
		snprintf(err, sizeof err, "%s: %s", elf,
			 fdo_strerror(rc ? rc : FDO_ENOMEM));
		goto fail;
	}
	if ((rc = em->emit(&p, o, &bytes))) {
		snprintf(err, sizeof err, "cannot write the %s profile: %s",
			 format, fdo_strerror(rc));
		goto fail;
	}
	if (!bytes.len) {
		snprintf(err, sizeof err, "no function of %s is in %s", elf,
			 fdata);
		goto fail;
	}
	ret = write_out(c->out, &bytes);
	if (!ret && c->out)
		fprintf(stderr,
			"fdoctl emit: wrote %s (%zu bytes, %zu "
			"functions, %zu branch records)\n",
			c->out, bytes.len, p.nfuncs, nx);
	goto done;
fail:
	fprintf(stderr, "fdoctl emit: %s\n", err);
done:
	sym_index_close(idx);
	sym_elf_functions_free(funcs);
	free(x);
	prof_fini(&p);
	fdo_buf_fini(&text);
	fdo_buf_fini(&bytes);
	return ret;
}
