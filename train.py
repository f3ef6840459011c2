"""
Train a masked diffusion language model: Nie et al. 2025 ("Large Language Diffusion Models", LLaDA),
Algorithm 1, with the weighting of MDLM (Sahoo et al. 2024), on any Hugging Face masked-LM encoder.

    python train.py                  # tiny model on the embedded story world, ~9 min on 2 CPU cores
    python train.py --preset long    # 16,000 steps, ~59 min: the shipped model
    python train.py --resume         # continue the run in out/ that Ctrl-C stopped (it saved first)
    python train.py --sft --out_dir out_sft       # chat tasks on top of out/ (edits_and_sft.py)
    accelerate launch train.py --model answerdotai/ModernBERT-base --dataset roneneldan/TinyStories
    accelerate launch train.py --model distilbert/distilbert-base-cased     # on the story world
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 train.py   # DDP on a CPU

One training step, in paper order:
  x0 (B, L) clean tokens -> t ~ U(0,1) per sequence -> mask each token with p_mask = (1-eps) t + eps
  -> the encoder predicts every masked token -> loss = sum over masked tokens of CE / p_mask / (B*L)
That loss is the negative ELBO, an upper bound on -log p(x0) per token (MDLM eq. 10; LLaDA eq. 3).
By default two recipe levers change the first two arrows (extra/recipes.py, docs/recipes.md): t
comes from a bell-shaped density, and half the rows are shaped as the sampler sees a block (a clean
prefix, the block at rate t, the rest masked). `--t_dist uniform --block_rows 0` is LLaDA's recipe
exactly; validation always uses it, the unbiased -ELBO.
"""
import math, time

import torch
from tqdm import tqdm

from edits_and_sft import corruption, sft_loss, token_ce, training_data
from extra import checks, flags, storyworld
from extra.recipes import block_matched, noise_levels
from extra.loading import (accelerator, batch, bos_id, interruptible, leave, model_and_tokenizer,
                           real_tokens, restore, resume, save_run, share)
from sample import decode, generate


def forward_process(x0, mask_id, eps=1e-3, generator=None, keep=None, recipe=None):
    """Nie et al. Alg. 1: (xt, masked, p_mask (B, L)). keep (B, L) marks positions never masked.
    subtle: t is low-discrepancy (MDLM): t_b = (u + b/B) mod 1 spreads each batch over (0, 1).
    recipe: train.py's flags --t_dist, --block_rows, --block_length (extra/recipes.py); without it
    t ~ U(0, 1) and every row is masked alike, as LLaDA and MDLM do."""
    B, L = x0.shape
    u = torch.rand(1, device=x0.device, generator=generator)
    t = noise_levels((u + torch.arange(B, device=x0.device) / B) % 1, recipe and recipe.t_dist)
    p_mask = ((1 - eps) * t + eps)[:, None].expand(B, L)                           # (B, L)
    if recipe and recipe.block_rows:  # rows as the sampler sees them: blocks after the kept prefix
        start = 1 if keep is None else keep.sum(1)  # the BOS, or with --sft the prompt
        p_mask = block_matched(p_mask, recipe.block_rows, recipe.block_length, start, generator)
    masked = torch.rand(B, L, device=x0.device, generator=generator) < p_mask      # (B, L)
    if keep is not None:
        masked &= ~keep
    return torch.where(masked, mask_id, x0), masked, p_mask


def diffusion_loss(logits, x0, masked, p_mask, mask_id, keep=None):
    """-ELBO per token: sum_masked CE(logits, x0) / p_mask over B*L (all positions, not #masked).
    subtle: [MASK] is never predicted (MDLM's SUBS): token_ce sets its logit to -inf."""
    ce = token_ce(logits, x0, masked, mask_id)[masked]              # (N,): the masked tokens
    return (ce / p_mask.expand_as(masked)[masked]).sum() / x0.numel()


@torch.no_grad()
def validate(model, x0, keep, loss_fn, mask_id, draws=2, batch_size=64):
    """The training objective on held-out rows with fixed noise (the same masks at every
    evaluation), summed over the rows (a batch counts its value times its rows), mean over draws."""
    g, total = torch.Generator(x0.device).manual_seed(1234), 0.0
    for xb, kb in list(zip(x0.split(batch_size), keep.split(batch_size))) * draws:
        xt, masked, p_mask = forward_process(xb, mask_id, generator=g, keep=kb)
        loss = loss_fn(model(input_ids=xt).logits, xb, masked, p_mask, mask_id, kb)
        total += loss.item() * len(xb)
    return total / draws


@checks.friendly_exit("Lower --batch_size (and raise --grad_accum to keep the batch) or --seq_len.")
def main(argv=None):
    args = flags.train_args(__doc__, argv)  # every flag, with its advice, is in extra/flags.py
    state = resume(args.out_dir) if args.resume else None  # Ctrl-C saved: optimizer, RNG, step
    acc = accelerator(args)  # devices, precision, processes, gradient accumulation

    # 1. tokenizer and model: the interrupted run's, a pretrained encoder, or a preset from scratch
    model, tok = model_and_tokenizer(args, acc, resumed=state is not None)  # same on every rank
    mask_id, eos, bos, L = tok.mask_token_id, tok.eos_token_id, bos_id(tok), args.seq_len

    # 2. data: rows (ids, n_keep), the first n_keep never masked: the BOS, or with --sft the prompt
    # (conversations: role tokens and a chat template are added to tok and model if missing).
    # Each rank reads its own share of an endless stream; the validation rows are fixed.
    train_rows, val_rows, val_texts = training_data(args, tok, model)
    train_rows = share(train_rows, acc, state)
    x_val, keep_val = batch(val_rows, acc.device)                                  # (n_val, L)
    objective = sft_loss if args.sft else diffusion_loss  # LLaDA's SFT loss, or the -ELBO
    # validation reports the SFT loss per row, or the -ELBO per real token (text + EOS)
    per = len(x_val) if args.sft else real_tokens(x_val, eos, bos) / L
    # the story world's exact entropy of these very stories, per real token (None for other data)
    true_h = storyworld.true_entropy(val_texts, real_tokens(x_val, eos, bos), args.dataset)
    corrupt = corruption(args, objective)  # Seed Diffusion's stage 2 (--edits), or nothing

    # 3. optimizer, linear warm-up then cosine decay to 10%, accelerate
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warm = lambda s: min(1, (s + 1) / args.warmup)
    cosine = lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / args.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warm(s) * cosine(s))
    model, opt = acc.prepare(model, opt)
    torch.manual_seed(args.seed + acc.process_index)  # each rank draws its own t and masks
    start, log, t0 = restore(state, acc, opt, sched) if state else (0, [], time.time())

    # 4. the loop: sample t -> mask -> predict -> weighted CE -> step
    bar = tqdm(range(start + 1, args.max_steps + 1), initial=start, total=args.max_steps,
               disable=not acc.is_main_process)
    with interruptible() as stop:  # Ctrl-C: finish the step, save a resumable checkpoint, leave
        for step in bar:
            model.train()
            for _ in range(args.grad_accum):
                x0, keep = batch([next(train_rows) for _ in range(args.batch_size)], acc.device)
                with acc.accumulate(model):
                    xt, masked, p_mask = forward_process(x0, mask_id, keep=keep, recipe=args)
                    xt, loss_fn = corrupt(step, x0, xt, masked, p_mask, keep)
                    loss = loss_fn(model(input_ids=xt).logits, x0, masked, p_mask, mask_id, keep)
                    acc.backward(loss)
                    if acc.sync_gradients:  # subtle: clip the whole batch's gradient, once
                        acc.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    opt.zero_grad()
            sched.step()
            losses = acc.gather(loss.detach()[None])                # (ranks,) the global batch's
            bar.set_postfix(loss=f"{losses.mean().item():.3f}")
            if (step % args.eval_every == 0 or step in (1, args.max_steps)) and acc.is_main_process:
                net = acc.unwrap_model(model).eval()
                val = validate(net, x_val, keep_val, objective, mask_id) / per
                log.append(dict(step=step, seconds=round(time.time() - t0, 1),
                                val_nelbo_per_token=val, train_loss_by_rank=losses.tolist()))
                # a sample after the first validation prompt: the BOS, or a conversation
                P = val_rows[0][1]
                x = generate(net, x_val[:1, :P], steps=64, gen_length=L - P, block_length=L - P,
                             temperature=1.0, mask_id=mask_id)
                truth = f" (true entropy {true_h:.4f})" if true_h else ""
                tqdm.write(f"step {step}: val {'SFT loss' if args.sft else '-ELBO'} {val:.4f} "
                           f"nats/token{truth}\n  sample: {decode(tok, x[0, P:])[:300]}")
            acc.wait_for_everyone()
            if stop(acc):
                break

    # 5. rank 0 saves model + tokenizer (from_pretrained reads them) and metrics.json; if
    # interrupted, also what --resume needs (optimizer, schedule, every rank's RNG state, step)
    save_run(acc, model, tok, args, step, opt, sched, log, t0, true_h)
    leave(acc)  # every rank leaves together, once rank 0 has saved


if __name__ == "__main__":
    main()
