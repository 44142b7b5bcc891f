"""`sgs bench --workers`: one count, or a list of them for the scale-out curve (issue 14)."""

from __future__ import annotations

import argparse

import pytest

from simulators.bench.cli import worker_counts


def test_worker_counts_take_one_count_or_a_comma_separated_list():
    assert worker_counts("1") == (1,)
    assert worker_counts("1,2,4") == (1, 2, 4)


@pytest.mark.parametrize("text", ["", "two", "1,,2", "0", "2,-1"])
def test_worker_counts_refuse_what_is_not_a_list_of_positive_counts(text: str):
    with pytest.raises(argparse.ArgumentTypeError):
        worker_counts(text)
