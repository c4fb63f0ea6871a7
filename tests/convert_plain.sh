#!/usr/bin/env bash
# `convert idx --no-compression`: the images stored without deflate (smaller start-up cost,
# larger file) but still chunked and Fletcher32-checked; training on it gives the bits
# training on the deflated file gives; a flipped byte in its pixels is still refused.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c "import h5py" 2> /dev/null || fail "python3-h5py is not installed (jobs/setup.sh installs it)"
src=/usr/share/datasets/fashion-mnist
for kind in deflated plain; do
  extra=()
  [ "$kind" = plain ] && extra=(--no-compression)
  "$MPINET" convert idx --train-images $src/train-images-idx3-ubyte.gz \
    --train-labels $src/train-labels-idx1-ubyte.gz --test-images $src/t10k-images-idx3-ubyte.gz \
    --test-labels $src/t10k-labels-idx1-ubyte.gz -o "$WORK/$kind.h5" "${extra[@]}" > /dev/null
done
/usr/bin/python3 - "$WORK" <<'PY' || fail "the files' filters are not as documented"
import sys, h5py
w = sys.argv[1]
for kind, want in (("deflated", "gzip"), ("plain", None)):
    with h5py.File(f"{w}/{kind}.h5") as f:
        for split in ("train", "test"):
            x = f[f"{split}/x"]
            assert x.compression == want, (kind, split, x.compression)
            assert x.fletcher32 and x.chunks, (kind, split, "not checked or not chunked")
        print(kind, f["train/x"].compression, "fletcher32", f["train/x"].fletcher32)
PY
plain_bytes=$(stat -c %s "$WORK/plain.h5") deflated_bytes=$(stat -c %s "$WORK/deflated.h5")
[ "$plain_bytes" -gt 47000000 ] && [ "$deflated_bytes" -lt 40000000 ] \
  || fail "sizes: plain $plain_bytes, deflated $deflated_bytes bytes"
for kind in deflated plain; do
  write_mlp_config "$WORK/$kind.ini" "$WORK/$kind.h5" "$WORK/run-$kind" "max_steps = 30"
  sed -i 's/^units = 4$/units = 10/; s/^batch = 48$/batch = 64/' "$WORK/$kind.ini"
  run_mpi 2 train "$WORK/$kind.ini" > "$WORK/$kind.out"
done
a=$(grep '^parameters sha256' "$WORK/deflated.out") b=$(grep '^parameters sha256' "$WORK/plain.out")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "different parameters: '$a' vs '$b'"
echo "ok: same $a"
# one byte of a pixel chunk flipped: the Fletcher32 check refuses the file
/usr/bin/python3 - "$WORK/plain.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path) as f:
    off = f["train/x"].id.get_chunk_info(3).byte_offset
with open(path, "r+b") as f:
    f.seek(off + 1000)
    b = f.read(1)
    f.seek(off + 1000)
    f.write(bytes([b[0] ^ 0xFF]))
PY
rm -rf "$WORK/run-plain"
expect_error 60 "$WORK/plain.h5: cannot read /train/x rows \[[0-9]+, [0-9]+\) \(corrupt or truncated file\?\)" \
  timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np 2 "$MPINET" train "$WORK/plain.ini"
