#!/usr/bin/env bash
# lmforge prune from the command line (issue 11), on the tiny Llama fixture: magnitude, Wanda and
# SparseGPT (unstructured and 2:4) with a token shard and with text as calibration; the output folder
# (zeros in place, sparsity.json) evaluates with eval reporting the sparsity and nonzero parameters,
# and, where python3 has transformers, loads there with the same zeros; bad input fails with a
# one-line error. Usage: prune_cli_test.sh LMFORGE FIXTURES
set -u
lmforge=$1 fx=$2
base=$fx/hf_llama_tiny
[ -d "$base" ] || { echo "skipped: fixture missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }

for i in $(seq 1 300); do echo "the quick brown fox $((i % 7)) jumps over the lazy dog number $((i % 11))"; done > "$tmp/t.txt"
"$lmforge" tokenizer train --vocab-size 300 --input "$tmp/t.txt" --output "$tmp/tok.json" >/dev/null 2>&1 || bad "tokenizer train"
"$lmforge" prepare --tokenizer "$tmp/tok.json" --input "$tmp/t.txt" --output "$tmp/data" --quiet || bad "prepare"
shard=$(ls "$tmp"/data/train*.bin | head -1)
js() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -1; }
for meth in magnitude wanda sparsegpt; do
  for pat in "--sparsity 0.5" "--pattern 2:4"; do
    out=$tmp/$meth-${pat##* }
    "$lmforge" prune "$base" --method $meth $pat --calib "$shard" --calib-samples 8 --calib-seq 32 --blocksize 16 \
      --out "$out" --quiet 2>"$tmp/e" && ok || { bad "prune $meth $pat: $(cat "$tmp/e")"; continue; }
    [ -f "$out/config.json" ] && [ -f "$out/model.safetensors" ] && [ -f "$out/sparsity.json" ] && ok ||
      bad "$meth $pat: output folder: $(ls "$out")"
    s=$(js linear_sparsity < "$out/sparsity.json")
    awk -v s="$s" 'BEGIN { exit !(s == 0.5) }' && ok || bad "$meth $pat: sparsity.json says linear_sparsity '$s'"
    e=$("$lmforge" eval "$out" "$shard" --context 32 --json 2>"$tmp/e")
    s=$(echo "$e" | js linear_sparsity) nz=$(echo "$e" | js params_nonzero) np=$(echo "$e" | js params) p=$(echo "$e" | js perplexity)
    awk -v s="$s" -v nz="$nz" -v np="$np" -v p="$p" 'BEGIN { exit !(s == 0.5 && nz < np && nz > np / 2 && p > 1) }' && ok ||
      bad "$meth $pat: eval --json: sparsity '$s', nonzero '$nz' of '$np', perplexity '$p' ($(cat "$tmp/e"))"
  done
done
grep -q '"pattern": "2:4"' "$tmp/sparsegpt-2:4/sparsity.json" && ok || bad "sparsity.json must name the pattern"
"$lmforge" eval "$tmp/wanda-0.5" "$shard" --context 32 | grep -q "^sparsity *50.00% of the linear weights are zero" && ok ||
  bad "eval's text output must report the sparsity"
# text calibration through --tokenizer; the dense-statistics variant
"$lmforge" prune "$base" --method wanda --sparsity 0.6 --calib "$tmp/t.txt" --tokenizer "$tmp/tok.json" --calib-samples 4 \
  --calib-seq 16 --dense-stats --out "$tmp/wt" --quiet 2>"$tmp/e" && ok || bad "prune with text calibration: $(cat "$tmp/e")"
# training: a pruned init keeps its zeros with keep_sparsity (and regrows them without); a gradual
# schedule reaches its final sparsity
targs=(--data="$tmp/data" --tokenizer="$tmp/tok.json" --max_steps=6 --checkpoint_every=6 --context=16 --batch_size=4
       --eval_every=0 --lr=1e-2 --warmup_steps=0 --weight_decay=0 --quiet)
sp() { "$lmforge" eval "$1" "$shard" --context 16 --json 2>/dev/null | js linear_sparsity; }
"$lmforge" train "${targs[@]}" --init="$tmp/sparsegpt-0.5" --keep_sparsity --run_dir="$tmp/r1" >/dev/null 2>"$tmp/e" ||
  bad "train keep_sparsity: $(cat "$tmp/e")"
"$lmforge" train "${targs[@]}" --init="$tmp/sparsegpt-0.5" --run_dir="$tmp/r2" >/dev/null 2>"$tmp/e" || bad "train: $(cat "$tmp/e")"
s1=$(sp "$tmp/r1/checkpoints/step-00000006") s2=$(sp "$tmp/r2/checkpoints/step-00000006")
awk -v a="$s1" -v b="$s2" 'BEGIN { exit !(a == 0.5 && b < 0.01) }' && ok ||
  bad "fine-tuning a 50% model: sparsity '$s1' with keep_sparsity (want 0.5), '$s2' without (want ~0)"
for sched in magnitude wanda; do
  "$lmforge" train "${targs[@]}" --init="$base" --prune_schedule=$sched --prune_final=0.6 --prune_every=2 \
    --run_dir="$tmp/g-$sched" >/dev/null 2>"$tmp/e" || bad "train prune_schedule=$sched: $(cat "$tmp/e")"
  s=$(sp "$tmp/g-$sched/checkpoints/step-00000006")
  awk -v s="$s" 'BEGIN { exit !(s >= 0.55 && s <= 0.6) }' && ok || bad "prune_schedule=$sched: sparsity '$s' at the end, want 0.6 (Wanda: floor(0.6·inputs) per row)"
done
"$lmforge" train "${targs[@]}" --init="$base" --prune_schedule=obs --run_dir="$tmp/g-x" >/dev/null 2>"$tmp/e"
[ $? -ne 0 ] && grep -q "prune_schedule must be" "$tmp/e" && ok || bad "prune_schedule=obs must be refused: $(cat "$tmp/e")"
# bad input: exit code and one line naming the problem
expect_fail() { # code pattern args...
  local code=$1 pat=$2; shift 2
  "$lmforge" prune "$@" >/dev/null 2>"$tmp/e"
  local rc=$?
  [ $rc -eq "$code" ] && grep -q -- "$pat" "$tmp/e" && [ "$(wc -l < "$tmp/e")" -le 2 ] && ok ||
    bad "prune $*: exit $rc (want $code), message '$(cat "$tmp/e")' (want '$pat')"
}
expect_fail 2 "sparsity" "$base" --method magnitude --sparsity 1.5 --out "$tmp/x"
expect_fail 2 "needs calibration" "$base" --method sparsegpt --sparsity 0.5 --out "$tmp/x"
expect_fail 2 "not known" "$base" --method obs --sparsity 0.5 --out "$tmp/x"
expect_fail 2 "N:M" "$base" --method magnitude --pattern 2:x --out "$tmp/x"
expect_fail 1 "dividing the input width" "$base" --method magnitude --pattern 2:5 --out "$tmp/x"
expect_fail 1 "no such model" "$tmp/none" --method magnitude --sparsity 0.5 --out "$tmp/x"
expect_fail 1 "calib" "$base" --method wanda --sparsity 0.5 --calib "$tmp/none.bin" --calib-seq 16 --out "$tmp/x"
[ ! -e "$tmp/x" ] && ok || bad "a failed prune must leave no output folder"
# transformers reads the folder: the same zeros
py=/usr/bin/python3
if "$py" -c "import torch, transformers" 2>/dev/null; then
  "$py" - "$tmp/sparsegpt-2:4" <<'PY' && ok || bad "transformers on the pruned folder"
import json, sys, torch
from transformers import AutoModelForCausalLM
d = sys.argv[1]
m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
rep = json.load(open(d + "/sparsity.json"))["tensors"]
sd = m.state_dict()
bad = [n for n, t in rep.items() if int((sd[n] == 0).sum()) != t["zeros"]]
g = sd["model.layers.0.mlp.down_proj.weight"].reshape(-1, 4)
assert not bad and bool(((g == 0).sum(1) == 2).all()), f"zeros differ in {bad}"
out = m(torch.tensor([[1, 2, 3, 4]])).logits
assert torch.isfinite(out).all()
PY
else
  echo "note: no torch + transformers for $py: the transformers load is not checked"
fi
echo "prune_cli: $checks checks, $fails failed"
[ $fails -eq 0 ]
