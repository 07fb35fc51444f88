"""TensorBoard's own reader reads back what lmforge wrote. Usage: tensorboard_read.py LMFORGE.
Prints 'skipped: ...' (exit 77) when the tensorboard package is not installed."""
import json
import os
import subprocess
import sys
import tempfile

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except Exception:
    print("skipped: python package 'tensorboard' not installed")
    sys.exit(77)

lmforge = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "c.txt")
    with open(corpus, "w") as f:
        f.write("the quick brown fox jumps over the lazy dog.\n" * 300)
    run = lambda *a: subprocess.run([lmforge, *a], check=True, capture_output=True, cwd=d)
    run("tokenizer", "train", "--vocab-size", "280", "--input", corpus, "--output", "tok.json", "--quiet")
    run("prepare", "--tokenizer", "tok.json", "--input", corpus, "--delimiter", "\\n", "--output", "data", "--quiet")
    run("train", "--data=data", "--run_dir=r", "--max_steps=12", "--log_every=3", "--eval_every=6", "--batch_size=2",
        "--context=16", "--d_model=16", "--n_layer=1", "--n_head=2", "--n_kv_head=1", "--d_ff=32", "--tensorboard=tb",
        "--quiet")
    ours = [json.loads(l) for l in open(os.path.join(d, "r", "metrics.jsonl"))]
    acc = EventAccumulator(os.path.join(d, "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    fails = 0
    for tag, key, event in [("train/loss", "loss", "train"), ("train/lr", "lr", "train"), ("val/loss", "val_loss", "eval")]:
        got = {e.step: e.value for e in acc.Scalars(tag)} if tag in tags else {}
        want = {e["step"]: e[key] for e in ours if e["event"] == event}
        same = got.keys() == want.keys() and all(abs(got[s] - want[s]) <= 1e-5 * max(1, abs(want[s])) for s in want)
        print(f"{tag}: {len(got)} values read by tensorboard, {'match' if same else 'DIFFER'} metrics.jsonl")
        fails += not same
    print(f"{3 - fails} passed, {fails} failed")
    sys.exit(1 if fails else 0)
