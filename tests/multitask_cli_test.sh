#!/usr/bin/env bash
# lmforge train with a tasks list and lmforge eval on a multi-task shard, end to end on data and a
# byte-level BPE made here: per-task lines, task_eval events and the summary in metrics.jsonl, a
# config file with the tasks as a JSON array, tasks = auto, one eval row per task, --help, and bad
# task lists refused with a message. Usage: multitask_cli_test.sh LMFORGE
set -u
lmforge=$1
export OMP_NUM_THREADS=1
d=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$d"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
w = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
with open(f"{d}/lm.jsonl", "w") as f, open(f"{d}/cls.jsonl", "w") as g, open(f"{d}/mixed.jsonl", "w") as h, open(f"{d}/corpus.txt", "w") as c:
    for i in range(40):
        t = " ".join(w[(i + k) % 6] for k in range(20))
        f.write(json.dumps({"text": t}) + "\n"); c.write(t + "\n")
    for i in range(120):
        lab = ["yes", "no"][i % 2]
        t = f"stone {w[i % 6]} {'red' if lab == 'yes' else 'blue'}"
        g.write(json.dumps({"text": t, "label": lab}) + "\n"); c.write(t + " " + lab + "\n")
    for i in range(60):
        h.write(json.dumps({"task": "qa", "prompt": f"q {w[i % 6]} {i}", "completion": f" {w[(i + 1) % 6]}"}) + "\n")
        h.write(json.dumps({"task": "say", "prompt": f"say {i}", "completion": f" {w[i % 6]} {w[(i + 2) % 6]}"}) + "\n")
PY
"$lmforge" tokenizer train --vocab-size 300 --input "$d/corpus.txt" --output "$d/tok.json" >/dev/null 2>&1
for s in lm cls mixed; do "$lmforge" prepare --tokenizer "$d/tok.json" --input "$d/$s.jsonl" --output "$d/$s" --val-fraction 0.25 --quiet; done
small=(--tokenizer="$d/tok.json" --d_model=32 --n_head=4 --n_kv_head=2 --n_layer=1 --d_ff=64 --context=24 --batch_size=8
       --eval_batches=2 --threads=1 --lr=3e-3 --warmup_steps=2)
cat > "$d/cfg.json" <<JSON
{"tasks": [{"name": "cls", "data": "$d/cls", "kind": "classify", "prefix": "tag: "},
           {"name": "lm", "data": "$d/lm", "kind": "lm", "weight": 0.5}],
 "task_weighting": "uncertainty", "mix_temperature": 2, "early_stop_metric": "task:cls:macro_f1"}
JSON
"$lmforge" train --config "$d/cfg.json" "${small[@]}" --run_dir="$d/run" --max_steps=20 --eval_every=10 > "$d/train.txt" 2>&1
check 'grep -q "task cls .*accuracy .*macro-F1" "$d/train.txt" && grep -q "task lm .*perplexity" "$d/train.txt"' "no per-task lines: $(tail -5 "$d/train.txt")"
check 'grep -q "multi-task criterion (task:cls:macro_f1)" "$d/train.txt"' "no criterion line"
check 'python3 - "$d/run/metrics.jsonl" <<PY
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
te = [e for e in ev if e["event"] == "task_eval"]
assert len(te) == 6 and {e["task"] for e in te} == {"cls", "lm"}, len(te)
stop = [e for e in ev if e["event"] == "stop"][0]
assert set(stop["tasks"]) == {"cls", "lm"} and "macro_f1" in stop["tasks"]["cls"]
tr = [e for e in ev if e["event"] == "train"][-1]
assert set(tr["task_weight"]) == {"cls", "lm"}
start = [e for e in ev if e["event"] == "start"][0]
assert abs(sum(t["rate"] for t in start["tasks"]) - 1) < 1e-6
# an eval event carries the mean task loss as val_loss, and the criterion (minus the cls macro-F1) beside it
for e in [e for e in ev if e["event"] == "eval"]:
    tasks = [t for t in te if t["step"] == e["step"]]
    w = {"cls": 1.0, "lm": 0.5}
    mean = sum(w[t["task"]] * t["loss"] for t in tasks) / sum(w[t["task"]] for t in tasks)
    f1 = [t["macro_f1"] for t in tasks if t["task"] == "cls"][0]
    assert abs(e["val_loss"] - mean) < 1e-4 * max(1, mean), (e, mean)
    assert e["criterion_metric"] == "task:cls:macro_f1" and abs(e["criterion"] + f1) < 1e-6, (e, f1)
    assert "best_criterion" in e and "best_val_loss" not in e, e
PY' "metrics.jsonl lacks the per-task events or summary, or an eval event mixes the criterion with the loss"
"$lmforge" train "${small[@]}" --data="$d/mixed" --tasks=auto --run_dir="$d/run2" --max_steps=6 --eval_every=3 > "$d/auto.txt" 2>&1
check 'grep -q "task qa " "$d/auto.txt" && grep -q "task say " "$d/auto.txt"' "tasks=auto: $(tail -3 "$d/auto.txt")"
"$lmforge" eval "$d/run2/best" "$d/mixed/val.bin" --tokenizer "$d/tok.json" > "$d/eval.txt" 2>&1
check 'grep -q "^task *qa .*loss" "$d/eval.txt" && grep -q "^task *say .*loss" "$d/eval.txt"' "eval has no per-task rows: $(tail -3 "$d/eval.txt")"
"$lmforge" eval "$d/run2/best" "$d/mixed/val.bin" --tokenizer "$d/tok.json" --json > "$d/eval.json" 2>&1
check '[ "$(grep -c "\"task\":" "$d/eval.json")" = 2 ]' "eval --json has no per-task lines"
"$lmforge" train --help > "$d/help.txt" 2>&1
check 'grep -q -- "--task_weighting" "$d/help.txt" && grep -q -- "--mix_temperature" "$d/help.txt"' "--help lacks the multi-task keys"
"$lmforge" train "${small[@]}" --tasks='[{"name":"x"}]' --run_dir="$d/bad" > "$d/bad1.txt" 2>&1
check 'grep -q "needs .data." "$d/bad1.txt"' "task without data: $(cat "$d/bad1.txt")"
"$lmforge" train "${small[@]}" --tasks="[{\"name\":\"x\",\"data\":\"$d/lm\"}]" --task_weighting=sometimes --run_dir="$d/bad" > "$d/bad2.txt" 2>&1
check 'grep -q "task_weighting must be" "$d/bad2.txt"' "bad weighting: $(cat "$d/bad2.txt")"
"$lmforge" train "${small[@]}" --tasks="[{\"name\":\"x\",\"data\":\"$d/nowhere\"}]" --run_dir="$d/bad" > "$d/bad3.txt" 2>&1
check 'grep -q "nowhere" "$d/bad3.txt" && ! grep -qi "assert\|segmentation" "$d/bad3.txt"' "missing folder: $(cat "$d/bad3.txt")"
[ $fail = 0 ] && echo "multitask_cli: all checks passed"
exit $fail
