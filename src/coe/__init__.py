"""chain-of-experts: Chain-of-Experts and MoE language models for PyTorch."""

from transformers import AutoConfig, AutoModelForCausalLM

from coe.config import CoEConfig
from coe.modeling import CoECausalLMOutput, CoEForCausalLM, CoEModel
from coe.presets import list_presets

AutoConfig.register(CoEConfig.model_type, CoEConfig, exist_ok=True)
AutoModelForCausalLM.register(CoEConfig, CoEForCausalLM, exist_ok=True)

__all__ = ["CoECausalLMOutput", "CoEConfig", "CoEForCausalLM", "CoEModel", "list_presets"]
__version__ = "0.1.0"
