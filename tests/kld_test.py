"""`lmforge eval MODEL DATA --kld-base BASE` against NumPy over transformers' logits.
A small random Llama (transformers, saved as a Hugging Face folder) is the base, a copy with every
weight perturbed is the "quantized" model; the data is a token shard made by `lmforge prepare`.
transformers computes both models' logits over the same windows (plain eval's sliding windows,
and llama-perplexity's chunks with --chunks), NumPy the KL divergence KL(P_base || P_model) per
token in float64 from log-softmax, and the reported mean, median, 90/95/99th percentiles and
maximum KLD, same-top-token share and both perplexities must agree within 1e-5 relative (the
per-token values of --kld-out are compared too, and the base's perplexity with plain eval's).
The base against itself gives KLD 0 and 100 % same top; a base with another vocabulary size or
another tokenizer is refused with a one-line error.
Usage: kld_test.py LMFORGE. Exit 77 (skipped) without torch + transformers + numpy."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + transformers not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
lmforge = sys.argv[1]
fails = checks = 0
TOL = 1e-5


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


def lf(*args):
    return subprocess.run([lmforge, *args], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))


def read_shard(path):
    """tokens and per-token target mask of an lmforge shard (src/data/shard.c's header)"""
    b = open(path, "rb").read()
    assert b[:8] == b"LFSHARD\0", path
    tb = int.from_bytes(b[12:16], "little")
    n = int.from_bytes(b[16:24], "little")
    off_tok = int.from_bytes(b[48:56], "little")
    off_mask = int.from_bytes(b[64:72], "little")
    ids = np.frombuffer(b, dtype=np.uint16 if tb == 2 else np.uint32, count=n, offset=off_tok).astype(np.int64)
    mask = np.frombuffer(b, dtype=np.uint8, count=n, offset=off_mask) if off_mask else np.ones(n, np.uint8)
    return ids, mask


def windows(n, T, stride, chunks):
    """(begin, end, first): inputs ids[begin:end], positions first..end-1 predict ids[i+1]"""
    if chunks:
        return [(b, b + T - 1, b + T // 2) for b in range(0, n - T + 1, T)]
    out, begin, scored_to = [], 0, 0
    while scored_to + 1 < n:
        end = min(begin + T, n - 1)
        out.append((begin, end, max(begin, scored_to)))
        scored_to = end
        begin += stride
    return out


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@torch.no_grad()
def reference(base, model, ids, mask, T, stride, chunks):
    pos, kl, nll_b, nll_q, top_b, top_q = [], [], [], [], [], []
    for begin, end, first in windows(len(ids), T, stride, chunks):
        x = torch.tensor(ids[begin:end])[None]
        lb = log_softmax(base(input_ids=x, use_cache=False).logits[0].numpy())
        lq = log_softmax(model(input_ids=x, use_cache=False).logits[0].numpy())
        for i in range(first, end):
            if not mask[i + 1]:
                continue
            r, t = i - begin, ids[i + 1]
            pos.append(i)
            kl.append(float((np.exp(lb[r]) * (lb[r] - lq[r])).sum()))
            nll_b.append(-lb[r, t])
            nll_q.append(-lq[r, t])
            top_b.append(int(lb[r].argmax()))
            top_q.append(int(lq[r].argmax()))
    kl = np.array(kl)
    return dict(pos=np.array(pos), kld=kl, kld_mean=kl.mean(), kld_median=np.median(kl), kld_p90=np.percentile(kl, 90),
                kld_p95=np.percentile(kl, 95), kld_p99=np.percentile(kl, 99), kld_max=kl.max(),
                same_top=float(np.mean(np.array(top_b) == np.array(top_q))), ppl=float(np.exp(np.mean(nll_q))),
                ppl_base=float(np.exp(np.mean(nll_b))), count=len(kl))


def save_llama(path, cfg, seed, tok, noise=0.0):
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg).eval()
    if noise:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(noise * torch.randn(p.shape, generator=g))
    m.save_pretrained(path, safe_serialization=True)
    shutil.copy(tok, os.path.join(path, "tokenizer.json"))
    return m


with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "c.txt")
    with open(corpus, "w") as f:
        for i in range(3000):
            f.write(f"the {['cat', 'dog', 'bird'][i % 3]} number {i % 17} sat on the {['mat', 'log'][i % 2]}.\n")
    tok, data = os.path.join(d, "tok.json"), os.path.join(d, "data")
    for args in (["tokenizer", "train", "--vocab-size", "320", "--input", corpus, "--output", tok, "--quiet"],
                 ["prepare", "--tokenizer", tok, "--input", corpus, "--delimiter", "\\n", "--output", data, "--quiet"]):
        p = lf(*args)
        if p.returncode:
            print("FAIL: lmforge", " ".join(args), p.stderr)
            sys.exit(1)
    V = len(json.load(open(tok))["model"]["vocab"])
    shard = os.path.join(data, "val.bin")
    ids, mask = read_shard(shard)

    def config(vocab):  # weights of std 0.2: peaked distributions, unlike the usual 0.02
        return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
                           initializer_range=0.2, bos_token_id=None, eos_token_id=None, pad_token_id=None)

    bdir, qdir = os.path.join(d, "base"), os.path.join(d, "q")
    base = save_llama(bdir, config(V), 1, tok)
    model = save_llama(qdir, config(V), 1, tok, noise=0.02)

    for T, stride, chunks in ((32, 16, False), (32, 0, True)):
        tag = f"context {T}, " + ("chunks" if chunks else f"stride {stride}")
        out = os.path.join(d, "tokens.tsv")
        args = ["eval", qdir, shard, "--kld-base", bdir, "--context", str(T), "--json", "--kld-out", out]
        args += ["--chunks"] if chunks else ["--stride", str(stride)]
        p = lf(*args)
        if p.returncode:
            print(f"FAIL: {tag}: lmforge eval --kld-base: {p.stderr}")
            fails += 1
            continue
        got = json.loads(p.stdout)
        ref = reference(base, model, ids, mask, T, stride, chunks)
        check(got["targets"] == ref["count"], f"{tag}: {got['targets']} targets scored, NumPy {ref['count']}")
        worst = 0.0
        for k in ("kld_mean", "kld_median", "kld_p90", "kld_p95", "kld_p99", "kld_max", "same_top", "ppl", "ppl_base"):
            err = abs(got[k] - ref[k]) / max(abs(ref[k]), 1e-12)
            worst = max(worst, err)
            check(err <= TOL, f"{tag}: {k} {got[k]:.9g}, NumPy over transformers {ref[k]:.9g} (relative {err:.2g})")
        tsv = np.loadtxt(out, skiprows=1, ndmin=2)
        check(len(tsv) == ref["count"] and (tsv[:, 0] == ref["pos"]).all(), f"{tag}: --kld-out positions differ")
        dk = np.abs(tsv[:, 2] - ref["kld"]).max() if len(tsv) == ref["count"] else float("inf")
        check(dk <= 1e-5, f"{tag}: --kld-out per-token KLD differs from NumPy by up to {dk:.3g}")
        print(f"{tag}: {got['targets']} targets, mean KLD {got['kld_mean']:.6f} ± {got['kld_se']:.6f}, median "
              f"{got['kld_median']:.6f}, p99 {got['kld_p99']:.6f}, same top {100 * got['same_top']:.2f} %, PPL {got['ppl']:.4f} "
              f"vs base {got['ppl_base']:.4f}: largest relative difference to NumPy {worst:.2g}, per-token KLD max |diff| {dk:.2g}")
        if not chunks:  # the base's perplexity is plain eval's over the same windows
            e = json.loads(lf("eval", bdir, shard, "--context", str(T), "--stride", str(stride), "--json").stdout)
            err = abs(np.exp(e["loss"]) - got["ppl_base"]) / got["ppl_base"]
            check(err <= TOL, f"{tag}: base perplexity {got['ppl_base']:.6f}, plain eval's {np.exp(e['loss']):.6f}")

    # the base against itself
    p = lf("eval", bdir, shard, "--kld-base", bdir, "--context", "32", "--json")
    got = json.loads(p.stdout) if p.returncode == 0 else {}
    check(got.get("kld_max") == 0 and got.get("kld_mean") == 0 and got.get("same_top") == 1,
          f"the base against itself: {p.stderr or {k: got[k] for k in ('kld_mean', 'kld_max', 'same_top')}}")
    print(f"itself: mean KLD {got.get('kld_mean')}, max {got.get('kld_max')}, same top {got.get('same_top')}")

    # refused: another vocabulary size; the same size but another tokenizer
    wdir = os.path.join(d, "wide")
    save_llama(wdir, config(V + 10), 1, tok)
    p = lf("eval", qdir, shard, "--kld-base", wdir)
    msg = p.stderr.strip()
    check(p.returncode != 0 and "vocabulary" in msg and len(msg.splitlines()) == 1, f"vocabulary {V} vs {V + 10}: rc {p.returncode}, {msg!r}")
    print(f"refused (vocabulary): {msg}")
    sdir = os.path.join(d, "swapped")
    shutil.copytree(bdir, sdir)
    tj = json.load(open(tok))  # the same ids but another end-of-text token
    eot = tj["added_tokens"][-1]
    tj["model"]["vocab"] = {("<|end|>" if k == eot["content"] else k): v for k, v in tj["model"]["vocab"].items()}
    eot["content"] = "<|end|>"
    json.dump(tj, open(os.path.join(sdir, "tokenizer.json"), "w"))
    p = lf("eval", qdir, shard, "--kld-base", sdir)
    msg = p.stderr.strip()
    check(p.returncode != 0 and "tokenizers differ" in msg and len(msg.splitlines()) == 1, f"another tokenizer: rc {p.returncode}, {msg!r}")
    print(f"refused (tokenizer): {msg}")

print(f"kld_test: {checks} checks, {fails} failed")
sys.exit(1 if fails else 0)
