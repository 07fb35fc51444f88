"""Optuna on lmforge tune's built-in test functions (bench/run-tune): best value per seed for
TPE (Optuna's defaults) and random sampling at a given trial budget, and the sampler+storage
overhead per trial with Optuna's SQLite storage. Writes JSON lines on stdout."""
import json, math, os, sys, time

import numpy as np
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)

HART_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
HART_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
          [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
HART_AL = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    return -sum(HART_AL[i] * math.exp(-sum(HART_A[i][j] * (x[j] - 1e-4 * HART_P[i][j]) ** 2 for j in range(6)))
                for i in range(4))


def space(name):
    if name == "branin":
        return [("x1", -5.0, 10.0), ("x2", 0.0, 15.0)]
    if name in ("hartmann6", "noisy-hartmann6"):
        return [(f"x{i+1}", 0.0, 1.0) for i in range(6)]
    if name == "rosen10":
        return [(f"x{i+1}", -2.0, 2.0) for i in range(10)]
    raise SystemExit(f"unknown function {name}")


def evaluate(name, x, rng):
    if name == "branin":
        b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
        return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10
    if name == "hartmann6":
        return hartmann6(x)
    if name == "noisy-hartmann6":  # the noise differs from lmforge's draws, with the same law N(0, 0.1^2)
        return hartmann6(x) + 0.1 * rng.standard_normal()
    if name == "rosen10":
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(2))


def run(name, sampler, seed, trials, storage=None):
    sp = space(name)
    rng = np.random.default_rng(seed + 12345)
    s = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=s, storage=storage, direction="minimize")
    best, truebest = math.inf, math.inf
    t0 = time.perf_counter()
    for _ in range(trials):
        tr = study.ask()
        x = [tr.suggest_float(n, lo, hi) for n, lo, hi in sp]
        v = evaluate(name, x, rng)
        study.tell(tr, v)
        if v < best:
            best = v
            truebest = hartmann6(x) if name == "noisy-hartmann6" else v
    return best, truebest, time.perf_counter() - t0


def main():
    mode = sys.argv[1]
    if mode == "quality":  # quality FUNC SAMPLER TRIALS SEED0 SEEDS
        name, sampler, trials, s0, ns = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        for seed in range(s0, s0 + ns):
            best, truebest, secs = run(name, sampler, seed, trials)
            print(json.dumps({"tool": "optuna", "function": name, "sampler": sampler, "trials": trials, "seed": seed,
                              "best": best, "best_true": truebest, "seconds": secs}), flush=True)
    elif mode == "kjv":  # kjv LMFORGE SPACE.json TRIALS DIR SEED -- fixed training keys...
        kjv(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[8:])
    elif mode == "overhead":  # overhead FUNC TRIALS DIR: TPE with Optuna's SQLite (RDB) storage
        name, trials, d = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        path = os.path.join(d, "optuna.db")
        if os.path.exists(path):
            os.remove(path)
        best, _, secs = run(name, "tpe", 0, trials, storage=f"sqlite:///{path}")
        print(json.dumps({"tool": "optuna", "function": name, "sampler": "tpe", "storage": "sqlite", "trials": trials,
                          "best": best, "seconds": secs, "ms_per_trial": 1000 * secs / trials}), flush=True)


def kjv(lf, space_path, trials, study_dir, seed, fixed):
    """The KJV study driven by Optuna: TPE (seed 0) and MedianPruner with the same settings as
    lmforge tune's, each trial a child `lmforge train --json`; its eval lines are reported as they
    come and a pruned trial gets SIGTERM (lmforge finishes the step, checkpoints and exits)."""
    import signal, subprocess
    spec = json.load(open(space_path))
    os.makedirs(study_dir, exist_ok=True)

    def objective(trial):
        args = []
        for k, p in spec.items():
            if p["type"] == "float":
                v = trial.suggest_float(k, p["low"], p["high"], log=p.get("log", False), step=p.get("step"))
                args.append(f"--{k}={v:.9g}")
            elif p["type"] == "int":
                v = trial.suggest_int(k, p["low"], p["high"], step=p.get("step", 1), log=p.get("log", False))
                args.append(f"--{k}={v}")
            else:
                v = trial.suggest_categorical(k, p["choices"])
                args.append(f"--{k}={v}")
        run_dir = os.path.join(study_dir, f"trial-{trial.number:04d}")
        proc = subprocess.Popen([lf, "train", "--json", f"--run_dir={run_dir}"] + fixed + args, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        best, pruned = math.inf, False
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") != "eval" or ev["step"] == 0:
                continue
            best = min(best, ev["val_loss"])
            trial.report(ev["val_loss"], ev["step"])
            if trial.should_prune():
                pruned = True
                proc.send_signal(signal.SIGTERM)
                break
        proc.stdout.close()
        proc.wait()
        if pruned:
            raise optuna.TrialPruned()
        if proc.returncode != 0 or not math.isfinite(best):
            raise RuntimeError(f"lmforge train failed ({proc.returncode})")
        return best

    t0 = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=50))
    study.optimize(objective, n_trials=trials)
    secs = time.perf_counter() - t0
    states = [t.state.name for t in study.trials]
    print(json.dumps({"tool": "optuna", "study": "kjv", "workers": 1, "sampler_seed": seed, "trials": trials, "best": study.best_value,
                      "best_params": study.best_params, "pruned": states.count("PRUNED"),
                      "complete": states.count("COMPLETE"), "failed": states.count("FAIL"), "seconds": secs}), flush=True)


if __name__ == "__main__":
    main()
