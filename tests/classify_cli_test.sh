#!/usr/bin/env bash
# lmforge eval --task classify and lmforge train task = classify end to end on the tiny GPT-2
# fixture: label scoring on a JSONL file and on a prepared folder (same examples, same numbers),
# --json is complete and valid, a score head trained for a few steps is exported with best/ and
# final/ and evaluated with --method head, head_only trains only score.weight, bad options are
# refused with a message. Usage: classify_cli_test.sh LMFORGE FIXTURES
set -u
lmforge=$1 fx=$2
[ -d "$fx/hf_gpt2_tiny" ] && [ -f "$fx/gpt2_tokenizer.json" ] || { echo "skipped: fixture missing ($fx)"; exit 77; }
export OMP_NUM_THREADS=1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
mkdir "$d/m" && cp "$fx/hf_gpt2_tiny/config.json" "$fx/hf_gpt2_tiny/model.safetensors" "$d/m/" && cp "$fx/gpt2_tokenizer.json" "$d/m/tokenizer.json"
python3 - "$d/data.jsonl" <<'PY'
import json, sys
words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "dull"]}
with open(sys.argv[1], "w") as f:
    for i in range(120):
        lab = ["pos", "neg"][i % 2]
        f.write(json.dumps({"text": f"the film was {words[lab][i % 4]} and {words[lab][(i // 2) % 4]}", "label": lab}) + "\n")
PY
"$lmforge" eval --task classify "$d/m" "$d/data.jsonl" --json "$d/a.json" > "$d/a.txt" 2>&1
check 'grep -q "macro F1" "$d/a.txt" && grep -q "confusion matrix" "$d/a.txt"' "eval prints no table: $(head -3 "$d/a.txt")"
check 'python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j[\"examples\"]==120 and len(j[\"confusion\"])==2 and len(j[\"per_class\"])==2 and 0<=j[\"accuracy_ci95\"][0]<=j[\"accuracy\"]<=j[\"accuracy_ci95\"][1]" "$d/a.json"' "--json is incomplete"
"$lmforge" eval --task classify "$d/m" "$d/data.jsonl" --limit 10 --quiet --json "$d/l.json" >/dev/null
check 'python3 -c "import json,sys; assert json.load(open(sys.argv[1]))[\"examples\"]==10" "$d/l.json"' "--limit 10 not applied"
"$lmforge" prepare --tokenizer "$d/m/tokenizer.json" --input "$d/data.jsonl" --output "$d/p" --val-fraction 0.25 --quiet
"$lmforge" eval --task classify "$d/m" "$d/p" --quiet --json "$d/p.json" --per-example >/dev/null
check 'python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j[\"examples\"]==30 and j[\"labels\"]==[\"pos\",\"neg\"] and len(j[\"log_likelihoods\"])==30" "$d/p.json"' "prepared folder: not its 30 val examples / meta.json labels"
# --verbalizer: other words scored for the labels (recorded in the JSON); an unknown label refused
"$lmforge" eval --task classify "$d/m" "$d/p" --verbalizer pos=good,neg=bad --quiet --json "$d/v.json" >/dev/null
check 'grep -q "\"verbalizer\": \"pos=good,neg=bad\"" "$d/v.json"' "--verbalizer not applied: $(head -c 300 "$d/v.json")"
"$lmforge" eval --task classify "$d/m" "$d/p" --verbalizer nope=x >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "not LABEL=WORDS" "$d/e.txt"' "--verbalizer with an unknown label not refused: $(cat "$d/e.txt")"
# --limit on a prepared split: a fixed pseudo-random subset, the same every time, not the first N
"$lmforge" eval --task classify "$d/m" "$d/p" --split val --limit 10 --quiet --json "$d/s1.json" --per-example >/dev/null
"$lmforge" eval --task classify "$d/m" "$d/p" --split val --limit 10 --quiet --json "$d/s2.json" --per-example >/dev/null
check 'python3 - "$d/p.json" "$d/s1.json" "$d/s2.json" <<PY
import json, sys
a, b, c = (json.load(open(f)) for f in sys.argv[1:])
assert b["examples"] == 10 and b["log_likelihoods"] == c["log_likelihoods"], "not 10 or not stable"
full = a["log_likelihoods"]
assert b["log_likelihoods"] != full[:10], "the first 10, not a subset"
assert all(x in full for x in b["log_likelihoods"]), "not a subset of the split"
PY' "prepared --limit: not a fixed subset of the split"
"$lmforge" eval --task classify "$d/m" "$d/data.jsonl" --method nope >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -eq 2 ] && grep -q "expected score" "$d/e.txt"' "--method nope not refused"
"$lmforge" eval --task classify "$d/m" "$d/data.jsonl" --method head >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "no score.weight" "$d/e.txt"' "--method head on a plain LM not refused: $(cat "$d/e.txt")"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=score --metric=accuracy --context=16 --batch_size=8 \
  --max_steps=30 --eval_every=10 --lr=1e-2 --warmup_steps=2 --run_dir="$d/run" --quiet > "$d/t.txt" 2>&1
check '[ -f "$d/run/best/model.safetensors" ] && [ -f "$d/run/final/tokenizer.json" ] && grep -q GPT2ForSequenceClassification "$d/run/best/config.json"' "train task=classify wrote no best/ final/: $(cat "$d/t.txt")"
"$lmforge" eval --task classify "$d/run/best" "$d/p" --method head --quiet --json "$d/h.json" >/dev/null
check 'python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j[\"examples\"]==30 and j[\"accuracy\"]>=0.9, j[\"accuracy\"]" "$d/h.json"' "the trained head is not accurate on an easy task: $(grep -o '"accuracy": [0-9.]*' "$d/h.json" | head -1)"
# a head answers in its id2label order, mapped onto the data's labels by name: --labels in another
# order gives the same accuracy; labels the head does not have are refused
"$lmforge" eval --task classify "$d/run/best" "$d/p" --method head --labels neg,pos --quiet --json "$d/hrev.json" >/dev/null
check 'python3 -c "import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); assert a[\"accuracy\"]==b[\"accuracy\"], (a[\"accuracy\"], b[\"accuracy\"])" "$d/h.json" "$d/hrev.json"' "--labels in another order changes a head's accuracy"
printf '{"text": "a fine film", "label": "good"}\n{"text": "a dull film", "label": "bad"}\n' > "$d/other.jsonl"
"$lmforge" eval --task classify "$d/run/best" "$d/other.jsonl" --method head >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "is not one of" "$d/e.txt"' "a head evaluated on labels it does not have is not refused: $(cat "$d/e.txt")"
# the classifier as GGUF (lmforge quantize keeps the head as cls.output.weight with its labels): f32
# gives the float model's logits, q8_0 within a stated tolerance, through the same eval command
"$lmforge" eval --task classify "$d/run/best" "$d/p" --method head --per-example --quiet --json "$d/hf.json" >/dev/null
for t in f32 q8_0; do
  "$lmforge" quantize "$d/run/best" --type $t --out "$d/cls_$t.gguf" > "$d/q_$t.txt" 2>&1
  "$lmforge" eval --task classify "$d/cls_$t.gguf" "$d/p" --method head --per-example --quiet --json "$d/h_$t.json" >/dev/null 2>"$d/e_$t.txt"
done
check 'grep -q "classification head of 2 labels" "$d/q_q8_0.txt" && python3 - "$d/hf.json" "$d/h_f32.json" "$d/h_q8_0.json" <<PY
import json, sys
f, a, q = (json.load(open(p)) for p in sys.argv[1:])
za, zf, zq = a["logits"], f["logits"], q["logits"]
da = max(abs(x - y) for r, s in zip(za, zf) for x, y in zip(r, s))
dq = max(abs(x - y) for r, s in zip(zq, zf) for x, y in zip(r, s))
big = max(abs(x) for r in zf for x in r)
agree = sum(x == y for x, y in zip(q["predictions"], f["predictions"])) / len(f["predictions"])
print(f"gguf classifier: f32 max |dz| {da:.2e}, q8_0 max |dz| {dq:.3f} (logits up to {big:.2f}), q8_0 agrees on {agree:.0%}")
assert a["predictions"] == f["predictions"] and da < 1e-4, da
assert dq < 0.05 * big + 0.05 and agree >= 0.9, (dq, agree)
PY' "the GGUF classifier does not reproduce the float one: $(cat "$d/e_f32.txt" "$d/q_q8_0.txt")"
if /usr/bin/python3 -c "import gguf" 2>/dev/null; then
  check '/usr/bin/python3 - "$d/cls_q8_0.gguf" <<PY
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
t = [x for x in r.tensors if x.name == "cls.output.weight"][0]
f = r.fields["gpt2.classifier.output_labels"]
names = [bytes(f.parts[i]).decode() for i in f.data]
assert t.shape[1] == 2 and t.tensor_type.name == "F32" and names == ["pos", "neg"], (t.shape, t.tensor_type, names)
PY' "gguf-py does not read the classifier head and labels from the GGUF"
else
  echo "classify_cli_test: skipped the gguf-py check of the classifier GGUF (no gguf module for /usr/bin/python3)"
fi
# truncation_side: the folder says how training cut long texts, and eval cuts them the same way
check 'grep -q "\"truncation_side\": \"right\"" "$d/run/best/config.json"' "best/config.json does not say truncation_side right (the default)"
"$lmforge" eval --task classify "$d/run/best" "$d/p" --method head --max-tokens 4 --quiet --json "$d/h4r.json" >/dev/null
"$lmforge" eval --task classify "$d/run/best" "$d/p" --method head --max-tokens 4 --truncation-side left --quiet --json "$d/h4l.json" >/dev/null
check 'python3 - "$d/h4r.json" "$d/h4l.json" <<PY
import json, sys
r, l = (json.load(open(f)) for f in sys.argv[1:])
assert r["truncation_side"] == "right" and l["truncation_side"] == "left", (r["truncation_side"], l["truncation_side"])
PY' "eval --method head does not report the folder's truncation side, or --truncation-side does not override it"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=score --lora_r=4 --lora_targets=c_attn --truncation_side=left \
  --context=16 --batch_size=8 --max_steps=2 --eval_every=0 --run_dir="$d/run7" --quiet >/dev/null 2>&1
"$lmforge" eval --task classify "$d/m" "$d/p" --adapter "$d/run7/best" --method head --quiet --json "$d/h7.json" >/dev/null 2>"$d/e.txt"
check 'grep -q "\"truncation_side\": \"left\"" "$d/h7.json"' "a LoRA classifier trained with truncation_side=left is not evaluated that way: $(cat "$d/e.txt")"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=lm --truncation_side=right --run_dir="$d/run6" >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "truncation_side = right needs head = score" "$d/e.txt"' "truncation_side=right with head=lm not refused: $(cat "$d/e.txt")"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=score --truncation_side=middle --run_dir="$d/run6" >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "truncation_side must be right" "$d/e.txt"' "truncation_side=middle not refused: $(cat "$d/e.txt")"
"$lmforge" eval --task classify "$d/m" "$d/p" --truncation-side left >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -eq 2 ] && grep -q "truncation-side is for --method head" "$d/e.txt"' "--truncation-side with label scoring not refused: $(cat "$d/e.txt")"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=score --head_only=true --context=16 --batch_size=8 \
  --max_steps=3 --eval_every=0 --run_dir="$d/run2" > "$d/t2.txt" 2>&1
check 'grep -q " 32 trainable parameters" "$d/t2.txt"' "head_only does not train only score.weight (2 x 16): $(tail -1 "$d/t2.txt")"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=lm --head_only=true --run_dir="$d/run3" >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "head_only needs head = score" "$d/e.txt"' "head_only with head=lm not refused"
# LoRA on the verbalizer (head = lm): best/ is a PEFT adapter folder, and eval --adapter on it
# gives the validation accuracy the run reported for it
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=lm --lora_r=4 --lora_alpha=8 --lora_targets=c_attn \
  --metric=accuracy --context=16 --batch_size=8 --max_steps=20 --eval_every=10 --lr=1e-2 --warmup_steps=2 \
  --run_dir="$d/run4" --quiet > "$d/t4.txt" 2>&1
check '[ -f "$d/run4/best/adapter_config.json" ] && [ ! -f "$d/run4/best/model.safetensors" ] && grep -q " 4[0-9]* trainable parameters\| trainable parameters" "$d/t4.txt"' "train task=classify with LoRA wrote no adapter best/: $(tail -2 "$d/t4.txt")"
"$lmforge" eval --task classify "$d/m" "$d/p" --adapter "$d/run4/best" --max-tokens 16 --quiet --json "$d/a4.json" >/dev/null
check 'python3 - "$d/run4/metrics.jsonl" "$d/a4.json" <<PY
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
best = [e for e in ev if e.get("event") == "done"][0]
acc = json.load(open(sys.argv[2]))["accuracy"]
assert abs(acc - best["best"]) < 1e-9, (acc, best)
PY' "eval --adapter on best/ does not reproduce the run's best validation accuracy"
"$lmforge" train --data="$d/p" --init="$d/m" --task=classify --head=score --head_only=true --lora_r=4 --run_dir="$d/run5" >/dev/null 2>"$d/e.txt"; rc=$?
check '[ $rc -ne 0 ] && grep -q "head_only trains score.weight alone" "$d/e.txt"' "head_only with LoRA not refused: $(cat "$d/e.txt")"
[ $fail -eq 0 ] && echo "classify_cli_test: all passed"
exit $fail
