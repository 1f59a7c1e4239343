"""The Playground page: chat with an sft run (its template, system message and scope guard, as
`tunelab chat`), the same question to the base model it started from, and a classifier run's
label and probabilities (as `tunelab predict`). Loaded runs are kept, a few at a time."""

import threading
from collections import OrderedDict
from collections.abc import Iterator

from transformers import TextIteratorStreamer

from tunelab.artifacts import load_base, load_run
from tunelab.assistant import Assistant, load_assistant
from tunelab.errors import TunelabError
from tunelab.run_record import read_record
from tunelab.tasks.classify.metrics import classify_with
from tunelab.ui.workspace import Workspace

KEEP_LOADED = 3  # a 135M model takes about 0.5 GB; three fit any laptop


class Playground:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.loaded: OrderedDict[tuple[str, str], object] = OrderedDict()
        self.lock = threading.Lock()  # one generation at a time: 2 cores gain nothing from two

    def cached(self, key: tuple[str, str], load):
        if key not in self.loaded:
            self.loaded[key] = load()
            while len(self.loaded) > KEEP_LOADED:
                self.loaded.popitem(last=False)
        self.loaded.move_to_end(key)
        return self.loaded[key]

    def assistant(self, run: str, base: bool) -> Assistant:
        run_dir = self.workspace.run_dir(run)
        if not base:
            return self.cached((run, "tuned"), lambda: load_assistant(run_dir))
        tuned = self.assistant(run, base=False)

        def base_model() -> Assistant:  # the model the run started from, asked the same way
            model = load_base(tuned.record, tuned.tokenizer).eval()
            return Assistant(model, tuned.tokenizer, tuned.record)

        return self.cached((run, "base"), base_model)

    def chat(self, run: str, message: str, base: bool, sampling: dict) -> Iterator[str]:
        """The answer's text as it is generated."""
        if not message.strip():
            raise TunelabError("message: type a question first")
        assistant = self.assistant(run, base)
        streamer = TextIteratorStreamer(
            assistant.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        turns = [{"role": "user", "content": message}]

        def answer() -> None:
            with self.lock:
                try:
                    assistant.converse([turns], streamer=streamer, **sampling)
                except Exception as exc:  # shown in the page; the stream must still end
                    streamer.on_finalized_text(f"[error: {exc}]", stream_end=True)

        threading.Thread(target=answer, daemon=True).start()
        yield from streamer

    def classify(self, run: str, texts: list[str]) -> list[dict]:
        run_dir = self.workspace.run_dir(run)
        if "classify" not in read_record(run_dir).abilities:
            raise TunelabError(f"{run} is not a classifier with class names")
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise TunelabError("texts: type at least one text")
        model, tokenizer, record = self.cached((run, "classify"), lambda: load_run(run_dir))
        with self.lock:
            return classify_with(model, tokenizer, record, texts)
