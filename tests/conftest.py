"""Settings for the whole suite, applied before any test module imports huggingface_hub:
tests never reach the network, and they read and write no user cache."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="task-studio-hf-"))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
