"""Writes notebooks/NN_*.ipynb: thin notebooks of prose and library calls, without outputs.

Every factor notebook has the same shape (question, parameters, run, figure, table, claim
check, explore), so they are generated from one description each; edit here, then run
`python tools/make_notebooks.py`. tests/test_notebooks.py checks they are up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
COMMON = {"profile": '"quick"', "tasks": "[]", "seeds": "[]", "world_seed": "0", "output_dir": '""',
          "data_root": '""', "weights": '""'}

FACTORS = {
    "01_width": dict(
        factor="width", title="Network width (Figure 3)",
        question="How wide should the source network be? Four networks of the same depth "
        "(Tiny, Small, Medium, Large), each with about twice the parameters of the one before, "
        "FC6 size fixed; the representation is FC6.",
        claim="Wider helps tasks close to the source; for distant tasks (retrieval) the widest "
        "network over-specialises and moderately wide is best; the smallest network cannot "
        "generalise as well (Table 1, section 3.1.1).",
        params={"widths": '["tiny", "small", "medium", "large"]'},
        run="factors.run_width(P)",
        extra=["factors.complexity_table(P.widths)", "factors.network_table(P)"]),
    "02_depth": dict(
        factor="depth", title="Network depth (Figure 4)",
        question="How deep should the source network be? 5 to 13 convolutional layers, "
        "Medium width; the representation is the first FC layer after the last conv layer.",
        claim="Deeper is better for nearly every task; the exceptions are instance-retrieval "
        "tasks (section 3.1.2).",
        params={"depths": "[5, 7, 9, 11, 13]"}, run="factors.run_depth(P)",
        extra=["factors.complexity_table(depths=P.depths)", "factors.network_table(P)"]),
    "03_early_stopping": dict(
        factor="early_stopping", title="Early stopping (Figure 5)",
        question="Does stopping the source training early make a more transferable "
        "representation? FC6 (and FC7) of the Medium network at snapshots taken at 0 (the "
        "random initialisation), 1/16, 1/8, 1/4, 1/2, 3/4, 7/8 and all of its training steps; "
        "the last snapshots lie on its plateau.",
        claim="Early stopping does not help: the final network transfers as well as or better "
        "than every earlier checkpoint (section 3.1.3).",
        params={"layers": '["fc6", "fc7"]'},
        run="factors.run_early_stopping(P)  # every layer of P.layers\n"
            "table = everything[everything.layer == P.layers[0]]  # the figures: the first layer",
        results="everything",
        extra=["# The other layers (FC7 by default)\n"
               "[plots.factor_figure(everything[everything.layer == layer], 'early_stopping') "
               "for layer in P.layers[1:]]"]),
    "04_source_task": dict(
        factor="source_task", title="Source task (Table 3)",
        question="Which source task should the network be trained on: objects (ImageNet), "
        "scenes (Places), both (Hybrid), or the concatenation of the objects and scenes "
        "networks' features (late fusion)? FC6.",
        claim="The scene source helps scene tasks; the object source generalises better to "
        "distant tasks; concatenation beats the hybrid network (section 3.1.4).",
        params={"sources": '["objects", "scenes", "hybrid", "concat"]'},
        run="factors.run_source_task(P)",
        extra=["factors.network_table(P)"], paper="Table 3"),
    "05_layer": dict(
        factor="layer", title="Representation layer (Figure 6)",
        question="Which layer should the representation come from? Every conv layer "
        "(max-pooled onto a grid) and FC6, FC7, FC8 of the Medium network.",
        claim="The further the target task is from the source, the earlier the best layer "
        "(section 3.2.1, Table 1).",
        params={"layers": "[]", "pooling": "1"}, run="factors.run_layer(P)",
        extra=["plots.best_level_figure(table, 'layer')",
               "# Per task, what the claim averages within each group: the drop from the best "
               "layer\n# to FC8, as a share of the best; its Spearman with the hand ordering in attrs.\n"
               "drops = claims.layer_drops(table)\n"
               "print(f\"Spearman(hand rank, drop) = {drops.attrs['spearman']:+.2f}\")\n"
               "drops.round(3)"]),
    "06_dim_reduction": dict(
        factor="dim_reduction", title="Dimensionality reduction (Figure 8)",
        question="How many dimensions does the representation need? PCA of FC6 (fitted on the "
        "training split) to 1, 2, 4, ... dimensions up to the full dimension. A PCA fitted on "
        "n training images has at most n components: larger levels are capped at n (retrieval "
        "whitening is fitted on the train split of other instances).",
        claim="Performance saturates at a small dimension, earlier for tasks close to the "
        "source; retrieval benefits from PCA (section 3.2.2).",
        params={"dims": "[]"}, run="factors.run_dim_reduction(P)", extra=[]),
    "07_fine_tuning": dict(
        factor="fine_tuning", title="Fine-tuning (Table 4)",
        question="Does fine-tuning the source network on the target's training split help? "
        "Single-label tasks, FC7, a new last layer, BatchNorm frozen, a learning rate below the "
        "source's chosen per task on its validation split (never on test) among the profile's "
        "rates: the paper fine-tunes \"with careful selection of parameters\". The table after "
        "the figure gives each rate's validation score and the one chosen.",
        claim="Fine-tuning helps, and helps more for tasks further from the source "
        "(section 3.2.3).",
        params={"layer": '"fc7"'}, run="factors.run_fine_tuning(P)",
        extra=["# Each task's learning rates, scored on its validation split; the chosen one is "
               "scored on test above\nfactors.finetune_choices(P).pivot_table(index='task', "
               "columns='learning rate', values='validation score')"], paper="Table 4"),
    "08_data_size": dict(
        factor="data_size", title="Source data size (Figure 7) and extra data (Table 5)",
        question="How much does the amount of source training data matter? The Medium network "
        "trained on 1/8, 1/4, 1/2 and all of the objects source. Compute is held equal: every "
        "network trains for the same number of SGD steps (those that bring the standard "
        "network to its plateau), so a smaller set is seen more often, as a user with less data "
        "and the same budget would train; the table of networks below says whether each "
        "reached its plateau. And does fine-tuning with "
        "extra labelled data of the same classes help even when the source already has them?",
        claim="More source data gives a better representation; extra fine-tuning data helps "
        "(section 3.2.4).",
        params={"fractions": "[0.125, 0.25, 0.5, 1.0]"}, run="factors.run_data_size(P)",
        extra=["factors.network_table(P)",
               "# Table 5: fine-tuning on breeds, without and with extra images of its classes\n"
               "table[table.factor == 'extra_data'].pivot_table(\n"
               "    index='level', columns='task', values=['score', 'ci_low', 'ci_high'])",
               "# The paper's Table 5: VOC07 detection AP (%) of bird, cat, dog, same three levels\n"
               "paper.table5()"]),
}


EXPLORE_TEXT = (
    "## Explore\n\nThe widgets redraw from the table above (no recomputation). Tick groups to "
    "narrow the task list, then tasks; the metric menu (where the table has several metrics) "
    "shows each task's own metric or one metric and only the tasks scored with it; raw or "
    "relative view; and a level, highlighted in the panels, with every task's bar at that "
    "level below.")


UNCERTAINTY_TEXT = (
    "## Where the intervals come from\n\nHow far each statistic's 95 % interval reaches below its "
    "estimate, and how far it reaches with only one source of noise resampled: the test images "
    "(paired across levels), the tasks within each group, the training seeds. The dashed line "
    "is the estimate's distance above the claimed bound: the interval clears the bound where "
    "its bar ends before the line. Each title projects how many times the tasks per group the "
    "interval would need if the estimate held (a projection, not a result: "
    "`claims.tasks_multiplier`).")


def md(text: str):
    return new_markdown_cell(text)


def code(text: str, tags: tuple[str, ...] = ()):
    cell = new_code_cell(text)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def uncertainty_cells(results: str) -> list:
    """Where the claims' intervals come from, read from the notebook's table `results`; the
    publish cell after them hands both to the index."""
    return [md(UNCERTAINTY_TEXT),
            code(f"spread = claims.uncertainty({results})\n"
                 "spread_figure = plots.uncertainty_figure(spread)\nspread_figure")]


def publish_cell(name: str, results: str) -> str:
    return (f'report.publish(P.output_dir, name="{name}", results={results}, claims=verdicts,\n'
            '               headline=headline, figures={"uncertainty": spread_figure},\n'
            '               tables={"uncertainty": spread});')


def parameters(extra: dict[str, str]) -> str:
    notes = {"profile": "smoke, quick, full or real", "tasks": "empty: the profile default",
             "seeds": "empty: the profile default", "output_dir": "empty: write nothing",
             "world_seed": "another draw of the embedded world",
             "data_root": "real profile: datasets folder", "weights": "real profile: weights"}
    lines = [f"{k} = {v}" + (f"  # {notes[k]}" if k in notes else "")
             for k, v in {**COMMON, **extra}.items()]
    return "# papermill parameters: plain values only (checked by the next cell)\n" + "\n".join(lines)


def factor_notebook(name: str, f: dict):
    factor = f["factor"]
    cells = [
        md(f"# {f['title']}\n\n**The paper's question.** {f['question']}\n\n"
           f"**The paper's claim.** {f['claim']}\n\n"
           "Everything below is computed by `transferlab` on the embedded world of the chosen "
           "profile; the last section checks the claim against these numbers."),
        code(parameters(f["params"]), ("parameters",)),
        code(f'from transferlab.params import check_params\n\nP = check_params("{name}", globals())\nP'),
        code("from transferlab import claims, explore, factors, paper, plots, report\n\n"
             f"{f.get('results', 'table')} = {f['run']}\ntable.head()"),
        md("## The figure\n\nOne panel per task group, as in the paper; within a panel, tasks "
           "in order of distance from the source. Bands are 95% bootstrap intervals over test "
           "images. First raw scores (each panel on its own scale), then each score relative "
           "to its task's best level (intervals as clipped bars)."
           + (f" Hollow diamonds on dotted lines: the paper's {f['paper']} for each task's "
              "analog dataset." if "paper" in f else "")),
        code(f'published = paper.for_factor(table, "{factor}")  # None: the paper gives no numbers\n'
             f'headline = plots.factor_figure(table, "{factor}", view="raw", published=published)\n'
             "headline"),
        code(f'plots.factor_figure(table, "{factor}", view="relative", published=published)'),
        md("## The table"),
        code(f'plots.styled_table(table, "{factor}")'),
    ]
    if "paper" in f:
        cells += [md(f"## Beside the paper's {f['paper']}\n\nOur seed means and the paper's "
                     "published numbers for each task's analog dataset (the scales differ: the "
                     "pattern across levels is what compares)."),
                  code(f'paper.compare(table, "{factor}").round(2)')]
    for extra in f["extra"]:
        cells.append(code(extra))
    cells += [
        md("## Claim check\n\nEach verdict weighs the statistic against its bootstrap interval: "
           "*reproduced* when the interval supports the claim, *not reproduced* when it "
           "contradicts it, *inconclusive* otherwise."),
        # The claims read the whole table: a claim picks its own layer where there are several.
        code(f"verdicts = factors.verdicts({f.get('results', 'table')})\n"
             "verdicts.style.hide(axis='index')"),
        *uncertainty_cells(f.get("results", "table")),
        code(publish_cell(name, f.get("results", "table"))),
        md(EXPLORE_TEXT + (" The checkbox shows or hides the paper's numbers."
                           if "paper" in f else "")),
        code(f'explore.explore(table, "{factor}", published=published)'),
    ]
    return cells


def world_notebook():
    return [
        md("# The world card\n\nThe embedded world stands in for ImageNet, Places and the paper's "
           "target datasets (see `docs/design/world.md`). For every task: a gallery of "
           "samples, its class balance, the chance level and a raw-pixel linear baseline. A task "
           "at chance or at 100 % teaches nothing, so the card checks both."),
        code(parameters({"n_gallery": "8"}), ("parameters",)),
        code('from transferlab.params import check_params\n\nP = check_params("00_world", globals())\nP'),
        code("from transferlab import factors, report, worldcard\n\n"
             "study = factors.study_for(P)\ntasks = factors.tasks_for(study, P)\n"
             "headline = worldcard.gallery(study, tasks, P.n_gallery)\nheadline"),
        md("## Class balance\n\nShare of training images per class (or label)."),
        code("worldcard.balance_figure(study, tasks)"),
        md("## Chance, raw pixels and the standard representation\n\nA linear SVM on 8x8x3 "
           "block-averaged pixels (same post-processing and cross-validation as the ConvNet "
           "features), and on the standard representation (Medium network trained on the objects "
           "source, FC6), and on the same network trained from scratch on the task's own training "
           "split (classification tasks). Every task should sit clearly above chance and below "
           "saturation, and transfer should beat both baselines."),
        code("seeds = factors.seeds_for(study, P)\ntable = worldcard.baselines(study, tasks, seeds)\n"
             "card = worldcard.card(table)\ncard"),
        md("## The source networks\n\nThe standard network of each source, trained for a fixed "
           "number of SGD steps chosen to reach its plateau: its steps, training time and top-1 "
           "on the source's own test split at the last two snapshots (converged when they are "
           "within 1 point; the paper's AlexNet reached 55-60 % on ImageNet)."),
        code("factors.network_table(P, study)"),
        md("## A measured distance\n\nHow little source training helps each task, measured "
           "without any factor result: the standard FC6 of the trained network against the same "
           "network at its random initialisation (snapshot 0), through the same probe or "
           "retrieval. `gain` is the share of the random network's error that source training "
           "removes; the measured distance is 1 - gain. LogME of the trained FC6 on the "
           "training labels is shown beside it (classification tasks only)."),
        code("distance = worldcard.measured_distance(study, tasks, seeds)\n"
             "print(f\"Spearman(hand rank, measured distance) = {distance.attrs['spearman']:+.2f}\")\n"
             "distance"),
        md("## The world's own checks\n\nWhat the card above must show for the factor "
           "notebooks to mean anything: no task solvable from raw pixels, every task informative "
           "and unsaturated under the standard representation, transfer beating both baselines "
           "on every classification task, and the measured distance following the hand "
           "ordering (their Spearman against the bar `worldcard.DISTANCE_AGREEMENT`, judged "
           "by its paired bootstrap interval: test images and tasks within groups "
           "resampled)."),
        code("verdicts = worldcard.world_claims(table, distance)\nverdicts.style.hide(axis='index')"),
        code('report.publish(P.output_dir, name="00_world", results=table, claims=verdicts, '
             'headline=headline);'),
        md("The layer notebook, `05_layer`, sets the hand ordering against a distance read off "
           "the factor results instead: the score lost from a task's best layer to FC8."),
    ]


def optimized_notebook():
    return [
        md("# Deep Standard vs. Deep Optimized (Table 6, Figure 2)\n\n**The paper's question.** "
           "How much do the transferability factors matter once each is set right for the "
           "task?\n\n**The paper's claim.** Optimizing the factors per task reduces the error "
           "of the standard representation on every task, by up to 50 % (section 4).\n\n"
           "Each task's setting is chosen among candidate settings (source, width, depth, "
           "layer, pooling, PCA, spatial search, fine-tuning) by **cross-validation on the "
           "training split only** (for retrieval: a validation retrieval set of other "
           "instances, two-fold); only then is its test score read. As in the paper, the "
           "factors are combined: the search goes in stages (network: source, width, depth; "
           "then layer and pooling; then PCA; then spatial search for retrieval; then "
           "fine-tuning the chosen network, where available), each stage varying the setting "
           "the previous stages chose.\n\nFine-tuning is chosen differently: the fine-tuned "
           "network has seen the whole training split, so a cross-validated score there would "
           "flatter it. It is offered on the single-label tasks, which have a **validation "
           "split** of their own (new images, drawn like the training split), and kept only "
           "if it scores higher there (the probe still fitted on the training split). In the "
           "stage's rows, `cv_score` holds that validation score."),
        code(parameters({}), ("parameters",)),
        code('from transferlab.params import check_params\n\nP = check_params("09_optimized", globals())\nP'),
        code("from transferlab import claims, explore, factors, paper, plots, report\n\n"
             "table = factors.run_optimized(P)\n"
             "std, opt = table[table.level == 'standard'], table[table.level == 'optimized']"),
        md("## Figure 2: standard and optimized, per task\n\nAbove: ours. Below: the paper's "
           "Figure 2 for each task's analog dataset (Table 6), with its non-ConvNet state of "
           "the art as a violet tick."),
        code("headline = plots.optimized_bars(std, opt, published=paper.table6_for(table))\n"
             "headline"),
        md("## Table 6: scores and relative error reduction, ours beside the paper's\n\n"
           "The paper's numbers are those of each task's analog dataset (two datasets: their "
           "mean); the N-S score in its own 0-4 unit."),
        code("paper.compare_table6(std, opt).round(2)"),
        md("The chosen settings (Table 6's bottom half), ours and the paper's."),
        code("factors.chosen_settings(table)"),
        code("paper.table6_for(table)[['analog', 'source', 'width', 'depth', 'layer', 'pca', "
             "'pooling']]"),
        md("## Claim check"),
        code("verdicts = factors.verdicts(table)\nverdicts.style.hide(axis='index')"),
        *uncertainty_cells("table"),
        code(publish_cell("09_optimized", "table")),
        md("## Every claim of the study\n\nThe verdicts of every notebook: those of this batch "
           "run (`python -m transferlab run`), or, run interactively, those of the profile's "
           "last batch run in `reports/`, with this notebook's own."),
        code("factors.claims_summary(P, own=verdicts)"),
        md(EXPLORE_TEXT.replace("a level, highlighted", "a level (standard or optimized), "
                                "highlighted") + " The checkbox shows or hides the paper's numbers."),
        code('explore.explore(table, "optimized", published=paper.for_factor(table, "optimized"))'),
    ]


def build() -> dict[str, object]:
    books = {"00_world": world_notebook(), "09_optimized": optimized_notebook()}
    books.update({name: factor_notebook(name, f) for name, f in FACTORS.items()})
    out = {}
    for name, cells in sorted(books.items()):
        for i, cell in enumerate(cells):  # stable ids: regenerating changes nothing
            cell.id = f"{name.replace('_', '-')}-{i}"
        nb = new_notebook(cells=cells)
        # The kernel `make install` registers, so JupyterLab starts this project's venv.
        nb.metadata["kernelspec"] = {"name": "transferlab", "display_name": "transferlab (.venv)",
                                     "language": "python"}
        # What ipykernel reports on connecting, so opening a notebook does not mark it dirty.
        nb.metadata["language_info"] = {
            "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
            "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3"}
        out[name] = nb
    return out


def main() -> int:
    for name, nb in build().items():
        nbformat.write(nb, ROOT / "notebooks" / f"{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
