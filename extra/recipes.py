"""Recipe levers for masked-diffusion pretraining, each a flag of train.py, measured against each
other by extra/benchmark_recipes.py (docs/recipes.md). With their defaults (uniform t, no
block-matched rows) train.py is LLaDA's Algorithm 1 exactly.

1. The distribution of the noise level t (--t_dist). LLaDA and MDLM draw t ~ U(0, 1). Hong et al.
   2026 (arXiv 2605.13026) trace the slowness of masked diffusion to the locality of language and
   draw t from a bell-shaped density around mid masking rates instead (the same LM1B likelihood
   up to ~4x sooner); BD3-LM (Arriola et al. 2025) clips t to a tuned range to lower the gradient's
   variance; LLaDA 2's SFT draws t from U[0.3, 0.8]. Here: "clipped" is U[0.3, 0.8], "bell" the
   triangular density on [0, 1] with its mode at 1/2. The loss keeps its 1/t weight, so the training
   loss is no longer the ELBO: train.py's validation always uses uniform t, the unbiased -ELBO.

2. Rows matched to the semi-autoregressive sampler (--block_rows, --block_length). When sample.py
   fills a block, the model sees a clean prefix, a partly masked block and a fully masked suffix,
   which uniform masking almost never shows it. Block diffusion (BD3-LM, Arriola et al. 2025,
   arXiv 2503.09573: LM1B perplexity 28.2 at block size 4 against MDLM's 31.8 and AR's 22.8) and
   PUMA (arXiv 2602.10314, ~2.5x faster pretraining) train on exactly that view. Here a share of the
   rows is shaped so: one of the sampler's blocks (chosen uniformly) is masked at rate t, everything
   before it stays clean, everything after it is masked (p_mask = 1, so its tokens are scored with
   weight 1). The rest of the batch is masked as in LLaDA. With --sft the blocks start after each
   row's prompt and are chat.py's, as its answers are written.
"""
import torch


def noise_levels(v, t_dist="uniform"):
    """t (B,) from low-discrepancy uniforms v in [0, 1) by the inverse CDF of the training density.
    >>> v = torch.tensor([0.0, 0.125, 0.5, 0.875])
    >>> noise_levels(v, "clipped").tolist()
    [0.30000001192092896, 0.36250001192092896, 0.550000011920929, 0.737500011920929]
    >>> noise_levels(v, "bell").tolist()
    [0.0, 0.25, 0.5, 0.75]"""
    if t_dist == "clipped":  # U[0.3, 0.8]
        return 0.3 + 0.5 * v
    if t_dist == "bell":  # triangular on [0, 1]: F(t) = 2t^2 below 1/2, 1 - 2(1 - t)^2 above
        return torch.where(v < 0.5, (v / 2).sqrt(), 1 - ((1 - v) / 2).sqrt())
    return v


def block_matched(p_mask, share, block_length, start=0, generator=None):
    """p_mask (B, L) -> (B, L): in a random `share` of the rows, a clean prefix (p = 0) up to one
    of the blocks start + k * block_length (k uniform), that block at its rate t, the rest masked
    (p = 1). start: an int, or (B,) where each row's blocks begin (after its prompt, with --sft).
    Known-answer tests: tests/test_recipes.py."""
    B, L = p_mask.shape
    device = p_mask.device
    rows = torch.rand(B, device=device, generator=generator) < share                # (B,)
    start = torch.as_tensor(start, device=device).expand(B)                          # (B,)
    n_blocks = ((L - start) // block_length).clamp(min=1)                            # (B,)
    k = (torch.rand(B, device=device, generator=generator) * n_blocks).long()        # (B,)
    lo = (start + k * block_length)[:, None]                                          # (B, 1)
    pos = torch.arange(L, device=device)[None]                                        # (1, L)
    prefix, suffix = rows[:, None] & (pos < lo), rows[:, None] & (pos >= lo + block_length)
    return torch.where(prefix, 0.0, torch.where(suffix, 1.0, p_mask))
