/*
 * schemas/text.c — the text form of one SampleBatch: a line-oriented parser
 * for hand-made data, tests and `fdoctl push`, and the printer that emits
 * the canonical form (parse(print(b)) == b). Grammar: schemas/README.md.
 *
 * The parser checks each line as it goes with the same per-item checks as
 * wire_batch_validate (wire_int.h), so an error names its line; a final
 * wire_batch_validate covers what only the whole batch can show. Workload:
 * batches of up to a few hundred thousand stacks; arrays grow by doubling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "schemas/wire_int.h"

struct tok {
	const char *p;
	size_t n;
};

struct parser {
	const struct wire_limits *lim;
	Fdod__SampleBatch *b;
	/* allocated lengths of the batch's arrays (b->n_* are the used ones) */
	size_t cap_labels, cap_mappings, cap_stacks, cap_branches;
	unsigned *map_lines; /* line of each mapping, for cross-line errors */
	size_t frames;	     /* addresses in all stacks so far */
	unsigned line;
	char *err;
	size_t errlen;
};

/* --- small token helpers ------------------------------------------------ */

static int tok_eq(struct tok t, const char *s)
{
	return strlen(s) == t.n && memcmp(t.p, s, t.n) == 0;
}

/* Quote a token for an error message, shortened. */
#define TOKF	"'%.*s%s'"
#define TOKA(t) (int)((t).n > 40 ? 40 : (t).n), (t).p, (t).n > 40 ? "..." : ""

static int parse_dec(struct parser *p, struct tok t, const char *what,
		     uint64_t *out)
{
	uint64_t v = 0;
	if (t.n == 0)
		goto bad;
	for (size_t i = 0; i < t.n; i++) {
		unsigned d = (unsigned char)t.p[i] - '0';
		if (d > 9)
			goto bad;
		if (v > (UINT64_MAX - d) / 10)
			return wire_errf(p->err, p->errlen, FDO_EPARSE,
					 "%s " TOKF " does not fit 64 bits",
					 what, TOKA(t));
		v = v * 10 + d;
	}
	*out = v;
	return FDO_OK;
bad:
	return wire_errf(p->err, p->errlen, FDO_EPARSE,
			 "%s " TOKF " is not a decimal number", what, TOKA(t));
}

/* Hex without or with 0x, either case. */
static int parse_hex(struct parser *p, struct tok t, const char *what,
		     uint64_t *out)
{
	struct tok d = t;
	if (d.n >= 2 && d.p[0] == '0' && (d.p[1] == 'x' || d.p[1] == 'X')) {
		d.p += 2;
		d.n -= 2;
	}
	uint64_t v = 0;
	if (d.n == 0)
		goto bad;
	for (size_t i = 0; i < d.n; i++) {
		int h = fdo_hex_value((unsigned char)d.p[i]);
		if (h < 0)
			goto bad;
		if (v >> 60)
			return wire_errf(p->err, p->errlen, FDO_EPARSE,
					 "%s " TOKF " does not fit 64 bits",
					 what, TOKA(t));
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return FDO_OK;
bad:
	return wire_errf(p->err, p->errlen, FDO_EPARSE,
			 "%s " TOKF " is not a hex number", what, TOKA(t));
}

/* A string token with %XX escapes decoded, as a new malloc'd C string. */
static int parse_str(struct parser *p, struct tok t, const char *what,
		     char **out)
{
	char *s = malloc(t.n + 1), *w = s;
	if (!s)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	for (size_t i = 0; i < t.n; i++) {
		if (t.p[i] != '%') {
			*w++ = t.p[i];
			continue;
		}
		int hi = -1, lo = -1;
		if (i + 2 < t.n) {
			hi = fdo_hex_value((unsigned char)t.p[i + 1]);
			lo = fdo_hex_value((unsigned char)t.p[i + 2]);
		}
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(s);
			return wire_errf(
				p->err, p->errlen, FDO_EPARSE,
				"%s: bad escape at byte %zu (want %%XX, "
				"not %%00)",
				what, i);
		}
		*w++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*w = '\0';
	*out = s;
	return FDO_OK;
}

/* Make room for one more element in a batch array (doubling). */
static int grow(struct parser *p, void *arrp, size_t *cap, size_t n, size_t elt)
{
	if (fdo_grow_array(arrp, cap, n + 1, elt, 0))
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	return FDO_OK;
}

/* --- keyword handlers: args exclude the keyword ----------------------------
 */

static int set_text(struct parser *p, char **field, struct tok t,
		    const char *what, size_t max)
{
	char *s;
	int rc = parse_str(p, t, what, &s);
	if (rc)
		return rc;
	if ((rc = wire_check_text(what, s, max, 0, p->err, p->errlen))) {
		free(s);
		return rc;
	}
	*field = s;
	return FDO_OK;
}

static int kw_agent(struct parser *p, const struct tok *a, size_t n)
{
	return set_text(p, &p->b->agent_id, a[0], "agent",
			p->lim->max_name_len);
}

static int kw_host(struct parser *p, const struct tok *a, size_t n)
{
	return set_text(p, &p->b->host, a[0], "host", p->lim->max_name_len);
}

static int kw_event(struct parser *p, const struct tok *a, size_t n)
{
	return set_text(p, &p->b->event, a[0], "event", p->lim->max_name_len);
}

static int kw_binary(struct parser *p, const struct tok *a, size_t n)
{
	char *s;
	int rc = parse_str(p, a[0], "binary", &s);
	if (rc)
		return rc;
	if ((rc = wire_check_binary(s, p->lim, p->err, p->errlen))) {
		free(s);
		return rc;
	}
	p->b->binary = s;
	return FDO_OK;
}

static int kw_seq(struct parser *p, const struct tok *a, size_t n)
{
	int rc = parse_dec(p, a[0], "seq", &p->b->seq);
	if (!rc && p->b->seq == 0)
		rc = wire_errf(p->err, p->errlen, FDO_EINVAL,
			       "seq must be >= 1");
	return rc;
}

static int kw_period(struct parser *p, const struct tok *a, size_t n)
{
	int rc = parse_dec(p, a[0], "period", &p->b->period);
	return rc ? rc
		  : wire_check_period(p->b->period, p->lim, p->err, p->errlen);
}

static int kw_weight(struct parser *p, const struct tok *a, size_t n)
{
	char buf[64];
	char *end;
	if (a[0].n >= sizeof buf)
		return wire_errf(p->err, p->errlen, FDO_EPARSE,
				 "weight " TOKF " is too long", TOKA(a[0]));
	memcpy(buf, a[0].p, a[0].n);
	buf[a[0].n] = '\0';
	double w = strtod(buf, &end);
	if (end != buf + a[0].n || a[0].n == 0)
		return wire_errf(p->err, p->errlen, FDO_EPARSE,
				 "weight " TOKF " is not a number", TOKA(a[0]));
	p->b->weight = w;
	return wire_check_weight(w, p->lim, p->err, p->errlen);
}

static int kw_time(struct parser *p, const struct tok *a, size_t n)
{
	int rc = parse_dec(p, a[0], "time start", &p->b->time_start);
	if (!rc)
		rc = parse_dec(p, a[1], "time end", &p->b->time_end);
	if (!rc)
		rc = wire_check_time(p->b->time_start, p->b->time_end, p->lim,
				     p->err, p->errlen);
	return rc;
}

static int kw_label(struct parser *p, const struct tok *a, size_t n)
{
	Fdod__SampleBatch *b = p->b;
	const char *eq = memchr(a[0].p, '=', a[0].n);
	if (!eq)
		return wire_errf(p->err, p->errlen, FDO_EPARSE,
				 "label " TOKF " is not KEY=VALUE", TOKA(a[0]));
	if (b->n_labels >= p->lim->max_labels)
		return wire_errf(p->err, p->errlen, FDO_ELIMIT,
				 "more than %zu labels", p->lim->max_labels);
	int rc = grow(p, &b->labels, &p->cap_labels, b->n_labels,
		      sizeof *b->labels);
	if (rc)
		return rc;
	Fdod__Label *l = malloc(sizeof *l);
	if (!l)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	fdod__label__init(l);
	b->labels[b->n_labels++] = l; /* owned by the batch from here */
	size_t kn = (size_t)(eq - a[0].p);
	l->key = malloc(kn + 1);
	if (!l->key)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	memcpy(l->key, a[0].p, kn);
	l->key[kn] = '\0';
	struct tok v = {eq + 1, a[0].n - kn - 1};
	if ((rc = parse_str(p, v, "label value", &l->value)))
		return rc;
	if ((rc = wire_check_label(l, p->lim, p->err, p->errlen)))
		return rc;
	for (size_t i = 0; i + 1 < b->n_labels; i++)
		if (strcmp(b->labels[i]->key, l->key) == 0)
			return wire_errf(p->err, p->errlen, FDO_EINVAL,
					 "label key '%s' appears twice",
					 l->key);
	return FDO_OK;
}

static int kw_mapping(struct parser *p, const struct tok *a, size_t n)
{
	Fdod__SampleBatch *b = p->b;
	uint64_t index;
	int rc = parse_dec(p, a[0], "mapping index", &index);
	if (rc)
		return rc;
	if (index > UINT32_MAX)
		return wire_errf(p->err, p->errlen, FDO_EPARSE,
				 "mapping index %llu does not fit 32 bits",
				 (unsigned long long)index);
	if (b->n_mappings >= p->lim->max_mappings)
		return wire_errf(p->err, p->errlen, FDO_ELIMIT,
				 "more than %zu mappings",
				 p->lim->max_mappings);
	size_t cap = p->cap_mappings;
	if ((rc = grow(p, &b->mappings, &p->cap_mappings, b->n_mappings,
		       sizeof *b->mappings)))
		return rc;
	if (cap != p->cap_mappings) {
		unsigned *nl =
			realloc(p->map_lines, p->cap_mappings * sizeof *nl);
		if (!nl)
			return wire_errf(p->err, p->errlen, FDO_ENOMEM,
					 "out of memory");
		p->map_lines = nl;
	}
	Fdod__Mapping *m = malloc(sizeof *m);
	if (!m)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	fdod__mapping__init(m);
	p->map_lines[b->n_mappings] = p->line;
	b->mappings[b->n_mappings++] = m;
	m->index = (uint32_t)index;

	char text[2 * FDO_BUILD_ID_MAX + 1];
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t idlen = 0;
	if (a[1].n < sizeof text) {
		memcpy(text, a[1].p, a[1].n);
		text[a[1].n] = '\0';
		rc = fdo_build_id_parse(text, id, &idlen);
	} else {
		rc = FDO_EBAD_BUILD_ID;
	}
	if (rc)
		return wire_errf(p->err, p->errlen, rc,
				 "build-id " TOKF " is not 2..%d lowercase hex "
				 "digits",
				 TOKA(a[1]), 2 * FDO_BUILD_ID_MAX);
	if (!(m->build_id.data = malloc(idlen)))
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	memcpy(m->build_id.data, id, idlen);
	m->build_id.len = idlen;
	if ((rc = parse_hex(p, a[2], "mapping start", &m->start)) ||
	    (rc = parse_hex(p, a[3], "mapping limit", &m->limit)) ||
	    (rc = parse_hex(p, a[4], "mapping offset", &m->file_offset)))
		return rc;
	if (n > 5 && (rc = parse_str(p, a[5], "path", &m->path)))
		return rc;
	if ((rc = wire_check_mapping(m, p->lim, p->err, p->errlen)))
		return rc;
	/* Cross-mapping rules here too, so the error names both lines. */
	for (size_t i = 0; i + 1 < b->n_mappings; i++) {
		const Fdod__Mapping *o = b->mappings[i];
		if (o->index == m->index)
			return wire_errf(p->err, p->errlen, FDO_EINVAL,
					 "mapping index %u already used on "
					 "line %u",
					 m->index, p->map_lines[i]);
		if (m->start < o->limit && o->start < m->limit)
			return wire_errf(p->err, p->errlen, FDO_EINVAL,
					 "mapping %u overlaps mapping %u "
					 "(line %u)",
					 m->index, o->index, p->map_lines[i]);
	}
	return FDO_OK;
}

static int kw_stack(struct parser *p, const struct tok *a, size_t n)
{
	Fdod__SampleBatch *b = p->b;
	if (b->n_stacks >= p->lim->max_stacks)
		return wire_errf(p->err, p->errlen, FDO_ELIMIT,
				 "more than %zu stacks", p->lim->max_stacks);
	int rc = grow(p, &b->stacks, &p->cap_stacks, b->n_stacks,
		      sizeof *b->stacks);
	if (rc)
		return rc;
	Fdod__Stack *s = malloc(sizeof *s);
	if (!s)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	fdod__stack__init(s);
	b->stacks[b->n_stacks++] = s;
	if ((rc = parse_dec(p, a[0], "stack count", &s->count)))
		return rc;
	if (n > 1) {
		if (!(s->addrs = malloc((n - 1) * sizeof *s->addrs)))
			return wire_errf(p->err, p->errlen, FDO_ENOMEM,
					 "out of memory");
		for (size_t i = 1; i < n; i++) {
			if ((rc = parse_hex(p, a[i], "address",
					    &s->addrs[i - 1])))
				return rc;
			s->n_addrs++;
		}
	}
	if ((rc = wire_check_stack(s, p->lim, p->err, p->errlen)))
		return rc;
	p->frames += s->n_addrs;
	if (p->frames > p->lim->max_frames)
		return wire_errf(p->err, p->errlen, FDO_ELIMIT,
				 "more than %zu addresses in all stacks",
				 p->lim->max_frames);
	return FDO_OK;
}

static int kw_branch(struct parser *p, const struct tok *a, size_t n)
{
	Fdod__SampleBatch *b = p->b;
	if (b->n_branches >= p->lim->max_branches)
		return wire_errf(p->err, p->errlen, FDO_ELIMIT,
				 "more than %zu branches",
				 p->lim->max_branches);
	int rc = grow(p, &b->branches, &p->cap_branches, b->n_branches,
		      sizeof *b->branches);
	if (rc)
		return rc;
	Fdod__Branch *br = malloc(sizeof *br);
	if (!br)
		return wire_errf(p->err, p->errlen, FDO_ENOMEM,
				 "out of memory");
	fdod__branch__init(br);
	b->branches[b->n_branches++] = br;
	if ((rc = parse_hex(p, a[0], "branch from", &br->from)) ||
	    (rc = parse_hex(p, a[1], "branch to", &br->to)) ||
	    (rc = parse_dec(p, a[2], "branch count", &br->count)) ||
	    (n > 3 &&
	     (rc = parse_dec(p, a[3], "branch mispredicts", &br->mispredicts))))
		return rc;
	return wire_check_branch(br, p->lim, p->err, p->errlen);
}

/*
 * The keywords. `once` ones may appear at most once; `required` ones must
 * appear. max_args 0 means no upper bound (stack: bounded by the depth
 * limit instead).
 */
static const struct keyword {
	const char *name;
	unsigned min_args, max_args;
	int once, required;
	int (*fn)(struct parser *p, const struct tok *args, size_t n);
	const char *usage;
} keywords[] = {
	{"agent", 1, 1, 1, 1, kw_agent, "agent ID"},
	{"seq", 1, 1, 1, 1, kw_seq, "seq N"},
	{"host", 1, 1, 1, 1, kw_host, "host NAME"},
	{"binary", 1, 1, 1, 1, kw_binary, "binary NAME"},
	{"label", 1, 1, 0, 0, kw_label, "label KEY=VALUE"},
	{"event", 1, 1, 1, 1, kw_event, "event NAME"},
	{"period", 1, 1, 1, 1, kw_period, "period N"},
	{"weight", 1, 1, 1, 0, kw_weight, "weight W"},
	{"time", 2, 2, 1, 1, kw_time, "time START END"},
	{"mapping", 5, 6, 0, 0, kw_mapping,
	 "mapping INDEX BUILDID START LIMIT OFFSET [PATH]"},
	{"stack", 1, 0, 0, 0, kw_stack, "stack COUNT ADDR..."},
	{"branch", 3, 4, 0, 0, kw_branch, "branch FROM TO COUNT [MISPREDS]"},
};
#define N_KEYWORDS (sizeof keywords / sizeof keywords[0])

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Split [s, e) into tokens up to a '#'. Grows *toks; more than max tokens
 * sets *over instead of growing past the bound.
 */
static int tokenize(struct parser *p, const char *s, const char *e,
		    struct tok **toks, size_t *cap, size_t *n, size_t max,
		    int *over)
{
	*n = 0;
	*over = 0;
	while (s < e) {
		unsigned char c = (unsigned char)*s;
		if (is_space((char)c)) {
			s++;
			continue;
		}
		if (c == '#')
			break;
		if (c < 0x20 || c == 0x7f)
			return wire_errf(p->err, p->errlen, FDO_EPARSE,
					 "control character 0x%02x", c);
		const char *t = s;
		while (s < e && !is_space(*s) && *s != '#') {
			c = (unsigned char)*s;
			if (c < 0x20 || c == 0x7f)
				return wire_errf(p->err, p->errlen, FDO_EPARSE,
						 "control character 0x%02x", c);
			s++;
		}
		if (*n >= max) {
			*over = 1;
			continue;
		}
		if (fdo_grow(*toks, *cap, *n + 1))
			return wire_errf(p->err, p->errlen, FDO_ENOMEM,
					 "out of memory");
		(*toks)[(*n)++] = (struct tok){t, (size_t)(s - t)};
	}
	return FDO_OK;
}

static int parse_lines(struct parser *p, const char *text, size_t len,
		       unsigned seen[N_KEYWORDS])
{
	struct tok *toks = NULL;
	size_t cap = 0, n;
	int over, rc = FDO_OK;
	/*
	 * keyword + count + addresses (and at least the 7 of a mapping line):
	 * longer lines are refused without storing their tokens.
	 */
	size_t max = p->lim->max_stack_depth + 2;
	if (max < 8)
		max = 8;
	const char *s = text, *end = text + len;
	for (p->line = 1; s < end && !rc; p->line++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		rc = tokenize(p, s, e, &toks, &cap, &n, max, &over);
		s = nl ? nl + 1 : end;
		if (rc || n == 0)
			continue;
		const struct keyword *k = NULL;
		for (size_t i = 0; i < N_KEYWORDS && !k; i++)
			if (tok_eq(toks[0], keywords[i].name))
				k = &keywords[i];
		if (!k) {
			rc = wire_errf(p->err, p->errlen, FDO_EPARSE,
				       "unknown keyword " TOKF, TOKA(toks[0]));
			continue;
		}
		size_t args = n - 1, ki = (size_t)(k - keywords);
		if (over && k->fn == kw_stack) {
			rc = wire_errf(p->err, p->errlen, FDO_ELIMIT,
				       "stack: more than %zu addresses",
				       p->lim->max_stack_depth);
		} else if (over || args < k->min_args ||
			   (k->max_args && args > k->max_args)) {
			rc = wire_errf(p->err, p->errlen, FDO_EPARSE,
				       "wrong number of fields for '%s' "
				       "(usage: %s)",
				       k->name, k->usage);
		} else if (k->once && seen[ki]) {
			rc = wire_errf(p->err, p->errlen, FDO_EPARSE,
				       "'%s' given twice (first on line %u)",
				       k->name, seen[ki]);
		} else {
			seen[ki] = p->line;
			rc = k->fn(p, toks + 1, args);
		}
	}
	if (rc)
		wire_err_prefix(p->err, p->errlen, "line %u: ", p->line - 1);
	free(toks);
	return rc;
}

int wire_batch_parse_text(const char *text, size_t len,
			  const struct wire_limits *limits,
			  Fdod__SampleBatch **out, char *err, size_t errlen)
{
	if (!limits)
		limits = &wire_limits_default;
	if (err && errlen)
		err[0] = '\0';
	if (len > limits->max_text_bytes)
		return wire_errf(err, errlen, FDO_ELIMIT,
				 "text is %zu bytes, limit %zu", len,
				 limits->max_text_bytes);
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		unsigned line = 1;
		for (const char *c = text; c < nul; c++)
			line += *c == '\n';
		return wire_errf(err, errlen, FDO_EPARSE,
				 "line %u: NUL byte in text", line);
	}
	Fdod__SampleBatch *b = malloc(sizeof *b);
	if (!b)
		return wire_errf(err, errlen, FDO_ENOMEM, "out of memory");
	fdod__sample_batch__init(b);
	b->schema_version = WIRE_SCHEMA_VERSION;
	b->weight = 1.0;
	struct parser p = {.lim = limits, .b = b, .err = err, .errlen = errlen};
	unsigned seen[N_KEYWORDS] = {0};
	int rc = parse_lines(&p, text, len, seen);
	for (size_t i = 0; i < N_KEYWORDS && !rc; i++)
		if (keywords[i].required && !seen[i])
			rc = wire_errf(err, errlen, FDO_EINVAL,
				       "end of input: missing '%s' (usage: %s)",
				       keywords[i].name, keywords[i].usage);
	if (!rc && (rc = wire_batch_validate(b, limits, err, errlen)))
		wire_err_prefix(err, errlen, "end of input: ");
	free(p.map_lines);
	if (rc) {
		wire_batch_free(b);
		return rc;
	}
	*out = b;
	return FDO_OK;
}

/* --- printer -------------------------------------------------------------- */

/* Write s as one token: bytes the tokenizer would split on are %XX. */
static void put_str(struct fdo_buf *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c <= 0x20 || *c == 0x7f || *c == '%' || *c == '#')
			fdo_buf_printf(f, "%%%02X", *c);
		else
			fdo_buf_putc(f, *c);
	}
}

static void put_line(struct fdo_buf *f, const char *kw, const char *s)
{
	if (!s || !*s)
		return;
	fdo_buf_printf(f, "%-7s ", kw);
	put_str(f, s);
	fdo_buf_putc(f, '\n');
}

/* Shortest %g form that reads back as the same double. */
static void put_double(struct fdo_buf *f, double v)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fdo_buf_puts(f, buf);
}

int wire_batch_print_text(const Fdod__SampleBatch *b, char **out, size_t *len)
{
	/* An fdo_buf rather than open_memstream: its allocations are ours,
	 * so the allocation-failure test can fail each of them. */
	struct fdo_buf fb, *f = &fb;
	fdo_buf_init(f);
	put_line(f, "agent", b->agent_id);
	if (b->seq)
		fdo_buf_printf(f, "seq     %llu\n", (unsigned long long)b->seq);
	put_line(f, "host", b->host);
	put_line(f, "binary", b->binary);
	for (size_t i = 0; i < b->n_labels; i++) {
		const Fdod__Label *l = b->labels[i];
		fdo_buf_puts(f, "label   ");
		put_str(f, l->key ? l->key : "");
		fdo_buf_putc(f, '=');
		put_str(f, l->value ? l->value : "");
		fdo_buf_putc(f, '\n');
	}
	put_line(f, "event", b->event);
	if (b->period)
		fdo_buf_printf(f, "period  %llu\n",
			       (unsigned long long)b->period);
	fdo_buf_puts(f, "weight  ");
	put_double(f, b->weight);
	fdo_buf_putc(f, '\n');
	if (b->time_start || b->time_end)
		fdo_buf_printf(f, "time    %llu %llu\n",
			       (unsigned long long)b->time_start,
			       (unsigned long long)b->time_end);
	for (size_t i = 0; i < b->n_mappings; i++) {
		const Fdod__Mapping *m = b->mappings[i];
		char id[2 * FDO_BUILD_ID_MAX + 1] = "-";
		if (m->build_id.len >= 1 && m->build_id.len <= FDO_BUILD_ID_MAX)
			fdo_hex_encode(m->build_id.data, m->build_id.len, id);
		fdo_buf_printf(f, "mapping %u %s %llx %llx %llx", m->index, id,
			       (unsigned long long)m->start,
			       (unsigned long long)m->limit,
			       (unsigned long long)m->file_offset);
		if (m->path && *m->path) {
			fdo_buf_putc(f, ' ');
			put_str(f, m->path);
		}
		fdo_buf_putc(f, '\n');
	}
	for (size_t i = 0; i < b->n_stacks; i++) {
		const Fdod__Stack *s = b->stacks[i];
		fdo_buf_printf(f, "stack   %llu", (unsigned long long)s->count);
		for (size_t k = 0; k < s->n_addrs; k++)
			fdo_buf_printf(f, " %llx",
				       (unsigned long long)s->addrs[k]);
		fdo_buf_putc(f, '\n');
	}
	for (size_t i = 0; i < b->n_branches; i++) {
		const Fdod__Branch *br = b->branches[i];
		fdo_buf_printf(f, "branch  %llx %llx %llu",
			       (unsigned long long)br->from,
			       (unsigned long long)br->to,
			       (unsigned long long)br->count);
		if (br->mispredicts)
			fdo_buf_printf(f, " %llu",
				       (unsigned long long)br->mispredicts);
		fdo_buf_putc(f, '\n');
	}
	fdo_buf_cstr(f); /* the text is NUL-terminated for its callers */
	if (f->oom) {
		fdo_buf_fini(f);
		return FDO_ENOMEM;
	}
	size_t n = 0;
	*out = fdo_buf_steal(f, &n);
	if (len)
		*len = n;
	return FDO_OK;
}
