#!/usr/bin/env bash
# lmforge train end to end on a small prepared corpus (made here from a generated text):
# - resume after a pause is bit-identical to an uninterrupted run (dropout and accumulation on);
# - SIGTERM finishes the step, checkpoints, says how to resume, and the resumed run is identical;
# - kill -9 at several moments always leaves a 'latest' checkpoint that loads and resumes;
# - early stopping keeps best/; non-finite steps are skipped and stop the run with a clear error;
# - configuration errors: unknown keys with a hint, wrong types, config show;
# - eval and generate on the result; TensorBoard files are written.
set -u
lmforge=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
losses() { grep '"event":"train"' "$1/metrics.jsonl" | sed 's/,"tokens_per_s.*//'; }

# a corpus with structure to learn: numbered sentences from a small grammar
python3 - > corpus.txt <<'PY' 2>/dev/null || awk 'BEGIN{for(i=0;i<4000;i++) printf "the %s %s the %s.\n", (i%3?"cat":"dog"), (i%5?"sees":"eats"), (i%7?"bird":"fish")}' > corpus.txt
import random
r = random.Random(1)
subj, verb, obj = ["the cat", "a dog", "the old man", "my sister"], ["sees", "eats", "likes", "finds"], ["the fish", "a red ball", "the bird", "bread"]
for i in range(4000):
    print(f"{r.choice(subj)} {r.choice(verb)} {r.choice(obj)}.")
PY
"$lmforge" tokenizer train --vocab-size 300 --input corpus.txt --output tok.json --quiet || { echo "FAIL: tokenizer train"; exit 1; }
"$lmforge" prepare --tokenizer tok.json --input corpus.txt --delimiter '\n' --output data --val-fraction 0.1 --quiet || { echo "FAIL: prepare"; exit 1; }
common=(--data=data --max_steps=30 --eval_every=10 --checkpoint_every=0 --log_every=1 --batch_size=4 --context=32
        --d_model=32 --n_layer=2 --n_head=4 --n_kv_head=2 --d_ff=64 --dropout=0.1 --grad_accum=2 --warmup_steps=5 --quiet)

"$lmforge" train "${common[@]}" --run_dir=A > A.out 2>&1 && ok || bad "uninterrupted run: $(tail -2 A.out)"
"$lmforge" train "${common[@]}" --run_dir=B --stop_after_steps=13 > B.out 2>&1 && grep -q "resume with: lmforge train --resume B" B.out && ok || bad "pause: $(tail -2 B.out)"
"$lmforge" train --resume B --quiet > B2.out 2>&1 && ok || bad "resume: $(tail -2 B2.out)"
if [ "$(losses A | md5sum)" = "$(losses B | md5sum)" ] && [ "$(losses A | wc -l)" -eq 30 ]; then ok; else bad "resumed loss sequence differs from the uninterrupted one"; diff <(losses A) <(losses B) | head -4; fi
cmp -s A/best/model.safetensors B/best/model.safetensors && ok || bad "best/ differs between the uninterrupted and the resumed run"

# SIGTERM: finish the step, checkpoint, exit 130 with the resume command
"$lmforge" train "${common[@]}" --run_dir=C --max_steps=3000 > C.out 2>&1 &
pid=$!
for i in $(seq 100); do [ -s C/metrics.jsonl ] && grep -q '"step":20,' C/metrics.jsonl && break; sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && grep -q "interrupted at step" C.out && grep -q "resume with: lmforge train --resume C" C.out && ok || bad "SIGTERM: rc=$rc $(tail -2 C.out)"
n=$(losses C | wc -l)
"$lmforge" train --resume C --max_steps=$((n + 5)) --quiet > C2.out 2>&1 && [ "$(losses C | wc -l)" -eq $((n + 5)) ] && ok || bad "resume after SIGTERM: $(tail -2 C2.out)"

# kill -9 at several moments: the last good checkpoint always survives and resumes
for delay in 0.3 0.7 1.2 1.6; do
  rm -rf D
  "$lmforge" train "${common[@]}" --run_dir=D --max_steps=100000 --checkpoint_every=3 --keep_checkpoints=1 > /dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 $pid; wait $pid 2>/dev/null
  if [ -f D/latest ]; then
    ck="D/$(cat D/latest)"
    if [ -f "$ck/model.safetensors" ] && [ -f "$ck/trainer_state.json" ] && "$lmforge" info "$ck" > /dev/null 2>&1 &&
       "$lmforge" train --resume D --stop_after_steps=2 --quiet > /dev/null 2>&1; then ok; else bad "kill -9 after ${delay}s: checkpoint $ck unusable"; fi
    # metrics.jsonl reads as one run: no step logged twice
    dups=$(grep '"event":"train"' D/metrics.jsonl | grep -o '"step":[0-9]*' | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] && ok || bad "kill -9 after ${delay}s: $dups steps logged twice in metrics.jsonl"
  else
    echo "note: killed after ${delay}s before the first checkpoint"
  fi
done

# early stopping: a huge min_delta makes every evaluation 'no improvement'
"$lmforge" train "${common[@]}" --run_dir=E --max_steps=200 --eval_every=5 --patience=2 --min_delta=100 --quiet > E.out 2>&1
grep -q '"reason":"early_stopping"' E/metrics.jsonl && [ -f E/best/model.safetensors ] && ok || bad "early stopping / best: $(tail -2 E.out)"

# non-finite steps: skipped, counted, and the run stops with a clear message
"$lmforge" train "${common[@]}" --run_dir=F --lr=1e30 --min_lr=0 --warmup_steps=0 --grad_clip=0 --dropout=0 --max_bad_steps=3 > F.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "non-finite steps in a row" F.out && [ "$(grep -c skipped_step F/metrics.jsonl)" -ge 3 ] && ok || bad "NaN guard: rc=$rc $(tail -2 F.out)"

# configuration
"$lmforge" train --data=data --lr_max=1 2> G.err; [ $? -eq 2 ] && grep -q "did you mean 'lr'" G.err && ok || bad "unknown key hint: $(cat G.err)"
"$lmforge" train --data=data --batch_size=many 2> G.err; [ $? -eq 2 ] && grep -q "batch_size" G.err && ok || bad "type error: $(cat G.err)"
echo '{"data": "data", "lr": 0.01, "max_step": 3}' > bad.json
"$lmforge" train --config bad.json 2> G.err; [ $? -eq 2 ] && grep -q "bad.json: unknown key 'max_step' (did you mean 'max_steps'?)" G.err && ok || bad "config file typo: $(cat G.err)"
echo '{"data": "data", "lr": 0.01}' > good.json
"$lmforge" config show --config good.json --lr=0.02 | grep -q '"lr": 0.02' && ok || bad "config show with override"
"$lmforge" train --lr=1 2> G.err; [ $? -eq 1 ] && grep -q "'data' is required" G.err && ok || bad "missing data: $(cat G.err)"

# transfer learning: from A/best with the embeddings and the first block frozen
"$lmforge" train "${common[@]}" --run_dir=I --init=A/best --freeze_embeddings --freeze_layers=1 --max_steps=10 --lr=1e-2 > I.out 2>&1 && ok || bad "fine-tune from init: $(tail -2 I.out)"
python3 - A/best/model.safetensors I/best/model.safetensors <<'PY' && ok || bad "freezing: frozen tensors moved or trainable ones did not"
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
frozen = [k for k in a if k.startswith("model.layers.0.") or k.startswith("model.embed_tokens.")]
moved = [k for k in a if k.startswith("model.layers.1.")]
sys.exit(0 if frozen and all(a[k] == b[k] for k in frozen) and moved and all(a[k] != b[k] for k in moved) else 1)
PY

# --json: stdout is JSON lines only, even when the run pauses
"$lmforge" train "${common[@]}" --run_dir=J --max_steps=6 --stop_after_steps=3 --json > J.out 2> J.err
python3 -c "import json,sys; [json.loads(l) for l in open('J.out')]" && grep -q '"event":"stop"' J.out && grep -q "resume with" J.err && ok || bad "--json output: $(head -c 300 J.out)"

# eval and generate on the trained model; TensorBoard
"$lmforge" eval A/best --data data/val.bin --json > H.json && python3 -c "import json,sys; d=json.load(open('H.json')); sys.exit(0 if d['perplexity'] < 50 and d['targets'] > 0 else 1)" 2>/dev/null && ok || bad "eval: $(cat H.json)"
"$lmforge" eval A/best --data corpus.txt --context 32 --stride 16 | grep -q "perplexity" && ok || bad "eval on text"
mkdir -p evdir && head -n 100 corpus.txt > evdir/a.txt && tail -n 100 corpus.txt > evdir/b.txt
tok_folder=$("$lmforge" eval A/best --data evdir --json | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
tok_a=$("$lmforge" eval A/best --data evdir/a.txt --json | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
tok_b=$("$lmforge" eval A/best --data evdir/b.txt --json | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
[ -n "$tok_folder" ] && [ "$tok_folder" -eq $((tok_a + tok_b)) ] && ok || bad "eval on a folder: $tok_folder tokens vs $tok_a + $tok_b"
out=$("$lmforge" generate A/best --prompt "the cat" --max-tokens 20 --seed 3 2>/dev/null)
out2=$("$lmforge" generate A/best --prompt "the cat" --max-tokens 20 --seed 3 2>/dev/null)
[ -n "$out" ] && [ "$out" = "$out2" ] && case "$out" in "the cat"*) true;; *) false;; esac && ok || bad "generate: '$out' / '$out2'"
"$lmforge" generate A/best --prompt "the cat" --greedy --max-tokens 10 > /dev/null 2>&1 && ok || bad "generate --greedy"
"$lmforge" train "${common[@]}" --run_dir=T --max_steps=5 --tensorboard=tb > /dev/null 2>&1 && ls tb/events.out.tfevents.* > /dev/null 2>&1 && ok || bad "tensorboard file"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
