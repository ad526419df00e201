#!/usr/bin/env bash
# One libFuzzer campaign, as docs/FUZZING.md describes it:
#   tests/fuzz/run_campaign.sh TARGET SECONDS WORKDIR
# Runs bazel-out/k8-optfuzz/bin/tests/fuzz/TARGET (bazel build --config=fuzz;
# the fuzz configuration's own output directory) for SECONDS in
# all, niced, one job and one worker (the machine's 2 cores are shared),
# from the committed seeds in tests/fuzz/corpus/TARGET plus what earlier
# runs left in WORKDIR/corpus. A crash stops libFuzzer: it is kept under
# WORKDIR/findings/ and the campaign resumes for the time that is left
# (at most 5 times). Prints one summary line from libFuzzer's final stats.
set -uo pipefail
target=$1 seconds=$2 work=$3
cd "$(dirname "$0")/../.."
repo=$PWD
bin=$work/$target
mkdir -p "$work/corpus" "$work/findings" "$work/logs"
# Frozen: a later build does not change the binary under a running campaign.
cp -f "bazel-out/k8-optfuzz/bin/tests/fuzz/$target" "$bin" || exit 1
start=$(date +%s)
runs=0 execs=0 crashes=0
while :; do
  left=$((seconds - ($(date +%s) - start)))
  [ "$left" -ge 20 ] || break
  runs=$((runs + 1))
  log=$work/logs/run$runs.log
  (cd "$work/logs" && nice -n 10 "$bin" -max_total_time="$left" -jobs=1 -workers=1 \
    -print_final_stats=1 -artifact_prefix="$work/findings/" -rss_limit_mb=2048 \
    "$work/corpus" "$repo/tests/fuzz/corpus/$target" >"$log" 2>&1)
  cat "$work/logs/fuzz-0.log" >>"$log" 2>/dev/null
  rm -f "$work/logs/fuzz-0.log"
  n=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  execs=$((execs + ${n:-0}))
  if grep -qE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|fuzz invariant failed|runtime error' "$log"; then
    crashes=$((crashes + 1))
    [ "$crashes" -lt 5 ] || break
  else
    break
  fi
done
elapsed=$(($(date +%s) - start))
last=$(grep -hE '^#[0-9]+' "$work"/logs/run*.log | tail -1)
cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
corpus=$(ls "$work/corpus" | wc -l)
echo "$target: ${elapsed}s, $execs executions, $((execs / (elapsed > 0 ? elapsed : 1))) exec/s," \
  "cov $cov, ft $ft, corpus $corpus files ($(du -sk "$work/corpus" | cut -f1) KiB)," \
  "$runs run(s), $crashes crash(es); last line: $last"
