"""The original PhaseGPT model in PyTorch, written from the spec (../shared/specs/phasegpt.md §1-§2), for
reference logits in the converter tests and for the O(T^2 N) baseline of the benchmark.

Module names follow the original's state_dict (spec §2.6, §7): token_embedding, position_embedding,
blocks.{l}.ln1 / ln2, blocks.{l}.attention.{to_phase, natural_freq, coupling_matrix, from_phase,
last_R_param} or {qkv_proj, out_proj, causal_mask}, blocks.{l}.ffn.{0, 2}, ln_f, lm_head (tied).
The phase step is the literal pairwise form that builds a [B, H, T, T, N] tensor, as the original does.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class PhaseAttention(nn.Module):
    def __init__(self, d_model, n_heads, num_oscillators=None, coupling_strength=1.0,
                 natural_freq_std=0.1, phase_iterations=10, dropout=0.1):
        super().__init__()
        self.n_heads = n_heads
        self.num_osc = num_oscillators or d_model // n_heads
        self.iters = phase_iterations
        self.dt = 0.1
        hn = n_heads * self.num_osc
        self.to_phase = nn.Linear(d_model, hn)
        self.natural_freq = nn.Parameter(torch.randn(n_heads, self.num_osc) * natural_freq_std)
        self.coupling_matrix = nn.Parameter(torch.ones(n_heads, 1, 1) * coupling_strength)
        self.from_phase = nn.Linear(hn, d_model)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("last_R_param", torch.tensor(0.0))

    def kuramoto_step(self, theta, mask=None):
        # D[b,h,i,j,n] = theta_i - theta_j: the O(T^2 N) tensor of the original.
        diff = theta.unsqueeze(3) - theta.unsqueeze(2)
        k = self.coupling_matrix.view(1, self.n_heads, 1, 1, 1)
        c = k * torch.sin(diff)
        if mask is not None:
            c = c * mask[:, None, None, :, None]
        field = c.mean(dim=3)  # always divided by T
        omega = self.natural_freq[None, :, None, :]
        theta = theta + self.dt * (omega + field)
        return torch.remainder(theta + math.pi, 2 * math.pi) - math.pi

    def forward(self, x, mask=None):
        b, t, _ = x.shape
        p = self.to_phase(x).view(b, t, self.n_heads, self.num_osc).transpose(1, 2)
        theta = math.pi * torch.tanh(p)
        for _ in range(self.iters):
            theta = self.kuramoto_step(theta, mask)
        with torch.no_grad():
            z = torch.complex(torch.cos(theta), torch.sin(theta))
            r = z.mean(dim=(2, 3)).abs()
            self.last_R_param.fill_(r.mean().item())
        self.last_phases = theta.detach()
        out = self.from_phase(theta.transpose(1, 2).reshape(b, t, -1))
        return self.dropout(out)


class StandardAttention(nn.Module):
    def __init__(self, d_model, n_heads, max_seq_len, dropout=0.1):
        super().__init__()
        self.n_heads = n_heads
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropout)
        self.out_dropout = nn.Dropout(dropout)
        self.register_buffer("causal_mask", torch.tril(torch.ones(max_seq_len, max_seq_len)))

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.n_heads
        q, k, v = self.qkv_proj(x).split(d, dim=-1)
        q, k, v = (y.view(b, t, self.n_heads, hd).transpose(1, 2) for y in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
        scores = scores.masked_fill(self.causal_mask[:t, :t] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(scores, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_dropout(self.out_proj(y))


class GPT2Block(nn.Module):
    def __init__(self, cfg, phase=False, num_oscillators=None, coupling_strength=1.0):
        super().__init__()
        d = cfg["d_model"]
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        if phase:
            self.attention = PhaseAttention(d, cfg["n_heads"], num_oscillators, coupling_strength,
                                            dropout=cfg["dropout"])
        else:
            self.attention = StandardAttention(d, cfg["n_heads"], cfg["max_seq_len"], cfg["dropout"])
        self.ffn = nn.Sequential(nn.Linear(d, cfg["d_ff"]), nn.GELU(), nn.Linear(cfg["d_ff"], d),
                                 nn.Dropout(cfg["dropout"]))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class GPT2Model(nn.Module):
    def __init__(self, cfg, use_phase_attention=False, phase_layer_idx=None, num_oscillators=None,
                 coupling_strength=1.0):
        super().__init__()
        self.cfg = cfg
        idx = [] if not use_phase_attention or phase_layer_idx is None else (
            [phase_layer_idx] if isinstance(phase_layer_idx, int) else list(phase_layer_idx))
        self.phase_layer_idx = idx
        d = cfg["d_model"]
        self.token_embedding = nn.Embedding(cfg["vocab_size"], d)
        self.position_embedding = nn.Embedding(cfg["max_seq_len"], d)
        self.dropout = nn.Dropout(cfg["dropout"])
        self.blocks = nn.ModuleList(
            [GPT2Block(cfg, l in idx, num_oscillators, coupling_strength) for l in range(cfg["n_layers"])])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.lm_head = nn.Linear(d, cfg["vocab_size"], bias=False)
        self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, ids):
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device)
        h = self.dropout(self.token_embedding(ids) + self.position_embedding(pos)[None])
        for block in self.blocks:
            h = block(h)
        return self.lm_head(self.ln_f(h))


def save_checkpoint(model, path):
    """The original's save_checkpoint layout (spec §2.6)."""
    torch.save({
        "model_state_dict": model.state_dict(),
        "config": dict(model.cfg),
        "use_phase_attention": bool(model.phase_layer_idx),
        "phase_layer_idx": model.phase_layer_idx or None,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }, path)
