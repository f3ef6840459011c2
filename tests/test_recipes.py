"""Known answers for the recipe levers (extra/recipes.py) and their use in train.forward_process."""
import math
from types import SimpleNamespace

import pytest
import torch

from extra.recipes import block_matched, noise_levels
from train import forward_process


def test_noise_levels_range_and_mean():
    """From evenly spread v: uniform has mean 1/2 on [0, 1); clipped U[0.3, 0.8] mean 0.55; the
    triangle on [0, 1] with mode 1/2 has mean 1/2, variance 1/24, P(t < 1/4) = 2 (1/4)^2 = 1/8."""
    v = (torch.arange(100000) + 0.5) / 100000
    u, c, b = noise_levels(v), noise_levels(v, "clipped"), noise_levels(v, "bell")
    assert u.min() > 0 and u.max() < 1 and u.mean().item() == pytest.approx(0.5, abs=1e-6)
    assert c.min() >= 0.3 and c.max() <= 0.8 and c.mean().item() == pytest.approx(0.55, abs=1e-5)
    assert b.min() >= 0 and b.max() <= 1 and b.mean().item() == pytest.approx(0.5, abs=1e-4)
    assert b.var().item() == pytest.approx(1 / 24, abs=1e-4)
    assert (b < 0.25).float().mean().item() == pytest.approx(1 / 8, abs=1e-4)


def test_block_matched_prefix_clean_block_at_t_suffix_masked():
    """Every row block-matched, blocks of 4 after a BOS in L = 9: k = 0 gives p = (0, t t t t,
    1 1 1 1), k = 1 gives (0 0 0 0 0, t t t t); no other shape can come out."""
    g = torch.Generator().manual_seed(0)
    p = block_matched(torch.full((2000, 9), 0.3), 1.0, 4, start=1, generator=g)
    shapes = {tuple(row) for row in p.tolist()}
    t = 0.30000001192092896  # 0.3 in float32
    assert shapes == {(0.0, t, t, t, t, 1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0, 0.0, t, t, t, t)}
    share = (p[:, 1] == 0).float().mean().item()  # k = 1 in about half of the rows
    assert 0.45 < share < 0.55


def test_block_matched_share_and_no_share():
    g = torch.Generator().manual_seed(1)
    p = torch.full((4000, 9), 0.5)
    assert torch.equal(block_matched(p, 0.0, 4, start=1, generator=g), p)
    out = block_matched(p, 0.25, 4, start=1, generator=g)
    shaped = (out != 0.5).any(1).float().mean().item()
    assert 0.22 < shaped < 0.28


def test_forward_process_with_block_rows_masks_as_the_sampler_sees():
    """With --block_rows 1: the prefix is never masked, the suffix always, the block at rate t;
    and the unbiased validation path (no recipe) is LLaDA's draw, the same numbers as before."""
    torch.manual_seed(0)
    B, L = 512, 17
    x0 = torch.randint(5, 50, (B, L))
    keep = torch.zeros(B, L, dtype=torch.bool)
    keep[:, 0] = True  # the BOS
    recipe = SimpleNamespace(t_dist="uniform", block_rows=1.0, block_length=4)
    xt, masked, p_mask = forward_process(x0, 1, keep=keep, recipe=recipe)
    assert not masked[:, 0].any()
    for row in range(B):
        p = p_mask[row]
        block = (p > 0) & (p < 1)
        lo, hi = block.nonzero().min().item(), block.nonzero().max().item() + 1
        assert hi - lo == 4 and (lo - 1) % 4 == 0
        assert not masked[row, :lo].any() and masked[row, hi:].all()
    t = p_mask[(p_mask > 0) & (p_mask < 1)]
    in_block = masked[(p_mask > 0) & (p_mask < 1)].float()
    assert in_block.mean().item() == pytest.approx(t.mean().item(), abs=0.03)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = forward_process(x0, 1, generator=g1, keep=keep)
    b = forward_process(x0, 1, generator=g2, keep=keep, recipe=SimpleNamespace(
        t_dist="uniform", block_rows=0.0, block_length=4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_block_matched_rows_start_after_each_rows_prompt():
    """With --sft the kept prefix is the prompt, of a different length in each row: the blocks of
    a row begin at its prompt's end (where chat.py's first block begins), never inside it."""
    torch.manual_seed(0)
    B, L, bl = 600, 20, 4
    x0 = torch.randint(5, 50, (B, L))
    n_keep = torch.randint(1, 9, (B,))                                    # prompts of 1..8 tokens
    keep = torch.arange(L)[None] < n_keep[:, None]
    recipe = SimpleNamespace(t_dist="uniform", block_rows=1.0, block_length=bl)
    xt, masked, p_mask = forward_process(x0, 1, keep=keep, recipe=recipe)
    assert not (masked & keep).any()
    starts = set()
    for row in range(B):
        block = (p_mask[row] > 0) & (p_mask[row] < 1)
        lo, hi = block.nonzero().min().item(), block.nonzero().max().item() + 1
        assert hi - lo == bl and (lo - n_keep[row].item()) % bl == 0
        assert (p_mask[row, :lo] == 0).all() and masked[row, hi:].all()
        starts.add(lo - n_keep[row].item())
    assert starts == set(range(0, 12 + 1, bl))  # every block of the shortest rows comes up


def test_sft_loss_with_block_rows_scores_only_the_masked_tokens():
    """A clean prefix past the prompt has p_mask = 0: LLaDA's SFT loss stays finite and equals
    sum over masked tokens of CE / p_mask, over the response length, averaged over rows."""
    from edits_and_sft import sft_loss
    torch.manual_seed(0)
    B, L = 32, 20
    x0 = torch.randint(5, 50, (B, L))
    keep = torch.arange(L)[None] < torch.randint(1, 6, (B,))[:, None]
    recipe = SimpleNamespace(t_dist="bell", block_rows=1.0, block_length=4)
    xt, masked, p_mask = forward_process(x0, 1, keep=keep, recipe=recipe)
    assert (p_mask[~keep] == 0).any()
    logits = torch.randn(B, L, 60, requires_grad=True)
    loss = sft_loss(logits, x0, masked, p_mask, 1, keep)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    lp = logits.detach().index_fill(2, torch.tensor([1]), -float("inf")).log_softmax(-1)
    ce = -lp.gather(2, x0[..., None])[..., 0]
    rows = [(ce[b][masked[b]] / p_mask[b][masked[b]]).sum() / (~keep[b]).sum() for b in range(B)]
    assert loss.item() == pytest.approx(torch.stack(rows).mean().item(), rel=1e-5)


def test_validation_is_the_unbiased_elbo_whatever_the_training_density():
    """train.validate draws through forward_process without a recipe: uniform t, no blocks."""
    import inspect
    import train
    assert "recipe" not in inspect.getsource(train.validate)
    assert math.isclose(noise_levels(torch.tensor([0.25]), "uniform").item(), 0.25)


def test_losses_stay_finite_with_a_clean_prefix():
    """Block-matched rows have p_mask = 0 on their clean prefix: the -ELBO and the edit loss must
    skip those positions, not divide 0 by 0 (a first version printed loss=nan)."""
    from edits_and_sft import edit_loss
    from train import diffusion_loss
    torch.manual_seed(0)
    x0 = torch.randint(5, 50, (64, 17))
    keep = torch.zeros_like(x0, dtype=torch.bool)
    keep[:, 0] = True
    recipe = SimpleNamespace(t_dist="bell", block_rows=1.0, block_length=4)
    xt, masked, p_mask = forward_process(x0, 1, keep=keep, recipe=recipe)
    logits = torch.randn(64, 17, 60, requires_grad=True)
    for loss_fn in (diffusion_loss, edit_loss):
        loss = loss_fn(logits, x0, masked, p_mask, 1, keep)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
        logits.grad = None
    ce = torch.nn.functional.cross_entropy(
        logits.detach()[masked].index_fill(1, torch.tensor([1]), -float("inf")), x0[masked],
        reduction="none")
    expected = (ce / p_mask[masked]).sum() / x0.numel()
    assert diffusion_loss(logits, x0, masked, p_mask, 1).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("preset", ["tiny", "long"])
def test_the_presets_first_layer_sees_only_its_neighbours_and_the_second_the_whole_row(preset):
    """The layer order of the presets (extra/loading.py, "LGLG"): changing a token 100 places
    away leaves every position's output of layer 1 as it was, and changes it after layer 2."""
    from extra.loading import build_model, build_tokenizer
    tok = build_tokenizer(["a b c d e f"] * 20)
    model = build_model(preset, tok, 160).eval()
    x = torch.randint(4, len(tok), (1, 160), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[0, 120] = 4 if x[0, 120] != 4 else 5
    with torch.no_grad():
        hx, hy = (model(input_ids=r, output_hidden_states=True).hidden_states for r in (x, y))
    assert torch.equal(hx[1][0, :100], hy[1][0, :100])  # layer 1: 32 neighbours only
    assert not torch.allclose(hx[2][0, :100], hy[2][0, :100])  # layer 2: every position
    assert len(hx) == 5  # embeddings + 4 layers
    glgl = build_model(preset, tok, 160, attention="GLGL").eval()  # train.py --attention GLGL
    with torch.no_grad():
        gx, gy = (glgl(input_ids=r, output_hidden_states=True).hidden_states for r in (x, y))
    assert not torch.allclose(gx[1][0, :100], gy[1][0, :100])  # ModernBERT's order: global first
