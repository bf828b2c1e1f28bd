"""A denoiser for canvases that are the nodes of a graph and whose values are interchangeable
labels (colours): the graph enters through its adjacency, never as context tokens.

``GraphDenoiser`` reads tokens [B, L], the adjacency ``peers`` [B, L, L] (``Canvas.peers``) and
the candidate domains [B, L, V], and returns logits [B, L, V]. Two streams, both equivariant to
a permutation of the nodes (no node index is embedded):

- a node stream h [B, L, H]: self-attention masked by the adjacency (each node attends to
  itself, its neighbours and ``num_global`` learned global positions, which attend to every
  node), as in graph transformers with virtual nodes (Dwivedi & Bresson 2021; Gilmer et al.
  2017 for the virtual node);
- a value stream z [B, L, C, Hc], one vector per (node, colour), equivariant to a permutation
  of the colours too: its inputs are colour-free statistics (does the node hold c, may it take
  c, how many neighbours hold or may take c, how urgent c is to uncoloured neighbours, the size
  of colour class c), its updates mix neighbours (the adjacency-normalised sum), colours (the
  mean over colours) and the node stream, all with weights shared across colours.

The logit of colour c at node i is a linear read-out of z[i, c], so relabelling the colours
permutes the logits the same way: the model is colour-symmetric by construction and the
sampler breaks the symmetry at the first decision. The number of colours C is read from the
domains / tokens of the batch (any C up to the vocabulary's ``num_values``); trailing padding
nodes are trimmed before the layers run. Memory: O(B * L^2) for the adjacency and attention
mask plus O(B * L * C * Hc) for the value stream (1,000 nodes, 100 colours: ~60 MB).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

N_NODE_FEATURES = 8
N_VALUE_FEATURES = 7
NEG = -30.0  # logit of tokens a position cannot hold


class GraphDenoiserConfig(PretrainedConfig):
    model_type = "constrained-graph-denoiser"

    def __init__(
        self,
        vocab_size: int = 16,
        value_offset: int = 2,
        num_values: int = 10,
        hidden_size: int = 64,
        value_hidden_size: int = 32,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        num_global: int = 2,
        noise: str = "mask",
        task: str | None = None,
        vocab_tokens: list[str] | None = None,
        canvas_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.value_offset = value_offset
        self.num_values = num_values
        self.hidden_size = hidden_size
        self.value_hidden_size = value_hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_global = num_global
        self.noise = noise
        self.task = task
        self.vocab_tokens = list(vocab_tokens) if vocab_tokens is not None else None
        self.canvas_length = canvas_length
        self.coord_sizes: dict[str, int] = {}
        self.domain_input = True  # reads the candidate domains (the solver passes them)
        self.graph_input = True  # reads the adjacency (Canvas.peers)
        super().__init__(**kwargs)


class _Layer(nn.Module):
    def __init__(self, h: int, hc: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(h)
        self.qkv = nn.Linear(h, 3 * h)
        self.proj = nn.Linear(h, h)
        self.ln2 = nn.LayerNorm(h)
        self.ff = nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        self.lnz = nn.LayerNorm(hc)
        self.zmix = nn.Sequential(nn.Linear(3 * hc + h, 2 * hc), nn.GELU(), nn.Linear(2 * hc, hc))
        self.z2h = nn.Linear(hc, h)

    def forward(self, h: torch.Tensor, z: torch.Tensor, attn_mask: torch.Tensor, adj_norm: torch.Tensor,
                n_glob: int) -> tuple[torch.Tensor, torch.Tensor]:
        # node stream: attention along the adjacency (+ self + global positions)
        B, T, H = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, T, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, heads, T, H/heads]
        h = h + self.proj(a.transpose(1, 2).reshape(B, T, H))
        h = h + self.ff(self.ln2(h))
        # value stream on the real nodes: neighbours, other colours, the node's own state
        hn = h[:, n_glob:]  # [B, N, H]
        B, N, C, Hc = z.shape
        zn = self.lnz(z)
        nbr = torch.bmm(adj_norm, zn.reshape(B, N, C * Hc)).view(B, N, C, Hc)
        mean_c = zn.mean(2, keepdim=True).expand(-1, -1, C, -1)
        z = z + self.zmix(torch.cat([zn, nbr, mean_c, hn.unsqueeze(2).expand(-1, -1, C, -1)], -1))
        hn = hn + self.z2h(z.mean(2))
        return torch.cat([h[:, :n_glob], hn], 1), z


class GraphDenoiser(PreTrainedModel):
    """tokens [B, L] + peers [B, L, L] + domains [B, L, V] -> logits [B, L, V] (see the module doc).

    Tokens ``value_offset .. value_offset + num_values - 1`` are the values (colours); ``[PAD]``
    (id 0) marks padding nodes, ``[MASK]`` (id 1) empty ones. Without ``domains`` every colour up
    to the largest one present is a candidate of every empty node; without ``peers`` the graph
    has no edges."""

    config_class = GraphDenoiserConfig
    base_model_prefix = "graph_denoiser"
    main_input_name = "input_ids"

    def __init__(self, config: GraphDenoiserConfig) -> None:
        super().__init__(config)
        h, hc = config.hidden_size, config.value_hidden_size
        if h % config.num_attention_heads:
            raise ValueError(f"hidden_size {h} is not divisible by num_attention_heads {config.num_attention_heads}")
        self.node_in = nn.Linear(N_NODE_FEATURES, h)
        self.value_in = nn.Linear(N_VALUE_FEATURES, hc)
        self.node_to_value = nn.Linear(h, hc)
        self.globals = nn.Parameter(torch.zeros(config.num_global, h))
        self.layers = nn.ModuleList(_Layer(h, hc, config.num_attention_heads)
                                    for _ in range(config.num_hidden_layers))
        self.out = nn.Sequential(nn.LayerNorm(hc), nn.Linear(hc, hc), nn.GELU(), nn.Linear(hc, 1))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.05)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, peers: torch.Tensor | None = None,
                domains: torch.Tensor | None = None, **_: Any) -> MaskedLMOutput:
        cfg = self.config
        B, L = input_ids.shape
        V, off, M = cfg.vocab_size, cfg.value_offset, cfg.num_values
        real = input_ids != 0
        n = int(real.nonzero()[:, 1].max()) + 1 if bool(real.any()) else 1  # trim trailing padding
        ids, real = input_ids[:, :n], real[:, :n]
        val = ids - off
        filled = (val >= 0) & (val < M)
        # number of colours in play: the largest candidate or held colour in the batch
        C = int(val[filled].max()) + 1 if bool(filled.any()) else 1
        if domains is not None:
            dv = domains[:, :n, off:off + M]
            if bool(dv.any()):
                C = max(C, int(dv.any(0).any(0).nonzero().max()) + 1)
            D = dv[..., :C].float() * (~filled & real).unsqueeze(-1)
        else:
            D = ((~filled & real).unsqueeze(-1)).float().expand(B, n, C)
        X = F.one_hot(val.clamp(0, C - 1), C).float() * filled.unsqueeze(-1)  # [B, n, C]
        A = peers[:, :n, :n].float() if peers is not None else torch.zeros(B, n, n, device=ids.device)
        dtype = self.node_in.weight.dtype
        X, D, A = X.to(dtype), D.to(dtype), A.to(dtype)
        deg = A.sum(-1, keepdim=True)  # [B, n, 1]
        adj_norm = A / (deg + 1.0)
        dsize = D.sum(-1, keepdim=True)  # [B, n, 1]
        n_real = real.sum(-1, keepdim=True).clamp(min=1).to(dtype)  # [B, 1]
        realf = real.unsqueeze(-1).to(dtype)
        # value features [B, n, C, 7]
        nX = torch.bmm(adj_norm, X)
        nD = torch.bmm(adj_norm, D)
        urgency = torch.bmm(A, D / dsize.clamp(min=1.0)) / (deg + 1.0).sqrt()
        size_c = (X.sum(1, keepdim=True) / n_real.unsqueeze(-1)).expand(-1, n, -1)
        used_c = (X.sum(1, keepdim=True) > 0).to(dtype).expand(-1, n, -1)
        vf = torch.stack([X, D, nX, nD, urgency, size_c, used_c], -1) * realf.unsqueeze(-1)
        # node features [B, n, 8]
        free_nbrs = torch.bmm(A, (~filled & real).unsqueeze(-1).to(dtype))
        nf = torch.cat([
            filled.unsqueeze(-1).to(dtype), dsize / C, 1.0 / dsize.clamp(min=1.0), torch.log1p(deg) / 4,
            deg / n_real.unsqueeze(-1), free_nbrs / (deg + 1.0),
            (filled.sum(-1, keepdim=True) / n_real).unsqueeze(-1).expand(-1, n, -1),
            torch.full_like(deg, float(torch.log(torch.tensor(float(C))) / 4)),
        ], -1) * realf
        h = self.node_in(nf)
        z = self.value_in(vf) + self.node_to_value(h).unsqueeze(2)
        G = cfg.num_global
        h = torch.cat([self.globals.unsqueeze(0).expand(B, -1, -1).to(dtype), h], 1)
        # attention mask [B, 1, G + n, G + n]: self, neighbours, globals; padding sees itself only
        T = G + n
        mask = torch.zeros(B, T, T, dtype=torch.bool, device=ids.device)
        mask[:, G:, G:] = A > 0
        keep = torch.cat([torch.ones(B, G, dtype=torch.bool, device=ids.device), real], 1)
        mask[:, :, :G] = True
        mask[:, :G, :] |= keep.unsqueeze(1)
        mask |= torch.eye(T, dtype=torch.bool, device=ids.device).unsqueeze(0)
        mask &= keep.unsqueeze(1) | torch.eye(T, dtype=torch.bool, device=ids.device).unsqueeze(0)
        mask = mask.unsqueeze(1)
        for layer in self.layers:
            h, z = layer(h, z, mask, adj_norm, G)
        score = self.out(z).squeeze(-1)  # [B, n, C]
        logits = torch.full((B, L, V), NEG, dtype=score.dtype, device=ids.device)
        logits[:, :n, off:off + C] = score
        pad = ~(input_ids != 0)
        logits[..., 0] = torch.where(pad, torch.zeros_like(logits[..., 0]), logits[..., 0])
        return MaskedLMOutput(logits=logits)


def reads_graph(model: nn.Module) -> bool:
    """Whether a denoiser takes the canvas's adjacency ``peers`` as input (``config.graph_input``)."""
    return bool(getattr(getattr(model, "config", None), "graph_input", False))


AutoConfig.register(GraphDenoiserConfig.model_type, GraphDenoiserConfig)
AutoModelForMaskedLM.register(GraphDenoiserConfig, GraphDenoiser)

__all__ = ["GraphDenoiser", "GraphDenoiserConfig", "reads_graph"]
