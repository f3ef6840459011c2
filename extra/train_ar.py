"""
The autoregressive baseline: a GPT of the diffusion model's size, trained on the same rows with the
same tokenizer, optimizer and schedule. Read it next to train.py; the changes are the whole
difference:

    train.py (masked diffusion)                       extra/train_ar.py (GPT)
    ModernBERT encoder, every token sees every token  GPT-2 decoder, causal attention
    t ~ U(0,1), mask each token with p_mask           no noise: the input is the text itself
    CE on masked tokens / p_mask, over B*L (-ELBO)    CE of each next token, over the real tokens
                                                      (exact NLL)
    filler after the EOS is masked and predicted      filler after the first EOS is ignored (the
                                                      EOS stops it)
    sample.py: iterative unmasking                    model.generate: one token per forward pass,
                                                      KV cache

    python extra/train_ar.py                   # ~9 min on 2 CPU cores, writes out_ar/
    python extra/train_ar.py --sample 64       # sample 64 stories from out_ar/ and count the
                                               # valid ones
"""
import argparse, itertools, math, os, sys, time

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld
from extra.loading import PRESETS, bos_id, build_tokenizer, load_data, read_texts, save
from sample import decode

# Matched to the "tiny" diffusion preset: same width, depth and heads; a GELU MLP of 384 has as many
# weights as ModernBERT's gated MLP of 256 (2 x 128 x 256 in, 256 x 128 out), so the non-embedding
# parameters agree within 10%.
AR_PRESET = dict(hidden=128, layers=4, heads=4, mlp=384)


def build_gpt(tok, seq_len, init=0.1):
    c = AR_PRESET
    cfg = GPT2Config(vocab_size=len(tok), n_positions=seq_len, n_embd=c["hidden"],
                     n_layer=c["layers"], n_head=c["heads"], n_inner=c["mlp"], resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=init,
                     bos_token_id=bos_id(tok), eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(cfg)


def scored(x0, eos):
    """(B, L - 1) bool: the predicted positions 1.. up to and including the first EOS (not the
    filler after it)."""
    return ((x0 == eos).long().cumsum(1) - (x0 == eos).long() == 0)[:, 1:]


def ar_loss(logits, x0, eos):
    """Exact NLL: CE of every next token up to and including the first EOS, per real token."""
    targets = x0[:, 1:].masked_fill(~scored(x0, eos), -100)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                           ignore_index=-100)


@torch.no_grad()
def val_nll(model, x0, eos, batch_size=64):
    total, n = 0.0, 0
    for xb in x0.split(batch_size):
        real = scored(xb, eos).sum().item()
        total += ar_loss(model(input_ids=xb).logits, xb, eos).item() * real
        n += real
    return total / n


@torch.no_grad()
def sample(model, tok, n, seq_len, temperature=1.0, seed=0):
    torch.manual_seed(seed)
    x = torch.full((n, 1), bos_id(tok), dtype=torch.long)
    out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=temperature > 0,
                         temperature=temperature or None, top_k=0, max_length=seq_len,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    return [decode(tok, row) for row in out[:, 1:]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="storyworld")
    p.add_argument("--seq_len", type=int, default=160)
    p.add_argument("--batch_size", type=int, default=PRESETS["tiny"]["batch"])
    p.add_argument("--lr", type=float, default=PRESETS["tiny"]["lr"])
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--max_steps", type=int, default=PRESETS["tiny"]["steps"])
    p.add_argument("--max_seconds", type=float, default=None,
                   help="stop at this wall-clock budget (for equal-time comparisons)")
    p.add_argument("--eval_every", type=int, default=200)
    p.add_argument("--n_val", type=int, default=256)
    p.add_argument("--out_dir", default="out_ar")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=0,
                   help="only sample this many stories from --out_dir")
    p.add_argument("--temperature", type=float, default=1.0)
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.sample:
        model, tok = (GPT2LMHeadModel.from_pretrained(args.out_dir).float().eval(),
                      PreTrainedTokenizerFast.from_pretrained(args.out_dir))
        texts = sample(model, tok, args.sample, args.seq_len, args.temperature, args.seed)
        ok = [storyworld.check(t)[0] for t in texts]
        for t, v in zip(texts[:4], ok):
            print(t, "\n  ->", "valid" if v else "INVALID", "\n")
        print(f"valid stories: {sum(ok)}/{len(ok)}")
        return
    torch.manual_seed(args.seed)
    tok = build_tokenizer(itertools.islice(read_texts(args.dataset), 20000))
    model = build_gpt(tok, args.seq_len)
    body = sum(p.numel() for n, p in model.named_parameters() if "wte" not in n and "wpe" not in n)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters "
          f"({body / 1e6:.2f}M non-embedding)")
    train_rows, val_rows, val_texts = load_data(args.dataset, tok, args.seq_len, args.n_val)
    train_rows = (ids for ids, _ in train_rows)  # the GPT masks nothing: the ids alone
    x_val, eos = torch.tensor([ids for ids, _ in val_rows]), tok.eos_token_id
    real = scored(x_val, eos).sum().item()
    true_h = (-sum(map(storyworld.log_prob, val_texts)) / real if args.dataset == "storyworld"
              else None)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    # with --max_seconds the cosine runs on whichever of steps and seconds is further along, so it
    # anneals in time
    progress = lambda s: min(1, max(s / args.max_steps,
                                    (time.time() - t0) / args.max_seconds if args.max_seconds
                                    else 0))
    lr_at = lambda s: (min(1, (s + 1) / args.warmup)
                       * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress(s)))))
    log, t0 = [], time.time()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    for step in (bar := tqdm(range(1, args.max_steps + 1))):
        model.train()
        x0 = torch.tensor([next(train_rows) for _ in range(args.batch_size)])
        loss = ar_loss(model(input_ids=x0).logits, x0, eos)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(); sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        out_of_time = args.max_seconds and time.time() - t0 > args.max_seconds
        if step % args.eval_every == 0 or step in (1, args.max_steps) or out_of_time:
            nll = val_nll(model.eval(), x_val, eos)
            log.append(dict(step=step, seconds=round(time.time() - t0, 1), val_nll_per_token=nll))
            tqdm.write(f"step {step}: val NLL {nll:.4f} nats/token"
                       + (f" (true entropy {true_h:.4f})" if true_h else ""))
        if out_of_time:
            break
    metrics = dict(dataset=args.dataset, val_nll_per_token=log[-1]["val_nll_per_token"],
                   true_entropy_per_token=true_h, steps=step, seconds=round(time.time() - t0, 1),
                   args=vars(args), log=log)
    save(args.out_dir, model, tok, metrics)


if __name__ == "__main__":
    main()
