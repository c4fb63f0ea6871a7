#!/usr/bin/env bash
# plot.sh: training curves of one or several runs, from their metrics.jsonl, drawn with gnuplot.
#
#   jobs/plot.sh RUN_DIR [RUN_DIR...] [-o OUT.png] [--size WxH]
#
# Draws, against epoch, the train and test loss, the test accuracy and the samples/s of each
# run (labelled by its directory's name), in one PNG (default: curves.png in the first run
# directory), and writes the table it plotted beside it (OUT.tsv: run, epoch, step,
# train_loss, test_loss, test_accuracy, samples_per_s; a value a run did not have, such as
# the accuracy of a regression or the test loss of a run without a test split, is NaN there
# and a gap in the picture). An epoch that appears twice, as after a stop and --resume, is
# the later line's.
set -euo pipefail
usage() { sed -n '3,4s/^# \{0,3\}//p' "$0"; }
out="" size=1200x900 runs=()
while [ $# -gt 0 ]; do
  case $1 in
  -o) out=${2:?-o needs a file name}; shift 2 ;;
  --size) size=${2:?--size needs WxH}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  -*) echo "plot.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  *) runs+=("$1"); shift ;;
  esac
done
[ ${#runs[@]} -gt 0 ] || { usage >&2; exit 2; }
[[ $size =~ ^[0-9]+x[0-9]+$ ]] || { echo "plot.sh: --size $size: want WIDTHxHEIGHT" >&2; exit 2; }
command -v gnuplot > /dev/null || { echo "plot.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
for r in "${runs[@]}"; do
  [ -s "$r/metrics.jsonl" ] || { echo "plot.sh: error: $r: no metrics.jsonl (not a run directory, or no epoch finished yet)" >&2; exit 1; }
done
[ -n "$out" ] || out=${runs[0]%/}/curves.png
tsv=${out%.png}.tsv

# metrics.jsonl holds flat objects of numbers, strings and nulls: a key's value is what
# follows '"key": ' up to the next comma or brace. The x axis is epoch_progress (epochs done,
# fractional for train.eval_every_steps); runs written before it have whole epochs only
{
  printf 'run\tepoch\tstep\ttrain_loss\ttest_loss\ttest_accuracy\tsamples_per_s\n'
  for r in "${runs[@]}"; do
    awk -v run="$(basename "${r%/}")" '
      function get(key,   m) {
        if (!match($0, "\"" key "\": [^,}]*")) return "NaN"
        m = substr($0, RSTART + length(key) + 4, RLENGTH - length(key) - 4)
        return m == "null" ? "NaN" : m
      }
      /^\{/ { e = get("epoch_progress"); if (e == "NaN") e = get("epoch") # older runs
              if (e == "NaN") next
              e += 0
              if (!(e in row)) order[n++] = e
              row[e] = run "\t" e "\t" get("step") "\t" get("train_loss") "\t" get("test_loss") \
                       "\t" get("test_accuracy") "\t" get("samples_per_s") }
      END { for (i = 0; i < n; i++) print row[order[i]] }' "$r/metrics.jsonl" | sort -t$'\t' -k2,2n
  done
} > "$tsv"

labels=$(for r in "${runs[@]}"; do basename "${r%/}"; done | paste -sd' ')
# a panel whose column has no number in any run says so instead (gnuplot refuses to plot it)
has() { awk -F'\t' -v c="$1" 'NR > 1 && $c != "NaN" { found = 1 } END { exit !found }' "$tsv"; }
empty() { printf 'set label 1 "%s" at graph 0.5, 0.5 center\nunset tics\nplot [0:1] [0:1] NaN notitle\nunset label 1\nset tics\n' "$1"; }
if has 5; then
  test_loss='for [r in runs] sel(r) using 2:5 with linespoints lw 2 dt 2 title r." test"'
  loss_plot="plot for [r in runs] sel(r) using 2:4 with linespoints lw 2 title r.\" train\", $test_loss"
else
  loss_plot='plot for [r in runs] sel(r) using 2:4 with linespoints lw 2 title r." train"'
fi
if has 6; then
  acc_plot='plot for [r in runs] sel(r) using 2:($6 * 100) with linespoints lw 2 title r'
else
  acc_plot=$(empty "no test accuracy (a regression, or no test split)")
fi
gnuplot <<GP
set datafile separator "\t"
set datafile missing "NaN"
set terminal pngcairo size ${size/x/,} font ",10"
set output "$out"
set multiplot layout 2,2 title "mpinet training curves: $labels"
set key top right
set grid
set xlabel "epoch"
runs = "$labels"
sel(r) = sprintf("< awk -F'\t' 'NR > 1 && \$1 == \"%s\"' '$tsv'", r)
set title "loss"
set ylabel "loss"
$loss_plot
set title "test accuracy"
set ylabel "accuracy"
set format y "%.1f%%"
$acc_plot
set format y "%g"
set title "throughput"
set ylabel "samples/s"
set yrange [0:*]
plot for [r in runs] sel(r) using 2:7 with linespoints lw 2 title r
unset multiplot
GP
echo "plot.sh: wrote $out and $tsv"
