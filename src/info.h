/* info.h: `mpinet info FILE.h5`: what a dataset or checkpoint holds. */
#ifndef MN_INFO_H
#define MN_INFO_H

int mn_info_main(int argc, char **argv);

#endif
