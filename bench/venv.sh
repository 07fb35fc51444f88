#!/usr/bin/env bash
# Shared by the bench/ scripts: thread count, machine line, and the Python peers' interpreters.
#
# Sourced (`. bench/venv.sh`), it defines
#   bench_threads           sets $threads (THREADS, default nproc) and exports OMP_NUM_THREADS /
#                           MKL_NUM_THREADS to it: lmforge and both torches use that many threads
#                           (the peers also call torch.set_num_threads with it)
#   bench_venv_base         creates bench/.venv (python3 -m venv) where missing, sets $py to it
#   bench_pip REQ...        pip-installs pinned requirements into it (bench/run-tokenizer's peers)
#   bench_venv              sets $py to bench/.venv's interpreter with PyPI's torch==$BENCH_TORCH,
#                           installed when the venv is missing or holds another version, reused
#                           otherwise; PYTHON=... (any interpreter with torch) replaces the venv
#   bench_venv_peft         pip-installs transformers==$BENCH_TRANSFORMERS and peft==$BENCH_PEFT into the
#                           venv ($py) where either is missing or another version (bench/run-lora)
#   bench_debian_torch      sets $py2 to /usr/bin/python3 where Debian's python3-torch imports
#                           (the second column), to "" where it does not (nothing is installed)
#   bench_openblas BIN      OpenBLAS 0.3.21 (Debian 12) does not know newer Xeons (e.g. family 6
#                           model 207) and falls back to its Prescott (SSE3) kernels, ~7x slower
#                           here; where BIN's OpenBLAS reports Prescott on an AVX-512 / AVX2 CPU
#                           this exports OPENBLAS_CORETYPE=SkylakeX / Haswell (for lmforge and
#                           Debian's torch alike) and says so. BENCH_OPENBLAS_FIX=0: as detected;
#                           an OPENBLAS_CORETYPE already set is kept
#   bench_machine           prints the CPU model, core count, ISA, thread count, OpenBLAS core
#   bench_lm_eval           bench_venv + lm-eval and transformers (bench/lm_eval_compare.py)
#   bench_torch_info PY [LABEL]  prints PY's torch version, CPU capability, BLAS / MKL / oneDNN
#   bench_llamacpp          llama.cpp's Python binding llama-cpp-python==$BENCH_LLAMACPP in the venv
#                           ($py; bench_venv_base), built from its pinned sdist (sha256-checked, kept
#                           in the lmforge cache) for this CPU (GGML_NATIVE, OpenMP, no BLAS / CUDA);
#                           a no-op when that version already imports. Several minutes on 2 cores.
# Run directly (`bench/venv.sh`), it makes the venv and prints the machine and both torches.
#
# Env: BENCH_TORCH (the pinned torch version), BENCH_NUMPY, BENCH_VENV (default bench/.venv),
# VENV_PYTHON (the interpreter the venv is made from; default /usr/bin/python3).

BENCH_TORCH=${BENCH_TORCH:-2.15.0}
BENCH_NUMPY=${BENCH_NUMPY:-2.4.6} # only so that importing torch does not warn about NumPy
BENCH_TRANSFORMERS=${BENCH_TRANSFORMERS:-5.24.0} # bench/run-lora's peer (PEFT over transformers)
BENCH_PEFT=${BENCH_PEFT:-0.21.2}
_bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_VENV=${BENCH_VENV:-$_bench_dir/.venv}

bench_threads() {
  threads=${THREADS:-$(nproc)}
  export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
}

# true when interpreter $1 imports torch of version $2 (any version when $2 is empty)
_bench_has_torch() {
  "$1" - "$2" <<'EOF' >/dev/null 2>&1
import sys, torch
want = sys.argv[1]
if want:
    import numpy  # noqa: F401  (the venv has it)
sys.exit(0 if not want or torch.__version__.split("+")[0] == want else 1)
EOF
}

# creates $BENCH_VENV (python3 -m venv) where missing; sets $py to its interpreter
bench_venv_base() {
  py=$BENCH_VENV/bin/python
  [ -x "$py" ] && return 0
  local base=${VENV_PYTHON:-/usr/bin/python3}
  if ! "$base" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "bench: installing python3-venv" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "bench: creating $BENCH_VENV ($("$base" --version))" >&2
  "$base" -m venv "$BENCH_VENV"
}

# pip-installs the pinned requirements "$@" into the venv ($py)
bench_pip() {
  echo "bench: pip install $* into $BENCH_VENV" >&2
  "$py" -m pip install -q --disable-pip-version-check "$@" >&2
}

bench_venv() {
  if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
    _bench_has_torch "$py" "" || { echo "bench: $py cannot import torch" >&2; return 1; }
    return 0
  fi
  py=$BENCH_VENV/bin/python
  _bench_has_torch "$py" "$BENCH_TORCH" && return 0
  bench_venv_base || return 1
  # PyPI's Linux x86_64 torch wheel (MKL, oneDNN, AVX-512 kernels) also pulls its CUDA runtime
  # wheels, about 5 GB installed; downloaded once, the venv is reused afterwards.
  bench_pip "torch==$BENCH_TORCH" "numpy==$BENCH_NUMPY" || return 1
  _bench_has_torch "$py" "$BENCH_TORCH" || { echo "bench: torch $BENCH_TORCH does not import in $BENCH_VENV" >&2; return 1; }
}

bench_venv_peft() {
  "$py" -c 'import sys, transformers, peft
sys.exit(0 if (transformers.__version__, peft.__version__) == (sys.argv[1], sys.argv[2]) else 1)' \
    "$BENCH_TRANSFORMERS" "$BENCH_PEFT" >/dev/null 2>&1 && return 0
  bench_pip "transformers==$BENCH_TRANSFORMERS" "peft==$BENCH_PEFT"
}

bench_debian_torch() {
  py2=""
  if [ -z "${NO_DEBIAN_TORCH:-}" ] && [ "${PYTHON:-}" != /usr/bin/python3 ] && _bench_has_torch /usr/bin/python3 ""; then
    py2=/usr/bin/python3
  fi
}

bench_openblas() {
  openblas_core=$( (OPENBLAS_VERBOSE=2 "$1" --version </dev/null 2>&1 || true) | sed -n 's/^Core: //p' | head -1)
  openblas_note=""
  [ -z "${OPENBLAS_CORETYPE:-}" ] || { openblas_note=" (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE, set by the caller)"; return 0; }
  [ "$openblas_core" = Prescott ] && [ "${BENCH_OPENBLAS_FIX:-1}" != 0 ] || return 0
  local want=""
  if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then want=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then want=Haswell; fi
  [ -n "$want" ] || return 0
  export OPENBLAS_CORETYPE=$want
  openblas_note=" (its fallback: this CPU is not in its tables); this run uses OPENBLAS_CORETYPE=$want (BENCH_OPENBLAS_FIX=0: as detected)"
}

bench_machine() {
  local isa=AVX2
  grep -qw avx512f /proc/cpuinfo && isa=AVX-512
  grep -qw avx2 /proc/cpuinfo || isa="no AVX2"
  local fm
  fm=$(awk -F': ' '/^cpu family/ && !f { f = $2 } /^model\t/ && !m { m = $2 } END { print "family " f " model " m }' /proc/cpuinfo)
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($fm), $(nproc) cores, $isa; threads=${threads:-$(nproc)}"
  [ -z "${openblas_core:-}" ] || echo "openblas (lmforge's BLAS): detects core $openblas_core${openblas_note:-}"
}

# bench_lm_eval: bench_venv + lm-evaluation-harness and transformers (bench/lm_eval_compare.py),
# installed when they do not import; BENCH_LM_EVAL / BENCH_TRANSFORMERS pin their versions
BENCH_LM_EVAL=${BENCH_LM_EVAL:-0.4.13}
BENCH_TRANSFORMERS=${BENCH_TRANSFORMERS:-5.24.0}
bench_lm_eval() {
  bench_venv || return 1
  "$py" -c "import lm_eval, transformers, sklearn" 2>/dev/null && return 0
  bench_pip "lm-eval==$BENCH_LM_EVAL" "transformers==$BENCH_TRANSFORMERS"
}

# llama-cpp-python: the sdist scripts/test also pins (its tokenizer test vectors)
BENCH_LLAMACPP=${BENCH_LLAMACPP:-0.3.36}
BENCH_LLAMACPP_SHA256=${BENCH_LLAMACPP_SHA256:-832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e}
bench_llamacpp() {
  [ -n "${py:-}" ] || bench_venv_base || return 1
  "$py" -c 'import sys, llama_cpp; sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)' "$BENCH_LLAMACPP" 2>/dev/null && return 0
  local dir=${LMFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lmforge}/llama-cpp-python-$BENCH_LLAMACPP/sdist
  local sdist=$dir/llama_cpp_python-$BENCH_LLAMACPP.tar.gz
  if [ ! -f "$sdist" ]; then
    mkdir -p "$dir"
    "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: "llama-cpp-python==$BENCH_LLAMACPP" -d "$dir" >&2 ||
      { echo "bench: could not download llama-cpp-python $BENCH_LLAMACPP's sdist" >&2; return 1; }
  fi
  echo "$BENCH_LLAMACPP_SHA256  $sdist" | sha256sum -c --quiet - ||
    { echo "bench: $sdist does not have the pinned sha256 $BENCH_LLAMACPP_SHA256 (remove it to download again)" >&2; return 1; }
  echo "bench: building llama-cpp-python $BENCH_LLAMACPP from $sdist into $BENCH_VENV (several minutes)" >&2
  # the sdist file itself, so pip builds it here (its dependencies come as wheels); mtmd (LLAVA) is
  # not needed for text models
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DLLAVA_BUILD=OFF ${BENCH_LLAMACPP_CMAKE_ARGS:-}" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$py" -m pip install -q --disable-pip-version-check --no-cache-dir "$sdist" >&2 || return 1
  "$py" -c 'import sys, llama_cpp; sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)' "$BENCH_LLAMACPP" ||
    { echo "bench: llama-cpp-python $BENCH_LLAMACPP does not import in $BENCH_VENV" >&2; return 1; }
}

bench_torch_info() {
  "$1" "$_bench_dir/torch_info.py" "${2:-$1}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then # run, not sourced
  set -euo pipefail
  bench_threads
  bench_venv
  bench_debian_torch
  [ ! -x "$_bench_dir/../build/bench_step" ] || bench_openblas "$_bench_dir/../build/bench_step"
  bench_machine
  bench_torch_info "$py" "PyPI, $py"
  [ -z "$py2" ] || bench_torch_info "$py2" "Debian, $py2"
fi
