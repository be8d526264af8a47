"""Loaders: every input format in SPEC read into a raw frame, then mapped to interactions.

A raw frame keeps the source's own columns as strings, so that validation can say which value in
which column is wrong. `to_interactions` turns a validated raw frame into the common shape
`user_id, item_id (str), rating (float, NaN if absent), timestamp (datetime64, NaT if absent)`,
cleaning what is normal mess for the source and counting what it dropped.
"""

from __future__ import annotations

import gzip
import logging
import typing
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.config import DataConfig
from genrec.errors import DataError, UsageError

log = logging.getLogger(__name__)

FORMATS = tuple(f for f in typing.get_args(typing.get_type_hints(DataConfig)["format"]) if f != "auto")

ONLINE_RETAIL_COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]

# Source columns of each headerless or fixed-header format, in file order.
_COLUMNS = {
    "movielens-100k": ["user_id", "item_id", "rating", "timestamp"],
    "movielens-1m": ["user_id", "item_id", "rating", "timestamp"],
    "movielens-latest": ["userId", "movieId", "rating", "timestamp"],
    "cfgan": ["user_id", "item_id", "rating"],
    "online-retail": ONLINE_RETAIL_COLUMNS,
}

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def bundled_sample() -> Path:
    """The bundled sample of the UCI Online Retail log (CC BY 4.0, see README)."""
    return Path(str(resources.files("genrec") / "sample" / "online_retail_sample.csv.gz"))


@dataclass
class RawData:
    """A file as read: the source's columns, all as strings."""

    frame: pd.DataFrame
    format: str
    path: Path


@dataclass
class CleaningReport:
    """How many rows each cleaning rule dropped, in order."""

    rows_in: int
    dropped: dict[str, int] = field(default_factory=dict)
    rows_out: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"rows_in": self.rows_in, **{f"dropped_{k}": v for k, v in self.dropped.items()},
                "rows_out": self.rows_out}


def check_path(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file.")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file.")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror}.") from None


def _head(path: Path, n: int = 4096) -> bytes:
    """The first bytes of the file, decompressed if it is gzip."""
    with path.open("rb") as fh:
        start = fh.read(2)
    opener = gzip.open if start == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be decompressed ({exc}).") from None


def detect_format(path: Path) -> str:
    """Guess the format from the file name, then from its first line."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name == "u.data":
        return "movielens-100k"
    if name == "ratings.dat":
        return "movielens-1m"
    if name.endswith((".train", ".test")):
        return "cfgan"
    head = _head(path)
    if b"\x00" in head:
        raise DataError(f"{path}: the file contains NUL bytes; it is binary, not a text data file.")
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if first.startswith("InvoiceNo"):
        return "online-retail"
    if first.startswith("userId,movieId"):
        return "movielens-latest"
    if "::" in first:
        return "movielens-1m"
    if "\t" in first and len(first.split("\t")) == 4:
        return "movielens-100k"
    tokens = first.split(" ")
    if len(tokens) == 3 and all(t.replace(".", "", 1).isdigit() for t in tokens):
        return "cfgan"
    return "csv"


def _read_text(path: Path, **kwargs) -> pd.DataFrame:
    head = _head(path)
    if b"\x00" in head:
        raise DataError(f"{path}: the file contains NUL bytes; it is binary, not a text data file.")
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            compression="infer",
            encoding="utf-8",
            **kwargs,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot be parsed as {kwargs.get('sep', ',')!r}-separated text ({exc}).") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); is it a binary file?") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: the compressed file is truncated or corrupt ({exc}).") from None


def read_raw(path: str | Path, fmt: str = "auto", cfg: DataConfig | None = None) -> RawData:
    """Read `path` in format `fmt` (or detect it) into a frame of strings."""
    cfg = cfg or DataConfig()
    path = Path(path)
    check_path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise UsageError(f"Unknown format {fmt!r}; expected one of: auto, {', '.join(FORMATS)}.")

    if fmt == "movielens-100k":
        frame = _read_text(path, sep="\t", header=None, names=_COLUMNS[fmt])
    elif fmt == "cfgan":
        frame = _read_text(path, sep=" ", header=None, names=_COLUMNS[fmt])
    elif fmt == "movielens-1m":
        lines = _read_text(path, sep="\x01", header=None, names=["line"], quoting=3)
        parts = lines["line"].str.split("::", expand=True, regex=False)
        if parts.shape[1] < 3:
            raise DataError(f"{path}: expected '::'-separated user::item::rating lines, got {lines['line'].iloc[0]!r}.")
        parts = parts.reindex(columns=range(4))
        parts.columns = _COLUMNS[fmt]
        frame = parts
    elif fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None
        frame = frame.astype("str")
    else:  # header formats
        frame = _read_text(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    if fmt in ("csv", "parquet"):
        rename = {cfg.user_col: "user_id", cfg.item_col: "item_id", cfg.rating_col: "rating",
                  cfg.timestamp_col: "timestamp"}
        frame = frame.rename(columns={k: v for k, v in rename.items() if k in frame.columns})
    log.info("read %s rows of %s from %s", len(frame), fmt, path)
    return RawData(frame=frame, format=fmt, path=path)


def _to_numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _timestamps(s: pd.Series) -> pd.Series:
    """Unix seconds or ISO-like text to datetime64 (UTC, naive)."""
    numeric = pd.to_numeric(s, errors="coerce")
    if numeric.notna().all():
        return pd.to_datetime(numeric, unit="s")
    return pd.to_datetime(s, errors="coerce", format="mixed")


def _clean_online_retail(frame: pd.DataFrame, report: CleaningReport, cfg: DataConfig) -> pd.DataFrame:
    def drop(name: str, keep: pd.Series) -> pd.DataFrame:
        report.dropped[name] = int((~keep).sum())
        return frame[keep]

    frame = drop("missing_customer", frame["CustomerID"].notna())
    frame = drop("cancellations", ~frame["InvoiceNo"].str.startswith("C"))
    quantity = _to_numeric(frame["Quantity"])
    frame = drop("non_positive_quantity", quantity > 0)
    frame = drop("non_products", ~frame["StockCode"].str.strip().isin(cfg.non_product_codes))
    frame = drop("exact_duplicates", ~frame.duplicated(keep="first"))
    customer = frame["CustomerID"].str.strip().str.replace(r"\.0+$", "", regex=True)
    return pd.DataFrame(
        {
            "user_id": customer,
            "item_id": frame["StockCode"].str.strip(),
            "rating": np.nan,
            "timestamp": pd.to_datetime(frame["InvoiceDate"], errors="coerce", format="mixed"),
        }
    )


def to_interactions(raw: RawData, cfg: DataConfig | None = None) -> tuple[pd.DataFrame, CleaningReport]:
    """Map a validated raw frame to the common interaction shape, cleaning source-typical mess."""
    cfg = cfg or DataConfig()
    frame = raw.frame
    report = CleaningReport(rows_in=len(frame))
    if raw.format == "online-retail":
        out = _clean_online_retail(frame, report, cfg)
    else:
        if raw.format == "movielens-latest":
            frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        out = pd.DataFrame(
            {
                "user_id": frame["user_id"].str.strip(),
                "item_id": frame["item_id"].str.strip(),
                "rating": _to_numeric(frame["rating"]) if "rating" in frame else np.nan,
                "timestamp": _timestamps(frame["timestamp"]) if "timestamp" in frame and frame["timestamp"].notna().any()
                else pd.NaT,
            }
        )
    out["rating"] = out["rating"].astype(float)
    out["timestamp"] = pd.to_datetime(out["timestamp"])
    out = out.reset_index(drop=True)
    report.rows_out = len(out)
    return out, report


def load_interactions(path: str | Path, fmt: str = "auto", cfg: DataConfig | None = None) -> pd.DataFrame:
    """Read and map in one go, without validation: for tests, benchmarks and `genrec evaluate`."""
    interactions, _ = to_interactions(read_raw(path, fmt, cfg), cfg)
    return interactions


ML100K_GENRES = [
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama", "fantasy",
    "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western",
]


def item_attributes(raw: RawData, cfg: DataConfig | None = None) -> tuple[pd.DataFrame, str] | None:
    """Item attributes with the name of their suite: the table `cfg.items` names, else the source's
    own: MovieLens 100K genres and year (`u.item` beside `u.data`) and Online Retail descriptions
    and prices (in the log itself). None for sources without attributes."""
    if cfg is not None and cfg.items:
        return read_item_table(Path(cfg.items))
    if raw.format == "online-retail":
        frame = raw.frame
        price = _to_numeric(frame["UnitPrice"])
        items = (
            pd.DataFrame({"item_id": frame["StockCode"].str.strip(), "description": frame["Description"], "price": price})
            .groupby("item_id", sort=True)
            .agg(description=("description", "first"), price=("price", "median"))
            .reset_index()
        )
        return items, "items_online_retail"
    if raw.format == "movielens-100k":
        path = raw.path.parent / "u.item"
        return _movielens_100k_items(path) if path.is_file() else None
    return None


def _movielens_100k_items(path: Path) -> tuple[pd.DataFrame, str]:
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    try:
        items = pd.read_csv(path, sep="|", header=None, names=names, dtype=str, encoding="latin-1",
                            keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be parsed as MovieLens u.item ({exc}).") from None
    flags = items[ML100K_GENRES].apply(pd.to_numeric, errors="coerce")
    year = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    return items[["item_id", "title"]].assign(genres=flags.sum(axis=1), year=year,
                                              **{g: flags[g] for g in ML100K_GENRES}), "items_movielens_100k"


def read_item_table(path: Path) -> tuple[pd.DataFrame, str]:
    """An item attribute table given as a file, with the name of its suite: MovieLens `u.item`,
    `movies.dat` (`id::title::genre|genre`) or `movies.csv` (`movieId,title,genres`), each with its
    genres as 0/1 columns and the year from the title; or any CSV/Parquet with an `item_id` column."""
    check_path(path)
    name = path.name.lower()
    if name == "u.item":
        return _movielens_100k_items(path)
    if name in ("movies.dat", "movies.csv"):
        if name == "movies.dat":
            lines = _read_text_latin1(path)
            parts = lines["line"].str.split("::", expand=True, regex=False).reindex(columns=range(3))
            frame = pd.DataFrame({"item_id": parts[0], "title": parts[1], "genre_list": parts[2]})
        else:
            frame = _read_text(path).rename(columns={"movieId": "item_id", "genres": "genre_list"})
        if "item_id" not in frame or "title" not in frame:
            raise DataError(f"{path}: expected MovieLens movies with an id, a title and genres.")
        genres = frame["genre_list"].fillna("").str.get_dummies(sep="|")
        genres = genres.drop(columns=[c for c in genres if c.startswith("(no genres")], errors="ignore")
        year = pd.to_numeric(frame["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
        return frame[["item_id", "title"]].assign(year=year, **{f"genre_{g.lower()}": genres[g] for g in genres}), \
            "items_table"
    if name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None
    else:
        frame = _read_text(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    if "item_id" not in frame:
        raise DataError(f"{path}: an item table needs an item_id column (it has {', '.join(frame.columns)}).")
    return frame.assign(item_id=frame["item_id"].astype(str).str.strip()), "items_table"


def _read_text_latin1(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\x01", header=None, names=["line"], dtype=str, quoting=3, encoding="latin-1")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
