"""Browser tests: a real JupyterLab server driven in Debian's Chromium with Python Playwright.

``lab.py`` starts the server and the browser and has the page helpers; ``screenshots.py`` is
the ``%%agent`` scenario, used by the tests and runnable on its own (``./dev screenshots``).
docs/testing.md has the details.
"""
