"""The recipe levers of extra/recipes.py against each other, at the same number of steps (and so
about the same wall clock: a lever costs nothing per step), next to the GPT baseline.

    python extra/benchmark_recipes.py                   # every recipe, 3,000 steps each: ~75 min
    python extra/benchmark_recipes.py --only uniform,blocks50 --steps 1000
    python extra/benchmark_recipes.py --reuse DIR       # evaluate checkpoints already in DIR/NAME

For each recipe: train.py's validation -ELBO (always the unbiased one, uniform t, whatever the
training density), the model read left to right (exact NLL of 64 validation stories, the
conditionals that one-token blocks sample from), the agreement probe (p of the hero's right name
and pronoun), and 64 stories with sample.py's defaults: valid, the share of sentences that fit
their place (storyworld.grade_all), sentences repeated back to back, distinct stories, and the
judge's NLL (the shipped GPT's nats per token on the samples; real stories: 0.33).
Writes results/recipes.md and results/recipes.json; says how long it took.
"""
import argparse, itertools, json, os, subprocess, sys, time

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld
from extra.evaluate import JUDGE, judge_nll, l2r_nll, real_len
from extra.loading import ROOT, SHIPPED_AR, cores, load, read_texts, rows
from extra.probe_agreement import probe

RECIPES = {  # name: train.py flags (source of each lever: extra/recipes.py)
    "uniform": [],                                         # LLaDA / MDLM: t ~ U(0, 1)
    "clipped": ["--t_dist", "clipped"],                    # BD3-LM, LLaDA 2 SFT: U[0.3, 0.8]
    "bell": ["--t_dist", "bell"],                          # Hong et al. 2026: bell-shaped t
    "blocks50": ["--block_rows", "0.5"],                   # BD3-LM / PUMA: half the rows
    "blocks50_bell": ["--block_rows", "0.5", "--t_dist", "bell"],
    "blocks75": ["--block_rows", "0.75"],
}


def train(name, flags, out, steps):
    cmd = [sys.executable, "train.py", "--out_dir", out, "--max_steps", str(steps), *flags]
    with open(out + ".log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)


def stories(ckpt, n=64, seed=0, extra=()):
    """n stories with sample.py's defaults (one batch), as sample.py --json prints them."""
    cmd = [sys.executable, "sample.py", "--ckpt", ckpt, "--n", str(n), "--json", "--seed",
           str(seed), *extra]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line)["text"] for line in out.splitlines()]


def measure(ckpt, judge, jtok, n=64):
    """One row of the table for a checkpoint of train.py."""
    t0 = time.time()
    texts = stories(ckpt, n)
    model, tok, metrics = load(ckpt)
    val = list(itertools.islice(read_texts("storyworld", "valid"), 64))
    x = torch.tensor(list(rows(val, tok, 160, tok.eos_token_id)))
    nll = l2r_nll(model, x, tok.mask_token_id, tok.eos_token_id).sum()
    l2r = nll / real_len(x, tok.eos_token_id).sum()
    agreement = probe(model, tok, 30)
    g = storyworld.grade_all(texts)
    return dict(nelbo=round(metrics["val_nelbo_per_token"], 4), l2r=round(l2r.item(), 4),
                true_entropy=round(metrics["true_entropy_per_token"], 4),
                p_name=round(agreement["name"][0], 3), p_pronoun=round(agreement["pronoun"][0], 3),
                p_copy={kind: round(right, 3) for kind, (right, _, _) in agreement.items()},
                valid=g["valid"], n=len(texts), fitting=round(g["fitting_share"], 3),
                repeats=g["by_kind"].get("repeat", 0), distinct=len(set(texts)),
                judge=round(judge_nll(texts, judge, jtok), 3), train_seconds=metrics["seconds"],
                steps=metrics["steps"], steps_before=metrics.get("steps_before", 0),
                eval_seconds=round(time.time() - t0))


def gpt_row(judge, jtok, n=64):
    """The shipped GPT baseline (extra/train_ar.py, the same rows, optimizer and schedule)."""
    from extra.train_ar import sample
    metrics = json.load(open(os.path.join(SHIPPED_AR, "metrics.json")))
    texts = sample(judge, jtok, n, 160, 1.0, 0)
    g = storyworld.grade_all(texts)
    nll = round(metrics["val_nll_per_token"], 4)  # exact: the GPT's bound is its NLL
    return dict(nelbo=nll, l2r=nll, true_entropy=round(metrics["true_entropy_per_token"], 4),
                p_name=None, p_pronoun=None,
                valid=g["valid"], n=n, fitting=round(g["fitting_share"], 3),
                repeats=g["by_kind"].get("repeat", 0), distinct=len(set(texts)),
                judge=round(judge_nll(texts, judge, jtok), 3), train_seconds=metrics["seconds"],
                steps=metrics["steps"], eval_seconds=0)


def table(results):
    head = ("| recipe (train.py flags) | steps | train s | val -ELBO | left-to-right NLL | "
            "p(name) | p(he/she) | valid | sentences that fit | repeats | distinct | judge NLL |")
    lines = [head, "|" + "---|" * 12]
    for name, r in results.items():
        flags = " ".join(RECIPES.get(name, [])) or ("(default)" if name == "uniform" else "")
        label = f"{name} `{flags}`" if name in RECIPES else name
        lines.append(f"| {label} | {r['steps']} | {r['train_seconds']:.0f} | {r['nelbo']} | "
                     f"{r['l2r']} | {r['p_name']} | {r['p_pronoun']} | {r['valid']}/{r['n']} | "
                     f"{100 * r['fitting']:.0f}% | {r['repeats']} | {r['distinct']} | "
                     f"{r['judge']} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(RECIPES), help="comma-separated recipe names")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps per recipe")
    p.add_argument("--reuse", default=None, help="a folder of checkpoints DIR/NAME to evaluate")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(cores())
    t0 = time.time()
    work = args.reuse or os.path.join(args.out, "recipes")
    judge = GPT2LMHeadModel.from_pretrained(JUDGE).float().eval()
    jtok = PreTrainedTokenizerFast.from_pretrained(JUDGE)
    results = {}
    for name in args.only.split(","):
        ckpt = os.path.join(work, name)
        if not os.path.exists(os.path.join(ckpt, "metrics.json")):
            train(name, RECIPES[name], ckpt, args.steps)
        results[name] = measure(ckpt, judge, jtok)
        print(json.dumps({name: results[name]}), flush=True)
    results["GPT baseline (extra/checkpoint_ar)"] = gpt_row(judge, jtok)
    minutes = (time.time() - t0) / 60
    md = (f"# Recipe levers\n\nCommand: `python extra/benchmark_recipes.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}` ({minutes:.0f} min on "
          f"{cores()} CPU cores). Samples: 64 stories, sample.py's defaults, seed 0. "
          f"True entropy of the validation stories: {results[name]['true_entropy']} nats/token.\n\n"
          + table(results) + "\n")
    os.makedirs(args.out, exist_ok=True)
    open(os.path.join(args.out, "recipes.md"), "w").write(md)
    json.dump(results, open(os.path.join(args.out, "recipes.json"), "w"), indent=1)
    print(md)
    print(f"took {minutes:.1f} min")


if __name__ == "__main__":
    main()
