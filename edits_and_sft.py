"""
Two additions to the core, each behind a flag of train.py:

1. Edit corruption (Seed Diffusion; Song et al. 2025, arXiv 2508.02193, the two-stage curriculum).
       python train.py --edits       # masking only for the first 80% of steps, then masks + edits
   Masking alone teaches a model to fill blanks and to trust every visible token. Seed Diffusion's
   second stage also corrupts visible tokens, so the model learns to repair them. Here, in stage 2,
   each visible token is replaced with probability edit_rate * t by a token drawn from elsewhere in
   the batch (a plausible wrong word), and every position is scored: the masks as in the -ELBO, the
   visible tokens with plain CE (keep the right ones, repair the wrong ones). The number of wrong
   tokens grows with the noise level t, as in the paper.
   What the paper has and this does not: insertions and deletions (they change the length, which a
   fixed canvas cannot use honestly), its edit-distance-based noise schedule, and its later stages
   (constrained-order trajectories, on-policy learning).
   The stage is a pure function of the step, evaluated on every rank inside the training step (no
   dataloader worker holds any state), so every rank and worker agrees on it.
   Sampling with edits is `sample.generate(..., edits=N)`: see `revise` below.

2. SFT (Nie et al. 2025, LLaDA §2.3 and its SFT guidelines).
       python train.py --sft --model out --dataset chats.jsonl     # a {"messages": [...]} per line
   A conversation is rendered with the tokenizer's chat template. The prompt (everything up to the
   last assistant turn) is never masked; the response *and the EOS filler after it* are noised and
   scored, so the model learns when to stop; each row's loss is divided by its response length
   (filler included), as LLaDA does. By default half of the rows are shaped as chat.py answers
   (train.py's --block_rows, extra/recipes.py): a clean prompt and part of the answer, one block
   of 16 at rate t, the rest masked (story-world chat, 20/30 written stories against LLaDA's 9/30:
   docs/chat_and_edits.md).
"""
import os

import torch
import torch.nn.functional as F

from extra import checks, storychat
from extra.loading import bos_id, hub_guard, load_data

ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
# subtle: the generation prompt ends with <|assistant|>; the response starts right after the last
# one of them.
CHAT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}"
                 "{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


# --------------------------------------------------------------------------------------- 1. edits

def corruption(args, objective):
    """train.py's corruption, chosen once: a function (step, x0, xt, masked, p_mask, keep) -> (xt,
    loss function). Without --edits, or before edit_start: xt as it is, and the objective. After it:
    Seed Diffusion's stage 2, visible tokens corrupted too (edit_corrupt) and scored (edit_loss)."""
    def corrupt(step, x0, xt, masked, p_mask, keep):
        if args.edits and edit_stage(step, args.max_steps, args.edit_start):
            return edit_corrupt(x0, xt, masked, p_mask, keep, args.edit_rate)[0], edit_loss
        return xt, objective
    return corrupt


def edit_stage(step, max_steps, edit_start):
    """The curriculum: False (masking only) up to edit_start * max_steps, True after.
    >>> [edit_stage(s, 10, 0.8) for s in (1, 8, 9, 10)]
    [False, False, True, True]"""
    return step > edit_start * max_steps


def edit_corrupt(x0, xt, masked, p_mask, keep=None, edit_rate=0.2, generator=None):
    """Replace each visible token (not masked, not kept) with probability edit_rate * t by a token
    from elsewhere in the batch. Returns the corrupted xt and the (B, L) bool of replaced
    positions."""
    visible = ~masked if keep is None else ~masked & ~keep
    hit = visible & (torch.rand(x0.shape, device=x0.device, generator=generator)
                     < edit_rate * p_mask)
    donors = x0.flatten()[torch.randint(0, x0.numel(), x0.shape, device=x0.device,
                                        generator=generator)]
    wrong = hit & (donors != x0)
    return torch.where(wrong, donors, xt), wrong


def token_ce(logits, x0, where, mask_id):
    """(B, L): CE(logits, x0) at the positions `where`, 0 elsewhere; [MASK] is never predicted
    (SUBS). Only the selected rows of the logits go through the softmax."""
    sel = logits[where].float()                                                    # (N, V)
    sel[:, mask_id] = -float("inf")
    ce = F.cross_entropy(sel, x0[where], reduction="none")                         # (N,)
    return torch.zeros(x0.shape, device=x0.device).masked_scatter(where, ce)


def edit_loss(logits, x0, masked, p_mask, mask_id, keep=None):
    """The -ELBO term on the masks (CE / p_mask) plus plain CE on every visible position,
    over B*L."""
    # (B, L), 0 where kept
    ce = token_ce(logits, x0, torch.ones_like(masked) if keep is None else ~keep, mask_id)
    weight = torch.where(masked, p_mask, 1.0)  # subtle: no 0/0 where p_mask = 0 (a clean prefix)
    return (ce / weight).sum() / x0.numel()


def revise(x, logits, lo, hi, counts, edit_threshold, max_edits, mask_id):
    """Edit-aware sampling, one pass: at committed positions lo..hi of the canvas x, where the model
    puts more than edit_threshold on another token, write that token. counts (B, L) of revisions per
    position bounds it: a position is revised at most max_edits times, so no pair of tokens can
    flip-flop forever.
    logits (B, hi - lo, V) are the model's, for those positions. Returns the number of tokens
    changed."""
    logits = logits.double()
    logits[..., mask_id] = -float("inf")  # SUBS: [MASK] is never a revision
    probs = logits.softmax(-1)
    conf, best = probs.max(-1)                                                     # (B, hi - lo)
    seg = x[:, lo:hi]
    change = ((seg != mask_id) & (best != seg) & (conf > edit_threshold)
              & (counts[:, lo:hi] < max_edits))
    seg[change] = best[change]
    counts[:, lo:hi] += change.long()
    return int(change.sum())


# --------------------------------------------------------------------------------------- 2. SFT

def ensure_chat_template(tok, model=None):
    """Give a tokenizer without a chat template (ours, BERT's) a plain one with role tokens, growing
    the model's embeddings if the role tokens are new. A tokenizer that has a template keeps it."""
    if tok.chat_template is None:
        new = [r for r in ROLES if r not in tok.get_vocab()]
        if new:
            tok.add_special_tokens({"additional_special_tokens": new})
            if model is not None:
                model.resize_token_embeddings(len(tok))
        tok.chat_template = CHAT_TEMPLATE
    return tok


def render(tok, messages, bos):
    """(prompt ids, response ids): the prompt is BOS + the template up to the last assistant turn,
    with the generation prompt; the response is that turn's text and an EOS."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("each conversation must end with an assistant turn "
                         "(the response to learn)")
    prompt = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    return bos + ids, (tok(messages[-1]["content"], add_special_tokens=False)["input_ids"]
                       + [tok.eos_token_id])


def sft_rows(conversations, tok, L, bos):
    """Rows of length L: prompt + response + EOS filler, and the prompt length. Conversations that
    do not fit are skipped (count them with a list)."""
    for messages in conversations:
        prompt, response = render(tok, messages, bos)
        if len(prompt) + len(response) <= L:
            yield (prompt + response + [tok.eos_token_id] * (L - len(prompt) - len(response)),
                   len(prompt))


def sft_loss(logits, x0, masked, p_mask, mask_id, keep):
    """LLaDA's SFT loss: per row, sum over masked response tokens of CE / p_mask, divided by the
    response length (the EOS filler counts); averaged over the rows."""
    ce = token_ce(logits, x0, masked, mask_id)                 # (B, L), 0 where visible
    weight = torch.where(masked, p_mask, 1.0)  # subtle: no 0/0 where p_mask = 0 (a clean prefix)
    per_row = (ce / weight).sum(1) / (~keep).sum(1).clamp(min=1)
    return per_row.mean()


def read_conversations(dataset, split="train"):
    """Conversations (lists of messages): the story-world chat tasks, a .jsonl file with a
    "messages" field per line, or a hub dataset with a "messages" column (streamed)."""
    if dataset == "storyworld":
        return (t["messages"] for t in storychat.train_tasks()) if split == "train" else \
            iter([t["messages"] for t in storychat.valid_tasks()])
    checks.missing_path(dataset, "dataset file")
    if os.path.exists(dataset):
        convs = checks.jsonl(dataset, "messages", checks.conversation)
        held = max(1, len(convs) // 100)
        return iter(convs[:-held] or convs) if split == "train" else iter(convs[-held:])
    import datasets
    with hub_guard(dataset):
        stream = checks.column(datasets.load_dataset(dataset, split="train", streaming=True),
                               "messages", dataset)
        return (checks.conversation(ex["messages"], f"{dataset}, example {i}")
                for i, ex in enumerate(stream) if (i % 100 == 0) == (split != "train"))


def training_data(args, tok, model):
    """train.py's rows: conversations with --sft (sft_data), else documents
    (extra.loading.load_data). (endless training rows, validation rows, validation texts or None);
    a row is (ids, n_keep)."""
    if args.sft:
        return sft_data(args.dataset, tok, args.seq_len, args.n_val, model)
    return load_data(args.dataset, tok, args.seq_len, args.n_val)


def sft_data(dataset, tok, L, n_val, model=None):
    """(endless training rows, validation rows, None) of conversations, like
    extra.loading.load_data: each row is (L ids, n_keep), n_keep the length of its prompt, which is
    never masked. Gives tok (and model) a chat template and role tokens first if it has none."""
    ensure_chat_template(tok, model)
    bos = [] if bos_id(tok) is None else [bos_id(tok)]

    def endless():
        while True:
            n = 0
            for n, row in enumerate(sft_rows(read_conversations(dataset), tok, L, bos), 1):
                yield row
            if n == 0:
                checks.fail(f"no training conversation of {dataset} fits in --seq_len {L}; "
                            f"raise --seq_len")
    val = list(sft_rows(read_conversations(dataset, "valid"), tok, L, bos))[:n_val]
    if not val:
        checks.fail(f"no validation conversation of {dataset} fits in --seq_len {L}; "
                    f"raise --seq_len")
    return endless(), val, None
