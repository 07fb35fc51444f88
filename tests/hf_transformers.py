"""Checkpoints written by lmforge load in Hugging Face transformers and compute the same thing.
For a GPT-2 and a Llama model trained from scratch by `lmforge train`, transformers loads RUN/best
(config.json + model.safetensors), computes logits, loss and every parameter gradient on a batch,
saves them as a reference, and `lmforge verify` must PASS against it; transformers'
PreTrainedTokenizerFast must also encode like lmforge with the saved tokenizer.json.
Usage: hf_transformers.py LMFORGE. Prints 'skipped: ...' (exit 77) without torch + transformers."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
lmforge = sys.argv[1]
fails = checks = 0


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "c.txt")
    with open(corpus, "w") as f:
        for i in range(3000):
            f.write(f"the {['cat', 'dog', 'bird'][i % 3]} number {i % 17} sat on the {['mat', 'log'][i % 2]}.\n")
    run = lambda *a: subprocess.run([lmforge, *a], check=True, capture_output=True, cwd=d)
    run("tokenizer", "train", "--vocab-size", "320", "--input", corpus, "--output", "tok.json", "--quiet")
    run("prepare", "--tokenizer", "tok.json", "--input", corpus, "--delimiter", "\\n", "--output", "data", "--quiet")
    for arch, extra in [("gpt2", ["--n_kv_head=4"]), ("llama", ["--n_kv_head=2", "--tie_embeddings=false"])]:
        rd = os.path.join(d, arch)
        run("train", "--data=data", f"--run_dir={arch}", f"--arch={arch}", "--max_steps=20", "--eval_every=10",
            "--batch_size=4", "--context=32", "--d_model=32", "--n_layer=2", "--n_head=4", "--d_ff=64", *extra, "--quiet")
        model_dir = os.path.join(rd, "best")
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        model.train(False)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=g)
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        ref = {"input_ids": ids.to(torch.int32), "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1)}
        for name, p in model.named_parameters():
            if p.grad is not None:
                ref["grad." + name] = p.grad.detach().contiguous()
        ref_path = os.path.join(d, f"{arch}_ref.safetensors")
        save_file(ref, ref_path)
        v = subprocess.run([lmforge, "verify", model_dir, ref_path], capture_output=True, text=True)
        last = v.stdout.strip().splitlines()[-1] if v.stdout.strip() else v.stderr.strip()
        ngrad = sum(1 for k in ref if k.startswith("grad."))
        print(f"{arch}: transformers {transformers.__version__} loaded lmforge's checkpoint; lmforge verify "
              f"against its logits, loss and {ngrad} gradients: {last}")
        check(v.returncode == 0 and last == "verify: PASS", f"{arch}: {v.stdout[-600:]}{v.stderr}")
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
        for text in ["the cat sat on the mat.", "number 16 sat, naïve café 😀", " two  spaces\n"]:
            ours = json.loads(subprocess.run([lmforge, "tokenizer", "encode", "--tokenizer", os.path.join(model_dir, "tokenizer.json")],
                                             input=text.encode(), capture_output=True, check=True).stdout)
            check(tok.encode(text) == ours, f"{arch}: transformers tokenizer {tok.encode(text)} vs lmforge {ours} for {text!r}")

print(f"{checks - fails} passed, {fails} failed")
sys.exit(1 if fails else 0)
