r"""
Talk to a fine-tuned (SFT) diffusion model in the terminal and watch each answer denoise.

    python train.py --sft --out_dir out_sft          # story-world chat tasks on top of out/
                                                     # (~19 min on one CPU core)
    python chat.py                                   # out_sft/, else the shipped chat model;
                                                     # /reset, /quit (or Ctrl-D)
    python chat.py -p "Write a story about a fox named Max."      # one answer, then exit

On a GPU, any SFT checkpoint of this project works the same way, e.g.
    accelerate launch train.py --sft --model answerdotai/ModernBERT-base \
        --dataset HuggingFaceTB/smol-smoltalk --seq_len 512 --lr 1e-5
    python chat.py --ckpt out --block_length 32

The answer is written in semi-autoregressive blocks after the prompt and ends at the first EOS:
the model decides its length (it learned to write EOS filler after a response), not the canvas,
and once every block so far holds an EOS no further block is computed.
"""
import argparse, sys

import torch

from edits_and_sft import ensure_chat_template
from extra import checks
from extra.loading import CHAT_BLOCK, SHIPPED_SFT, bos_id, context, default_checkpoint, load
from extra.render import canvas_text
from sample import decode, generate


def answer(model, tok, messages, args, live=None):
    """(reply, ended): the assistant's reply to a conversation (a list of {"role", "content"}
    ending with the user's turn), and whether it ended with an EOS before the canvas was full."""
    bos = [] if bos_id(tok) is None else [bos_id(tok)]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    x = torch.tensor([bos + tok(prompt, add_special_tokens=False)["input_ids"]])      # (1, P)
    room = args.context - x.shape[1]
    if room < 1:
        raise ValueError(f"the conversation is {x.shape[1]} tokens and the model's context is "
                         f"{args.context}: no room for an answer. Type /reset to start over, "
                         f"or write less.")
    # blocks of about block_length that fill the room
    n_blocks = -(-min(args.gen_length, room) // args.block_length)
    block_length = min(args.gen_length, room) // n_blocks
    gen_length = n_blocks * block_length
    out = generate(model, x, steps=gen_length // block_length * min(args.steps, block_length),
                   gen_length=gen_length, block_length=block_length,
                   temperature=args.temperature, remasking=args.remasking,
                   mask_id=tok.mask_token_id, threshold=args.threshold, joint=args.joint,
                   edits=args.edits, eos_id=tok.eos_token_id,
                   on_step=live and (lambda c: live(c[0, x.shape[1]:])))
    return decode(tok, out[0, x.shape[1]:]), bool((out[0, x.shape[1]:] == tok.eos_token_id).any())


def load_chat(ckpt):
    """(model, tokenizer with a chat template, context length in tokens) of an SFT checkpoint."""
    model, tok, metrics = load(ckpt)
    checks.chat_model(ckpt, tok, metrics)  # fine-tuned with --sft, or it says how
    return model, ensure_chat_template(tok), context(model, metrics)


def live_view(tok):
    """Redraw the answer's canvas in place: masks as ░, tokens as they are committed."""
    def draw(canvas):
        ids = canvas.tolist()
        if tok.eos_token_id in ids:
            ids = ids[:ids.index(tok.eos_token_id)]
        text = canvas_text(tok, ids, tok.mask_token_id)
        print("\033[s" + text + "\033[K\033[u", end="", flush=True)  # save cursor, draw, restore
    return draw


def get_args(argv=None):
    return parser().parse_args(argv)


def parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None,
                   help="an SFT checkpoint folder (train.py --sft) or hub id "
                   "(default: out_sft/, else the shipped story-world chat model)")
    p.add_argument("-p", "--prompt", default=None,
                   help="answer this one message and exit (for scripts and tests)")
    p.add_argument("--gen_length", type=int, default=512,
                   help="the most tokens an answer may take (capped by the context)")
    p.add_argument("--block_length", type=int, default=CHAT_BLOCK,
                   help="semi-autoregressive block size")
    p.add_argument("--steps", type=int, default=16,
                   help="forward passes per block (= block_length: one token each)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 = greedy, the most likely answer")
    p.add_argument("--remasking", default="low_confidence", choices=["low_confidence", "random"])
    p.add_argument("--threshold", type=float, default=None,
                   help="confidence-threshold parallel decoding, e.g. 0.9")
    p.add_argument("--joint", action="store_true", help="with --threshold: the product of the "
                   "confidences committed in a pass stays above it (sample.py --help)")
    p.add_argument("--edits", type=int, default=0,
                   help="let the model revise committed tokens (a model trained with --edits)")
    p.add_argument("--no_show", action="store_true",
                   help="do not draw the answer while it denoises")
    p.add_argument("--seed", type=int, default=0)
    return p


@checks.friendly_exit("Lower --gen_length.")
def main(argv=None):
    args = get_args(argv)
    checks.sampling(args)  # the flags alone; the room left is checked for every message
    # out_sft/ of `python train.py --sft --out_dir out_sft`, else the shipped one
    if args.ckpt is None:
        args.ckpt, which = default_checkpoint("out_sft", SHIPPED_SFT)
        print(f"model: {args.ckpt}{which}", file=sys.stderr)
    torch.manual_seed(args.seed)
    model, tok, args.context = load_chat(args.ckpt)
    live = live_view(tok) if sys.stdout.isatty() and not args.no_show else None
    if args.prompt is not None:
        if not args.prompt.strip():
            sys.exit("error: the prompt is empty; pass some text with -p \"...\"")
        try:
            print(answer(model, tok, [{"role": "user", "content": args.prompt}], args)[0])
        except ValueError as e:
            sys.exit(f"error: {e}")
        return
    print(f"chatting with {args.ckpt}. /reset forgets the conversation, /quit or Ctrl-D leaves.")
    history = []
    while True:
        try:
            line = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if line in ("/quit", "/exit"):
            return
        if line == "/reset":
            history = []
            print("(conversation cleared)")
            continue
        if not line:
            continue
        print("bot> ", end="", flush=True)
        try:
            reply = answer(model, tok, history + [{"role": "user", "content": line}], args, live)[0]
        except ValueError as e:
            print(f"\n{e}")
            continue
        except KeyboardInterrupt:
            print("\n(interrupted)")
            continue
        print(reply + "\033[K" if live else reply)
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": reply}]


if __name__ == "__main__":
    main()
