"""The real-model path: train.py and sample.py on tiny DistilBERT / ModernBERT folders and local
data, the way a Colab user runs them on the hub (which is unreachable here), and the offline
messages."""
import json, os, subprocess, sys, time

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (AutoModelForMaskedLM, DistilBertConfig, DistilBertForMaskedLM,
                          ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast)

import sample
import train
from extra import loading
from conftest import ROOT, reset_accelerate

STORIES = [f"Tom had a {c} {o}. He played with it in the {p} every day, and he was happy."
           for c in ["red", "blue", "green", "big", "small"] for o in ["ball", "kite", "car", "hat"]
           for p in ["park", "garden", "yard"]]


def bert_style_tokenizer(texts):
    """A WordPiece tokenizer like BERT's: [SEP] ends a text and there is no EOS token."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]",
                                   cls_token="[CLS]", pad_token="[PAD]", mask_token="[MASK]")


def tiny_backbone(arch, folder):
    """Save a tiny randomly initialised masked LM + tokenizer, as a hub checkpoint would be laid
    out."""
    torch.manual_seed(0)
    if arch == "distilbert":
        tok = bert_style_tokenizer(STORIES)
        model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2,
                                                       n_heads=2, hidden_dim=64,
                                                       max_position_embeddings=64))
    else:
        tok = loading.build_tokenizer(STORIES)
        model = ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
            cls_token_id=tok.eos_token_id, sep_token_id=tok.eos_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return tok


@pytest.mark.parametrize("arch", ["distilbert", "modernbert"])
def test_fine_tune_a_local_backbone_on_a_local_dataset(arch, tmp_path, capsys):
    tiny_backbone(arch, tmp_path / "backbone")
    data = tmp_path / "stories.jsonl"  # TinyStories' format: one {"text": ...} per line
    data.write_text("\n".join(json.dumps({"text": s}) for s in STORIES))
    out = tmp_path / "out"
    train.main(["--model", str(tmp_path / "backbone"), "--dataset", str(data), "--max_steps", "4",
                "--seq_len", "32", "--batch_size", "4", "--eval_every", "2", "--warmup", "1",
                "--out_dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["true_entropy_per_token"] is None
    assert (0 < metrics["val_nelbo_per_token"] < 50
            and [e["step"] for e in metrics["log"]] == [1, 2, 4])
    assert not (tmp_path / "out.tmp").exists()
    AutoModelForMaskedLM.from_pretrained(out)  # a standard Hugging Face checkpoint
    # going on from a train.py run counts its steps (the backbone has no metrics.json: none)
    train.main(["--model", str(out), "--dataset", str(data), "--max_steps", "2", "--seq_len", "32",
                "--batch_size", "4", "--warmup", "1", "--out_dir", str(tmp_path / "more")])
    more = json.loads((tmp_path / "more" / "metrics.json").read_text())
    assert "steps_before" not in metrics and more["steps"] == 2 and more["steps_before"] == 4
    capsys.readouterr()
    sample.main(["--ckpt", str(out), "--n", "3", "--steps", "4", "--gen_length", "8", "--json",
                 "--prompt", "Tom had"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(json.loads(l)["text"].startswith("Tom had") for l in lines)


def test_rows_pad_short_documents_and_window_long_ones(tmp_path):
    tok = loading.build_tokenizer(STORIES)
    eos = tok.eos_token_id
    book = " ".join(STORIES)  # one long document with no blank line: cut into windows, like nanoGPT
    n = len(tok(book)["input_ids"]) + 1  # + EOS; each window of 64 also starts with BOS
    out = list(loading.rows([book, "Tom had a ball."], tok, 64, eos))
    assert len(out) == -(-n // 63) + 1 and all(len(r) == 64 for r in out)
    assert (out[-1][:6] == [tok.bos_token_id] + tok("Tom had a ball.")["input_ids"]
            and set(out[-1][6:]) == {eos})
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(STORIES))  # blank lines separate documents
    train_rows, val_rows, _ = loading.load_data(str(path), tok, 64, n_val=10)
    assert 1 <= len(val_rows) and all(r not in val_rows
                                      for r in [next(train_rows) for _ in range(60)])


def run(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # as a user would run it
    t0 = time.time()
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p, time.time() - t0


@pytest.mark.parametrize("args", [["train.py", "--model", "distilbert/distilbert-base-cased"],
                                  ["train.py", "--dataset", "roneneldan/TinyStories"],
                                  ["sample.py", "--ckpt", "answerdotai/ModernBERT-base"]])
def test_hub_ids_offline_fail_fast_and_name_the_default(args):
    p, seconds = run(*args)
    assert p.returncode != 0 and seconds < 60
    assert "python train.py" in p.stderr and "Traceback" not in p.stderr


def test_grad_accum_2_takes_the_step_of_one_batch_twice_as_big(tmp_path, monkeypatch):
    """--grad_accum 2 --batch_size 8 must take the first optimizer step of --batch_size 16 (fp32,
    the same 16 rows, the same masks: a fixed pattern stands in for the random one here).
    subtle: the gradient is clipped to norm 1 once, when it is complete. Clipping at every
    micro-step (the old train.py) clips the first half alone, which changes the step's direction:
    Adam's first step is about sign(g), so the weights then differ by ~lr where the signs differ."""
    from safetensors.torch import load_file
    tiny_backbone("modernbert", tmp_path / "backbone")
    data = tmp_path / "stories.jsonl"
    data.write_text("\n".join(json.dumps({"text": s}) for s in STORIES))

    def fixed_masks(x0, mask_id, eps=1e-3, generator=None, keep=None, recipe=None):
        masked = ((x0 * 7 + torch.arange(x0.shape[1])) % 3 == 0) & ~keep           # (B, L)
        return torch.where(masked, mask_id, x0), masked, torch.full((len(x0), 1), 0.5)
    monkeypatch.setattr(train, "forward_process", fixed_masks)
    common = ["--model", str(tmp_path / "backbone"), "--dataset", str(data), "--max_steps", "1",
              "--seq_len", "32", "--warmup", "1", "--lr", "1e-2", "--mixed_precision", "no",
              "--n_val", "4"]
    weights = {}
    for name, flags in (("one", ["--batch_size", "16"]),
                        ("two", ["--batch_size", "8", "--grad_accum", "2"])):
        reset_accelerate()  # each run sets up accelerate anew, as a new process
        train.main(common + flags + ["--out_dir", str(tmp_path / name)])
        weights[name] = load_file(tmp_path / name / "model.safetensors")
    before = load_file(tmp_path / "backbone" / "model.safetensors")
    moved = max((weights["one"][k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-3  # the step did something
    diff = max((weights["one"][k] - weights["two"][k]).abs().max().item() for k in before)
    assert diff < 1e-6
