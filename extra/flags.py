"""Every flag of train.py and sample.py, with its advice (`python train.py --help`), and the
defaults that depend on other flags. Kept here so that the two scripts read as the algorithms."""
import argparse, json, os, sys

from extra import checks
from extra.loading import CHAT_BLOCK, PRESETS, SHIPPED, bf16_is_fast, default_checkpoint, resumable


def parser(doc):
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def train_args(doc, argv=None):
    """train.py's flags, resolved (see resolve)."""
    p = train_parser(doc)
    return resolve(p.parse_args(argv), p)


def train_parser(doc):
    p = parser(doc)
    arg = p.add_argument
    arg("--preset", default="tiny", choices=PRESETS,
        help="from-scratch model size (not with --model)")
    arg("--attention", default=None,
        help="one letter a layer: G sees the whole row, L only its 32 neighbours (default: the "
        "preset's, LGLG; ModernBERT's own order is GLGL; docs/recipes.md)")
    arg("--model", default=None,
        help="hub id or local folder of an AutoModelForMaskedLM to fine-tune")
    arg("--dataset", default="storyworld",
        help="'storyworld', a hub dataset with a 'text' column, or a .txt/.jsonl file")
    arg("--seq_len", type=int, default=160,
        help="L: tokens per row; short documents are padded with EOS filler")
    arg("--batch_size", type=int, default=None,
        help="rows per step per process (default: the preset's)")
    arg("--grad_accum", type=int, default=1, help="micro-batches per optimizer step")
    arg("--lr", type=float, default=None,
        help="peak AdamW learning rate (default: the preset's; 5e-5 with --model, unless --sft)")
    arg("--warmup", type=int, default=None,
        help="linear warm-up steps, then cosine decay to 10%% (default: 100, or --max_steps if "
        "less)")
    arg("--max_steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    arg("--eval_every", type=int, default=200,
        help="steps between validation ELBOs and printed samples")
    arg("--n_val", type=int, default=256,
        help="held-out documents for the validation ELBO (at most; fewer if the data has fewer)")
    arg("--out_dir", default="out", help="where the model, tokenizer and metrics.json are saved")
    arg("--seed", type=int, default=0)
    arg("--resume", action="store_true",
        help="continue the run in --out_dir that Ctrl-C interrupted, with its own arguments")
    arg("--mixed_precision", default=None, choices=["no", "fp16", "bf16"],
        help="no / fp16 / bf16 (default: bf16 where the GPU or CPU computes it natively)")
    # the recipe levers (extra/recipes.py, docs/recipes.md)
    arg("--t_dist", default=None, choices=["uniform", "clipped", "bell"],
        help="the noise level t in training: U(0, 1) (LLaDA), U[0.3, 0.8], or a triangle at 0.5 "
        "(default: bell)")
    arg("--block_rows", type=float, default=None, help="share of the rows shaped as the sampler "
        "sees a block: clean prefix, one block masked at rate t, the rest masked (BD3-LM, PUMA; "
        "default: 0.5; with --sft the blocks start after the prompt). --t_dist uniform "
        "--block_rows 0 is LLaDA's recipe")
    arg("--block_length", type=int, default=None,
        help="the block of --block_rows (default: sample.py's, a quarter of the generated length; "
        "chat.py's 16 with --sft)")
    # edits_and_sft.py
    arg("--sft", action="store_true", help="supervised fine-tuning on conversations ('messages'), "
        "from --model (default: out/, else the shipped model); --dataset storyworld means the "
        "story-world chat tasks")
    arg("--edits", action="store_true",
        help="Seed Diffusion curriculum: after --edit_start, also corrupt visible tokens")
    arg("--edit_start", type=float, default=None,
        help="fraction of the steps trained with masks only (default: 0.8; with --edits)")
    arg("--edit_rate", type=float, default=None,
        help="a visible token is replaced with probability edit_rate * t (default: 0.2; with "
        "--edits)")
    return p


def resolve(args, p):
    """train.py's flags whose defaults depend on others: the preset's batch size, steps and learning
    rate (5e-5 to fine-tune a pretrained model), the pretrained model of --sft, the precision.
    --resume: the interrupted run's own flags (p: the parser, to tell which flags were given)."""
    if args.resume:
        checks.resumed([f"--{k}" for k, v in vars(args).items()
                        if k not in ("resume", "out_dir") and v != p.get_default(k)])
        resumable(args.out_dir)  # says so if there is nothing to resume
        saved = json.load(open(os.path.join(args.out_dir, "metrics.json")))["args"]
        # a run saved before the recipe levers existed was trained with LLaDA's recipe
        saved = {"t_dist": "uniform", "block_rows": 0.0, "block_length": 1, **saved}
        print(f"resuming the run in {args.out_dir}/ with its own flags", file=sys.stderr)
        return argparse.Namespace(**{**saved, "resume": True, "out_dir": args.out_dir})
    checks.training(args)
    checks.attention(args, PRESETS[args.preset].get("attention"))
    if os.path.exists(os.path.join(args.out_dir, "training_state.pt")):
        print(f"note: {args.out_dir}/ holds an interrupted run, which this one will replace when "
              f"it saves; to continue that one instead: python train.py --out_dir {args.out_dir} "
              "--resume", file=sys.stderr)
    if args.sft and args.model is None:  # SFT starts from out/ of train.py, else the shipped model
        args.model = default_checkpoint("out", SHIPPED)[0]
    if args.mixed_precision is None:
        args.mixed_precision = "bf16" if bf16_is_fast() else "no"
    # the recipe measured best on the story world (docs/recipes.md), for SFT too
    # (docs/chat_and_edits.md): with --sft the blocks start after the prompt, as chat.py's do
    if args.t_dist is None:
        args.t_dist = "bell"
    if args.block_rows is None:
        args.block_rows = 0.5
    if args.block_length is None:  # the sampler's block: sample.py's default (a quarter of what
        # fits after the BOS), or chat.py's
        args.block_length = CHAT_BLOCK if args.sft else max(1, (args.seq_len - 1) // 4)
    preset = PRESETS[args.preset]
    # subtle: None is "not given" (0 is refused by checks.training, never read as unset)
    if args.batch_size is None:
        args.batch_size = preset["batch"]
    if args.attention is None and args.model is None:  # a pretrained model keeps its layers
        args.attention = preset.get("attention")
    if args.max_steps is None:
        args.max_steps = preset["steps"]
    if args.lr is None:
        args.lr = preset["lr"] if args.model is None or args.sft else 5e-5
    if args.warmup is None:
        args.warmup = min(100, args.max_steps)
    checks.warmup(args)
    if args.edits:  # Seed Diffusion's curriculum (edits_and_sft.py)
        args.edit_start = 0.8 if args.edit_start is None else args.edit_start
        args.edit_rate = 0.2 if args.edit_rate is None else args.edit_rate
    return args


def sample_args(doc, argv=None):
    """sample.py's flags; gen_length and block_length are filled in by room_defaults."""
    return sample_parser(doc).parse_args(argv)


def sample_parser(doc):
    p = parser(doc)
    arg = p.add_argument
    arg("--ckpt", default=None,
        help="folder saved by train.py or a hub id (default: out/, else the shipped model)")
    arg("--n", type=int, default=8, help="number of samples (one batch)")
    arg("--steps", type=int, default=None,
        help="denoising steps = forward passes (default: gen_length, one token each)")
    arg("--gen_length", type=int, default=None, help="tokens to generate (default: the training "
        "length minus the prompt, rounded down to a multiple of 4)")
    arg("--block_length", type=int, default=None, help="semi-autoregressive block size (default: a "
        "quarter of gen_length; with one block the confident EOS filler grows from the end and "
        "stories come out short)")
    arg("--temperature", type=float, default=0.8,
        help="0 = greedy; from an empty prompt greedy gives one story n times. 0.8 (the default) "
        "trims the tail that T = 1 samples from: 80%% of sentences in place against 77%% "
        "(docs/recipes.md)")
    arg("--remasking", default="low_confidence", choices=["low_confidence", "random"])
    arg("--threshold", type=float, default=None,
        help="confidence threshold for parallel decoding, e.g. 0.9")
    arg("--joint", action="store_true", help="with --threshold: commit the most confident "
        "predictions while the product of their confidences stays above it, rather than each one "
        "above it (fewer broken stories for a few more passes: results/threshold.md)")
    arg("--edits", type=int, default=0, help="let the model revise committed tokens, at most this "
        "many times per position (useful for models trained with train.py --edits)")
    arg("--edit_threshold", type=float, default=None,
        help="with --edits: revise a token when the model gives another one more than this "
        "(default: 0.9)")
    arg("--prompt", default="", help="text the canvas starts with (kept as is)")
    arg("--show", action="store_true", help="watch the first sample denoise")
    arg("--gif", default=None, help="save the first sample's denoising as an animated GIF there")
    arg("--json", action="store_true", help="one JSON object per sample")
    arg("--seed", type=int, default=0)
    return p


def room_defaults(args, room):
    """sample.py's defaults: gen_length fills the room the prompt leaves, rounded down to a multiple
    of 4 (if that leaves anything), in 4 blocks (one block if gen_length is not a multiple of 4)."""
    if args.gen_length is None:
        args.gen_length = room - room % 4 or room
    if args.block_length is None:
        quarter = args.gen_length % 4 == 0
        args.block_length = args.gen_length // 4 if quarter else args.gen_length
    if args.edits and args.edit_threshold is None:
        args.edit_threshold = 0.9
