/*
 * Tests for agent/host.c: --select parsing (good and bad values), which
 * processes the selectors accept (this test process, by its basename, its
 * comm, its cgroup and its executable's build-id; and what must not
 * match), the binary name, and the one-agent-per-host lock (a second
 * holder is refused with the first one's pid; the lock frees on close).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/common.h"
#include "tests/unit/test.h"

static int sel_new(const char *spec, struct agent_select **out)
{
	char *items[1] = {(char *)spec}, err[256];
	struct fdo_strlist l = {.items = items, .n = 1};
	return agent_select_create(&l, out, err, sizeof err);
}

/* Whether spec accepts this process; name gets its binary name. */
static int accepts(const char *spec, char *name)
{
	struct agent_select *s = NULL;
	if (sel_new(spec, &s))
		return -1;
	int ok = agent_select_match(s, getpid(), NULL, name, AGENT_NAME_MAX);
	agent_select_destroy(s);
	return ok;
}

TEST(bad_selectors_are_refused)
{
	struct agent_select *s = NULL;
	CHECK_EQ_INT(sel_new("bogus=1", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("exe", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("exe=", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("exe=a/b", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("cgroup=relative", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("build-id=xyz", &s), FDO_EINVAL);
	CHECK_EQ_INT(sel_new("build-id=ab,", &s), FDO_OK);
	agent_select_destroy(s);
}

TEST(selectors_match_this_process)
{
	char name[AGENT_NAME_MAX], exe[PATH_MAX], hex[2 * FDO_BUILD_ID_MAX + 1];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	REQUIRE(n > 0);
	exe[n] = 0;
	const char *base = strrchr(exe, '/') + 1;
	char spec[PATH_MAX + 16];

	snprintf(spec, sizeof spec, "exe=nothing,%s", base);
	CHECK_EQ_INT(accepts(spec, name), 1);
	CHECK_EQ_STR(name, base);
	CHECK_EQ_INT(accepts("exe=fdo-no-such-binary", name), 0);
	/* comm: the basename cut to 15 bytes */
	snprintf(spec, sizeof spec, "exe=%.15sXYZ", base);
	CHECK_EQ_INT(accepts(spec, name), strlen(base) >= 15);

	CHECK_EQ_INT(accepts("cgroup=/", name), 1);
	CHECK_EQ_INT(accepts("cgroup=/fdo-no-such-cgroup", name), 0);

	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	REQUIRE(agent_build_id_read("/proc/self/exe", id, &len) == FDO_OK);
	fdo_hex_encode(id, len, hex);
	snprintf(spec, sizeof spec, "build-id=%s", hex);
	CHECK_EQ_INT(accepts(spec, name), 1);
	hex[0] = hex[0] == '0' ? '1' : '0';
	snprintf(spec, sizeof spec, "build-id=%s", hex);
	CHECK_EQ_INT(accepts(spec, name), 0);

	/* no selectors: everything */
	CHECK_EQ_INT(
		agent_select_match(NULL, getpid(), NULL, name, sizeof name), 1);
}

TEST(binary_names_are_what_fdod_accepts)
{
	char out[AGENT_NAME_MAX];
	agent_binary_name("/usr/bin/.hidden name", out, sizeof out);
	CHECK_EQ_STR(out, "_hidden_name");
	agent_binary_name("/", out, sizeof out);
	CHECK_EQ_STR(out, "unknown");
}

TEST(second_lock_holder_is_refused)
{
	char dir[] = "/tmp/agent_host_XXXXXX", path[64], pid[32];
	REQUIRE(mkdtemp(dir));
	/* the parent directory is made when missing */
	snprintf(path, sizeof path, "%s/sub/all.lock", dir);
	int fd1 = -1, fd2 = -1;
	CHECK_EQ_INT(agent_host_lock(path, &fd1), FDO_OK);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, pid, sizeof pid - 1) : -1;
	if (fd >= 0)
		close(fd);
	pid[n > 0 ? n : 0] = 0;
	CHECK_EQ_INT(atoi(pid), (int)getpid());
	CHECK_EQ_INT(agent_host_lock(path, &fd2), FDO_EBUSY);
	close(fd1);
	CHECK_EQ_INT(agent_host_lock(path, &fd2), FDO_OK);
	close(fd2);
	unlink(path);
	snprintf(path, sizeof path, "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}
