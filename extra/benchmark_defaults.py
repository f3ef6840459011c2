"""Measure the promises of the README: train with the defaults, time it, then sample 64 stories with
sample.py's defaults and count the valid ones.

    # python train.py, then python sample.py --n 64
    python extra/benchmark_defaults.py
    python extra/benchmark_defaults.py --train_args="--preset long" --out_dir /tmp/long
    # only the sampling half
    python extra/benchmark_defaults.py --skip_train --out_dir extra/checkpoint

Prints one JSON line: wall-clock seconds of the training command, its final validation -ELBO next to
the true entropy, and the validity of the samples.
"""
import argparse, json, os, shlex, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_args", default="",
                   help="extra arguments for train.py (default: none, the tiny default)")
    p.add_argument("--out_dir", default="/tmp/benchmark_defaults",
                   help="checkpoint folder to write (or read)")
    p.add_argument("--skip_train", action="store_true", help="only sample from --out_dir")
    p.add_argument("--n", type=int, default=64, help="stories to sample")
    p.add_argument("--sample_args", default="",
                   help="extra arguments for sample.py (default: none)")
    args = p.parse_args()
    result = {}
    if not args.skip_train:
        t0 = time.time()
        cmd = [sys.executable, "train.py", "--out_dir", args.out_dir,
               *shlex.split(args.train_args)]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        result["train_seconds"] = round(time.time() - t0, 1)
    metrics = json.load(open(os.path.join(args.out_dir, "metrics.json")))
    result.update({k: metrics.get(k)
                   for k in ["val_nelbo_per_token", "true_entropy_per_token", "steps"]})
    t0 = time.time()
    cmd = [sys.executable, "sample.py", "--ckpt", args.out_dir, "--n", str(args.n), "--json",
           *shlex.split(args.sample_args)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    result.update(sample_seconds=round(time.time() - t0, 1), valid=sum(r["valid"] for r in rows),
                  n=len(rows), distinct=len({r["text"] for r in rows}))
    problems = [q for r in rows for q in r["problems"]]
    result["first_problems"] = problems[:5]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
