"""extra/average.py: the mean of checkpoints, key by key; the bound of the mean computed as train.py
computes it; checkpoints that are not one model refused in one line."""
import json, os, shutil

import pytest
import torch
from transformers import AutoModelForMaskedLM, DistilBertConfig

from extra import average
from extra.loading import SHIPPED, load


def tiny(seed, dim=16):
    torch.manual_seed(seed)
    return AutoModelForMaskedLM.from_config(DistilBertConfig(
        vocab_size=50, dim=dim, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32))


def test_average_is_the_mean_of_every_weight():
    a, b, c = tiny(0), tiny(1), tiny(2)
    mean = average.average([a, b, c])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert set(mean) == set(sa)
    for k in sa:
        torch.testing.assert_close(mean[k], (sa[k].float() + sb[k].float() + sc[k].float()) / 3)
    k = "vocab_transform.weight"
    assert not torch.equal(sa[k], sb[k]) and not torch.equal(mean[k], sa[k].float())  # a real mean


def test_the_mean_of_a_model_with_itself_is_the_model_with_train_pys_bound(tmp_path):
    out = tmp_path / "avg"
    average.main([SHIPPED, SHIPPED, "--out_dir", str(out)])
    model, _, metrics = load(str(out))
    shipped, _, before = load(SHIPPED)
    for (k, v), w in zip(model.state_dict().items(), shipped.state_dict().values()):
        torch.testing.assert_close(v, w, msg=k)
    assert metrics["averaged_from"] == [SHIPPED, SHIPPED]
    # the shipped model's own bound, from its metrics.json (train.py's number, of its float32
    # weights before they were stored in float16)
    assert metrics["val_nelbo_per_token"] == pytest.approx(before["val_nelbo_per_token"], abs=2e-3)


def test_the_mean_moves_every_weight_halfway(tmp_path):
    """Two checkpoints, the second the first with every weight moved: the mean is halfway."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    shutil.copytree(SHIPPED, first)
    shutil.copytree(SHIPPED, moved)
    model, tok, _ = load(str(moved))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    model.half().save_pretrained(moved)
    out = tmp_path / "avg"
    average.main([str(first), str(moved), "--out_dir", str(out)])
    mean, _, metrics = load(str(out))
    base, _, _ = load(str(first))
    for (k, v), w in zip(mean.state_dict().items(), base.state_dict().values()):
        torch.testing.assert_close(v - w, torch.full_like(w, 0.005), atol=1e-3, rtol=0, msg=k)
    assert 0 < metrics["val_nelbo_per_token"] < 3


def test_bad_inputs_get_one_line(tmp_path):
    with pytest.raises(SystemExit, match="two or more"):
        average.main([SHIPPED, "--out_dir", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="is one of the checkpoints"):
        average.main([SHIPPED, str(tmp_path), "--out_dir", str(tmp_path)])
    other = tmp_path / "other"
    model, tok, metrics = load(SHIPPED)
    AutoModelForMaskedLM.from_config(DistilBertConfig(
        vocab_size=model.config.vocab_size, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
        max_position_embeddings=160)).save_pretrained(other)
    tok.save_pretrained(other)
    json.dump(metrics, open(os.path.join(other, "metrics.json"), "w"))
    with pytest.raises(SystemExit, match="not the same model"):
        average.main([SHIPPED, str(other), "--out_dir", str(tmp_path / "y")])
    assert not os.path.exists(tmp_path / "y")  # nothing half written


def test_a_metrics_json_without_train_pys_args_still_averages(tmp_path):
    """A checkpoint whose metrics.json lacks train.py's args (written by hand, or by an older
    version without "sft") is averaged; its bound is left out rather than guessed."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        shutil.copytree(SHIPPED, folder)
        metrics = json.load(open(folder / "metrics.json"))
        del metrics["args"]["sft"]
        json.dump(metrics, open(folder / "metrics.json", "w"))
    average.main([str(first), str(second), "--out_dir", str(tmp_path / "a")])
    assert 0 < load(str(tmp_path / "a"))[2]["val_nelbo_per_token"] < 3  # still a pretraining run
    for folder in (first, second):
        json.dump({"dataset": "storyworld"}, open(folder / "metrics.json", "w"))
    average.main([str(first), str(second), "--out_dir", str(tmp_path / "b")])
    assert load(str(tmp_path / "b"))[2]["val_nelbo_per_token"] is None
