"""The dataset card: a README.md that says what an export holds, and dataset.json with the same facts for programs.

A dataset outlives the tool that made it, so the card states what a reader cannot see from the files: which
images were chosen and how many a person corrected, which model versions pre-labeled them, how the split was
drawn (fractions and seed), what the class indices mean, and how rare each class is (the pixel-ratio table face
parsing papers print: a class at 0.02% of pixels needs care in training).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceparse.core.formats.base import CARD_DATA_FILE, CARD_FILE, SCHEMA_FILE
from faceparse.core.schemas import LabelSchema
from faceparse.core.wording import counted


@dataclass
class CardFacts:
    project: str
    format_name: str
    format_title: str
    layout: str
    selection: str
    statuses: dict[str, int]
    seed: int
    fractions: tuple[float, float, float]
    splits: dict[str, int]
    schema: LabelSchema
    source_schema: LabelSchema
    class_pixels: dict[str, int]
    corrected_by_hand: int
    model_versions: dict[str, int]
    approved_as_predicted: int = 0
    imported: int = 0
    known_models: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    created: str = ""
    top_level: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.splits.values())

    def ratios(self) -> dict[str, float]:
        """Percent of all exported pixels per class."""
        total = sum(self.class_pixels.values()) or 1
        return {name: 100.0 * n / total for name, n in self.class_pixels.items()}


def _model_line(version: str, images: int, known: list[dict[str, Any]]) -> str:
    details = [m for m in known if m["version"] == version]
    if not details:
        return f"- `{version}`: {counted(images, 'image')}"
    model = details[0]
    metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in sorted(model.get("metrics", {}).items()))
    extra = f"; {metrics}" if metrics else ""
    return f"- `{version}` ({model['task']}, trained {model['created']}{extra}): {counted(images, 'image')}"


def _mapping_notes(facts: CardFacts) -> list[str]:
    if facts.schema.name == facts.source_schema.name:
        return []
    notes = facts.source_schema.mapping_notes.get(facts.schema.name, "")
    text = f"Masks were converted from `{facts.source_schema.name}` to `{facts.schema.name}` with the schema's " \
           "declared mapping."
    return [text + (f" {notes}" if notes else ""), ""]


def render_markdown(facts: CardFacts) -> str:
    schema = facts.schema
    mapped = "" if schema.name == facts.source_schema.name else \
        f", mapped from the project's `{facts.source_schema.name}` ({facts.source_schema.num_classes} classes)"
    split_text = ", ".join(f"{name} {n}" for name, n in facts.splits.items())
    fractions = "/".join(f"{f:g}" for f in facts.fractions)
    lines = [
        f"# {facts.project}: face-parsing dataset",
        "",
        f"Exported by FaceParse Studio on {facts.created} in the **{facts.format_title}** layout (`{facts.format_name}`).",
        "",
        "| | |",
        "|---|---|",
        f"| images | {facts.count} |",
        f"| selection | {facts.selection} |",
        f"| by status | {', '.join(f'{k} {v}' for k, v in sorted(facts.statuses.items())) or 'none'} |",
        f"| corrected by hand | {facts.corrected_by_hand} of {facts.count} |",
        f"| checked and left as predicted | {facts.approved_as_predicted} of {facts.count} |",
        *([f"| imported from another dataset, not edited here | {facts.imported} of {facts.count} |"]
          if facts.imported else []),
        f"| split | {split_text} (fractions {fractions}, seed {facts.seed}) |",
        f"| schema | `{schema.name}`, {schema.num_classes} classes{mapped} |",
        "",
        *_mapping_notes(facts),
        "## Pre-labeling models",
        "",
    ]
    if facts.model_versions:
        lines += [_model_line(v, n, facts.known_models) for v, n in sorted(facts.model_versions.items())]
    else:
        lines.append("No image in this export was pre-labeled by a model.")
    lines += ["", "## Classes and pixel ratios", "",
              "Ratio: share of all pixels of all exported masks.", "",
              "| index | class | colour | pixels | ratio (%) |", "|---:|---|---|---:|---:|"]
    ratios = facts.ratios()
    for i, name in enumerate(schema.classes):
        colour = "#{:02x}{:02x}{:02x}".format(*schema.colors[i])
        lines.append(f"| {i} | {name} | {colour} | {facts.class_pixels[name]} | {ratios[name]:.3f} |")
    lines += ["", "## Files", "", facts.layout, f"- `{CARD_DATA_FILE}`: the facts of this card as JSON", ""]
    if facts.skipped:
        lines += ["## Left out", ""] + [f"- {s}" for s in facts.skipped] + [""]
    return "\n".join(lines)


CARD_GENERATOR_KEY = "generator"
CARD_GENERATOR = "FaceParse Studio"
"""The entry of dataset.json that tells this program's exports from other tools' folders with a dataset.json."""
CARD_TOP_LEVEL_KEY = "top_level"
"""The entry of dataset.json naming what the export wrote at the top of its folder: replacing the export deletes
those, and anything else found there later is someone's own (notes, training runs), never deleted unasked."""


def card_data(facts: CardFacts) -> dict[str, Any]:
    return {
        CARD_GENERATOR_KEY: CARD_GENERATOR,
        "project": facts.project,
        "created": facts.created,
        "format": facts.format_name,
        "selection": facts.selection,
        "count": facts.count,
        "statuses": facts.statuses,
        "corrected_by_hand": facts.corrected_by_hand,
        "approved_as_predicted": facts.approved_as_predicted,
        "imported": facts.imported,
        "split": {"fractions": list(facts.fractions), "seed": facts.seed, "counts": facts.splits},
        "schema": facts.schema.name,
        "schema_file": SCHEMA_FILE,
        "source_schema": facts.source_schema.name,
        "class_pixels": facts.class_pixels,
        "class_ratios_percent": facts.ratios(),
        "model_versions": facts.model_versions,
        "skipped": facts.skipped,
        CARD_TOP_LEVEL_KEY: facts.top_level,
    }


def write_card(folder: Path, facts: CardFacts) -> None:
    (folder / CARD_FILE).write_text(render_markdown(facts), encoding="utf-8")
    (folder / CARD_DATA_FILE).write_text(json.dumps(card_data(facts), indent=2) + "\n", encoding="utf-8")
