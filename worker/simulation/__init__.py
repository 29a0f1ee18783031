"""``tessera simulate``: the engine's loop replayed on a labeled dataset with an oracle."""
