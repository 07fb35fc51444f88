#!/usr/bin/env bash
# lmforge run: the plan, skipping unchanged stages, rerunning what a change reaches, --force,
# --quick, resuming an interrupted training stage from its checkpoint, and one-line errors with
# "did you mean" hints for bad recipes. The recipe (tests/run_tiny.json) takes a tiny model through
# every kind of stage. Usage: run_cli_test.sh LMFORGE
set -uo pipefail
lf=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
python3 "$src/run_make_data.py" . || exit 1
cp "$src/run_tiny.json" tiny.json
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() { # expect NAME PATTERN FILE: a line of FILE matches
  grep -Eq -- "$2" "$3" || { fail "$1: no line matching '$2' in:"; sed 's/^/    /' "$3"; }
}
nstages=$(python3 -c 'import json; print(len(json.load(open("tiny.json"))["stages"]))')

# 1. the plan of a fresh run: everything runs
"$lf" run tiny.json --out out --dry-run > plan1.txt || fail "dry run exit $?"
[ "$(grep -c '^  run ' plan1.txt)" = "$nstages" ] || fail "fresh plan: expected $nstages stages to run"
expect "fresh plan" "^  run  tok +tokenizer +not run before" plan1.txt
expect "fresh plan" "^  run  pretrain +train +after 'lm', which runs" plan1.txt
[ ! -d out ] || fail "--dry-run wrote $tmp/out"

# 2. the run, then every record, output and the report
OMP_NUM_THREADS=1 "$lf" run tiny.json --out out > run1.txt 2>&1 || { fail "run exit $?"; cat run1.txt; exit 1; }
expect "first run" "^lmforge run: $nstages stages run, 0 skipped" run1.txt
for s in $(python3 -c 'import json; print(" ".join(s["name"] for s in json.load(open("tiny.json"))["stages"]))'); do
  python3 - "$s" <<'PY' || fail "record of $s"
import json, os, sys
r = json.load(open(f"out/.stages/{sys.argv[1]}.json"))
assert r["stage"] == sys.argv[1] and len(r["hash"]) == 64 and os.path.exists(r["output"]), r
PY
done
python3 - <<'PY' || fail "outputs"
import json
e = json.load(open("out/ppl_pretrain/eval.json")); assert e["perplexity"] > 1, e
p = json.load(open("out/ppl_pruned/eval.json")); assert abs(p["linear_sparsity"] - 0.5) < 0.01, p
c = json.load(open("out/acc_lora/eval.json")); assert c["examples"] == 60 and len(c["confusion"]) == 2, c
# eval of the fine-tuned head on the validation split = the trainer's own evaluation at its best step
ev = [json.loads(l) for l in open("out/full/metrics.jsonl")]
best = [e for e in ev if e["event"] == "done"][-1]["best_step"]
va = [e["val_accuracy"] for e in ev if e["event"] == "eval" and e["step"] == best][-1]
f = json.load(open("out/acc_full/eval.json"))
assert abs(f["accuracy"] - va) < 1e-6, (f["accuracy"], va)
assert open("out/q8/model.gguf", "rb").read(4) == b"GGUF"
h = open("out/report/report.html").read()
for part in ('id="summary"', 'id="chart-loss"', 'id="chart-val"', 'id="chart-accuracy"', 'id="chart-sparsity"', 'id="chart-confusion-'):
    assert part in h, part
assert "<script" not in h and "http://" not in h.replace('xmlns="http://www.w3.org/2000/svg"', ""), "not self-contained"
PY

# 3. nothing changed: everything is skipped
"$lf" run tiny.json --out out > run2.txt 2>&1 || fail "second run exit $?"
expect "unchanged rerun" "^lmforge run: 0 stages run, $nstages skipped" run2.txt

# 4. a changed setting reruns its stage and what depends on it, nothing else
sed -i 's/"copies": 2/"copies": 3/' tiny.json
"$lf" run tiny.json --out out --dry-run > plan3.txt
ran=$(grep '^  run ' plan3.txt | awk '{print $2}' | tr '\n' ' ')
[ "$ran" = "aug cls_aug lora acc_lora merged ppl_merged report " ] || fail "after changing aug: ran '$ran'"
expect "changed plan" "^  run  aug +augment +settings or inputs changed" plan3.txt
expect "changed plan" "^  run  lora +train +after 'cls_aug', which runs" plan3.txt
# a changed input file reruns the stages that read it
echo '{"text": "good good fine", "label": "pos"}' >> labelled.jsonl
"$lf" run tiny.json --out out --dry-run > plan4.txt
expect "changed input" "^  run  cls +prepare +settings or inputs changed" plan4.txt
"$lf" run tiny.json --out out > run4.txt 2>&1 || fail "run after changes exit $?"
expect "run after changes" "^lmforge run: 10 stages run, $((nstages - 10)) skipped" run4.txt
# a removed output reruns its stage
rm -rf out/q8
"$lf" run tiny.json --out out --dry-run > plan5.txt
expect "missing output" "^  run  q8 +quantize +its output .* is missing" plan5.txt

# 5. --force reruns a stage and the stages that use its output
"$lf" run tiny.json --out out --dry-run --force student > plan6.txt
ran=$(grep '^  run ' plan6.txt | awk '{print $2}' | tr '\n' ' ')
[ "$ran" = "student q8 ppl_student ppl_q8 report " ] || fail "--force student: ran '$ran'"

# 6. --quick merges each stage's "quick" settings
"$lf" run tiny.json --quick --out outq > runq.txt 2>&1 || fail "quick run exit $?"
python3 -c 'import json; s=json.load(open("outq/.stages/pretrain.json"))["settings"]; assert s["max_steps"] == 20, s' || fail "quick settings"
expect "quick metrics" '"event":"stop","step":20,' outq/pretrain/metrics.jsonl

# 7. an interrupted training stage continues from its checkpoint
python3 - <<'PY'
import json
r = json.load(open("tiny.json"))
r["stages"] = r["stages"][:3]
r["stages"][2].update(max_steps=2000, checkpoint_every=20, eval_every=1000, log_every=100)
json.dump(r, open("long.json", "w"), indent=1)
PY
"$lf" run long.json --out outl > runl1.txt 2>&1 &
pid=$!
for _ in $(seq 600); do
  ls outl/pretrain/checkpoints/step-* > /dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc = 0 ]; then
  echo "note: the training stage finished before it could be interrupted; resume not exercised"
  fail "interrupt: the stage was not interrupted (exit 0)"
else
  [ $rc = 130 ] || fail "interrupted run: exit $rc, expected 130"
  expect "interrupted" "^interrupted in stage 'pretrain'" runl1.txt
  [ ! -f outl/.stages/pretrain.json ] || fail "an interrupted stage has a record"
  "$lf" run long.json --out outl --dry-run > planl.txt
  expect "resume plan" "^  skip tok" planl.txt
  expect "resume plan" "^  run  pretrain +train +interrupted before: continues where it stopped" planl.txt
  "$lf" run long.json --out outl > runl2.txt 2>&1 || fail "resumed run exit $?"
  expect "resumed run" "pretrain +train +interrupted before.*\(resuming\)" runl2.txt
  python3 - <<'PY' || fail "resumed training"
import json, re
ev = [json.loads(l) for l in open("outl/pretrain/metrics.jsonl")]
stop = [e for e in ev if e["event"] == "stop"]
assert stop[-1]["step"] == 2000, stop
log = open("outl/.stages/pretrain.log").read()
m = re.search(r"steps 2000 \((\d+) this run\)", log)
assert m and int(m.group(1)) < 2000, log[-400:]
PY
fi

# 8. bad recipes: one line naming the file, the stage and a hint; nothing run
bad() { # bad NAME PYTHON-EDIT EXPECTED
  python3 -c "import json; r=json.load(open('tiny.json')); s=r['stages']; $2; json.dump(r, open('bad.json','w'))"
  "$lf" run bad.json --out outb > bad.out 2> bad.err
  rc=$?
  [ $rc = 1 ] || fail "$1: exit $rc, expected 1"
  [ "$(wc -l < bad.err)" = 1 ] || { fail "$1: expected one line on stderr"; cat bad.err; }
  expect "$1" "^lmforge run: bad.json: $3" bad.err
  [ ! -d outb ] || fail "$1: ran something"
}
bad "train key" "s[2]['max_step']=s[2].pop('max_steps')" "stage 'pretrain': unknown key 'max_step' \(did you mean 'max_steps'\?\)"
bad "train value" "s[2]['lr']='fast'" "stage 'pretrain': .*lr"
bad "kind" "s[2]['kind']='trian'" "stage 'pretrain': unknown kind 'trian' \(did you mean 'train'\?\)"
bad "prune key" "s[9]['sparsty']=s[9].pop('sparsity')" "stage 'pruned': unknown prune key 'sparsty' \(did you mean 'sparsity'\?\)"
bad "reference" "s[6]['init']='\${pretrian}/best'" "stage 'full': unknown stage reference 'pretrian' \(did you mean 'pretrain'\?\)"
bad "forward reference" "s[1]['tokenizer']='\${pretrain}/best/tokenizer.json'" "stage 'lm': refers to 'pretrain', which is not an earlier stage"
bad "top-level key" "r['stagse']=r.pop('stages')" "unknown key 'stagse' \(did you mean 'stages'\?\)"
bad "required" "del s[10]['type']" "stage 'q8': quantize stages need 'type'"
bad "duplicate" "s[4]['name']='lm'" "stage 'lm': a second stage with this name"
bad "quick key" "s[2]['quick']={'max_stepz': 3}" "stage 'pretrain': unknown key 'max_stepz' \(did you mean 'max_steps'\?\)"
bad "runner key" "s[2]['run_dir']='x'" "stage 'pretrain': key 'run_dir' is set by the runner"
bad "flag type" "s[1]['delimiter']=['a']" "stage 'lm': 'delimiter' must be a string or a number"
printf '{"stages": [' > bad.json
"$lf" run bad.json > /dev/null 2> bad.err && fail "invalid JSON accepted"
expect "invalid JSON" "^lmforge run: bad.json:1:.*invalid JSON" bad.err
"$lf" run tiny.json --out out --force pretrian > /dev/null 2> bad.err && fail "--force of an unknown stage accepted"
expect "--force" "unknown stage for --force 'pretrian' \(did you mean 'pretrain'\?\)" bad.err
"$lf" run missing.json 2> bad.err && fail "a missing recipe accepted"
expect "missing" "^lmforge run: missing.json: no such file" bad.err

# 9. the recipes in recipes/ are valid (keys, kinds, references), found by name from any folder
for rcp in "$src"/../recipes/*.json; do
  "$lf" run "$rcp" --out outr --dry-run > rp.txt 2> rp.err || { fail "recipe $rcp: $(cat rp.err)"; continue; }
  "$lf" run "$rcp" --quick --out outr --dry-run > /dev/null 2> rp.err || fail "recipe $rcp --quick: $(cat rp.err)"
done
"$lf" run default --quick --dry-run > rp.txt 2>&1 || fail "run default by name: $(cat rp.txt)"
expect "default by name" "recipes/default.json --quick -> runs/default-quick/ \([0-9]+ stages, [0-9]+ to run\)" rp.txt

# 10. a failing stage stops the run with the end of its log, and is retried next time
python3 -c "import json; r=json.load(open('tiny.json')); r['stages'][1]['input']='nothere.txt'; json.dump(r, open('fail.json','w'))"
"$lf" run fail.json --out outf > fail.out 2> fail.err && fail "a failing stage gave exit 0"
expect "failing stage" "^lmforge run: stage 'lm' \(prepare\) failed with exit code" fail.err
expect "failing stage log" "nothere.txt" fail.err
[ ! -f outf/.stages/lm.json ] || fail "a failed stage has a record"

if [ $fails -gt 0 ]; then
  echo "run_cli: $fails failure(s)"
  exit 1
fi
echo "run_cli: all checks passed"
