#!/usr/bin/env bash
# mpinet convert csv: a CSV with a header and a label column converts to the right shapes
# and trains; malformed CSVs are rejected naming the file and line; and the shipped
# regression example (jobs/csv-regression.ini) learns: test MSE under 10% of the variance of
# the targets.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
{
  echo "a,b,label,c"
  for i in $(seq 0 199); do echo "$((i % 7)).5,$((i % 3)),$((i % 2)),$(( (i * 13) % 11 ))"; done
} > "$WORK/cls.csv"
"$MPINET" convert csv --input "$WORK/cls.csv" --label-column label -o "$WORK/cls.h5" --test-fraction 0.25
"$MPINET" info "$WORK/cls.h5" > "$WORK/info.txt"
grep -q '/train/x .* float32 *(150, 3)' "$WORK/info.txt" || fail "train x shape"
grep -q '/test/y .* int32 *(50)' "$WORK/info.txt" || fail "test y shape"
grep -q 'classes *2' "$WORK/info.txt" || fail "classes"

printf 'a,b,y\n1,2,0\n3,4\n' > "$WORK/ragged.csv"
expect_error 5 "ragged.csv:3: 2 fields, but the first row has 3" \
  "$MPINET" convert csv --input "$WORK/ragged.csv" --label-column y -o "$WORK/x.h5"
printf '1,2,0\n3,abc,1\n' > "$WORK/text.csv"
expect_error 5 "text.csv:2: column 2: 'abc' is not a finite number" \
  "$MPINET" convert csv --input "$WORK/text.csv" --label-column 2 -o "$WORK/x.h5"
printf '1,2,0\n3,4,0.5\n' > "$WORK/frac.csv"
expect_error 5 "label 0.5 is not an integer" \
  "$MPINET" convert csv --input "$WORK/frac.csv" --label-column 2 -o "$WORK/x.h5"
expect_error 5 "no column named 'z'" \
  "$MPINET" convert csv --input "$WORK/cls.csv" --label-column z -o "$WORK/x.h5"
[ ! -e "$WORK/x.h5" ] || fail "a failed conversion left an output file"

"$root/jobs/make-regression-csv.sh" 4000 "$WORK/regression.csv"
"$MPINET" convert csv --input "$WORK/regression.csv" --target-column y -o "$WORK/regression.h5" \
  | tee "$WORK/convert.txt"
variance=$(grep -Eo 'variance of the first over the test rows: [0-9.e+-]+' "$WORK/convert.txt" | awk '{print $NF}')
run_mpi 2 train "$root/jobs/csv-regression.ini" --set data.path="$WORK/regression.h5" \
  --set checkpoint.dir="$WORK/run" --set train.epochs=25 --set train.progress=lines > "$WORK/train.txt"
mse=$(tail -1 "$WORK/run/metrics.jsonl" | grep -Eo '"test_loss": [0-9.e+-]+' | awk '{print $2}')
echo "regression: test MSE $mse, variance of the targets $variance"
(( $(echo "$mse < 0.1 * $variance" | bc -l) )) || fail "test MSE $mse is not under 10% of $variance"
