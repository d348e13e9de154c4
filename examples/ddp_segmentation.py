"""Data-parallel training with DistributedDataParallel: a global Dice + CE over every rank's images.

Each rank trains on its share of every batch. The loss gets
``all_reduce=torch.distributed.nn.functional.all_reduce``: the per-class
statistics (and the cross entropy's sum and count) are summed across ranks
before the Dice ratio is taken, so every rank computes the loss of the whole
batch, and DDP's gradient averaging then gives exactly the whole batch's
gradient (docs/distributed.md says why; tests/test_distributed.py checks it).
Without ``all_reduce`` each rank would take the Dice of its own shard.

    torchrun --nproc_per_node 2 examples/ddp_segmentation.py            # 2 processes, gloo on CPU
    torchrun --nproc_per_node 2 examples/ddp_segmentation.py --smoke    # a few steps
    python examples/ddp_segmentation.py --smoke                         # alone: a world of one

On GPUs, use the nccl backend (``--backend nccl``), one process per GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch
import torch.distributed as dist
from _data import NUM_CLASSES, batches, make_segmentation, mean_iou
from torch.distributed.nn.functional import all_reduce
from torch.nn.parallel import DistributedDataParallel
from torch_segmentation import UNet

import polyloss as pl

# torch 2.13 warns that torch.distributed.nn.functional is deprecated in favour of the (private)
# torch.distributed._functional_collectives; it works, and is the documented differentiable all_reduce.
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="training steps (default 300; 3 with --smoke)")
    p.add_argument("--batch-size", type=int, default=8, help="the global batch, split evenly over the ranks")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="gloo", help="torch.distributed backend: gloo (CPU) or nccl (GPU)")
    p.add_argument("--smoke", action="store_true", help="a few steps on a tiny set: checks that it runs")
    args = p.parse_args(argv)
    steps = args.steps or (3 if args.smoke else 300)
    n_train, n_eval = (16, 8) if args.smoke else (512, 96)

    # torchrun sets these four; alone, the script is a world of one (port 0: any free port)
    for key, default in (("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "0")):
        os.environ.setdefault(key, default)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch_size % world:
        p.error(f"--batch-size {args.batch_size} must be a multiple of the world size {world}")
    local = args.batch_size // world
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if args.backend == "nccl" else "cpu")

    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    x_np, y_np = make_segmentation(n_train, seed=args.seed, split="train")
    x_train = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    y_train = torch.from_numpy(y_np).long()
    model = DistributedDataParallel(UNet(x_train.shape[1], NUM_CLASSES).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"DDP over {world} rank(s) ({args.backend}): {local} of each batch of {args.batch_size} images per "
              f"rank; loss polyloss.dice_cross_entropy_loss(all_reduce=torch.distributed.nn.functional.all_reduce)",
              flush=True)

    start = time.perf_counter()
    # every rank draws the same global batches and keeps its own slice of each
    for i, idx in enumerate(batches(n_train, args.batch_size, steps, seed=args.seed), start=1):
        mine = torch.from_numpy(idx[rank * local:(rank + 1) * local])
        x, y = x_train[mine].to(device), y_train[mine].to(device)
        loss = pl.dice_cross_entropy_loss(model(x), y, class_axis=1, all_reduce=all_reduce)  # the global loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients: the whole batch's gradient, on every rank
        optimizer.step()
        if rank == 0 and (i % max(1, steps // 6) == 0 or i == steps):
            print(f"step {i:4d}/{steps}  loss {loss.item():.4f} (whole batch)  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)

    if rank == 0:
        xe_np, ye_np = make_segmentation(n_eval, seed=args.seed, split="eval")
        model.eval()
        with torch.no_grad():
            logits = model.module(torch.from_numpy(xe_np).permute(0, 3, 1, 2).contiguous().to(device))
        miou, _ = mean_iou(logits.argmax(dim=1).cpu().numpy(), ye_np)
        print(f"final eval mean IoU {miou:.3f} (all-background baseline 0.000)")
    # DDP's reducer holds the process group: free it first, so that the group is freed by
    # destroy_process_group, which lets go of the GIL while gloo's worker threads finish. Freed last by
    # the reducer, the group waits for those threads with the GIL held, and a thread that needs the GIL
    # to drop its last piece of work hangs both (seen about once in 20 runs on 2 busy cores).
    del model, optimizer
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
