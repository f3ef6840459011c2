"""The agreement probe, on models whose answers are known: one that knows nothing, one that always
copies."""
import itertools
from types import SimpleNamespace

import pytest
import torch

from extra import storyworld
from extra.loading import build_tokenizer
from extra.probe_agreement import attention_to_mentions, embedding_cosine, ids_of, probe


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(itertools.islice(storyworld.train_stories(), 2000))


class Uniform(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


class Oracle(torch.nn.Module):
    """Knows the story it is probed on: puts all its mass on the true token at every position."""
    def __init__(self, vocab, truth):
        super().__init__()
        self.vocab, self.truth = vocab, truth

    def forward(self, input_ids):
        filled = torch.where(input_ids == self.truth.mask_id, self.truth.ids[: input_ids.shape[1]],
                             input_ids)
        return SimpleNamespace(
            logits=torch.nn.functional.one_hot(filled, self.vocab).float() * 50)


def test_a_model_that_knows_nothing_scores_one_over_the_vocabulary(tok):
    result = probe(Uniform(len(tok)), tok, n_stories=40)
    n_names = len(ids_of(tok, storyworld.ALL_NAMES))
    right, cls, n = result["name"]
    assert (n > 3 and right == pytest.approx(1 / len(tok))
            and cls == pytest.approx(n_names / len(tok)))
    assert result["pronoun"][0] == pytest.approx(1 / len(tok))
    n_animals = len(ids_of(tok, storyworld.BUDDIES))
    right, cls, n = result["other_animal"]  # 40 stories have some rescues of an animal in need
    assert (n > 3 and right == pytest.approx(1 / len(tok))
            and cls == pytest.approx(n_animals / len(tok)))


def test_a_model_that_copies_scores_one(tok):
    text = storyworld.valid_stories(1)[0]
    ids = torch.tensor([tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
                       + [tok.eos_token_id])
    result = probe(Oracle(len(tok), SimpleNamespace(ids=ids, mask_id=tok.mask_token_id)), tok,
                   n_stories=1)
    assert result["name"][2] >= 1 and result["pronoun"][2] >= 1
    for right, cls, n in result.values():
        assert n == 0 or (right == pytest.approx(1.0) and cls == pytest.approx(1.0))


class CausalOracle(torch.nn.Module):
    """A GPT that knows the story: the logits at position j put all the mass on token j + 1."""
    def __init__(self, vocab, ids):
        super().__init__()
        self.vocab, self.ids = vocab, ids

    def forward(self, input_ids):
        following = torch.cat([self.ids[1:], self.ids[:1]])[: input_ids.shape[1]]
        return SimpleNamespace(
            logits=torch.nn.functional.one_hot(following, self.vocab).float()[None] * 50)


def test_read_from_the_left_the_first_mention_of_each_word_is_not_scored(tok):
    text = storyworld.valid_stories(1)[0]
    ids = torch.tensor([tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
                       + [tok.eos_token_id])
    every = probe(Uniform(len(tok)), tok, n_stories=1)  # the same story, every mention
    causal = probe(CausalOracle(len(tok), ids), tok, n_stories=1, causal=True)
    for kind, (right, cls, n) in causal.items():
        assert n == 0 or (right == pytest.approx(1.0) and cls == pytest.approx(1.0)), kind
    names = set(ids.tolist()) & ids_of(tok, storyworld.ALL_NAMES)  # the hero's name's tokens
    assert names and causal["name"][2] == every["name"][2] - len(names)


def test_embedding_cosine_is_one_for_words_with_one_embedding_and_zero_for_orthogonal_ones(tok):
    class Embedded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(len(tok), len(tok))
            weight = torch.eye(len(tok))  # every token its own direction: cosine 0 between any two
            for w in storyworld.BUDDIES:  # ... except the other animals, which share one vector
                weight[tok.convert_tokens_to_ids("Ġ" + w)] = weight[0] * 3
            self.emb.weight.data = weight

        def get_input_embeddings(self):
            return self.emb

    cosine = embedding_cosine(Embedded(), tok)
    assert cosine["other_animal"] == pytest.approx(1.0)
    assert cosine["name"] == pytest.approx(0.0) and cosine["snack"] == pytest.approx(0.0)


class Attending(torch.nn.Module):
    """Two layers of two heads. Layer 1 head 1 looks only at the tokens equal to the masked place's
    true token (a copying head); every other head looks at every position alike."""
    def __init__(self, ids, mask_id):
        super().__init__()
        self.ids, self.mask_id = ids, mask_id

    def set_attn_implementation(self, name):
        self.implementation = name

    def forward(self, input_ids, output_attentions=False):
        L = input_ids.shape[1]
        uniform = torch.full((L, L), 1 / L)
        copying = (self.ids[None, :L] == self.ids[:L, None]).float()  # (query, key): same token
        copying = copying * (input_ids[0] != self.mask_id)[None]        # not the masked place
        copying = copying / copying.sum(-1, keepdim=True).clamp(min=1)
        heads = [torch.stack([copying, uniform]), torch.stack([uniform, uniform])]
        return SimpleNamespace(attentions=tuple(h[None] for h in heads))


def test_attention_to_mentions_finds_the_copying_head_and_the_share_of_a_uniform_one(tok):
    text = storyworld.valid_stories(1)[0]
    ids = torch.tensor([tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
                       + [tok.eos_token_id])
    model = Attending(ids, tok.mask_token_id)
    heads = attention_to_mentions(model, tok, n_stories=1)
    assert model.implementation == "eager" and "name" in heads
    names = ids_of(tok, storyworld.ALL_NAMES)
    seen = [(ids == i).sum().item() - 1 for i in ids.tolist() if i in names]  # other mentions
    seen = [n for n in seen if n > 0]  # a mention with no other one is not probed
    uniform_share = sum(seen) / len(seen) / len(ids)
    for kind, share in heads.items():
        assert share.shape == (2, 2) and share[0, 0] == pytest.approx(1.0), kind
        assert share[1, 1] < 0.2, kind  # a head that looks everywhere puts (mentions - 1) / L
    assert heads["name"][0, 1] == pytest.approx(uniform_share)
