/* bench/agent/workload.c — a CPU-bound, single-threaded workload for the
 * agent overhead benchmark: a hot loop reached through a few levels of calls
 * (so every sample carries a real frame-pointer stack), fixed work (argv[1]
 * rounds), deterministic output. */
#include <stdio.h>
#include <stdlib.h>

#define N 4096
static unsigned table[N];

__attribute__((noinline)) static unsigned mix(unsigned x, unsigned i)
{
	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= i + (x >> 15);
	return x;
}

__attribute__((noinline)) static unsigned classify(unsigned v)
{
	if ((v & 7) == 0)
		return v / 3;
	if ((v & 7) < 3)
		return v * 5 + 1;
	if (v & 0x100)
		return v ^ 0xdeadbeefu;
	return v + 17;
}

__attribute__((noinline)) static void pass(unsigned r)
{
	for (int i = 0; i < N; i++)
		table[i] = classify(mix(table[i], r));
}

/* a few frames of depth above the hot loop */
__attribute__((noinline)) static void descend(int depth, unsigned r)
{
	if (depth == 0)
		pass(r);
	else
		descend(depth - 1, r + (unsigned)depth);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static unsigned checksum(void)
{
	unsigned s = 0;
	for (int i = 0; i < N; i++)
		s = (s << 5) + s + table[i];
	return s;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 50000;
	unsigned acc = 1;
	for (int i = 0; i < N; i++)
		table[i] = mix(12345, (unsigned)i);
	for (long r = 0; r < rounds; r++) {
		descend((int)(r % 8), (unsigned)r);
		if (r % 64 == 0)
			acc += checksum();
	}
	printf("%u %u\n", acc, checksum());
	return 0;
}
