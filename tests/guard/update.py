"""Record this platform's digests of the guard's fits (tests/guard/fits.py).

    python tests/guard/update.py                       # the build this CPU runs
    CBP_KERNEL=baseline python tests/guard/update.py   # the portable build

Run it at a commit whose results are the reference (the one before a change
that must keep every bit), and commit digests.json with a message that says
why. Digests of other platforms in the file are kept.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fits import NAMES, digest, fit, platform_key  # noqa: E402

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digests.json")


def main():
    recorded = {}
    if os.path.exists(PATH):
        with open(PATH) as f:
            recorded = json.load(f)
    key = platform_key()
    recorded[key] = {name: digest(*fit(name)) for name in NAMES}
    with open(PATH, "w") as f:
        json.dump(recorded, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(NAMES)} digests recorded for {key!r} in {PATH}")


if __name__ == "__main__":
    main()
