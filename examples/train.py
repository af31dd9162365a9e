"""A toy training loop that versions its dataset and checkpoints with artisync.

Run it on the embedded defaults (``make run`` does, with a daemon it keeps running):

    python examples/train.py

With no daemon running, the first ``log_artifact`` starts one.

It never waits for hashing or uploads inside the loop; at the end it waits for the
versions and prints them. Then an "evaluation" run reads the best checkpoint back,
downloads it (verified) and records it as its input, so ``artisync lineage
example/model:best`` shows both runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import artisync


def main() -> None:
    # The example's files are gone when it ends; their versions stay in the registry.
    with tempfile.TemporaryDirectory(prefix="artisync-example-") as tmp:
        train_and_evaluate(Path(tmp))


def train_and_evaluate(work: Path) -> None:
    images = work / "images"
    images.mkdir()
    for name in ("cat.png", "dog.png", "bird.png"):
        (images / name).write_bytes(os.urandom(64 * 1024))

    with artisync.init(project="example", job_type="train", config={"lr": 0.01}) as run:
        dataset = artisync.Artifact("pets", "dataset", metadata={"classes": 3})
        dataset.add_dir(images, name="images")
        run.log_artifact(dataset)

        checkpoints = []
        best_loss = float("inf")
        for epoch in range(5):
            loss = 1.0 / (epoch + 1)
            path = work / "model.bin"
            path.write_bytes(os.urandom(1 << 20))  # overwritten every epoch: "mutable"
            checkpoint = artisync.Artifact(
                "model", "model", metadata={"epoch": epoch, "loss": loss}
            )
            checkpoint.add_file(path)
            aliases = ["best"] if loss < best_loss else []
            best_loss = min(best_loss, loss)
            run.log_artifact(checkpoint, aliases=aliases)  # returns at once
            checkpoints.append(checkpoint)

        for artifact in [dataset, *checkpoints]:
            artifact.wait(timeout=120)
            print(f"{run.project}/{artifact.name}:{artifact.version}  {artifact.digest}")
        run.summary["loss"] = best_loss

    with artisync.init(project="example", job_type="evaluate") as run:
        best = run.use_artifact("model:best")
        path = best.download(root=work / "best")
        files = sum(1 for f in Path(path).rglob("*") if f.is_file())
        epoch = best.metadata["epoch"]
        print(
            f"evaluating {best.name}:{best.version} (epoch {epoch}): "
            f"{files} file downloaded and verified"
        )
        producer = best.logged_by()
        assert producer is not None
        print(f"  logged by run {producer.id} with config {producer.config}")


if __name__ == "__main__":
    main()
