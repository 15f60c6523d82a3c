"""
Sparse text classification
==========================

:class:`cbp.MLPClassifier` fits a ``scipy.sparse`` matrix as it is: the first
layer reads only the non-zeros of the CSR rows, and the matrix is never
made dense. Here a small corpus is generated in the script -- sentences about
four topics, each topic with its own vocabulary mixed with words shared by
all -- turned into a TF-IDF matrix by scikit-learn's ``TfidfVectorizer``, and
classified.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from cbp import MLPClassifier

# %%
# A synthetic corpus
# ------------------
#
# Each sentence draws most of its words from the common vocabulary and a few
# from its topic's, so that no single word gives the topic away.

topics = {
    "sport": "match goal team player coach score league season referee stadium "
             "win defeat tournament penalty",
    "cooking": "recipe oven flour butter sugar salt pan boil bake dinner "
               "spice garlic sauce taste",
    "science": "experiment theory atom energy data laboratory cell gene "
               "physics measure hypothesis telescope molecule",
    "travel": "flight hotel beach passport museum train island journey "
              "luggage map tourist border coast",
}
common = ("the a of and to in is was it for on with as at by this that from "
          "new good day time year people way great small old long").split()

rng = np.random.RandomState(0)
documents, labels = [], []
for topic, words in topics.items():
    words = words.split()
    for _ in range(150):
        n_common, n_topic = rng.randint(6, 12), rng.randint(1, 4)
        sentence = list(rng.choice(common, n_common)) + list(rng.choice(words, n_topic))
        # a word from another topic now and then, to make it harder
        if rng.rand() < 0.5:
            other = rng.choice([t for t in topics if t != topic])
            sentence.append(rng.choice(topics[other].split()))
        rng.shuffle(sentence)
        documents.append(" ".join(sentence))
        labels.append(topic)

print(len(documents), "sentences, e.g.:")
for document in documents[::150]:
    print("   ", document)

# %%
# TF-IDF features, a sparse CSR matrix
# ------------------------------------

docs_train, docs_test, y_train, y_test = train_test_split(
    documents, labels, stratify=labels, random_state=0)
vectorizer = TfidfVectorizer()
X_train = vectorizer.fit_transform(docs_train)
X_test = vectorizer.transform(docs_test)
print(f"{type(X_train).__name__}: {X_train.shape[0]} rows, {X_train.shape[1]} words, "
      f"{X_train.nnz} non-zeros ({X_train.nnz / np.prod(X_train.shape):.1%})")

# %%
# The network fits the CSR matrix directly
# ----------------------------------------

model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=0)
model.fit(X_train, y_train)
print(f"test accuracy {model.score(X_test, y_test):.3f} after {model.n_iter_} epochs")

ConfusionMatrixDisplay.from_estimator(model, X_test, y_test, cmap="Blues")
plt.title("MLPClassifier on TF-IDF features")
plt.tight_layout()
