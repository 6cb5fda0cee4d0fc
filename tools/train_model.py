#!/usr/bin/env python3
"""Train the bundled Llama-architecture model on War and Peace (GPU; PyTorch + transformers).

Input: the folder written by tools/prepare_data.py (train_ids.npy, val_ids.npy, tokenizer/).

    PYTHONUNBUFFERED=1 python3 tools/train_model.py --preset tiny --data out/wp-data --out /tmp/wp-tiny

What it does
  * a small sweep over the length of the run (in epochs of the fitting split); each run is a fresh,
    seeded model trained on random 512-token windows with AdamW, linear warm-up then cosine decay,
    bf16 autocast, and periodic evaluation of the validation split (the last ~5% of the train part;
    the test text is never read here); a run stops early when the validation loss has not improved
    for --patience evaluations, and the whole sweep stops at --time-budget seconds;
  * the checkpoint with the lowest validation loss over all runs is kept, saved in BF16 with
    save_pretrained (config.json, generation_config.json, model*.safetensors) beside a copy of
    tokenizer.json / tokenizer_config.json, and re-saved whenever a later run beats it, so an
    interrupted job still leaves the best model so far;
  * the saved BF16 checkpoint is reloaded in FP32 (TF32 off) and its validation loss recomputed;
    training_log.json beside it records the curves, the settings, the versions and the timings.

On a machine without a GPU (--device cpu) the same loop runs in FP32 without autocast; there the run
length is set by --time-budget alone (--schedule time: the cosine follows elapsed time, not steps),
periodic validation uses the first --val-windows windows, and the checkpoint is saved at every
improvement.

Validation loss follows the perplexity protocol of the fixtures: non-overlapping 512-token windows,
mean NLL of positions 1..511 of each window, mean over windows.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PRESETS = {
    # ~6.8M parameters, 13.6 MB in BF16: committed as models/wp-tiny.
    "tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                 num_key_value_heads=4, head_dim=32, lr=2e-3, sweep="4,8,16,32", batch=32,
                 max_shard_size="20MB"),
    # ~23M parameters, 46 MB in BF16, sharded below 15 MB a file: not committed.
    "medium": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=8,
                   num_key_value_heads=4, head_dim=64, lr=1e-3, sweep="3,6,12,24", batch=32,
                   max_shard_size="12MB"),
}
SEQLEN = 512
VOCAB = 4096
SPECIAL_ID = 0  # <|endoftext|>


def build_config(preset: dict):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=preset["hidden_size"],
        intermediate_size=preset["intermediate_size"],
        num_hidden_layers=preset["num_hidden_layers"],
        num_attention_heads=preset["num_attention_heads"],
        num_key_value_heads=preset["num_key_value_heads"],
        head_dim=preset["head_dim"],
        max_position_embeddings=SEQLEN,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        bos_token_id=SPECIAL_ID,
        eos_token_id=SPECIAL_ID,
        pad_token_id=None,
        use_cache=True,
    )


@torch.no_grad()
def window_loss(model, ids: torch.Tensor, seqlen: int = SEQLEN, batch: int = 64, autocast: bool = True,
                max_windows: int = 0) -> float:
    """Mean over non-overlapping windows of the window's mean next-token NLL (tail dropped)."""
    model.eval()
    autocast = autocast and ids.is_cuda
    n_windows = ids.numel() // seqlen
    if max_windows > 0:
        n_windows = min(n_windows, max_windows)
    windows = ids[: n_windows * seqlen].view(n_windows, seqlen)
    total = 0.0
    for start in range(0, n_windows, batch):
        chunk = windows[start : start + batch]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=chunk, use_cache=False).logits
        nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                              chunk[:, 1:].reshape(-1), reduction="none").view(chunk.shape[0], -1)
        total += nll.mean(dim=1).double().sum().item()
    model.train()
    return total / n_windows


def save_checkpoint(config, state: dict, out_dir: Path, tokenizer_dir: Path, max_shard_size: str) -> None:
    from transformers import LlamaForCausalLM

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = LlamaForCausalLM(config)
    model.load_state_dict({k: v.detach().float().cpu() for k, v in state.items()})
    model = model.to(torch.bfloat16)
    model.save_pretrained(str(out_dir), max_shard_size=max_shard_size)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tokenizer_dir / name, out_dir / name)


def train_one(run: int, epochs: float, args, preset, config, train_ids, val_ids, deadline: float, log,
              on_improve=None) -> dict:
    """One fresh, seeded model. Step schedule: `epochs` passes' worth of random windows. Time schedule:
    until `deadline`, the cosine following elapsed time. Returns the curve and the best state."""
    from transformers import LlamaForCausalLM

    device = train_ids.device
    cuda = device.type == "cuda"
    torch.manual_seed(args.seed + run)
    model = LlamaForCausalLM(config).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda)
    batch = args.batch
    tokens_per_step = batch * SEQLEN
    timed = args.schedule == "time"
    t0 = time.time()
    run_seconds = max(1.0, deadline - t0)
    steps = 10**9 if timed else max(50, math.ceil(epochs * train_ids.numel() / tokens_per_step))
    warmup = args.warmup if timed else max(10, min(100, steps // 10))
    eval_every = max(10, int(steps / (4 * max(1.0, epochs))))  # about four evaluations an epoch
    generator = torch.Generator(device=device)
    generator.manual_seed(10_000 + args.seed + run)
    offsets = torch.arange(SEQLEN + 1, device=device)
    high = train_ids.numel() - SEQLEN - 1

    curve, best, best_state, bad_evals = [], float("inf"), None, 0
    running = torch.zeros((), device=device)  # summed train loss since the last evaluation
    running_n = 0
    last_eval = t0
    stop_reason = "finished"
    step = 0
    while step < steps:
        elapsed = time.time() - t0
        progress = elapsed / run_seconds if timed else step / steps
        if step < warmup:
            lr = args.lr * (step + 1) / warmup
        else:
            floor = 0.1 * args.lr
            lr = floor + (args.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, high, (batch,), device=device, generator=generator)
        window = train_ids[starts[:, None] + offsets]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(input_ids=window[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), window[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.detach()
        running_n += 1
        step += 1
        now = time.time()
        out_of_time = now > deadline
        if timed:
            due = now - last_eval >= args.eval_every_s or out_of_time
        else:
            due = step % eval_every == 0 or step == steps
        if timed and step % 10 == 0:
            print(f"  step {step} lr {lr:.2e} loss {loss.item():.4f} {tokens_per_step * step / (now - t0):.0f} tok/s",
                  flush=True)
        if due:
            last_eval = now
            train_loss = running.item() / running_n
            running.zero_()
            running_n = 0
            val = window_loss(model, val_ids, max_windows=args.val_windows)
            elapsed = time.time() - t0
            point = dict(step=step, tokens=step * tokens_per_step, train_loss=round(train_loss, 5),
                         val_loss=round(val, 5), lr=lr, seconds=round(elapsed, 2))
            curve.append(point)
            improved = val < best - 1e-4
            if improved:
                best, bad_evals = val, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                point["best"] = True
            else:
                bad_evals += 1
            label = "time" if timed else f"{epochs} ep"
            log(f"run {run} ({label}) step {step:5d}{'' if timed else '/' + str(steps)} lr {lr:.2e} "
                f"train {train_loss:.4f} val {val:.4f}{' *' if improved else ''}  {elapsed:6.1f}s")
            if improved and on_improve is not None:
                on_improve(best_state, dict(run=run, step=step, val_loss=val))
            if bad_evals >= args.patience:
                stop_reason = f"early stop: no improvement in {args.patience} evaluations"
                break
        if out_of_time:
            stop_reason = "time budget"
            break
    return dict(run=run, epochs=None if timed else epochs, steps_planned=None if timed else steps, steps_done=step,
                warmup=warmup, eval_every=f"{args.eval_every_s}s" if timed else eval_every, batch=batch,
                seqlen=SEQLEN, lr=args.lr, best_val_loss=best, stop=stop_reason,
                seconds=round(time.time() - t0, 1), curve=curve, state=best_state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--data", type=Path, default=Path("out/wp-data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--schedule", choices=("steps", "time"), default=None,
                        help="steps (GPU default): a sweep of run lengths; time (CPU default): one run that "
                             "fills --time-budget")
    parser.add_argument("--sweep", default=None, help="comma-separated run lengths in epochs (preset default)")
    parser.add_argument("--time-budget", type=float, default=230.0, help="seconds of training in all")
    parser.add_argument("--batch", type=int, default=None, help="windows per step (preset default)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (preset default)")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up steps of the time schedule")
    parser.add_argument("--eval-every-s", type=float, default=300.0, help="seconds between evaluations (time schedule)")
    parser.add_argument("--val-windows", type=int, default=0, help="windows of periodic validation (0: all)")
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    import tokenizers
    import transformers

    t_start = time.time()
    deadline = t_start + args.time_budget
    preset = PRESETS[args.preset]
    cuda = args.device.startswith("cuda")
    args.schedule = args.schedule or ("steps" if cuda else "time")
    args.batch = args.batch or preset["batch"]
    args.lr = args.lr or preset["lr"]
    sweep = [float(x) for x in (args.sweep or preset["sweep"]).split(",")] if args.schedule == "steps" else [0.0]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # training only; the final check below turns it off
        torch.backends.cudnn.allow_tf32 = True
    device_name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    versions = dict(torch=torch.__version__, transformers=transformers.__version__, tokenizers=tokenizers.__version__,
                    python=sys.version.split()[0], cuda=torch.version.cuda)
    print(f"device {device_name}; versions {versions}", flush=True)

    train_ids = torch.from_numpy(np.load(args.data / "train_ids.npy").astype(np.int64)).to(args.device)
    val_ids = torch.from_numpy(np.load(args.data / "val_ids.npy").astype(np.int64)).to(args.device)
    config = build_config(preset)
    n_params = sum(p.numel() for p in transformers.LlamaForCausalLM(config).parameters())
    print(f"preset {args.preset}: {n_params:,} parameters; train {train_ids.numel():,} tokens, "
          f"val {val_ids.numel():,} tokens; schedule {args.schedule}; sweep {sweep}", flush=True)

    lines: list[str] = []

    def log(msg: str) -> None:
        lines.append(msg)
        print(msg, flush=True)

    def save(state: dict, tag: str) -> None:
        try:
            save_checkpoint(config, state, args.out, args.data / "tokenizer", preset["max_shard_size"])
            log(f"saved {tag} to {args.out}")
        except Exception as error:  # keep the weights anyway, in a form a later job can convert
            from safetensors.torch import save_file

            log(f"save_pretrained failed: {error!r}; writing raw weights instead")
            args.out.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().to(torch.bfloat16).cpu().contiguous() for k, v in state.items()},
                      str(args.out / "raw_state.safetensors"))
            config.to_json_file(str(args.out / "config.json"))

    on_improve = None
    if args.schedule == "time":  # one long run: keep the best state on disk as it goes
        on_improve = lambda state, info: save(state, f"step {info['step']} (val {info['val_loss']:.4f})")  # noqa: E731

    runs, best_run = [], None
    for run, epochs in enumerate(sweep):
        if time.time() > deadline:
            log(f"time budget spent before run {run}")
            break
        result = train_one(run, epochs, args, preset, config, train_ids, val_ids, deadline, log, on_improve)
        state = result.pop("state")
        runs.append(result)
        log(f"run {run}: best val {result['best_val_loss']:.4f} ({result['stop']}, {result['seconds']:.1f}s)")
        if state is not None and (best_run is None or result["best_val_loss"] < best_run["best_val_loss"]):
            best_run = result
            if on_improve is None:
                save(state, f"run {run}")
        del state
        if cuda:
            torch.cuda.empty_cache()
    train_seconds = time.time() - t_start
    if best_run is None:
        log("no checkpoint")
        return 1

    summary = dict(preset=args.preset, parameters=n_params, architecture=preset, device=device_name,
                   versions=versions, seed=args.seed, schedule=args.schedule, batch=args.batch, lr=args.lr,
                   optimizer="AdamW(betas=(0.9,0.95), eps=1e-8)", weight_decay=args.weight_decay,
                   lr_schedule="linear warm-up, cosine to 10% of peak", grad_clip=1.0,
                   precision="bf16 autocast" if cuda else "fp32", patience=args.patience,
                   time_budget_s=args.time_budget, val_windows=args.val_windows,
                   train_tokens=train_ids.numel(), val_tokens=val_ids.numel(), training_seconds=round(train_seconds, 1),
                   best_run=best_run["run"], best_val_loss_during_training=best_run["best_val_loss"], runs=runs)
    (args.out / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")

    # Reload the saved BF16 checkpoint in exact FP32 and recompute the validation loss on all of it.
    try:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(args.out), dtype=torch.float32)
        except TypeError:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(args.out), torch_dtype=torch.float32)
        model = model.to(args.device)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        val = window_loss(model, val_ids, autocast=False, batch=64 if cuda else 4)
        summary["val_loss_saved_bf16_weights_fp32"] = val
        summary["val_ppl_saved_bf16_weights_fp32"] = math.exp(val)
        log(f"saved checkpoint: val loss {val:.5f} (ppl {math.exp(val):.3f}) in FP32 from BF16 weights")
    except Exception as error:  # the checkpoint is already on disk: report, don't lose it
        log(f"reload check failed: {error!r}")
    (args.out / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"done in {time.time() - t_start:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
