# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Command-line entry points of anomalib-cmdr (the ``anomalib-cmdr`` console script)."""
