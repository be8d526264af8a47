"""Regenerate the bundled demo data: a seeded sample of the UCI Online Retail log.

    .venv/bin/python scripts/make_sample.py ../shared/data/online-retail/online_retail.csv.gz

Keeps every raw line (cancellations, missing customers, duplicates included) of a random set of
customers, plus a share of the lines without a customer, so that the demo exercises cleaning.
Data: Chen, D. (2015). Online Retail. UCI Machine Learning Repository, CC BY 4.0.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

CUSTOMERS = 600
NO_CUSTOMER_SHARE = 0.02
SEED = 7


def main(src: str, dst: str = "genrec/sample/online_retail_sample.csv.gz") -> None:
    raw = pd.read_csv(src, dtype=str, keep_default_na=False, na_values=[""])
    rng = np.random.default_rng(SEED)
    # Customers with a handful of purchases or more, so the sample is worth a recommender.
    counts = raw["CustomerID"].value_counts()
    eligible = counts[counts >= 20].index.to_numpy()
    chosen = set(rng.choice(eligible, size=CUSTOMERS, replace=False))
    no_customer = raw["CustomerID"].isna() & (rng.random(len(raw)) < NO_CUSTOMER_SHARE)
    sample = raw[raw["CustomerID"].isin(chosen) | no_customer]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(dst, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"{len(sample)} rows, {sample['CustomerID'].nunique()} customers -> {dst} "
          f"({Path(dst).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
