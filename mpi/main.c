/* main.c: the `mpinet` command: dispatches to convert, info, train, eval and predict. It lives in
 * mpi/ because the program is an MPI program and the entry stands on every folder (src/, mpi/,
 * datasets/); src/ stays the core that includes neither of the others (tests/layering.sh). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "error.h"
#include "info.h"
#include "train.h"
#include "version.h"

static void usage(FILE *out) {
  fprintf(out,
          "mpinet: data-parallel neural network training over MPI\n"
          "\n"
          "usage:\n"
          "  mpinet convert idx  --train-images F --train-labels F --test-images F\n"
          "                      --test-labels F -o OUT.h5      MNIST-style idx -> HDF5\n"
          "  mpinet convert csv --input F.csv --label-column K | --target-column K -o OUT.h5\n"
          "  mpinet convert synthetic -o OUT.h5 [...]           generated test data\n"
          "  mpinet info FILE.h5                                what a dataset/checkpoint holds\n"
          "  mpirun -np N mpinet train CONFIG.ini [--set section.key=value ...]\n"
          "                                       [--resume RUN_DIR]\n"
          "  mpirun -np N mpinet eval CHECKPOINT.h5 DATA... [--x D --y D --json]\n"
          "  mpirun -np N mpinet predict CHECKPOINT.h5 DATA... -o OUT.h5|OUT.csv [--x D]\n"
          "  mpinet COMMAND --help                              help on one command\n"
          "\n"
          "See README.md for the config format and the files a run writes.\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("mpinet %s\n", MN_VERSION);
    return 0;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "train") == 0) return mn_train_main(argc - 1, argv + 1);
  if (strcmp(cmd, "eval") == 0) return mn_eval_main(argc - 1, argv + 1);
  if (strcmp(cmd, "predict") == 0) return mn_predict_main(argc - 1, argv + 1);
  if (strcmp(cmd, "info") == 0) return mn_info_main(argc - 1, argv + 1);
  if (strcmp(cmd, "convert") == 0) {
    if (argc >= 3 && strcmp(argv[2], "idx") == 0) return mn_convert_idx_main(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[2], "csv") == 0) return mn_convert_csv_main(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[2], "synthetic") == 0)
      return mn_convert_synthetic_main(argc - 2, argv + 2);
    bool help = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
    fprintf(help ? stdout : stderr,
            "%susage: mpinet convert idx|csv|synthetic --help\n"
            "  idx        MNIST-style idx files (gzip or plain) -> mpinet HDF5 dataset\n"
            "  csv        numeric CSV with a label or target column\n"
            "  synthetic  generated blobs, regression or sequence data\n",
            help ? "" : "mpinet: error: convert: expected idx, csv or synthetic\n");
    return help ? 0 : 2;
  }
  if (mn_first_rank_env())
    fprintf(stderr, "mpinet: error: unknown command '%s' (try mpinet --help)\n", cmd);
  return 2;
}
