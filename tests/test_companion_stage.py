"""The companion stage (extra/companion_stage.py): the growth by one layer that changes nothing, the
spread of the family words' embeddings, the companion-rich stories, and the stage run end to end on
the shipped model, then trained on."""
import json

import pytest
import torch

import train
from extra import companion_stage as stage, storyworld
from extra.loading import SHIPPED, load
from extra.probe_agreement import mean_cosine


def test_mean_cosine_known_answers():
    same = torch.ones(4, 3)
    assert mean_cosine(same, [0, 1, 2, 3]) == pytest.approx(1.0)
    assert mean_cosine(torch.eye(3), [0, 1, 2]) == pytest.approx(0.0)


def test_spread_moves_only_the_given_rows_and_makes_them_unlike():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(50, 16, generator=g)
    ids = [3, 7, 11, 20]
    weight[ids] = torch.randn(16, generator=g) + 0.01 * torch.randn(4, 16, generator=g)
    before = weight.clone()
    assert mean_cosine(weight, ids) > 0.99
    stage.spread(weight, ids, torch.Generator().manual_seed(1))
    others = [i for i in range(50) if i not in ids]
    assert torch.equal(weight[others], before[others])
    assert mean_cosine(weight, ids) < 0.8
    # the new rows are as long as a typical row of the matrix, not blown up or shrunk
    typical = before[others].norm(dim=1).mean()
    assert 0.5 * typical < weight[ids].norm(dim=1).mean() < 2 * typical


def test_grow_adds_a_global_layer_that_changes_nothing_yet():
    model, tok, _ = load(SHIPPED)
    grown = stage.grow(model)
    n = model.config.num_hidden_layers
    assert grown.config.num_hidden_layers == n + 1
    assert grown.config.layer_types == list(model.config.layer_types) + ["full_attention"]
    x = torch.tensor([tok(storyworld.valid_stories(2)[1])["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(grown(input_ids=x).logits, model(input_ids=x).logits)
    # and it can learn: the new layer's input side is drawn, not zero
    assert grown.model.layers[n].attn.Wqkv.weight.abs().sum() > 0


def test_grow_refuses_a_model_it_does_not_know():
    from transformers import AutoModelForMaskedLM, DistilBertConfig
    tiny = AutoModelForMaskedLM.from_config(DistilBertConfig(
        vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32))
    with pytest.raises(SystemExit, match="ModernBERT"):
        stage.grow(tiny)


def test_companion_rich_stories_name_a_family_member_twice_and_are_training_stories():
    stories = stage.companion_rich(40)
    assert len(stories) == 40 and len(set(stories)) > 35
    for text in stories:
        assert len(stage.FAMILY.findall(text)) >= 2
        assert not storyworld.is_valid_split(text) and storyworld.check(text)[0]


def test_the_stage_end_to_end_then_a_train_py_run_on_its_stories(tmp_path, capsys):
    """On a copy of the shipped model whose family words were made alike (as in a long run: cosine
    ~0.9), so that the spread has something to undo."""
    model, tok, metrics = load(SHIPPED)
    ids = stage.family_token_ids(tok)
    assert sorted(tok.decode([i]).strip() for i in ids) == sorted(
        w.split()[-1] for w in storyworld.PALS)
    w = model.get_input_embeddings().weight
    with torch.no_grad():
        w[ids] = w[ids].mean(0) + 0.1 * w.std(0) * torch.randn(len(ids), w.shape[1])
    assert mean_cosine(w, ids) > 0.9
    before = tmp_path / "long_run"
    model.save_pretrained(before)
    tok.save_pretrained(before)
    (before / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "stage"
    stage.main(["--ckpt", str(before), "--out_dir", str(out), "--stories", "30"])
    spread, _, _ = load(str(out))
    assert spread.config.num_hidden_layers == model.config.num_hidden_layers + 1
    w1 = spread.get_input_embeddings().weight
    assert mean_cosine(w1, ids) < 0.5
    others = [i for i in range(len(w)) if i not in ids]
    assert torch.equal(w[others], w1[others])
    # tied: the output layer reads the same spread rows
    assert torch.equal(spread.get_output_embeddings().weight[ids], w1[ids])
    stories = (out / "stories.txt").read_text().split("<|endoftext|>")
    assert len(stories) == 30 and all(len(stage.FAMILY.findall(s)) >= 2 for s in stories)
    assert "python train.py --model" in capsys.readouterr().out
    # step 2 of the recipe is a plain train.py run on them, and it counts the long run's steps
    train.main(["--model", str(out), "--dataset", str(out / "stories.txt"), "--max_steps", "2",
                "--batch_size", "2", "--warmup", "1", "--out_dir", str(tmp_path / "next")])
    after = json.loads((tmp_path / "next" / "metrics.json").read_text())
    assert after["steps_before"] == metrics["steps"] + metrics.get("steps_before", 0)


def test_the_stage_refuses_its_own_folder_and_other_data(tmp_path):
    with pytest.raises(SystemExit, match="choose another"):
        stage.main(["--ckpt", SHIPPED, "--out_dir", SHIPPED])
    with pytest.raises(SystemExit, match="--stories must be at least 1"):
        stage.main(["--ckpt", SHIPPED, "--out_dir", str(tmp_path / "y"), "--stories", "0"])
    other = tmp_path / "other"
    model, tok, metrics = load(SHIPPED)
    model.save_pretrained(other)
    tok.save_pretrained(other)
    (other / "metrics.json").write_text(json.dumps(dict(metrics, dataset="book.txt")))
    with pytest.raises(SystemExit, match="not a story-world model"):
        stage.main(["--ckpt", str(other), "--out_dir", str(tmp_path / "x")])
