"""A sequence-classification head exported by lmforge loads in transformers as
GPT2ForSequenceClassification / LlamaForSequenceClassification with the same logits.
For each tiny fixture (hf_gpt2_tiny, hf_llama_tiny), `test_seqcls --export` attaches a random
3-label score.weight, exports the folder and writes lmforge's logits on right-padded rows of
different lengths (pad_token_id = vocab - 1); transformers must compute the same logits (1e-4)
and the same cross-entropy, and read num_labels / id2label from config.json.
Usage: seqcls_test.py TEST_SEQCLS FIXTURES. Prints 'skipped: ...' (exit 77) without torch + transformers."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from transformers import AutoModelForSequenceClassification
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
exe, fixtures = sys.argv[1], sys.argv[2]
fails = checks = 0


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


want_arch = {"hf_gpt2_tiny": "GPT2ForSequenceClassification", "hf_llama_tiny": "LlamaForSequenceClassification"}
for name, arch in want_arch.items():
    src = os.path.join(fixtures, name)
    if not os.path.isdir(src):
        print(f"skipped: fixture missing ({src})")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cls")
        subprocess.run([exe, "--export", src, out], check=True)
        ref = json.load(open(os.path.join(out, "lmforge_logits.json")))
        cfg = json.load(open(os.path.join(out, "config.json")))
        check(cfg["architectures"] == [arch], f"{name}: architectures {cfg['architectures']}")
        model = AutoModelForSequenceClassification.from_pretrained(out, torch_dtype=torch.float32)
        model.eval()
        check(type(model).__name__ == arch, f"{name}: transformers made a {type(model).__name__}")
        check(model.config.num_labels == 3 and model.config.id2label[2] == "LABEL_2", f"{name}: num_labels/id2label {model.config.id2label}")
        ids = torch.tensor(ref["input_ids"], dtype=torch.long)
        mask = (ids != model.config.pad_token_id).long()
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=mask, labels=torch.tensor(ref["labels"]))
        got, want = o.logits.numpy(), torch.tensor(ref["logits"]).numpy()
        err = float(abs(got - want).max())
        check(err <= 1e-4, f"{name}: logits differ by {err:.3g}\n transformers {got}\n lmforge {want}")
        lerr = abs(float(o.loss) - ref["loss"])
        check(lerr <= 1e-4, f"{name}: loss transformers {float(o.loss):.6f} vs lmforge {ref['loss']:.6f}")
        print(f"{name}: {arch} logits within {err:.2e} of lmforge's, loss {float(o.loss):.6f} vs {ref['loss']:.6f}")

print(f"seqcls_test: {checks} checks, {fails} failed")
sys.exit(1 if fails else 0)
