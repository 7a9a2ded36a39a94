"""The site managers' dashboard: one HTML page and its static assets, served by the API at `/`.

Everything the page needs ships inside this package (third-party assets are vendored under
`static/vendor/` with their licences), so the dashboard works offline and after a plain `pip install`.
"""

from __future__ import annotations

from pathlib import Path

#: The folder of the page.
DASHBOARD_DIR = Path(__file__).resolve().parent
#: The folder served under `/dashboard/static/`.
STATIC_DIR = DASHBOARD_DIR / "static"
#: The page template; `__HM_CONFIG__` is replaced with the page's JSON configuration.
INDEX_HTML = DASHBOARD_DIR / "index.html"
