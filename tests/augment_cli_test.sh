#!/usr/bin/env bash
# lmforge augment from the command line (issue 13): labels and completions kept, originals first,
# exact duplicates dropped, the same file for any --threads, one-line errors for bad input
# (not JSON, not UTF-8, missing file, unknown op, missing WordNet/Apertium), notes for empty and
# long records, back-translation in order when Apertium is installed.
# Online augmentation (aug_* training keys): a run stopped and resumed ends with the same weights
# as an uninterrupted one, and differs from a run without noise (needs the fixtures' tokenizer).
# Usage: augment_cli_test.sh LMFORGE [FIXTURES]
set -u
lf=$1 fx=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
py() { python3 -c "$@"; }

python3 - "$tmp/in.jsonl" <<'PY'
import json, sys
s = ["The quick brown fox jumps over the lazy dog while happy children laugh.",
     "A small company builds fast computers and sells them to careful buyers.",
     "Politicians argue about taxes and roads, but voters remember the weather.",
     "Science begins with a question and ends with a better question.",
     "Café naïve résumé — 日本語 text with emoji 😀 and plain words."]
with open(sys.argv[1], "w") as f:
    for i in range(60):
        f.write(json.dumps({"text": s[i % 5] + f" Number {i}.", "label": ["work", "people", 3][i % 3], "id": i}, ensure_ascii=False) + "\n")
    f.write(json.dumps({"text": "", "label": "empty"}) + "\n")
    f.write(json.dumps({"text": "dup dup dup", "label": "x"}) + "\n")
    f.write(json.dumps({"text": "dup dup dup", "label": "x"}) + "\n")
PY
ops=swap=0.2,del=0.2,kbd=0.1,cins=0.1,cdel=0.1,cswap=0.1,mask=0.2,span=0.2,shuffle=3
"$lf" augment "$tmp/in.jsonl" --out "$tmp/a.jsonl" --ops $ops --copies 4 --seed 7 --threads 1 >"$tmp/o" 2>"$tmp/e" || bad "augment: $(cat "$tmp/e")"
"$lf" augment "$tmp/in.jsonl" --out "$tmp/b.jsonl" --ops $ops --copies 4 --seed 7 --threads 3 --quiet >/dev/null 2>&1 || bad "augment --threads 3"
cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl" && ok || bad "--threads 1 and 3 wrote different files"
"$lf" augment "$tmp/in.jsonl" --out "$tmp/c.jsonl" --ops $ops --copies 4 --seed 8 --quiet >/dev/null 2>&1
cmp -s "$tmp/a.jsonl" "$tmp/c.jsonl" && bad "--seed 8 wrote the same file as --seed 7" || ok
grep -q "1 empty record kept" "$tmp/e" && ok || bad "no note about the empty record: $(cat "$tmp/e")"
grep -q "63 records ->" "$tmp/o" && grep -q "duplicate lines dropped" "$tmp/o" && ok || bad "summary: $(cat "$tmp/o")"
python3 - "$tmp/in.jsonl" "$tmp/a.jsonl" <<'PY' && ok || bad "augmented file (above)"
import json, sys, collections
src = [json.loads(l) for l in open(sys.argv[1])]
out = [json.loads(l) for l in open(sys.argv[2])]
lines = open(sys.argv[2]).read().splitlines()
err = []
if len(lines) != len(set(lines)): err.append("duplicate lines")
# originals kept, in order; every copy carries its original's label and id
by_id = {r["id"]: r for r in src if "id" in r}
origs = [r for r in out if r in src]
if [json.dumps(r) for r in origs] != [json.dumps(r) for r in src[:-1]]: err.append("originals missing or out of order")
copies = [r for r in out if r not in src]
for r in copies:
    if "id" not in r: continue  # the "dup dup dup" record's copies
    o = by_id.get(r.get("id"))
    if o is None or r["label"] != o["label"] or type(r["label"]) != type(o["label"]): err.append(f"label lost: {r}"); break
if len(copies) < 60 * 3: err.append(f"only {len(copies)} copies")
uni = [r for r in copies if r.get("id", -1) % 5 == 4]
# the character operations never touch them; deletion and masking may drop the word
whole = sum(all(ch in r["text"] for ch in "日本語😀") for r in uni)
if not uni or whole < len(uni) // 2 or any("\ufffd" in r["text"] for r in copies): err.append(f"multibyte characters broken ({whole} of {len(uni)} whole)")
if any(r["label"] == "empty" for r in copies): err.append("the empty record was augmented")
if sum(r["text"] == "dup dup dup" for r in out) != 1: err.append("exact duplicates not dropped")
print("; ".join(err) if err else f"{len(src)} records -> {len(out)} lines, {len(copies)} copies")
sys.exit(1 if err else 0)
PY

# prompt/completion: the prompt is augmented, the completion kept
printf '%s\n' '{"prompt":"Write a short poem about the quiet river near my house","completion":" The river sleeps."}' > "$tmp/pc.jsonl"
"$lf" augment "$tmp/pc.jsonl" --out "$tmp/pc.out" --ops del=0.3,swap=0.3 --copies 4 --quiet 2>"$tmp/e" || bad "prompt/completion: $(cat "$tmp/e")"
py 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if len(r)>=3 and all(x["completion"]==" The river sleeps." for x in r) and len({x["prompt"] for x in r})==len(r) else 1)' "$tmp/pc.out" \
  && ok || bad "prompt/completion records: $(cat "$tmp/pc.out")"

# literal text: copies on stdout
n=$("$lf" augment "the cat sat on the warm mat near the door" --ops swap=0.3 --copies 3 --seed 1 | wc -l)
[ "$n" = 3 ] && ok || bad "literal text: $n lines, want 3"

# bad input: one-line errors, nothing written
printf '{"text": "fine", "label": 1}\n{"text": broken\n' > "$tmp/bad.jsonl"
"$lf" augment "$tmp/bad.jsonl" --out "$tmp/x.jsonl" 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "bad.jsonl:2" "$tmp/e" && [ "$(wc -l < "$tmp/e")" = 1 ] && [ ! -e "$tmp/x.jsonl" ] && ok || bad "broken JSON: rc $rc, $(cat "$tmp/e")"
printf '{"text": "caf\xe9 latin-1", "label": 1}\n' > "$tmp/l1.jsonl"
"$lf" augment "$tmp/l1.jsonl" --out "$tmp/x.jsonl" 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "l1.jsonl:1" "$tmp/e" && grep -qi "utf-8" "$tmp/e" && [ ! -e "$tmp/x.jsonl" ] && ok || bad "non-UTF-8: rc $rc, $(cat "$tmp/e")"
"$lf" augment "$tmp/missing.jsonl" --out "$tmp/x.jsonl" 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "missing.jsonl: no such file" "$tmp/e" && ok || bad "missing file: rc $rc, $(cat "$tmp/e")"
"$lf" augment "$tmp/in.jsonl" --out "$tmp/x.jsonl" --ops syn=0.1,frob 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "unknown operation 'frob'" "$tmp/e" && ok || bad "unknown op: rc $rc, $(cat "$tmp/e")"
WNSEARCHDIR=$tmp/nowordnet "$lf" augment "$tmp/in.jsonl" --out "$tmp/x.jsonl" --ops syn 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "wordnet-base" "$tmp/e" && [ ! -e "$tmp/x.jsonl" ] && ok || bad "missing WordNet: rc $rc, $(cat "$tmp/e")"
"$lf" augment "$tmp/in.jsonl" --out "$tmp/x.jsonl" --ops bt --apertium "$tmp/no-apertium" 2>"$tmp/e"; rc=$?
[ $rc = 1 ] && grep -q "apertium-eng-spa" "$tmp/e" && ok || bad "missing Apertium: rc $rc, $(cat "$tmp/e")"
head -c 3000 /dev/zero | tr '\0' 'a' | python3 -c 'import json,sys; print(json.dumps({"text": sys.stdin.read(), "label": 0}))' > "$tmp/long.jsonl"
"$lf" augment "$tmp/long.jsonl" --out "$tmp/long.out" --max-bytes 1000 --ops del 2>"$tmp/e" >/dev/null; rc=$?
[ $rc = 0 ] && grep -q "over --max-bytes 1000 kept but not augmented" "$tmp/e" && py 'import json,sys; sys.exit(0 if [json.loads(l) for l in open(sys.argv[1])]==[json.loads(l) for l in open(sys.argv[2])] else 1)' "$tmp/long.jsonl" "$tmp/long.out" && ok ||
  bad "long record: rc $rc, $(cat "$tmp/e")"

# WordNet and Apertium when installed
if [ -f /usr/share/wordnet/index.noun ]; then
  "$lf" augment "$tmp/in.jsonl" --out "$tmp/w.jsonl" --ops syn=0.2,ins=0.2 --copies 2 --quiet 2>"$tmp/e" && ok || bad "syn/ins: $(cat "$tmp/e")"
else
  echo "syn/ins: skipped (wordnet-base not installed)"
fi
if command -v apertium >/dev/null && [ -f /usr/share/apertium/modes/eng-spa.mode ]; then
  "$lf" augment "$tmp/in.jsonl" --out "$tmp/bt.jsonl" --ops bt --copies 1 --quiet 2>"$tmp/e" || bad "bt: $(cat "$tmp/e")"
  python3 - "$tmp/in.jsonl" "$tmp/bt.jsonl" <<'PY' && ok || bad "back-translation order"
import json, sys, re
src = [json.loads(l) for l in open(sys.argv[1])]
out = [json.loads(l) for l in open(sys.argv[2])]
copies = [r for r in out if "id" in r and r not in src]
bad = [r for r in copies if not re.search(rf"\b{r['id']}\b", r["text"])]
print(f"{len(copies)} back-translations, {len(bad)} without their record's number")
sys.exit(1 if bad or len(copies) < 40 else 0)
PY
else
  echo "back-translation: skipped (apertium-eng-spa not installed)"
fi

# online augmentation: resume is bit-identical, and the noise changes training
tok=$fx/gpt2_tokenizer.json
if [ -n "$fx" ] && [ -f "$tok" ]; then
  for i in $(seq 1 200); do echo "the quick brown fox $((i % 7)) jumps over the lazy dog number $((i % 11))"; done > "$tmp/t.txt"
  "$lf" prepare --tokenizer "$tok" --input "$tmp/t.txt" --output "$tmp/data" --quiet >/dev/null || bad "prepare"
  args=(--data="$tmp/data" --tokenizer="$tok" --d_model=32 --n_layer=1 --n_head=2 --n_kv_head=1 --d_ff=64 --context=16
        --batch_size=4 --max_steps=6 --checkpoint_every=3 --eval_every=3 --warmup_steps=0 --quiet)
  aug=(--aug_mask=0.15 --aug_span=0.1 --aug_shuffle=3 --aug_mask_id=50256)
  "$lf" train "${args[@]}" "${aug[@]}" --run_dir="$tmp/r1" --stop_after_steps=3 >/dev/null 2>&1
  "$lf" train --resume "$tmp/r1" >/dev/null 2>"$tmp/e" || bad "resume: $(cat "$tmp/e")"
  "$lf" train "${args[@]}" "${aug[@]}" --run_dir="$tmp/r2" >/dev/null 2>"$tmp/e" || bad "uninterrupted: $(cat "$tmp/e")"
  "$lf" train "${args[@]}" --run_dir="$tmp/r3" >/dev/null 2>"$tmp/e" || bad "no noise: $(cat "$tmp/e")"
  f=checkpoints/step-00000006/model.safetensors
  cmp -s "$tmp/r1/$f" "$tmp/r2/$f" && ok || bad "online augmentation: the resumed run's weights differ from the uninterrupted run's"
  cmp -s "$tmp/r2/$f" "$tmp/r3/$f" && bad "aug_* keys changed nothing" || ok
  grep -q '"aug_mask": 0.15' "$tmp/r1/train_config.json" && ok || bad "train_config.json lacks aug_mask"
  "$lf" train "${args[@]}" --aug_mask=0.1 --aug_mask_id=99999999 --run_dir="$tmp/r4" >/dev/null 2>"$tmp/e"; rc=$?
  [ $rc != 0 ] && grep -q "aug_mask_id" "$tmp/e" && ok || bad "a mask id outside the vocabulary: rc $rc, $(cat "$tmp/e")"
else
  echo "online augmentation: skipped (fixture tokenizer missing)"
fi

echo "augment_cli: $checks checks, $fails failed"
[ $fails = 0 ]
