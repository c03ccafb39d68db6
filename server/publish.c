/*
 * server/publish.c — published versions of a profile:
 *   POST /v1/profiles/{binary}/publish   (the selectors of a pull)
 *   GET  /v1/profiles/{binary}/versions
 *   GET  /v1/profiles/{binary}/versions/{id}
 * Publishing builds the profile as a pull would (srv_profile_make,
 * server/profiles.c: same readiness rules, same refusals) and freezes it:
 * its id is the SHA-256 of its bytes, stored with the selectors and
 * options it was built with, and GET .../versions/{id} returns exactly
 * those bytes forever. Publishing the same bytes again answers the
 * existing version (200) instead of adding one (201).
 *
 * A version is a value of table published, coded by storage/
 * (store_published_encode/decode; layout in storage/codec.c).
 *
 * Workload: publishes are rare (a release pipeline's step), each one
 * build and one write transaction; listing walks a binary's versions
 * (tens), each read whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/common.h"
#include "server/profiles.h"

#define PUB_MAX_BYTES (256u << 20) /* largest profile a version may hold */

/* The selectors as canonical JSON (the inputs of a version). */
static void inputs_json(const struct srv_preq *pr, const struct prof *p,
			struct fdo_buf *b)
{
	fdo_buf_puts(b, "{\"format\":");
	fdo_buf_json_str(b, pr->em->name);
	fdo_buf_puts(b, ",\"selectors\":[");
	for (size_t i = 0; i < pr->q.nselectors; i++) {
		fdo_buf_printf(b, "%s{\"weight\":%g,\"labels\":[", i ? "," : "",
			       pr->q.selectors[i].weight);
		for (size_t k = 0; k < pr->q.selectors[i].npairs; k++) {
			if (k)
				fdo_buf_putc(b, ',');
			fdo_buf_json_str(b, pr->q.selectors[i].pairs[k]);
		}
		fdo_buf_puts(b, "]}");
	}
	fdo_buf_printf(b, "],\"window\":%llu,\"half_life\":%llu,\"build_id\":",
		       (unsigned long long)pr->q.window,
		       (unsigned long long)pr->q.half_life);
	fdo_buf_json_str(b, pr->build_id_hex);
	/* The emitters' options, every one (defaults change between
	 * releases; a version says what it was built with). */
	fdo_buf_puts(b, ",\"options\":{");
	for (const struct prof_opt_def *d = prof_opt_defs; d->name; d++) {
		const char *base = (const char *)&pr->opts + d->offset;
		fdo_buf_printf(b, "%s\"%s\":", d == prof_opt_defs ? "" : ",",
			       d->name);
		if (d->type == PROF_OPT_ENUM)
			fdo_buf_json_str(b, d->values[*(const int *)base]);
		else if (d->type == PROF_OPT_BOOL)
			fdo_buf_puts(b, *(const int *)base ? "true" : "false");
		else if (d->type == PROF_OPT_DOUBLE)
			fdo_buf_printf(b, "%g", *(const double *)base);
		else
			fdo_buf_printf(
				b, "%llu",
				(unsigned long long)*(const uint64_t *)base);
	}
	fdo_buf_putc(b, '}');
	fdo_buf_printf(b,
		       ",\"samples\":%llu,\"hosts\":%llu,\"span\":%llu,"
		       "\"first_time\":%llu,\"last_time\":%llu,\"build_ids\":[",
		       (unsigned long long)p->samples,
		       (unsigned long long)p->hosts,
		       (unsigned long long)(p->last_time - p->first_time),
		       (unsigned long long)p->first_time,
		       (unsigned long long)p->last_time);
	for (size_t i = 0; i < p->nbuild_ids; i++) {
		if (i)
			fdo_buf_putc(b, ',');
		fdo_buf_json_str(b, p->build_ids[i].hex);
	}
	fdo_buf_puts(b, "]}");
}

struct publish {
	uint32_t binary;
	struct store_published v;
	uint32_t version; /* out */
	int existed;	  /* out */
};

static int publish_txn(store_txn *t, void *arg)
{
	struct publish *pb = arg;
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_PUBLISHED, &c);
	if (rc)
		return rc;
	uint8_t start[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(start, pb->binary, 0);
	const void *k, *v;
	size_t kl, vl;
	uint32_t last = 0, b, ver;
	pb->existed = 0;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_published_key_decode(k, kl, &b, &ver) &&
	       b == pb->binary) {
		struct store_published old;
		last = ver;
		if (!store_published_decode(v, vl, &old) &&
		    !memcmp(old.sha256, pb->v.sha256, sizeof old.sha256)) {
			pb->existed = 1;
			pb->version = ver;
		}
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (pb->existed)
		return FDO_OK;
	pb->version = last + 1;
	size_t len = store_published_size(&pb->v);
	uint8_t *val = len ? malloc(len) : NULL;
	if (!val)
		return len ? FDO_ENOMEM : FDO_ELIMIT;
	rc = store_published_encode(&pb->v, val, len, &len);
	uint8_t key[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(key, pb->binary, pb->version);
	if (!rc)
		rc = store_put(t, STORE_PUBLISHED, key, sizeof key, val, len,
			       STORE_NOOVERWRITE);
	free(val);
	return rc;
}

void srv_h_publish(void *a, struct srv_req *req, struct srv_resp *resp)
{
	struct srv_app *app = a;
	struct srv_preq pr;
	if (srv_preq_parse(app, req, resp, &pr) ||
	    srv_fresh_refuse(app, &pr, resp)) {
		agg_query_fini(&pr.q);
		return;
	}
	struct prof p;
	struct fdo_buf out, inputs;
	fdo_buf_init(&out);
	fdo_buf_init(&inputs);
	agg_ingest_flush(app->ingest, 10000);
	if (srv_profile_make(app, &pr, resp, &p, &out) == 0) {
		uint8_t d[32];
		char hex[65];
		fdo_sha256(out.data, out.len, d);
		fdo_hex_encode(d, 32, hex);
		inputs_json(&pr, &p, &inputs);
		store_txn *t;
		uint32_t binary = 0;
		if (store_txn_begin(app->st, 0, &t) == FDO_OK) {
			store_intern_binary(t, pr.q.binary, strlen(pr.q.binary),
					    0, &binary);
			store_txn_abort(t);
		}
		struct publish pb = {.binary = binary};
		pb.v.format = pr.em->code;
		pb.v.created = (uint64_t)time(NULL);
		memcpy(pb.v.sha256, d, sizeof d);
		pb.v.inputs = inputs.data;
		pb.v.inputs_len = inputs.len;
		pb.v.bytes = out.data;
		pb.v.bytes_len = out.len;
		int rc = out.len + inputs.len + STORE_PUBLISHED_HDR_SIZE >
					 PUB_MAX_BYTES
				 ? FDO_ELIMIT
				 : store_write(app->st, publish_txn, &pb);
		if (rc) {
			srv_resp_error(resp, rc == FDO_ELIMIT ? 413 : 507,
				       "cannot publish: %s", fdo_strerror(rc));
		} else {
			resp->status = pb.existed ? 200 : 201;
			fdo_buf_printf(&resp->body,
				       "{\"id\":\"%s\",\"version\":%u,"
				       "\"format\":\"%s\",\"bytes\":%zu,"
				       "\"existed\":%s,\"inputs\":",
				       hex, pb.version, pr.em->name, out.len,
				       pb.existed ? "true" : "false");
			fdo_buf_append(&resp->body, inputs.data, inputs.len);
			fdo_buf_puts(&resp->body, "}\n");
			fdo_info(
				"published %s version %u (%s, %zu bytes) as %s",
				pr.q.binary, pb.version, pr.em->name, out.len,
				hex);
		}
	}
	fdo_buf_fini(&out);
	fdo_buf_fini(&inputs);
	prof_fini(&p);
	agg_query_fini(&pr.q);
}

int srv_each_version(store_txn *t, uint32_t binary,
		     int (*fn)(void *arg, uint32_t ver,
			       const struct store_published *v),
		     void *arg)
{
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_PUBLISHED, &c);
	if (rc)
		return rc;
	uint8_t start[STORE_PUBLISHED_KEY_SIZE];
	store_published_key_encode(start, binary, 0);
	const void *k, *v;
	size_t kl, vl;
	uint32_t b, ver;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && !store_published_key_decode(k, kl, &b, &ver) &&
	       b == binary) {
		struct store_published pv;
		if (!store_published_decode(v, vl, &pv) && fn(arg, ver, &pv))
			break;
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	return FDO_OK;
}

struct list_ctx {
	struct fdo_buf *b;
	int n;
	const char *want; /* id to find, or NULL to list */
	struct srv_resp *resp;
	int found;
};

static int list_one(void *arg, uint32_t ver, const struct store_published *v)
{
	struct list_ctx *lc = arg;
	char hex[65];
	fdo_hex_encode(v->sha256, sizeof v->sha256, hex);
	const struct prof_emitter *em = prof_emitter_by_code(v->format);
	if (lc->want) {
		if (strcmp(lc->want, hex))
			return 0;
		lc->resp->content_type =
			em ? prof_content_type(em, v->bytes, v->bytes_len)
			   : "application/octet-stream";
		srv_resp_header(lc->resp, "ETag", "\"%s\"", hex);
		srv_resp_header(lc->resp, "X-Fdod-Version", "%s", hex);
		fdo_buf_append(lc->b, v->bytes, v->bytes_len);
		lc->found = 1;
		return 1;
	}
	fdo_buf_printf(lc->b,
		       "%s{\"id\":\"%s\",\"version\":%u,\"format\":\"%s\","
		       "\"created\":%llu,\"bytes\":%zu,\"inputs\":",
		       lc->n++ ? "," : "", hex, ver, em ? em->name : "?",
		       (unsigned long long)v->created, v->bytes_len);
	fdo_buf_append(lc->b, v->inputs, v->inputs_len);
	fdo_buf_putc(lc->b, '}');
	return 0;
}

static void versions(struct srv_app *app, struct srv_req *req,
		     struct srv_resp *resp, const char *want)
{
	store_txn *t;
	uint32_t binary;
	if (srv_binary_txn(app, resp, 0, req->param[0], &t, &binary))
		return;
	struct list_ctx lc = {&resp->body, 0, want, resp, 0};
	if (!want)
		fdo_buf_puts(&resp->body, "{\"versions\":[");
	srv_each_version(t, binary, list_one, &lc);
	store_txn_abort(t);
	if (!want)
		fdo_buf_puts(&resp->body, "]}\n");
	else if (!lc.found)
		srv_resp_error(resp, 404, "no version %s of %s", want,
			       req->param[0]);
}

void srv_h_versions(void *a, struct srv_req *req, struct srv_resp *resp)
{
	versions(a, req, resp, NULL);
}

void srv_h_version(void *a, struct srv_req *req, struct srv_resp *resp)
{
	uint8_t d[FDO_BUILD_ID_MAX];
	size_t n;
	if (fdo_build_id_parse(req->param[1], d, &n) || n != 32) {
		srv_resp_error(resp, 400,
			       "a version id is 64 lowercase hex "
			       "digits (the SHA-256 of its bytes)");
		return;
	}
	versions(a, req, resp, req->param[1]);
}
