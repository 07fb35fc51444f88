"""The distillation step of bench/run-distill written in PyTorch, for its cost comparison: the same
teacher folder (transformers' LlamaForCausalLM, eval mode, under torch.no_grad), a student of the
same shape as lmforge's (random initialisation), the same batch shape, and the same step:
(1-alpha)·cross-entropy + alpha·T²·KL(teacher ‖ student) on every position, backward, gradient
clip 1.0, AdamW. Also the plain step (cross-entropy only) for the ratio. Batches are random token
ids: the step's cost does not depend on them.
Prints one JSON line: median seconds per step of each loop after warm-up steps.
Usage: peer_distill.py TEACHER_DIR --d_model 128 --n_layer 4 --n_head 4 --n_kv_head 2 --d_ff 344
       [--batch 16] [--context 128] [--steps 20] [--warmup 3] [--threads N] [--alpha 0.5] [--temperature 1]"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("teacher")
for k, d in [("d_model", 128), ("n_layer", 4), ("n_head", 4), ("n_kv_head", 2), ("d_ff", 344), ("batch", 16), ("context", 128),
             ("steps", 20), ("warmup", 3), ("threads", 2)]:
    ap.add_argument("--" + k, type=int, default=d)
ap.add_argument("--alpha", type=float, default=0.5)
ap.add_argument("--temperature", type=float, default=1.0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

teacher = AutoModelForCausalLM.from_pretrained(a.teacher, dtype=torch.float32)
teacher.train(False)
for p in teacher.parameters():
    p.requires_grad_(False)
tc = teacher.config
sc = LlamaConfig(vocab_size=tc.vocab_size, hidden_size=a.d_model, num_hidden_layers=a.n_layer, num_attention_heads=a.n_head,
                 num_key_value_heads=a.n_kv_head, intermediate_size=a.d_ff, max_position_embeddings=a.context,
                 rms_norm_eps=1e-5, tie_word_embeddings=True, attention_dropout=0.0)
student = LlamaForCausalLM(sc)
student.train(True)
opt = torch.optim.AdamW(student.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
V, tau = tc.vocab_size, a.temperature


def step(distill):
    x = torch.randint(0, V, (a.batch, a.context))
    y = torch.randint(0, V, (a.batch, a.context))
    t0 = time.perf_counter()
    logits = student(input_ids=x).logits.reshape(-1, V)
    loss = F.cross_entropy(logits, y.reshape(-1))
    if distill:
        with torch.no_grad():
            tl = teacher(input_ids=x).logits.reshape(-1, V)
        kd = F.kl_div(F.log_softmax(logits / tau, -1), F.log_softmax(tl / tau, -1), reduction="batchmean", log_target=True)
        loss = (1 - a.alpha) * loss + a.alpha * tau * tau * kd
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    opt.step()
    return time.perf_counter() - t0


out = {"torch": torch.__version__, "threads": a.threads, "B": a.batch, "T": a.context,
       "student_params": sum(p.numel() for p in student.parameters()), "teacher_params": sum(p.numel() for p in teacher.parameters())}
for name, distill in (("plain", False), ("distill_kl", True)):
    ts = [step(distill) for _ in range(a.warmup + a.steps)][a.warmup:]
    out[name + "_s_per_step"] = statistics.median(ts)
print(json.dumps(out))
