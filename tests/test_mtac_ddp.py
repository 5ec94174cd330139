"""MTAC under DDP: two gloo ranks that each trained on half the samples agree after all-reduce."""

from __future__ import annotations

import torch
from test_mtac import make_context, run_crafted_epoch

from fercleaner.methods.mtac import MTAC


def _ddp_worker(rank: int, world_size: int, store_path: str, out_dir: str) -> None:
    """One gloo rank: stage half of the crafted epoch, end the epoch, save what it decided."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(0)
        model = MTAC(make_context(relabel_warmup=1, epochs=3))
        n = model.context.num_samples
        mine = torch.arange(n) % world_size == rank  # this rank trained on half the rows
        run_crafted_epoch(model, 0, rows=mine)
        run_crafted_epoch(model, 1, rows=mine)
        torch.save(
            {
                "labels": model.memory.labels,
                "prototypes": model.memory.prototypes,
                "held": model.extra_state()["events"],
                "events": model.events(),
            },
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_agree_after_all_reduce(tmp_path):
    """Two gloo ranks that each saw half the samples take the single-process decisions."""
    import torch.multiprocessing as mp

    args = (2, str(tmp_path / "store"), str(tmp_path))
    mp.spawn(_ddp_worker, args=args, nprocs=2, join=True)  # spawn: fork deadlocks torch threads
    torch.manual_seed(0)
    single = MTAC(make_context(relabel_warmup=1, epochs=3))
    run_crafted_epoch(single, 0)
    run_crafted_epoch(single, 1)
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert torch.equal(result["labels"], single.memory.labels)
        torch.testing.assert_close(result["prototypes"], single.memory.prototypes)
        assert result["held"] == single.events() and result["held"]
        # only rank 0 reports events, so the trainer's gather does not duplicate them
        assert result["events"] == (single.events() if rank == 0 else [])
