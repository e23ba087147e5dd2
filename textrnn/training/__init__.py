"""Training: the loop, batching, distributed training (DDP), live reporting and the memory estimate."""
