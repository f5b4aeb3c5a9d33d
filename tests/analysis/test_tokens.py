"""Token kinds from decoded token text."""

import pytest
import torch

from coe.analysis.tokens import KINDS, TokenKind, classify_token, token_kinds


@pytest.mark.parametrize(
    "text, kind",
    [
        ("12", TokenKind.DIGITS),
        (" 1,000", TokenKind.DIGITS),
        ("2.5", TokenKind.DIGITS),
        (" +", TokenKind.OPERATOR),
        ("=", TokenKind.OPERATOR),
        ("=<<", TokenKind.OPERATOR),
        ("*", TokenKind.OPERATOR),
        (" seven", TokenKind.NUMBER_WORD),
        ("Twelve", TokenKind.NUMBER_WORD),
        (" half", TokenKind.NUMBER_WORD),
        (" hundreds", TokenKind.NUMBER_WORD),
        (" apples", TokenKind.WORD),
        ("Question", TokenKind.WORD),
        (".", TokenKind.PUNCTUATION),
        ("<<", TokenKind.PUNCTUATION),
        ("####", TokenKind.PUNCTUATION),
        ("?\n", TokenKind.PUNCTUATION),
        ("$", TokenKind.PUNCTUATION),
        (" ", TokenKind.WHITESPACE),
        ("\n\n", TokenKind.WHITESPACE),
        ("", TokenKind.WHITESPACE),
        ("12th", TokenKind.OTHER),
        ("<|endoftext|>", TokenKind.OTHER),
        ("\ufffd", TokenKind.OTHER),
        (".5", TokenKind.DIGITS),
        (",", TokenKind.PUNCTUATION),
    ],
)
def test_classify_token(text, kind):
    assert classify_token(text) == kind


class FakeTokenizer:
    """Decodes ids from a fixed table, and counts how often it is asked."""

    def __init__(self, table):
        self.table = table
        self.calls = 0

    def batch_decode(self, sequences):
        self.calls += 1
        return ["".join(self.table[i] for i in seq) for seq in sequences]


def test_token_kinds_decode_each_id_once():
    tokenizer = FakeTokenizer({0: " 3", 1: " +", 2: " apples", 3: "\n"})
    kinds = token_kinds(torch.tensor([[0, 1, 0], [2, 3, -1]]), tokenizer)
    names = [[KINDS[k] for k in row] for row in kinds.tolist()]
    assert names == [
        [TokenKind.DIGITS, TokenKind.OPERATOR, TokenKind.DIGITS],
        [TokenKind.WORD, TokenKind.WHITESPACE, TokenKind.OTHER],
    ]  # -1: a forward without ids
    assert tokenizer.calls == 1
