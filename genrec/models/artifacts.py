"""A fitted model as files: `model.json` (format, family, config section, facts) and
`weights.safetensors` (its arrays). Loading rebuilds the model with the installed genrec's code;
nothing is unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genrec.errors import UnloadableModelError
from genrec.models.base import ModelState, Recommender
from genrec.models.blend import Blend
from genrec.models.families import rebuild

FORMAT = 1


def save_model(model: Recommender, directory: Path) -> Path:
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = model.get_state()
    save_file({k: np.ascontiguousarray(v) for k, v in state.arrays.items()}, str(directory / "weights.safetensors"))
    (directory / "model.json").write_text(json.dumps({"format": FORMAT, **model.describe(), "meta": state.meta},
                                                     indent=1, default=_plain))
    return directory


def load_model(directory: Path) -> Recommender:
    from safetensors.numpy import load_file

    path = directory / "model.json"
    if not path.is_file():
        raise UnloadableModelError(f"{directory} holds no genrec model (no model.json).")
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise UnloadableModelError(f"{path} is in model format {spec.get('format')!r}; this genrec reads format {FORMAT}.")
    arrays = load_file(str(directory / "weights.safetensors"))
    return _rebuild(spec["family"], spec["config"], ModelState(arrays=arrays, meta=spec["meta"]))


def _rebuild(name: str, config: dict, state: ModelState) -> Recommender:
    if name == Blend.name:  # a composite: its components first
        return Blend.from_parts([_rebuild(part["family"], part["config"], part_state)
                                 for part, part_state in Blend.component_states(state)], state)
    return rebuild(name, config, state)


def _plain(value):
    """JSON for NumPy scalars in facts (chosen hyperparameters and the like)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
