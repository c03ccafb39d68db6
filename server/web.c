/*
 * server/web.c — GET /: the operator web page. One self-contained HTML
 * file (server/web/index.html: inline CSS and JavaScript, no external
 * scripts, fonts or images) compiled into the binary; the Makefile turns
 * it into the C array of $(GEN)/server/web_index.h. The page reads
 * everything it shows from the JSON routes with fetch(), so it needs no
 * scope itself; its calls need `read` when fdod has --tokens (the page
 * asks for the token and keeps it in sessionStorage).
 *
 * Workload: a page load now and then; the 30-odd KB are copied per answer.
 */
#include "server/app.h"
#include "server/web_index.h" /* generated: web_index_html[] */

void srv_h_web(void *app, struct srv_req *req, struct srv_resp *resp)
{
	resp->content_type = "text/html; charset=utf-8";
	/* Nothing but this page's own inline code and fdod's routes: a
	 * browser refuses any other script, style, font or connection. */
	srv_resp_header(resp, "Content-Security-Policy",
			"default-src 'none'; script-src 'unsafe-inline'; "
			"style-src 'unsafe-inline'; img-src data:; "
			"connect-src 'self'; base-uri 'none'; "
			"form-action 'none'; frame-ancestors 'none'");
	srv_resp_header(resp, "X-Content-Type-Options", "nosniff");
	srv_resp_header(resp, "Cache-Control", "no-cache");
	fdo_buf_append(&resp->body, web_index_html, sizeof web_index_html);
}
