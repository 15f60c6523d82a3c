"""The README's ensembles example, with its figures.

    python docs/ensembles.py

scikit-learn's digits (1797 8x8 images, 10 classes), standardised; 5 random
train/test splits (75/25). One recipe -- two hidden layers of 128, AdamW,
batches of 64, early stopping on a 10 % validation split -- as a single
network (ensemble_size=1) and as ensembles of 32 in each form. Test
accuracy and log-loss of the averaged prediction, the mean accuracy of the
ensemble's members alone, epochs and fit time (one thread).
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cbp import MLPClassifier

RECIPE = dict(hidden_layer_sizes=(128, 128), solver="adamw", learning_rate_init=2e-3,
              batch_size=64, max_iter=200, early_stopping=True, n_iter_no_change=10)
FORMS = ("batch", "mini", "packed")


def options(k):
    """The networks compared: a single one, and ensembles of k in each form."""
    return {"single network": {}, **{f'ensemble_size={k}, "{form}"':
                                     {"ensemble_size": k, "ensemble": form}
                                     for form in FORMS}}


def main(splits=5, k=32):
    networks = options(k)
    X, y = load_digits(return_X_y=True)
    rows = {name: {"accuracy": [], "log_loss": [], "members": [], "epochs": [],
                   "seconds": []} for name in networks}
    for seed in range(splits):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for name, settings in networks.items():
            model = MLPClassifier(**RECIPE, random_state=seed, **settings)
            start = time.perf_counter()
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            r = rows[name]
            r["seconds"].append(time.perf_counter() - start)
            r["accuracy"].append(model.score(X_test, y_test))
            r["log_loss"].append(log_loss(y_test, model.predict_proba(X_test)))
            members = model.predict(X_test, members=True)  # (n, ensemble_size)
            r["members"].append(np.mean(members == y_test[:, None]))
            r["epochs"].append(model.n_iter_)
    print(f"MLPClassifier((128, 128), solver='adamw'), digits, {splits} train/test splits\n")
    print("| network | test accuracy | test log-loss | members alone | epochs | fit time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        accuracy = np.array(r["accuracy"])
        print(f"| {name} | {accuracy.mean():.4f} ± {accuracy.std():.4f} | "
              f"{np.mean(r['log_loss']):.4f} | {np.mean(r['members']):.4f} | "
              f"{np.mean(r['epochs']):.0f} | {np.mean(r['seconds']):.2f} s |")


if __name__ == "__main__":
    main()
