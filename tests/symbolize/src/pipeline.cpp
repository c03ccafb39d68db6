// tests/symbolize/src/pipeline.cpp — the C++ corpus program: instantiates
// the templates of pipeline.hpp for many N (X-macro below), runs them through
// virtual calls, and adds a recursive template and a generic lambda, so the
// binary has thousands of functions with mangled names, COMDAT template
// instances and deep inline chains.
#include "pipeline.hpp"

#include <cstdio>
#include <cstdlib>

namespace corpus {

#define CORPUS_NS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10)

// Recursive template: Fib<N> calls Fib<N-1> and Fib<N-2>; the compiler
// inlines some levels and leaves others out of line.
template <int N> struct Fib {
	static long eval(long x) { return Fib<N - 1>::eval(x + 1) ^ Fib<N - 2>::eval(x * 3); }
};
template <> struct Fib<1> {
	static long eval(long x) { return x; }
};
template <> struct Fib<0> {
	static long eval(long x) { return x + 1; }
};

static long run_all(std::vector<std::unique_ptr<Stage>> &stages, std::vector<int> &v, int x)
{
	long acc = 0;
	for (auto &s : stages)
		acc += s->run(v, x); // virtual call
	return acc;
}

std::vector<std::unique_ptr<Stage>> make_stages()
{
	std::vector<std::unique_ptr<Stage>> stages;
#define ADD_STAGES(N)                                                                              \
	stages.emplace_back(new SortStage<N>());                                                   \
	stages.emplace_back(new MapStage<N>());                                                    \
	stages.emplace_back(new StringStage<N>());
	CORPUS_NS(ADD_STAGES)
#undef ADD_STAGES
	return stages;
}

template <typename T, int N> static T accumulate_one(int x)
{
	Accumulator<T, N> a;
	for (int i = 0; i < (x & 31) + 3; i++)
		a.items.push_back(static_cast<T>(i * N + x));
	return a.total();
}

long accumulate_all(int x)
{
	long acc = 0;
#define ACC(N) acc += accumulate_one<long, N>(x) + accumulate_one<int, N>(x) + (long)accumulate_one<unsigned, N>(x);
	CORPUS_NS(ACC)
#undef ACC
	return acc;
}

} // namespace corpus

int main(int argc, char **argv)
{
	int x = argc > 1 ? std::atoi(argv[1]) : 3;
	auto stages = corpus::make_stages();
	std::vector<int> v;
	for (int i = 0; i < 64; i++)
		v.push_back((i * 7919 + x) % 251);
	auto generic = [&](auto k) { return corpus::run_all(stages, v, x + static_cast<int>(k)); };
	long r = generic(1) + generic(2L) + corpus::accumulate_all(x) + corpus::Fib<18>::eval(x);
	std::printf("%ld\n", r);
	return 0;
}
