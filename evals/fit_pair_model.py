"""Fit and cross-validate the pair head of :mod:`app.grading.pair_model`.

    python -m evals.fit_pair_model [--folds 5] [--seed 0] [--epochs 8] [--no-save]

1. Read every human-labelled pair (:mod:`evals.human_data`: SemEval-2013, Mohler, the gold
   set's train split, the bank's variants and misconceptions) and encode each distinct text
   once with the shipped MiniLM (token vectors, as the grader sees them).
2. Question-grouped ``folds``-fold cross-validation: the head is trained on the other folds'
   questions and scores this fold's; the figures per source (SemEval AUC and macro-F1 at
   p >= 0.5, Mohler Pearson, beside plain cosine on the same rows) are printed and stored.
   Each fold's head is saved beside the shipped one (``pair-v1-fold<k>``, a few hundred KB
   each, with the fold of every question in ``pair-v1.json``) so that the calibration can be
   stacked on out-of-fold outputs and ``mockinterview eval semeval|mohler`` can reproduce the
   cross-validated figures without retraining (``evals/human_cv.py``).
3. Train once more on everything and save ``app/grading/artifacts/pair-v1.{npz,json}`` with
   the data it was fitted on, the hyper-parameters and the cross-validated figures.

Runs on the CPU in a few minutes (two cores); deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.grading.pair_model import ARTIFACT_DIR, DEFAULT_VERSION, PARAM_NAMES, PairModel, PairText, question_stems
from evals.human_data import DataMissing, Pair, bank_pairs, gold_pairs, mohler_pairs, semeval_pairs

DIM = 384
HYPER: dict[str, Any] = {
    "proj_dim": 64,
    "hidden": 64,
    "hidden2": 32,
    "epochs": 3,
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "dropout": 0.1,
    "max_tokens": 96,
    "source_weight": {"semeval": 1.0, "mohler": 1.0, "gold": 0.5, "bank": 1.0},
}
"""Each source's rows are weighted so that it contributes ``source_weight`` times the average
row count (SemEval's 8,910 answers would otherwise drown the rest)."""
DEFAULT_WORK = Path(".cache") / "pair-fit"


def load_pairs() -> list[Pair]:
    pairs: list[Pair] = []
    for loader in (semeval_pairs, mohler_pairs):
        try:
            pairs.extend(loader())
        except DataMissing as exc:
            raise SystemExit(f"error: {exc}; the pair head is fitted on real human labels") from None
    pairs.extend(gold_pairs())
    pairs.extend(bank_pairs())
    return pairs


def encode_texts(texts: Sequence[str], work: Path) -> dict[str, PairText]:
    """Token vectors of every text, cached in ``work`` (keyed by the texts themselves)."""
    cache = work / "tokens-v2.pkl"
    known: dict[str, PairText] = {}
    if cache.is_file():
        known = pickle.loads(cache.read_bytes())
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    if todo:
        from rich.progress import track

        from app.grading.embedding import Encoder

        enc = Encoder()
        chunk = 256
        for start in track(range(0, len(todo), chunk), description=f"encoding {len(todo)} texts"):
            part = todo[start : start + chunk]
            for text, te in zip(part, enc.encode_tokens(part), strict=True):
                known[text] = PairText.of(te)
        work.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(known))
    return known


# -- the torch module (mirrors PairModel's numpy inference) -----------------------------------


def _module(hyper: dict[str, Any], seed: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    k, h, h2 = hyper["proj_dim"], hyper["hidden"], hyper["hidden2"]

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Parameter(torch.randn(DIM, k) * DIM**-0.5)
            self.w1 = nn.Parameter(torch.randn(4 * k + 4, h) * (4 * k + 4) ** -0.5)
            self.b1 = nn.Parameter(torch.zeros(h))
            self.wg = nn.Parameter(torch.zeros(k + 2))
            self.bg = nn.Parameter(torch.zeros(1))
            self.w2 = nn.Parameter(torch.randn(4 * h + 1, h2) * (4 * h + 1) ** -0.5)
            self.b2 = nn.Parameter(torch.zeros(h2))
            self.w3 = nn.Parameter(torch.randn(h2) * h2**-0.5)
            self.b3 = nn.Parameter(torch.zeros(1))
            self.log_tau = nn.Parameter(torch.tensor([np.log(0.1)], dtype=torch.float32))
            self.drop = nn.Dropout(hyper["dropout"])

        def side(self, x: Any, xc: Any, xe: Any, xq: Any, xm: Any, y: Any, ym: Any) -> Any:
            s = x @ y.transpose(1, 2)
            s = s.masked_fill(~ym[:, None, :], -1e4)
            att = torch.softmax(s / self.log_tau.exp(), dim=-1)
            aligned = att @ y
            px, pa = x @ self.proj, aligned @ self.proj
            smax = s.max(dim=-1).values[..., None]
            flags = [xc[..., None], xe[..., None], xq[..., None]]
            hh = torch.relu(torch.cat([px, pa, px * pa, (px - pa).abs(), smax, *flags], -1) @ self.w1 + self.b1)
            g = torch.cat([px, xc[..., None], xq[..., None]], -1) @ self.wg + self.bg
            g = torch.softmax(g.masked_fill(~xm, -1e4), dim=-1)
            pooled = (g[..., None] * hh).sum(1)
            hmax = hh.masked_fill(~xm[..., None], 0.0).max(1).values
            return torch.cat([pooled, hmax], -1)

        def forward(self, batch: dict[str, Any]) -> Any:
            f = torch.cat(
                [
                    self.side(batch["c"], batch["cc"], batch["ce"], batch["cq"], batch["cm"], batch["a"], batch["am"]),
                    self.side(batch["a"], batch["ac"], batch["ae"], batch["aq"], batch["am"], batch["c"], batch["cm"]),
                    batch["cos"][:, None],
                ],
                -1,
            )
            hidden = torch.relu(self.drop(f) @ self.w2 + self.b2)
            return hidden @ self.w3 + self.b3

    return Head()


Row = tuple[PairText, PairText, np.ndarray]
"""(claim, answer, the question's stem numbers)."""


def _batch(rows: Sequence[Row], max_tokens: int) -> dict[str, Any]:
    import torch

    def pad(texts: list[PairText], others: list[PairText], asked: list[np.ndarray]) -> list[Any]:
        n = max(1, min(max_tokens, max(len(t.tokens) for t in texts)))
        x = np.zeros((len(texts), n, DIM), dtype=np.float32)
        c, e, q = (np.zeros((len(texts), n), dtype=np.float32) for _ in range(3))
        m = np.zeros((len(texts), n), dtype=bool)
        for i, (t, o, a) in enumerate(zip(texts, others, asked, strict=True)):
            k = min(n, len(t.tokens))
            st = t.stems[:k]
            x[i, :k], c[i, :k], m[i, :k] = t.tokens[:k], t.content[:k], True
            e[i, :k] = np.isin(st, o.stems) & (st >= 0)
            q[i, :k] = np.isin(st, a)
        return [torch.from_numpy(v) for v in (x, c, e, q, m)]

    claims, answers, asked = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    c, cc, ce, cq, cm = pad(claims, answers, asked)
    a, ac, ae, aq, am = pad(answers, claims, asked)
    cos = np.array([float(r[0].embedding @ r[1].embedding) for r in rows], dtype=np.float32)
    return {
        "c": c,
        "cc": cc,
        "ce": ce,
        "cq": cq,
        "cm": cm,
        "a": a,
        "ac": ac,
        "ae": ae,
        "aq": aq,
        "am": am,
        "cos": torch.from_numpy(cos),
    }


def train(
    rows: Sequence[Row],
    labels: np.ndarray,
    weights: np.ndarray,
    hyper: dict[str, Any],
    seed: int,
    verbose: bool = False,
) -> PairModel:
    import torch

    torch.set_num_threads(2)
    model = _module(hyper, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=hyper["lr"], weight_decay=hyper["weight_decay"])
    rng = np.random.default_rng(seed)
    y_all = torch.from_numpy(labels.astype(np.float32))
    w_all = torch.from_numpy(weights.astype(np.float32))
    bs = hyper["batch_size"]
    steps = hyper["epochs"] * ((len(rows) + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hyper["lr"], total_steps=steps)
    model.train()
    for epoch in range(hyper["epochs"]):
        if verbose:
            print(f"  epoch {epoch + 1}/{hyper['epochs']}", flush=True)
        order = rng.permutation(len(rows))
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            batch = _batch([rows[i] for i in idx], hyper["max_tokens"])
            logits = model(batch)
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, y_all[idx], weight=w_all[idx], reduction="sum"
                )
                / w_all[idx].sum()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    params = {n: getattr(model, n).detach().numpy().copy() for n in PARAM_NAMES}
    return PairModel(params)


def predict(model: PairModel, rows: Sequence[Row]) -> np.ndarray:
    return np.array([model.prob(c, a, q) for c, a, q in rows])


def source_weights(pairs: Sequence[Pair], hyper: dict[str, Any]) -> np.ndarray:
    sources = [p.source for p in pairs]
    counts = {s: sources.count(s) for s in set(sources)}
    mean = len(pairs) / len(counts)
    return np.array([hyper["source_weight"].get(s, 1.0) * mean / counts[s] for s in sources])


def group_folds(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of every row: each source's questions shuffled and dealt round-robin."""
    by_source: dict[str, list[str]] = {}
    for g in sorted(set(groups)):
        by_source.setdefault(g.split(":", 1)[0], []).append(g)
    fold_of: dict[str, int] = {}
    for source, names in by_source.items():
        # One generator per source, so a source's folds do not depend on the other sources.
        rng = np.random.default_rng([seed, zlib.crc32(source.encode())])
        names = list(names)
        rng.shuffle(names)
        fold_of.update({g: i % folds for i, g in enumerate(names)})
    return np.array([fold_of[g] for g in groups])


def source_figures(pairs: Sequence[Pair], prob: np.ndarray, cosine: np.ndarray) -> dict[str, Any]:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, roc_auc_score

    out: dict[str, Any] = {}
    src = np.array([p.source for p in pairs])
    y = np.array([p.label for p in pairs])
    for s in ("semeval", "mohler", "gold", "bank"):
        sel = src == s
        if not sel.any():
            continue
        fig: dict[str, Any] = {"n": int(sel.sum())}
        if s in ("semeval", "bank"):
            yy = y[sel] >= 0.5
            fig["auc"] = round(float(roc_auc_score(yy, prob[sel])), 4)
            fig["macro_f1_at_0.5"] = round(float(f1_score(yy, prob[sel] >= 0.5, average="macro")), 4)
            fig["cosine_auc"] = round(float(roc_auc_score(yy, cosine[sel])), 4)
        else:
            fig["pearson"] = round(float(pearsonr(prob[sel], y[sel])[0]), 4)
            fig["spearman"] = round(float(spearmanr(prob[sel], y[sel])[0]), 4)
            fig["cosine_pearson"] = round(float(pearsonr(cosine[sel], y[sel])[0]), 4)
        out[s] = fig
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=HYPER["epochs"])
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--no-save", action="store_true", help="cross-validate only")
    ap.add_argument("--skip-cv", action="store_true", help="fit the shipped head only")
    args = ap.parse_args(argv)
    hyper = dict(HYPER, epochs=args.epochs)

    started = time.perf_counter()
    pairs = load_pairs()
    texts = encode_texts([t for p in pairs for t in (p.claim, p.answer)], args.work)
    rows = [(texts[p.claim], texts[p.answer], question_stems(p.question)) for p in pairs]
    labels = np.array([p.label for p in pairs])
    weights = source_weights(pairs, hyper)
    cosine = np.array([float(c.embedding @ a.embedding) for c, a, _ in rows])
    print(
        f"{len(pairs)} pairs: "
        + ", ".join(f"{s} {sum(p.source == s for p in pairs)}" for s in ("semeval", "mohler", "gold", "bank"))
    )

    meta: dict[str, Any] = {
        "model": "ESIM-style alignment head over all-MiniLM-L6-v2 token vectors (app/grading/pair_model.py)",
        "fitted_on": {s: sum(p.source == s for p in pairs) for s in ("semeval", "mohler", "gold", "bank")},
        "fitted_on_note": "SemEval-2013 2-way training answers and Mohler 2011 (real human labels); the gold set's "
        "train split and the bank's variants/misconceptions (written in this project; its test split left out)",
        "hyper_parameters": hyper,
        "seed": args.seed,
    }
    if not args.skip_cv:
        fold = group_folds([p.group for p in pairs], args.folds, args.seed)
        oof = np.zeros(len(pairs))
        for k in range(args.folds):
            t0 = time.perf_counter()
            tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
            m = train([rows[i] for i in tr], labels[tr], weights[tr], hyper, args.seed)
            oof[te] = predict(m, [rows[i] for i in te])
            m.version = f"{DEFAULT_VERSION}-fold{k}"
            m.meta = {
                "fold": k,
                "folds": args.folds,
                "seed": args.seed,
                "note": "trained without this fold's questions",
            }
            m.save(ARTIFACT_DIR if not args.no_save else args.work)
            print(f"fold {k}: {len(tr)} train / {len(te)} test pairs, {time.perf_counter() - t0:.0f} s", flush=True)
        cv = source_figures(pairs, oof, cosine)
        meta["cross_validation"] = {
            "protocol": f"{args.folds}-fold, grouped by question within each source (no question in both)",
            **cv,
        }
        meta["folds"] = {
            "folds": args.folds,
            "seed": args.seed,
            "groups": {p.group: int(f) for p, f in zip(pairs, fold, strict=True)},
        }
        print(json.dumps(cv, indent=1))
    if not args.no_save:
        final = train(rows, labels, weights, hyper, args.seed)
        final.version, final.meta = DEFAULT_VERSION, meta
        half = PairModel({k: v.astype(np.float16).astype(np.float32) for k, v in final.p.items()})
        check = rows[:: max(1, len(rows) // 300)]
        drift = float(np.max(np.abs(predict(final, check) - predict(half, check))))
        meta["float16_max_prob_change"] = round(drift, 5)
        path = final.save(ARTIFACT_DIR)
        print(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB), float16 drift {drift:.5f}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
