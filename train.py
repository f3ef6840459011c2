"""
Train a masked diffusion language model: Nie et al. 2025 ("Large Language Diffusion Models", LLaDA),
Algorithm 1, with the weighting of MDLM (Sahoo et al. 2024), on any Hugging Face masked-LM encoder.

    python train.py                          # tiny model on the embedded story world, ~9 min on 2 CPU cores
    python train.py --preset long            # the same model for 12,000 steps, ~35 min
    python train.py --resume                 # continue the run in out/ that Ctrl-C stopped (it saved first)
    accelerate launch train.py --model distilbert/distilbert-base-cased --dataset roneneldan/TinyStories
    accelerate launch train.py --model answerdotai/ModernBERT-base --dataset roneneldan/TinyStories
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 train.py   # real 2-rank DDP on a CPU

One training step, in paper order:
  x0 (B, L) clean tokens -> t ~ U(0,1) per sequence -> mask each token with p_mask = (1-eps) t + eps
  -> the encoder predicts every masked token -> loss = sum over masked tokens of CE / p_mask, over B*L.
That loss is the negative ELBO, an upper bound on -log p(x0) per token (MDLM eq. 10; LLaDA eq. 3).
"""
import argparse, itertools, math, sys, time

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm import tqdm

from extra import checks, storyworld
from extra.loading import (PRESETS, bf16_is_fast, bos_id, from_scratch, interruptible, load, load_data, resolve, restore,
                           resume, save, training_state, use_the_cores)
from sample import generate, decode
from edits_and_sft import add_arguments, edit_corrupt, edit_loss, edit_stage, prompt_mask, sft_data, sft_loss, val_sft


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=PRESETS, help="from-scratch model size (ignored with --model)")
    p.add_argument("--model", default=None, help="hub id or local folder of an AutoModelForMaskedLM to fine-tune")
    p.add_argument("--dataset", default="storyworld", help="'storyworld', a hub dataset with a 'text' column, or a .txt/.jsonl file")
    p.add_argument("--seq_len", type=int, default=160, help="L: tokens per row; short documents are padded with EOS filler")
    p.add_argument("--batch_size", type=int, default=None, help="rows per step per process (default: the preset's)")
    p.add_argument("--grad_accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate (default: the preset's; 5e-5 with --model, unless --sft)")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps, then cosine decay to 10%%")
    p.add_argument("--max_steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    p.add_argument("--eval_every", type=int, default=200, help="steps between validation ELBOs and printed samples")
    p.add_argument("--n_val", type=int, default=256, help="held-out documents for the validation ELBO")
    p.add_argument("--out_dir", default="out", help="where the model, tokenizer and metrics.json are saved")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out_dir that Ctrl-C interrupted, with its own arguments")
    p.add_argument("--mixed_precision", default=None, choices=["no", "fp16", "bf16"], help="no / fp16 / bf16 (default: bf16 where the GPU or CPU computes it natively)")
    # + --sft, --edits, --edit_start, --edit_rate (edits_and_sft.py); then the defaults that depend on other flags
    return resolve(add_arguments(p).parse_args(argv))


def forward_process(x0, mask_id, eps=1e-3, generator=None, keep=None):
    """Nie et al. Alg. 1. Returns xt, the mask, and p_mask (B, 1). `keep` (B, L) marks positions never masked.
    subtle: t is drawn low-discrepancy (MDLM): t_b = (u + b/B) mod 1 keeps each batch spread over (0, 1)."""
    B, L = x0.shape
    u = torch.rand(1, device=x0.device, generator=generator)
    t = (u + torch.arange(B, device=x0.device) / B) % 1                            # (B,)
    p_mask = ((1 - eps) * t + eps)[:, None]                                        # (B, 1)
    masked = torch.rand(B, L, device=x0.device, generator=generator) < p_mask      # (B, L)
    if keep is not None:
        masked &= ~keep
    return torch.where(masked, mask_id, x0), masked, p_mask


def diffusion_loss(logits, x0, masked, p_mask, mask_id):
    """-ELBO per token: sum_masked CE(logits, x0) / p_mask, divided by B*L (all positions, not #masked)."""
    logits = logits[masked].float()                                                # (N, V), N = #masked
    logits[:, mask_id] = -float("inf")                                             # SUBS: never predict [MASK]
    ce = F.cross_entropy(logits, x0[masked], reduction="none")                     # (N,)
    return (ce / p_mask.expand_as(masked)[masked]).sum() / x0.numel()


def real_tokens(x0, eos, bos):
    """Tokens that carry information: the text and its EOS (not BOS, not the filler after the EOS)."""
    return ((x0 != eos) & (x0 != bos)).sum(1).add(1).clamp(max=x0.shape[1]).sum().item()


@torch.no_grad()
def val_nelbo(model, x0, mask_id, eos, bos=None, draws=2, batch_size=64):
    """-ELBO in nats per real token, with fixed noise."""
    g = torch.Generator(x0.device).manual_seed(1234)
    total = 0.0
    for _ in range(draws):
        for xb in x0.split(batch_size):
            xt, masked, p_mask = forward_process(xb, mask_id, generator=g, keep=xb == bos)
            total += diffusion_loss(model(input_ids=xt).logits, xb, masked, p_mask, mask_id).item() * xb.numel()
    return total / draws / real_tokens(x0, eos, bos)


@checks.friendly_exit("Lower --batch_size (and raise --grad_accum to keep the batch the same) or --seq_len.")
def main(argv=None):
    args = get_args(argv)
    state = resume(args.out_dir) if args.resume else None  # what Ctrl-C saved: optimizer, schedule, RNG states, step
    acc = Accelerator(gradient_accumulation_steps=args.grad_accum,
                      mixed_precision=args.mixed_precision or ("bf16" if bf16_is_fast() else "no"))
    use_the_cores(acc)  # accelerate launch sets OMP_NUM_THREADS=1 on a CPU
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up at once, even in a log file
    torch.manual_seed(args.seed)  # the same initial weights on every rank

    # 1. tokenizer and model: fine-tune a pretrained encoder, or build a preset from scratch
    model, tok = (load(args.out_dir if state else args.model, args.seq_len)[:2] if state or args.model
                  else from_scratch(args.preset, args.dataset, args.seq_len))
    mask_id, eos, bos = tok.mask_token_id, tok.eos_token_id, bos_id(tok)
    acc.print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocabulary {len(tok)}")

    # 2. data: an endless stream of rows for training (each rank takes its own share), a fixed validation set
    # (--sft: conversations, edits_and_sft.py; role tokens and a chat template are added to tok and model if missing)
    train_rows, val_rows, val_texts = (sft_data(args.dataset, tok, args.seq_len, args.n_val, model) if args.sft
                                       else load_data(args.dataset, tok, args.seq_len, args.n_val))
    train_rows = itertools.islice(train_rows, acc.process_index + (state["rows_seen"] if state else 0), None, acc.num_processes)
    x_val = torch.tensor(val_rows, device=acc.device)                                     # (n_val, L)
    # the story world's exact entropy of the very same validation stories, per real token (text + EOS)
    true_h = -sum(map(storyworld.log_prob, val_texts)) / real_tokens(x_val, eos, bos) if args.dataset == "storyworld" and val_texts else None
    keep_of = (lambda x: prompt_mask(x, tok)) if args.sft else (lambda x: x == bos)  # never masked: prompt / BOS
    objective = sft_loss if args.sft else lambda *a, keep: diffusion_loss(*a)     # LLaDA's SFT loss, or the -ELBO

    # 3. optimizer, warm-up + cosine schedule, accelerate
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    lr_at = lambda s: min(1, (s + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / args.max_steps)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model, opt = acc.prepare(model, opt)
    torch.manual_seed(args.seed + acc.process_index)  # each rank draws its own t and masks

    # 4. the loop: sample t -> mask -> predict -> weighted CE -> step
    start, log, t0 = restore(state, acc, opt, sched) if state else (0, [], time.time())
    bar = tqdm(range(start + 1, args.max_steps + 1), initial=start, total=args.max_steps, disable=not acc.is_main_process)
    with interruptible() as stop:  # Ctrl-C: the step is finished, a resumable checkpoint saved, then we leave
        for step in bar:
            model.train()
            for _ in range(args.grad_accum):
                x0 = torch.tensor([next(train_rows) for _ in range(args.batch_size)], device=acc.device)  # (B, L)
                with acc.accumulate(model):
                    xt, masked, p_mask = forward_process(x0, mask_id, keep=(keep := keep_of(x0)))
                    if stage2 := args.edits and edit_stage(step, args.max_steps, args.edit_start):  # Seed Diffusion stage 2
                        xt, _ = edit_corrupt(x0, xt, masked, p_mask, keep, args.edit_rate)
                    loss = (edit_loss if stage2 else objective)(model(input_ids=xt).logits, x0, masked, p_mask, mask_id, keep=keep)
                    acc.backward(loss)
                    acc.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step(); opt.zero_grad()
            sched.step()
            bar.set_postfix(loss=f"{(losses := acc.gather(loss.detach()[None])).mean().item():.3f}")  # the global batch's
            if (step % args.eval_every == 0 or step in (1, args.max_steps)) and acc.is_main_process:
                net = acc.unwrap_model(model).eval()
                nelbo = val_sft(net, x_val, tok) if args.sft else val_nelbo(net, x_val, mask_id, eos, bos)
                log.append(dict(step=step, seconds=round(time.time() - t0, 1), val_nelbo_per_token=nelbo, train_loss_by_rank=losses.tolist()))
                g = args.seq_len - (P := int(keep_of(x_val[:1]).sum()))  # the prompt: BOS, or a validation conversation's
                x = generate(net, x_val[:1, :P], steps=64, gen_length=g, block_length=g, temperature=1.0, mask_id=mask_id)
                tqdm.write(f"step {step}: val {'SFT loss' if args.sft else '-ELBO'} {nelbo:.4f} nats/token" + (f" (true entropy {true_h:.4f})" if true_h else "")
                           + f"\n  sample: {decode(tok, x[0, P:])[:300]}")
            acc.wait_for_everyone()
            if stop(acc):
                break

    # 5. save model + tokenizer (loadable by AutoModelForMaskedLM.from_pretrained) and the metrics; if interrupted,
    # also what --resume needs (optimizer, schedule, every rank's RNG state, the step)
    resumable = training_state(acc, step, opt, sched, log, time.time() - t0, args) if step < args.max_steps else None
    if acc.is_main_process:
        metrics = dict(dataset=args.dataset, val_nelbo_per_token=log[-1]["val_nelbo_per_token"], true_entropy_per_token=true_h,
                       steps=step, seconds=round(time.time() - t0, 1), args=vars(args), log=log)
        save(args.out_dir, acc.unwrap_model(model), tok, metrics, resumable)
    acc.wait_for_everyone()  # rank 0 has saved: the ranks leave together (a rank that leaves alone can hang the other)
    acc.end_training()  # also destroys the process group: without it a multi-process run can hang at exit


if __name__ == "__main__":
    main()
