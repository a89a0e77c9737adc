"""Screenshots of the TensorBoard dashboard of a finished sweep, taken in headless Chromium.

Checks the dashboard for real (TensorBoard serving the sweep's event files, a browser rendering
it) and saves PNGs for the docs:

    apt-get install chromium chromium-driver     # Debian; this script installs nothing
    .venv/bin/python scripts/dashboard_screenshots.py multirun/table3/<time> --out docs/images

It starts TensorBoard on the sweep directory (every run directory of the sweep is one run in
the dashboard), waits until it answers, opens each page in `chromium --headless` and stops
TensorBoard again. Run by hand; not part of the tests.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# page name -> the dashboard's URL fragment
PAGES = {"custom_scalars": "#custom_scalars", "scalars": "#scalars", "hparams": "#hparams",
         "time_series": "#timeseries"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path, help="a sweep (or run) directory")
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="where the PNGs go")
    parser.add_argument("--prefix", default="dashboard", help="file names: <prefix>_<page>.png")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--port", type=int, default=6123)
    parser.add_argument("--chromium", default="chromium", help="the browser executable")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1100)
    # Chromium's virtual time lets the page's scripts fetch and draw before the shot.
    parser.add_argument("--render-ms", type=int, default=20000,
                        help="virtual time the page gets to load its data and draw (ms)")
    parser.add_argument("--startup-s", type=float, default=60.0,
                        help="how long to wait for TensorBoard to answer (s)")
    return parser.parse_args()


def wait_until_serving(url: str, timeout_s: float, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"TensorBoard exited with status {server.returncode}; see its output above")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"TensorBoard did not answer at {url} within {timeout_s:.0f} s")


def screenshot(chromium: str, url: str, path: Path, width: int, height: int, render_ms: int) -> None:
    # --no-sandbox: Chromium refuses to run as root (containers, CI) with its sandbox on.
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={width},{height}", f"--virtual-time-budget={render_ms}",
               f"--screenshot={path}", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not path.is_file():
        raise SystemExit(f"{chromium} failed on {url}:\n{result.stderr[-2000:]}")


def main() -> None:
    args = parse_args()
    if not args.logdir.is_dir():
        raise SystemExit(f"{args.logdir}: no such directory; give a finished sweep or run directory")
    if shutil.which(args.chromium) is None:
        raise SystemExit(f"{args.chromium} not found: apt-get install chromium chromium-driver")
    args.out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}/"
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir),
                               "--port", str(args.port), "--host", "127.0.0.1"])
    try:
        wait_until_serving(base, args.startup_s, server)
        for page in args.pages:
            path = args.out / f"{args.prefix}_{page}.png"
            screenshot(args.chromium, base + PAGES[page], path.resolve(), args.width, args.height,
                       args.render_ms)
            print(f"{page}: {path}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
