#!/usr/bin/env bash
# lmforge prune --structured from the command line (issue 11), on the tiny Llama (GQA, 2 KV groups)
# and GPT-2 fixtures: both importance scores; the smaller folder has the config structure.json
# promises, evaluates, and fine-tunes with train --init and distill --teacher (the recovery
# fine-tune needs no new code); transformers loads it and `lmforge verify` passes against its
# logits (the head-removed Llama, whose n_head·head_dim != hidden_size, only where transformers
# reads head_dim: >= 4.45; SPRUNE_PY names another interpreter to check it with); bad input fails
# with a one-line error. Usage: sprune_cli_test.sh LMFORGE FIXTURES
set -u
lmforge=$1 fx=$2
llama=$fx/hf_llama_tiny gpt2=$fx/hf_gpt2_tiny
[ -d "$llama" ] && [ -d "$gpt2" ] || { echo "skipped: fixtures missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
js() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$@"; }

for i in $(seq 1 300); do echo "the quick brown fox $((i % 7)) jumps over the lazy dog number $((i % 11))"; done > "$tmp/t.txt"
"$lmforge" tokenizer train --vocab-size 300 --input "$tmp/t.txt" --output "$tmp/tok.json" >/dev/null 2>&1 || bad "tokenizer train"
"$lmforge" prepare --tokenizer "$tmp/tok.json" --input "$tmp/t.txt" --output "$tmp/data" --quiet || bad "prepare"
shard=$tmp/data/train.bin
cal=(--calib "$shard" --calib-samples 8 --calib-seq 24 --batch 3)

# Llama: one of 2 KV groups, a quarter of the neurons (48 -> 36), one of 2 layers; query heads
for imp in taylor act; do
  out=$tmp/l-$imp
  "$lmforge" prune "$llama" --structured --heads 0.5 --neurons 0.25 --layers 1 --importance $imp "${cal[@]}" --out "$out" \
    > "$tmp/o" 2>"$tmp/e" && ok || { bad "llama $imp: $(cat "$tmp/e")"; continue; }
  [ "$(js "$out/config.json" num_hidden_layers),$(js "$out/config.json" num_attention_heads),$(js "$out/config.json" num_key_value_heads),$(js "$out/config.json" head_dim),$(js "$out/config.json" intermediate_size)" = "1,2,1,4,36" ] &&
    ok || bad "llama $imp: config $(tr -d '\n ' < "$out/config.json")"
  [ "$(js "$out/structure.json" after.d_ff)" = 36 ] && [ "$(js "$out/structure.json" removed.kv_groups_per_layer)" = 1 ] &&
    [ "$(js "$out/structure.json" importance)" = $imp ] && ok || bad "llama $imp: structure.json $(head -c 300 "$out/structure.json")"
  pa=$(js "$out/structure.json" params_after) pb=$(js "$out/structure.json" params_before)
  np=$("$lmforge" eval "$out" "$shard" --context 24 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])')
  [ "$np" = "$pa" ] && [ "$pa" -lt "$pb" ] && ok || bad "llama $imp: eval counts $np parameters, structure.json $pa of $pb"
  grep -q "1→1 KV\|2→1 KV" "$tmp/o" && ok || bad "llama $imp: the summary line: $(cat "$tmp/o")"
done
"$lmforge" prune "$llama" --structured --query-heads 0.5 --importance act "${cal[@]}" --out "$tmp/l-q" --quiet 2>"$tmp/e" && ok ||
  bad "query heads: $(cat "$tmp/e")"
[ "$(js "$tmp/l-q/config.json" num_attention_heads),$(js "$tmp/l-q/config.json" num_key_value_heads)" = "2,2" ] && ok ||
  bad "query heads: config $(tr -d '\n ' < "$tmp/l-q/config.json")"
"$lmforge" prune "$llama" --structured --neurons 0.25 --layers 1 "${cal[@]}" --out "$tmp/l-n" --quiet 2>"$tmp/e" && ok ||
  bad "llama neurons: $(cat "$tmp/e")"
# GPT-2: neurons and a layer (its heads cannot go: the config has no head_dim)
"$lmforge" prune "$gpt2" --structured --neurons 0.5 --layers 1 "${cal[@]}" --out "$tmp/g" --quiet 2>"$tmp/e" && ok ||
  bad "gpt2: $(cat "$tmp/e")"
[ "$(js "$tmp/g/config.json" n_layer),$(js "$tmp/g/config.json" n_inner)" = "1,32" ] && ok ||
  bad "gpt2: config $(tr -d '\n ' < "$tmp/g/config.json")"

# recovery fine-tune: train --init on the smaller model (head_dim kept), and distillation from the unpruned one
targs=(--data="$tmp/data" --tokenizer="$tmp/tok.json" --max_steps=4 --checkpoint_every=4 --context=16 --batch_size=4
       --eval_every=0 --lr=1e-3 --warmup_steps=0 --quiet)
"$lmforge" train "${targs[@]}" --init="$tmp/l-taylor" --run_dir="$tmp/r1" >/dev/null 2>"$tmp/e" && ok || bad "train --init: $(cat "$tmp/e")"
[ "$(js "$tmp/r1/checkpoints/step-00000004/config.json" num_attention_heads),$(js "$tmp/r1/checkpoints/step-00000004/config.json" intermediate_size)" = "2,36" ] &&
  ok || bad "the fine-tuned checkpoint is not the small shape: $(tr -d '\n ' < "$tmp/r1/checkpoints/step-00000004/config.json")"
"$lmforge" distill --teacher "$llama" "${targs[@]}" --init="$tmp/l-taylor" --run_dir="$tmp/r2" --alpha=0.5 >/dev/null 2>"$tmp/e" &&
  ok || bad "distill --teacher unpruned: $(cat "$tmp/e")"

# bad input: exit code and one line naming the problem
expect_fail() { # code pattern args...
  local code=$1 pat=$2; shift 2
  "$lmforge" prune "$@" >/dev/null 2>"$tmp/e"
  local rc=$?
  [ $rc -eq "$code" ] && grep -q -- "$pat" "$tmp/e" && [ "$(wc -l < "$tmp/e")" -le 2 ] && ok ||
    bad "prune $*: exit $rc (want $code), message '$(cat "$tmp/e")' (want '$pat')"
}
expect_fail 2 "something to remove" "$llama" --structured "${cal[@]}" --out "$tmp/x"
expect_fail 2 "calibration" "$llama" --structured --neurons 0.5 --out "$tmp/x"
expect_fail 2 "fractions" "$llama" --structured --neurons 1.5 "${cal[@]}" --out "$tmp/x"
expect_fail 2 "unstructured" "$llama" --structured --neurons 0.5 --method wanda "${cal[@]}" --out "$tmp/x"
expect_fail 2 "not known" "$llama" --structured --neurons 0.5 --importance fisher "${cal[@]}" --out "$tmp/x"
expect_fail 2 "rounds to none" "$llama" --structured --heads 0.1 "${cal[@]}" --out "$tmp/x"
expect_fail 1 "none of one kind" "$llama" --structured --layers 2 "${cal[@]}" --out "$tmp/x"
expect_fail 1 "GPT-2" "$gpt2" --structured --heads 0.5 "${cal[@]}" --out "$tmp/x"
[ ! -e "$tmp/x" ] && ok || bad "a failed prune must leave no output folder"

# transformers loads the smaller folders and computes the logits lmforge computes
check_hf() { # python folders...
  local py=$1; shift
  "$py" - "$lmforge" "$@" <<'PY'
import subprocess, sys, torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
lmforge, fails = sys.argv[1], 0
for d in sys.argv[2:]:
    m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lg = m(input_ids=ids).logits
    save_file({"input_ids": ids.to(torch.int32), "logits": lg.contiguous()}, d + ".ref.safetensors")
    v = subprocess.run([lmforge, "verify", d, d + ".ref.safetensors"], capture_output=True, text=True)
    last = (v.stdout + v.stderr).strip().splitlines()[-1:]
    print(f"  transformers vs lmforge on {d.rsplit('/', 1)[-1]}: {last}")
    fails += v.returncode != 0
sys.exit(1 if fails else 0)
PY
}
heads_ok() { "$1" -c 'import sys; from transformers import LlamaConfig; from transformers.models.llama.modeling_llama import LlamaAttention
sys.exit(LlamaAttention(LlamaConfig(hidden_size=16, num_attention_heads=1, num_key_value_heads=1, head_dim=4), 0).q_proj.out_features != 4)' 2>/dev/null; }
py=/usr/bin/python3
if "$py" -c "import torch, transformers" 2>/dev/null; then
  check_hf "$py" "$tmp/g" "$tmp/l-n" && ok || bad "transformers (GPT-2 and Llama, neurons + a layer)"
  for p in "$py" ${SPRUNE_PY:-}; do
    if heads_ok "$p"; then
      check_hf "$p" "$tmp/l-taylor" "$tmp/l-act" "$tmp/l-q" && ok || bad "transformers ($p) on the head-removed Llamas"
    else
      echo "note: $p's transformers $("$p" -c 'import transformers; print(transformers.__version__)') ignores head_dim (< 4.45): the head-removed Llamas are not checked with it"
    fi
  done
else
  echo "note: no torch + transformers for $py: the transformers load is not checked"
fi
echo "sprune_cli: $checks checks, $fails failed"
[ $fails -eq 0 ]
