"""The skips CI accepts, each with why: ``pytest --strict-skips`` (what
``.ci/run`` runs) fails the session when a test skips for any other reason.

CI installs every optional package, so "not installed" is on no list here: a
test of an optional package either runs or fails. Each entry is a regular
expression matched (``re.search``) against the skip's reason, and why that
skip is expected on a machine CI runs on. Keep the list short; a new entry
says why the test cannot run everywhere instead of making it run.
"""

EXPECTED_SKIPS = {
    r"^this CPU does not run the \w+ build$":
        "a kernel build for a wider instruction set (AVX-512) cannot run on a CPU "
        "without it; CI machines change CPU between sessions (tests/kernel_paths.py)",
    r"^no guard digests recorded for this platform":
        "the guard's digests depend on the kernel build and on OpenBLAS's kernel "
        "family and version; a CPU family or an OpenBLAS release with none recorded "
        "yet has nothing to compare with (python tests/guard/update.py records them)",
    r"^no exact results recorded for":
        "the archives' exact results depend on the platform as the guard's do "
        "(python tests/data/archives/make.py records them)",
    r"^no pickles written by the kernel build":
        "pickles are written per kernel build; a build without them (AVX-512 on a "
        "CPU without it) has none to load",
    r"^SCIPY_ARRAY_API is not set: not checking array_api input$":
        "scikit-learn's estimator checks test array-API input only when "
        "SCIPY_ARRAY_API=1 is set before SciPy is imported; cbp's estimators take "
        "NumPy arrays (the compiled kernel computes on them), as scikit-learn's MLP does",
    r"^MLPClassifier does not have a decision_function method\.$":
        "scikit-learn's check of decision_function's output format; scikit-learn's "
        "MLPClassifier has no decision_function either, so neither has cbp's",
    r"^left out: calls MLPClassifier\._loss_grad_lbfgs":
        "scikit-learn's own MLP test that calls a private method of scikit-learn's "
        "implementation, which cbp does not have (tests/sklearn_suite/)",
}
