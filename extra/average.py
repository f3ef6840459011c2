"""
Average the weights of checkpoints of one run: the shipped model is the mean of two points of its
own training, 8,000 steps apart (docs/recipes.md, "Averaging two checkpoints"):

    python train.py --model out_more --lr 1.5e-4 --warmup 100 --max_steps 8000 \\
        --eval_every 2000 --out_dir out_more2                 # the usual mix, ~44 min
    python extra/average.py out_more out_more2 --out_dir out_avg           # ~20 s

(out_more: the model shipped before, the end of the chain in docs/recipes.md.)

Why it works: late in training the weights wander around a good region along directions the loss
barely feels (SGD's noise), and their mean lands nearer its middle than either point (iterate
averaging, Polyak & Juditsky 1992; for networks: stochastic weight averaging, Izmailov et al. 2018;
averaging checkpoints along a trajectory, LAWA, Kaddour 2022; model soups average models that start
from one point, Wortsman et al. 2022). MDLM, SEDD and BD3-LM sample from an exponential moving
average of their weights for the same reason. It is only meaningful for checkpoints of the same
run (one trained on from the other): two models trained apart do not share a region, and their
mean is noise. The validation -ELBO of the mean is computed as train.py computes it.
"""
import argparse, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import checks
from extra.loading import batch, bos_id, load, load_data, real_tokens, save


def average(models):
    """A state dict: the mean, in float32, of the models' parameters and buffers, key by key."""
    states = [m.state_dict() for m in models]
    return {k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]}


def same_model(models, toks, names):
    """Fail, saying which, unless every model has the first one's weights' names and shapes and its
    vocabulary (so the mean is taken of weights that play the same part)."""
    shapes = {k: v.shape for k, v in models[0].state_dict().items()}
    for model, tok, name in zip(models[1:], toks[1:], names[1:]):
        other = {k: v.shape for k, v in model.state_dict().items()}
        if other != shapes or tok.get_vocab() != toks[0].get_vocab():
            checks.fail(f"{name} is not the same model as {names[0]} (other weights, shapes or "
                        "vocabulary): average checkpoints of one run, each trained on from another")


@torch.no_grad()
def val_nelbo(model, tok, metrics):
    """The validation -ELBO per real token as train.py reports it (its validation rows, masks)."""
    import train
    args = metrics["args"]
    _, rows, _ = load_data(metrics["dataset"], tok, args["seq_len"], args["n_val"])
    x, keep = batch(rows)
    per = real_tokens(x, tok.eos_token_id, bos_id(tok)) / args["seq_len"]
    return train.validate(model, x, keep, train.diffusion_loss, tok.mask_token_id) / per


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpts", nargs="+", help="two or more checkpoints of one run (train.py folders)")
    p.add_argument("--out_dir", default="out_avg", help="where the mean goes (default: out_avg)")
    args = p.parse_args(argv)
    if len(args.ckpts) < 2:
        checks.fail("give two or more checkpoints to average, e.g. extra/checkpoint out_more")
    if any(os.path.abspath(c) == os.path.abspath(args.out_dir) for c in args.ckpts):
        checks.fail(f"--out_dir {args.out_dir} is one of the checkpoints: choose another folder")
    loaded = [load(c) for c in args.ckpts]
    models, toks, metrics = zip(*loaded)
    same_model(models, toks, args.ckpts)
    model, tok = models[-1], toks[-1]  # the last one's config, tokenizer and metrics
    model.load_state_dict(average(models))
    info = dict(metrics[-1], averaged_from=list(args.ckpts))
    args_of_run = metrics[-1].get("args") or {}
    if metrics[-1].get("dataset") and {"seq_len", "n_val"} <= set(args_of_run) \
            and not args_of_run.get("sft"):
        info["val_nelbo_per_token"] = val_nelbo(model, tok, metrics[-1])
    else:  # not a train.py pretraining run: its bound is not the mean's
        info["val_nelbo_per_token"] = None
    save(args.out_dir, model, tok, info)


if __name__ == "__main__":
    main()
