"""Known-answer tests of the objective (train.py) and the samplers (sample.py), on toy models."""
import math

import pytest
import torch

from sample import decode, generate, num_transfer_tokens
from train import diffusion_loss, forward_process

MASK = 9  # toy vocabulary: ids 0..9, the last one is [MASK]


class Toy(torch.nn.Module):
    """A stand-in denoiser: fixed logits per position (or a function of the canvas), counting
    calls."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, 0

    def forward(self, input_ids):
        self.calls += 1
        return type("Out", (), {"logits": self.fn(input_ids)})


def random_logits(x):
    g = torch.Generator().manual_seed(int(x.sum()))  # depends on the canvas, so steps differ
    return torch.randn(*x.shape, MASK + 1, generator=g)


def test_masking_marginal():
    """Each token is masked independently with p_mask = (1 - eps) t + eps: per row the masked
    fraction of L = 20,000 tokens is p_mask within 5 standard deviations, and over the batch t is
    spread evenly (low-discrepancy), so the mean of p_mask is 1/2 within 1/B."""
    torch.manual_seed(0)
    x0 = torch.zeros(16, 20000, dtype=torch.long)
    xt, masked, p_mask = forward_process(x0, MASK)
    assert (xt[masked] == MASK).all() and (xt[~masked] == 0).all()
    frac, p = masked.float().mean(1), p_mask[:, 0]
    assert ((frac - p).abs() < 5 * (p * (1 - p) / 20000).sqrt() + 1e-9).all()
    assert abs(p.mean().item() - 0.5) < 1 / 16
    assert p.min() >= 1e-3 and p.max() <= 1  # eps keeps every row noisy


def test_loss_on_a_hand_computed_toy():
    """B=1, L=3, tokens [0, 1, 2]; positions 0 and 2 masked at p_mask = 1/4. The toy puts logit 0 on
    ids 0..3 and +100 on [MASK] (which the loss must ignore), so each masked CE is log 4.
    Loss = (log 4 / (1/4) + log 4 / (1/4)) / (B * L) = 8 log 4 / 3.  Dividing by the number of
    masked tokens instead (a known bug) would give 4 log 4."""
    x0 = torch.tensor([[0, 1, 2]])
    masked = torch.tensor([[True, False, True]])
    logits = torch.full((1, 3, MASK + 1), -1e9)
    logits[..., :4], logits[..., MASK] = 0.0, 100.0
    loss = diffusion_loss(logits, x0, masked, torch.tensor([[0.25]]), MASK)
    assert loss.item() == pytest.approx(8 * math.log(4) / 3, rel=1e-6)


def test_schedule_spreads_the_remainder_over_the_first_steps():
    masked = torch.ones(2, 10, dtype=torch.bool)
    masked[1, 7:] = False  # the second row has 7 masks
    assert num_transfer_tokens(masked, 4).tolist() == [[3, 3, 2, 2], [2, 2, 2, 1]]


def commits_per_step(**kw):
    """Run generate on the toy; return the number of masks filled at each step and the final
    canvas."""
    model, counts, prev = Toy(random_logits), [], [None]
    x = torch.tensor([[1, 2], [3, 4]])

    def on_step(canvas):
        masks = (canvas == MASK).sum(1)
        counts.append(((prev[0] if prev[0] is not None else kw["gen_length"]) - masks).tolist())
        prev[0] = masks
    out = generate(model, x, mask_id=MASK, on_step=on_step, **kw)
    return counts, out, model.calls


def test_low_confidence_commits_exactly_k_per_step():
    counts, out, calls = commits_per_step(steps=4, gen_length=10, block_length=10, temperature=0.0)
    assert counts == [[3, 3], [3, 3], [2, 2], [2, 2]] and calls == 4
    assert (out[:, :2] == torch.tensor([[1, 2], [3, 4]])).all()  # the prompt is kept
    assert not (out == MASK).any()


def test_commits_stay_inside_the_current_block():
    seen = []
    model = Toy(random_logits)
    generate(model, torch.zeros(1, 0, dtype=torch.long), steps=6, gen_length=12, block_length=4,
             mask_id=MASK, temperature=1.0, on_step=lambda c: seen.append((c[0] != MASK).tolist()))
    for step, filled in enumerate(seen):
        block = step // 2  # 3 blocks of 4 positions, 2 steps each
        assert all(filled[:4 * block])  # earlier blocks are complete
        assert not any(filled[4 * (block + 1):])  # later blocks untouched
    assert all(seen[-1]) and model.calls == 6


def test_threshold_commits_at_least_one_and_everything_confident():
    flat = Toy(lambda x: torch.zeros(*x.shape, MASK + 1))  # confidence 1/9 everywhere: one per step
    out = generate(flat, torch.zeros(1, 0, dtype=torch.long), steps=1, gen_length=5, block_length=5,
                   mask_id=MASK, threshold=0.9)
    assert flat.calls == 5 and not (out == MASK).any()
    sure = Toy(lambda x: torch.nn.functional.one_hot(torch.full(x.shape, 3), MASK + 1).float() * 50)
    out = generate(sure, torch.zeros(2, 0, dtype=torch.long), steps=1, gen_length=8, block_length=8,
                   mask_id=MASK, threshold=0.9)
    assert sure.calls == 1 and (out == 3).all()


def test_joint_threshold_bounds_the_product_of_a_pass():
    """Every position at p = 0.96 (token 3 against 8 others): each one passes tau = 0.9, so the
    per-prediction rule commits all 8 in one pass; the joint rule takes two a pass (0.96^2 = 0.92
    > 0.9 > 0.96^3 = 0.885), four passes, the same tokens."""
    logit = math.log(0.96 * 8 / 0.04)  # softmax over token 3 at this logit and 8 zeros = 0.96
    sure = lambda x: torch.nn.functional.one_hot(torch.full(x.shape, 3), MASK + 1).float() * logit
    each, joint = Toy(sure), Toy(sure)
    x = torch.zeros(2, 0, dtype=torch.long)
    a = generate(each, x, steps=1, gen_length=8, block_length=8, mask_id=MASK, threshold=0.9)
    b = generate(joint, x, steps=1, gen_length=8, block_length=8, mask_id=MASK, threshold=0.9,
                 joint=True)
    assert each.calls == 1 and joint.calls == 4 and (a == 3).all() and (b == 3).all()
    lax = Toy(sure)  # a lower tau lets more through: 0.96^5 = 0.815 > 0.8 > 0.96^6 = 0.783
    generate(lax, x, steps=1, gen_length=8, block_length=8, mask_id=MASK, threshold=0.8, joint=True)
    assert lax.calls == 2  # 5, then the 3 left


def test_random_remasking_unmasks_at_rate_one_minus_s_over_t():
    """Alg. 4 with 4 steps: the expected share of remaining masks filled is 1/4, 1/3, 1/2,
    then 1."""
    torch.manual_seed(0)
    counts, out, _ = commits_per_step(steps=4, gen_length=4000, block_length=4000,
                                      remasking="random", temperature=1.0)
    remaining = 4000
    for (c, _), share in zip(counts, [1 / 4, 1 / 3, 1 / 2, 1]):
        assert abs(c / remaining - share) < 0.05
        remaining -= c
    assert remaining == 0 and not (out == MASK).any()


def test_mask_is_never_emitted():
    loves_mask = Toy(lambda x: torch.nn.functional.one_hot(torch.full(x.shape, MASK),
                                                           MASK + 1).float() * 50)
    for remasking in ["low_confidence", "random"]:
        out = generate(loves_mask, torch.zeros(2, 0, dtype=torch.long), steps=4, gen_length=8,
                       block_length=8, mask_id=MASK, temperature=1.0, remasking=remasking)
        assert not (out == MASK).any()


def test_same_seed_same_samples_and_greedy_is_deterministic():
    def run(seed, temperature):
        torch.manual_seed(seed)
        return commits_per_step(steps=6, gen_length=10, block_length=5, temperature=temperature)[1]
    assert torch.equal(run(0, 1.0), run(0, 1.0))
    assert not torch.equal(run(0, 1.0), run(1, 1.0))
    assert torch.equal(run(0, 0.0), run(1, 0.0))


def reference_llada_greedy(model, prompt, steps, gen_length, block_length):
    """A second, deliberately plain implementation of LLaDA's low-confidence sampler at temperature
    0, one row and one position at a time, to check generate() against step for step."""
    x = prompt.tolist() + [MASK] * gen_length
    per_block = steps // (gen_length // block_length)
    for b in range(gen_length // block_length):
        lo = len(prompt) + b * block_length
        n_masked = block_length
        schedule = [n_masked // per_block + (1 if i < n_masked % per_block else 0)
                    for i in range(per_block)]
        for k in schedule:
            logits = model(torch.tensor([x])).logits[0].double()
            logits[:, MASK] = -float("inf")
            probs = logits.softmax(-1)
            cands = [(probs[j].max().item(), j) for j in range(lo, lo + block_length)
                     if x[j] == MASK]
            for _, j in sorted(cands, reverse=True)[:k]:
                x[j] = int(probs[j].argmax())
    return x


def test_matches_a_plain_reference_implementation():
    prompt = torch.tensor([1, 2, 3])
    for steps, gen, block in [(8, 8, 8), (6, 12, 4), (4, 10, 10)]:
        ours = generate(Toy(random_logits), prompt[None], steps=steps, gen_length=gen,
                        block_length=block, mask_id=MASK)
        assert ours[0].tolist() == reference_llada_greedy(Toy(random_logits), prompt, steps, gen,
                                                          block)


def test_decode_cuts_at_the_first_eos():
    class Tok:
        eos_token_id = 7

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))
    assert decode(Tok(), torch.tensor([1, 2, 7, 3, 7])) == "1 2"
    assert decode(Tok(), torch.tensor([1, 2])) == "1 2"


def test_bad_block_arguments_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        generate(Toy(random_logits), torch.zeros(1, 0, dtype=torch.long), steps=4, gen_length=10,
                 block_length=4, mask_id=MASK)
