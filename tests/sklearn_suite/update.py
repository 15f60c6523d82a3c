"""Regenerate test_sklearn_mlp.py from the installed scikit-learn's MLP tests.

    python tests/sklearn_suite/update.py

Copies sklearn/neural_network/tests/test_mlp.py, imports MLPClassifier and
MLPRegressor from cbp instead, and marks the tests listed in LEFT_OUT (those
that read scikit-learn's private internals) as skipped with their reason.
"""
import os

import sklearn

LEFT_OUT = {
    "test_gradient": "calls MLPClassifier._loss_grad_lbfgs, a private method of "
                     "scikit-learn's implementation (cbp's gradient is checked against "
                     "central differences in tests/test_kernel.py)",
}
HEADER = f"""# scikit-learn {sklearn.__version__}'s sklearn/neural_network/tests/test_mlp.py, run against cbp.
#
# Copied unchanged (BSD-3-Clause, (c) the scikit-learn developers) except:
# the estimators are imported from cbp, and the tests that read scikit-learn's
# private internals are marked as left out, with the reason. Regenerate with
# tests/sklearn_suite/update.py after a scikit-learn upgrade.
import pytest as _pytest
import sklearn as _sklearn

if _sklearn.__version__.split(".")[:2] != {sklearn.__version__.split(".")[:2]!r}:
    _pytest.skip("these are scikit-learn {sklearn.__version__}'s tests; scikit-learn "
                 f"{{_sklearn.__version__}} is installed (regenerate them with "
                 "tests/sklearn_suite/update.py)", allow_module_level=True)
"""


def main():
    source_path = os.path.join(os.path.dirname(sklearn.__file__), "neural_network", "tests",
                               "test_mlp.py")
    with open(source_path) as f:
        src = f.read()
    line = "from sklearn.neural_network import MLPClassifier, MLPRegressor\n"
    if line not in src:
        raise SystemExit(f"{source_path} no longer imports the estimators as expected")
    src = src.replace(line, "from cbp import MLPClassifier, MLPRegressor  "
                            "# (cbp: was sklearn.neural_network)\n")
    for name, why in LEFT_OUT.items():
        pattern = f"\ndef {name}("
        if pattern not in src:
            raise SystemExit(f"{name} is gone from {source_path}: update LEFT_OUT")
        src = src.replace(pattern, f'\n@pytest.mark.skip(reason="left out: {why}")\ndef {name}(',
                          1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_sklearn_mlp.py")
    with open(out, "w") as f:
        f.write(HEADER + src)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
