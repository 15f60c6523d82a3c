"""Record this platform's digests of the guard's fits (tests/guard/fits.py).

    python tests/guard/update.py                       # the build this CPU runs
    CBP_KERNEL=baseline python tests/guard/update.py   # the portable build

Run it at a commit whose results are the reference (the one before a change
that must keep every bit), and commit digests.json with a message that says
why. Digests of other platforms in the file are kept.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fits import NAMES, digest, fit, record_for_this_platform  # noqa: E402

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digests.json")


def main():
    key = record_for_this_platform(PATH, {name: digest(*fit(name)) for name in NAMES})
    print(f"{len(NAMES)} digests recorded for {key!r} in {PATH}")


if __name__ == "__main__":
    main()
