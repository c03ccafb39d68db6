/*
 * bench/symbolize/rusage_run.c — run a command, report its wall time and peak RSS.
 *
 *   rusage_run STDIN STDOUT CMD [ARG...]
 *
 * Prints "<seconds> <max RSS KiB> <exit status>" on stdout (the command's
 * stderr goes to /dev/null). It exists because ru_maxrss carries over exec from the
 * forking process: a tool started straight from the (large) Python bench
 * inherits Python's resident size as its "peak". This helper is small, so the
 * child it forks starts from about 1 MiB.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: rusage_run STDIN STDOUT CMD [ARG...]\n");
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		int in = open(argv[1], O_RDONLY),
		    out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open("/dev/null", O_WRONLY);
		if (in < 0 || out < 0 || err < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	printf("%.6f %ld %d\n", secs, ru.ru_maxrss, code);
	return 0;
}
