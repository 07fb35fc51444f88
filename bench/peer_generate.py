"""PyTorch peer for bench/run-generate: the architectures of peer_torch.py decoding greedily one
token at a time with a preallocated key/value cache, batch 1, fp32, no autograd.
Usage: peer_generate.py CONFIG NEW_TOKENS THREADS"""
import math
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from peer_torch import CONFIGS, Model, rotate_half  # noqa: E402


@torch.no_grad()
def decode_step(model, tok, pos, kc, vc):
    arch = model.arch
    x = model.wte.weight[tok][None, None, :]
    if arch == "gpt2":
        x = x + model.wpe.weight[pos]
    for li, b in enumerate(model.blocks):
        if arch == "gpt2":
            C = x.size(-1)
            q, k, v = b.c_attn(b.ln_1(x)).split(C, dim=2)
            H, hd, G = b.H, C // b.H, 1
            q, k, v = (t.view(1, 1, -1, hd).transpose(1, 2) for t in (q, k, v))
        else:
            H, hd, G = b.H, b.hd, b.H // b.KVH
            h = b.ln_1(x)
            q = b.q(h).view(1, 1, b.H, hd).transpose(1, 2)
            k = b.k(h).view(1, 1, b.KVH, hd).transpose(1, 2)
            v = b.v(h).view(1, 1, b.KVH, hd).transpose(1, 2)
            cos, sin = model.cos[pos], model.sin[pos]
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        kc[li][:, :, pos] = k[:, :, 0]
        vc[li][:, :, pos] = v[:, :, 0]
        K, V = kc[li][:, :, : pos + 1], vc[li][:, :, : pos + 1]
        if G > 1:
            K, V = K.repeat_interleave(G, dim=1), V.repeat_interleave(G, dim=1)
        att = ((q @ K.transpose(-2, -1)) / math.sqrt(hd)).softmax(-1)
        y = (att @ V).transpose(1, 2).reshape(1, 1, H * hd)
        if arch == "gpt2":
            x = x + b.c_proj(y)
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln_2(x)), approximate="tanh"))
        else:
            x = x + b.o(y)
            h = b.ln_2(x)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
    return (model.ln_f(x) @ model.wte.weight.t())[0, 0]


def main():
    name, n_new, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arch, V, C, L, H, KVH, Fd, maxT, _, _ = CONFIGS[name]
    model = Model(arch, V, C, L, H, KVH, Fd, maxT).eval()
    kvh = H if arch == "gpt2" else KVH
    kc = [torch.zeros(1, kvh, maxT, C // H) for _ in range(L)]
    vc = [torch.zeros(1, kvh, maxT, C // H) for _ in range(L)]
    prompt = torch.randint(0, V, (16,)).tolist()
    best = 1e9
    for _ in range(2):
        for i, t in enumerate(prompt):
            logits = decode_step(model, t, i, kc, vc)
        t0 = time.perf_counter()
        pos = len(prompt)
        for _ in range(n_new):
            tok = int(logits.argmax())
            logits = decode_step(model, tok, pos, kc, vc)
            pos += 1
        best = min(best, time.perf_counter() - t0)
    print(f"pytorch {torch.__version__} {name}: {n_new} new tokens in {best:.2f} s, {n_new / best:.1f} tokens/s, {threads} threads")
    print(f"result: tok_s={n_new / best:.3f}")


if __name__ == "__main__":
    main()
