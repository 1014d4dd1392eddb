"""tapegrad.nn.functional: PyTorch's functional neural-network operations."""
