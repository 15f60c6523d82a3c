"""The README's batch normalisation and dropout example, with its figures.

    python docs/batch_norm_dropout.py

scikit-learn's digits (1797 8x8 images, 10 classes), standardised; 5 random
train/test splits (75/25); the same network with and without the options;
test accuracy and epochs to convergence (adam's default tol and
n_iter_no_change), mean and spread over the splits.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cbp import MLPClassifier

OPTIONS = {
    "plain": {},
    "batch_norm=True": {"batch_norm": True},
    "dropout=0.2": {"dropout": 0.2},
    "both": {"batch_norm": True, "dropout": 0.2},
}


def main(splits=5):
    X, y = load_digits(return_X_y=True)
    rows = {name: {"accuracy": [], "epochs": [], "seconds": []} for name in OPTIONS}
    for seed in range(splits):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for name, options in OPTIONS.items():
            model = MLPClassifier((256, 128), max_iter=300, random_state=seed, **options)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            rows[name]["seconds"].append(time.perf_counter() - start)
            rows[name]["accuracy"].append(model.score(X_test, y_test))
            rows[name]["epochs"].append(model.n_iter_)
    print(f"MLPClassifier((256, 128)), adam, digits, {splits} train/test splits\n")
    print("| network | test accuracy | test errors of 450 | epochs | fit time |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        accuracy = np.array(r["accuracy"])
        print(f"| {name} | {accuracy.mean():.4f} ± {accuracy.std():.4f} | "
              f"{np.mean((1 - accuracy) * 450):.1f} | {np.mean(r['epochs']):.0f} "
              f"({min(r['epochs'])}–{max(r['epochs'])}) | {np.mean(r['seconds']):.2f} s |")


if __name__ == "__main__":
    main()
