import json
import random
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from coe.data import synthetic_math
from coe.data import tokenizer as tk
from coe.data.sources import TokenizerSpec, load_file
from coe.data.tokenizer import EOS_TOKEN, build_tokenizer, load_tokenizer, train_bpe


@pytest.fixture(scope="module")
def documents() -> list[str]:
    return [synthetic_math.format_problem(p) for p in synthetic_math.generate("train", 400)]


@pytest.fixture(scope="module")
def trained(documents: list[str]) -> PreTrainedTokenizerFast:
    return train_bpe(documents, vocab_size=1000)


def _random_text(rng: random.Random, n: int) -> str:
    # ASCII, accented letters, CJK, emoji and control characters: bytes the training text never had.
    alphabet = "abc XYZ 0123456789 .,;:!?\n\t$%<>|éüßçñ漢字かな😀🚀\x00\x7f"
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_trained_tokenizer_interface(trained: PreTrainedTokenizerFast) -> None:
    assert isinstance(trained, PreTrainedTokenizerFast)
    assert trained.eos_token == EOS_TOKEN and trained.pad_token == EOS_TOKEN
    assert trained.eos_token_id == trained.pad_token_id == trained.convert_tokens_to_ids(EOS_TOKEN)
    assert len(trained) == 1000  # 400 problems are plenty to reach the vocabulary size
    ids = trained.encode("Question: Maria has 3 apples.")
    assert trained.eos_token_id not in ids, "no special tokens are added to plain text"


def test_byte_level_round_trip(trained: PreTrainedTokenizerFast, documents: list[str]) -> None:
    rng = random.Random(0)
    for _ in range(200):
        text = _random_text(rng, rng.randint(0, 60))
        assert trained.decode(trained.encode(text)) == text
    n_tokens = 0
    for d in documents[:50]:
        ids = trained.encode(d)
        assert trained.decode(ids) == d
        n_tokens += len(ids)
    # Merges learnt from this text compress it well beyond one token per byte.
    assert sum(len(d) for d in documents[:50]) / n_tokens > 2.0


def test_matches_the_raw_tokenizers_file(trained: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    # The transformers wrapper encodes exactly as the underlying tokenizers model saved to disk does.
    trained.save_pretrained(tmp_path)
    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    rng = random.Random(1)
    for _ in range(50):
        text = _random_text(rng, 40)
        assert raw.encode(text).ids == trained.encode(text)


def test_training_on_megabytes_of_real_text() -> None:
    documents = load_file("builtin:gsm8k/train.parquet")
    assert sum(len(d) for d in documents) > 4_000_000
    tokenizer = train_bpe(documents, vocab_size=8192)
    assert len(tokenizer) == 8192
    sample = documents[::100]
    assert all(tokenizer.decode(tokenizer.encode(d)) == d for d in sample)
    assert sum(map(len, sample)) / sum(len(tokenizer.encode(d)) for d in sample) > 3.0  # merges that pay


def test_sample_documents_keeps_the_mix() -> None:
    docs = [f"a{i:04d}" for i in range(500)] + [f"b{i:04d}" for i in range(500)]  # 5 characters each
    sample = tk.sample_documents(docs, max_chars=1000)
    assert sum(len(d) for d in sample) <= 1000
    assert sum(d[0] == "a" for d in sample) == sum(d[0] == "b" for d in sample) == 100
    assert tk.sample_documents(docs, max_chars=10**9) == docs


def test_build_trains_saves_and_reuses(
    documents: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TokenizerSpec(vocab_size=600)
    first = build_tokenizer(spec, documents, tmp_path / "tok")
    files = {p.name for p in (tmp_path / "tok").iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", tk.TRAINING_FILE} <= files
    record = json.loads((tmp_path / "tok" / tk.TRAINING_FILE).read_text())
    assert record["vocab_size"] == 600 and record["documents"] == tk.fingerprint(documents)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a saved tokenizer must be reused, not retrained")

    monkeypatch.setattr(tk, "train_bpe", no_training)
    again = build_tokenizer(spec, documents, tmp_path / "tok")
    assert again.get_vocab() == first.get_vocab()
    assert again.eos_token_id == first.eos_token_id
    with pytest.raises(ValueError, match="vocab_size differ"):
        build_tokenizer(TokenizerSpec(vocab_size=700), documents, tmp_path / "tok")
    with pytest.raises(ValueError, match="documents differ"):
        build_tokenizer(spec, documents[:-1], tmp_path / "tok")


def test_build_loads_a_given_path(trained: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    trained.save_pretrained(tmp_path)
    loaded = build_tokenizer(TokenizerSpec(path=str(tmp_path / "tokenizer.json")), documents=[])
    assert loaded.get_vocab() == trained.get_vocab()


def test_load_from_file_and_directory(trained: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    trained.save_pretrained(tmp_path / "hf")
    for path in (tmp_path / "hf", tmp_path / "hf" / "tokenizer.json"):
        loaded = load_tokenizer(path)
        assert isinstance(loaded, PreTrainedTokenizerFast)
        assert loaded.eos_token == EOS_TOKEN and loaded.pad_token_id == loaded.eos_token_id
        assert loaded.encode("12 apples") == trained.encode("12 apples")
    # A directory with only tokenizer.json (no transformers config) loads too.
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "tokenizer.json").write_text((tmp_path / "hf" / "tokenizer.json").read_text())
    assert load_tokenizer(tmp_path / "bare").get_vocab() == trained.get_vocab()


def _foreign_tokenizer_file(path: Path, specials: list[str]) -> Path:
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        ["some words here", "and more words"], trainers.BpeTrainer(vocab_size=60, special_tokens=specials)
    )
    raw.save(str(path))
    return path


def test_load_finds_or_takes_the_end_of_text_token(tmp_path: Path) -> None:
    llama_like = load_tokenizer(_foreign_tokenizer_file(tmp_path / "a.json", ["<s>", "</s>"]))
    assert llama_like.eos_token == "</s>" and llama_like.pad_token == "</s>"
    explicit = load_tokenizer(tmp_path / "a.json", eos_token="<s>")
    assert explicit.eos_token == "<s>"
    with pytest.raises(ValueError, match="eos_token '<end>' is not in the vocabulary"):
        load_tokenizer(tmp_path / "a.json", eos_token="<end>")
    with pytest.raises(ValueError, match="no end-of-text token"):
        load_tokenizer(_foreign_tokenizer_file(tmp_path / "b.json", ["<mask>"]))
    with pytest.raises(FileNotFoundError, match="no tokenizer at"):
        load_tokenizer(tmp_path / "missing")


def test_spec_validation() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "data.tokenizer.vocab_size=256 is invalid: must be None or >= 257 (256 bytes + end of text)"
        ),
    ):
        TokenizerSpec(vocab_size=256)
    with pytest.raises(
        ValueError, match=re.escape("data.tokenizer.min_frequency=0 is invalid: must be >= 1")
    ):
        TokenizerSpec(min_frequency=0)
    with pytest.raises(
        ValueError, match=re.escape("data.tokenizer.max_train_chars=0 is invalid: must be >= 1")
    ):
        TokenizerSpec(max_train_chars=0)
    with pytest.raises(ValueError, match=re.escape("data.tokenizer.path=' ' is invalid: must be None or a")):
        TokenizerSpec(path=" ")
    with pytest.raises(ValueError, match=re.escape("data.tokenizer.vocab_size=256 is invalid")):
        train_bpe(["some text"], vocab_size=256)
    with pytest.raises(ValueError, match="no documents"):
        train_bpe([], vocab_size=300)


def test_vocab_size_none_is_the_models_and_is_refused(documents: list[str], tmp_path: Path) -> None:
    assert TokenizerSpec().vocab_size is None and TokenizerSpec(vocab_size=None).vocab_size is None
    with pytest.raises(
        ValueError, match=re.escape("data.tokenizer.vocab_size=None is invalid: must be set to train")
    ):
        build_tokenizer(TokenizerSpec(), documents, tmp_path / "tok")
    assert not (tmp_path / "tok").exists()
    # A given tokenizer needs no vocabulary size.
    train_bpe(documents, vocab_size=300).save_pretrained(tmp_path / "given")
    assert len(build_tokenizer(TokenizerSpec(path=str(tmp_path / "given")), documents=[])) == 300
