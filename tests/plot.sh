#!/usr/bin/env bash
# jobs/plot.sh on real runs: a classifier stopped mid-way (an evaluation at 1.5 epochs) and
# resumed from the checkpoint before (the end of epoch 1) with train.eval_every_steps = 5,
# so that it evaluates at 1.5 epochs again: the later line must win; and a regression (null
# accuracies). The table has one row per evaluation (x: epoch_progress) per run, with the
# resumed run's later values;
# the PNG has the requested size and is not a single colour; a run directory without
# metrics.jsonl gets one clear line and a non-zero exit.
source "$(dirname "$0")/lib.sh"
PLOT=$(cd "$(dirname "$0")/.." && pwd)/jobs/plot.sh
make_blobs "$WORK/d.h5" --train 480 --test 96 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/cls" "max_steps = 15"
sed -i 's/^epochs = 2$/epochs = 3/' "$WORK/job.ini"
run_mpi 2 train "$WORK/job.ini" > /dev/null                         # stops in epoch 2 (10 steps each)
rm "$WORK/cls/ckpt-00000015.h5" && echo ckpt-00000010.h5 > "$WORK/cls/latest" # back to step 10
run_mpi 2 train --resume "$WORK/cls" --set train.max_steps=0 --set train.eval_every_steps=5 \
  > /dev/null
[ "$(grep -c '"epoch_progress": 1.5000,' "$WORK/cls/metrics.jsonl")" = 2 ] \
  || fail "1.5 epochs should be in metrics twice"
"$MPINET" convert synthetic -o "$WORK/r.h5" --kind regression --train 256 --test 64 > /dev/null
cat > "$WORK/reg.ini" <<INI
[data]
path = $WORK/r.h5
[train]
epochs = 2
batch = 32
loss = mse
lr = 0.01
progress = lines
[checkpoint]
dir = $WORK/reg
[layer]
type = dense
units = 4
INI
run_mpi 1 train "$WORK/reg.ini" > /dev/null

"$PLOT" "$WORK/cls" "$WORK/reg" -o "$WORK/out.png" --size 800x500
cat "$WORK/out.tsv"
[ "$(awk -F'\t' 'NR > 1 && $1 == "cls"' "$WORK/out.tsv" | cut -f2 | paste -sd,)" = 1,1.5,2,2.5,3 ] \
  || fail "the classifier's rows are not epochs 1, 1.5, 2, 2.5, 3 once each"
[ "$(awk -F'\t' 'NR > 1 && $1 == "reg"' "$WORK/out.tsv" | cut -f2 | paste -sd,)" = 1,2 ] \
  || fail "the regression's rows are not epochs 1, 2"
want=$(grep '"epoch_progress": 1.5000,' "$WORK/cls/metrics.jsonl" | tail -1 | grep -o '"test_loss": [0-9.e+-]*' | cut -d' ' -f2)
[ "$(awk -F'\t' '$1 == "cls" && $2 == 1.5 { print $5 }' "$WORK/out.tsv")" = "$want" ] \
  || fail "1.5 epochs is not the later (resumed) line"
awk -F'\t' '$1 == "reg" && $6 != "NaN" { exit 1 }' "$WORK/out.tsv" || fail "a regression's accuracy is not NaN"
python3 - "$WORK/out.png" <<'PY' || fail "the picture is wrong"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (800, 500), f"size {w}x{h}, asked for 800x500"
# the image data, rows still filtered: one colour makes at most a few distinct rows (each
# filter type turns a uniform row into the same bytes), a plot makes hundreds
idat, at = b"", 8
while at < len(data):
    n, kind = struct.unpack(">I4s", data[at:at + 8])
    if kind == b"IDAT": idat += data[at + 8:at + 8 + n]
    at += 12 + n
raw = zlib.decompress(idat)
stride = len(raw) // h
rows = {raw[i * stride:(i + 1) * stride] for i in range(h)}
assert len(rows) > 50, f"only {len(rows)} distinct rows: a single colour?"
print(f"ok: {w}x{h} PNG, {len(rows)} distinct rows")
PY
mkdir "$WORK/empty"
"$PLOT" "$WORK/empty" -o "$WORK/e.png" > "$WORK/e.out" 2> "$WORK/e.err" && fail "no metrics: exit 0"
cat "$WORK/e.err"
[ "$(wc -l < "$WORK/e.err")" = 1 ] && grep -q "empty: no metrics.jsonl" "$WORK/e.err" \
  || fail "no metrics: not one clear line"
[ ! -e "$WORK/e.png" ] || fail "no metrics: a picture was written anyway"
