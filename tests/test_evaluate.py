"""Known-answer tests of the evaluators (extra/evaluate.py) and the GPT baseline
(extra/train_ar.py)."""
import itertools, json, math

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from extra.evaluate import NFE, mc_nelbo, sample_ar
from extra.train_ar import build_gpt
from extra.loading import build_tokenizer
from sample import generate

V, MASK, L = 2, 2, 3  # toy: binary sequences of length 3, id 2 is [MASK]
SEQS = list(itertools.product(range(V), repeat=L))
P = dict(zip(SEQS, torch.tensor([0.30, 0.05, 0.10, 0.15, 0.02, 0.08, 0.20, 0.10],
                                dtype=torch.float64).tolist()))


class Oracle(torch.nn.Module):
    """The exact conditionals p(x_i | visible tokens) of the joint P, by enumeration: a perfect
    denoiser."""

    def forward(self, input_ids):
        out = torch.full((*input_ids.shape, V + 1), -1e9, dtype=torch.float64)
        for b, row in enumerate(input_ids.tolist()):
            fits = [s for s in SEQS if all(r == MASK or r == v for r, v in zip(row, s))]
            for i in range(L):
                for v in range(V):
                    out[b, i, v] = math.log(sum(P[s] for s in fits if s[i] == v) + 1e-300)
        return type("Out", (), {"logits": out})


class Fixed(torch.nn.Module):
    """An imperfect denoiser: logits that depend on the position and on which tokens are visible."""

    def forward(self, input_ids):
        g = torch.Generator().manual_seed(0)
        w = torch.randn(L, L * (V + 1), V + 1, generator=g, dtype=torch.float64)
        onehot = torch.nn.functional.one_hot(input_ids, V + 1).double().flatten(1)  # (B, L*(V+1))
        return type("Out", (), {"logits": torch.einsum("bk,lkv->blv", onehot, w)})


def exact_estimator_mean(model, x):
    """E over l ~ U{1..L} and a uniform l-subset M of (L / l) * sum_{i in M} CE_i, by enumerating
    every subset."""
    total = 0.0
    for l in range(1, L + 1):
        subsets = list(itertools.combinations(range(L), l))
        for M in subsets:
            xt = torch.tensor([[MASK if i in M else v for i, v in enumerate(x)]])
            lp = model(input_ids=xt).logits[0, :, :V].log_softmax(-1)
            total += (1 / L) * (1 / len(subsets)) * (L / l) * -sum(lp[i, x[i]].item() for i in M)
    return total


def test_estimator_is_unbiased_for_a_perfect_model():
    """With the true conditionals, the bound is tight: E[estimate] = -log p(x) exactly (any-order
    chain rule), and the Monte Carlo mean lands within 4 standard errors of it."""
    oracle = Oracle()
    for x in [(0, 0, 0), (1, 0, 1), (0, 1, 1)]:
        assert abs(exact_estimator_mean(oracle, x) - -math.log(P[x])) < 1e-9
        mean, se = mc_nelbo(oracle, torch.tensor([x] * 64), MASK, draws=32,
                            generator=torch.Generator().manual_seed(1))
        est, est_se = mean.mean().item(), math.sqrt((se ** 2).sum().item()) / 64
        assert abs(est - -math.log(P[x])) < 4 * est_se + 1e-6, (x, est, -math.log(P[x]), est_se)


def test_estimator_matches_enumeration_for_an_imperfect_model():
    """For a model that is not perfect the estimate is above -log p(x) (a bound) and its Monte Carlo
    mean equals the enumerated expectation: l is uniform on 1..L and the masked subset is uniform
    given l."""
    model = Fixed()
    for x in [(0, 0, 0), (1, 1, 0)]:
        exact = exact_estimator_mean(model, x)
        mean, se = mc_nelbo(model, torch.tensor([x] * 256), MASK, draws=24,
                            generator=torch.Generator().manual_seed(2))
        est, est_se = mean.mean().item(), math.sqrt((se ** 2).sum().item()) / 256
        assert abs(est - exact) < 4 * est_se, (x, est, exact, est_se)


def test_estimator_never_masks_kept_positions():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, input_ids):
            seen.append(input_ids.clone())
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, V + 1)})

    x = torch.tensor([[1, 0, 1]] * 8)
    mc_nelbo(Spy(), x, MASK, draws=8, keep=torch.tensor([[True, False, False]] * 8))
    canvases = torch.cat(seen)
    # BOS kept, at least one mask per draw
    assert (canvases[:, 0] == 1).all() and (canvases == MASK).any(1).all()


def tiny_modernbert():
    cfg = ModernBertConfig(vocab_size=12, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=64, pad_token_id=11,
                           eos_token_id=10, bos_token_id=10, cls_token_id=10, sep_token_id=10)
    return ModernBertForMaskedLM(cfg).eval()


def test_nfe_counts_every_forward_pass():
    """Low-confidence remasking takes exactly `steps` passes; a threshold takes at most that many
    and at least one per block; each is what the NFE hook counts."""
    torch.manual_seed(0)
    model = tiny_modernbert()
    counter = NFE(model)
    generate(model, torch.zeros(3, 1, dtype=torch.long), steps=16, gen_length=32, block_length=8,
             mask_id=11, temperature=1.0)
    assert counter.n == 16
    counter.n = 0
    generate(model, torch.zeros(3, 1, dtype=torch.long), steps=32, gen_length=32, block_length=8,
             mask_id=11, temperature=1.0, threshold=0.05)
    assert 4 <= counter.n < 32  # a low threshold commits many tokens per pass


def test_gpt_nfe_is_one_pass_per_new_token():
    """With a KV cache, generate() runs one forward pass per generated token."""
    texts = ["a b c d e f g"] * 50
    tok = build_tokenizer(texts)
    torch.manual_seed(0)
    model = build_gpt(tok, 24).eval()
    counter = NFE(model)
    out = sample_ar(model, tok, 2, 24, temperature=1.0)
    assert counter.n == out[1]
    assert counter.n <= 23 and counter.n >= 1


def test_baseline_trains_and_its_nll_falls(tmp_path):
    """extra/train_ar.py on the story world for 150 steps: the validation NLL falls from ~log V to
    below 1.5 nats per token, and the checkpoint loads with plain transformers."""
    from extra import train_ar
    from transformers import GPT2LMHeadModel
    out = tmp_path / "ar"
    train_ar.main(["--max_steps", "150", "--eval_every", "150", "--n_val", "32",
                   "--out_dir", str(out), "--lr", "3e-3"])
    log = json.load(open(out / "metrics.json"))["log"]
    assert log[0]["val_nll_per_token"] > 5 and log[-1]["val_nll_per_token"] < 1.5, log
    assert GPT2LMHeadModel.from_pretrained(out).config.n_layer == 4


def test_infill_fills_only_the_masks_one_per_pass():
    torch.manual_seed(0)
    from extra.evaluate import infill
    model = tiny_modernbert()
    x = torch.tensor([[10, 1, 11, 11, 4, 11, 6], [10, 1, 2, 3, 11, 5, 6]])
    counter = NFE(model)
    out = infill(model, x, mask_id=11)
    assert counter.n == 3  # the row with most masks decides
    assert (out != 11).all() and (out[x != 11] == x[x != 11]).all()


def test_likelihood_of_any_text_file(tmp_path, capsys):
    """`--ckpt DIR --data FILE`: nats per token and bits per character of a local file, with the
    bound marked."""
    from extra import evaluate
    f = tmp_path / "t.txt"
    f.write_text("Tom had a red ball.\n\nLily had a blue kite. She played in the park.\n\nThe end.")
    evaluate.main(["--ckpt", "extra/checkpoint", "--data", str(f), "--n_val", "3", "--draws", "2",
                   "--out", str(tmp_path / "r")])
    row = [l for l in capsys.readouterr().out.splitlines() if l.startswith("| diffusion")][-1]
    nats, bpc = float(row.split("|")[2].strip("<= ")), float(row.split("|")[4].strip("<= "))
    assert 0 < nats < 20 and 0 < bpc < nats * 3


def test_left_to_right_nll_is_the_chain_rule_for_a_perfect_model():
    """Read left to right with the true conditionals, the model's NLL of x_1, x_2 given x_0 is
    exactly -log p(x) + log p(x_0) (the first position is given, like BOS)."""
    from extra.evaluate import l2r_nll
    oracle = Oracle()
    xs = [(0, 0, 0), (1, 0, 1), (0, 1, 1)]
    got = l2r_nll(oracle, torch.tensor(xs), MASK, eos=99)
    for x, g in zip(xs, got.tolist()):
        p_first = sum(p for s, p in P.items() if s[0] == x[0])
        assert abs(g - (-math.log(P[x]) + math.log(p_first))) < 1e-9
