"""Known-answer tests of edits_and_sft.py (Seed Diffusion edits, SFT), the story-world chat tasks,
and chat.py."""
import json, math, os, subprocess, sys

import pytest
import torch
import torch.nn.functional as F

from edits_and_sft import (edit_corrupt, edit_loss, edit_stage, ensure_chat_template, render,
                           revise, sft_loss, sft_rows)
from extra import storychat, storyworld
from extra.loading import batch, build_tokenizer
from sample import generate
from train import diffusion_loss, forward_process
from conftest import ROOT

MASK = 9


def test_edit_corrupt_touches_only_visible_tokens_at_rate_edit_rate_times_t():
    """Replaced positions are visible and not kept; their number is edit_rate * p_mask of the
    visible ones (minus the donors that happen to equal the original, 1/10 here), within 5 standard
    deviations; donors come from the batch."""
    torch.manual_seed(0)
    B, L = 8, 4000
    x0 = torch.randint(0, 9, (B, L))
    xt, masked, p_mask = forward_process(x0, MASK)
    keep = torch.zeros_like(masked)
    keep[:, :10] = True
    xt = torch.where(keep, x0, xt)
    masked &= ~keep
    new, wrong = edit_corrupt(x0, xt, masked, p_mask, keep, edit_rate=0.5)
    assert not (wrong & masked).any() and not (wrong & keep).any()
    assert (new[wrong] != x0[wrong]).all() and (new[~wrong] == xt[~wrong]).all()
    visible = (~masked & ~keep).sum(1).float()
    # 9 token values, uniform: a donor equals the original 1 time in 9
    p = 0.5 * p_mask[:, 0] * (1 - 1 / 9)
    got = wrong.sum(1).float()
    assert ((got - p * visible).abs() <= 5 * (visible * p * (1 - p)).sqrt() + 1).all(), \
        (got, p * visible)


def test_edit_loss_is_the_elbo_on_masks_plus_ce_on_visible():
    """Hand-computed: masked position CE / p_mask, visible positions plain CE, kept ones nothing,
    over B*L."""
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 10)
    x0 = torch.tensor([[1, 2, 3, 4]])
    masked = torch.tensor([[False, True, False, False]])
    keep = torch.tensor([[True, False, False, False]])
    p = torch.tensor([[0.25]])
    lp = logits.clone()
    lp[..., MASK] = -float("inf")
    ce = F.cross_entropy(lp[0], x0[0], reduction="none")
    expected = (ce[1] / 0.25 + ce[2] + ce[3]) / 4
    assert torch.allclose(edit_loss(logits, x0, masked, p, MASK, keep), expected)
    # with no visible position scored, it is the -ELBO
    assert torch.allclose(edit_loss(logits, x0, masked, p, MASK, ~masked),
                          diffusion_loss(logits, x0, masked, p, MASK))


def test_curriculum_is_a_function_of_the_step_alone():
    assert [edit_stage(s, 100, 0.8) for s in (1, 80, 81, 100)] == [False, False, True, True]
    assert not any(edit_stage(s, 100, 1.0) for s in range(1, 101))


class FlipFlop(torch.nn.Module):
    """A toy that is always sure the token at every position should be the *other* of {1, 2}:
    without a bound, edits would flip every committed token at every pass."""

    def forward(self, input_ids):
        logits = torch.full((*input_ids.shape, 10), -10.0)
        other = torch.where(input_ids == 1, 2, 1)
        logits.scatter_(-1, other[..., None], 10.0)
        return type("Out", (), {"logits": logits})


def test_edits_are_bounded_per_position():
    """With edits=2 each committed position changes at most twice, however often the model asks."""
    x = torch.zeros(2, 1, dtype=torch.long)
    changes = torch.zeros(2, 17, dtype=torch.long)
    prev = {}

    def on_step(c):
        if "x" in prev:
            changes.add_(((prev["x"] != c) & (prev["x"] != MASK)).long())
        prev["x"] = c.clone()
    generate(FlipFlop(), x, steps=16, gen_length=16, block_length=16, mask_id=MASK, edits=2,
             on_step=on_step)
    assert changes.max() <= 2 and changes.sum() > 0


def test_revise_never_touches_masks_and_counts():
    x = torch.tensor([[0, 1, MASK, 2]])
    counts = torch.zeros_like(x)
    logits = torch.full((1, 3, 10), -10.0)
    logits[0, :, 5] = 10.0  # sure that every position should be 5
    n = revise(x, logits, 1, 4, counts, 0.9, 1, MASK)
    assert n == 2 and x.tolist() == [[0, 5, MASK, 5]] and counts.tolist() == [[0, 1, 0, 1]]
    assert revise(x, logits, 1, 4, counts, 0.9, 1, MASK) == 0  # the bound


@pytest.fixture(scope="module")
def chat_tok():
    tok = build_tokenizer(storyworld.valid_stories(200))
    return ensure_chat_template(tok)


def test_render_and_rows_carry_the_prompt_length(chat_tok):
    """The prompt ends with <|assistant|>; the response is the reply and an EOS; each SFT row
    carries its prompt length, so exactly the prompt is kept and forward_process never masks a
    prompt token.
    subtle: the response below contains <|assistant|> itself. Finding the prompt again by searching
    for the last <|assistant|> token (what train.py did before) would keep the response's first
    half unmasked; the carried length does not look at the tokens at all."""
    tricky = "Lily said <|assistant|> twice."
    for reply in ("Lily.", tricky):
        msgs = [{"role": "user", "content": "What is the hero's name?"},
                {"role": "assistant", "content": reply}]
        bos = [chat_tok.bos_token_id]
        prompt, response = render(chat_tok, msgs, bos)
        assert chat_tok.convert_ids_to_tokens(prompt[-1]) == "<|assistant|>"
        assert response[-1] == chat_tok.eos_token_id
        assert chat_tok.decode(response[:-1]).replace(" ", "") == reply.replace(" ", "")
        (row, n_prompt), = list(sft_rows([msgs], chat_tok, 48, bos))
        assert n_prompt == len(prompt)
        x0, keep = batch([(row, n_prompt)] * 64)
        assert keep[0].sum() == n_prompt and keep[0, :n_prompt].all()
        xt, masked, _ = forward_process(x0, chat_tok.mask_token_id, keep=keep)
        assert not masked[keep].any() and masked[:, n_prompt:].any()
        # the role token sits inside the response, and is noised like the rest
        if reply == tricky:
            inside = row.index(chat_tok.convert_tokens_to_ids("<|assistant|>"), n_prompt)
            assert not keep[0, inside] and masked[:, inside].any()


def test_sft_loss_divides_each_row_by_its_response_length():
    """Two rows, responses of 2 and 4 positions (filler included); one masked token each with CE c
    and p_mask 0.5: loss = mean(c/0.5/2, c/0.5/4)."""
    logits = torch.zeros(2, 6, 10)  # uniform over the 9 non-mask tokens: CE = ln 9
    x0 = torch.zeros(2, 6, dtype=torch.long)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    masked = torch.tensor([[0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    c = math.log(9)
    got = sft_loss(logits, x0, masked, torch.tensor([[0.5], [0.5]]), MASK, keep)
    assert abs(got.item() - (c / 0.5 / 2 + c / 0.5 / 4) / 2) < 1e-5


def test_ensure_chat_template_grows_the_embeddings():
    from transformers import ModernBertConfig, ModernBertForMaskedLM
    tok = build_tokenizer(["a b c"] * 20)
    model = ModernBertForMaskedLM(ModernBertConfig(vocab_size=len(tok), hidden_size=16,
                                                   num_hidden_layers=1, num_attention_heads=2,
                                                   intermediate_size=16,
                                                   pad_token_id=tok.pad_token_id))
    n = len(tok)
    ensure_chat_template(tok, model)
    assert len(tok) == n + 3 and model.get_input_embeddings().weight.shape[0] == len(tok)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == "<|user|>hi<|assistant|>"


def test_story_chat_tasks_are_checkable_and_their_answers_right():
    """Every validation task's reference answer passes its own check; the three kinds appear;
    questions have one exact answer that the story supports; validation stories never occur in
    training tasks."""
    tasks = storychat.valid_tasks(60)
    assert {t["kind"] for t in tasks} == {"write", "ask", "follow-up"}
    for t in tasks:
        if t["kind"] == "write":
            assert 1 <= len(t["constraints"]) <= 4
            assert storychat.satisfies(t["messages"][-1]["content"], t["constraints"]) == (True, [])
        else:
            assert t["messages"][-1]["content"] == t["answer"]
    f = storychat.facts(tasks[0]["messages"][1]["content"])
    other = dict(name="Zoe" if f["name"] != "Zoe" else "Max")
    assert not storychat.satisfies(tasks[0]["messages"][1]["content"], other)[0]
    gen = storychat.train_tasks()
    # the story of a training task (a reply, or the text before the question) is never a
    # validation one
    for _ in range(300):
        t = next(gen)
        story = (t["messages"][1]["content"] if t["kind"] != "ask"
                 else t["messages"][0]["content"].split("\n\n")[0])
        assert storychat.facts(story) is not None and not storyworld.is_valid_split(story)


def test_sft_then_chat_end_to_end(tmp_path):
    """train.py --sft on a tiny local `messages` file, from a tiny pretrained folder; then chat.py
    -p answers, and the empty prompt gets a clear message."""
    from tests.test_scripts import tiny_backbone
    base = tmp_path / "base"
    tiny_backbone("modernbert", base)
    data = tmp_path / "chats.jsonl"
    with open(data, "w") as f:
        for i in range(60):
            f.write(json.dumps({"messages": [
                {"role": "user", "content": f"Say {i % 5}."},
                {"role": "assistant",
                 "content": f"Tom had a {['red', 'blue', 'green', 'big', 'small'][i % 5]} ball."}]})
                + "\n")
    out = tmp_path / "sft"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "train.py", "--sft", "--model", str(base),
                    "--dataset", str(data), "--seq_len", "48", "--max_steps", "6",
                    "--eval_every", "3", "--batch_size", "4", "--out_dir", str(out)],
                   cwd=ROOT, check=True, env=env, capture_output=True, timeout=300)
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["args"]["sft"] and len(metrics["log"]) >= 2
    # the default SFT rows: half of them block-matched after the prompt, in chat.py's blocks
    a = metrics["args"]
    assert (a["t_dist"], a["block_rows"], a["block_length"]) == ("bell", 0.5, 16)
    assert all(math.isfinite(x) for e in metrics["log"] for x in e["train_loss_by_rank"])
    r = subprocess.run([sys.executable, "chat.py", "--ckpt", str(out), "-p", "Say 3.",
                        "--gen_length", "24", "--block_length", "8", "--steps", "8"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "<|assistant|>" not in r.stdout and "[MASK]" not in r.stdout
    r = subprocess.run([sys.executable, "chat.py", "--ckpt", str(out), "-p", "  "], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "prompt is empty" in r.stderr


def test_benchmark_edits_runs_and_prints_its_table():
    r = subprocess.run([sys.executable, "extra/benchmark_edits.py", "--with_edits",
                        "extra/checkpoint", "--n", "2", "--steps", "4"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    table = [l for l in r.stdout.splitlines() if l.startswith("| trained")]
    # 4 rows, printed as they come and again at the end
    assert len(table) == 8 and all("/2 |" in l for l in table)


def test_chat_repl_reset_empty_lines_and_eof():
    """The REPL on a pipe: an answer, an empty line (ignored), /reset, then end of input (Ctrl-D):
    exit status 0."""
    r = subprocess.run([sys.executable, "chat.py", "--ckpt", "extra/checkpoint_sft",
                        "--gen_length", "16"], cwd=ROOT,
                       input="What is the hero's name?\n\n/reset\n", capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert (r.stdout.count("bot>") == 1 and "(conversation cleared)" in r.stdout
            and "Traceback" not in r.stderr)


def test_benchmark_threshold_counts_the_passes(tmp_path):
    """One token per pass: every story needs all 12 passes; with a threshold, a story needs no more
    than the batch made."""
    from extra import benchmark_threshold
    from extra.loading import SHIPPED, load
    model, tok, _ = load(SHIPPED)
    texts, batch, needed = benchmark_threshold.run(model, tok, 3, None, gen_length=12,
                                                   block_length=4)
    assert len(texts) == 3 and batch == 12 and needed == 12
    texts, batch, needed = benchmark_threshold.run(model, tok, 3, 0.5, gen_length=12,
                                                   block_length=4)
    assert 3 <= needed <= batch <= 12
    texts, batch, needed = benchmark_threshold.run(model, tok, 3, 0.5, gen_length=12,
                                                   block_length=4, joint=True)
    assert 3 <= needed <= batch <= 12
    benchmark_threshold.main(["--n", "2", "--taus", "0.9", "--joint_taus", "0.8", "--seeds", "0",
                              "1", "--out", str(tmp_path)])
    table = (tmp_path / "threshold.md").read_text()
    assert "| one token per pass |" in table and "`--threshold 0.9`" in table
    assert "`--threshold 0.8 --joint`" in table
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| one token")]
    assert rows[0][3].endswith("/4") and rows[0][4] == "+0.0"  # 2 stories at each of 2 seeds
