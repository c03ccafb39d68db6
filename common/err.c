/* common/err.c — messages and names of the project's error list. */
#include "common/common.h"

static const char *const err_msgs[] = {
#define FDO_ERR_MSG(name, num, msg) [num] = msg,
	FDO_ERRORS(FDO_ERR_MSG)
#undef FDO_ERR_MSG
};

static const char *const err_names[] = {
#define FDO_ERR_NAME(name, num, msg) [num] = #name,
	FDO_ERRORS(FDO_ERR_NAME)
#undef FDO_ERR_NAME
};

const char *fdo_strerror(int err)
{
	if (err < 0 || (size_t)err >= sizeof err_msgs / sizeof err_msgs[0] ||
	    !err_msgs[err])
		return "unknown error";
	return err_msgs[err];
}

const char *fdo_errname(int err)
{
	if (err < 0 || (size_t)err >= sizeof err_names / sizeof err_names[0] ||
	    !err_names[err])
		return "UNKNOWN";
	return err_names[err];
}
