"""CoEForCausalLM against transformers' own DeepseekV2ForCausalLM, generation, save / load, outputs."""

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, DeepseekV2Config, DeepseekV2ForCausalLM

from coe import CoEConfig, CoEForCausalLM
from coe.checks import FileError
from coe.modeling import CACHE_FIELD
from coe.train.distributed import take_routing_counts
from tests.conftest import rel_err

YARN = dict(
    rope_type="yarn",
    rope_theta=10000.0,
    factor=4.0,
    original_max_position_embeddings=64,
    beta_fast=32,
    beta_slow=1,
    mscale=0.707,
    mscale_all_dim=1.0,
)


def small_config(**overrides) -> CoEConfig:
    fields = dict(
        vocab_size=97,
        hidden_size=48,
        num_hidden_layers=3,
        intermediate_size=80,
        num_attention_heads=4,
        kv_lora_rank=24,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=12,
        n_routed_experts=9,
        n_shared_experts=2,
        num_experts_per_tok=3,
        moe_intermediate_size=20,
        max_position_embeddings=256,
        initializer_range=0.2,
    )
    return CoEConfig(**{**fields, **overrides})


def deepseek_twin(config: CoEConfig, model: CoEForCausalLM) -> DeepseekV2ForCausalLM:
    """transformers' DeepseekV2 with the same shapes and weights (its router is `mlp.gate`)."""
    ds_config = DeepseekV2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        q_lora_rank=config.q_lora_rank,
        kv_lora_rank=config.kv_lora_rank,
        qk_nope_head_dim=config.qk_nope_head_dim,
        qk_rope_head_dim=config.qk_rope_head_dim,
        v_head_dim=config.v_head_dim,
        n_routed_experts=config.n_routed_experts,
        n_shared_experts=config.n_shared_experts,
        num_experts_per_tok=config.num_experts_per_tok,
        moe_intermediate_size=config.moe_intermediate_size,
        first_k_dense_replace=config.first_k_dense_replace,
        routed_scaling_factor=config.routed_scaling_factor,
        max_position_embeddings=config.max_position_embeddings,
        rope_parameters=dict(config.rope_parameters),
        rms_norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        topk_method="greedy",
        norm_topk_prob=False,
        attn_implementation="eager",
    )
    twin = DeepseekV2ForCausalLM(ds_config).eval()
    state = {k.replace("mlp.routers.0.", "mlp.gate."): v for k, v in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return twin


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(q_lora_rank=16),
        dict(rope_parameters=dict(YARN)),
        dict(first_k_dense_replace=1, routed_scaling_factor=2.5),
        dict(q_lora_rank=16, rope_parameters=dict(YARN), first_k_dense_replace=2, tie_word_embeddings=True),
    ],
    ids=["plain", "q_lora", "yarn", "dense_first", "all"],
)
@pytest.mark.parametrize("backend", ["grouped", "loop"])
def test_standard_residual_c1_equals_transformers_deepseek_v2(overrides, backend):
    config = small_config(
        inner_iter=1, inner_residual=False, outer_residual=True, expert_backend=backend, **overrides
    )
    model = CoEForCausalLM(config).eval()
    twin = deepseek_twin(config, model)
    ids = torch.randint(0, config.vocab_size, (3, 40))
    with torch.no_grad():
        ours, theirs = model(ids).logits, twin(ids).logits
    assert rel_err(ours, theirs) < 1e-5


def test_coe_defaults_differ_from_standard_residual():
    """The reference's default (inner residual, no outer residual) really is a different model."""
    config = small_config(inner_iter=1, inner_residual=False, outer_residual=True)
    model = CoEForCausalLM(config).eval()
    other = CoEForCausalLM(small_config(inner_iter=1)).eval()
    other.load_state_dict(model.state_dict())
    ids = torch.randint(0, config.vocab_size, (2, 12))
    with torch.no_grad():
        assert rel_err(other(ids).logits, model(ids).logits) > 1e-2


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_generate_equals_cacheless_greedy(attention):
    config = small_config(
        inner_iter=2, attention=attention, num_key_value_heads=2, rope_parameters=dict(YARN)
    )
    model = CoEForCausalLM(config).eval()
    prompt = torch.randint(0, config.vocab_size, (2, 7))
    out = model.generate(prompt, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    ids = prompt
    with torch.no_grad():
        for _ in range(12):
            nxt = model(ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    assert torch.equal(out, ids)


def test_cached_logits_equal_full_forward():
    config = small_config(inner_iter=2)
    model = CoEForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 16))
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        first = model(ids[:, :10], use_cache=True)
        rest = model(ids[:, 10:], cache=getattr(first, CACHE_FIELD), use_cache=True)
    assert rel_err(torch.cat([first.logits, rest.logits], 1), full) < 1e-5


def test_a_plain_forward_returns_a_cache_only_when_asked():
    model = CoEForCausalLM(small_config()).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, 6))
    with torch.no_grad():
        assert getattr(model(ids), CACHE_FIELD) is None
        assert getattr(model(ids, use_cache=False), CACHE_FIELD) is None
        assert getattr(model(ids, use_cache=True), CACHE_FIELD).get_seq_length() == 6


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_a_4d_mask_gives_the_logits_of_the_2d_padding_mask(attention):
    """transformers' 4-D masks (here additive float, the eager convention) work without a cache too: a
    left-padded row's real tokens get the logits of the 2-D mask."""
    model = CoEForCausalLM(small_config(attention=attention, num_key_value_heads=2)).eval().double()
    ids = torch.randint(1, model.config.vocab_size, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, :3] = 0
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    allowed = torch.ones(8, 8, dtype=torch.bool).tril()[None] & mask.bool()[:, None, :]  # (B, S, S)
    additive = torch.zeros(2, 1, 8, 8, dtype=torch.float64).masked_fill(~allowed[:, None], -torch.inf)
    with torch.no_grad():
        expected = model(ids, attention_mask=mask, position_ids=positions).logits
        out = model(ids, attention_mask=additive, position_ids=positions).logits
    assert rel_err(out[0], expected[0]) < 1e-10
    assert rel_err(out[1, 3:], expected[1, 3:]) < 1e-10


def test_the_cache_is_never_silently_dropped():
    """forward() takes the cache as ``cache``; the pre-5.2x name, which generate() of those transformers
    versions passes, is taken there and refused from 5.2x on (never ignored like other extra arguments)."""
    config = small_config()
    model = CoEForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, 6))
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        cache = getattr(model(ids[:, :4], use_cache=True), CACHE_FIELD)
        if CACHE_FIELD == "cache":
            with pytest.raises(TypeError, match="as `cache`"):
                model(ids[:, 4:], past_key_values=cache, use_cache=True)
        else:
            rest = model(ids[:, 4:], past_key_values=cache, use_cache=True).logits
            assert rel_err(rest, full[:, 4:]) < 1e-5


def test_left_padding_matches_unpadded():
    config = small_config(inner_iter=2)
    model = CoEForCausalLM(config).eval()
    ids = torch.randint(1, config.vocab_size, (1, 9))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 9, dtype=torch.long)], 1)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        ref = model(ids).logits
        out = model(padded, attention_mask=mask, position_ids=positions).logits[:, 3:]
    assert rel_err(out, ref) < 1e-5


def test_save_and_auto_load_round_trip(tmp_path):
    config = small_config(inner_iter=2, router_bias_update_rate=0.01)
    model = CoEForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 11))
    with torch.no_grad():
        unbiased = model(ids).logits
        # A different bias per expert changes which experts are chosen (a bias equal for all would not).
        biases = [
            router.expert_bias.copy_(2 * torch.randn_like(router.expert_bias))
            for chain in model.chains()
            for router in chain.routers
        ]
        assert not torch.allclose(model(ids).logits, unbiased)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CoEForCausalLM)
    assert not take_routing_counts(loaded).any()
    loaded_biases = [router.expert_bias for chain in loaded.chains() for router in chain.routers]
    assert len(loaded_biases) == len(biases) and all(map(torch.equal, loaded_biases, biases))
    # The weights are equal bit for bit; the logits to rounding: loaded tensors sit at other alignments (the
    # safetensors memory map), which can change the CPU kernels' order of summation.
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert rel_err(loaded(ids).logits, model(ids).logits) < 1e-5


def test_router_outputs_layer_major_and_losses():
    config = small_config(inner_iter=2, first_k_dense_replace=1, router_z_loss_coef=0.01)
    model = CoEForCausalLM(config).train()
    ids = torch.randint(0, config.vocab_size, (2, 10))
    out = model(ids, labels=ids, output_router_logits=True)
    R = 2 * 2  # two MoE layers, two iterations
    assert len(out.router_logits) == len(out.selected_experts) == R
    assert all(s.shape == (20, config.num_experts_per_tok) for s in out.selected_experts)
    assert all(r.shape == (20, config.n_routed_experts) for r in out.router_logits)
    # Entry 1 is (first MoE layer, iteration 2): its experts follow from its own logits.
    assert torch.equal(
        out.selected_experts[1].sort(-1).values,
        out.router_logits[1].topk(config.num_experts_per_tok).indices.sort(-1).values,
    )
    assert out.balance_losses.shape == out.z_losses.shape == (R,)
    expected_aux = config.aux_loss_alpha * out.balance_losses.sum() + 0.01 * out.z_losses.sum()
    assert torch.allclose(out.aux_loss, expected_aux)
    assert torch.allclose(out.loss, out.lm_loss + out.aux_loss)
    counts = take_routing_counts(model)
    assert counts.shape == (2, 2, config.n_routed_experts)
    assert torch.all(counts.sum(-1) == 2 * 10 * config.num_experts_per_tok)
    for i, selected in enumerate(out.selected_experts):
        layer, t = divmod(i, 2)
        manual = torch.zeros(config.n_routed_experts).scatter_add_(
            0, selected.flatten(), torch.ones(selected.numel())
        )
        assert torch.equal(counts[layer, t], manual)
    model.eval()
    assert model(ids, labels=ids).aux_loss is None


def test_routing_counts_grow_in_training_only_and_are_taken_once():
    config = small_config(inner_iter=2, router_bias_update_rate=0.1)
    model = CoEForCausalLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 10))
    with torch.no_grad():
        model(ids)
        model.generate(ids[:, :4], max_new_tokens=3, do_sample=False)
    assert not take_routing_counts(model).any()  # evaluation and generation are not training load

    model.train()
    for _ in range(2):
        model(ids)
    counts = take_routing_counts(model)
    assert counts.shape == (3, 2, config.n_routed_experts)
    assert torch.all(counts.sum(-1) == 2 * 2 * 10 * config.num_experts_per_tok)  # both forwards
    assert not take_routing_counts(model).any()  # taken: the next take starts from zero

    model.update_router_biases(counts)
    for chain, layer_counts in zip(model.chains(), counts, strict=True):
        for router, load in zip(chain.routers, layer_counts, strict=True):
            torch.testing.assert_close(router.expert_bias, 0.1 * torch.sign(load.mean() - load))


def test_aux_loss_has_gradient_on_routers():
    config = small_config(inner_iter=2)
    model = CoEForCausalLM(config).train()
    ids = torch.randint(0, config.vocab_size, (2, 10))
    model(ids).aux_loss.backward()
    for chain in model.chains():
        for router in chain.routers:
            assert router.weight.grad is not None and router.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("tied", [False, True])
def test_chunked_loss_equals_full_logits_loss_and_gradients(tied):
    config = small_config(inner_iter=2, tie_word_embeddings=tied)
    model = CoEForCausalLM(config).train()
    ids = torch.randint(0, config.vocab_size, (3, 17))
    labels = ids.clone()
    labels[0, :5] = -100
    full = model(ids, labels=labels)
    full.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    chunked = model(ids, labels=labels, return_logits=False)
    assert chunked.logits is None
    chunked.loss.backward()
    assert rel_err(chunked.lm_loss, full.lm_loss) < 1e-6
    for name, p in model.named_parameters():
        assert rel_err(p.grad, grads[name]) < 1e-5, name


@pytest.mark.parametrize("layers", [3, 8])
def test_pad_token_is_an_ordinary_trained_token(layers):
    # The trainer pads with EOS, a token of every document. A frozen zero embedding row for it kept a sequence
    # that starts with EOS at an all-zero hidden state (attention to itself, experts and norms of zero are
    # zero); each RMSNorm's backward then multiplied the gradient by 1/sqrt(eps), which overflowed with 8
    # layers.
    torch.manual_seed(0)
    config = small_config(num_hidden_layers=layers, pad_token_id=0, eos_token_id=0, initializer_range=0.02)
    model = CoEForCausalLM(config)
    assert model.model.embed_tokens.weight[0].abs().max() > 0
    ids = torch.randint(1, config.vocab_size, (4, 32))
    ids[:, 0] = 0
    out = model(ids, labels=ids, output_hidden_states=True)
    assert all(h[:, 0].abs().amax() > 0 for h in out.hidden_states)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(torch.nn.utils.get_total_norm(grads))
    assert model.model.embed_tokens.weight.grad[0].abs().max() > 0


# Batches of documents: padded rows and rows of several documents (coe.data.packing).

EOS = 0


def documents(lengths: list[int], vocab_size: int) -> list[torch.Tensor]:
    return [torch.randint(1, vocab_size, (n,)) for n in lengths]


def padded_row(doc: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, T) ids right-padded with EOS, and the attention mask."""
    ids = torch.full((1, T), EOS)
    ids[0, : len(doc)] = doc
    return ids, (torch.arange(T) < len(doc)).long().unsqueeze(0)


@pytest.mark.parametrize("attention", ["mla", "gqa"])
@pytest.mark.parametrize("training", [False, True])
def test_padded_row_gives_real_tokens_the_logits_of_the_document_alone(attention, training):
    config = small_config(attention=attention, num_key_value_heads=2, inner_iter=2)
    model = CoEForCausalLM(config).train(training).double()  # float64: equal to rounding, tightly
    doc = documents([7], config.vocab_size)[0]
    ids, mask = padded_row(doc, 12)
    alone = model(doc[None], use_cache=False).logits
    padded = model(ids, attention_mask=mask, use_cache=False).logits
    assert rel_err(padded[:, :7], alone) < 1e-10


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_document_masked_row_gives_each_document_its_logits_alone(attention):
    config = small_config(attention=attention, num_key_value_heads=2, inner_iter=2)
    model = CoEForCausalLM(config).eval().double()
    lengths = [[5, 7, 4], [9, 7]]
    docs = [documents(row, config.vocab_size) for row in lengths]
    ids = torch.stack([torch.cat(row) for row in docs])  # (2, 16)
    document_ids = torch.stack([torch.arange(len(r)).repeat_interleave(torch.tensor(r)) for r in lengths])
    with torch.no_grad():
        packed = model(ids, document_ids=document_ids, use_cache=False).logits
        for b, row in enumerate(docs):
            start = 0
            for doc in row:
                alone = model(doc[None], use_cache=False).logits
                assert rel_err(packed[b : b + 1, start : start + len(doc)], alone) < 1e-10
                start += len(doc)
        # Without the document ids, attention crosses the documents: the later ones see the earlier ones.
        crossing = model(ids, use_cache=False).logits
    assert rel_err(crossing[:, 5:], packed[:, 5:]) > 1e-3
    with pytest.raises(ValueError, match="without a key/value cache"):
        model(ids, document_ids=document_ids, use_cache=True)


def test_padded_and_document_batches_give_the_same_per_document_loss():
    """The sequences coe.data.packing makes of one token stream: each document's summed loss is the same in
    its padded row as among the documents of a packed row."""
    from coe.data.packing import make_sequences

    config = small_config(inner_iter=2)
    model = CoEForCausalLM(config).train().double()
    docs = documents([5, 7, 4], config.vocab_size)
    stream = torch.cat([torch.cat([d, torch.tensor([EOS])]) for d in docs]).numpy()  # 19 tokens
    padded = make_sequences(stream, 8, packing="padded", eos_token_id=EOS).batch([0, 1, 2])
    packed = make_sequences(stream, 18, packing="documents", eos_token_id=EOS).batch([0])

    def token_losses(batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs, use_cache=False).logits
        labels = batch["labels"]
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none")
        return loss.view(labels.shape), labels != -100

    row_losses, row_counted = token_losses(padded)
    per_row = (row_losses * row_counted).sum(1)  # (3,)
    losses, counted = token_losses(packed)
    starts = [0, 6, 14]  # each document and its EOS in the packed row
    per_doc = torch.stack(
        [(losses * counted)[0, s : s + len(d) + 1].sum() for s, d in zip(starts, docs, strict=True)]
    )
    assert [int(row_counted[i].sum()) for i in range(3)] == [len(d) for d in docs]  # n - 1 tokens and EOS
    assert rel_err(per_doc, per_row) < 1e-10


def test_padding_takes_no_part_in_routing_unless_asked():
    from coe.nn.losses import sequence_balance_loss

    config = small_config(inner_iter=2, router_z_loss_coef=0.01)
    model = CoEForCausalLM(config).train()
    K, T = config.num_experts_per_tok, 12
    doc = documents([7], config.vocab_size)[0]
    ids, mask = padded_row(doc, T)
    alone = model(doc[None])
    counts_alone = take_routing_counts(model)
    padded = model(ids, attention_mask=mask)
    counts_padded = take_routing_counts(model)
    assert torch.equal(counts_padded, counts_alone) and torch.all(counts_alone.sum(-1) == 7 * K)
    torch.testing.assert_close(padded.balance_losses, alone.balance_losses)
    torch.testing.assert_close(padded.z_losses, alone.z_losses)

    # routing_mask of ones: the padding counts like text, as in the reference's sequence-wise balance loss.
    reference = model(ids, attention_mask=mask, routing_mask=torch.ones(1, T), output_router_logits=True)
    counts = take_routing_counts(model)
    assert torch.all(counts.sum(-1) == T * K) and not torch.equal(counts, counts_alone)
    routings = zip(reference.router_logits, reference.selected_experts, strict=True)
    for r, (logits, chosen) in enumerate(routings):
        want = sequence_balance_loss(scores=logits.softmax(-1), topk_idx=chosen, batch_size=1)
        torch.testing.assert_close(reference.balance_losses[r], want)
    assert not torch.allclose(reference.balance_losses, alone.balance_losses)
    # The padding attends to nothing either way: the real tokens' loss is the same.
    torch.testing.assert_close(reference.logits[:, :7], alone.logits)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "misshapen"])
def test_loading_is_strict_and_names_the_weight(tmp_path, damage):
    from safetensors.torch import load_file, save_file

    model = CoEForCausalLM(small_config())
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    key = "model.layers.0.input_layernorm.weight"
    if damage == "missing":
        del tensors[key]
    elif damage == "unexpected":
        key = "model.layers.0.extra"
        tensors[key] = torch.zeros(2)
    else:
        tensors[key] = torch.zeros(3)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(FileError, match=rf"{key}: .*(missing|not in the model|shape \(3,\))"):
        AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded, info = CoEForCausalLM.from_pretrained(tmp_path, strict=False, output_loading_info=True)
    assert isinstance(loaded, CoEForCausalLM) and any(key in str(v) for v in info.values())


def test_a_directory_without_config_json_is_not_a_checkpoint(tmp_path):
    CoEForCausalLM(small_config()).save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileError, match=r"no config\.json"):
        CoEForCausalLM.from_pretrained(tmp_path)


def test_a_sharded_index_may_not_point_outside_the_checkpoint(tmp_path):
    import json

    CoEForCausalLM(small_config()).save_pretrained(tmp_path / "ckpt", max_shard_size="20KB")
    index = tmp_path / "ckpt" / "model.safetensors.index.json"
    content = json.loads(index.read_text())
    first = next(iter(content["weight_map"]))
    (tmp_path / "outside.safetensors").write_bytes(
        (tmp_path / "ckpt" / content["weight_map"][first]).read_bytes()
    )
    content["weight_map"][first] = "../outside.safetensors"
    index.write_text(json.dumps(content))
    with pytest.raises(FileError, match="lies outside the checkpoint directory"):
        CoEForCausalLM.from_pretrained(tmp_path / "ckpt")


def test_gradient_checkpointing_keeps_the_router_loss_gradients_or_refuses():
    """Non-reentrant checkpointing (transformers' default) gives the routers the gradients of no
    checkpointing, the aux loss's included; reentrant checkpointing, which would silently drop them, is
    refused."""
    config = small_config(inner_iter=2, router_z_loss_coef=0.01)
    ids = torch.randint(0, config.vocab_size, (2, 10))
    grads = []
    for kwargs in (None, {"use_reentrant": False}):
        torch.manual_seed(0)
        model = CoEForCausalLM(config).train()
        if kwargs is not None:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
            assert model.is_gradient_checkpointing
        out = model(ids, labels=ids)
        assert out.aux_loss.requires_grad
        out.aux_loss.backward(retain_graph=True)
        aux = [r.weight.grad.clone() for chain in model.chains() for r in chain.routers]
        model.zero_grad()
        out.loss.backward()
        grads.append((aux, {n: p.grad for n, p in model.named_parameters()}))
    (aux_plain, plain), (aux_ckpt, ckpt) = grads
    assert all(g.abs().sum() > 0 for g in aux_plain)
    for a, b in zip(aux_plain, aux_ckpt, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-8)
    for name, g in plain.items():
        torch.testing.assert_close(ckpt[name], g, rtol=1e-5, atol=1e-8, msg=name)
    model = CoEForCausalLM(config)
    with pytest.raises(ValueError, match="use_reentrant=True would drop the router losses"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    assert not model.is_gradient_checkpointing


def test_unsupported_attention_options_raise():
    config = small_config()
    config._attn_implementation = "eager"
    with pytest.raises(
        ValueError, match="attn_implementation='eager' is not supported; supported: None, 'sdpa'"
    ):
        CoEForCausalLM(config)
    model = CoEForCausalLM(small_config()).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, 5))
    with pytest.raises(ValueError, match="output_attentions=True is not supported"):
        model(ids, output_attentions=True)
    assert model(ids, output_attentions=False).logits.shape == (1, 5, model.config.vocab_size)


def test_a_seed_gives_the_weights_it_always_gave():
    """Initialisation is part of a run's reproducibility: seed 0's tiny CoE-2(4/64) has the weights it had
    before routers became nn.Linear modules (sums of squares recorded then). A module whose init draws extra
    random numbers (the generic Linear init before the router's own) shifts every weight drawn after it."""
    torch.manual_seed(0)
    state = CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", size="tiny")).state_dict()
    recorded = {
        "model.embed_tokens.weight": 6.53090621042244,
        "model.layers.1.mlp.routers.0.weight": 0.8054451082360659,
        "model.layers.1.mlp.routers.1.weight": 0.8473985429564458,
        "model.layers.1.mlp.experts.gate_up_proj": 25.83004751818161,
        "model.layers.1.self_attn.o_proj.weight": 0.228371007330063,
    }
    for name, value in recorded.items():
        assert state[name].double().square().sum().item() == pytest.approx(value, rel=1e-12), name
