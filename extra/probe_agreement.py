"""Does a story-world model keep its story consistent, or only its grammar? A probe that answers
without sampling.

    python extra/probe_agreement.py --ckpt out          # or extra/checkpoint

For each held-out story, mask ONE occurrence of the hero's name (or of a he/she pronoun), leave
every other token visible, and read the model's probability of the right token. The answer is fully
determined by the rest of the story (the name and the pronouns repeat), so a model that copies gets
~1. Two numbers per kind:
  right token: p(the correct name | everything else)  -> 1 if the model copies, ~1/20 if it guesses
  right class: p(any name | everything else)          -> 1 once it knows *that* a name goes here
A model with right class ~1 and right token ~1/20 has learned the skeleton of the stories but not
which name they are about; its samples change the hero's name from sentence to sentence, and the
checker rejects them.
"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld
from extra import checks
from extra.loading import bos_id, load


def ids_of(tok, words):
    """Token ids of the words, each with or without its leading space (byte-level BPE writes the
    space as "Ġ")."""
    return {i for w in words
            for i in (tok.convert_tokens_to_ids("Ġ" + w), tok.convert_tokens_to_ids(w))
            if i is not None and i != tok.unk_token_id}


@torch.no_grad()
def probe(model, tok, n_stories=30):
    """{kind: (mean p(right token), mean p(right class), count)} for kind in name, pronoun."""
    classes = dict(name=ids_of(tok, storyworld.ALL_NAMES),
                   pronoun=ids_of(tok, ["He", "She", "he", "she"]))
    sums = {k: [0.0, 0.0, 0] for k in classes}
    for text in storyworld.valid_stories(n_stories):
        ids = (([bos_id(tok)] if bos_id(tok) is not None else [])
               + tok(text, add_special_tokens=False)["input_ids"])
        ids.append(tok.eos_token_id)
        for j, i in enumerate(ids):
            for kind, members in classes.items():
                if i in members:
                    x = torch.tensor([ids])
                    x[0, j] = tok.mask_token_id
                    p = model(input_ids=x).logits[0, j].softmax(-1)
                    sums[kind][0] += p[i].item()
                    sums[kind][1] += p[list(members)].sum().item()
                    sums[kind][2] += 1
    return {k: (a / max(n, 1), b / max(n, 1), n) for k, (a, b, n) in sums.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="out", help="a folder saved by train.py on the story world")
    p.add_argument("--n_stories", type=int, default=30)
    args = p.parse_args()
    model, tok, _ = load(args.ckpt)
    checks.storyworld_model(args.ckpt, "a probe of the story world's heroes")
    for kind, (right, cls, n) in probe(model, tok, args.n_stories).items():
        print(json.dumps(dict(kind=kind, right_token=round(right, 3), right_class=round(cls, 3),
                              n=n)))


if __name__ == "__main__":
    main()
