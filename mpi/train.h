/* train.h: the `mpinet train` and `mpinet eval` commands (run under mpirun or alone).
 * No MPI types here, so the CLI entry in src/ can call them without including mpi.h. */
#ifndef MN_TRAIN_H
#define MN_TRAIN_H

int mn_train_main(int argc, char **argv);
int mn_eval_main(int argc, char **argv);
int mn_predict_main(int argc, char **argv);

#endif
