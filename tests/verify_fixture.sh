#!/usr/bin/env bash
# Fixture test through the user-facing command: lmforge verify MODEL REFERENCE must print PASS
# (logits, loss and every parameter gradient within 1e-4 x max(1, max|ref|)) and exit 0; with an
# impossible tolerance the same command must print FAIL and exit non-zero (the check can fail).
set -u
lmforge=$1 dir=$2
if [ ! -f "$dir/reference.safetensors" ]; then
  echo "skipped: fixture missing ($dir)"
  exit 77
fi
out=$("$lmforge" verify "$dir" "$dir/reference.safetensors")
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: verify exited $rc"; exit 1; }
echo "$out" | grep -q '^verify: PASS$' || { echo "FAIL: no 'verify: PASS' line"; exit 1; }
n=$(echo "$out" | grep -c '^grad\.')
[ "$n" -gt 0 ] || { echo "FAIL: no gradients compared"; exit 1; }
echo "$out" | grep -q '^logits ' && echo "$out" | grep -q '^loss ' || { echo "FAIL: logits/loss not compared"; exit 1; }
strict=$("$lmforge" verify "$dir" "$dir/reference.safetensors" --tol 1e-12)
if [ $? -eq 0 ] || ! echo "$strict" | grep -q '^verify: FAIL ('; then
  echo "FAIL: verify with --tol 1e-12 should fail"; exit 1
fi
echo "1 passed, 0 failed"
