"""
Generate text with a masked diffusion model by iterative unmasking (Nie et al. 2025, LLaDA, Alg. 4 and 5).

    python sample.py                              # stories from out/ (or extra/checkpoint/), with validity
    python sample.py --show                       # watch one canvas denoise, step by step
    python sample.py --prompt "Once upon a time, there was a fox" --n 4 --temperature 0
    python sample.py --remasking random --steps 160 --json

The canvas starts as prompt + gen_length masks. Each step predicts every masked token at once and
commits some of them; the rest stay masked for later steps:
  random (Alg. 4):         each predicted token stays masked with probability s/t, t -> s = t - 1/steps
  low_confidence (Alg. 5): commit the k most confident predictions (k from num_transfer_tokens)
  threshold (Fast-dLLM):   commit every prediction with confidence > threshold, at least one
With block_length < gen_length the canvas is filled block by block, left to right (semi-autoregressive).
"""
import argparse, json, os, sys

import torch

from extra import checks, storyworld
from extra.loading import bos_id, context, load
from edits_and_sft import revise

SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extra", "checkpoint")


def num_transfer_tokens(masked, steps):
    """How many tokens to commit at each step: an even split, the remainder going to the first steps.
    >>> num_transfer_tokens(torch.ones(1, 10, dtype=torch.bool), 4).tolist()
    [[3, 3, 2, 2]]"""
    n = masked.sum(1, keepdim=True)                                                 # (B, 1)
    k = (n // steps).repeat(1, steps)                                               # (B, steps)
    return k + (torch.arange(steps, device=n.device) < n % steps).long()


def sample_tokens(logits, temperature):
    """A draw from softmax(logits / T) by Gumbel-max, argmax(l / T + g) (LLaDA); T = 0 is the argmax."""
    return (logits / temperature - torch.log(-torch.log(torch.rand_like(logits)))).argmax(-1) if temperature > 0 else logits.argmax(-1)


@torch.no_grad()
def generate(model, x, *, steps, gen_length, block_length, temperature=0.0, remasking="low_confidence",
             mask_id, threshold=None, edits=0, edit_threshold=0.9, eos_id=None, on_step=None):
    """x: (B, P) prompt ids -> (B, P + gen_length) canvas with every mask filled.
    Logits are float64 and sampled with Gumbel noise (LLaDA); temperature 0 is argmax, deterministic.
    edits > 0: in every pass the model may also revise tokens it committed earlier in the text (at most `edits`
    times per position, when it puts more than edit_threshold on another token); see edits_and_sft.revise.
    eos_id: stop after the first block in which every row has written an EOS (the rest becomes EOS filler)."""
    if gen_length % block_length or steps % (gen_length // block_length):
        raise ValueError(f"gen_length ({gen_length}) must be a multiple of block_length ({block_length}) and steps "
                         f"({steps}) a multiple of the number of blocks ({gen_length // block_length})")
    B, P = x.shape
    x = torch.cat([x, torch.full((B, gen_length), mask_id, dtype=torch.long, device=x.device)], 1)
    n = steps // (gen_length // block_length)                                       # steps per block
    revisions = torch.zeros_like(x)                                                 # (B, P + gen_length)
    for lo in range(P, P + gen_length, block_length):
        block = x[:, lo:lo + block_length]                                          # a view: writes go into x
        k, i = num_transfer_tokens(block == mask_id, n), 0
        while (masked := block == mask_id).any():                                   # (B, b)
            logits = model(input_ids=x).logits[:, (P if edits else lo):lo + block_length].double()  # (B, b, V)
            logits[..., mask_id] = -float("inf")                                    # SUBS: never emit [MASK]
            if edits:  # before this pass commits anything: only tokens committed in earlier passes are revised
                revise(x, logits, P, lo + block_length, revisions, edit_threshold, edits, mask_id)
                logits = logits[:, lo - P:]                                         # (B, b, V): this block
            x0 = sample_tokens(logits, temperature)                                 # (B, b)
            if remasking == "random":  # Alg. 4: keep each prediction with probability 1 - s/t
                t, s = 1 - i / n, max(0.0, 1 - (i + 1) / n)
                commit = masked & (torch.rand(masked.shape, device=x.device) >= s / t)
            else:  # Alg. 5: confidence = model probability of the chosen token
                conf = torch.where(masked, logits.softmax(-1).gather(-1, x0[..., None])[..., 0], -1.0)
                rank = conf.argsort(1, descending=True).argsort(1)                  # 0 = most confident
                if threshold is None:
                    commit = masked & (rank < k[:, min(i, n - 1), None])
                else:  # Fast-dLLM: everything above the threshold, and at least the best one
                    commit = masked & ((conf > threshold) | (rank == 0))
            block[commit] = x0[commit]
            i += 1
            if on_step:
                on_step(x)
        if eos_id is not None and (x[:, P:lo + block_length] == eos_id).any(1).all():
            x[:, lo + block_length:] = eos_id                                       # every row has ended
            break
    return x


def decode(tok, ids):
    """Text up to the first EOS; everything after it is filler."""
    ids = ids.tolist()
    return tok.decode(ids[:ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids, skip_special_tokens=True)


def show(tok, x, mask_id):
    """Live view: the first canvas, masks drawn as ░, redrawn in place on a terminal."""
    text = "".join("░" if i == mask_id else tok.decode([i], skip_special_tokens=True) for i in x[0].tolist())
    print(("\033[2J\033[H" if sys.stdout.isatty() else "") + text + "\n", flush=True)


@checks.friendly_exit("Lower --n (the samples are one batch) or --gen_length.")
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None, help="folder saved by train.py or a hub id (default: out/, else the shipped model)")
    p.add_argument("--n", type=int, default=8, help="number of samples (one batch)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps = forward passes (default: gen_length, one token each)")
    p.add_argument("--gen_length", type=int, default=None, help="tokens to generate (default: the training length minus the prompt, "
                   "rounded down to a multiple of 4)")
    p.add_argument("--block_length", type=int, default=None, help="semi-autoregressive block size (default: a quarter of "
                   "gen_length; with one block the confident EOS filler grows from the end and stories come out short)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy; from an empty prompt greedy gives one story n times")
    p.add_argument("--remasking", default="low_confidence", choices=["low_confidence", "random"])
    p.add_argument("--threshold", type=float, default=None, help="confidence threshold for parallel decoding, e.g. 0.9")
    p.add_argument("--edits", type=int, default=0, help="let the model revise committed tokens, at most this many times "
                   "per position (useful for models trained with train.py --edits)")
    p.add_argument("--edit_threshold", type=float, default=0.9, help="revise a token when the model gives another one more than this")
    p.add_argument("--prompt", default="", help="text the canvas starts with (kept as is)")
    p.add_argument("--show", action="store_true", help="watch the first sample denoise")
    p.add_argument("--json", action="store_true", help="one JSON object per sample")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    ckpt = args.ckpt or ("out" if os.path.isdir("out") else SHIPPED)
    if ckpt == SHIPPED and not os.path.isdir(SHIPPED):
        sys.exit("error: no model yet. Train one with `python train.py` (~10 minutes on 2 CPU cores), then run sample.py again.")
    if not args.json:
        print(f"model: {ckpt}" + ("" if args.ckpt else " (out/ from train.py)" if ckpt == "out" else " (the shipped story-world model; train your own with train.py)"))
    torch.manual_seed(args.seed)
    model, tok, metrics = load(ckpt)
    bos = [] if bos_id(tok) is None else [bos_id(tok)]  # the anchor every training row started with
    x = torch.tensor([bos + tok(args.prompt, add_special_tokens=False)["input_ids"]] * args.n, dtype=torch.long)  # (n, P)
    room = (n_ctx := context(model, metrics)) - x.shape[1]
    args.gen_length = args.gen_length or (room - room % 4 or room)
    args.block_length = args.block_length or (args.gen_length // 4 if args.gen_length % 4 == 0 else args.gen_length)
    checks.sampling(args, n_ctx, x.shape[1])  # every argument that cannot work, said now
    out = generate(model, x, steps=args.steps or args.gen_length, gen_length=args.gen_length, temperature=args.temperature,
                   block_length=args.block_length, remasking=args.remasking, mask_id=tok.mask_token_id,
                   threshold=args.threshold, edits=args.edits, edit_threshold=args.edit_threshold, on_step=(lambda c: show(tok, c, tok.mask_token_id)) if args.show else None)
    is_story = metrics.get("dataset") == "storyworld"
    n_valid = 0
    for row in out:
        text = decode(tok, row)
        valid, problems = storyworld.check(text) if is_story else (None, None)
        n_valid += bool(valid)
        print(json.dumps(dict(text=text, valid=valid, problems=problems) if is_story else dict(text=text)) if args.json
              else f"{text}\n" + (f"  -> {'valid' if valid else 'INVALID: ' + '; '.join(problems)}\n" if is_story else ""))
    if is_story and not args.json:
        print(f"valid stories: {n_valid}/{args.n} ({100 * n_valid / args.n:.0f}%)")


if __name__ == "__main__":
    main()
