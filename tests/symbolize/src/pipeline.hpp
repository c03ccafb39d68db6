// tests/symbolize/src/pipeline.hpp — header-style templates for the C++
// corpus: class templates with virtual methods, always_inline member
// templates three levels deep, lambdas passed to std algorithms. Every
// function here is instantiated in pipeline.cpp, so its frames carry this
// header's file name and DW_AT_call_file pointing back and forth between the
// two files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#define FORCE_INLINE __attribute__((always_inline)) inline

namespace corpus {

struct Stage {
	virtual ~Stage() = default;
	virtual long run(std::vector<int> &v, int x) = 0;
	virtual const char *name() const = 0;
};

template <typename T> FORCE_INLINE T mix(T a, T b)
{
	return static_cast<T>(a * 31 + (b ^ (a >> 3)));
}

template <typename T> FORCE_INLINE T fold3(const T *p, std::size_t n)
{
	T acc = T(7);
	for (std::size_t i = 0; i < n; i++)
		acc = mix<T>(acc, p[i]);
	return acc;
}

template <typename T, int K> struct Kernel {
	FORCE_INLINE static T step(T v) { return mix<T>(v, T(K)); }
	FORCE_INLINE static T apply(std::vector<T> &v)
	{
		T acc = T(0);
		for (auto &e : v) {
			e = step(e);
			acc += e;
		}
		return acc + fold3<T>(v.data(), v.size() < 4 ? v.size() : 4);
	}
};

template <int N> struct SortStage final : Stage {
	long run(std::vector<int> &v, int x) override
	{
		std::sort(v.begin(), v.end(), [x](int a, int b) {
			return (a ^ (x + N)) < (b ^ (x + N));
		});
		return Kernel<int, N>::apply(v);
	}
	const char *name() const override { return "sort"; }
};

template <int N> struct MapStage final : Stage {
	std::map<int, long> counts;
	long run(std::vector<int> &v, int x) override
	{
		for (int e : v)
			counts[(e * N) % (x | 1)] += e;
		long acc = 0;
		std::for_each(counts.begin(), counts.end(), [&acc](const std::pair<const int, long> &kv) {
			acc += kv.first * N - kv.second;
		});
		return acc;
	}
	const char *name() const override { return "map"; }
};

template <int N> struct StringStage final : Stage {
	long run(std::vector<int> &v, int x) override
	{
		std::string s;
		for (int e : v)
			s += std::to_string(e % (N + 2));
		auto it = std::find_if(s.begin(), s.end(), [x](char c) { return c == '0' + (x % 10); });
		long pos = it - s.begin();
		std::vector<long> w(v.begin(), v.end());
		return pos + Kernel<long, N + 1>::apply(w);
	}
	const char *name() const override { return "string"; }
};

template <typename T, int N> struct Accumulator {
	std::vector<T> items;
	std::function<T(T)> transform = [](T t) { return mix<T>(t, T(N)); };
	T total() const
	{
		return std::accumulate(items.begin(), items.end(), T(0),
				       [this](T a, T b) { return a + transform(b); });
	}
};

std::vector<std::unique_ptr<Stage>> make_stages();

} // namespace corpus
