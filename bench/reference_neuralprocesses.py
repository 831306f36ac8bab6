"""Time the reference library ``neuralprocesses`` on the benchmark ConvCNP (run by bench_reference.py).

Runs in its own environment (``.venv-ref``: the same torch pin plus ``neuralprocesses``), so the
project never depends on it. Same problem as ``bench_core``: 1-D, 5 conv layers x 32 channels,
kernel 9, 16 points per unit, heteroscedastic Gaussian, batch 16, N_c = 64, N_t = 128, 2 threads.
Prints one JSON object.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version

import lab as B  # noqa: F401  (registers the torch backend for neuralprocesses)
import neuralprocesses.torch as nps
import numpy as np
import torch


def benchmark_convcnp() -> torch.nn.Module:
    """The benchmark's ConvCNP in neuralprocesses: 1-D, 5 conv layers x 32, kernel 9, 16 points/unit."""
    # conv_receptive_field is chosen so that the library picks kernel size 9 for 5 layers at 16/unit.
    return nps.construct_convgnp(
        dim_x=1,
        dim_y=1,
        points_per_unit=16,
        likelihood="het",
        conv_arch="conv",
        conv_layers=5,
        conv_channels=32,
        conv_receptive_field=2.5 + 1 / 16,
    )


def _median_ms(fn, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = benchmark_convcnp()
    kernel = next(m for m in model.modules() if isinstance(m, torch.nn.Conv1d)).kernel_size[0]
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(0)
    # neuralprocesses lays data out as [batch, channels, n].
    batches = [
        (
            torch.rand(16, 1, 64, generator=g) * 4 - 2,
            torch.randn(16, 1, 64, generator=g),
            torch.rand(16, 1, 128, generator=g) * 8 - 4,
            torch.randn(16, 1, 128, generator=g),
        )
        for _ in range(8)
    ]

    def step(i: int) -> None:
        xc, yc, xt, yt = batches[i % len(batches)]
        loss = -nps.loglik(model, xc, yc, xt, yt, normalise=True).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(5):
        step(i)
    train_ms = _median_ms(step, 100)
    xc, yc = batches[0][0][:1], batches[0][1][:1]
    x = torch.linspace(-4, 4, 512).view(1, 1, 512)

    def predict(i: int) -> None:
        with torch.no_grad():
            model(xc, yc, x)

    for i in range(5):
        predict(i)
    print(
        json.dumps(
            {
                "library": "neuralprocesses " + version("neuralprocesses"),
                "kernel": kernel,
                "n_parameters": sum(p.numel() for p in model.parameters()),
                "train_step_ms": train_ms,
                "predict_512_ms": _median_ms(predict, 200),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
