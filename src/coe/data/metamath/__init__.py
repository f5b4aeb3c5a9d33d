"""A varied, MetaMathQA-like generator of math word problems with worked, checked solutions.

MetaMathQA (Yu et al. 2023) rewrote GSM8K and MATH problems in four forms; this package builds problems of
GSM8K's kinds and MATH's topics from templates and writes each in one of those forms (``forms``). Every step
is computed exactly and shown with GSM8K's calculator annotation; the last line is ``#### <answer>``.

Layout: ``engine`` (quantities, steps, the unknown of the backward forms), ``words`` (people, lists),
``forms`` (the four forms), ``generator`` (families, splits, documents), and one module per group of topics:
``everyday`` (GSM8K's kinds), ``money``, ``measures``, ``rates``, ``numbers``, ``algebra``, ``chance``.
"""

from coe.data.metamath.forms import FORM_SHARES, FORMS
from coe.data.metamath.generator import (
    FAMILIES,
    MetaMathProblem,
    format_documents,
    generate,
    generate_documents,
    generate_problem,
    iter_problems,
)

__all__ = [
    "FAMILIES",
    "FORMS",
    "FORM_SHARES",
    "MetaMathProblem",
    "format_documents",
    "generate",
    "generate_documents",
    "generate_problem",
    "iter_problems",
]
