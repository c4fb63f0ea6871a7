# Finds the fixed stack: Open MPI, Debian's *parallel* HDF5, OpenBLAS, libinih, zlib.
# Each dependency becomes an imported target so the rest of the build never spells paths.
find_package(PkgConfig REQUIRED)
find_package(ZLIB REQUIRED)

if(MPINET_SIMULATE) # smpicc is the compiler: it supplies mpi.h and links SMPI itself
  pkg_check_modules(MPINET_HDF5 REQUIRED IMPORTED_TARGET hdf5-serial)
  if(NOT TARGET mpinet::hdf5)
    add_library(mpinet::hdf5 INTERFACE IMPORTED)
    target_link_libraries(mpinet::hdf5 INTERFACE PkgConfig::MPINET_HDF5)
    add_library(MPI::MPI_C INTERFACE IMPORTED)
  endif()
else()
find_package(MPI REQUIRED COMPONENTS C)

# HDF5: the parallel build (Debian: libhdf5-openmpi-dev). The serial one would work for
# reading but not for the MPI-IO paths, and mixing them breaks at link time in odd ways,
# so refuse it up front with a message that says what to install.
pkg_check_modules(MPINET_HDF5 QUIET IMPORTED_TARGET hdf5-openmpi)
if(NOT MPINET_HDF5_FOUND)
  message(FATAL_ERROR
    "mpinet needs the parallel HDF5 build (pkg-config module 'hdf5-openmpi').\n"
    "On Debian/Ubuntu: apt-get install libhdf5-openmpi-dev")
endif()
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${MPINET_HDF5_INCLUDE_DIRS})
check_symbol_exists(H5_HAVE_PARALLEL "H5pubconf.h" MPINET_HDF5_IS_PARALLEL)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT MPINET_HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "The HDF5 found in ${MPINET_HDF5_INCLUDE_DIRS} is the serial build; mpinet needs the "
    "parallel one. On Debian/Ubuntu: apt-get install libhdf5-openmpi-dev")
endif()
if(TARGET mpinet::hdf5) # included again (an installed mpinetConfig.cmake found twice)
  return()
endif()
add_library(mpinet::hdf5 INTERFACE IMPORTED)
# hdf5.h of the parallel build includes mpi.h, so the core needs MPI's include path even
# though no file in src/ includes mpi.h itself.
target_link_libraries(mpinet::hdf5 INTERFACE PkgConfig::MPINET_HDF5 MPI::MPI_C)
endif()

pkg_check_modules(MPINET_OPENBLAS REQUIRED IMPORTED_TARGET openblas)
add_library(mpinet::blas INTERFACE IMPORTED)
target_link_libraries(mpinet::blas INTERFACE PkgConfig::MPINET_OPENBLAS)

pkg_check_modules(MPINET_INIH REQUIRED IMPORTED_TARGET inih)
add_library(mpinet::inih INTERFACE IMPORTED)
target_link_libraries(mpinet::inih INTERFACE PkgConfig::MPINET_INIH)
