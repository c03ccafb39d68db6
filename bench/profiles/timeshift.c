/*
 * bench/profiles/timeshift.c — an LD_PRELOAD shim that moves fdod's wall
 * clock TIMESHIFT seconds ahead (time, gettimeofday, CLOCK_REALTIME;
 * pthread_cond_timedwait's deadlines moved back by as much), so that a
 * store pushed a minute ago can be measured as if its hour were over:
 * the pulls then read table aggs, as they would the next hour. For
 * benchmarks only (bench/profiles/README.md, "A store whose hour is
 * over").
 *
 *   cc -O2 -shared -fPIC -o build/bench/timeshift.so \
 *       bench/profiles/timeshift.c -ldl -lpthread
 *   LD_PRELOAD=build/bench/timeshift.so TIMESHIFT=3600 build/fdod ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long shift(void)
{
	const char *s = getenv("TIMESHIFT");
	return s ? atol(s) : 0;
}

int clock_gettime(clockid_t c, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(
			RTLD_NEXT, "clock_gettime");
	int r = real(c, ts);
	if (!r && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE))
		ts->tv_sec += shift();
	return r;
}

time_t time(time_t *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;
	int r = clock_gettime(CLOCK_REALTIME, &ts);
	(void)tz;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return r;
}

/* A deadline computed from the shifted clock, on the real one. */
int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
			   const struct timespec *abs)
{
	static int (*real)(pthread_cond_t *, pthread_mutex_t *,
			   const struct timespec *);
	if (!real)
		real = (int (*)(pthread_cond_t *, pthread_mutex_t *,
				const struct timespec *))
			dlsym(RTLD_NEXT, "pthread_cond_timedwait");
	struct timespec t = *abs;
	t.tv_sec -= shift();
	return real(c, m, &t);
}
