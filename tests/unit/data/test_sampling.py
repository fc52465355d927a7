# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

from anomalib_cmdr.data.sampling import EpochShuffleSampler


def test_order_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(range(20), seed=3), EpochShuffleSampler(range(20), seed=3)
    orders = []
    for epoch in range(3):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b) and sorted(a) == list(range(20))
        orders.append(list(a))
    assert orders[0] != orders[1] != orders[2]
    assert len(a) == 20
