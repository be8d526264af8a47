"""Small generated fixtures of every kind of broken input the data-quality issue lists."""

from __future__ import annotations

import gzip
from pathlib import Path

RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def _good_csv_rows(n_users: int = 12, n_items: int = 12) -> list[str]:
    return [f"u{u},i{(u + j) % n_items},{1 + (u + j) % 5},{1_600_000_000 + 60 * (u * n_items + j)}"
            for u in range(n_users) for j in range(6)]


def _retail_rows(n: int = 120) -> list[str]:
    return [f"5{n + i:05d},{20000 + i % 15},ITEM {i % 15},{1 + i % 4},2011-0{1 + i % 9}-1{i % 9} 10:{i % 60:02d}:00,"
            f"{1 + (i % 7) * 0.5:.2f},{13000 + i % 14}.0,United Kingdom" for i in range(n)]


def write(kind: str, directory: Path) -> tuple[Path, str, list[str]]:
    """(path, format, words the error sentence must contain) for one kind of broken input."""
    d = directory
    header = "user_id,item_id,rating,timestamp"
    rows = _good_csv_rows()

    def text(name: str, body: str) -> Path:
        path = d / name
        path.write_text(body)
        return path

    if kind == "empty":
        return text("empty.csv", ""), "csv", ["empty"]
    if kind == "header_only":
        return text("header.csv", header + "\n"), "csv", ["no data rows"]
    if kind == "missing_column":
        return text("missing.csv", "\n".join(["user_id,rating"] + [r.split(",")[0] + ",3" for r in rows]) + "\n"), \
            "csv", ["item_id", "missing"]
    if kind == "wrong_delimiter":
        return text("semicolon.csv", "\n".join([header.replace(",", ";")] + [r.replace(",", ";") for r in rows]) + "\n"), \
            "csv", ["user_id", "delimiter"]
    if kind == "binary_garbage":
        path = d / "garbage.csv"
        path.write_bytes(bytes(range(256)) * 40)
        return path, "csv", ["binary"]
    if kind == "nul_bytes":
        path = d / "nul.csv"
        path.write_bytes((header + "\n" + "\n".join(rows[:3]) + "\n").encode() + b"u9,i\x00\x001,3,1600000000\n")
        return path, "csv", ["NUL"]
    if kind == "null_ids":
        bad = rows[:5] + [",i1,3,1600000000", "u3,,4,1600000000"] + rows[5:]
        return text("nullids.csv", "\n".join([header] + bad) + "\n"), "csv", ["user_id", "null"]
    if kind == "rating_out_of_range":
        body = "\n".join(["196\t242\t3\t881250949", "186\t302\t9\t891717742"] * 30) + "\n"
        return text("u.data", body), "movielens-100k", ["rating", "'9'"]
    if kind == "rating_not_numeric":
        bad = rows[:10] + ["u1,i2,five,1600000000"] + rows[10:]
        return text("ratingtext.csv", "\n".join([header] + bad) + "\n"), "csv", ["rating", "'five'"]
    if kind == "timestamp_unparseable":
        bad = rows[:10] + ["u1,i2,3,yesterday"] + rows[10:]
        return text("tstext.csv", "\n".join([header] + bad) + "\n"), "csv", ["timestamp", "'yesterday'"]
    if kind == "timestamp_future":
        bad = rows[:10] + ["u1,i9,3,4102444800"] + rows[10:]  # 2100-01-01
        return text("future.csv", "\n".join([header] + bad) + "\n"), "csv", ["timestamp", "2100"]
    if kind == "single_row":
        return text("one.csv", header + "\n" + rows[0] + "\n"), "csv", ["interactions"]
    if kind == "single_user":
        one = [f"u1,i{j},3,{1_600_000_000 + j}" for j in range(80)]
        return text("oneuser.csv", "\n".join([header] + one) + "\n"), "csv", ["user_id", "1 user"]
    if kind == "single_item":
        one = [f"u{j},i1,3,{1_600_000_000 + j}" for j in range(80)]
        return text("oneitem.csv", "\n".join([header] + one) + "\n"), "csv", ["item_id", "1 item"]
    if kind == "truncated_gzip":
        blob = gzip.compress(("\n".join([RETAIL_HEADER] + _retail_rows(3000)) + "\n").encode())
        path = d / "retail.csv.gz"
        path.write_bytes(blob[: len(blob) // 2])
        return path, "online-retail", ["truncated"]
    if kind == "huge_field":
        bad = rows[:10] + ["u1,i" + "x" * 3_000_000 + ",3,1600000000"] + rows[10:]
        return text("huge.csv", "\n".join([header] + bad) + "\n"), "csv", ["item_id", "characters"]
    if kind == "renamed_column":
        body = "\n".join(["userId,itemId,rating,timestamp", "1,1,4.0,964982703", "1,3,4.5,964981247"]) + "\n"
        return text("ratings.csv", body), "movielens-latest", ["movieId", "missing"]
    if kind == "renamed_column_online_retail":
        body = [RETAIL_HEADER.replace("StockCode", "Stock")] + _retail_rows()
        return text("retail_renamed.csv", "\n".join(body) + "\n"), "online-retail", ["StockCode", "missing"]
    if kind == "renamed_column_csv":
        body = [header.replace("item_id", "item")] + rows
        return text("renamed.csv", "\n".join(body) + "\n"), "csv", ["item_id", "missing"]
    if kind == "renamed_column_parquet":
        import pandas as pd

        path = d / "renamed.parquet"
        frame = pd.DataFrame([r.split(",") for r in rows], columns=["user_id", "product", "rating", "timestamp"])
        frame.to_parquet(path, index=False)
        return path, "parquet", ["item_id", "missing"]
    if kind == "missing_column_movielens_100k":
        body = "\n".join(["196\t242\t3", "186\t302\t3"] * 30) + "\n"
        return text("u.data", body), "movielens-100k", ["timestamp"]
    if kind == "missing_column_movielens_1m":
        body = "\n".join(["1::1193", "1::661"] * 30) + "\n"
        return text("ratings.dat", body), "movielens-1m", ["user::item::rating"]
    if kind == "missing_column_cfgan":
        body = "\n".join(["0 1", "0 2"] * 30) + "\n"
        return text("split.train", body), "cfgan", ["rating"]
    if kind == "negative_prices":
        body = [RETAIL_HEADER]
        for row in _retail_rows():
            head, price, customer, country = row.rsplit(",", 3)
            body.append(f"{head},-{price},{customer},{country}")
        return text("retail_neg.csv", "\n".join(body) + "\n"), "online-retail", ["UnitPrice", "rows"]
    if kind == "quantity_not_numeric":
        body = [RETAIL_HEADER] + _retail_rows()
        body[5] = body[5].replace(",ITEM 4,1,", ",ITEM 4,two,")
        return text("retail_qty.csv", "\n".join(body) + "\n"), "online-retail", ["Quantity", "'two'"]
    raise KeyError(kind)


KINDS = [
    "empty", "header_only", "missing_column", "wrong_delimiter", "binary_garbage", "nul_bytes", "null_ids",
    "rating_out_of_range", "rating_not_numeric", "timestamp_unparseable", "timestamp_future", "single_row",
    "single_user", "single_item", "truncated_gzip", "huge_field", "renamed_column", "negative_prices",
    "quantity_not_numeric",
    # A renamed column in each format with a header, a missing one in each without.
    "renamed_column_online_retail", "renamed_column_csv", "renamed_column_parquet", "missing_column_movielens_100k",
    "missing_column_movielens_1m", "missing_column_cfgan",
]
