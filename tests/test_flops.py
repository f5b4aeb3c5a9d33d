"""Parameter and FLOP accounting against the anchors' numbers and a hand count."""

from coe import CoEConfig
from coe.flops import active_parameters, total_parameters, train_flops_per_token


def test_paper_flops_per_token_match_the_anchors():
    # The project's measured anchors: about 1.22 GFLOP for moe-8-64 and 1.27 GFLOP for coe-2-4-64 at
    # sequence 512
    assert round(train_flops_per_token(CoEConfig.from_preset("moe-8-64"), 512) / 1e9, 2) == 1.22
    assert round(train_flops_per_token(CoEConfig.from_preset("coe-2-4-64"), 512) / 1e9, 2) == 1.27


def test_active_parameters_hand_count():
    cfg = CoEConfig.from_preset("coe-2-4-64")
    D, F, N = 1024, 704, 63
    attention = D * 8 * 192 + D * (512 + 64) + 512 * 8 * 256 + 8 * 128 * D
    per_layer = attention + 2 * D + 512 + 2 * N * D + 2 * (4 + 1) * 3 * D * F  # norms, 2 routers, experts
    assert active_parameters(cfg) == 4 * per_layer + D + 102400 * D  # final norm, LM head
    assert total_parameters(CoEConfig.from_preset("moe-8-64")) == 780_672_000
