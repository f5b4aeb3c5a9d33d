"""The routing recorder against what the model returns with output_router_logits, across forwards, a token
cap, generation with a cache and activation checkpointing."""

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.analysis.recorder import RoutingRecorder, collect_routing
from coe.analysis.stats import token_entropy


def tiny_model(**overrides) -> CoEForCausalLM:
    fields = dict(
        vocab_size=61,
        hidden_size=32,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        intermediate_size=48,
        num_attention_heads=2,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=8,
        n_routed_experts=7,
        n_shared_experts=1,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        inner_iter=3,
        max_position_embeddings=64,
        initializer_range=0.3,
    )
    return CoEForCausalLM(CoEConfig(**{**fields, **overrides}))


def assert_record_matches(
    record, out, C: int, mine: slice = slice(None), theirs: slice = slice(None)
) -> None:
    """Tokens ``mine`` of record (L, C, T, ...) against tokens ``theirs`` of the model's R = L * C tuples
    (layer-major, iteration-minor)."""
    for i in range(record.num_layers):
        for t in range(C):
            r = i * C + t
            assert torch.equal(record.experts[i, t, mine], out.selected_experts[r][theirs])
            assert torch.equal(record.weights[i, t, mine], out.routing_weights[r][theirs].float())
            logits = out.router_logits[r][theirs].float()
            if record.logits is not None:
                assert torch.equal(record.logits[i, t, mine], logits)
            assert torch.allclose(record.entropy[i, t, mine], token_entropy(logits.softmax(-1)), atol=1e-6)
            assert torch.allclose(record.logsumexp[i, t, mine], logits.logsumexp(-1), atol=1e-6)


def test_record_equals_output_router_logits():
    model = tiny_model().eval()
    ids = torch.randint(0, 61, (2, 7))
    with torch.no_grad(), RoutingRecorder(model, keep_logits=True) as recorder:
        out = model(ids, output_router_logits=True, use_cache=False)
    record = recorder.record()
    assert record.layers == [1, 2]  # layer 0 is dense
    assert record.experts.shape == (2, 3, 14, 2) and record.logits.shape == (2, 3, 14, 7)
    assert record.num_iterations == 3 and record.top_k == 2 and record.num_experts == 7
    assert_record_matches(record, out, C=3)
    assert torch.equal(record.token_ids, ids.flatten())
    assert record.positions.tolist() == list(range(7)) * 2
    assert record.batch_index.tolist() == [0] * 7 + [1] * 7
    assert record.forward_index.tolist() == [0] * 14


def test_token_cap_spans_forwards_and_hooks_go_away():
    model = tiny_model(inner_iter=2).eval()
    batches = [torch.randint(0, 61, (2, 4)) for _ in range(3)]
    outs = []
    with torch.no_grad(), RoutingRecorder(model, max_tokens=10) as recorder:
        for ids in batches:
            outs.append(model(ids, output_router_logits=True, use_cache=False))
        assert recorder.full
    record = recorder.record()
    assert record.num_tokens == 10 and record.logits is None
    assert record.forward_index.tolist() == [0] * 8 + [1] * 2
    assert torch.equal(record.token_ids, torch.cat([batches[0].flatten(), batches[1].flatten()[:2]]))
    assert_record_matches(record, outs[0], C=2, mine=slice(0, 8))
    assert_record_matches(record, outs[1], C=2, mine=slice(8, 10), theirs=slice(0, 2))
    assert not any(chain._forward_hooks for chain in model.chains())
    assert not model.model._forward_hooks and not model.model._forward_pre_hooks


def test_generation_is_recorded_step_by_step():
    model = tiny_model().eval()
    prompt = torch.randint(0, 61, (1, 5))
    with RoutingRecorder(model) as recorder:
        out = model.generate(prompt, max_new_tokens=4, do_sample=False, min_new_tokens=4, pad_token_id=0)
    record = recorder.record()
    # the prompt in one forward, then one forward per new token but the last (which is never fed back)
    assert record.num_tokens == 5 + 3
    assert record.positions.tolist() == list(range(8))
    assert torch.equal(record.token_ids, out[0, :8])
    assert record.forward_index.tolist() == [0] * 5 + [1, 2, 3]


def test_activation_checkpointing_is_not_recorded_twice():
    model = tiny_model().train()
    model.activation_checkpointing_enable()
    ids = torch.randint(0, 61, (2, 6))
    # Without early stop, backward recomputes whole layers, the MoE blocks (and their hooks) included.
    with torch.utils.checkpoint.set_checkpoint_early_stop(False), RoutingRecorder(model) as recorder:
        out = model(ids, labels=ids, output_router_logits=True, use_cache=False)
        out.loss.backward()
    record = recorder.record()
    assert record.num_tokens == 12
    assert_record_matches(record, out, C=3)


def test_collect_routing_restores_the_mode_and_rejects_bad_input():
    model = tiny_model().train()
    record = collect_routing(model, [{"input_ids": torch.randint(0, 61, (3, 5))}], max_tokens=100)
    assert record.num_tokens == 15 and model.training
    with pytest.raises(ValueError, match="max_tokens=0"):
        RoutingRecorder(model, max_tokens=0)
    with pytest.raises(ValueError, match="no forward was recorded"):
        with RoutingRecorder(model) as recorder:
            pass
        recorder.record()
