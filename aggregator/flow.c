/*
 * aggregator/flow.c — block execution counts of one function from its IP
 * samples and its control-flow graph: the most likely flow.
 *
 * Model. A block of size n (instructions) run x times collects Poisson(n x)
 * samples in expectation (cpu-clock samples fall in proportion to time,
 * and time per execution grows with the instructions retired). Block
 * counts must form a flow: what enters a block leaves it, the entry takes
 * what the function is called with, exits give it back. So the counts are
 * the flow x minimising sum over blocks of n x - S ln(n x) (the negative
 * log-likelihood of S observed samples), convex in x: samples alone would
 * give x = S / n per block, and the flow constraints reconcile blocks that
 * disagree, fill blocks whose instructions drew no sample, and put a count
 * on every edge. The same idea as LLVM's profi (SampleProfileInference)
 * and AutoFDO's MCF; this formulation weighs each block by its evidence.
 *
 * Overdispersion (r > 0). What an execution of a block costs is not its
 * instruction count: a function's entry collects the time a mispredicted
 * indirect call loses (perl's pp_helem, which every call runs from its
 * entry block through its hash lookup: 29 samples on the 18 instructions
 * of its entry block, 0-2 on each block after it), a load that misses the
 * cache charges the instruction after it. Under Poisson such a block's
 * many samples outweigh the sparse blocks around it, and the flow invents
 * exits to reconcile them (pp_helem's head 867 against 320 through its
 * lookup, in another sample set). A negative binomial of size r
 * (variance mu + mu^2/r) gives a block's density a bounded weight,
 * however many samples it has. Blocks without samples keep the Poisson
 * price: under the negative binomial their likelihood is concave, which a
 * min-cost flow cannot take. The default stays Poisson (r = 0): r = 3 and
 * 10 brought the counts closer to exact ones but did not time better
 * (docs/profile-quality.md, "The balance's bound").
 *
 * Solution: a min-cost circulation. Each block is an arc pair
 * in -> out carrying its count, its convex cost cut into linear segments
 * (breakpoints from 0.25 to 3 times S/n: slope n - S/x at each segment's
 * middle; a block without samples costs ZERO_COST n per unit); each graph
 * edge is an
 * arc out -> in of tiny cost; a source feeds the entry (and blocks the
 * graph gives no predecessor), exits drain to a sink, sink -> source
 * closes the circulation. Segments of negative cost are saturated first;
 * the imbalance that leaves is routed back by successive shortest paths
 * from each node with excess to the nearest node with a deficit (Dijkstra
 * on reduced costs, stopped there), which keeps every residual cost
 * non-negative.
 *
 * Workload: one call per sampled function; graphs of 1 to ~10^4 blocks.
 * Work is bounded (FDO_ELIMIT past it, with density counts).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/flow.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"

#define INF	  1e30
#define EDGE_COST 1e-3 /* prefer less flow when all else is equal */
/*
 * Cost per unit of count and of size of a block that drew no sample: 1,
 * as the Poisson model says (e^-(n x) is the chance of no sample). Samples
 * do not fall on instructions in proportion to time alone (cpu-clock
 * charges the instruction after a load that missed, and skips stores and
 * jumps), so short blocks inside hot code often draw none; a lower price
 * lets the flow pass through them, but measured against exact counts
 * (docs/profile-quality.md) 0.3 did no better than 1 on gawk and worse on
 * bzip2.
 */
#define ZERO_COST 1.0
#define NONE	  UINT32_MAX

/* Segment breakpoints, as multiples of S / n. */
static const double breaks[] = {0,   0.25, 0.5,	 0.7, 0.8, 0.9, 1,
				1.1, 1.2,  1.35, 1.5, 2,   3};
#define NBREAKS (sizeof breaks / sizeof breaks[0])

struct arc {
	uint32_t to, next;
	double cap, cost; /* residual capacity; arc i ^ 1 is the reverse */
};

struct net {
	struct arc *a;
	size_t na, cap_a;
	uint32_t *head; /* first arc of each node */
	size_t nn;
	double *excess;
};

static int arc_add(struct net *g, uint32_t from, uint32_t to, double cap,
		   double cost, uint32_t *idx)
{
	if (fdo_grow(g->a, g->cap_a, g->na + 2))
		return FDO_ENOMEM;
	uint32_t i = (uint32_t)g->na;
	g->a[i] = (struct arc){to, g->head[from], cap, cost};
	g->head[from] = i;
	g->a[i + 1] = (struct arc){from, g->head[to], 0, -cost};
	g->head[to] = i + 1;
	g->na += 2;
	if (idx)
		*idx = i;
	return FDO_OK;
}

/* An arc of negative cost starts full: its ends get the imbalance. */
static void saturate(struct net *g, uint32_t i, uint32_t from, uint32_t to)
{
	double c = g->a[i].cap;
	g->a[i].cap = 0;
	g->a[i ^ 1].cap += c;
	g->excess[from] -= c;
	g->excess[to] += c;
}

/* ------------------------------------------------------------- heap -- */

struct hitem {
	double d;
	uint32_t v;
};

struct heap {
	struct hitem *h;
	size_t n, cap;
};

/* The heap has room (solve sizes it for a round's every push). */
static void heap_push(struct heap *q, double d, uint32_t v)
{
	size_t i = q->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->h[p].d <= d)
			break;
		q->h[i] = q->h[p];
		i = p;
	}
	q->h[i] = (struct hitem){d, v};
}

static struct hitem heap_pop(struct heap *q)
{
	struct hitem top = q->h[0], last = q->h[--q->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->h[c + 1].d < q->h[c].d)
			c++;
		if (last.d <= q->h[c].d)
			break;
		q->h[i] = q->h[c];
		i = c;
	}
	if (q->n)
		q->h[i] = last;
	return top;
}

/* ------------------------------------------------------------ solver -- */

struct ssp {
	struct net *g;
	double *pi, *dist;
	uint32_t *pred;	 /* arc into each node on the shortest path */
	uint32_t *stamp; /* round in which dist/pred are valid */
	uint32_t *done;	 /* round in which the node was finalized */
	struct heap q;
	uint32_t *visited; /* nodes reached in this round (each once) */
	size_t nvisited;
	uint64_t work, budget;
};

/*
 * One shortest path on reduced costs from src (a node with excess) to the
 * nearest node with a deficit, *dst; returns 1 found, 0 none, negative on
 * error (FDO_ENOMEM, FDO_ELIMIT as -code).
 */
static int shortest(struct ssp *s, uint32_t round, uint32_t src, uint32_t *dstp,
		    double tiny)
{
	uint32_t dst = NONE;
	struct net *g = s->g;
	s->q.n = 0;
	s->nvisited = 0;
	s->dist[src] = 0;
	s->stamp[src] = round;
	s->pred[src] = NONE;
	heap_push(&s->q, 0, src);
	s->visited[s->nvisited++] = src;
	while (s->q.n) {
		struct hitem it = heap_pop(&s->q);
		uint32_t u = it.v;
		if (s->done[u] == round || it.d > s->dist[u])
			continue;
		s->done[u] = round;
		if (s->g->excess[u] < -tiny) {
			dst = u;
			break;
		}
		for (uint32_t i = g->head[u]; i != NONE; i = g->a[i].next) {
			const struct arc *e = &g->a[i];
			if (e->cap <= tiny)
				continue;
			if (++s->work > s->budget)
				return -FDO_ELIMIT;
			double rc = e->cost + s->pi[u] - s->pi[e->to];
			if (rc < 0)
				rc = 0; /* rounding: never below 0 in exact math */
			double nd = it.d + rc;
			if (s->stamp[e->to] != round)
				s->visited[s->nvisited++] = e->to;
			if (s->stamp[e->to] != round || nd < s->dist[e->to]) {
				s->stamp[e->to] = round;
				s->dist[e->to] = nd;
				s->pred[e->to] = i;
				heap_push(&s->q, nd, e->to);
			}
		}
	}
	if (dst == NONE)
		return 0;
	*dstp = dst;
	/* Potentials: finalized nodes move by their distance, the rest by
	 * the target's, which keeps reduced costs non-negative. Moving every
	 * node by the target's distance changes no reduced cost, so only the
	 * nodes finalized in this round move, by dist - dd (each was pushed
	 * on the heap, so the heap's items name them all). */
	double dd = s->dist[dst];
	for (size_t k = 0; k < s->nvisited; k++) {
		uint32_t v = s->visited[k];
		if (s->done[v] == round)
			s->pi[v] += s->dist[v] - dd;
	}
	return 1;
}

static int solve(struct net *g, double tiny, uint64_t budget)
{
	struct ssp s = {.g = g, .budget = budget};
	s.pi = calloc(g->nn, sizeof *s.pi);
	s.dist = calloc(g->nn, sizeof *s.dist);
	s.pred = calloc(g->nn, sizeof *s.pred);
	s.stamp = calloc(g->nn, sizeof *s.stamp);
	s.done = calloc(g->nn, sizeof *s.done);
	/* A round visits each node once and pushes at most once per arc it
	 * relaxes (each node's arcs are scanned once, when it is finalized):
	 * room for that up front, no growth in the search. */
	s.visited = malloc(g->nn * sizeof *s.visited);
	s.q.cap = g->na + 1;
	s.q.h = malloc(s.q.cap * sizeof *s.q.h);
	int rc = s.pi && s.dist && s.pred && s.stamp && s.done && s.visited &&
				 s.q.h
			 ? FDO_OK
			 : FDO_ENOMEM;
	uint32_t round = 0;
	/* Each node's excess, in node order, goes to the nearest deficits. */
	for (uint32_t src = 0; !rc && src < g->nn; src++) {
		while (!rc && g->excess[src] > tiny) {
			uint32_t dst;
			int found = shortest(&s, ++round, src, &dst, tiny);
			if (found < 0) {
				rc = -found;
				break;
			}
			if (!found)
				break; /* nowhere to go: left unbalanced */
			double push = g->excess[src] < -g->excess[dst]
					      ? g->excess[src]
					      : -g->excess[dst];
			for (uint32_t v = dst; v != src;) {
				uint32_t i = s.pred[v];
				if (g->a[i].cap < push)
					push = g->a[i].cap;
				v = g->a[i ^ 1].to;
			}
			for (uint32_t v = dst; v != src;) {
				uint32_t i = s.pred[v];
				g->a[i].cap -= push;
				g->a[i ^ 1].cap += push;
				v = g->a[i ^ 1].to;
			}
			g->excess[src] -= push;
			g->excess[dst] += push;
		}
	}
	free(s.pi);
	free(s.dist);
	free(s.pred);
	free(s.stamp);
	free(s.done);
	free(s.visited);
	free(s.q.h);
	return rc;
}

/* Counts from the samples alone, when the search gives up. */
static void density(struct flow_block *b, size_t nb, struct flow_edge *e,
		    size_t ne)
{
	for (size_t i = 0; i < nb; i++)
		b[i].count = b[i].size > 0 ? b[i].samples / b[i].size : 0;
	for (size_t i = 0; i < ne; i++)
		e[i].count = 0;
}

int flow_infer(struct flow_block *blocks, size_t nb, struct flow_edge *edges,
	       size_t ne, double r)
{
	for (size_t i = 0; i < ne; i++)
		if (edges[i].from >= nb || edges[i].to >= nb)
			return FDO_EINVAL;
	if (!nb)
		return FDO_OK;
	if (nb > (UINT32_MAX - 8) / 2)
		return FDO_ELIMIT;
	struct net g = {0};
	g.nn = 2 * nb + 2;
	uint32_t S = (uint32_t)(2 * nb), T = S + 1;
	g.head = malloc(g.nn * sizeof *g.head);
	g.excess = calloc(g.nn, sizeof *g.excess);
	/* first[i]..: block i's segment arcs; edge_arc[k]: edge k's arc. */
	uint32_t *first = malloc((nb + 1) * sizeof *first);
	uint32_t *edge_arc = malloc((ne ? ne : 1) * sizeof *edge_arc);
	int rc = g.head && g.excess && first && edge_arc ? FDO_OK : FDO_ENOMEM;
	for (size_t v = 0; !rc && v < g.nn; v++)
		g.head[v] = NONE;
	double total = 0;
	for (size_t i = 0; !rc && i < nb; i++) {
		struct flow_block *b = &blocks[i];
		uint32_t in = (uint32_t)(2 * i), out = in + 1;
		double n = b->size > 0 ? b->size : 1;
		first[i] = (uint32_t)g.na;
		if (!(b->samples > 0)) {
			rc = arc_add(&g, in, out, INF, ZERO_COST * n, NULL);
		} else {
			double w = b->samples / n, S = b->samples;
			total += b->samples;
			double last = -INF;
			for (size_t k = 0; k < NBREAKS && !rc; k++) {
				double lo = breaks[k] * w;
				double hi = k + 1 < NBREAKS ? breaks[k + 1] * w
							    : INF;
				double mid = k + 1 < NBREAKS ? (lo + hi) / 2
							     : 4 * w;
				/* The slope at mid: Poisson n - S/x; negative
				 * binomial of size r, mu = n x: n (-S/mu +
				 * (S + r)/(mu + r)), kept non-decreasing (the
				 * likelihood is not convex far above S). */
				double mu = n * mid;
				double cost = r > 0 ? n * (-S / mu +
							   (S + r) / (mu + r))
						    : n - S / mid;
				if (cost < last)
					cost = last;
				last = cost;
				uint32_t a;
				rc = arc_add(&g, in, out, hi - lo, cost, &a);
				if (!rc && cost < 0)
					saturate(&g, a, in, out);
			}
		}
		if (!rc && (b->flags & FLOW_ENTRY))
			rc = arc_add(&g, S, in, INF, 0, NULL);
		if (!rc && (b->flags & FLOW_NO_PRED) &&
		    !(b->flags & FLOW_ENTRY))
			rc = arc_add(&g, S, in, INF, 0, NULL);
		if (!rc && (b->flags & (FLOW_EXIT | FLOW_UNKNOWN_SUCC)))
			rc = arc_add(&g, out, T, INF, 0, NULL);
	}
	if (!rc)
		first[nb] = (uint32_t)g.na;
	for (size_t k = 0; !rc && k < ne; k++)
		rc = arc_add(&g, (uint32_t)(2 * edges[k].from + 1),
			     (uint32_t)(2 * edges[k].to), INF, EDGE_COST,
			     &edge_arc[k]);
	if (!rc)
		rc = arc_add(&g, T, S, INF, 0, NULL);
	if (!rc) {
		/* Enough for paths across the graph many times over. */
		uint64_t budget =
			2000ull * (g.na + 64) +
			200ull * g.na * (uint64_t)(nb < 4096 ? nb : 4096);
		double tiny = 1e-9 * (total > 1 ? total : 1);
		rc = solve(&g, tiny, budget);
	}
	if (!rc) {
		for (size_t i = 0; i < nb; i++) {
			double c = 0;
			/* Flow on block i's segments: their reverses' caps
			 * (the source/sink arcs added after them are not
			 * segments: only in -> out arcs count). */
			for (uint32_t a = first[i]; a < first[i + 1]; a += 2)
				if (g.a[a].to == 2 * i + 1)
					c += g.a[a ^ 1].cap;
			blocks[i].count = c;
		}
		for (size_t k = 0; k < ne; k++)
			edges[k].count = g.a[edge_arc[k] ^ 1].cap;
	} else if (rc == FDO_ELIMIT) {
		density(blocks, nb, edges, ne);
	}
	free(g.a);
	free(g.head);
	free(g.excess);
	free(first);
	free(edge_arc);
	return rc;
}

/* ------------------------------------------------------ shared memo -- */

/*
 * flow_infer is a pure function of its input (the blocks' sizes, flags and
 * samples, the edges, r), and the llvm, gcc and bolt pulls of one store
 * state, and pulls after a change that left a function's leaves alone,
 * infer the same functions again, which is much of a stored-rows pull
 * (docs/scale.md has the figures). So the results are kept, keyed by the whole input and
 * compared whole on a hash match: a hit gives the bytes the solver gave.
 * Least recently used entries go first past FLOW_MEMO_BYTES.
 */
#define FLOW_MEMO_BUCKETS 4096u

struct memo {
	struct memo *next;	    /* hash chain */
	struct memo *older, *newer; /* use order */
	uint64_t hash;
	double r;
	size_t nb, ne, bytes;
	int rc;
	/* nb blocks (size, samples, flags, count), then ne edges */
	struct flow_block *b;
	struct flow_edge *e;
};

static struct {
	pthread_mutex_t mu;
	struct memo *chain[FLOW_MEMO_BUCKETS];
	struct memo *oldest, *newest;
	size_t bytes, entries;
	uint64_t hits, misses;
} memo = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t memo_hash(const struct flow_block *b, size_t nb,
			  const struct flow_edge *e, size_t ne, double r)
{
	uint64_t h = fdo_mix64(nb * 0x9e3779b97f4a7c15ull ^ ne);
	uint64_t w;
	memcpy(&w, &r, sizeof w);
	h = fdo_mix64(h ^ w);
	for (size_t i = 0; i < nb; i++) {
		uint64_t s, z;
		memcpy(&s, &b[i].samples, sizeof s);
		memcpy(&z, &b[i].size, sizeof z);
		h = fdo_mix64(h ^ s) + z + b[i].flags;
	}
	for (size_t i = 0; i < ne; i++)
		h = fdo_mix64(h ^ ((uint64_t)e[i].from << 32 | e[i].to));
	return h;
}

/* The same input, bit for bit (counts aside: they are the output). */
static int memo_same(const struct memo *m, uint64_t h,
		     const struct flow_block *b, size_t nb,
		     const struct flow_edge *e, size_t ne, double r)
{
	if (m->hash != h || m->nb != nb || m->ne != ne ||
	    memcmp(&m->r, &r, sizeof r))
		return 0;
	for (size_t i = 0; i < nb; i++)
		if (memcmp(&m->b[i].samples, &b[i].samples, sizeof(double)) ||
		    memcmp(&m->b[i].size, &b[i].size, sizeof(double)) ||
		    m->b[i].flags != b[i].flags)
			return 0;
	for (size_t i = 0; i < ne; i++)
		if (m->e[i].from != e[i].from || m->e[i].to != e[i].to)
			return 0;
	return 1;
}

static void memo_unlink_use(struct memo *m)
{
	if (m->older)
		m->older->newer = m->newer;
	else
		memo.oldest = m->newer;
	if (m->newer)
		m->newer->older = m->older;
	else
		memo.newest = m->older;
	m->older = m->newer = NULL;
}

static void memo_link_newest(struct memo *m)
{
	m->older = memo.newest;
	m->newer = NULL;
	if (memo.newest)
		memo.newest->newer = m;
	else
		memo.oldest = m;
	memo.newest = m;
}

static void memo_drop(struct memo *m)
{
	struct memo **pp = &memo.chain[m->hash % FLOW_MEMO_BUCKETS];
	while (*pp != m)
		pp = &(*pp)->next;
	*pp = m->next;
	memo_unlink_use(m);
	memo.bytes -= m->bytes;
	memo.entries--;
	free(m);
}

/* The memo's bound: FLOW_MEMO_BYTES, or an eighth of the memory budget's
 * builds part when that is less (a small budget, a small memo). Not
 * counted in that part: the merger's fill of table aggs starts only while
 * the part holds nothing (aggregator/merge.c), which a memory kept from
 * pull to pull would never let it. */
static size_t memo_limit(void)
{
	uint64_t cap = fdo_mem_cap(FDO_MEM_BUILDS) / 8;
	return cap && cap < FLOW_MEMO_BYTES ? (size_t)cap : FLOW_MEMO_BYTES;
}

static void memo_put(uint64_t h, const struct flow_block *b, size_t nb,
		     const struct flow_edge *e, size_t ne, double r, int rc)
{
	size_t bytes = sizeof(struct memo) + nb * sizeof *b + ne * sizeof *e;
	size_t limit = memo_limit();
	if (bytes > limit / 8)
		return; /* one function would push out many */
	struct memo *m = malloc(bytes);
	if (!m)
		return; /* only a cost: inferred again next time */
	*m = (struct memo){
		.hash = h, .r = r, .nb = nb, .ne = ne, .bytes = bytes, .rc = rc};
	m->b = (struct flow_block *)(m + 1);
	m->e = (struct flow_edge *)(m->b + nb);
	memcpy(m->b, b, nb * sizeof *b);
	if (ne)
		memcpy(m->e, e, ne * sizeof *e);
	pthread_mutex_lock(&memo.mu);
	struct memo **head = &memo.chain[h % FLOW_MEMO_BUCKETS];
	for (struct memo *o = *head; o; o = o->next)
		if (memo_same(o, h, b, nb, e, ne, r)) {
			/* another build put it first */
			pthread_mutex_unlock(&memo.mu);
			free(m);
			return;
		}
	while (memo.oldest && memo.bytes + bytes > limit)
		memo_drop(memo.oldest);
	m->next = *head;
	*head = m;
	memo_link_newest(m);
	memo.bytes += bytes;
	memo.entries++;
	pthread_mutex_unlock(&memo.mu);
}

int flow_infer_shared(struct flow_block *blocks, size_t nb,
		      struct flow_edge *edges, size_t ne, double r)
{
	for (size_t i = 0; i < ne; i++)
		if (edges[i].from >= nb || edges[i].to >= nb)
			return FDO_EINVAL;
	uint64_t h = memo_hash(blocks, nb, edges, ne, r);
	pthread_mutex_lock(&memo.mu);
	for (struct memo *m = memo.chain[h % FLOW_MEMO_BUCKETS]; m;
	     m = m->next) {
		if (!memo_same(m, h, blocks, nb, edges, ne, r))
			continue;
		for (size_t i = 0; i < nb; i++)
			blocks[i].count = m->b[i].count;
		for (size_t i = 0; i < ne; i++)
			edges[i].count = m->e[i].count;
		int rc = m->rc;
		memo_unlink_use(m);
		memo_link_newest(m);
		memo.hits++;
		pthread_mutex_unlock(&memo.mu);
		return rc;
	}
	memo.misses++;
	pthread_mutex_unlock(&memo.mu);
	int rc = flow_infer(blocks, nb, edges, ne, r);
	if (rc == FDO_OK || rc == FDO_ELIMIT)
		memo_put(h, blocks, nb, edges, ne, r, rc);
	return rc;
}

void flow_memo_stats(struct flow_memo_stats *s)
{
	pthread_mutex_lock(&memo.mu);
	*s = (struct flow_memo_stats){.bytes = memo.bytes,
				      .entries = memo.entries,
				      .hits = memo.hits,
				      .misses = memo.misses};
	pthread_mutex_unlock(&memo.mu);
}

void flow_memo_clear(void)
{
	pthread_mutex_lock(&memo.mu);
	while (memo.oldest)
		memo_drop(memo.oldest);
	memo.hits = memo.misses = 0;
	pthread_mutex_unlock(&memo.mu);
}
