# Uploading a dataset as W&B's "track datasets" examples do: a run of job type
# "upload" that logs a directory as a dataset artifact, with a description and metadata.
import csv
import os

import artisync as wandb

os.makedirs("mnist", exist_ok=True)
for split, rows in {"train": 40, "val": 10}.items():
    with open(f"mnist/{split}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["pixel_sum", "label"])
        for i in range(rows):
            writer.writerow([i * 17 % 255, i % 10])

with wandb.init(project="mnist-data", job_type="upload") as run:
    raw_data = wandb.Artifact(
        "mnist-raw",
        type="dataset",
        description="Raw MNIST dataset, split into train/val",
        metadata={"source": "synthetic", "sizes": {"train": 40, "val": 10}},
    )
    raw_data.add_dir("mnist")
    run.log_artifact(raw_data)
