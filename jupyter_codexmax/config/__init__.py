"""Settings shared by every surface: one traitlets ``Configurable``, ``CodexMax``.

Where a value comes from, lowest priority first:

1. the default written here;
2. config files: ``jupyter_codexmax_config.py`` / ``.json`` in the Jupyter config path
   (``jupyter --paths``), and in a kernel also IPython's own config
   (``ipython_config.py``, ``ipython_kernel_config.py``): ``c.CodexMax.model = "..."``;
3. environment variables (each trait's help names its variable, e.g. ``OPENAI_BASE_URL``);
4. command-line flags (``--model``, ``--CodexMax.model=...``) and ``%config CodexMax.model``.

The API key is a :class:`~jupyter_codexmax.secrets.Secret`: ``%config CodexMax``,
``--show-config``, logs and errors show a mask, never the key.
"""

from ._agent import APPROVALS
from ._endpoint import DEFAULT_BASE_URL
from ._loading import CONFIG_FILE_NAME, env_config, load_config_files, load_settings
from ._settings import CodexMax

__all__ = [
    "APPROVALS",
    "CONFIG_FILE_NAME",
    "DEFAULT_BASE_URL",
    "CodexMax",
    "env_config",
    "load_config_files",
    "load_settings",
]
