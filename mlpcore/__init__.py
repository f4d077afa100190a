"""mlpcore: specs, datasets, the MLP and its trainers; pure PyTorch, no Redis or HTTP."""
