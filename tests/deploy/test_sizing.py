"""Worker-pod counts: first-fit-decreasing on CPU, GPU and memory; quantities as KubeRay reads them."""

from __future__ import annotations

import pytest

from deploy.quantity import ceil_units, parse_quantity
from deploy.sizing import Capacity, Demand, pods_needed


def test_packs_fractions_of_gpus():
    pod = Capacity(cpus=8, gpus=1)
    assert pods_needed([Demand("a", 0.5, 0.5), Demand("b", 0.5, 0.25), Demand("c", 0.5, 0.25)], pod) == 1
    assert pods_needed([Demand("a", 0.5, 0.5)] * 3, pod) == 2
    assert pods_needed([], pod) == 0


def test_cpu_and_memory_bound():
    pod = Capacity(cpus=4, gpus=0, memory=8 * 2**30)
    assert pods_needed([Demand("a", 1.0)] * 9, pod) == 3
    assert pods_needed([Demand("a", 0.1, memory=3 * 2**30)] * 4, pod) == 2


def test_replicas_are_not_split_across_pods():
    pod = Capacity(cpus=4)
    # 3 + 3 + 2 CPUs = 8 CPUs, but no two 3-CPU replicas share a 4-CPU pod.
    assert pods_needed([Demand("a", 3.0), Demand("b", 3.0), Demand("c", 2.0)], pod) == 3


@pytest.mark.parametrize("quantity, value, units", [("500m", 0.5, 1), ("2", 2, 2), ("1.5", 1.5, 2),
                                                    ("8Gi", 8 * 2**30, 8 * 2**30), (4, 4, 4), ("1e3", 1000, 1000)])
def test_quantities(quantity, value, units):
    assert float(parse_quantity(quantity)) == value
    assert ceil_units(quantity) == units


@pytest.mark.parametrize("bad", ["8GB", "lots", "", "1..2"])
def test_bad_quantities(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)
