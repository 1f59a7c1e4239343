"""`tunelab ui`'s API on a real workspace: the form comes from the config schema, bad input is a
one-line error naming its field, paths stay inside the workspace, uploads are limited, and
binding beyond localhost needs --auth. The browser flows are in test_ui_browser.py."""

import base64
import json
import os
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import STORIES

from tunelab import pipeline  # noqa: F401 - registers the tasks and methods the form lists
from tunelab.config import TrainConfig
from tunelab.ui import uploads
from tunelab.ui.app import build_app
from tunelab.ui.workspace import Workspace


def toy_rows(count: int = 20) -> str:
    rows = "".join(f"a good film {i},pos\na bad film {i},neg\n" for i in range(count))
    return "text,label\n" + rows


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    space = Workspace.open(tmp_path / "ws")
    shutil.copytree(STORIES, space.root / "models" / "stories")
    (space.root / "data" / "toy.csv").write_text(toy_rows())
    return space


@pytest.fixture
def client(workspace) -> TestClient:
    return TestClient(build_app(workspace))


def form(**changes) -> dict:
    values = {
        "name": "toy",
        "task.name": "classify",
        "method.name": "head",
        "model.name": "models/stories",
        "data.path": "data/toy.csv",
        "train.epochs": "1",
    }
    return {"values": {**values, **changes}}


def test_the_form_is_the_config_schema_with_its_help(client):
    fields = {f["key"]: f for f in client.get("/api/form?task=sft&method=lora").json()["fields"]}
    assert fields["train.lr"]["help"] == TrainConfig.model_fields["lr"].description
    assert fields["method.r"]["default"] == 8 and "task.template" in fields
    assert "method.k" not in fields  # freeze's setting, not lora's
    assert "models/stories" in fields["model.name"]["choices"]
    assert "data/toy.csv" in fields["data.path"]["choices"]


def test_the_yaml_and_command_follow_the_form(client, workspace):
    described = client.post("/api/config", json=form(**{"train.lr": "0.01"})).json()
    assert "lr: 0.01" in described["yaml"] and "epochs: 1" in described["yaml"]
    assert str(workspace.root / "runs" / "toy") in described["yaml"]
    assert described["command"] == "tunelab train configs/toy.yaml"


def test_an_empty_name_is_no_error_until_the_run_is_started(client, workspace):
    """Issue 36: the New-run form greeted a newcomer with a red error under the still-empty
    name field (the YAML is kept in sync from the first moment)."""
    described = client.post("/api/config", json=form(name=""))
    assert described.status_code == 200, described.text
    assert described.json()["command"] == "tunelab train configs/NAME.yaml"
    assert not workspace.config_file("NAME").exists()
    started = client.post("/api/runs", json=form(name=""))
    assert started.status_code == 422 and started.json()["field"] == "name"
    assert not (workspace.root / "runs" / "NAME").exists()


def test_the_preview_shows_rows_as_the_model_reads_them(client):
    preview = client.post("/api/check", json=form()).json()["preview"]
    assert preview[0].startswith("--- row 1:") and "label" in preview[0]
    assert "film" in preview[1]


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"data.label_field": "sentiment"}, "data.label_field", "no column 'sentiment'"),
        ({"data.path": "../outside.csv"}, "data.path", "inside the workspace"),
        ({"data.path": "/etc/passwd"}, "data.path", "inside the workspace"),
        ({"data.test_path": "data/test.csv"}, "data.test_path", "does not occur in the training"),
        ({"train.lr": "fast"}, "train.lr", "valid number"),
        ({"name": "../x"}, "name", "run name"),
        ({"method.name": "nope"}, "method.name", "unknown method 'nope'"),
    ],
)
def test_bad_input_is_one_line_next_to_its_field(client, workspace, changes, field, words):
    (workspace.root / "data" / "test.csv").write_text("text,label\nan odd film,maybe\n")
    response = client.post("/api/check", json=form(**changes))
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field and words in body["error"] and "\n" not in body["error"]


@pytest.mark.parametrize(
    "changes, field, words",
    [
        # keys the form does not show skipped every check: the preview read a file outside
        ({"data.mix": "[{path: /etc/hosts, weight: 1}]"}, "data.mix", "not a field"),
        ({"eval.test_sets": "{x: /etc/hosts}"}, "eval.test_sets", "not a field"),
        # the paths the form does show, whatever their field, stay inside the workspace
        ({"task.name": "grpo", "method.name": "lora", "task.rewards": "[{function: '/tmp/x.py:f'}]"},
         "task.rewards", "inside the workspace"),
        ({"task.name": "grpo", "method.name": "lora",
          "task.rewards": "[{function: reward_run, run: ../runs/r}]"},
         "task.rewards", "inside the workspace"),
        ({"task.name": "ppo", "method.name": "lora", "task.reward_run": "/tmp/reward"},
         "task.reward_run", "inside the workspace"),
        ({"task.name": "sft", "method.name": "lora", "task.scope_guard": "/tmp/m"},
         "task.scope_guard", "inside the workspace"),
    ],
)  # fmt: skip
def test_every_path_a_form_carries_is_confined_to_the_workspace(client, changes, field, words):
    """Issue 36: form keys the page does not show, and task settings that name files (a reward
    function is run as code), skipped the workspace check."""
    for endpoint in ("/api/check", "/api/config", "/api/runs"):
        response = client.post(endpoint, json=form(**changes))
        assert response.status_code == 422, (endpoint, response.text)
        body = response.json()
        assert body["field"] == field and words in body["error"], (endpoint, body)


def test_preference_and_rl_runs_pass_the_forms_check_with_a_preview(client, workspace):
    """Issue 36: the form offered dpo, grpo, reward, kto, orpo, ppo and rloo and could start none
    (the check's preview knew only classify, sft and pretrain rows)."""
    pairs = [{"prompt": f"Is film {i} good?", "chosen": "Yes, very.", "rejected": "No."}
             for i in range(12)]  # fmt: skip
    (workspace.root / "data" / "pairs.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in pairs)
    )
    sums = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
    (workspace.root / "data" / "sums.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sums))
    cases = [("dpo", "data/pairs.jsonl", {}, "[chosen] Yes, very."),
             ("reward", "data/pairs.jsonl", {}, "[rejected] No."),
             ("grpo", "data/sums.jsonl", {"task.rewards": "[{function: exact_number}]"}, "[answer]")]  # fmt: skip
    for task, data, extra, shown in cases:
        values = form(**{"task.name": task, "method.name": "lora", "data.path": data, **extra})
        response = client.post("/api/check", json=values)
        assert response.status_code == 200, (task, response.text)
        preview = response.json()["preview"]
        assert preview[0].startswith("--- ") and shown in "\n".join(preview), (task, preview)


def test_a_link_out_of_the_workspace_is_not_offered(client, workspace, tmp_path):
    """Issue 36: a symbolic link out of the workspace made the New-run form a 500."""
    (tmp_path / "elsewhere.csv").write_text("text,label\nx,a\n")
    os.symlink(tmp_path / "elsewhere.csv", workspace.root / "data" / "out.csv")
    os.symlink(tmp_path, workspace.root / "models" / "outside")
    response = client.get("/api/form?task=classify&method=head")
    assert response.status_code == 200
    fields = {f["key"]: f for f in response.json()["fields"]}
    assert "data/out.csv" not in fields["data.path"]["choices"]
    assert "data/toy.csv" in fields["data.path"]["choices"]


def test_files_are_served_from_inside_the_workspace_only(client, workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", workspace.root / "data" / "link.txt")
    assert client.get("/files/data/toy.csv").text.startswith("text,label")
    for path in ("/files/..%2Fsecret.txt", "/files/data/link.txt", "/files/%2Fetc%2Fpasswd"):
        response = client.get(path)
        assert response.status_code == 400 and "workspace" in response.json()["error"], path


def test_uploads_land_in_data_under_a_size_limit(client, workspace, monkeypatch):
    saved = client.put("/api/upload?name=mine.csv", content=toy_rows(3).encode())
    assert saved.status_code == 201 and saved.json()["path"] == "data/mine.csv"
    assert (workspace.root / "data" / "mine.csv").read_text() == toy_rows(3)
    monkeypatch.setattr(uploads, "MAX_UPLOAD_MB", 0.001)  # 1 KB
    big = client.put("/api/upload?name=big.csv", content=b"x" * 5000)
    assert big.status_code == 413 and "upload limit" in big.json()["error"]
    assert not list((workspace.root / "data").glob("big.csv*"))  # nothing half-written
    assert client.put("/api/upload?name=../up.csv", content=b"a").status_code == 400


def test_a_token_or_password_is_required_when_set(workspace):
    token = TestClient(build_app(workspace, auth="s3cret"))
    assert token.get("/api/runs").status_code == 401
    assert token.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert token.get("/?token=s3cret").status_code == 200  # sets the cookie, then the page
    assert token.get("/api/runs").status_code == 200
    basic = TestClient(build_app(workspace, auth="ana:pw"))
    denied = basic.get("/")
    assert denied.status_code == 401 and "Basic" in denied.headers["www-authenticate"]
    header = "Basic " + base64.b64encode(b"ana:pw").decode()
    assert basic.get("/", headers={"Authorization": header}).status_code == 200


def test_binding_beyond_localhost_needs_auth(tmp_path):
    code, output = run_cli("ui", "--workspace", tmp_path, "--host", "0.0.0.0")
    assert_one_line_error(code, output, "--auth")
    # issue 36: `--auth ':'` or a one-character token guarded nothing; a workspace that is a file
    # was a traceback. All refused before the server starts.
    for secret, words in ((":", "user name"), ("x", "token needs at least 8"),
                          ("ana:pw", "password needs at least 8")):  # fmt: skip
        code, output = run_cli("ui", "--workspace", tmp_path, "--host", "0.0.0.0", "--auth", secret)
        assert_one_line_error(code, output, "--auth", words)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = run_cli("ui", "--workspace", blocker, "--auth", "a-long-token")
    assert_one_line_error(code, output, "--workspace", "cannot be made a workspace")


def test_a_run_outlives_the_ui_that_started_it(workspace):
    started = TestClient(build_app(workspace)).post("/api/runs", json=form(**{"train.lr": "0.005"}))
    assert started.status_code == 201
    later = TestClient(build_app(workspace))  # a restarted UI knows only the workspace
    deadline = time.monotonic() + 240
    while (view := later.get("/api/runs/toy").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert view["status"] == "finished" and view["summary"]["score"] is not None
    assert (workspace.root / "configs" / "toy.yaml").is_file() and view["report"]


@pytest.mark.parametrize("seeds,words", [("1,x", "whole numbers"), ("2,2", "distinct")])
def test_bad_compare_seeds_are_one_line_next_to_their_field(client, workspace, seeds, words):
    body = {**form(name="seeded"), "methods": ["head", "lora"], "seeds": seeds}
    response = client.post("/api/compare", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["field"] == "seeds" and words in answer["error"]
    assert not (workspace.root / "compare" / "seeded").exists()  # nothing started


def test_a_bad_number_in_the_compare_form_is_one_line_by_its_field(client):
    body = {**form(name="trials"), "methods": ["head", "lora"], "trials": -1}
    response = client.post("/api/compare", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["field"] == "trials" and answer["error"].startswith("trials: ")
    assert "\n" not in answer["error"]
