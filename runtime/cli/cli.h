/* The commands of the meshrt executable that live in their own file. */
#ifndef MESHRT_CLI_H
#define MESHRT_CLI_H

#include <stdio.h>

/* `meshrt top [--once] [--interval S] ADDR:PORT` (top.c); returns the exit status. */
int mrt_cli_top(int argc, char **argv);
/* Its --help text. */
void mrt_cli_top_usage(FILE *f);

#endif
