/*
 * agent/buildid.c — the GNU build-id of a mapped ELF file, read from its
 * PT_NOTE segments by the bounded note reader uploads use too
 * (common/elfnote.c). Called once per mapped file (the caller caches).
 */
#include "agent/agent.h"
#include "common/elfnote.h"

int agent_build_id_read(const char *path, uint8_t out[FDO_BUILD_ID_MAX],
			size_t *len)
{
	return fdo_elf_build_id_path(path, out, len);
}
