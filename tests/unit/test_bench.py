"""The bench's cold `make up` figure: toolchain pieces built side by side count once."""
import pytest

from scripts.bench import wall_seconds


@pytest.mark.parametrize("intervals, seconds", [
    ([], 0),
    ([(0, 674), (0, 665), (0, 155), (0, 262)], 674),   # one cold run: all four pieces at once
    ([(0, 600), (1000, 1600)], 1200),                   # two runs, one piece each
    ([(5, 12), (0, 10), (20, 25)], 17),                 # overlapping, unordered
    ([(0, 10), (2, 3)], 10),                            # one inside another
])
def test_wall_seconds_is_the_union_of_the_build_intervals(intervals, seconds):
    assert wall_seconds(intervals) == seconds
