"""The pruning peer for bench/run-prune: Wanda and SparseGPT in PyTorch as the papers' reference code
runs them (locuslab/wanda lib/prune.py, IST-DASLab/sparsegpt sparsegpt.py), on the same Hugging Face
weights and the same calibration windows as lmforge (prune --save-calib), to time calibration.

Layer by layer, as both reference codes do: the block's inputs for all calibration windows (the
output of the blocks already pruned), forward hooks on its linears that accumulate ||X_j||^2 (Wanda)
or H = 2/n * X^T X (SparseGPT) over one dense forward of the block, pruning, then the block's
outputs recomputed with its pruned weights. The windows go through each block as one batch (the
reference codes loop over them one at a time; a batch is faster in torch). SparseGPT: dampening
percdamp * mean(diag H), Cholesky of the inverse, column blocks, the mask per block by w^2/d^2,
N:M per group, the error pushed onto later columns.

Usage: peer_prune.py MODEL_DIR CALIB.json --method wanda|sparsegpt --sparsity S [--pattern N:M]
       [--blocksize B] [--damp D] [--threads N] [--out DIR]
Prints one JSON line: seconds (calibration and pruning, after loading), sparsity of the linears."""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
from transformers import AutoModelForCausalLM


def find_linears(module):
    return {n: m for n, m in module.named_modules() if isinstance(m, nn.Linear)}


def wanda_prune(W, sq, nsamp, sparsity, n, m):
    metric = W.abs() * torch.sqrt(sq / max(nsamp, 1)).reshape(1, -1)
    mask = torch.zeros_like(W, dtype=torch.bool)  # True = pruned
    if m:
        for i in range(0, W.shape[1], m):
            blk = metric[:, i:i + m]
            mask.scatter_(1, i + torch.topk(blk, m - n, dim=1, largest=False)[1], True)
    else:
        idx = torch.sort(metric, dim=-1, stable=True)[1][:, :int(W.shape[1] * sparsity)]
        mask.scatter_(1, idx, True)
    W[mask] = 0


def sparsegpt_prune(W, H, sparsity, n, m, blocksize, percdamp):
    W = W.clone().float()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    H[torch.arange(cols), torch.arange(cols)] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d1 = torch.diag(Hinv1)
        if m:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        else:
            tmp = W1 ** 2 / d1.reshape(1, -1) ** 2
            k = int(tmp.numel() * sparsity)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if k:
                mask1.view(-1)[torch.topk(tmp.flatten(), k, largest=False)[1]] = True
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if m and i % m == 0:
                tmp = W1[:, i:i + m] ** 2 / d1[i:i + m].reshape(1, -1) ** 2
                mask1.scatter_(1, i + torch.topk(tmp, m - n, dim=1, largest=False)[1], True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("--method", required=True, choices=["wanda", "sparsegpt"])
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--pattern", default="")
    ap.add_argument("--blocksize", type=int, default=128)
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n = m = 0
    if a.pattern:
        n, m = (int(x) for x in a.pattern.split(":"))
    ids = torch.tensor(json.load(open(a.calib))["ids"], dtype=torch.long)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    model.eval()
    layers = model.model.layers
    t0 = time.perf_counter()
    with torch.no_grad():
        cache = {}

        class Catcher(nn.Module):
            def __init__(self, module):
                super().__init__()
                self.module = module

            def forward(self, x, *args, **kw):
                cache["x"], cache["args"], cache["kw"] = x, args, kw
                raise ValueError

        layers[0] = Catcher(layers[0])
        try:
            model(ids, use_cache=False)
        except ValueError:
            pass
        layers[0] = layers[0].module
        x, args, kw = cache["x"], cache["args"], cache["kw"]

        def run(layer, x):
            y = layer(x, *args, **kw)
            return y[0] if isinstance(y, tuple) else y

        for layer in layers:
            subset = find_linears(layer)
            stats = {}

            def hook_for(name):
                def hook(mod, inp, out):
                    z = inp[0].reshape(-1, inp[0].shape[-1]).float()
                    s = stats.setdefault(name, {"n": 0})
                    tmp = inp[0].shape[0] if inp[0].dim() == 3 else 1
                    if a.method == "wanda":
                        if "sq" not in s:
                            s["sq"] = torch.zeros(z.shape[1])
                        s["sq"] *= s["n"] / (s["n"] + tmp)
                        s["n"] += tmp
                        s["sq"] += torch.norm(z, p=2, dim=0) ** 2 / s["n"]
                    else:
                        if "H" not in s:
                            s["H"] = torch.zeros(z.shape[1], z.shape[1])
                        s["H"] *= s["n"] / (s["n"] + tmp)
                        s["n"] += tmp
                        z = math.sqrt(2 / s["n"]) * z
                        s["H"] += z.t().matmul(z)
                return hook

            hs = [subset[k].register_forward_hook(hook_for(k)) for k in subset]
            run(layer, x)
            for h in hs:
                h.remove()
            for name, lin in subset.items():
                W = lin.weight.data
                if a.method == "wanda":
                    # the reference accumulates ||X_j||^2 / nsamples, nsamples counting windows: the
                    # ranking within a row is the same for any positive scale
                    wanda_prune(W, stats[name]["sq"] * stats[name]["n"], 1, a.sparsity, n, m)
                else:
                    lin.weight.data = sparsegpt_prune(W, stats[name]["H"], a.sparsity, n, m, a.blocksize, a.damp).to(W.dtype)
            x = run(layer, x)
    secs = time.perf_counter() - t0
    z = t = 0
    for layer in layers:
        for lin in find_linears(layer).values():
            z += int((lin.weight == 0).sum())
            t += lin.weight.numel()
    if a.out:
        model.save_pretrained(a.out)
    print(json.dumps({"peer": "torch " + torch.__version__, "method": a.method, "sparsity": a.sparsity,
                      "pattern": a.pattern or "unstructured", "seconds": secs, "linear_sparsity": z / t,
                      "threads": a.threads}))


if __name__ == "__main__":
    sys.exit(main())
