"""lmforge's distillation terms against PyTorch's formulas (float64, gradients by autograd).
`test_distill --export DIR` writes a student's and a teacher's logits on a batch with masked
positions (target -1) and a row weight, and the logit term's value and gradient for forward KL,
reverse KL and generalized JSD at several temperatures and betas; and the hidden-state term's value
and gradients (on the student's hidden states and on the projection) for mse and cosine.
Here: forward KL = F.kl_div(log q, log p, log_target=True), reverse KL the same with the arguments
swapped, JSD as TRL's GKDTrainer.generalized_jsd_loss (its beta = 0 and 1 special cases included),
each x T^2 (lmforge's convention; TRL leaves it out), mean over unmasked positions with the row
weights; hidden: F.mse_loss over channels and 1 - F.cosine_similarity, after y = hs @ W.T.
Tolerances: values 1e-5 relative, gradients 1e-6 relative to max(1, max|g|).
Usage: distill_test.py TEST_DISTILL. Prints 'skipped: ...' (exit 77) without torch + numpy."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch + numpy not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

torch.set_num_threads(1)
exe = sys.argv[1]
fails = checks = 0


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL:", msg)


def rel(a, b):
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def divergence(kind, zs, zt, tau, beta):
    ls = F.log_softmax(zs / tau, dim=-1)
    lt = F.log_softmax(zt / tau, dim=-1)
    if kind == "kl" or (kind == "jsd" and beta == 0):
        d = F.kl_div(ls, lt, reduction="none", log_target=True)
    elif kind == "rkl" or (kind == "jsd" and beta == 1):
        d = F.kl_div(lt, ls, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=ls.dtype)
        mix = torch.logsumexp(torch.stack([ls + torch.log1p(-b), lt + torch.log(b)]), dim=0)
        d = b * F.kl_div(mix, lt, reduction="none", log_target=True) + (1 - b) * F.kl_div(mix, ls, reduction="none", log_target=True)
    return tau * tau * d.sum(-1)


with tempfile.TemporaryDirectory() as d:
    subprocess.run([exe, "--export", d], check=True)
    rd = lambda n, dt=np.float32: torch.from_numpy(np.fromfile(os.path.join(d, n), dtype=dt).astype(np.float64 if dt == np.float32 else np.int64))
    lines = open(os.path.join(d, "cases.txt")).read().split("\n")
    B, T, V, Cs, Ct = map(int, lines[0].split())
    N = B * T
    zs, zt = rd("zs.f32").view(N, V), rd("zt.f32").view(N, V)
    tg, rw = rd("targets.i32", np.int32), rd("row_weight.f32")
    mask = tg >= 0
    w = rw.repeat_interleave(T) * mask
    cnt = int(mask.sum())
    check(cnt < N and float(rw.max()) != 1.0, "the batch must have masked positions and a row weight")
    worst_v = worst_g = 0.0
    for ln in lines[1:]:
        f = ln.split()
        if not f:
            continue
        if f[0] == "logit":
            kind, tau, beta, val, gname = f[1], float(f[2]), float(f[3]), float(f[4]), f[5]
            x = zs.clone().requires_grad_(True)
            ref = (w * divergence(kind, x, zt, tau, beta)).sum() / cnt
            ref.backward()
            ref = ref.detach()
            g = rd(gname).view(N, V)
            ev, eg = abs(val - float(ref)) / max(1.0, abs(float(ref))), rel(g, x.grad)
            worst_v, worst_g = max(worst_v, ev), max(worst_g, eg)
            check(ev <= 1e-5, f"{kind} T={tau} beta={beta}: value {val:.8g}, PyTorch {float(ref):.8g}")
            check(eg <= 1e-6, f"{kind} T={tau} beta={beta}: gradient differs from autograd's by {eg:.3g}")
            print(f"{kind:3s} T={tau:g} beta={beta:g}: lmforge {val:.7f}, PyTorch {float(ref):.7f}, gradient max err {eg:.2e}")
        else:
            kind, val = f[1], float(f[2])
            hs, ht, W = rd(f[3]).view(N, Cs), rd(f[4]).view(N, Ct), rd(f[5]).view(Ct, Cs)
            dhs, dW = rd(f[6]).view(N, Cs), rd(f[7]).view(Ct, Cs)
            x, Wx = hs.clone().requires_grad_(True), W.clone().requires_grad_(True)
            y = x @ Wx.T
            per = F.mse_loss(y, ht, reduction="none").mean(-1) if kind == "mse" else 1 - F.cosine_similarity(y, ht, dim=-1)
            ref = (w * per).sum() / cnt
            ref.backward()
            ref = ref.detach()
            ev, e1, e2 = abs(val - float(ref)) / max(1.0, abs(float(ref))), rel(dhs, x.grad), rel(dW, Wx.grad)
            worst_v, worst_g = max(worst_v, ev), max(worst_g, e1, e2)
            check(ev <= 1e-5, f"hidden {kind}: value {val:.8g}, PyTorch {float(ref):.8g}")
            check(e1 <= 1e-6 and e2 <= 1e-6, f"hidden {kind}: gradients differ from autograd's by {e1:.3g} (states), {e2:.3g} (projection)")
            print(f"hidden {kind}: lmforge {val:.7f}, PyTorch {float(ref):.7f}, gradient max err {max(e1, e2):.2e}")

print(f"distill_test: {checks} checks, {fails} failed; worst value rel err {worst_v:.2e}, worst gradient err {worst_g:.2e}")
sys.exit(1 if fails else 0)
