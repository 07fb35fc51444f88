"""Zero-shot label scoring: lmforge against lm-evaluation-harness on the same model, examples and
prompt. lm-eval runs offline (`hf` backend on a local Hugging Face folder, add_bos_token=False,
a local JSONL multiple_choice task made from bench/lm_eval_task/lmforge_classify.yaml,
bootstrap_iters=0) and reports acc and acc_norm; `lmforge eval --task classify --method score
--json` runs on the same records with the same prompt ("{text}\\nlabel:" + " {label}") and label
order. Both numbers are printed side by side, with the largest per-example difference of the
label log-likelihoods.

Usage: bench/lm_eval_compare.py MODEL_DIR DATA.jsonl [--limit N] [--lmforge build/lmforge]
                                [--batch-size B] [--device cpu]
Run with bench/.venv/bin/python (bench/venv.sh: bench_lm_eval installs lm-eval + transformers)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--limit", type=int, default=50)
ap.add_argument("--lmforge", default=os.path.join(here, "..", "build", "lmforge"))
ap.add_argument("--batch-size", type=int, default=8)
ap.add_argument("--device", default="cpu")
a = ap.parse_args()

records, labels = [], []
meta = os.path.join(os.path.dirname(os.path.abspath(a.data)), "meta.json")
if os.path.exists(meta):
    labels = list(json.load(open(meta)).get("labels", []))
with open(a.data) as f:
    for line in f:
        if not line.strip():
            continue
        r = json.loads(line)
        lab = str(r["label"])
        if lab not in labels:
            labels.append(lab)
        records.append({"text": r["text"], "label": lab})
        if len(records) >= a.limit:
            break
for r in records:
    r["gold"] = labels.index(r["label"])

import lm_eval  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    data = os.path.join(d, "data.jsonl")
    with open(data, "w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tpl = open(os.path.join(here, "lm_eval_task", "lmforge_classify.yaml")).read()
    tdir = os.path.join(d, "tasks")
    os.makedirs(tdir)
    with open(os.path.join(tdir, "lmforge_classify.yaml"), "w") as f:
        f.write(tpl.replace("__DATA__", json.dumps(data)).replace("__CHOICES__", json.dumps(labels)))
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={os.path.abspath(a.model)},add_bos_token=False,dtype=float32",
        tasks=["lmforge_classify"],
        task_manager=TaskManager(include_path=tdir),
        bootstrap_iters=0,
        batch_size=a.batch_size,
        device=a.device,
        log_samples=True,
    )
    res = out["results"]["lmforge_classify"]
    le_acc, le_norm = res["acc,none"], res["acc_norm,none"]
    samples = out["samples"]["lmforge_classify"]
    le_ll = {s["doc_id"]: [float(x[0]) for x in s["filtered_resps"]] for s in samples}

    js = os.path.join(d, "lmforge.json")
    cmd = [a.lmforge, "eval", "--task", "classify", a.model, data, "--method", "score", "--labels", ",".join(labels),
           "--json", js, "--per-example", "--quiet"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    lf = json.load(open(js))
    diff = max(abs(lf["log_likelihoods"][i][k] - le_ll[i][k]) for i in range(len(records)) for k in range(len(labels)))

print(f"model {a.model}, {len(records)} examples of {a.data}, {len(labels)} labels, prompt '{{text}}\\nlabel:' + ' {{label}}'")
print(f"{'':22} {'acc':>8} {'acc_norm':>9}")
print(f"{'lm-evaluation-harness':22} {le_acc:8.4f} {le_norm:9.4f}   (lm_eval {lm_eval.__version__ if hasattr(lm_eval, '__version__') else '?'})")
print(f"{'lmforge':22} {lf['acc']:8.4f} {lf['acc_norm']:9.4f}   (macro F1 {lf['macro_f1']:.4f})")
print(f"largest |log-likelihood difference| over examples x labels: {diff:.2e} nats")
sys.exit(0 if abs(le_acc - lf["acc"]) < 1e-9 and abs(le_norm - lf["acc_norm"]) < 1e-9 else 1)
