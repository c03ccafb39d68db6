/*
 * storage/clickhouse.c — fdod's ClickHouse client (storage/clickhouse.h,
 * docs/clickhouse.md): HTTP through libcurl, RowBinary both ways.
 */
#include "storage/clickhouse.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clickhouse_sql.h" /* generated from schemas/clickhouse.sql */
#include "common/common.h"

struct ch_client {
	struct ch_url url;
	struct ch_opts o;
	CURL *curl;
	char base[CH_HOST_MAX + 32];   /* http://HOST:PORT/ */
	char qid[CH_QUERY_ID_MAX + 1]; /* ch_set_query_id; "" for none */
};

#define fail backend_fail

/* ---------------------------------------------------------------- URL -- */

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_ident(const char *p, size_t n)
{
	if (n == 0 || n > CH_NAME_MAX || !(p[0] == '_' || is_alpha(p[0])))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(p[i] == '_' || is_digit(p[i]) || is_alpha(p[i])))
			return 0;
	return 1;
}

static int host_ok(const char *p, size_t n)
{
	if (n == 0 || n > CH_HOST_MAX + 2)
		return 0;
	if (p[0] == '[') {
		if (n < 3 || p[n - 1] != ']')
			return 0;
		for (size_t i = 1; i + 1 < n; i++)
			if (!strchr("0123456789abcdefABCDEF:.", p[i]))
				return 0;
		return 1;
	}
	if (n > CH_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(p[i] == '.' || p[i] == '-' || is_digit(p[i]) ||
		      is_alpha(p[i])))
			return 0;
	return 1;
}

int ch_url_parse(const char *s, struct ch_url *u, char *err, size_t errlen)
{
	static const char scheme[] = "clickhouse://";
	const char *form = "clickhouse://HOST:PORT/DB[?cluster=NAME]";
	memset(u, 0, sizeof *u);
	if (!s || strncmp(s, scheme, sizeof scheme - 1) != 0)
		return fail(err, errlen, FDO_EINVAL, "store URL must be %s",
			    form);
	const char *h = s + sizeof scheme - 1, *hend;
	if (*h == '[') {
		const char *rb = strchr(h, ']');
		hend = rb ? rb + 1 : h + strlen(h);
	} else {
		hend = h + strcspn(h, ":/?");
	}
	if (!host_ok(h, (size_t)(hend - h)))
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: bad or missing host (%s)", form);
	memcpy(u->host, h, (size_t)(hend - h));
	if (*hend != ':')
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: the HTTP port is required (%s)", form);
	const char *p = hend + 1;
	unsigned long port = 0;
	size_t digits = 0;
	while (is_digit(*p) && digits < 6) {
		port = port * 10 + (unsigned long)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || digits > 5 || port == 0 || port > 65535)
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: port must be 1-65535 (%s)", form);
	u->port = (unsigned)port;
	if (*p != '/')
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: a database is required (%s)", form);
	const char *db = p + 1;
	size_t dn = strcspn(db, "?");
	if (!is_ident(db, dn))
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: database must be an identifier "
			    "([A-Za-z_][A-Za-z0-9_]*, at most %d)",
			    CH_NAME_MAX);
	memcpy(u->db, db, dn);
	p = db + dn;
	if (*p == '\0')
		return FDO_OK;
	static const char cl[] = "?cluster=";
	if (strncmp(p, cl, sizeof cl - 1) != 0)
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: the only parameter is cluster=NAME "
			    "(%s)",
			    form);
	p += sizeof cl - 1;
	size_t cn = strlen(p);
	if (!is_ident(p, cn))
		return fail(err, errlen, FDO_EINVAL,
			    "store URL: cluster must be an identifier "
			    "([A-Za-z_][A-Za-z0-9_]*, at most %d)",
			    CH_NAME_MAX);
	memcpy(u->cluster, p, cn);
	return FDO_OK;
}

/* --------------------------------------------------------------- HTTP -- */

static int global_rc;
static void global_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) ? FDO_ENOMEM : FDO_OK;
}

static int global_init(void)
{
	/* curl_global_init is not thread safe: run once, whichever thread
	 * opens a client first (pulls open their own, on HTTP workers). */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, global_once);
	return global_rc;
}

int ch_open(const char *url, const struct ch_opts *o, ch_client **out,
	    char *err, size_t errlen)
{
	*out = NULL;
	struct ch_url u;
	int rc = ch_url_parse(url, &u, err, errlen);
	if (rc)
		return rc;
	ch_client *c = calloc(1, sizeof *c);
	if (!c || global_init() || !(c->curl = curl_easy_init())) {
		free(c);
		return fail(err, errlen, FDO_ENOMEM, "out of memory");
	}
	c->url = u;
	if (o)
		c->o = *o;
	if (c->o.connect_ms <= 0)
		c->o.connect_ms = 2000;
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = 30000;
	if (c->o.max_answer == 0)
		c->o.max_answer = (size_t)256 << 20;
	snprintf(c->base, sizeof c->base, "http://%s:%u/", u.host, u.port);
	*out = c;
	return FDO_OK;
}

void ch_close(ch_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

int ch_set_query_id(ch_client *c, const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n > CH_QUERY_ID_MAX)
		return FDO_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(id[i]) && !is_digit(id[i]) && id[i] != '-')
			return FDO_EINVAL;
	memcpy(c->qid, n ? id : "", n + 1);
	return FDO_OK;
}

const struct ch_url *ch_client_url(const ch_client *c)
{
	return &c->url;
}

struct answer {
	struct fdo_buf *out;
	struct fdo_buf errbody; /* the body of an error answer */
	size_t got, max;
	int over, oom;
	long status;
	CURL *curl;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	if (a->status == 0)
		curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->status != 200) {
		/* An error's text: its start is enough. */
		if (a->errbody.len < 1024) {
			size_t k = 1024 - a->errbody.len;
			fdo_buf_append(&a->errbody, p, len < k ? len : k);
		}
		return len;
	}
	if (len > a->max - a->got) {
		a->over = 1;
		return 0;
	}
	a->got += len;
	if (a->out) {
		fdo_buf_append(a->out, p, len);
		if (a->out->oom) {
			a->oom = 1;
			return 0;
		}
	}
	return len;
}

/* ClickHouse's error text on one line (its later lines hold the reason
 * of a distributed query's failure), printable bytes only. */
static void error_line(const struct fdo_buf *b, char *out, size_t cap)
{
	size_t j = 0;
	for (size_t i = 0; i < b->len && j + 1 < cap; i++) {
		unsigned char ch = (unsigned char)b->data[i];
		if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		if (ch == ' ' && (j == 0 || out[j - 1] == ' '))
			continue;
		out[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	if (cap)
		out[j] = '\0';
}

int ch_query(ch_client *c, const char *sql, const void *body, size_t blen,
	     struct fdo_buf *out, char *err, size_t errlen)
{
	struct fdo_buf url;
	fdo_buf_init(&url);
	fdo_buf_puts(&url, c->base);
	/* wait_end_of_query: ClickHouse answers only once the query has
	 * run, so an error is a status code and never a text appended to a
	 * 200 answer's rows. */
	fdo_buf_puts(&url, "?wait_end_of_query=1");
	if (c->qid[0]) {
		/* Checked by ch_set_query_id: nothing to escape. */
		fdo_buf_puts(&url, "&query_id=");
		fdo_buf_puts(&url, c->qid);
	}
	if (body) {
		char *q = curl_easy_escape(c->curl, sql, (int)strlen(sql));
		if (!q) {
			fdo_buf_fini(&url);
			return fail(err, errlen, FDO_ENOMEM, "out of memory");
		}
		fdo_buf_puts(&url, "&query=");
		fdo_buf_puts(&url, q);
		curl_free(q);
	} else {
		body = sql;
		blen = strlen(sql);
	}
	if (url.oom) {
		fdo_buf_fini(&url);
		return fail(err, errlen, FDO_ENOMEM, "out of memory");
	}
	struct answer a = {.out = out, .max = c->o.max_answer, .curl = c->curl};
	fdo_buf_init(&a.errbody);
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *h = c->curl;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, fdo_buf_cstr(&url));
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.status);
	fdo_buf_fini(&url);
	int rc = FDO_OK;
	if (a.oom) {
		rc = fail(err, errlen, FDO_ENOMEM, "out of memory");
	} else if (a.over) {
		rc = fail(err, errlen, FDO_ELIMIT,
			  "ClickHouse %s: answer larger than %zu bytes",
			  c->base, c->o.max_answer);
	} else if (cc != CURLE_OK) {
		rc = fail(err, errlen, FDO_ETRANSPORT, "ClickHouse %s: %s",
			  c->base, cerr[0] ? cerr : curl_easy_strerror(cc));
	} else if (a.status != 200) {
		char line[512];
		error_line(&a.errbody, line, sizeof line);
		rc = fail(err, errlen, FDO_ESTORE,
			  "ClickHouse %s: HTTP %ld: %s", c->base, a.status,
			  line);
	}
	fdo_buf_fini(&a.errbody);
	return rc;
}

/* ------------------------------------------------------------- schema -- */

static void put_replaced(struct fdo_buf *b, const char *p, size_t n,
			 const struct ch_url *u)
{
	static const char db[] = "${DB}", cl[] = "${CLUSTER}";
	for (size_t i = 0; i < n;) {
		if (n - i >= sizeof db - 1 &&
		    !memcmp(p + i, db, sizeof db - 1)) {
			fdo_buf_puts(b, u->db);
			i += sizeof db - 1;
		} else if (n - i >= sizeof cl - 1 &&
			   !memcmp(p + i, cl, sizeof cl - 1)) {
			fdo_buf_puts(b, u->cluster);
			i += sizeof cl - 1;
		} else {
			fdo_buf_putc(b, p[i++]);
		}
	}
}

int ch_create_schema(ch_client *c, char *err, size_t errlen)
{
	const char *s = (const char *)clickhouse_sql;
	size_t n = sizeof clickhouse_sql, at = 0;
	struct fdo_buf stmt;
	fdo_buf_init(&stmt);
	int rc = FDO_OK;
	while (at < n && !rc) {
		/* One line. */
		size_t e = at;
		while (e < n && s[e] != '\n')
			e++;
		const char *line = s + at;
		size_t ln = e - at;
		at = e + 1;
		if (ln >= 2 && line[0] == '-' && line[1] == '-')
			continue;
		put_replaced(&stmt, line, ln, &c->url);
		fdo_buf_putc(&stmt, '\n');
		while (ln > 0 && (line[ln - 1] == ' ' || line[ln - 1] == '\r'))
			ln--;
		if (ln == 0 || line[ln - 1] != ';')
			continue;
		if (stmt.oom) {
			rc = fail(err, errlen, FDO_ENOMEM, "out of memory");
			break;
		}
		char *semi = memrchr(stmt.data, ';', stmt.len);
		if (semi)
			*semi = ' ';
		int distributed =
			memmem(stmt.data, stmt.len, "Distributed(", 12) != NULL;
		if (!distributed || c->url.cluster[0])
			rc = ch_query(c, fdo_buf_cstr(&stmt), NULL, 0, NULL,
				      err, errlen);
		fdo_buf_reset(&stmt);
	}
	fdo_buf_fini(&stmt);
	return rc;
}

/* ------------------------------------------------------------- append -- */

void ch_sql_quote(struct fdo_buf *b, const void *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	fdo_buf_putc(b, '\'');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];
		if (ch == '\'' || ch == '\\') {
			fdo_buf_putc(b, '\\');
			fdo_buf_putc(b, (char)ch);
		} else if (ch < 0x20 || ch >= 0x7f) {
			char x[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
			fdo_buf_append(b, x, 4);
		} else {
			fdo_buf_putc(b, (char)ch);
		}
	}
	fdo_buf_putc(b, '\'');
}

static void put_string(struct fdo_buf *b, const char *s)
{
	size_t n = strlen(s);
	fdo_buf_uleb(b, n);
	fdo_buf_append(b, s, n);
}

static void put_le(struct fdo_buf *b, uint64_t v, int bytes)
{
	uint8_t x[8];
	for (int i = 0; i < bytes; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	fdo_buf_append(b, x, (size_t)bytes);
}

static void put_bytes(struct fdo_buf *b, const void *p, size_t n)
{
	fdo_buf_uleb(b, n);
	fdo_buf_append(b, p, n);
}

void ch_count_row(struct fdo_buf *body, const char *binary, const char *labels,
		  uint32_t bucket, uint64_t stack, wire_weight_t weight,
		  uint64_t samples)
{
	put_string(body, binary);
	put_string(body, labels);
	put_le(body, bucket, 4);
	put_le(body, stack, 8);
	/* Decimal(38, 0): 16 bytes little-endian; the unsigned weight's
	 * bits as they are (docs/clickhouse.md). */
	put_le(body, (uint64_t)weight, 8);
	put_le(body, (uint64_t)(weight >> 64), 8);
	put_le(body, samples, 8);
}

int ch_counts_encode(const struct backend_block *b, struct fdo_buf *body,
		     char *err, size_t errlen)
{
	struct backend_delta *d;
	size_t n;
	int rc = backend_block_sum(b, &d, &n, err, errlen);
	for (size_t i = 0; !rc && i < n; i++) {
		const struct backend_group *g = &b->groups[d[i].group];
		ch_count_row(body, g->binary, g->labels, g->bucket, d[i].stack,
			     d[i].weight, d[i].samples);
	}
	free(d);
	if (!rc && body->oom)
		rc = fail(err, errlen, FDO_ENOMEM, "out of memory");
	return rc;
}

void ch_stack_row(struct fdo_buf *body, uint64_t stack,
		  const struct ch_frame *f, size_t n)
{
	put_le(body, stack, 8);
	fdo_buf_uleb(body, n);
	for (size_t i = 0; i < n; i++)
		put_bytes(body, f[i].build_id, f[i].build_id_len);
	fdo_buf_uleb(body, n);
	for (size_t i = 0; i < n; i++)
		put_le(body, f[i].offset, 8);
}

static const char *const insert_cols[] = {
	[CH_COUNTS] = "counts_local (binary, labels, bucket, stack, weight, "
		      "samples)",
	[CH_STACKS] = "stacks_local (stack, build_ids, offsets)",
};

int ch_insert(ch_client *c, enum ch_table table, const void *body, size_t len,
	      char *err, size_t errlen)
{
	if (table != CH_COUNTS && table != CH_STACKS)
		return fail(err, errlen, FDO_EINVAL, "no such table");
	if (len == 0)
		return FDO_OK;
	struct fdo_buf sql;
	fdo_buf_init(&sql);
	fdo_buf_printf(&sql, "INSERT INTO %s.%s FORMAT RowBinary", c->url.db,
		       insert_cols[table]);
	int rc = sql.oom ? fail(err, errlen, FDO_ENOMEM, "out of memory")
			 : ch_query(c, fdo_buf_cstr(&sql), body, len, NULL, err,
				    errlen);
	fdo_buf_fini(&sql);
	return rc;
}

int ch_append(ch_client *c, const struct backend_block *b, char *err,
	      size_t errlen)
{
	struct fdo_buf body;
	fdo_buf_init(&body);
	int rc = ch_counts_encode(b, &body, err, errlen);
	if (!rc)
		rc = ch_insert(c, CH_COUNTS, body.data, body.len, err, errlen);
	fdo_buf_fini(&body);
	return rc;
}

int ch_count_rows(ch_client *c, const char *binary, const char *labels,
		  uint32_t bucket, uint64_t stack, uint64_t *n, char *err,
		  size_t errlen)
{
	struct fdo_buf sql, out;
	fdo_buf_init(&sql);
	fdo_buf_init(&out);
	fdo_buf_printf(&sql,
		       "SELECT count() FROM %s.counts_local WHERE binary = ",
		       c->url.db);
	ch_sql_quote(&sql, binary, strlen(binary));
	fdo_buf_puts(&sql, " AND labels = ");
	ch_sql_quote(&sql, labels, strlen(labels));
	fdo_buf_printf(&sql,
		       " AND bucket = %" PRIu32 " AND stack = %" PRIu64
		       " FORMAT RowBinary",
		       bucket, stack);
	int rc = sql.oom ? fail(err, errlen, FDO_ENOMEM, "out of memory")
			 : ch_query(c, fdo_buf_cstr(&sql), NULL, 0, &out, err,
				    errlen);
	if (!rc && out.len != 8)
		rc = fail(err, errlen, FDO_ECORRUPT,
			  "ClickHouse answered %zu bytes to count()", out.len);
	if (!rc) {
		const uint8_t *p = (const uint8_t *)out.data;
		*n = 0;
		for (int i = 7; i >= 0; i--)
			*n = *n << 8 | p[i];
	}
	fdo_buf_fini(&sql);
	fdo_buf_fini(&out);
	return rc;
}

/* --------------------------------------------------------------- read -- */

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int ch_sums_decode(const void *p, size_t len, size_t nlabels, backend_sum_fn fn,
		   void *arg, char *err, size_t errlen)
{
	const uint8_t *s = p;
	if (len % CH_SUM_ROW_SIZE)
		return fail(err, errlen, FDO_ECORRUPT,
			    "ClickHouse answer of %zu bytes is not whole rows "
			    "of %d",
			    len, CH_SUM_ROW_SIZE);
	struct backend_sum prev = {0};
	for (size_t at = 0; at < len; at += CH_SUM_ROW_SIZE) {
		const uint8_t *r = s + at;
		struct backend_sum x = {
			.label = (uint32_t)get_le(r, 4),
			.bucket = (uint32_t)get_le(r + 4, 4),
			.stack = get_le(r + 8, 8),
			.weight = (wire_weight_t)get_le(r + 24, 8) << 64 |
				  get_le(r + 16, 8),
			.samples = get_le(r + 32, 8),
		};
		if (x.label >= nlabels)
			return fail(err, errlen, FDO_ECORRUPT,
				    "ClickHouse answer row %zu: label set %u "
				    "of %zu",
				    at / CH_SUM_ROW_SIZE, x.label, nlabels);
		if (at > 0 &&
		    !(prev.label < x.label ||
		      (prev.label == x.label &&
		       (prev.bucket < x.bucket ||
			(prev.bucket == x.bucket && prev.stack < x.stack)))))
			return fail(err, errlen, FDO_ECORRUPT,
				    "ClickHouse answer row %zu is out of order",
				    at / CH_SUM_ROW_SIZE);
		int rc = fn(arg, &x);
		if (rc)
			return rc;
		prev = x;
	}
	return FDO_OK;
}

int ch_read_sums(ch_client *c, const struct backend_read *r, backend_sum_fn fn,
		 void *arg, char *err, size_t errlen)
{
	if (!r->binary)
		return fail(err, errlen, FDO_EINVAL, "read: no binary");
	if (r->nlabels == 0 || r->from >= r->to)
		return FDO_OK;
	if (r->nlabels > UINT32_MAX)
		return fail(err, errlen, FDO_ELIMIT,
			    "read: too many label sets");
	struct fdo_buf q, list, ans;
	fdo_buf_init(&q);
	fdo_buf_init(&list);
	fdo_buf_init(&ans);
	for (size_t i = 0; i < r->nlabels; i++) {
		if (i)
			fdo_buf_putc(&list, ',');
		const char *l = r->labels[i] ? r->labels[i] : "";
		ch_sql_quote(&list, l, strlen(l));
	}
	fdo_buf_cstr(&list);
	/* Every column typed by a cast, so the row layout the decoder
	 * expects does not depend on a version's choice of types. */
	fdo_buf_printf(&q,
		       "SELECT toUInt32(indexOf([%s], labels) - 1) AS l, "
		       "toUInt32(bucket) AS b, stack, sum(weight), "
		       "toUInt64(sum(samples)) FROM %s.%s WHERE binary = ",
		       list.data ? list.data : "", c->url.db,
		       c->url.cluster[0] ? "counts" : "counts_local");
	ch_sql_quote(&q, r->binary, strlen(r->binary));
	fdo_buf_printf(&q,
		       " AND labels IN (%s) AND bucket >= %u AND bucket < %u"
		       " GROUP BY l, b, stack ORDER BY l, b, stack"
		       " FORMAT RowBinary",
		       list.data ? list.data : "", r->from, r->to);
	int rc;
	if (q.oom || list.oom)
		rc = fail(err, errlen, FDO_ENOMEM, "out of memory");
	else
		rc = ch_query(c, fdo_buf_cstr(&q), NULL, 0, &ans, err, errlen);
	if (!rc)
		rc = ch_sums_decode(ans.data, ans.len, r->nlabels, fn, arg, err,
				    errlen);
	fdo_buf_fini(&q);
	fdo_buf_fini(&list);
	fdo_buf_fini(&ans);
	return rc;
}

/* ------------------------------------------------- the builder's reads -- */

/* A RowBinary unsigned LEB128 at *at (at most 10 bytes, no bits past 64),
 * moving *at past it. 0, or -1 when it does not decode. */
static int get_uleb(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
	*v = 0;
	for (int sh = 0; sh < 64; sh += 7) {
		if (*at >= len)
			return -1;
		uint8_t b = p[(*at)++];
		if (sh == 63 && (b & 0x7e))
			return -1;
		*v |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

void ch_labels_free(char **labels, size_t n)
{
	for (size_t i = 0; labels && i < n; i++)
		free(labels[i]);
	free(labels);
}

int ch_labels_decode(const void *p, size_t len, char ***labels, size_t *n,
		     char *err, size_t errlen)
{
	const uint8_t *s = p;
	char **v = NULL;
	size_t nv = 0, cap = 0, at = 0, plen = 0;
	int rc = FDO_OK;
	*labels = NULL;
	*n = 0;
	while (at < len && !rc) {
		uint64_t l;
		if (get_uleb(s, len, &at, &l) || l > len - at) {
			rc = fail(err, errlen, FDO_ECORRUPT,
				  "ClickHouse label sets: string %zu is cut "
				  "short",
				  nv);
			break;
		}
		if (l > CH_LABELS_LEN_MAX || memchr(s + at, 0, (size_t)l)) {
			rc = fail(err, errlen, FDO_ECORRUPT,
				  "ClickHouse label sets: string %zu is too "
				  "long or holds a NUL",
				  nv);
			break;
		}
		if (nv) {
			size_t m = plen < l ? plen : (size_t)l;
			int c = memcmp(v[nv - 1], s + at, m);
			if (c > 0 || (!c && plen >= l)) {
				rc = fail(err, errlen, FDO_ECORRUPT,
					  "ClickHouse label sets: string %zu "
					  "is out of order",
					  nv);
				break;
			}
		}
		if (nv == BACKEND_READ_LABELS_MAX) {
			rc = fail(err, errlen, FDO_ELIMIT,
				  "more than %d label sets",
				  BACKEND_READ_LABELS_MAX);
			break;
		}
		char *x = malloc((size_t)l + 1);
		if (!x || fdo_grow(v, cap, nv + 1)) {
			free(x);
			rc = fail(err, errlen, FDO_ENOMEM, "out of memory");
			break;
		}
		memcpy(x, s + at, (size_t)l);
		x[l] = 0;
		v[nv++] = x;
		plen = (size_t)l;
		at += (size_t)l;
	}
	if (rc) {
		ch_labels_free(v, nv);
		return rc;
	}
	*labels = v;
	*n = nv;
	return FDO_OK;
}

int ch_read_labels(ch_client *c, const char *binary, uint32_t from, uint32_t to,
		   char ***labels, size_t *n, char *err, size_t errlen)
{
	*labels = NULL;
	*n = 0;
	if (from >= to)
		return FDO_OK;
	struct fdo_buf q, ans;
	fdo_buf_init(&q);
	fdo_buf_init(&ans);
	fdo_buf_printf(&q, "SELECT DISTINCT labels FROM %s.%s WHERE binary = ",
		       c->url.db,
		       c->url.cluster[0] ? "counts" : "counts_local");
	ch_sql_quote(&q, binary, strlen(binary));
	fdo_buf_printf(&q,
		       " AND bucket >= %u AND bucket < %u ORDER BY labels"
		       " FORMAT RowBinary",
		       from, to);
	int rc = q.oom ? fail(err, errlen, FDO_ENOMEM, "out of memory")
		       : ch_query(c, fdo_buf_cstr(&q), NULL, 0, &ans, err,
				  errlen);
	if (!rc)
		rc = ch_labels_decode(ans.data, ans.len, labels, n, err,
				      errlen);
	fdo_buf_fini(&q);
	fdo_buf_fini(&ans);
	return rc;
}

int ch_stacks_decode(const void *p, size_t len, ch_stack_fn fn, void *arg,
		     char *err, size_t errlen)
{
	const uint8_t *s = p;
	struct ch_frame *f = malloc(STORE_STACK_MAX_FRAMES * sizeof *f);
	if (!f)
		return fail(err, errlen, FDO_ENOMEM, "out of memory");
	size_t at = 0, row = 0;
	uint64_t prev = 0;
	int rc = FDO_OK;
	for (; at < len && !rc; row++) {
		uint64_t id, nb, no;
		if (len - at < 8) {
			rc = FDO_ECORRUPT;
			break;
		}
		id = get_le(s + at, 8);
		at += 8;
		if ((row && id <= prev) || get_uleb(s, len, &at, &nb) ||
		    nb == 0 || nb > STORE_STACK_MAX_FRAMES) {
			rc = FDO_ECORRUPT;
			break;
		}
		for (size_t i = 0; i < nb && !rc; i++) {
			uint64_t l;
			if (get_uleb(s, len, &at, &l) || l == 0 ||
			    l > FDO_BUILD_ID_MAX || l > len - at)
				rc = FDO_ECORRUPT;
			else {
				f[i].build_id = s + at;
				f[i].build_id_len = (size_t)l;
				at += (size_t)l;
			}
		}
		if (rc || get_uleb(s, len, &at, &no) || no != nb ||
		    (len - at) / 8 < no) {
			rc = FDO_ECORRUPT;
			break;
		}
		for (size_t i = 0; i < nb; i++, at += 8)
			f[i].offset = get_le(s + at, 8);
		prev = id;
		if ((rc = fn(arg, id, f, (size_t)nb))) {
			free(f);
			return rc; /* fn's, with its message */
		}
	}
	free(f);
	if (rc == FDO_ECORRUPT)
		return fail(err, errlen, FDO_ECORRUPT,
			    "ClickHouse stacks answer row %zu does not decode",
			    row);
	return rc;
}

int ch_read_stacks(ch_client *c, const uint64_t *ids, size_t n, ch_stack_fn fn,
		   void *arg, char *err, size_t errlen)
{
	if (n == 0)
		return FDO_OK;
	if (n > CH_READ_STACKS_MAX)
		return fail(err, errlen, FDO_ELIMIT, "read: too many stacks");
	struct fdo_buf q, ans;
	fdo_buf_init(&q);
	fdo_buf_init(&ans);
	fdo_buf_printf(&q,
		       "SELECT stack, build_ids, offsets FROM %s.%s WHERE "
		       "stack IN (",
		       c->url.db,
		       c->url.cluster[0] ? "stacks" : "stacks_local");
	for (size_t i = 0; i < n; i++)
		fdo_buf_printf(&q, "%s%" PRIu64, i ? "," : "", ids[i]);
	fdo_buf_printf(&q,
		       ") ORDER BY stack LIMIT 1 BY stack FORMAT RowBinary");
	int rc = q.oom ? fail(err, errlen, FDO_ENOMEM, "out of memory")
		       : ch_query(c, fdo_buf_cstr(&q), NULL, 0, &ans, err,
				  errlen);
	if (!rc)
		rc = ch_stacks_decode(ans.data, ans.len, fn, arg, err, errlen);
	fdo_buf_fini(&q);
	fdo_buf_fini(&ans);
	return rc;
}

/* ---------------------------------------------------------- retention -- */

int ch_days_decode(const void *p, size_t len, uint32_t below, uint32_t *days,
		   size_t cap, size_t *n, char *err, size_t errlen)
{
	const uint8_t *s = p;
	*n = 0;
	if (len % 4)
		return fail(err, errlen, FDO_ECORRUPT,
			    "ClickHouse partition list of %zu bytes is not "
			    "whole UInt32",
			    len);
	if (len / 4 > cap)
		return fail(err, errlen, FDO_ELIMIT,
			    "ClickHouse lists more than %zu partitions", cap);
	for (size_t i = 0; i < len / 4; i++) {
		uint32_t d = (uint32_t)get_le(s + 4 * i, 4);
		if (d >= below || (i > 0 && d <= days[i - 1]))
			return fail(err, errlen, FDO_ECORRUPT,
				    "ClickHouse partition list: day %u out of "
				    "order or not before %u",
				    d, below);
		days[i] = d;
	}
	*n = len / 4;
	return FDO_OK;
}

/* At most this many days dropped by one call; the next call takes the
 * rest. */
#define CH_DROP_MAX 4096

int ch_drop_before(ch_client *c, uint32_t before, uint32_t *dropped, char *err,
		   size_t errlen)
{
	*dropped = 0;
	uint32_t below = before / 86400; /* days ending at or before */
	struct fdo_buf q, ans;
	fdo_buf_init(&q);
	fdo_buf_init(&ans);
	fdo_buf_printf(&q,
		       "SELECT DISTINCT toUInt32(partition) AS d FROM "
		       "system.parts WHERE database = '%s' AND table = "
		       "'counts_local' AND active AND toUInt32(partition) < %u "
		       "ORDER BY d LIMIT %d FORMAT RowBinary",
		       c->url.db, below, CH_DROP_MAX);
	uint32_t *days = malloc(CH_DROP_MAX * sizeof *days);
	size_t n = 0;
	int rc = q.oom || !days ? fail(err, errlen, FDO_ENOMEM, "out of memory")
				: ch_query(c, fdo_buf_cstr(&q), NULL, 0, &ans,
					   err, errlen);
	if (!rc)
		rc = ch_days_decode(ans.data, ans.len, below, days, CH_DROP_MAX,
				    &n, err, errlen);
	for (size_t i = 0; i < n && !rc; i++) {
		fdo_buf_reset(&q);
		fdo_buf_printf(&q,
			       "ALTER TABLE %s.counts_local DROP PARTITION %u",
			       c->url.db, days[i]);
		rc = q.oom ? fail(err, errlen, FDO_ENOMEM, "out of memory")
			   : ch_query(c, fdo_buf_cstr(&q), NULL, 0, NULL, err,
				      errlen);
		if (!rc)
			(*dropped)++;
	}
	free(days);
	fdo_buf_fini(&q);
	fdo_buf_fini(&ans);
	return rc;
}
