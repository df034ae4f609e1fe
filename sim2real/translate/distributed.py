"""Several training processes (torchrun): what they exchange.

Process ``r`` of ``N`` with ``train.batch_size`` B trains on items ``r*B .. r*B+B-1`` of
the global batch of ``N*B`` (see :mod:`.batches`), and the gradients are averaged with one
flat ``all_reduce`` per update, so N processes x batch B follow the trajectory of one
process x batch N*B. The networks are not wrapped in ``DistributedDataParallel``: a step
calls the generators' encoders and decoders several times and alternates generator and
discriminator updates, which DDP's one-forward-one-backward bookkeeping only fits with
``find_unused_parameters`` and static-graph workarounds; averaging by hand is exact and
simple. Every helper is a no-op for one process.
"""

from __future__ import annotations

import torch


def broadcast_weights(nets, world_size: int) -> None:
    """Every process starts from rank 0's weights (they are seeded alike; this makes it certain)."""
    if world_size == 1:
        return
    import torch.distributed as dist

    for net in nets:
        for t in [*net.parameters(), *net.buffers()]:
            dist.broadcast(t.data, 0)


def average_gradients(grads: list[torch.Tensor], world_size: int) -> None:
    """Replace each gradient by its mean over the processes (one flat all_reduce)."""
    if world_size == 1:
        return
    import torch.distributed as dist

    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world_size
    for g, r in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(r)


def mean_over_processes(vals: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size == 1:
        return vals
    import torch.distributed as dist

    dist.all_reduce(vals)
    return vals / world_size


def any_process(flag: bool, device: torch.device, world_size: int) -> bool:
    """True on every process if ``flag`` is true on one of them."""
    if world_size == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def leave(world_size: int, finished: bool) -> None:
    """Tear this process's group down; after a finished run, only once every process got here.

    Without the barrier a process that is done first closes its connections while another
    is still saving or logging, and gloo may abort the late one (SIGABRT at exit). After an
    error there is no barrier to wait at: the other processes may never come.
    """
    if world_size == 1:
        return
    import torch.distributed as dist

    if finished:
        dist.barrier()
    dist.destroy_process_group()
