/*
 * cli/cli.h — fdoctl's subcommands. Each lives in cli/cmd_<name>.c and is
 * called with argv[0] = the subcommand name. Returns the process exit code:
 * 0 success, 1 the operation failed, 2 usage error.
 */
#ifndef FDO_CLI_H
#define FDO_CLI_H

int cmd_symbolize(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_push(int argc, char **argv);

#endif
