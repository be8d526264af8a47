"""Every SPEC format read from a small fixture, with string ids at the boundary."""

import gzip

import pandas as pd
import pytest

from genrec.config import DataConfig
from genrec.data import bundled_sample, detect_format, read_raw, to_interactions
from genrec.errors import DataError, UsageError

RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
RETAIL_ROWS = (
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n"  # exact duplicate
    "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom\n"  # cancellation
    "536414,22139,,56,2010-12-01 11:52:00,0.0,,United Kingdom\n"  # no customer
    "536415,22140,BAD,-3,2010-12-01 11:53:00,0.0,13047.0,United Kingdom\n"  # negative quantity
    "536416,22141,OK,2,2010-12-01 11:54:00,1.25,13047.0,France\n"
    "536416,POST,POSTAGE,1,2010-12-01 11:54:00,18.0,13047.0,France\n"  # a charge, not a product
)

FIXTURES = {
    # name: (file name, content, format, expected (user, item) pairs, has rating, has timestamp)
    "movielens-100k": ("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", [("196", "242"), ("186", "302")], True, True),
    "movielens-1m": ("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n", [("1", "1193"), ("1", "661")], True, True),
    "movielens-latest": ("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n", [("1", "1"), ("1", "3")], True, True),
    "cfgan": ("ML.train", "0 0 3.0\n0 5 4.0\n", [("0", "0"), ("0", "5")], True, False),
    "csv": ("log.csv", "user_id,item_id\n7,85123A\n8,042\n", [("7", "85123A"), ("8", "042")], False, False),
}


@pytest.mark.parametrize("fmt", sorted(FIXTURES))
def test_each_format_reads_with_string_ids(tmp_path, fmt):
    name, content, pairs, has_rating, has_ts = FIXTURES[fmt]
    path = tmp_path / name
    path.write_text(content)
    assert detect_format(path) == fmt
    raw = read_raw(path, "auto")
    assert raw.format == fmt
    frame, report = to_interactions(raw)
    assert list(zip(frame["user_id"], frame["item_id"])) == pairs
    assert all(isinstance(v, str) for v in frame["user_id"]) and all(isinstance(v, str) for v in frame["item_id"])
    assert frame["rating"].notna().all() == has_rating
    assert frame["timestamp"].notna().all() == has_ts
    assert report.rows_in == report.rows_out == len(pairs)


def test_movielens_timestamps_are_unix_seconds(tmp_path):
    path = tmp_path / "u.data"
    path.write_text(FIXTURES["movielens-100k"][1])
    frame, _ = to_interactions(read_raw(path))
    assert frame["timestamp"].iloc[0] == pd.Timestamp(881250949, unit="s")


def test_parquet_with_mapped_columns(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"customer": [1, 2], "sku": ["A1", "B2"], "when": [1_600_000_000, 1_600_000_100]}).to_parquet(path)
    cfg = DataConfig(user_col="customer", item_col="sku", timestamp_col="when")
    frame, _ = to_interactions(read_raw(path, "auto", cfg))
    assert frame["user_id"].tolist() == ["1", "2"] and frame["item_id"].tolist() == ["A1", "B2"]
    assert frame["timestamp"].iloc[1] == pd.Timestamp(1_600_000_100, unit="s")


def test_online_retail_cleaning_counts(tmp_path):
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(RETAIL_HEADER + RETAIL_ROWS)
    raw = read_raw(path)
    assert raw.format == "online-retail"
    frame, report = to_interactions(raw)
    assert report.dropped == {"missing_customer": 1, "cancellations": 1, "non_positive_quantity": 1,
                              "non_products": 1, "exact_duplicates": 1}
    assert list(zip(frame["user_id"], frame["item_id"])) == [("17850", "85123A"), ("17850", "71053"),
                                                             ("13047", "22141")]
    kept, report = to_interactions(raw, DataConfig(non_product_codes=()))
    assert report.dropped["non_products"] == 0 and kept["item_id"].tolist()[-1] == "POST"


def test_bundled_sample_is_online_retail():
    raw = read_raw(bundled_sample())
    assert raw.format == "online-retail"
    assert bundled_sample().stat().st_size < 3_000_000
    frame, report = to_interactions(raw)
    assert report.rows_out > 10_000 and frame["user_id"].nunique() >= 500


def test_missing_path_and_directory_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_raw(tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="is a directory"):
        read_raw(tmp_path)


def test_unreadable_content_is_a_data_error(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_raw(empty, "csv")
    binary = tmp_path / "garbage.csv"
    binary.write_bytes(b"\x00\x01\x02garbage\xff\xfe")
    with pytest.raises(DataError, match="NUL bytes"):
        read_raw(binary, "csv")
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress((RETAIL_HEADER + RETAIL_ROWS * 50).encode())[:120])
    with pytest.raises(DataError, match="truncated or corrupt|cannot be decompressed"):
        read_raw(truncated, "online-retail")
