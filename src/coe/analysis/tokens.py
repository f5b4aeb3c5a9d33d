"""Kinds of tokens (digits, operators, number words, other words, punctuation, whitespace), from the decoded
text of each token, for asking which experts each kind goes to."""

from __future__ import annotations

from enum import StrEnum

import torch


class TokenKind(StrEnum):
    DIGITS = "digits"
    OPERATOR = "operator"
    NUMBER_WORD = "number word"
    WORD = "other word"
    PUNCTUATION = "punctuation"
    WHITESPACE = "whitespace"
    OTHER = "other"  # mixed pieces ("12th", "$5"), special tokens, partial UTF-8 bytes


KINDS = list(TokenKind)

# Arithmetic only: "<" and ">" are left to punctuation because math corpora (GSM8K) use "<<a*b=c>>" as
# calculator markup, not as comparisons.
OPERATOR_CHARS = frozenset("+-*/=×÷^%")

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
_OTHERS = (
    "hundred thousand million billion half halves twice double triple dozen dozens quarter quarters"
).split()
NUMBER_WORDS = frozenset(
    _UNITS
    + _TENS
    + _ORDINALS
    + _OTHERS
    + [w + "s" for w in _UNITS + _TENS]
    + [w + "s" for w in ("hundred", "thousand", "million", "billion")]
)


def classify_token(text: str) -> TokenKind:
    """The kind of a token from its decoded text; leading and trailing whitespace is ignored unless the
    token is only whitespace. Digits may carry separators ("1,000", "2.5")."""
    s = text.strip()
    if not s:
        return TokenKind.WHITESPACE
    if any(c.isdigit() for c in s) and all(c.isdigit() or c in ",." for c in s):
        return TokenKind.DIGITS
    if s.isalpha():
        return TokenKind.NUMBER_WORD if s.lower() in NUMBER_WORDS else TokenKind.WORD
    if not any(c.isalnum() or c.isspace() for c in s) and "\ufffd" not in s:
        return TokenKind.OPERATOR if any(c in OPERATOR_CHARS for c in s) else TokenKind.PUNCTUATION
    return TokenKind.OTHER


def token_kinds(token_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """The kind of each token as an index into :data:`KINDS`: (T,) ids -> (T,) int64. Each distinct id is
    decoded once, on its own; ids < 0 (no token) are OTHER."""
    ids = token_ids.flatten().cpu()
    unique, inverse = ids.unique(return_inverse=True)
    texts = tokenizer.batch_decode([[int(i)] for i in unique.clamp_min(0)])
    kinds = torch.tensor(
        [
            KINDS.index(classify_token(t)) if i >= 0 else KINDS.index(TokenKind.OTHER)
            for i, t in zip(unique.tolist(), texts, strict=True)
        ],
        dtype=torch.long,
    )
    return kinds[inverse].view(token_ids.shape)
