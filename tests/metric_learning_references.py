"""float64 numpy references of the metric-learning losses and metrics, written with
explicit loops over pairs and triplets (independent of the vectorised code)."""

import itertools

import numpy as np


def _distance(a, b, squared=False):
    d2 = float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return d2 if squared else np.sqrt(d2)


def contrastive(labels, embeddings, weights, margin):
    """Mean over ordered pairs (i != j, both weights > 0) of DeepID2's term,
    each pair weighted by w_i."""
    total = norm = 0.0
    n = len(labels)
    for i, j in itertools.permutations(range(n), 2):
        if weights[i] <= 0 or weights[j] <= 0:
            continue
        d = _distance(embeddings[i], embeddings[j])
        term = 0.5 * d ** 2 if labels[i] == labels[j] else 0.5 * max(0.0, margin - d) ** 2
        total += weights[i] * term
        norm += weights[i]
    return total / norm if norm else 0.0


def _hinge(x, margin, soft_margin):
    return np.log1p(np.exp(x)) if soft_margin else max(0.0, margin + x)


def triplet(labels, embeddings, weights, mining, margin, soft_margin=False, squared=False,
            normalize=False):
    """Batch-hard: mean over anchors with a positive and a negative of
    hinge(max_p d(a,p) - min_n d(a,n)); batch-all: mean over active triplets.
    Each term weighted by its anchor's weight."""
    e = np.asarray(embeddings, np.float64)
    if normalize:
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
    n = len(labels)
    valid = [w > 0 for w in weights]
    total = norm = 0.0
    for a in range(n):
        if not valid[a]:
            continue
        pos = [p for p in range(n) if p != a and valid[p] and labels[p] == labels[a]]
        neg = [q for q in range(n) if valid[q] and labels[q] != labels[a]]
        if not pos or not neg:
            continue
        if mining == "batch_hard":
            hp = max(_distance(e[a], e[p], squared) for p in pos)
            hn = min(_distance(e[a], e[q], squared) for q in neg)
            total += weights[a] * _hinge(hp - hn, margin, soft_margin)
            norm += weights[a]
        else:
            for p in pos:
                for q in neg:
                    term = _hinge(_distance(e[a], e[p], squared) - _distance(e[a], e[q], squared),
                                  margin, soft_margin)
                    if term > 0 or soft_margin:
                        total += weights[a] * term
                        norm += weights[a]
    return total / norm if norm else 0.0


def _pairs(labels, embeddings, weights):
    """(distance, same) of every unordered pair of examples of weight > 0."""
    keep = [i for i in range(len(labels)) if weights[i] > 0]
    return [(_distance(embeddings[i], embeddings[j]), labels[i] == labels[j])
            for i, j in itertools.combinations(keep, 2)]


def auc_counts(labels, embeddings, weights):
    """(ordered, total): positive/negative pair combinations with the positive
    pair closer (ties 1/2), and all combinations."""
    pairs = _pairs(labels, embeddings, weights)
    positives = [d for d, s in pairs if s]
    negatives = [d for d, s in pairs if not s]
    ordered = sum(1.0 if n > p else 0.5 if n == p else 0.0 for p in positives for n in negatives)
    return ordered, len(positives) * len(negatives)


def verification_counts(labels, embeddings, weights, threshold):
    pairs = _pairs(labels, embeddings, weights)
    return sum((d <= threshold) == s for d, s in pairs), len(pairs)


def recall_at_one_counts(labels, embeddings, weights):
    """(hits, queries): leave-one-out nearest neighbours, ties counted in expectation."""
    keep = [i for i in range(len(labels)) if weights[i] > 0]
    hits = queries = 0.0
    for q in keep:
        others = [j for j in keep if j != q]
        if not any(labels[j] == labels[q] for j in others):
            continue
        d = {j: _distance(embeddings[q], embeddings[j]) for j in others}
        nearest = min(d.values())
        tied = [j for j in others if d[j] == nearest]
        hits += sum(labels[j] == labels[q] for j in tied) / len(tied)
        queries += 1
    return hits, queries
