"""Human-readable views of a run: training curves (PNG) and the markdown report."""

from __future__ import annotations

from typing import Any, Sequence


def training_curves(history: Sequence[dict[str, float]]):
    """A matplotlib figure of D and G losses and validation NDCG@20 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator"), ("ce_loss", "cross-entropy")):
        points = [(e, h[key]) for e, h in zip(epochs, history) if key in h]
        if points:
            ax_loss.plot(*zip(*points), label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    if ax_loss.lines:
        ax_loss.legend()
    ax_loss.set_title("Training losses")
    val = [h.get("val_ndcg@20") for h in history]
    if any(v is not None for v in val):
        ax_val.plot(epochs, val, color="tab:green")
        best = max(range(len(val)), key=lambda i: val[i] if val[i] is not None else -1)
        ax_val.axvline(epochs[best], color="grey", linestyle=":", label=f"best epoch {epochs[best]}")
        ax_val.legend()
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("NDCG@20")
    ax_val.set_title("Validation NDCG@20")
    fig.tight_layout()
    return fig


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("—" if value is None else str(value))


def run_markdown(result: dict[str, Any]) -> str:
    """The Prefect artifact of a training run: outcome, metrics, decision, drift, every expectation,
    Data Docs. A rejected run gets the reason and the expectations."""
    status = result["status"]
    parts = [f"# genrec training run: {status.replace('_', ' ')}"]
    if status == "data_rejected":
        parts.append(f"{result['message']}\n\nNothing was trained or registered; the champion is unchanged.")
    if result.get("model_version"):
        parts.append(
            f"Model **{result['model_name']}** version **{result['model_version']}**; "
            f"champion is now version **{result.get('champion_version') or 'none'}**."
        )
    metrics = result.get("metrics") or {}
    champion = result.get("champion_metrics") or {}
    baseline = result.get("baseline_metrics") or {}
    if metrics:
        rows = [(k, _fmt(v), _fmt(champion.get(k)), _fmt(baseline.get(k))) for k, v in sorted(metrics.items())]
        parts.append("## Test metrics\n" + _table(rows, ("metric", "candidate", "champion", "popularity")))
    decision = result.get("decision") or {}
    if decision:
        verdict = "promote" if decision.get("promote") else "do not promote"
        parts.append(f"## Gate: {verdict}\n" + "\n".join(f"- {r}" for r in decision.get("reasons", [])))
    if result.get("cleaning"):
        parts.append("## Cleaning\n" + _table([(k, v) for k, v in result["cleaning"].items()], ("step", "rows")))
    attributes = result.get("attributes")
    if attributes:
        parts.append("## Item attributes used\n" + _table(list(attributes["columns"].items()), ("column", "as"))
                     + f"\n\n{attributes['features']} features; {attributes['items_without_attributes']} of "
                       f"{attributes['items']} items had none (known by their interactions alone).")
    if result.get("drift"):
        rows = [(c["metric"], _fmt(c["value"]), _fmt(c["threshold"]), c["action"],
                 "pass" if c["passed"] else f"**{c['action'].upper()}**") for c in result["drift"]]
        parts.append("## Drift against the champion's training data\n"
                     + _table(rows, ("metric", "value", "threshold", "on failure", "result")))
    if result.get("validation"):
        rows = [(o["suite"], o["expectation"], o.get("column") or "", "pass" if o["success"] else "**FAIL**",
                 _fmt(o.get("observed")) if not o.get("unexpected_count") else f"{o['unexpected_count']} rows, e.g. "
                 f"{str(o.get('examples', [''])[:1])[:40]}", o.get("threshold", "")) for o in result["validation"]]
        parts.append("## Data quality\n" + _table(rows, ("suite", "expectation", "column", "result", "observed",
                                                           "threshold")))
    if result.get("data_docs"):
        parts.append(f"Data Docs: [{result['data_docs']}](file://{result['data_docs']})")
    return "\n\n".join(parts)


def decision_markdown(decision: dict[str, Any], gate_test: dict[str, Any]) -> str:
    """The gate's decision on its own: verdict, every reason with its numbers, the test it used."""
    verdict = "promote" if decision["promote"] else "do not promote"
    rows = [("candidate", _fmt(decision["candidate"])), ("champion", _fmt(decision.get("champion"))),
            ("popularity", _fmt(decision["baseline"]))]
    if decision.get("interval"):
        low, high = decision["interval"]
        rows.append(("95% interval of candidate - champion", f"[{low:+.4f}, {high:+.4f}]"))
    return "\n\n".join([
        f"# Gate: {verdict}",
        _table(rows, (decision["metric"], "value")),
        "\n".join(f"- {r}" for r in decision["reasons"]),
        f"Compared on {gate_test['rule']}: {gate_test['interactions']} interactions of {gate_test['users']} users "
        f"({gate_test['removed']} removed).",
    ])
