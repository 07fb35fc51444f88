#!/usr/bin/env bash
# The command line: usage, exit codes, one-line errors that name the file, and the commands'
# happy paths (info, convert llama2.c -> Hugging Face, verify of the converted model, demo).
set -u
lmforge=$1 fixtures=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

"$lmforge" --help | grep -q verify && ok || bad "--help lists commands"
"$lmforge" frobnicate 2>"$tmp/e"; [ $? -eq 2 ] && grep -q "unknown command 'frobnicate'" "$tmp/e" && ok || bad "unknown command"
"$lmforge" verify 2>/dev/null >/dev/null; [ $? -eq 2 ] && ok || bad "verify without args exits 2"
"$lmforge" verify "$tmp/nope" "$tmp/ref.safetensors" 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "$tmp/nope" "$tmp/e" && ok || bad "missing model: one line naming it (rc=$rc: $(cat "$tmp/e"))"
printf 'garbage that is not a checkpoint' > "$tmp/bad.bin"
"$lmforge" info "$tmp/bad.bin" 2>"$tmp/e"; [ $? -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "bad.bin" "$tmp/e" && ok || bad "garbage model file: $(cat "$tmp/e")"
"$lmforge" verify --tol abc x y 2>/dev/null; [ $? -eq 2 ] && ok || bad "bad --tol value"

if [ -f "$fixtures/llama2c_stories260K/model.bin" ]; then
  "$lmforge" info "$fixtures/llama2c_stories260K/model.bin" > "$tmp/info" && grep -q "parameters     260032" "$tmp/info" && ok || bad "info on llama2.c model"
  "$lmforge" convert "$fixtures/llama2c_stories260K/model.bin" "$tmp/hf" > /dev/null && [ -f "$tmp/hf/config.json" ] && [ -f "$tmp/hf/model.safetensors" ] && ok || bad "convert llama2.c -> HF"
  "$lmforge" info "$tmp/hf" | grep -q "model.layers.4.mlp.down_proj.weight" && ok || bad "converted model loads"
  # a reference file whose ids are fine but whose logits are wrong must FAIL verify
  "$lmforge" verify "$tmp/hf" "$fixtures/hf_llama_tiny/reference.safetensors" > "$tmp/v" 2>&1; rc=$?
  [ $rc -ne 0 ] && ok || bad "verify of a mismatched model/reference must not pass ($(tail -1 "$tmp/v"))"
else
  echo "skipped: fixture missing ($fixtures/llama2c_stories260K)"
fi
# tokenizer and prepare from the command line
gpt2="$fixtures/../data/gpt2"
if [ -f "$gpt2/encoder.json" ]; then
  ids=$(printf 'Hello world' | "$lmforge" tokenizer encode --tokenizer "$gpt2")
  [ "$ids" = "[15496, 995]" ] && ok || bad "tokenizer encode: $ids"
  back=$(echo "$ids" | "$lmforge" tokenizer decode --tokenizer "$gpt2")
  [ "$back" = "Hello world" ] && ok || bad "tokenizer decode: $back"
  ids=$(printf '<|endoftext|>' | "$lmforge" tokenizer encode --tokenizer "$gpt2/encoder.json" --allow-special --eos)
  [ "$ids" = "[50256, 50256]" ] && ok || bad "--allow-special --eos: $ids"
  echo '[1, "x"]' | "$lmforge" tokenizer decode --tokenizer "$gpt2" 2>"$tmp/e"; [ $? -ne 0 ] && grep -q "element 1" "$tmp/e" && ok || bad "decode of a bad array"
  printf 'some text\n' > "$tmp/t.txt"
  "$lmforge" prepare --tokenizer "$gpt2" --input "$tmp/t.txt" --output "$tmp/shards" --quiet && [ -f "$tmp/shards/train.bin" ] && ok || bad "prepare a text file"
  printf '{"prompt": "a"}\n' > "$tmp/b.jsonl"
  "$lmforge" prepare --tokenizer "$gpt2" --input "$tmp/b.jsonl" --output "$tmp/s2" 2>"$tmp/e"; rc=$?
  [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "b.jsonl:1:" "$tmp/e" && ok || bad "prepare bad jsonl: $(cat "$tmp/e")"
  printf 'the cat sat on the mat\n%.0s' $(seq 200) > "$tmp/corpus.txt"
  "$lmforge" tokenizer train --vocab-size 300 --input "$tmp/corpus.txt" --output "$tmp/tok.json" --quiet && \
    [ "$(printf 'the cat' | "$lmforge" tokenizer encode --tokenizer "$tmp/tok.json" | tr -cd , | wc -c)" -le 1 ] && ok || bad "tokenizer train + encode"
  "$lmforge" tokenizer info --tokenizer "$fixtures/../data/llama2/tokenizer.bin" | grep -q "SentencePiece" && ok || bad "tokenizer info (llama2.c)"
else
  echo "skipped: fixture missing ($gpt2)"
fi
if command -v bible >/dev/null; then
  "$lmforge" quickstart --out "$tmp/qs" --steps 40 > "$tmp/qs.out" 2>&1 && grep -q "held-out perplexity" "$tmp/qs.out" && \
    [ -f "$tmp/qs/run/best/model.safetensors" ] && ok || bad "quickstart --steps 40: $(tail -3 "$tmp/qs.out")"
else
  echo "skipped: bible-kjv-text not installed (quickstart)"
fi
"$lmforge" demo --steps 60 > "$tmp/demo" 2>&1 && grep -q "held-out loss" "$tmp/demo" && ok || bad "demo --steps 60: $(tail -2 "$tmp/demo")"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
