/*
 * agent/host.c — what host-wide mode (`fdo-agent --all`) knows about the
 * host beyond the perf records: which processes the --select selectors
 * accept, the binary name a process's batches carry, the processes
 * listed in /proc, and the lock that keeps one host-wide agent per host.
 *
 * Workload: a selector is matched once per process image (at the first
 * sample of a process after it starts or execs), never per sample.
 * Matching reads /proc/PID/exe and /proc/PID/comm; /proc/PID/cgroup and
 * the executable's build-id only when a selector of that kind exists and
 * no cheaper one matched.
 *
 * Threads: agent_select_create and agent_host_lock on the main thread
 * before the reader starts; agent_select_match on the reader thread. The
 * parsed selectors are read-only once created.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"

#define CGROUP_FILE_MAX 8192

/* What selectors look at, read from /proc on first use. */
struct probe {
	pid_t pid;
	const char *comm;	   /* the last COMM record's, or NULL */
	char name[AGENT_NAME_MAX]; /* the binary name */
	int have_cgroup, have_bid;
	char cgroup[CGROUP_FILE_MAX];
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t bid_len;
	char proc_comm[32];
};

struct sel {
	const struct sel_kind *kind;
	char *text;
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t bid_len;
};

struct sel_kind {
	const char *key;
	int (*parse)(struct sel *s, char *err, size_t errlen);
	int (*match)(const struct sel *s, struct probe *pb);
};

struct agent_select {
	struct sel *v;
	size_t n;
};

/* ---- exe=NAME: the executable's basename or the process's comm ---------- */

static int exe_parse(struct sel *s, char *err, size_t errlen)
{
	if (!*s->text || strchr(s->text, '/')) {
		snprintf(err, errlen,
			 "--select exe=%s: expected a file name "
			 "without '/'",
			 s->text);
		return FDO_EINVAL;
	}
	return FDO_OK;
}

static int exe_match(const struct sel *s, struct probe *pb)
{
	char san[AGENT_NAME_MAX];
	agent_binary_name(s->text, san, sizeof san);
	if (!strcmp(pb->name, s->text) || !strcmp(pb->name, san))
		return 1;
	/* comm is the basename cut to 15 bytes (TASK_COMM_LEN - 1) */
	const char *comm = pb->comm ? pb->comm : pb->proc_comm;
	return *comm && !strncmp(comm, s->text, 15) &&
	       (strlen(s->text) >= 15 || !strcmp(comm, s->text));
}

/* ---- cgroup=PATH: the process's cgroup is PATH or below it -------------- */

static int cgroup_parse(struct sel *s, char *err, size_t errlen)
{
	size_t n = strlen(s->text);
	while (n > 1 && s->text[n - 1] == '/')
		s->text[--n] = 0;
	if (s->text[0] != '/') {
		snprintf(err, errlen,
			 "--select cgroup=%s: expected an absolute "
			 "cgroup path such as "
			 "/system.slice/web.service",
			 s->text);
		return FDO_EINVAL;
	}
	return FDO_OK;
}

static int cgroup_match(const struct sel *s, struct probe *pb)
{
	if (!pb->have_cgroup) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pb->pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n =
			fd >= 0 ? read(fd, pb->cgroup, sizeof pb->cgroup - 1)
				: -1;
		if (fd >= 0)
			close(fd);
		pb->cgroup[n > 0 ? n : 0] = 0;
		pb->have_cgroup = 1;
	}
	size_t len = strlen(s->text);
	int root = len == 1; /* "/" selects every cgroup */
	/* lines "ID:CONTROLLERS:PATH" (v1) or "0::PATH" (v2) */
	for (const char *l = pb->cgroup; *l;) {
		const char *end = strchr(l, '\n');
		size_t ll = end ? (size_t)(end - l) : strlen(l);
		const char *c1 = memchr(l, ':', ll);
		const char *c2 =
			c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - l))
			   : NULL;
		if (c2) {
			const char *path = c2 + 1;
			size_t pl = ll - (size_t)(path - l);
			if (root || (pl >= len && !memcmp(path, s->text, len) &&
				     (pl == len || path[len] == '/')))
				return 1;
		}
		l += ll + (end != NULL);
	}
	return 0;
}

/* ---- build-id=HEX: the executable's GNU build-id ------------------------ */

static int bid_parse(struct sel *s, char *err, size_t errlen)
{
	if (fdo_build_id_parse(s->text, s->bid, &s->bid_len)) {
		snprintf(err, errlen,
			 "--select build-id=%s: expected 2-128 "
			 "lowercase hex digits",
			 s->text);
		return FDO_EINVAL;
	}
	return FDO_OK;
}

static int bid_match(const struct sel *s, struct probe *pb)
{
	if (!pb->have_bid) {
		/* /proc/PID/exe opens the file itself, in whatever mount
		 * namespace the process lives */
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/exe", (int)pb->pid);
		if (agent_build_id_read(path, pb->bid, &pb->bid_len))
			pb->bid_len = 0;
		pb->have_bid = 1;
	}
	return pb->bid_len == s->bid_len &&
	       !memcmp(pb->bid, s->bid, s->bid_len);
}

/* Cheapest first: matching stops at the first selector that accepts. */
static const struct sel_kind kinds[] = {
	{"exe", exe_parse, exe_match},
	{"cgroup", cgroup_parse, cgroup_match},
	{"build-id", bid_parse, bid_match},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static int sel_order(const void *a, const void *b)
{
	const struct sel *x = a, *y = b;
	return (x->kind > y->kind) - (x->kind < y->kind);
}

int agent_select_create(const struct fdo_strlist *specs,
			struct agent_select **out, char *err, size_t errlen)
{
	struct agent_select *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	for (size_t i = 0; i < specs->n && !rc; i++) {
		const char *spec = specs->items[i], *eq = strchr(spec, '=');
		const struct sel_kind *k = NULL;
		for (size_t j = 0; eq && j < NKINDS; j++)
			if (strlen(kinds[j].key) == (size_t)(eq - spec) &&
			    !memcmp(kinds[j].key, spec, (size_t)(eq - spec)))
				k = &kinds[j];
		if (!k) {
			snprintf(err, errlen,
				 "--select %s: expected exe=NAME"
				 "[,NAME...], cgroup=PATH or "
				 "build-id=HEX[,HEX...]",
				 spec);
			rc = FDO_EINVAL;
			break;
		}
		/* NAME,NAME...: one selector each (a cgroup path may hold
		 * commas: it stays whole) */
		char *copy = strdup(eq + 1);
		if (!copy) {
			rc = FDO_ENOMEM;
			break;
		}
		size_t before = s->n;
		char *save = NULL, *t = copy;
		if (k->parse != cgroup_parse)
			t = strtok_r(copy, ",", &save);
		while (t && !rc) {
			struct sel *v = realloc(s->v, (s->n + 1) * sizeof *v);
			if (v)
				s->v = v;
			char *text = v ? strdup(t) : NULL;
			if (!text) {
				rc = FDO_ENOMEM;
				break;
			}
			s->v[s->n] = (struct sel){.kind = k, .text = text};
			rc = k->parse(&s->v[s->n++], err, errlen);
			t = save ? strtok_r(NULL, ",", &save) : NULL;
		}
		if (!rc && s->n == before) {
			snprintf(err, errlen, "--select %s: no value", spec);
			rc = FDO_EINVAL;
		}
		free(copy);
	}
	if (rc) {
		agent_select_destroy(s);
		return rc;
	}
	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, sel_order);
	*out = s;
	return FDO_OK;
}

void agent_select_destroy(struct agent_select *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].text);
	free(s->v);
	free(s);
}

void agent_binary_name(const char *path, char *out, size_t outlen)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base)
		base = "unknown";
	snprintf(out, outlen, "%s", base);
	for (char *c = out; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("_.+-", *c)))
			*c = '_';
	if (out[0] == '.')
		out[0] = '_';
}

/* The name of pid's batches: its executable's basename, else its comm. */
static void probe_name(struct probe *pb)
{
	char link[64], exe[PATH_MAX];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pb->pid);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	char *del = strstr(exe, " (deleted)");
	if (del && !del[10])
		*del = 0;
	snprintf(link, sizeof link, "/proc/%d/comm", (int)pb->pid);
	int fd = open(link, O_RDONLY | O_CLOEXEC);
	ssize_t c = fd >= 0 ? read(fd, pb->proc_comm, sizeof pb->proc_comm - 1)
			    : -1;
	if (fd >= 0)
		close(fd);
	pb->proc_comm[c > 0 ? c : 0] = 0;
	pb->proc_comm[strcspn(pb->proc_comm, "\n")] = 0;
	const char *comm = pb->comm && *pb->comm ? pb->comm : pb->proc_comm;
	agent_binary_name(*exe	  ? exe
			  : *comm ? comm
				  : "unknown",
			  pb->name, sizeof pb->name);
}

int agent_select_match(const struct agent_select *s, pid_t pid,
		       const char *comm, char *name, size_t namelen)
{
	struct probe *pb = calloc(1, sizeof *pb);
	if (!pb)
		return 0;
	pb->pid = pid;
	pb->comm = comm;
	probe_name(pb);
	snprintf(name, namelen, "%s", pb->name);
	int ok = !s || s->n == 0;
	for (size_t i = 0; s && i < s->n && !ok; i++)
		ok = s->v[i].kind->match(&s->v[i], pb);
	free(pb);
	return ok;
}

size_t agent_proc_list(const char *dir, pid_t *out, size_t max)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long t = strtol(e->d_name, &end, 10);
		if (t > 0 && !*end)
			out[n++] = (pid_t)t;
	}
	closedir(d);
	return n;
}

/*
 * The lock file holds the holder's pid as text (written after the lock is
 * taken, for the message of the next agent); flock is released by the
 * kernel when the holder exits, however it exits.
 */
int agent_host_lock(const char *path, int *fd_out)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		/* /run/fdo-agent may not exist yet outside systemd */
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = 0;
			mkdir(dir, 0755);
		}
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		fprintf(stderr,
			"fdo-agent: cannot open the host-wide lock %s: "
			"%s (give another path with --lock-file)\n",
			path, strerror(errno));
		return FDO_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		close(fd);
		if (e == EWOULDBLOCK) {
			fprintf(stderr,
				"fdo-agent: another host-wide agent (pid %s) "
				"holds %s: only one --all agent runs per host "
				"(--pid and -- COMMAND runs are not limited)\n",
				*buf ? buf : "unknown", path);
			return FDO_EBUSY;
		}
		fprintf(stderr, "fdo-agent: cannot lock %s: %s\n", path,
			strerror(e));
		return FDO_EIO;
	}
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)len, 0) != len)
		fprintf(stderr, "fdo-agent: cannot write the pid into %s: %s\n",
			path, strerror(errno));
	*fd_out = fd;
	return FDO_OK;
}
