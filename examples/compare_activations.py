"""Compare activation functions the way the MLP study did, on an mlplab server.

    python examples/compare_activations.py --dataset mnist-5k --epochs 10 --plot curves.png

Submits one sweep (one run per activation), prints each epoch as it arrives, then the
leaderboard, saves the sweep's loss curves and prints the results as a pandas DataFrame.
The server URL and token come from --url/--token, else MLPLAB_URL/MLPLAB_TOKEN, else the
client's config file.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlplab import Client

ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu"]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist-5k", help="dataset name (default mnist-5k)")
    p.add_argument("--activations", nargs="+", default=ACTIVATIONS)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 256, 128])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--plot", default="compare_activations.png", help="where to save the PNG")
    p.add_argument("--url")
    p.add_argument("--token")
    return p.parse_args()


def num(value: float | None) -> str:
    """A loss or accuracy to four places; a dash where it is missing (diverged)."""
    return "-" if value is None else f"{value:.4f}"


def sweep_body(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep: the study's architecture and optimiser, one run per activation."""
    return {
        "name": f"activations on {args.dataset}",
        "base": {
            "dataset": args.dataset,
            "hidden": args.hidden,
            "epochs": args.epochs,
            "lr": args.lr,
            "optimizer": "adam",
            "init": "he",
            "scheduler": "step",
            "step_size": 30,
            "batch_size": 64,
            "seed": 0,
        },
        "grid": {"activation": args.activations},
        "metric": "final_train_loss",
    }


def main() -> None:
    """Submit, follow, rank, plot."""
    args = parse_args()
    with Client(args.url, args.token) as client:
        sweep = client.submit_sweep(sweep_body(args))
        runs = {run["id"]: run for run in client.sweep_runs(sweep["id"])}
        print(f"sweep {sweep['id']}: {len(runs)} runs")

        def on_epoch(epoch: dict[str, Any]) -> None:
            activation = runs[epoch["run_id"]]["varied"]["activation"]
            print(
                f"  {activation:<11} epoch {epoch['epoch']:>3}/{args.epochs}  "
                f"train {num(epoch['train_loss'])}  test {num(epoch['test_loss'])}  "
                f"acc {num(epoch['test_accuracy'])}"
            )

        done = client.wait(sweep["id"], on_epoch=on_epoch, sweep=True)
        print(f"finished: {done['counts']}\n")
        print(f"{'rank':>4}  {'activation':<11} {'status':<10} {done['metric']}")
        for row in client.leaderboard(sweep["id"]):
            print(
                f"{row['rank'] or '-':>4}  {row['varied']['activation']:<11} "
                f"{row['status']:<10} {num(row['value'])}"
            )
        with open(args.plot, "wb") as file:
            file.write(client.plot(sweep["id"], sweep=True))
        print(f"\nloss curves saved to {args.plot}\n")
        frame = client.to_dataframe(sweep["id"])
        columns = [
            "rank",
            "activation",
            "status",
            "final_train_loss",
            "final_test_loss",
            "final_test_accuracy",
            "runtime_s",
        ]
        print(frame[[c for c in columns if c in frame.columns]].to_string(index=False))


if __name__ == "__main__":
    main()
