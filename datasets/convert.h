/* convert.h: `mpinet convert ...` subcommands; each returns a process exit code. */
#ifndef MN_CONVERT_H
#define MN_CONVERT_H

int mn_convert_idx_main(int argc, char **argv);
int mn_convert_synthetic_main(int argc, char **argv);
int mn_convert_csv_main(int argc, char **argv);

#endif
