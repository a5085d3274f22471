"""movierec: multimodal movie recommendation with a reinforcement-learning re-ranker."""

__version__ = "0.1.0"
