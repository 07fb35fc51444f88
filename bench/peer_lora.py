"""PEFT + PyTorch peer for bench/run-lora: the same SmolLM2-135M-shaped Llama (transformers'
LlamaForCausalLM, random weights, fp32, tied head), LoRA r=8 alpha 16 on the same targets through
peft's get_peft_model, and the same step (forward + loss + backward + AdamW over the adapters).
Prints a 'result:' line like bench_lora. Usage: peer_lora.py TARGETS STEPS THREADS [B] [T]"""
import resource
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

targets, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
B = int(sys.argv[4]) if len(sys.argv) > 4 else 4
T = int(sys.argv[5]) if len(sys.argv) > 5 else 128
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048, rms_norm_eps=1e-5,
                  rope_theta=100000.0, tie_word_embeddings=True)
model = LlamaForCausalLM(cfg)
lcfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                  target_modules="all-linear" if targets == "all" else targets.split(","))
model = get_peft_model(model, lcfg)
model.train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4)
g = torch.Generator().manual_seed(1)
x = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
y = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
times = []
for s in range(-1, steps):  # step -1 warms up
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    logits = model(input_ids=x).logits
    loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    loss.backward()
    opt.step()
    if s >= 0:
        times.append(1e3 * (time.perf_counter() - t0))
times.sort()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
n_all = sum(p.numel() for p in model.parameters())
n_tr = sum(p.numel() for p in params)
print(f"peft lora {targets}: {n_all} params, {n_tr} trainable, B={B} T={T}, {threads} threads: median "
      f"{times[len(times) // 2]:.1f} ms/step, peak RSS {rss:.2f} GiB, loss {loss.item():.4f} "
      f"(torch {torch.__version__}, peft {__import__('peft').__version__}, "
      f"transformers {__import__('transformers').__version__}, attention {model.config._attn_implementation})")
print(f"result: ms={times[len(times) // 2]:.3f} rss_gib={rss:.3f}")
