"""PPO's learner (written here because TRL 1.x ships no PPO trainer): rollouts, per-token KL to
the reference, GAE advantages and the clipped objective; train/ppo.py runs it as a trainer.

Policy: the causal LM with LoRA; value: a linear head on the policy's last hidden state;
reference: the same model with the adapter disabled (no second copy in memory). Per step:
sample responses, score them with the reward model, subtract a per-token KL penalty to the
reference, estimate advantages with GAE, then a few epochs of the clipped PPO objective."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PpoSettings:
    kl_coef: float = 0.1  # beta: per-token penalty on log pi - log ref
    clip: float = 0.2  # PPO ratio clip (also the value clip)
    ppo_epochs: int = 2  # optimisation passes over each batch of rollouts
    gamma: float = 1.0
    lam: float = 0.95
    vf_coef: float = 0.1
    max_new_tokens: int = 48
    temperature: float = 1.0
    max_grad_norm: float | None = 1.0


@dataclass
class Rollout:
    ids: torch.Tensor  # (B, P + R) prompt (left-padded) + response
    mask: torch.Tensor  # attention mask over ids; response positions after EOS are 0
    prompt_len: int  # P
    logps: torch.Tensor  # (B, R) old policy log-probs of the response tokens
    ref_logps: torch.Tensor
    values: torch.Tensor  # (B, R)
    scores: torch.Tensor  # (B,) reward model scores
    response_mask: torch.Tensor  # (B, R) 1 for real response tokens


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, as generate() computes them."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def forward(model, value_head, ids, mask, prompt_len):
    """Log-probs of each response token and the value at each response position."""
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions(mask), output_hidden_states=True
    )
    logits = out.logits[:, prompt_len - 1 : -1].float()
    logps = logits.log_softmax(-1).gather(-1, ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1)
    values = value_head(out.hidden_states[-1][:, prompt_len - 1 : -1].float()).squeeze(-1)
    return logps, values


def response_mask_of(response: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 up to and including the first EOS of each response, 0 after it."""
    is_eos = (response == eos_id).int()
    after_eos = (is_eos.cumsum(-1) - is_eos) > 0
    return (~after_eos).long()


def gae(rewards, values, mask, gamma: float, lam: float):
    """Generalised advantage estimation over response tokens; positions after EOS are 0."""
    batch, steps = rewards.shape
    zeros = torch.zeros(batch, device=rewards.device)
    advantages, last = torch.zeros_like(rewards), zeros
    for t in reversed(range(steps)):
        next_mask = mask[:, t + 1] if t + 1 < steps else zeros
        next_value = values[:, t + 1] * next_mask if t + 1 < steps else zeros
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last * next_mask
        advantages[:, t] = last * mask[:, t]
    return advantages, (advantages + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = (x * mask).sum() / mask.sum()
    var = ((x - mean) ** 2 * mask).sum() / mask.sum()
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


class PpoLearner:
    """render(question) -> the policy's prompt; score(questions, responses) -> rewards (B,)."""

    def __init__(
        self,
        policy,
        value_head: nn.Module,
        tokenizer,
        render,
        score,
        settings: PpoSettings,
        optimizer,
    ):
        self.policy, self.value_head, self.tokenizer = policy, value_head, tokenizer
        self.render, self.score = render, score
        self.settings, self.optimizer = settings, optimizer

    @torch.no_grad()
    def rollout(self, questions: list[str], add_special_tokens: bool) -> Rollout:
        tok, s = self.tokenizer, self.settings
        prompts = [self.render(q) for q in questions]
        side, tok.padding_side = tok.padding_side, "left"
        batch = tok(
            prompts, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
        ).to(self.policy.device)
        tok.padding_side = side
        self.policy.eval()
        ids = self.policy.generate(
            **batch,
            do_sample=True,
            temperature=s.temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=s.max_new_tokens,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        prompt_len = batch["input_ids"].shape[1]
        response_mask = response_mask_of(ids[:, prompt_len:], tok.eos_token_id)
        mask = torch.cat([batch["attention_mask"], response_mask], dim=1)
        logps, values = forward(self.policy, self.value_head, ids, mask, prompt_len)
        with self.policy.disable_adapter():
            ref_logps, _ = forward(self.policy, self.value_head, ids, mask, prompt_len)
        texts = tok.batch_decode(ids[:, prompt_len:] * response_mask, skip_special_tokens=True)
        scores = self.score(questions, texts).to(ids.device)
        return Rollout(ids, mask, prompt_len, logps, ref_logps, values, scores, response_mask)

    def rewards(self, r: Rollout) -> torch.Tensor:
        """-beta * (log pi - log ref) on every response token, plus the score on the last one."""
        rewards = -self.settings.kl_coef * (r.logps - r.ref_logps) * r.response_mask
        last = (r.response_mask.sum(-1) - 1).clamp(min=0)
        rewards[torch.arange(len(last)), last] += r.scores
        return rewards

    def step(self, questions: list[str], add_special_tokens: bool) -> dict:
        s, r = self.settings, self.rollout(questions, add_special_tokens)
        advantages, returns = gae(
            self.rewards(r), r.values, r.response_mask.float(), s.gamma, s.lam
        )
        advantages = whiten(advantages, r.response_mask.float())
        self.policy.train()
        for _ in range(s.ppo_epochs):
            logps, values = forward(self.policy, self.value_head, r.ids, r.mask, r.prompt_len)
            ratio = torch.exp(logps - r.logps)
            pg = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - s.clip, 1 + s.clip))
            clipped = r.values + (values - r.values).clamp(-s.clip, s.clip)
            vf = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2)
            m = r.response_mask.float()
            loss = ((pg + s.vf_coef * vf) * m).sum() / m.sum()
            self.optimizer.zero_grad()
            loss.backward()
            if s.max_grad_norm:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            self.optimizer.step()
        kl = ((r.logps - r.ref_logps) * r.response_mask).sum(-1).mean().item()
        length = r.response_mask.sum(-1).float().mean().item()
        return {
            "reward": r.scores.mean().item(),
            "kl": kl,
            "response_length": length,
            "loss": loss.item(),
        }
