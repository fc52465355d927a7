# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import io
import random

import numpy as np
import torch

from anomalib_cmdr.models.cmdr.resume import random_states, set_random_states


def test_states_round_trip_through_a_weights_only_checkpoint():
    states = random_states()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    buffer = io.BytesIO()
    torch.save({"states": states}, buffer)
    buffer.seek(0)
    set_random_states(torch.load(buffer, weights_only=True)["states"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
