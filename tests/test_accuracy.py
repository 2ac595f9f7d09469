"""Accuracy of lossy transfer measured on a real task: the trained PP-OCRv4 recognizer on rendered text lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from jointdnn_edge import lossy
from jointdnn_edge.cli import app

REC = "ch_PP-OCRv4_rec_infer.onnx"
#: a mid-network feature map (1×128×12×80) where exactly one tensor crosses the cut
CUT = "p2o.Add.87"
TEXTS = ["network", "Kq7mZ2", "hello world", "Offload", "x9TbL0a", "data 2024"]


@pytest.fixture(scope="module")
def rec(rapidocr_dir):
    return rapidocr_dir / REC


@pytest.fixture(scope="module")
def table(rec):
    return lossy.measure_ocr(rec, options=["q8", "pca0.125+q2c"], texts=TEXTS, cuts=[CUT])


def test_labels_come_from_the_model_metadata_and_match_its_output(rec):
    import onnx

    labels = lossy.ocr_labels(rec)
    out = onnx.load(rec).graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    assert len(labels) == out == 6625  # blank + 6623 characters + space
    assert labels[0] == "" and labels[-1] == " " and "a" in labels and "7" in labels


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    labels = ["", "a", "b"]
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 2]
    probs = np.eye(3)[steps]
    assert lossy.ctc_greedy(probs, labels) == "aabb"


def test_character_error_rate_is_edit_distance_over_reference_length():
    assert lossy.edit_distance("kitten", "sitting") == 3
    assert lossy.character_error_rate(["kitten", "abc"], ["sitting", "abc"]) == pytest.approx(3 / 10)


def test_table_follows_the_json_contract(table):
    assert table["task"] == "ocr" and table["model"] == "ch_PP-OCRv4_rec_infer" and table["texts"] == TEXTS
    assert not set(table["fit_texts"]) & set(TEXTS)  # options are fitted on other texts than measured
    held = table["held_out"]
    assert held == {"eval_texts": 6, "eval_chars": sum(map(len, TEXTS)), "fit_texts": 32, "overlap": 0}
    assert [r["option"]["label"] for r in table["rows"]] == ["q8", "pca0.125+q2c"]
    assert [r["option"]["keep"] for r in table["rows"]] == [None, 16]  # an eighth of 128 channels
    for row in table["rows"]:
        assert {"cut", "option", "bytes", "lossless_8bit_bytes", "delta_cer"} <= set(row)
        assert row["cut"] == CUT and row["shape"] == [1, 128, 12, 80]
        lo, hi = row["delta_cer_ci95"]
        assert lo <= hi and -1.0 <= lo and hi <= 1.0
    q8, small = table["rows"]
    n = 128 * 12 * 80
    # raw 8-bit codes: one byte per element plus the 64 bytes of headers (zstd may only shrink them)
    assert q8["bytes"] <= n + 64
    # 16 of 128 channels at 2 bits: n / 8 * 2 / 8 bytes plus headers
    assert small["bytes"] <= n // 8 * 2 // 8 + 64
    assert q8["lossless_8bit_bytes"] / small["bytes"] > 10


def test_baseline_is_good_and_8_bit_quantization_costs_little(table):
    # measured: about 0.02 on the 24 default texts, 0.0 on these six (DejaVu and STIX faces, 28 and 36 pt)
    assert table["baseline_cer"] < 0.2
    assert abs(table["rows"][0]["delta_cer"]) <= 0.02


def test_same_inputs_give_the_same_delta_cer(rec, table):
    again = lossy.measure_ocr(rec, options=["q8", "pca0.125+q2c"], texts=TEXTS, cuts=[CUT])
    assert again["baseline_cer"] == table["baseline_cer"]
    assert [r["delta_cer"] for r in again["rows"]] == [r["delta_cer"] for r in table["rows"]]
    assert [r["bytes"] for r in again["rows"]] == [r["bytes"] for r in table["rows"]]
    assert [r["delta_cer_ci95"] for r in again["rows"]] == [r["delta_cer_ci95"] for r in table["rows"]]


def test_bootstrap_interval_of_a_constant_ratio_is_that_ratio():
    # every text loses 1 character in 4: any resample gives exactly 1/4
    assert lossy.bootstrap_interval([1.0, 2.0, 3.0], [4.0, 8.0, 12.0]) == [0.25, 0.25]
    lo, hi = lossy.bootstrap_interval([0.0] * 9 + [1.0])  # one error in ten: 0.1, spread by resampling
    assert lo == 0.0 and 0.1 < hi <= 0.4
    assert lossy.bootstrap_interval([0.0] * 9 + [1.0]) == [lo, hi]  # seeded


def test_generated_text_sets_are_seeded_and_held_out_sets_disjoint():
    texts = lossy.default_texts(40, kinds=lossy.TEXT_KINDS)
    assert texts == lossy.default_texts(40, kinds=lossy.TEXT_KINDS) and len(set(texts)) == 40
    assert any(":" in t for t in texts[3::4]) and any("," in t or "." in t for t in texts[3::4])  # numbers
    fit = lossy.disjoint_texts(32, texts, seed=1000)
    assert len(fit) == 32 and not set(fit) & set(texts)
    assert lossy.default_texts(24) == lossy.default_texts(24, seed=0, kinds=("word", "random"))


def test_lossless_transfer_keeps_every_character(rec):
    again = lossy.measure_ocr(rec, options=[lossy.LOSSLESS], texts=TEXTS[:2], cuts=[CUT])
    (row,) = again["rows"]
    assert row["delta_cer"] == 0.0 and row["delta_cer_ci95"] == [0.0, 0.0]


def test_cli_writes_the_table(rec, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("network\nKq7mZ2\n\n", encoding="utf-8")
    out = tmp_path / "acc.json"
    result = CliRunner().invoke(
        app, ["accuracy", str(rec), "--task", "ocr", "--texts", str(texts), "--options", "q4c", "--cut", CUT,
              "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["texts"] == ["network", "Kq7mZ2"] and len(data["rows"]) == 1
    assert data["rows"][0]["option"]["bits"] == 4 and data["rows"][0]["option"]["granularity"] == "channel"
    assert data["held_out"]["eval_texts"] == 2 and data["held_out"]["eval_chars"] == 13
    assert "network" not in data["fit_texts"]  # the default fit set leaves out the measured lines


def test_cli_fits_on_the_given_texts(rec, tmp_path):
    texts, fit = tmp_path / "texts.txt", tmp_path / "fit.txt"
    texts.write_text("Offload 7\n", encoding="utf-8")
    fit.write_text("alpha\nBeta 42\n", encoding="utf-8")
    out = tmp_path / "acc.json"
    result = CliRunner().invoke(
        app, ["accuracy", str(rec), "--texts", str(texts), "--fit-texts", str(fit), "--options", "q8",
              "--cut", CUT, "--sizes", "24", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["fit_texts"] == ["alpha", "Beta 42"] and data["texts"] == ["Offload 7"] and data["sizes"] == [24]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    assert CliRunner().invoke(app, ["accuracy", str(rec), "--texts", str(empty)]).exit_code == 2


def test_cli_rejects_bad_arguments(rec, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["accuracy", str(rec), "--task", "detect"]).exit_code == 2
    assert runner.invoke(app, ["accuracy", str(rec), "--count", "0"]).exit_code == 2
    bad = runner.invoke(app, ["accuracy", str(rec), "--options", "q9", "--cut", CUT])
    assert bad.exit_code == 2 and "q9" in bad.output
    assert runner.invoke(app, ["accuracy", str(rec), "--cut", "no-such-tensor"]).exit_code == 1
