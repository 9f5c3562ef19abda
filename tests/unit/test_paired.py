"""McNemar's exact test on hand-checkable outcomes, then between revisions read from real
predictions.csv files in a temporary git repo, and as the model comparison and the pull-request
report show it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from scripts.compare_models import add_paired_tests, markdown_table, paired_note
from scripts.paired import compare_revisions, mcnemar_exact, parse_predictions, predictions_text
from scripts.pr_report import paired_section
from tests.conftest import run

TRUE = ["basophil", "neutrophil"] * 20  # 40 test images


def test_mcnemar_p_value_matches_the_binomial_sum_by_hand():
    # 8 images only A gets right, 2 only B, 90 both right or both wrong
    correct_a = np.array([True] * 8 + [False] * 2 + [True] * 85 + [False] * 5)
    correct_b = np.array([False] * 8 + [True] * 2 + [True] * 85 + [False] * 5)
    test = mcnemar_exact(correct_a, correct_b)
    # two-sided: 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert test == {"images": 100, "a_only": 8, "b_only": 2, "p_value": pytest.approx(112 / 1024)}
    assert mcnemar_exact(correct_b, correct_a)["p_value"] == pytest.approx(112 / 1024)  # symmetric


def test_mcnemar_without_discordant_images_is_one_and_refuses_different_test_sets():
    same = np.array([True, False, True])
    assert mcnemar_exact(same, same)["p_value"] == 1.0
    with pytest.raises(ValueError, match="not the same test set"):
        mcnemar_exact(same, same[:2])


def write_predictions(repo: Path, wrong: set[int], true: list[str] = TRUE) -> None:
    """plots/evaluate/predictions.csv as the evaluate stage writes it, wrong at the `wrong` indices."""
    path = repo / "plots/evaluate/predictions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["index", "true", "predicted", "confidence"])
        for i, label in enumerate(true):
            other = "neutrophil" if label == "basophil" else "basophil"
            writer.writerow([i, label, other if i in wrong else label, 0.9])


def commit(repo: Path, message: str) -> str:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)
    return run(repo, "git", "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """Commits: `good` wrong on 1 image; `worse` wrong on 11 (10 more, 0 fewer); workspace wrong on 2."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(repo, "git", "init", "-q")
    run(repo, "git", "config", "user.email", "test@example.com")
    run(repo, "git", "config", "user.name", "test")
    (repo / "README").write_text("no predictions yet\n")
    commit(repo, "before the evaluate stage wrote predictions")
    write_predictions(repo, {0})
    commit(repo, "good")
    write_predictions(repo, set(range(11)))
    commit(repo, "worse")
    write_predictions(repo, {0, 39})
    return repo


def test_revisions_are_read_from_git_and_the_workspace(repo):
    head = parse_predictions(predictions_text("HEAD", repo))
    assert (head.true != head.predicted).sum() == 11
    workspace = parse_predictions(predictions_text("workspace", repo))
    assert (workspace.true != workspace.predicted).tolist().count(True) == 2
    assert predictions_text("HEAD~2", repo) is None


def test_the_paired_test_of_two_commits_matches_the_binomial_by_hand(repo):
    test = compare_revisions("HEAD~1", "HEAD", repo)
    # 10 images only `good` gets right, none only `worse`: p = 2 / 2**10
    assert test == {"images": 40, "a_only": 10, "b_only": 0, "p_value": pytest.approx(2 / 1024)}
    assert compare_revisions("HEAD~1", "workspace", repo)["p_value"] == 1.0  # 1 vs 0: p = 1


def test_missing_or_different_test_sets_give_a_reason_not_a_number(repo):
    assert compare_revisions("HEAD~2", "HEAD", repo) == "HEAD~2 has no plots/evaluate/predictions.csv"
    write_predictions(repo, set(), true=TRUE[:30])
    assert "tested on different images" in compare_revisions("HEAD", "workspace", repo)
    (repo / "plots/evaluate/predictions.csv").write_text("a,b\n1,2\n")
    assert "not a predictions file" in compare_revisions("HEAD", "workspace", repo)


def test_the_comparison_table_tests_every_run_against_the_best(repo):
    revs = [run(repo, "git", "rev-parse", f"HEAD~{n}").stdout.strip() for n in (1, 0, 2)]
    rows = [
        {"experiment": "exp-good", "rev": revs[0], "model": "skip", "metrics": {"accuracy": 39 / 40}},
        {"experiment": "workspace", "rev": "workspace", "model": "skip", "metrics": {"accuracy": 38 / 40}},
        {"experiment": "exp-worse", "rev": revs[1], "model": "baseline", "metrics": {"accuracy": 29 / 40}},
        {"experiment": "exp-old", "rev": revs[2], "model": "baseline", "metrics": {"accuracy": 0.5}},
    ]
    table = markdown_table(add_paired_tests(rows, repo)).splitlines()
    note = paired_note(rows).splitlines()
    assert table[0].endswith("| p vs best |")
    assert table[2].endswith("| best |")
    assert table[3].endswith("| 1.000 (1/0) |")
    assert table[4].endswith("| 0.002 (10/0) |")
    assert table[5].endswith("| n/a |")
    assert len(table) == 6 and "McNemar's exact test" in note[0]
    assert note[1:] == ["- n/a, exp-old: " + rows[3]["paired"]]
    assert paired_note(rows[:1]) == ""  # one run: nothing to test


def test_the_pull_request_report_says_whether_the_change_is_chance(repo, monkeypatch):
    monkeypatch.chdir(repo)
    write_predictions(repo, set(range(12)))  # the PR: 11 more wrong than `good`, 0 fewer
    worse = paired_section("HEAD~1")
    assert worse.startswith("Paired test: of 40 test images, 11 are right only with the base and 0 only")
    assert "p = <0.001, the base is better beyond chance." in worse
    assert "could be chance" in paired_section("HEAD")  # 1 more wrong: p = 1
    assert paired_section("HEAD~2") == "Paired test: none (HEAD~2 has no plots/evaluate/predictions.csv)."


def test_the_cross_lab_benchmark_pairs_saved_runs_without_training(tmp_path, capsys):
    from scripts.bench.__main__ import main as bench

    def row(name: str, epochs: int, plain: list[bool], adapted: list[bool]) -> dict:
        return {"name": name, "epochs": epochs, "lisc_correct": plain, "lisc_adapted_correct": adapted}

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([row("crop", 8, [True] * 8 + [False] * 2, [True] * 10)]))
    second.write_text(json.dumps([row("crop", 30, [False] * 8 + [True] * 2, [False] * 10)]))
    bench(["cross-lab", "--paired", str(first), str(second)])
    printed = capsys.readouterr().out
    assert f"| crop (8 epochs) | crop (30 epochs) | 8 | 2 | {112 / 1024:.2g} |" in printed
    assert "| crop (8 epochs), adapted | the same, plain | 2 | 0 |" in printed
    with pytest.raises(SystemExit):
        bench(["cross-lab", "--paired", str(tmp_path / "missing.json")])
    assert "--paired: no such file" in capsys.readouterr().err
