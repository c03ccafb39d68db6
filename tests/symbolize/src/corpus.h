/*
 * tests/symbolize/src/corpus.h — helpers shared by the generated C corpus
 * (gen_c.py writes tu_*.c that include this). The static inline and
 * always_inline functions here give inline chains whose frames come from a
 * header file, two and three levels deep, which is what a symbolizer most
 * often gets wrong (call_file/call_line of the inner frames).
 */
#ifndef CORPUS_H
#define CORPUS_H

#include <stddef.h>
#include <stdint.h>

#define AI	 static inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))

struct corpus_state {
	uint64_t acc;
	uint32_t hist[16];
	int depth;
	const char *name;
};

typedef int (*corpus_fn)(struct corpus_state *st, int x);

AI uint64_t corpus_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

AI uint32_t corpus_rotl(uint32_t v, int r)
{
	return (v << (r & 31)) | (v >> ((32 - r) & 31));
}

/* Two levels: corpus_bucket -> corpus_mix. */
AI void corpus_bucket(struct corpus_state *st, uint64_t v)
{
	st->acc = corpus_mix(st->acc, v);
	st->hist[st->acc & 15]++;
}

/* Three levels: corpus_fold -> corpus_bucket -> corpus_mix, in a loop. */
AI void corpus_fold(struct corpus_state *st, const int *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (v[i] & 1)
			corpus_bucket(st, (uint64_t)v[i] * 3u);
		else
			corpus_bucket(st, corpus_rotl((uint32_t)v[i], i));
	}
}

/* Plain static inline: the compiler decides. */
static inline int corpus_clamp(int v, int lo, int hi)
{
	if (v < lo)
		return lo;
	if (v > hi)
		return hi;
	return v;
}

static inline int corpus_popcount_loop(uint64_t v)
{
	int n = 0;
	while (v) {
		v &= v - 1;
		n++;
	}
	return n;
}

int corpus_dispatch(struct corpus_state *st, int which, int x);
extern const corpus_fn corpus_table[];
extern const int corpus_table_len;

#endif
