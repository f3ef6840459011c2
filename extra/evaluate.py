"""
Is diffusion any good next to a GPT of the same size? Likelihood, sample quality per forward pass,
and speed, for a diffusion checkpoint (train.py) and the autoregressive baseline
(extra/train_ar.py), in one run.

    python extra/evaluate.py --train                         # train both (same wall clock), then
                                                             # evaluate: ~25 min
    python extra/evaluate.py --ckpt out --ar_ckpt out_ar     # evaluate existing checkpoints: ~8 min
    python extra/evaluate.py --ckpt out --data book.txt      # only the likelihood, of any text file
                                                             # or dataset

Writes results/results.md (the table) and three plots: validity against forward passes (NFE),
validity against seconds, and the validation loss against training time for both models next to
the true entropy.

Likelihood. For the diffusion model, LLaDA's Monte Carlo estimator of the bound (Nie et al. 2025,
eq. 6): draw the number of masked tokens l from 1..L (stratified over the draws), mask exactly l
positions uniformly at random, and score (L / l) * sum of the masked tokens' CE. Its expectation is
the -ELBO of train.py; it has lower variance because every draw masks at least one token. For the
GPT, the exact NLL. Both in nats per token, bits per character, and perplexity (a bound, for
diffusion).
"""
import argparse, itertools, json, math, os, resource, subprocess, sys, time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from extra import checks, storyworld
from extra.loading import SHIPPED_AR, SHIPPED_EDITS, bos_id, cores, load, read_texts, rows
from extra.train_ar import sample as sample_gpt, scored
from sample import decode, generate, sample_tokens


@torch.no_grad()
def mc_nelbo(model, x0, mask_id, draws=16, keep=None, generator=None):
    """LLaDA's estimator of -ELBO, per row: (B,) mean over draws and (B,) its standard error.
    keep (B, L) marks positions that are never masked (the BOS anchor); L counts the others."""
    B, L = x0.shape
    keep = torch.zeros_like(x0, dtype=torch.bool) if keep is None else keep
    # (B,) maskable positions
    n = (~keep).sum(1)
    u = torch.rand(B, generator=generator)
    vals = []
    for k in range(draws):  # stratified: draw k takes l from the k-th slice of 1..n
        l = 1 + ((k + u) / draws * n).long().clamp(max=n - 1)                 # (B,)
        score = torch.rand(B, L, generator=generator).masked_fill(keep, 2.0)  # keep sorts last
        masked = score.argsort(1).argsort(1) < l[:, None]                     # exactly l per row
        logits = model(input_ids=torch.where(masked, mask_id, x0)).logits.double()
        logits[..., mask_id] = -float("inf")
        ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")    # (B, L)
        vals.append((ce * masked).sum(1) * n / l)
    vals = torch.stack(vals, 1)                                               # (B, draws)
    return vals.mean(1), vals.std(1) / math.sqrt(draws)


@torch.no_grad()
def l2r_nll(model, x0, mask_id, eos, batch_size=64):
    """(B,) nats: the diffusion model read as a left-to-right language model,
    sum_i -log p(x_i | x_<i, masks after), over the text and its first EOS. These are the
    conditionals that one-token blocks sample from, so this number says how good a writer the model
    is when it writes left to right (for the true conditionals it is exactly -log p(x): the chain
    rule). The first position (BOS) is given."""
    B, L = x0.shape
    out = torch.zeros(B, dtype=torch.float64)
    n = real_len(x0, eos)                                          # (B,) scored positions 1..n
    for b in range(B):
        pos = torch.arange(1, int(n[b]) + 1)                       # (n,)
        canvas = x0[b].repeat(len(pos), 1)                         # (n, L): row i hides x_i onwards
        canvas[torch.arange(L)[None] >= pos[:, None]] = mask_id
        logits = torch.cat([model(input_ids=c).logits
                            for c in canvas.split(batch_size)]).double()
        logits[..., mask_id] = -float("inf")
        out[b] = -(logits[torch.arange(len(pos)), pos].log_softmax(-1)
                   [torch.arange(len(pos)), x0[b, pos]].sum())
    return out


@torch.no_grad()
def ar_nll(model, x0, eos):
    """Exact NLL of each row's text and EOS (the filler after the first EOS is not scored): (B,)
    nats."""
    logits = model(input_ids=x0).logits.double()
    lp = logits[:, :-1].log_softmax(-1).gather(-1, x0[:, 1:, None])[..., 0]   # (B, L-1)
    # up to and including the EOS
    before = scored(x0, eos)
    return -(lp * before).sum(1)


def real_len(x0, eos):
    """(B,) tokens up to and including the first EOS, after the first position."""
    return scored(x0, eos).sum(1)


def likelihood(model, tok, x, texts, is_ar, draws=16, batch_size=32):
    """nats/token (with s.e.), bits/character, perplexity over the rows x of whole texts (each:
    text + EOS)."""
    eos, g = tok.eos_token_id, torch.Generator().manual_seed(0)
    total, var, n_tok = 0.0, 0.0, 0
    for xb in x.split(batch_size):
        if is_ar:
            total += ar_nll(model, xb, eos).sum().item()
        else:
            m, se = mc_nelbo(model, xb, tok.mask_token_id, draws, keep=xb == bos_id(tok),
                             generator=g)
            total, var = total + m.sum().item(), var + (se ** 2).sum().item()
        n_tok += real_len(xb, eos).sum().item()
    # the EOS counts as one character (a newline)
    chars = sum(len(t) for t in texts) + len(texts)
    return dict(nats_per_token=total / n_tok, se=math.sqrt(var) / n_tok,
                bits_per_char=total / math.log(2) / chars, perplexity=math.exp(total / n_tok))


JUDGE = SHIPPED_AR  # the shipped GPT baseline, as a judge of sample quality


@torch.no_grad()
def judge_nll(texts, judge, jtok):
    """nats per token of BOS + text + EOS under a GPT judge (real stories: 0.33 under the shipped
    one). Lower is more like the data; the standard "generative perplexity" of diffusion papers, in
    nats."""
    total, n = 0.0, 0
    for t in texts:
        ids = torch.tensor([[jtok.bos_token_id] + jtok(t, add_special_tokens=False)["input_ids"]
                            + [jtok.eos_token_id]])
        total += F.cross_entropy(judge(input_ids=ids).logits[0, :-1], ids[0, 1:],
                                 reduction="sum").item()
        n += ids.shape[1] - 1
    return total / n


class NFE:
    """Counts forward passes of a model (a forward pre-hook): the cost unit of every sampler.
    As a context manager it takes its hook off the model at the end."""
    def __init__(self, model):
        self.n = 0
        self.hook = model.register_forward_pre_hook(lambda *_: setattr(self, "n", self.n + 1))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.hook.remove()


def diffusion_samplers(gen_length):
    """(label, kwargs for generate) for the sweep: Alg. 5 and Alg. 4 at 1, 1/2, 1/4, 1/8 token per
    step, then confidence thresholds (Fast-dLLM; and joint: sample.py --joint) at the full step
    budget."""
    blocks = gen_length // 4
    out = []
    for div in (1, 2, 4, 8):
        steps = gen_length // div // 4 * 4
        out.append((f"low-confidence, {steps} steps",
                    dict(remasking="low_confidence", steps=steps, block_length=blocks)))
        out.append((f"random (Alg. 4), {steps} steps",
                    dict(remasking="random", steps=steps, block_length=blocks)))
    for tau in (0.7, 0.8, 0.9, 0.95):
        out.append((f"threshold {tau}", dict(remasking="low_confidence", steps=gen_length,
                                             block_length=blocks, threshold=tau)))
    for tau in (0.8, 0.9):
        out.append((f"joint threshold {tau}", dict(remasking="low_confidence", steps=gen_length,
                                                   block_length=blocks, threshold=tau, joint=True)))
    out.append((f"low-confidence, one block, {gen_length} steps",
                dict(remasking="low_confidence", steps=gen_length, block_length=gen_length)))
    return out


def sample_diffusion(model, tok, n, seq_len, kw, temperature=1.0, seed=0):
    bos = [] if bos_id(tok) is None else [bos_id(tok)]
    gen_length = (seq_len - len(bos)) // 4 * 4
    torch.manual_seed(seed)
    with NFE(model) as counter:
        t0 = time.time()
        out = generate(model, torch.tensor([bos] * n), gen_length=gen_length,
                       temperature=temperature, mask_id=tok.mask_token_id, **kw)
    return [decode(tok, r[len(bos):]) for r in out], counter.n, time.time() - t0


def sample_ar(model, tok, n, seq_len, temperature=1.0, seed=0):
    with NFE(model) as counter:
        t0 = time.time()
        texts = sample_gpt(model, tok, n, seq_len, temperature, seed)
    return texts, counter.n, time.time() - t0


@torch.no_grad()
def infill(model, x, mask_id, temperature=1.0):
    """Fill every [MASK] of x (B, L) wherever it is, one token per forward pass, the most confident
    first (Alg. 5 with one block that is the whole canvas). generate() only fills masks after a
    prompt."""
    x = x.clone()
    while (masked := x == mask_id).any():
        logits = model(input_ids=x).logits.double()
        logits[..., mask_id] = -float("inf")
        x0 = sample_tokens(logits, temperature)
        conf = torch.where(masked, logits.softmax(-1).gather(-1, x0[..., None])[..., 0], -1.0)
        b = masked.any(1).nonzero()[:, 0]
        best = conf[b].argmax(1)
        x[b, best] = x0[b, best]
    return x


def infill_stories(model, tok, texts, seq_len, temperature=1.0, seed=0):
    """Keep the first and last third of each story's tokens, mask the middle third, let the model
    fill it."""
    torch.manual_seed(seed)
    x = torch.tensor(list(rows(texts, tok, seq_len, tok.eos_token_id)))
    n = real_len(x, tok.eos_token_id)                                         # story tokens + EOS
    pos = torch.arange(seq_len)[None]
    middle = (pos > n[:, None] // 3) & (pos <= 2 * n[:, None] // 3)
    out = infill(model, x.masked_fill(middle, tok.mask_token_id), tok.mask_token_id, temperature)
    skip = int(bos_id(tok) is not None)
    return [decode(tok, r[skip:]) for r in out]


def quality(texts, nfe, seconds, tok):
    """Validity, the graded measure (the share of sentences that fit their place, storyworld.grade),
    forward passes and speed of a batch of samples."""
    g = storyworld.grade_all(texts)
    n_tok = sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)
    return dict(valid=g["valid"], n=len(texts), fitting=round(g["fitting_share"], 3),
                problems=round(g["problems_per_story"], 2), nfe=nfe, seconds=round(seconds, 2),
                s_per_sample=round(seconds / len(texts), 3), tokens_per_s=round(n_tok / seconds, 1))


def train_both(out, budget_note):
    """Train the diffusion default, then the GPT for the same wall-clock seconds."""
    d, a = os.path.join(out, "diffusion"), os.path.join(out, "ar")
    subprocess.run([sys.executable, "train.py", "--out_dir", d], cwd=ROOT, check=True)
    secs = json.load(open(os.path.join(d, "metrics.json")))["seconds"]
    print(f"{budget_note}: the GPT gets the same {secs:.0f} s")
    subprocess.run([sys.executable, "extra/train_ar.py", "--out_dir", a,
                    "--max_seconds", str(secs)], cwd=ROOT, check=True)
    return d, a


def plots(out, rows_, metrics_d, metrics_a):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for key, xlabel, name in (("nfe", "forward passes per batch (NFE)", "validity_vs_nfe.png"),
                              ("seconds", "seconds per batch", "validity_vs_seconds.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for family, marker in (("low-confidence", "o-"), ("random", "s-"), ("threshold", "^-"),
                               ("joint threshold", "v-"), ("edit-trained", "D"), ("GPT", "*")):
            pts = sorted((r[key], 100 * r["valid"] / r["n"]) for r in rows_
                         if r["sampler"].startswith(family) and "one block" not in r["sampler"])
            if pts:
                ax.plot(*zip(*pts), marker, label=family, markersize=10 if family == "GPT" else 5)
        (ax.set_xscale("log"), ax.set_xlabel(xlabel), ax.set_ylabel("valid stories (%)"),
         ax.legend(), ax.grid(alpha=0.3))
        fig.tight_layout(), fig.savefig(os.path.join(out, name), dpi=100), plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, key, label in ((metrics_d, "val_nelbo_per_token", "diffusion (-ELBO, a bound)"),
                          (metrics_a, "val_nll_per_token", "GPT (NLL)")):
        if m:
            ax.plot([e["seconds"] for e in m["log"]], [e[key] for e in m["log"]], label=label)
    true_h = (metrics_d or metrics_a or {}).get("true_entropy_per_token")
    if true_h:
        ax.axhline(true_h, color="k", ls="--", label="true entropy")
    (ax.set_yscale("log"), ax.set_xlabel("training seconds (2 CPU cores)"),
     ax.set_ylabel("validation nats per token"))
    (ax.legend(), ax.grid(alpha=0.3), fig.tight_layout(),
     fig.savefig(os.path.join(out, "loss_vs_time.png"), dpi=100), plt.close(fig))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None,
                   help="diffusion checkpoint (default: results/diffusion with --train, else out/)")
    p.add_argument("--ar_ckpt", default=None,
                   help="GPT checkpoint from extra/train_ar.py (default: results/ar with --train)")
    p.add_argument("--edits_ckpt", default=SHIPPED_EDITS,
                   help="a model trained with train.py --edits, sampled with and without edits "
                   "(skipped if missing)")
    p.add_argument("--train", action="store_true",
                   help="train both models first, with the same wall-clock budget")
    p.add_argument("--data", default=None,
                   help="only the likelihood, of this .txt/.jsonl file or hub dataset")
    p.add_argument("--n", type=int, default=64, help="samples per sampler")
    p.add_argument("--n_val", type=int, default=256, help="validation texts for the likelihood")
    p.add_argument("--draws", type=int, default=16,
                   help="Monte Carlo draws per text for the diffusion bound")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--l2r", action="store_true",
                   help="also the diffusion model's left-to-right NLL (one pass per token: slow)")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(cores())
    os.makedirs(args.out, exist_ok=True)
    if args.train:
        args.ckpt, args.ar_ckpt = train_both(args.out, "equal wall clock")
    args.ckpt = args.ckpt or "out"
    models = [("diffusion", args.ckpt, False)] + ([("GPT", args.ar_ckpt, True)] if args.ar_ckpt
                                                  else [])
    loaded = {}
    for name, path, is_ar in models:
        if is_ar:
            from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
            m, tok = (GPT2LMHeadModel.from_pretrained(path).float().eval(),
                      PreTrainedTokenizerFast.from_pretrained(path))
            metrics = json.load(open(os.path.join(path, "metrics.json")))
        else:
            m, tok, metrics = load(path)
            if not args.data:  # validity and infilling are judged against the story world's grammar
                checks.storyworld_model(path, "story validity")
        loaded[name] = (m, tok, metrics, is_ar)

    data = args.data or "storyworld"
    lines = [f"# Results\n\nMachine: {cores()} CPU cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Command: `python extra/evaluate.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`\n",
             f"## Likelihood on {data} ({args.n_val} validation texts)\n",
             "| model | nats/token | +- s.e. | bits/char | perplexity | "
             "true entropy (nats/token) |",
             "|---|---|---|---|---|---|"]
    # the same texts for every model
    texts = list(itertools.islice(read_texts(data, "valid"), args.n_val))
    for name, (m, tok, metrics, is_ar) in loaded.items():
        seq_len = metrics.get("args", {}).get("seq_len", 160)
        x = torch.tensor(list(rows(texts, tok, seq_len, tok.eos_token_id)))      # (n_val, L)
        r = likelihood(m, tok, x, texts, is_ar, args.draws)
        true_h = ""
        if data == "storyworld":
            true_h = f"""{-sum(map(storyworld.log_prob, texts))
                          / real_len(x, tok.eos_token_id).sum().item():.4f}"""
        kind = "<= " if not is_ar else ""
        lines.append(f"| {name} | {kind}{r['nats_per_token']:.4f} | {r['se']:.4f} | "
                     f"{kind}{r['bits_per_char']:.4f} | {kind}{r['perplexity']:.3f} | {true_h} |")
        print(lines[-1], flush=True)
        if args.l2r and not is_ar:  # the same texts, the diffusion model read left to right
            lr = (l2r_nll(m, x, tok.mask_token_id, tok.eos_token_id).sum().item()
                  / real_len(x, tok.eos_token_id).sum().item())
            lines.append(f"| diffusion, read left to right (exact) | {lr:.4f} | 0 | | "
                         f"{math.exp(lr):.3f} | {true_h} |")
            print(lines[-1], flush=True)
    if args.data:
        print("\n".join(lines))
        return

    lines += ["", f"## Sample quality, forward passes and speed ({args.n} unconditional samples "
              f"per row, one batch, temperature {args.temperature})\n",
              "| sampler | valid | sentences that fit | problems per story | NFE | seconds | "
              "s/sample | tokens/s |", "|---|---|---|---|---|---|---|---|"]
    results = []
    m, tok, metrics_d, _ = loaded["diffusion"]
    seq_len = metrics_d.get("args", {}).get("seq_len", 160)
    gen_length = (seq_len - (bos_id(tok) is not None)) // 4 * 4
    for label, kw in diffusion_samplers(gen_length):
        texts, nfe, secs = sample_diffusion(m, tok, args.n, seq_len, kw, args.temperature)
        results.append(dict(sampler=label, **quality(texts, nfe, secs, tok)))
        print(results[-1], flush=True)
    # Seed Diffusion: the edit-trained model, with and without revisions
    if args.edits_ckpt and os.path.isdir(args.edits_ckpt):
        me, te, _ = load(args.edits_ckpt)
        for edits in (1, 0):
            kw = dict(remasking="low_confidence", steps=gen_length // 8 // 4 * 4,
                      block_length=gen_length // 4, edits=edits)
            texts, nfe, secs = sample_diffusion(me, te, args.n, seq_len, kw, args.temperature)
            results.append(dict(sampler=f"edit-trained model, {'edits' if edits else 'no edits'}, "
                                        f"{kw['steps']} steps", **quality(texts, nfe, secs, te)))
            print(results[-1], flush=True)
    texts = list(itertools.islice(read_texts("storyworld", "valid"), args.n))
    filled = infill_stories(m, tok, texts, seq_len, args.temperature)
    n_inf = sum(storyworld.check(t)[0] for t in filled)
    print(f"infilling: {n_inf}/{len(filled)} valid", flush=True)
    metrics_a = None
    if "GPT" in loaded:
        m, tok, metrics_a, _ = loaded["GPT"]
        for T in sorted({args.temperature, 0.7}, reverse=True):
            texts, nfe, secs = sample_ar(m, tok, args.n, metrics_a["args"]["seq_len"], T)
            results.append(dict(sampler=f"GPT, KV cache, T={T}", **quality(texts, nfe, secs, tok)))
            print(results[-1], flush=True)
    for r in results:
        lines.append(f"| {r['sampler']} | {r['valid']}/{r['n']} | {100 * r['fitting']:.0f}% | "
                     f"{r['problems']} | {r['nfe']} | {r['seconds']} | {r['s_per_sample']} | "
                     f"{r['tokens_per_s']} |")
    lines += ["", f"Infilling (diffusion only; a left-to-right GPT cannot condition on a suffix): "
              f"the first and last third of {len(filled)} validation stories kept, the middle "
              f"third masked and filled one token per pass, most confident first: "
              f"**{n_inf}/{len(filled)} valid**."]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += ["", f"Peak memory of this process (all models and samplers): {peak:.0f} MB.",
              "", "![validity vs NFE](validity_vs_nfe.png) "
              "![validity vs seconds](validity_vs_seconds.png) "
              "![loss vs time](loss_vs_time.png)"]
    plots(args.out, results, metrics_d if metrics_d.get("log") else None, metrics_a)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    json.dump(results, open(os.path.join(args.out, "results.json"), "w"), indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
