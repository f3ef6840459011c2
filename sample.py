"""
Generate text with a masked diffusion model by iterative unmasking (Nie et al. 2025, LLaDA,
Algorithms 4 and 5).

    python sample.py                       # stories from out/ (or extra/checkpoint/), with validity
    python sample.py --show                       # watch one canvas denoise, step by step
    python sample.py --gif docs/denoise.gif       # the same, saved as an animated GIF
    python sample.py --prompt "Once upon a time, there was a fox" --n 4 --temperature 0
    python sample.py --remasking random --steps 156 --json

The canvas starts as prompt + gen_length masks. Each step predicts every masked token at once and
commits some of them; the rest stay masked for later steps:
  random (Alg. 4):         each prediction stays masked with probability s/t, t -> s = t - 1/steps
  low_confidence (Alg. 5): commit the k most confident predictions (k from num_transfer_tokens)
  threshold (Fast-dLLM):   commit every prediction with confidence > threshold, at least one
  --joint threshold:       the most confident first, while the product of their confidences
                           (the chance that all are right) stays > threshold (as EB-sampler)
With block_length < gen_length the canvas is filled block by block, left to right
(semi-autoregressive).
"""
import itertools, json

import torch

from edits_and_sft import revise
from extra import checks, storyworld
from extra.flags import room_defaults, sample_args
from extra.loading import SHIPPED, bos_id, context, default_checkpoint, load
from extra.render import Recorder


def num_transfer_tokens(masked, steps):
    """How many tokens to commit at each step: an even split, the remainder to the first steps.
    >>> num_transfer_tokens(torch.ones(1, 10, dtype=torch.bool), 4).tolist()
    [[3, 3, 2, 2]]"""
    n = masked.sum(1, keepdim=True)                                                 # (B, 1)
    k = (n // steps).repeat(1, steps)                                               # (B, steps)
    return k + (torch.arange(steps, device=n.device) < n % steps).long()


def sample_tokens(logits, temperature):
    """A draw from softmax(logits / T) by Gumbel-max: argmax(l / T + g), g = -log(-log(u)) (LLaDA).
    T = 0 is the argmax."""
    if temperature == 0:
        return logits.argmax(-1)
    return (logits / temperature - torch.log(-torch.log(torch.rand_like(logits)))).argmax(-1)


def committed(masked, conf, i, n, k, remasking, threshold, joint=False):
    """(B, b) which of this pass's predictions to keep: i counts the passes over this block, n are
    planned, k (B, n) comes from num_transfer_tokens, conf (B, b) is p(the predicted token).
    >>> conf = torch.tensor([[0.99, 0.95, 0.5, 0.97]]).double(); m = conf > 0
    >>> committed(m, conf, 0, 4, None, "low_confidence", 0.9).long().tolist()
    [[1, 1, 0, 1]]
    >>> committed(m, conf, 0, 4, None, "low_confidence", 0.92, joint=True).long().tolist()
    [[1, 0, 0, 1]]"""
    if remasking == "random":  # Alg. 4: keep each prediction with probability 1 - s/t
        t, s = 1 - i / n, max(0.0, 1 - (i + 1) / n)
        return masked & (torch.rand(masked.shape, device=masked.device) >= s / t)
    rank = torch.where(masked, conf, -1.0).argsort(1, descending=True).argsort(1)  # 0: the best
    if threshold is None:  # Alg. 5: the k_i most confident
        return masked & (rank < k[:, min(i, n - 1), None])
    if joint:  # if the pass's predictions were independent, P(all right) = the product of their p
        p = torch.where(masked, conf, 0.0).sort(1, descending=True).values      # (B, b), best first
        return masked & (rank < (p.cumprod(1) > threshold).sum(1, keepdim=True).clamp(min=1))
    return masked & ((conf > threshold) | (rank == 0))  # Fast-dLLM: all above tau, at least one


@torch.no_grad()
def generate(model, x, *, steps, gen_length, block_length, temperature=0.0,
             remasking="low_confidence", mask_id, threshold=None, joint=False, edits=0,
             edit_threshold=0.9, eos_id=None, on_step=None):
    """x: (B, P) prompt ids -> (B, P + gen_length) canvas with every mask filled.
    Logits are float64 and sampled with Gumbel noise (LLaDA); temperature 0 is the argmax.
    edits > 0: each pass may also revise tokens committed earlier (edits_and_sft.revise).
    eos_id: stop after the first block in which every row has written an EOS (the rest: filler)."""
    if gen_length % block_length or steps % (gen_length // block_length):
        raise ValueError(f"gen_length ({gen_length}) must be a multiple of block_length "
                         f"({block_length}) and steps ({steps}) of the number of blocks")
    B, P = x.shape
    x = torch.cat([x, torch.full((B, gen_length), mask_id, dtype=torch.long, device=x.device)], 1)
    n = steps // (gen_length // block_length)                                     # passes per block
    revisions = torch.zeros_like(x)                                            # (B, P + gen_length)
    for lo in range(P, P + gen_length, block_length):
        hi = lo + block_length
        block = x[:, lo:hi]                                                 # a view: writes go to x
        k = num_transfer_tokens(block == mask_id, n)                                # (B, n)
        for i in itertools.count():
            masked = block == mask_id                                               # (B, b)
            if not masked.any():
                break
            logits = model(input_ids=x).logits                                      # (B, P + g, V)
            if edits:  # before anything new is committed: revise what earlier passes wrote
                revise(x, logits[:, P:hi], P, hi, revisions, edit_threshold, edits, mask_id)
            logits = logits[:, lo:hi].double()                                      # (B, b, V)
            logits[..., mask_id] = -float("inf")                                # SUBS: never [MASK]
            x0 = sample_tokens(logits, temperature)                                 # (B, b)
            conf = logits.softmax(-1).gather(-1, x0[..., None])[..., 0]            # p of the choice
            commit = committed(masked, conf, i, n, k, remasking, threshold, joint)
            block[commit] = x0[commit]
            if on_step:
                on_step(x)
        if eos_id is not None and (x[:, P:hi] == eos_id).any(1).all():
            x[:, hi:] = eos_id                                                     # every row ended
            break
    return x


def decode(tok, ids):
    """Text up to the first EOS; everything after it is filler."""
    ids = ids.tolist() + [tok.eos_token_id]
    return tok.decode(ids[:ids.index(tok.eos_token_id)], skip_special_tokens=True)


def get_args(argv=None):
    return sample_args(__doc__, argv)  # every flag, with its advice, is in extra/flags.py


@checks.friendly_exit("Lower --n (the samples are one batch) or --gen_length.")
def main(argv=None):
    args = get_args(argv)
    args.ckpt, which = (args.ckpt, "") if args.ckpt else default_checkpoint("out", SHIPPED)
    if not args.json:
        print(f"model: {args.ckpt}{which}")
    torch.manual_seed(args.seed)
    model, tok, metrics = load(args.ckpt)
    bos = [] if bos_id(tok) is None else [bos_id(tok)]  # the anchor every training row started with
    prompt = bos + tok(args.prompt, add_special_tokens=False)["input_ids"]
    n_ctx = context(model, metrics)
    room_defaults(args, n_ctx - len(prompt))  # gen_length and block_length fill the room left
    checks.sampling(args, n_ctx, len(prompt), metrics)  # all that cannot work, said now
    x = torch.tensor([prompt] * args.n, dtype=torch.long)                          # (n, P)

    # the first canvas, pass by pass: drawn live (--show), kept as the frames of a GIF (--gif)
    recorder = Recorder(tok, args.show, args.gif) if args.show or args.gif else None
    out = generate(model, x, steps=args.steps or args.gen_length, gen_length=args.gen_length,
                   block_length=args.block_length, temperature=args.temperature,
                   remasking=args.remasking, mask_id=tok.mask_token_id, threshold=args.threshold,
                   joint=args.joint, edits=args.edits, edit_threshold=args.edit_threshold,
                   on_step=recorder)
    if recorder:
        recorder.save()
    texts = [decode(tok, row) for row in out]
    if metrics.get("dataset") == "storyworld":  # is each one a valid story, and if not why not
        storyworld.report(texts, args.json)
    else:
        print("\n".join(json.dumps(dict(text=t)) if args.json else t + "\n" for t in texts))


if __name__ == "__main__":
    main()
