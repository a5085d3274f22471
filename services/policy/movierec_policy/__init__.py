"""Policy service: the RL re-ranker."""
