"""`tunelab doctor`: each pitfall, crafted into a config (or, where tunelab's own pipeline cannot
produce it, into the prepared task the way a hand-written script does), is found; the shipped
configs' findings are listed; `train` stops on the fatal ones before it trains."""

import json

import pytest
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import QA, STORIES, sft_overrides, write_jsonl
from transformers import DataCollatorForLanguageModeling
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.hardware import this_cpu
from tunelab.pipeline import diagnose, load_config


def findings_of(overrides: list[str]) -> dict[str, tuple[str, str]]:
    found, _ = diagnose(load_config(None, overrides))
    return {f.check: (f.severity, f.message) for f in found}


@pytest.fixture
def sft(tmp_path):
    """An sft config whose test questions are not its training questions."""
    base = sft_overrides(tmp_path, "lora")
    test = [{"question": f"Is {w} a colour?", "answer": f"{w} is a colour."}
            for w in ("red", "green", "blue", "pink", "grey")]  # fmt: skip
    val = [{"question": f"Is {w} a fruit?", "answer": f"{w} is a fruit."}
           for w in ("apple", "pear", "plum")]  # fmt: skip
    other, val_path = (
        write_jsonl(tmp_path / "other.jsonl", test),
        write_jsonl(tmp_path / "val.jsonl", val),
    )
    return [*base, f"data.test_path={other}", f"data.val_path={val_path}"]


def test_a_clean_sft_config_is_all_ok(sft):
    found = findings_of(sft)
    assert {check: severity for check, (severity, _) in found.items()} == {
        "leakage": "ok", "validation leakage": "ok", "over max_length": "ok", "rows with nothing to learn": "ok",
        "stop token": "ok", "doubled BOS": "ok", "inference template": "ok", "memory": "ok",
        "machine": "ok"}  # fmt: skip


def test_leakage_between_train_and_test(tmp_path):
    severity, message = findings_of(sft_overrides(tmp_path, "lora"))["leakage"]
    assert severity == "fatal" and "6 test rows equal a training row" in message


def test_validation_rows_repeating_training_rows(tmp_path):
    """The training file repeats each row 4 times: the validation split cut from it repeats
    training rows, and early stopping would choose on memorised rows."""
    severity, message = findings_of(sft_overrides(tmp_path, "lora"))["validation leakage"]
    assert severity == "fatal" and "val rows equal a training row" in message
    assert "early stopping" in message


def test_near_duplicates_count_as_leakage(sft, tmp_path):
    near = [{"question": q.upper() + "!!", "answer": a} for q, a in QA]  # case and punctuation
    path = write_jsonl(tmp_path / "near.jsonl", near)
    severity, message = findings_of([*sft, f"data.test_path={path}"])["leakage"]
    assert severity == "fatal" and "6 test rows" in message


def test_a_doubled_bos_from_the_template(sft):
    template = 'task.template="<s>Q: {prompt}\\nA: "'
    severity, message = findings_of([*sft, template])["doubled BOS"]
    assert severity == "warn" and "start with BOS twice" in message


def long_question_data(tmp_path, long_rows: int) -> str:
    records = [{"question": q, "answer": a} for q, a in QA] * 4
    for i in range(long_rows):
        records[i] = {"question": "Tell me " + "very " * 80 + "slowly.", "answer": "No."}
    return f"data.path={write_jsonl(tmp_path / 'long.jsonl', records)}"


def test_answers_cut_away_by_max_length(sft, tmp_path):
    found = findings_of([*sft, long_question_data(tmp_path, 5), "data.max_length=100",
                         "data.overlong=truncate"])  # fmt: skip
    severity, message = found["rows with nothing to learn"]
    assert severity == "warn" and "dropped" in message and "data.max_length=100" in message


def test_every_answer_cut_away_is_fatal(sft):
    found = findings_of([*sft, "data.max_length=6", "data.overlong=truncate"])
    assert found["data"][0] == "fatal" and "lost its whole answer" in found["data"][1]


def multi_turn_data(tmp_path) -> str:
    turns = [{"role": "user", "content": "What do cats say?"},
             {"role": "assistant", "content": "Cats say meow."},
             {"role": "user", "content": "And cows?"}, {"role": "assistant", "content": "Moo."}]  # fmt: skip
    return str(write_jsonl(tmp_path / "turns.jsonl", [{"messages": turns}] * 5))


def test_multi_turn_rows_under_a_plain_template_infer_from_an_unseen_prompt(sft, tmp_path):
    found = findings_of([*sft, f"data.test_path={multi_turn_data(tmp_path)}"])
    severity, message = found["inference template"]
    assert severity == "fatal" and "5 of 5 test rows" in message


def test_pad_equal_to_eos_masked_by_the_collator(sft, monkeypatch):
    """What a hand-written script with DataCollatorForLanguageModeling does: pad == EOS, and
    the collator sets every pad-token position, EOS included, to -100."""
    from tunelab.doctor.lm_checks import stop_token
    from tunelab.pipeline import open_task

    task = open_task(load_config(None, sft))
    summary = task.prepare()
    assert stop_token(task, summary)[0].severity == "ok"
    task.tokenizer.pad_token = task.tokenizer.eos_token
    collator = DataCollatorForLanguageModeling(task.tokenizer, mlm=False)  # labels = input_ids

    def script_collate(rows):
        return collator([{"input_ids": row["input_ids"]} for row in rows])

    monkeypatch.setattr(type(task), "collate", property(lambda self: script_collate))
    [finding] = stop_token(task, summary)
    assert finding.severity == "fatal" and "pad token is EOS" in finding.message


def test_label_imbalance_and_overlong_classification_rows(model_dirs, tmp_path):
    rows = [(f"message number {i} " + "word " * (i % 7), "ham" if i % 10 else "spam")
            for i in range(200)]  # fmt: skip
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    found = findings_of([f"model.name={model_dirs['llama']}", f"data.path={data}",
                         "data.max_length=6"])  # fmt: skip
    assert found["label imbalance"][0] == "warn" and "90%" in found["label imbalance"][1]
    assert found["over max_length"][0] == "warn"


def test_memory_beyond_this_machine(model_dirs, toy_csv):
    found = findings_of([f"model.name={model_dirs['llama']}", f"data.path={toy_csv}",
                         "train.micro_batch_tokens=null", "train.batch_size=100000",
                         "data.max_length=4096", "method.name=full"])  # fmt: skip
    assert found["memory"][0] == "warn" and "GiB" in found["memory"][1]
    assert "parameters, full, " in found["memory"][1]  # the method by its name, not its object


def test_the_machine_and_the_precision_it_would_train_in(sft, monkeypatch):
    monkeypatch.delenv("TUNELAB_AUTO_PRECISION")  # conftest's pin for the suite
    severity, message = findings_of(sft)["machine"]
    cpu = this_cpu()
    assert severity == "ok" and cpu.model in message and "torch 2.13.0" in message
    assert ("no native bf16" in message) != cpu.native_bf16  # auto's reason
    severity, message = findings_of([*sft, "train.precision=bf16"])["machine"]
    assert (severity == "warn") != cpu.native_bf16  # bf16 emulated without avx512_bf16 / amx


def test_train_stops_on_a_fatal_finding_before_training(sft, tmp_path):
    code, output = run_cli("train", *sft, f"data.test_path={multi_turn_data(tmp_path)}")
    assert_one_line_error(code, output, "inference template", "tunelab doctor")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_doctor_lists_the_findings_of_a_shipped_config():
    # stdout alone: the embedded model's first conversion draws a progress bar on stderr
    result = CliRunner().invoke(app, ["doctor", "--json", "configs/spam_smollm2_freeze.yaml"])
    assert result.exit_code == 0, result.output
    found = {f["check"]: f["severity"] for f in json.loads(result.stdout.strip().splitlines()[-1])}
    assert found["leakage"] == "warn"  # the SMS Spam Collection repeats messages
    assert found["label imbalance"] == "ok"  # undersampled to 747 + 747


def test_doctor_command_exit_code_on_fatal(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  name: {STORIES}\ntask:\n  name: sft\n  template: qa\n"
                      f"data:\n  path: {tmp_path / 'train.jsonl'}\n  test_path: {tmp_path / 'copy.jsonl'}\n"
                      "method:\n  name: lora\n")  # fmt: skip
    sft_overrides(tmp_path, "lora")  # writes train.jsonl
    (tmp_path / "copy.jsonl").write_text((tmp_path / "train.jsonl").read_text())  # its rows again
    code, output = run_cli("doctor", config)
    assert code == 1 and "FATAL" in output and "leakage" in output


def test_every_bad_row_of_a_file_is_listed_and_train_names_the_first(tmp_path):
    records = [{"question": q, "answer": a} for q, a in QA] * 3
    for row in (3, 8, 11):  # rows 4, 9 and 12 of the file
        records[row] = {"question": "  ", "answer": "An answer."}
    records[13] = {"question": "Asked?"}  # row 14: no answer
    bad = write_jsonl(tmp_path / "bad.jsonl", records)
    overrides = [*sft_overrides(tmp_path, "lora"), f"data.path={bad}"]
    found, _ = diagnose(load_config(None, overrides))
    assert [(f.check, f.severity) for f in found] == [("data", "fatal")] * 4
    assert [f.message.split(": ")[0] for f in found] == [
        f"{bad}, row {n}, field '{field}'"
        for n, field in [(4, "question"), (9, "question"), (12, "question"), (14, "answer")]
    ]
    code, output = run_cli("train", *overrides)
    assert_one_line_error(
        code, output, "bad.jsonl, row 4, field 'question'", "3 more bad rows: 9, 12, 14"
    )
    assert not (tmp_path / "run").exists()


def test_leakage_between_preference_pairs(tmp_path):
    from tests.test_preference import overrides

    pairs = [{"prompt": f"Tell me about cat {i}.", "chosen": "A kind cat.", "rejected": "Mean."}
             for i in range(40)]  # fmt: skip
    train = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    test = write_jsonl(tmp_path / "test.jsonl", pairs[:10])
    found = findings_of([*overrides("reward", train, tmp_path / "r"), f"data.test_path={test}"])
    # the test file repeats 10 rows of the training file; those the split kept for training leak
    assert found["leakage"][0] == "fatal" and "of 10)" in found["leakage"][1]
