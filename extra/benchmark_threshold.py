"""Threshold decoding (Fast-dLLM, Wu et al. 2025): how many forward passes does it save, and what
does it cost in validity? sample.py's defaults (4 blocks of 39, T = 0.8), n stories of the story
world (seed 0 unless --seeds), one token per pass against --threshold tau (each prediction above
tau) and against --threshold tau --joint (the most confident while the product of their
confidences stays above tau).

    python extra/benchmark_threshold.py                      # the shipped model, 64 stories: ~4 min
    python extra/benchmark_threshold.py --ckpt out --taus 0.9 0.8 --joint_taus 0.9 0.8
    python extra/benchmark_threshold.py --n 256 --seeds 0 1      # 512 stories a row

Two counts of passes. A batch makes as many passes as its slowest row needs (a row that has
filled its block waits for the others), so "batch passes" is what sampling n stories at once
costs. "Passes a story needs" counts, for each row, only the passes in which it still had masks
to fill: what one story sampled alone costs, as in chat.py (rows never interact, so the passes a
row needs are a draw of what a story alone needs). With several --seeds, each row samples n stories
per seed (one batch each): the counts add up, the passes are means. Writes results/threshold.md.
"""
import argparse, json, os, sys, time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import checks, storyworld
from extra.loading import ROOT, SHIPPED, bos_id, cores, load
from sample import decode, generate


def run(model, tok, n, tau, seed=0, gen_length=156, block_length=39, temperature=0.8, joint=False):
    """(texts, batch passes, mean passes a story needs) for one threshold (None: one per pass)."""
    torch.manual_seed(seed)
    passes, needed, before = [0], torch.zeros(n), [None]

    def count(x):  # called after every pass with the canvas (n, 1 + gen_length)
        passes[0] += 1
        needed.add_(1.0 if before[0] is None else (x != before[0]).any(1).float())
        before[0] = x.clone()

    x = torch.full((n, 1), bos_id(tok))
    out = generate(model, x, steps=gen_length, gen_length=gen_length, block_length=block_length,
                   temperature=temperature, mask_id=tok.mask_token_id, threshold=tau,
                   joint=joint, on_step=count)
    return [decode(tok, r[1:]) for r in out], passes[0], needed.mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=SHIPPED)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--taus", type=float, nargs="*", default=[0.9, 0.7],
                   help="thresholds each prediction must pass (Fast-dLLM)")
    p.add_argument("--joint_taus", type=float, nargs="*", default=[0.9],
                   help="thresholds the product of a pass's confidences must pass (--joint)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="one batch of --n stories per seed (default: 0)")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = p.parse_args(argv)
    if args.n < 1 or any(not 0 < tau < 1 for tau in args.taus + args.joint_taus):
        checks.fail("--n must be at least 1 and every --taus and --joint_taus value between 0 "
                    "and 1")
    torch.set_num_threads(cores())
    t0 = time.time()
    model, tok, _ = load(args.ckpt)
    checks.storyworld_model(args.ckpt, "story validity")
    lines = ["| decoding | batch passes | passes a story needs | valid | points from one per pass "
             "| sentences that fit |", "|---|---|---|---|---|---|"]
    n, base = args.n * len(args.seeds), None
    rows = [(None, False)] + [(tau, False) for tau in args.taus] + [
        (tau, True) for tau in args.joint_taus]
    for tau, joint in rows:
        runs = [run(model, tok, args.n, tau, seed, joint=joint) for seed in args.seeds]
        texts = [t for r in runs for t in r[0]]
        batch, needed = (sum(r[i] for r in runs) / len(runs) for i in (1, 2))
        g = storyworld.grade_all(texts)
        base = g["valid"] if base is None else base
        row = dict(threshold=tau, joint=joint, seeds=args.seeds, batch_passes=batch,
                   story_passes=round(needed, 1), valid=g["valid"], n=n,
                   fitting=round(g["fitting_share"], 3))
        print(json.dumps(row), flush=True)
        name = ("one token per pass" if tau is None else
                f"`--threshold {tau}{' --joint' if joint else ''}`")
        lines.append(f"| {name} | {batch:g} | {needed:.1f} | {g['valid']}/{n} | "
                     f"{100 * (g['valid'] - base) / n:+.1f} | {100 * g['fitting_share']:.0f}% |")
    minutes = (time.time() - t0) / 60
    command = " ".join(["python extra/benchmark_threshold.py"] + (sys.argv[1:] if argv is None
                                                                  else argv))
    md = (f"# Threshold decoding\n\nCommand: `{command}` ({minutes:.1f} min), model "
          f"`{os.path.relpath(args.ckpt, ROOT)}`, {args.n} stories at each seed of {args.seeds}, "
          "sample.py's defaults otherwise.\n\n" + "\n".join(lines) + "\n")
    os.makedirs(args.out, exist_ok=True)
    open(os.path.join(args.out, "threshold.md"), "w").write(md)
    print(md)
    print(f"took {minutes:.1f} min")


if __name__ == "__main__":
    main()
