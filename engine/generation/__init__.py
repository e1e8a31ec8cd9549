"""Text generation shared by every generative model: the request's key-value cache
(`cache`), the logits processors (`processors`), greedy search, sampling and beam search
(`search`), the settings and how they are resolved (`settings`), and incremental
detokenisation for streaming (`stream`)."""
