"""Double DQN over per-movie Q-values (a SlateQ-style decomposition), with replay and a target net.

Q(s, movie) is the long-term value of the user choosing that movie now. A slate is the top
``slate_size`` movies by Q among the ranker's top-N candidates (sequential selection). Learning
targets, per logged step:

- the chosen movie:   r + gamma * Q_target(s', argmax_m Q_online(s', m))   (double DQN)
- a skipped slate:    every shown movie gets  skip_reward + gamma * (the same next value)

(the max over next candidates approximates SlateQ's expectation over the user's next choice).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from movierec.rl.state import Featurizer


class QNetwork(nn.Module):
    """MLP on [state, candidate]; the first layer is split so the state part is computed once."""

    def __init__(self, state_dim: int, item_dim: int, hidden: int = 128):
        super().__init__()
        self.state_in = nn.Linear(state_dim, hidden)
        self.item_in = nn.Linear(item_dim, hidden, bias=False)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1))

    def forward(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """states (B, S), items (B, M, I) -> Q (B, M)."""
        return self.head(self.state_in(states)[:, None, :] + self.item_in(items)).squeeze(-1)


class ReplayBuffer:
    def __init__(self, capacity: int, state_dim: int, top_n: int, seed: int = 0):
        self.capacity = capacity
        self.s = np.zeros((capacity, state_dim), np.float32)
        self.a_row = np.zeros(capacity, np.int64)
        self.a_score = np.zeros(capacity, np.float32)
        self.a_rank = np.zeros(capacity, np.float32)
        self.r = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.s2 = np.zeros((capacity, state_dim), np.float32)
        self.next_rows = np.zeros((capacity, top_n), np.int64)
        self.next_scores = np.zeros((capacity, top_n), np.float32)
        self.next_valid = np.zeros((capacity, top_n), bool)
        self.size = 0
        self.pos = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, s, a_row, a_score, a_rank, r, done, s2, next_rows, next_scores) -> None:
        i = self.pos
        n = len(next_rows)
        self.s[i], self.a_row[i], self.a_score[i], self.a_rank[i], self.r[i], self.done[i] = s, a_row, a_score, a_rank, r, float(done)
        self.s2[i] = s2
        self.next_valid[i] = False
        self.next_valid[i, :n] = True
        self.next_rows[i, :n], self.next_scores[i, :n] = next_rows, next_scores
        self.next_rows[i, n:] = next_rows[0] if n else 0
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int) -> np.ndarray:
        return self.rng.integers(0, self.size, size=batch)


class DQNLearner:
    def __init__(self, featurizer: Featurizer, *, top_n: int, hidden: int, gamma: float, lr: float, tau: float, seed: int = 0):
        torch.manual_seed(seed)
        self.f = featurizer
        self.top_n = top_n
        self.gamma = gamma
        self.tau = tau
        self.online = QNetwork(featurizer.state_dim, featurizer.item_dim, hidden)
        self.target = QNetwork(featurizer.state_dim, featurizer.item_dim, hidden)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=lr)

    @torch.no_grad()
    def q_values(self, states: np.ndarray, rows: np.ndarray, scores: np.ndarray, ranks: np.ndarray | None = None) -> np.ndarray:
        """Q for candidates (B, M) given states (B, S), ranker scores and each candidate's rank in
        the ranker's order (default: the candidates are in that order)."""
        if ranks is None:
            ranks = np.broadcast_to(np.arange(rows.shape[1], dtype=np.float32), rows.shape)
        items = self.f.item_inputs(states, rows, scores, ranks, self.top_n)
        return self.online(torch.from_numpy(states), torch.from_numpy(items)).numpy()

    def update(self, buffer: ReplayBuffer, batch_size: int) -> float:
        idx = buffer.sample(batch_size)
        s, s2 = buffer.s[idx], buffer.s2[idx]
        a_items = self.f.item_inputs(s, buffer.a_row[idx, None], buffer.a_score[idx, None], buffer.a_rank[idx, None], self.top_n)
        n_ranks = np.broadcast_to(np.arange(self.top_n, dtype=np.float32), (len(idx), self.top_n))
        n_items = torch.from_numpy(self.f.item_inputs(s2, buffer.next_rows[idx], buffer.next_scores[idx], n_ranks, self.top_n))
        s2_t = torch.from_numpy(s2)
        valid = torch.from_numpy(buffer.next_valid[idx])
        with torch.no_grad():
            q_next_online = self.online(s2_t, n_items).masked_fill(~valid, -1e9)
            best = q_next_online.argmax(1, keepdim=True)
            q_next = self.target(s2_t, n_items).gather(1, best).squeeze(1)
            q_next = torch.where(valid.any(1), q_next, torch.zeros_like(q_next))
            target = torch.from_numpy(buffer.r[idx]) + self.gamma * (1 - torch.from_numpy(buffer.done[idx])) * q_next
        q = self.online(torch.from_numpy(s), torch.from_numpy(a_items)).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), 10.0)
        self.optimizer.step()
        with torch.no_grad():
            for p, tp in zip(self.online.parameters(), self.target.parameters()):
                tp.mul_(1 - self.tau).add_(self.tau * p)
        return float(loss.detach())
