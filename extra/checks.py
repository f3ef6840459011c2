"""The mistakes a learner is likely to make with train.py, sample.py and chat.py, caught before they
turn into a traceback from deep inside a library, each answered with one line that says what to do.
Every check ends the program with `error: ...` on stderr and exit status 1 (a SystemExit, so a
notebook or a test sees it too). tests/test_reliability.py has one test per case."""
import functools, json, os, re, sys

import torch

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")


def fail(message):
    raise SystemExit(f"error: {message}")


def looks_like_a_path(name):
    """'./out', '/data/x', 'stories.jsonl' are paths; 'roneneldan/TinyStories' and 'gpt2' may be hub
    ids."""
    return (name.startswith((".", "/", "~")) or name.endswith((".txt", ".jsonl", ".json"))
            or name.count("/") > 1)


def missing_path(name, what):
    """A path that does not exist, said as such instead of being tried as a hub id."""
    if looks_like_a_path(name) and not os.path.exists(name):
        fail(f"there is no {what} '{name}' (looked in "
             f"{os.path.abspath(os.path.expanduser(name))}); check the path")


def checkpoint_folder(folder):
    """A local model folder must hold a config, weights and a tokenizer; a folder a save left
    unfinished says so."""
    if folder.rstrip("/").endswith((".tmp", ".old")):
        fail(f"'{folder}' is a save that was cut off (train.py writes to .tmp and renames it when "
             f"done): use '{folder.rstrip('/')[:-4]}' instead, or retrain")
    files = set(os.listdir(folder))
    missing = [what for what, names in (("config.json", ("config.json",)),
                                        ("weights (model.safetensors)", WEIGHTS),
                                        ("tokenizer (tokenizer.json)", TOKENIZER))
               if not files & set(names)]
    if missing:
        fail(f"'{folder}' is not a complete model folder: it has no {', no '.join(missing)}. "
             "Point at a folder saved by train.py (or by save_pretrained), or retrain")


def masked_lm(config, name):
    """These scripts need an encoder with a masked-LM head; a GPT (decoder) checkpoint says so."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        kind = ", ".join(config.architectures or [config.model_type])
        fail(f"'{name}' is a {kind} checkpoint, not a masked language model. train.py, sample.py "
             "and chat.py need an encoder with a masked-LM head (AutoModelForMaskedLM), e.g. "
             "answerdotai/ModernBERT-base, distilbert/distilbert-base-cased or a folder saved by "
             "train.py"
             + (" (a GPT from extra/train_ar.py is read by extra/evaluate.py --ar_ckpt)"
                if "GPT" in kind else ""))


def mask_token(tok, name):
    if tok.mask_token_id is None:
        fail(f"the tokenizer of '{name}' has no mask token, which masked diffusion needs. Add one "
             "before training: tok.add_special_tokens({'mask_token': '[MASK]'}); "
             "model.resize_token_embeddings(len(tok)); then save both with save_pretrained")


def seq_len(L, model, name):
    limit = model.config.max_position_embeddings
    if L > limit:
        fail(f"--seq_len {L} is longer than '{name}' can read ({limit} positions): "
             f"pass --seq_len {limit} or less")


def text_file(path):
    """--dataset FILE: a .txt or .jsonl file of UTF-8 text (not a folder, not binary bytes)."""
    if os.path.isdir(path):
        fail(f"'{path}' is a folder; --dataset takes a .txt or .jsonl file ('storyworld', or a hub "
             "dataset id)")
    if not path.endswith((".txt", ".jsonl")):
        fail(f"'{path}' is neither a .txt nor a .jsonl file: --dataset reads plain text (.txt: "
             "documents separated by blank lines or <|endoftext|>) or JSON lines (.jsonl: one "
             "{\"text\": ...} per line)")
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    try:
        head.decode("utf-8")
        binary = b"\0" in head
    except UnicodeDecodeError as e:  # (a character cut by the 64 KB window is not an error)
        binary = e.start < len(head) - 3
    if binary:
        fail(f"'{path}' is not a text file (its first bytes are not UTF-8 text): give a .txt or "
             ".jsonl of text")


def text(value, where):
    if not isinstance(value, str):
        fail(f"{where}: \"text\" must be a string (got {type(value).__name__} {value!r:.40})")
    return value


def jsonl(path, field, check=lambda value, where: value):
    """The `field` of every line of a .jsonl file (each passed through
    check(value, "file, line n")), said with the line number of the first line that is not right."""
    values = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}, line {n}: not valid JSON ({e.msg}, column {e.colno}). Each line "
                     f"must be one JSON object, like {{\"{field}\": ...}}")
            if not isinstance(row, dict) or field not in row:
                has = (f"it has {', '.join(map(repr, row))}" if isinstance(row, dict)
                       else f"it is a {type(row).__name__}")
                fail(f"{path}, line {n} has no \"{field}\" field ({has}). Each line must look like "
                     f"{{\"{field}\": ...}}")
            values.append(check(row[field], f"{path}, line {n}"))
    if not values:
        fail(f"{path} is empty: it needs at least one line like {{\"{field}\": ...}}")
    return values


def column(stream, field, name):
    """The first example of a hub dataset, checked for the column the script reads; the stream,
    whole again."""
    it = iter(stream)
    first = next(it, None)
    if first is None:
        fail(f"the dataset '{name}' has no examples")
    if field not in first:
        fail(f"the dataset '{name}' has no \"{field}\" column (it has "
             f"{', '.join(map(repr, first))}). Pick a dataset with one, or write your data to a "
             f".jsonl file with one {{\"{field}\": ...}} per line")
    yield first
    yield from it


def conversation(messages, where):
    """An SFT example: a list of {"role", "content"} messages that ends with the assistant's turn
    (the response)."""
    ok = isinstance(messages, list) and messages and all(
        isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("content"), str)
        for m in messages)
    if not ok:
        fail(f"{where}: \"messages\" must be a list of "
             f"{{\"role\": \"user\" | \"assistant\" | \"system\", "
             "\"content\": \"...\"} objects")
    if messages[-1]["role"] != "assistant":
        fail(f"{where}: the conversation ends with a {messages[-1]['role']} turn; it must end with "
             "the assistant's response, the part SFT learns to write")
    return messages


# no device holds the logits of a bigger batch (2**24 tokens x a vocabulary of 50k x 2 bytes is 1.7
# TB), and no recipe takes a bigger optimizer step (LLaDA 8B: 1,280 rows of 4,096 tokens)
MAX_BATCH_TOKENS, MAX_STEP_ROWS = 2**24, 2**20


def attention(args, layers):
    """--attention against the preset's layers (layers: its "LGLG" string, None for DistilBERT)."""
    if args.attention is None:
        return
    if args.model or layers is None:
        fail(f"--attention sets the layers of a ModernBERT preset built from scratch; "
             f"{'--model ' + args.model if args.model else '--preset ' + args.preset} "
             "keeps its own")
    if len(args.attention) != len(layers) or set(args.attention) - set("LG"):
        fail(f"--attention needs one letter a layer, L (local) or G (global), for the "
             f"{len(layers)} layers of --preset {args.preset}: e.g. {layers} (got "
             f"{args.attention!r})")


def training(args):
    """train.py's numeric flags that cannot work (instead of a ZeroDivisionError, a loop that never
    ends, or a value quietly ignored)."""
    if args.seq_len < 8:
        fail(f"--seq_len {args.seq_len} is too short to hold a text (a BOS, some tokens and an "
             "EOS): use at least 8 (the default is 160)")
    for name in ("batch_size", "grad_accum", "max_steps", "eval_every", "n_val", "warmup"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            fail(f"--{name} must be at least 1 (got {getattr(args, name)})")
    rows = (args.batch_size or 1) * args.grad_accum
    if (args.batch_size or 1) * args.seq_len > MAX_BATCH_TOKENS:
        fail(f"--batch_size {args.batch_size} x --seq_len {args.seq_len} is more tokens in one "
             f"batch than any device holds (at most {MAX_BATCH_TOKENS:,}): lower --batch_size, "
             "and raise --grad_accum to keep the batch")
    if rows > MAX_STEP_ROWS:
        fail(f"--batch_size x --grad_accum is {rows:,} rows per optimizer step; even LLaDA 8B took "
             f"1,280: use fewer (at most {MAX_STEP_ROWS:,})")
    if args.lr is not None and not 0 < args.lr < 1:
        fail(f"--lr {args.lr} is not a learning rate: AdamW wants something like 1e-3 from "
             "scratch, 5e-5 to fine-tune")
    if args.block_rows is not None and not 0 <= args.block_rows <= 1:
        fail(f"--block_rows is a share of the rows: it must be in [0, 1] (got {args.block_rows})")
    if args.block_length is not None and not 1 <= args.block_length <= args.seq_len - 2:
        fail(f"--block_length must be between 1 and --seq_len - 2 ({args.seq_len - 2}); "
             f"got {args.block_length}")
    if args.block_length is not None and args.block_rows == 0:
        fail("--block_length is the block of --block_rows, which is 0 here: drop --block_length, "
             "or pass --block_rows")
    for name in ("edit_start", "edit_rate"):
        if getattr(args, name) is not None and not args.edits:
            fail(f"--{name} belongs to the edit curriculum: add --edits, or drop --{name}")
    if args.edit_start is not None and not 0 <= args.edit_start <= 1:
        fail(f"--edit_start is a fraction of the steps: it must be in [0, 1] "
             f"(got {args.edit_start})")
    if args.edit_rate is not None and not 0 < args.edit_rate <= 1:
        fail(f"--edit_rate must be in (0, 1] (got {args.edit_rate}): a visible token is replaced "
             "with probability edit_rate * t; 0.2 is Seed Diffusion's order of magnitude")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        fail("--mixed_precision fp16 needs a GPU; on a CPU use bf16 (if it computes bf16 natively) "
             "or no")


def warmup(args):
    """After the preset has set --max_steps: a warm-up longer than the run never reaches --lr."""
    if args.warmup > args.max_steps:
        fail(f"--warmup {args.warmup} is longer than the run (--max_steps {args.max_steps}): the "
             f"learning rate would never reach --lr; use at most {args.max_steps}")


def resumed(changed):
    """--resume continues with the run's own flags: any other flag given would be ignored."""
    if changed:
        fail(f"--resume continues the run with its own flags, so {', '.join(changed)} would be "
             "ignored: drop them (only --out_dir goes with --resume), or start a new run in "
             "another --out_dir")


def sampling(args, context=None, prompt_len=0, metrics=None):
    """Arguments of sample.py and chat.py that cannot work, said before any model pass. Without a
    context (chat.py, which fits its blocks to the room each message leaves): only the flags
    themselves. metrics: sample.py's checkpoint's metrics.json (a chat model is for chat.py)."""
    if (metrics or {}).get("args", {}).get("sft") and not args.prompt:
        fail(f"'{args.ckpt}' is a chat model (train.py --sft): it answers conversations rather "
             f"than writing from nothing. Talk to it: python chat.py --ckpt {args.ckpt}")
    if context is not None and prompt_len >= context:
        fail(f"the prompt is {prompt_len} tokens and the model reads at most {context}: no room to "
             "write. Shorten the prompt")
    for name in ("n", "steps", "gen_length", "block_length"):
        if getattr(args, name, None) is not None and getattr(args, name) < 1:
            fail(f"--{name} must be at least 1 (got {getattr(args, name)})")
    if getattr(args, "edit_threshold", None) is not None and not args.edits:
        fail("--edit_threshold is for revising committed tokens: add --edits 1 (or more), or drop "
             "--edit_threshold")
    if args.remasking == "random" and args.threshold is not None:
        fail("--threshold chooses which predictions low-confidence remasking commits; random "
             "remasking (Alg. 4) commits at random and would ignore it: drop --threshold or "
             "--remasking random")
    if getattr(args, "joint", False) and args.threshold is None:
        fail("--joint changes how --threshold commits: add --threshold 0.9 (or another), or drop "
             "--joint")
    if args.temperature < 0:
        fail(f"--temperature must be >= 0 (got {args.temperature}); 0 is greedy, 1 samples the "
             "model as it is")
    for name in ("threshold", "edit_threshold"):
        value = getattr(args, name, None)
        if value is not None and not 0 < value <= 1:
            fail(f"--{name} is a probability: it must be in (0, 1] (got {value}); "
                 "0.9 is a good start")
    if args.edits < 0:
        fail(f"--edits must be >= 0 (got {args.edits})")
    if args.block_length > args.gen_length:  # (sample.py: after room_defaults filled both in)
        fail(f"--block_length {args.block_length} is longer than --gen_length {args.gen_length}: "
             f"pass at most {args.gen_length}")
    if context is None:  # chat.py: each block is fitted to the room a message leaves
        if args.steps > args.block_length:
            fail(f"--steps {args.steps} is more passes than a block has tokens "
                 f"(--block_length {args.block_length}): each pass writes at least one; pass at "
                 f"most {args.block_length}")
        return
    if args.n * context > MAX_BATCH_TOKENS:
        fail(f"--n {args.n} samples of {context} tokens are one batch of more tokens than any "
             f"device holds (at most {MAX_BATCH_TOKENS:,}): ask for fewer, in several runs "
             "(--seed tells them apart)")
    if prompt_len + args.gen_length > context:
        fail(f"the prompt ({prompt_len} tokens) + --gen_length {args.gen_length} is more than the "
             f"model reads ({context}): pass --gen_length {context - prompt_len} or less")
    if args.steps is not None and args.steps > args.gen_length:
        fail(f"--steps {args.steps} is more passes than tokens to write (--gen_length "
             f"{args.gen_length}): each pass writes at least one; pass at most {args.gen_length}")
    if args.gen_length % args.block_length:
        fail(f"--gen_length {args.gen_length} is not a multiple of --block_length "
             f"{args.block_length}")
    n_blocks = args.gen_length // args.block_length
    if args.steps is not None and args.steps % n_blocks:
        fail(f"--steps {args.steps} cannot be split evenly over the {n_blocks} blocks: pass a "
             f"multiple of {n_blocks}, e.g. --steps "
             f"{max(n_blocks, args.steps - args.steps % n_blocks)}")


def chat_model(ckpt, tok, metrics):
    """chat.py on a model that was never fine-tuned for chat says so, and how to fine-tune it."""
    if metrics and not metrics.get("args", {}).get("sft"):
        why = "train.py trained it without --sft"
    elif not metrics and not tok.chat_template:
        why = "its tokenizer has no chat template"
    else:
        return
    fail(f"'{ckpt}' was never fine-tuned for chat ({why}), so it would not answer. Fine-tune it "
         f"first: python train.py --sft --model {ckpt} --out_dir out_sft; then python chat.py "
         "--ckpt out_sft")


def storyworld_model(ckpt, what):
    """Story validity, the agreement probe and the chat tasks only mean something for a model of the
    story world."""
    path = os.path.join(ckpt, "metrics.json")
    metrics = json.load(open(path)) if os.path.exists(path) else {}
    if metrics.get("dataset") != "storyworld":
        trained = (f"was trained on '{metrics['dataset']}'" if metrics.get("dataset")
                   else "has no metrics.json from train.py")
        fail(f"'{ckpt}' {trained}: it is not a story-world model, so {what} would mean nothing. "
             "Use a model from `python train.py` (the default data), or score your own text with "
             f"`python extra/evaluate.py --ckpt {ckpt} --data FILE`")


def friendly_exit(memory_advice):
    """Decorator for a script's main(): running out of memory (GPU or CPU) ends with a hint at the
    flag to lower, and a Ctrl-C that nothing else handled ends with "interrupted" and status 130; no
    traceback either way."""
    def wrap(main):
        @functools.wraps(main)
        def run(*a, **k):
            try:
                return main(*a, **k)
            except KeyboardInterrupt:
                print("\ninterrupted", file=sys.stderr)
                raise SystemExit(130)
            # torch.OutOfMemoryError (CUDA) is a RuntimeError; so is the CPU allocator's
            except RuntimeError as e:
                if (not isinstance(e, torch.OutOfMemoryError)
                        and "can't allocate memory" not in str(e)):
                    raise
                # the CPU allocator's message is a long one
                size = re.search(r"allocate (\d+) bytes", str(e))
                fail("out of memory (" + (f"{int(size[1]) / 2**30:.1f} GiB more were needed" if size
                                          else str(e).split(". ")[0][:120])
                     + f"). {memory_advice}")
        return run
    return wrap
