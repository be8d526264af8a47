"""The sequence encoder: item and position embeddings, a causal Transformer or a GRU, and the item
embeddings again as the output layer (every item's score is its embedding's dot product with the
encoder's state). Index 0 is padding; item i is index i + 1. Histories are right-padded, so that a
causal step only ever reads real items, and an item's position is counted back from its history's
last item (`SeqGANConfig.positions`), as SASRec's left padding places it.

With item attributes, an item's embedding is its id embedding plus a linear encoder of its feature
row (`genrec.models.item_table`), so that an item never seen in training is known by its
attributes alone; `folded` turns such an encoder into a plain one for serving.

The Transformer's weights live in torch's `nn.TransformerEncoderLayer`s (their names are those of
every registered version), and `_block` computes a layer as torch does with `norm_first` and a
causal mask, except for where its dropout masks come from: `Dropout`, handed to `forward` by a
trainer, draws them as random bytes from a numpy generator. So dropout is explicit: an encoder drops
units only where `forward` is given a `Dropout`, whatever its train/eval mode (the GRU's dropout
between layers excepted: that is torch's own, in train mode)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.dataset import Histories
from genrec.models.item_table import ItemAttributes, ItemTable
from genrec.models.seqgan.config import SeqGANConfig

ITEM_TABLE = "items.ids.weight"
"""The name of the encoder's item id embeddings among its parameters (and in its state dict)."""


class SequenceEncoder(nn.Module):
    def __init__(self, n_items: int, cfg: SeqGANConfig, seed: int = 0, attributes: ItemAttributes | None = None):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # every initial weight from `seed`; the process's RNG untouched
            torch.manual_seed(seed)
            self._build(n_items, cfg, attributes)

    def _build(self, n_items: int, cfg: SeqGANConfig, attributes: ItemAttributes | None) -> None:
        self.cfg = cfg
        self.items = ItemTable(n_items, cfg.dim, attributes, padding=True, id_dropout=cfg.id_dropout)
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        if cfg.encoder == "transformer":
            layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.dim * 4, cfg.dropout, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        else:
            self.encoder = nn.GRU(cfg.dim, cfg.dim, cfg.layers, batch_first=True,
                                  dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.norm = nn.LayerNorm(cfg.dim)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() > 1:
                    p.normal_(0.0, 0.02)
            self.items.ids.weight[0].zero_()

    def forward(self, seq: torch.Tensor, dropout: "Dropout | None" = None,
                table: torch.Tensor | None = None) -> torch.Tensor:
        """States (batch, length, dim) of right-padded index sequences (batch, length), with units
        dropped by `dropout` (training) or none (None); the indices are rows of `table` where given
        (a block of the item table's rows, row 0 padding), of the item table otherwise."""
        table = self.items.table() if table is None else table
        x = F.embedding(seq, table, padding_idx=0) * math.sqrt(self.cfg.dim) + self.positions(self._places(seq))
        x = _dropped(x, dropout)
        if self.cfg.encoder == "transformer":
            for layer in self.encoder.layers:
                x = _block(layer, x, self.cfg.heads, dropout)
        else:
            x, _ = self.encoder(x)
        return self.norm(x)

    def _places(self, seq: torch.Tensor) -> torch.Tensor:
        """The position index of every entry of `seq` (`cfg.positions`): counted from each row's
        last item back (padding after it at 0, which no real item attends to), or from the first."""
        at = torch.arange(seq.shape[1], device=seq.device)
        if self.cfg.positions == "from_start":
            return at
        return ((seq > 0).sum(1, keepdim=True) - 1 - at).clamp_(min=0)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every item (padding left out) for each state."""
        return states @ self.items.table()[1:].T


class Dropout:
    """Dropout masks drawn as random bytes from `rng`: a unit is kept where its byte is at least
    round(p * 256) (p taken to the nearest 1/256), and kept units are scaled by 256 / the byte
    values that keep, as torch's dropout scales by 1 / (1 - p). On this project's 2-core CPU torch's
    Bernoulli draws were a fifth of a training step, and these bytes cost about a third of them
    (docs/results.md, "Sequential"). The bytes are drawn on the CPU whatever the device, so a seed
    gives the same masks on both."""

    def __init__(self, p: float, rng: np.random.Generator):
        self.cut = round(p * 256)
        self.scale = 256 / (256 - self.cut)
        self.rng = rng

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cut:
            return x
        drawn = torch.from_numpy(self.rng.integers(0, 256, x.shape, dtype=np.uint8)).to(x.device)
        return x * torch.where(drawn >= self.cut, self.scale, 0.0).to(x.dtype)


def _dropped(x: torch.Tensor, dropout: Dropout | None) -> torch.Tensor:
    return x if dropout is None else dropout(x)


def _block(layer: nn.TransformerEncoderLayer, x: torch.Tensor, heads: int, dropout: Dropout | None) -> torch.Tensor:
    """One layer as `layer` computes it with `norm_first` and a causal mask, its dropout (on the
    attention weights, after attention, inside and after the feed-forward part) from `dropout`;
    without dropout the attention is torch's fused kernel."""
    batch, length, dim = x.shape
    attention = layer.self_attn
    q, k, v = F.linear(layer.norm1(x), attention.in_proj_weight, attention.in_proj_bias) \
        .view(batch, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    if dropout is None:
        mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        later = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = (q @ k.transpose(-2, -1) * (dim // heads) ** -0.5).masked_fill(later, float("-inf"))
        mixed = dropout(torch.softmax(weights, dim=-1)) @ v
    x = x + _dropped(attention.out_proj(mixed.transpose(1, 2).reshape(batch, length, dim)), dropout)
    inner = _dropped(F.gelu(layer.linear1(layer.norm2(x))), dropout)
    return x + _dropped(layer.linear2(inner), dropout)


def folded(encoder: SequenceEncoder) -> SequenceEncoder:
    """An encoder without attributes that scores exactly as `encoder` does: its item table computed
    once into plain id embeddings (what a fitted model keeps and serves)."""
    encoder.eval()  # the table as scored, without the training-time id dropout
    plain = SequenceEncoder(encoder.items.n_items, encoder.cfg)
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("items.")}
    with torch.no_grad():
        state[ITEM_TABLE] = encoder.items.table().detach().clone()
    plain.load_state_dict(state)
    return plain


def padded(histories: Histories, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Each history's last `max_len` items as indices + 1, right-padded with 0, and their lengths."""
    lengths = np.minimum(histories.lengths, max_len)
    out = np.zeros((len(histories), max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    starts = histories.indptr[1:] - lengths  # the last `lengths` items of each history
    out[rows, cols] = histories.items[np.repeat(starts, lengths) + cols] + 1
    return out, lengths


def by_length(lengths: np.ndarray, groups: int) -> list[np.ndarray]:
    """The positions of `lengths`, shortest first, in at most `groups` groups of about equal size:
    each group padded to its own longest pads far less than all of them to the longest of all."""
    order = np.argsort(lengths, kind="stable")
    return [group for group in np.array_split(order, min(groups, len(order))) if len(group)]


class Positions(NamedTuple):
    """The positions of a batch of histories that have a next item: each history's last `max_len` + 1
    items, the histories in groups of similar length (`by_length`), each group right-padded to its
    own longest as the encoder's `inputs`, its `real` positions, and the next item of every real
    position in the order `states` gives them."""

    inputs: list[torch.Tensor]
    real: list[torch.Tensor]
    next_items: torch.Tensor

    @classmethod
    def of(cls, histories: Histories, max_len: int, groups: int, device: torch.device) -> "Positions":
        inputs, real, next_items = [], [], []
        for group in by_length(histories.lengths, groups):
            seq, _ = padded(histories.take(group), max_len + 1)
            seq_t = torch.from_numpy(seq).to(device)
            targets = seq_t[:, 1:]
            real.append(targets > 0)
            # A history's last item is only a target: left out of the inputs, so that each row's
            # last input is the last position with a next item (the one positions count back from).
            inputs.append(seq_t[:, :-1] * real[-1])
            next_items.append(targets[real[-1]] - 1)
        return cls(inputs, real, torch.cat(next_items))

    def states(self, encoder: SequenceEncoder, dropout: Dropout | None, table: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's state at every real position, in the order of `next_items` (`table`: as
        `SequenceEncoder.forward` reads it)."""
        return torch.cat([encoder(x, dropout, table)[r] for x, r in zip(self.inputs, self.real)])


@torch.no_grad()
def score_histories(encoder: SequenceEncoder, histories: Histories, device: torch.device | str = "cpu",
                    batch: int = 512) -> np.ndarray:
    """Dense (rows, n_items) next-item scores; an empty history scores 0 everywhere."""
    encoder.eval()
    n_items = encoder.items.n_items
    out = np.zeros((len(histories), n_items), dtype=np.float32)
    # Batches of histories of similar length (each padded to its own longest), written back in place.
    order = np.argsort(histories.lengths, kind="stable")
    for start in range(0, len(histories), batch):
        rows = order[start : start + batch]
        seq, lengths = padded(histories.take(rows), encoder.cfg.max_len)
        has = lengths > 0
        if not has.any():
            continue
        seq_t = torch.from_numpy(seq[has]).to(device)
        states = encoder(seq_t)
        last = states[torch.arange(len(seq_t), device=device), torch.from_numpy(lengths[has] - 1).to(device)]
        out[rows[has]] = encoder.logits(last).float().cpu().numpy()
    return out
