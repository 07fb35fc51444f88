"""lmforge's tokenizer built from GGUF metadata, id for id against llama.cpp's own tokenizer test
vectors (models/ggml-vocab-{gpt-2,llama-spm,starcoder,refact,command-r}.gguf + .inp/.out, from llama-cpp-python==0.3.36's sdist,
placed in the cache under llama-cpp-python-0.3.36/vendor/llama.cpp/models/). llama.cpp's
test-tokenizer-0 encodes each input without BOS and without parsing special tokens.
Usage: gguf_vocab_test.py LMFORGE. Exit 77 (skipped) when the vectors are not in the cache."""
import json
import os
import subprocess
import sys

lmforge = sys.argv[1]
base = os.environ.get("LMFORGE_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lmforge")
models = os.path.join(base, "llama-cpp-python-0.3.36", "vendor", "llama.cpp", "models")
# starcoder, refact and command-r use the pre-tokenizer of SmolLM2 (tokenizer.ggml.pre = smollm: every
# digit alone, then GPT-2's regex), so they check SmolLM2's splitting on llama.cpp's varied inputs
names = ["ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-starcoder.gguf", "ggml-vocab-refact.gguf",
         "ggml-vocab-command-r.gguf"]
if not all(os.path.exists(os.path.join(models, n + ext)) for n in names for ext in ("", ".inp", ".out")):
    print(f"skipped: llama.cpp's vocab test vectors are not in {models} (unpack them from "
          "`pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`)")
    sys.exit(77)
fails = total = 0
for n in names:
    g = os.path.join(models, n)
    inp = open(g + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    out = open(g + ".out", encoding="utf-8").read().split("\n")
    bad = tested = 0
    for k, text in enumerate(inp):
        if k >= len(out) or (k == len(inp) - 1 and text == ""):
            continue
        want = [int(x) for x in out[k].split()]
        r = subprocess.run([lmforge, "tokenizer", "encode", "--tokenizer", g], input=text.encode("utf-8"),
                           capture_output=True)
        got = json.loads(r.stdout) if r.returncode == 0 else None
        total += 1
        tested += 1
        if got != want:
            bad += 1
            print(f"FAIL {n} #{k} {text[:40]!r}: lmforge {got} (rc {r.returncode} {r.stderr.decode()[-200:]}) "
                  f"llama.cpp {want}")
    print(f"{n}: {tested} inputs, {bad} differ from llama.cpp")
    fails += bad
print(f"{total - fails}/{total} inputs tokenized id for id like llama.cpp")
sys.exit(1 if fails else 0)
