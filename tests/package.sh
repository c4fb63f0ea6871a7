#!/usr/bin/env bash
# Packaging: `cmake --install` into a temp prefix, then a program outside the tree
# (tests/package/predict.c) is built against the installed package twice, with
# find_package(mpinet) and with pkg-config, and both builds classify a dataset exactly as
# `mpinet eval` does with the same checkpoint. The installed mpinet binary runs too.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(dirname "$MPINET")
prefix=$WORK/prefix
cmake --install "$BUILD" --prefix "$prefix" > "$WORK/install.log"
for f in bin/mpinet lib/libmpinet_core.a lib/libmpinet_mpi.a include/mpinet/net.h \
  include/mpinet/version.h lib/cmake/mpinet/mpinetConfig.cmake lib/pkgconfig/mpinet.pc; do
  [ -f "$prefix/$f" ] || fail "not installed: $f"
done
[ ! -f "$prefix/include/mpinet/trainer.h" ] || fail "an internal header was installed"
"$prefix/bin/mpinet" --version | grep -q "^mpinet [0-9]" || fail "the installed mpinet does not run"

make_blobs "$WORK/d.h5" --train 960 --test 200 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run"
# two steps only: a model that still gets some wrong, so agreement means something
run_mpi 2 train "$WORK/job.ini" --set train.max_steps=2 --set train.lr=0.01 > /dev/null
ckpt=$WORK/run/$(cat "$WORK/run/latest")
expect=$("$MPINET" eval "$ckpt" "$WORK/d.h5" | grep -Eo "correct [0-9]+ of [0-9]+")
echo "mpinet eval: $expect"

# 1. CMake: find_package(mpinet)
cmake -S "$SRC/tests/package" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$prefix" > "$WORK/cmake.log" \
  || { cat "$WORK/cmake.log"; fail "find_package(mpinet) failed"; }
cmake --build "$WORK/consumer" > "$WORK/build.log" || { cat "$WORK/build.log"; fail "build failed"; }
got=$("$WORK/consumer/predict" "$ckpt" "$WORK/d.h5")
echo "find_package build: $got"
[ "$(echo "$got" | grep -Eo "correct [0-9]+ of [0-9]+")" = "$expect" ] || fail "predictions differ"

# 2. pkg-config
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs mpinet) \
  || fail "pkg-config does not know mpinet"
cc -std=c17 -o "$WORK/predict-pc" "$SRC/tests/package/predict.c" $flags || fail "pkg-config build failed"
got=$("$WORK/predict-pc" "$ckpt" "$WORK/d.h5")
echo "pkg-config build: $got"
[ "$(echo "$got" | grep -Eo "correct [0-9]+ of [0-9]+")" = "$expect" ] || fail "predictions differ"
