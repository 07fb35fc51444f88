"""PyTorch peer for bench/run: the same GPT-2 / Llama architectures, shapes, fp32, thread count
and step (forward + backward + AdamW) as bench_step.c. Prints a 'result:' line like bench_step.
Usage: peer_torch.py CONFIG STEPS THREADS"""
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {  # name: arch, V, C, L, H, KVH, F, maxT, B, T   (mirror of bench/configs.h)
    "gpt2-t64": ("gpt2", 50257, 768, 12, 12, 12, 3072, 1024, 4, 64),
    "gpt2-t256": ("gpt2", 50257, 768, 12, 12, 12, 3072, 1024, 4, 256),
    "small-gpt2": ("gpt2", 8192, 256, 4, 4, 4, 1024, 256, 16, 256),
    "small-llama": ("llama", 8192, 256, 4, 4, 2, 688, 256, 16, 256),
}


def causal_attention(q, k, v):  # (B,H,T,hd)
    T = q.size(-2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return att @ v


class GPT2Block(nn.Module):
    def __init__(s, C, H, Fd):
        super().__init__()
        s.H = H
        s.ln_1, s.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.c_attn, s.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.c_fc, s.mlp_proj = nn.Linear(C, Fd), nn.Linear(Fd, C)

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, s.H, C // s.H).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + s.c_proj(y)
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))


class RMSNorm(nn.Module):
    def __init__(s, C, eps=1e-5):
        super().__init__()
        s.weight, s.eps = nn.Parameter(torch.ones(C)), eps

    def forward(s, x):
        return s.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(s, C, H, KVH, Fd):
        super().__init__()
        s.H, s.KVH, s.hd = H, KVH, C // H
        s.ln_1, s.ln_2 = RMSNorm(C), RMSNorm(C)
        s.q, s.k = nn.Linear(C, H * s.hd, bias=False), nn.Linear(C, KVH * s.hd, bias=False)
        s.v, s.o = nn.Linear(C, KVH * s.hd, bias=False), nn.Linear(H * s.hd, C, bias=False)
        s.gate, s.up = nn.Linear(C, Fd, bias=False), nn.Linear(C, Fd, bias=False)
        s.down = nn.Linear(Fd, C, bias=False)

    def forward(s, x, cos, sin):
        B, T, C = x.shape
        h = s.ln_1(x)
        q = s.q(h).view(B, T, s.H, s.hd).transpose(1, 2)
        k = s.k(h).view(B, T, s.KVH, s.hd).transpose(1, 2)
        v = s.v(h).view(B, T, s.KVH, s.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = s.H // s.KVH
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + s.o(y)
        h = s.ln_2(x)
        return x + s.down(F.silu(s.gate(h)) * s.up(h))


class Model(nn.Module):
    def __init__(s, arch, V, C, L, H, KVH, Fd, maxT):
        super().__init__()
        s.arch = arch
        s.wte = nn.Embedding(V, C)
        if arch == "gpt2":
            s.wpe = nn.Embedding(maxT, C)
            s.blocks = nn.ModuleList(GPT2Block(C, H, Fd) for _ in range(L))
            s.ln_f = nn.LayerNorm(C)
        else:
            s.blocks = nn.ModuleList(LlamaBlock(C, H, KVH, Fd) for _ in range(L))
            s.ln_f = RMSNorm(C)
            hd = C // H
            inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
            ang = torch.arange(maxT).float()[:, None] * inv[None, :]
            emb = torch.cat((ang, ang), dim=-1)
            s.register_buffer("cos", emb.cos())
            s.register_buffer("sin", emb.sin())
        for p in s.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(s, idx, targets):
        B, T = idx.shape
        if s.arch == "gpt2":
            x = s.wte(idx) + s.wpe(torch.arange(T))
            for b in s.blocks:
                x = b(x)
        else:
            x = s.wte(idx)
            for b in s.blocks:
                x = b(x, s.cos[:T], s.sin[:T])
        logits = s.ln_f(x) @ s.wte.weight.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    name, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arch, V, C, L, H, KVH, Fd, maxT, B, T = CONFIGS[name]
    model = Model(arch, V, C, L, H, KVH, Fd, maxT)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))
    times = []
    for s in range(steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s > 0:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2] * 1e3
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
    params = sum(p.numel() for p in model.parameters())
    print(f"pytorch {torch.__version__} {name}: params {params}, B={B} T={T}, {torch.get_num_threads()} threads: "
          f"median {med:.1f} ms/step, {B * T / (med / 1e3):.0f} tok/s, peak RSS {rss:.2f} GiB, loss {loss.item():.4f}")
    print(f"result: ms={med:.3f} rss_gib={rss:.3f}")


if __name__ == "__main__":
    main()
