"""A figure as the files a run logs: an HTML page that opens offline, and a PNG for a quick look.

The page carries plotly.js, since the MLflow UI may run without internet: gzipped and
base64-encoded (about 2.0 MB instead of 4.8 MB), unpacked by the browser's
``DecompressionStream`` (Chromium 80, Firefox 113, Safari 16.4 and later). A browser without it
shows a line saying so instead of the figure.

The PNG is drawn by plotly's ``kaleido``, which drives a Chromium (it looks for ``chromium``,
``google-chrome`` ... on ``PATH``; ``BROWSER_PATH`` names another), in a child process
(:class:`PngPainter`) that a stage starts early, so that the Chromium boots while it works, and
waits for with a time limit: a Chromium that hangs or is missing costs a stage at most
:data:`PNG_TIMEOUT` seconds and a warning, never the run. ``FOODCAST_PLOT_PNG=0`` skips the PNGs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import html
import os
import re
import signal
import subprocess
import sys
from typing import Any

from plotly.offline import get_plotlyjs

PNG_SWITCH = "FOODCAST_PLOT_PNG"
PNG_TIMEOUT = 90.0  # seconds: a cold Chromium on a busy machine takes 5-10
PNG_SIZE = (1200, 550)  # CSS pixels, drawn at twice the density

# What the child process runs: kaleido only, so that it works wherever the figure was made (a
# stage under `mlflow run`, the tutorial's notebook). Its Chromium boots at once (with no
# MathJax, which kaleido would fetch from the internet) and waits for one figure on stdin; an
# empty line or the end of stdin (this process gone) closes it.
_PNG_SCRIPT = """
import asyncio, json, sys
import kaleido

async def main():
    async with kaleido.Kaleido(n=1, mathjax=False) as k:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line.strip():
            return
        source, target, width, height = line.rstrip("\\n").split("\\t")
        with open(source, encoding="utf-8") as f:
            fig = json.load(f)
        opts = {"format": "png", "width": int(width), "height": int(height), "scale": 2}
        png = await k.calc_fig(fig, opts=opts)
        with open(target, "wb") as f:
            f.write(png)

asyncio.run(main())
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>html, body {{ margin: 0; height: 100%; }} #figure {{ width: 100%; height: 100%; min-height: 420px; }}</style>
</head>
<body>
<div id="figure">Drawing the figure…</div>
<script id="plotly-js" type="application/octet-stream" data-encoding="gzip+base64">{plotly_js}</script>
<script id="figure-json" type="application/json">{figure}</script>
<script>
(async () => {{
  const target = document.getElementById("figure");
  try {{
    if (typeof DecompressionStream === "undefined") {{
      throw new Error("this browser has no DecompressionStream (Chromium 80, Firefox 113, Safari 16.4 or later have)");
    }}
    const packed = atob(document.getElementById("plotly-js").textContent.trim());
    const bytes = Uint8Array.from(packed, (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const script = document.createElement("script");
    script.textContent = await new Response(stream).text();
    document.head.appendChild(script);
    const figure = JSON.parse(document.getElementById("figure-json").textContent);
    target.textContent = "";
    await Plotly.newPlot(target, figure.data, figure.layout, {{ responsive: true, displaylogo: false }});
  }} catch (error) {{
    target.textContent = "The figure cannot be drawn here: " + error.message + ". The PNG beside this file shows it.";
  }}
}})();
</script>
</body>
</html>
"""


@functools.cache
def packed_plotly_js() -> str:
    """plotly.js of the installed plotly, gzipped (byte for byte the same each time) and in base64."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def offline_html(fig: Any) -> str:
    """A page that draws ``fig`` with no network: plotly.js packed in (:func:`packed_plotly_js`),
    the figure's JSON beside it, the figure's title and subtitle as the page's title."""
    parts = (fig.layout.title.text, fig.layout.title.subtitle.text)
    title = re.sub(r"<[^>]*>", " ", " · ".join(p for p in parts if p)) or "plot"
    # "<" only occurs inside JSON strings, where \\u003c means the same: no "</script>" can end the block.
    figure = fig.to_json().replace("<", "\\u003c")
    return _PAGE.format(title=html.escape(title), plotly_js=packed_plotly_js(), figure=figure)


def png_wanted() -> bool:
    """Whether to draw PNGs: unless ``FOODCAST_PLOT_PNG=0``."""
    return os.environ.get(PNG_SWITCH, "1").strip() != "0"


class PngPainter:
    """A child process that draws one figure as a PNG with kaleido, started ahead of time: its
    Chromium boots (4 s or so) while the stage does its work, and drawing then takes about 1 s.

    Start it with :func:`png_painter`; :meth:`draw` once, or :meth:`close`. One never used ends
    anyway when this process does (its stdin closes).
    """

    def __init__(self) -> None:
        # A session of its own: on a timeout (or an interruption of the stage), the child is
        # killed alone, and the Chromium it started ends with it (their pipe closes).
        self._child = subprocess.Popen(
            [sys.executable, "-c", _PNG_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def draw(self, fig: Any, figure_json: str, path: str, timeout: float = PNG_TIMEOUT) -> str | None:
        """Draw ``fig`` to ``path``; why not, in one line, if it could not.

        Parameters
        ----------
        fig : plotly.graph_objects.Figure
        figure_json : str
            A file to write the figure's JSON to, for the child.
        path : str
            The PNG to write.
        timeout : float
            Seconds after which the child and its Chromium are killed.
        """
        with open(figure_json, "w", encoding="utf-8") as f:
            f.write(fig.to_json())
        request = "\t".join([figure_json, path, *map(str, PNG_SIZE)]) + "\n"
        try:
            output, _ = self._child.communicate(request.encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            return f"kaleido did not finish in {timeout:.0f} s"
        except BaseException:
            self.close()
            raise
        if self._child.returncode != 0 or not os.path.isfile(path):
            lines = output.decode("utf-8", "replace").strip().splitlines()
            return f"kaleido failed ({lines[-1] if lines else f'exit status {self._child.returncode}'})"
        return None

    def close(self) -> None:
        """End the child if it still runs, and reap it (a child already reaped is left alone:
        its number may be another process's by now)."""
        if self._child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._child.pid, signal.SIGKILL)
        self._child.communicate()


def png_painter() -> PngPainter | None:
    """A :class:`PngPainter` starting now, or ``None`` under ``FOODCAST_PLOT_PNG=0``."""
    return PngPainter() if png_wanted() else None
