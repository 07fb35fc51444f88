"""LoRA adapters move both ways between lmforge and Hugging Face PEFT (peft 0.12, PEFT's own
adapter_config.json + adapter_model.safetensors layout), on the tiny GPT-2 (Conv1D, fan_in_fan_out)
and Llama fixtures:
 (a) an adapter trained by `lmforge train` for a few steps (B non-zero; LoRA q/v, and rsLoRA + DoRA
     on all linears) loads in PEFT over the transformers model with the same logits as lmforge;
 (b) adapters made by PEFT with non-zero B and a perturbed magnitude (LoRA, rsLoRA, DoRA; on q/v or
     c_attn and on all linears) give PEFT's logits in lmforge (`lmforge verify --adapter`), two
     adapters at once too;
 (c) `lmforge lora merge` gives the unmerged logits, and the merged folder loads in transformers.
Tolerance 1e-4 (relative to max(1, max|logit|)). Usage: peft_test.py LMFORGE FIXTURES.
Prints 'skipped: ...' (exit 77) without torch + transformers + peft."""
import copy
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers + peft not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
lmforge, fixtures = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
fails = checks = 0
TOL = 1e-4


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


def rel(a, b):
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def verify(d, model_dir, ids, logits, adapters, what):
    ref = os.path.join(d, "ref.safetensors")
    save_file({"input_ids": ids.to(torch.int32), "logits": logits.detach().contiguous()}, ref)
    cmd = [lmforge, "verify", model_dir, ref, "--tol", str(TOL)] + (["--adapter", adapters] if adapters else [])
    v = subprocess.run(cmd, capture_output=True, text=True)
    check(v.returncode == 0 and "verify: PASS" in v.stdout, f"{what}: lmforge verify: {v.stdout[-400:]} {v.stderr[-400:]}")


def base_model(fx):
    m = AutoModelForCausalLM.from_pretrained(fx, torch_dtype=torch.float32)
    m.train(False)
    return m


with tempfile.TemporaryDirectory() as d:
    run = lambda *a: subprocess.run([lmforge, *a], check=True, capture_output=True, cwd=d)
    corpus = os.path.join(d, "c.txt")
    with open(corpus, "w") as f:
        for i in range(600):
            f.write(f"the {['cat', 'dog', 'bird'][i % 3]} number {i % 17} sat on the {['mat', 'log'][i % 2]}.\n")
    run("tokenizer", "train", "--vocab-size", "300", "--input", corpus, "--output", "tok.json", "--quiet")
    run("prepare", "--tokenizer", "tok.json", "--input", corpus, "--delimiter", "\\n", "--output", "data", "--quiet")

    for arch in ["gpt2", "llama"]:
        fx = os.path.join(fixtures, f"hf_{arch}_tiny")
        if not os.path.isdir(fx):
            print(f"skipped: fixture {fx} missing")
            sys.exit(77)
        base = base_model(fx)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, 300, (2, 10), generator=g)
        with torch.no_grad():
            base_logits = base(input_ids=ids).logits
        qv = ["c_attn"] if arch == "gpt2" else ["q_proj", "v_proj"]

        # (b) + (c): PEFT makes the adapter
        made = []
        for variant in ["lora", "rslora", "dora"]:
            for targets in ["qv", "all"]:
                what = f"{arch} PEFT {variant} {targets}"
                torch.manual_seed(hash(what) % 1000)
                cfg = LoraConfig(r=4, lora_alpha=6, lora_dropout=0.1, task_type="CAUSAL_LM",
                                 target_modules=qv if targets == "qv" else "all-linear",
                                 use_rslora=variant == "rslora", use_dora=variant == "dora",
                                 init_lora_weights=False, fan_in_fan_out=arch == "gpt2")
                pm = get_peft_model(copy.deepcopy(base), cfg)
                with torch.no_grad():
                    for n, p in pm.named_parameters():
                        if "lora_B" in n:
                            check(p.abs().max() > 0, f"{what}: PEFT's B is zero ({n})")
                        if "lora_magnitude_vector" in n:
                            p.mul_(1 + 0.3 * torch.randn_like(p))
                pm.train(False)
                with torch.no_grad():
                    logits = pm(input_ids=ids).logits
                check(rel(logits, base_logits) > 1e-3, f"{what}: the adapter does not change the logits")
                ad = os.path.join(d, f"{arch}_{variant}_{targets}")
                pm.save_pretrained(ad)
                verify(d, fx, ids, logits, ad, what + " (unmerged in lmforge)")
                merged = ad + "_merged"
                run("lora", "merge", fx, ad, merged)
                verify(d, merged, ids, logits, None, what + " (merged by lmforge lora merge)")
                mm = base_model(merged)
                with torch.no_grad():
                    e = rel(mm(input_ids=ids).logits, logits)
                check(e <= TOL, f"{what}: transformers on the merged folder differs from PEFT unmerged by {e:.3g}")
                made.append((ad, logits))
        # two adapters at once (LoRA q/v + DoRA all), both active in PEFT and in lmforge
        a1, a2 = made[0][0], made[5][0]
        pm = PeftModel.from_pretrained(copy.deepcopy(base), a1, adapter_name="one")
        pm.load_adapter(a2, adapter_name="two")
        pm.base_model.set_adapter(["one", "two"])
        pm.train(False)
        with torch.no_grad():
            logits = pm(input_ids=ids).logits
        verify(d, fx, ids, logits, f"{a1},{a2}", f"{arch} two adapters")
        # a scale per adapter: DIR:0 is the base
        verify(d, fx, ids, base_logits, f"{a1}:0", f"{arch} adapter at scale 0")

        # (a) lmforge trains the adapter, PEFT loads it
        for name, extra in [("lora_qv", []), ("dora_rslora_all", ["--lora_targets=all", "--lora_dora", "--lora_rslora"])]:
            what = f"{arch} lmforge-trained {name}"
            rd = os.path.join(d, f"run_{arch}_{name}")
            run("train", "--data=data", f"--init={fx}", "--tokenizer=tok.json", f"--run_dir={rd}", "--lora_r=4",
                "--lora_alpha=8", "--lora_dropout=0.05", "--max_steps=4", "--eval_every=0", "--batch_size=4",
                "--context=16", "--lr=5e-2", "--warmup_steps=0", "--quiet", *extra)
            ck = os.path.join(rd, open(os.path.join(rd, "latest")).read().strip())
            check(not os.path.exists(os.path.join(ck, "model.safetensors")), f"{what}: the checkpoint holds the base model")
            pm = PeftModel.from_pretrained(copy.deepcopy(base), ck)
            pm.train(False)
            nb = [float(p.abs().max()) for n, p in pm.named_parameters() if "lora_B" in n]
            check(len(nb) > 0 and min(nb) > 0, f"{what}: PEFT sees {len(nb)} lora_B tensors, smallest max|B| {min(nb or [0])}")
            with torch.no_grad():
                logits = pm(input_ids=ids).logits
            check(rel(logits, base_logits) > 1e-4, f"{what}: the trained adapter does not change PEFT's logits")
            verify(d, fx, ids, logits, ck, what + " (PEFT's logits vs lmforge)")

print(f"peft_test: {checks} checks, {fails} failed")
sys.exit(1 if fails else 0)
