"""Plumbing that gets text and models into train.py and sample.py, kept out of them so that they
read as the algorithms: datasets (the story world, a hub dataset, a local file), the tokenizer
trained at start-up, the from-scratch model presets, checkpoint loading and atomic saving, readable
hub errors."""
import contextlib, itertools, json, os, shutil, signal, socket, sys, threading, time, zlib

import torch
from transformers import (AutoConfig, AutoModelForMaskedLM, AutoTokenizer, DistilBertConfig,
                          DistilBertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM,
                          PreTrainedTokenizerFast)
from transformers.utils import logging as hf_logging

from extra import checks, storyworld

hf_logging.disable_progress_bar()  # "Loading weights: 100%" bars for a 20 MB model are noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "extra", "checkpoint")  # the story-world model `python sample.py` uses
SHIPPED_SFT = os.path.join(ROOT, "extra", "checkpoint_sft")  # its chat (SFT) model, for chat.py
SHIPPED_EDITS = os.path.join(ROOT, "extra", "checkpoint_edits")  # trained with train.py --edits
SHIPPED_AR = os.path.join(ROOT, "extra", "checkpoint_ar")  # the GPT baseline (extra/train_ar.py)
CHAT_BLOCK = 16  # chat.py's semi-autoregressive block, the one train.py --sft shapes its rows for

# From-scratch models; the tokenizer is trained on the dataset at start-up, so they fix no
# vocabulary. Measured on 2 CPU cores: tiny ~9 min, long ~59 min, tiny-distilbert 9 min but a far
# worse bound (2.65 against 0.77 nats/token: README, "How the defaults were chosen").
# subtle: lr 1e-3, not higher. At 2e-3 and 4e-3 the bound falls faster, but the model never learns
# to copy the hero's name and pronoun from context (extra/probe_agreement.py: 5% right name, he/she
# a coin flip, even after 12,000 steps).
PRESETS = {
    "tiny": dict(arch="modernbert", hidden=128, layers=4, heads=4, mlp=256, steps=3000, batch=16,
                 lr=1e-3, init=0.1, attention="LGLG"),
    "long": dict(arch="modernbert", hidden=128, layers=4, heads=4, mlp=256, steps=16000, batch=16,
                 lr=1e-3, init=0.1, attention="LGLG"),
    "tiny-distilbert": dict(arch="distilbert", hidden=128, layers=4, heads=4, mlp=512, steps=3000,
                            batch=16, lr=1e-3, init=0.1),
}



def build_tokenizer(texts, vocab_size=4096):
    """Byte-level BPE trained on the data. On the story world every word ends up one token (~600 of
    them)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = (pre_tokenizers.ByteLevel(add_prefix_space=False),
                                      decoders.ByteLevel())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=["<|endoftext|>", "[MASK]", "[PAD]",
                                                  "<|startoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   mask_token="[MASK]", pad_token="[PAD]",
                                   bos_token="<|startoftext|>")


def bos_id(tok):
    """The token every row starts with (BOS, or BERT's [CLS]); None if the tokenizer has neither.
    subtle: it is never masked. On an all-mask canvas a RoPE encoder (ModernBERT) otherwise cannot
    tell one position from another (every key and value is the same [MASK]), and writes the same
    token everywhere."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    return None if bos == tok.eos_token_id else bos  # GPT-style tokenizers use one token for both


def build_model(preset, tok, seq_len, attention=None):
    """A fresh model of the preset; attention (ModernBERT only): "L"/"G" a layer, else the
    preset's."""
    c = PRESETS[preset]
    # subtle: the embedding of pad_token_id is frozen at zero, so it must not be EOS, which the
    # model has to learn
    ids = dict(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
               bos_token_id=tok.eos_token_id)
    # subtle: attention "LGLG": layers 1 and 3 (L) see only their 32 neighbours, 2 and 4 (G) the
    # whole row. The locality prior gets a tiny model off the loss plateau quickly (with all layers
    # global it sat at ~3.0 nats for 300-900 steps, and after 3,000 steps copied no name). Local
    # first: a masked slot must learn from its neighbours what kind of word goes there before a
    # global head can fetch that word from elsewhere in the story; ModernBERT's own order (GLGL)
    # leaves one global layer after context, and copied the toy 10% of the time after 3,000 steps
    # against 75% (docs/recipes.md, "Which layers look far").
    # subtle: the libraries' initializer_range of 0.02 is tuned for width 768; at width 128 a std
    # near 1/sqrt(width) cuts the validation -ELBO after 1,500 steps from 1.38 to 0.96 nats/token.
    if c["arch"] == "modernbert":
        cfg = ModernBertConfig(vocab_size=len(tok), hidden_size=c["hidden"],
                               num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
                               intermediate_size=c["mlp"], max_position_embeddings=seq_len,
                               local_attention=32, layer_types=[
                                   dict(L="sliding_attention", G="full_attention")[a]
                                   for a in attention or c["attention"]],
                               initializer_range=c["init"], cls_token_id=tok.eos_token_id,
                               sep_token_id=tok.eos_token_id, **ids)
        return ModernBertForMaskedLM(cfg)
    cfg = DistilBertConfig(vocab_size=len(tok), dim=c["hidden"], n_layers=c["layers"],
                           n_heads=c["heads"], hidden_dim=c["mlp"], max_position_embeddings=seq_len,
                           initializer_range=c["init"], dropout=0.0, attention_dropout=0.0, **ids)
    return DistilBertForMaskedLM(cfg)


def from_scratch(preset, dataset, seq_len, attention=None):
    """(model, tokenizer) for a preset: a byte-level BPE trained on the first 20,000 documents, and
    a fresh model."""
    tok = build_tokenizer(itertools.islice(read_texts(dataset), 20000))
    return build_model(preset, tok, seq_len, attention), tok


def model_and_tokenizer(args, acc, resumed=False):
    """train.py's model: the interrupted run's (--resume), a pretrained encoder (--model), or a
    preset from scratch with a byte-level BPE trained on the data. Says how big they are.
    subtle: seeded with --seed first, so that every rank starts from the same weights."""
    torch.manual_seed(args.seed)
    if resumed or args.model:
        model, tok, _ = load(args.out_dir if resumed else args.model, args.seq_len)
    else:
        model, tok = from_scratch(args.preset, args.dataset, args.seq_len, args.attention)
    acc.print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
              f"vocabulary {len(tok)}")
    return model, tok


def accelerator(args):
    """accelerate's Accelerator for train.py, with every core in use and progress printed at
    once."""
    from accelerate import Accelerator
    acc = Accelerator(gradient_accumulation_steps=args.grad_accum,
                      mixed_precision=args.mixed_precision)
    use_the_cores(acc)  # accelerate launch sets OMP_NUM_THREADS=1 on a CPU
    # progress lines show up at once, even in a log file
    sys.stdout.reconfigure(line_buffering=True)
    return acc


def share(rows, acc, state=None):
    """This rank's share of an endless stream of rows (every num_processes-th one), after the rows
    that an interrupted run (state) had already read."""
    skip = acc.process_index + (state["rows_seen"] if state else 0)
    return itertools.islice(rows, skip, None, acc.num_processes)


def real_tokens(x0, eos, bos):
    """Tokens that carry information: the text and its EOS (not BOS, not the filler after it)."""
    return ((x0 != eos) & (x0 != bos)).sum(1).add(1).clamp(max=x0.shape[1]).sum().item()


def cores():
    """The CPU cores this process may run on: the ones `taskset` or a container allows, else all.
    subtle: not os.cpu_count(), which counts the whole machine: two runs side by side, each pinned
    to its own core (taskset -c 0 / -c 1), would each start a thread per core of the machine."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def use_the_cores(acc):
    """accelerate launch sets OMP_NUM_THREADS=1 (one thread: ~40% slower here); give each process
    its share."""
    if acc.device.type == "cpu":
        torch.set_num_threads(max(1, cores() // acc.num_processes))


def read_texts(dataset, split="train"):
    """Documents as strings: the story world's own split, a streamed hub split, or every document
    of a file."""
    if dataset == "storyworld":
        return storyworld.train_stories() if split == "train" else iter(storyworld.valid_stories())
    checks.missing_path(dataset, "dataset file")
    # .jsonl: one {"text": ...} per line; .txt: split on <|endoftext|> or blank lines
    if os.path.exists(dataset):
        checks.text_file(dataset)  # not a folder, not binary, .txt or .jsonl
        if dataset.endswith(".jsonl"):
            docs = checks.jsonl(dataset, "text", checks.text)
        else:
            with open(dataset, encoding="utf-8", errors="replace") as f:
                raw = f.read()
            docs = raw.split("<|endoftext|>") if "<|endoftext|>" in raw else raw.split("\n\n")
        if not any(d.strip() for d in docs):
            checks.fail(f"{dataset} has no text in it: give it at least one document")
        return iter([d.strip() for d in docs if d.strip()])
    import datasets
    with hub_guard(dataset):
        try:
            stream = datasets.load_dataset(dataset,
                                           split="validation" if split == "valid" else "train",
                                           streaming=True)
            return (ex["text"] for ex in checks.column(stream, "text", dataset))
        except ValueError:  # no validation split: hold out 1% of train by a hash of the text
            stream = checks.column(datasets.load_dataset(dataset, split="train", streaming=True),
                                   "text", dataset)
            return (ex["text"] for ex in stream
                    if (zlib.crc32(ex["text"].encode()) % 100 == 0) == (split == "valid"))


def rows(texts, tok, L, eos):
    """Token rows of length L: BOS + doc + EOS, then EOS filler; a longer document is cut into
    windows."""
    bos = [] if bos_id(tok) is None else [bos_id(tok)]
    n = L - len(bos)
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"] + [eos]
        for i in range(0, len(ids), n):
            yield bos + ids[i:i + n] + [eos] * (n - len(ids[i:i + n]))


def load_data(dataset, tok, L, n_val):
    """(endless iterator of training rows, validation rows, validation texts or None). A row is a
    pair (L token ids, n_keep): its first n_keep positions (the BOS) are never masked, as in
    edits_and_sft's SFT rows, where they are the whole prompt."""
    eos, n_keep = tok.eos_token_id, int(bos_id(tok) is not None)
    # hold out 1% of the rows by hash (rows, not documents: a book is one)
    if os.path.exists(dataset):
        every = list(rows(read_texts(dataset), tok, L, eos))
        held = [zlib.crc32(str(r).encode()) % 100 == 0 for r in every]
        held[-1] = held[-1] or not any(held)  # a tiny file still gets one validation row
        train = [(r, n_keep) for r, h in zip(every, held) if not h] or [(r, n_keep) for r in every]
        return (itertools.cycle(train), [(r, n_keep) for r, h in zip(every, held) if h][:n_val],
                None)
    val_texts = list(itertools.islice(read_texts(dataset, "valid"), n_val))
    endless = itertools.chain.from_iterable(read_texts(dataset, "train")
                                            for _ in itertools.count())
    val = [(r, n_keep) for r in rows(val_texts, tok, L, eos)][:n_val]
    return ((r, n_keep) for r in rows(endless, tok, L, eos)), val, val_texts


def batch(rows, device=None):
    """(x0 (B, L) token ids, keep (B, L) True where never masked) of a list of (ids, n_keep) rows.
    >>> x0, keep = batch([([5, 6, 7], 1), ([5, 8, 9], 2)])
    >>> keep.tolist()
    [[True, False, False], [True, True, False]]"""
    ids, n_keep = zip(*rows)
    x0 = torch.tensor(ids, device=device)                                          # (B, L)
    keep = (torch.arange(x0.shape[1], device=device)[None]
            < torch.tensor(n_keep, device=device)[:, None])
    return x0, keep


@contextlib.contextmanager
def hub_guard(name):
    """Turn a failed hub download (or a damaged local file) into one readable message; fail fast
    when offline."""
    local = os.path.exists(name)
    if not local:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=3).close()
        except OSError:
            # no route to the hub: skip the ~23 s of retries, use the local cache if any
            import huggingface_hub
            huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    except Exception as e:  # noqa: anything a download or a damaged file raises, said in one line
        if not local and not isinstance(e, (OSError, ConnectionError, ValueError)):
            raise
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}" if str(e) else type(e).__name__
        checks.fail(f"could not read '{name}' ({why}). A file in it is damaged or cut short; "
                    "copy it again or retrain"
                    if local else f"could not load '{name}' ({why}).\nThere is no local folder or "
                    "file of that name, and hub ids need network or a copy in the Hugging Face "
                    "cache. If you are offline: train on the embedded default with "
                    "`python train.py` (the story world), or pass a local folder/file.")


def load(ckpt, seq_len=None):
    """(model, tokenizer, metrics.json or {}) from a folder saved by train.py, or any masked-LM hub
    id. The weights run in float32 whatever they were stored in (the shipped model is stored in
    float16). Everything that can be wrong with it is said first, in one line (extra/checks.py)."""
    finish_save(ckpt)
    checks.missing_path(ckpt, "model folder")
    if os.path.isdir(ckpt):
        checks.checkpoint_folder(ckpt)
    with hub_guard(ckpt):
        checks.masked_lm(AutoConfig.from_pretrained(ckpt), ckpt)
        model, tok = (AutoModelForMaskedLM.from_pretrained(ckpt).float().eval(),
                      AutoTokenizer.from_pretrained(ckpt))
    checks.mask_token(tok, ckpt)
    if seq_len is not None:
        checks.seq_len(seq_len, model, ckpt)
    if tok.eos_token is None:  # BERT-style tokenizers end a text with [SEP]
        tok.eos_token = tok.sep_token
    path = os.path.join(ckpt, "metrics.json")
    return model, tok, json.load(open(path)) if os.path.exists(path) else {}


def context(model, metrics):
    """How many tokens (prompt + answer) a checkpoint reads: its training length, else its position
    limit."""
    return metrics.get("args", {}).get("seq_len") or model.config.max_position_embeddings


def default_checkpoint(trained, shipped):
    """(folder, a note saying which): `trained` (the user's own run) if it exists, else the shipped
    model; with neither, a message that says how to train one."""
    if os.path.isdir(trained):
        return trained, f" ({trained}/ from train.py)"
    if not os.path.isdir(shipped):
        checks.fail(f"no model yet in {trained}/. Train one with `python train.py` (add --sft for "
                    "a chat model; ~10 minutes on 2 CPU cores), then run this again.")
    return shipped, " (shipped with the project; train your own with train.py)"


def bf16_is_fast():
    """bf16 autocast where the hardware does bf16 math: a recent GPU, or a CPU with AVX512-BF16/AMX
    (1.5x here)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()


def finish_save(out_dir):
    """A save killed between its two renames leaves no out_dir but a complete out_dir.tmp: finish
    the swap."""
    out_dir = out_dir.rstrip("/")
    if (out_dir and not os.path.exists(out_dir)
            and os.path.exists(os.path.join(out_dir + ".tmp", "metrics.json"))):
        os.replace(out_dir + ".tmp", out_dir)
        shutil.rmtree(out_dir + ".old", ignore_errors=True)


def save(out_dir, model, tok, metrics, training_state=None):
    """Write to a temporary folder (metrics.json last), then swap it in: a run killed at any moment
    leaves the previous complete checkpoint or the new one, never a half-written one (see
    finish_save for the one gap).
    training_state: what --resume needs besides the weights (optimizer, scheduler, RNG, step), in
    training_state.pt."""
    out_dir = out_dir.rstrip("/")
    tmp, old = out_dir + ".tmp", out_dir + ".old"
    finish_save(out_dir)
    # of a save cut short; out_dir itself is complete (or absent) by now
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if training_state is not None:
        torch.save(training_state, os.path.join(tmp, "training_state.pt"))
    with open(os.path.join(tmp, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    if os.path.exists(out_dir):
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    nelbo = metrics.get("val_nelbo_per_token")
    what = "SFT loss" if metrics.get("args", {}).get("sft") else "-ELBO"
    if training_state is not None:
        print(f"saved a resumable checkpoint of step {training_state['step']} to {out_dir}/; "
              f"continue it with `python train.py --out_dir {out_dir} --resume`")
    else:
        print(f"saved {out_dir}/" + (f": val {what} {nelbo:.4f} nats/token in "
                                     f"{metrics['seconds']:.0f}s" if nelbo is not None else ""))


class interruptible:
    """`with interruptible() as stop:` around a training loop. Ctrl-C (SIGINT) or SIGTERM (a cluster
    taking the machine back) only sets a flag: the loop finishes its step, saves a resumable
    checkpoint and leaves. A second Ctrl-C (2 s or more later) quits at once, without saving.
    stop(acc) is True on every rank as soon as one rank was interrupted, so that all of them stop
    after the same step (one tiny all-reduce per step when there are several processes)."""
    def __enter__(self):
        self.requested = 0  # when the first signal came
        # only there can Python catch signals
        in_main = threading.current_thread() is threading.main_thread()
        self.previous = ({s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}
                         if in_main else {})
        return self

    def handle(self, signum, frame):
        if not self.requested:
            self.requested = time.time()
            print(f"\n{signal.Signals(signum).name}: finishing this step, then saving a resumable "
                  "checkpoint (Ctrl-C again quits without saving)", file=sys.stderr, flush=True)
        # sooner, it is `accelerate launch` passing the same Ctrl-C on
        elif time.time() - self.requested > 2:
            raise KeyboardInterrupt

    def __call__(self, acc):
        if acc.num_processes == 1:
            return bool(self.requested)
        return acc.reduce(torch.tensor([float(bool(self.requested))], device=acc.device),
                          "sum").item() > 0

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def save_run(acc, model, tok, args, step, opt, sched, log, t0, true_h):
    """The end of train.py: rank 0 saves the model, its tokenizer and metrics.json; a run that was
    interrupted before max_steps also saves what --resume needs (every rank takes part)."""
    seconds = time.time() - t0
    resumable = None
    if step < args.max_steps:
        resumable = training_state(acc, step, opt, sched, log, seconds, args)
    if acc.is_main_process:
        metrics = dict(dataset=args.dataset, val_nelbo_per_token=log[-1]["val_nelbo_per_token"],
                       true_entropy_per_token=true_h, steps=step, seconds=round(seconds, 1),
                       args=vars(args), log=log)
        before = os.path.join(args.model, "metrics.json") if args.model else ""
        if os.path.exists(before):  # it went on from a train.py run: count that run's steps too
            m = json.load(open(before))
            metrics["steps_before"] = m["steps"] + m.get("steps_before", 0)
        save(args.out_dir, acc.unwrap_model(model), tok, metrics, resumable)


def leave(acc):
    """The last line of train.py, once rank 0 has saved. All ranks leave together (one alone can
    hang the other). subtle: with several processes each one then exits at once (os._exit),
    skipping the teardown of torch's process group and interpreter. A 2-process CI run once hung
    for 300 s after "saved out/" (39 repeats here did not), which leaves that teardown, known
    upstream to hang now and then on gloo (pytorch/pytorch#75097, #190489). Nothing is left to do
    by then: the files are written and renamed, and the output is flushed here."""
    acc.wait_for_everyone()
    if acc.num_processes == 1:
        acc.end_training()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def training_state(acc, step, opt, sched, log, seconds, args):
    """Everything --resume needs besides the weights. Called on every rank: each rank's RNG state is
    gathered."""
    from accelerate.utils import gather_object
    rng = [torch.get_rng_state()] + ([torch.cuda.get_rng_state()] if torch.cuda.is_available()
                                     else [])
    return dict(step=step, rows_seen=step * args.batch_size * args.grad_accum * acc.num_processes,
                log=log, optimizer=opt.state_dict(), scheduler=sched.state_dict(), seconds=seconds,
                args=vars(args), rng=gather_object([rng]) if acc.num_processes > 1 else [rng])


def resumable(out_dir):
    """The path of the training state that Ctrl-C saved in out_dir, or a message that there is
    none."""
    finish_save(out_dir)
    path = os.path.join(out_dir, "training_state.pt")
    if not os.path.exists(path):
        checks.fail(f"nothing to resume in '{out_dir}/': it has no training_state.pt (a run "
                    "writes one when it is interrupted with Ctrl-C). Pass the --out_dir of the "
                    "interrupted run, or start anew without --resume")
    return path


def resume(out_dir):
    """--resume: the training state that Ctrl-C saved in out_dir (optimizer, schedule, RNG states,
    step, log)."""
    return torch.load(resumable(out_dir), weights_only=True)


def restore(state, acc, opt, sched):
    """Put the optimizer, the schedule and this rank's random numbers back where the run stopped;
    (step, log, t0)."""
    if len(state["rng"]) != acc.num_processes:
        checks.fail(f"the run was saved with {len(state['rng'])} process(es) and is resumed with "
                    f"{acc.num_processes}: resume it with the same number "
                    f"(accelerate launch --num_processes {len(state['rng'])})")
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"][acc.process_index][0])
    if torch.cuda.is_available() and len(state["rng"][acc.process_index]) > 1:
        torch.cuda.set_rng_state(state["rng"][acc.process_index][1])
    return state["step"], state["log"], time.time() - state["seconds"]
