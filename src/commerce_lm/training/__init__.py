"""The shared DeepSpeed trainer used by finetune-encoder and finetune-baseline."""
