"""Acquisition functions, under the import path of the original superintendent library.

``from superintendent.acquisition_functions import entropy, margin, certainty``
keeps working; the code lives in :mod:`superintendent.al.acquisition`
(pure numpy: a score per row, one shared visiting order, the public
functions built from the two). Only numpy is imported here.
"""

from __future__ import annotations

from superintendent.al.acquisition import (
    ACQUISITION_FUNCTIONS,
    DIVERSE_SUFFIX,
    acquisition_scores,
    certainty,
    certainty_diverse,
    entropy,
    entropy_diverse,
    get_acquisition_function,
    margin,
    margin_diverse,
    split_name,
    visiting_order,
)

__all__ = [
    "ACQUISITION_FUNCTIONS",
    "DIVERSE_SUFFIX",
    "acquisition_scores",
    "certainty",
    "certainty_diverse",
    "entropy",
    "entropy_diverse",
    "get_acquisition_function",
    "margin",
    "margin_diverse",
    "split_name",
    "visiting_order",
]
