"""Task Studio's engine: transformer models in plain PyTorch, with no Qt and no transformers.

Importing this package is cheap; torch is imported by the modules that need it.
"""
