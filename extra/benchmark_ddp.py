"""One process or two: the same global batch must give the same training, and a two-process run must
end cleanly every time. Runs train.py on the story world once as one process (batch 16) and
--repeats times as a real 2-rank DDP run on the CPU (gloo, batch 8 per rank), each in its own empty
working directory, and prints per run: the exit status, the seconds, the validation -ELBO at every
evaluation, whether the two ranks' losses differ at step 1 (each draws its own t and masks), and
whether anything but out/ appeared in the working directory (only rank 0 writes).

    python extra/benchmark_ddp.py  # ~9 minutes on 2 CPU cores (200 steps, 10 two-process runs)
"""
import argparse, json, os, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(processes, args):
    """train.py as one process, or as a real DDP run of several on the CPU (gloo), on a free port;
    and its env."""
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *args]
    if processes > 1:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", str(processes), "--main_process_port", port, *cmd[1:]]
    return cmd, dict(os.environ, ACCELERATE_USE_CPU="1", HF_HUB_OFFLINE="1")


def train(work, processes, args):
    cmd, env = command(processes, args)
    t0 = time.time()
    p = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800, env=env)
    seconds = time.time() - t0
    metrics = os.path.join(work, "out", "metrics.json")
    log = json.load(open(metrics))["log"] if os.path.exists(metrics) else []
    return dict(rc=p.returncode, seconds=seconds, log=log, saved=p.stdout.count("saved "),
                files=sorted(os.listdir(work)),
                error=p.stderr.strip().splitlines()[-1] if p.returncode else "")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    common = ["--max_steps", str(args.steps), "--eval_every", str(args.steps // 4), "--n_val", "64",
              "--out_dir", "out"]
    runs = [("1 process x 16 rows", 1, "16")] + [(f"2 processes x 8 rows, run {i + 1}", 2, "8")
                                                 for i in range(args.repeats)]
    print("| run | exit | seconds | val -ELBO at steps "
          + ", ".join(str(s) for s in [1] + [args.steps // 4 * k for k in (1, 2, 3, 4)])
          + " | largest difference from 1 process | rank losses at step 1 | "
            "only out/ written, saved once |\n"
          + "|---|---|---|---|---|---|---|")
    first = None
    for name, processes, batch in runs:
        r = train(tempfile.mkdtemp(), processes, common + ["--batch_size", batch])
        first = first or r["log"]
        curve = ", ".join(f"{e['val_nelbo_per_token']:.3f}" for e in r["log"])
        diff = max((abs(a["val_nelbo_per_token"] - b["val_nelbo_per_token"])
                    / a["val_nelbo_per_token"] for a, b in zip(first, r["log"])),
                   default=float("nan"))
        ranks = (", ".join(f"{x:.3f}" for x in r["log"][0]["train_loss_by_rank"]) if r["log"]
                 else "-")
        print(
            f"| {name} | {r['rc']} | {r['seconds']:.0f} | {curve} | {100 * diff:.1f}% | {ranks} | "
            f"{'yes' if r['files'] == ['out'] and r['saved'] == 1 else 'NO: ' + str(r['files'])} |"
            + (f" {r['error']}" if r["rc"] else ""),
            flush=True)

if __name__ == "__main__":
    main()
