"""FastAPI service: batched completion over concurrent requests. Knows nothing of training."""
