"""Experiment: fine-tune MiniLM's top layers jointly with the pair head, on the human labels.

    python -m evals.fit_pair_encoder [--tune-layers 2] [--epochs 2] [--folds 0]

The pair head (:mod:`app.grading.pair_model`) reads the frozen encoder's token vectors. Here the
top ``--tune-layers`` transformer layers get a trainable copy whose token vectors feed the head
(the original layers would keep serving every other feature, so at run time the lower layers
are shared and only the copy's layers are extra). The lower layers' outputs for every distinct
text are computed once and cached. Each fold starts from the pair head fitted without that
fold (``pair-v1-fold<k>``) and the original layers, so at step 0 it scores exactly as the
shipped fold head does; what the fine-tuning adds is measured on the fold's questions (SemEval
AUC and macro-F1 at p >= 0.5, Mohler Pearson), beside the fold head alone on the same rows.

Measured (2026-12-03, AMD EPYC, 2 cores, fold 0 = 1,837 SemEval and 469 Mohler answers to
questions no fit saw; the head alone: AUC 0.777, macro-F1 0.677, Mohler r 0.571): two tuned
layers, 1 epoch (18 min): AUC 0.768, macro-F1 0.667, r 0.574, while the training loss kept
falling. The tuned layers learn the training questions, not what transfers to new ones, so
nothing of this ships; the script stays so that the figure can be reproduced and the idea
retried with more data.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.grading.pair_model import PARAM_NAMES, PairModel, PairText, question_stems
from evals.fit_cross_encoder import additive_mask, figures, model_path, run_layer
from evals.fit_pair_model import DEFAULT_WORK, HYPER, _module, encode_texts, load_pairs, predict, source_weights

MAX_LEN = 128
WORK = Path(".cache") / "pair-encoder-fit"


def lower_states(texts: Sequence[str], frozen: int, work: Path) -> dict[str, Any]:
    """Per text: the hidden states after the first ``frozen`` layers (fp16, all positions)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    cache = work / f"lower-{frozen}-{len(texts)}.pt"
    if cache.is_file():
        return dict(torch.load(cache))
    tok = AutoTokenizer.from_pretrained(model_path())
    bert = AutoModel.from_pretrained(model_path()).eval()
    out: dict[str, Any] = {}
    order = sorted(texts, key=len)
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            part = order[start : start + 128]
            enc = tok(part, truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
            h = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
            ext = additive_mask(enc["attention_mask"].float())
            for layer in bert.encoder.layer[:frozen]:
                h = run_layer(layer, h, ext)
            for i, text in enumerate(part):
                n = int(enc["attention_mask"][i].sum())
                out[text] = h[i, :n].to(torch.float16).clone()
    work.mkdir(parents=True, exist_ok=True)
    torch.save(out, cache)
    return out


class Tuned:
    """The trainable top layers: a text's lower states -> (unit token vectors without the
    special tokens, the normalised mean-pooled embedding), as ``TokenEmbeddings`` would be."""

    def __init__(self, frozen: int) -> None:
        from torch import nn
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(model_path())
        self.layers = nn.ModuleList(copy.deepcopy(list(bert.encoder.layer[frozen:])))

    def __call__(self, states: list[Any]) -> list[tuple[Any, Any]]:
        import torch

        n = max(s.shape[0] for s in states)
        h = torch.zeros(len(states), n, states[0].shape[-1])
        mask = torch.zeros(len(states), n)
        for i, s in enumerate(states):
            h[i, : s.shape[0]] = s.float()
            mask[i, : s.shape[0]] = 1
        ext = additive_mask(mask)
        for layer in self.layers:
            h = run_layer(layer, h, ext)
        out = []
        for i, s in enumerate(states):
            k = s.shape[0]
            tokens = h[i, 1 : k - 1]
            emb = h[i, :k].mean(0)
            out.append((tokens / tokens.norm(dim=-1, keepdim=True).clamp_min(1e-8), emb / emb.norm().clamp_min(1e-8)))
        return out


def make_batch(
    rows: Sequence[tuple[str, str, PairText, PairText, np.ndarray]],
    vectors: dict[str, tuple[Any, Any]],
    max_tokens: int,
) -> dict[str, Any]:
    """The head's batch (as ``fit_pair_model._batch``) with token vectors from the tuned layers."""
    import torch

    def pad(names: list[str], texts: list[PairText], others: list[PairText], asked: list[np.ndarray]) -> list[Any]:
        lens = [min(max_tokens, len(t.stems), vectors[nm][0].shape[0]) for nm, t in zip(names, texts, strict=True)]
        n = max(1, max(lens))
        x = torch.zeros(len(texts), n, 384)
        c, e, q = (np.zeros((len(texts), n), dtype=np.float32) for _ in range(3))
        m = np.zeros((len(texts), n), dtype=bool)
        for i, (nm, t, o, a, k) in enumerate(zip(names, texts, others, asked, lens, strict=True)):
            st = t.stems[:k]
            x[i, :k] = vectors[nm][0][:k]
            c[i, :k], m[i, :k] = t.content[:k], True
            e[i, :k] = np.isin(st, o.stems) & (st >= 0)
            q[i, :k] = np.isin(st, a)
        return [x, *(torch.from_numpy(v) for v in (c, e, q, m))]

    cn, an = [r[0] for r in rows], [r[1] for r in rows]
    claims, answers, asked = [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]
    c, cc, ce, cq, cm = pad(cn, claims, answers, asked)
    a, ac, ae, aq, am = pad(an, answers, claims, asked)
    cos = torch.stack([(vectors[x][1] * vectors[y][1]).sum() for x, y in zip(cn, an, strict=True)])
    return {"c": c, "cc": cc, "ce": ce, "cq": cq, "cm": cm, "a": a, "ac": ac, "ae": ae, "aq": aq, "am": am, "cos": cos}


def head_from(model: PairModel, hyper: dict[str, Any]) -> Any:
    import torch

    head = _module(hyper, 0)
    with torch.no_grad():
        for name in PARAM_NAMES:
            getattr(head, name).copy_(torch.from_numpy(model.p[name]).reshape(getattr(head, name).shape))
    return head


def scores(tuned: Tuned, head: Any, rows: Sequence[Any], lower: dict[str, Any], hyper: dict[str, Any]) -> np.ndarray:
    import torch

    out = []
    head.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), 128):
            part = rows[start : start + 128]
            names = list(dict.fromkeys(t for r in part for t in (r[0], r[1])))
            vectors = dict(zip(names, tuned([lower[t] for t in names]), strict=True))
            out.append(torch.sigmoid(head(make_batch(part, vectors, hyper["max_tokens"]))).numpy())
    return np.concatenate(out)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune-layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--folds", default="0")
    ap.add_argument("--lr", type=float, default=3e-5, help="the tuned layers' learning rate")
    ap.add_argument("--head-lr", type=float, default=3e-4)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    hyper = dict(HYPER)
    frozen = 6 - args.tune_layers

    pairs = load_pairs()
    texts = encode_texts([t for p in pairs for t in (p.claim, p.answer)], DEFAULT_WORK)
    t0 = time.perf_counter()
    lower = lower_states(list(dict.fromkeys(t for p in pairs for t in (p.claim, p.answer))), frozen, WORK)
    print(f"{len(pairs)} pairs, {len(lower)} texts, lower states in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = [(p.claim, p.answer, texts[p.claim], texts[p.answer], question_stems(p.question)) for p in pairs]
    labels = np.array([p.label for p in pairs])
    weights = source_weights(pairs, hyper)
    sources = np.array([p.source for p in pairs])
    shipped = PairModel.load()
    groups = shipped.meta["folds"]["groups"]
    fold = np.array([groups[p.group] for p in pairs])
    for k in [int(f) for f in args.folds.split(",")]:
        base = PairModel.load(f"pair-v1-fold{k}")
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        te = te[np.isin(sources[te], ["semeval", "mohler"])]
        before = predict(base, [(r[2], r[3], r[4]) for r in (rows[i] for i in te)])
        print(f"fold {k}, the fold head alone: {json.dumps(figures(sources[te], labels[te], before))}", flush=True)
        tuned, head = Tuned(frozen), head_from(base, hyper)
        at0 = scores(tuned, head, [rows[i] for i in te], lower, hyper)
        print(
            f"  step 0 through the tuned path (should match): {json.dumps(figures(sources[te], labels[te], at0))}"
            f", max |diff| {float(np.max(np.abs(at0 - before))):.4f}",
            flush=True,
        )
        opt = torch.optim.AdamW(
            [
                {"params": list(tuned.layers.parameters()), "lr": args.lr},
                {"params": list(head.parameters()), "lr": args.head_lr},
            ],
            weight_decay=0.01,
        )
        y = torch.from_numpy(labels.astype(np.float32))
        w = torch.from_numpy(weights.astype(np.float32))
        rng = np.random.default_rng(0)
        bs = args.batch_size
        for epoch in range(args.epochs):
            tuned.layers.train()
            head.train()
            order = tr[rng.permutation(len(tr))]
            t1 = time.perf_counter()
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                part = [rows[i] for i in idx]
                names = list(dict.fromkeys(t for r in part for t in (r[0], r[1])))
                vectors = dict(zip(names, tuned([lower[t] for t in names]), strict=True))
                logits = head(make_batch(part, vectors, hyper["max_tokens"]))
                loss = (
                    torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx], weight=w[idx], reduction="sum")
                    / w[idx].sum()
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
                if (start // bs) % 50 == 0:
                    print(
                        f"    step {start // bs}: loss {loss.item():.4f} ({time.perf_counter() - t1:.0f} s)", flush=True
                    )
            after = scores(tuned, head, [rows[i] for i in te], lower, hyper)
            print(
                f"  epoch {epoch + 1} ({time.perf_counter() - t1:.0f} s): "
                f"{json.dumps(figures(sources[te], labels[te], after))}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
