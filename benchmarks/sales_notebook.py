"""The notebook ``bench_review.py`` reviews: 50 cells, generated deterministically.

A quarterly sales analysis as Jupyter saves it after a run: 20 markdown cells and 30 code
cells with their outputs (printed text, DataFrames as text and HTML, one PNG line chart
drawn here), and one real bug (:data:`BUG_LINE` in cell :data:`BUG_CELL`: a growth rate
divided by the wrong quarter).
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from typing import Any

__all__ = ["BUG_CELL", "BUG_LINE", "MARK", "notebook"]

#: Text only the notebook holds (its title): an input item carrying it carries the notebook.
MARK = "Quarterly sales analysis"
BUG_CELL = "growth"
BUG_LINE = "growth = (q4 - q3) / q4"
REGIONS = ("north", "south", "east", "west")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _png(width: int, height: int, rng: random.Random) -> bytes:
    """A line chart of four series on a grid, as a PNG (noise like antialiasing's)."""
    white, grid = b"\xff\xff\xff", b"\xe6\xe6\xe6"
    rows = [bytearray(white * width) for _ in range(height)]
    for y in range(0, height, 40):
        rows[y][:] = grid * width
    colours = (b"\x1f\x77\xb4", b"\xff\x7f\x0e", b"\x2c\xa0\x2c", b"\xd6\x27\x28")
    for colour in colours:
        level = rng.uniform(0.3, 0.7) * height
        for x in range(width):
            level = min(height - 3.0, max(2.0, level + rng.gauss(0, 1.5)))
            for dy in (-1, 0, 1):
                shade = (
                    colour if dy == 0 else bytes(min(255, c + rng.randint(60, 120)) for c in colour)
                )
                rows[int(level) + dy][3 * x : 3 * x + 3] = shade
    raw = b"".join(b"\x00" + bytes(row) for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _table(rng: random.Random, columns: list[str], index: list[str]) -> dict[str, str]:
    """A DataFrame's two representations, as Jupyter saves them."""
    values = [[f"{rng.uniform(100, 9000):,.2f}" for _ in columns] for _ in index]
    width = max(len(c) for c in columns) + 2
    plain = [" " * 8 + "".join(c.rjust(width) for c in columns)]
    plain += [
        i.ljust(8) + "".join(v.rjust(width) for v in row)
        for i, row in zip(index, values, strict=True)
    ]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{i}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
        for i, row in zip(index, values, strict=True)
    )
    html = (
        '<div>\n<table border="1" class="dataframe">\n<thead><tr style="text-align: right;">'
        f"<th></th>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n</div>"
    )
    return {"text/plain": "\n".join(plain), "text/html": html}


def notebook() -> dict[str, Any]:
    """The 50-cell notebook under review (the same bytes on every run)."""
    rng = random.Random(50)
    cells: list[dict[str, Any]] = []
    count = 0

    def md(text: str) -> None:
        cells.append(
            {"cell_type": "markdown", "id": f"m{len(cells)}", "metadata": {}, "source": text}
        )

    def code(source: str, *outputs: dict[str, Any], cid: str = "") -> None:
        nonlocal count
        count += 1
        for output in outputs:
            if output["output_type"] == "execute_result":
                output["execution_count"] = count
        cells.append(
            {
                "cell_type": "code",
                "id": cid or f"c{len(cells)}",
                "metadata": {},
                "execution_count": count,
                "outputs": list(outputs),
                "source": source,
            }
        )

    def result(data: dict[str, str]) -> dict[str, Any]:
        return {"output_type": "execute_result", "data": data, "metadata": {}}

    def printed(text: str) -> dict[str, Any]:
        return {"output_type": "stream", "name": "stdout", "text": text}

    md(
        f"# {MARK}\n\nRevenue by region and product line for the year, from the order export "
        "(`orders.csv`), with quarter-on-quarter growth and a chart for the board pack."
    )
    code(
        "import pandas as pd\nimport numpy as np\nimport matplotlib.pyplot as plt\n\n"
        'pd.set_option("display.precision", 2)'
    )
    md("## Load the export")
    code(
        'orders = pd.read_csv("orders.csv", parse_dates=["date"])\norders.shape',
        result({"text/plain": "(48213, 7)"}),
    )
    columns = ["units", "price", "revenue", "discount"]
    code("orders.head()", result(_table(rng, columns, [str(i) for i in range(5)])))
    code(
        "orders.dtypes",
        result(
            {
                "text/plain": "\n".join(
                    f"{column:<12}{kind:>16}"
                    for column, kind in [
                        ("date", "datetime64[ns]"),
                        *((c, "object") for c in ("region", "product")),
                        *((c, "float64") for c in ("units", "price", "revenue", "discount")),
                    ]
                )
                + "\ndtype: object"
            }
        ),
    )
    md("## Clean\n\nDrop duplicated orders and rows without a unit count; prices are in euros.")
    code(
        'orders = orders.drop_duplicates(subset=["order_id"])\n'
        'orders = orders.dropna(subset=["units"])\nprint(len(orders), "orders kept")',
        printed("47890 orders kept\n"),
    )
    code(
        "orders.isna().sum()",
        result(
            {
                "text/plain": "date        0\nregion      0\nproduct     "
                "0\nunits       0\nprice       0\nrevenue     0\ndiscount    0\ndtype: int64"
            }
        ),
    )
    code(
        'orders["quarter"] = orders["date"].dt.quarter\n'
        'orders["month"] = orders["date"].dt.strftime("%b")'
    )
    for region in REGIONS:
        md(
            f"### {region.title()}\n\nMonthly revenue and the spread of order sizes in the "
            f"{region} region."
        )
        monthly = "\n".join(f"{m}    {rng.uniform(2e5, 9e5):,.2f}" for m in MONTHS)
        code(
            f'{region} = orders[orders["region"] == "{region}"]\n'
            f'{region}.groupby("month", sort=False)["revenue"].sum()',
            result({"text/plain": f"month\n{monthly}\nName: revenue, dtype: float64"}),
        )
        code(
            f'{region}[["units", "price", "revenue"]].describe()',
            result(
                _table(
                    rng,
                    ["units", "price", "revenue"],
                    ["count", "mean", "std", "min", "25%", "50%", "75%", "max"],
                )
            ),
        )
    md("## Product lines")
    products = ["hardware", "software", "services", "support", "training"]
    code(
        'by_product = orders.pivot_table(index="product", columns="quarter", '
        'values="revenue", aggfunc="sum")\nby_product',
        result(_table(rng, ["1", "2", "3", "4"], products)),
    )
    for product in products:
        md(f"### {product.title()}")
        code(
            f'share = by_product.loc["{product}"] / by_product.sum()\n'
            f'print(f"{product}: {{share.mean():.1%}} of revenue on average")',
            printed(f"{product}: {rng.uniform(5, 35):.1f}% of revenue on average\n"),
        )
    md("## Quarter-on-quarter growth\n\nThe board asked for Q3 to Q4 growth by region.")
    code(
        'q3 = orders[orders["quarter"] == 3].groupby("region")["revenue"].sum()\n'
        'q4 = orders[orders["quarter"] == 4].groupby("region")["revenue"].sum()'
    )
    growth = "\n".join(f"{r}    {rng.uniform(-0.1, 0.3):.4f}" for r in REGIONS)
    code(
        f"q = q4.index\n{BUG_LINE}\ngrowth.sort_values(ascending=False)",
        result({"text/plain": f"region\n{growth}\nName: revenue, dtype: float64"}),
        cid=BUG_CELL,
    )
    md("## Chart")
    png = base64.b64encode(_png(640, 320, rng)).decode()
    code(
        'fig, ax = plt.subplots(figsize=(8, 4))\nfor region in ["north", "south", "east", '
        '"west"]:\n    monthly = orders[orders["region"] == region].groupby("month", '
        'sort=False)["revenue"].sum()\n    ax.plot(monthly.index, monthly.values, label=region)\n'
        'ax.legend()\nax.set_title("Monthly revenue by region")',
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"image/png": png, "text/plain": "<Figure size 800x400 with 1 Axes>"},
        },
    )
    md("## Checks")
    for check in ("revenue", "units", "price"):
        code(f'assert (orders["{check}"] >= 0).all(), "negative {check}"')
    code(
        'summary = pd.DataFrame({"q3": q3, "q4": q4, "growth": growth})\nsummary',
        result(_table(rng, ["q3", "q4", "growth"], list(REGIONS))),
    )
    md("## Export")
    code(
        'summary.to_csv("summary.csv")\nprint("written summary.csv")',
        printed("written summary.csv\n"),
    )
    md("## Notes\n\nGrowth uses calendar quarters; the export's dates are in UTC.")
    code(
        'orders["date"].min(), orders["date"].max()',
        result(
            {"text/plain": "(Timestamp('2025-01-01 00:04:11'), Timestamp('2025-12-31 23:51:40'))"}
        ),
    )
    md("## Appendix\n\nOrder counts by region, for the reconciliation with finance.")
    code(
        'orders["region"].value_counts()',
        result(
            {
                "text/plain": "region\n"
                + "\n".join(f"{r}    {rng.randint(9000, 14000)}" for r in REGIONS)
                + "\nName: count, dtype: int64"
            }
        ),
    )
    if len(cells) != 50:
        raise AssertionError(f"the notebook has {len(cells)} cells, not 50")
    for cell in cells:  # as Jupyter saves sources: a list of lines
        cell["source"] = cell["source"].splitlines(keepends=True)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11.7"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
