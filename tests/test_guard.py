"""The bit-identity guard: every fit of tests/guard/fits.py gives, bit for
bit, the digest recorded for this platform in tests/guard/digests.json.

A reorganisation of the code must keep every result; a commit that changes a
digest on purpose regenerates the file (tests/guard/update.py) and says why.
Digests depend on the kernel build and OpenBLAS's kernels for this CPU
(fits.platform_key); a platform with none recorded is skipped, naming the
command that records them.
"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard"))

from fits import NAMES, digest, fit, platform_key  # noqa: E402

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard",
                       "digests.json")) as _f:
    RECORDED = json.load(_f)
KEY = platform_key()


def test_the_grid_covers_at_least_128_fits():
    assert len(NAMES) >= 128 and len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_bit_identical_to_the_recorded_one(name):
    if KEY not in RECORDED:
        pytest.skip(f"no guard digests recorded for this platform ({KEY}); record "
                    "them at a trusted commit with python tests/guard/update.py")
    assert digest(*fit(name)) == RECORDED[KEY][name], (
        f"fit {name!r} no longer gives the recorded bits on {KEY}")
