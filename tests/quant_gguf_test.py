"""lmforge's block quantizers against the `gguf` package (gguf-py, llama.cpp's own Python port).
(a) F16, BF16, Q8_0, Q4_0, Q4_1: lmforge's bytes equal gguf.quants.quantize's, byte for byte, on random
    rows at several scales and on adversarial rows (zeros, a huge outlier, constants, negative only,
    tiny values, exact rounding ties);
(b) every type lmforge reads (those plus Q4_K, Q6_K): lmforge's dequantizer equals gguf's on the same
    bytes (lmforge's own blocks, and random bytes for the K-quants);
(c) Q4_K: gguf-py has no Q4_K quantizer, so the bytes are checked by properties that hold for ggml's
    quantize_row_q4_K_ref whatever its scale search chose: with the block's scales as stored (decoded by
    gguf-py), every nibble is the clamped nearest level of its value (ggml's second pass), the super-block
    scales are the largest sub-block fit over 63 in f16, some sub-block uses scale code 63, and the
    error is within the bound the 6-bit scales allow. The search itself is held to ggml by the reference
    reimplementation's review and, when LF_GGML_BASE names a llama.cpp build's libggml-base.so, by
    (d) ggml's own quantize_row_*_ref called through ctypes, byte for byte (Q8_0, Q4_0, Q4_1, Q4_K).
Usage: quant_gguf_test.py QUANT_TOOL. Exit 77 (skipped) without numpy + gguf."""
import ctypes
import os
import subprocess
import sys

try:
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize
except Exception as e:  # noqa: BLE001
    print(f"skipped: numpy + gguf not importable here ({type(e).__name__}: {e})")
    sys.exit(77)

tool = sys.argv[1]
fails = checks = 0
rng = np.random.default_rng(12)


def check(cond, msg):
    global fails, checks
    checks += 1
    if not cond:
        fails += 1
        print("FAIL", msg)


def run(mode, name, data):
    p = subprocess.run([tool, mode, name], input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"quant_tool {mode} {name}: {p.stderr.decode().strip()}")
    return p.stdout


def rows(n):
    """random rows at several scales, then the adversarial ones; n values each (n a multiple of 256)"""
    out = [rng.standard_normal(n).astype(np.float32) * s for s in (1e-3, 0.02, 1.0, 30.0)]
    out.append(rng.uniform(-1, 1, n).astype(np.float32))
    out.append(np.zeros(n, np.float32))
    x = (rng.standard_normal(n) * 0.01).astype(np.float32)
    x[5] = 40.0
    out.append(x)  # one huge outlier
    out.append(np.full(n, 0.375, np.float32))  # constant
    out.append(np.full(n, -2.5, np.float32))  # negative constant
    out.append(-np.abs(rng.standard_normal(n)).astype(np.float32))  # negative only
    out.append((rng.standard_normal(n) * 1e-30).astype(np.float32))  # f16 scales underflow to zero
    out.append((rng.standard_normal(n) * 1e-6).astype(np.float32))  # f16 subnormal scales
    out.append(rng.integers(-8, 8, n).astype(np.float32) * 0.25)  # exact levels (rounding ties)
    x = rng.standard_normal(n).astype(np.float32)
    x[::32] = 1.0
    x[1::32] = -1.0  # the largest magnitude both signs
    out.append(x)
    return out


types = {"f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1}
n = 2048
for name, qt in types.items():
    worst = None
    for i, x in enumerate(rows(n)):
        ours = np.frombuffer(run("quantize", name, x.tobytes()), np.uint8)
        ref = quantize(x.reshape(1, -1), qt).view(np.uint8).reshape(-1)  # F16 comes back as float16
        diff = np.flatnonzero(ours != ref)
        check(ours.size == ref.size and diff.size == 0,
              f"{name} row {i}: {diff.size} of {ref.size} bytes differ from gguf-py's (first at byte {diff[:1]})")
        back = np.frombuffer(run("dequantize", name, ours.tobytes()), np.float32)
        gback = dequantize(ref.reshape(1, -1), qt).reshape(-1)
        check(np.array_equal(back, gback), f"{name} row {i}: dequantized values differ from gguf-py's")
        err = float(np.max(np.abs(back - x)))
        worst = err if worst is None else max(worst, err)
    print(f"{name}: {len(rows(n))} rows of {n} byte-identical to gguf-py; round trip max abs error {worst:.3g}")

# Q6_K and Q4_K dequantization of arbitrary bytes (finite f16 scales) against gguf-py's
for name, qt, bs, dofs in (("q4_k", Q.Q4_K, 144, (0, 2)), ("q6_k", Q.Q6_K, 210, (208,))):
    blocks = rng.integers(0, 256, (16, bs), dtype=np.uint8)
    for o in dofs:
        blocks[:, o:o + 2] = np.frombuffer((rng.standard_normal(16) * 0.01).astype(np.float16).tobytes(), np.uint8).reshape(16, 2)
    back = np.frombuffer(run("dequantize", name, blocks.tobytes()), np.float32)
    gback = dequantize(blocks, qt).reshape(-1)
    check(np.array_equal(back, gback), f"{name}: dequantized random blocks differ from gguf-py's "
          f"(max {np.max(np.abs(back - gback)):.3g})")
print("q4_k, q6_k: dequantization of random blocks identical to gguf-py's")


def q4k_scales(block):
    """(d, dmin, sc[8], mn[8]) of one Q4_K block, the 6-bit unpacking done here independently"""
    d = float(block[0:2].view(np.float16)[0])
    dmin = float(block[2:4].view(np.float16)[0])
    s = block[4:16].astype(np.int32)
    sc = [s[j] & 63 if j < 4 else (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4) for j in range(8)]
    mn = [s[j + 4] & 63 if j < 4 else (s[j + 4] >> 4) | ((s[j] >> 6) << 4) for j in range(8)]
    return d, dmin, sc, mn


worst_ratio = 0.0
for i, x in enumerate(rows(n)):
    ours = np.frombuffer(run("quantize", "q4_k", x.tobytes()), np.uint8).reshape(-1, 144)
    back = dequantize(ours, Q.Q4_K).reshape(-1)
    ourback = np.frombuffer(run("dequantize", "q4_k", ours.tobytes()), np.float32)
    check(np.array_equal(back, ourback), f"q4_k row {i}: lmforge's dequantizer differs from gguf-py's")
    check(np.all(np.isfinite(back)), f"q4_k row {i}: non-finite values after the round trip")
    for b in range(ours.shape[0]):
        blk, xb = ours[b], x[256 * b:256 * (b + 1)]
        d, dmin, sc, mn = q4k_scales(blk)
        nib = np.concatenate([np.concatenate([blk[16 + 32 * k:48 + 32 * k] & 15, blk[16 + 32 * k:48 + 32 * k] >> 4])
                              for k in range(4)]).astype(np.int32)
        for j in range(8):
            ds, dm = np.float32(d) * np.float32(sc[j]), np.float32(dmin) * np.float32(mn[j])
            if ds == 0:
                continue  # ggml keeps the search's levels where the stored scale is zero
            lev = np.clip(np.rint((xb[32 * j:32 * j + 32] + dm) / ds), 0, 15).astype(np.int32)
            # nearest_int rounds half to even, as np.rint; (x + dm)/ds in float32 as ggml computes it
            same = np.array_equal(lev, nib[32 * j:32 * j + 32])
            check(same, f"q4_k row {i} block {b} sub-block {j}: a nibble is not the nearest level under the stored scales")
        check(max(sc) in (0, 63) and (max(sc) == 63 or d == 0),
              f"q4_k row {i} block {b}: largest 6-bit scale {max(sc)} with d {d} (ggml maps the largest fit to 63)")
        # the error bound test_quant.c derives (R: span of a sub-block fit over the super-block, A: max |x|)
        xs = xb.astype(np.float64)
        R, A = xs.max() - min(xs.min(), 0.0), np.abs(xs).max()
        err = float(np.max(np.abs(back[256 * b:256 * (b + 1)] - xs)))
        bound = R / 14 + 15 * R / (14 * 126) + A / 126 + (15 * R / 14 + A) * 2 ** -11 + 1008 * 2 ** -25 + 1e-6 * A
        worst_ratio = max(worst_ratio, err / bound)
        check(err <= bound, f"q4_k row {i} block {b}: round-trip error {err:.3g} above the bound {bound:.3g}")
print(f"q4_k: {len(rows(n))} rows: gguf-py dequantizes lmforge's bytes as lmforge does; every nibble the nearest "
      f"level under the stored scales; worst error / bound {worst_ratio:.2f}")

# (d) optional: ggml's own C reference quantizers, from a llama.cpp build's libggml-base.so named by
# LF_GGML_BASE (not part of CI: no pinned llama.cpp build is fetched), byte for byte, Q4_K included
lib_path = os.environ.get("LF_GGML_BASE")
if lib_path:
    try:
        lib = ctypes.CDLL(lib_path)
    except OSError as e:
        check(False, f"LF_GGML_BASE={lib_path} does not load: {e}")
        lib = None
    for name, sym, bs, blk in (("q8_0", "quantize_row_q8_0_ref", 34, 32), ("q4_0", "quantize_row_q4_0_ref", 18, 32),
                               ("q4_1", "quantize_row_q4_1_ref", 20, 32), ("q4_k", "quantize_row_q4_K_ref", 144, 256)):
        if lib is None:
            break
        fn = getattr(lib, sym)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        nrows = same = 0
        for i, x in enumerate(rows(n) + [rng.standard_normal(n).astype(np.float32) * 0.05 for _ in range(50)]):
            out = np.zeros(n // blk * bs, np.uint8)
            fn(x.ctypes.data, out.ctypes.data, n)
            ours = np.frombuffer(run("quantize", name, x.tobytes()), np.uint8)
            nrows += 1
            same += np.array_equal(ours, out)
            diff = np.flatnonzero(ours != out)
            check(diff.size == 0, f"{name} row {i}: {diff.size} bytes differ from ggml's {sym} (first at {diff[:1]})")
        print(f"{name}: {same} of {nrows} rows byte-identical to ggml's {sym} ({lib_path})")
else:
    print("ggml's C quantizers: not compared (set LF_GGML_BASE to a llama.cpp build's libggml-base.so)")

print(f"quant_gguf: {checks} checks, {fails} failed")
sys.exit(1 if fails else 0)
