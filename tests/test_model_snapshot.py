"""Refactors keep behaviour: every model ``workbench list`` offers, built from the same Experiment and
torch seed, has the same parameters (count and state_dict keys) and the same predictions as the
recorded table ``tests/model_snapshot.json``.

One intended change since the table was first recorded: a relaxed-conv model no longer holds its
mixing weights twice (``fixed.*`` and ``body.mixer.*``), so its keys lost ``body.mixer.*``; runs saved
with them still load (:func:`test_a_relaxed_conv_checkpoint_with_the_old_keys_still_loads`).
A second: the T+flip relaxed-conv model's banks became mirror-symmetric kernels (its strict component
was not reflection-equivariant), so its predictions changed; its keys and parameter count did not.

Regenerate the table only for an intended change of a model:
``python tests/test_model_snapshot.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from workbench.config import MODEL_GROUPS, RELAXATIONS, Experiment
from workbench.groups import get_group
from workbench.models import build_model

TABLE = Path(__file__).with_name("model_snapshot.json")
BOXES = {1: ((-2.0, 2.0),), 2: ((-2.0, 2.0), (-2.0, 2.0))}
DATASETS = {1: "gibbs-1d", 2: "gp-2d"}


def combinations() -> list[tuple[str, str, str, int]]:
    """Every (model, group, relaxation, dim) an Experiment accepts."""
    out = []
    for model, groups in MODEL_GROUPS.items():
        for group in groups:
            for relaxation in RELAXATIONS:
                for dim in get_group(group).dims:
                    try:
                        Experiment(dataset=DATASETS[dim], model=model, group=group, relaxation=relaxation)
                    except ValueError:
                        continue
                    out.append((model, group, relaxation, dim))
    return out


def fingerprint(model: str, group: str, relaxation: str, dim: int) -> dict[str, float | int | str]:
    """Parameter count, a hash of the state_dict keys and sums of the predictions on a fixed task."""
    exp = Experiment(dataset=DATASETS[dim], model=model, group=group, relaxation=relaxation)
    torch.manual_seed(0)
    net = build_model(exp, dim, 1, BOXES[dim]).eval()
    gen = torch.Generator().manual_seed(1)
    xc = torch.rand(2, 7, dim, generator=gen) * 3 - 1.5
    yc = torch.randn(2, 7, 1, generator=gen)
    xt = torch.rand(2, 9, dim, generator=gen) * 3.6 - 1.8
    out: dict[str, float | int | str] = {
        "n_parameters": sum(p.numel() for p in net.parameters()),
        "keys": hashlib.sha1(" ".join(sorted(net.state_dict())).encode()).hexdigest()[:12],
    }
    with torch.no_grad():
        for on in (True, False):
            d = net(xc, yc, xt, fixed_inputs=on)
            out[f"mean_{on}"] = float(d.mean.double().sum())
            out[f"absmean_{on}"] = float(d.mean.double().abs().sum())
            out[f"std_{on}"] = float(d.stddev.double().sum())
    return out


def _name(c: tuple[str, str, str, int]) -> str:
    return "/".join(map(str, c))


@pytest.mark.parametrize("combo", combinations(), ids=_name)
def test_model_matches_the_recorded_snapshot(combo):
    table = json.loads(TABLE.read_text())
    assert _name(combo) in table, f"{_name(combo)} is new: record it with --write"
    want, got = table[_name(combo)], fingerprint(*combo)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
        else:
            assert got[key] == value, key


def test_a_relaxed_conv_checkpoint_with_the_old_keys_still_loads():
    exp = Experiment(dataset="gibbs-1d", relaxation="relaxed-conv")
    torch.manual_seed(0)
    saved = build_model(exp, 1, 1, BOXES[1]).eval()
    old = dict(saved.state_dict())
    old.update({"body.mixer." + k[len("fixed.") :]: v for k, v in old.items() if k.startswith("fixed.")})
    assert any(k.startswith("body.mixer.") for k in old)
    torch.manual_seed(1)
    loaded = build_model(exp, 1, 1, BOXES[1]).eval()
    loaded.load_state_dict(old)  # strict: no key missing, none unexpected
    xc, yc, xt = torch.linspace(-1, 1, 5)[None, :, None], torch.randn(1, 5, 1), torch.rand(1, 7, 1)
    with torch.no_grad():
        assert torch.equal(loaded(xc, yc, xt).mean, saved(xc, yc, xt).mean)


def test_every_recorded_model_is_still_offered():
    assert set(json.loads(TABLE.read_text())) <= {_name(c) for c in combinations()}


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    TABLE.write_text(json.dumps({_name(c): fingerprint(*c) for c in combinations()}, indent=1) + "\n")
