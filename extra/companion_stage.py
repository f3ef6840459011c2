"""
The companion stage: teach a long run the one copy it never learned, then give it back the data's
own mix. This is how the shipped model was made from `python train.py --preset long --out_dir out`:

    python extra/companion_stage.py --ckpt out --out_dir out_stage       # 1. prepare (~20 s)
    python train.py --model out_stage --dataset out_stage/stories.txt --lr 1e-3 --warmup 100 \\
        --max_steps 1500 --eval_every 750 --out_dir out_companion         # 2. copy (~8 min)
    python train.py --model out_companion --lr 3e-4 --warmup 100 --max_steps 2000 \\
        --eval_every 1000 --out_dir out_final                       # 3. the usual mix (~11 min)

Why (docs/recipes.md, "The companion stage"): one attention head of the last layer copies a story's
repeated words (the hero's name, the toy, the other animal, ...) from their other mentions, and in
every long run at the default learning rate it never learns to copy the companion ("his mom", "her
uncle"), so each later mention is a guess among eight. Meanwhile the eight family words' embeddings
(tied to the output layer) drift together (cosine ~0.9), so a copy would carry little. Step 1:
- grows the model by one global attention layer at the top whose two output projections start at
  zero, so the grown model computes exactly what the long run did (a function-preserving growth, as
  in Net2Net, Chen et al. 2016, and progressive stacking, Gong et al. 2019): fresh heads that have
  not settled on the other lists, on top of a model that already knows where a family word goes;
- spreads the eight family words' embedding rows apart again: their mean plus a random vector with
  the typical spread of the whole matrix;
- writes training stories that name the companion twice or more (39% of the story world's), so that
  a copy of it is a large share of what the model is asked.
Step 2 trains on those stories until a head fetches the companion; step 3 goes back to the story
world's ordinary mix, so that the model names the companion as often as the data does (1.3 times a
story). Both are plain train.py runs. A story-world model only: the family words are the world's.
"""
import argparse, copy, os, re, sys

import torch
from transformers import AutoModelForMaskedLM

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import checks, storyworld
from extra.loading import load, save
from extra.probe_agreement import ids_of, mean_cosine

FAMILY = re.compile(r"\b(" + "|".join(storyworld.PALS) + r")\b")


def family_token_ids(tok):
    """The token of each family word as it stands in a story (" mom"; " sister" of " big sister",
    the word that tells it apart), without repeats."""
    return sorted(ids_of(tok, [w.split()[-1] for w in storyworld.PALS], bare=False))


@torch.no_grad()
def spread(weight, ids, generator=None):
    """Set the rows ids of an embedding matrix (V, d) to their mean plus Gaussian noise with the
    per-dimension standard deviation of the whole matrix: the rows stay where the words live, but no
    longer point the same way. In place; the other rows are untouched."""
    rows = weight[ids].float()
    noise = torch.randn(rows.shape, generator=generator) * weight.float().std(0)
    weight[ids] = (rows.mean(0) + noise).to(weight.dtype)


@torch.no_grad()
def grow(model, seed=0):
    """The model with one more layer on top, global (it sees the whole row), that changes nothing
    yet: its attention and MLP outputs start at zero, so each adds nothing to the residual stream
    until training moves them. Its other weights are drawn as the model's config draws them (seed).
    ModernBERT only (the presets' model)."""
    if model.config.model_type != "modernbert":
        checks.fail(f"growing a layer is written for ModernBERT (the presets' model), not "
                    f"{model.config.model_type}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers += 1
    config.layer_types = list(config.layer_types) + ["full_attention"]
    torch.manual_seed(seed)
    grown = AutoModelForMaskedLM.from_config(config).float()
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(f"model.layers.{len(config.layer_types) - 1}.")
                                  for k in missing), (missing, unexpected)
    top = grown.model.layers[-1]
    top.attn.Wo.weight.zero_()
    top.mlp.Wo.weight.zero_()
    grown.tie_weights()
    return grown


def companion_rich(n, seed=7, at_least=2):
    """n training stories (never a validation one) naming a family member at least at_least times.
    seed: not train.py's stream (0), so these are other stories than the long run saw first."""
    out = []
    for text in storyworld.train_stories(seed):
        if len(FAMILY.findall(text)) >= at_least:
            out.append(text)
            if len(out) == n:
                return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="out", help="a story-world model from train.py (default: out)")
    p.add_argument("--out_dir", default="out_stage",
                   help="where the grown, spread model and stories.txt go")
    p.add_argument("--stories", type=int, default=30000,
                   help="companion-rich stories to write (default 30,000: 1,500 steps of 16 "
                   "read each at most once)")
    p.add_argument("--no_grow", action="store_true", help="keep the layers as they are")
    p.add_argument("--seed", type=int, default=0, help="seed of the new layer's weights and of the "
                   "random directions (default 0)")
    args = p.parse_args(argv)
    model, tok, metrics = load(args.ckpt)
    checks.storyworld_model(args.ckpt, "the companion stage")
    if args.stories < 1:
        checks.fail(f"--stories must be at least 1 (got {args.stories}); the default is 30000")
    if os.path.abspath(args.out_dir) == os.path.abspath(args.ckpt):
        checks.fail(f"--out_dir is the model's own folder ({args.ckpt}): choose another one")
    if not args.no_grow:
        model = grow(model, args.seed)
        print(f"grown to {model.config.num_hidden_layers} layers (the new one global, adding "
              f"nothing yet)")
    ids = family_token_ids(tok)
    weight = model.get_input_embeddings().weight                 # tied: the output layer's too
    before = mean_cosine(weight, ids)
    spread(weight, ids, torch.Generator().manual_seed(args.seed))
    print(f"family words {[tok.decode([i]) for i in ids]}: mean cosine {before:.2f} -> "
          f"{mean_cosine(weight, ids):.2f}")
    stories = companion_rich(args.stories)
    # atomically, as train.py saves; val_nelbo is the long run's, not this model's: not carried over
    save(args.out_dir, model, tok, dict(metrics, val_nelbo_per_token=None))
    path = os.path.join(args.out_dir, "stories.txt")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("<|endoftext|>".join(stories))
    os.replace(path + ".tmp", path)
    print(f"wrote {len(stories)} stories that name the companion twice or more to {path}\n"
          f"next: python train.py --model {args.out_dir} --dataset {path} --lr 1e-3 --warmup 100 "
          f"--max_steps 1500 --eval_every 750 --out_dir out_companion")


if __name__ == "__main__":
    main()
