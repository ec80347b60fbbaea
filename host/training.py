"""The training job: a device trains, float32 training of the same network runs beside it."""

import time

import numpy as np

from . import float_model

__all__ = ["train_float32", "accuracy", "run_training"]


def accuracy(outputs, labels):
    """Fraction of rows whose first largest output is the label."""
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def train_float32(cfg, Ws, bs, data, epochs, batch, lr_shift, on_epoch=None):
    """Mini-batch SGD in float32 with the device's schedule: stored order, summed gradients,
    ``eta = 2**-lr_shift``. Returns ``(records, Ws, bs)``; records as the device gives them."""
    Ws = [np.asarray(W, np.float32) for W in Ws]
    bs = [np.asarray(b, np.float32) for b in bs]
    X, Y = data.x.astype(np.float32), data.y.astype(np.float32)
    eta = np.float32(2.0 ** -lr_shift)
    records = []
    for epoch in range(epochs):
        loss = correct = 0.0
        for start in range(0, len(X), batch):
            xb, yb = X[start:start + batch], Y[start:start + batch]
            dWs, dbs, a_L, _ = float_model.backprop(Ws, bs, cfg.activations, xb, yb)
            loss += float(np.sum(float_model.loss(a_L, yb)))
            correct += np.count_nonzero(np.argmax(a_L, 1) == np.argmax(yb, 1))
            Ws = [W - eta * dW.astype(np.float32) for W, dW in zip(Ws, dWs)]
            bs = [b - eta * db.astype(np.float32) for b, db in zip(bs, dbs)]
        rec = {"loss": loss / len(X), "train_acc": correct / len(X)}
        records.append(rec)
        if on_epoch:
            on_epoch(epoch, rec)
    return records, Ws, bs


def split(dataset, seed):
    """Held-out 20% (fixed), and the training part in a seeded order (the device trains in
    stored order, so the shuffle happens once, here)."""
    train, test = dataset.split(0.2, seed=0)
    return train.subset(np.random.default_rng(seed).permutation(len(train))), test


def samples_needed(dataset):
    """Data-memory slots a training job uses: training and held-out sets and a scratch slot."""
    return len(dataset) + 1


def run_training(device, cfg, dataset, epochs, batch, lr_shift, seed, progress=None):
    """Split, initialise (LeCun, seeded), upload, train on ``device`` and in float32 beside
    it. Returns the result dict of ``dyadic train --json`` plus ``"float32_epochs"`` and the
    final device parameters under ``"params"``."""
    dataset.check(cfg)
    train, test = split(dataset, seed)
    # a small board's data memory holds part of the training set (one slot stays free for
    # single samples): it trains on as many as fit, float32 on the same ones
    train = train.subset(np.arange(min(len(train), device.capacity - 1)))
    Ws, bs = float_model.lecun_init(cfg.sizes, np.random.default_rng(seed))
    started = time.perf_counter()
    device.write_params(Ws, bs)
    device.write_dataset(train.x, train.y)
    records = device.train(epochs, batch, lr_shift, seed, on_epoch=progress)
    seconds = time.perf_counter() - started
    _, test_acc = device.evaluate(test.x, test.y)
    f_records, fWs, fbs = train_float32(cfg, Ws, bs, train, epochs, batch, lr_shift)
    f_out, _ = float_model.forward(fWs, fbs, cfg.activations, test.x.astype(np.float32))
    return {"epochs": records, "test_acc": test_acc, "train_samples": len(train),
            "float32_test_acc": accuracy(f_out[-1], np.argmax(test.y, 1)),
            "seconds": seconds, "float32_epochs": f_records,
            "params": device.read_params()}
