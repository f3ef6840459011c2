"""Do Seed Diffusion edits earn their place? Sample at a low step budget from a model trained with
the edit curriculum (train.py --edits) and from one trained without, each with and without
edit-aware sampling, and score the stories: validity (the story world's checker) and the NLL a
judge gives them (the shipped GPT baseline, extra/checkpoint_ar; real stories get 0.33 nats/token
from it, lower is more story-like).

    python train.py --edits --out_dir out_edits                       # ~9 min
    python extra/benchmark_edits.py --with_edits out_edits --without extra/checkpoint
"""
import argparse, os, sys

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import checks, storyworld
from extra.evaluate import JUDGE, judge_nll, sample_diffusion
from extra.loading import cores, load

def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--with_edits", required=True, help="a checkpoint trained with train.py --edits")
    p.add_argument("--without",
                   default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint"),
                   help="the same model trained without edits (default: the shipped one)")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=20,
                   help="forward passes for 156 tokens (default ~ gen_length / 8)")
    p.add_argument("--max_edits", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(cores())
    judge, jtok = (GPT2LMHeadModel.from_pretrained(JUDGE).float().eval(),
                   PreTrainedTokenizerFast.from_pretrained(JUDGE))
    rows = ["| model | sampling | valid | sentences that fit | judge NLL (nats/token) | NFE |",
            "|---|---|---|---|---|---|"]
    for label, ckpt in (("trained with edits", args.with_edits),
                        ("trained without edits", args.without)):
        model, tok, _ = load(ckpt)
        checks.storyworld_model(ckpt, "story validity")
        for edits in (args.max_edits, 0):
            texts, nfe, _ = sample_diffusion(model, tok, args.n, 160,
                                             dict(steps=args.steps, block_length=39, edits=edits))
            g = storyworld.grade_all(texts)  # validity and the graded measure
            rows.append(
                f"| {label} | "
                f"{'edits (at most ' + str(edits) + ' per position)' if edits else 'no edits'} | "
                f"{g['valid']}/{args.n} | {100 * g['fitting_share']:.0f}% | "
                f"{judge_nll(texts, judge, jtok):.3f} | {nfe} |")
            print(rows[-1], flush=True)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
