"""Draw the README's figures: python docs/make_figures.py (needs matplotlib)."""
import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from cbp import LossCurveDisplay, MLPClassifier  # noqa: E402


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X / 16, y, test_size=0.3,
                                                      random_state=0, stratify=y)
    model = MLPClassifier(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=0.01,
                          early_stopping=True, n_iter_no_change=8, max_iter=200,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    fig, ax = plt.subplots(figsize=(7, 4))
    LossCurveDisplay.from_estimator(model, ax=ax, name="MLPClassifier on digits")
    fig.tight_layout()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_curve.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({model.n_iter_} epochs, kept epoch "
          f"{int(max(range(len(model.validation_scores_)), key=model.validation_scores_.__getitem__)) + 1})")


if __name__ == "__main__":
    main()
