#!/usr/bin/env bash
# lmforge tune end to end: a built-in objective with two worker processes, resume of a study with
# more trials, tune show, bad spaces and keys; then a small training study with median pruning
# whose best configuration trains again with lmforge train --config.
set -u
lmforge=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

"$lmforge" tune --objective branin --trials 30 --workers 2 --study B > b.out 2>&1 && ok || bad "branin study: $(tail -3 b.out)"
grep -q "30 trials (30 complete, 0 pruned, 0 failed, 0 running)" b.out && ok || bad "branin: trial counts: $(grep study b.out)"
grep -q "parameter importance" b.out && ok || bad "no importance table"
# resume: the same command with more trials adds them, numbered on
"$lmforge" tune --objective branin --trials 40 --workers 2 --study B --json > b2.out 2>&1 && ok || bad "resume: $(tail -2 b2.out)"
grep -q '"trials":40,"complete":40' b2.out && ok || bad "resume to 40: $(cat b2.out)"
"$lmforge" tune show B --top 3 > show.out 2>&1 && grep -q "^ *[0-9]* *complete" show.out && ok || bad "tune show: $(cat show.out)"
[ "$(grep -c complete show.out)" -ge 3 ] && ok || bad "tune show --top 3 printed $(grep -c complete show.out) rows"
# another sampler on the same study is refused with a hint
"$lmforge" tune --objective branin --trials 40 --study B --sampler random > r.out 2>&1 && bad "other sampler accepted" || { grep -q "other options" r.out && ok || bad "other sampler: $(cat r.out)"; }
# two lmforge tune commands started by hand on one new study: one set of trials, no lock errors
"$lmforge" tune --objective hartmann6 --trials 50 --study H --quiet > h1.out 2>&1 & p1=$!
"$lmforge" tune --objective hartmann6 --trials 50 --study H --quiet > h2.out 2>&1 & p2=$!
wait $p1 && wait $p2 && ok || bad "two tune commands on one study: $(cat h1.out h2.out | grep -v '^ ' | head -4)"
grep -qi "locked\|busy" h1.out h2.out && bad "lock errors: $(grep -i 'locked\|busy' h1.out h2.out | head -2)" || ok
"$lmforge" tune show H --top 100 > h.out 2>&1 && grep -q "50 trials (50 complete, 0 pruned, 0 failed, 0 running)" h.out && ok || bad "two commands: $(grep study h.out)"
[ "$(grep -cE '^ +[0-9]+  complete' h.out)" -eq 50 ] && [ "$(grep -E '^ +[0-9]+  complete' h.out | awk '{print $1}' | sort -n | uniq | wc -l)" -eq 50 ] && ok || bad "trial numbers not 50 distinct"
"$lmforge" tune show nowhere > n.out 2>&1 && bad "show of a missing study succeeded" || { grep -q "no study here" n.out && ok || bad "missing study: $(cat n.out)"; }

# bad spaces: one line naming the file
echo '{"lr": {"type": "float", "low": 0.1, "high": 0.01}}' > bad1.json
echo '{"no_such_key": {"type": "float", "low": 0.1, "high": 1}}' > bad2.json
"$lmforge" tune --space bad1.json --trials 2 --study X > e1.out 2>&1 && bad "bad bounds accepted" || { grep -q 'bad1.json.*"low" <= "high"' e1.out && ok || bad "bad bounds: $(cat e1.out)"; }
"$lmforge" tune --space bad2.json --trials 2 --study X > e2.out 2>&1 && bad "unknown key accepted" || { grep -q "bad2.json: 'no_such_key'" e2.out && ok || bad "unknown key: $(cat e2.out)"; }
[ "$(wc -l < e2.out)" -eq 1 ] && ok || bad "the unknown-key error is $(wc -l < e2.out) lines"

# a small training study: median pruning after 2 complete trials
awk 'BEGIN{srand(3); s[0]="the cat";s[1]="a dog";s[2]="my sister";v[0]="sees";v[1]="eats";v[2]="likes";o[0]="the fish";o[1]="bread";o[2]="a bird";
     for(i=0;i<3000;i++) printf "%s %s %s.\n", s[int(rand()*3)], v[int(rand()*3)], o[int(rand()*3)]}' > corpus.txt
"$lmforge" tokenizer train --vocab-size 300 --input corpus.txt --output tok.json --quiet || { echo "FAIL: tokenizer train"; exit 1; }
"$lmforge" prepare --tokenizer tok.json --input corpus.txt --delimiter '\n' --output data --val-fraction 0.1 --quiet || { echo "FAIL: prepare"; exit 1; }
cat > space.json <<'JSON'
{"lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": true},
 "warmup_steps": {"type": "int", "low": 0, "high": 10, "step": 5},
 "weight_decay": {"type": "float", "low": 0, "high": 0.2},
 "dropout": {"type": "float", "low": 0, "high": 0.2}}
JSON
common=(--data=data --max_steps=20 --min_lr=1e-5 --log_every=1 --eval_every=5 --eval_batches=2 --checkpoint_every=0 --batch_size=4 --context=32
        --d_model=32 --n_layer=1 --n_head=2 --n_kv_head=2 --d_ff=64 --threads=1)
"$lmforge" tune --space space.json --trials 6 --study S --pruner median --prune-startup 2 --metric val_ppl "${common[@]}" > s.out 2>&1 \
  && ok || bad "training study: $(tail -3 s.out)"
n_done=$(grep -c '^trial [0-9]*' s.out)
[ "$n_done" -eq 6 ] && ok || bad "training study: $n_done trial lines, expected 6"
grep -q "6 trials (" s.out && ok || bad "training study summary: $(grep study s.out)"
for d in S/trials/trial-0000 S/trials/trial-0005; do
  [ -s "$d/metrics.jsonl" ] && [ -s "$d/train_config.json" ] && ok || bad "$d: no run folder with metrics"
done
grep -q "pruned at step" s.out && ok || bad "no trial pruned (median pruning after 2 complete trials, 6 trials)"
# a pruned trial stops at the step it says
if grep -q "pruned at step" s.out; then
  t=$(grep -m1 "pruned at step" s.out | sed 's/^trial \([0-9]*\): pruned at step \([0-9]*\).*/\1 \2/')
  set -- $t
  last=$(grep '"event":"train"' "S/trials/trial-$(printf %04d "$1")/metrics.jsonl" | tail -1 | sed 's/.*"step":\([0-9]*\).*/\1/')
  [ "$last" = "$2" ] && ok || bad "trial $1 said pruned at step $2 but trained to step $last"
fi
[ -s S/best_config.json ] && ok || bad "no best_config.json"
"$lmforge" config show --config S/best_config.json > cfg.out 2>&1 && grep -q '"run_dir": "S/best-run"' cfg.out && ok || bad "best_config.json does not load: $(head -3 cfg.out)"
best_lr=$(sed -n 's/.*"lr": \([^,]*\),/\1/p' S/best_config.json)
[ -n "$best_lr" ] && awk -v x="$best_lr" 'BEGIN{exit !(x >= 1e-4 && x <= 3e-2)}' && ok || bad "best lr '$best_lr' outside the space"
"$lmforge" tune show S > ss.out 2>&1 && grep -q "val_ppl" ss.out && ok || bad "tune show S: $(head -3 ss.out)"

# ASHA (reduction factor 2: rungs at steps 5, 10, 20): completes, prunes, fails nothing
"$lmforge" tune --space space.json --trials 8 --study A --pruner asha --reduction-factor 2 "${common[@]}" > a.out 2>&1 \
  && grep -q "8 trials ([0-9]* complete, [1-9][0-9]* pruned, 0 failed, 0 running)" a.out && ok || bad "asha study: $(grep -E 'study|FAIL|error' a.out)"

echo "tune cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
