#!/usr/bin/env bash
# lmforge distill end to end on a small prepared corpus: a teacher trained here, then students
# distilled from it (forward KL from a config, JSD + hidden-state cosine with a projection,
# every_k:2 from the teacher, a Q8_0 GGUF teacher kept quantized, a top-k teacher cache, on-policy batches, a classifier); a paused and resumed distillation is bit-identical to an
# uninterrupted one (the teacher is reloaded from the saved config); the student's folder loads in
# eval; the KL term is not zero at the start and the logged loss mixes it with cross-entropy;
# a teacher with another tokenizer, a missing teacher and bad keys give one-line errors.
set -u
lmforge=$1
tmp=${KEEP_TMP:-$(mktemp -d)}; [ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT; mkdir -p "$tmp"
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
losses() { grep '"event":"train"' "$1/metrics.jsonl" | sed 's/,"tokens_per_s.*//'; }

awk 'BEGIN{srand(3); s[0]="the cat";s[1]="a dog";s[2]="the old man";s[3]="my sister";v[0]="sees";v[1]="eats";v[2]="likes";v[3]="finds";
     o[0]="the fish";o[1]="a red ball";o[2]="the bird";o[3]="bread"; for(i=0;i<3000;i++) printf "%s %s %s.\n", s[int(rand()*4)], v[int(rand()*4)], o[int(rand()*4)]}' > corpus.txt
"$lmforge" tokenizer train --vocab-size 300 --input corpus.txt --output tok.json --quiet || { echo "FAIL: tokenizer train"; exit 1; }
"$lmforge" tokenizer train --vocab-size 280 --input corpus.txt --output tok2.json --quiet || { echo "FAIL: tokenizer train 2"; exit 1; }
"$lmforge" prepare --tokenizer tok.json --input corpus.txt --delimiter '\n' --output data --val-fraction 0.1 --quiet || { echo "FAIL: prepare"; exit 1; }
"$lmforge" prepare --tokenizer tok2.json --input corpus.txt --delimiter '\n' --output data2 --val-fraction 0.1 --quiet || { echo "FAIL: prepare 2"; exit 1; }
common=(--data=data --eval_every=10 --checkpoint_every=0 --log_every=1 --batch_size=4 --context=32 --warmup_steps=5 --quiet)

"$lmforge" train "${common[@]}" --run_dir=T --max_steps=40 --d_model=32 --n_layer=4 --n_head=4 --n_kv_head=2 --d_ff=64 > T.out 2>&1 && ok || bad "teacher: $(tail -2 T.out)"
student=(--d_model=16 --n_layer=2 --n_head=2 --n_kv_head=1 --d_ff=32 --max_steps=20 --grad_accum=2 --dropout=0.1)

"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=A --temperature=2 --alpha=0.7 > A.out 2>&1 && ok || bad "distill kl: $(tail -2 A.out)"
grep -q '"teacher": "T/best"' A/train_config.json && grep -q '"alpha": 0.7' A/train_config.json && ok || bad "train_config.json lacks the distillation keys"
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=B --temperature=2 --alpha=0.7 --stop_after_steps=7 > B.out 2>&1 &&
  grep -q "resume with: lmforge distill --resume B" B.out && ok || bad "pause: $(tail -2 B.out)"
"$lmforge" distill --resume B --quiet > B2.out 2>&1 && ok || bad "resume: $(tail -2 B2.out)"
if [ "$(losses A | md5sum)" = "$(losses B | md5sum)" ] && [ "$(losses A | wc -l)" -eq 20 ]; then ok; else bad "resumed distillation differs from the uninterrupted one"; diff <(losses A) <(losses B) | head -4; fi
cmp -s A/best/model.safetensors B/best/model.safetensors && ok || bad "best/ differs between the uninterrupted and the resumed distillation"
"$lmforge" eval A/best --data data/val.bin > E.out 2>&1 && grep -qi "perplexity" E.out && ok || bad "eval of the student: $(tail -2 E.out)"
# alpha = 0 is plain training: the same losses as lmforge train
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=Z --alpha=0 > Z.out 2>&1 && ok || bad "alpha 0: $(tail -2 Z.out)"
"$lmforge" train "${common[@]}" "${student[@]}" --run_dir=P > P.out 2>&1 && ok || bad "plain: $(tail -2 P.out)"
[ "$(losses Z | md5sum)" = "$(losses P | md5sum)" ] && ok || bad "distill with alpha 0 differs from lmforge train"
[ "$(losses A | head -1 | md5sum)" != "$(losses P | head -1 | md5sum)" ] && ok || bad "alpha 0.7 logged the same first loss as plain training"

"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=J --loss=jsd --beta=0.3 --hidden_layers=1:2,2:4 --hidden_loss=cosine --checkpoint_every=10 > J.out 2>&1 && ok || bad "jsd + hidden: $(tail -2 J.out)"
[ -s J/best/model.safetensors ] && python3 -c "import json,sys; sys.exit(0 if 'distill.proj' in open('J/checkpoints/step-00000020/trainer_state.safetensors','rb').read(4000).decode('latin1') else 1)" && ok ||
  bad "the projections are not in the trainer state"
"$lmforge" distill --teacher T/best "${common[@]}" --run_dir=K --student_init=every_k:2 --max_steps=5 > K.out 2>&1 && ok || bad "every_k: $(tail -2 K.out)"
grep -q '"num_hidden_layers": 2' K/best/config.json && ok || bad "every_k:2 of 4 blocks: $(grep num_hidden K/best/config.json)"

# a GGUF teacher, its linear weights kept quantized (Q8_0): its own tokenizer must match the data's
"$lmforge" quantize T/best --type q8_0 --out T.gguf --quiet > Q.out 2>&1 && ok || bad "quantize the teacher: $(tail -2 Q.out)"
"$lmforge" distill --teacher T.gguf "${common[@]}" "${student[@]}" --run_dir=G --max_steps=5 > G.out 2>&1 && [ -s G/best/model.safetensors ] && ok || bad "GGUF teacher: $(tail -2 G.out)"
"$lmforge" distill --teacher T.gguf --data=data2 --run_dir=X "${student[@]}" --quiet > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "tokenizer is not the student's" X.out && ok || bad "GGUF teacher, other tokenizer (rc $rc): $(cat X.out)"

# a teacher cache: written for the run's batches, then the student trains from it without the teacher;
# with every token kept (k = vocabulary) its losses are the teacher run's (to the logged 4 decimals)
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --temperature=2 --alpha=0.7 --write-cache=all.cache --cache_k=300 > W.out 2>&1 &&
  [ -s all.cache ] && ok || bad "write cache: $(tail -2 W.out)"
"$lmforge" distill --teacher_cache=all.cache "${common[@]}" "${student[@]}" --run_dir=CA --temperature=2 --alpha=0.7 > CA.out 2>&1 && ok || bad "distill from the cache: $(tail -2 CA.out)"
four() { grep '"event":"train"' "$1/metrics.jsonl" | python3 -c 'import json,sys; [print(round(json.loads(l)["loss"], 4)) for l in sys.stdin]'; }
[ "$(four A | md5sum)" = "$(four CA | md5sum)" ] && ok || { bad "the all-token cache's losses differ from the teacher's"; diff <(four A) <(four CA) | head -4; }
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --write-cache=top8.cache --cache_k=8 --quiet > W.out 2>&1 && ok || bad "write a top-8 cache: $(cat W.out)"
"$lmforge" distill --teacher_cache=top8.cache "${common[@]}" "${student[@]}" --run_dir=C8 --stop_after_steps=5 > C8.out 2>&1 &&
  "$lmforge" distill --resume C8 --quiet > C8b.out 2>&1 && [ "$(losses C8 | wc -l)" -eq 20 ] && ok || bad "top-8 cache, paused and resumed: $(tail -2 C8.out C8b.out)"
"$lmforge" distill --teacher_cache=top8.cache "${common[@]}" "${student[@]}" --run_dir=X --seed=7 > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "not in the cache" X.out && ok || bad "cache for another seed (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher_cache=top8.cache "${common[@]}" "${student[@]}" --run_dir=X --context=16 > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "context 32" X.out && ok || bad "cache for another context (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher_cache=top8.cache "${common[@]}" "${student[@]}" --run_dir=X --hidden_layers=1:2 > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "need the teacher" X.out && ok || bad "cache with hidden_layers (rc $rc): $(cat X.out)"
head -c 100 top8.cache > cut.cache
"$lmforge" distill --teacher_cache=cut.cache "${common[@]}" "${student[@]}" --run_dir=X > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < X.out)" -eq 1 ] && grep -q "truncated" X.out && ok || bad "truncated cache (rc $rc): $(cat X.out)"

# on-policy (GKD): half the batches continued by the student; pause and resume is bit-identical
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=OA --on_policy=0.5 --alpha=1 --loss=jsd > OA.out 2>&1 && ok || bad "on-policy: $(tail -2 OA.out)"
"$lmforge" distill --teacher T/best "${common[@]}" "${student[@]}" --run_dir=OB --on_policy=0.5 --alpha=1 --loss=jsd --stop_after_steps=7 > OB.out 2>&1 &&
  "$lmforge" distill --resume OB --quiet > OB2.out 2>&1 && ok || bad "on-policy pause/resume: $(tail -2 OB.out OB2.out)"
[ "$(losses OA | md5sum)" = "$(losses OB | md5sum)" ] && [ "$(losses OA | wc -l)" -eq 20 ] && ok || bad "resumed on-policy distillation differs"
"$lmforge" distill --teacher_cache=top8.cache "${common[@]}" "${student[@]}" --run_dir=X --on_policy=0.5 > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "on_policy needs a teacher" X.out && ok || bad "on-policy from a cache (rc $rc): $(cat X.out)"

# classification (task = classify, head = lm): a classifier teacher fine-tuned from T, a student
# fine-tuned from A's distilled LM with the teacher's label-token distribution; alpha 0 = plain
python3 - > cls.jsonl <<'PY' 2>/dev/null || awk 'BEGIN{for(i=0;i<200;i++) printf "{\"text\": \"the cat %s the fish\", \"label\": \"%s\"}\n", (i%2?"eats":"sees"), (i%2?"a":"b")}' > cls.jsonl
import json, random
r = random.Random(2)
for i in range(200):
    lab = ["a", "b"][i % 2]
    print(json.dumps({"text": f"{r.choice(['the cat', 'a dog'])} {['eats', 'sees'][i % 2]} {r.choice(['the fish', 'bread'])}", "label": lab}))
PY
"$lmforge" prepare --tokenizer tok.json --input cls.jsonl --output clsdata --val-fraction 0.2 --quiet > P.out 2>&1 && ok || bad "prepare labelled data: $(cat P.out)"
closs() { grep -E '"event":"(step|eval)"' "$1/metrics.jsonl"; }
ccom=(--task=classify --head=lm --data=clsdata --context=32 --batch_size=8 --max_steps=12 --eval_every=6 --warmup_steps=2 --lr=1e-3 --quiet)
"$lmforge" train "${ccom[@]}" --init=T/best --run_dir=TC > TC.out 2>&1 && [ -s TC/best/model.safetensors ] && ok || bad "classifier teacher: $(tail -2 TC.out)"
"$lmforge" distill "${ccom[@]}" --init=A/best --teacher=TC/best --alpha=0.5 --temperature=2 --run_dir=SC > SC.out 2>&1 && [ -s SC/best/model.safetensors ] && ok || bad "classifier distillation: $(tail -2 SC.out)"
"$lmforge" distill "${ccom[@]}" --init=A/best --teacher=TC/best --alpha=0 --run_dir=S0 > S0.out 2>&1 && "$lmforge" train "${ccom[@]}" --init=A/best --run_dir=SP > SP.out 2>&1 &&
  [ "$(closs S0 | md5sum)" = "$(closs SP | md5sum)" ] && [ "$(closs SC | md5sum)" != "$(closs SP | md5sum)" ] && [ "$(closs SP | wc -l)" -ge 3 ] && ok ||
  bad "classifier distillation: alpha 0 is not plain training, or alpha 0.5 is"
# score heads: a head = score teacher (T's width) distilled into a head = score student (A's width);
# the student folder is a classifier lmforge eval scores; alpha 0 is plain head = score training
"$lmforge" train "${ccom[@]}" --head=score --init=T/best --run_dir=TS > TS.out 2>&1 && [ -s TS/best/model.safetensors ] && ok || bad "score-head teacher: $(tail -2 TS.out)"
"$lmforge" distill "${ccom[@]}" --head=score --init=A/best --teacher=TS/best --alpha=0.5 --temperature=2 --run_dir=SS > SS.out 2>&1 &&
  grep -q ForSequenceClassification SS/best/config.json && ok || bad "score-head distillation: $(tail -2 SS.out)"
"$lmforge" eval --task classify SS/best clsdata --method head --quiet --json SS.json > /dev/null 2> SSe.out &&
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["examples"] > 0 and 0 <= j["accuracy"] <= 1' SS.json && ok ||
  bad "the distilled score-head student does not evaluate: $(cat SSe.out)"
"$lmforge" distill "${ccom[@]}" --head=score --init=A/best --teacher=TS/best --alpha=0 --run_dir=SS0 > SS0.out 2>&1 &&
  "$lmforge" train "${ccom[@]}" --head=score --init=A/best --run_dir=SSP > SSP.out 2>&1 &&
  [ "$(closs SS0 | md5sum)" = "$(closs SSP | md5sum)" ] && [ "$(closs SS | md5sum)" != "$(closs SSP | md5sum)" ] && [ "$(closs SSP | wc -l)" -ge 3 ] && ok ||
  bad "score-head distillation: alpha 0 is not plain training, or alpha 0.5 is"
"$lmforge" distill "${ccom[@]}" --head=score --init=A/best --teacher=TC/best --run_dir=X > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < X.out)" -eq 1 ] && grep -q "has no score.weight head" X.out && ok || bad "head = score from a head = lm teacher (rc $rc): $(cat X.out)"

# errors: one line each, naming the problem
"$lmforge" distill --teacher T/best --data=data2 --run_dir=X "${student[@]}" --quiet > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < X.out)" -eq 1 ] && grep -q "tokenizer is not the student's" X.out && ok || bad "tokenizer mismatch (rc $rc): $(cat X.out)"
"$lmforge" distill --data=data --run_dir=X > X.out 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "no teacher" X.out && ok || bad "missing teacher (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher nowhere --data=data --run_dir=X > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && [ "$(wc -l < X.out)" -eq 1 ] && grep -q "teacher" X.out && ok || bad "missing teacher folder (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher T/best --data=data --loss=kld > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "loss must be kl, rkl or jsd" X.out && ok || bad "bad loss (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher T/best --data=data --run_dir=X --hidden_layers=2-4 "${student[@]}" > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "STUDENT:TEACHER" X.out && ok || bad "bad hidden_layers (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher T/best --data=data --run_dir=X --hidden_layers=3:2 "${student[@]}" > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "out of range" X.out && ok || bad "hidden layer out of range (rc $rc): $(cat X.out)"
"$lmforge" distill --teacher T/best --data=data --run_dir=X --student_init=every_k:0 > X.out 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "every_k:K" X.out && ok || bad "bad student_init (rc $rc): $(cat X.out)"

echo "distill_cli_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
