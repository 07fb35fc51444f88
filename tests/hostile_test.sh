#!/usr/bin/env bash
# Every input is hostile: regression tests for the classes of defects a probe of malformed inputs
# found (crashes, silent garbage, unclear errors, blocking on FIFOs, non-atomic writes). Each case
# builds its bad input here and expects a clean refusal: a non-zero exit that is not a crash, one
# line naming the file or option, within a few seconds.
set -u
lmforge=$1 fixtures=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
# refuse RC PATTERN CMD...: exits with RC (or any non-zero, non-crash code if RC is -), within 10 s, and
# stderr holds PATTERN
refuse() {
  local want=$1 pat=$2; shift 2
  timeout 10 "$@" > out.txt 2> err.txt; local rc=$?
  if [ $rc -eq 124 ]; then bad "$* hung (killed after 10 s)"; return; fi
  if [ $rc -ge 128 ] || [ $rc -eq 0 ] || { [ "$want" != - ] && [ $rc -ne "$want" ]; }; then bad "$*: exit $rc (want ${want/-/non-zero}): $(head -c 300 err.txt)"; return; fi
  if ! grep -qE -- "$pat" err.txt; then bad "$*: message lacks /$pat/: $(head -c 300 err.txt)"; return; fi
  ok
}
py() { python3 - "$@"; }

# ---- a small model and data made here
awk 'BEGIN{split("the cat|a dog|the old man|my sister",s,"|"); split("sees|eats|likes|finds",v,"|");
     split("the fish|a red ball|the bird|bread",o,"|");
     for(i=0;i<2000;i++) printf "%s %s %s.\n", s[1+(i*7)%4], v[1+(i*13+i/5)%4], o[1+(i*i+3*i)%4]}' > corpus.txt
"$lmforge" tokenizer train --vocab-size 300 --input corpus.txt --output tok.json --quiet &&
awk 'BEGIN{for(i=0;i<3000;i++) printf "number %d is %x and %o, word%d.\n", i, i*7919, i*31, i%97}' > corpus2.txt
"$lmforge" tokenizer train --vocab-size 600 --input corpus2.txt --output tok2.json --quiet &&
"$lmforge" prepare --tokenizer tok.json --input corpus.txt --delimiter '\n' --output data --val-fraction 0.1 --quiet &&
"$lmforge" prepare --tokenizer tok2.json --input corpus2.txt --delimiter '\n' --output data2 --val-fraction 0.1 --quiet ||
  { echo "FAIL: setup"; exit 1; }
common=(--data=data --context=16 --d_model=16 --n_layer=1 --n_head=2 --n_kv_head=1 --d_ff=32 --batch_size=2 --quiet)
"$lmforge" train "${common[@]}" --max_steps=4 --checkpoint_every=2 --run_dir=run > /dev/null 2>&1 || { echo "FAIL: setup run"; exit 1; }
model=run/best

# ---- model folders: sizes, types, files that are not files
mkdir m; cp "$fixtures/hf_llama_tiny/model.safetensors" m/
cfg() { printf '%s' "$1" > m/config.json; }
cfg '{"model_type":"llama","vocab_size":16777216,"hidden_size":65536,"num_hidden_layers":2,"num_attention_heads":64,"intermediate_size":128,"max_position_embeddings":64}'
refuse 1 "machine has|out of range" "$lmforge" info m
cfg '{"model_type":"llama","vocab_size":32,"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":1048577,"head_dim":4096,"intermediate_size":128}'
refuse 1 "out of range" "$lmforge" info m
cfg '{"model_type":"llama","vocab_size":32,"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":524288,"num_key_value_heads":524288,"head_dim":4096,"intermediate_size":128}'
refuse 1 "out of range" "$lmforge" info m
cfg '{"model_type":"llama","vocab_size":4294967596,"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":128}'
refuse 1 "vocab_size.*out of range" "$lmforge" info m
rm m/config.json; mkdir m/config.json
refuse 1 "config.json.*(folder|regular)" "$lmforge" info m
rmdir m/config.json; mkfifo m/config.json
refuse 1 "config.json.*(FIFO|regular)" "$lmforge" info m
rm m/config.json
# a 3-D tensor, NaN weights: take the fixture and edit its safetensors header / data
cp "$fixtures/hf_llama_tiny/config.json" m/
py m/model.safetensors m3d.safetensors shape <<'PY'
import json, struct, sys
src, dst, mode = sys.argv[1:4]
b = open(src, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); data = b[8 + n:]
name = sorted(k for k in h if k != '__metadata__' and len(h[k]['shape']) == 2)[0]
if mode == 'shape':
    h[name]['shape'] = h[name]['shape'] + [1]
    hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
    open(dst, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
else:
    off = h[name]['data_offsets'][0]; data = bytearray(data); data[off:off + 4] = struct.pack('<f', float('nan'))
    open(dst, 'wb').write(b[:8 + n] + bytes(data))
print(name)
PY
mkdir m3; cp m/config.json m3/; mv m3d.safetensors m3/model.safetensors
refuse 1 "3 dims" "$lmforge" info m3
py m/model.safetensors mnan.safetensors nan > nan_name.txt <<'PY'
import json, struct, sys
src, dst, mode = sys.argv[1:4]
b = open(src, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); data = bytearray(b[8 + n:])
name = sorted(k for k in h if k != '__metadata__' and len(h[k]['shape']) == 2)[0]
off = h[name]['data_offsets'][0]; data[off:off + 4] = struct.pack('<f', float('nan'))
open(dst, 'wb').write(b[:8 + n] + bytes(data)); print(name)
PY
mkdir mn; cp m/config.json mn/; mv mnan.safetensors mn/model.safetensors
refuse 1 "NaN.*|$(cat nan_name.txt)" "$lmforge" info mn
grep -q "$(cat nan_name.txt)" err.txt && ok || bad "NaN weights: the message does not name the tensor: $(cat err.txt)"
mkfifo fifo.bin
refuse 1 "fifo.bin.*(FIFO|regular)" "$lmforge" info fifo.bin
# a file that claims a huge model must be refused before memory is committed
cfg2='{"model_type":"llama","vocab_size":200000,"hidden_size":1024,"num_hidden_layers":8,"num_attention_heads":8,"intermediate_size":2048}'
mkdir mbig; printf '%s' "$cfg2" > mbig/config.json; cp m/model.safetensors mbig/
# (with 600 MB of address space: committing the weights first would fail as "out of memory")
if ldd "$lmforge" 2>/dev/null | grep -q libasan; then
  echo "skipped under AddressSanitizer (its shadow memory needs more address space): lazy weight commit"
else
  (ulimit -v 600000; exec timeout 10 "$lmforge" info mbig) > out.txt 2> err.txt; rc=$?
  [ $rc -eq 1 ] && grep -qE "missing|shape" err.txt && ok || bad "a 30 KB checkpoint claiming a 1.7 GB model: rc $rc, $(head -c 200 err.txt)"
fi

# ---- options
refuse - "threads" "$lmforge" train "${common[@]}" --max_steps=1 --run_dir=t1 --threads=5000
"$lmforge" train "${common[@]}" --max_steps=1 --run_dir=t2 --threads=300 > t2.out 2>&1 && ok || bad "--threads=300 must work: $(tail -1 t2.out)"
refuse 2 "temperature" "$lmforge" generate $model --temperature nan
refuse 2 "temperature" "$lmforge" generate $model --temperature -1
refuse 2 "top-p" "$lmforge" generate $model --top-p 2
refuse 2 "batch" "$lmforge" eval $model --data corpus.txt --batch 2147483647
refuse 2 "batch" "$lmforge" eval $model --data corpus.txt --batch 0
refuse 2 "context" "$lmforge" eval $model --data corpus.txt --context 100000
long=$(printf 'r%.0s' $(seq 600))
printf '{"run_dir": "%s", "data": "data"}' "$long" > long.json
refuse 2 "run_dir.*longer than" "$lmforge" train --config long.json

# ---- data against the model
refuse 1 "tokenizer|fingerprint" "$lmforge" eval $model --data data2/val.bin
refuse 1 "outside the model's vocabulary" "$lmforge" eval $model --data data2/val.bin --tokenizer tok2.json
grep -q "data2/val.bin" err.txt && ok || bad "out-of-vocabulary shard: message does not name the shard"
refuse 1 "outside the model's vocabulary|tokenizer" "$lmforge" train "${common[@]}" --data=data2 --tokenizer=tok2.json --init=$model --max_steps=1 --run_dir=t3
mkdir fd; mkfifo fd/train.bin
refuse - "train.bin.*(FIFO|regular)" "$lmforge" train "${common[@]}" --data=fd --tokenizer=tok.json --max_steps=1 --run_dir=t4
mkfifo cfg.fifo
refuse - "cfg.fifo.*(FIFO|regular)" "$lmforge" train --config cfg.fifo
mkfifo text.fifo
refuse - "text.fifo.*(FIFO|regular)" "$lmforge" eval $model --data text.fifo

# ---- trainer state is checked, not trusted
ck=run/checkpoints/step-00000002
for edit in 'j["step"]=0;j["optimizer_t"]=0' 'j["step"]=-1' 'j["step"]="x"' 'j["optimizer_t"]=-5' 'j["source_state"]=[1,2]' 'j["best_step"]=99'; do
  rm -rf r2; cp -r run r2; echo "checkpoints/step-00000002" > r2/latest
  py r2/checkpoints/step-00000002/trainer_state.json "$edit" <<'PY'
import json, sys
p, edit = sys.argv[1:3]; j = json.load(open(p)); exec(edit); json.dump(j, open(p, 'w'))
PY
  refuse - "trainer_state|state|step" "$lmforge" train --resume r2 --max_steps=6
done
rm -rf r2; cp -r run r2; echo "checkpoints/step-00000002" > r2/latest
py r2/checkpoints/step-00000002/trainer_state.safetensors <<'PY'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
name = sorted(k for k in h if k.startswith('v.'))[0]; off = 8 + n + h[name]['data_offsets'][0]
b[off:off + 4] = struct.pack('<f', float('nan')); open(p, 'wb').write(b)
PY
refuse - "non-finite|damaged" "$lmforge" train --resume r2 --max_steps=6
# a stray file where a checkpoint's temporary folder goes does not block it
mkdir -p r3/checkpoints; echo junk > r3/checkpoints/step-00000002.tmp
"$lmforge" train "${common[@]}" --max_steps=3 --checkpoint_every=2 --run_dir=r3 > r3.out 2>&1 && [ -d r3/checkpoints/step-00000002 ] && ok ||
  bad "a stray step-N.tmp file blocked the checkpoint: $(tail -1 r3.out)"

# ---- writes: convert over an existing folder replaces it whole, keeping its other files
mkdir conv; echo keep > conv/tokenizer.json; echo '{}' > conv/config.json
"$lmforge" convert $model conv > /dev/null && grep -q keep conv/tokenizer.json && "$lmforge" info conv > /dev/null && ok ||
  bad "convert into an existing folder"
mkdir -p conv2/sub; echo x > conv2/sub/keep
refuse 1 "conv2.*sub.*not a regular file" "$lmforge" convert $model conv2
[ -f conv2/sub/keep ] && ok || bad "convert over a folder with subfolders destroyed them"
ls | grep -q '\.tmp\.' && bad "temporary folders left behind: $(ls | grep '\.tmp\.')" || ok

# ---- GGUF: truncated header, counts and lengths larger than the file, tensor data past the end
python3 "$(cd "$(dirname "$0")" && pwd)/fuzz/make_seeds.py" seeds || { echo "FAIL: tests/fuzz/make_seeds.py"; exit 1; }
gg=seeds/gguf/llama_spm.gguf
head -c 1000 "$gg" > trunc.gguf
refuse - "trunc.gguf: truncated while reading" "$lmforge" info trunc.gguf
python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[8:16]=(2**62).to_bytes(8,'little'); open('count.gguf','wb').write(b)" "$gg"
refuse - "count.gguf: header claims .* more than the file can hold" "$lmforge" generate count.gguf --max-tokens 1
python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[24:32]=(2**62).to_bytes(8,'little'); open('strlen.gguf','wb').write(b)" "$gg"
refuse - "strlen.gguf: metadata key has length" "$lmforge" info strlen.gguf
head -c $(( $(stat -c %s "$gg") - 64 )) "$gg" > short.gguf
refuse - "short.gguf: tensor '.*' .* lies outside the file" "$lmforge" convert short.gguf shortout
[ ! -e shortout ] && ok || bad "a refused GGUF convert left shortout behind"
# two tensors whose data share bytes, and a name listed twice: a file cannot claim more weights than it holds
py overlap.gguf twice.gguf <<'EOF2'
import struct, sys
def gguf(path, tensors):  # version 3, no metadata, F32 tensors: (name, numel, offset)
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 0)
    for name, n, off in tensors:
        b += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<IQIQ", 1, n, 0, off)
    b += bytes(-len(b) % 32) + bytes(256)
    open(path, "wb").write(b)
gguf(sys.argv[1], [("a", 16, 0), ("b", 16, 32)])
gguf(sys.argv[2], [("a", 8, 0), ("a", 8, 32)])
EOF2
refuse - "overlap.gguf: tensors 'a' and 'b' share bytes" "$lmforge" info overlap.gguf
refuse - "twice.gguf: tensor 'a' appears twice" "$lmforge" info twice.gguf

# ---- quantize (GGUF export): a missing model, an output that is a folder, a type it does not write
refuse 1 "nosuch: no such model" "$lmforge" quantize nosuch --type q8_0 --out q.gguf
mkdir qdir
refuse 2 "qdir is a folder" "$lmforge" quantize $model --type q8_0 --out qdir
refuse 2 "'q3_k' is not a type .*f32, f16, bf16, q8_0, q4_0, q4_1, q4_k" "$lmforge" quantize $model --type q3_k --out q.gguf
refuse 2 "'q6_k' is not a type" "$lmforge" quantize $model --type q8_0 --embeddings q6_k --out q.gguf
refuse 2 "usage: lmforge quantize" "$lmforge" quantize $model --type q8_0
[ ! -e q.gguf ] && ok || bad "a refused quantize wrote q.gguf"
# a Q8_0 weight whose scale is NaN: refused whether it is kept encoded (eval's default) or dequantized
"$lmforge" train --data=data --context=16 --d_model=32 --n_layer=1 --n_head=2 --n_kv_head=1 --d_ff=64 --batch_size=2 \
  --quiet --max_steps=2 --run_dir=run32 > /dev/null 2>&1 &&
  "$lmforge" quantize run32/best --type q8_0 --out q8.gguf --quiet || bad "setup: quantize run32"
py q8.gguf nan.gguf <<'EOF2'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
pos = 24
def s():
    global pos
    n, = struct.unpack_from("<Q", b, pos); pos += 8 + n
    return bytes(b[pos - n:pos]).decode()
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t):
    global pos
    if t == 8: s()
    elif t == 9:
        at, n = struct.unpack_from("<IQ", b, pos); pos += 12
        for _ in range(n): skip(at)
    else: pos += size[t]
nt, nkv = struct.unpack_from("<QQ", b, 8)
for _ in range(nkv):
    s(); t, = struct.unpack_from("<I", b, pos); pos += 4; skip(t)
infos = []
for _ in range(nt):
    name = s(); nd, = struct.unpack_from("<I", b, pos); pos += 4 + 8 * nd
    ty, off = struct.unpack_from("<IQ", b, pos); pos += 12
    infos.append((name, ty, off))
data = (pos + 31) // 32 * 32
name, ty, off = next(x for x in infos if x[0] == "blk.0.attn_q.weight")
assert ty == 8, ty
b[data + off:data + off + 2] = struct.pack("<H", 0x7e00)  # the first block's f16 scale: NaN
open(sys.argv[2], "wb").write(b)
EOF2
refuse - "nan.gguf: tensor '(blk.0.attn_q|model.layers.0.self_attn.q_proj).weight' .*NaN" "$lmforge" eval nan.gguf --data corpus.txt
refuse - "nan.gguf: tensor .*NaN" "$lmforge" eval nan.gguf --data corpus.txt --dequantize

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
