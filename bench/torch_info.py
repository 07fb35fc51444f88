"""One line about the torch an interpreter imports: version, the CPU kernels it dispatches to and
the BLAS / oneDNN it was built with (from torch.__config__.show()). Used by bench/venv.sh.
Usage: torch_info.py [LABEL]"""
import os
import re
import sys

import torch

cfg = torch.__config__.show()


def grab(pattern, default="none"):
    m = re.search(pattern, cfg)
    return m.group(1).strip() if m else default


try:
    cap = torch.backends.cpu.get_cpu_capability()
except AttributeError:  # torch < 2.0: only the build summary says it
    cap = grab(r"CPU capability usage:\s*(\S+)", "?")
blas = grab(r"BLAS_INFO=([^,\s]+)")
if blas == "generic":  # Debian's: whichever libblas.so.3 the alternatives system points to
    try:
        libs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln.rsplit("/", 1)[-1]})
        real = sorted({os.path.realpath(lib) for lib in libs})
        blas += " (" + ", ".join(r.split("/x86_64-linux-gnu/")[-1] for r in real) + ")" if real else ""
    except OSError:
        pass
mkl = "MKL " + grab(r"Intel\(R\) (?:oneAPI )?Math Kernel Library Version ([0-9.]+)", "?") if torch.backends.mkl.is_available() else "no MKL"
dnn = "oneDNN " + grab(r"Intel\(R\) MKL-DNN v([0-9.]+)", grab(r"oneDNN v([0-9.]+)", "?")) if torch.backends.mkldnn.is_available() else "no oneDNN"
label = sys.argv[1] if len(sys.argv) > 1 else sys.executable
print(f"torch {torch.__version__} ({label}): CPU capability {cap}, BLAS {blas}, {mkl}, {dnn}, "
      f"{torch.get_num_threads()} threads")
