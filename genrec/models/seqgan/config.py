"""The sequence family's config section (`model.seqgan.*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genrec.models.configs import SAMPLED_ABOVE
from genrec.ranges import at_least


@dataclass(frozen=True)
class SeqGANConfig:
    """A causal encoder over a user's items in time order that scores every item as the next one,
    trained by cross-entropy over all items (SASRec with full softmax, Klenitskiy & Vasilev 2023),
    then against a discriminator (`genrec.models.seqgan.trainer`). Each stage is selected on
    validation, and the adversarial one is kept only where validation improves."""

    encoder: Literal["transformer", "gru"] = "transformer"
    """A causal Transformer (SASRec-like) or a GRU (GRU4Rec-like) over the history."""
    dim: int = 64
    """Width of the item and position embeddings and of the encoder."""
    layers: int = 2
    """Encoder layers."""
    heads: int = 2
    """Attention heads (Transformer)."""
    dropout: float = 0.2
    """Dropout on embeddings and inside the encoder."""
    max_len: int = 100
    """The most recent items of a history the encoder reads, and the positions a user's history
    trains per epoch (its last max_len). 100 rather than 50 trains on 74% of Online Retail's
    positions instead of 52% and on 62% of ML-100K's instead of 40%, and ranked better on both;
    200 ranked no better on Online Retail (docs/results.md, "Sequential")."""
    positions: Literal["from_end", "from_start"] = "from_end"
    """What an item's position embedding counts: its place back from the history's last item (0:
    the last; SASRec's left padding, so that the state that scores the next item always sits at
    position 0) or from the first item the encoder reads (what versions registered before this option
    did: a saved state that does not say is read so). With averaged weights, counting back raised
    Online Retail's test NDCG@10 from 0.2081 to 0.2104 (5 seeds; docs/results.md, "Averaged weights")."""
    batch_size: int = 128
    """Users per training step."""
    length_groups: int = 4
    """A step's users are encoded in this many groups of similar history length, each padded to its
    own longest: the same users and positions per step, far fewer padded positions encoded (1: one
    group, padded to the step's longest history)."""
    lr: float = 3e-3
    """Adam's learning rate."""
    weight_decay: float = 0.0
    """Adam's (decoupled, AdamW) weight decay."""
    average: float = 3.0
    """What is validated and kept is a moving average of the weights over about this many epochs of
    steps (`genrec.models.average`; 0: the weights after the epoch's last step). Its validation curve
    is smoother than the last weights', and on Online Retail the cross-entropy stage's test NDCG@10
    rose from 0.2068 (last weights, patience 8) to 0.2081 (averaged, patience 5; 5 seeds)."""
    output: Literal["auto", "full", "sampled"] = "auto"
    """Over which items each position's softmax (and the adversarial stage's expectation over the
    generator's choices) is taken: `full`, every item (SASRec's full softmax; a step costs positions
    x items); `sampled`, the position's next item and `negatives` items drawn uniformly for the step,
    their logits shifted by log(items / negatives) so that the softmax estimates the full one (a step
    costs positions x negatives); `auto`, sampled above SAMPLED_ABOVE x `negatives` items (not on
    ML-100K or Online Retail)."""
    negatives: int = 1000
    """With output=sampled: items drawn at each step, shared by the step's positions."""
    adversarial: bool = True
    """After the cross-entropy stage, train the generator on against a discriminator that tells each
    real next item from the generator's choices given the history; the result is kept only where it
    ranks better on validation. Off: the cross-entropy twin, in about half the time."""
    adv_patience: int = 2
    """The adversarial stage stops after this many epochs without a validation score above both the
    cross-entropy stage's best (below which it is not kept) and its own best so far (it starts from
    a model validation already chose, so it needs less patience than the first stage)."""
    adv_weight: float = 0.1
    """Weight of the adversarial term beside the cross-entropy the generator keeps minimising."""
    lr_d: float = 1e-3
    """The discriminator's learning rate."""
    attributes: bool = False
    """Each item's embedding adds an encoder of its attributes (`Dataset.features`) to its id
    embedding, so that items without interactions can be recommended (`model.attributes=true`)."""
    id_dropout: float = 0.0
    """With attributes: the share of warm items whose id embedding is left out at each training
    step, so that attributes learn to stand for an item alone (as for a cold one). With the
    weights averaged (`average`), 0.5 cost the warm items a tenth of their NDCG@20 on ML-100K's
    cold-start split and 0 costs nothing, for the same cold recall (docs/results.md, "Cold start")."""

    def __post_init__(self) -> None:
        at_least(self, 1, "dim", "layers", "heads", "max_len", "batch_size", "length_groups", "adv_patience",
                 "negatives")
        for name in ("dropout", "id_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.lr <= 0 or self.lr_d <= 0 or min(self.weight_decay, self.adv_weight, self.average) < 0:
            raise ValueError(f"lr and lr_d must be positive, weight_decay, adv_weight and average at least 0, got "
                             f"{self.lr}, {self.lr_d}, {self.weight_decay}, {self.adv_weight}, {self.average}")
        if self.encoder == "transformer" and self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")

    def sampled(self, n_items: int) -> bool:
        """Whether the softmax over `n_items` items is sampled (see `output`)."""
        if self.output != "auto":
            return self.output == "sampled"
        return n_items > SAMPLED_ABOVE * self.negatives
