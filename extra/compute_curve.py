"""How much more compute does masked diffusion need than a GPT? Validity and the graded measure
(sentences that fit their place) of 64 samples against training seconds, for checkpoints of
train.py (the default recipe) and GPTs of extra/train_ar.py, on one plot.

    python extra/compute_curve.py --diffusion out_long/ snapshots/step8000 extra/checkpoint \\
        --gpt 60 180 --gpt_ckpt extra/checkpoint_ar        # trains the missing GPTs (~4 min)

Diffusion: sample.py's defaults (low confidence, 4 blocks, one token per pass, T = 0.8), seed 0.
GPT: T = 1, seed 0. --gpt N trains a GPT for N seconds into results/curve/gpt_Ns/ (its cosine
anneals in that time: each GPT point is a finished run, while snapshots of a long diffusion run are
taken mid-schedule, which favours the GPT). --seconds_per_step replaces a diffusion checkpoint's
own clock (steps x it), for runs that were paused or shared the CPU, or went on from another run
(its steps count too: metrics.json steps_before). Writes results/compute_curve.md, .json and .png;
says how long it took.
"""
import argparse, json, os, subprocess, sys, time

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld
from extra.benchmark_recipes import measure
from extra.evaluate import JUDGE, judge_nll
from extra.loading import ROOT, cores
from extra.train_ar import sample as sample_ar


def gpt_point(ckpt, judge, jtok, n=64):
    model = GPT2LMHeadModel.from_pretrained(ckpt).float().eval()
    tok = PreTrainedTokenizerFast.from_pretrained(ckpt)
    metrics = json.load(open(os.path.join(ckpt, "metrics.json")))
    texts = sample_ar(model, tok, n, 160, 1.0, 0)
    g = storyworld.grade_all(texts)
    return dict(model="GPT", ckpt=ckpt, steps=metrics["steps"], seconds=metrics["seconds"],
                nll=round(metrics["val_nll_per_token"], 4), valid=g["valid"], n=n,
                fitting=round(g["fitting_share"], 3), distinct=len(set(texts)),
                judge=round(judge_nll(texts, judge, jtok), 3))


def diffusion_point(ckpt, judge, jtok, seconds_per_step=None):
    r = measure(ckpt, judge, jtok)
    steps = r["steps"] + r["steps_before"]  # a run that went on from another counts its steps
    seconds = steps * seconds_per_step if seconds_per_step else r["train_seconds"]
    return dict(model="diffusion", ckpt=ckpt, steps=steps, seconds=round(seconds, 1),
                nll=r["l2r"], nelbo=r["nelbo"], valid=r["valid"], n=r["n"],
                fitting=r["fitting"], distinct=r["distinct"], judge=r["judge"])


def plot(points, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for model, style in (("diffusion", "o-"), ("GPT", "s--")):
        ps = sorted((p for p in points if p["model"] == model), key=lambda p: p["seconds"])
        x = [p["seconds"] / 60 for p in ps]
        ax.plot(x, [100 * p["valid"] / p["n"] for p in ps], style, label=f"{model}: valid")
        ax.plot(x, [100 * p["fitting"] for p in ps], style, alpha=0.4,
                label=f"{model}: sentences that fit")
    ax.set_xscale("log")
    ax.set_xlabel("training minutes (2 CPU cores, log scale)")
    ax.set_ylabel("% of 64 samples / of their sentences")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--diffusion", nargs="*", default=[], help="checkpoints of train.py")
    p.add_argument("--seconds_per_step", type=float, default=None,
                   help="training seconds per step of the diffusion runs, if their clocks lie")
    p.add_argument("--gpt", nargs="*", type=int, default=[],
                   help="train GPTs for these seconds (if not already in results/curve/)")
    p.add_argument("--gpt_ckpt", nargs="*", default=[], help="GPT checkpoints already trained")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(cores())
    t0 = time.time()
    judge = GPT2LMHeadModel.from_pretrained(JUDGE).float().eval()
    jtok = PreTrainedTokenizerFast.from_pretrained(JUDGE)
    gpts = list(args.gpt_ckpt)
    for seconds in args.gpt:
        out = os.path.join(args.out, "curve", f"gpt_{seconds}s")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            subprocess.run([sys.executable, "extra/train_ar.py", "--max_seconds", str(seconds),
                            "--max_steps", "100000", "--out_dir", out], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gpts.append(out)
    points = [gpt_point(c, judge, jtok) for c in gpts]
    points += [diffusion_point(c, judge, jtok, args.seconds_per_step) for c in args.diffusion]
    for pt in points:
        print(json.dumps(pt), flush=True)
    lines = ["| model | checkpoint | steps | training s | NLL (diffusion: left to right) | valid | "
             "sentences that fit | distinct | judge NLL |", "|" + "---|" * 9]
    for pt in sorted(points, key=lambda pt: (pt["model"], pt["seconds"])):
        lines.append(f"| {pt['model']} | `{os.path.relpath(pt['ckpt'], ROOT)}` | {pt['steps']} | "
                     f"{pt['seconds']:.0f} | {pt['nll']} | {pt['valid']}/{pt['n']} | "
                     f"{100 * pt['fitting']:.0f}% | {pt['distinct']} | {pt['judge']} |")
    os.makedirs(args.out, exist_ok=True)
    plot(points, os.path.join(args.out, "compute_curve.png"))
    minutes = (time.time() - t0) / 60
    md = (f"# Validity against training time\n\nCommand: `python extra/compute_curve.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}` ({minutes:.0f} min). 64 samples "
          "each, seed 0.\n\n" + "\n".join(lines) + "\n\n![curve](compute_curve.png)\n")
    open(os.path.join(args.out, "compute_curve.md"), "w").write(md)
    json.dump(points, open(os.path.join(args.out, "compute_curve.json"), "w"), indent=1)
    print(md)
    print(f"took {minutes:.1f} min")


if __name__ == "__main__":
    main()
