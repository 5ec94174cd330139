"""Pure tensor functions behind POI: prior evidence, mutual learning, JS uncertainty, transfer.

Kept apart from the module that builds the networks so each formula can be checked
against hand-computed values on tiny tensors. Everything computes in float32 (callers
may run the model under autocast) and holds no state. Shapes: B samples, C classes,
K action units (`priors.AU_IDS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def prior_evidence(
    au: torch.Tensor, prior: torch.Tensor, *, tau: torch.Tensor | float, kappa: float = 0.0
) -> torch.Tensor:
    """Emotion evidence z = tau * M a / sqrt(|a|^2 + kappa^2) from AU activations a.

    Why the norm: evidence should say which prototype the AU pattern resembles, not how
    strongly the face is expressed. Why `kappa`: with kappa = 0 (the plain |a| of the
    method description) a face with almost no active AU (a neutral face) is divided by
    a tiny norm and its noise direction becomes confident evidence; kappa > 0 lets such
    a face give near-zero evidence for every class instead.

    Args:
        au: (B, K) activations in [0, 1].
        prior: (C, K) AU prior matrix M (`priors.get_au_prior_matrix`).
        tau: scale (float or scalar tensor, may be learnable).
        kappa: softening of the norm (>= 0).

    Returns:
        (B, C) evidence logits.
    """
    au = au.float()
    norm = torch.sqrt((au * au).sum(dim=1, keepdim=True) + kappa * kappa + 1e-12)  # (B, 1)
    return tau * (au @ prior.float().t()) / norm


def mutual_learning_kl(logits: Sequence[torch.Tensor], *, temperature: float = 1.0) -> torch.Tensor:
    """Deep mutual learning: mean over ordered pairs r != s of T^2 KL(p_s (detached) || p_r).

    Each region branch learns from every other branch's current prediction as a fixed
    target (Zhang et al., CVPR 2018), so branches that see different parts of the face
    pull each other towards a shared, smoother distribution.

    Args:
        logits: R >= 2 tensors of shape (B, C).
        temperature: softening T of both distributions.

    Returns:
        Scalar, batch-mean KL averaged over the R (R - 1) ordered pairs.
    """
    if len(logits) < 2:
        raise ValueError(f"mutual learning needs at least 2 branches, got {len(logits)}")
    log_p = [F.log_softmax(z.float() / temperature, dim=1) for z in logits]
    total = log_p[0].new_zeros(())
    pairs = 0
    for r, log_pr in enumerate(log_p):
        for s, log_ps in enumerate(log_p):
            if r == s:
                continue
            target = log_ps.detach()
            kl = (target.exp() * (target - log_pr)).sum(dim=1).mean()
            total = total + kl
            pairs += 1
    return total * (temperature**2) / pairs


def js_uncertainty(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample u = JS(q, onehot(y)) / ln 2 in [0, 1].

    0 when q is certain of y, 1 when q gives y nothing.

    Parameter-free: it measures how far the prior-based distribution q is from the
    given label, so a sample the prior network does not believe gets a high u and the
    target network leans on q instead of the given label.

    Args:
        probs: (B, C) distribution q.
        labels: (B,) long class indices y.

    Returns:
        (B,) float32 uncertainty.
    """
    q = probs.float().clamp(min=0.0)
    onehot = F.one_hot(labels.long(), q.shape[1]).float()
    mid = 0.5 * (q + onehot)
    kl_q = torch.where(
        q > 0, q * (torch.log(q.clamp(min=1e-12)) - torch.log(mid.clamp(min=1e-12))), 0.0
    )
    # KL(onehot || mid) = -log mid[y]
    kl_y = -torch.log(mid.gather(1, labels.long().view(-1, 1)).squeeze(1).clamp(min=1e-12))
    js = 0.5 * (kl_q.sum(dim=1) + kl_y)
    return (js / math.log(2.0)).clamp(0.0, 1.0)


def transfer_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    *,
    temperature: float = 2.0,
) -> torch.Tensor:
    """TRN loss: batch mean of (1 - w_i) CE(p_i, y_i) + w_i T^2 KL(q_i^T || p_i^T).

    The teacher (PIN) is detached: knowledge flows from PIN to TRN only. T^2 keeps the
    distillation gradient on the scale of the cross-entropy (Hinton et al. 2015).

    Args:
        student_logits: (B, C) TRN logits.
        teacher_logits: (B, C) PIN logits.
        labels: (B,) given labels.
        weights: (B,) per-sample transfer weight w_i in [0, 1] (ramp x uncertainty).
        temperature: T.

    Returns:
        Scalar loss.
    """
    student = student_logits.float()
    w = weights.float().detach()
    ce = F.cross_entropy(student, labels.long(), reduction="none")  # (B,)
    log_p_t = F.log_softmax(student / temperature, dim=1)
    log_q_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
    kl = (log_q_t.exp() * (log_q_t - log_p_t)).sum(dim=1)  # (B,)
    return ((1.0 - w) * ce + w * (temperature**2) * kl).mean()
