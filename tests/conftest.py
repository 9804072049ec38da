"""Shared fixtures: tiny workloads captured once per session (capture is the slow part)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, settings

# Property tests (hypothesis): deterministic draws, no example database written into the checkout,
# no per-example deadline (a shared 2-core machine is noisy), 200 examples per property.
settings.register_profile("graphperf", derandomize=True, database=None, deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("graphperf")


@functools.lru_cache(maxsize=None)
def tiny_workload(name: str, phase: str | None = None):
    """A tiny-config workload on the CPU with real float32 tensors (so it also runs eagerly)."""
    from graphperf import models

    return models.build(name, config="tiny", phase=phase, dtype="float32", device="cpu")


@functools.lru_cache(maxsize=None)
def tiny_graph(name: str, phase: str | None = None):
    from graphperf.capture.torch_export import capture_module

    wl = tiny_workload(name, phase)
    return capture_module(wl.module, wl.args, name=name)


def workload_cases():
    """(name, phase) for every workload and phase in models/."""
    from graphperf import models

    return [(spec.name, phase) for spec in models.list_models() for phase in spec.phases]


@pytest.fixture
def tiny():
    return tiny_graph
