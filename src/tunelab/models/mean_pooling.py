"""A classifier that mean-pools the hidden states (sentence-transformers style).

Written by hand because Transformers' *ForSequenceClassification classes pool only the CLS or
the last token; all-MiniLM-L6-v2 and other sentence encoders were trained for mean pooling."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_FILE = "tunelab_head.safetensors"
HEAD_CONFIG = "tunelab_head.json"


class MeanPoolingClassifier(nn.Module):
    """Backbone -> masked mean over real tokens -> dropout -> linear head."""

    def __init__(self, backbone: PreTrainedModel, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.config.hidden_size, num_labels)

    @property
    def base_model(self) -> PreTrainedModel:
        return self.backbone

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        inputs_embeds=None,
        past_key_values=None,
        **_,
    ):
        hidden = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            past_key_values=past_key_values,
        ).last_hidden_state
        # With prefix tuning the mask also covers the prefix; the hidden states do not.
        mask = attention_mask[:, -hidden.shape[1] :].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits = self.head(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def save_pretrained(self, folder: str | Path, **kwargs) -> None:
        folder = Path(folder)
        self.backbone.save_pretrained(folder, **kwargs)
        save_file(
            {k: v.contiguous() for k, v in self.head.state_dict().items()}, folder / HEAD_FILE
        )
        (folder / HEAD_CONFIG).write_text(
            json.dumps({"pooling": "mean", "num_labels": self.head.out_features})
        )

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "MeanPoolingClassifier":
        folder = Path(folder)
        head_config = json.loads((folder / HEAD_CONFIG).read_text())
        model = cls(
            AutoModel.from_pretrained(folder, dtype=torch.float32), head_config["num_labels"]
        )
        model.head.load_state_dict(load_file(folder / HEAD_FILE))
        return model


def is_mean_pooling_folder(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_FILE).is_file()
