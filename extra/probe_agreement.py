"""Does a story-world model keep its story consistent, or only its grammar? A probe that answers
without sampling.

    python extra/probe_agreement.py --ckpt out          # or extra/checkpoint
    python extra/probe_agreement.py --ar_ckpt extra/checkpoint_ar    # the GPT, from the left only

For each held-out story, mask ONE occurrence of a word that the rest of the story determines, leave
every other token visible, and read the model's probability of the right token. The kinds:
  name, pronoun   the hero's name and he/she (every occurrence: the name and the pronouns repeat)
  toy, companion, other animal, friend's name, snack
                  the word of that list, where it occurs at least twice in the story (the first
                  mention is free, every later one must copy it; either one is determined by the
                  other when both are visible)
A model that copies gets ~1. Two numbers per kind:
  right token: p(the correct word | everything else)  -> 1 if the model copies, ~1/(list size) if
                                                         it guesses
  right class: p(any word of the list | everything else) -> 1 once it knows *that* one goes here
A model with right class ~1 and right token ~1/20 has learned the skeleton of the stories but not
which hero (or toy, or animal) they are about; its samples change it from sentence to sentence, and
the checker rejects them. A GPT reads only what comes before: with --ar_ckpt every mention but
the first of each word is scored, p(word | the text before it). Each line also gives the mean
cosine between the input embeddings of the kind's words: the words a model does not copy drift
together (docs/recipes.md, "Why the stories fail"), and, for a diffusion model, the attention head
that looks most at the story's other mentions of the masked word, with the share of its attention
that falls there (~1: that head fetches the word; ~0.02: no head looks at it).
"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld
from extra import checks
from extra.loading import bos_id, load


def ids_of(tok, words, bare=True):
    """Token ids of the words with their leading space (byte-level BPE writes it as "Ġ") and, if
    bare, without it."""
    forms = [f for w in words for f in (("Ġ" + w, w) if bare else ("Ġ" + w,))]
    return {i for i in tok.convert_tokens_to_ids(forms) if i is not None and i != tok.unk_token_id}


# kind -> (its words, whether only words that occur at least twice in the story are scored)
KINDS = dict(name=(storyworld.ALL_NAMES, False), pronoun=(("He", "She", "he", "she"), False),
             toy=([t.split()[-1] for t in storyworld.TOYS], True),  # teddy bear: "bear"
             companion=(storyworld.PALS, True), other_animal=(storyworld.BUDDIES, True),
             friends_name=(storyworld.BUDDY_NAMES, True), snack=(storyworld.TREATS, True))


def mentions(tok, n_stories=30, causal=False):
    """(kind, ids, j, members) for every probed mention: position j of the story ids, a word of
    kind whose token ids are members. causal: only mentions after the word's first one."""
    classes = {k: (ids_of(tok, words), repeated) for k, (words, repeated) in KINDS.items()}
    for text in storyworld.valid_stories(n_stories):
        ids = (([bos_id(tok)] if bos_id(tok) is not None else [])
               + tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])
        for kind, (members, repeated) in classes.items():
            for j, i in enumerate(ids):
                if (i in members and (not repeated or ids.count(i) >= 2)
                        and (not causal or i in ids[:j])):
                    yield kind, ids, j, members


@torch.no_grad()
def probe(model, tok, n_stories=30, causal=False):
    """{kind: (mean p(right token), mean p(right class), count)} for each kind of KINDS (count 0
    where the stories have none). causal: model is a GPT, read from the left (one pass a story)."""
    sums, read, probs = {k: [0.0, 0.0, 0] for k in KINDS}, None, None
    for kind, ids, j, members in mentions(tok, n_stories, causal):
        if causal:  # position j is predicted by the logits at j - 1 (one pass a story)
            if ids is not read:  # mentions() yields one list per story
                read, probs = ids, model(input_ids=torch.tensor([ids])).logits[0].softmax(-1)
            p = probs[j - 1]
        else:
            x = torch.tensor([ids])
            x[0, j] = tok.mask_token_id
            p = model(input_ids=x).logits[0, j].softmax(-1)
        sums[kind][0] += p[ids[j]].item()
        sums[kind][1] += p[list(members)].sum().item()
        sums[kind][2] += 1
    return {k: (a / max(n, 1), b / max(n, 1), n) for k, (a, b, n) in sums.items()}


@torch.no_grad()
def attention_to_mentions(model, tok, n_stories=30):
    """{kind: (layers, heads) tensor}: with one mention masked as in probe, the share of each
    head's attention (from the masked place) that falls on the story's other mentions of the same
    word, averaged over the probes that have another mention. A head that copies the word puts ~1
    there; a story has ~160 tokens, so a head that looks anywhere puts ~(mentions / 160). Switches
    the model to eager attention (the only kind that returns its weights)."""
    model.set_attn_implementation("eager")
    sums, counts = {}, {}
    for kind, ids, j, _ in mentions(tok, n_stories):
        others = [q for q, i in enumerate(ids) if i == ids[j] and q != j]
        if not others:  # the word's only mention in the story (e.g. "She" first in a sentence)
            continue
        x = torch.tensor([ids])
        x[0, j] = tok.mask_token_id
        att = torch.stack(model(input_ids=x, output_attentions=True).attentions)  # (l, 1, h, L, L)
        share = att[:, 0, :, j, others].sum(-1).float()                            # (layers, heads)
        sums[kind] = sums.get(kind, 0) + share
        counts[kind] = counts.get(kind, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def embedding_cosine(model, tok):
    """{kind: mean cosine between the input embeddings of its words (each pair once)}. Words that a
    model never learns to tell apart drift together here (see docs/recipes.md): ~0 for distinct
    random vectors, 1 when every word of the kind has the same embedding."""
    E = model.get_input_embeddings().weight.detach()
    # one vector per word: the spaced form
    return {kind: mean_cosine(E, sorted(ids_of(tok, words, bare=False)))
            for kind, (words, _) in KINDS.items()}


def mean_cosine(weight, ids):
    """The mean cosine between the rows ids of a matrix, each pair once (0 for a single row)."""
    unit = torch.nn.functional.normalize(weight[ids].float(), dim=1)
    n = len(ids)
    return ((unit @ unit.T).sum() - n).item() / max(n * (n - 1), 1)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="out", help="a folder saved by train.py on the story world")
    p.add_argument("--ar_ckpt", default=None,
                   help="probe a GPT from extra/train_ar.py instead, from the left (no --ckpt)")
    p.add_argument("--n_stories", type=int, default=30)
    args = p.parse_args()
    ckpt = args.ar_ckpt or args.ckpt
    checks.storyworld_model(ckpt, "a probe of the story world's heroes")
    if args.ar_ckpt:
        from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
        model = GPT2LMHeadModel.from_pretrained(ckpt).float().eval()
        tok = PreTrainedTokenizerFast.from_pretrained(ckpt)
    else:
        model, tok, _ = load(ckpt)
    cosine = embedding_cosine(model, tok)
    probed = probe(model, tok, args.n_stories, args.ar_ckpt)  # before the switch to eager attention
    heads = {} if args.ar_ckpt else attention_to_mentions(model, tok, args.n_stories)
    for kind, (right, cls, n) in probed.items():
        row = dict(kind=kind, right_token=round(right, 3), right_class=round(cls, 3), n=n,
                   embedding_cosine=round(cosine[kind], 3))
        if kind in heads:  # the head that looks most at the other mentions (layers from 1)
            layer, head = divmod(int(heads[kind].argmax()), heads[kind].shape[1])
            row.update(copying_head=f"layer {layer + 1} head {head + 1}",
                       its_attention_there=round(heads[kind].max().item(), 3))
        print(json.dumps(row))


if __name__ == "__main__":
    main()
