#!/usr/bin/env bash
# LoRA from the command line (issue 9): `lmforge train` with lora_* keys over a pretrained init
# (the tiny GPT-2 fixture: Conv1D c_attn), DoRA + rsLoRA + dropout on all linears; checkpoints hold
# the PEFT adapter folder and not the base; --resume continues bit for bit (same adapter file as an
# uninterrupted run); eval/generate take --adapter; lora merge writes a loadable folder whose
# perplexity equals the unmerged one; wrong bases and missing folders fail with one-line errors.
# Usage: lora_cli_test.sh LMFORGE FIXTURES
set -u
lmforge=$1 fx=$2
base=$fx/hf_gpt2_tiny tok=$fx/gpt2_tokenizer.json
[ -d "$base" ] && [ -f "$tok" ] || { echo "skipped: fixture missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }

for i in $(seq 1 200); do echo "the quick brown fox $((i % 7)) jumps over the lazy dog number $((i % 11))"; done > "$tmp/t.txt"
"$lmforge" prepare --tokenizer "$tok" --input "$tmp/t.txt" --output "$tmp/data" --quiet || bad "prepare"
args=(--data="$tmp/data" --init="$base" --tokenizer="$tok" --lora_r=4 --lora_alpha=8 --lora_targets=all --lora_dora
      --lora_rslora --lora_dropout=0.1 --max_steps=6 --checkpoint_every=3 --context=16 --batch_size=4 --eval_every=3
      --lr=1e-2 --warmup_steps=0 --quiet)
"$lmforge" train "${args[@]}" --run_dir="$tmp/a" --stop_after_steps=3 >/dev/null 2>&1
"$lmforge" train --resume "$tmp/a" >/dev/null 2>"$tmp/e" || bad "resume: $(cat "$tmp/e")"
"$lmforge" train "${args[@]}" --run_dir="$tmp/b" >/dev/null 2>"$tmp/e" || bad "uninterrupted run: $(cat "$tmp/e")"
ck=$tmp/a/checkpoints/step-00000006
[ -f "$ck/adapter_config.json" ] && [ -f "$ck/adapter_model.safetensors" ] && [ ! -f "$ck/model.safetensors" ] && ok ||
  bad "a LoRA checkpoint must hold the adapter folder and not the base: $(ls "$ck" 2>&1)"
grep -q '"use_dora": true' "$ck/adapter_config.json" && grep -q '"peft_type": "LORA"' "$ck/adapter_config.json" && ok ||
  bad "adapter_config.json: $(head -c 300 "$ck/adapter_config.json")"
cmp -s "$ck/adapter_model.safetensors" "$tmp/b/checkpoints/step-00000006/adapter_model.safetensors" && ok ||
  bad "resumed and uninterrupted runs end with different adapters"
[ -f "$tmp/a/best/adapter_model.safetensors" ] && ok || bad "best/ holds no adapter"

ev() { "$lmforge" eval "$@" --data "$tmp/t.txt" --tokenizer "$tok" --context 16 --json 2>"$tmp/e" | sed -n 's/.*"perplexity": *\([0-9.e+-]*\).*/\1/p'; }
p_base=$(ev "$base") p_ad=$(ev "$base" --adapter "$ck")
[ -n "$p_ad" ] && [ "$p_ad" != "$p_base" ] && ok || bad "eval --adapter: perplexity '$p_ad' vs base '$p_base' ($(cat "$tmp/e"))"
"$lmforge" lora merge "$base" "$ck" "$tmp/merged" >/dev/null 2>"$tmp/e" && ok || bad "lora merge: $(cat "$tmp/e")"
p_m=$(ev "$tmp/merged")
awk -v a="$p_ad" -v m="$p_m" 'BEGIN { exit !(m != "" && (a - m) / a < 1e-4 && (m - a) / a < 1e-4) }' && ok ||
  bad "merged perplexity $p_m differs from unmerged $p_ad"
out=$("$lmforge" generate "$base" --adapter "$ck" --tokenizer "$tok" --prompt "the quick" --max-tokens 4 --greedy 2>"$tmp/e") && ok ||
  bad "generate --adapter: $(cat "$tmp/e")"

# continue training an existing adapter folder (adapter=DIR): its settings, new values
"$lmforge" train --data="$tmp/data" --init="$base" --tokenizer="$tok" --adapter="$ck" --max_steps=2 --eval_every=0 \
  --context=16 --batch_size=4 --lr=1e-2 --warmup_steps=0 --quiet --run_dir="$tmp/c" >/dev/null 2>"$tmp/e" || bad "train adapter=DIR: $(cat "$tmp/e")"
c2=$tmp/c/checkpoints/step-00000002
[ -f "$c2/adapter_model.safetensors" ] && ! cmp -s "$c2/adapter_model.safetensors" "$ck/adapter_model.safetensors" &&
  grep -q '"use_dora": true' "$c2/adapter_config.json" && grep -q '"r": 4' "$c2/adapter_config.json" && ok ||
  bad "continued adapter: $(ls "$tmp/c/checkpoints" 2>&1)"

# errors: one line, exit 1
"$lmforge" eval "$fx/hf_llama_tiny" --adapter "$ck" --data "$tmp/t.txt" --tokenizer "$tok" 2>"$tmp/e" >/dev/null; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "not a linear layer of this base model" "$tmp/e" && ok ||
  bad "adapter on the wrong base (rc $rc): $(cat "$tmp/e")"
"$lmforge" lora merge "$base" "$tmp/nope" "$tmp/m2" 2>"$tmp/e" >/dev/null; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "not an adapter folder" "$tmp/e" && [ ! -e "$tmp/m2" ] && ok ||
  bad "merge of a missing adapter (rc $rc): $(cat "$tmp/e")"
"$lmforge" train --data="$tmp/data" --lora_r=4 --quiet 2>"$tmp/e" >/dev/null; rc=$?
[ $rc -ne 0 ] && grep -q "needs init" "$tmp/e" && ok || bad "LoRA without init (rc $rc): $(cat "$tmp/e")"
echo "lora_cli: $checks checks, $fails failed"
[ $fails -eq 0 ]
